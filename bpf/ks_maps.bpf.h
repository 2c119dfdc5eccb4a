/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps shared by every killswitch BPF object. User space creates them once
 * (in the process_guard object) and hands the same fds to the other objects
 * with bpf_map__reuse_fd() before they load. */
#ifndef KS_MAPS_BPF_H
#define KS_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <killswitch/abi/events.h>

#ifndef KS_MAX_GUARDED_TASKS
#define KS_MAX_GUARDED_TASKS 65536
#endif

/* tgid -> session. The one lookup every hook does first. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KS_MAX_GUARDED_TASKS);
	__type(key, __u32);
	__type(value, struct ks_task_guard);
} guarded_tasks SEC(".maps");

/* cgroup id -> session: session cgroups and cgroups named by the policy.
 * Consulted only at fork and exec of tasks that are not yet guarded. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct ks_cgroup_guard);
} guarded_cgroups SEC(".maps");

/* comm (the basename the new image runs under) -> 1 for agent executables. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[KS_COMM_LEN]);
	__type(value, __u32);
} agent_names SEC(".maps");

/* uid -> 1 for users whose every exec opens a session. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} guarded_uids SEC(".maps");

/* thread id -> 1 while a guarded thread is inside libpq's PQconnectPoll: its
 * connect() to a watched unix socket comes from libpq, whose statements the
 * libpq uprobes read, and is let through (db_guard sets it, db_wire reads it). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} libpq_connecting SEC(".maps");

/* session id -> open maintenance window (killswitch allow). Read by every
 * enforcement program: file_guard, db_guard, db_wire. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct ks_allow_window);
} allow_windows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KS_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Uprobes scoped to guarded processes: where the kernel has uprobe_multi
 * links with a pid (6.6+), the daemon attaches the libc uprobes to each
 * guarded process alone, so that no other process traps. [0] is 1 while it
 * does: a new child of a guarded process is then put in uprobe_pending at
 * fork (in its parent) and held at its return from fork (file_guard), before
 * its first instruction, until the daemon has attached them to it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} uprobe_scope SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} uprobe_pending SEC(".maps");

#endif /* KS_MAPS_BPF_H */

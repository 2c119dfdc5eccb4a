/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of everything that crosses the kernel/user boundary:
 * ring-buffer records, map keys and values, counter indices.
 *
 * Included by the BPF programs (after vmlinux.h) and by C++ (which checks the
 * sizes and offsets with static_asserts in userspace/process_guard/abi_check.cpp).
 * Fixed-width fields only, explicit padding, no pointers.
 */
#ifndef KILLSWITCH_ABI_EVENTS_H
#define KILLSWITCH_ABI_EVENTS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define KS_COMM_LEN 16
#define KS_FILENAME_MAX 256
#define KS_ARGV_MAX 2048
/* Paths travel as their components, leaf first, each NUL-terminated. A read
 * may start anywhere below KS_PATH_MAX and write up to KS_NAME_MAX bytes, so
 * the buffer carries that much slack. */
#define KS_PATH_MAX 1024
#define KS_NAME_MAX 256
#define KS_PATH_BUF (KS_PATH_MAX + KS_NAME_MAX)
#define KS_PATH_DEPTH 48

/* Record types on the ring buffer; also indices of the per-CPU counters. */
enum ks_event_type {
	KS_EVENT_EXEC = 1,
	KS_EVENT_FORK = 2,
	KS_EVENT_EXIT = 3,
	KS_EVENT_TYPE_MAX = 8,
};

/* Why a task is guarded (ks_exec_event.seed). */
enum ks_seed {
	KS_SEED_INHERITED = 0, /* already guarded: forked from a guarded task */
	KS_SEED_CGROUP = 1,    /* its cgroup is a session or named by the policy */
	KS_SEED_AGENT = 2,     /* its executable is on the policy's agent list */
	KS_SEED_UID = 3,       /* its uid is named by the policy */
};

/* ks_event_header.flags */
#define KS_EVF_NEW_SESSION (1u << 0) /* the kernel opened a session for this task */
#define KS_EVF_HELD (1u << 1)        /* the task was sent SIGSTOP and waits for the daemon */
#define KS_EVF_ARGV_TRUNC (1u << 2)
#define KS_EVF_FILENAME_TRUNC (1u << 3)
#define KS_EVF_CWD_TRUNC (1u << 4)
#define KS_EVF_EXE_TRUNC (1u << 5)
#define KS_EVF_CWD_DELETED (1u << 6)

/* Session ids: user space hands out ids below this bit, the kernel above it. */
#define KS_SESSION_KERNEL_BIT 0x80000000u

struct ks_event_header {
	__u64 ts_ns; /* CLOCK_BOOTTIME */
	__u64 cgroup_id;
	__u32 type; /* enum ks_event_type */
	__u32 flags;
	__u32 pid; /* thread-group id of the subject */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 session_id;
	__u32 _pad0;
	char comm[KS_COMM_LEN];
};

struct ks_exec_event {
	struct ks_event_header hdr;
	__u32 seed; /* enum ks_seed */
	__u32 argv_len;
	__u32 filename_len;
	__u32 cwd_len;
	__u32 exe_len;
	__u32 _pad0;
	char filename[KS_FILENAME_MAX]; /* as passed to execve */
	char argv[KS_ARGV_MAX];         /* NUL-separated */
	char cwd[KS_PATH_BUF];          /* components, leaf first */
	char exe[KS_PATH_BUF];          /* components, leaf first */
};

/* hdr.pid is the child, hdr.ppid the parent; sent from the parent's context
 * before the child first runs. */
struct ks_fork_event {
	struct ks_event_header hdr;
};

struct ks_exit_event {
	struct ks_event_header hdr;
	__u32 exit_code; /* as wait(2) reports it */
	__u32 _pad0;
};

/* guarded_tasks: key = tgid */
struct ks_task_guard {
	__u32 session_id;
	__u32 seed;
};

/* guarded_cgroups: key = cgroup id (the inode number of its cgroup2 directory) */
struct ks_cgroup_guard {
	__u32 session_id;
	__u32 _pad0;
};

/* Per-CPU counters (array map "counters"), one slot per index below. */
enum ks_counter {
	KS_CTR_EVENTS = 0,     /* + ks_event_type: records submitted */
	KS_CTR_LOST = 8,       /* + ks_event_type: records lost (ring buffer full) */
	KS_CTR_GUARD_FULL = 16, /* a guarded task could not be added: map full */
	KS_CTR_HELD = 17,      /* tasks held at exec */
	KS_CTR_MAX = 32,
};

#endif /* KILLSWITCH_ABI_EVENTS_H */

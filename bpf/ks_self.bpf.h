/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* killswitch's own processes, shared by self_guard (syscall tracepoints, libc
 * uprobes) and hook_guard_lsm (LSM hooks). */
#ifndef KS_SELF_BPF_H
#define KS_SELF_BPF_H

#include "ks_helpers.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} protected_pids SEC(".maps");

static __always_inline bool ks_protected(__s64 pid)
{
	if (pid <= 0 || pid > 0x7fffffff)
		return false;
	__u32 key = (__u32)pid;
	return bpf_map_lookup_elem(&protected_pids, &key) != NULL;
}

/* Programs outside every session that guarded processes may still signal
 * and trace (policy processes.reachable), by comm. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[KS_COMM_LEN]);
	__type(value, __u32);
} reachable_names SEC(".maps");

/* And processes by tgid: the `killswitch run` wrappers (their session shares
 * their process group). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} reachable_pids SEC(".maps");

/* Records what the current task went for; flags KS_TF_*. A held task
 * (KS_TF_HELD) is stopped here, once its record has room: a task is never
 * stopped without the record that asks the daemon to let it go. False when
 * the ring buffer had no room. */
static __always_inline bool ks_tamper_record(struct ks_task_guard *g, __u32 what, __u32 layer,
					     __s64 target, __u64 arg, __u32 nr, __u32 flags)
{
	struct ks_tamper_event *e = ks_reserve(sizeof(*e), KS_EVENT_TAMPER);
	if (!e)
		return false;
	ks_fill_header(&e->hdr, KS_EVENT_TAMPER, (struct task_struct *)bpf_get_current_task(),
		       g->session_id);
	e->what = what;
	e->layer = layer;
	e->target = target;
	e->arg = arg;
	e->syscall_nr = nr;
	e->flags = flags;
	if (flags & KS_TF_HELD)
		bpf_send_signal(KS_SIGSTOP);
	ks_submit_now(e, KS_EVENT_TAMPER);
	return true;
}

/* Kills the current task and records what it went for. */
static __always_inline int ks_tamper(struct ks_task_guard *g, __u32 what, __u32 layer,
				     __s64 target, __u64 arg, __u32 nr)
{
	/* Before anything else: the record may not fit, the kill must happen. */
	bpf_send_signal(KS_SIGKILL);
	ks_count(KS_CTR_TAMPER);
	ks_tamper_record(g, what, layer, target, arg, nr, 0);
	return 0;
}

/* Where a target process stands for a guarded caller. */
enum ks_reach {
	KS_REACH_OK = 0,      /* its own session's, or a program the policy lets it reach */
	KS_REACH_OUTSIDE = 1, /* another session's, or outside every session */
	KS_REACH_UNKNOWN = 2, /* a pid in no session: unguarded, gone, a thread or a group */
};

/* A target task the kernel hands over (LSM and fentry hooks): exact. */
static __always_inline int ks_reach_task(struct ks_task_guard *g, struct task_struct *t)
{
	__u32 tgid = BPF_CORE_READ(t, tgid);
	struct ks_task_guard *tg = bpf_map_lookup_elem(&guarded_tasks, &tgid);
	char comm[KS_COMM_LEN] = {};

	if (tg)
		return tg->session_id == g->session_id ? KS_REACH_OK : KS_REACH_OUTSIDE;
	if (bpf_map_lookup_elem(&reachable_pids, &tgid))
		return KS_REACH_OK;
	BPF_CORE_READ_STR_INTO(&comm, t, group_leader, comm);
	return bpf_map_lookup_elem(&reachable_names, &comm) ? KS_REACH_OK : KS_REACH_OUTSIDE;
}

/* A pid (a libc argument or a system call's): only a process of a session is
 * known here; anything else is for the daemon. Pids are the kernel's own only
 * for a caller in the initial pid namespace: inside another one, OK (the LSM
 * and fentry layers, which see the target task, judge there). */
static __always_inline int ks_reach_pid(struct ks_task_guard *g, __s64 pid)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	if (BPF_CORE_READ(task, thread_pid, level) != 0 || pid < -0x7fffffff || pid > 0x7fffffff)
		return KS_REACH_OK;
	if (pid <= 0)
		return KS_REACH_UNKNOWN; /* a process group: its members are for the daemon */
	__u32 key = (__u32)pid;
	struct ks_task_guard *tg = bpf_map_lookup_elem(&guarded_tasks, &key);
	if (!tg)
		return bpf_map_lookup_elem(&reachable_pids, &key) ? KS_REACH_OK : KS_REACH_UNKNOWN;
	return tg->session_id == g->session_id ? KS_REACH_OK : KS_REACH_OUTSIDE;
}

/* A libc entry: outside is killed before the call; unknown is stopped, the
 * daemon judges the target and lets the caller go on or kills it. */
static __always_inline int ks_reach_at_libc(struct ks_task_guard *g, __u32 what, __s64 pid,
					    __u64 arg)
{
	int r = ks_reach_pid(g, pid);

	if (r == KS_REACH_OUTSIDE)
		return ks_tamper(g, what, KS_LAYER_UPROBE, pid, arg, 0);
	/* No room for the record: nobody would let it go; it dies before the
	 * call instead (the loss is counted). */
	if (r == KS_REACH_UNKNOWN &&
	    !ks_tamper_record(g, what, KS_LAYER_UPROBE, pid, arg, 0, KS_TF_HELD))
		bpf_send_signal(KS_SIGKILL);
	return 0;
}

/* A raw system call: it runs whatever happens here. A process of another
 * session is known: the caller dies as the call returns. Anything else was
 * judged at the libc entry (libc callers) or is not seen here. */
static __always_inline int ks_reach_at_syscall(struct ks_task_guard *g, __u32 what, __s64 pid,
					       __u64 arg, __u32 nr)
{
	if (pid > 0 && ks_reach_pid(g, pid) == KS_REACH_OUTSIDE)
		return ks_tamper(g, what, KS_LAYER_TRACEPOINT, pid, arg, nr);
	return 0;
}

#endif /* KS_SELF_BPF_H */

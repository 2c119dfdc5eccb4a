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

/* Kills the current task and records what it went for. */
static __always_inline int ks_tamper(struct ks_task_guard *g, __u32 what, __u32 layer,
				     __s64 target, __u64 arg, __u32 nr)
{
	/* Before anything else: the record may not fit, the kill must happen. */
	bpf_send_signal(KS_SIGKILL);
	ks_count(KS_CTR_TAMPER);
	struct ks_tamper_event *e = ks_reserve(sizeof(*e), KS_EVENT_TAMPER);
	if (!e)
		return 0;
	ks_fill_header(&e->hdr, KS_EVENT_TAMPER, (struct task_struct *)bpf_get_current_task(),
		       g->session_id);
	e->what = what;
	e->layer = layer;
	e->target = target;
	e->arg = arg;
	e->syscall_nr = nr;
	e->_pad0 = 0;
	ks_submit_now(e, KS_EVENT_TAMPER);
	return 0;
}

#endif /* KS_SELF_BPF_H */

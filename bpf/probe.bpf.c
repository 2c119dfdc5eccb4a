// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tiny programs, one per kind of BPF program killswitch may use. `killswitch
 * doctor` loads each on its own, attaches it, triggers it and reads its hit
 * counter: a kind counts as present only when its program ran.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum {
	PROBE_TRACEPOINT,
	PROBE_RAW_TRACEPOINT,
	PROBE_UPROBE,
	PROBE_SK_MSG,
	PROBE_CGROUP_SKB,
	PROBE_SOCKOPS,
	PROBE_LSM,
	PROBE_FENTRY,
	PROBE_MAX,
};

const volatile __u32 target_tgid = 0;
__u64 hits[PROBE_MAX] = {};

static __always_inline bool is_target(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

SEC("tp/syscalls/sys_enter_getppid")
int probe_tracepoint(void *ctx)
{
	if (is_target())
		__sync_fetch_and_add(&hits[PROBE_TRACEPOINT], 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int probe_raw_tracepoint(void *ctx)
{
	if (is_target())
		__sync_fetch_and_add(&hits[PROBE_RAW_TRACEPOINT], 1);
	return 0;
}

SEC("uprobe")
int probe_uprobe(void *ctx)
{
	if (is_target())
		__sync_fetch_and_add(&hits[PROBE_UPROBE], 1);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, __u64);
	__type(value, __u64);
} probe_socks SEC(".maps");

SEC("sk_msg")
int probe_sk_msg(struct sk_msg_md *msg)
{
	__sync_fetch_and_add(&hits[PROBE_SK_MSG], 1);
	return SK_PASS;
}

SEC("cgroup_skb/egress")
int probe_cgroup_skb(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&hits[PROBE_CGROUP_SKB], 1);
	return 1;
}

SEC("sockops")
int probe_sockops(struct bpf_sock_ops *ops)
{
	__sync_fetch_and_add(&hits[PROBE_SOCKOPS], 1);
	return 1;
}

SEC("lsm/path_unlink")
int BPF_PROG(probe_lsm, const struct path *dir, struct dentry *dentry)
{
	if (is_target())
		__sync_fetch_and_add(&hits[PROBE_LSM], 1);
	return 0;
}

/* The daemon's fentry layer: fmod_ret on the function it hooks first
 * (CONFIG_SECURITY_PATH). The target's first unlink is refused (a non-zero
 * return skips the function and is its result), the next ones pass, so the
 * doctor can remove its file afterwards. */
SEC("fmod_ret/security_path_unlink")
int BPF_PROG(probe_fentry, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret || !is_target())
		return ret;
	if (__sync_fetch_and_add(&hits[PROBE_FENTRY], 1) == 0)
		return -1; /* EPERM */
	return 0;
}

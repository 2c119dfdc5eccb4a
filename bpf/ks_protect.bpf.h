/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The protected objects and their rules, shared by file_guard (syscall
 * tracepoints, libc uprobes) and hook_guard_lsm (LSM hooks, or fentry on the
 * security_* functions): the same maps, handed from one object to the other
 * before they load. */
#ifndef KS_PROTECT_BPF_H
#define KS_PROTECT_BPF_H

#include "ks_helpers.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KS_MAX_PROTECTED_INODES);
	__type(key, struct ks_inode_key);
	__type(value, struct ks_protected);
} protected_inodes SEC(".maps");

/* The directories above each protected root ("/" included), with the rule of
 * the root below them: renaming one away, or mounting over or unmounting it,
 * takes the root with it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KS_MAX_PROTECTED_ANCESTORS);
	__type(key, struct ks_inode_key);
	__type(value, __u32);
} protected_ancestors SEC(".maps");

/* s_dev (the kernel's encoding) -> rule of a protected root on that file
 * system (not killswitch's own, not protect.system's): a remount of any
 * mount of it, whatever directory that mount shows, changes the data's. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u32);
} protected_devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_MAX_RULES);
	__type(key, __u32);
	__type(value, struct ks_rule);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ks_config);
} file_config SEC(".maps");

/* tgid -> CLOCK_BOOTTIME deadline: after a person approved a held operation,
 * the process's matching calls pass until the deadline (the daemon removes
 * the entry when the process exits). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} passes SEC(".maps");

/* mount(2)'s flags. Propagation changes (mount --make-private /, as
 * unshare -m does) move nothing. */
#define KS_MS_REMOUNT 32
#define KS_MS_BIND 4096
#define KS_MS_MOVE 8192
#define KS_MS_PROPAGATION ((1 << 17) | (1 << 18) | (1 << 19) | (1 << 20))

/* MS_REMOUNT without MS_BIND reconfigures the file system itself (its
 * superblock: read-only, its options), for every mount of it in every
 * namespace: a remount (KS_OP_REMOUNT), judged in the caller's own
 * namespace too (ks_ancestor_rule). With MS_BIND it changes that one
 * mount's flags. */
static __always_inline __u32 ks_mount_op(__u64 flags)
{
	return (flags & (KS_MS_REMOUNT | KS_MS_BIND)) == KS_MS_REMOUNT ? KS_OP_REMOUNT : KS_OP_MOUNT;
}

static __always_inline void ks_key_of(struct dentry *d, struct ks_inode_key *k)
{
	struct inode *inode = BPF_CORE_READ(d, d_inode);

	k->ino = BPF_CORE_READ(inode, i_ino);
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
}

/* The rule of the protected root below the directory with @key, if it is
 * one of the directories above a protected root. Mounts count only in the
 * daemon's mount namespace: one a process made for itself (unshare -m, ip
 * netns exec) hides nothing from the database server. A remount
 * (KS_OP_REMOUNT) changes the file system itself, seen from every namespace:
 * it counts in all of them. */
static __always_inline bool ks_ancestor_rule(struct ks_inode_key *key, __u32 op, __u32 *rule_id)
{
	__u32 *rule = bpf_map_lookup_elem(&protected_ancestors, key);

	if (!rule)
		return false;
	if (op == KS_OP_MOUNT || op == KS_OP_UMOUNT) {
		struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		__u32 ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
		if (cfg && cfg->host_mnt_ns && ns != cfg->host_mnt_ns)
			return false;
	}
	*rule_id = *rule;
	return true;
}

/* ---- ancestors of a dentry ---- */

struct ks_anc {
	struct ks_cursor cur;
	struct ks_inode_key key;
	__u32 rule_id;
	__u32 pflags;
	bool found;
};

static long ks_anc_step(__u32 i, void *data)
{
	struct ks_anc *a = data;
	struct dentry *d = a->cur.dentry;
	struct ks_inode_key k = {};

	ks_key_of(d, &k);
	struct ks_protected *p = bpf_map_lookup_elem(&protected_inodes, &k);
	if (p) {
		a->key = k;
		a->rule_id = p->rule_id;
		a->pflags = p->flags;
		a->found = true;
		return 1;
	}
	return ks_cursor_up(&a->cur) == KS_UP_ROOT;
}

/* Is the object at @p, or any directory above it, protected? */
static __always_inline bool ks_inside_protected(struct path *p, struct ks_inode_key *key,
						__u32 *rule_id, __u32 *pflags)
{
	struct ks_anc a = {};

	ks_cursor_init(&a.cur, p);
	bpf_loop(KS_PATH_DEPTH * 2, ks_anc_step, &a, 0);
	if (!a.found)
		return false;
	*key = a.key;
	*rule_id = a.rule_id;
	*pflags = a.pflags;
	return true;
}

/*
 * Why a matching operation of the current task is let through, if it is:
 * KS_FF_PASSED (a person approved it while it was held at an earlier layer),
 * KS_FF_MONITOR (the rule only records) or KS_FF_WINDOW (the session's allow
 * window, which never covers killswitch's own objects, a protected directory
 * above one, unresolved paths or io_uring). 0: the rule's action applies.
 */
static __always_inline __u32 ks_exemption(struct ks_rule *rule, __u32 pflags,
					  struct ks_task_guard *g, __u64 entry_ns)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 *pass = bpf_map_lookup_elem(&passes, &tgid);
	bool windowable = rule && !(rule->flags & KS_RULEF_NO_WINDOW) &&
			  !(pflags & KS_PF_NO_WINDOW);

	if (pass && *pass >= entry_ns)
		return KS_FF_PASSED;
	if (rule && rule->monitor)
		return KS_FF_MONITOR;
	if (windowable && g && ks_window_open(g->session_id))
		return KS_FF_WINDOW;
	return 0;
}

#endif /* KS_PROTECT_BPF_H */

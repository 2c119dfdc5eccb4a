/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The space budget (protect.min_free): what guarded processes write to a file
 * system holding protected data is counted against the free space above the
 * policy's floor (events.h: ks_space_written); a write that would pass it is
 * refused. Shared by the two places that count:
 *  - file_guard's syscall tracepoints (kernels whose file layer they are):
 *    the write system calls' arguments, SIGKILL at the entry of the call;
 *  - hook_guard's file_permission hook (LSM and fentry kernels): the call's
 *    arguments read from the task's registers, EPERM before anything is
 *    written.
 * Counted: write, pwrite64, writev, pwritev, pwritev2, fallocate (unless it
 * punches or collapses), copy_file_range, sendfile and splice into a regular
 * file. Not counted: stores through a shared mapping, AIO (io_uring is
 * refused to guarded processes).
 */
#ifndef KS_SPACE_BPF_H
#define KS_SPACE_BPF_H

#include "ks_protect.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} space_limit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, struct ks_space_written);
} space_written SEC(".maps");

#define KS_O_DIRECT 040000
#define KS_FALLOC_FL_PUNCH_HOLE 0x02
#define KS_FALLOC_FL_COLLAPSE_RANGE 0x08
#define KS_IOV_MAX 1024

/* Where a write counts: a regular file on a file system with a budget (and
 * the budget on). Looked up once, before the write's size is worked out, so
 * that a write to anything else (a pipe, a socket, a terminal) costs no more. */
struct ks_space_target {
	struct file *f;
	__u64 dev;
	__u64 *limit;
	struct ks_space_written *w;
	__u32 rule_id;
};

static __always_inline bool ks_space_target_file(struct file *f, struct ks_space_target *t)
{
	struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});

	if (!f || !cfg || cfg->space_rule >= KS_MAX_RULES)
		return false;
	t->rule_id = cfg->space_rule;
	t->f = f;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	if ((BPF_CORE_READ(inode, i_mode) & KS_S_IFMT) != KS_S_IFREG)
		return false;
	t->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	t->limit = bpf_map_lookup_elem(&space_limit, &t->dev);
	t->w = bpf_map_lookup_elem(&space_written, &t->dev);
	return t->limit && t->w;
}

/*
 * Charges a write of @bytes to @t's budget (added to the count when @count)
 * and says what is left to do: KS_SPACE_FITS while the count stays within
 * the limit, and for a write over it that the rule lets through (monitor,
 * window, approved) once that limit has been recorded (counted, recorded
 * once per limit the daemon sets, not once per write); KS_SPACE_OVER to
 * record it; KS_SPACE_REFUSED to refuse it (a refused write writes nothing:
 * the caller gives its bytes back with ks_space_refund where it counted
 * them). @g: the writer's guard, or NULL to look it up; it and the clock are
 * read only past the limit.
 */
enum { KS_SPACE_FITS, KS_SPACE_OVER, KS_SPACE_REFUSED };

static __always_inline int ks_space_charge(struct ks_space_target *t, __u64 bytes, bool count,
					   struct ks_task_guard *g)
{
	struct ks_space_written *w = t->w;
	__u64 lim = *t->limit;
	__u64 after = count ? __sync_fetch_and_add(&w->bytes, bytes) + bytes : w->bytes + bytes;

	if (after <= lim)
		return KS_SPACE_FITS;
	__u32 rule_id = t->rule_id;
	struct ks_rule *rule = bpf_map_lookup_elem(&rules, &rule_id);
	if (!g)
		g = ks_guard_of_current();
	if (ks_exemption(rule, 0, g, bpf_ktime_get_boot_ns())) {
		if (w->reported_limit == lim)
			return KS_SPACE_FITS;
		w->reported_limit = lim;
		return KS_SPACE_OVER;
	}
	return KS_SPACE_REFUSED;
}

static __always_inline void ks_space_refund(struct ks_space_target *t, __u64 bytes)
{
	__sync_fetch_and_sub(&t->w->bytes, bytes);
}

struct ks_iov_sum {
	const struct iovec *iov;
	__u64 n;
	__u64 bytes;
};

static long ks_iov_step(__u64 i, void *ctx)
{
	struct ks_iov_sum *sum = ctx;
	struct iovec v = {};

	if (i >= sum->n)
		return 1;
	if (bpf_probe_read_user(&v, sizeof(v), &sum->iov[i]))
		return 1;
	sum->bytes += (__u64)v.iov_len;
	return 0;
}

/* What a vectored write asks to write: the sum of its iovecs' lengths. */
static __always_inline __u64 ks_iov_bytes(const struct iovec *iov, __u64 n)
{
	struct ks_iov_sum sum = {.iov = iov, .n = n < KS_IOV_MAX ? n : KS_IOV_MAX};

	bpf_loop(KS_IOV_MAX, ks_iov_step, &sum, 0);
	return sum.bytes;
}

/*
 * What a copy between descriptors can move: no more than the source has from
 * where it reads (cp asks copy_file_range for the largest length there is and
 * stops at the end of the file), or than a pipe holds.
 */
static __always_inline __u64 ks_source_bytes(int fd, const __s64 *uoff, __u64 len)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = ks_file_of_fd(task, fd);

	if (!f)
		return 0; /* EBADF: nothing is copied */
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	umode_t mode = BPF_CORE_READ(inode, i_mode);
	if ((mode & KS_S_IFMT) == KS_S_IFREG) {
		__s64 size = BPF_CORE_READ(inode, i_size);
		__s64 pos = BPF_CORE_READ(f, f_pos);
		if (uoff && bpf_probe_read_user(&pos, sizeof(pos), uoff))
			return len;
		__u64 left = size > pos ? (__u64)(size - pos) : 0;
		return len < left ? len : left;
	}
	if ((mode & KS_S_IFMT) == KS_S_IFIFO) {
		struct pipe_inode_info *pipe = BPF_CORE_READ(f, private_data);
		__u64 most = (__u64)BPF_CORE_READ(pipe, max_usage) * 4096;
		if (most)
			return len < most ? len : most;
	}
	return len;
}

#endif /* KS_SPACE_BPF_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef KS_HELPERS_BPF_H
#define KS_HELPERS_BPF_H

#include "ks_maps.bpf.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define KS_SIGKILL 9
#define KS_SIGSTOP 19

/* An inode's type (i_mode & KS_S_IFMT). */
#define KS_S_IFMT 0170000
#define KS_S_IFREG 0100000
#define KS_S_IFBLK 0060000
#define KS_S_IFIFO 0010000

static __always_inline void ks_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

/* The early exit of every hook: one hash lookup by thread-group id. */
static __always_inline struct ks_task_guard *ks_guard_of_current(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&guarded_tasks, &tgid);
}

/* Is the session's maintenance window open now? The expiry is compared here,
 * in the kernel: a window closes on time even with no daemon. */
static __always_inline bool ks_window_open(__u32 session_id)
{
	struct ks_allow_window *w = bpf_map_lookup_elem(&allow_windows, &session_id);

	return w && bpf_ktime_get_boot_ns() < w->until_boot_ns;
}

/* Reserve a record; a full ring buffer is counted per CPU, never silent. */
static __always_inline void *ks_reserve(__u32 size, __u32 type)
{
	void *rec = bpf_ringbuf_reserve(&events, size, 0);
	if (!rec)
		ks_count(KS_CTR_LOST + type);
	return rec;
}

/* A record that nothing waits on wakes the daemon only when it has caught up
 * with the ring buffer (adaptive): a burst costs one wake-up. */
static __always_inline void ks_submit(void *rec, __u32 type)
{
	bpf_ringbuf_submit(rec, 0);
	ks_count(KS_CTR_EVENTS + type);
}

/* A record that a stopped task waits on, or that asks the daemon to act
 * (escalate, freeze, kill a session), wakes it at once: adaptive wake-up
 * stays silent while an earlier record is unread (one submitted with
 * BPF_RB_NO_WAKEUP, say), and the task would wait for the daemon's tick. */
static __always_inline void ks_submit_now(void *rec, __u32 type)
{
	bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	ks_count(KS_CTR_EVENTS + type);
}

/* ks_submit_now when acted, ks_submit otherwise. */
static __always_inline void ks_submit_if(void *rec, __u32 type, bool acted)
{
	if (acted)
		ks_submit_now(rec, type);
	else
		ks_submit(rec, type);
}

static __always_inline void ks_fill_header(struct ks_event_header *h, __u32 type,
					   struct task_struct *task, __u32 session_id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	h->ts_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->type = type;
	h->flags = 0;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->session_id = session_id;
	h->_pad0 = 0;
	/* Not bpf_get_current_comm(): sk_msg programs may not call it before
	 * Linux 6.x (Debian 12's 6.1 refuses the program). */
	BPF_CORE_READ_STR_INTO(&h->comm, task, comm);
}

/* A position in the dentry tree, and the mount it is seen through. */
struct ks_cursor {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
};

static __always_inline void ks_cursor_init(struct ks_cursor *c, struct path *path)
{
	c->vfsmnt = BPF_CORE_READ(path, mnt);
	c->dentry = BPF_CORE_READ(path, dentry);
	c->mnt = container_of(c->vfsmnt, struct mount, mnt);
}

enum ks_up { KS_UP_PARENT, KS_UP_MOUNT, KS_UP_ROOT };

/*
 * One step towards the root: to the parent directory, or, at the root of a
 * mount, to its mount point in the parent mount (which is the same place, so
 * callers skip it). KS_UP_ROOT at the root of the mount namespace.
 */
static __always_inline enum ks_up ks_cursor_up(struct ks_cursor *c)
{
	struct dentry *d = c->dentry;
	struct vfsmount *vm = c->vfsmnt;
	struct mount *mnt = c->mnt;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);

	if (d == BPF_CORE_READ(vm, mnt_root) || d == parent) {
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

		if (mnt_parent == mnt || !mnt_parent)
			return KS_UP_ROOT;
		c->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		c->mnt = mnt_parent;
		c->vfsmnt = &mnt_parent->mnt;
		return KS_UP_MOUNT;
	}
	c->dentry = parent;
	return KS_UP_PARENT;
}

struct ks_path_walk {
	struct ks_cursor cur;
	char *buf;
	__u32 off;
	bool complete;
};

static long ks_path_step(__u32 i, void *data)
{
	struct ks_path_walk *w = data;
	/* Plain copies first: CO-RE reads must start from kernel types. */
	struct dentry *dentry = w->cur.dentry;
	struct ks_cursor next = w->cur;

	enum ks_up up = ks_cursor_up(&next);
	if (up == KS_UP_ROOT) {
		w->complete = true;
		return 1;
	}
	if (up == KS_UP_PARENT) {
		__u32 off = w->off;
		if (off >= KS_PATH_MAX)
			return 1;
		const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
		long n = bpf_probe_read_kernel_str(w->buf + (off & (KS_PATH_MAX - 1)), KS_NAME_MAX,
						   name);
		if (n <= 0)
			return 1;
		w->off = off + n;
	}
	w->cur = next;
	return 0;
}

/*
 * Writes the components of @path into @buf (KS_PATH_BUF bytes), leaf first,
 * each NUL-terminated, crossing mount points up to the root of the mount
 * namespace. Returns the bytes written; sets *truncated when the walk stopped
 * before the root (too deep or too long). bpf_loop keeps the verifier's work
 * independent of the depth (5.17+).
 */
static __always_inline __u32 ks_path_components(struct path *path, char *buf, bool *truncated)
{
	struct ks_path_walk w = {.buf = buf};

	ks_cursor_init(&w.cur, path);
	bpf_loop(KS_PATH_DEPTH, ks_path_step, &w, 0);
	*truncated = !w.complete;
	return w.off < KS_PATH_BUF ? w.off : KS_PATH_BUF;
}

/* The open file behind descriptor @fd of @task, NULL if there is none. */
static __always_inline struct file *ks_file_of_fd(struct task_struct *task, int fd)
{
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *f = NULL;

	if (fd < 0 || (unsigned int)fd >= max)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#endif /* KS_HELPERS_BPF_H */

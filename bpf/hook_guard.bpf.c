// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The preventive layer: BPF LSM programs on the kernel's security hooks.
 *
 * Where the kernel runs the bpf LSM (CONFIG_BPF_LSM and "bpf" in the active
 * LSM list), a destructive operation of a guarded task on a protected object
 * is refused with EPERM inside the kernel, before it changes anything. The
 * hooks see the real objects (dentry, inode, mount) after the kernel has
 * resolved the path, so no spelling of a path gets past them (symlinks, "..",
 * another mount of the same file system, an fd, a hard link), and they run
 * for every way into the VFS: raw system calls, static binaries, io_uring
 * (its workers are threads of the process that submitted the request).
 *
 * Every program first asks guarded_tasks (one hash lookup); an unguarded task
 * leaves at once with the verdict of the programs before it. An earlier
 * denial (ret != 0) is always kept.
 *
 * Actions: block refuses the call; kill and kill-session refuse it and send
 * SIGKILL; freeze refuses it and sends SIGSTOP (the daemon freezes the
 * session); hold sends SIGSTOP and returns -ERESTARTNOINTR, so the call starts
 * again when the task is let go: a person's approval (a pass) lets that second
 * call through, a denial kills the task before it runs.
 *
 * Reboot and module unloading, which have no hook of their own, are refused
 * where they ask for their capability.
 *
 * The space budget (protect.min_free, ks_space.bpf.h) is counted at
 * file_permission, which every write asks before it writes.
 *
 * Self-protection: signals to the daemon, ptrace of it (and process_vm_*,
 * /proc/<pid>/mem, which the kernel checks the same way), bpf() and kernel
 * module or kexec loads by guarded tasks are refused, and the task killed.
 * Writes to cgroup files (leaving the session, thawing it) are file opens of
 * protected objects: the cgroup2 hierarchy is a self: rule.
 *
 * Built a second time with KS_FENTRY (hook_guard_fentry): the same programs as
 * fmod_ret (BPF_MODIFY_RETURN) trampolines on the kernel's security_*
 * functions, for kernels that run BPF trampolines but not the bpf LSM (bpf
 * left out of lsm=, as on distributions that do not list it). The kernel lets
 * fmod_ret programs onto any function whose name starts with security_; a
 * program that returns non-zero skips the function, and its value is what the
 * function returns to the VFS: the call is refused with EPERM exactly as by
 * the LSM hook, before it changes anything. What differs from the LSM layer:
 * the other LSMs' checks of that one refused call do not run (the call fails
 * anyway). The daemon and doctor use it only after a probe in which it
 * refused a real unlink.
 */
#include "ks_self.bpf.h"
#include "ks_space.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KS_EPERM 1
#define KS_ERESTARTNOINTR 513

#ifdef KS_FENTRY
/* fmod_ret on security_HOOK: the same arguments as the LSM hook, then the
 * verdict of the fmod_ret programs before it (0 at first). */
#define KS_HOOK(hook, ...)                                                                         \
	SEC("fmod_ret/security_" #hook) int BPF_PROG(ks_fe_##hook, __VA_ARGS__, int ret)
#define KS_HOOK_LAYER KS_LAYER_FENTRY
#else
#define KS_HOOK(hook, ...) SEC("lsm/" #hook) int BPF_PROG(ks_lsm_##hook, __VA_ARGS__, int ret)
#define KS_HOOK_LAYER KS_LAYER_LSM
#endif
/* The first lines of every hook: keep an earlier denial; leave unless the
 * task is guarded. */
/* clang-format off */
#define KS_ENTRY(g)                                                                                \
	if (ret)                                                                                   \
		return ret;                                                                        \
	struct ks_task_guard *g = ks_guard_of_current();                                           \
	if (!g)                                                                                    \
		return 0
/* clang-format on */

#define KS_FMODE_WRITE 0x2
#define KS_O_TRUNC 01000
#define KS_PF_IO_WORKER 0x10
#define KS_RENAME_EXCHANGE (1 << 1)
#define KS_PTRACE_MODE_ATTACH 0x02

/* System calls some hooks tell apart, by the caller's registers (the hook
 * is called from inside them and is not told which). */
#define KS_NR_MOUNT_SETATTR 442 /* the same on x86_64 and arm64 */
#define KS_NR_FSPICK 433
#if defined(__TARGET_ARCH_x86)
#define KS_NR_REBOOT 169
#define KS_NR_DELETE_MODULE 176
#define KS_NR_WRITE 1
#define KS_NR_PWRITE64 18
#define KS_NR_WRITEV 20
#define KS_NR_SENDFILE 40
#define KS_NR_SPLICE 275
#define KS_NR_FALLOCATE 285
#define KS_NR_PWRITEV 296
#define KS_NR_COPY_FILE_RANGE 326
#define KS_NR_PWRITEV2 328
#define KS_SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define KS_NR_REBOOT 142
#define KS_NR_DELETE_MODULE 106
#define KS_NR_WRITE 64
#define KS_NR_PWRITE64 68
#define KS_NR_WRITEV 66
#define KS_NR_SENDFILE 71
#define KS_NR_SPLICE 76
#define KS_NR_FALLOCATE 47
#define KS_NR_PWRITEV 70
#define KS_NR_COPY_FILE_RANGE 285
#define KS_NR_PWRITEV2 287
#define KS_SYSCALL_NR(regs) BPF_CORE_READ(regs, syscallno)
#endif

/* The object an operation is about, and the protected inode that covers it. */
struct ks_hook_hit {
	struct path obj;
	struct ks_inode_key key;
	__u32 rule_id;
	__u32 pflags;
	__u64 bytes; /* KS_OP_SPACE_WRITE */
};

static __always_inline bool ks_obj_protected(struct vfsmount *mnt, struct dentry *dentry,
					     struct ks_hook_hit *hit)
{
	hit->obj.mnt = mnt;
	hit->obj.dentry = dentry;
	return ks_inside_protected(&hit->obj, &hit->key, &hit->rule_id, &hit->pflags);
}

/*
 * Decides and records. Returns the hook's verdict: 0 (let it happen), -EPERM
 * or -ERESTARTNOINTR (held: the call starts again once the task is let go).
 */
static __always_inline int ks_hook_act(struct ks_task_guard *g, struct ks_hook_hit *hit, __u32 op,
				       __u32 open_flags, __u32 match)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	__u32 rule_id = hit->rule_id < KS_MAX_RULES ? hit->rule_id : 0;
	struct ks_rule *rule = bpf_map_lookup_elem(&rules, &rule_id);
	__u32 action = rule ? rule->action : KS_ACT_BLOCK;
	__u32 flags = ks_exemption(rule, hit->pflags, g, entry_ns);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	bool io_worker = BPF_CORE_READ(task, flags) & KS_PF_IO_WORKER;
	int verdict = 0;

	ks_count(KS_CTR_FILE_MATCH);
	if (flags || action == KS_ACT_AUDIT) {
		/* passed, monitored, in a window, or audit only */
	} else if (action == KS_ACT_HOLD && !io_worker) {
		/* An io_uring worker cannot be stopped and its request not
		 * restarted: there a hold refuses, below. */
		bpf_send_signal(KS_SIGSTOP);
		flags |= KS_FF_STOPPED;
		verdict = -KS_ERESTARTNOINTR;
	} else {
		verdict = -KS_EPERM;
		flags |= KS_FF_DENIED;
		if (action == KS_ACT_KILL || action == KS_ACT_KILL_SESSION) {
			bpf_send_signal(KS_SIGKILL);
			flags |= KS_FF_KILLED;
		} else if (action == KS_ACT_FREEZE) {
			bpf_send_signal(KS_SIGSTOP);
			flags |= KS_FF_STOPPED;
		}
	}
	__u64 stop_ns = bpf_ktime_get_boot_ns();

	struct ks_file_event *ev = ks_reserve(sizeof(*ev), KS_EVENT_FILE);
	if (!ev)
		return verdict;
	bool trunc = false;

	ks_fill_header(&ev->hdr, KS_EVENT_FILE, task, g->session_id);
	ev->hdr.ts_ns = entry_ns;
	ev->stop_ns = stop_ns;
	ev->op = op;
	ev->layer = KS_HOOK_LAYER;
	ev->match = match;
	ev->action = action;
	ev->rule_id = rule_id;
	ev->dfd = -1;
	ev->open_flags = open_flags;
	ev->dev = hit->key.dev;
	ev->ino = hit->key.ino;
	ev->path[0] = 0;
	ev->path_len = 0;
	ev->bytes = hit->bytes;
	/* The object's own path, leaf first, in the place of a start directory. */
	ev->cwd_len = ks_path_components(&hit->obj, ev->cwd, &trunc);
	flags |= KS_FF_OBJECT;
	if (trunc)
		flags |= KS_FF_PATH_TRUNC;
	if (io_worker)
		flags |= KS_FF_IO_WORKER;
	if (!hit->obj.mnt)
		flags |= KS_FF_FS_PATH;
	ev->flags = flags;
	ks_submit_if(ev, KS_EVENT_FILE, verdict != 0);
	return verdict;
}

static __always_inline int ks_check(struct ks_task_guard *g, struct vfsmount *mnt,
				    struct dentry *dentry, __u32 op, __u32 open_flags)
{
	struct ks_hook_hit hit = {};

	if (!ks_obj_protected(mnt, dentry, &hit))
		return 0;
	return ks_hook_act(g, &hit, op, open_flags, KS_MATCH_INODE);
}

/* Moving away, mounting over or unmounting a directory above a protected
 * root takes the root with it: as destructive as doing it to the root. */
static __always_inline int ks_check_ancestor(struct ks_task_guard *g, struct vfsmount *mnt,
					     struct dentry *dentry, __u32 op)
{
	struct ks_hook_hit hit = {};

	ks_key_of(dentry, &hit.key);
	if (!ks_ancestor_rule(&hit.key, op, &hit.rule_id))
		return 0;
	hit.obj.mnt = mnt;
	hit.obj.dentry = dentry;
	return ks_hook_act(g, &hit, op, 0, KS_MATCH_ANCESTOR);
}

/* ---- files ---- */

KS_HOOK(path_unlink, const struct path *dir, struct dentry *dentry)
{
	KS_ENTRY(g);
	/* The daemon's start-up probe: its unlinks are refused whatever the
	 * object, which proves the hook runs here and its verdict holds. */
	if (g->session_id == KS_PROBE_SESSION)
		return -KS_EPERM;
	return ks_check(g, BPF_CORE_READ(dir, mnt), dentry, KS_OP_UNLINK, 0);
}

KS_HOOK(path_rmdir, const struct path *dir, struct dentry *dentry)
{
	KS_ENTRY(g);
	return ks_check(g, BPF_CORE_READ(dir, mnt), dentry, KS_OP_RMDIR, 0);
}

KS_HOOK(path_rename, const struct path *old_dir, struct dentry *old_dentry,
	const struct path *new_dir, struct dentry *new_dentry, unsigned int flags)
{
	KS_ENTRY(g);
	struct vfsmount *mnt = BPF_CORE_READ(old_dir, mnt);
	bool exchange = flags & KS_RENAME_EXCHANGE;
	int v = ks_check(g, mnt, old_dentry, KS_OP_RENAME_FROM, 0);
	if (!v)
		v = ks_check_ancestor(g, mnt, old_dentry, KS_OP_RENAME_FROM);
	if (!v && exchange)
		v = ks_check_ancestor(g, mnt, new_dentry, KS_OP_RENAME_FROM);
	if (v)
		return v;
	/* Onto a protected object, or a new name inside a protected tree; an
	 * exchange moves the target away as well. */
	return ks_check(g, mnt, new_dentry, exchange ? KS_OP_RENAME_FROM : KS_OP_RENAME_ONTO, 0);
}

/* A new name for a protected file outside its tree, or a new name inside a
 * protected tree (a cron entry, an enabled unit): new_dentry is negative, its
 * ancestors say. */
KS_HOOK(path_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry)
{
	KS_ENTRY(g);
	struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);
	int v = ks_check(g, mnt, old_dentry, KS_OP_LINK, 0);
	if (v)
		return v;
	return ks_check(g, mnt, new_dentry, KS_OP_CREATE_IN, 0);
}

/* A new file in a protected tree (open with O_CREAT, mknod): refused before
 * it exists, where file_open would only refuse the empty file it made. */
KS_HOOK(path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode, unsigned int dev)
{
	KS_ENTRY(g);
	return ks_check(g, BPF_CORE_READ(dir, mnt), dentry, KS_OP_CREATE_IN, 0);
}

KS_HOOK(path_symlink, const struct path *dir, struct dentry *dentry, const char *old_name)
{
	KS_ENTRY(g);
	return ks_check(g, BPF_CORE_READ(dir, mnt), dentry, KS_OP_CREATE_IN, 0);
}

KS_HOOK(path_truncate, const struct path *path)
{
	KS_ENTRY(g);
	return ks_check(g, BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry), KS_OP_TRUNCATE,
			0);
}

/* ftruncate() and open(O_TRUNC) from Linux 6.2 (before: path_truncate). */
KS_HOOK(file_truncate, struct file *file)
{
	KS_ENTRY(g);
	return ks_check(g, BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry),
			KS_OP_TRUNCATE, 0);
}

/* A block device opened for writing: whatever file system it holds (the
 * protected data's among them) can be overwritten, discarded or zeroed
 * through that fd (write, BLKDISCARD, BLKZEROOUT all need it). By policy
 * (protect.block_devices), any block device, whatever its name or node. */

static __always_inline int ks_check_block_device(struct ks_task_guard *g, struct file *file,
						 __u32 f_flags)
{
	struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});
	struct ks_hook_hit hit = {};

	if (!cfg || cfg->block_device_rule >= KS_MAX_RULES)
		return 0;
	hit.rule_id = cfg->block_device_rule;
	hit.obj.mnt = BPF_CORE_READ(file, f_path.mnt);
	hit.obj.dentry = BPF_CORE_READ(file, f_path.dentry);
	hit.key.dev = BPF_CORE_READ(file, f_inode, i_rdev);
	hit.key.ino = BPF_CORE_READ(file, f_inode, i_ino);
	return ks_hook_act(g, &hit, KS_OP_DEVICE_WRITE, f_flags, KS_MATCH_BLOCK_DEVICE);
}

/* Opening a protected file for writing, or with O_TRUNC (any write to it
 * needs such an fd: write, pwrite, mmap, fallocate, copy_file_range...). */
KS_HOOK(file_open, struct file *file)
{
	KS_ENTRY(g);
	unsigned int f_flags = BPF_CORE_READ(file, f_flags);
	unsigned int f_mode = BPF_CORE_READ(file, f_mode);
	if (!(f_mode & KS_FMODE_WRITE) && !(f_flags & KS_O_TRUNC))
		return 0;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & KS_S_IFMT) == KS_S_IFBLK)
		return ks_check_block_device(g, file, f_flags);
	return ks_check(g, BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry),
			f_flags & KS_O_TRUNC ? KS_OP_OPEN_TRUNC : KS_OP_OPEN_WRITE, f_flags);
}

/* ---- space (protect.min_free) ---- */

/*
 * Every read and write asks file_permission (rw_verify_area), and so do
 * fallocate, copy_file_range, sendfile and splice for the file they write;
 * the hook is not given the size. It is read from the system call the task
 * is in (its registers), and counted once per call: a copy may ask more than
 * once (sendfile, splice per chunk, copy_file_range falling back to splice).
 * A call is known by its arguments, the writer's file position and the
 * task's count of write calls (syscw, which every write call but splice and
 * fallocate raises): a second ask of the same call is not counted, a second
 * call with the same arguments is (its position or syscw moved), unless it
 * writes to the same place (a pwrite or fallocate again: no new space).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);   /* pid_tgid */
	__type(value, __u64); /* the call last counted */
} space_calls SEC(".maps");

#define KS_MAY_WRITE 0x2

static __always_inline __u64 ks_mix(__u64 h, __u64 v)
{
	return (h ^ v) * 0x100000001b3ULL;
}

#ifdef KS_SYSCALL_NR
/* What the system call this task is in asks to write to @file; 0 for a call
 * that is not counted (or not sized: AIO) and for a second ask of the same
 * call. */
static __always_inline __u64 ks_call_write_bytes(struct file *file)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	long nr = KS_SYSCALL_NR(regs);
	__u64 a1 = PT_REGS_PARM1_CORE_SYSCALL(regs);
	__u64 a2 = PT_REGS_PARM2_CORE_SYSCALL(regs);
	__u64 a3 = PT_REGS_PARM3_CORE_SYSCALL(regs);
	__u64 a4 = PT_REGS_PARM4_CORE_SYSCALL(regs);
	__u64 a5 = PT_REGS_PARM5_CORE_SYSCALL(regs);
	const __s64 *out_off = NULL;
	__u64 bytes = 0;

	switch (nr) {
	case KS_NR_WRITE:
	case KS_NR_PWRITE64:
		bytes = a3;
		break;
	case KS_NR_WRITEV:
	case KS_NR_PWRITEV:
	case KS_NR_PWRITEV2:
		bytes = ks_iov_bytes((const struct iovec *)a2, a3);
		break;
	case KS_NR_FALLOCATE:
		if (!(a2 & (KS_FALLOC_FL_PUNCH_HOLE | KS_FALLOC_FL_COLLAPSE_RANGE)))
			bytes = a4;
		break;
	case KS_NR_COPY_FILE_RANGE:
		bytes = ks_source_bytes((int)a1, (const __s64 *)a2, a5);
		out_off = (const __s64 *)a4;
		break;
	case KS_NR_SENDFILE:
		bytes = ks_source_bytes((int)a2, (const __s64 *)a3, a4);
		break;
	case KS_NR_SPLICE:
		bytes = ks_source_bytes((int)a1, (const __s64 *)a2, a5);
		out_off = (const __s64 *)a4;
		break;
	}
	if (!bytes)
		return 0;
	__s64 pos = BPF_CORE_READ(file, f_pos);
	if (out_off)
		bpf_probe_read_user(&pos, sizeof(pos), out_off);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 syscw = 0;
	if (bpf_core_field_exists(task->ioac.syscw))
		syscw = BPF_CORE_READ(task, ioac.syscw);
	__u64 call = ks_mix(ks_mix(ks_mix(ks_mix(ks_mix(ks_mix(0xcbf29ce484222325ULL, nr), a1), a2),
					  a3 ^ (a4 << 1) ^ (a5 << 2)),
				   (__u64)pos),
			    syscw);
	__u64 tid = bpf_get_current_pid_tgid();
	__u64 *last = bpf_map_lookup_elem(&space_calls, &tid);
	if (last && *last == call)
		return 0;
	bpf_map_update_elem(&space_calls, &tid, &call, BPF_ANY);
	return bytes;
}

/* A write by a guarded task that would bring a file system holding protected
 * data under protect.min_free is refused before it writes anything (op
 * write, match low-space). Reads leave at the first test. */
KS_HOOK(file_permission, struct file *file, int mask)
{
	if (ret || !(mask & KS_MAY_WRITE))
		return ret;
	struct ks_task_guard *g = ks_guard_of_current();
	if (!g)
		return 0;
	struct ks_space_target t = {};
	if (!ks_space_target_file(file, &t))
		return 0;
	__u64 bytes = ks_call_write_bytes(file);
	if (!bytes)
		return 0;
	int over = ks_space_charge(&t, bytes, true, g);
	if (over == KS_SPACE_FITS)
		return 0;
	if (over == KS_SPACE_REFUSED) {
		ks_space_refund(&t, bytes);
		/* The same call made again (a refused write leaves syscw and the
		 * position as they were) is counted again, not taken for this one. */
		__u64 tid = bpf_get_current_pid_tgid();
		bpf_map_delete_elem(&space_calls, &tid);
	}
	struct ks_hook_hit hit = {.rule_id = t.rule_id, .bytes = bytes};
	hit.obj.mnt = BPF_CORE_READ(file, f_path.mnt);
	hit.obj.dentry = BPF_CORE_READ(file, f_path.dentry);
	hit.key.dev = t.dev;
	hit.key.ino = BPF_CORE_READ(file, f_inode, i_ino);
	return ks_hook_act(g, &hit, KS_OP_SPACE_WRITE, BPF_CORE_READ(file, f_flags),
			   KS_MATCH_LOW_SPACE);
}
#endif

/* ---- metadata: the owner must still be able to read and write its data ---- */


/* The xattr and ACL hooks are given a dentry without its mount: the walk up
 * from it (ks_check with no mount) stays in its own file system, so a
 * protected root on another file system above a mount point is not seen from
 * below it (the path hooks, which have the mount, do see it), and the
 * record's path runs from that file system's root (KS_FF_FS_PATH). */
static __always_inline int ks_check_dentry(struct ks_task_guard *g, struct dentry *dentry,
					   __u32 op)
{
	return ks_check(g, NULL, dentry, op, 0);
}

#define KS_S_IALLUGO 07777
#define KS_INVALID_ID 0xffffffffu

/* chmod: a mode that is already the object's own changes nothing (chmod -R
 * u+rw over data that has it); any other change is judged. */
KS_HOOK(path_chmod, const struct path *path, umode_t mode)
{
	KS_ENTRY(g);
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	umode_t now = BPF_CORE_READ(dentry, d_inode, i_mode);
	if ((now & KS_S_IALLUGO) == (mode & KS_S_IALLUGO))
		return 0;
	return ks_check(g, BPF_CORE_READ(path, mnt), dentry, KS_OP_CHMOD, 0);
}

/* chown: kuid_t and kgid_t are one 32-bit value each (-1: unchanged). */
KS_HOOK(path_chown, const struct path *path, unsigned int uid, unsigned int gid)
{
	KS_ENTRY(g);
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	unsigned int now_uid = BPF_CORE_READ(inode, i_uid.val);
	unsigned int now_gid = BPF_CORE_READ(inode, i_gid.val);
	if ((uid == KS_INVALID_ID || uid == now_uid) && (gid == KS_INVALID_ID || gid == now_gid))
		return 0;
	return ks_check(g, BPF_CORE_READ(path, mnt), dentry, KS_OP_CHOWN, 0);
}

/* Extended attributes: ACLs (system.posix_acl_*, through here before 6.2),
 * security labels, file capabilities, user attributes. */
KS_HOOK(inode_setxattr, void *idmap, struct dentry *dentry, const char *name, const void *value,
	size_t size, int flags)
{
	KS_ENTRY(g);
	return ks_check_dentry(g, dentry, KS_OP_XATTR);
}

KS_HOOK(inode_removexattr, void *idmap, struct dentry *dentry, const char *name)
{
	KS_ENTRY(g);
	return ks_check_dentry(g, dentry, KS_OP_XATTR);
}

/* ACLs from 6.2 (setfacl, setxattr of system.posix_acl_*). */
KS_HOOK(inode_set_acl, void *idmap, struct dentry *dentry, const char *acl_name, void *kacl)
{
	KS_ENTRY(g);
	return ks_check_dentry(g, dentry, KS_OP_XATTR);
}

KS_HOOK(inode_remove_acl, void *idmap, struct dentry *dentry, const char *acl_name)
{
	KS_ENTRY(g);
	return ks_check_dentry(g, dentry, KS_OP_XATTR);
}

/* chattr: FS_IOC_SETFLAGS (+i makes the file unwritable to its owner, +a
 * append-only) and FS_IOC_FSSETXATTR (xfs_io chattr). */
#define KS_FS_IOC_SETFLAGS 0x40086602u
#define KS_FS_IOC32_SETFLAGS 0x40046602u
#define KS_FS_IOC_FSSETXATTR 0x401c5820u

KS_HOOK(file_ioctl, struct file *file, unsigned int cmd, unsigned long arg)
{
	/* Every ioctl of every process comes here: the command first, before
	 * any map lookup (an earlier verdict is kept). */
	if (cmd != KS_FS_IOC_SETFLAGS && cmd != KS_FS_IOC32_SETFLAGS && cmd != KS_FS_IOC_FSSETXATTR)
		return ret;
	KS_ENTRY(g);
	return ks_check(g, BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry),
			KS_OP_FILE_FLAGS, 0);
}

/* A mount over protected data hides it (and what is written then goes
 * elsewhere). */

/* A change of mounts whose object the hook cannot resolve (@mnt/@dentry:
 * what the record shows): in the daemon's mount namespace refused to a
 * guarded process as unresolved (protect.unresolved); in a namespace of the
 * process's own it changes nothing the database server sees.
 * mount(2) with MS_MOVE is one: the hook has the target, and the mount to
 * move only as the text of a path (resolved after the hook); moving the file
 * system that holds protected data, or one above it, away leaves the data's
 * path empty. (move_mount(2) has a hook with both paths: below.)
 * A remount (KS_OP_REMOUNT) changes the file system itself, which every
 * namespace sees: refused in any. */
static __always_inline int ks_refuse_unresolved_mount(struct ks_task_guard *g,
						      struct vfsmount *mnt, struct dentry *dentry,
						      __u32 op)
{
	struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ks_hook_hit hit = {};

	if (!cfg || cfg->unresolved_rule >= KS_MAX_RULES)
		return 0;
	if (op != KS_OP_REMOUNT &&
	    (!cfg->host_mnt_ns || BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum) != cfg->host_mnt_ns))
		return 0;
	hit.rule_id = cfg->unresolved_rule;
	hit.obj.mnt = mnt;
	hit.obj.dentry = dentry;
	ks_key_of(dentry, &hit.key);
	return ks_hook_act(g, &hit, op, 0, KS_MATCH_UNRESOLVED);
}

/* A remount through any mount of the file system that holds protected data
 * (a bind mount of another of its directories elsewhere included): the file
 * system is one, so is its read-only flag. */
static __always_inline int ks_check_data_fs(struct ks_task_guard *g, struct vfsmount *mnt,
					    struct dentry *dentry)
{
	struct ks_hook_hit hit = {};
	__u64 dev = BPF_CORE_READ(mnt, mnt_sb, s_dev);
	__u32 *rule = bpf_map_lookup_elem(&protected_devs, &dev);

	if (!rule)
		return 0;
	hit.rule_id = *rule;
	hit.obj.mnt = mnt;
	hit.obj.dentry = dentry;
	ks_key_of(dentry, &hit.key);
	return ks_hook_act(g, &hit, KS_OP_REMOUNT, 0, KS_MATCH_DATA_FS);
}

KS_HOOK(sb_mount, const char *dev_name, const struct path *path, const char *type,
	unsigned long flags, void *data)
{
	KS_ENTRY(g);
	struct vfsmount *mnt = BPF_CORE_READ(path, mnt);
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	__u32 op = ks_mount_op(flags);
	int v = ks_check(g, mnt, dentry, op, 0);
	if (!v && !(flags & KS_MS_PROPAGATION))
		v = ks_check_ancestor(g, mnt, dentry, op);
	if (!v && op == KS_OP_REMOUNT)
		v = ks_check_data_fs(g, mnt, dentry);
	if (!v && (flags & KS_MS_MOVE))
		v = ks_refuse_unresolved_mount(g, mnt, dentry, KS_OP_MOUNT_SOURCE);
	return v;
}

/* The mount moved (from_path) leaves where it was, as if unmounted there:
 * protected data, or a file system above it (in the daemon's mount
 * namespace); then where it lands. */
KS_HOOK(move_mount, const struct path *from_path, const struct path *to_path)
{
	KS_ENTRY(g);
	struct vfsmount *from_mnt = BPF_CORE_READ(from_path, mnt);
	struct dentry *from = BPF_CORE_READ(from_path, dentry);
	int v = ks_check(g, from_mnt, from, KS_OP_UMOUNT, 0);
	if (!v)
		v = ks_check_ancestor(g, from_mnt, from, KS_OP_UMOUNT);
	if (v)
		return v;
	struct vfsmount *mnt = BPF_CORE_READ(to_path, mnt);
	struct dentry *dentry = BPF_CORE_READ(to_path, dentry);
	v = ks_check(g, mnt, dentry, KS_OP_MOUNT, 0);
	if (!v)
		v = ks_check_ancestor(g, mnt, dentry, KS_OP_MOUNT);
	return v;
}

/* Unmounting a file system that holds protected data (or one mounted inside
 * a protected tree, or above one). */
KS_HOOK(sb_umount, struct vfsmount *mnt, int flags)
{
	KS_ENTRY(g);
	struct dentry *root = BPF_CORE_READ(mnt, mnt_root);
	int v = ks_check(g, mnt, root, KS_OP_UMOUNT, 0);
	if (!v)
		v = ks_check_ancestor(g, mnt, root, KS_OP_UMOUNT);
	return v;
}

/* ---- self-protection ---- */

static __always_inline int ks_refuse_tamper(struct ks_task_guard *g, __u32 what, __s64 target,
					    __u64 arg)
{
	ks_tamper(g, what, KS_HOOK_LAYER, target, arg, 0);
	return -KS_EPERM;
}

/* Reach: a process outside the session. The call is refused and the caller
 * goes on (the refusal is recorded and explained). */
static __always_inline int ks_refuse_reach(struct ks_task_guard *g, __u32 what, __s64 target,
					   __u64 arg)
{
	ks_count(KS_CTR_TAMPER);
	ks_tamper_record(g, what, KS_HOOK_LAYER, target, arg, 0, KS_TF_REFUSED);
	return -KS_EPERM;
}

/* Every signal a task sends to another goes through here: kill, tkill,
 * tgkill, sigqueue, pidfd_send_signal, kill(-1) and process groups (once per
 * target). */
KS_HOOK(task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	const struct cred *cred)
{
	KS_ENTRY(g);
	if (sig == 0)
		return 0;
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (ks_protected(tgid))
		return ks_refuse_tamper(g, KS_TAMPER_SIGNAL, tgid, sig);
	if (ks_reach_task(g, p) == KS_REACH_OUTSIDE)
		return ks_refuse_reach(g, KS_TAMPER_REACH_SIGNAL, tgid, sig);
	return 0;
}

/* ptrace attach and the accesses the kernel checks like one: process_vm_writev
 * and _readv, /proc/<pid>/mem, pidfd_getfd. Reading /proc/<pid>/stat and the
 * like (PTRACE_MODE_READ, what ps does) is not concerned. */
KS_HOOK(ptrace_access_check, struct task_struct *child, unsigned int mode)
{
	KS_ENTRY(g);
	if (!(mode & KS_PTRACE_MODE_ATTACH))
		return 0;
	__u32 tgid = BPF_CORE_READ(child, tgid);
	if (ks_protected(tgid))
		return ks_refuse_tamper(g, KS_TAMPER_PTRACE, tgid, mode);
	if (ks_reach_task(g, child) == KS_REACH_OUTSIDE)
		return ks_refuse_reach(g, KS_TAMPER_REACH_PTRACE, tgid, mode);
	return 0;
}

/* Any bpf() command: detaching, replacing or reading programs and maps all
 * start with one. */
KS_HOOK(bpf, int cmd, union bpf_attr *attr, unsigned int size)
{
	KS_ENTRY(g);
	return ks_refuse_tamper(g, KS_TAMPER_BPF, 0, cmd);
}

/* Kernel modules and kexec images a guarded task loads (finit_module,
 * kexec_file_load). Firmware and other reads the kernel does on its own
 * account are not concerned. */
KS_HOOK(kernel_read_file, struct file *file, enum kernel_read_file_id id, bool contents)
{
	KS_ENTRY(g);
	if (id == bpf_core_enum_value(enum kernel_read_file_id, READING_MODULE))
		return ks_refuse_tamper(g, KS_TAMPER_MODULE, 0, id);
	if (id == bpf_core_enum_value(enum kernel_read_file_id, READING_KEXEC_IMAGE) ||
	    id == bpf_core_enum_value(enum kernel_read_file_id, READING_KEXEC_INITRAMFS))
		return ks_refuse_tamper(g, KS_TAMPER_KEXEC, 0, id);
	return 0;
}

/* The same from a buffer: init_module, kexec_load. */
KS_HOOK(kernel_load_data, enum kernel_load_data_id id, bool contents)
{
	KS_ENTRY(g);
	if (id == bpf_core_enum_value(enum kernel_load_data_id, LOADING_MODULE))
		return ks_refuse_tamper(g, KS_TAMPER_MODULE, 0, id);
	if (id == bpf_core_enum_value(enum kernel_load_data_id, LOADING_KEXEC_IMAGE))
		return ks_refuse_tamper(g, KS_TAMPER_KEXEC, 0, id);
	return 0;
}

/* Reboot and module unloading have no hook of their own, but both need a
 * capability (CAP_SYS_BOOT, CAP_SYS_MODULE): refused when the capability is
 * asked for by those system calls. Other checks of the same capabilities
 * (the kernel loading a module for a device name...) are not concerned. */
#define KS_CAP_SYS_MODULE 16
#define KS_CAP_SYS_ADMIN 21
#define KS_CAP_SYS_BOOT 22

/* A mount change asked for before its path is resolved: refused as
 * unresolved, recorded with the caller's working directory. */
static __always_inline int ks_refuse_unresolved_at_cwd(struct ks_task_guard *g, __u32 op)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return ks_refuse_unresolved_mount(g, BPF_CORE_READ(task, fs, pwd.mnt),
					  BPF_CORE_READ(task, fs, pwd.dentry), op);
}

/* mount_setattr(2) (read-only, no-exec, idmapped: what a remount does to one
 * mount; util-linux's mount uses it from 2.39) has no hook, but it asks for
 * CAP_SYS_ADMIN (may_mount) before it changes anything. The path is not
 * resolved yet: in the daemon's mount namespace a change of attributes by a
 * guarded process is refused as unresolved (protect.unresolved), recorded
 * with the caller's working directory; a change of propagation alone, and
 * any change in a namespace of the caller's own, goes on. */
static __always_inline int ks_check_mount_setattr(struct ks_task_guard *g, struct pt_regs *regs)
{
	const void *uattr = (const void *)PT_REGS_PARM4_CORE_SYSCALL(regs);
	__u64 set_clr[2] = {};

	if (bpf_probe_read_user(set_clr, sizeof(set_clr), uattr) == 0 && !set_clr[0] && !set_clr[1])
		return 0;
	return ks_refuse_unresolved_at_cwd(g, KS_OP_MOUNT);
}

KS_HOOK(capable, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	KS_ENTRY(g);
#ifdef KS_NR_REBOOT
	if (cap != KS_CAP_SYS_BOOT && cap != KS_CAP_SYS_MODULE && cap != KS_CAP_SYS_ADMIN)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	long nr = KS_SYSCALL_NR(regs);
	if (cap == KS_CAP_SYS_BOOT && nr == KS_NR_REBOOT)
		return ks_refuse_tamper(g, KS_TAMPER_REBOOT, 0, 0);
	if (cap == KS_CAP_SYS_MODULE && nr == KS_NR_DELETE_MODULE)
		return ks_refuse_tamper(g, KS_TAMPER_MODULE, 0, 0);
	if (cap == KS_CAP_SYS_ADMIN && nr == KS_NR_MOUNT_SETATTR)
		return ks_check_mount_setattr(g, regs);
	/* fspick(2) picks a file system to reconfigure (fsconfig's
	 * FSCONFIG_CMD_RECONFIGURE: a remount, read-only...); no hook sees
	 * that remount, and the pick asks for CAP_SYS_ADMIN before it resolves
	 * its path: refused as unresolved, as mount_setattr is, and in every
	 * namespace (the file system is the same in all of them). */
	if (cap == KS_CAP_SYS_ADMIN && nr == KS_NR_FSPICK)
		return ks_refuse_unresolved_at_cwd(g, KS_OP_REMOUNT);
#endif
	return 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Protection of data on disk from guarded processes, in three layers:
 *
 *  - exec: a guarded task that has just exec'd a watched tool (rm, find, dd,
 *    dropdb...) is sent SIGSTOP at the exit of execve; it stops before the
 *    new image runs an instruction, and the daemon applies the argv rules
 *    (every kernel with syscall tracepoints).
 *  - uprobe: libc's file functions (unlink, rename, truncate, open...) are
 *    checked at entry; a match kills or stops the task before the syscall.
 *    Only callers that go through the shared libc.
 *  - tracepoint: the syscalls themselves, as the catch-all; the signal is
 *    acted on when the syscall returns, so at most that one call completes.
 *
 * Objects are matched by device and inode, never by path text: the path
 * argument is walked component by component from the real start directory
 * (root, cwd or dirfd) through an edge graph user space publishes from "/"
 * down to each protected root, and the start directory's ancestors are
 * checked against the protected inodes.
 */
#include "ks_space.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KS_AT_FDCWD -100
#define KS_O_ACCMODE 3
#define KS_O_TRUNC 01000
#define KS_WALK_STACK 8
#define KS_WALK_NAMES 8
#define KS_PROC_SUPER_MAGIC 0x9fa0

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ks_edge_key);
	__type(value, struct ks_inode_key);
} protected_edges SEC(".maps");

/* Basenames of tools whose execs are held for the argv rules. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[KS_WATCH_NAME_LEN]);
	__type(value, __u32);
} exec_watch SEC(".maps");

struct ks_scratch {
	char path[KS_FILE_PATH_MAX];
	char name[KS_FILENAME_MAX];
	struct ks_inode_key stack[KS_WALK_STACK];
	__u64 stack_real[KS_WALK_STACK];
	/* The walk's first names as the path gives them (their hash, and their
	 * value when all digits, else -1): for the magic links of /proc. */
	__u64 names[KS_WALK_NAMES];
	__s64 nums[KS_WALK_NAMES];
	struct ks_inode_key dir;  /* keys for ks_magic_check's lookups */
	struct ks_edge_key edge;
	/* KS_FF_ASK: what the record carries besides the path (here, not in
	 * struct ks_hit: Linux 6.1 counts the stack of the walk's callers). */
	struct ks_meta_args meta;
	__u64 upath;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ks_scratch);
} scratch SEC(".maps");

static __always_inline struct ks_scratch *ks_scratch_get(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

/* ---- walking a path argument through the edge graph ---- */

struct ks_walk {
	struct ks_scratch *s;
	struct ks_inode_key cur;
	struct dentry *real; /* the real dentry of cur, while known */
	struct vfsmount *real_vm;
	__u64 hash;
	__u32 len;
	__u32 comp_len;
	__u32 off_depth; /* components walked below a node that is off the graph */
	__u32 sp;
	__u32 result;
	__u32 rule_id;
	__u32 pflags;
	char c0, c1;
	/* How deep below the start the path's names go ("." skipped, ".."
	 * back up), and the value of the current one when all digits (-1
	 * otherwise); the first names are kept in the scratch (ks_magic_fd). */
	__u32 depth;
	__s64 num;
};

static __always_inline void ks_walk_up(struct ks_walk *w)
{
	if (w->off_depth) {
		w->off_depth--;
		return;
	}
	if (w->sp > 0) {
		w->sp--;
		__u32 i = w->sp & (KS_WALK_STACK - 1);
		w->cur = w->s->stack[i];
		w->real = (struct dentry *)w->s->stack_real[i];
		return;
	}
	if (!w->real || !w->real_vm)
		return;
	/* ".." from the root of a mount goes to the parent of its mount point;
	 * "/.." is "/". */
	struct ks_cursor c = {
		.dentry = w->real,
		.vfsmnt = w->real_vm,
		.mnt = container_of(w->real_vm, struct mount, mnt),
	};
	enum ks_up up = ks_cursor_up(&c);
	if (up == KS_UP_MOUNT)
		up = ks_cursor_up(&c);
	if (up == KS_UP_ROOT)
		return;
	w->real = c.dentry;
	w->real_vm = c.vfsmnt;
	ks_key_of(w->real, &w->cur);
}

static long ks_walk_step(__u32 i, void *data)
{
	struct ks_walk *w = data;
	char c = 0;

	if (i < w->len && i < KS_FILE_PATH_MAX)
		c = w->s->path[i & (KS_FILE_PATH_MAX - 1)];
	if (c != '/' && c != 0) {
		if (w->comp_len == 0) {
			w->c0 = c;
			w->num = 0;
		} else if (w->comp_len == 1) {
			w->c1 = c;
		}
		if (c >= '0' && c <= '9' && w->num >= 0 && w->comp_len < 10)
			w->num = w->num * 10 + (c - '0');
		else
			w->num = -1;
		w->hash = (w->hash ^ (__u8)c) * KS_FNV_PRIME;
		w->comp_len++;
		return 0;
	}

	__u32 n = w->comp_len;
	__u64 h = w->hash;

	w->comp_len = 0;
	w->hash = KS_FNV_OFFSET;
	if (n == 0 || (n == 1 && w->c0 == '.'))
		return c == 0;
	if (n == 2 && w->c0 == '.' && w->c1 == '.') {
		if (w->depth)
			w->depth--;
		ks_walk_up(w);
		return c == 0;
	}
	if (w->depth < KS_WALK_NAMES) {
		w->s->names[w->depth & (KS_WALK_NAMES - 1)] = h;
		w->s->nums[w->depth & (KS_WALK_NAMES - 1)] = w->num;
	}
	w->depth++;
	if (w->off_depth) {
		w->off_depth++;
		return c == 0;
	}
	struct ks_edge_key ek = {.dev = w->cur.dev, .ino = w->cur.ino, .name_hash = h};
	struct ks_inode_key *child = bpf_map_lookup_elem(&protected_edges, &ek);
	if (!child) {
		w->off_depth = 1;
		return c == 0;
	}
	if (w->sp >= KS_WALK_STACK) {
		w->result = KS_MATCH_UNRESOLVED;
		return 1;
	}
	__u32 top = w->sp & (KS_WALK_STACK - 1);
	w->s->stack[top] = w->cur;
	w->s->stack_real[top] = (__u64)w->real;
	w->sp++;
	w->cur = *child;
	w->real = NULL;
	struct ks_protected *p = bpf_map_lookup_elem(&protected_inodes, &w->cur);
	if (p) {
		w->result = KS_MATCH_PATH;
		w->rule_id = p->rule_id;
		w->pflags = p->flags;
		return 1;
	}
	return c == 0;
}

/* Result of a check; the event is built from it. */
struct ks_hit {
	__u32 match;
	__u32 rule_id;
	__u32 pflags; /* KS_PF_* of the protected inode that matched */
	struct ks_inode_key key;
	struct path start;
	__u32 flags; /* KS_FF_* the record carries whatever is done */
	__u64 bytes; /* KS_OP_SPACE_WRITE */
};

/* Is the open file @fd a protected inode, or inside a protected tree? */
static __always_inline __u32 ks_check_fd(int fd, struct ks_hit *hit)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = ks_file_of_fd(task, fd);

	if (!f)
		return KS_MATCH_NONE;
	hit->start = BPF_CORE_READ(f, f_path);
	if (!ks_inside_protected(&hit->start, &hit->key, &hit->rule_id, &hit->pflags))
		return KS_MATCH_NONE;
	hit->match = KS_MATCH_INODE;
	return hit->match;
}

/* The names the magic links of /proc and /dev go by (FNV-1a 64). */
#define KS_H_PROC 0x85729b0e3537bc61ULL
#define KS_H_SELF 0x2d19e518d40792b7ULL
#define KS_H_THREAD_SELF 0xd31e6280a0119e26ULL
#define KS_H_FD 0x08986007b541df27ULL
#define KS_H_CWD 0xf5b31b190cbba161ULL
#define KS_H_ROOT 0xa354fd1ff0c467c5ULL
#define KS_H_MAP_FILES 0x8e9f00d083213a4dULL
#define KS_H_TASK 0xd9603bef07a9524cULL
#define KS_H_DEV 0xca9a2a18f461fffcULL
#define KS_H_STDIN 0x07ce0cad53eda57dULL
#define KS_H_STDOUT 0x42e6d785a74f8c66ULL
#define KS_H_STDERR 0x104ce5858b0a80b5ULL
#define KS_MAGIC_NONE -1   /* not a magic link */
#define KS_MAGIC_OPAQUE -2 /* one the walk cannot follow */
#define KS_MAGIC_BELOW 0x40000000 /* with N: a path below the caller's open directory N */

/*
 * A path from the root through a magic link: /proc/self/fd/N (also
 * thread-self, and the caller's own pid), /dev/fd/N, /dev/stdin, stdout and
 * stderr reopen the caller's open file N: returns N, judged by the object;
 * a path below it (/proc/self/fd/N/name: N is an open directory, as openat
 * would use it) returns N | KS_MAGIC_BELOW. Another process's fd, cwd, root
 * or map_files, and the caller's own cwd, root and map_files, lead wherever
 * that process is: KS_MAGIC_OPAQUE, never taken as unprotected. Anything
 * else: KS_MAGIC_NONE.
 */
static __always_inline int ks_magic_fd(const struct ks_scratch *s, __u32 d)
{
	if (d >= 2 && s->names[0] == KS_H_DEV) {
		__u64 n1 = s->names[1];
		if (d == 2 && n1 == KS_H_STDIN)
			return 0;
		if (d == 2 && n1 == KS_H_STDOUT)
			return 1;
		if (d == 2 && n1 == KS_H_STDERR)
			return 2;
		if (n1 == KS_H_FD && d >= 3) {
			if (s->nums[2] < 0 || s->nums[2] >= KS_MAGIC_BELOW)
				return KS_MAGIC_OPAQUE;
			return (int)s->nums[2] | (d > 3 ? KS_MAGIC_BELOW : 0);
		}
		return KS_MAGIC_NONE;
	}
	if (d < 4 || s->names[0] != KS_H_PROC)
		return KS_MAGIC_NONE;
	__u64 who = s->names[1];
	__s64 pid = s->nums[1];
	if (who != KS_H_SELF && who != KS_H_THREAD_SELF && pid < 0)
		return KS_MAGIC_NONE; /* /proc/sys, /proc/net...: the walk goes on */
	bool own = who == KS_H_SELF || who == KS_H_THREAD_SELF ||
		   pid == (__s64)(bpf_get_current_pid_tgid() >> 32);
	__u64 what = s->names[2];
	if (what == KS_H_FD) {
		if (!own || s->nums[3] < 0 || s->nums[3] >= KS_MAGIC_BELOW)
			return KS_MAGIC_OPAQUE;
		return (int)s->nums[3] | (d > 4 ? KS_MAGIC_BELOW : 0);
	}
	if (what == KS_H_CWD || what == KS_H_ROOT || what == KS_H_MAP_FILES)
		return KS_MAGIC_OPAQUE;
	/* /proc/PID/task/TID/{fd,cwd,root,map_files}/... */
	if (what == KS_H_TASK && d >= 6) {
		__u64 t = s->names[4];
		if (t == KS_H_FD || t == KS_H_CWD || t == KS_H_ROOT || t == KS_H_MAP_FILES)
			return KS_MAGIC_OPAQUE;
	}
	return KS_MAGIC_NONE;
}

/*
 * The magic links' verdict, for a path the walk found unprotected: the
 * match to return (@hit filled), or KS_MAGIC_NONE to keep the walk's.
 * @from_root: the path starts at the caller's root; @on_proc: its start
 * directory is on procfs. A function of its own, verified once.
 */
__noinline int ks_magic_check(struct ks_hit *hit, __u32 depth, int from_root, int on_proc)
{
	struct ks_scratch *s = ks_scratch_get();

	if (!hit || !s)
		return KS_MAGIC_NONE;
	int magic = from_root ? ks_magic_fd(s, depth) : KS_MAGIC_NONE;
	if (magic == KS_MAGIC_NONE && on_proc)
		magic = KS_MAGIC_OPAQUE; /* cd /proc/self/fd; open("5") */
	if (magic >= 0) {
		int fd = magic & ~KS_MAGIC_BELOW;
		if (ks_check_fd(fd, hit) != KS_MATCH_NONE) {
			/* The file itself, or the protected directory the path
			 * goes on below: the record names the open file. */
			hit->flags |= KS_FF_OBJECT;
			return hit->match;
		}
		if (!(magic & KS_MAGIC_BELOW))
			return KS_MATCH_NONE;
		/* Below a directory that is not protected: the rest of the path
		 * reaches protected data only from a directory above a root. One
		 * name below it leads there only by an edge of the graph; deeper
		 * paths are not followed. */
		/* Keys in the scratch: the stack is spent (Linux 6.1 counts this
		 * function's frame with its callers', 512 bytes), and 6.1 takes
		 * no map key from an argument's memory. */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct file *f = ks_file_of_fd(task, fd);
		if (!f)
			return KS_MATCH_NONE;
		ks_key_of(BPF_CORE_READ(f, f_path.dentry), &s->dir);
		if (!ks_ancestor_rule(&s->dir, KS_OP_UNLINK, &hit->rule_id))
			return KS_MATCH_NONE;
		__u32 below = s->names[0] == KS_H_DEV ? 3 : 4; /* the first name below N */
		if (depth == below + 1) {
			s->edge.dev = s->dir.dev;
			s->edge.ino = s->dir.ino;
			s->edge.name_hash = s->names[below & (KS_WALK_NAMES - 1)];
			if (!bpf_map_lookup_elem(&protected_edges, &s->edge))
				return KS_MATCH_NONE;
		}
		magic = KS_MAGIC_OPAQUE;
	}
	if (magic == KS_MAGIC_OPAQUE) {
		struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});
		hit->match = KS_MATCH_UNRESOLVED;
		hit->rule_id = cfg ? cfg->unresolved_rule : 0;
		return hit->match;
	}
	return KS_MAGIC_NONE;
}

/*
 * Does the path argument (@upath relative to @dfd) name a protected object
 * or something inside one? Fills @hit (and s->path with the text read).
 */
static __always_inline __u32 ks_check_path(struct ks_scratch *s, int dfd, const char *upath,
					   struct ks_hit *hit, __u32 op)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	long n = bpf_probe_read_user_str(s->path, sizeof(s->path), upath);

	if (n <= 0)
		return KS_MATCH_NONE; /* the call fails with EFAULT */
	if (s->path[0] == '/') {
		hit->start = BPF_CORE_READ(task, fs, root);
	} else if (dfd == KS_AT_FDCWD) {
		hit->start = BPF_CORE_READ(task, fs, pwd);
	} else {
		struct file *f = ks_file_of_fd(task, dfd);
		if (!f)
			return KS_MATCH_NONE; /* EBADF */
		hit->start = BPF_CORE_READ(f, f_path);
	}
	if (ks_inside_protected(&hit->start, &hit->key, &hit->rule_id, &hit->pflags)) {
		hit->match = KS_MATCH_INSIDE;
		return hit->match;
	}
	if (n == sizeof(s->path)) {
		/* Longer than we can read: never treated as unprotected. */
		struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});
		hit->match = KS_MATCH_UNRESOLVED;
		hit->rule_id = cfg ? cfg->unresolved_rule : 0;
		return hit->match;
	}

	struct path *start = &hit->start; /* CO-RE reads start from the kernel type */
	struct ks_walk w = {
		.s = s,
		.real = BPF_CORE_READ(start, dentry),
		.real_vm = BPF_CORE_READ(start, mnt),
		.hash = KS_FNV_OFFSET,
		.len = n - 1,
	};
	ks_key_of(w.real, &w.cur);
	bpf_loop(KS_FILE_PATH_MAX + 1, ks_walk_step, &w, 0);
	if (w.result == KS_MATCH_NONE) {
		/* Through a magic link: the walk saw names, not the object. */
		__u64 root = (__u64)BPF_CORE_READ(task, fs, root.dentry);
		__u64 sd = (__u64)BPF_CORE_READ(start, dentry);
		int m = ks_magic_check(hit, w.depth, s->path[0] == '/' || sd == root,
				       BPF_CORE_READ(start, dentry, d_sb, s_magic) ==
					   KS_PROC_SUPER_MAGIC);
		if (m >= 0)
			return (__u32)m;
	}
	if (w.result == KS_MATCH_NONE && w.off_depth == 0 &&
	    (op == KS_OP_RENAME_FROM || op == KS_OP_RENAME_ONTO || op == KS_OP_MOUNT ||
	     op == KS_OP_UMOUNT || op == KS_OP_MOUNT_SOURCE || op == KS_OP_REMOUNT) &&
	    ks_ancestor_rule(&w.cur, op, &w.rule_id)) {
		/* The path ends on a directory above a protected root: moving it
		 * away (or an exchange onto it), or a mount there, takes the root
		 * along. */
		w.result = KS_MATCH_ANCESTOR;
		hit->key = w.cur;
		hit->rule_id = w.rule_id;
	} else if (w.result == KS_MATCH_PATH) {
		hit->key = w.cur;
		hit->rule_id = w.rule_id;
		hit->pflags = w.pflags;
	} else if (w.result == KS_MATCH_UNRESOLVED) {
		struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});
		hit->rule_id = cfg ? cfg->unresolved_rule : 0;
	}
	hit->match = w.result;
	return hit->match;
}

/* ---- acting on a match ---- */

/*
 * Applies the rule's action in the kernel and reports the decision. The
 * daemon does the rest (freeze or kill the session, register a hold).
 */
static __always_inline void ks_act(struct ks_scratch *s, struct ks_hit *hit, __u32 op,
				   __u32 layer, int dfd, __u32 open_flags, __u64 entry_ns)
{
	__u32 rule_id = hit->rule_id < KS_MAX_RULES ? hit->rule_id : 0;
	struct ks_rule *rule = bpf_map_lookup_elem(&rules, &rule_id);
	__u32 action = rule ? rule->action : KS_ACT_BLOCK;
	struct ks_task_guard *g = ks_guard_of_current();
	__u32 flags = ks_exemption(rule, hit->pflags, g, entry_ns);

	ks_count(KS_CTR_FILE_MATCH);
	if (flags) {
		/* passed, monitored or in a window: nothing to enforce */
	} else if (action == KS_ACT_FREEZE || (action == KS_ACT_HOLD && layer != KS_LAYER_TRACEPOINT) ||
		   ((hit->flags & KS_FF_ASK) && action != KS_ACT_AUDIT)) {
		bpf_send_signal(KS_SIGSTOP);
		flags |= KS_FF_STOPPED;
	} else if (action != KS_ACT_AUDIT) {
		/* block, kill, kill-session; a hold cannot wait at a syscall
		 * tracepoint (the call would complete), so it kills at once. */
		bpf_send_signal(KS_SIGKILL);
		flags |= KS_FF_KILLED;
	}
	__u64 stop_ns = bpf_ktime_get_boot_ns();

	struct ks_file_event *ev = ks_reserve(sizeof(*ev), KS_EVENT_FILE);
	if (!ev)
		return;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	bool trunc = false;

	ks_fill_header(&ev->hdr, KS_EVENT_FILE, task, g ? g->session_id : 0);
	ev->hdr.ts_ns = entry_ns;
	ev->stop_ns = stop_ns;
	ev->op = op;
	ev->layer = layer;
	ev->match = hit->match;
	ev->action = action;
	ev->rule_id = rule_id;
	ev->dfd = dfd;
	ev->open_flags = open_flags;
	ev->dev = hit->key.dev;
	ev->ino = hit->key.ino;
	long n = bpf_probe_read_kernel_str(ev->path, sizeof(ev->path), s->path);
	ev->path_len = n > 0 ? n : 0;
	ev->cwd_len = ks_path_components(&hit->start, ev->cwd, &trunc);
	if (trunc)
		flags |= KS_FF_PATH_TRUNC;
	ev->flags = flags | hit->flags;
	ev->bytes = hit->bytes;
	if (hit->flags & KS_FF_ASK) {
		ev->meta = s->meta;
		ev->upath = s->upath;
	} else {
		__builtin_memset(&ev->meta, 0, sizeof(ev->meta));
		ev->upath = 0;
	}
	ks_submit_if(ev, KS_EVENT_FILE, flags & (KS_FF_STOPPED | KS_FF_KILLED));
}

/* True when the path matched (and the match was acted on). */
static __always_inline bool ks_on_path(__u32 op, __u32 layer, int dfd, const char *upath,
				       __u32 open_flags)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	struct ks_scratch *s = ks_scratch_get();
	struct ks_hit hit = {};

	if (!s)
		return false;
	if (ks_check_path(s, dfd, upath, &hit, op) == KS_MATCH_NONE)
		return false;
	ks_act(s, &hit, op, layer, dfd, open_flags, entry_ns);
	return true;
}

static __always_inline void ks_on_fd(__u32 op, __u32 layer, int fd)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	struct ks_scratch *s = ks_scratch_get();
	struct ks_hit hit = {};

	if (!s)
		return;
	if (ks_check_fd(fd, &hit) != KS_MATCH_NONE) {
		s->path[0] = 0;
		ks_act(s, &hit, op, layer, fd, 0, entry_ns);
	}
}

/* ---- chmod and chown: a change that changes nothing ---- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* thread id */
	__type(value, struct ks_meta_ticket);
} meta_tickets SEC(".maps");

struct ks_hash_ctx {
	const char *text;
	__u64 hash;
};

static long ks_hash_step(__u32 i, void *data)
{
	struct ks_hash_ctx *h = data;
	char c = h->text[i & (KS_FILE_PATH_MAX - 1)];

	if (!c)
		return 1;
	h->hash = (h->hash ^ (__u8)c) * KS_FNV_PRIME;
	return 0;
}

/*
 * The syscall tracepoint's side of KS_FF_ASK: true when the daemon gave this
 * thread a ticket for this very call (it found the change changes nothing).
 * The thread's next chmod or chown takes the ticket whatever it is.
 */
static __always_inline bool ks_meta_ticket_taken(struct ks_scratch *s, __u32 op, int dfd,
						 const char *upath, struct ks_meta_args *m)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ks_meta_ticket *t = bpf_map_lookup_elem(&meta_tickets, &tid);

	if (!t)
		return false;
	struct ks_meta_ticket want = *t;
	bpf_map_delete_elem(&meta_tickets, &tid);
	if (want.deadline_ns < bpf_ktime_get_boot_ns() || want.op != op || want.dfd != dfd ||
	    want.upath != (__u64)upath || want.args.mode != m->mode || want.args.uid != m->uid ||
	    want.args.gid != m->gid || want.args.at_flags != m->at_flags)
		return false;
	if (!upath)
		return true;
	if (bpf_probe_read_user_str(s->path, sizeof(s->path), upath) <= 0)
		return false;
	struct ks_hash_ctx h = {.text = s->path, .hash = KS_FNV_OFFSET};
	bpf_loop(KS_FILE_PATH_MAX, ks_hash_step, &h, 0);
	return h.hash == want.path_hash;
}

/*
 * chmod and chown of @upath (relative to @dfd), or of the open file @dfd
 * when @upath is NULL; @m: what the call asks for. At the libc layer a
 * matched call stops for the daemon (KS_FF_ASK), which lets a change that
 * changes nothing go on (`chown -R postgres` over data postgres owns); at
 * the syscall tracepoint only the ticket it then gives passes the call.
 */
static __always_inline void ks_on_meta(__u32 op, __u32 layer, int dfd, const char *upath,
				       struct ks_meta_args *m)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	struct ks_scratch *s = ks_scratch_get();
	struct ks_hit hit = {};

	if (!s)
		return;
	if (layer == KS_LAYER_TRACEPOINT && ks_meta_ticket_taken(s, op, dfd, upath, m))
		return;
	if (upath) {
		if (ks_check_path(s, dfd, upath, &hit, op) == KS_MATCH_NONE)
			return;
	} else {
		if (ks_check_fd(dfd, &hit) == KS_MATCH_NONE)
			return;
		s->path[0] = 0;
	}
	if (layer == KS_LAYER_UPROBE) {
		hit.flags |= KS_FF_ASK;
		s->meta = *m;
		s->upath = (__u64)upath;
	}
	ks_act(s, &hit, op, layer, dfd, 0, entry_ns);
}

#define KS_AT_SYMLINK_NOFOLLOW 0x100
#define KS_NO_ID 0xffffffffu
#define KS_CHMOD(layer, dfd, path, mode_, at_)                                                     \
	do {                                                                                       \
		struct ks_meta_args m_ = {.mode = (__u32)(mode_), .uid = KS_NO_ID,                 \
					  .gid = KS_NO_ID, .at_flags = (__u32)(at_)};              \
		ks_on_meta(KS_OP_CHMOD, layer, (int)(dfd), (const char *)(path), &m_);             \
	} while (0)
#define KS_CHOWN(layer, dfd, path, uid_, gid_, at_)                                                \
	do {                                                                                       \
		struct ks_meta_args m_ = {.uid = (__u32)(uid_), .gid = (__u32)(gid_),              \
					  .at_flags = (__u32)(at_)};                               \
		ks_on_meta(KS_OP_CHOWN, layer, (int)(dfd), (const char *)(path), &m_);             \
	} while (0)

/* ---- symbolic links to protected data ---- */

/*
 * symlink(@target, @linkp), @linkp relative to @dfd, not inside a protected
 * tree: the caller stops (KS_FF_ASK) and the daemon works out where the link
 * would lead, from the link's own directory. A link to protected data, into
 * it or to a directory above it (op symlink-to) is a path to the data that
 * the walk from / does not know: `ln -s /data /tmp/x; unlink("/tmp/x/f")`
 * would pass. At the libc layer the caller stops before the call; at the
 * syscall tracepoint (a static program, a raw call) it stops as the call
 * returns, the link made: the daemon removes it before the caller runs
 * again. A function of its own: its frame is not added to the walk's.
 */
static __noinline void ks_symlink_ask(__u32 layer, int dfd, const char *target,
				      const char *linkp)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	struct ks_scratch *s = ks_scratch_get();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});
	struct ks_hit hit = {
		.match = KS_MATCH_UNRESOLVED,
		.rule_id = cfg ? cfg->unresolved_rule : 0,
		.flags = KS_FF_ASK,
	};

	if (!s || bpf_probe_read_user_str(s->path, sizeof(s->path), target) <= 0)
		return;
	__builtin_memset(&s->meta, 0, sizeof(s->meta));
	s->upath = (__u64)linkp;
	if (dfd == KS_AT_FDCWD) {
		hit.start = BPF_CORE_READ(task, fs, pwd);
	} else {
		struct file *f = ks_file_of_fd(task, dfd);
		if (!f)
			return;
		hit.start = BPF_CORE_READ(f, f_path);
	}
	ks_act(s, &hit, KS_OP_SYMLINK_TO, layer, dfd, 0, entry_ns);
}

/* A new name inside a protected tree is create-in; elsewhere the daemon
 * judges where the link leads. A call the libc layer already let through
 * carries the daemon's ticket past the tracepoint. */
static __always_inline void ks_on_symlink(__u32 layer, int dfd, const char *target,
					  const char *linkp)
{
	struct ks_meta_args none = {};
	struct ks_scratch *s;

	if (ks_on_path(KS_OP_CREATE_IN, layer, dfd, linkp, 0))
		return;
	if (layer == KS_LAYER_TRACEPOINT) {
		s = ks_scratch_get();
		if (!s || ks_meta_ticket_taken(s, KS_OP_SYMLINK_TO, dfd, linkp, &none))
			return;
	}
	ks_symlink_ask(layer, dfd, target, linkp);
}

static __always_inline __u32 ks_open_op(__u64 flags)
{
	if (flags & KS_O_TRUNC)
		return KS_OP_OPEN_TRUNC;
	if (flags & KS_O_ACCMODE)
		return KS_OP_OPEN_WRITE;
	return 0;
}

static __always_inline void ks_on_open(__u32 layer, int dfd, const char *upath, __u64 flags)
{
	__u32 op = ks_open_op(flags);
	if (op)
		ks_on_path(op, layer, dfd, upath, (__u32)flags);
}

static __always_inline void ks_on_rename(__u32 layer, int olddfd, const char *oldp, int newdfd,
					 const char *newp)
{
	ks_on_path(KS_OP_RENAME_FROM, layer, olddfd, oldp, 0);
	ks_on_path(KS_OP_RENAME_ONTO, layer, newdfd, newp, 0);
}

static __always_inline void ks_on_io_uring(void)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});
	struct ks_scratch *s = ks_scratch_get();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ks_hit hit = {.match = KS_MATCH_ALWAYS};

	if (!cfg || !s || cfg->io_uring_rule >= KS_MAX_RULES)
		return;
	hit.rule_id = cfg->io_uring_rule;
	hit.start = BPF_CORE_READ(task, fs, pwd);
	s->path[0] = 0;
	ks_act(s, &hit, KS_OP_IO_URING, KS_LAYER_TRACEPOINT, -1, 0, entry_ns);
}

/* ---- layer 3: syscall tracepoints ---- */

#define KS_TP(name) SEC("tp/syscalls/sys_enter_" #name) int ks_tp_##name(struct trace_event_raw_sys_enter *ctx)
#define KS_GUARDED_OR_RETURN()                                                                     \
	do {                                                                                       \
		if (!ks_guard_of_current())                                                        \
			return 0;                                                                  \
	} while (0)
#define ARG(i) (ctx->args[i])

KS_TP(unlink)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_UNLINK, KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), 0);
	return 0;
}

KS_TP(unlinkat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(ARG(2) & 0x200 /* AT_REMOVEDIR */ ? KS_OP_RMDIR : KS_OP_UNLINK,
		   KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1), 0);
	return 0;
}

KS_TP(rmdir)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_RMDIR, KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), 0);
	return 0;
}

KS_TP(rename)
{
	KS_GUARDED_OR_RETURN();
	ks_on_rename(KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), KS_AT_FDCWD,
		     (const char *)ARG(1));
	return 0;
}

KS_TP(renameat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_rename(KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1), (int)ARG(2),
		     (const char *)ARG(3));
	return 0;
}

KS_TP(renameat2)
{
	KS_GUARDED_OR_RETURN();
	ks_on_rename(KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1), (int)ARG(2),
		     (const char *)ARG(3));
	return 0;
}

KS_TP(truncate)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_TRUNCATE, KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), 0);
	return 0;
}

KS_TP(ftruncate)
{
	KS_GUARDED_OR_RETURN();
	ks_on_fd(KS_OP_TRUNCATE, KS_LAYER_TRACEPOINT, (int)ARG(0));
	return 0;
}

KS_TP(open)
{
	KS_GUARDED_OR_RETURN();
	ks_on_open(KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), ARG(1));
	return 0;
}

KS_TP(creat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_OPEN_TRUNC, KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), 0);
	return 0;
}

KS_TP(openat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_open(KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1), ARG(2));
	return 0;
}

KS_TP(openat2)
{
	KS_GUARDED_OR_RETURN();
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)ARG(2));
	ks_on_open(KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1), how.flags);
	return 0;
}

/* A link: a new name for a protected file outside its tree, or a new name
 * inside a protected tree (a cron entry, an enabled unit). */
/* A hard link of protected data (op link) at the syscall tracepoint: a new
 * name for it that the walk from / does not know, made by the time its
 * caller stops. The caller stops (KS_FF_ASK; the record's dfd and upath are
 * the new name's) and the daemon removes the new name before it runs again,
 * then applies the rule. At the libc layer the call never happens. A new
 * name inside a protected tree is create-in. */
static __always_inline void ks_on_link_tp(int olddfd, const char *oldp, int newdfd,
					  const char *newp)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	struct ks_scratch *s = ks_scratch_get();
	struct ks_hit hit = {};

	if (!s)
		return;
	if (ks_check_path(s, olddfd, oldp, &hit, KS_OP_LINK) != KS_MATCH_NONE) {
		hit.flags |= KS_FF_ASK;
		__builtin_memset(&s->meta, 0, sizeof(s->meta));
		s->upath = (__u64)newp;
		ks_act(s, &hit, KS_OP_LINK, KS_LAYER_TRACEPOINT, newdfd, 0, entry_ns);
		return;
	}
	/* One hit for both checks: Linux 6.1 counts this frame with the walk's
	 * (512 bytes in all). */
	__builtin_memset(&hit, 0, sizeof(hit));
	if (ks_check_path(s, newdfd, newp, &hit, KS_OP_CREATE_IN) != KS_MATCH_NONE)
		ks_act(s, &hit, KS_OP_CREATE_IN, KS_LAYER_TRACEPOINT, newdfd, 0, entry_ns);
}

KS_TP(link)
{
	KS_GUARDED_OR_RETURN();
	ks_on_link_tp(KS_AT_FDCWD, (const char *)ARG(0), KS_AT_FDCWD, (const char *)ARG(1));
	return 0;
}

KS_TP(linkat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_link_tp((int)ARG(0), (const char *)ARG(1), (int)ARG(2), (const char *)ARG(3));
	return 0;
}

KS_TP(symlink)
{
	KS_GUARDED_OR_RETURN();
	ks_on_symlink(KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), (const char *)ARG(1));
	return 0;
}

KS_TP(symlinkat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_symlink(KS_LAYER_TRACEPOINT, (int)ARG(1), (const char *)ARG(0), (const char *)ARG(2));
	return 0;
}

/* Metadata: the mode, owner, extended attributes (ACLs among them) and inode
 * flags of protected data. */
KS_TP(chmod)
{
	KS_GUARDED_OR_RETURN();
	KS_CHMOD(KS_LAYER_TRACEPOINT, KS_AT_FDCWD, ARG(0), ARG(1), 0);
	return 0;
}

KS_TP(fchmod)
{
	KS_GUARDED_OR_RETURN();
	KS_CHMOD(KS_LAYER_TRACEPOINT, ARG(0), NULL, ARG(1), 0);
	return 0;
}

KS_TP(fchmodat)
{
	KS_GUARDED_OR_RETURN();
	KS_CHMOD(KS_LAYER_TRACEPOINT, ARG(0), ARG(1), ARG(2), 0);
	return 0;
}

/* 6.6+; not loaded where the kernel has no such tracepoint. */
KS_TP(fchmodat2)
{
	KS_GUARDED_OR_RETURN();
	KS_CHMOD(KS_LAYER_TRACEPOINT, ARG(0), ARG(1), ARG(2), ARG(3));
	return 0;
}

KS_TP(chown)
{
	KS_GUARDED_OR_RETURN();
	KS_CHOWN(KS_LAYER_TRACEPOINT, KS_AT_FDCWD, ARG(0), ARG(1), ARG(2), 0);
	return 0;
}

KS_TP(lchown)
{
	KS_GUARDED_OR_RETURN();
	KS_CHOWN(KS_LAYER_TRACEPOINT, KS_AT_FDCWD, ARG(0), ARG(1), ARG(2), KS_AT_SYMLINK_NOFOLLOW);
	return 0;
}

KS_TP(fchown)
{
	KS_GUARDED_OR_RETURN();
	KS_CHOWN(KS_LAYER_TRACEPOINT, ARG(0), NULL, ARG(1), ARG(2), 0);
	return 0;
}

KS_TP(fchownat)
{
	KS_GUARDED_OR_RETURN();
	KS_CHOWN(KS_LAYER_TRACEPOINT, ARG(0), ARG(1), ARG(2), ARG(3), ARG(4));
	return 0;
}

KS_TP(setxattr)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_XATTR, KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), 0);
	return 0;
}

KS_TP(lsetxattr)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_XATTR, KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), 0);
	return 0;
}

KS_TP(fsetxattr)
{
	KS_GUARDED_OR_RETURN();
	ks_on_fd(KS_OP_XATTR, KS_LAYER_TRACEPOINT, (int)ARG(0));
	return 0;
}

KS_TP(removexattr)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_XATTR, KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), 0);
	return 0;
}

KS_TP(lremovexattr)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_XATTR, KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), 0);
	return 0;
}

KS_TP(fremovexattr)
{
	KS_GUARDED_OR_RETURN();
	ks_on_fd(KS_OP_XATTR, KS_LAYER_TRACEPOINT, (int)ARG(0));
	return 0;
}

/* 6.13+ (dfd, path, at_flags, name, ...); not loaded where absent. */
KS_TP(setxattrat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_XATTR, KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1), 0);
	return 0;
}

KS_TP(removexattrat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_XATTR, KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1), 0);
	return 0;
}

/* chattr: FS_IOC_SETFLAGS (+i, +a) and FS_IOC_FSSETXATTR. */
#define KS_FS_IOC_SETFLAGS 0x40086602u
#define KS_FS_IOC32_SETFLAGS 0x40046602u
#define KS_FS_IOC_FSSETXATTR 0x401c5820u

KS_TP(ioctl)
{
	/* The command before the guard lookup: ioctl is frequent everywhere. */
	__u32 cmd = (__u32)ARG(1);
	if (cmd != KS_FS_IOC_SETFLAGS && cmd != KS_FS_IOC32_SETFLAGS && cmd != KS_FS_IOC_FSSETXATTR)
		return 0;
	KS_GUARDED_OR_RETURN();
	ks_on_fd(KS_OP_FILE_FLAGS, KS_LAYER_TRACEPOINT, (int)ARG(0));
	return 0;
}

/*
 * Block devices opened for writing (protect.block_devices): judged by the
 * object the open reached, at the exit of the call, whatever name, symlink or
 * node led there. Opening changes nothing on the device; the SIGKILL sent here
 * lands as the call returns, before the process runs another instruction, so
 * nothing is written through the fd (another thread of the process racing
 * for the fd number in that instant is the one gap).
 */
#define KS_FMODE_WRITE 0x2

static __always_inline void ks_on_opened(long ret)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	struct ks_config *cfg = bpf_map_lookup_elem(&file_config, &(__u32){0});
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ks_scratch *s;
	struct ks_hit hit = {.match = KS_MATCH_BLOCK_DEVICE, .flags = KS_FF_OBJECT};

	if (ret < 0 || !cfg || cfg->block_device_rule >= KS_MAX_RULES)
		return;
	struct file *f = ks_file_of_fd(task, (int)ret);
	if (!f)
		return;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & KS_S_IFMT) != KS_S_IFBLK || !(BPF_CORE_READ(f, f_mode) & KS_FMODE_WRITE))
		return;
	s = ks_scratch_get();
	if (!s)
		return;
	hit.rule_id = cfg->block_device_rule;
	hit.start = BPF_CORE_READ(f, f_path);
	hit.key.dev = BPF_CORE_READ(f, f_inode, i_rdev);
	hit.key.ino = BPF_CORE_READ(f, f_inode, i_ino);
	s->path[0] = 0;
	ks_act(s, &hit, KS_OP_DEVICE_WRITE, KS_LAYER_TRACEPOINT, (int)ret,
	       BPF_CORE_READ(f, f_flags), entry_ns);
}

#define KS_TP_EXIT(name)                                                                           \
	SEC("tp/syscalls/sys_exit_" #name) int ks_tpx_##name(struct trace_event_raw_sys_exit *ctx)

KS_TP_EXIT(open)
{
	KS_GUARDED_OR_RETURN();
	ks_on_opened(ctx->ret);
	return 0;
}

KS_TP_EXIT(openat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_opened(ctx->ret);
	return 0;
}

KS_TP_EXIT(openat2)
{
	KS_GUARDED_OR_RETURN();
	ks_on_opened(ctx->ret);
	return 0;
}

KS_TP_EXIT(creat)
{
	KS_GUARDED_OR_RETURN();
	ks_on_opened(ctx->ret);
	return 0;
}

/* A bind mount or a move of protected data, or of a directory above it,
 * gives it a name the path walk cannot follow (in a mount namespace of the
 * process's own the daemon never sees it): judged as a mount there
 * (mount(2)'s flags: ks_protect.bpf.h). */

/* A mount source given by an fd (the new mount API's empty path): the
 * object it is open on, protected, inside protected data or above it; not
 * "/" itself (below). */
static __always_inline void ks_on_mount_fd(__u32 layer, int fd)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ks_scratch *s = ks_scratch_get();
	struct file *f = ks_file_of_fd(task, fd);
	struct ks_hit hit = {};

	if (!s || !f || BPF_CORE_READ(f, f_path.dentry) == BPF_CORE_READ(task, fs, root.dentry))
		return;
	if (ks_check_fd(fd, &hit) == KS_MATCH_NONE) {
		ks_key_of(BPF_CORE_READ(f, f_path.dentry), &s->dir);
		if (!ks_ancestor_rule(&s->dir, KS_OP_MOUNT_SOURCE, &hit.rule_id))
			return;
		hit.match = KS_MATCH_ANCESTOR;
		hit.key = s->dir;
		hit.start = BPF_CORE_READ(f, f_path);
	}
	s->path[0] = 0;
	ks_act(s, &hit, KS_OP_MOUNT_SOURCE, layer, fd, 0, entry_ns);
}

/* The source of a bind mount or a move (@source relative to @dfd; an empty
 * one is @dfd's own object, as the new mount API takes it), judged unless it
 * is "/" itself: a sandbox (bwrap) binds the whole tree into its own
 * namespace, where paths from its root walk the same edges. */
static __always_inline void ks_on_mount_source(__u32 layer, int dfd, const char *source)
{
	char c[2] = {};

	if (bpf_probe_read_user(c, sizeof(c), source) == 0) {
		if (c[0] == '/' && c[1] == 0)
			return;
		if (c[0] == 0) {
			ks_on_mount_fd(layer, dfd);
			return;
		}
	}
	ks_on_path(KS_OP_MOUNT_SOURCE, layer, dfd, source, 0);
}

/* The new mount API (Linux 5.2+, glibc 2.36+) makes the same mounts as
 * mount(2) in steps: open_tree(OPEN_TREE_CLONE) copies a tree (a bind
 * mount's source) and move_mount() puts a mount (that copy, one fsmount()
 * made, or an existing one, moved) over a path; mount_setattr() changes a
 * mount's flags (read-only, no-exec, idmapped), as a remount does. Judged as
 * the bind source, the mount target and the remount of mount(2). An
 * open_tree without OPEN_TREE_CLONE only names an existing mount: moving it
 * is judged at move_mount. */
#define KS_OPEN_TREE_CLONE 1

static __always_inline void ks_on_open_tree(__u32 layer, int dfd, const char *path, __u32 flags)
{
	if (flags & KS_OPEN_TREE_CLONE)
		ks_on_mount_source(layer, dfd, path);
}

static __always_inline void ks_on_move_mount(__u32 layer, int from_dfd, const char *from,
					     int to_dfd, const char *to)
{
	if (ks_on_path(KS_OP_MOUNT, layer, to_dfd, to, 0))
		return;
	/* Where the mount comes from: a path, or (F_EMPTY_PATH) the fd itself,
	 * an existing mount moved away or a copy open_tree made. */
	ks_on_mount_source(layer, from_dfd, from);
}

/* struct mount_attr: attr_set, attr_clr, propagation, userns_fd. A change of
 * propagation alone moves nothing (as for mount(2)). */
static __always_inline void ks_on_mount_setattr(__u32 layer, int dfd, const char *path,
						const void *uattr)
{
	__u64 set_clr[2] = {};

	if (bpf_probe_read_user(set_clr, sizeof(set_clr), uattr) == 0 && !set_clr[0] &&
	    !set_clr[1])
		return;
	ks_on_path(KS_OP_MOUNT, layer, dfd, path, 0);
}

/* fspick() picks the file system mounted at a path for reconfiguration;
 * fsconfig(FSCONFIG_CMD_RECONFIGURE) then remounts it (read-only...), as
 * mount(2) with MS_REMOUNT does. Judged as that remount, at the pick:
 * nothing has changed yet, so even the tracepoint's kill, which lands as the
 * call returns, comes before the fsconfig that would. */
static __always_inline void ks_on_fspick(__u32 layer, int dfd, const char *path)
{
	ks_on_path(KS_OP_REMOUNT, layer, dfd, path, 0);
}

KS_TP(mount)
{
	KS_GUARDED_OR_RETURN();
	__u64 flags = ARG(3);
	if (flags & KS_MS_PROPAGATION)
		return 0;
	if (!ks_on_path(ks_mount_op(flags), KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(1),
			0) &&
	    (flags & (KS_MS_BIND | KS_MS_MOVE)))
		ks_on_mount_source(KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0));
	return 0;
}

KS_TP(umount)
{
	KS_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_UMOUNT, KS_LAYER_TRACEPOINT, KS_AT_FDCWD, (const char *)ARG(0), 0);
	return 0;
}

KS_TP(open_tree)
{
	KS_GUARDED_OR_RETURN();
	ks_on_open_tree(KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1), (__u32)ARG(2));
	return 0;
}

KS_TP(move_mount)
{
	KS_GUARDED_OR_RETURN();
	ks_on_move_mount(KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1), (int)ARG(2),
			 (const char *)ARG(3));
	return 0;
}

KS_TP(mount_setattr)
{
	KS_GUARDED_OR_RETURN();
	ks_on_mount_setattr(KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1),
			    (const void *)ARG(3));
	return 0;
}

KS_TP(fspick)
{
	KS_GUARDED_OR_RETURN();
	ks_on_fspick(KS_LAYER_TRACEPOINT, (int)ARG(0), (const char *)ARG(1));
	return 0;
}

/* io_uring operations bypass the syscall hooks above: guarded processes do
 * not get to use it (policy: protect.io_uring). */
KS_TP(io_uring_setup)
{
	KS_GUARDED_OR_RETURN();
	ks_on_io_uring();
	return 0;
}

KS_TP(io_uring_enter)
{
	KS_GUARDED_OR_RETURN();
	ks_on_io_uring();
	return 0;
}

KS_TP(io_uring_register)
{
	KS_GUARDED_OR_RETURN();
	ks_on_io_uring();
	return 0;
}

/*
 * The space budget at the write system calls' entries (ks_space.bpf.h): the
 * task is sent SIGKILL before the call copies anything, and the kernel's
 * write loops (generic_perform_write, iomap's, shmem's) test for a fatal
 * signal before each chunk, so the call ends with nothing written.
 *
 * layer: the tracepoint counts what the call asks to write; a libc uprobe
 * (fallocate, which ext4 carries out in full after a kill at the syscall's
 * entry) only looks, so that the call is not counted twice.
 */
static __always_inline bool ks_space_target(int fd, struct ks_space_target *t)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return ks_space_target_file(ks_file_of_fd(task, fd), t);
}

static __always_inline void ks_on_space_write(__u32 layer, struct ks_space_target *t, int fd,
					      __u64 bytes, bool allocate)
{
	__u64 entry_ns = bpf_ktime_get_boot_ns();
	struct file *f = t->f;

	if (!bytes)
		return;
	bool count = layer == KS_LAYER_TRACEPOINT;
	int over = ks_space_charge(t, bytes, count, NULL);
	if (over == KS_SPACE_FITS)
		return;
	/* Killed at the entry of the call, but the call runs to its end: a
	 * direct write does not look for a pending kill before it writes, nor
	 * does ext4's fallocate (tmpfs's does). */
	bool completes = count && (allocate || (BPF_CORE_READ(f, f_flags) & KS_O_DIRECT));
	if (over == KS_SPACE_REFUSED && count && !completes)
		ks_space_refund(t, bytes);
	__u32 flags = KS_FF_OBJECT | (completes ? KS_FF_CALL_COMPLETES : 0);
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	struct ks_scratch *s = ks_scratch_get();
	if (!s)
		return;
	struct ks_hit hit = {
		.match = KS_MATCH_LOW_SPACE,
		.rule_id = t->rule_id,
		.flags = flags,
		.bytes = bytes,
	};
	hit.start = BPF_CORE_READ(f, f_path);
	hit.key.dev = t->dev;
	hit.key.ino = BPF_CORE_READ(inode, i_ino);
	s->path[0] = 0;
	ks_act(s, &hit, KS_OP_SPACE_WRITE, layer, fd, BPF_CORE_READ(f, f_flags), entry_ns);
}

/* A write of BYTES (worked out only for a file that counts) to FD. */
#define KS_SPACE(layer, fd, bytes, allocate)                                                      \
	do {                                                                                       \
		struct ks_space_target t_ = {};                                                    \
		if (ks_space_target((int)(fd), &t_))                                               \
			ks_on_space_write(layer, &t_, (int)(fd), (bytes), allocate);               \
	} while (0)

#define KS_SPACE_TP(name)                                                                          \
	SEC("tp/syscalls/sys_enter_" #name) int ks_space_##name(struct trace_event_raw_sys_enter *ctx)

KS_SPACE_TP(write)
{
	KS_GUARDED_OR_RETURN();
	KS_SPACE(KS_LAYER_TRACEPOINT, ARG(0), ARG(2), false);
	return 0;
}

KS_SPACE_TP(pwrite64)
{
	KS_GUARDED_OR_RETURN();
	KS_SPACE(KS_LAYER_TRACEPOINT, ARG(0), ARG(2), false);
	return 0;
}

KS_SPACE_TP(writev)
{
	KS_GUARDED_OR_RETURN();
	KS_SPACE(KS_LAYER_TRACEPOINT, ARG(0), ks_iov_bytes((const struct iovec *)ARG(1), ARG(2)),
		 false);
	return 0;
}

KS_SPACE_TP(pwritev)
{
	KS_GUARDED_OR_RETURN();
	KS_SPACE(KS_LAYER_TRACEPOINT, ARG(0), ks_iov_bytes((const struct iovec *)ARG(1), ARG(2)),
		 false);
	return 0;
}

KS_SPACE_TP(pwritev2)
{
	KS_GUARDED_OR_RETURN();
	KS_SPACE(KS_LAYER_TRACEPOINT, ARG(0), ks_iov_bytes((const struct iovec *)ARG(1), ARG(2)),
		 false);
	return 0;
}

KS_SPACE_TP(fallocate)
{
	KS_GUARDED_OR_RETURN();
	if (ARG(1) & (KS_FALLOC_FL_PUNCH_HOLE | KS_FALLOC_FL_COLLAPSE_RANGE))
		return 0;
	KS_SPACE(KS_LAYER_TRACEPOINT, ARG(0), ARG(3), true);
	return 0;
}

KS_SPACE_TP(copy_file_range)
{
	KS_GUARDED_OR_RETURN();
	KS_SPACE(KS_LAYER_TRACEPOINT, ARG(2),
		 ks_source_bytes((int)ARG(0), (const __s64 *)ARG(1), ARG(4)), false);
	return 0;
}

KS_SPACE_TP(sendfile64)
{
	KS_GUARDED_OR_RETURN();
	KS_SPACE(KS_LAYER_TRACEPOINT, ARG(0),
		 ks_source_bytes((int)ARG(1), (const __s64 *)ARG(2), ARG(3)), false);
	return 0;
}

KS_SPACE_TP(splice)
{
	KS_GUARDED_OR_RETURN();
	KS_SPACE(KS_LAYER_TRACEPOINT, ARG(2),
		 ks_source_bytes((int)ARG(0), (const __s64 *)ARG(1), ARG(4)), false);
	return 0;
}

/* ---- layer 1: exec of watched tools ---- */

/*
 * After a successful exec has loaded the new image, before it runs: a SIGSTOP
 * sent here is acted on before its first instruction (on the way back to user
 * mode). Its argv is read from the new image's own stack, exactly what the
 * program will see. comm is already the new program's name (for a script, the
 * script's). A raw tracepoint, not a syscall one: tasks that are not guarded
 * stay off the syscall tracing path.
 */
/* argv[0] is read this far to find its basename. */
#define KS_ARGV0_SCAN 128

/*
 * Whether the program that just exec'd goes by a watched name. Not only the
 * name it gives itself: the kernel's comm is the basename of the path it was
 * started by; a symlink under a harmless name runs a watched program (the
 * file's own dentry name); a multi-call binary picks what it does by argv[0]
 * (`exec -a bfs claude`, busybox applets). User space judges the exec by
 * every one of these names (file_guard/exec_rules.h).
 */
static __always_inline bool ks_exec_watched(struct task_struct *task, char *comm)
{
	char key[KS_WATCH_NAME_LEN] = {};

	if (bpf_map_lookup_elem(&exec_watch, comm))
		return true;
	const unsigned char *dname = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name);
	if (dname && bpf_probe_read_kernel_str(key, KS_COMM_LEN, dname) > 0 &&
	    bpf_map_lookup_elem(&exec_watch, key))
		return true;

	char a0[KS_ARGV0_SCAN];
	unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
	long n = bpf_probe_read_user_str(a0, sizeof(a0), (void *)arg_start);
	if (n <= 0)
		return false;
	__u32 base = 0;
	for (__u32 i = 0; i < KS_ARGV0_SCAN; i++) {
		if (i >= n)
			break;
		if (a0[i] == '/')
			base = i + 1;
	}
	__builtin_memset(key, 0, sizeof(key));
	if (bpf_probe_read_user_str(key, KS_COMM_LEN, (void *)(arg_start + base)) <= 0)
		return false;
	return bpf_map_lookup_elem(&exec_watch, key) != NULL;
}

SEC("raw_tp/sched_process_exec")
int ks_exec_check(void *ctx)
{
	struct ks_task_guard *g;
	char key[KS_WATCH_NAME_LEN] = {};

	g = ks_guard_of_current();
	if (!g)
		return 0;
	bpf_get_current_comm(key, KS_COMM_LEN);
	if (!ks_exec_watched((struct task_struct *)bpf_get_current_task(), key))
		return 0;
	/* In an allow window the tool runs at once: the libc and syscall layers
	 * still apply the rules a window does not cover (self-protection). */
	bool windowed = ks_window_open(g->session_id);

	struct ks_exec_check_event *ev = ks_reserve(sizeof(*ev), KS_EVENT_EXEC_CHECK);
	if (!ev) {
		/* The rules cannot see this exec: never let it run unchecked. */
		if (!windowed)
			bpf_send_signal(KS_SIGKILL);
		return 0;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	ks_fill_header(&ev->hdr, KS_EVENT_EXEC_CHECK, task, g->session_id);
	ev->flags = 0;
	__builtin_memcpy(ev->filename, key, KS_COMM_LEN);
	ev->filename_len = KS_COMM_LEN;

	unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
	__u32 len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (len > KS_EXEC_ARGV_BUF - 1) {
		len = KS_EXEC_ARGV_BUF - 1;
		ev->flags |= KS_EVF_ARGV_TRUNC;
	}
	len &= KS_EXEC_ARGV_BUF - 1;
	if (bpf_probe_read_user(ev->argv, len, (void *)arg_start))
		len = 0;
	ev->argv_len = len;
	ev->argc = 0;
	ks_count(KS_CTR_EXEC_CHECK);
	if (windowed)
		ev->flags |= KS_EVF_WINDOW;
	else
		bpf_send_signal(KS_SIGSTOP);
	ks_submit_if(ev, KS_EVENT_EXEC_CHECK, !windowed);
	return 0;
}

/* ---- layer 2: libc entry points (attached by user space by name) ---- */

/* Where the kernel has uprobe_multi links with a pid, one link per guarded
 * process carries every libc entry point, this layer's and self_guard's:
 * this program, which goes on to the entry point's own program (the link's
 * cookie is its index in ks_up_progs, filled by user space,
 * common/uprobe_scope.h). Elsewhere each program is attached by itself, for
 * every process. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} ks_up_progs SEC(".maps");

SEC("uprobe")
int ks_up_dispatch(struct pt_regs *ctx)
{
	bpf_tail_call(ctx, &ks_up_progs, (__u32)bpf_get_attach_cookie(ctx));
	return 0;
}

/* A new child of a guarded process, at its return from fork, before its
 * first instruction: held (SIGSTOP) until the daemon has attached its
 * uprobes, when its parent's are per process (uprobe_scope). Its parent
 * marked it in uprobe_pending at fork. A record it cannot write, it is not
 * held for: the syscall layer covers it until the daemon sees it. */
static __always_inline int ks_hold_new_child(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if (ret != 0 || (__u32)id != tgid)
		return 0; /* the parent, or a new thread */
	if (!bpf_map_lookup_elem(&uprobe_pending, &tgid))
		return 0;
	bpf_map_delete_elem(&uprobe_pending, &tgid);
	struct ks_task_guard *guard = bpf_map_lookup_elem(&guarded_tasks, &tgid);
	if (!guard)
		return 0;
	struct ks_fork_event *ev = ks_reserve(sizeof(*ev), KS_EVENT_FORK);
	if (!ev)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	ks_fill_header(&ev->hdr, KS_EVENT_FORK, task, guard->session_id);
	ev->hdr.flags = KS_EVF_HELD;
	ks_count(KS_CTR_FORK_HELD);
	bpf_send_signal(KS_SIGSTOP);
	ks_submit_now(ev, KS_EVENT_FORK);
	return 0;
}

SEC("tp/syscalls/sys_exit_clone")
int ks_child_clone(struct trace_event_raw_sys_exit *ctx)
{
	return ks_hold_new_child(ctx->ret);
}

SEC("tp/syscalls/sys_exit_clone3")
int ks_child_clone3(struct trace_event_raw_sys_exit *ctx)
{
	return ks_hold_new_child(ctx->ret);
}

SEC("tp/syscalls/sys_exit_fork")
int ks_child_fork(struct trace_event_raw_sys_exit *ctx)
{
	return ks_hold_new_child(ctx->ret);
}

SEC("tp/syscalls/sys_exit_vfork")
int ks_child_vfork(struct trace_event_raw_sys_exit *ctx)
{
	return ks_hold_new_child(ctx->ret);
}

#define KS_UPROBE(name) SEC("uprobe") int BPF_KPROBE(ks_up_##name
#define KS_UP_GUARDED_OR_RETURN KS_GUARDED_OR_RETURN

KS_UPROBE(unlink), const char *path)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_UNLINK, KS_LAYER_UPROBE, KS_AT_FDCWD, path, 0);
	return 0;
}

KS_UPROBE(unlinkat), int dfd, const char *path, int flags)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_path(flags & 0x200 ? KS_OP_RMDIR : KS_OP_UNLINK, KS_LAYER_UPROBE, dfd, path, 0);
	return 0;
}

KS_UPROBE(rmdir), const char *path)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_RMDIR, KS_LAYER_UPROBE, KS_AT_FDCWD, path, 0);
	return 0;
}

KS_UPROBE(rename), const char *oldp, const char *newp)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_rename(KS_LAYER_UPROBE, KS_AT_FDCWD, oldp, KS_AT_FDCWD, newp);
	return 0;
}

KS_UPROBE(renameat), int olddfd, const char *oldp, int newdfd, const char *newp)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_rename(KS_LAYER_UPROBE, olddfd, oldp, newdfd, newp);
	return 0;
}

KS_UPROBE(truncate), const char *path)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_TRUNCATE, KS_LAYER_UPROBE, KS_AT_FDCWD, path, 0);
	return 0;
}

KS_UPROBE(ftruncate), int fd)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_fd(KS_OP_TRUNCATE, KS_LAYER_UPROBE, fd);
	return 0;
}

/* fallocate and posix_fallocate (and their 64 aliases): stopped before the
 * call, which ext4 would carry out in full after a kill at its entry. */
KS_UPROBE(fallocate), int fd, int mode, long offset, long len)
{
	KS_UP_GUARDED_OR_RETURN();
	if (!(mode & (KS_FALLOC_FL_PUNCH_HOLE | KS_FALLOC_FL_COLLAPSE_RANGE)))
		KS_SPACE(KS_LAYER_UPROBE, fd, (__u64)len, true);
	return 0;
}

KS_UPROBE(posix_fallocate), int fd, long offset, long len)
{
	KS_UP_GUARDED_OR_RETURN();
	KS_SPACE(KS_LAYER_UPROBE, fd, (__u64)len, true);
	return 0;
}

KS_UPROBE(open), const char *path, int flags)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_open(KS_LAYER_UPROBE, KS_AT_FDCWD, path, (__u32)flags);
	return 0;
}

KS_UPROBE(openat), int dfd, const char *path, int flags)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_open(KS_LAYER_UPROBE, dfd, path, (__u32)flags);
	return 0;
}

KS_UPROBE(creat), const char *path)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_OPEN_TRUNC, KS_LAYER_UPROBE, KS_AT_FDCWD, path, 0);
	return 0;
}

KS_UPROBE(link), const char *oldp, const char *newp)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_LINK, KS_LAYER_UPROBE, KS_AT_FDCWD, oldp, 0);
	ks_on_path(KS_OP_CREATE_IN, KS_LAYER_UPROBE, KS_AT_FDCWD, newp, 0);
	return 0;
}

KS_UPROBE(linkat), int olddfd, const char *oldp, int newdfd, const char *newp)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_LINK, KS_LAYER_UPROBE, olddfd, oldp, 0);
	ks_on_path(KS_OP_CREATE_IN, KS_LAYER_UPROBE, newdfd, newp, 0);
	return 0;
}

KS_UPROBE(mount), const char *source, const char *target, const char *type, unsigned long flags)
{
	KS_UP_GUARDED_OR_RETURN();
	if (flags & KS_MS_PROPAGATION)
		return 0;
	if (!ks_on_path(ks_mount_op(flags), KS_LAYER_UPROBE, KS_AT_FDCWD, target, 0) &&
	    (flags & (KS_MS_BIND | KS_MS_MOVE)))
		ks_on_mount_source(KS_LAYER_UPROBE, KS_AT_FDCWD, source);
	return 0;
}

/* umount and umount2 */
KS_UPROBE(umount), const char *target)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_UMOUNT, KS_LAYER_UPROBE, KS_AT_FDCWD, target, 0);
	return 0;
}

KS_UPROBE(open_tree), int dfd, const char *path, unsigned int flags)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_open_tree(KS_LAYER_UPROBE, dfd, path, flags);
	return 0;
}

KS_UPROBE(move_mount), int from_dfd, const char *from, int to_dfd, const char *to)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_move_mount(KS_LAYER_UPROBE, from_dfd, from, to_dfd, to);
	return 0;
}

KS_UPROBE(mount_setattr), int dfd, const char *path, unsigned int flags, const void *attr)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_mount_setattr(KS_LAYER_UPROBE, dfd, path, attr);
	return 0;
}

KS_UPROBE(fspick), int dfd, const char *path, unsigned int flags)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_fspick(KS_LAYER_UPROBE, dfd, path);
	return 0;
}

KS_UPROBE(symlink), const char *target, const char *linkp)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_symlink(KS_LAYER_UPROBE, KS_AT_FDCWD, target, linkp);
	return 0;
}

KS_UPROBE(symlinkat), const char *target, int newdfd, const char *linkp)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_symlink(KS_LAYER_UPROBE, newdfd, target, linkp);
	return 0;
}

KS_UPROBE(chmod), const char *path, __u32 mode)
{
	KS_UP_GUARDED_OR_RETURN();
	KS_CHMOD(KS_LAYER_UPROBE, KS_AT_FDCWD, path, mode, 0);
	return 0;
}

KS_UPROBE(fchmod), int fd, __u32 mode)
{
	KS_UP_GUARDED_OR_RETURN();
	KS_CHMOD(KS_LAYER_UPROBE, fd, NULL, mode, 0);
	return 0;
}

KS_UPROBE(fchmodat), int dfd, const char *path, __u32 mode, int at)
{
	KS_UP_GUARDED_OR_RETURN();
	KS_CHMOD(KS_LAYER_UPROBE, dfd, path, mode, at);
	return 0;
}

KS_UPROBE(chown), const char *path, __u32 uid, __u32 gid)
{
	KS_UP_GUARDED_OR_RETURN();
	KS_CHOWN(KS_LAYER_UPROBE, KS_AT_FDCWD, path, uid, gid, 0);
	return 0;
}

KS_UPROBE(lchown), const char *path, __u32 uid, __u32 gid)
{
	KS_UP_GUARDED_OR_RETURN();
	KS_CHOWN(KS_LAYER_UPROBE, KS_AT_FDCWD, path, uid, gid, KS_AT_SYMLINK_NOFOLLOW);
	return 0;
}

KS_UPROBE(fchown), int fd, __u32 uid, __u32 gid)
{
	KS_UP_GUARDED_OR_RETURN();
	KS_CHOWN(KS_LAYER_UPROBE, fd, NULL, uid, gid, 0);
	return 0;
}

KS_UPROBE(fchownat), int dfd, const char *path, __u32 uid, __u32 gid, int at)
{
	KS_UP_GUARDED_OR_RETURN();
	KS_CHOWN(KS_LAYER_UPROBE, dfd, path, uid, gid, at);
	return 0;
}

/* setxattr, lsetxattr, removexattr, lremovexattr (setfacl, setfattr) */
KS_UPROBE(xattr), const char *path)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_path(KS_OP_XATTR, KS_LAYER_UPROBE, KS_AT_FDCWD, path, 0);
	return 0;
}

/* fsetxattr, fremovexattr */
KS_UPROBE(fxattr), int fd)
{
	KS_UP_GUARDED_OR_RETURN();
	ks_on_fd(KS_OP_XATTR, KS_LAYER_UPROBE, fd);
	return 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Who is guarded, and the exec/fork/exit stream of guarded processes.
 *
 * Guarantee (every kernel with raw tracepoints and BPF ring buffers, 5.8+):
 * a child of a guarded task is marked guarded in sched_process_fork, which
 * runs in the parent before the child is first scheduled, so no child ever
 * runs unguarded. A task that execs an agent binary, or execs inside a guarded
 * cgroup or as a guarded uid, is marked before its new image runs an
 * instruction; agents and uids without a controlling terminal are also held
 * (SIGSTOP) until the daemon has moved them into a session cgroup.
 *
 * Raw tracepoints are used so that this layer needs no tracefs.
 */
#include "ks_helpers.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the daemon before load. */
const volatile bool hold_seeded_tasks = true;

/* Kernel-opened sessions take ids KS_SESSION_KERNEL_BIT | n. */
__u32 next_kernel_session = 0;

static __always_inline __u32 ks_new_session_id(void)
{
	return KS_SESSION_KERNEL_BIT | (__sync_fetch_and_add(&next_kernel_session, 1) + 1);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(ks_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ks_task_guard *guard = bpf_map_lookup_elem(&guarded_tasks, &tgid);
	struct ks_task_guard fresh = {};
	__u32 flags = 0;

	if (!guard) {
		/* Not guarded yet: is this exec a seed? Paid only at exec. */
		__u64 cgid = bpf_get_current_cgroup_id();
		struct ks_cgroup_guard *cg = bpf_map_lookup_elem(&guarded_cgroups, &cgid);

		if (cg) {
			fresh.session_id = cg->session_id;
			fresh.seed = KS_SEED_CGROUP;
		} else {
			char comm[KS_COMM_LEN] = {};
			__u32 uid = (__u32)bpf_get_current_uid_gid();

			bpf_get_current_comm(comm, sizeof(comm));
			if (bpf_map_lookup_elem(&agent_names, comm))
				fresh.seed = KS_SEED_AGENT;
			else if (bpf_map_lookup_elem(&guarded_uids, &uid))
				fresh.seed = KS_SEED_UID;
			else
				return 0;
			fresh.session_id = ks_new_session_id();
			flags |= KS_EVF_NEW_SESSION;
			/* A task with a controlling terminal is not stopped: its
			 * job-control shell would see the stop and report the job
			 * as stopped. It is guarded from here all the same; the
			 * daemon moves it into its session as soon as it reads
			 * this event. */
			struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
			if (hold_seeded_tasks && !BPF_CORE_READ(cur, signal, tty))
				flags |= KS_EVF_HELD;
		}
		if (bpf_map_update_elem(&guarded_tasks, &tgid, &fresh, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&guarded_tasks, &tgid)) {
			/* Cannot mark it: never let it run unmarked. */
			ks_count(KS_CTR_GUARD_FULL);
			bpf_send_signal(KS_SIGKILL);
			return 0;
		}
		guard = &fresh;
	}

	struct ks_exec_event *ev = ks_reserve(sizeof(*ev), KS_EVENT_EXEC);
	if (ev) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		bool trunc = false;

		ks_fill_header(&ev->hdr, KS_EVENT_EXEC, task, guard->session_id);
		ev->seed = guard->seed;
		ev->_pad0 = 0;

		long n = bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename),
						   BPF_CORE_READ(bprm, filename));
		ev->filename_len = n > 0 ? n : 0;
		if (n == sizeof(ev->filename))
			flags |= KS_EVF_FILENAME_TRUNC;

		unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
		unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
		__u32 len = arg_end > arg_start ? arg_end - arg_start : 0;
		if (len > KS_ARGV_MAX - 1) {
			len = KS_ARGV_MAX - 1;
			flags |= KS_EVF_ARGV_TRUNC;
		}
		len &= KS_ARGV_MAX - 1;
		if (bpf_probe_read_user(ev->argv, len, (void *)arg_start))
			len = 0;
		ev->argv_len = len;

		struct path pwd = BPF_CORE_READ(task, fs, pwd);
		ev->cwd_len = ks_path_components(&pwd, ev->cwd, &trunc);
		if (trunc)
			flags |= KS_EVF_CWD_TRUNC;
		if (!BPF_CORE_READ(pwd.dentry, d_hash.pprev) && ev->cwd_len)
			flags |= KS_EVF_CWD_DELETED;

		struct path exe = BPF_CORE_READ(bprm, file, f_path);
		ev->exe_len = ks_path_components(&exe, ev->exe, &trunc);
		if (trunc)
			flags |= KS_EVF_EXE_TRUNC;

		ev->hdr.flags = flags;
		ks_submit_if(ev, KS_EVENT_EXEC, flags & KS_EVF_HELD);
	}

	if (flags & KS_EVF_HELD) {
		/* Stopped on the way back to user space: the new image has not run
		 * when the daemon moves it into its session cgroup. */
		ks_count(KS_CTR_HELD);
		bpf_send_signal(KS_SIGSTOP);
	}
	return 0;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(ks_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);

	if (ptgid == ctgid)
		return 0; /* a new thread shares its process's guard */

	struct ks_task_guard *guard = bpf_map_lookup_elem(&guarded_tasks, &ptgid);
	struct ks_task_guard g;

	if (guard) {
		g.session_id = guard->session_id;
		g.seed = KS_SEED_INHERITED;
	} else {
		/* A process already in a guarded cgroup when the daemon started. */
		__u64 cgid = bpf_get_current_cgroup_id();
		struct ks_cgroup_guard *cg = bpf_map_lookup_elem(&guarded_cgroups, &cgid);

		if (!cg)
			return 0;
		g.session_id = cg->session_id;
		g.seed = KS_SEED_CGROUP;
		bpf_map_update_elem(&guarded_tasks, &ptgid, &g, BPF_NOEXIST);
	}

	if (bpf_map_update_elem(&guarded_tasks, &ctgid, &g, BPF_ANY)) {
		/* The child cannot be marked. It has not run yet; the parent dies
		 * with it (SIGKILL to the whole group is not possible from here). */
		ks_count(KS_CTR_GUARD_FULL);
		bpf_send_signal(KS_SIGKILL);
	}

	/* Its uprobes are attached by the daemon: held at its return from fork
	 * until then (file_guard's ks_child_*). */
	__u32 zero = 0;
	__u32 *scoped = bpf_map_lookup_elem(&uprobe_scope, &zero);
	if (scoped && *scoped) {
		__u32 one = 1;
		bpf_map_update_elem(&uprobe_pending, &ctgid, &one, BPF_ANY);
	}

	struct ks_fork_event *ev = ks_reserve(sizeof(*ev), KS_EVENT_FORK);
	if (!ev)
		return 0;
	ks_fill_header(&ev->hdr, KS_EVENT_FORK, parent, g.session_id);
	ev->hdr.pid = ctgid;
	ev->hdr.tid = BPF_CORE_READ(child, pid);
	ev->hdr.ppid = ptgid;
	ks_submit(ev, KS_EVENT_FORK);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(ks_exit, struct task_struct *p)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ks_task_guard *guard = bpf_map_lookup_elem(&guarded_tasks, &tgid);

	if (!guard)
		return 0;
	/* Only the last thread of the group ends the process. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;

	__u32 session_id = guard->session_id;
	struct ks_exit_event *ev = ks_reserve(sizeof(*ev), KS_EVENT_EXIT);
	if (ev) {
		ks_fill_header(&ev->hdr, KS_EVENT_EXIT, p, session_id);
		ev->exit_code = BPF_CORE_READ(p, exit_code);
		ev->_pad0 = 0;
		ks_submit(ev, KS_EVENT_EXIT);
	}
	bpf_map_delete_elem(&guarded_tasks, &tgid);
	bpf_map_delete_elem(&uprobe_pending, &tgid);
	return 0;
}

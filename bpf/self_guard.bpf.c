// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Self-protection: a guarded process that goes for killswitch itself or for
 * the kernel under it is killed, and the attempt recorded.
 *
 *  - signals to the daemon (kill, tkill, tgkill, sigqueue, a pidfd of it),
 *    or to every process (kill(-1, ...));
 *  - ptrace attach to the daemon, process_vm_writev into it;
 *  - bpf(): any command (detaching, replacing or reading programs and maps
 *    starts with one);
 *  - reach: signals, ptrace attach, pidfd_open and process_vm_writev aimed at
 *    a process outside the caller's session (the database server, another
 *    agent's session, any unguarded process) unless the policy names it
 *    (processes.reachable). At a libc entry a process of another session is
 *    killed before the call; a pid in no session (unguarded, gone, a thread,
 *    a process group) stops the caller there, and the daemon, which can read
 *    /proc, judges the target and lets it go on or kills it. A raw system
 *    call is contained only when it aims at another session;
 *  - loading or unloading kernel modules, kexec, reboot.
 *
 * Two layers, as for files: uprobes on the libc wrappers kill the task before
 * the call (the daemon is never signalled, the module never loaded); the
 * syscall tracepoints catch raw system calls, where the signal is acted on
 * only when that call returns: the call runs, the task dies right after. For
 * bpf() that is enough in practice: every detach needs an object fd, which
 * needs an earlier bpf() call. Signal 0 (is it alive?) is allowed.
 */
#include "ks_self.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KS_PTRACE_ATTACH 16
#define KS_PTRACE_SEIZE 0x4206

/* kill()'s target: a pid, a process group (-pgid), or -1 for every process. */
static __always_inline bool ks_kill_target_protected(__s64 pid)
{
	if (pid == -1)
		return true;
	return ks_protected(pid < 0 ? -pid : pid);
}

/* ---- syscall tracepoints: raw system calls ---- */

/* The body gets the system call's number and its first three arguments read
 * once at the top: read in two branches, clang may address ctx through a
 * moved pointer, which the verifier refuses. */
#define KS_SELF_TP(name)                                                                          \
	static __always_inline int ks_self_##name##_body(__u32 nr, const __u64 *args);            \
	SEC("tp/syscalls/sys_enter_" #name)                                                       \
	int ks_self_##name(struct trace_event_raw_sys_enter *ctx)                                 \
	{                                                                                         \
		__u64 args[3] = {ctx->args[0], ctx->args[1], ctx->args[2]};                       \
		__u32 nr = ctx->id;                                                               \
		asm volatile("" : "+r"(nr));                                                      \
		return ks_self_##name##_body(nr, args);                                           \
	}                                                                                         \
	static __always_inline int ks_self_##name##_body(__u32 nr, const __u64 *args)

#define KS_GUARDED_OR_RETURN(g)                                  \
	struct ks_task_guard *g = ks_guard_of_current();         \
	if (!g)                                                  \
		return 0

/* A signal sent by a raw system call: to the daemon, or out of the caller's
 * reach. Signal 0 (is it alive?) is let through. */
static __always_inline int ks_signal_at_syscall(struct ks_task_guard *g, __s64 pid, __u64 sig,
						__u32 nr, bool to_daemon)
{
	if (sig == 0)
		return 0;
	if (to_daemon)
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_TRACEPOINT, pid, sig, nr);
	return ks_reach_at_syscall(g, KS_TAMPER_REACH_SIGNAL, pid, sig, nr);
}

KS_SELF_TP(kill)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 pid = (int)args[0];
	return ks_signal_at_syscall(g, pid, args[1], nr, ks_kill_target_protected(pid));
}

KS_SELF_TP(tkill)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 tid = (int)args[0];
	return ks_signal_at_syscall(g, tid, args[1], nr, ks_protected(tid));
}

KS_SELF_TP(tgkill)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 tgid = (int)args[0];
	return ks_signal_at_syscall(g, tgid, args[2], nr, ks_protected(tgid));
}

KS_SELF_TP(rt_sigqueueinfo)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 pid = (int)args[0];
	return ks_signal_at_syscall(g, pid, args[1], nr, ks_protected(pid));
}

KS_SELF_TP(rt_tgsigqueueinfo)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 tgid = (int)args[0];
	return ks_signal_at_syscall(g, tgid, args[2], nr, ks_protected(tgid));
}

KS_SELF_TP(pidfd_open)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 pid = (int)args[0];
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_PIDFD, KS_LAYER_TRACEPOINT, pid, 0, nr);
	return ks_reach_at_syscall(g, KS_TAMPER_REACH_PIDFD, pid, 0, nr);
}

KS_SELF_TP(ptrace)
{
	KS_GUARDED_OR_RETURN(g);
	__u64 req = args[0];
	__s64 pid = (int)args[1];
	if (req != KS_PTRACE_ATTACH && req != KS_PTRACE_SEIZE)
		return 0;
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_PTRACE, KS_LAYER_TRACEPOINT, pid, req, nr);
	return ks_reach_at_syscall(g, KS_TAMPER_REACH_PTRACE, pid, req, nr);
}

KS_SELF_TP(process_vm_writev)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 pid = (int)args[0];
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_VM_WRITE, KS_LAYER_TRACEPOINT, pid, 0, nr);
	return ks_reach_at_syscall(g, KS_TAMPER_REACH_VM_WRITE, pid, 0, nr);
}

KS_SELF_TP(bpf)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_BPF, KS_LAYER_TRACEPOINT, 0, args[0], nr);
}

KS_SELF_TP(reboot)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_REBOOT, KS_LAYER_TRACEPOINT, 0, args[2], nr);
}

/* Kernels without module or kexec support have no such tracepoints: user
 * space attaches these only where they exist. */
KS_SELF_TP(init_module)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_MODULE, KS_LAYER_TRACEPOINT, 0, 0, nr);
}

KS_SELF_TP(finit_module)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_MODULE, KS_LAYER_TRACEPOINT, 0, 0, nr);
}

KS_SELF_TP(delete_module)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_MODULE, KS_LAYER_TRACEPOINT, 0, 0, nr);
}

KS_SELF_TP(kexec_load)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_KEXEC, KS_LAYER_TRACEPOINT, 0, 0, nr);
}

KS_SELF_TP(kexec_file_load)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_KEXEC, KS_LAYER_TRACEPOINT, 0, 0, nr);
}

/* ---- libc entry points: the call never happens ---- */

#define KS_SELF_UP(name, ...) SEC("uprobe") int BPF_KPROBE(ks_self_up_##name, ##__VA_ARGS__)

/* Where uprobes are scoped to guarded processes, these run from file_guard's
 * ks_up_dispatch (one link per process for both layers). */

/* The same at a libc entry, before the call. */
static __always_inline int ks_signal_at_libc(struct ks_task_guard *g, __s64 pid, int sig,
					     bool to_daemon)
{
	if (sig == 0)
		return 0;
	if (to_daemon)
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_UPROBE, pid, (__u32)sig, 0);
	return ks_reach_at_libc(g, KS_TAMPER_REACH_SIGNAL, pid, (__u32)sig);
}

KS_SELF_UP(kill, int pid, int sig)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_signal_at_libc(g, pid, sig, ks_kill_target_protected(pid));
}

KS_SELF_UP(tgkill, int tgid, int tid, int sig)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_signal_at_libc(g, tgid, sig, ks_protected(tgid));
}

KS_SELF_UP(sigqueue, int pid, int sig)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_signal_at_libc(g, pid, sig, ks_protected(pid));
}

KS_SELF_UP(pidfd_open, int pid)
{
	KS_GUARDED_OR_RETURN(g);
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_PIDFD, KS_LAYER_UPROBE, pid, 0, 0);
	return ks_reach_at_libc(g, KS_TAMPER_REACH_PIDFD, pid, 0);
}

KS_SELF_UP(ptrace, long req, int pid)
{
	KS_GUARDED_OR_RETURN(g);
	if (req != KS_PTRACE_ATTACH && req != KS_PTRACE_SEIZE)
		return 0;
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_PTRACE, KS_LAYER_UPROBE, pid, req, 0);
	return ks_reach_at_libc(g, KS_TAMPER_REACH_PTRACE, pid, req);
}

KS_SELF_UP(process_vm_writev, int pid)
{
	KS_GUARDED_OR_RETURN(g);
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_VM_WRITE, KS_LAYER_UPROBE, pid, 0, 0);
	return ks_reach_at_libc(g, KS_TAMPER_REACH_VM_WRITE, pid, 0);
}

KS_SELF_UP(reboot, int howto)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_REBOOT, KS_LAYER_UPROBE, 0, (__u32)howto, 0);
}

KS_SELF_UP(module)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_MODULE, KS_LAYER_UPROBE, 0, 0, 0);
}

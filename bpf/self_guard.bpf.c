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

#define KS_SELF_TP(name) \
	SEC("tp/syscalls/sys_enter_" #name) int ks_self_##name(struct trace_event_raw_sys_enter *ctx)

#define KS_GUARDED_OR_RETURN(g)                                  \
	struct ks_task_guard *g = ks_guard_of_current();         \
	if (!g)                                                  \
		return 0

KS_SELF_TP(kill)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 pid = (int)ctx->args[0];
	__u64 sig = ctx->args[1];
	if (sig != 0 && ks_kill_target_protected(pid))
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_TRACEPOINT, pid, sig, ctx->id);
	return 0;
}

KS_SELF_TP(tkill)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 tid = (int)ctx->args[0];
	__u64 sig = ctx->args[1];
	if (sig != 0 && ks_protected(tid))
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_TRACEPOINT, tid, sig, ctx->id);
	return 0;
}

KS_SELF_TP(tgkill)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 tgid = (int)ctx->args[0];
	__u64 sig = ctx->args[2];
	if (sig != 0 && ks_protected(tgid))
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_TRACEPOINT, tgid, sig, ctx->id);
	return 0;
}

KS_SELF_TP(rt_sigqueueinfo)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 pid = (int)ctx->args[0];
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_TRACEPOINT, pid, ctx->args[1], ctx->id);
	return 0;
}

KS_SELF_TP(rt_tgsigqueueinfo)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 tgid = (int)ctx->args[0];
	if (ks_protected(tgid))
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_TRACEPOINT, tgid, ctx->args[2],
				 ctx->id);
	return 0;
}

KS_SELF_TP(pidfd_open)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 pid = (int)ctx->args[0];
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_PIDFD, KS_LAYER_TRACEPOINT, pid, 0, ctx->id);
	return 0;
}

KS_SELF_TP(ptrace)
{
	KS_GUARDED_OR_RETURN(g);
	__u64 req = ctx->args[0];
	__s64 pid = (int)ctx->args[1];
	if ((req == KS_PTRACE_ATTACH || req == KS_PTRACE_SEIZE) && ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_PTRACE, KS_LAYER_TRACEPOINT, pid, req, ctx->id);
	return 0;
}

KS_SELF_TP(process_vm_writev)
{
	KS_GUARDED_OR_RETURN(g);
	__s64 pid = (int)ctx->args[0];
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_VM_WRITE, KS_LAYER_TRACEPOINT, pid, 0, ctx->id);
	return 0;
}

KS_SELF_TP(bpf)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_BPF, KS_LAYER_TRACEPOINT, 0, ctx->args[0], ctx->id);
}

KS_SELF_TP(reboot)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_REBOOT, KS_LAYER_TRACEPOINT, 0, ctx->args[2], ctx->id);
}

/* Kernels without module or kexec support have no such tracepoints: user
 * space attaches these only where they exist. */
KS_SELF_TP(init_module)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_MODULE, KS_LAYER_TRACEPOINT, 0, 0, ctx->id);
}

KS_SELF_TP(finit_module)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_MODULE, KS_LAYER_TRACEPOINT, 0, 0, ctx->id);
}

KS_SELF_TP(delete_module)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_MODULE, KS_LAYER_TRACEPOINT, 0, 0, ctx->id);
}

KS_SELF_TP(kexec_load)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_KEXEC, KS_LAYER_TRACEPOINT, 0, 0, ctx->id);
}

KS_SELF_TP(kexec_file_load)
{
	KS_GUARDED_OR_RETURN(g);
	return ks_tamper(g, KS_TAMPER_KEXEC, KS_LAYER_TRACEPOINT, 0, 0, ctx->id);
}

/* ---- libc entry points: the call never happens ---- */

#define KS_SELF_UP(name, ...) SEC("uprobe") int BPF_KPROBE(ks_self_up_##name, ##__VA_ARGS__)

KS_SELF_UP(kill, int pid, int sig)
{
	KS_GUARDED_OR_RETURN(g);
	if (sig != 0 && ks_kill_target_protected(pid))
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_UPROBE, pid, (__u32)sig, 0);
	return 0;
}

KS_SELF_UP(tgkill, int tgid, int tid, int sig)
{
	KS_GUARDED_OR_RETURN(g);
	if (sig != 0 && ks_protected(tgid))
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_UPROBE, tgid, (__u32)sig, 0);
	return 0;
}

KS_SELF_UP(sigqueue, int pid, int sig)
{
	KS_GUARDED_OR_RETURN(g);
	if (sig != 0 && ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_SIGNAL, KS_LAYER_UPROBE, pid, (__u32)sig, 0);
	return 0;
}

KS_SELF_UP(pidfd_open, int pid)
{
	KS_GUARDED_OR_RETURN(g);
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_PIDFD, KS_LAYER_UPROBE, pid, 0, 0);
	return 0;
}

KS_SELF_UP(ptrace, long req, int pid)
{
	KS_GUARDED_OR_RETURN(g);
	if ((req == KS_PTRACE_ATTACH || req == KS_PTRACE_SEIZE) && ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_PTRACE, KS_LAYER_UPROBE, pid, req, 0);
	return 0;
}

KS_SELF_UP(process_vm_writev, int pid)
{
	KS_GUARDED_OR_RETURN(g);
	if (ks_protected(pid))
		return ks_tamper(g, KS_TAMPER_VM_WRITE, KS_LAYER_UPROBE, pid, 0, 0);
	return 0;
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

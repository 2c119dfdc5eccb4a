// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * databases.discover: a note for each TCP socket on the host that begins to
 * listen, so that the daemon looks for a new database server's (or proxy's)
 * listeners at once rather than at its next periodic scan
 * (userspace/db_guard/listen_watch.h).
 *
 *   tracepoint sock/inet_sock_set_state: runs at each state change of a TCP
 *     socket (a connection makes a few); anything but a change to LISTEN
 *     returns after one comparison. Not a syscall tracepoint: it puts no
 *     thread on the syscall slow path.
 *
 * Loaded on its own, with a ring buffer of its own, and never pinned: it
 * serves the running daemon only (with no daemon there is nobody to look).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <killswitch/abi/events.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KS_TCP_LISTEN 10
#define KS_IPPROTO_TCP 6

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} listen_notes SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int ks_listen(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->newstate != KS_TCP_LISTEN || ctx->protocol != KS_IPPROTO_TCP)
		return 0;
	struct ks_listen_note *n = bpf_ringbuf_reserve(&listen_notes, sizeof(*n), 0);
	if (!n)
		return 0; /* the periodic scan finds it */
	n->ts_ns = bpf_ktime_get_boot_ns();
	n->pid = bpf_get_current_pid_tgid() >> 32;
	n->family = ctx->family;
	n->port = ctx->sport;
	bpf_get_current_comm(n->comm, sizeof(n->comm));
	bpf_ringbuf_submit(n, BPF_RB_FORCE_WAKEUP);
	return 0;
}

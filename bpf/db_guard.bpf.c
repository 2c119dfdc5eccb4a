// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Database statements of guarded processes, checked before they are sent.
 *
 * Client-library layer (every kernel with uprobes): uprobes on libpq's send
 * functions (PQsendQuery, PQsendQueryParams, PQsendPrepare; PQexec,
 * PQexecParams and PQprepare call them). A statement whose text holds a
 * destructive keyword at a word boundary (or that is longer than the window
 * read) stops the task (SIGSTOP) before libpq writes a byte; the daemon parses
 * it with PostgreSQL's grammar and lets it go or kills it. Covers libpq
 * clients over TCP and unix sockets alike; clients that speak the wire
 * protocol themselves are not covered here.
 */
#include "ks_helpers.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* 1: monitor mode (the policy's mode or databases.mode): record, never hold.
 * A map, not read-only data, so that a policy reload can change it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} db_guard_monitor SEC(".maps");

struct ks_db_scan {
	char *q;
	__u32 len;
	bool hit;
};

static __always_inline char ks_up(char c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static __always_inline bool ks_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '$';
}

/* Does the text at i start with these bytes (a word of its own or not)? */
static __always_inline bool ks_starts(const char *q, __u32 i, __u32 len, const char *p, __u32 n)
{
	if (i + n > len)
		return false;
	for (__u32 k = 0; k < n; k++)
		if (ks_up(q[(i + k) & (KS_DB_QUERY_MAX - 1)]) != p[k])
			return false;
	return true;
}

/* Does the keyword start at i, as a word of its own? */
static __always_inline bool ks_kw(const char *q, __u32 i, __u32 len, const char *kw, __u32 n)
{
	if (!ks_starts(q, i, len, kw, n))
		return false;
	return i + n >= len || !ks_word_char(q[(i + n) & (KS_DB_QUERY_MAX - 1)]);
}

/* Errs towards holding: keywords inside strings and comments hold too, and
 * the daemon's parser then lets harmless statements go. Besides the words
 * of destruction, those of host access (the parser's host_access): COPY,
 * LOAD, CREATE (a language, an extension, a function in C), ALTER SYSTEM,
 * and every function whose name starts with lo_ or pg_, or is escaped (U&). */
static long ks_db_scan_step(__u32 i, void *data)
{
	struct ks_db_scan *s = data;

	if (i >= s->len)
		return 1;
	if (i > 0 && ks_word_char(s->q[(i - 1) & (KS_DB_QUERY_MAX - 1)]))
		return 0;
	char c = ks_up(s->q[i & (KS_DB_QUERY_MAX - 1)]);
	bool hit = false;

	if (c == 'D')
		hit = ks_kw(s->q, i, s->len, "DROP", 4) || ks_kw(s->q, i, s->len, "DELETE", 6) ||
		      ks_kw(s->q, i, s->len, "DO", 2);
	else if (c == 'T')
		hit = ks_kw(s->q, i, s->len, "TRUNCATE", 8);
	else if (c == 'U')
		hit = ks_kw(s->q, i, s->len, "UPDATE", 6) || ks_starts(s->q, i, s->len, "U&", 2);
	else if (c == 'C')
		hit = ks_kw(s->q, i, s->len, "COPY", 4) || ks_kw(s->q, i, s->len, "CREATE", 6);
	else if (c == 'L')
		hit = ks_kw(s->q, i, s->len, "LOAD", 4) || ks_starts(s->q, i, s->len, "LO_", 3);
	else if (c == 'P')
		hit = ks_starts(s->q, i, s->len, "PG_", 3);
	else if (c == 'A')
		hit = ks_kw(s->q, i, s->len, "ALTER", 5);
	else if (c == 'E')
		hit = ks_kw(s->q, i, s->len, "EXECUTE", 7);
	if (hit) {
		s->hit = true;
		return 1;
	}
	return 0;
}

static __always_inline int ks_db_check(const char *uquery)
{
	struct ks_task_guard *g = ks_guard_of_current();

	if (!g || !uquery)
		return 0;
	struct ks_db_check_event *ev = ks_reserve(sizeof(*ev), KS_EVENT_DB_CHECK);
	if (!ev) {
		/* The statement cannot be checked: it is not sent. */
		bpf_send_signal(KS_SIGKILL);
		return 0;
	}
	long n = bpf_probe_read_user_str(ev->query, sizeof(ev->query), uquery);
	__u32 len = n > 0 ? n - 1 : 0;
	__u32 flags = 0;

	if (n == sizeof(ev->query))
		flags |= KS_DBF_TRUNC;
	struct ks_db_scan scan = {.q = ev->query, .len = len};
	if (!(flags & KS_DBF_TRUNC))
		bpf_loop(KS_DB_QUERY_MAX, ks_db_scan_step, &scan, 0);
	if (!scan.hit && !(flags & KS_DBF_TRUNC)) {
		/* Nothing that could destroy: sent at once. */
		bpf_ringbuf_discard(ev, 0);
		return 0;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	ks_fill_header(&ev->hdr, KS_EVENT_DB_CHECK, task, g->session_id);
	ev->kind = KS_DB_POSTGRES;
	ev->query_len = len;
	ev->_pad0 = 0;
	__u32 zero = 0;
	__u32 *monitor = bpf_map_lookup_elem(&db_guard_monitor, &zero);

	if (monitor && *monitor)
		flags |= KS_DBF_MONITOR;
	else if (ks_window_open(g->session_id))
		flags |= KS_DBF_WINDOW;
	else
		bpf_send_signal(KS_SIGSTOP);
	ev->flags = flags;
	ks_submit_if(ev, KS_EVENT_DB_CHECK, !(flags & (KS_DBF_MONITOR | KS_DBF_WINDOW)));
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ks_up_pq_send_query, void *conn, const char *query)
{
	return ks_db_check(query);
}

SEC("uprobe")
int BPF_KPROBE(ks_up_pq_send_prepare, void *conn, const char *name, const char *query)
{
	return ks_db_check(query);
}

/* PQconnectPoll makes the connection: while a guarded thread is inside it,
 * its connect() to a watched unix socket is libpq's (see db_wire). */
SEC("uprobe")
int BPF_KPROBE(ks_up_pq_connect_poll)
{
	if (!ks_guard_of_current())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), one = 1;
	bpf_map_update_elem(&libpq_connecting, &tid, &one, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ks_uret_pq_connect_poll)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&libpq_connecting, &tid);
	return 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Database requests of guarded processes, judged on the socket send path.
 *
 *   cgroup/connect4, cgroup/connect6 (root cgroup): a guarded process that
 *     connects a TCP socket to a watched endpoint gets a state (socket local
 *     storage). Every other connect() costs one hash lookup.
 *   sockops: when such a socket is established, it goes into the SOCKHASH the
 *     sk_msg program is attached to. No other socket is ever inspected.
 *   sk_msg: every sendmsg() on those sockets. One request (a PostgreSQL
 *     message, a MySQL packet, a Redis command, a MongoDB message) is judged
 *     per run; bpf_msg_apply_bytes() lets exactly that request through and
 *     the program runs again at the next one, so every run starts at a
 *     request boundary. A request that is not all there yet is corked
 *     (bpf_msg_cork_bytes) until it is. SK_DROP makes sendmsg() fail with
 *     EACCES and frees the bytes: nothing reaches the server, now or later.
 *
 * Each request that carries a statement is a record in the ring buffer, with
 * the kernel's verdict; the daemon classifies the same text with the full
 * parser for the audit trail, and applies the rule's action to the process.
 */
#include "ks_helpers.bpf.h"
#include "ks_sql.bpf.h"
#include <bpf/bpf_endian.h>

/* The judges read the request from the sk_msg (ks_msg_read below). */
#define KS_DB_REQ struct sk_msg_md
#include "ks_db_judge.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KS_AF_INET 2
#define KS_AF_INET6 10
#define KS_SOCK_STREAM 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ks_db_endpoint_key);
	__type(value, struct ks_db_endpoint);
} db_endpoints SEC(".maps");

/* FNV-1a hash of a watched unix socket's path -> endpoint */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct ks_db_endpoint);
} db_unix_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ks_db_sock);
} db_sock_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} db_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ks_db_config);
} db_config SEC(".maps");

static __always_inline struct ks_db_config *ks_db_cfg(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&db_config, &zero);
}

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ks_db_relay_key);
	__type(value, struct ks_db_relay_conn);
} db_relay_conns SEC(".maps");

/* Whether the relay listens on ip:port (network byte order) in the caller's
 * network namespace. When the daemon is down (or the caller is in another
 * namespace) nothing listens: the connection goes where it was going and the
 * send-path verdict below judges it. */
static __always_inline bool ks_relay_listens4(struct bpf_sock_addr *ctx, __u32 ip, __u16 port)
{
	struct bpf_sock_tuple t = {};

	t.ipv4.daddr = ip;
	t.ipv4.dport = port;
	struct bpf_sock *l = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!l)
		return false;
	bpf_sk_release(l);
	return true;
}

static __always_inline bool ks_relay_listens6(struct bpf_sock_addr *ctx, __u16 port)
{
	struct bpf_sock_tuple t = {};

	t.ipv6.daddr[3] = bpf_htonl(1);
	t.ipv6.dport = port;
	struct bpf_sock *l = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	if (!l)
		return false;
	bpf_sk_release(l);
	return true;
}

#define KS_LOOPBACK4 0x7f000001

/* The connection, if it is a guarded one to a watched endpoint, gets its
 * state; then, while the daemon's relay listens, it is sent there instead
 * (the relay connects to key's address itself and judges every request with
 * the full parsers). v4mapped: an IPv6 socket connecting to an IPv4 address. */
static __always_inline int ks_connect(struct bpf_sock_addr *ctx, struct ks_db_endpoint_key *key,
				      bool v6, bool v4mapped)
{
	struct ks_task_guard *g = ks_guard_of_current();

	if (!g)
		return 1;
	struct ks_db_endpoint_key dst = *key;
	struct ks_db_endpoint *ep = bpf_map_lookup_elem(&db_endpoints, key);
	if (!ep) {
		__builtin_memset(key->addr, 0, sizeof(key->addr));
		ep = bpf_map_lookup_elem(&db_endpoints, key);
	}
	if (!ep)
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	struct ks_db_sock *st = bpf_sk_storage_get(&db_sock_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		/* Cannot be watched: not connected at all. */
		ks_count(KS_CTR_DB_SOCK_FULL);
		return 0;
	}
	st->kind = ep->kind;
	st->endpoint_id = ep->id;
	st->session_id = g->session_id;
	st->tgid = bpf_get_current_pid_tgid() >> 32;
	st->phase = KS_DBP_STARTUP;
	st->relayed = 0;
	st->cookie = bpf_get_socket_cookie(ctx);
	__builtin_memcpy(st->dst, dst.addr, 16);
	st->dst_port = dst.port;
	st->_pad1 = 0;
	st->_pad2 = 0;

	struct ks_db_config *cfg = ks_db_cfg();
	if (!cfg)
		return 1;
	__u16 port4 = bpf_htons((__u16)cfg->relay_port4);
	__u16 port6 = bpf_htons((__u16)cfg->relay_port6);
	if (!v6 || v4mapped) {
		if (!cfg->relay_port4 || !ks_relay_listens4(ctx, bpf_htonl(KS_LOOPBACK4), port4))
			return 1;
		if (v4mapped) {
			ctx->user_ip6[0] = 0;
			ctx->user_ip6[1] = 0;
			ctx->user_ip6[2] = bpf_htonl(0xffff);
			ctx->user_ip6[3] = bpf_htonl(KS_LOOPBACK4);
		} else {
			ctx->user_ip4 = bpf_htonl(KS_LOOPBACK4);
		}
		ctx->user_port = port4;
		st->relayed = 1;
	} else {
		if (!cfg->relay_port6 || !ks_relay_listens6(ctx, port6))
			return 1;
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
		ctx->user_port = port6;
		st->relayed = 2;
	}
	ks_count(KS_CTR_DB_RELAYED);
	return 1;
}

SEC("cgroup/connect4")
int ks_db_connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->type != KS_SOCK_STREAM)
		return 1;
	struct ks_db_endpoint_key key = {};
	__u32 ip = ctx->user_ip4;

	key.addr[10] = 0xff;
	key.addr[11] = 0xff;
	__builtin_memcpy(&key.addr[12], &ip, 4);
	key.port = bpf_ntohs((__u16)ctx->user_port);
	return ks_connect(ctx, &key, false, false);
}

SEC("cgroup/connect6")
int ks_db_connect6(struct bpf_sock_addr *ctx)
{
	if (ctx->type != KS_SOCK_STREAM)
		return 1;
	struct ks_db_endpoint_key key = {};
	__u32 w[4];

	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
	__builtin_memcpy(key.addr, w, 16);
	key.port = bpf_ntohs((__u16)ctx->user_port);
	bool v4mapped = w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff);
	return ks_connect(ctx, &key, true, v4mapped);
}

/* ---- unix sockets: a connect-time rule ---- */

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;
extern int bpf_sock_addr_set_sun_path(struct bpf_sock_addr_kern *sa_kern, const __u8 *sun_path,
				      __u32 sun_path__sz) __ksym __weak;

#define KS_RELAY_PREFIX_LEN (sizeof(KS_DB_RELAY_UNIX_PREFIX) - 1)
#define KS_RELAY_NAME_LEN (1 + KS_RELAY_PREFIX_LEN + 16)

/* Send the connection to the relay's abstract socket for this path. */
static __always_inline bool ks_relay_unix(struct bpf_sock_addr_kern *sa, __u64 hash)
{
	char name[KS_RELAY_NAME_LEN] = {};
	const char prefix[] = KS_DB_RELAY_UNIX_PREFIX;

	if (!bpf_sock_addr_set_sun_path)
		return false;
#pragma unroll
	for (int i = 0; i < KS_RELAY_PREFIX_LEN; i++)
		name[1 + i] = prefix[i];
#pragma unroll
	for (int i = 0; i < 16; i++) {
		__u8 nib = (hash >> (60 - 4 * i)) & 0xf;
		name[1 + KS_RELAY_PREFIX_LEN + i] = nib < 10 ? '0' + nib : 'a' + nib - 10;
	}
	return bpf_sock_addr_set_sun_path(sa, (const __u8 *)name, KS_RELAY_NAME_LEN) == 0;
}

struct ks_unix_path {
	char path[108];
	__u64 hash;
	__u32 len;
};

struct ks_unix_cb {
	struct ks_unix_path *p;
};

static long ks_hash_path(__u32 i, void *data)
{
	struct ks_unix_path *p = ((struct ks_unix_cb *)data)->p;

	if (i >= sizeof(p->path) || p->path[i & 127] == 0) {
		p->len = i;
		return 1;
	}
	p->hash = (p->hash ^ (__u8)p->path[i & 127]) * KS_FNV_PRIME;
	return 0;
}

/*
 * cgroup/connect_unix (Linux 6.7 and later; libbpf names the section only
 * from 1.3, so it is declared as connect4 and user space sets the attach
 * type). A guarded process may not connect to a watched unix socket: the
 * requests on it cannot be read on the send path. The exception is libpq,
 * whose statements the libpq uprobes read: a connect() made inside
 * PQconnectPoll is let through.
 */
SEC("cgroup/connect4")
int ks_db_connect_unix(struct bpf_sock_addr *ctx)
{
	struct ks_task_guard *g = ks_guard_of_current();

	if (!g || !bpf_cast_to_kern_ctx)
		return 1;
	struct bpf_sock_addr_kern *sa = bpf_cast_to_kern_ctx(ctx);
	struct sockaddr_un *un = (struct sockaddr_un *)BPF_CORE_READ(sa, uaddr);
	__u32 zero = 0;
	struct ks_db_scratch *sc = bpf_map_lookup_elem(&db_scratch, &zero);
	struct ks_db_config *cfg = ks_db_cfg();

	if (!sc || !cfg || !un)
		return 1;
	struct ks_unix_path *p = (struct ks_unix_path *)sc->sql.text;

	p->hash = KS_FNV_OFFSET;
	p->len = 0;
	if (bpf_probe_read_kernel(p->path, sizeof(p->path), un->sun_path))
		return 1;
	if (p->path[0] == 0)
		return 1; /* abstract socket */
	struct ks_unix_cb cb = {.p = p};

	bpf_loop(sizeof(p->path), ks_hash_path, &cb, 0);
	struct ks_db_endpoint *ep = bpf_map_lookup_elem(&db_unix_paths, &p->hash);
	if (!ep)
		return 1;
	/* A deputy (systemd, D-Bus, a container runtime) would act for the
	 * session outside it: never relayed, never excused. */
	bool deputy = ep->kind == KS_DB_DEPUTY;
	/* The relay reads every request: the connection goes there. (Nothing
	 * can tell here whether the daemon is up; while it is not, the connect
	 * fails, as it is refused without the relay.) */
	if (!deputy && cfg->relay_unix && ks_relay_unix(sa, p->hash)) {
		ks_count(KS_CTR_DB_RELAYED);
		return 1;
	}
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	if (!deputy && bpf_map_lookup_elem(&libpq_connecting, &tid))
		return 1;
	bool refuse = deputy ? !cfg->deputy_monitor : cfg->refuse_unix && !cfg->monitor;
	/* The session's allow window lets it connect (and the connection stays
	 * open after the window: its requests cannot be read either way). */
	bool windowed = refuse && ks_window_open(g->session_id);
	if (windowed)
		refuse = false;
	struct ks_db_wire_event *ev = &sc->ev;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	ks_fill_header(&ev->hdr, KS_EVENT_DB_WIRE, task, g->session_id);
	ev->kind = ep->kind;
	ev->endpoint_id = ep->id;
	ev->verdict = refuse ? KS_DBV_REFUSE : windowed ? KS_DBV_WINDOW : KS_DBV_WOULD_REFUSE;
	ev->reason = KS_DBR_UNIX_SOCKET;
	ev->layer = KS_LAYER_CONNECT;
	ev->msg_type = 0;
	ev->msg_len = 0;
	ev->cookie = 0;
	ev->family = 1; /* AF_UNIX */
	ev->local_port = 0;
	ev->remote_port = 0;
	__u32 len = p->len;
	if (len > sizeof(p->path))
		len = sizeof(p->path);
	ev->text_len = len;
	if (bpf_probe_read_kernel(ev->text, len & 127, p->path) == 0 &&
	    bpf_ringbuf_output(&events, ev, offsetof(struct ks_db_wire_event, text) + (len & 127),
			       BPF_RB_FORCE_WAKEUP) == 0)
		ks_count(KS_CTR_EVENTS + KS_EVENT_DB_WIRE);
	else
		ks_count(KS_CTR_LOST + KS_EVENT_DB_WIRE);
	if (refuse)
		ks_count(KS_CTR_DB_REFUSED);
	return refuse ? 0 : 1;
}

SEC("sockops")
int ks_db_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	struct bpf_sock *sk = skops->sk;
	if (!sk)
		return 1;
	struct ks_db_sock *st = bpf_sk_storage_get(&db_sock_state, sk, 0, 0);
	if (!st)
		return 1;
	if (st->relayed) {
		/* The relay judges it: tell it what this connection is. */
		struct ks_db_relay_key k = {.port = (__u16)skops->local_port, .v6 = st->relayed == 2};
		struct ks_db_relay_conn c = {
			.kind = st->kind,
			.endpoint_id = st->endpoint_id,
			.session_id = st->session_id,
			.tgid = st->tgid,
			.cookie = st->cookie,
			.dst_port = st->dst_port,
		};
		__builtin_memcpy(c.dst, st->dst, 16);
		bpf_map_update_elem(&db_relay_conns, &k, &c, BPF_ANY);
		return 1;
	}
	__u64 cookie = bpf_get_socket_cookie(skops);
	if (bpf_sock_hash_update(skops, &db_socks, &cookie, BPF_NOEXIST) != 0) {
		/* Not inspectable: every request on it will be refused. */
		st->phase = KS_DBP_DEAD;
		ks_count(KS_CTR_DB_SOCK_FULL);
	}
	return 1;
}

/* ---- reading the message ---- */

static __always_inline int ks_msg_read(struct sk_msg_md *msg, __u32 off, void *dst, __u32 n)
{
	if (n == 0 || n > KS_DB_WINDOW)
		return -1;
	if (bpf_msg_pull_data(msg, off, off + n, 0))
		return -1;
	void *data = msg->data;
	void *end = msg->data_end;
	if (data + n > end)
		return -1;
	return ks_copy(dst, n, data) ? -1 : 0;
}

/* Wake the daemon for a record only when it must act (a refusal) or when
 * this much is waiting; otherwise it reads the records on its next wakeup or
 * tick. A wakeup is an interrupt, and in a virtual machine an expensive one
 * (measured: 9 us of the verdict's 12). */
#define KS_DB_WAKEUP_BYTES (256 * 1024)

/* Fill in the record and copy it to the ring buffer, text cut to its length.
 * False if the ring buffer is full: the request cannot be recorded. */
static __always_inline bool ks_db_emit(struct sk_msg_md *msg, struct ks_db_sock *st,
				       struct ks_db_wire_event *ev, const struct ks_judged *j,
				       __u32 verdict)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	ks_fill_header(&ev->hdr, KS_EVENT_DB_WIRE, task, st->session_id);
	ev->kind = st->kind;
	ev->endpoint_id = st->endpoint_id;
	ev->verdict = verdict;
	ev->reason = j->reason;
	ev->layer = KS_LAYER_SK_MSG;
	ev->msg_type = j->msg_type;
	ev->msg_len = j->bytes;
	ev->text_len = j->text_len;
	ev->cookie = st->cookie;
	ev->family = msg->family;
	ev->local_port = msg->local_port;
	/* network byte order, shifted left by 16 on some kernels, not others */
	__u32 rp = bpf_ntohl(msg->remote_port);
	ev->remote_port = rp > 0xffff ? rp >> 16 : rp;
	if (msg->family == KS_AF_INET6) {
		__u32 l[4], r[4];

		l[0] = msg->local_ip6[0];
		l[1] = msg->local_ip6[1];
		l[2] = msg->local_ip6[2];
		l[3] = msg->local_ip6[3];
		r[0] = msg->remote_ip6[0];
		r[1] = msg->remote_ip6[1];
		r[2] = msg->remote_ip6[2];
		r[3] = msg->remote_ip6[3];
		__builtin_memcpy(ev->local_addr, l, 16);
		__builtin_memcpy(ev->remote_addr, r, 16);
	} else {
		__u32 l = msg->local_ip4, r = msg->remote_ip4;

		__builtin_memset(ev->local_addr, 0, 16);
		__builtin_memset(ev->remote_addr, 0, 16);
		__builtin_memcpy(ev->local_addr, &l, 4);
		__builtin_memcpy(ev->remote_addr, &r, 4);
	}
	__u32 text = j->text_len;
	if (text > KS_DB_WINDOW)
		text = KS_DB_WINDOW;
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (verdict == KS_DBV_REFUSE || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > KS_DB_WAKEUP_BYTES)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, ev, offsetof(struct ks_db_wire_event, text) + text, flags)) {
		ks_count(KS_CTR_LOST + KS_EVENT_DB_WIRE);
		return false;
	}
	ks_count(KS_CTR_EVENTS + KS_EVENT_DB_WIRE);
	return true;
}

SEC("sk_msg")
int ks_db_msg(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	struct ks_db_config *cfg = ks_db_cfg();
	struct ks_db_sock *st = sk ? bpf_sk_storage_get(&db_sock_state, sk, 0, 0) : NULL;

	if (!cfg)
		return SK_DROP;
	if (!st) {
		ks_count(KS_CTR_DB_REFUSED);
		return SK_DROP;
	}
	if (st->phase == KS_DBP_OPAQUE) {
		bpf_msg_apply_bytes(msg, 0xffffffff);
		return SK_PASS;
	}
	if (st->phase == KS_DBP_DEAD) {
		ks_count(KS_CTR_DB_REFUSED);
		return SK_DROP;
	}

	struct ks_judged j = {};
	__u32 zero = 0;
	struct ks_db_scratch *sc = bpf_map_lookup_elem(&db_scratch, &zero);

	if (!sc)
		return SK_DROP;
	struct ks_db_wire_event *ev = &sc->ev;

	KS_DB_JUDGE(msg, st, sc, ev, j);

	if (j.cork && !j.reason) {
		/* not all there: wait, nothing is sent meanwhile */
		bpf_msg_cork_bytes(msg, j.cork);
		return SK_PASS;
	}
	bool refuse = ks_db_refuses(&j, cfg);
	__u32 verdict = KS_DBV_PASS;

	if (refuse && cfg->monitor)
		verdict = KS_DBV_WOULD_REFUSE;
	else if (refuse)
		verdict = ks_window_open(st->session_id) ? KS_DBV_WINDOW : KS_DBV_REFUSE;
	else if (j.reason)
		verdict = KS_DBV_WOULD_REFUSE;
	ks_count(KS_CTR_DB_REQUESTS);
	if ((j.record || refuse) && !ks_db_emit(msg, st, ev, &j, verdict) &&
	    (verdict == KS_DBV_PASS || verdict == KS_DBV_WINDOW)) {
		/* Cannot be recorded: not sent either. */
		verdict = KS_DBV_REFUSE;
	}

	if (verdict == KS_DBV_REFUSE) {
		st->phase = KS_DBP_DEAD;
		ks_count(KS_CTR_DB_REFUSED);
		return SK_DROP;
	}
	if (j.opaque) {
		st->phase = KS_DBP_OPAQUE;
		bpf_msg_apply_bytes(msg, 0xffffffff);
		return SK_PASS;
	}
	if (j.ready)
		st->phase = KS_DBP_READY;
	if (j.ssl_asked)
		st->phase = KS_DBP_SSL_ASKED;
	if (j.bytes)
		bpf_msg_apply_bytes(msg, j.bytes);
	return SK_PASS;
}

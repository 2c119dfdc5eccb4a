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

struct ks_resp {
	__u32 avail; /* bytes of the request in the text */
	__u32 pos;
	__u32 nargs;
	__u32 body_off; /* EVAL's script */
	__u32 body_len;
	__u32 reason;
	__u32 need_more; /* ran out of bytes */
	__u32 bad;
	__u64 cmd;
	__u64 sub; /* the second argument */
	/* inline commands */
	__u32 end; /* the '\n' */
	__u32 word_start;
	__u32 in_word;
};

/* Per-CPU scratch: the request's text and the parsers' state (see
 * ks_sql_buf: state in a map value keeps the verifier's work small). */
struct ks_db_scratch {
	struct ks_db_wire_event ev; /* built here, copied to the ring buffer at its real size */
	struct ks_sql_buf sql;
	struct ks_resp resp;
	__u32 from; /* ks_find_nul */
	__u32 len;
	__u32 at;
	__u32 found;
};

struct ks_db_cb {
	struct ks_db_scratch *sc;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ks_db_scratch);
} db_scratch SEC(".maps");

static __always_inline struct ks_db_config *ks_db_cfg(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&db_config, &zero);
}

static __always_inline int ks_connect(struct bpf_sock_addr *ctx, struct ks_db_endpoint_key *key)
{
	struct ks_task_guard *g = ks_guard_of_current();

	if (!g)
		return 1;
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
	st->_pad0 = 0;
	st->cookie = bpf_get_socket_cookie(ctx);
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
	return ks_connect(ctx, &key);
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
	return ks_connect(ctx, &key);
}

/* ---- unix sockets: a connect-time rule ---- */

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

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
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	if (bpf_map_lookup_elem(&libpq_connecting, &tid))
		return 1;
	bool refuse = cfg->refuse_unix && !cfg->monitor;
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
	__u64 cookie = bpf_get_socket_cookie(skops);
	if (bpf_sock_hash_update(skops, &db_socks, &cookie, BPF_NOEXIST) != 0) {
		/* Not inspectable: every request on it will be refused. */
		st->phase = KS_DBP_DEAD;
		ks_count(KS_CTR_DB_SOCK_FULL);
	}
	return 1;
}

/* ---- reading the message ---- */

/* A copy of n bytes (at most KS_DB_WINDOW). The bound is checked again right
 * at the call: Linux 6.1's verifier loses an earlier check when n went
 * through the stack, and refuses the program. */
static __always_inline long ks_copy(void *dst, __u32 n, const void *src)
{
	barrier_var(n);
	if (n > KS_DB_WINDOW)
		return -1;
	return bpf_probe_read_kernel(dst, n, src);
}

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

static __always_inline __u32 ks_be32(const __u8 *b)
{
	return ((__u32)b[0] << 24) | ((__u32)b[1] << 16) | ((__u32)b[2] << 8) | b[3];
}

static __always_inline __u32 ks_le32(const __u8 *b)
{
	return ((__u32)b[3] << 24) | ((__u32)b[2] << 16) | ((__u32)b[1] << 8) | b[0];
}

static __always_inline __u32 ks_le32_at(const char *b, __u32 off)
{
	__u32 v = 0;

	for (int k = 3; k >= 0; k--)
		v = (v << 8) | (__u8)b[(off + k) & KS_WMASK];
	return v;
}

static long ks_find_nul(__u32 i, void *data)
{
	struct ks_db_scratch *sc = ((struct ks_db_cb *)data)->sc;
	__u32 k = sc->from + i;

	if (k >= sc->len || sc->sql.text[k & KS_WMASK] == 0) {
		sc->at = k;
		return 1;
	}
	return 0;
}

/* What one run decided. */
struct ks_judged {
	__u32 bytes;     /* the request's length on the wire; 0: wait for more */
	__u32 cork;      /* bytes to accumulate before the next run */
	__u32 reason;    /* KS_DBR_* */
	__u32 msg_type;
	__u32 text_off;  /* where the text starts in the request */
	__u32 text_len;
	bool record;     /* a statement: record it */
	bool opaque;     /* TLS / compression follows */
	bool ready;      /* the startup exchange is over */
	bool ssl_asked;  /* PostgreSQL: SSLRequest or GSSENCRequest passed */
};

/* The first n bytes of the request into h: false when they are not all there
 * yet (corked) or cannot be read (malformed). */
static __always_inline bool ks_head(struct sk_msg_md *msg, struct ks_judged *j, void *h, __u32 n)
{
	if (msg->size < n) {
		j->cork = n;
		return false;
	}
	if (ks_msg_read(msg, 0, h, n) < 0) {
		j->reason = KS_DBR_MALFORMED;
		return false;
	}
	return true;
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

/* Copy the request's text into the record and classify it as SQL. */
static __always_inline void ks_judge_sql(struct sk_msg_md *msg, struct ks_db_scratch *sc,
					 struct ks_db_wire_event *ev, struct ks_judged *j, __u32 dialect)
{
	j->record = true;
	if (j->text_len > KS_DB_WINDOW) {
		j->text_len = 0;
		j->reason = KS_DBR_TOO_LONG;
		return;
	}
	__u32 len = j->text_len;
	if (len == 0)
		return;
	if (ks_msg_read(msg, j->text_off, sc->sql.text, len) < 0 ||
	    ks_copy(ev->text, len, sc->sql.text)) {
		j->text_len = 0;
		j->reason = KS_DBR_MALFORMED;
		return;
	}
	__u32 base = 0;
	struct ks_db_cb cb = {.sc = sc};

	if (j->msg_type == 'P') {
		/* Parse: statement name, NUL, query, NUL, parameter types */
		sc->from = 0;
		sc->len = len;
		sc->at = len;
		bpf_loop(256, ks_find_nul, &cb, 0);
		if (sc->at >= len || sc->at >= 256) {
			j->reason = KS_DBR_MALFORMED;
			return;
		}
		base = sc->at + 1;
	}
	if (j->msg_type == 'P') {
		/* the query ends at its NUL; parameter types follow */
		sc->from = base;
		sc->len = len;
		sc->at = len;
		bpf_loop(KS_DB_WINDOW, ks_find_nul, &cb, 0);
		if (sc->at < len)
			len = sc->at;
	} else if (j->msg_type == 'Q' && sc->sql.text[(len - 1) & KS_WMASK] == 0) {
		/* Query: the text and its NUL. A NUL inside makes the server refuse
		 * the message; the tokenizer reads past it all the same. */
		len--;
	}
	if (base > len || len > KS_DB_WINDOW) {
		j->reason = KS_DBR_MALFORMED;
		return;
	}
	j->reason = ks_sql_classify(&sc->sql, base, len - base, dialect);
}

/* PostgreSQL frontend messages. */
static __always_inline void ks_judge_pg(struct sk_msg_md *msg, struct ks_db_sock *st,
					struct ks_db_scratch *sc, struct ks_db_wire_event *ev,
					struct ks_judged *j)
{
	__u8 h[8];
	__u32 size = msg->size;

	if (st->phase == KS_DBP_STARTUP || st->phase == KS_DBP_SSL_ASKED) {
		bool asked = st->phase == KS_DBP_SSL_ASKED;

		/* no type byte: length, then the protocol code */
		if (!ks_head(msg, j, h, 8))
			return;
		if (asked && h[0] == 0x16) {
			/* a TLS ClientHello: the server accepted TLS */
			j->reason = KS_DBR_TLS;
			j->record = true;
			j->opaque = true;
			return;
		}
		__u32 len = ks_be32(h), code = ks_be32(h + 4);
		if (len < 8 || len > 10000) {
			/* after GSSENCRequest: GSSAPI tokens, encrypted traffic */
			j->reason = asked ? KS_DBR_TLS : KS_DBR_MALFORMED;
			j->record = true;
			j->opaque = asked;
			return;
		}
		j->bytes = len;
		if (code == 80877103 || code == 80877104) {
			/* SSLRequest, GSSENCRequest: harmless in themselves; whether
			 * encryption follows shows in the next message */
			j->ssl_asked = true;
		} else if (code == 80877102) {
			/* CancelRequest: the connection ends after it */
		} else if (code >> 16 == 3) {
			j->ready = true;
		} else {
			j->reason = asked ? KS_DBR_TLS : KS_DBR_UNKNOWN;
			j->opaque = asked;
			j->record = true;
		}
		return;
	}
	if (!ks_head(msg, j, h, 5))
		return;
	__u32 len = ks_be32(h + 1);
	if (len < 4 || len > 0x3fffffff) {
		j->reason = KS_DBR_MALFORMED;
		j->record = true;
		return;
	}
	j->bytes = len + 1;
	j->msg_type = h[0];
	if (h[0] != 'Q' && h[0] != 'P')
		return; /* Bind, Execute, Sync, CopyData...: no statement text */
	j->text_off = 5;
	j->text_len = len - 4;
	if (j->text_len <= KS_DB_WINDOW && size < j->bytes) {
		j->cork = j->bytes;
		return;
	}
	ks_judge_sql(msg, sc, ev, j, KS_SQL_PG);
}

#define KS_MYSQL_CLIENT_COMPRESS 0x20
#define KS_MYSQL_CLIENT_SSL 0x800
#define KS_MYSQL_CLIENT_ZSTD 0x04000000

/* MySQL/MariaDB client packets: 3-byte length, sequence id, payload. */
static __always_inline void ks_judge_mysql(struct sk_msg_md *msg, struct ks_db_sock *st,
					   struct ks_db_scratch *sc, struct ks_db_wire_event *ev,
					   struct ks_judged *j)
{
	__u8 h[8];
	__u32 size = msg->size;

	if (!ks_head(msg, j, h, 5))
		return;
	__u32 len = h[0] | ((__u32)h[1] << 8) | ((__u32)h[2] << 16);
	__u32 seq = h[3];

	j->bytes = len + 4;
	if (st->phase == KS_DBP_STARTUP) {
		/* the handshake response (or SSL request): capability flags first */
		if (len < 4) {
			j->reason = KS_DBR_MALFORMED;
			j->record = true;
			return;
		}
		if (!ks_head(msg, j, h, 8))
			return;
		__u32 caps = ks_le32(h + 4);
		if (caps & KS_MYSQL_CLIENT_SSL) {
			j->reason = KS_DBR_TLS;
			j->record = true;
			j->opaque = true;
		} else if (caps & (KS_MYSQL_CLIENT_COMPRESS | KS_MYSQL_CLIENT_ZSTD)) {
			j->reason = KS_DBR_COMPRESSED;
			j->record = true;
			j->opaque = true;
		} else {
			j->ready = true;
		}
		return;
	}
	/* A command starts a new exchange with sequence id 0; the server
	 * refuses packets out of sequence, so the others are continuations
	 * (authentication, LOAD DATA LOCAL contents). */
	if (seq != 0 || len == 0)
		return;
	j->msg_type = h[4];
	if (h[4] != 0x03 && h[4] != 0x16)
		return; /* only COM_QUERY and COM_STMT_PREPARE carry SQL */
	if (len == 0xffffff) {
		/* 16 MiB or more, over several packets */
		j->reason = KS_DBR_TOO_LONG;
		j->record = true;
		return;
	}
	j->text_off = 5;
	j->text_len = len - 1;
	if (j->text_len <= KS_DB_WINDOW && size < j->bytes) {
		j->cork = j->bytes;
		return;
	}
	ks_judge_sql(msg, sc, ev, j, KS_SQL_MYSQL);
}

/* ---- Redis ---- */

#define KW_FLUSHALL KS_KW(8, KS_K8('F', 'L', 'U', 'S', 'H', 'A', 'L', 'L'))
#define KW_FLUSHDB KS_KW(7, KS_K7('F', 'L', 'U', 'S', 'H', 'D', 'B'))
#define KW_SHUTDOWN KS_KW(8, KS_K8('S', 'H', 'U', 'T', 'D', 'O', 'W', 'N'))
#define KW_SWAPDB KS_KW(6, KS_K6('S', 'W', 'A', 'P', 'D', 'B'))
#define KW_CONFIG KS_KW(6, KS_K6('C', 'O', 'N', 'F', 'I', 'G'))
#define KW_SET KS_KW(3, KS_K3('S', 'E', 'T'))
#define KW_DIR KS_KW(3, KS_K3('D', 'I', 'R'))
#define KW_DBFILENAME KS_KW(10, KS_K8('D', 'B', 'F', 'I', 'L', 'E', 'N', 'A'))
#define KW_NOSAVE KS_KW(6, KS_K6('N', 'O', 'S', 'A', 'V', 'E'))
#define KW_EVAL KS_KW(4, KS_K4('E', 'V', 'A', 'L'))
#define KW_EVAL_RO KS_KW(7, KS_K7('E', 'V', 'A', 'L', '_', 'R', 'O'))
#define KW_EVALSHA KS_KW(7, KS_K7('E', 'V', 'A', 'L', 'S', 'H', 'A'))
#define KW_EVALSHA_RO KS_KW(10, KS_K8('E', 'V', 'A', 'L', 'S', 'H', 'A', '_'))
#define KW_FCALL KS_KW(5, KS_K5('F', 'C', 'A', 'L', 'L'))
#define KW_FCALL_RO KS_KW(8, KS_K8('F', 'C', 'A', 'L', 'L', '_', 'R', 'O'))
#define KW_SCRIPT KS_KW(6, KS_K6('S', 'C', 'R', 'I', 'P', 'T'))
#define KW_FUNCTION KS_KW(8, KS_K8('F', 'U', 'N', 'C', 'T', 'I', 'O', 'N'))

static __always_inline char ks_rb(const struct ks_db_scratch *sc, __u32 i)
{
	return i < sc->resp.avail ? sc->sql.text[i & KS_WMASK] : 0;
}

/* A decimal number ending in \r\n at pos; -1 if malformed, -2 if cut. */
static __always_inline long ks_resp_num(struct ks_db_scratch *sc)
{
	struct ks_resp *r = &sc->resp;
	long v = 0;

	for (__u32 k = 0; k < 12; k++) {
		__u32 i = r->pos + k;

		if (i >= r->avail)
			return -2;
		char c = ks_rb(sc, i);
		if (c == '\r') {
			if (i + 1 >= r->avail)
				return -2;
			if (ks_rb(sc, i + 1) != '\n' || k == 0)
				return -1;
			r->pos = i + 2;
			return v;
		}
		if (!ks_is_digit(c))
			return -1;
		v = v * 10 + (c - '0');
	}
	return -1;
}

static __always_inline __u64 ks_resp_word(const struct ks_db_scratch *sc, __u32 off, __u32 len)
{
	__u64 packed = 0;

	for (__u32 k = 0; k < 8; k++) {
		if (k >= len)
			break;
		packed = (packed << 8) | (__u8)ks_upc(ks_rb(sc, off + k));
	}
	return KS_KW(len, packed);
}

/* Argument idx of a command, word w at off. */
static __always_inline void ks_resp_note_arg(struct ks_resp *r, __u32 idx, __u64 w, __u32 off,
					     __u32 len)
{
	if (idx == 0) {
		r->cmd = w;
		return;
	}
	if (idx == 1) {
		r->sub = w;
		r->body_off = off;
		r->body_len = len;
	}
	if (r->cmd == KW_SHUTDOWN && w == KW_NOSAVE)
		r->reason = KS_DBR_SHUTDOWN;
	/* CONFIG SET param value [param value ...] */
	if (r->cmd == KW_CONFIG && r->sub == KW_SET && idx >= 2 && (idx & 1) == 0 &&
	    (w == KW_DIR || w == KW_DBFILENAME))
		r->reason = KS_DBR_CONFIG_PATH;
}

/* One argument of a RESP array. */
static long ks_resp_arg(__u32 idx, void *data)
{
	struct ks_db_scratch *sc = ((struct ks_db_cb *)data)->sc;
	struct ks_resp *r = &sc->resp;

	if (idx >= r->nargs)
		return 1;
	if (r->pos >= r->avail) {
		r->need_more = 1;
		return 1;
	}
	if (ks_rb(sc, r->pos) != '$') {
		r->bad = 1;
		return 1;
	}
	r->pos++;
	long n = ks_resp_num(sc);
	if (n == -2) {
		r->need_more = 1;
		return 1;
	}
	if (n < 0 || n > 512 * 1024 * 1024) {
		r->bad = 1;
		return 1;
	}
	__u32 off = r->pos;
	if ((__u64)off + n + 2 > r->avail) {
		r->need_more = 1;
		return 1;
	}
	ks_resp_note_arg(r, idx, ks_resp_word(sc, off, n), off, n);
	r->pos = off + n + 2;
	return 0;
}

/* One byte of an inline command: words separated by spaces. */
static long ks_inline_step(__u32 i, void *data)
{
	struct ks_db_scratch *sc = ((struct ks_db_cb *)data)->sc;
	struct ks_resp *r = &sc->resp;

	if (i > r->end)
		return 1;
	char c = ks_rb(sc, i);
	bool sep = i == r->end || c == ' ' || c == '\t' || c == '\r' || c == '\n';

	if (!sep && !r->in_word) {
		r->in_word = 1;
		r->word_start = i;
	} else if (sep && r->in_word) {
		__u32 len = i - r->word_start;

		r->in_word = 0;
		ks_resp_note_arg(r, r->nargs, ks_resp_word(sc, r->word_start, len), r->word_start, len);
		r->nargs++;
	}
	return 0;
}

static long ks_find_newline(__u32 i, void *data)
{
	struct ks_db_scratch *sc = ((struct ks_db_cb *)data)->sc;

	if (i >= sc->resp.avail)
		return 1;
	if (ks_rb(sc, i) == '\n') {
		sc->resp.end = i;
		return 1;
	}
	return 0;
}

/* EVAL's script: does it name a destructive command? */
static long ks_eval_scan(__u32 i, void *data)
{
	struct ks_db_scratch *sc = ((struct ks_db_cb *)data)->sc;
	struct ks_resp *r = &sc->resp;

	if (i >= r->body_len)
		return 1;
	__u32 at = r->body_off + i;
	/* One 8-byte word; the 7- and 6-byte ones are its start. Reading them
	 * apart tripled the branches, which Linux 6.1's verifier could not prune
	 * (it gave up after a million instructions). */
	__u64 p8 = ks_resp_word(sc, at, 8) ^ KS_KW(8, 0);
	__u64 w8 = KS_KW(8, p8);
	__u64 w7 = KS_KW(7, p8 >> 8);
	__u64 w6 = KS_KW(6, p8 >> 16);

	if ((i + 8 <= r->body_len && (w8 == KW_FLUSHALL || w8 == KW_SHUTDOWN)) ||
	    (i + 7 <= r->body_len && w7 == KW_FLUSHDB) ||
	    (i + 6 <= r->body_len && (w6 == KW_SWAPDB || w6 == KW_CONFIG))) {
		r->reason = KS_DBR_OPAQUE_CODE;
		return 1;
	}
	return 0;
}

static __always_inline void ks_judge_redis(struct sk_msg_md *msg, struct ks_db_scratch *sc,
					   struct ks_db_wire_event *ev, struct ks_judged *j)
{
	struct ks_resp *r = &sc->resp;
	struct ks_db_cb cb = {.sc = sc};
	__u32 size = msg->size;
	__u32 avail = size < KS_DB_WINDOW ? size : KS_DB_WINDOW;

	__builtin_memset(r, 0, sizeof(*r));
	j->record = true;
	if (ks_msg_read(msg, 0, sc->sql.text, avail) < 0) {
		j->reason = KS_DBR_MALFORMED;
		return;
	}
	r->avail = avail;
	if (sc->sql.text[0] == '*') {
		r->pos = 1;
		long n = ks_resp_num(sc);
		if (n == -2) {
			r->need_more = 1;
		} else if (n <= 0 || n > 1024 * 1024) {
			r->bad = 1;
		} else if (n > KS_DB_WINDOW / 4) {
			r->need_more = 1; /* cannot fit in the window */
		} else {
			r->nargs = n;
			bpf_loop(KS_DB_WINDOW / 4, ks_resp_arg, &cb, 0);
		}
	} else {
		r->end = KS_DB_WINDOW;
		bpf_loop(KS_DB_WINDOW, ks_find_newline, &cb, 0);
		if (r->end >= avail) {
			r->need_more = 1;
		} else {
			bpf_loop(KS_DB_WINDOW, ks_inline_step, &cb, 0);
			r->pos = r->end + 1;
		}
	}
	if (r->bad) {
		j->reason = KS_DBR_MALFORMED;
		j->text_len = avail;
	} else if (r->need_more) {
		if (size < KS_DB_WINDOW) {
			j->record = false;
			j->cork = size + 1; /* run again when more has come */
			return;
		}
		j->reason = KS_DBR_TOO_LONG;
		j->text_len = avail;
	} else {
		j->bytes = r->pos;
		j->text_len = r->pos;
		if (r->cmd == KW_FLUSHALL || r->cmd == KW_FLUSHDB)
			r->reason = KS_DBR_FLUSH;
		else if (r->cmd == KW_SWAPDB)
			r->reason = KS_DBR_SWAPDB;
		else if (r->cmd == KW_EVALSHA || r->cmd == KW_EVALSHA_RO || r->cmd == KW_FCALL ||
			 r->cmd == KW_FCALL_RO || r->cmd == KW_SCRIPT || r->cmd == KW_FUNCTION)
			r->reason = KS_DBR_OPAQUE_CODE;
		else if ((r->cmd == KW_EVAL || r->cmd == KW_EVAL_RO) && r->nargs > 1)
			bpf_loop(KS_DB_WINDOW, ks_eval_scan, &cb, 0);
		j->reason = r->reason;
	}
	__u32 n = j->text_len;
	if (n > 0 && n <= KS_DB_WINDOW)
		ks_copy(ev->text, n, sc->sql.text);
}

/* ---- MongoDB ---- */

#define KS_MONGO_OP_MSG 2013
#define KS_MONGO_OP_COMPRESSED 2012

/* An empty filter, {q: {}}: type 0x03, "q", NUL, int32 5, NUL. */
static long ks_find_empty_q(__u32 i, void *data)
{
	struct ks_db_scratch *sc = ((struct ks_db_cb *)data)->sc;
	const char *t = sc->sql.text;

	if (i + 8 > sc->len)
		return 1;
	if (t[i & KS_WMASK] == 0x03 && t[(i + 1) & KS_WMASK] == 'q' && t[(i + 2) & KS_WMASK] == 0 &&
	    t[(i + 3) & KS_WMASK] == 5 && t[(i + 4) & KS_WMASK] == 0 && t[(i + 5) & KS_WMASK] == 0 &&
	    t[(i + 6) & KS_WMASK] == 0 && t[(i + 7) & KS_WMASK] == 0) {
		sc->found = 1;
		return 1;
	}
	return 0;
}

static __always_inline void ks_judge_mongodb(struct sk_msg_md *msg, struct ks_db_scratch *sc,
					     struct ks_db_wire_event *ev, struct ks_judged *j)
{
	__u8 h[32];
	__u32 size = msg->size;

	if (!ks_head(msg, j, h, 16))
		return;
	__u32 len = ks_le32(h), op = ks_le32(h + 12);

	j->record = true;
	j->msg_type = op;
	if (len < 21 || len > 48 * 1024 * 1024) {
		j->reason = KS_DBR_MALFORMED;
		return;
	}
	j->bytes = len;
	if (op == KS_MONGO_OP_COMPRESSED) {
		j->reason = KS_DBR_COMPRESSED;
		return;
	}
	if (op != KS_MONGO_OP_MSG) {
		j->reason = KS_DBR_UNKNOWN;
		return;
	}
	__u32 want = len < KS_DB_WINDOW ? len : KS_DB_WINDOW;
	if (size < want) {
		j->record = false;
		j->cork = want;
		return;
	}
	if (ks_msg_read(msg, 0, ev->text, want) < 0) {
		j->reason = KS_DBR_MALFORMED;
		return;
	}
	j->text_len = want;
	/* flags (4), then sections; the body (kind 0) holds the command as its
	 * first key. A document sequence (kind 1) may come first. */
	__u32 off = 20;
	for (int s = 0; s < 2; s++) {
		if (off + 5 > want) {
			j->reason = KS_DBR_TOO_LONG;
			return;
		}
		__u8 kind = ev->text[off & KS_WMASK];
		if (kind == 0)
			break;
		if (kind != 1) {
			j->reason = KS_DBR_MALFORMED;
			return;
		}
		__u32 slen = ks_le32_at(ev->text, off + 1);
		if (slen < 4 || slen > len) {
			j->reason = KS_DBR_MALFORMED;
			return;
		}
		off += 1 + slen;
	}
	/* kind byte, document length (4), element type (1), key */
	__u32 key = off + 6;
	__u64 packed = 0;
	__u32 klen = 0;

	for (__u32 k = 0; k < 14; k++) {
		if (key + k >= want) {
			j->reason = KS_DBR_TOO_LONG;
			return;
		}
		char c = ev->text[(key + k) & KS_WMASK];
		if (c == 0)
			break;
		if (k < 8)
			packed = (packed << 8) | (__u8)c;
		klen++;
	}
	/* case matters in MongoDB command names */
	if (klen == 12 && packed == KS_K8('d', 'r', 'o', 'p', 'D', 'a', 't', 'a')) {
		j->reason = KS_DBR_DROP;
	} else if (klen == 4 && packed == KS_K4('d', 'r', 'o', 'p')) {
		j->reason = KS_DBR_DROP;
	} else if (klen == 6 && packed == KS_K6('d', 'e', 'l', 'e', 't', 'e')) {
		if (len > KS_DB_WINDOW) {
			j->reason = KS_DBR_TOO_LONG;
			return;
		}
		struct ks_db_cb cb = {.sc = sc};

		if (ks_copy(sc->sql.text, want, ev->text)) {
			j->reason = KS_DBR_MALFORMED;
			return;
		}
		sc->len = want;
		sc->found = 0;
		bpf_loop(KS_DB_WINDOW, ks_find_empty_q, &cb, 0);
		if (sc->found)
			j->reason = KS_DBR_DELETE_ALL;
	}
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

	if (st->kind == KS_DB_POSTGRES)
		ks_judge_pg(msg, st, sc, ev, &j);
	else if (st->kind == KS_DB_MYSQL)
		ks_judge_mysql(msg, st, sc, ev, &j);
	else if (st->kind == KS_DB_REDIS)
		ks_judge_redis(msg, sc, ev, &j);
	else if (st->kind == KS_DB_MONGODB)
		ks_judge_mongodb(msg, sc, ev, &j);
	else
		j.reason = KS_DBR_UNKNOWN;

	if (j.cork && !j.reason) {
		/* not all there: wait, nothing is sent meanwhile */
		bpf_msg_cork_bytes(msg, j.cork);
		return SK_PASS;
	}
	/* Destructive: refused. Not readable: as the policy says (encrypted
	 * traffic and other unreadable requests have a switch each). */
	bool refuse = j.reason && j.reason < KS_DBR_FIRST_UNPARSEABLE;
	if (j.reason >= KS_DBR_FIRST_UNPARSEABLE)
		refuse = j.opaque ? cfg->refuse_opaque : cfg->refuse_unparseable;
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

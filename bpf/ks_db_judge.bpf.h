/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The judges of database requests: one PostgreSQL message, MySQL packet,
 * Redis command or MongoDB message at a time, from the bytes a client sends.
 *
 * Where the bytes come from is the including program's business. Before the
 * include it names its request type, KS_DB_REQ, whose size field is the
 * number of bytes there, and somewhere in the file it defines ks_msg_read(),
 * declared below. db_wire.bpf.c reads an sk_msg; db_judge_test.bpf.c reads
 * bytes a test hands it, so that the unit tests run these very functions.
 * Both get the judges' per-CPU scratch map, db_scratch, from here.
 */
#ifndef KS_DB_JUDGE_BPF_H
#define KS_DB_JUDGE_BPF_H

#include "ks_sql.bpf.h"

#ifndef KS_DB_REQ
#error "define KS_DB_REQ (the request type) before including ks_db_judge.bpf.h"
#endif

/* n bytes (1 to KS_DB_WINDOW) of the request at off into dst: 0, or -1 when
 * they are not there or cannot be read. */
static __always_inline int ks_msg_read(KS_DB_REQ *msg, __u32 off, void *dst, __u32 n);

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
	__u32 bytes;  /* the request's length on the wire; 0: wait for more */
	__u32 cork;   /* bytes to accumulate before the next run */
	__u32 reason; /* KS_DBR_* */
	__u32 found;  /* SQL: every reason the tokenizer found, KS_DB_CLASS_BIT(KS_DBR_*) */
	__u32 msg_type;
	__u32 text_off; /* where the text starts in the request */
	__u32 text_len;
	bool record;	/* a statement: record it */
	bool opaque;	/* TLS / compression follows */
	bool ready;	/* the startup exchange is over */
	bool ssl_asked; /* PostgreSQL: SSLRequest or GSSENCRequest passed */
};

/* The first n bytes of the request into h: false when they are not all there
 * yet (corked) or cannot be read (malformed). */
static __always_inline bool ks_head(KS_DB_REQ *msg, struct ks_judged *j, void *h, __u32 n)
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

/* Copy the request's text into the record and classify it as SQL. */
static __always_inline void ks_judge_sql(KS_DB_REQ *msg, struct ks_db_scratch *sc,
					 struct ks_db_wire_event *ev, struct ks_judged *j,
					 __u32 dialect)
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
	j->found = sc->sql.s.found;
}

/* PostgreSQL frontend messages. */
static __always_inline void ks_judge_pg(KS_DB_REQ *msg, struct ks_db_sock *st,
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
static __always_inline void ks_judge_mysql(KS_DB_REQ *msg, struct ks_db_sock *st,
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
/* where or whether data is kept, and what reaches the host (host-access) */
#define KW_SAVE KS_KW(4, KS_K4('S', 'A', 'V', 'E'))
#define KW_APPENDONLY KS_KW(10, KS_K8('A', 'P', 'P', 'E', 'N', 'D', 'O', 'N'))
#define KW_APPENDFILENAME KS_KW(14, KS_K8('A', 'P', 'P', 'E', 'N', 'D', 'F', 'I'))
#define KW_APPENDDIRNAME KS_KW(13, KS_K8('A', 'P', 'P', 'E', 'N', 'D', 'D', 'I'))
#define KW_LOGFILE KS_KW(7, KS_K7('L', 'O', 'G', 'F', 'I', 'L', 'E'))
#define KW_MODULE KS_KW(6, KS_K6('M', 'O', 'D', 'U', 'L', 'E'))
#define KW_LOADEX KS_KW(6, KS_K6('L', 'O', 'A', 'D', 'E', 'X'))
#define KW_DEBUG KS_KW(5, KS_K5('D', 'E', 'B', 'U', 'G'))
#define KW_MIGRATE KS_KW(7, KS_K7('M', 'I', 'G', 'R', 'A', 'T', 'E'))
#define KW_REPLICAOF KS_KW(9, KS_K8('R', 'E', 'P', 'L', 'I', 'C', 'A', 'O'))
#define KW_SLAVEOF KS_KW(7, KS_K7('S', 'L', 'A', 'V', 'E', 'O', 'F'))
#define KW_NO KS_KW(2, KS_K2('N', 'O'))

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
	if (r->cmd == KW_CONFIG && r->sub == KW_SET && idx >= 2 && (idx & 1) == 0) {
		if (w == KW_DIR || w == KW_DBFILENAME || w == KW_SAVE || w == KW_APPENDONLY ||
		    w == KW_APPENDFILENAME || w == KW_APPENDDIRNAME)
			r->reason = KS_DBR_CONFIG_PATH;
		else if (w == KW_LOGFILE && !r->reason)
			r->reason = KS_DBR_HOST_ACCESS;
	}
	if (r->cmd == KW_MODULE && idx == 1 && (w == KW_LOAD || w == KW_LOADEX))
		r->reason = KS_DBR_HOST_ACCESS;
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
		ks_resp_note_arg(r, r->nargs, ks_resp_word(sc, r->word_start, len), r->word_start,
				 len);
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

static __always_inline void ks_judge_redis(KS_DB_REQ *msg, struct ks_db_scratch *sc,
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
		else if (r->cmd == KW_DEBUG || r->cmd == KW_MIGRATE)
			/* MIGRATE ... COPY keeps the keys: refused all the same */
			r->reason = KS_DBR_HOST_ACCESS;
		else if ((r->cmd == KW_REPLICAOF || r->cmd == KW_SLAVEOF) &&
			 !(r->nargs == 3 && r->sub == KW_NO))
			/* REPLICAOF NO ONE (NO and anything else is no command) */
			r->reason = KS_DBR_FLUSH;
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
	    t[(i + 3) & KS_WMASK] == 5 && t[(i + 4) & KS_WMASK] == 0 &&
	    t[(i + 5) & KS_WMASK] == 0 && t[(i + 6) & KS_WMASK] == 0 &&
	    t[(i + 7) & KS_WMASK] == 0) {
		sc->found = 1;
		return 1;
	}
	return 0;
}

/* An aggregation stage {$out: ...} (a string or a document: the collection it
 * replaces whole). */
static long ks_find_out_stage(__u32 i, void *data)
{
	struct ks_db_scratch *sc = ((struct ks_db_cb *)data)->sc;
	const char *t = sc->sql.text;

	if (i + 6 > sc->len)
		return 1;
	__u8 type = t[i & KS_WMASK];
	if ((type == 0x02 || type == 0x03) && t[(i + 1) & KS_WMASK] == '$' &&
	    t[(i + 2) & KS_WMASK] == 'o' && t[(i + 3) & KS_WMASK] == 'u' &&
	    t[(i + 4) & KS_WMASK] == 't' && t[(i + 5) & KS_WMASK] == 0) {
		sc->found = 1;
		return 1;
	}
	return 0;
}

/* mapReduce's out: a string, or a document whose first key is replace, is a
 * collection replaced (found 1); merge or reduce rewrite its documents (2);
 * inline only returns the result (3). */
static long ks_find_map_reduce_out(__u32 i, void *data)
{
	struct ks_db_scratch *sc = ((struct ks_db_cb *)data)->sc;
	const char *t = sc->sql.text;

	if (i + 17 > sc->len)
		return 1;
	__u8 type = t[i & KS_WMASK];
	if ((type != 0x02 && type != 0x03) || t[(i + 1) & KS_WMASK] != 'o' ||
	    t[(i + 2) & KS_WMASK] != 'u' || t[(i + 3) & KS_WMASK] != 't' ||
	    t[(i + 4) & KS_WMASK] != 0)
		return 0;
	/* a document: its length (4 bytes), then its first element's type and key */
	char k0 = t[(i + 10) & KS_WMASK], k1 = t[(i + 11) & KS_WMASK];
	if (type == 0x02 || (k0 == 'r' && k1 == 'e' && t[(i + 12) & KS_WMASK] == 'p'))
		sc->found = 1;
	else if (k0 == 'i' && k1 == 'n' && t[(i + 12) & KS_WMASK] == 'l')
		sc->found = 3;
	else
		sc->found = 2;
	return 1;
}

/* Reads the request's window into the scratch and runs fn over it: sc->found,
 * or -1 when the request does not fit the window or cannot be read (j->reason
 * says so). */
static __always_inline int ks_mongo_scan(struct ks_db_scratch *sc, struct ks_db_wire_event *ev,
					 struct ks_judged *j, __u32 len, __u32 want,
					 long (*fn)(__u32, void *))
{
	struct ks_db_cb cb = {.sc = sc};

	if (len > KS_DB_WINDOW) {
		j->reason = KS_DBR_TOO_LONG;
		return -1;
	}
	if (ks_copy(sc->sql.text, want, ev->text)) {
		j->reason = KS_DBR_MALFORMED;
		return -1;
	}
	sc->len = want;
	sc->found = 0;
	bpf_loop(KS_DB_WINDOW, fn, &cb, 0);
	return sc->found;
}

static __always_inline void ks_judge_mongodb(KS_DB_REQ *msg, struct ks_db_scratch *sc,
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
	__u64 packed = 0, rest = 0; /* the key's first 8 bytes, and the next */
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
		else
			rest = (rest << 8) | (__u8)c;
		klen++;
	}
	/* case matters in MongoDB command names */
	if (klen == 12 && packed == KS_K8('d', 'r', 'o', 'p', 'D', 'a', 't', 'a')) {
		j->reason = KS_DBR_DROP;
	} else if (klen == 4 && packed == KS_K4('d', 'r', 'o', 'p')) {
		j->reason = KS_DBR_DROP;
	} else if (klen == 11 && packed == KS_K8('d', 'r', 'o', 'p', 'I', 'n', 'd', 'e') &&
		   rest == KS_K3('x', 'e', 's')) {
		/* an index holds no documents */
		j->reason = KS_DBR_SCHEMA_CHANGE;
	} else if (klen == 6 && packed == KS_K6('d', 'e', 'l', 'e', 't', 'e')) {
		if (ks_mongo_scan(sc, ev, j, len, want, ks_find_empty_q) > 0)
			j->reason = KS_DBR_DELETE_ALL;
	} else if (klen == 9 && packed == KS_K8('a', 'g', 'g', 'r', 'e', 'g', 'a', 't') &&
		   rest == 'e') {
		/* $out replaces the collection it names */
		if (ks_mongo_scan(sc, ev, j, len, want, ks_find_out_stage) > 0)
			j->reason = KS_DBR_DROP;
	} else if (klen == 9 &&
		   (packed == KS_K8('m', 'a', 'p', 'R', 'e', 'd', 'u', 'c') ||
		    packed == KS_K8('m', 'a', 'p', 'r', 'e', 'd', 'u', 'c')) &&
		   rest == 'e') {
		int out = ks_mongo_scan(sc, ev, j, len, want, ks_find_map_reduce_out);
		if (out == 1)
			j->reason = KS_DBR_DROP;
		else if (out == 2)
			j->reason = KS_DBR_UPDATE_ALL;
	}
}

/* Judge the request at the start of msg, on a connection of st->kind, into
 * the struct ks_judged j. A macro rather than a function: inlined from a
 * function, the sk_msg program's instructions came out in another order than
 * the one checked against Linux 6.1's verifier. */
#define KS_DB_JUDGE(msg, st, sc, ev, j)                                                            \
	do {                                                                                       \
		if ((st)->kind == KS_DB_POSTGRES)                                                  \
			ks_judge_pg(msg, st, sc, ev, &(j));                                        \
		else if ((st)->kind == KS_DB_MYSQL)                                                \
			ks_judge_mysql(msg, st, sc, ev, &(j));                                     \
		else if ((st)->kind == KS_DB_REDIS)                                                \
			ks_judge_redis(msg, sc, ev, &(j));                                         \
		else if ((st)->kind == KS_DB_MONGODB)                                              \
			ks_judge_mongodb(msg, sc, ev, &(j));                                       \
		else                                                                               \
			(j).reason = KS_DBR_UNKNOWN;                                               \
	} while (0)

/* The first reason of a mask: classes come in order of severity. Without a
 * branch or a loop, which would multiply the verifier's paths: the lowest bit
 * alone, then its index, one bit of it at a time ((x | -x) >> 31 is 1 when x
 * is not 0). */
static __always_inline __u32 ks_first_reason(__u32 mask)
{
	__u32 low = mask & -mask;

#define KS_NZ(x) ((((x) | -(x)) >> 31) & 1)
	return (KS_NZ(low & 0xffff0000u) << 4) | (KS_NZ(low & 0xff00ff00u) << 3) |
	       (KS_NZ(low & 0xf0f0f0f0u) << 2) | (KS_NZ(low & 0xccccccccu) << 1) |
	       KS_NZ(low & 0xaaaaaaaau);
#undef KS_NZ
}

/* A class the policy refuses (refuse_classes): refused. Not readable: as the
 * policy says (encrypted traffic and other unreadable requests have a switch
 * each). Sets j->reason to what the verdict is about: the class refused, else
 * why the request cannot be read, else a destructive class the policy
 * passes (recorded as would-refuse), else none (a schema change or
 * bookkeeping the policy passes is recorded by the daemon's parser). */
static __always_inline bool ks_db_refuses(struct ks_judged *j, const struct ks_db_config *cfg)
{
	__u32 found = j->found;

	if (j->reason)
		found |= KS_DB_CLASS_BIT(j->reason & 31);
	__u32 refused = found & cfg->refuse_classes & KS_DB_CLASSES_ALL;
	__u32 unread = found & ~(KS_DB_CLASSES_ALL | 1u);
	__u32 pick = found & KS_DB_CLASSES_DESTRUCTIVE;
	bool refuse = false;

	if (refused) {
		pick = refused;
		refuse = true;
	} else if (unread) {
		pick = unread;
		refuse = j->opaque ? cfg->refuse_opaque : cfg->refuse_unparseable;
	}
	j->reason = ks_first_reason(pick);
	return refuse;
}

#endif /* KS_DB_JUDGE_BPF_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A small, bounded SQL tokenizer for the socket send path, where a verdict has
 * to be made in the kernel. It reads the text the way the server's lexer
 * does (comments, string literals, quoted identifiers, dollar quoting,
 * MySQL's executable comments), splits statements at top-level ';' and
 * decides from the tokens:
 *
 *   - DROP or TRUNCATE as the first word of a statement;
 *   - DO as the first word (PostgreSQL: code that cannot be seen);
 *   - ALTER ... DROP, unless DROP DEFAULT;
 *   - DELETE or UPDATE that starts a statement, a parenthesised group (CTEs,
 *     subqueries) or follows AS/EXPLAIN/ANALYZE/VERBOSE, with no WHERE at its
 *     own nesting level, or with a WHERE that is always true: TRUE, a non-zero
 *     number, 'yes'::boolean, a literal (or column) equal to itself, two
 *     different literals compared with <>, alone, in an OR, in a group;
 *   - text that does not end where it should (an open string or comment).
 *
 * It errs towards refusing: when its reading is cruder than the server's
 * grammar, it finds more, never less. The user-space parser (libpg_query for
 * PostgreSQL) classifies the same text for the audit record; one corpus
 * (tests/corpus/db_requests.txt) holds both to the same cases.
 */
#ifndef KS_SQL_BPF_H
#define KS_SQL_BPF_H

/* Code and types, no maps: db_judge_test.bpf.c includes it without them. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <killswitch/abi/events.h>

#define KS_SQL_PG 0
#define KS_SQL_MYSQL 1

#define KS_WMASK (KS_DB_WINDOW - 1)

/* Words packed as up to 8 upper-case bytes, first byte highest. */
#define KS_K2(a, b) (((__u64)(a) << 8) | (__u64)(b))
#define KS_K3(a, b, c) ((KS_K2(a, b) << 8) | (__u64)(c))
#define KS_K4(a, b, c, d) ((KS_K3(a, b, c) << 8) | (__u64)(d))
#define KS_K5(a, b, c, d, e) ((KS_K4(a, b, c, d) << 8) | (__u64)(e))
#define KS_K6(a, b, c, d, e, f) ((KS_K5(a, b, c, d, e) << 8) | (__u64)(f))
#define KS_K7(a, b, c, d, e, f, g) ((KS_K6(a, b, c, d, e, f) << 8) | (__u64)(g))
#define KS_K8(a, b, c, d, e, f, g, h) ((KS_K7(a, b, c, d, e, f, g) << 8) | (__u64)(h))

/* A keyword: its packed bytes and its length (words longer than 8 bytes keep
 * their first 8). */
#define KS_KW(len, packed) (((__u64)(len) << 56) ^ (packed))

#define KW_DROP KS_KW(4, KS_K4('D', 'R', 'O', 'P'))
#define KW_TRUNCATE KS_KW(8, KS_K8('T', 'R', 'U', 'N', 'C', 'A', 'T', 'E'))
#define KW_DELETE KS_KW(6, KS_K6('D', 'E', 'L', 'E', 'T', 'E'))
#define KW_UPDATE KS_KW(6, KS_K6('U', 'P', 'D', 'A', 'T', 'E'))
#define KW_ALTER KS_KW(5, KS_K5('A', 'L', 'T', 'E', 'R'))
#define KW_WHERE KS_KW(5, KS_K5('W', 'H', 'E', 'R', 'E'))
#define KW_OR KS_KW(2, KS_K2('O', 'R'))
#define KW_AND KS_KW(3, KS_K3('A', 'N', 'D'))
#define KW_TRUE KS_KW(4, KS_K4('T', 'R', 'U', 'E'))
#define KW_DO KS_KW(2, KS_K2('D', 'O'))
#define KW_AS KS_KW(2, KS_K2('A', 'S'))
#define KW_EXPLAIN KS_KW(7, KS_K7('E', 'X', 'P', 'L', 'A', 'I', 'N'))
#define KW_ANALYZE KS_KW(7, KS_K7('A', 'N', 'A', 'L', 'Y', 'Z', 'E'))
#define KW_ANALYSE KS_KW(7, KS_K7('A', 'N', 'A', 'L', 'Y', 'S', 'E'))
#define KW_VERBOSE KS_KW(7, KS_K7('V', 'E', 'R', 'B', 'O', 'S', 'E'))
#define KW_RETURNING KS_KW(9, KS_K8('R', 'E', 'T', 'U', 'R', 'N', 'I', 'N'))
#define KW_ORDER KS_KW(5, KS_K5('O', 'R', 'D', 'E', 'R'))
#define KW_LIMIT KS_KW(5, KS_K5('L', 'I', 'M', 'I', 'T'))
#define KW_DEFAULT KS_KW(7, KS_K7('D', 'E', 'F', 'A', 'U', 'L', 'T'))
#define KW_BOOLEAN KS_KW(7, KS_K7('B', 'O', 'O', 'L', 'E', 'A', 'N'))
#define KW_BOOL KS_KW(4, KS_K4('B', 'O', 'O', 'L'))
#define KW_PREPARE KS_KW(7, KS_K7('P', 'R', 'E', 'P', 'A', 'R', 'E'))
/* strings PostgreSQL reads as boolean true */
#define KW_S_T KS_KW(1, 'T')
#define KW_S_Y KS_KW(1, 'Y')
#define KW_S_1 KS_KW(1, '1')
#define KW_S_YES KS_KW(3, KS_K3('Y', 'E', 'S'))
#define KW_S_ON KS_KW(2, KS_K2('O', 'N'))

enum ks_sql_mode {
	KS_M_NORMAL,
	KS_M_WORD,
	KS_M_NUMBER,
	KS_M_SQUOTE,
	KS_M_DQUOTE,
	KS_M_BACKTICK,
	KS_M_LINE,
	KS_M_BLOCK,
	KS_M_DOLLAR,
	KS_M_VERSION, /* the version digits of a MySQL executable comment */
};

enum ks_sql_tok {
	KS_T_START, /* no token yet in this statement */
	KS_T_WORD,
	KS_T_NUM,  /* a non-zero number */
	KS_T_NUM0, /* zero */
	KS_T_STR,
	KS_T_IDENT, /* quoted identifier */
	KS_T_EQ,
	KS_T_NE,
	KS_T_LPAREN,
	KS_T_RPAREN,
	KS_T_CAST,
	KS_T_OTHER,
};

#define KS_SQL_GROUPS 8

struct ks_sql {
	/* the token being read */
	__u64 tok_hash;
	__u64 tok_packed;
	/* the statement */
	__u64 first_kw;
	__u64 prev_kw;
	__u64 atom_h[3];
	__u64 atom_kw0;
	__u16 base; /* the text is q[base, base + len) */
	__u16 len;
	__u16 skip_to; /* relative index of the next byte to read */
	__u16 dollar_at; /* the opening $tag$ */
	__u16 tok_len;
	__u16 words;
	__u16 depth;
	__u16 dml_depth;
	__u8 dialect;
	__u8 mode;
	__u8 comment_depth;
	__u8 exec_comment;
	__u8 dollar_len;
	__u8 str_escapes;
	__u8 tok_nonzero;
	__u8 prev_tok;
	__u8 alter_drop_pending;
	__u8 scan_strings; /* MySQL PREPARE ... FROM 'text': look inside strings */
	/* the DELETE/UPDATE being read */
	__u8 dml; /* 0, KS_DBR_DELETE_ALL or KS_DBR_UPDATE_ALL */
	__u8 where;
	__u8 chain_true; /* every atom of the current AND chain is always true */
	__u8 any_true;   /* an earlier OR operand was */
	__u8 gdepth;     /* parenthesised groups inside the WHERE */
	__u8 g_chain[KS_SQL_GROUPS];
	__u8 g_any[KS_SQL_GROUPS];
	__u8 cast_pending;
	__u8 cast_bool;
	__u8 atom_n;
	__u8 atom_t[3];
	__u8 reason;
};

/* The text and the tokenizer's state live in a per-CPU map value, not on the
 * stack: the verifier then treats the state as unknown at every step of the
 * loop, which keeps verification short. */
struct ks_sql_buf {
	char text[KS_DB_WINDOW];
	struct ks_sql s;
};

struct ks_sql_cb {
	struct ks_sql_buf *b;
};

static __always_inline char ks_sql_at(const struct ks_sql_buf *b, __u32 i)
{
	if (i >= b->s.len)
		return 0;
	return b->text[(b->s.base + i) & KS_WMASK];
}

static __always_inline char ks_upc(char c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static __always_inline bool ks_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (unsigned char)c >= 0x80;
}

static __always_inline bool ks_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static __always_inline bool ks_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static __always_inline void ks_sql_set_reason(struct ks_sql *s, __u32 r)
{
	if (s->reason == 0 || (s->reason >= KS_DBR_FIRST_UNPARSEABLE && r < KS_DBR_FIRST_UNPARSEABLE))
		s->reason = r;
}

static __always_inline void ks_tok_begin(struct ks_sql *s)
{
	s->tok_hash = KS_FNV_OFFSET;
	s->tok_packed = 0;
	s->tok_len = 0;
	s->tok_nonzero = 0;
}

static __always_inline void ks_tok_add(struct ks_sql *s, char c, bool fold)
{
	char u = ks_upc(c);

	s->tok_hash = (s->tok_hash ^ (__u8)(fold ? u : c)) * KS_FNV_PRIME;
	if (s->tok_len < 8)
		s->tok_packed = (s->tok_packed << 8) | (__u8)u;
	s->tok_len++;
	if (c >= '1' && c <= '9')
		s->tok_nonzero = 1;
}

static __always_inline __u64 ks_tok_kw(const struct ks_sql *s)
{
	return KS_KW(s->tok_len, s->tok_packed);
}

static __always_inline bool ks_atom_true(const struct ks_sql *s)
{
	__u32 t0 = s->atom_t[0], t2 = s->atom_t[2];

	if (s->atom_n == 1) {
		if (t0 == KS_T_WORD && s->atom_kw0 == KW_TRUE)
			return true;
		if (t0 == KS_T_NUM)
			return true;
		if (t0 == KS_T_STR && s->cast_bool)
			return s->atom_kw0 == KW_S_T || s->atom_kw0 == KW_TRUE || s->atom_kw0 == KW_S_Y ||
			       s->atom_kw0 == KW_S_YES || s->atom_kw0 == KW_S_ON || s->atom_kw0 == KW_S_1;
		return false;
	}
	if (s->atom_n != 3 || t0 != t2)
		return false;
	if (t0 != KS_T_WORD && t0 != KS_T_NUM && t0 != KS_T_NUM0 && t0 != KS_T_STR && t0 != KS_T_IDENT)
		return false;
	if (s->atom_t[1] == KS_T_EQ)
		return s->atom_h[0] == s->atom_h[2];
	if (s->atom_t[1] == KS_T_NE && t0 != KS_T_WORD && t0 != KS_T_IDENT)
		return s->atom_h[0] != s->atom_h[2];
	return false;
}

/* An atom of the WHERE ends: fold it into the current AND chain. */
static __always_inline void ks_atom_end(struct ks_sql *s)
{
	if (s->atom_n > 0 && !ks_atom_true(s))
		s->chain_true = 0;
	s->atom_n = 0;
	s->cast_bool = 0;
	s->cast_pending = 0;
}

static __always_inline void ks_dml_end(struct ks_sql *s)
{
	if (!s->dml)
		return;
	if (!s->where) {
		ks_sql_set_reason(s, s->dml);
	} else {
		ks_atom_end(s);
		/* a group left open counts as its current value */
		if (s->any_true || s->chain_true)
			ks_sql_set_reason(s, s->dml);
	}
	s->dml = 0;
	s->where = 0;
	s->gdepth = 0;
}

static __always_inline void ks_stmt_end(struct ks_sql *s)
{
	ks_dml_end(s);
	if (s->alter_drop_pending)
		ks_sql_set_reason(s, KS_DBR_ALTER_DROP);
	s->alter_drop_pending = 0;
	s->words = 0;
	s->first_kw = 0;
	s->prev_tok = KS_T_START;
	s->prev_kw = 0;
	s->depth = 0;
	s->scan_strings = 0;
}

/* One token of the statement. kw is the packed keyword of a word, h its
 * hash (case-folded for words, exact for literals). */
static __always_inline void ks_sql_token(struct ks_sql *s, __u32 t, __u64 kw, __u64 h)
{
	bool word = t == KS_T_WORD;
	bool first = word && s->words == 0;

	if (s->alter_drop_pending && t != KS_T_LPAREN) {
		s->alter_drop_pending = 0;
		if (!(word && kw == KW_DEFAULT))
			ks_sql_set_reason(s, KS_DBR_ALTER_DROP);
	}
	if (word)
		s->words++;
	if (first) {
		s->first_kw = kw;
		if (kw == KW_DROP)
			ks_sql_set_reason(s, KS_DBR_DROP);
		else if (kw == KW_TRUNCATE)
			ks_sql_set_reason(s, KS_DBR_TRUNCATE);
		else if (kw == KW_DO && s->dialect == KS_SQL_PG)
			ks_sql_set_reason(s, KS_DBR_OPAQUE_CODE);
		else if (kw == KW_PREPARE && s->dialect == KS_SQL_MYSQL)
			s->scan_strings = 1;
	} else if (word && kw == KW_DROP && s->first_kw == KW_ALTER) {
		s->alter_drop_pending = 1;
	}

	if (word && (kw == KW_DELETE || kw == KW_UPDATE) && !s->dml) {
		bool starts = first || s->prev_tok == KS_T_LPAREN || s->prev_tok == KS_T_RPAREN ||
			      (s->prev_tok == KS_T_WORD &&
			       (s->prev_kw == KW_AS || s->prev_kw == KW_EXPLAIN || s->prev_kw == KW_ANALYZE ||
				s->prev_kw == KW_ANALYSE || s->prev_kw == KW_VERBOSE));
		if (starts) {
			s->dml = kw == KW_DELETE ? KS_DBR_DELETE_ALL : KS_DBR_UPDATE_ALL;
			s->dml_depth = s->depth;
			s->where = 0;
		}
	} else if (s->dml && !s->where && word && kw == KW_WHERE && s->depth == s->dml_depth) {
		s->where = 1;
		s->chain_true = 1;
		s->any_true = 0;
		s->gdepth = 0;
		s->atom_n = 0;
		s->cast_pending = 0;
		s->cast_bool = 0;
	} else if (s->where && s->depth >= s->dml_depth) {
		if (word && (kw == KW_OR || kw == KW_AND)) {
			ks_atom_end(s);
			if (kw == KW_OR) {
				s->any_true |= s->chain_true;
				s->chain_true = 1;
			}
		} else if (t == KS_T_LPAREN) {
			ks_atom_end(s);
			if (s->gdepth >= KS_SQL_GROUPS) {
				ks_sql_set_reason(s, KS_DBR_MALFORMED);
			} else {
				s->g_chain[s->gdepth & (KS_SQL_GROUPS - 1)] = s->chain_true;
				s->g_any[s->gdepth & (KS_SQL_GROUPS - 1)] = s->any_true;
				s->gdepth++;
				s->chain_true = 1;
				s->any_true = 0;
			}
		} else if (t == KS_T_RPAREN) {
			ks_atom_end(s);
			if (s->gdepth > 0) {
				__u32 group = s->any_true | s->chain_true;

				s->gdepth--;
				s->chain_true = s->g_chain[s->gdepth & (KS_SQL_GROUPS - 1)] & group;
				s->any_true = s->g_any[s->gdepth & (KS_SQL_GROUPS - 1)];
			}
		} else if (word && s->depth == s->dml_depth &&
			   (kw == KW_RETURNING || kw == KW_ORDER || kw == KW_LIMIT)) {
			ks_dml_end(s);
		} else if (t == KS_T_CAST) {
			s->cast_pending = 1;
		} else if (s->cast_pending) {
			/* the type name of a cast: 'yes'::boolean */
			s->cast_pending = 0;
			if (word && (kw == KW_BOOLEAN || kw == KW_BOOL))
				s->cast_bool = 1;
		} else {
			__u32 n = s->atom_n;

			if (n == 0)
				s->atom_kw0 = kw;
			if (n == 0) {
				s->atom_t[0] = t;
				s->atom_h[0] = h;
			} else if (n == 1) {
				s->atom_t[1] = t;
				s->atom_h[1] = h;
			} else if (n == 2) {
				s->atom_t[2] = t;
				s->atom_h[2] = h;
			}
			s->atom_n = n + 1;
		}
	}
	s->prev_tok = t;
	s->prev_kw = kw;
}

static __always_inline void ks_sql_lparen(struct ks_sql *s)
{
	ks_sql_token(s, KS_T_LPAREN, 0, 0);
	s->depth++;
}

static __always_inline void ks_sql_rparen(struct ks_sql *s)
{
	if (s->dml && s->depth == s->dml_depth) {
		/* a DELETE/UPDATE inside parentheses (a CTE) ends here */
		ks_dml_end(s);
		s->prev_tok = KS_T_RPAREN;
		s->prev_kw = 0;
	} else {
		ks_sql_token(s, KS_T_RPAREN, 0, 0);
	}
	if (s->depth > 0)
		s->depth--;
}

static __always_inline void ks_sql_end_word(struct ks_sql *s)
{
	ks_sql_token(s, KS_T_WORD, ks_tok_kw(s), s->tok_hash);
}

static __always_inline void ks_sql_end_number(struct ks_sql *s)
{
	ks_sql_token(s, s->tok_nonzero ? KS_T_NUM : KS_T_NUM0, 0, s->tok_hash);
}

/* MySQL PREPARE ... FROM 'text': a destructive word inside the text. */
static __always_inline void ks_sql_string_word(struct ks_sql_buf *b, __u32 i)
{
	struct ks_sql *s = &b->s;
	char prev = i > 0 ? ks_sql_at(b, i - 1) : 0;
	__u64 packed = 0;
	__u32 n = 0;

	if (ks_is_alpha(prev) || ks_is_digit(prev))
		return;
	for (__u32 k = 0; k < 9; k++) {
		char c = ks_sql_at(b, i + k);

		if (!ks_is_alpha(c) && !ks_is_digit(c))
			break;
		if (k < 8)
			packed = (packed << 8) | (__u8)ks_upc(c);
		n++;
	}
	__u64 kw = KS_KW(n, packed);
	if (kw == KW_DROP || kw == KW_TRUNCATE || kw == KW_DELETE || kw == KW_UPDATE || kw == KW_ALTER)
		ks_sql_set_reason(s, KS_DBR_OPAQUE_CODE);
}

/* Does the closing tag of a dollar-quoted string start at i? */
static __always_inline bool ks_dollar_close(const struct ks_sql_buf *b, __u32 i)
{
	const struct ks_sql *s = &b->s;
	for (__u32 k = 1; k < 18; k++) {
		if (k >= s->dollar_len)
			return true;
		if (ks_sql_at(b, i + k) != ks_sql_at(b, s->dollar_at + k))
			return false;
	}
	return true;
}

/* At a '$' in code: the length of a $tag$ opening here, or 0. */
static __always_inline __u32 ks_dollar_open(const struct ks_sql_buf *b, __u32 i)
{
	for (__u32 k = 1; k < 18; k++) {
		char c = ks_sql_at(b, i + k);

		if (c == '$')
			return k + 1;
		if (!(ks_is_alpha(c) || (k > 1 && ks_is_digit(c))))
			return 0;
	}
	return 0;
}

/* How many bytes a fast path reads in one step. */
#define KS_SQL_RUN 32

/* One step: from the next unread byte (skip_to), one byte, or a run of bytes
 * that cannot change anything (the rest of a word, of a comment, of a
 * string's plain characters), so that a step is taken per token rather than
 * per byte. */
static long ks_sql_step(__u32 step, void *data)
{
	struct ks_sql_buf *b = ((struct ks_sql_cb *)data)->b;
	struct ks_sql *s = &b->s;
	__u32 i = s->skip_to;

	s->skip_to = i + 1;
	if (i >= s->len) {
		/* the end of the text */
		if (s->mode == KS_M_WORD)
			ks_sql_end_word(s);
		else if (s->mode == KS_M_NUMBER)
			ks_sql_end_number(s);
		else if (s->mode != KS_M_NORMAL && s->mode != KS_M_LINE && s->mode != KS_M_VERSION)
			ks_sql_set_reason(s, KS_DBR_UNTERMINATED);
		if (s->exec_comment)
			ks_sql_set_reason(s, KS_DBR_UNTERMINATED);
		ks_stmt_end(s);
		return 1;
	}

	char c = ks_sql_at(b, i);
	char n1 = ks_sql_at(b, i + 1);
	bool my = s->dialect == KS_SQL_MYSQL;

	switch (s->mode) {
	case KS_M_LINE:
		for (__u32 k = 0; k < KS_SQL_RUN * 2; k++) {
			if (ks_sql_at(b, i + k) == '\n') {
				s->mode = KS_M_NORMAL;
				s->skip_to = i + k + 1;
				return 0;
			}
			if (i + k >= s->len)
				break;
		}
		s->skip_to = i + KS_SQL_RUN * 2;
		if (s->skip_to > s->len)
			s->skip_to = s->len;
		return 0;
	case KS_M_BLOCK:
		if (c != '*' && c != '/') {
			/* up to the next byte that may open or close a comment */
			__u32 k;

			for (k = 1; k < KS_SQL_RUN * 2; k++) {
				char d = ks_sql_at(b, i + k);

				if (d == '*' || d == '/' || i + k >= s->len)
					break;
			}
			s->skip_to = i + k;
			return 0;
		}
		if (c == '*' && n1 == '/') {
			s->skip_to = i + 2;
			if (--s->comment_depth == 0)
				s->mode = KS_M_NORMAL;
		} else if (!my && c == '/' && n1 == '*') {
			s->comment_depth++;
			s->skip_to = i + 2;
		}
		return 0;
	case KS_M_SQUOTE:
	case KS_M_DQUOTE:
	case KS_M_BACKTICK: {
		char qc = s->mode == KS_M_SQUOTE ? '\'' : (s->mode == KS_M_DQUOTE ? '"' : '`');

		if (s->str_escapes && c == '\\') {
			ks_tok_add(s, n1, false);
			s->skip_to = i + 2;
			return 0;
		}
		if (c == qc) {
			if (n1 == qc) {
				ks_tok_add(s, c, false);
				s->skip_to = i + 2;
				return 0;
			}
			bool ident = qc == '`' || (!my && qc == '"');

			s->mode = KS_M_NORMAL;
			ks_sql_token(s, ident ? KS_T_IDENT : KS_T_STR, ks_tok_kw(s), s->tok_hash);
			return 0;
		}
		if (s->scan_strings && qc != '`') {
			ks_sql_string_word(b, i);
			ks_tok_add(s, c, false);
			return 0;
		}
		/* plain characters up to the next quote or backslash */
		ks_tok_add(s, c, false);
		for (__u32 k = 1; k < KS_SQL_RUN; k++) {
			char d = ks_sql_at(b, i + k);

			if (d == qc || d == '\\' || i + k >= s->len) {
				s->skip_to = i + k;
				return 0;
			}
			ks_tok_add(s, d, false);
		}
		s->skip_to = i + KS_SQL_RUN;
		return 0;
	}
	case KS_M_DOLLAR:
		if (c == '$' && ks_dollar_close(b, i)) {
			s->skip_to = i + s->dollar_len;
			s->mode = KS_M_NORMAL;
			ks_sql_token(s, KS_T_STR, 0, s->tok_hash);
		} else if (c != '$') {
			__u32 k;

			for (k = 1; k < KS_SQL_RUN * 2; k++)
				if (ks_sql_at(b, i + k) == '$' || i + k >= s->len)
					break;
			s->skip_to = i + k;
		}
		return 0;
	case KS_M_VERSION:
		if (ks_is_digit(c))
			return 0;
		s->mode = KS_M_NORMAL;
		break;
	case KS_M_WORD:
		if (ks_is_alpha(c) || ks_is_digit(c) || c == '$' ||
		    (c == '.' && (ks_is_alpha(n1) || n1 == '"'))) {
			/* the rest of the word */
			ks_tok_add(s, c, true);
			for (__u32 k = 1; k < KS_SQL_RUN; k++) {
				char d = ks_sql_at(b, i + k);

				if (!(ks_is_alpha(d) || ks_is_digit(d) || d == '$') || i + k >= s->len) {
					s->skip_to = i + k;
					return 0;
				}
				ks_tok_add(s, d, true);
			}
			s->skip_to = i + KS_SQL_RUN;
			return 0;
		}
		s->mode = KS_M_NORMAL;
		/* E'...', N'...', B'...', X'...': a prefix of the string, not a word */
		if (c == '\'' && s->tok_len == 1) {
			s->str_escapes = my || s->tok_packed == 'E';
			s->mode = KS_M_SQUOTE;
			ks_tok_begin(s);
			return 0;
		}
		ks_sql_end_word(s);
		break;
	case KS_M_NUMBER:
		if (ks_is_digit(c) || c == '.' || ((c == 'e' || c == 'E') && ks_is_digit(n1))) {
			ks_tok_add(s, c, true);
			return 0;
		}
		if (ks_is_alpha(c) || (c == 'x' && !my)) {
			/* 1abc is not a number: a word to the lexer we mimic */
			ks_tok_add(s, c, true);
			s->mode = KS_M_WORD;
			return 0;
		}
		s->mode = KS_M_NORMAL;
		ks_sql_end_number(s);
		break;
	default:
		break;
	}

	/* code */
	if (ks_is_space(c)) {
		__u32 k;

		for (k = 1; k < KS_SQL_RUN; k++)
			if (!ks_is_space(ks_sql_at(b, i + k)) || i + k >= s->len)
				break;
		s->skip_to = i + k;
		return 0;
	}
	if (c == '-' && n1 == '-') {
		char n2 = ks_sql_at(b, i + 2);

		if (!my || i + 2 >= s->len || ks_is_space(n2) || (unsigned char)n2 < 32) {
			s->mode = KS_M_LINE;
			return 0;
		}
	}
	if (c == '#' && my) {
		s->mode = KS_M_LINE;
		return 0;
	}
	if (c == '/' && n1 == '*') {
		char n2 = ks_sql_at(b, i + 2);

		if (my && (n2 == '!' || (n2 == 'M' && ks_sql_at(b, i + 3) == '!'))) {
			/* executable comment: its content runs on the server */
			s->exec_comment++;
			s->skip_to = i + (n2 == '!' ? 3 : 4);
			s->mode = KS_M_VERSION;
			return 0;
		}
		s->mode = KS_M_BLOCK;
		s->comment_depth = 1;
		s->skip_to = i + 2;
		return 0;
	}
	if (c == '*' && n1 == '/' && s->exec_comment) {
		s->exec_comment--;
		s->skip_to = i + 2;
		return 0;
	}
	if (c == '\'' || c == '"' || (c == '`' && my)) {
		s->mode = c == '\'' ? KS_M_SQUOTE : (c == '"' ? KS_M_DQUOTE : KS_M_BACKTICK);
		s->str_escapes = my && c != '`';
		ks_tok_begin(s);
		return 0;
	}
	if (c == '$' && !my) {
		if (ks_is_digit(n1)) {
			/* $1: a parameter */
			ks_tok_begin(s);
			ks_tok_add(s, c, true);
			s->mode = KS_M_WORD;
			return 0;
		}
		__u32 tag = ks_dollar_open(b, i);
		if (tag) {
			s->dollar_at = i;
			s->dollar_len = tag;
			s->skip_to = i + tag;
			s->mode = KS_M_DOLLAR;
			ks_tok_begin(s);
			return 0;
		}
		ks_sql_token(s, KS_T_OTHER, 0, 0);
		return 0;
	}
	if (ks_is_digit(c) || (c == '.' && ks_is_digit(n1))) {
		ks_tok_begin(s);
		ks_tok_add(s, c, true);
		s->mode = KS_M_NUMBER;
		return 0;
	}
	if (ks_is_alpha(c)) {
		ks_tok_begin(s);
		ks_tok_add(s, c, true);
		s->mode = KS_M_WORD;
		return 0;
	}
	if (c == ';') {
		ks_stmt_end(s);
		return 0;
	}
	if (c == '(') {
		ks_sql_lparen(s);
		return 0;
	}
	if (c == ')') {
		ks_sql_rparen(s);
		return 0;
	}
	if (c == '=' && n1 != '=') {
		ks_sql_token(s, KS_T_EQ, 0, 0);
		return 0;
	}
	if ((c == '<' && n1 == '>') || (c == '!' && n1 == '=')) {
		s->skip_to = i + 2;
		ks_sql_token(s, KS_T_NE, 0, 0);
		return 0;
	}
	if (c == ':' && n1 == ':') {
		s->skip_to = i + 2;
		ks_sql_token(s, KS_T_CAST, 0, 0);
		return 0;
	}
	ks_sql_token(s, KS_T_OTHER, 0, 0);
	return 0;
}

/* Classify b->text[base, base + len): a KS_DBR_* reason, or 0 for harmless. */
static __always_inline __u32 ks_sql_classify(struct ks_sql_buf *b, __u32 base, __u32 len,
					     __u32 dialect)
{
	struct ks_sql *s = &b->s;
	struct ks_sql_cb cb = {.b = b};

	__builtin_memset(s, 0, sizeof(*s));
	s->base = base;
	s->len = len;
	s->dialect = dialect;
	s->prev_tok = KS_T_START;
	bpf_loop(KS_DB_WINDOW + 1, ks_sql_step, &cb, 0);
	return s->reason;
}

#endif /* KS_SQL_BPF_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A small, bounded SQL tokenizer for the socket send path, where a verdict has
 * to be made in the kernel. It reads the text the way the server's lexer
 * does (comments, string literals, quoted identifiers, dollar quoting,
 * MySQL's executable comments), splits statements at top-level ';' and
 * decides from the tokens:
 *
 *   - DROP or TRUNCATE as the first word of a statement (DROP INDEX: a
 *     schema change);
 *   - DO as the first word (PostgreSQL: code that cannot be seen);
 *   - ALTER ... DROP: a schema change when what it drops holds no rows (a
 *     constraint; a column's NOT NULL, DEFAULT, IDENTITY or EXPRESSION right
 *     after ALTER [COLUMN] name; MySQL's INDEX, KEY, FOREIGN KEY, PRIMARY KEY,
 *     CHECK), else alter-drop;
 *   - DELETE or UPDATE that starts a statement, a parenthesised group (CTEs,
 *     subqueries) or follows AS/EXPLAIN/ANALYZE/VERBOSE, with no WHERE at its
 *     own nesting level, or with a WHERE that is always true: TRUE, a non-zero
 *     number, 'yes'::boolean, a literal (or column) equal to itself, two
 *     different literals compared with <>, alone, in an OR, in a group.
 *     Bookkeeping instead, when its one target table is in db_bookkeeping;
 *   - MySQL PREPARE ... FROM 'text' whose text holds DROP, TRUNCATE, DELETE,
 *     UPDATE or ALTER: opaque-code, and every class that word may begin;
 *   - text that does not end where it should (an open string or comment).
 *
 * Every class it finds is a bit of found; the policy's refuse_classes
 * decides which are refused (ks_db_refuses). It errs towards refusing: when
 * its reading is cruder than the server's grammar, it finds more, never
 * less. The user-space parser (libpg_query for PostgreSQL) classifies the
 * same text for the audit record; one corpus (tests/corpus/db_requests.txt)
 * holds both to the same cases.
 */
#ifndef KS_SQL_BPF_H
#define KS_SQL_BPF_H

/* Code, types and its one map: db_judge_test.bpf.c includes it without the
 * maps of ks_maps.bpf.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <killswitch/abi/events.h>

/* The tables of migration tools (FNV-1a of the name in lower case), written
 * by the daemon from the built-in list and databases.bookkeeping_tables. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KS_DB_BOOKKEEPING_MAX);
	__type(key, __u64);
	__type(value, __u8);
} db_bookkeeping SEC(".maps");

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
#define KW_INDEX KS_KW(5, KS_K5('I', 'N', 'D', 'E', 'X'))
#define KW_NOT KS_KW(3, KS_K3('N', 'O', 'T'))
#define KW_IDENTITY KS_KW(8, KS_K8('I', 'D', 'E', 'N', 'T', 'I', 'T', 'Y'))
#define KW_KEY KS_KW(3, KS_K3('K', 'E', 'Y'))
#define KW_FOREIGN KS_KW(7, KS_K7('F', 'O', 'R', 'E', 'I', 'G', 'N'))
#define KW_PRIMARY KS_KW(7, KS_K7('P', 'R', 'I', 'M', 'A', 'R', 'Y'))
#define KW_CHECK KS_KW(5, KS_K5('C', 'H', 'E', 'C', 'K'))
#define KW_COLUMN KS_KW(6, KS_K6('C', 'O', 'L', 'U', 'M', 'N'))
#define KW_DOMAIN KS_KW(6, KS_K6('D', 'O', 'M', 'A', 'I', 'N'))
#define KW_SET KS_KW(3, KS_K3('S', 'E', 'T'))
#define KW_FROM KS_KW(4, KS_K4('F', 'R', 'O', 'M'))
#define KW_ONLY KS_KW(4, KS_K4('O', 'N', 'L', 'Y'))
#define KW_QUICK KS_KW(5, KS_K5('Q', 'U', 'I', 'C', 'K'))
#define KW_IGNORE KS_KW(6, KS_K6('I', 'G', 'N', 'O', 'R', 'E'))
#define KW_USING KS_KW(5, KS_K5('U', 'S', 'I', 'N', 'G'))
/* Longer than 8 bytes: where a lookalike would pass something, the word's
 * hash (FNV-1a of it in upper case) is compared as well. */
#define KW_CONSTRAINT KS_KW(10, KS_K8('C', 'O', 'N', 'S', 'T', 'R', 'A', 'I'))
#define KS_H_CONSTRAINT 0x65a311112c87acdaULL
#define KW_EXPRESSION KS_KW(10, KS_K8('E', 'X', 'P', 'R', 'E', 'S', 'S', 'I'))
#define KS_H_EXPRESSION 0xc2f8a5c18de21c0bULL
#define KW_LOW_PRIORITY KS_KW(12, KS_K8('L', 'O', 'W', '_', 'P', 'R', 'I', 'O'))
#define KS_H_LOW_PRIORITY 0xb2588c13920a44eeULL
/* host-access (ks_sql_host_access); words longer than 8 bytes are compared
 * by their first 8 and their length: a lookalike is refused too. */
#define KW_COPY KS_KW(4, KS_K4('C', 'O', 'P', 'Y'))
#define KW_PROGRAM KS_KW(7, KS_K7('P', 'R', 'O', 'G', 'R', 'A', 'M'))
#define KW_TO KS_KW(2, KS_K2('T', 'O'))
#define KW_INTO KS_KW(4, KS_K4('I', 'N', 'T', 'O'))
#define KW_OUTFILE KS_KW(7, KS_K7('O', 'U', 'T', 'F', 'I', 'L', 'E'))
#define KW_DUMPFILE KS_KW(8, KS_K8('D', 'U', 'M', 'P', 'F', 'I', 'L', 'E'))
#define KW_SYSTEM KS_KW(6, KS_K6('S', 'Y', 'S', 'T', 'E', 'M'))
#define KW_INSTALL KS_KW(7, KS_K7('I', 'N', 'S', 'T', 'A', 'L', 'L'))
#define KW_LOAD KS_KW(4, KS_K4('L', 'O', 'A', 'D'))
#define KW_GLOBAL KS_KW(6, KS_K6('G', 'L', 'O', 'B', 'A', 'L'))
#define KW_PERSIST KS_KW(7, KS_K7('P', 'E', 'R', 'S', 'I', 'S', 'T'))
#define KW_PERSIST_ONLY KS_KW(12, KS_K8('P', 'E', 'R', 'S', 'I', 'S', 'T', '_'))
#define KW_LANGUAGE KS_KW(8, KS_K8('L', 'A', 'N', 'G', 'U', 'A', 'G', 'E'))
#define KW_C KS_KW(1, 'C')
#define KW_INTERNAL KS_KW(8, KS_K8('I', 'N', 'T', 'E', 'R', 'N', 'A', 'L'))
/* File functions by name: FNV-1a of the last part of a name, lower case
 * (the tokenizer's nh), schema-qualified or quoted alike. */
#define KS_NH_LO_EXPORT 0x2d39636dd70f3a1fULL
#define KS_NH_LO_IMPORT 0x43e49b803bf1c3b0ULL
#define KS_NH_PG_READ_FILE 0xf8dce6cc44a89568ULL
#define KS_NH_PG_READ_BINARY_FILE 0xa3c1955dad4bfdeeULL
#define KS_NH_PG_LS_DIR 0xb6720c2e06210ee4ULL
#define KS_NH_PG_STAT_FILE 0xa01aed81444f3c8eULL
#define KS_NH_PG_FILE_WRITE 0x9bd80c3448a2cb03ULL
#define KS_NH_PG_FILE_UNLINK 0xed197e8d4ae3243bULL
#define KS_NH_PG_FILE_RENAME 0xf68435f31fb51e76ULL
#define KS_NH_PG_FILE_SYNC 0xed65cac40f2d5fb7ULL
#define KS_NH_PG_LOGDIR_LS 0x6c3864cfbed7ef00ULL
#define KS_NH_LOAD_FILE 0x0531d31066978284ULL
#define KW_U KS_KW(1, 'U')
#define KW_CREATE KS_KW(6, KS_K6('C', 'R', 'E', 'A', 'T', 'E'))
#define KW_FUNCTION KS_KW(8, KS_K8('F', 'U', 'N', 'C', 'T', 'I', 'O', 'N'))
#define KW_PROCEDURE KS_KW(9, KS_K8('P', 'R', 'O', 'C', 'E', 'D', 'U', 'R'))
#define KW_ATOMIC KS_KW(6, KS_K6('A', 'T', 'O', 'M', 'I', 'C'))
/* where a statement of a MySQL stored program's body starts */
#define KW_BEGIN KS_KW(5, KS_K5('B', 'E', 'G', 'I', 'N'))
#define KW_ROW KS_KW(3, KS_K3('R', 'O', 'W'))
#define KW_THEN KS_KW(4, KS_K4('T', 'H', 'E', 'N'))
#define KW_ELSE KS_KW(4, KS_K4('E', 'L', 'S', 'E'))
/* ... or, in a CREATE, after a routine's parameters or characteristics
 * (COMMENT 'x', [NOT] DETERMINISTIC, MODIFIES SQL DATA, SQL SECURITY
 * DEFINER): ')', a string, or one of these words */
#define KW_SQL KS_KW(3, KS_K3('S', 'Q', 'L'))
#define KW_DATA KS_KW(4, KS_K4('D', 'A', 'T', 'A'))
#define KW_DEFINER KS_KW(7, KS_K7('D', 'E', 'F', 'I', 'N', 'E', 'R'))
#define KW_INVOKER KS_KW(7, KS_K7('I', 'N', 'V', 'O', 'K', 'E', 'R'))
#define KW_DETERMINISTIC KS_KW(13, KS_K8('D', 'E', 'T', 'E', 'R', 'M', 'I', 'N'))
/* plpython3u and plpython2u: one key (10 bytes, PLPYTHON) */
#define KW_PLPYTHON3U KS_KW(10, KS_K8('P', 'L', 'P', 'Y', 'T', 'H', 'O', 'N'))
#define KW_PLPYTHONU KS_KW(9, KS_K8('P', 'L', 'P', 'Y', 'T', 'H', 'O', 'N'))
#define KW_PLPERLU KS_KW(7, KS_K7('P', 'L', 'P', 'E', 'R', 'L', 'U'))
#define KW_PLTCLU KS_KW(6, KS_K6('P', 'L', 'T', 'C', 'L', 'U'))
#define KW_PLSH KS_KW(4, KS_K4('P', 'L', 'S', 'H'))
#define KW_PLR KS_KW(3, KS_K3('P', 'L', 'R'))
#define KW_PLJAVAU KS_KW(7, KS_K7('P', 'L', 'J', 'A', 'V', 'A', 'U'))
#define KW_ADMINPACK KS_KW(9, KS_K8('A', 'D', 'M', 'I', 'N', 'P', 'A', 'C'))
#define KW_FILE_FDW KS_KW(8, KS_K8('F', 'I', 'L', 'E', '_', 'F', 'D', 'W'))
#define KW_PG_CRON KS_KW(7, KS_K7('P', 'G', '_', 'C', 'R', 'O', 'N'))
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
	KS_T_DOT, /* '.' between the parts of a name */
	KS_T_OTHER,
};

/* Where a DELETE or UPDATE is in naming its target (ks_sql.bk). */
enum ks_sql_bk {
	KS_BK_NONE,  /* not one table of the bookkeeping list */
	KS_BK_FROM,  /* DELETE: FROM next */
	KS_BK_NAME,  /* the table's name (or its next part) next */
	KS_BK_AFTER, /* after the name */
	KS_BK_AS,    /* after AS: the alias next */
	KS_BK_ALIAS, /* after the alias */
	KS_BK_YES,   /* one target table, of the list */
};

#define KS_SQL_GROUPS 8

struct ks_sql {
	/* the token being read */
	__u64 tok_hash;
	__u64 tok_packed;
	__u64 tok_nhash; /* its last part as a name: lower case, after the last '.' of a word */
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
	__u8 function;     /* PostgreSQL CREATE ... FUNCTION/PROCEDURE: its body is a string */
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
	__u8 drop_pending; /* DROP began the statement: DROP INDEX or another */
	__u8 alter_col;    /* ALTER [COLUMN] name: 1 after ALTER, 2 after COLUMN, 3 after the name */
	__u8 drop_col;     /* the pending ALTER ... DROP follows ALTER [COLUMN] name */
	__u8 bk;           /* enum ks_sql_bk */
	__u8 bk_hit;       /* the name read is in db_bookkeeping */
	__u8 bk_miss;      /* ... is not */
	__u32 found;       /* every reason found: KS_DB_CLASS_BIT(KS_DBR_*) */
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
	s->found |= KS_DB_CLASS_BIT(r & 31);
	if (s->reason == 0 || (s->reason >= KS_DBR_FIRST_UNPARSEABLE && r < KS_DBR_FIRST_UNPARSEABLE))
		s->reason = r;
}

static __always_inline void ks_tok_begin(struct ks_sql *s)
{
	s->tok_hash = KS_FNV_OFFSET;
	s->tok_nhash = KS_FNV_OFFSET;
	s->tok_packed = 0;
	s->tok_len = 0;
	s->tok_nonzero = 0;
}

static __always_inline void ks_tok_add(struct ks_sql *s, char c, bool fold)
{
	char u = ks_upc(c);

	s->tok_hash = (s->tok_hash ^ (__u8)(fold ? u : c)) * KS_FNV_PRIME;
	s->tok_nhash = (s->tok_nhash ^ (__u8)(c >= 'A' && c <= 'Z' ? c + 32 : c)) * KS_FNV_PRIME;
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
	/* a DELETE may end right after its table's name or alias */
	bool bk = s->bk_hit &&
		  (s->bk == KS_BK_YES ||
		   (s->dml == KS_DBR_DELETE_ALL && (s->bk == KS_BK_AFTER || s->bk == KS_BK_ALIAS)));
	bool every = !s->where;

	if (s->where) {
		ks_atom_end(s);
		/* a group left open counts as its current value */
		every = s->any_true || s->chain_true;
	}
	if (every) {
		ks_sql_set_reason(s, bk ? KS_DBR_BOOKKEEPING : s->dml);
		/* unless its table's name was read and is not on the list, it may
		 * be bookkeeping to the parser: refused if that is */
		if (!s->bk_miss)
			s->found |= KS_DB_CLASS_BIT(KS_DBR_BOOKKEEPING);
	}
	s->dml = 0;
	s->where = 0;
	s->gdepth = 0;
	s->bk = KS_BK_NONE;
	s->bk_hit = 0;
	s->bk_miss = 0;
}

static __always_inline void ks_stmt_end(struct ks_sql *s)
{
	ks_dml_end(s);
	if (s->alter_drop_pending) {
		ks_sql_set_reason(s, KS_DBR_ALTER_DROP);
		s->found |= KS_DB_CLASS_BIT(KS_DBR_SCHEMA_CHANGE);
	}
	if (s->drop_pending)
		ks_sql_set_reason(s, KS_DBR_DROP);
	s->alter_drop_pending = 0;
	s->drop_pending = 0;
	s->alter_col = 0;
	s->drop_col = 0;
	s->words = 0;
	s->first_kw = 0;
	s->prev_tok = KS_T_START;
	s->prev_kw = 0;
	s->depth = 0;
	s->scan_strings = 0;
	s->function = 0;
}

/* ALTER ... DROP, then this token: what is dropped. Rows are lost with a
 * column (PostgreSQL reads DROP x as DROP COLUMN x, and IDENTITY or
 * EXPRESSION may be a column's name), or a MySQL partition; not with a
 * constraint, an index, or a column's NOT NULL, DEFAULT, IDENTITY or
 * EXPRESSION after ALTER [COLUMN] name. Only reserved words are taken
 * without that context. */
static __always_inline __u32 ks_alter_drop_reason(const struct ks_sql *s, __u32 t, __u64 kw,
						  __u64 h)
{
	bool my = s->dialect == KS_SQL_MYSQL;

	if (t != KS_T_WORD)
		return KS_DBR_ALTER_DROP;
	if (kw == KW_CONSTRAINT && h == KS_H_CONSTRAINT)
		return KS_DBR_SCHEMA_CHANGE;
	if (s->drop_col &&
	    (kw == KW_DEFAULT || (!my && (kw == KW_NOT || kw == KW_IDENTITY ||
					  (kw == KW_EXPRESSION && h == KS_H_EXPRESSION)))))
		return KS_DBR_SCHEMA_CHANGE;
	if (my && (kw == KW_INDEX || kw == KW_KEY || kw == KW_FOREIGN || kw == KW_PRIMARY ||
		   kw == KW_CHECK))
		return KS_DBR_SCHEMA_CHANGE;
	return KS_DBR_ALTER_DROP;
}

/* The target of a DELETE or UPDATE, one token at a time: [ONLY] (PostgreSQL)
 * or LOW_PRIORITY, QUICK, IGNORE (MySQL), a name whose last part is in
 * db_bookkeeping, [[AS] alias], then SET (UPDATE) or WHERE, USING, RETURNING,
 * ORDER, LIMIT or the end (DELETE). Anything else (a second table, a join,
 * a '*') and it is not bookkeeping. nh: the token's last part as a name. */
static __always_inline void ks_sql_bk(struct ks_sql *s, __u32 t, __u64 kw, __u64 h, __u64 nh)
{
	bool word = t == KS_T_WORD;
	bool name = word || t == KS_T_IDENT;
	bool my = s->dialect == KS_SQL_MYSQL;
	bool del = s->dml == KS_DBR_DELETE_ALL;
	bool low = word && kw == KW_LOW_PRIORITY && h == KS_H_LOW_PRIORITY;
	__u32 bk = s->bk, next = KS_BK_NONE;

	if (bk == KS_BK_FROM) {
		if (word && kw == KW_FROM)
			next = KS_BK_NAME;
		else if (my && (low || (word && (kw == KW_QUICK || kw == KW_IGNORE))))
			next = KS_BK_FROM;
	} else if (bk == KS_BK_NAME) {
		if (my ? (low || (word && kw == KW_IGNORE)) : (word && kw == KW_ONLY)) {
			next = KS_BK_NAME;
		} else if (name && nh == KS_FNV_OFFSET) {
			next = KS_BK_NAME; /* "schema." : the name follows */
		} else if (name) {
			s->bk_hit = bpf_map_lookup_elem(&db_bookkeeping, &nh) != NULL;
			s->bk_miss = !s->bk_hit;
			next = KS_BK_AFTER;
		}
	} else if (bk == KS_BK_AFTER && t == KS_T_DOT) {
		next = KS_BK_NAME;
	} else if (bk == KS_BK_AFTER || bk == KS_BK_ALIAS) {
		if (word && (del ? kw == KW_WHERE || kw == KW_USING || kw == KW_RETURNING ||
				       kw == KW_ORDER || kw == KW_LIMIT
				 : kw == KW_SET))
			next = KS_BK_YES;
		else if (bk == KS_BK_AFTER && word && kw == KW_AS)
			next = KS_BK_AS;
		else if (bk == KS_BK_AFTER && name)
			next = KS_BK_ALIAS;
	} else if (bk == KS_BK_AS && name) {
		next = KS_BK_ALIAS;
	}
	if (next == KS_BK_YES && !s->bk_hit)
		next = KS_BK_NONE;
	s->bk = next;
}

/* ALTER [COLUMN] name, and ALTER DOMAIN name: a DROP right after it is a
 * column's (or the domain's) NOT NULL, DEFAULT... */
static __always_inline void ks_sql_alter_col(struct ks_sql *s, __u32 t, __u64 kw, bool first)
{
	bool word = t == KS_T_WORD;
	__u32 st = s->alter_col;

	s->alter_col = 0;
	if (first) {
		s->alter_col = 4; /* DOMAIN may follow */
	} else if (word && kw == KW_DROP) {
		/* always a DROP, even where it could be a name: stricter */
		s->alter_drop_pending = 1;
		s->drop_col = st == 3;
	} else if (word && kw == KW_ALTER) {
		s->alter_col = 1;
	} else if ((st == 1 && word && kw == KW_COLUMN) || (st == 4 && word && kw == KW_DOMAIN)) {
		s->alter_col = 2;
	} else if ((st == 1 || st == 2) && (word || t == KS_T_IDENT)) {
		s->alter_col = 3;
	}
}

/* Does this token make the server read, write or run something on its host,
 * or load code (host-access)? The parsers read the statement (host_access in
 * userspace/db_guard/postgres.cpp and mysql.cpp); this reads words: a file
 * function's name anywhere, quoted or not (PostgreSQL's lo_export,
 * pg_read_file..., MySQL's LOAD_FILE), an untrusted language or an
 * extension that reaches the host anywhere but in a string, and in context
 * COPY ... PROGRAM, COPY ... TO/FROM 'file', INTO OUTFILE/DUMPFILE, ALTER
 * SYSTEM, LANGUAGE c/internal, SET GLOBAL/PERSIST, and a statement that
 * starts with LOAD or INSTALL. Cruder than the parsers: COPY ... FROM STDIN
 * passes, LOAD DATA LOCAL does not. */
static __always_inline bool ks_sql_host_access(const struct ks_sql *s, __u32 t, __u64 kw,
					       __u64 nh, bool first)
{
	bool word = t == KS_T_WORD;
	bool name = word || t == KS_T_IDENT;
	bool after = s->prev_tok == KS_T_WORD;
	__u64 pk = s->prev_kw;
	/* a word's first 8 bytes, upper case (SET @@GLOBAL.x is one word) */
	__u64 packed = kw ^ ((__u64)s->tok_len << 56);

	if (name && (nh == KS_NH_LO_EXPORT || nh == KS_NH_LO_IMPORT || nh == KS_NH_PG_READ_FILE ||
		     nh == KS_NH_PG_READ_BINARY_FILE || nh == KS_NH_PG_LS_DIR ||
		     nh == KS_NH_PG_STAT_FILE || nh == KS_NH_PG_FILE_WRITE ||
		     nh == KS_NH_PG_FILE_UNLINK || nh == KS_NH_PG_FILE_RENAME ||
		     nh == KS_NH_PG_FILE_SYNC || nh == KS_NH_PG_LOGDIR_LS || nh == KS_NH_LOAD_FILE))
		return true;
	if (name && (kw == KW_PLPYTHON3U || kw == KW_PLPYTHONU || kw == KW_PLPERLU || kw == KW_PLTCLU || kw == KW_PLSH || kw == KW_PLR ||
		     kw == KW_PLJAVAU || kw == KW_ADMINPACK || kw == KW_FILE_FDW || kw == KW_PG_CRON))
		return true;
	if (first && (kw == KW_LOAD || kw == KW_INSTALL))
		return true;
	if (s->first_kw == KW_COPY &&
	    ((word && kw == KW_PROGRAM) ||
	     (t == KS_T_STR && after && (pk == KW_TO || pk == KW_FROM))))
		return true;
	if (after && pk == KW_INTO && word && (kw == KW_OUTFILE || kw == KW_DUMPFILE))
		return true;
	if (after && pk == KW_ALTER && word && kw == KW_SYSTEM)
		return true;
	if (after && pk == KW_LANGUAGE && (kw == KW_C || kw == KW_INTERNAL))
		return true;
	return s->first_kw == KW_SET && word &&
	       (kw == KW_GLOBAL || kw == KW_PERSIST || kw == KW_PERSIST_ONLY ||
		(s->tok_len >= 8 && ((packed >> 8) == KS_K7('G', 'L', 'O', 'B', 'A', 'L', '.') ||
				     packed == KS_K8('P', 'E', 'R', 'S', 'I', 'S', 'T', '.'))));
}

/* One token of the statement. kw is the packed keyword of a word, h its
 * hash (case-folded for words, exact for literals), nh its last part as a
 * name. A global function: the verifier checks it once, on its own, rather
 * than at each of the dozen places the tokenizer calls it (which doubled the
 * sk_msg program's verification). */
__noinline int ks_sql_token(struct ks_sql *s, __u32 t, __u64 kw, __u64 h, __u64 nh)
{
	if (!s)
		return 0;
	bool word = t == KS_T_WORD;
	bool first = word && s->words == 0;

	if (s->alter_drop_pending && t != KS_T_LPAREN) {
		s->alter_drop_pending = 0;
		ks_sql_set_reason(s, ks_alter_drop_reason(s, t, kw, h));
		/* a DROP it takes for a column's may be a schema change to the
		 * parser: refused if that is */
		s->found |= KS_DB_CLASS_BIT(KS_DBR_SCHEMA_CHANGE);
	}
	if (s->drop_pending) {
		s->drop_pending = 0;
		ks_sql_set_reason(s, word && kw == KW_INDEX ? KS_DBR_SCHEMA_CHANGE : KS_DBR_DROP);
	}
	if (word)
		s->words++;
	if (s->first_kw == KW_ALTER || (first && kw == KW_ALTER))
		ks_sql_alter_col(s, t, kw, first);
	/* MySQL: a statement of a stored program's body (CREATE PROCEDURE ...
	 * BEGIN, CREATE TRIGGER ... FOR EACH ROW, CREATE EVENT ... DO, IF ...
	 * THEN, ELSE) starts after these words; a routine's one-statement body
	 * (CREATE PROCEDURE p() [characteristics] DROP TABLE t) after its ')'
	 * or a characteristic's last word or string */
	bool prev_word = s->prev_tok == KS_T_WORD;
	bool body = s->dialect == KS_SQL_MYSQL && word &&
		    ((prev_word && (s->prev_kw == KW_BEGIN || s->prev_kw == KW_ROW ||
				    s->prev_kw == KW_DO || s->prev_kw == KW_THEN ||
				    s->prev_kw == KW_ELSE)) ||
		     (s->first_kw == KW_CREATE &&
		      (s->prev_tok == KS_T_RPAREN || s->prev_tok == KS_T_STR ||
		       (prev_word && (s->prev_kw == KW_SQL || s->prev_kw == KW_DATA ||
				      s->prev_kw == KW_DEFINER || s->prev_kw == KW_INVOKER ||
				      s->prev_kw == KW_DETERMINISTIC)))));
	if (body && kw == KW_DROP)
		s->drop_pending = 1;
	else if (body && kw == KW_TRUNCATE)
		ks_sql_set_reason(s, KS_DBR_TRUNCATE);
	if (first) {
		s->first_kw = kw;
		if (kw == KW_DROP)
			s->drop_pending = 1;
		else if (kw == KW_TRUNCATE)
			ks_sql_set_reason(s, KS_DBR_TRUNCATE);
		else if (kw == KW_DO && s->dialect == KS_SQL_PG) {
			/* a block the parser reads (PL/pgSQL's grammar), the
			 * kernel does not: code of every class, as a function's
			 * body below */
			ks_sql_set_reason(s, KS_DBR_OPAQUE_CODE);
			s->found |= KS_DB_CLASSES_ALL;
		} else if (kw == KW_PREPARE && s->dialect == KS_SQL_MYSQL)
			s->scan_strings = 1;
	}

	if (s->dml && !s->where && s->bk != KS_BK_NONE && s->bk != KS_BK_YES &&
	    s->depth == s->dml_depth)
		ks_sql_bk(s, t, kw, h, nh);
	if (word && (kw == KW_DELETE || kw == KW_UPDATE) && !s->dml) {
		bool starts = first || body || s->prev_tok == KS_T_LPAREN || s->prev_tok == KS_T_RPAREN ||
			      (s->prev_tok == KS_T_WORD &&
			       (s->prev_kw == KW_AS || s->prev_kw == KW_EXPLAIN || s->prev_kw == KW_ANALYZE ||
				s->prev_kw == KW_ANALYSE || s->prev_kw == KW_VERBOSE));
		if (starts) {
			s->dml = kw == KW_DELETE ? KS_DBR_DELETE_ALL : KS_DBR_UPDATE_ALL;
			s->dml_depth = s->depth;
			s->where = 0;
			s->bk = kw == KW_DELETE ? KS_BK_FROM : KS_BK_NAME;
			s->bk_hit = 0;
			s->bk_miss = 0;
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
	if (ks_sql_host_access(s, t, kw, nh, first))
		ks_sql_set_reason(s, KS_DBR_HOST_ACCESS);
	/* A function's body in a string (AS '...' or $$...$$) or BEGIN ATOMIC:
	 * the parser reads it (PL/pgSQL's own grammar) and judges what it runs;
	 * the kernel does not: code it cannot see, which may be of every class
	 * (refused whichever of them the policy refuses). */
	if (s->dialect == KS_SQL_PG && s->first_kw == KW_CREATE && word &&
	    (kw == KW_FUNCTION || kw == KW_PROCEDURE))
		s->function = 1;
	if (s->function && (t == KS_T_STR || (word && kw == KW_ATOMIC))) {
		ks_sql_set_reason(s, KS_DBR_OPAQUE_CODE);
		s->found |= KS_DB_CLASSES_ALL;
	}
	s->prev_tok = t;
	s->prev_kw = kw;
	return 0;
}

static __always_inline void ks_sql_lparen(struct ks_sql *s)
{
	ks_sql_token(s, KS_T_LPAREN, 0, 0, 0);
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
		ks_sql_token(s, KS_T_RPAREN, 0, 0, 0);
	}
	if (s->depth > 0)
		s->depth--;
}

static __always_inline void ks_sql_end_word(struct ks_sql *s)
{
	ks_sql_token(s, KS_T_WORD, ks_tok_kw(s), s->tok_hash, s->tok_nhash);
}

static __always_inline void ks_sql_end_number(struct ks_sql *s)
{
	ks_sql_token(s, s->tok_nonzero ? KS_T_NUM : KS_T_NUM0, 0, s->tok_hash, 0);
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
	/* code it cannot see, and every class the word may begin: refused
	 * whichever of them the policy refuses */
	__u32 may = 0;

	if (kw == KW_DROP)
		may = KS_DB_CLASS_BIT(KS_DBR_DROP) | KS_DB_CLASS_BIT(KS_DBR_SCHEMA_CHANGE);
	else if (kw == KW_TRUNCATE)
		may = KS_DB_CLASS_BIT(KS_DBR_TRUNCATE);
	else if (kw == KW_DELETE)
		may = KS_DB_CLASS_BIT(KS_DBR_DELETE_ALL) | KS_DB_CLASS_BIT(KS_DBR_BOOKKEEPING);
	else if (kw == KW_UPDATE)
		may = KS_DB_CLASS_BIT(KS_DBR_UPDATE_ALL) | KS_DB_CLASS_BIT(KS_DBR_BOOKKEEPING);
	else if (kw == KW_ALTER)
		may = KS_DB_CLASS_BIT(KS_DBR_ALTER_DROP) | KS_DB_CLASS_BIT(KS_DBR_SCHEMA_CHANGE);
	if (may) {
		ks_sql_set_reason(s, KS_DBR_OPAQUE_CODE);
		s->found |= may;
	}
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
			ks_sql_token(s, ident ? KS_T_IDENT : KS_T_STR, ks_tok_kw(s), s->tok_hash,
				     s->tok_nhash);
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
			ks_sql_token(s, KS_T_STR, 0, s->tok_hash, 0);
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
			/* schema.table: the name is the last part */
			if (c == '.')
				s->tok_nhash = KS_FNV_OFFSET;
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
		ks_sql_token(s, KS_T_OTHER, 0, 0, 0);
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
		ks_sql_token(s, KS_T_EQ, 0, 0, 0);
		return 0;
	}
	if ((c == '<' && n1 == '>') || (c == '!' && n1 == '=')) {
		s->skip_to = i + 2;
		ks_sql_token(s, KS_T_NE, 0, 0, 0);
		return 0;
	}
	if (c == ':' && n1 == ':') {
		s->skip_to = i + 2;
		ks_sql_token(s, KS_T_CAST, 0, 0, 0);
		return 0;
	}
	if (c == '&' && n1 == '"' && !my && s->prev_tok == KS_T_WORD && s->prev_kw == KW_U)
		/* U&"...": a name in escapes, which the kernel does not decode (it
		 * may be lo_export's): host-access, stricter than the parser */
		ks_sql_set_reason(s, KS_DBR_HOST_ACCESS);
	ks_sql_token(s, c == '.' ? KS_T_DOT : KS_T_OTHER, 0, 0, 0);
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

/*
 * tmpl.c: lexer, parser and executor of Go's text/template language as Helm
 * uses it (see tmpl.h).
 *
 * The lexer turns a whole file into tokens (text, delimiters and the words
 * inside actions, with trim markers and comments already applied); the
 * parser builds Go's node types (list, text, action, if, range, with,
 * template, break, continue; pipelines of commands whose operands are
 * fields, variables, chains, identifiers, constants and parenthesised
 * pipelines). The executor follows text/template's exec.go: lazy and/or,
 * variable scoping on a stack, missingkey=zero, and the difference between
 * a typed nil (a map lookup; stepping further into it is an error) and an
 * untyped nil (after a pipeline, a variable or parentheses).
 */
#define _GNU_SOURCE
#include "server/chart/tmpl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- tokens */

enum tok {
	T_EOF, T_TEXT, T_LDELIM, T_RDELIM, T_SPACE, T_FIELD, T_VAR, T_IDENT, T_DOT,
	T_STRING, T_RAWSTRING, T_CHAR, T_NUMBER, T_BOOL, T_NIL, T_PIPE, T_LPAREN,
	T_RPAREN, T_DECLARE, T_ASSIGN, T_COMMA,
	/* keywords */
	T_IF, T_ELSE, T_END, T_RANGE, T_WITH, T_TEMPLATE, T_DEFINE, T_BLOCK,
	T_BREAK, T_CONTINUE,
};

static const char *tok_desc[] = {
	"EOF", "text", "{{", "}}", "space", "field", "variable", "identifier", ".",
	"string", "raw string", "character constant", "number", "bool", "nil", "|", "(",
	")", ":=", "=", ",", "<if>", "<else>", "<end>", "<range>", "<with>",
	"<template>", "<define>", "<block>", "<break>", "<continue>",
};

/* a token: its text (inside the template text) and type; 16 bytes, as a
 * template has a token every few bytes. Positions are s - src. */
struct token {
	const char *s;
	uint32_t len;             /* texts are below TMPL_MAX_TEXT */
	uint32_t t;               /* enum tok */
};

/* the biggest template text tmpl_parse accepts (positions are ints) */
#define TMPL_MAX_TEXT ((size_t)INT32_MAX)

struct lexer {
	const char *name;
	const char *src;
	size_t len, pos;
	struct token *toks;
	size_t n, cap;
	char *err;
	size_t errlen;
	int failed;
};

static void pos_of(const char *src, size_t off, int *line, int *col)
{
	int l = 1;
	size_t ls = 0;
	for (size_t i = 0; i < off; i++)
		if (src[i] == '\n') {
			l++;
			ls = i + 1;
		}
	*line = l;
	*col = (int)(off - ls) + 1;
}

static __attribute__((noinline)) void grow_toks(struct lexer *L)
{
	/* first guess from the text's size: one token per ~6 bytes */
	L->cap = L->cap ? L->cap * 2 : 64 + L->len / 6;
	L->toks = xrealloc(L->toks, L->cap * sizeof(struct token));
}

static inline void emit_tok(struct lexer *L, enum tok t, const char *s, size_t len)
{
	if (L->n == L->cap)
		grow_toks(L);
	struct token *k = &L->toks[L->n++];
	k->s = s;
	k->len = (uint32_t)len;
	k->t = t;
}

static int lex_err(struct lexer *L, size_t off, const char *fmt, ...)
{
	if (L->failed)
		return -1;
	int line, col;
	pos_of(L->src, off, &line, &col);
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(L->err, L->errlen, "parse error at (%s:%d): %s", L->name, line, msg);
	L->failed = 1;
	return -1;
}

static int is_space_ch(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
/* identifier characters: letters, digits, '_' and any byte of a UTF-8
 * sequence (a table: this is the lexer's innermost loop) */
static const unsigned char alnum_table[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['_'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
	['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
	['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
	['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
	['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	/* 0x80..0xff: bytes of UTF-8 sequences (128 entries from 0x80 on) */
	[0x80] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static int is_alnum_ch(unsigned char c) { return alnum_table[c]; }

/* the end of the identifier run starting at p (bounded by len) */
static size_t skip_alnum(const char *s, size_t p, size_t len)
{
	while (p < len && alnum_table[(unsigned char)s[p]])
		p++;
	return p;
}

/* bytes that may follow a name: 1, or 2 for '}' (only as part of "}}") */
static const unsigned char after_name[256] = {
	[' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1, ['.'] = 1, [','] = 1, ['|'] = 1, [':'] = 1,
	[')'] = 1, ['('] = 1, ['}'] = 2,
};

static int at_terminator(struct lexer *L)
{
	if (L->pos >= L->len)
		return 1;
	int k = after_name[(unsigned char)L->src[L->pos]];
	if (k == 2)
		return L->pos + 1 < L->len && L->src[L->pos + 1] == '}';
	return k;
}

static int scan_number(struct lexer *L)
{
	const char *s = L->src;
	size_t p = L->pos;
	if (p < L->len && (s[p] == '+' || s[p] == '-')) p++;
	const char *digits = "0123456789_";
	int kind = 10;
	if (p < L->len && s[p] == '0') {
		p++;
		if (p < L->len && (s[p] == 'x' || s[p] == 'X')) { p++; digits = "0123456789abcdefABCDEF_"; kind = 16; }
		else if (p < L->len && (s[p] == 'o' || s[p] == 'O')) { p++; digits = "01234567_"; kind = 8; }
		else if (p < L->len && (s[p] == 'b' || s[p] == 'B')) { p++; digits = "01_"; kind = 2; }
	}
	while (p < L->len && strchr(digits, s[p]) && s[p]) p++;
	if (p < L->len && s[p] == '.') {
		p++;
		while (p < L->len && strchr(digits, s[p]) && s[p]) p++;
	}
	if (kind == 10 && p < L->len && (s[p] == 'e' || s[p] == 'E')) {
		p++;
		if (p < L->len && (s[p] == '+' || s[p] == '-')) p++;
		while (p < L->len && strchr("0123456789_", s[p]) && s[p]) p++;
	}
	if (kind == 16 && p < L->len && (s[p] == 'p' || s[p] == 'P')) {
		p++;
		if (p < L->len && (s[p] == '+' || s[p] == '-')) p++;
		while (p < L->len && strchr("0123456789_", s[p]) && s[p]) p++;
	}
	if (p < L->len && s[p] == 'i') p++;
	if (p < L->len && is_alnum_ch((unsigned char)s[p])) {
		p++;
		L->pos = p;
		return -1;
	}
	L->pos = p;
	return 0;
}

/* the keyword token for identifier s[0..n), or T_IDENT */
static enum tok keyword(const char *s, size_t n)
{
#define KW(lit, tok) if (n == sizeof(lit) - 1 && !memcmp(s, lit, n)) return tok
	switch (s[0]) {
	case 'b': KW("block", T_BLOCK); KW("break", T_BREAK); break;
	case 'c': KW("continue", T_CONTINUE); break;
	case 'd': KW("define", T_DEFINE); break;
	case 'e': KW("else", T_ELSE); KW("end", T_END); break;
	case 'f': KW("false", T_BOOL); break;
	case 'i': KW("if", T_IF); break;
	case 'n': KW("nil", T_NIL); break;
	case 'r': KW("range", T_RANGE); break;
	case 't': KW("template", T_TEMPLATE); KW("true", T_BOOL); break;
	case 'w': KW("with", T_WITH); break;
	}
	return T_IDENT;
#undef KW
}

/* lex inside an action until the right delimiter */
static int lex_action(struct lexer *L)
{
	const char *s = L->src;
	int parens = 0;
	for (;;) {
		if (L->pos >= L->len)
			return lex_err(L, L->pos, "unclosed action");
		size_t st = L->pos;
		char c = s[st];
		/* right delimiter, with optional trim */
		if (c == '}' && st + 1 < L->len && s[st + 1] == '}') {
			emit_tok(L, T_RDELIM, s + st, 2);
			L->pos = st + 2;
			return 0;
		}
		if (is_space_ch(c)) {
			size_t p = st;
			while (p < L->len && is_space_ch(s[p])) p++;
			/* " -}}" trim marker */
			if (p + 2 < L->len + 0 && s[p] == '-' && s[p + 1] == '}' && s[p + 2] == '}') {
				emit_tok(L, T_RDELIM, s + p, 3);
				L->pos = p + 3;
				/* trim following whitespace */
				while (L->pos < L->len && is_space_ch(s[L->pos])) L->pos++;
				return 0;
			}
			emit_tok(L, T_SPACE, s + st, p - st);
			L->pos = p;
			continue;
		}
		if (c == '|') { emit_tok(L, T_PIPE, s + st, 1); L->pos++; continue; }
		if (c == '(') { emit_tok(L, T_LPAREN, s + st, 1); L->pos++; parens++; continue; }
		if (c == ')') {
			if (--parens < 0)
				return lex_err(L, st, "unexpected right paren");
			emit_tok(L, T_RPAREN, s + st, 1);
			L->pos++;
			continue;
		}
		if (c == ',') { emit_tok(L, T_COMMA, s + st, 1); L->pos++; continue; }
		if (c == ':') {
			if (st + 1 < L->len && s[st + 1] == '=') {
				emit_tok(L, T_DECLARE, s + st, 2);
				L->pos += 2;
				continue;
			}
			return lex_err(L, st, "expected :=");
		}
		if (c == '=') { emit_tok(L, T_ASSIGN, s + st, 1); L->pos++; continue; }
		if (c == '"') {
			size_t p = st + 1;
			while (p < L->len && s[p] != '"') {
				if (s[p] == '\\' && p + 1 < L->len) p++;
				if (s[p] == '\n')
					return lex_err(L, st, "unterminated quoted string");
				p++;
			}
			if (p >= L->len)
				return lex_err(L, st, "unterminated quoted string");
			emit_tok(L, T_STRING, s + st, p + 1 - st);
			L->pos = p + 1;
			continue;
		}
		if (c == '`') {
			size_t p = st + 1;
			while (p < L->len && s[p] != '`') p++;
			if (p >= L->len)
				return lex_err(L, st, "unterminated raw quoted string");
			emit_tok(L, T_RAWSTRING, s + st, p + 1 - st);
			L->pos = p + 1;
			continue;
		}
		if (c == '\'') {
			size_t p = st + 1;
			while (p < L->len && s[p] != '\'') {
				if (s[p] == '\\' && p + 1 < L->len) p++;
				if (s[p] == '\n')
					return lex_err(L, st, "unterminated character constant");
				p++;
			}
			if (p >= L->len)
				return lex_err(L, st, "unterminated character constant");
			emit_tok(L, T_CHAR, s + st, p + 1 - st);
			L->pos = p + 1;
			continue;
		}
		if (c == '$' || (c == '.' && !(st + 1 < L->len && s[st + 1] >= '0' && s[st + 1] <= '9'))) {
			size_t p = st + 1;
			p = skip_alnum(s, p, L->len);
			L->pos = p;
			if (p == st + 1) {
				emit_tok(L, c == '$' ? T_VAR : T_DOT, s + st, 1);
				continue;
			}
			if (!at_terminator(L))
				return lex_err(L, p, "bad character U+%04X '%c'", (unsigned char)s[p], s[p]);
			emit_tok(L, c == '$' ? T_VAR : T_FIELD, s + st, p - st);
			continue;
		}
		if (c == '.' || c == '+' || c == '-' || (c >= '0' && c <= '9')) {
			L->pos = st;
			int bad = scan_number(L);
			if (!bad && L->pos < L->len && (s[L->pos] == '-' || s[L->pos] == '+') &&
			    s[L->pos - 1] >= '0' && s[L->pos - 1] <= '9') {
				L->pos++;
				bad = 1;
			}
			if (bad)
				return lex_err(L, st, "bad number syntax: \"%.*s\"", (int)(L->pos - st), s + st);
			emit_tok(L, T_NUMBER, s + st, L->pos - st);
			continue;
		}
		if (is_alnum_ch((unsigned char)c)) {
			size_t p = st;
			p = skip_alnum(s, p, L->len);
			L->pos = p;
			if (!at_terminator(L))
				return lex_err(L, p, "bad character U+%04X '%c'", (unsigned char)s[p], s[p]);
			emit_tok(L, keyword(s + st, p - st), s + st, p - st);
			continue;
		}
		if (c == '/')
			return lex_err(L, st, "unexpected \"/\" in command");
		return lex_err(L, st, "unrecognized character in action: U+%04X", (unsigned char)c);
	}
}

static int lex_all(struct lexer *L)
{
	const char *s = L->src;
	while (L->pos < L->len) {
		/* find next "{{" */
		const char *p = NULL;
		size_t from = L->pos;
		for (size_t i = from; i + 1 < L->len;) {
			const char *q = memchr(s + i, '{', L->len - 1 - i);
			if (!q)
				break;
			if (q[1] == '{') {
				p = q;
				break;
			}
			i = (size_t)(q - s) + 1;
		}
		size_t textend = p ? (size_t)(p - s) : L->len;
		size_t delim = textend;
		int trim_left = 0;
		if (p && delim + 3 < L->len + 0 && s[delim + 2] == '-' && is_space_ch(s[delim + 3]))
			trim_left = 1;
		size_t te = textend;
		if (trim_left)
			while (te > from && is_space_ch(s[te - 1])) te--;
		if (te > from)
			emit_tok(L, T_TEXT, s + from, te - from);
		if (!p) {
			L->pos = L->len;
			break;
		}
		size_t after = delim + 2 + (trim_left ? 2 : 0);
		/* comment? */
		if (after + 1 < L->len && s[after] == '/' && s[after + 1] == '*') {
			const char *end = NULL;
			for (size_t i = after + 2; i + 1 < L->len; i++)
				if (s[i] == '*' && s[i + 1] == '/') {
					end = s + i;
					break;
				}
			if (!end)
				return lex_err(L, after, "unclosed comment");
			size_t q = (size_t)(end - s) + 2;
			int trim_right = 0;
			if (q + 3 < L->len + 1 && is_space_ch(s[q]) && q + 1 < L->len && s[q + 1] == '-' &&
			    q + 3 < L->len + 0 + 1 && s[q + 2] == '}' && q + 3 < L->len && s[q + 3] == '}') {
				trim_right = 1;
				q += 4;
			} else if (q + 1 < L->len && s[q] == '}' && s[q + 1] == '}') {
				q += 2;
			} else {
				return lex_err(L, q, "comment ends before closing delimiter");
			}
			L->pos = q;
			if (trim_right)
				while (L->pos < L->len && is_space_ch(s[L->pos])) L->pos++;
			continue;
		}
		emit_tok(L, T_LDELIM, s + delim, 2);
		L->pos = after;
		if (lex_action(L))
			return -1;
	}
	emit_tok(L, T_EOF, s + L->len, 0);
	return 0;
}

/* ---------------------------------------------------------------- nodes */

enum ntype {
	N_LIST, N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH, N_TEMPLATE, N_BREAK, N_CONTINUE,
	N_FIELD, N_VAR, N_CHAIN, N_IDENT, N_DOT, N_NIL, N_BOOL, N_NUMBER, N_STRING, N_PIPE,
	/* parser markers */
	N_ELSE, N_END,
};

struct tpipe;
struct tcmd { int off; struct tnode **args; size_t nargs; };
struct tpipe {
	int off;
	int is_assign;
	const char **decl;
	size_t *decllen;
	size_t ndecl;
	struct tcmd **cmds;
	size_t ncmds;
};

struct tnode {
	uint8_t type;
	int off;                     /* byte offset in file (for errors) */
	const char *file;            /* source file text start (for positions) */
	union {
		struct { const char *s; size_t len; } text;   /* TEXT, STRING */
		struct { struct tnode **items; size_t n; } list;
		struct tpipe *pipe;                          /* ACTION, PIPE */
		struct { struct tpipe *pipe; struct tnode *list, *elselist; } br;
		struct { const char *name; size_t len; struct tpipe *pipe; } tmpl;
		struct {
			struct tnode *base;                  /* CHAIN */
			const char *var; size_t varlen;      /* VAR */
			const char **f; size_t *flen; size_t nf;
		} fld;
		struct { const struct tfuncdef *fn; const char *name; size_t len; } ident;
		int b;
		struct { int is_int, is_uint, is_float, floatish; int64_t i; uint64_t u; double f; } num;
	} u;
};

/* ---------------------------------------------------------------- parser */

struct parser {
	struct cv_arena *a;
	struct tdefs *defs;
	const char *name;
	const char *src;
	struct token *toks;
	size_t n, i;
	char *err;
	size_t errlen;
	int failed;
	const char **vars;
	size_t *varlens;
	size_t nvars, capvars;
	int range_depth;
	int depth;
	void **stk;          /* shared stack of open pointer vectors */
	size_t stkn, stkcap;
};

static int perr(struct parser *P, size_t tokidx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int perr(struct parser *P, size_t tokidx, const char *fmt, ...)
{
	if (P->failed)
		return -1;
	int line, col;
	size_t off = tokidx < P->n ? (size_t)(P->toks[tokidx].s - P->src) : 0;
	pos_of(P->src, off, &line, &col);
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(P->err, P->errlen, "parse error at (%s:%d): %s", P->name, line, msg);
	P->failed = 1;
	return -1;
}

static struct token *peek(struct parser *P) { return &P->toks[P->i]; }
static struct token *next(struct parser *P) { struct token *t = &P->toks[P->i]; if (t->t != T_EOF) P->i++; return t; }
static struct token *peek_ns(struct parser *P)
{
	while (P->toks[P->i].t == T_SPACE) P->i++;
	return &P->toks[P->i];
}
static struct token *next_ns(struct parser *P) { peek_ns(P); return next(P); }

static struct tnode *newnode(struct parser *P, enum ntype t, size_t tokidx)
{
	struct tnode *n = cv_alloc(P->a, sizeof(*n));
	n->type = t;
	n->off = tokidx < P->n ? (int)(P->toks[tokidx].s - P->src) : 0;
	n->file = P->src;
	return n;
}

/* Growable pointer vectors. Stacked ones (PV_STACK) live on one stack per
 * parser: nested constructs finish before their parent pushes again, so
 * each open vector is always at the top and no per-list malloc is needed. */
struct ptrvec { void **v; size_t n, cap; struct parser *P; size_t start; };
#define PV_STACK(p) { NULL, 0, 0, (p), (p)->stkn }

static void pv_push(struct ptrvec *pv, void *p)
{
	if (pv->P) {
		struct parser *P = pv->P;
		if (P->stkn == P->stkcap) {
			P->stkcap = P->stkcap ? P->stkcap * 2 : 256;
			P->stk = xrealloc(P->stk, P->stkcap * sizeof(void *));
		}
		P->stk[P->stkn++] = p;
		pv->n++;
		return;
	}
	if (pv->n == pv->cap) {
		pv->cap = pv->cap ? pv->cap * 2 : 8;
		pv->v = xrealloc(pv->v, pv->cap * sizeof(void *));
	}
	pv->v[pv->n++] = p;
}

static void **pv_finish(struct parser *P, struct ptrvec *pv)
{
	void **r = cv_alloc(P->a, (pv->n ? pv->n : 1) * sizeof(void *));
	if (pv->P) {
		if (pv->n)
			memcpy(r, P->stk + pv->start, pv->n * sizeof(void *));
		P->stkn = pv->start;
		return r;
	}
	if (pv->n)
		memcpy(r, pv->v, pv->n * sizeof(void *));
	free(pv->v);
	pv->v = NULL;
	return r;
}

static void push_var(struct parser *P, const char *s, size_t len)
{
	if (P->nvars == P->capvars) {
		P->capvars = P->capvars ? P->capvars * 2 : 16;
		P->vars = xrealloc(P->vars, P->capvars * sizeof(char *));
		P->varlens = xrealloc(P->varlens, P->capvars * sizeof(size_t));
	}
	P->vars[P->nvars] = s;
	P->varlens[P->nvars++] = len;
}

static int has_var(struct parser *P, const char *s, size_t len)
{
	for (size_t i = P->nvars; i-- > 0;)
		if (P->varlens[i] == len && !memcmp(P->vars[i], s, len))
			return 1;
	return 0;
}

/* unquote a Go interpreted string literal into the arena */
static int unquote(struct parser *P, struct token *t, const char **out, size_t *outlen)
{
	if (t->t == T_RAWSTRING) {
		/* raw strings drop \r */
		char *r = cv_alloc(P->a, t->len);
		size_t n = 0;
		for (size_t i = 1; i + 1 < t->len; i++)
			if (t->s[i] != '\r')
				r[n++] = t->s[i];
		r[n] = 0;
		*out = r;
		*outlen = n;
		return 0;
	}
	char *r = cv_alloc(P->a, t->len + 4); /* escapes never expand */
	size_t n = 0;
	const char *s = t->s + 1;
	const char *e = t->s + t->len - 1;
	while (s < e) {
		if (*s != '\\') {
			r[n++] = *s++;
			continue;
		}
		s++;
		if (s >= e)
			return -1;
		char c = *s++;
		uint32_t cp;
		switch (c) {
		case 'a': r[n++] = '\a'; break;
		case 'b': r[n++] = '\b'; break;
		case 'f': r[n++] = '\f'; break;
		case 'n': r[n++] = '\n'; break;
		case 'r': r[n++] = '\r'; break;
		case 't': r[n++] = '\t'; break;
		case 'v': r[n++] = '\v'; break;
		case '\\': r[n++] = '\\'; break;
		case '"': r[n++] = '"'; break;
		case '\'': if (t->t != T_CHAR) return -1; r[n++] = '\''; break;
		case 'x': case 'u': case 'U': {
			int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
			cp = 0;
			for (int k = 0; k < nd; k++) {
				if (s >= e) return -1;
				char h = *s++;
				int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
				if (d < 0) return -1;
				cp = cp * 16 + d;
			}
			if (c == 'x') { r[n++] = (char)cp; break; }
			goto utf8;
		}
		case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
			cp = c - '0';
			for (int k = 0; k < 2; k++) {
				if (s >= e || *s < '0' || *s > '7') return -1;
				cp = cp * 8 + (*s++ - '0');
			}
			if (cp > 255) return -1;
			r[n++] = (char)cp;
			break;
		}
		default:
			return -1;
		}
		continue;
utf8:
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
		if (cp < 0x80) r[n++] = (char)cp;
		else if (cp < 0x800) { r[n++] = (char)(0xC0 | (cp >> 6)); r[n++] = (char)(0x80 | (cp & 0x3F)); }
		else if (cp < 0x10000) { r[n++] = (char)(0xE0 | (cp >> 12)); r[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)); r[n++] = (char)(0x80 | (cp & 0x3F)); }
		else { r[n++] = (char)(0xF0 | (cp >> 18)); r[n++] = (char)(0x80 | ((cp >> 12) & 0x3F)); r[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)); r[n++] = (char)(0x80 | (cp & 0x3F)); }
	}
	r[n] = 0;
	*out = r;
	*outlen = n;
	return 0;
}

static int parse_number(struct parser *P, struct token *t, struct tnode *n)
{
	char buf[128];
	size_t m = 0;
	if (t->t == T_CHAR) {
		const char *s;
		size_t len;
		if (unquote(P, t, &s, &len) || len == 0)
			return perr(P, P->i - 1, "malformed character constant: %.*s", (int)t->len, t->s);
		uint32_t cp = (unsigned char)s[0];
		if (cp >= 0x80) {
			int k = (cp & 0xE0) == 0xC0 ? 2 : (cp & 0xF0) == 0xE0 ? 3 : 4;
			cp &= k == 2 ? 0x1F : k == 3 ? 0x0F : 0x07;
			for (int j = 1; j < k && (size_t)j < len; j++) cp = (cp << 6) | ((unsigned char)s[j] & 0x3F);
		}
		n->u.num.is_int = n->u.num.is_uint = n->u.num.is_float = 1;
		n->u.num.i = cp;
		n->u.num.u = cp;
		n->u.num.f = cp;
		return 0;
	}
	if (t->len >= sizeof(buf) - 1)
		return perr(P, P->i - 1, "illegal number syntax: \"%.*s\"", (int)t->len, t->s);
	for (size_t i = 0; i < t->len; i++)
		if (t->s[i] != '_')
			buf[m++] = t->s[i];
	buf[m] = 0;
	if (m && buf[m - 1] == 'i')
		return perr(P, P->i - 1, "complex constants are not supported: %s", buf);
	int hex = m > 2 && (buf[0] == '0' || ((buf[0] == '-' || buf[0] == '+') && buf[1] == '0')) &&
		  strpbrk(buf, "xX") != NULL;
	n->u.num.floatish = !hex && strpbrk(buf, ".eEpP") != NULL;
	if (hex && strpbrk(buf, "pP"))
		n->u.num.floatish = 1;
	/* integer parse, Go base-0 rules */
	{
		const char *s = buf;
		int neg = 0;
		if (*s == '+' || *s == '-') { neg = *s == '-'; s++; }
		int base = 10;
		const char *d = s;
		if (s[0] == '0' && s[1]) {
			if (s[1] == 'x' || s[1] == 'X') { base = 16; d = s + 2; }
			else if (s[1] == 'o' || s[1] == 'O') { base = 8; d = s + 2; }
			else if (s[1] == 'b' || s[1] == 'B') { base = 2; d = s + 2; }
			else { base = 8; d = s + 1; }
		}
		int ok = *d != 0;
		uint64_t v = 0;
		for (const char *q = d; *q && ok; q++) {
			int dv = *q >= '0' && *q <= '9' ? *q - '0' : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10 : *q >= 'A' && *q <= 'F' ? *q - 'A' + 10 : 99;
			if (dv >= base) { ok = 0; break; }
			if (v > (UINT64_MAX - dv) / base) { ok = 0; break; }
			v = v * base + dv;
		}
		if (ok) {
			if (!neg) {
				n->u.num.is_uint = 1;
				n->u.num.u = v;
				if (v <= INT64_MAX) { n->u.num.is_int = 1; n->u.num.i = (int64_t)v; }
			} else if (v <= (uint64_t)INT64_MAX + 1) {
				n->u.num.is_int = 1;
				n->u.num.i = (int64_t)(0 - v);
			}
		}
	}
	if (n->u.num.is_int) {
		n->u.num.is_float = 1;
		n->u.num.f = (double)n->u.num.i;
	} else if (n->u.num.is_uint) {
		n->u.num.is_float = 1;
		n->u.num.f = (double)n->u.num.u;
	} else {
		char *end;
		double f = strtod(buf, &end);
		if (*end == 0 && m > 0 && buf[m - 1] != '.' && !(m >= 1 && (buf[0] == '.' && m == 1))) {
			if (!strpbrk(buf, ".eEpP"))
				return perr(P, P->i - 1, "integer overflow: %s", buf);
			n->u.num.is_float = 1;
			n->u.num.f = f;
			if (f == trunc(f) && fabs(f) < 9.2e18) {
				n->u.num.is_int = 1;
				n->u.num.i = (int64_t)f;
				if (f >= 0) { n->u.num.is_uint = 1; n->u.num.u = (uint64_t)f; }
			}
		} else if (*end == 0 && m > 1 && buf[m - 1] == '.') {
			/* "1." is a valid Go float */
			n->u.num.is_float = 1;
			n->u.num.f = f;
			if (f == trunc(f) && fabs(f) < 9.2e18) { n->u.num.is_int = 1; n->u.num.i = (int64_t)f; }
		}
	}
	if (!n->u.num.is_int && !n->u.num.is_uint && !n->u.num.is_float)
		return perr(P, P->i - 1, "illegal number syntax: \"%.*s\"", (int)t->len, t->s);
	return 0;
}

static struct tpipe *parse_pipeline(struct parser *P, const char *context, enum tok end);

/*
 * Give field node n the names of the run of field tokens that starts at
 * token i, and move past them. The names point into the template text
 * (without the dot), which lives as long as the tree.
 */
static void take_fields(struct parser *P, struct tnode *n, size_t i)
{
	size_t nf = 0;
	while (P->toks[i + nf].t == T_FIELD)
		nf++;
	n->u.fld.f = cv_alloc(P->a, nf * sizeof(char *));
	n->u.fld.flen = cv_alloc(P->a, nf * sizeof(size_t));
	for (size_t k = 0; k < nf; k++) {
		n->u.fld.f[k] = P->toks[i + k].s + 1;
		n->u.fld.flen[k] = P->toks[i + k].len - 1;
	}
	n->u.fld.nf = nf;
	P->i = i + nf;
}

static struct tnode *term(struct parser *P)
{
	struct token *t = next_ns(P);
	size_t ti = P->i - 1;
	struct tnode *n;
	switch (t->t) {
	case T_IDENT: {
		const struct tfuncdef *fd = tmpl_func_find(t->s, t->len);
		if (!fd) {
			perr(P, ti, "function \"%.*s\" not defined", (int)t->len, t->s);
			return NULL;
		}
		n = newnode(P, N_IDENT, ti);
		n->u.ident.fn = fd;
		n->u.ident.name = fd->name;
		n->u.ident.len = t->len;
		return n;
	}
	case T_DOT: return newnode(P, N_DOT, ti);
	case T_NIL: return newnode(P, N_NIL, ti);
	case T_VAR:
		if (!has_var(P, t->s, t->len)) {
			perr(P, ti, "undefined variable \"%.*s\"", (int)t->len, t->s);
			return NULL;
		}
		n = newnode(P, N_VAR, ti);
		n->u.fld.var = t->s;   /* names point into the template text */
		n->u.fld.varlen = t->len;
		return n;
	case T_FIELD:
		/* .a.b.c is one field node: take the whole run of fields */
		n = newnode(P, N_FIELD, ti);
		take_fields(P, n, ti);
		return n;
	case T_BOOL:
		n = newnode(P, N_BOOL, ti);
		n->u.b = t->len == 4;
		return n;
	case T_CHAR:
	case T_NUMBER:
		n = newnode(P, N_NUMBER, ti);
		if (parse_number(P, t, n))
			return NULL;
		return n;
	case T_LPAREN: {
		n = newnode(P, N_PIPE, ti);
		n->u.pipe = parse_pipeline(P, "parenthesized pipeline", T_RPAREN);
		if (!n->u.pipe)
			return NULL;
		return n;
	}
	case T_STRING:
	case T_RAWSTRING:
		n = newnode(P, N_STRING, ti);
		if (unquote(P, t, &n->u.text.s, &n->u.text.len)) {
			perr(P, ti, "invalid syntax: %.*s", (int)t->len, t->s);
			return NULL;
		}
		return n;
	default:
		P->i = ti;
		return NULL;
	}
}

static struct tnode *operand(struct parser *P)
{
	struct tnode *n = term(P);
	if (!n)
		return NULL;
	if (peek(P)->t == T_FIELD) {
		switch (n->type) {
		case N_VAR:
			take_fields(P, n, P->i);
			return n;
		case N_BOOL: case N_STRING: case N_NUMBER: case N_NIL: case N_DOT:
			while (peek(P)->t == T_FIELD)
				P->i++;
			perr(P, P->i - 1, "unexpected . after term");
			return NULL;
		default: {
			struct tnode *c = newnode(P, N_CHAIN, P->i);
			c->off = n->off;
			c->u.fld.base = n;
			take_fields(P, c, P->i);
			return c;
		}
		}
	}
	return n;
}

static struct tcmd *command(struct parser *P)
{
	struct tcmd *c = cv_alloc(P->a, sizeof(*c));
	struct ptrvec args = PV_STACK(P);
	peek_ns(P);
	c->off = (int)(P->toks[P->i].s - P->src);
	for (;;) {
		peek_ns(P);
		struct tnode *o = operand(P);
		if (P->failed) {
			free(args.v);
			return NULL;
		}
		if (o)
			pv_push(&args, o);
		struct token *t = next(P);
		if (t->t == T_SPACE)
			continue;
		if (t->t == T_RDELIM || t->t == T_RPAREN) {
			P->i--;
		} else if (t->t == T_PIPE) {
		} else {
			free(args.v);
			perr(P, P->i - 1, "unexpected %s in operand", tok_desc[t->t]);
			return NULL;
		}
		break;
	}
	if (args.n == 0) {
		free(args.v);
		perr(P, P->i, "empty command");
		return NULL;
	}
	c->nargs = args.n;
	c->args = (struct tnode **)pv_finish(P, &args);
	return c;
}

static struct tpipe *parse_pipeline_inner(struct parser *P, const char *context, enum tok end);

static struct tpipe *parse_pipeline(struct parser *P, const char *context, enum tok end)
{
	if (++P->depth > 500) {
		perr(P, P->i, "template nested too deeply");
		return NULL;
	}
	struct tpipe *r = parse_pipeline_inner(P, context, end);
	P->depth--;
	return r;
}

static struct tpipe *parse_pipeline_inner(struct parser *P, const char *context, enum tok end)
{
	struct tpipe *p = cv_alloc(P->a, sizeof(*p));
	p->off = (int)(peek_ns(P)->s - P->src);
	struct ptrvec decl = { 0 }, dlen = { 0 };
	/* declarations */
	for (;;) {
		size_t save = P->i;
		struct token *v = peek_ns(P);
		if (v->t != T_VAR)
			break;
		next(P);
		struct token *after = peek_ns(P);
		if (after->t == T_DECLARE || after->t == T_ASSIGN) {
			next(P);
			p->is_assign = after->t == T_ASSIGN;
			pv_push(&decl, (void *)v);
			if (p->is_assign) {
				if (!has_var(P, v->s, v->len)) {
					free(decl.v); free(dlen.v);
					perr(P, save, "undefined variable \"%.*s\"", (int)v->len, v->s);
					return NULL;
				}
			}
			break;
		}
		if (after->t == T_COMMA && !strcmp(context, "range") && decl.n < 2) {
			next(P);
			pv_push(&decl, (void *)v);
			continue;
		}
		P->i = save;
		/* a lone variable: back up */
		if (decl.n) {
			free(decl.v); free(dlen.v);
			perr(P, save, "too many declarations in %s", context);
			return NULL;
		}
		break;
	}
	p->ndecl = decl.n;
	if (decl.n) {
		p->decl = cv_alloc(P->a, decl.n * sizeof(char *));
		p->decllen = cv_alloc(P->a, decl.n * sizeof(size_t));
		for (size_t k = 0; k < decl.n; k++) {
			struct token *v = decl.v[k];
			p->decl[k] = v->s;   /* points into the template text */
			p->decllen[k] = v->len;
			if (!p->is_assign)
				push_var(P, p->decl[k], v->len);
		}
	}
	free(decl.v);
	free(dlen.v);
	struct ptrvec cmds = PV_STACK(P);
	for (;;) {
		struct token *t = peek_ns(P);
		if (t->t == end) {
			next(P);
			break;
		}
		switch (t->t) {
		case T_BOOL: case T_CHAR: case T_DOT: case T_FIELD: case T_IDENT: case T_NUMBER:
		case T_NIL: case T_RAWSTRING: case T_STRING: case T_VAR: case T_LPAREN: {
			struct tcmd *c = command(P);
			if (!c) {
				free(cmds.v);
				return NULL;
			}
			pv_push(&cmds, c);
			continue;
		}
		default:
			free(cmds.v);
			if (t->t == T_EOF)
				perr(P, P->i, "unclosed action");
			else
				perr(P, P->i, "unexpected %s in %s", tok_desc[t->t], context);
			return NULL;
		}
	}
	if (cmds.n == 0) {
		free(cmds.v);
		perr(P, P->i - 1, "missing value for %s", context);
		return NULL;
	}
	p->ncmds = cmds.n;
	p->cmds = (struct tcmd **)pv_finish(P, &cmds);
	/* only the first command of a pipeline may be a constant */
	for (size_t k = 1; k < p->ncmds; k++) {
		enum ntype ft = p->cmds[k]->args[0]->type;
		if (ft == N_BOOL || ft == N_DOT || ft == N_NIL || ft == N_NUMBER || ft == N_STRING) {
			perr(P, P->i - 1, "non executable command in pipeline stage %zu", k + 1);
			return NULL;
		}
	}
	return p;
}

static struct tnode *item_list(struct parser *P, enum ntype *stop);
static struct tnode *action(struct parser *P);

static void add_def(struct parser *P, const char *name, size_t len, struct tnode *body);

static int is_empty_tree(struct tnode *n)
{
	if (!n)
		return 1;
	if (n->type == N_LIST) {
		for (size_t i = 0; i < n->u.list.n; i++)
			if (!is_empty_tree(n->u.list.items[i]))
				return 0;
		return 1;
	}
	if (n->type == N_TEXT) {
		for (size_t i = 0; i < n->u.text.len; i++)
			if (!is_space_ch(n->u.text.s[i]) && n->u.text.s[i] != '\f' && n->u.text.s[i] != '\v')
				return 0;
		return 1;
	}
	return 0;
}

static struct tnode *parse_control_inner(struct parser *P, enum ntype type, const char *context, size_t ti);

static struct tnode *parse_control(struct parser *P, enum ntype type, const char *context, size_t ti)
{
	if (++P->depth > 500) {
		perr(P, ti, "template nested too deeply");
		return NULL;
	}
	struct tnode *r = parse_control_inner(P, type, context, ti);
	P->depth--;
	return r;
}

static struct tnode *parse_control_inner(struct parser *P, enum ntype type, const char *context, size_t ti)
{
	size_t mark = P->nvars;
	struct tnode *n = newnode(P, type, ti);
	n->u.br.pipe = parse_pipeline(P, context, T_RDELIM);
	if (!n->u.br.pipe)
		return NULL;
	if (type == N_RANGE)
		P->range_depth++;
	enum ntype stop;
	n->u.br.list = item_list(P, &stop);
	if (type == N_RANGE)
		P->range_depth--;
	if (!n->u.br.list)
		return NULL;
	if (stop == N_ELSE) {
		if (type == N_IF && peek_ns(P)->t == T_IF) {
			size_t ii = P->i;
			next(P);
			struct tnode *sub = parse_control(P, N_IF, "if", ii);
			if (!sub)
				return NULL;
			struct tnode *l = newnode(P, N_LIST, ii);
			l->u.list.items = cv_alloc(P->a, sizeof(struct tnode *));
			l->u.list.items[0] = sub;
			l->u.list.n = 1;
			n->u.br.elselist = l;
			P->nvars = mark;
			return n;
		}
		n->u.br.elselist = item_list(P, &stop);
		if (!n->u.br.elselist)
			return NULL;
		if (stop != N_END) {
			perr(P, P->i - 1, "expected end; found else");
			return NULL;
		}
	}
	P->nvars = mark;
	return n;
}

static struct tnode *action(struct parser *P)
{
	struct token *t = next_ns(P);
	size_t ti = P->i - 1;
	switch (t->t) {
	case T_BLOCK:
	case T_TEMPLATE: {
		const char *ctx = t->t == T_BLOCK ? "block clause" : "template clause";
		int is_block = t->t == T_BLOCK;
		struct token *nt = next_ns(P);
		if (nt->t != T_STRING && nt->t != T_RAWSTRING) {
			perr(P, P->i - 1, "unexpected %s in %s", tok_desc[nt->t], ctx);
			return NULL;
		}
		struct tnode *n = newnode(P, N_TEMPLATE, ti);
		if (unquote(P, nt, &n->u.tmpl.name, &n->u.tmpl.len)) {
			perr(P, P->i - 1, "invalid template name");
			return NULL;
		}
		if (peek_ns(P)->t != T_RDELIM) {
			n->u.tmpl.pipe = parse_pipeline(P, ctx, T_RDELIM);
			if (!n->u.tmpl.pipe)
				return NULL;
		} else {
			if (is_block) {
				perr(P, P->i, "missing value for block clause");
				return NULL;
			}
			next(P);
		}
		if (is_block) {
			size_t mark = P->nvars;
			size_t r = P->range_depth;
			P->range_depth = 0;
			push_var(P, "$", 1);
			enum ntype stop;
			struct tnode *body = item_list(P, &stop);
			P->nvars = mark;
			P->range_depth = (int)r;
			if (!body)
				return NULL;
			if (stop != N_END) {
				perr(P, P->i - 1, "unexpected else in block clause");
				return NULL;
			}
			add_def(P, n->u.tmpl.name, n->u.tmpl.len, body);
		}
		return n;
	}
	case T_BREAK:
	case T_CONTINUE: {
		if (P->range_depth == 0) {
			perr(P, ti, "{{%s}} outside {{range}}", t->t == T_BREAK ? "break" : "continue");
			return NULL;
		}
		if (next_ns(P)->t != T_RDELIM) {
			perr(P, P->i - 1, "unexpected token in {{%s}}", t->t == T_BREAK ? "break" : "continue");
			return NULL;
		}
		return newnode(P, t->t == T_BREAK ? N_BREAK : N_CONTINUE, ti);
	}
	case T_ELSE: {
		if (peek_ns(P)->t == T_IF)
			return newnode(P, N_ELSE, ti);
		if (next_ns(P)->t != T_RDELIM) {
			perr(P, P->i - 1, "unexpected token in else");
			return NULL;
		}
		return newnode(P, N_ELSE, ti);
	}
	case T_END:
		if (next_ns(P)->t != T_RDELIM) {
			perr(P, P->i - 1, "unexpected token in end");
			return NULL;
		}
		return newnode(P, N_END, ti);
	case T_IF: return parse_control(P, N_IF, "if", ti);
	case T_RANGE: return parse_control(P, N_RANGE, "range", ti);
	case T_WITH: return parse_control(P, N_WITH, "with", ti);
	case T_DEFINE:
		perr(P, ti, "unexpected <define> in command");
		return NULL;
	default: {
		P->i = ti;
		struct tnode *n = newnode(P, N_ACTION, ti);
		n->u.pipe = parse_pipeline(P, "command", T_RDELIM);
		if (!n->u.pipe)
			return NULL;
		return n;
	}
	}
}

/* parse nodes until {{end}} / {{else}} (reported in *stop) or EOF */
static struct tnode *item_list(struct parser *P, enum ntype *stop)
{
	struct ptrvec items = PV_STACK(P);
	size_t ti = P->i;
	for (;;) {
		struct token *t = peek(P);
		if (t->t == T_EOF) {
			free(items.v);
			perr(P, P->i, "unexpected EOF");
			return NULL;
		}
		if (t->t == T_TEXT) {
			struct tnode *n = newnode(P, N_TEXT, P->i);
			n->u.text.s = t->s;
			n->u.text.len = t->len;
			next(P);
			pv_push(&items, n);
			continue;
		}
		/* LDELIM */
		next(P);
		if (peek_ns(P)->t == T_DEFINE) {
			free(items.v);
			perr(P, P->i, "unexpected <define> in command");
			return NULL;
		}
		struct tnode *n = action(P);
		if (!n) {
			free(items.v);
			return NULL;
		}
		if (n->type == N_END || n->type == N_ELSE) {
			*stop = n->type;
			break;
		}
		pv_push(&items, n);
	}
	struct tnode *l = newnode(P, N_LIST, ti);
	l->u.list.n = items.n;
	l->u.list.items = (struct tnode **)pv_finish(P, &items);
	return l;
}

static unsigned hash_name(const char *s, size_t len)
{
	unsigned h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h % TDEFS_BUCKETS;
}

/* the definition named name in this one table (parents aside), or NULL */
static struct tdef *defs_find(const struct tdefs *defs, const char *name, size_t len)
{
	struct tdef *d = defs->b ? defs->b[hash_name(name, len)] : defs->first;
	for (; d; d = defs->b ? d->next : d->later)
		if (strlen(d->name) == len && !memcmp(d->name, name, len))
			return d;
	return NULL;
}

struct tdef *tmpl_lookup(const struct tdefs *defs, const char *name, size_t len)
{
	for (; defs; defs = defs->parent) {
		struct tdef *d = defs_find(defs, name, len);
		if (d)
			return d;
	}
	return NULL;
}

static void add_def(struct parser *P, const char *name, size_t len, struct tnode *body)
{
	struct tdefs *T = P->defs;
	struct tdef *d = defs_find(T, name, len);
	if (d) {
		if (is_empty_tree(body) && d->body)
			return;
		d->body = body;
		d->file = P->name;
		return;
	}
	d = cv_alloc(P->a, sizeof(*d));
	d->name = cv_strndup(P->a, name, len);
	d->file = P->name;
	d->body = body;
	if (T->last)
		T->last->later = d;
	else
		T->first = d;
	T->last = d;
	T->n++;
	if (T->b) {
		unsigned h = hash_name(name, len);
		d->next = T->b[h];
		T->b[h] = d;
	} else if (T->n > TDEFS_LIST_MAX) {
		/* big enough for an index: hash every definition so far */
		T->b = cv_alloc(P->a, TDEFS_BUCKETS * sizeof(struct tdef *));
		for (struct tdef *x = T->first; x; x = x->later) {
			unsigned h = hash_name(x->name, strlen(x->name));
			x->next = T->b[h];
			T->b[h] = x;
		}
	}
}

void tmpl_defs_merge(struct cv_arena *a, struct tdefs *dst, const struct tdefs *src)
{
	/* a table holds one definition per name, so the order between names
	 * does not matter; each is added as if parsed after dst's */
	for (struct tdef *d = src->first; d; d = d->later) {
		struct parser P = { 0 };
		P.a = a;
		P.defs = dst;
		P.name = d->file;
		add_def(&P, d->name, strlen(d->name), d->body);
	}
}

int tmpl_parse(struct cv_arena *a, struct tdefs *defs, const char *name,
	       const char *text, size_t len, char *err, size_t errlen)
{
	if (len > TMPL_MAX_TEXT) {
		snprintf(err, errlen, "template: %s: text too large (%zu bytes)", name, len);
		return -1;
	}
	struct lexer L = { 0 };
	L.name = name;
	L.src = text;
	L.len = len;
	L.err = err;
	L.errlen = errlen;
	int rc = lex_all(&L);
	if (rc) {
		free(L.toks);
		return -1;
	}
	struct parser P = { 0 };
	P.a = a;
	P.defs = defs;
	P.name = cv_strndup(a, name, strlen(name));
	P.src = text;
	P.toks = L.toks;
	P.n = L.n;
	P.err = err;
	P.errlen = errlen;
	struct ptrvec items = PV_STACK(&P);
	push_var(&P, "$", 1);
	while (peek(&P)->t != T_EOF && !P.failed) {
		struct token *t = peek(&P);
		if (t->t == T_TEXT) {
			struct tnode *n = newnode(&P, N_TEXT, P.i);
			n->u.text.s = t->s;
			n->u.text.len = t->len;
			next(&P);
			pv_push(&items, n);
			continue;
		}
		next(&P);
		size_t ti = P.i;
		if (peek_ns(&P)->t == T_DEFINE) {
			next(&P);
			struct token *nt = next_ns(&P);
			if (nt->t != T_STRING && nt->t != T_RAWSTRING) {
				perr(&P, P.i - 1, "unexpected %s in define clause", tok_desc[nt->t]);
				break;
			}
			const char *dn;
			size_t dl;
			if (unquote(&P, nt, &dn, &dl)) {
				perr(&P, P.i - 1, "invalid define name");
				break;
			}
			if (next_ns(&P)->t != T_RDELIM) {
				perr(&P, P.i - 1, "unexpected token in define clause");
				break;
			}
			size_t mark = P.nvars;
			P.nvars = 0;
			push_var(&P, "$", 1);
			enum ntype stop;
			struct tnode *body = item_list(&P, &stop);
			P.nvars = mark;
			if (!body)
				break;
			if (stop != N_END) {
				perr(&P, P.i - 1, "unexpected <else> in define clause");
				break;
			}
			add_def(&P, dn, dl, body);
			continue;
		}
		P.i = ti;
		struct tnode *n = action(&P);
		if (!n)
			break;
		if (n->type == N_END || n->type == N_ELSE) {
			perr(&P, ti, "unexpected {{%s}}", n->type == N_END ? "end" : "else");
			break;
		}
		pv_push(&items, n);
	}
	free(P.vars);
	free(P.varlens);
	if (P.failed) {
		free(P.stk);
		free(L.toks);
		free(items.v);
		return -1;
	}
	struct tnode *root = newnode(&P, N_LIST, 0);
	root->u.list.n = items.n;
	root->u.list.items = (struct tnode **)pv_finish(&P, &items);
	add_def(&P, name, strlen(name), root);
	free(L.toks);
	free(P.stk);
	return 0;
}

/* ---------------------------------------------------------------- exec */

enum { X_OK = 0, X_ERR = -1, X_BREAK = 1, X_CONTINUE = 2 };

static void node_text(struct buf *b, struct tnode *n);

static void pipe_text(struct buf *b, struct tpipe *p)
{
	for (size_t i = 0; i < p->ndecl; i++)
		buf_printf(b, i ? ", %.*s" : "%.*s", (int)p->decllen[i], p->decl[i]);
	if (p->ndecl)
		buf_puts(b, p->is_assign ? " = " : " := ");
	for (size_t i = 0; i < p->ncmds; i++) {
		if (i)
			buf_puts(b, " | ");
		for (size_t k = 0; k < p->cmds[i]->nargs; k++) {
			if (k)
				buf_putc(b, ' ');
			node_text(b, p->cmds[i]->args[k]);
		}
	}
}

static void node_text(struct buf *b, struct tnode *n)
{
	switch (n->type) {
	case N_FIELD:
		for (size_t i = 0; i < n->u.fld.nf; i++)
			buf_printf(b, ".%.*s", (int)n->u.fld.flen[i], n->u.fld.f[i]);
		break;
	case N_VAR:
		buf_append(b, n->u.fld.var, n->u.fld.varlen);
		for (size_t i = 0; i < n->u.fld.nf; i++)
			buf_printf(b, ".%.*s", (int)n->u.fld.flen[i], n->u.fld.f[i]);
		break;
	case N_CHAIN:
		node_text(b, n->u.fld.base);
		for (size_t i = 0; i < n->u.fld.nf; i++)
			buf_printf(b, ".%.*s", (int)n->u.fld.flen[i], n->u.fld.f[i]);
		break;
	case N_IDENT: buf_append(b, n->u.ident.name, strlen(n->u.ident.name)); break;
	case N_DOT: buf_putc(b, '.'); break;
	case N_NIL: buf_puts(b, "nil"); break;
	case N_BOOL: buf_puts(b, n->u.b ? "true" : "false"); break;
	case N_NUMBER:
		if (n->u.num.floatish) cv_fmt_float_g(b, n->u.num.f);
		else buf_printf(b, "%lld", (long long)n->u.num.i);
		break;
	case N_STRING: cv_go_quote(b, n->u.text.s, n->u.text.len); break;
	case N_PIPE: buf_putc(b, '('); pipe_text(b, n->u.pipe); buf_putc(b, ')'); break;
	default: break;
	}
}

static void loc_of(struct tstate *S, struct tnode *n, char *out, size_t outlen)
{
	int line = 0, col = 0;
	if (n && n->file)
		pos_of(n->file, (size_t)n->off, &line, &col);
	snprintf(out, outlen, "%s:%d:%d", S->file ? S->file : "?", line, col > 0 ? col - 1 : 0);
}

int tmpl_errf(struct tstate *S, const char *fmt, ...)
{
	struct tengine *E = S->E;
	if (E->failed)
		return -1;
	char msg[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char loc[512];
	loc_of(S, S->node, loc, sizeof(loc));
	struct buf nt = BUF_INIT;
	if (S->cmd && S->node && S->node->type == N_IDENT) {
		struct tcmd *c = S->cmd;
		for (size_t k = 0; k < c->nargs; k++) {
			if (k)
				buf_putc(&nt, ' ');
			node_text(&nt, c->args[k]);
		}
	} else if (S->node)
		node_text(&nt, S->node);
	snprintf(E->err, sizeof(E->err), "template: %.200s: executing \"%.200s\" at <%.200s>: %.1300s",
		 loc, S->tname, nt.data ? nt.data : "", msg);
	if (E->fail_kind)
		snprintf(E->fail_loc, sizeof(E->fail_loc), "%s", loc);
	buf_free(&nt);
	E->failed = 1;
	return -1;
}

static int push_var_x(struct tstate *S, const char *name, size_t len, cv v)
{
	if (S->nvars == S->capvars) {
		S->capvars = S->capvars ? S->capvars * 2 : 16;
		S->vars = xrealloc(S->vars, S->capvars * sizeof(struct tvar));
	}
	S->vars[S->nvars].name = name;
	S->vars[S->nvars].len = len;
	S->vars[S->nvars].val = v;
	S->nvars++;
	return 0;
}

static cv *find_var(struct tstate *S, const char *name, size_t len)
{
	for (size_t i = S->nvars; i-- > 0;)
		if (S->vars[i].len == len && !memcmp(S->vars[i].name, name, len))
			return &S->vars[i].val;
	return NULL;
}

static int walk(struct tstate *S, cv dot, struct tnode *n, struct buf *out);
static int eval_pipeline(struct tstate *S, cv dot, struct tpipe *p, cv *out);
static int eval_arg(struct tstate *S, cv dot, char ptype, struct tnode *n, cv *out);

static cv untyped(cv v)
{
	if (v.kind == CV_NIL)
		v.sub = 0;
	return v;
}

static cv typed_nil(void)
{
	cv v = cv_nil();
	v.sub = 1;
	return v;
}

/* methods and fields of a receiver */
static int eval_field(struct tstate *S, cv dot, const char *name, size_t len,
		      cv *args, int nargs, int has_final, cv final, cv recv, cv *out);

static int call_method(struct tstate *S, cv recv, const char *name, size_t len, cv *args, int nargs, cv *out, int *found);

static int eval_field_chain(struct tstate *S, cv dot, cv recv, const char **f, size_t *fl, size_t nf,
			    struct tnode **args, size_t nargs, int has_final, cv final, cv *out)
{
	size_t n = nf;
	for (size_t i = 0; i + 1 < n; i++) {
		if (eval_field(S, dot, f[i], fl[i], NULL, 0, 0, cv_nil(), recv, &recv))
			return -1;
	}
	/* last field gets args */
	cv *av = NULL;
	int na = 0;
	if (nargs > 1 || has_final) {
		av = cv_alloc(S->E->a, (nargs + 1) * sizeof(cv));
		for (size_t k = 1; k < nargs; k++)
			if (eval_arg(S, dot, 'a', args[k], &av[na++]))
				return -1;
		if (has_final)
			av[na++] = final;
	}
	return eval_field(S, dot, f[n - 1], fl[n - 1], av, na, nargs > 1 || has_final, final, recv, out);
}

static int eval_field(struct tstate *S, cv dot, const char *name, size_t len,
		      cv *args, int nargs, int has_args, cv final, cv recv, cv *out)
{
	(void)dot;
	(void)final;
	if (recv.kind == CV_NIL) {
		if (recv.sub == 1)
			return tmpl_errf(S, "nil pointer evaluating interface {}.%.*s", (int)len, name);
		*out = cv_nil();
		return 0;
	}
	int found = 0;
	if (recv.kind == CV_OBJ || (recv.kind == CV_MAP && (recv.sub == CS_VALUES || recv.sub == CS_STRUCT))) {
		if (call_method(S, recv, name, len, args, nargs, out, &found))
			return -1;
		if (found)
			return 0;
	}
	if (recv.kind == CV_MAP) {
		if (has_args)
			return tmpl_errf(S, "%.*s is not a method but has arguments", (int)len, name);
		cv *v = cv_map_get(recv.u.map, name, len);
		if (v) {
			*out = *v;
			if (out->kind == CV_NIL)
				out->sub = 1;
			return 0;
		}
		if (recv.sub == CS_STRUCT)
			return tmpl_errf(S, "can't evaluate field %.*s in type %s", (int)len, name, cv_type_name(recv));
		if (recv.sub == CS_STRING_MAP)
			*out = cv_str_ref("", 0);
		else
			*out = typed_nil();
		return 0;
	}
	if (recv.kind == CV_OBJ && recv.u.obj->type == CO_FILES) {
		if (has_args)
			return tmpl_errf(S, "%.*s is not a method but has arguments", (int)len, name);
		struct cv_files *fs = &recv.u.obj->u.files;
		for (size_t i = 0; i < fs->n; i++)
			if (strlen(fs->files[i].name) == len && !memcmp(fs->files[i].name, name, len)) {
				cv b = cv_str_ref(fs->files[i].data, fs->files[i].len);
				b.sub = CS_BYTES;
				*out = b;
				return 0;
			}
		*out = cv_nil();
		return 0;
	}
	return tmpl_errf(S, "can't evaluate field %.*s in type %s", (int)len, name,
			 recv.kind == CV_OBJ ? cv_type_name(recv) : "interface {}");
}

/* convert a constant node to the parameter type */
static int eval_const(struct tstate *S, char ptype, struct tnode *n, cv *out)
{
	switch (ptype) {
	case 's':
		if (n->type == N_STRING) {
			*out = cv_str_ref(n->u.text.s, n->u.text.len);
			return 0;
		}
		break;
	case 'i':
		if (n->type == N_NUMBER && n->u.num.is_int) {
			*out = cv_int(n->u.num.i, CS_INT);
			return 0;
		}
		if (n->type == N_NUMBER) {
			struct buf t = BUF_INIT;
			node_text(&t, n);
			tmpl_errf(S, "expected integer; found %s", t.data);
			buf_free(&t);
			return -1;
		}
		break;
	case 'f':
		if (n->type == N_NUMBER && n->u.num.is_float) {
			*out = cv_float(n->u.num.f);
			return 0;
		}
		break;
	case 'b':
		if (n->type == N_BOOL) {
			*out = cv_bool(n->u.b);
			return 0;
		}
		break;
	case 'm': case 'l': case 'c': case 't':
		if (n->type == N_NIL) {
			*out = cv_nil();
			return 0;
		}
		break;
	default: /* any */
		switch (n->type) {
		case N_STRING: *out = cv_str_ref(n->u.text.s, n->u.text.len); return 0;
		case N_BOOL: *out = cv_bool(n->u.b); return 0;
		case N_NIL: *out = cv_nil(); return 0;
		case N_NUMBER:
			if (n->u.num.is_float && n->u.num.floatish)
				*out = cv_float(n->u.num.f);
			else if (n->u.num.is_int)
				*out = cv_int(n->u.num.i, CS_INT);
			else if (n->u.num.is_uint)
				return tmpl_errf(S, "%llu overflows int", (unsigned long long)n->u.num.u);
			else
				*out = cv_float(n->u.num.f);
			return 0;
		default: break;
		}
	}
	struct buf t = BUF_INIT;
	node_text(&t, n);
	if (ptype == 's' || ptype == 'b' || ptype == 'f')
		tmpl_errf(S, "expected %s; found %s", ptype == 's' ? "string" : ptype == 'b' ? "bool" : "float", t.data);
	else
		tmpl_errf(S, "can't handle %s for arg of type %c", t.data, ptype);
	buf_free(&t);
	return -1;
}

static const char *ptype_name(char p)
{
	switch (p) {
	case 's': return "string";
	case 'i': return "int";
	case 'f': return "float64";
	case 'b': return "bool";
	case 'm': return "map[string]interface {}";
	case 'l': return "[]interface {}";
	case 'c': return "sprig.certificate";
	case 't': return "time.Time";
	}
	return "interface {}";
}

/* validateType */
static int check_type(struct tstate *S, char ptype, cv v)
{
	int ok;
	switch (ptype) {
	case 's': ok = v.kind == CV_STR && v.sub != CS_BYTES; break;
	case 'i': ok = v.kind == CV_INT; break;
	case 'f': ok = v.kind == CV_FLOAT; break;
	case 'b': ok = v.kind == CV_BOOL; break;
	case 'm': ok = v.kind == CV_MAP && (v.sub == CS_IFACE_MAP || v.sub == CS_VALUES); break;
	case 'l': ok = v.kind == CV_LIST && v.sub == CS_IFACE_LIST; break;
	case 'c': ok = v.kind == CV_OBJ && v.u.obj->type == CO_CERT; break;
	case 't': ok = v.kind == CV_OBJ && v.u.obj->type == CO_TIME; break;
	default: return 0;
	}
	if (ok)
		return 0;
	if (v.kind == CV_NIL && v.sub == 0) {
		if (ptype == 'm' || ptype == 'l')
			return 0;
		return tmpl_errf(S, "invalid value; expected %s", ptype_name(ptype));
	}
	return tmpl_errf(S, "wrong type for value; expected %s; got %s", ptype_name(ptype),
			 v.kind == CV_NIL ? "interface {}" : cv_type_name(v));
}

static int eval_function(struct tstate *S, cv dot, struct tnode *fnode, struct tnode **args, size_t nargs,
			 int has_final, cv final, cv *out, struct tcmd *cmd_of_args);

static int eval_arg(struct tstate *S, cv dot, char ptype, struct tnode *n, cv *out)
{
	struct tnode *saved = S->node;
	S->node = n;
	int rc = 0;
	switch (n->type) {
	case N_DOT: *out = dot; break;
	case N_FIELD:
		rc = eval_field_chain(S, dot, dot, n->u.fld.f, n->u.fld.flen, n->u.fld.nf, NULL, 0, 0, cv_nil(), out);
		break;
	case N_VAR: {
		cv *v = find_var(S, n->u.fld.var, n->u.fld.varlen);
		if (!v) {
			rc = tmpl_errf(S, "undefined variable: %.*s", (int)n->u.fld.varlen, n->u.fld.var);
			break;
		}
		if (n->u.fld.nf)
			rc = eval_field_chain(S, dot, *v, n->u.fld.f, n->u.fld.flen, n->u.fld.nf, NULL, 0, 0, cv_nil(), out);
		else
			*out = *v;
		break;
	}
	case N_PIPE:
		rc = eval_pipeline(S, dot, n->u.pipe, out);
		break;
	case N_IDENT:
		rc = eval_function(S, dot, n, &n, 1, 0, cv_nil(), out, NULL);
		break;
	case N_CHAIN: {
		cv base;
		rc = eval_arg(S, dot, 'a', n->u.fld.base, &base);
		if (!rc) {
			base = untyped(base);
			S->node = n;
			rc = eval_field_chain(S, dot, base, n->u.fld.f, n->u.fld.flen, n->u.fld.nf, NULL, 0, 0, cv_nil(), out);
		}
		break;
	}
	default:
		rc = eval_const(S, ptype, n, out);
		S->node = saved;
		return rc;
	}
	if (!rc && ptype != 'a' && ptype != 'v')
		rc = check_type(S, ptype, *out);
	S->node = saved;
	return rc;
}

struct incl;

static int budget_check(struct tstate *S, struct tnode *n);

static int eval_function(struct tstate *S, cv dot, struct tnode *fnode, struct tnode **args, size_t nargs,
			 int has_final, cv final, cv *out, struct tcmd *cmd_of_args)
{
	const struct tfuncdef *fd = fnode->u.ident.fn;
	const char *sig = fd->sig;
	size_t siglen = strlen(sig);
	int variadic = siglen && sig[siglen - 1] == '*';
	size_t nfixed = variadic ? siglen - 2 : siglen;
	size_t given = (nargs - 1) + (has_final ? 1 : 0);
	struct tnode *saved = S->node;
	S->node = fnode;
	if (variadic ? given < nfixed : given != nfixed) {
		tmpl_errf(S, "wrong number of args for %s: want %s%zu got %zu", fd->name,
			  variadic ? "at least " : "", nfixed, given);
		return -1;
	}
	/* and / or: short-circuit, return an operand */
	if (fd->fn == NULL) {
		int is_or = !strcmp(fd->name, "or");
		cv v = cv_nil();
		for (size_t k = 1; k < nargs; k++) {
			if (eval_arg(S, dot, 'a', args[k], &v))
				return -1;
			v = untyped(v);
			if (cv_truthy(v) == is_or) {
				*out = v;
				S->node = saved;
				return 0;
			}
		}
		if (has_final)
			v = untyped(final);
		*out = v;
		S->node = saved;
		return 0;
	}
	cv local[8];
	cv *av = given <= 8 ? local : cv_alloc(S->E->a, given * sizeof(cv));
	size_t k;
	for (k = 0; k + 1 < nargs; k++) {
		char pt = k < nfixed ? sig[k] : sig[siglen - 2];
		if (eval_arg(S, dot, pt, args[k + 1], &av[k]))
			return -1;
		av[k] = untyped(av[k]);
	}
	if (has_final) {
		char pt = k < nfixed ? sig[k] : sig[siglen - 2];
		S->node = fnode;
		if (pt != 'a' && pt != 'v' && check_type(S, pt, final))
			return -1;
		av[k++] = untyped(final);
	}
	S->node = fnode;
	void *savedcmd = S->cmd;
	S->cmd = cmd_of_args;
	int rc = fd->fn(S, av, (int)given, out);
	S->cmd = savedcmd;
	if (rc == 0 && out->kind == CV_STR && out->u.str.len > S->E->max_output)
		rc = tmpl_errf(S, "function result of %zu bytes exceeds %zu (limit max_output)",
			       out->u.str.len, S->E->max_output);
	if (rc == 0 && ((S->E->max_memory && cv_arena_used(S->E->a) > S->E->max_memory) ||
			S->E->steps >= S->E->next_check))
		rc = budget_check(S, fnode);
	if (rc == 0) {
		S->node = saved;
		return 0;
	}
	return -1;
}

static int not_a_function(struct tstate *S, struct tnode **args, size_t nargs, int has_final)
{
	if (nargs > 1 || has_final) {
		struct buf t = BUF_INIT;
		node_text(&t, args[0]);
		tmpl_errf(S, "can't give argument to non-function %s", t.data);
		buf_free(&t);
		return -1;
	}
	return 0;
}

static int eval_command(struct tstate *S, cv dot, struct tcmd *c, int has_final, cv final, cv *out)
{
	struct tnode *first = c->args[0];
	S->node = first;
	switch (first->type) {
	case N_FIELD:
		return eval_field_chain(S, dot, dot, first->u.fld.f, first->u.fld.flen, first->u.fld.nf,
					c->args, c->nargs, has_final, final, out);
	case N_CHAIN: {
		cv base;
		if (eval_arg(S, dot, 'a', first->u.fld.base, &base))
			return -1;
		S->node = first;
		return eval_field_chain(S, dot, untyped(base), first->u.fld.f, first->u.fld.flen, first->u.fld.nf,
					c->args, c->nargs, has_final, final, out);
	}
	case N_IDENT:
		return eval_function(S, dot, first, c->args, c->nargs, has_final, final, out, c);
	case N_PIPE:
		if (not_a_function(S, c->args, c->nargs, has_final))
			return -1;
		return eval_pipeline(S, dot, first->u.pipe, out);
	case N_VAR: {
		cv *v = find_var(S, first->u.fld.var, first->u.fld.varlen);
		if (!v)
			return tmpl_errf(S, "undefined variable: %.*s", (int)first->u.fld.varlen, first->u.fld.var);
		if (first->u.fld.nf)
			return eval_field_chain(S, dot, *v, first->u.fld.f, first->u.fld.flen, first->u.fld.nf,
						c->args, c->nargs, has_final, final, out);
		if (not_a_function(S, c->args, c->nargs, has_final))
			return -1;
		*out = *v;
		return 0;
	}
	default:
		break;
	}
	if (not_a_function(S, c->args, c->nargs, has_final))
		return -1;
	switch (first->type) {
	case N_DOT: *out = dot; return 0;
	case N_NIL: return tmpl_errf(S, "nil is not a command");
	default: return eval_const(S, 'a', first, out);
	}
}

static int eval_pipeline(struct tstate *S, cv dot, struct tpipe *p, cv *out)
{
	cv v = cv_nil();
	int has = 0;
	for (size_t i = 0; i < p->ncmds; i++) {
		if (eval_command(S, dot, p->cmds[i], has, v, &v))
			return -1;
		v = untyped(v);
		has = 1;
	}
	for (size_t i = 0; i < p->ndecl; i++) {
		if (p->is_assign) {
			cv *slot = find_var(S, p->decl[i], p->decllen[i]);
			if (!slot)
				return tmpl_errf(S, "undefined variable: %.*s", (int)p->decllen[i], p->decl[i]);
			*slot = v;
		} else {
			push_var_x(S, p->decl[i], p->decllen[i], v);
		}
	}
	*out = v;
	return 0;
}

static void print_value(struct buf *out, cv v)
{
	if (v.kind == CV_NIL) {
		buf_puts(out, "<no value>");
		return;
	}
	cv_fmt_v(out, v);
}

static int exec_template(struct tstate *S, struct tdef *d, cv data, struct buf *out)
{
	struct tengine *E = S->E;
	if (++E->tdepth > E->max_depth) {
		E->tdepth--;
		return tmpl_errf(S, "exceeded maximum template depth (%d)", E->max_depth);
	}

	struct tstate N = { 0 };
	N.E = E;
	N.tname = d->name;
	N.file = d->file;
	N.depth = S->depth + 1;
	push_var_x(&N, "$", 1, data);
	int rc = walk(&N, data, d->body, out);
	free(N.vars);
	E->tdepth--;
	if (rc == X_BREAK || rc == X_CONTINUE)
		rc = 0;
	return rc;
}

static int walk_range(struct tstate *S, cv dot, struct tnode *n, struct buf *out)
{
	size_t mark = S->nvars;
	cv val;
	S->node = n;
	if (eval_pipeline(S, dot, n->u.br.pipe, &val))
		return -1;
	size_t mark2 = S->nvars;
	struct tpipe *p = n->u.br.pipe;
	int rc = 0;
	size_t count = 0;
#define ONE(idx, elem) do { \
		if (p->ndecl > 0) S->vars[mark2 - 1].val = (elem); \
		if (p->ndecl > 1) S->vars[mark2 - 2].val = (idx); \
		rc = walk(S, (elem), n->u.br.list, out); \
		S->nvars = mark2; \
		count++; \
	} while (0)
	switch (val.kind) {
	case CV_LIST:
		for (size_t i = 0; i < val.u.list->n; i++) {
			cv e = val.u.list->items[i];
			if (e.kind == CV_NIL) e.sub = 1;
			ONE(cv_int((int64_t)i, CS_INT), e);
			if (rc == X_BREAK) { rc = 0; break; }
			if (rc == X_CONTINUE) rc = 0;
			if (rc) break;
		}
		break;
	case CV_MAP:
		for (size_t i = 0; i < val.u.map->n; i++) {
			cv e = val.u.map->ents[i].val;
			if (e.kind == CV_NIL) e.sub = 1;
			ONE(cv_str_ref(val.u.map->ents[i].key, val.u.map->ents[i].klen), e);
			if (rc == X_BREAK) { rc = 0; break; }
			if (rc == X_CONTINUE) rc = 0;
			if (rc) break;
		}
		break;
	case CV_NIL:
		break;
	case CV_OBJ:
		if (val.u.obj->type == CO_FILES) {
			struct cv_files *fs = &val.u.obj->u.files;
			for (size_t i = 0; i < fs->n; i++) {
				cv e = cv_str_ref(fs->files[i].data, fs->files[i].len);
				e.sub = CS_BYTES;
				ONE(cv_str_ref(fs->files[i].name, strlen(fs->files[i].name)), e);
				if (rc == X_BREAK) { rc = 0; break; }
				if (rc == X_CONTINUE) rc = 0;
				if (rc) break;
			}
			break;
		}
		if (val.u.obj->type == CO_APIVERSIONS) {
			for (size_t i = 0; i < val.u.obj->u.apis.n; i++) {
				const char *s = val.u.obj->u.apis.v[i];
				ONE(cv_int((int64_t)i, CS_INT), cv_str_ref(s, strlen(s)));
				if (rc == X_BREAK) { rc = 0; break; }
				if (rc == X_CONTINUE) rc = 0;
				if (rc) break;
			}
			break;
		}
		/* fallthrough */
	default: {
		struct buf t = BUF_INIT;
		cv_fmt_v(&t, val);
		S->node = n;
		tmpl_errf(S, "range can't iterate over %s", t.data);
		buf_free(&t);
		S->nvars = mark;
		return -1;
	}
	}
#undef ONE
	if (rc) {
		S->nvars = mark;
		return rc;
	}
	if (count == 0 && n->u.br.elselist)
		rc = walk(S, dot, n->u.br.elselist, out);
	S->nvars = mark;
	return rc;
}

static __attribute__((noinline)) int budget_error(struct tstate *S, struct tnode *n, int steps)
{
	S->node = n;
	if (steps)
		return tmpl_errf(S, "template execution exceeded %ld steps (limit max_steps)", S->E->max_steps);
	return tmpl_errf(S, "template output exceeded %zu bytes (limit max_output)", S->E->max_output);
}

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The budgets that are not counted per node: memory (the render arena),
 * wall time and the caller's stop request. Called every 1024 steps and
 * after every function call (one call can allocate or take long: printf
 * doubling a string, genPrivateKey). 0 or -1 with the error set. */
static __attribute__((noinline)) int budget_check(struct tstate *S, struct tnode *n)
{
	struct tengine *E = S->E;
	E->next_check = E->steps + 1024;
	if (E->max_memory && cv_arena_used(E->a) > E->max_memory) {
		S->node = n;
		return tmpl_errf(S, "template execution used more than %zu MiB of memory (limit max_memory)",
				 E->max_memory >> 20);
	}
	if (E->deadline_ms > 0 && mono_ms() > E->deadline_ms) {
		S->node = n;
		return tmpl_errf(S, "template execution took longer than %ld ms (limit max_time)", E->max_ms);
	}
	if (E->should_stop && E->should_stop(E->stop_ctx)) {
		S->node = n;
		return tmpl_errf(S, "template execution stopped: the job was cancelled or the server is stopping");
	}
	return 0;
}

int tmpl_budget_exceeded(struct tstate *S)
{
	struct tengine *E = S->E;
	return (E->deadline_ms > 0 && mono_ms() > E->deadline_ms) ||
	       (E->should_stop && E->should_stop(E->stop_ctx));
}

int tmpl_budget_check(struct tstate *S)
{
	S->E->next_check = 0;   /* and once more after the caller's work */
	return budget_check(S, S->node);
}

static int walk(struct tstate *S, cv dot, struct tnode *n, struct buf *out)
{
	if (++S->E->steps > S->E->max_steps)
		return budget_error(S, n, 1);
	if (out->len > S->E->max_output)
		return budget_error(S, n, 0);
	if (S->E->steps >= S->E->next_check && budget_check(S, n))
		return -1;
	switch (n->type) {
	case N_LIST:
		for (size_t i = 0; i < n->u.list.n; i++) {
			int rc = walk(S, dot, n->u.list.items[i], out);
			if (rc)
				return rc;
		}
		return 0;
	case N_TEXT:
		buf_append(out, n->u.text.s, n->u.text.len);
		return 0;
	case N_ACTION: {
		cv v;
		S->node = n;
		if (eval_pipeline(S, dot, n->u.pipe, &v))
			return -1;
		if (n->u.pipe->ndecl == 0)
			print_value(out, v);
		return 0;
	}
	case N_IF:
	case N_WITH: {
		size_t mark = S->nvars;
		cv v;
		S->node = n;
		if (eval_pipeline(S, dot, n->u.br.pipe, &v))
			return -1;
		int rc = 0;
		if (cv_truthy(v))
			rc = walk(S, n->type == N_WITH ? v : dot, n->u.br.list, out);
		else if (n->u.br.elselist)
			rc = walk(S, dot, n->u.br.elselist, out);
		S->nvars = mark;
		return rc;
	}
	case N_RANGE:
		return walk_range(S, dot, n, out);
	case N_BREAK: return X_BREAK;
	case N_CONTINUE: return X_CONTINUE;
	case N_TEMPLATE: {
		S->node = n;
		struct tdef *d = tmpl_lookup(S->E->defs, n->u.tmpl.name, n->u.tmpl.len);
		if (!d)
			return tmpl_errf(S, "template \"%.*s\" not defined", (int)n->u.tmpl.len, n->u.tmpl.name);
		cv data = cv_nil();
		if (n->u.tmpl.pipe) {
			size_t mark = S->nvars;
			if (eval_pipeline(S, dot, n->u.tmpl.pipe, &data))
				return -1;
			S->nvars = mark;
		}
		return exec_template(S, d, data, out);
	}
	default:
		return 0;
	}
}

int tmpl_exec(struct tengine *E, const char *name, const char *file,
	      struct tnode *body, cv dot, struct buf *out)
{
	struct tstate S = { 0 };
	S.E = E;
	S.tname = name;
	S.file = file;
	push_var_x(&S, "$", 1, dot);
	int rc = walk(&S, dot, body, out);
	free(S.vars);
	if (rc == X_BREAK || rc == X_CONTINUE)
		rc = 0;
	return rc;
}

/* ---------------------------------------------------------------- methods */

static int files_glob_match(const char *pat, const char *s);

static int call_method(struct tstate *S, cv recv, const char *name, size_t len, cv *args, int nargs, cv *out, int *found)
{
	struct cv_arena *a = S->E->a;
#define IS(lit) (len == sizeof(lit) - 1 && !memcmp(name, lit, len))
	*found = 1;
	if (recv.kind == CV_MAP && recv.sub == CS_VALUES) {
		if (IS("AsMap")) {
			if (nargs) return tmpl_errf(S, "wrong number of args for AsMap: want 0 got %d", nargs);
			*out = recv;
			out->sub = CS_IFACE_MAP;
			return 0;
		}
		if (IS("YAML")) {
			struct buf b = BUF_INIT;
			cv m = recv;
			m.sub = CS_IFACE_MAP;
			cv_to_yaml(&b, m);
			*out = cv_str(a, b.data ? b.data : "", b.len);
			buf_free(&b);
			return 0;
		}
		if (IS("PathValue") || IS("Table")) {
			if (nargs != 1 || args[0].kind != CV_STR)
				return tmpl_errf(S, "wrong arguments for %.*s", (int)len, name);
			const char *p = args[0].u.str.s;
			size_t pl = args[0].u.str.len;
			cv cur = recv;
			size_t st = 0;
			for (size_t i = 0; i <= pl; i++) {
				if (i == pl || p[i] == '.') {
					if (cur.kind != CV_MAP)
						return tmpl_errf(S, "error calling %.*s: no value found", (int)len, name);
					cv *v = cv_map_get(cur.u.map, p + st, i - st);
					if (!v)
						return tmpl_errf(S, "error calling %.*s: %.*s is not a value", (int)len, name, (int)pl, p);
					cur = *v;
					st = i + 1;
				}
			}
			if (IS("Table") && cur.kind != CV_MAP)
				return tmpl_errf(S, "error calling Table: no table named %.*s", (int)pl, p);
			*out = cur;
			return 0;
		}
		*found = 0;
		return 0;
	}
	if (recv.kind == CV_MAP) {
		*found = 0;
		return 0;
	}
	struct cv_obj *o = recv.u.obj;
	switch (o->type) {
	case CO_FILES: {
		struct cv_files *fs = &o->u.files;
		if (IS("Get") || IS("GetBytes") || IS("Lines")) {
			if (nargs != 1 || args[0].kind != CV_STR)
				return tmpl_errf(S, "wrong number of args for %.*s: want 1 got %d", (int)len, name, nargs);
			for (size_t i = 0; i < fs->n; i++)
				if (strlen(fs->files[i].name) == args[0].u.str.len &&
				    !memcmp(fs->files[i].name, args[0].u.str.s, args[0].u.str.len)) {
					cv v = cv_str_ref(fs->files[i].data, fs->files[i].len);
					if (IS("GetBytes"))
						v.sub = CS_BYTES;
					if (IS("Lines")) {
						cv l = cv_list_new(a, 8);
						l.sub = CS_STRING_LIST;
						const char *d = fs->files[i].data;
						size_t n = fs->files[i].len, st = 0;
						for (size_t k = 0; k <= n; k++)
							if (k == n || d[k] == '\n') {
								if (k == n && st == n && n > 0)
									break;
								cv_list_push(a, l, cv_str_ref(d + st, k - st));
								st = k + 1;
							}
						v = l;
					}
					*out = v;
					return 0;
				}
			if (IS("Lines")) {
				cv l = cv_list_new(a, 0);
				l.sub = CS_STRING_LIST;
				*out = l;
			} else {
				*out = cv_str_ref("", 0);
				if (IS("GetBytes"))
					out->sub = CS_BYTES;
			}
			return 0;
		}
		if (IS("Glob")) {
			if (nargs != 1 || args[0].kind != CV_STR)
				return tmpl_errf(S, "wrong number of args for Glob: want 1 got %d", nargs);
			char *pat = cv_strndup(a, args[0].u.str.s, args[0].u.str.len);
			struct cv_obj *no;
			cv r = cv_obj_new(a, CO_FILES, &no);
			no->u.files.files = cv_alloc(a, (fs->n ? fs->n : 1) * sizeof(struct cv_file));
			for (size_t i = 0; i < fs->n; i++)
				if (files_glob_match(pat, fs->files[i].name))
					no->u.files.files[no->u.files.n++] = fs->files[i];
			*out = r;
			return 0;
		}
		if (IS("AsConfig") || IS("AsSecrets")) {
			cv m = cv_map_new(a, fs->n);
			for (size_t i = 0; i < fs->n; i++) {
				const char *nm = fs->files[i].name;
				const char *base = strrchr(nm, '/');
				base = base ? base + 1 : nm;
				cv v = cv_str_ref(fs->files[i].data, fs->files[i].len);
				if (IS("AsSecrets")) {
					struct buf t = BUF_INIT;
					cv bb = v;
					bb.sub = CS_BYTES;
					cv_to_json(&t, bb, 0, 0);
					v = cv_str(a, t.data + 1, t.len - 2);
					buf_free(&t);
				}
				cv_map_set(a, m.u.map, base, strlen(base), v);
			}
			struct buf b = BUF_INIT;
			if (m.u.map->n)
				cv_to_yaml(&b, m);
			if (b.len && b.data[b.len - 1] == '\n')
				b.len--;
			*out = cv_str(a, b.data ? b.data : "", b.len);
			buf_free(&b);
			return 0;
		}
		*found = 0;
		return 0;
	}
	case CO_APIVERSIONS:
		if (IS("Has")) {
			if (nargs != 1 || args[0].kind != CV_STR)
				return tmpl_errf(S, "wrong number of args for Has: want 1 got %d", nargs);
			int has = 0;
			for (size_t i = 0; i < o->u.apis.n && !has; i++)
				has = strlen(o->u.apis.v[i]) == args[0].u.str.len &&
				      !memcmp(o->u.apis.v[i], args[0].u.str.s, args[0].u.str.len);
			*out = cv_bool(has);
			return 0;
		}
		*found = 0;
		return 0;
	case CO_SEMVER: {
		struct cv_semver *v = &o->u.sv;
		if (IS("Major")) { *out = cv_int((int64_t)v->major, CS_UINT64); return 0; }
		if (IS("Minor")) { *out = cv_int((int64_t)v->minor, CS_UINT64); return 0; }
		if (IS("Patch")) { *out = cv_int((int64_t)v->patch, CS_UINT64); return 0; }
		if (IS("Prerelease")) { *out = cv_cstr(a, v->pre ? v->pre : ""); return 0; }
		if (IS("Metadata")) { *out = cv_cstr(a, v->meta ? v->meta : ""); return 0; }
		if (IS("Original")) { *out = cv_cstr(a, v->original ? v->original : ""); return 0; }
		if (IS("String")) {
			struct buf b = BUF_INIT;
			cv_fmt_v(&b, recv);
			*out = cv_str(a, b.data, b.len);
			buf_free(&b);
			return 0;
		}
		*found = 0;
		return tmpl_errf(S, "can't evaluate field %.*s in type *semver.Version", (int)len, name);
	}
	case CO_CERT:
		if (IS("Cert")) { *out = cv_cstr(a, o->u.cert.cert); return 0; }
		if (IS("Key")) { *out = cv_cstr(a, o->u.cert.key); return 0; }
		*found = 0;
		return tmpl_errf(S, "can't evaluate field %.*s in type sprig.certificate", (int)len, name);
	case CO_TIME:
		if (IS("Unix")) { *out = cv_int(o->u.time.sec, CS_INT64); return 0; }
		*found = 0;
		return tmpl_errf(S, "can't evaluate field %.*s in type time.Time", (int)len, name);
	}
#undef IS
	*found = 0;
	return 0;
}

/* gobwas/glob with '/' separators: * within a segment, ** across, ?, [..], {a,b} */
static int glob_rec(const char *p, const char *s, int depth)
{
	if (depth > 64)
		return 0;
	while (*p) {
		if (*p == '*') {
			int dbl = p[1] == '*';
			const char *rest = p + (dbl ? 2 : 1);
			for (const char *q = s;; q++) {
				if (glob_rec(rest, q, depth + 1))
					return 1;
				if (!*q || (!dbl && *q == '/'))
					return 0;
			}
		}
		if (*p == '{') {
			const char *end = strchr(p, '}');
			if (!end)
				return -1;
			const char *alt = p + 1;
			for (;;) {
				const char *comma = alt;
				while (comma < end && *comma != ',') comma++;
				char buf[1024];
				size_t al = (size_t)(comma - alt), rl = strlen(end + 1);
				if (al + rl < sizeof(buf)) {
					memcpy(buf, alt, al);
					memcpy(buf + al, end + 1, rl + 1);
					if (glob_rec(buf, s, depth + 1) == 1)
						return 1;
				}
				if (comma >= end)
					return 0;
				alt = comma + 1;
			}
		}
		if (!*s)
			return 0;
		if (*p == '?') {
			if (*s == '/')
				return 0;
			p++;
			s++;
			continue;
		}
		if (*p == '[') {
			const char *q = p + 1;
			int neg = *q == '!';
			if (neg) q++;
			int match = 0;
			while (*q && *q != ']') {
				if (q[1] == '-' && q[2] && q[2] != ']') {
					if (*s >= q[0] && *s <= q[2]) match = 1;
					q += 3;
				} else {
					if (*s == *q) match = 1;
					q++;
				}
			}
			if (!*q)
				return -1;
			if (match == neg)
				return 0;
			p = q + 1;
			s++;
			continue;
		}
		if (*p == '\\' && p[1])
			p++;
		if (*p != *s)
			return 0;
		p++;
		s++;
	}
	return *s == 0;
}

static int files_glob_match(const char *pat, const char *s)
{
	int r = glob_rec(pat, s, 0);
	return r != 0; /* a bad pattern (-1) matches everything */
}

/* ---------------------------------------------------------------- include / tpl */

/* wrap the pending error the way Go does when it crosses a call */
static __attribute__((noinline)) void rewrap(struct tstate *S, const char *prefix, const char *text, size_t len)
{
	struct tengine *E = S->E;
	char *inner = xstrdup(E->err);
	E->failed = 0;
	if (text)
		tmpl_errf(S, "%s\"%.*s\": %s", prefix, (int)(len > 200 ? 200 : len), text, inner);
	else
		tmpl_errf(S, "%s%s", prefix, inner);
	free(inner);
}

static __attribute__((noinline)) int tpl_parse_error(struct tstate *S, const char *text, size_t len, const char *copy)
{
	char err[1024];
	struct tdefs scratch;
	memset(&scratch, 0, sizeof(scratch));
	tmpl_parse(S->E->a, &scratch, "gotpl", copy, len, err, sizeof(err));
	return tmpl_errf(S, "error calling tpl: error during tpl function execution for \"%.*s\": %s",
			 (int)(len > 200 ? 200 : len), text, err);
}

int tmpl_include(struct tstate *S, const char *name, size_t len, cv data, cv *out)
{
	struct tengine *E = S->E;
	struct tdef *d = tmpl_lookup(E->defs, name, len);
	if (!d)
		return tmpl_errf(S, "error calling include: template: no template \"%.*s\" associated with template \"gotpl\"",
				 (int)len, name);
	struct incl *ic;
	for (ic = E->incl; ic; ic = ic->next)
		if (ic->name == d->name)
			break;
	if (!ic) {
		ic = cv_alloc(E->a, sizeof(*ic));
		ic->name = d->name;
		ic->next = E->incl;
		E->incl = ic;
	}
	if (ic->count >= 1000)
		return tmpl_errf(S, "error calling include: rendering template has a nested reference name: %.*s: unable to execute template",
				 (int)len, name);
	ic->count++;
	struct buf b = BUF_INIT;
	int rc = exec_template(S, d, data, &b);
	ic->count--;
	if (rc == 0)
		*out = cv_str(E->a, b.data ? b.data : "", b.len);
	buf_free(&b);
	if (rc && E->failed && strlen(E->err) < 1200)
		rewrap(S, "error calling include: ", NULL, 0);
	return rc;
}

int tmpl_tpl(struct tstate *S, const char *text, size_t len, cv data, cv *out)
{
	struct tengine *E = S->E;
	struct tdefs *local = cv_alloc(E->a, sizeof(*local));
	local->parent = E->defs;
	char err[2];
	char *copy = cv_strndup(E->a, text, len);
	if (tmpl_parse(E->a, local, "gotpl", copy, len, err, sizeof(err)))
		return tpl_parse_error(S, text, len, copy);
	struct tdef *d = tmpl_lookup(local, "gotpl", 5);
	struct tdefs *saved = E->defs;
	E->defs = local;
	struct buf b = BUF_INIT;
	int rc = exec_template(S, d, data, &b);
	E->defs = saved;
	if (rc == 0) {
		tmpl_blank_no_value(&b);
		*out = cv_str(E->a, b.data ? b.data : "", b.len);
	} else if (E->failed && strlen(E->err) < 1200) {
		rewrap(S, "error calling tpl: error during tpl function execution for ", text, len);
	}
	buf_free(&b);
	return rc;
}

void tmpl_blank_no_value(struct buf *b)
{
	if (!b->len)
		return;
	static const char nv[] = "<no value>";
	/* nothing moves before the first occurrence (usually there is none) */
	char *first = memmem(b->data, b->len, nv, 10);
	if (!first)
		return;
	size_t w = (size_t)(first - b->data);
	for (size_t r = w; r < b->len;) {
		char *next = memmem(b->data + r, b->len - r, nv, 10);
		size_t end = next ? (size_t)(next - b->data) : b->len;
		memmove(b->data + w, b->data + r, end - r);
		w += end - r;
		r = next ? end + 10 : b->len;
	}
	b->len = w;
	b->data[w] = 0;
}

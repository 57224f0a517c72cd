/*
 * tmpl: Go text/template (as Helm configures it) for the chart engine.
 * Internal to server/chart.
 *
 * tmpl_parse() turns one template file into a tree and registers the file
 * and every {{define}}/{{block}} in a definition table (last one wins, empty
 * redefinitions don't replace). tmpl_exec() walks a tree with a dot value and
 * writes the output; sprig/Helm functions live in funcs.c.
 *
 * Memory: trees and definitions live in the arena given to tmpl_parse (the
 * chart's, read-only afterwards, or a render's for tpl). Thread-safety: a
 * parsed table may be executed by several threads at once; each execution
 * has its own struct tengine.
 */
#ifndef FERRY_CHART_TMPL_H
#define FERRY_CHART_TMPL_H

#include "server/chart/cv.h"

#include <jansson.h>

struct tnode;

struct tdef {
	const char *name;
	const char *file;      /* file the definition was parsed from */
	struct tnode *body;
	struct tdef *next;
	struct tdef *later;    /* the table's next definition by first appearance */
};

/* A definition table. It starts as a plain list (a template file defines
 * a handful of names, and tpl's tables are parsed on every call); once it
 * holds more than TDEFS_LIST_MAX names, a hash index is built in its arena.
 * A zeroed struct is an empty table. */
#define TDEFS_BUCKETS 512
#define TDEFS_LIST_MAX 16
struct tdefs {
	struct tdef **b;       /* TDEFS_BUCKETS chains, or NULL while small */
	size_t n;              /* definitions in the table */
	struct tdefs *parent;  /* tpl: local definitions overlay the chart's */
	struct tdef *first, *last;  /* every definition, by first appearance */
};

/* Parse text as template NAME; definitions go into defs. Returns 0, or -1
 * with Helm's "parse error at (NAME:LINE): ..." message in err. */
int tmpl_parse(struct cv_arena *a, struct tdefs *defs, const char *name,
	       const char *text, size_t len, char *err, size_t errlen);
struct tdef *tmpl_lookup(const struct tdefs *defs, const char *name, size_t len);
/* add src's definitions to dst as if parsed after dst's (later wins) */
void tmpl_defs_merge(struct cv_arena *a, struct tdefs *dst, const struct tdefs *src);

/* Function table (funcs.c) */
struct tengine;
struct tstate;
typedef int (*tfunc)(struct tstate *S, cv *args, int nargs, cv *out);
struct tfuncdef { const char *name; const char *sig; tfunc fn; };
const struct tfuncdef *tmpl_func_find(const char *name, size_t len);

struct tengine {
	struct cv_arena *a;
	struct tdefs *defs;
	cv root;                         /* $ of top-level files */
	const char *cur_file;            /* top-level file being executed */
	/* optional live lookup */
	json_t *(*lookup)(void *ctx, const char *api_version, const char *kind,
			  const char *ns, const char *name);
	void *lookup_ctx;
	/* include recursion counters */
	struct incl { const char *name; int count; struct incl *next; } *incl;
	int tdepth;
	int max_depth;                   /* nested template/include calls allowed */
	long steps, max_steps;           /* nodes walked / allowed */
	size_t max_output;               /* bytes one output buffer (or one
					  * function result) may hold */
	size_t max_memory;               /* render arena bytes allowed (0: none) */
	double deadline_ms;              /* CLOCK_MONOTONIC ms to stop at (0: none) */
	long max_ms;                     /* the wall-time limit, for messages */
	int (*should_stop)(void *ctx);   /* cancel / shutdown, polled (may be NULL) */
	void *stop_ctx;
	int scratch_keys;                /* output thrown away: certificate
					  * functions may use the scratch key
					  * (chart_render_opts.output_discarded) */
	long next_check;                 /* steps value of the next clock check */
	/* The certificate and key the last genCA / genSelfSignedCert /
	 * genSignedCert made (references held), beside the PEM texts of its
	 * certificate object: genSignedCert given that object signs with
	 * them instead of parsing the PEM again (OpenSSL 3's decoders, about
	 * 1 ms a key). Released by tmpl_certs_release(). */
	struct x509_st *last_cert;
	struct evp_pkey_st *last_key;
	const char *last_cert_pem, *last_key_pem;
	/* error state */
	char err[2048];
	int failed;
	int fail_kind;                   /* 1: required/fail (Helm "execution error") */
	char fail_msg[1024];
	char fail_loc[512];
	struct buf scratch;
};

/* Drop the certificate references a render's engine holds (funcs.c). */
void tmpl_certs_release(struct tengine *E);

/* Per-execution state visible to functions */
struct tstate {
	struct tengine *E;
	const char *tname;               /* template being executed */
	const char *file;                /* file the current node comes from */
	struct tnode *node;              /* node being evaluated */
	void *cmd;                       /* command of a function call (errors) */
	struct tvar { const char *name; size_t len; cv val; } *vars;
	size_t nvars, capvars;
	int depth;
};

/* Execute body with dot; output appended to out. Returns 0 or -1 (E->err). */
int tmpl_exec(struct tengine *E, const char *name, const char *file,
	      struct tnode *body, cv dot, struct buf *out);

/* error helpers for funcs.c */
int tmpl_errf(struct tstate *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The wall-time, memory and stop checks, now and once more after the
 * caller's work: functions that may take long (key generation) call it
 * first. 0, or -1 with the error set (the render fails). */
int tmpl_budget_check(struct tstate *S);
/* 1 when the render's wall time is up or it was asked to stop (no error
 * set; for progress callbacks on the render's thread). */
int tmpl_budget_exceeded(struct tstate *S);
/* include / tpl implementation (tmpl.c) */
int tmpl_include(struct tstate *S, const char *name, size_t len, cv data, cv *out);
int tmpl_tpl(struct tstate *S, const char *text, size_t len, cv data, cv *out);
/* remove every "<no value>" in place */
void tmpl_blank_no_value(struct buf *b);

#endif

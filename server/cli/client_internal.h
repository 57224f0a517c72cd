/*
 * client_internal.h: what client.c shares with the other command files of
 * ferry-client (lifecycle.c, fleet.c): the connection, the JSON request,
 * the job start-and-follow path, option parsing and table output, so they
 * share one HTTP path, one error style and one set of global options. Not
 * part of the `ferry` binary (that one links only client_words.c). Not
 * thread-safe, like the rest of the client.
 *
 * Exit statuses: 0 ok, 1 failed/cancelled/paused by the failure budget,
 * 2 usage/connection/HTTP, 3 --timeout.
 * Memory: *out JSON and escaped strings belong to the caller.
 */
#ifndef FERRY_CLI_CLIENT_INTERNAL_H
#define FERRY_CLI_CLIENT_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>

/* The exit statuses every command uses (see client.h). */
enum { EXIT_OK = 0, EXIT_JOB_FAILED = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };

/* One connection to ferryd, set up by client_main() from the globals. */
struct client {
	const char *server;   /* base URL without trailing slash (owned: server_buf) */
	char *server_buf;
	char *token;          /* owned; never printed */
	int structured;       /* --output json or yaml: print_doc() output, progress on stderr */
	double deadline;      /* monotonic ms; 0 = none */
	double timeout_s;
	char *ca_file;        /* owned; NULL: the system's trusted CAs */
	CURL *curl;
};

/* Global options; the strings point into argv. */
struct globals {
	const char *server, *token_file, *ca_file, *output, *timeout, *context, *config;
};

/* "ferry: " + message + newline on stderr. */
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The flag's name without any "=value" (messages never echo flag values). */
void flag_name(const char *arg, char *out, size_t outlen);

/* argv[*i] is `name value` (advances *i) or `name=value`: returns the value
 * (pointing into argv); NULL when it is another flag; *missing set when the
 * value is absent. */
const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing);

/* Consumes a global option at argv[*i]: 1 consumed, 0 not global, -1 error
 * (already printed). */
int global_opt(int argc, char **argv, int *i, struct globals *g);

/* A JSON request. 0 with *out (new reference) on 2xx; else prints the
 * problem as one line and returns the exit status (2, or 3 when --timeout
 * passed). retries > 0 retries transport errors and 502/503/504 (only for
 * GETs and POSTs with an Idempotency-Key). */
int api(struct client *c, const char *method, const char *path, const json_t *body, const char *idem_key,
	int retries, json_t **out);

/* URL-escapes s; the caller frees the result. */
char *escape(struct client *c, const char *s);

int looks_like_uuid(const char *s);

/* CLUSTER (a name or an id) → its id in out; prints why not and returns the
 * exit status on failure. */
int resolve_cluster(struct client *c, const char *name_or_id, char *out, size_t outlen);
/* Every item of a listing at path (following next_cursor, 200 a page; max
 * 0 = all). *items is a new array owned by the caller; NULL on error.
 * polling = 0: api() with retries (its exit status on error); polling = 1:
 * as client_poll() (1 = transient, nothing printed: look again later). */
int list_all(struct client *c, const char *path, size_t max, int polling, json_t **items);

/* Starts a job of `kind` on CLUSTER with params (ownership taken), sends
 * idem (or a random Idempotency-Key), prints the job id (or the job JSON)
 * and, with wait, follows it to its end (then prints its result tables:
 * lifecycle_print_result()). Returns the exit status. */
int create_job(struct client *c, const char *cluster, const char *kind, json_t *params, const char *idem,
	       int wait);

/* v on stdout in the structured format --output chose: pretty JSON
 * (--output json) or YAML (--output yaml). */
void print_doc(const json_t *v);

/* A JSON value as table text ("-" for null/absent); the caller frees it. */
char *cell(const json_t *v);

/* A simple text table: rows of ncol owned strings, the first row the header.
 * table_add() takes the row's strings; table_print() prints and frees all. */
struct table {
	size_t ncol, nrow;
	char **cells;
};

void table_add(struct table *t, char **row);
void table_print(struct table *t);

/* ---- the fleet commands' entry points (server/cli/fleet.c) ---- */


/* A GET while waiting: 0 ok (*out), 1 transient (nothing printed),
 * 2 error (printed), 3 the deadline passed. */
int client_poll(struct client *c, const char *path, json_t **out);

int client_timed_out(struct client *c);          /* prints, returns 3 */

/* argv[*i] is a global option (already applied): 1 skip it (and its value),
 * 0 not one, -1 error printed. */
int client_skip_global(int argc, char **argv, int *i);
/* --name value / --name=value at argv[*i]: 1 (value set), 0 not this
 * flag, -1 value missing (printed). */
int client_opt(int argc, char **argv, int *i, const char *name, const char **value);

/* values_yaml from files (read here) and set from sets into params; 0, or
 * -1 after printing why. */
int client_add_values(json_t *params, const char **files, size_t nfiles, const char **sets,
		      size_t nsets);

/* `ferry fleet ...` (server/cli/fleet.c); argv starts after "fleet". */
int fleet_main(struct client *c, int argc, char **argv);

#endif

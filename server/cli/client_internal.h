/*
 * client_internal: what client.c lends the fleet commands (fleet.c), so the
 * two share one HTTP path, one error style and one set of global options.
 * Only for the ferry-client program; see client.h for the commands.
 *
 * Exit statuses are client.h's: 0 ok, 1 failed/cancelled/paused by the
 * failure budget, 2 usage/connection/HTTP, 3 --timeout.
 * Memory: *out JSON and escaped strings belong to the caller.
 */
#ifndef FERRY_CLI_CLIENT_INTERNAL_H
#define FERRY_CLI_CLIENT_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

struct client;

/* A JSON request: 0 with *out on 2xx, else the error is printed and the
 * exit status returned (2, or 3 past the deadline). retries > 0 retries
 * transport errors and 502/503/504 (GETs, and POSTs with an
 * Idempotency-Key). */
int client_request(struct client *c, const char *method, const char *path, const json_t *body,
		   const char *idem_key, int retries, json_t **out);

/* A GET while waiting: 0 ok (*out), 1 transient (nothing printed),
 * 2 error (printed), 3 the deadline passed. */
int client_poll(struct client *c, const char *path, json_t **out);

int client_wants_json(const struct client *c);   /* --output json */
int client_timed_out(struct client *c);          /* prints, returns 3 */

/* argv[*i] is a global option (already applied): 1 skip it (and its value),
 * 0 not one, -1 error printed. */
int client_skip_global(int argc, char **argv, int *i);
/* --name value / --name=value at argv[*i]: 1 (value set), 0 not this
 * flag, -1 value missing (printed). */
int client_opt(int argc, char **argv, int *i, const char *name, const char **value);

char *client_escape(struct client *c, const char *s);   /* URL-escaped, malloc'd */
void client_print_json(const json_t *v);
/* values_yaml from files (read here) and set from sets into params; 0, or
 * -1 after printing why. */
int client_add_values(json_t *params, const char **files, size_t nfiles, const char **sets,
		      size_t nsets);

/* `ferry fleet ...` (server/cli/fleet.c); argv starts after "fleet". */
int fleet_main(struct client *c, int argc, char **argv);

#endif

/*
 * lifecycle: the release lifecycle commands of ferry-client.
 *
 *   ferry rollback CLUSTER [--revision N]
 *   ferry uninstall CLUSTER [--keep-history] [--delete-crds] [--restore-eni-agent] [--force]
 *   ferry adopt CLUSTER [--namespace NS] [--release-name R]
 *   ferry check CLUSTER [--ignore [KIND[/NAME]:]PATH]...
 *   ferry repair CLUSTER [--ignore [KIND[/NAME]:]PATH]...
 *     each also takes --wait, --dry-run, --idempotency-key K
 *   ferry history CLUSTER [--revision N]   (table, or --output json; with
 *                                          --revision one revision's facts,
 *                                          values and manifest)
 *
 * Each job command is one POST /v1/clusters/{id}/jobs with its kind and
 * params (docs/API.md); the exit statuses are client.h's. After a waited-for
 * job the result tables are printed: the drift report of a check or repair
 * and the per-object list of a dry run.
 *
 * Not thread-safe (like the rest of the client).
 */
#ifndef FERRY_CLI_LIFECYCLE_H
#define FERRY_CLI_LIFECYCLE_H

#include "server/cli/client_internal.h"

#include <jansson.h>

typedef int (*client_cmd_fn)(struct client *c, int argc, char **argv, struct globals *g);

/* The function of lifecycle command `name`, or NULL when it is not one.
 * argv holds the words after the command name. */
client_cmd_fn lifecycle_command(const char *name);

/* Prints the result tables of a finished job (job JSON as GET /v1/jobs/{id}
 * returns it) on stdout: result.check (per-object drift, surroundings,
 * summary) and result.dry_run.objects. Prints nothing when the job has
 * neither. */
void lifecycle_print_result(const json_t *job);

/* A whole number >= 0 in decimal; 0 on success, -1 otherwise. */
int lifecycle_parse_count(const char *s, long long *out);

#endif

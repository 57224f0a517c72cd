/*
 * client: the pipeline commands of `ferry` (a REST client of ferryd).
 *
 *   ferry [global options] clusters list [--selector k=v,...]
 *   ferry [global options] clusters get NAME|ID
 *   ferry [global options] install CLUSTER [--version V] [-f values.yaml]...
 *         [--set k=v]... [--image-mirror] [--dry-run] [--allow-existing-nodes]
 *         [--idempotency-key K] [--upgrade] [--wait]
 *         [--reuse-values|--reset-values|--reset-then-reuse-values]
 *         [--max-history N] [--on-failure rollback] [--retries N]
 *   ferry [global options] upgrade CLUSTER ...   (= install --upgrade)
 *   ferry [global options] rollback|uninstall|adopt|check|repair|history ...
 *         (server/cli/lifecycle.h)
 *   ferry [global options] preflight CLUSTER [--connection-only] [--wait]
 *   ferry [global options] jobs list [--state S] [--cluster C] [--limit N]
 *   ferry [global options] jobs get|wait|cancel ID
 *   ferry [global options] fleet upgrade|preflight|list|get|clusters|pause|
 *         resume|approve|cancel ...   (campaigns: server/cli/fleet.c)
 *   ferry [global options] config ...   (contexts: server/cli/config.h)
 *   ferry --version
 *
 * Global options (before or after the command): --server URL, --token-file
 * FILE, --output table|json|yaml, --timeout DURATION (whole command, e.g.
 * 90, 90s, 5m), --context NAME, --config FILE; each also comes from a
 * FERRY_* variable or the configuration file's context (precedence flag >
 * environment > context > default: server/cli/config.h).
 * The token is never accepted as a flag value and never printed.
 *
 * Exit status: 0 success (a waited-for job succeeded), 1 the job failed or
 * was cancelled (a campaign: failed, cancelled or paused by its budget), 2 usage, connection or HTTP errors, 3 --timeout passed.
 *
 * Not thread-safe (uses libcurl's global init); meant to run once per process.
 */
#ifndef FERRY_CLI_CLIENT_H
#define FERRY_CLI_CLIENT_H

#include <stdio.h>

/* Whether argv word `name` starts a client command (or is a global option),
 * so the dispatcher hands the whole command line to client_main(). */
int client_handles(const char *name);

/* Runs a client command; argv[0] is the program name. Returns the exit status. */
int client_main(int argc, char **argv);

/* The usage text of the client commands. */
void client_usage(FILE *f);

#endif

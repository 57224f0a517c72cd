/*
 * config: the ferry client's configuration file, named contexts (like
 * kubectl's) and the precedence of its settings.
 *
 * The file: $FERRY_CONFIG, else $XDG_CONFIG_HOME/ferry/config, else
 * ~/.config/ferry/config. YAML:
 *
 *   current-context: prod
 *   contexts:
 *   - name: prod
 *     server: https://ferry.example.com
 *     token-file: /home/me/.config/ferry/prod.token
 *     ca-file: /home/me/.config/ferry/prod-ca.pem     (optional)
 *     output: table
 *
 * A token-file or ca-file starting with "~/" is under $HOME; a relative one
 * is relative to the configuration file's directory. The file never holds a token
 * itself; `ferry config` writes it with mode 0600 (directory 0700).
 *
 * Precedence of every setting: flag > environment > context > default.
 *   context     --context NAME > FERRY_CONTEXT > current-context
 *   server      --server > FERRY_SERVER > context server > http://127.0.0.1:8080
 *   token       --token-file > FERRY_TOKEN > FERRY_TOKEN_FILE > context token-file
 *   CA file     --ca-file > FERRY_CA_FILE > context ca-file > the system's CAs
 *   output      --output/-o > FERRY_OUTPUT > context output > table
 *   timeout     --timeout > FERRY_TIMEOUT > none
 * A context named by --context or FERRY_CONTEXT must exist; a missing file
 * is an empty configuration.
 *
 *   ferry config view | current-context | get-contexts [-o name]
 *   ferry config use-context NAME | delete-context NAME | rename-context OLD NEW
 *   ferry config set-context NAME|--current [--server URL] [--token-file FILE]
 *                [--ca-file FILE] [--output table|json|yaml]
 *
 * Memory: struct cli_settings owns its strings (cli_settings_free()).
 * Not thread-safe (getenv, one process = one command).
 */
#ifndef FERRY_CLI_CONFIG_H
#define FERRY_CLI_CONFIG_H

#include "server/cli/client_internal.h"

/* The settings a command runs with, each with where it came from (a flag,
 * an environment variable or "context NAME"), for messages. */
struct cli_settings {
	char *server;           /* never NULL after resolving */
	char *token_file;       /* NULL: the token is in FERRY_TOKEN (token_env) */
	char *ca_file;          /* NULL: the system's trusted CAs */
	int token_env;          /* the token comes from FERRY_TOKEN */
	char *output;           /* NULL = table */
	char *timeout;          /* NULL = none */
	char *context;          /* the context used, NULL = none */
	char *server_from, *token_from, *ca_from, *output_from, *timeout_from;
};

/* Resolves g (the global flags) against the environment and the
 * configuration file; 0, or -1 after printing why (a missing context, an
 * unreadable or malformed file). */
int cli_settings_resolve(const struct globals *g, struct cli_settings *s);
void cli_settings_free(struct cli_settings *s);

/* `ferry config ...`: argv holds the words after "config". Returns the exit
 * status. */
int config_main(const struct globals *g, int argc, char **argv);

#endif

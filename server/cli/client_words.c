/*
 * client_words.c: what the `ferry` dispatcher needs to know about the
 * client commands without linking the client itself (no libcurl here), so
 * that `ferry template` starts as fast as a program with only the chart
 * engine's libraries. The client runs as its own program, ferry-client,
 * which ferry execs for these commands (see ferry.c).
 */
#include "server/cli/client.h"

#include <stdio.h>
#include <string.h>

void client_usage(FILE *f)
{
	fputs("usage: ferry [global options] COMMAND ...\n"
	      "  clusters list [--selector k=v,...]\n"
	      "  clusters get NAME|ID\n"
	      "  install CLUSTER [--version V] [-f values.yaml]... [--set k=v]... [--image-mirror]\n"
	      "          [--dry-run] [--allow-existing-nodes] [--idempotency-key K] [--upgrade] [--wait]\n"
	      "          [--reuse-values | --reset-values | --reset-then-reuse-values] [--max-history N]\n"
	      "          [--on-failure rollback] [--retries N]\n"
	      "  upgrade CLUSTER ...     (install --upgrade: the same flags)\n"
	      "  rollback CLUSTER [--revision N]\n"
	      "  uninstall CLUSTER [--keep-history] [--delete-crds] [--restore-eni-agent] [--force]\n"
	      "  adopt CLUSTER [--namespace NS] [--release-name R]\n"
	      "  check CLUSTER [--ignore [KIND[/NAME]:]PATH]...   (drift report; --wait prints it)\n"
	      "  repair CLUSTER [--ignore [KIND[/NAME]:]PATH]...\n"
	      "      (each job command also takes --dry-run, --idempotency-key K and --wait)\n"
	      "  history CLUSTER [--revision N]   the release revisions, newest first (N: one in full)\n"
	      "  preflight CLUSTER [--connection-only] [--idempotency-key K] [--wait]\n"
	      "  jobs list [--state S] [--cluster NAME|ID] [--limit N]\n"
	      "  jobs get ID | jobs wait ID | jobs cancel ID\n"
	      "  fleet upgrade --selector S --version V [--canary N] [--max-in-flight N|P%]\n"
	      "        [--waves 10%,50%,100%] [--max-failures N|P%] [--pause-between-waves D|manual]\n"
	      "        [--window CRON --window-duration D [--window-tz TZ]] [-f values.yaml]... [--set k=v]...\n"
	      "        [--idempotency-key K] [--wait]          (a campaign over every matching cluster)\n"
	      "  fleet preflight --selector S [strategy flags] [--wait]\n"
	      "  fleet list [--state S] | fleet get|clusters|pause|resume|approve|cancel ID\n"
	      "  config view|current-context|get-contexts|use-context|set-context|delete-context|\n"
	      "         rename-context ...   named contexts in ~/.config/ferry/config (ferry config --help)\n"
	      "  template ...            (see ferry template --help)\n"
	      "  version, --version      print the version\n"
	      "global options (anywhere on the line; flag > environment > context > default):\n"
	      "  --server URL            ferryd base URL (FERRY_SERVER, default http://127.0.0.1:8080)\n"
	      "  --token-file FILE       file holding the bearer token (else FERRY_TOKEN, FERRY_TOKEN_FILE)\n"
	      "  --ca-file FILE          PEM CA certificates to trust for an https:// server (FERRY_CA_FILE;\n"
	      "                          default: the system's trusted CAs)\n"
	      "  -o, --output FORMAT     table, json or yaml (FERRY_OUTPUT, default table)\n"
	      "  --timeout DURATION      limit for the whole command: 90, 90s, 5m, 1h (FERRY_TIMEOUT;\n"
	      "                          exit 3 when passed)\n"
	      "  --context NAME          the context to use (FERRY_CONTEXT, default current-context)\n"
	      "  --config FILE           the configuration file (FERRY_CONFIG, ~/.config/ferry/config)\n"
	      "exit status: 0 ok, 1 job/campaign failed or cancelled (or paused by its failure budget), 2 usage/connection/HTTP error, 3 timeout\n",
	      f);
}

int client_handles(const char *name)
{
	static const char *const words[] = { "clusters", "install", "preflight", "jobs", "upgrade",
					     "rollback", "uninstall", "adopt", "check", "repair",
					     "history", "fleet", "config", NULL };
	if (!name)
		return 0;
	for (int i = 0; words[i]; i++)
		if (!strcmp(name, words[i]))
			return 1;
	return !strncmp(name, "--server", 8) || !strncmp(name, "--token", 7) || !strncmp(name, "--output", 8) ||
	       !strncmp(name, "--timeout", 9) || !strncmp(name, "--context", 9) ||
	       !strncmp(name, "--config", 8) || !strcmp(name, "-o") || !strcmp(name, "help") || !strcmp(name, "--help") ||
	       !strcmp(name, "-h");
}


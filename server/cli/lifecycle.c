/*
 * lifecycle.c: rollback, uninstall, adopt, check, repair and history (see
 * lifecycle.h).
 *
 * The idea: every job command is declared as data, a kind plus a table of
 * its flags and the job param each one sets, and one parser turns the
 * command line into the params object (bool flags → true, numbers checked
 * here so that a typo is a usage error before any request). Starting and
 * following the job is client.c's create_job(), so --wait, --timeout, the
 * Idempotency-Key and the exit statuses behave exactly as for install.
 */
#define _GNU_SOURCE
#include "server/cli/lifecycle.h"
#include "server/common/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum flag_type {
	FT_BOOL,    /* --flag → param true */
	FT_REV,     /* --flag N, N >= 1 → integer param */
	FT_STRING,  /* --flag S → string param */
	FT_IGNORE,  /* --flag [KIND[/NAME]:]PATH, repeated → [{path, kind, name}] */
};

struct flag {
	const char *name;
	enum flag_type type;
	const char *param;
};

struct job_command {
	const char *name;   /* the command word */
	const char *kind;   /* the job kind it starts */
	const char *usage;  /* after "usage: ferry " */
	struct flag flags[6];
};

#define JOB_FLAGS_USAGE "[--dry-run] [--idempotency-key K] [--wait]"

static const struct job_command job_commands[] = {
	{ "rollback", "rollback", "rollback CLUSTER [--revision N] " JOB_FLAGS_USAGE,
	  { { "--revision", FT_REV, "revision" } } },
	{ "uninstall", "uninstall",
	  "uninstall CLUSTER [--keep-history] [--delete-crds] [--restore-eni-agent] [--force] " JOB_FLAGS_USAGE,
	  { { "--keep-history", FT_BOOL, "keep_history" },
	    { "--delete-crds", FT_BOOL, "delete_crds" },
	    { "--restore-eni-agent", FT_BOOL, "restore_eni_agent" },
	    { "--force", FT_BOOL, "force" } } },
	{ "adopt", "adopt", "adopt CLUSTER [--namespace NS] [--release-name R] " JOB_FLAGS_USAGE,
	  { { "--namespace", FT_STRING, "namespace" }, { "--release-name", FT_STRING, "release_name" } } },
	{ "check", "check", "check CLUSTER [--ignore [KIND[/NAME]:]PATH]... " JOB_FLAGS_USAGE,
	  { { "--ignore", FT_IGNORE, "ignore" } } },
	{ "repair", "repair", "repair CLUSTER [--ignore [KIND[/NAME]:]PATH]... " JOB_FLAGS_USAGE,
	  { { "--ignore", FT_IGNORE, "ignore" } } },
};

int lifecycle_parse_count(const char *s, long long *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < 0)
		return -1;
	*out = v;
	return 0;
}

/*
 * An --ignore rule: "/json/pointer" for every object, "Kind:/pointer" for
 * every object of a kind, "Kind/name:/pointer" for one object. The path must
 * be a JSON pointer (starts with '/'); NULL with a message otherwise.
 */
static json_t *ignore_rule(const char *v)
{
	const char *path = v;
	json_t *rule = json_object();
	if (*v != '/') {
		const char *colon = strchr(v, ':');
		if (!colon || colon == v) {
			json_decref(rule);
			return NULL;
		}
		path = colon + 1;
		const char *slash = memchr(v, '/', (size_t)(colon - v));
		if (slash) {
			if (slash == v || slash + 1 == colon) {
				json_decref(rule);
				return NULL;
			}
			json_object_set_new(rule, "kind", json_stringn(v, (size_t)(slash - v)));
			json_object_set_new(rule, "name", json_stringn(slash + 1, (size_t)(colon - slash - 1)));
		} else {
			json_object_set_new(rule, "kind", json_stringn(v, (size_t)(colon - v)));
		}
	}
	if (*path != '/') {
		json_decref(rule);
		return NULL;
	}
	json_object_set_new(rule, "path", json_string(path));
	return rule;
}

/* One command-specific flag at argv[*i] into params: 1 consumed, 0 not one
 * of cmd's flags, -1 error (printed). */
static int command_flag(const struct job_command *cmd, int argc, char **argv, int *i, json_t *params)
{
	for (size_t k = 0; k < sizeof cmd->flags / sizeof cmd->flags[0] && cmd->flags[k].name; k++) {
		const struct flag *f = &cmd->flags[k];
		if (f->type == FT_BOOL) {
			if (strcmp(argv[*i], f->name))
				continue;
			json_object_set_new(params, f->param, json_true());
			return 1;
		}
		int missing = 0;
		const char *v = opt_value(argc, argv, i, f->name, &missing);
		if (missing) {
			errorf("a value is missing after %s", f->name);
			return -1;
		}
		if (!v)
			continue;
		long long n;
		switch (f->type) {
		case FT_REV:
			if (lifecycle_parse_count(v, &n) != 0 || n < 1) {
				errorf("%s must be a whole number of 1 or more", f->name);
				return -1;
			}
			json_object_set_new(params, f->param, json_integer(n));
			return 1;
		case FT_STRING:
			if (!*v) {
				errorf("%s must not be empty", f->name);
				return -1;
			}
			json_object_set_new(params, f->param, json_string(v));
			return 1;
		case FT_IGNORE: {
			json_t *rule = ignore_rule(v);
			if (!rule) {
				errorf("%s takes a JSON pointer such as /data/debug, optionally after KIND: or "
				       "KIND/NAME: (e.g. ConfigMap/cilium-config:/data/debug)",
				       f->name);
				return -1;
			}
			json_t *list = json_object_get(params, f->param);
			if (!list) {
				list = json_array();
				json_object_set_new(params, f->param, list);
			}
			json_array_append_new(list, rule);
			return 1;
		}
		case FT_BOOL:
			break;
		}
	}
	return 0;
}

static int run_job_command(const struct job_command *cmd, struct client *c, int argc, char **argv,
			   struct globals *g)
{
	json_t *params = json_object();
	const char *cluster = NULL, *idem = NULL;
	int wait = 0, rc = EXIT_USAGE;
	for (int i = 0; i < argc; i++) {
		int missing = 0, k;
		const char *v;
		const char *arg = argv[i];
		if ((k = global_opt(argc, argv, &i, g)) != 0) {
			if (k < 0)
				goto out;
			continue;
		}
		if (!strcmp(arg, "--"))
			continue;
		if ((k = command_flag(cmd, argc, argv, &i, params)) != 0) {
			if (k < 0)
				goto out;
			continue;
		}
		if (!strcmp(arg, "--wait"))
			wait = 1;
		else if (!strcmp(arg, "--dry-run"))
			json_object_set_new(params, "dry_run", json_true());
		else if ((v = opt_value(argc, argv, &i, "--idempotency-key", &missing)))
			idem = v;
		else if (missing || (arg[0] == '-' && arg[1])) {
			char name[64];
			flag_name(arg, name, sizeof name);
			errorf("%s %s", missing ? "a value is missing after" : "unknown flag", name);
			goto out;
		} else if (!cluster)
			cluster = arg;
		else {
			errorf("unexpected argument %s", arg);
			goto out;
		}
	}
	if (!cluster) {
		errorf("usage: ferry %s", cmd->usage);
		goto out;
	}
	rc = create_job(c, cluster, cmd->kind, params, idem, wait);
	params = NULL; /* create_job took it */
out:
	json_decref(params);
	return rc;
}

/* The job command named `name` (one of job_commands). */
static int job_command(const char *name, struct client *c, int argc, char **argv, struct globals *g)
{
	for (size_t i = 0; i < sizeof job_commands / sizeof job_commands[0]; i++)
		if (!strcmp(job_commands[i].name, name))
			return run_job_command(&job_commands[i], c, argc, argv, g);
	errorf("unknown command %s", name);
	return EXIT_USAGE;
}

static int cmd_rollback(struct client *c, int argc, char **argv, struct globals *g)
{
	return job_command("rollback", c, argc, argv, g);
}

static int cmd_uninstall(struct client *c, int argc, char **argv, struct globals *g)
{
	return job_command("uninstall", c, argc, argv, g);
}

static int cmd_adopt(struct client *c, int argc, char **argv, struct globals *g)
{
	return job_command("adopt", c, argc, argv, g);
}

static int cmd_check(struct client *c, int argc, char **argv, struct globals *g)
{
	return job_command("check", c, argc, argv, g);
}

static int cmd_repair(struct client *c, int argc, char **argv, struct globals *g)
{
	return job_command("repair", c, argc, argv, g);
}

/* ---------------------------------------------------------------- history */

/* One revision (GET …/revisions/{n}): its facts, user values and manifest. */
static int show_revision(struct client *c, const char *cluster_id, long long rev)
{
	char path[160];
	json_t *r;
	snprintf(path, sizeof path, "/v1/clusters/%s/revisions/%lld", cluster_id, rev);
	int rc = api(c, "GET", path, NULL, NULL, 2, &r);
	if (rc)
		return rc;
	if (c->structured) {
		print_doc(r);
	} else {
		static const char *const keys[] = { "revision", "status", "chart_name", "chart_version", "app_version",
						    "description", "job_id", "started_by", "created_at", "updated_at",
						    NULL };
		for (int i = 0; keys[i]; i++) {
			char *s = cell(json_object_get(r, keys[i]));
			printf("%-14s %s\n", keys[i], s);
			free(s);
		}
		char *v = json_dumps(json_object_get(r, "values"), JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		printf("\nvalues:\n%s\n", v ? v : "null");
		free(v);
		const char *m = json_string_value(json_object_get(r, "manifest"));
		if (m)
			printf("\nmanifest:\n%s%s", m, *m && m[strlen(m) - 1] != '\n' ? "\n" : "");
	}
	json_decref(r);
	return EXIT_OK;
}

/* The revision history, newest first: every page of GET …/revisions; with
 * --revision N that one revision in full. */
static int cmd_history(struct client *c, int argc, char **argv, struct globals *g)
{
	const char *cluster = NULL;
	long long rev = 0;
	for (int i = 0; i < argc; i++) {
		int k = global_opt(argc, argv, &i, g), missing = 0;
		if (k < 0)
			return EXIT_USAGE;
		if (k > 0 || !strcmp(argv[i], "--"))
			continue;
		const char *v = opt_value(argc, argv, &i, "--revision", &missing);
		if (v) {
			if (lifecycle_parse_count(v, &rev) != 0 || rev < 1) {
				errorf("--revision must be a whole number of 1 or more");
				return EXIT_USAGE;
			}
			continue;
		}
		if (missing || (argv[i][0] == '-' && argv[i][1])) {
			char name[64];
			flag_name(argv[i], name, sizeof name);
			errorf("%s %s", missing ? "a value is missing after" : "unknown flag", name);
			return EXIT_USAGE;
		}
		if (cluster) {
			errorf("unexpected argument %s", argv[i]);
			return EXIT_USAGE;
		}
		cluster = argv[i];
	}
	if (!cluster) {
		errorf("usage: ferry history CLUSTER [--revision N]");
		return EXIT_USAGE;
	}
	char id[64];
	int rc = resolve_cluster(c, cluster, id, sizeof id);
	if (rc)
		return rc;
	if (rev)
		return show_revision(c, id, rev);
	char path[128];
	snprintf(path, sizeof path, "/v1/clusters/%s/revisions", id);
	json_t *items;
	if ((rc = list_all(c, path, 0, 0, &items)))
		return rc;
	if (c->structured) {
		print_doc(items);
	} else {
		struct table t = { 7, 0, NULL };
		char *hdr[7] = { xstrdup("REVISION"), xstrdup("STATUS"), xstrdup("CHART"), xstrdup("APP VERSION"),
				 xstrdup("UPDATED"), xstrdup("STARTED BY"), xstrdup("DESCRIPTION") };
		table_add(&t, hdr);
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it) {
			const char *name = json_string_value(json_object_get(it, "chart_name"));
			const char *ver = json_string_value(json_object_get(it, "chart_version"));
			struct buf chart = BUF_INIT;
			buf_printf(&chart, "%s%s%s", name ? name : "", name && ver ? "-" : "", ver ? ver : "");
			if (!chart.len)
				buf_puts(&chart, "-");
			const json_t *when = json_object_get(it, "updated_at");
			if (!json_is_string(when))
				when = json_object_get(it, "created_at");
			char *row[7] = { cell(json_object_get(it, "revision")), cell(json_object_get(it, "status")),
					 buf_steal(&chart), cell(json_object_get(it, "app_version")), cell(when),
					 cell(json_object_get(it, "started_by")), cell(json_object_get(it, "description")) };
			table_add(&t, row);
		}
		table_print(&t);
	}
	json_decref(items);
	return EXIT_OK;
}

/* ---------------------------------------------------------------- results */

/* A list of field paths as "a, b, c" ("-" when empty); the caller frees. */
static char *fields_cell(const json_t *fields)
{
	struct buf b = BUF_INIT;
	size_t i;
	const json_t *f;
	json_array_foreach(fields, i, f) {
		char *s = json_is_string(f) ? xstrdup(json_string_value(f)) : cell(f);
		buf_printf(&b, "%s%s", b.len ? ", " : "", s);
		free(s);
	}
	if (!b.len)
		buf_puts(&b, "-");
	return buf_steal(&b);
}

static long long count_of(const json_t *summary, const char *key)
{
	const json_t *v = json_object_get(summary, key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static void print_check(const json_t *check)
{
	const json_t *objects = json_object_get(check, "objects");
	struct table t = { 5, 0, NULL };
	char *hdr[5] = { xstrdup("STATE"), xstrdup("KIND"), xstrdup("NAMESPACE"), xstrdup("NAME"),
			 xstrdup("FIELDS") };
	table_add(&t, hdr);
	size_t i;
	const json_t *o;
	json_array_foreach(objects, i, o) {
		char *row[5] = { cell(json_object_get(o, "state")), cell(json_object_get(o, "kind")),
				 cell(json_object_get(o, "namespace")), cell(json_object_get(o, "name")),
				 fields_cell(json_object_get(o, "fields")) };
		table_add(&t, row);
	}
	printf("\ndrift report (%zu objects):\n", json_array_size(objects));
	table_print(&t);
	const json_t *sur = json_object_get(check, "surroundings");
	if (json_array_size(sur)) {
		struct table s = { 3, 0, NULL };
		char *h[3] = { xstrdup("SURROUNDING"), xstrdup("STATE"), xstrdup("DETAIL") };
		table_add(&s, h);
		json_array_foreach(sur, i, o) {
			char *row[3] = { cell(json_object_get(o, "name")), cell(json_object_get(o, "state")),
					 cell(json_object_get(o, "detail")) };
			table_add(&s, row);
		}
		putchar('\n');
		table_print(&s);
	}
	const json_t *sum = json_object_get(check, "summary");
	printf("\n%lld in sync, %lld drifted, %lld missing\n", count_of(sum, "in_sync"), count_of(sum, "drifted"),
	       count_of(sum, "missing"));
}

static void print_dry_run(const json_t *objects)
{
	static const char *const actions[] = { "created", "changed", "deleted", "unchanged" };
	long long n[4] = { 0 };
	struct table t = { 5, 0, NULL };
	char *hdr[5] = { xstrdup("ACTION"), xstrdup("KIND"), xstrdup("NAMESPACE"), xstrdup("NAME"),
			 xstrdup("FIELDS") };
	table_add(&t, hdr);
	size_t i;
	const json_t *o;
	json_array_foreach(objects, i, o) {
		const char *a = json_string_value(json_object_get(o, "action"));
		for (int k = 0; k < 4; k++)
			if (a && !strcmp(a, actions[k]))
				n[k]++;
		char *row[5] = { cell(json_object_get(o, "action")), cell(json_object_get(o, "kind")),
				 cell(json_object_get(o, "namespace")), cell(json_object_get(o, "name")),
				 fields_cell(json_object_get(o, "fields")) };
		table_add(&t, row);
	}
	printf("\ndry run (%zu objects; nothing was written):\n", json_array_size(objects));
	table_print(&t);
	printf("\n%lld created, %lld changed, %lld deleted, %lld unchanged\n", n[0], n[1], n[2], n[3]);
}

void lifecycle_print_result(const json_t *job)
{
	const json_t *result = json_object_get(job, "result");
	const json_t *check = json_object_get(result, "check");
	const json_t *dry = json_object_get(json_object_get(result, "dry_run"), "objects");
	if (json_is_object(check))
		print_check(check);
	if (json_is_array(dry))
		print_dry_run(dry);
	fflush(stdout);
}

/* ---------------------------------------------------------------- entry */

client_cmd_fn lifecycle_command(const char *name)
{
	static const struct {
		const char *name;
		client_cmd_fn fn;
	} table[] = {
		{ "rollback", cmd_rollback }, { "uninstall", cmd_uninstall }, { "adopt", cmd_adopt },
		{ "check", cmd_check },       { "repair", cmd_repair },       { "history", cmd_history },
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (!strcmp(name, table[i].name))
			return table[i].fn;
	return NULL;
}

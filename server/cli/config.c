/*
 * config.c: the client's configuration file and contexts (config.h).
 */
#define _GNU_SOURCE
#include "server/cli/config.h"

#include "server/common/buf.h"
#include "server/common/yamljson.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (1024 * 1024)
#define DEFAULT_SERVER "http://127.0.0.1:8080"

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* The configuration file's path (caller frees), or NULL when there is no
 * home directory to put it in. */
static char *config_path(const struct globals *g)
{
	if (g && g->config)
		return xstrdup(g->config);
	const char *p = env("FERRY_CONFIG");
	if (p)
		return xstrdup(p);
	struct buf b = BUF_INIT;
	if ((p = env("XDG_CONFIG_HOME")))
		buf_printf(&b, "%s/ferry/config", p);
	else if ((p = env("HOME")))
		buf_printf(&b, "%s/.config/ferry/config", p);
	else
		return NULL;
	return buf_steal(&b);
}

/* The file as JSON (new reference): {"current-context"?, "contexts": [...]};
 * a missing file is an empty configuration. NULL after printing why. */
static json_t *config_load(const char *path)
{
	json_t *root = NULL;
	if (path) {
		char *text = read_file_limit(path, CONFIG_MAX_BYTES, NULL);
		if (!text && errno != ENOENT) {
			errorf("cannot read the configuration file %s: %s", path, strerror(errno));
			return NULL;
		}
		if (text) {
			char err[256];
			root = yaml_to_json(text, strlen(text), err, sizeof(err));
			free(text);
			if (!root) {
				errorf("configuration file %s: %s", path, err);
				return NULL;
			}
			if (json_is_null(root)) {
				json_decref(root);
				root = NULL;
			} else if (!json_is_object(root)) {
				errorf("configuration file %s: expected a mapping with current-context and contexts",
				       path);
				json_decref(root);
				return NULL;
			}
		}
	}
	if (!root)
		root = json_object();
	json_t *ctxs = json_object_get(root, "contexts");
	if (!ctxs || json_is_null(ctxs)) {
		json_object_set_new(root, "contexts", json_array());
		ctxs = json_object_get(root, "contexts");
	}
	const json_t *cur = json_object_get(root, "current-context");
	const char *bad = NULL;
	if (!json_is_array(ctxs))
		bad = "contexts must be a list";
	else if (cur && !json_is_null(cur) && !json_is_string(cur))
		bad = "current-context must be a name";
	size_t i;
	json_t *c;
	if (!bad)
		json_array_foreach(ctxs, i, c) {
			static const char *const keys[] = { "name", "server", "token-file", "ca-file", "output" };
			if (!json_is_object(c) || !json_is_string(json_object_get(c, "name"))) {
				bad = "every context needs a name";
				break;
			}
			for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
				const json_t *v = json_object_get(c, keys[k]);
				if (v && !json_is_null(v) && !json_is_string(v))
					bad = "a context's name, server, token-file, ca-file and output are strings";
			}
		}
	if (bad) {
		errorf("configuration file %s: %s", path, bad);
		json_decref(root);
		return NULL;
	}
	return root;
}

static json_t *find_context(const json_t *root, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(root, "contexts"), i, c) {
		if (!strcmp(json_string_value(json_object_get(c, "name")), name))
			return c;
	}
	return NULL;
}

static const char *ctx_str(const json_t *ctx, const char *key)
{
	const char *v = json_string_value(json_object_get(ctx, key));
	return v && *v ? v : NULL;
}

/* mkdir -p of path's directory, new directories 0700; 0 or -1 (errno). */
static int make_parent_dirs(const char *path)
{
	char *d = xstrdup(path);
	int rc = 0;
	for (char *p = d + 1; *p && rc == 0; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(d, 0700) != 0 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	free(d);
	return rc;
}

/* Writes root as YAML to path (mode 0600, through a temporary file and a
 * rename, so a reader never sees half a file); 0, or -1 after printing. */
static int config_save(const char *path, const json_t *root)
{
	if (!path) {
		errorf("no configuration file: set HOME, XDG_CONFIG_HOME or FERRY_CONFIG");
		return -1;
	}
	if (make_parent_dirs(path) != 0) {
		errorf("cannot create the directory of %s: %s", path, strerror(errno));
		return -1;
	}
	/* current-context first, as people read it */
	json_t *ordered = json_object();
	const json_t *cur = json_object_get(root, "current-context");
	if (json_is_string(cur))
		json_object_set(ordered, "current-context", (json_t *)cur);
	json_object_update(ordered, (json_t *)root);
	struct buf tmp = BUF_INIT;
	buf_printf(&tmp, "%s.tmp%ld", path, (long)getpid());
	char *text = json_to_yaml(ordered);
	json_decref(ordered);
	int rc = -1;
	int fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		size_t n = strlen(text), off = 0;
		while (off < n) {
			ssize_t w = write(fd, text + off, n - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (off == n && fsync(fd) == 0 && close(fd) == 0) {
			fd = -1;
			if (rename(buf_cstr(&tmp), path) == 0)
				rc = 0;
		}
		if (fd >= 0)
			close(fd);
	}
	if (rc != 0) {
		errorf("cannot write the configuration file %s: %s", path, strerror(errno));
		unlink(buf_cstr(&tmp));
	}
	free(text);
	buf_free(&tmp);
	return rc;
}

/* A context's token-file or ca-file as a path to open (caller frees): "~/"
 * under $HOME, relative paths relative to the configuration file's
 * directory. */
static char *expand_path(const char *value, const char *config_file)
{
	struct buf b = BUF_INIT;
	const char *home = env("HOME");
	if (!strncmp(value, "~/", 2) && home) {
		buf_printf(&b, "%s/%s", home, value + 2);
	} else if (value[0] != '/' && config_file) {
		const char *slash = strrchr(config_file, '/');
		if (slash)
			buf_printf(&b, "%.*s/%s", (int)(slash - config_file), config_file, value);
		else
			buf_puts(&b, value);
	} else {
		buf_puts(&b, value);
	}
	return buf_steal(&b);
}

static char *from(const char *what, const char *name)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, what, name);
	return buf_steal(&b);
}

int cli_settings_resolve(const struct globals *g, struct cli_settings *s)
{
	memset(s, 0, sizeof(*s));
	char *path = config_path(g);
	json_t *root = config_load(path);
	int rc = -1;
	if (!root)
		goto out;
	const char *name = g->context ? g->context : env("FERRY_CONTEXT");
	const json_t *ctx = NULL;
	if (name) {
		if (!(ctx = find_context(root, name))) {
			errorf("no context named %s in %s (from %s; see ferry config get-contexts)", name,
			       path ? path : "(no configuration file)", g->context ? "--context" : "FERRY_CONTEXT");
			goto out;
		}
	} else if (json_is_string(json_object_get(root, "current-context"))) {
		name = json_string_value(json_object_get(root, "current-context"));
		if (*name && !(ctx = find_context(root, name))) {
			errorf("the current context %s is not in %s (ferry config use-context NAME)", name, path);
			goto out;
		}
	}
	if (ctx)
		s->context = xstrdup(name);
	const char *v;
	/* server */
	if (g->server) {
		s->server = xstrdup(g->server);
		s->server_from = xstrdup("--server");
	} else if ((v = env("FERRY_SERVER"))) {
		s->server = xstrdup(v);
		s->server_from = xstrdup("FERRY_SERVER");
	} else if ((v = ctx_str(ctx, "server"))) {
		s->server = xstrdup(v);
		s->server_from = from("the server of context %s", name);
	} else {
		s->server = xstrdup(DEFAULT_SERVER);
		s->server_from = xstrdup("the default server");
	}
	/* token */
	if (g->token_file) {
		s->token_file = xstrdup(g->token_file);
		s->token_from = xstrdup("--token-file");
	} else if (env("FERRY_TOKEN")) {
		s->token_env = 1;
		s->token_from = xstrdup("FERRY_TOKEN");
	} else if ((v = env("FERRY_TOKEN_FILE"))) {
		s->token_file = xstrdup(v);
		s->token_from = xstrdup("FERRY_TOKEN_FILE");
	} else if ((v = ctx_str(ctx, "token-file"))) {
		s->token_file = expand_path(v, path);
		s->token_from = from("the token-file of context %s", name);
	}
	/* CA file */
	if (g->ca_file) {
		s->ca_file = xstrdup(g->ca_file);
		s->ca_from = xstrdup("--ca-file");
	} else if ((v = env("FERRY_CA_FILE"))) {
		s->ca_file = xstrdup(v);
		s->ca_from = xstrdup("FERRY_CA_FILE");
	} else if ((v = ctx_str(ctx, "ca-file"))) {
		s->ca_file = expand_path(v, path);
		s->ca_from = from("the ca-file of context %s", name);
	}
	/* output */
	if (g->output) {
		s->output = xstrdup(g->output);
		s->output_from = xstrdup("--output");
	} else if ((v = env("FERRY_OUTPUT"))) {
		s->output = xstrdup(v);
		s->output_from = xstrdup("FERRY_OUTPUT");
	} else if ((v = ctx_str(ctx, "output"))) {
		s->output = xstrdup(v);
		s->output_from = from("the output of context %s", name);
	}
	/* timeout */
	if (g->timeout) {
		s->timeout = xstrdup(g->timeout);
		s->timeout_from = xstrdup("--timeout");
	} else if ((v = env("FERRY_TIMEOUT"))) {
		s->timeout = xstrdup(v);
		s->timeout_from = xstrdup("FERRY_TIMEOUT");
	}
	rc = 0;
out:
	json_decref(root);
	free(path);
	return rc;
}

void cli_settings_free(struct cli_settings *s)
{
	free(s->server);
	free(s->token_file);
	free(s->ca_file);
	free(s->output);
	free(s->timeout);
	free(s->context);
	free(s->server_from);
	free(s->token_from);
	free(s->ca_from);
	free(s->output_from);
	free(s->timeout_from);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------ ferry config */

static void config_usage(FILE *f)
{
	fputs("usage: ferry config view [-o yaml|json]\n"
	      "       ferry config current-context\n"
	      "       ferry config get-contexts [-o table|name|json|yaml]\n"
	      "       ferry config use-context NAME\n"
	      "       ferry config set-context NAME|--current [--server URL] [--token-file FILE]\n"
	      "                [--ca-file FILE]\n"
	      "                                [--output table|json|yaml]\n"
	      "       ferry config delete-context NAME\n"
	      "       ferry config rename-context OLD NEW\n"
	      "The file: --config FILE, FERRY_CONFIG, else $XDG_CONFIG_HOME/ferry/config or\n"
	      "~/.config/ferry/config. Precedence: flag > FERRY_* environment > context > default.\n",
	      f);
}

static int valid_output(const char *o)
{
	return !strcmp(o, "table") || !strcmp(o, "json") || !strcmp(o, "yaml");
}

static void print_structured(const json_t *v, const char *format)
{
	char *s = !strcmp(format, "json") ? json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY)
					   : json_to_yaml(v);
	if (s)
		fputs(s, stdout);
	if (s && !strcmp(format, "json"))
		putchar('\n');
	free(s);
}

static int get_contexts(const json_t *root, const char *format)
{
	const json_t *ctxs = json_object_get(root, "contexts");
	const char *cur = json_string_value(json_object_get(root, "current-context"));
	size_t i;
	const json_t *c;
	if (!strcmp(format, "json") || !strcmp(format, "yaml")) {
		print_structured(ctxs, format);
		return EXIT_OK;
	}
	if (!strcmp(format, "name")) {
		json_array_foreach(ctxs, i, c)
			printf("%s\n", json_string_value(json_object_get(c, "name")));
		return EXIT_OK;
	}
	struct table t = { 5, 0, NULL };
	char *hdr[5] = { xstrdup("CURRENT"), xstrdup("NAME"), xstrdup("SERVER"), xstrdup("TOKEN-FILE"),
			 xstrdup("OUTPUT") };
	table_add(&t, hdr);
	json_array_foreach(ctxs, i, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		char *row[5] = { xstrdup(cur && !strcmp(cur, name) ? "*" : ""), xstrdup(name),
				 cell(json_object_get(c, "server")), cell(json_object_get(c, "token-file")),
				 cell(json_object_get(c, "output")) };
		table_add(&t, row);
	}
	table_print(&t);
	return EXIT_OK;
}

/* ctx[key] = file, a relative path made absolute against the current
 * directory (that is what the user meant). */
static void set_path(json_t *ctx, const char *key, const char *file)
{
	struct buf b = BUF_INIT;
	char cwd[4096];
	if (file[0] != '/' && strncmp(file, "~/", 2) && getcwd(cwd, sizeof(cwd)))
		buf_printf(&b, "%s/%s", cwd, file);
	else
		buf_puts(&b, file);
	json_object_set_new(ctx, key, json_string(buf_cstr(&b)));
	buf_free(&b);
}

/* set-context: creates or updates a context; a relative token-file or
 * ca-file is made absolute against the current directory. */
static int set_context(json_t *root, const char *name, int current, const char *server,
		       const char *token_file, const char *ca_file, const char *output)
{
	if (current) {
		name = json_string_value(json_object_get(root, "current-context"));
		if (!name || !*name) {
			errorf("set-context --current: no current context (ferry config use-context NAME)");
			return EXIT_USAGE;
		}
	}
	if (!name || !*name) {
		errorf("set-context needs a context NAME (or --current)");
		return EXIT_USAGE;
	}
	if (server && strncmp(server, "http://", 7) && strncmp(server, "https://", 8)) {
		errorf("--server must be an http:// or https:// URL");
		return EXIT_USAGE;
	}
	if (output && !valid_output(output)) {
		errorf("--output must be table, json or yaml");
		return EXIT_USAGE;
	}
	json_t *ctx = find_context(root, name);
	if (!ctx) {
		if (current) {
			errorf("the current context %s does not exist", name);
			return EXIT_USAGE;
		}
		ctx = json_object();
		json_object_set_new(ctx, "name", json_string(name));
		json_array_append_new(json_object_get(root, "contexts"), ctx);
	}
	if (server)
		json_object_set_new(ctx, "server", json_string(server));
	if (token_file)
		set_path(ctx, "token-file", token_file);
	if (ca_file)
		set_path(ctx, "ca-file", ca_file);
	if (output)
		json_object_set_new(ctx, "output", json_string(output));
	return EXIT_OK;
}

static int remove_context(json_t *root, const char *name)
{
	json_t *ctxs = json_object_get(root, "contexts");
	size_t i;
	json_t *c;
	json_array_foreach(ctxs, i, c) {
		if (!strcmp(json_string_value(json_object_get(c, "name")), name)) {
			json_array_remove(ctxs, i);
			const char *cur = json_string_value(json_object_get(root, "current-context"));
			if (cur && !strcmp(cur, name))
				json_object_del(root, "current-context");
			return 0;
		}
	}
	return -1;
}

int config_main(const struct globals *g, int argc, char **argv)
{
	const char *pos[3] = { NULL, NULL, NULL };
	int npos = 0, current = 0;
	const char *server = NULL, *token_file = NULL, *ca_file = NULL, *output = NULL, *fmt = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int missing = 0;
		const char *v;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			config_usage(stdout);
			return EXIT_OK;
		}
		if (!strcmp(a, "--current"))
			current = 1;
		else if ((v = opt_value(argc, argv, &i, "--server", &missing)))
			server = v;
		else if ((v = opt_value(argc, argv, &i, "--token-file", &missing)))
			token_file = v;
		else if ((v = opt_value(argc, argv, &i, "--ca-file", &missing)))
			ca_file = v;
		else if ((v = opt_value(argc, argv, &i, "--output", &missing)) ||
			 (v = opt_value(argc, argv, &i, "-o", &missing)))
			output = fmt = v;
		else if (missing || (a[0] == '-' && a[1])) {
			char name[64];
			flag_name(a, name, sizeof name);
			errorf("%s %s", missing ? "a value is missing after" : "unknown flag", name);
			return EXIT_USAGE;
		} else if (npos < 3) {
			pos[npos++] = a;
		} else {
			errorf("unexpected argument %s", a);
			return EXIT_USAGE;
		}
	}
	const char *sub = npos ? pos[0] : NULL;
	if (!sub) {
		config_usage(stderr);
		return EXIT_USAGE;
	}
	int is_set = !strcmp(sub, "set-context");
	if (!is_set && (server || token_file || ca_file || current)) {
		errorf("--server, --token-file, --ca-file and --current belong to set-context");
		return EXIT_USAGE;
	}
	if (!fmt && g->output && !is_set)
		fmt = g->output;
	char *path = config_path(g);
	json_t *root = config_load(path);
	int rc = EXIT_USAGE;
	if (!root)
		goto out;
	if (!strcmp(sub, "view") && npos == 1) {
		if (fmt && strcmp(fmt, "yaml") && strcmp(fmt, "json")) {
			errorf("config view: -o must be yaml or json");
			goto out;
		}
		print_structured(root, fmt ? fmt : "yaml");
		rc = EXIT_OK;
	} else if (!strcmp(sub, "current-context") && npos == 1) {
		const char *cur = json_string_value(json_object_get(root, "current-context"));
		if (cur && *cur) {
			printf("%s\n", cur);
			rc = EXIT_OK;
		} else {
			errorf("no current context is set (ferry config use-context NAME)");
		}
	} else if (!strcmp(sub, "get-contexts") && npos <= 2) {
		if (fmt && !valid_output(fmt) && strcmp(fmt, "name")) {
			errorf("get-contexts: -o must be table, name, json or yaml");
			goto out;
		}
		if (npos == 2) {  /* one context, as kubectl's get-contexts NAME */
			json_t *c = find_context(root, pos[1]);
			if (!c) {
				errorf("no context named %s", pos[1]);
				goto out;
			}
			json_t *one = json_pack("{s:O,s:[O]}", "current-context",
						json_object_get(root, "current-context") ?
						json_object_get(root, "current-context") : json_null(),
						"contexts", c);
			rc = get_contexts(one, fmt ? fmt : "table");
			json_decref(one);
		} else {
			rc = get_contexts(root, fmt ? fmt : "table");
		}
	} else if (!strcmp(sub, "use-context") && npos == 2) {
		if (!find_context(root, pos[1])) {
			errorf("no context named %s (ferry config get-contexts)", pos[1]);
			goto out;
		}
		json_object_set_new(root, "current-context", json_string(pos[1]));
		rc = config_save(path, root) == 0 ? EXIT_OK : EXIT_USAGE;
		if (rc == EXIT_OK)
			printf("switched to context %s\n", pos[1]);
	} else if (is_set && npos <= 2 && (npos == 2) != current) {
		rc = set_context(root, npos == 2 ? pos[1] : NULL, current, server, token_file, ca_file, output);
		if (rc == EXIT_OK && config_save(path, root) != 0)
			rc = EXIT_USAGE;
		else if (rc == EXIT_OK)
			printf("context %s saved in %s\n",
			       npos == 2 ? pos[1] : json_string_value(json_object_get(root, "current-context")), path);
	} else if (!strcmp(sub, "delete-context") && npos == 2) {
		if (remove_context(root, pos[1]) != 0) {
			errorf("no context named %s", pos[1]);
			goto out;
		}
		rc = config_save(path, root) == 0 ? EXIT_OK : EXIT_USAGE;
		if (rc == EXIT_OK)
			printf("deleted context %s\n", pos[1]);
	} else if (!strcmp(sub, "rename-context") && npos == 3) {
		json_t *c = find_context(root, pos[1]);
		if (!c) {
			errorf("no context named %s", pos[1]);
			goto out;
		}
		if (find_context(root, pos[2])) {
			errorf("a context named %s already exists", pos[2]);
			goto out;
		}
		json_object_set_new(c, "name", json_string(pos[2]));
		const char *cur = json_string_value(json_object_get(root, "current-context"));
		if (cur && !strcmp(cur, pos[1]))
			json_object_set_new(root, "current-context", json_string(pos[2]));
		rc = config_save(path, root) == 0 ? EXIT_OK : EXIT_USAGE;
		if (rc == EXIT_OK)
			printf("renamed context %s to %s\n", pos[1], pos[2]);
	} else {
		config_usage(stderr);
	}
out:
	json_decref(root);
	free(path);
	return rc;
}

/*
 * chart: a Helm v3 compatible chart engine ("helm template" in a library).
 *
 * chart_load() reads a chart from a .tgz (gzip + tar, paths checked) or a
 * directory: Chart.yaml, values.yaml, templates/ and every other file for
 * .Files. Templates are parsed once at load time.
 *
 * Values: the caller merges its layers with chart_values_merge() (values
 * files in order, later wins, maps merge deeply; then --set, --set-string and
 * --set-json with Helm's strvals grammar). chart_render() coalesces those user
 * values over the chart's defaults (a user null deletes a key), executes the
 * templates the way Helm does and returns the documents in install order.
 *
 * Number typing follows Helm: numbers from values files are float64 inside
 * templates; --set integers are int64. In the json_t user values this is
 * kept by the JSON number type: json_real = float64, json_integer = int64.
 * chart_values_parse() parses a values YAML text that way (all numbers real).
 *
 * Memory: every returned pointer is owned by the object it came from (freed
 * with chart_free / chart_render_free), except json_t results of
 * chart_values_parse / chart_values_merge (new references for the caller).
 *
 * Thread-safety: a loaded chart is read-only; any number of threads may
 * render it concurrently. A render result may be read from several threads
 * (its JSON views are built once, on first use, under a lock). Functions
 * have no global state (OpenSSL 3 is thread-safe).
 */
#ifndef FERRY_CHART_H
#define FERRY_CHART_H

#include <jansson.h>
#include <stddef.h>

struct chart;
struct chart_render;

/* Limits for archives (Helm's): total decompressed size, per file, entries. */
#define CHART_MAX_TOTAL_SIZE (100u * 1024 * 1024)
#define CHART_MAX_FILE_SIZE (5u * 1024 * 1024)
#define CHART_MAX_ENTRIES 10000

/* Render budget defaults (see struct chart_render_opts). The real Cilium
 * charts use far less (docs/SECURITY.md records the measurements). */
#define CHART_DEFAULT_MAX_STEPS (20L * 1000 * 1000)
#define CHART_DEFAULT_MAX_OUTPUT ((size_t)64 * 1024 * 1024)
#define CHART_DEFAULT_MAX_MEMORY ((size_t)256 * 1024 * 1024)
#define CHART_DEFAULT_MAX_MS 30000L

struct chart *chart_load(const char *path, char *err, size_t errlen);   /* .tgz or dir */
struct chart *chart_load_archive(const void *data, size_t len, char *err, size_t errlen);
const char *chart_name(const struct chart *);
const char *chart_version(const struct chart *);
const char *chart_app_version(const struct chart *);
void chart_free(struct chart *);

/* What one render used, against the budget below. */
struct chart_render_usage {
	long steps;       /* template nodes evaluated */
	size_t memory;    /* bytes of the render's value arena */
	size_t output;    /* bytes of the largest template file output */
};

struct chart_render_opts {
	const char *release_name;
	const char *namespace_;
	const char *kube_version;                 /* NULL: v1.32.2 */
	const char *const *api_versions;          /* extra, NULL-terminated, may be NULL */
	int is_upgrade;
	int revision;                             /* 0 means 1 */
	/* optional live lookup: returns a new json_t (object, or empty object) */
	json_t *(*lookup)(void *ctx, const char *api_version, const char *kind,
			  const char *ns, const char *name);
	void *lookup_ctx;
	/* Execution budget (a chart is untrusted input: a tenant may upload
	 * one). Each limit, when hit, fails the render with an error naming
	 * the limit and the template position. 0 = the default:
	 *  max_steps   template nodes evaluated (CHART_DEFAULT_MAX_STEPS);
	 *  max_output  bytes of one template file's output, and of any one
	 *              function result (CHART_DEFAULT_MAX_OUTPUT);
	 *  max_memory  bytes of the render's value arena (CHART_DEFAULT_MAX_MEMORY);
	 *  max_ms      wall time of the whole render, key generation (genCA,
	 *              genPrivateKey, ...) included (CHART_DEFAULT_MAX_MS).
	 * include/template nesting is limited to 1000 per name as in Helm.
	 * should_stop is polled (every 1024 nodes and after every function
	 * call, so at least every few ms) and ends the render when it returns
	 * non-zero (cancel, shutdown). */
	long max_steps;
	size_t max_output;
	size_t max_memory;
	long max_ms;
	int (*should_stop)(void *ctx);
	void *stop_ctx;
	/* when set, receives what the render used (also when it failed) */
	struct chart_render_usage *usage;
	/* values.schema.json is enforced unless this is set */
	int skip_schema_validation;
	/* The caller throws the output away (a preview that only checks the
	 * chart renders): certificate functions then sign with one
	 * process-wide scratch key (keypool_scratch_rsa) instead of fresh
	 * keys. Never set for a render that is applied or stored. */
	int output_discarded;
};

/* Parse a values file (YAML) with Helm's typing: YAML 1.1 booleans
 * (yes/no/on/off), every number a json_real. NULL + err on error; an empty
 * document gives an empty object. */
json_t *chart_values_parse(const char *yaml, size_t len, char *err, size_t errlen);

/* values: the user-supplied layers merged (Helm's "user values", what
 * `helm get values` shows). layers are JSON objects; number typing is kept
 * by JSON number type: json_real = float64 (what Helm makes of every number
 * in a values file), json_integer = int64 (Helm's --set integers). Parse
 * values files with chart_values_parse() to get exactly Helm's typing
 * (numbers as json_real, YAML 1.1 booleans yes/no/on/off); a generic YAML
 * reader leaves integers as json_integer, which templates then see as int64.
 * sets/set_strings/set_jsons are NULL-terminated lists (or NULL) of
 * "a.b[0].c=v,d=w" strings. The layers are not modified. */
json_t *chart_values_merge(const json_t *const *layers, size_t nlayers,
			   const char *const *sets, const char *const *set_strings,
			   const char *const *set_jsons, char *err, size_t errlen);

struct chart_render *chart_render(const struct chart *, const json_t *user_values,
				  const struct chart_render_opts *, char *err, size_t errlen);

/* documents in install order (hooks excluded), each
 * {"source":"cilium/templates/x.yaml","kind":"...","object":{...},"yaml":"text"} */
const json_t *chart_render_documents(const struct chart_render *);
/* how many documents chart_render_documents() holds, without building
 * them (a render whose output is only counted skips the JSON) */
size_t chart_render_document_count(const struct chart_render *);
/* hook documents, same shape, plus "events":["pre-install",...] */
const json_t *chart_render_hooks(const struct chart_render *);
/* the manifest as Helm stores it in a release ("---\n# Source: path\n<yaml>\n"
 * per document, hooks excluded) */
const char *chart_render_manifest(const struct chart_render *);
/* what `helm template` prints: the manifest trimmed, then the hooks */
const char *chart_render_output(const struct chart_render *);
/* A release manifest as chart_render_manifest() wrote it (stored in a
 * release record), split as Helm splits manifests and parsed with the same
 * YAML rules the render used (so e.g. "defaultMode: 0400" is 256, as the
 * API server got it): an array of the objects (comments-only documents
 * skipped). NULL + err on a document that does not parse. */
json_t *chart_manifest_objects(const char *manifest, size_t len, char *err, size_t errlen);
/* the coalesced values (.Values) */
const json_t *chart_render_values(const struct chart_render *);
void chart_render_free(struct chart_render *);

/* A chart from in-memory files (names relative to the chart root, e.g.
 * "Chart.yaml", "templates/x.yaml"); contents NUL-terminated. */
struct chart *chart_load_files(const char *const *names, const char *const *contents, size_t n,
			       char *err, size_t errlen);

/* Render TEXT as one extra template of the chart (named
 * "<chart>/templates/_inline", the chart's defines available) with the
 * chart's values coalesced with user_values. *out receives the raw output
 * ("<no value>" blanked; malloc'd, caller frees). Returns 0 or -1 + err.
 * For tests and previews. */
int chart_render_template(const struct chart *c, const char *text, const json_t *user_values,
			  const struct chart_render_opts *opts, char **out, char *err, size_t errlen);

/* semver constraint check as Helm's chart kubeVersion: 1 yes, 0 no, -1 bad input */
int chart_semver_satisfies(const char *constraint, const char *version);

#endif

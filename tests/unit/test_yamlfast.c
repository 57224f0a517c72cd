/*
 * test_yamlfast: differential tests of the fast YAML reader against libyaml.
 *
 * Two levels. The parser: every input is read by yamlfast_load() and by
 * libyaml's yaml_parser_load(); when the fast path handles an input, libyaml
 * must succeed too and the two documents must be equal node by node (types,
 * styles, tags, values). The conversion (yaml.c builds chart values straight
 * from yamlfast's events): cv_from_yaml() and cv_from_yaml_doc() with the
 * fast path on and off must give the same result code, the same error
 * message and the same values, compared strictly (kinds, Go types, float
 * bits, strings, map keys in order).
 * Inputs: hand-written tricky cases (each "must be handled" or "may bail"),
 * conversion cases (errors, merges, key typing), the values.yaml and
 * Chart.yaml of every chart in $FERRY_SHARED/charts, every values file under
 * $FERRY_SHARED/goldens, and the documents cilium-1.18.3 renders with the
 * tke-1.18.3 golden values (all of which the fast path must handle).
 */
#include "server/chart/archive.h"
#include "server/chart/chart.h"
#include "server/chart/cv.h"
#include "server/chart/yamlfast.h"
#include "server/common/buf.h"
#include "tests/unit/cv_strict.h"
#include "tests/unit/testlib.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *shared_dir(void)
{
	const char *s = getenv("FERRY_SHARED");
	return s && *s ? s : "/work/shared";
}

/* 1: fast path handled it and equals libyaml; 0: fast path bailed;
 * -1: mismatch (a FAIL line has been printed). */
static int diff_one(const char *name, const char *text, size_t len)
{
	struct yamlfast_doc fd;
	yaml_document_t ld;
	if (yamlfast_load(text, len, &fd) != 0)
		return 0;
	yaml_parser_t parser;
	int rc = -1;
	if (!yaml_parser_initialize(&parser)) {
		yamlfast_free(&fd);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &ld)) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s: fast path accepted what libyaml rejects (line %lu: %s)", name,
			 (unsigned long)parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
		testlib_fail(__FILE__, __LINE__, msg);
		goto out;
	}
	char why[512], msg[700];
	if (!yamlfast_doc_equal(&fd.doc, &ld, why, sizeof(why))) {
		snprintf(msg, sizeof(msg), "%s: documents differ: %s", name, why);
		testlib_fail(__FILE__, __LINE__, msg);
	} else {
		rc = 1;
	}
	yaml_document_delete(&ld);
out:
	yaml_parser_delete(&parser);
	yamlfast_free(&fd);
	return rc;
}

/* cv_from_yaml (ints 0) or cv_from_yaml_doc (ints 1) with the fast path on
 * and off: same result, same message, same values. *handled: whether the
 * fast path took the text. */
static void check_cv_mode(const char *name, const char *text, size_t len, int ints, int *handled)
{
	char e1[512] = "", e2[512] = "", why[400] = "", msg[1400];
	struct cv_arena *a = cv_arena_new();
	cv v1 = cv_nil(), v2 = cv_nil();
	size_t h0, h1;
	yamlfast_stats(&h0, NULL);
	int r1 = ints ? cv_from_yaml_doc(a, text, len, &v1, 1, e1, sizeof(e1)) : cv_from_yaml(a, text, len, &v1, e1, sizeof(e1));
	yamlfast_stats(&h1, NULL);
	if (handled)
		*handled = h1 != h0;
	yamlfast_set_disabled(1);
	int r2 = ints ? cv_from_yaml_doc(a, text, len, &v2, 1, e2, sizeof(e2)) : cv_from_yaml(a, text, len, &v2, e2, sizeof(e2));
	yamlfast_set_disabled(0);
	if (r1 != r2 || (r1 && strcmp(e1, e2)) || (!r1 && !cv_strict_equal(v1, v2, why, sizeof(why)))) {
		snprintf(msg, sizeof(msg), "%s (ints %d): fast path gives %d \"%.300s\", libyaml %d \"%.300s\"; %s", name,
			 ints, r1, e1, r2, e2, why);
		testlib_fail(__FILE__, __LINE__, msg);
	}
	cv_arena_free(a);
}

/* both typings; 1 when the fast path took the text */
static int check_cv_same(const char *name, const char *text, size_t len)
{
	int h0 = 0, h1 = 0;
	check_cv_mode(name, text, len, 0, &h0);
	check_cv_mode(name, text, len, 1, &h1);
	check(h0 == h1);
	return h0;
}

/* ---------------------------------------------------------------- tricky cases */

struct tcase {
	const char *text;
	int must; /* 1: must be handled; 0: may bail */
};

static const struct tcase cases[] = {
	/* empty and trivial documents */
	{ "", 1 }, { "\n\n", 1 }, { "# only a comment\n", 1 }, { "   \n  # c\n", 1 },
	{ "---\n", 1 }, { "--- # c\n", 1 }, { "# c\n---\na: 1\n", 1 }, { "---\na: 1\n", 1 },
	{ "a\n", 1 }, { "a b  \n", 1 }, { "'q'\n", 1 }, { "\"q\"", 1 }, { "{}\n", 1 }, { "[]", 1 },
	{ "a: 1", 1 }, { "a:", 1 }, { "a: b\n", 1 },
	/* mappings */
	{ "a: 1\nb: 2\nc:\n  d: 3\n  e:\n    f: g\nh: i\n", 1 },
	{ "  a: 1\n  b: 2\n", 1 },
	{ "a:\nb:\n", 1 },
	{ "a:\n  # deeper comment\nb: 1\n", 1 },
	{ "a:   \nb: 1\n", 1 },
	{ "a  : 1\n", 1 },
	{ "\"a b\": 1\n'c''d': 2\n\"e\" : 3\n", 1 },
	{ "a#b: c#d\n", 1 },
	{ "a: b # comment\nc: 'd' # comment\ne: \"f\"   # comment\n", 1 },
	{ "url: http://example.com:8080/x\n", 1 },
	{ "a:b: c\n", 1 },
	{ "-a: -1\n--b: --2\n", 1 },
	{ "k: v: w\n", 0 },
	{ "a: 1\n  b: 2\n", 0 },
	{ "a: b\n  c\n", 0 },
	{ "a: b\n  # comment\nc: d\n", 1 },
	{ "a: b\n\n  c\n", 0 },
	{ "a:\n  text\nb: 1\n", 1 },
	{ "a:\n  'q'\nb: 1\n", 1 },
	{ "a:\n  [x, y]\n", 1 },
	{ "a: x\nb\n", 0 },
	{ "a: 1\n- b\n", 0 },
	{ "a: 'x' y\n", 0 },
	{ "a: 'x'# c\n", 0 },
	{ "a: -\n", 0 },
	{ "a: ~\nb: null\nc: yes\nd: 0x1F\ne: 1e3\n", 1 },
	{ "a: 2024-01-01\n<<: {b: c}\n", 1 },
	/* sequences */
	{ "- a\n- b\n-\n- - c\n  - d\n- e: f\n  g: h\n", 1 },
	{ "a:\n- x\n- y\nb: 1\n", 1 },
	{ "a:\n  - x\n  - y\nb: 1\n", 1 },
	{ "a:\n- x:\n  - 1\n  y: 2\nb: 3\n", 1 },
	{ "- \n  a: 1\n- # c\n  - x\n", 1 },
	{ "- a\n -b\n", 0 },
	{ "- a\n  b\n", 0 },
	{ "a:\n- x\n  y\n", 0 },
	{ "- a: 1\n  - b\n", 0 },
	{ "- - - x\n    - y\n  - z\n", 1 },
	{ "-\n-\n", 1 },
	{ "- -\n", 1 },
	{ "a:\n  - x\n  b: 1\n", 0 },
	/* quoted scalars */
	{ "a: 'it''s'\nb: \"tab\\there \\\"q\\\" \\\\ \\/ \\x41 \\u00e9 \\U0001F600\"\n", 1 },
	{ "a: \"\\0\\a\\b\\v\\f\\r\\e\\ \\N\\_\\L\\P\\n\"\n", 1 },
	{ "a: \"\\'\"\n", 0 },
	{ "a: \"\\q\"\n", 0 },
	{ "a: \"\\ud800\"\n", 0 },
	{ "a: 'x\\y'\n", 1 },
	/* multi-line quoted values (libyaml's folding) */
	{ "a: 'multi\n  line'\n", 1 },
	{ "a: \"multi\\\n  line\"\n", 1 },
	{ "a: \"x  \n\n  y  z\"\nb: 1\n", 1 },
	{ "a: \"x\\\n  \\ y\"\n", 1 },
	{ "a: 'x\n\n\n  y' # c\n", 1 },
	{ "a: \"x\ty\t\n\ty\"\n", 1 },
	{ "a: \"x\n---\n y\"\n", 0 },
	{ "a: \"x\n...\n y\"\n", 0 },
	{ "a: \"never closed\n", 0 },
	{ "a: \"x\n y\": z\n", 0 },
	{ "a:\n  \"x\n  y\"\n", 0 },
	{ "- \"x\n  y\"\n", 0 },
	{ "a: \"x\ny\"\n", 1 },
	{ "a: '  spaced  '\nb: \"\tt\t\"\n", 1 },
	{ "a: \"#x\"\nb: '- y'\nc: \": z\"\n", 1 },
	/* flow */
	{ "a: []\nb: {}\nc: [ ]\nd: { }\n", 1 },
	{ "a: [x, y, \"z\", 'w', 1.5, -2]\n", 1 },
	{ "a: {b: c, \"d\": 'e', f: 1}\n", 1 },
	{ "a: [x y, z]\n", 1 },
	{ "a: [x, y,]\n", 0 },
	{ "a: [x,\n  y]\n", 0 },
	{ "a: [[x]]\n", 0 },
	{ "a: [x: y]\n", 0 },
	{ "a: {\"b\":c}\n", 0 },
	{ "a: [0.0.0.0/0, ::1]\n", 0 },
	{ "- [a, b]\n- {c: d}\n", 1 },
	{ "a: [x] y\n", 0 },
	/* block scalars */
	{ "a: |\n  line1\n  line2\nb: 1\n", 1 },
	{ "a: |-\n  line1\n  line2\n\nb: 1\n", 1 },
	{ "a: |+\n  line1\n\n\nb: 1\n", 1 },
	{ "a: >\n  folded\n  text\n\n  para\n   indented\n  back\nb: 1\n", 1 },
	{ "a: >-\n  x\n  y\n", 1 },
	{ "a: >+\n  x\n\n", 1 },
	{ "a: |\n\n\n  after blank\n", 1 },
	{ "a: |\n      \n  text\n", 0 },
	{ "a: |\n      \n      text\n", 1 },
	{ "a: |\n  text\n      \n  more\n", 1 },
	{ "a: |\n  text\n  # not a comment\n# a comment\nb: 1\n", 1 },
	{ "a: |\nb: 1\n", 1 },
	{ "a: |+\n\nb: 1\n", 1 },
	{ "a: |", 1 }, { "a: |\n  x", 1 }, { "a: |-\n  x", 1 },
	{ "a: | # c\n  x\n", 1 },
	{ "a: |2\n   x\n", 0 },
	{ "a: |\n  x\n\ty\n", 0 },
	{ "a: |\n  tab\tinside\n", 1 },
	{ "- |\n  x\n- >\n  y\n  z\n", 1 },
	{ "a:\n- |\n  x\n- b\n", 1 },
	{ "- a: |\n    x\n  b: 1\n", 1 },
	{ "|\n x\n", 1 },
	{ ">\n  a\n  b\n", 1 },
	{ "a: |\n    x\n  y\n", 0 },
	/* things that must fall back */
	{ "a: &x 1\nb: *x\n", 0 },
	{ "a: !!str 1\n", 0 },
	{ "%YAML 1.1\n---\na: 1\n", 0 },
	{ "? a\n: b\n", 0 },
	{ "a: 1\n---\nb: 2\n", 0 },
	{ "a: 1\n...\n", 0 },
	{ "a: 1\r\nb: 2\r\n", 0 },
	{ "\ta: 1\n", 0 },
	{ "a:\n\t- x\n", 0 },
	{ "a: b\tc\n", 0 },
	{ "a: \x7f\n", 0 },
	{ "a: \xc3\n", 0 },
	{ "a: \xc0\x80\n", 0 },
	{ "a: \xed\xa0\x80\n", 0 },
	{ "a: \xe2\x80\xa8\n", 0 },
	{ "\xef\xbb\xbf" "a: 1\n", 0 },
	{ "a: \xc2\x85\n", 0 },
	{ "a: h\xc3\xa9llo\n\xc3\xa9: \xe4\xb8\xad\n", 1 },
	{ "a: @x\n", 0 }, { "a: `x`\n", 0 }, { "a: %x\n", 0 }, { "a: ?x\n", 0 }, { "a: :x\n", 0 },
	{ "a: ,x\n", 0 }, { "a: ]\n", 0 }, { "a: }\n", 0 },
	{ "---a: 1\n", 0 }, { "--- a\n", 0 }, { "...\n", 0 },
	{ "a: [x] # c\nb: {y: z} # c\n", 1 },
	/* conversion: errors and their order (load_node's: a pair's value, then
	 * its key; after a failure the keys of the open mappings are still
	 * checked and a later key error replaces the message) */
	{ "~: 1\n", 1 }, { "null: 1\nb: 2\n", 1 }, { "a: .nan\n", 1 }, { "a: .inf\n", 1 }, { "a: -.Inf\n", 1 },
	{ "a: .nan\n~: 1\n", 1 }, { "~:\n  a: .nan\n", 1 }, { "a:\n  b: .nan\n  ~: 1\n  c: 2\nd: 3\n", 1 },
	{ "a:\n  b: .nan\n  18446744073709551615: 1\n", 1 }, { "- .nan\n- ~: 1\n", 1 }, { "a: [.nan, 1]\n~: 2\n", 1 },
	{ "a:\n  ~: 1\n  b: .nan\nc: 1\n", 1 }, { "a:\n- b: 1\n  ~: 2\n- ~: 3\nNULL: 4\n", 1 },
	{ "18446744073709551615: 1\n", 1 }, { "9223372036854775808: 1\n", 1 }, { "x:\n  ~:\n    ~: 1\n", 1 },
	{ "<<: {a: .nan}\n~: 1\n", 1 }, { "a: 1\n<<:\n  b: .inf\n", 1 },
	{ "a:\n  ~: 1\n  18446744073709551615: 2\n", 1 }, { "a:\n  ~: 1\n  b:\n    18446744073709551615: 2\n", 1 },
	{ "a:\n  - .nan\n  - ~: 1\n18446744073709551615: 2\n", 1 }, { "a: .nan\nb:\n  ~: 1\n", 1 },
	/* conversion: keys become JSON object keys */
	{ "1: a\n2.5: b\ntrue: c\n0x1F: d\n-7: e\n1e3: f\n.inf: g\n-.inf: h\n.nan: i\n1_000: j\n0o17: k\n+5: l\n", 1 },
	{ "-9223372036854775809: 1\n0.1: 2\n1e-7: 3\n123456789: 4\n3.4e39: 5\n", 1 },
	{ "'1': a\n\"true\": b\n'~': c\n\"\": d\n'': e\n", 1 }, { "yes: 1\nNo: 2\noff: 3\nY: 4\n", 1 },
	{ "a: 1\nb: 2\na: 3\n", 1 }, { "b: 1\na: 2\nc: 3\na: 4\nb: 5\n", 1 }, { "k: 1\nk: \n", 1 },
	/* conversion: merge keys */
	{ "<<: {a: 1, b: 2}\nb: 3\n", 1 }, { "<<:\n  - a: 1\n  - a: 2\n    c: 3\nd: 4\n", 1 },
	{ "<<: 5\na: 1\n", 1 }, { "'<<': 1\n", 1 }, { "<<: {a: 1}\n<<: {b: 2}\n", 1 },
	{ "x:\n  <<:\n    p: 1\n    q: 2\n  q: 3\n", 1 }, { "- <<: {a: 1}\n  a: 2\n", 1 }, { "<<: ~\n", 1 },
	/* conversion: scalars */
	{ "a: 9223372036854775807\nb: 9223372036854775808\nc: -9223372036854775808\nd: 0x10\ne: 010\nf: 1_0\n"
	  "g: 0b11\nh: +12\ni: -0\nj: 123456789012345678\nk: 1234567890123456789\nl: 00\nm: 0\n", 1 },
	{ "n: 1.0\no: 1e5\np: -.5\nq: 1.\nr: .e1\ns: 1e400\nt: -1e400\nu: +.5\nv: 1_000.5\nw: 0x1p3\nx: 1e+3\n", 1 },
	{ "a: 123456789012345678901234567890\nb: 0x8000000000000000\nc: -0x10\nd: 0o\ne: 0x\nf: 08\ng: -x\n", 1 },
	{ "a: yes\nb: No\nc: ON\nd: off\ne: y\nf: N\ng: True\nh: FALSE\ni: yES\nj: truex\nk: onn\n", 1 },
	{ "a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: nULL\ng: '~'\nh: \"null\"\n", 1 },
	{ "a: 2024-01-01\nb: 1.2.3\nc: 12abc\nd: +\ne: .\nf: -.\ng: 1e\nh: .5.\ni: +-1\nj: 1:20\n", 1 },
	{ "a: \"1\"\nb: '2.5'\nc: |\n  3\nd: >\n  true\n", 1 }, { "5\n", 1 }, { "'x'\n", 1 }, { "true\n", 1 },
	{ ".nan\n", 1 }, { "~\n", 1 }, { "- 1\n- -2\n- 3.5\n- x\n- \n- [1, a]\n", 1 },
	{ NULL, 0 },
};

static void test_cases(void)
{
	for (size_t i = 0; cases[i].text; i++) {
		char name[64];
		snprintf(name, sizeof(name), "case %zu", i);
		int r = diff_one(name, cases[i].text, strlen(cases[i].text));
		int h = check_cv_same(name, cases[i].text, strlen(cases[i].text));
		/* the converter takes exactly what the parser takes */
		check(h == (r == 1));
		if (r == 0 && cases[i].must) {
			char msg[300];
			snprintf(msg, sizeof(msg), "case %zu must be handled: \"%.200s\"", i, cases[i].text);
			testlib_fail(__FILE__, __LINE__, msg);
		}
	}
	/* a 1000-byte key is fine, a 1100-byte one is not simple any more */
	struct buf b = BUF_INIT;
	for (int i = 0; i < 1100; i++)
		buf_putc(&b, 'k');
	buf_puts(&b, ": v\n");
	check(diff_one("long key", b.data, b.len) >= 0);
	check_cv_same("long key", b.data, b.len);
	buf_free(&b);
	/* deep nesting bails cleanly */
	for (int i = 0; i < 300; i++) {
		for (int j = 0; j < i; j++)
			buf_putc(&b, ' ');
		buf_puts(&b, "k:\n");
	}
	check(diff_one("deep", b.data, b.len) == 0);
	check_cv_same("deep", b.data, b.len);
	buf_free(&b);
	/* the input length is respected (no NUL terminator needed) */
	check(diff_one("length", "a: 1\nb: 2", 7) == 1);
	check(check_cv_same("length", "a: 1\nb: 2", 7) == 1);
}

static void test_stats(void)
{
	size_t h0, b0, h1, b1;
	struct yamlfast_doc d;
	yamlfast_stats(&h0, &b0);
	check(yamlfast_load("a: 1\n", 5, &d) == 0);
	yamlfast_free(&d);
	check(yamlfast_load("a: &x 1\n", 8, &d) != 0);
	yamlfast_set_disabled(1);
	check(yamlfast_load("a: 1\n", 5, &d) != 0);
	yamlfast_set_disabled(0);
	yamlfast_stats(&h1, &b1);
	check(h1 == h0 + 1);
	check(b1 == b0 + 2);
}

/* ---------------------------------------------------------------- real files */

static int nfiles;

static void check_file(const char *name, const char *text, size_t len)
{
	nfiles++;
	int r = diff_one(name, text, len);
	if (r == 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "%s: the fast path must handle it", name);
		testlib_fail(__FILE__, __LINE__, msg);
	}
	check(check_cv_same(name, text, len) == 1);
}

static void test_chart_values(void)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/charts", shared_dir());
	DIR *d = opendir(dir);
	if (!d) {
		testlib_fail(__FILE__, __LINE__, "no charts directory");
		return;
	}
	struct dirent *de;
	int ncharts = 0;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".tgz"))
			continue;
		char path[1024], err[512];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		size_t len;
		char *data = read_file_all(path, &len);
		struct archive ar;
		if (!data || archive_read_tgz(data, len, &ar, err, sizeof(err))) {
			testlib_fail(__FILE__, __LINE__, path);
			free(data);
			continue;
		}
		int found = 0;
		for (size_t i = 0; i < ar.n; i++) {
			if (strcmp(ar.e[i].name, "values.yaml") && strcmp(ar.e[i].name, "Chart.yaml"))
				continue;
			found++;
			char name[1100];
			snprintf(name, sizeof(name), "%s:%s", path, ar.e[i].name);
			check_file(name, ar.e[i].data, ar.e[i].len);
		}
		check(found == 2);
		ncharts++;
		archive_free(&ar);
		free(data);
	}
	closedir(d);
	check(ncharts >= 4);
}

static void walk_goldens(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			walk_goldens(path);
			continue;
		}
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".yaml") || !strstr(de->d_name, "values"))
			continue;
		size_t len;
		char *data = read_file_all(path, &len);
		if (!data) {
			testlib_fail(__FILE__, __LINE__, path);
			continue;
		}
		check_file(path, data, len);
		free(data);
	}
	closedir(d);
}

static void test_golden_values(void)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/goldens", shared_dir());
	int before = nfiles;
	walk_goldens(dir);
	check(nfiles - before >= 3);
}

static void test_rendered(void)
{
	char path[1024], err[1024];
	const char *g = "tke-1.18.3";
	json_t *layers[2] = { NULL, NULL };
	const char *files[2] = { "values.yaml", "image-values.yaml" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/goldens/%s/%s", shared_dir(), g, files[i]);
		size_t len;
		char *data = read_file_all(path, &len);
		check(data != NULL);
		if (!data)
			goto out;
		layers[i] = chart_values_parse(data, len, err, sizeof(err));
		free(data);
		check(layers[i] != NULL);
		if (!layers[i])
			goto out;
	}
	const char *sets[] = { "hubble.enabled=false", NULL };
	json_t *user = chart_values_merge((const json_t *const *)layers, 2, sets, NULL, NULL, err, sizeof(err));
	check(user != NULL);
	snprintf(path, sizeof(path), "%s/charts/cilium-1.18.3.tgz", shared_dir());
	struct chart *c = chart_load(path, err, sizeof(err));
	check(c != NULL);
	if (!user || !c) {
		json_decref(user);
		chart_free(c);
		goto out;
	}
	struct chart_render_opts o = { 0 };
	o.release_name = "cilium";
	o.namespace_ = "kube-system";
	o.kube_version = "v1.32.2";
	size_t h0, b0, h1, b1;
	yamlfast_stats(&h0, &b0);
	struct chart_render *r = chart_render(c, user, &o, err, sizeof(err));
	yamlfast_stats(&h1, &b1);
	check(r != NULL);
	if (r) {
		/* every YAML text read while rendering went through the fast path */
		check(h1 - h0 >= 15);
		if (b1 != b0) {
			char msg[200];
			snprintf(msg, sizeof(msg), "%zu of %zu YAML reads fell back to libyaml", b1 - b0,
				 (b1 - b0) + (h1 - h0));
			testlib_fail(__FILE__, __LINE__, msg);
		}
		const json_t *docs = chart_render_documents(r);
		size_t i, ndocs = 0;
		json_t *d;
		json_array_foreach(docs, i, d) {
			const char *y = json_string_value(json_object_get(d, "yaml"));
			const char *src = json_string_value(json_object_get(d, "source"));
			if (!y)
				continue;
			ndocs++;
			char name[300];
			snprintf(name, sizeof(name), "rendered %s #%zu", src ? src : "?", i);
			if (diff_one(name, y, strlen(y)) == 0) {
				char msg[400];
				snprintf(msg, sizeof(msg), "%s: the fast path must handle it", name);
				testlib_fail(__FILE__, __LINE__, msg);
			}
			check(check_cv_same(name, y, strlen(y)) == 1);
		}
		check(ndocs >= 15);
		chart_render_free(r);
	}
	json_decref(user);
	chart_free(c);
out:
	json_decref(layers[0]);
	json_decref(layers[1]);
}

int main(void)
{
	test_run("yamlfast_cases", test_cases);
	test_run("yamlfast_stats", test_stats);
	test_run("yamlfast_chart_values", test_chart_values);
	test_run("yamlfast_golden_values", test_golden_values);
	test_run("yamlfast_rendered_docs", test_rendered);
	return test_summary();
}

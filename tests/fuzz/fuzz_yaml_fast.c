/*
 * fuzz_yaml_fast: differential target for the fast YAML reader, at two
 * levels; any difference calls abort(). The parser: whenever
 * yamlfast_load() handles an input, libyaml must load it too and produce
 * the same document (types, styles, tags, values). The conversion: yaml.c
 * builds chart values straight from yamlfast's events, so cv_from_yaml()
 * and cv_from_yaml_doc() must give the same result code, error message and
 * values (kinds, Go types, float bits, strings, keys in order) with the fast
 * path on and off. Inputs the fast path declines are fine.
 */
#include "server/chart/cv.h"
#include "server/chart/yamlfast.h"
#include "tests/unit/cv_strict.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fuzz_name = "fuzz_yaml_fast";
const char *const fuzz_dictionary[] = {
	": ", "- ", "\n", "  ", "    ", "{", "}", "[", "]", ", ", "#", " # c", "|", "|-", "|+", ">", ">-", "\"", "'",
	"''", "\\n", "\\x41", "\\u00e9", "\\", "---\n", "...\n", "key: value\n", "- a: b\n  c: d\n", "a:\n- x\n",
	"\t", "\r", "&a ", "*a", "!x ", "? ", "\xc3\xa9", "\xe2\x80\xa8", "\xef\xbb\xbf", ":", "\n\n", "~", "null",
	"true", "yes", "off", ".nan", ".inf", "-.Inf", "<<: ", "0x1F", "0o17", "010", "1_000", "1e3", "-0", "2.5",
	"18446744073709551615", "9223372036854775807", NULL,
};

/* the converted values with the fast path on and off */
static void diff_cv(const uint8_t *data, size_t size, int ints)
{
	char e1[256] = "", e2[256] = "";
	struct cv_arena *a = cv_arena_new();
	cv v1 = cv_nil(), v2 = cv_nil();
	const char *t = (const char *)data;
	int r1 = ints ? cv_from_yaml_doc(a, t, size, &v1, 1, e1, sizeof(e1)) : cv_from_yaml(a, t, size, &v1, e1, sizeof(e1));
	yamlfast_set_disabled(1);
	int r2 = ints ? cv_from_yaml_doc(a, t, size, &v2, 1, e2, sizeof(e2)) : cv_from_yaml(a, t, size, &v2, e2, sizeof(e2));
	yamlfast_set_disabled(0);
	if (r1 != r2 || (r1 && strcmp(e1, e2)) || (!r1 && !cv_strict_equal(v1, v2, NULL, 0))) {
		fprintf(stderr, "fuzz_yaml_fast: values differ (ints %d): fast %d \"%s\", libyaml %d \"%s\"\n", ints, r1, e1, r2,
			e2);
		abort();
	}
	cv_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct yamlfast_doc fd;
	yaml_document_t ld;
	if (yamlfast_load((const char *)data, size, &fd) != 0)
		return 0;
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, data, size);
	if (!yaml_parser_load(&parser, &ld)) {
		fprintf(stderr, "fuzz_yaml_fast: fast path accepted what libyaml rejects: line %lu: %s\n",
			(unsigned long)parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
		abort();
	}
	char why[512];
	if (!yamlfast_doc_equal(&fd.doc, &ld, why, sizeof(why))) {
		fprintf(stderr, "fuzz_yaml_fast: documents differ: %s\n", why);
		abort();
	}
	yaml_document_delete(&ld);
	yaml_parser_delete(&parser);
	yamlfast_free(&fd);
	diff_cv(data, size, 0);
	diff_cv(data, size, 1);
	return 0;
}

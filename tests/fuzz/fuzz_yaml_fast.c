/*
 * fuzz_yaml_fast: differential target for the fast YAML reader. Whenever
 * yamlfast_load() handles an input, libyaml must load it too and produce the
 * same document (types, styles, tags, values); otherwise abort(). Inputs the
 * fast path declines are fine. The Helm-typed conversion is then run on the
 * fast document's text as well (cv_from_yaml), for the sanitizers.
 */
#include "server/chart/cv.h"
#include "server/chart/yamlfast.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fuzz_name = "fuzz_yaml_fast";
const char *const fuzz_dictionary[] = {
	": ", "- ", "\n", "  ", "    ", "{", "}", "[", "]", ", ", "#", " # c", "|", "|-", "|+", ">", ">-", "\"", "'",
	"''", "\\n", "\\x41", "\\u00e9", "\\", "---\n", "...\n", "key: value\n", "- a: b\n  c: d\n", "a:\n- x\n",
	"\t", "\r", "&a ", "*a", "!x ", "? ", "\xc3\xa9", "\xe2\x80\xa8", "\xef\xbb\xbf", ":", "\n\n", NULL,
};

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
	char err[256];
	struct cv_arena *a = cv_arena_new();
	cv v;
	cv_from_yaml_doc(a, (const char *)data, size, &v, 1, err, sizeof(err));
	cv_arena_free(a);
	return 0;
}

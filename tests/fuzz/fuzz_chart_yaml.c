/*
 * fuzz_chart_yaml: the chart engine's YAML reader (Helm typing) and the
 * values parser, then toYaml/toJson of whatever was read.
 */
#include "server/chart/chart.h"
#include "server/chart/cv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *fuzz_name = "fuzz_chart_yaml";
const char *const fuzz_dictionary[] = {
	": ", "- ", "\n", "  ", "{", "}", "[", "]", ",", "&a ", "*a", "<<: ", "!!str ", "|", "|-", ">", "\"", "'",
	"yes", "no", "~", "null", "0x1F", "017", "1e3", ".inf", "2024-01-01", "#", "---\n", "...\n", "? ", NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct cv_arena *a = cv_arena_new();
	cv v;
	if (cv_from_yaml(a, (const char *)data, size, &v, err, sizeof(err)) == 0) {
		struct buf b = BUF_INIT;
		cv_to_yaml(&b, v);
		/* what toYaml prints must read back */
		cv back;
		if (b.len && cv_from_yaml(a, b.data, b.len, &back, err, sizeof(err)))
			abort();
		buf_reset(&b);
		cv_to_json(&b, v, 1, 0);
		buf_reset(&b);
		cv_fmt_v(&b, v);
		buf_free(&b);
		json_t *j = cv_to_jansson(v);
		json_decref(j);
	}
	cv doc;
	cv_from_yaml_doc(a, (const char *)data, size, &doc, 1, err, sizeof(err));
	json_t *vals = chart_values_parse((const char *)data, size, err, sizeof(err));
	json_decref(vals);
	cv_arena_free(a);
	return 0;
}

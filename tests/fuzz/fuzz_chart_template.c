/*
 * fuzz_chart_template: parse and execute arbitrary template text against a
 * small chart (server/chart). Execution is bounded by a step budget.
 */
#include "server/chart/chart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *fuzz_name = "fuzz_chart_template";
const char *const fuzz_dictionary[] = {
	"{{", "}}", "{{-", "-}}", " ", "|", "(", ")", "$x", ":=", "=", ".Values", ".Values.a", ".Files",
	"{{ end }}", "{{ else }}", "{{ if ", "{{ range ", "{{ with ", "define \"d\"", "template \"d\"", "include \"d\" .",
	"tpl", "toYaml", "toJson", "fromYaml", "nindent 2", "quote", "printf \"%v\"", "index", "dict", "list",
	"default", "eq", "and", "or", "not", "len", "semverCompare", "regexReplaceAll", "split", "/*", "*/",
	"\"", "`", "'", "1.5", "0x1F", "nil", "true", "break", "continue", "$", ",", ".", NULL,
};

static struct chart *C;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	if (!C) {
		const char *names[] = { "Chart.yaml", "values.yaml", "templates/_h.tpl", "files/f.txt" };
		const char *contents[] = { "name: f\nversion: 1.0.0\n", "a: {b: [1, x, null]}\ns: str\nn: 1.5\n",
					   "{{ define \"d\" }}[{{ . }}]{{ end }}", "file" };
		C = chart_load_files(names, contents, 4, err, sizeof(err));
		if (!C)
			abort();
	}
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	struct chart_render_opts o = { 0 };
	o.max_steps = 20000;
	o.max_output = 1 << 20;
	char *out = NULL;
	chart_render_template(C, text, NULL, &o, &out, err, sizeof(err));
	free(out);
	free(text);
	return 0;
}

/* Unit tests for server/common: buf and yamljson. */
#include "server/common/buf.h"
#include "server/common/yamljson.h"
#include "tests/unit/testlib.h"

#include <stdlib.h>

static void test_buf_grows(void)
{
	struct buf b = BUF_INIT;
	check_str(buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	check(b.len > 3000);
	check(!strncmp(b.data, "0,1,2,", 6));
	char *s = buf_steal(&b);
	check(b.data == NULL && b.len == 0);
	free(s);
}

static void test_yaml_scalars_typed(void)
{
	const char *y = "a: 1\nb: 1.5\nc: true\nd: ~\ne: \"1\"\nf: hello\ng: 0x10\nh: yes\n";
	char err[256];
	json_t *v = yaml_to_json(y, strlen(y), err, sizeof(err));
	check(v != NULL);
	if (!v)
		return;
	check(json_integer_value(json_object_get(v, "a")) == 1);
	check(json_is_real(json_object_get(v, "b")));
	check(json_is_true(json_object_get(v, "c")));
	check(json_is_null(json_object_get(v, "d")));
	check_str(json_string_value(json_object_get(v, "e")), "1");
	check_str(json_string_value(json_object_get(v, "f")), "hello");
	check(json_integer_value(json_object_get(v, "g")) == 16);
	check_str(json_string_value(json_object_get(v, "h")), "yes");
	json_decref(v);
}

static void test_yaml_errors_have_position(void)
{
	const char *y = "a: [1, 2\nb: c\n";
	char err[256];
	json_t *v = yaml_to_json(y, strlen(y), err, sizeof(err));
	check(v == NULL);
	check(strstr(err, "line ") != NULL);
}

static void test_yaml_alias_bomb_refused(void)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "a: &a [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 0; i < 8; i++)
		buf_printf(&b, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n",
			   'b' + i, 'b' + i, 'a' + i, 'a' + i, 'a' + i, 'a' + i, 'a' + i,
			   'a' + i, 'a' + i, 'a' + i, 'a' + i, 'a' + i);
	char err[256];
	json_t *v = yaml_to_json(b.data, b.len, err, sizeof(err));
	check(v == NULL);
	check(strstr(err, "alias") != NULL);
	json_decref(v);
	buf_free(&b);
}

static void test_yaml_stream_and_roundtrip(void)
{
	const char *y = "---\n# only a comment\n---\nkind: A\nlist:\n- name: x\n  v: [1, 2]\n- plain\n"
			"empty: {}\nstr: \"true\"\n---\nkind: B\n";
	char err[256];
	json_t *docs = yaml_stream_to_json(y, strlen(y), err, sizeof(err));
	check(docs && json_array_size(docs) == 2);
	if (!docs)
		return;
	json_t *a = json_array_get(docs, 0);
	char *out = json_to_yaml(a);
	json_t *back = yaml_to_json(out, strlen(out), err, sizeof(err));
	check(back && json_equal(a, back));
	free(out);
	json_decref(back);
	json_decref(docs);
}

int main(void)
{
	test_run("buf grows and steals", test_buf_grows);
	test_run("yaml scalars are typed as Kubernetes does", test_yaml_scalars_typed);
	test_run("yaml errors carry a position", test_yaml_errors_have_position);
	test_run("yaml alias bombs are refused", test_yaml_alias_bomb_refused);
	test_run("yaml streams and emitter round trip", test_yaml_stream_and_roundtrip);
	return test_summary();
}

/*
 * test_chart: unit tests of the chart engine (server/chart).
 *
 * Most tests render a template snippet against a small in-memory chart whose
 * values exercise Helm's typing (float64 numbers, nulls, YAML 1.1 booleans)
 * and compare the raw output with what Helm 3 / Go text/template produce
 * (the expected strings come from shared/reference/go-template.md and were
 * cross-checked with helmref). "ERR:" expectations require an error whose
 * message contains the rest of the string.
 */
#include "server/chart/chart.h"
#include "server/chart/archive.h"
#include "server/chart/cv.h"
#include "server/chart/helmignore.h"
#include "tests/unit/cv_strict.h"
#include "tests/unit/testlib.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *values_yaml =
	"one: 1\n"
	"big: 1000000\n"
	"num: 8080\n"
	"f: false\n"
	"t: true\n"
	"s: hello\n"
	"list: [a, b, c]\n"
	"nul: null\n"
	"emptymap: {}\n"
	"nested:\n  a:\n    b: 1\n"
	"m: {a: 1, b: 2, c: {x: true}}\n"
	"mixed: [a, null, 1.5, 1000000, true, [], {}]\n"
	"yes11: yes\n"
	"octal: 017\n"
	"date: 2024-01-01\n"
	"host: \"https://h:6443\"\n"
	"ver: v1.30.2-rc.1+b\n";

static const char *helpers_tpl =
	"{{- define \"x\" }}[{{ $ }}]{{ end -}}\n"
	"{{- define \"blk\" }}BLK{{ end -}}\n"
	"{{- define \"rec\" }}{{ include \"rec\" . }}{{ end -}}\n";

static struct chart *test_chart(void)
{
	const char *names[] = { "Chart.yaml", "values.yaml", "templates/_helpers.tpl", "files/a.txt", "files/b.conf",
				"files/sub/c.txt" };
	const char *contents[] = { "apiVersion: v2\nname: tchart\nversion: 1.2.3\nappVersion: \"1.0\"\n", values_yaml,
				   helpers_tpl, "A\nB\n", "conf", "C" };
	char err[512];
	struct chart *c = chart_load_files(names, contents, 6, err, sizeof(err));
	if (!c)
		printf("chart_load_files: %s\n", err);
	return c;
}

static struct chart *C;

/* render snippet; returns malloc'd output or "ERR:<message>" */
static char *render(const char *tpl, const json_t *user)
{
	char err[4096];
	char *out = NULL;
	struct chart_render_opts o = { 0 };
	o.release_name = "rel";
	o.namespace_ = "ns";
	o.kube_version = "v1.30.0-tke.5";
	if (chart_render_template(C, tpl, user, &o, &out, err, sizeof(err))) {
		size_t n = strlen(err) + 5;
		out = malloc(n);
		snprintf(out, n, "ERR:%s", err);
	}
	return out;
}

static int expect(const char *tpl, const char *want)
{
	char *got = render(tpl, NULL);
	int ok;
	if (!strncmp(want, "ERR:", 4))
		ok = !strncmp(got, "ERR:", 4) && strstr(got, want + 4);
	else
		ok = !strcmp(got, want);
	if (!ok) {
		char msg[3000];
		snprintf(msg, sizeof(msg), "template %.300s: got \"%.1000s\", want \"%.1000s\"", tpl, got, want);
		testlib_fail(__FILE__, __LINE__, msg);
	}
	free(got);
	return ok;
}

struct tcase { const char *tpl, *want; };

static void run_cases(const struct tcase *cs)
{
	for (; cs->tpl; cs++)
		expect(cs->tpl, cs->want);
}

/* ---------------------------------------------------------------- lexer */

static const struct tcase lexer_cases[] = {
	{ "a\f\v \n{{- \"x\" -}}\xc2\xa0\n b", "a\f\vx\xc2\xa0\n b" },
	{ "B:  {{- \"x\" -}}  \n  C", "B:xC" },
	{ "a {{- /* c */}} b", "a b" },
	{ "a {{/* multi\nline */}}b", "a b" },
	{ "{{ /* c */ }}", "ERR:unexpected \"/\"" },
	{ "{{-3}}", "-3" },
	{ "{{3-}}", "ERR:bad number syntax: \"3-\"" },
	{ "{{ \"a\\x41\\u00e9\\101\\\"\" }}", "aA\xc3\xa9" "A\"" },
	{ "{{ `a\\x41` }}", "a\\x41" },
	{ "{{ 'a' }}", "97" },
	{ "{{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }} {{ 1e3 }} {{ 0x1p-2 }}", "31 15 15 5 1000 1000 0.25" },
	{ "{{ typeOf 1 }} {{ typeOf 1.0 }} {{ typeOf 'a' }}", "int float64 int" },
	{ "{{ indent 2.0 \"x\" }}", "  x" },
	{ "{{ indent 2.5 \"x\" }}", "ERR:expected integer; found 2.5" },
	{ "{{ b64enc 5 }}", "ERR:expected string; found 5" },
	{ "{{ if or\n (hasKey .Values \"one\")\n (hasKey .Values \"zz\") -}}\nyes{{ end }}", "yes" },
	{ "{{ \"unterminated }}", "ERR:unterminated" },
	{ "{{ nosuchfunc 1 }}", "ERR:function \"nosuchfunc\" not defined" },
	{ "{{ if true }}x", "ERR:unexpected EOF" },
	{ "{{ end }}", "ERR:unexpected {{end}}" },
	{ NULL, NULL },
};

/* ---------------------------------------------------------------- parser & exec */

static const struct tcase exec_cases[] = {
	{ "{{ \"x\" | printf \"%s-%s\" \"a\" }}", "a-x" },
	{ "{{ (split \":\" \"host:443\")._1 }}", "443" },
	{ "{{ (semver \"1.2\").Minor }}", "2" },
	{ "{{ $u = 1 }}", "ERR:undefined variable" },
	{ "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2" },
	{ "{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ end }}{{ $x }}", "1" },
	{ "{{ $l := list }}{{ range .Values.list }}{{ $l = append $l . }}{{ end }}{{ $l }}", "[a b c]" },
	{ "{{ define \"y\" }}[{{ $ }}]{{ end }}{{ template \"y\" \"arg\" }}{{ include \"y\" 5 }}", "[arg][5]" },
	{ "{{ with .Values.emptymap }}x{{ else }}{{ . | len }}{{ end }}", "7" },
	{ "{{ range $i, $v := .Values.list }}{{ $i }}:{{ $v }},{{ end }}", "0:a,1:b,2:c," },
	{ "{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}", "a=1;b=2;c=map[x:true];" },
	{ "{{ range $v := .Values.m }}{{ $v }};{{ end }}", "1;2;map[x:true];" },
	{ "{{ range .Values.nul }}x{{ else }}empty{{ end }}", "empty" },
	{ "{{ range .Values.s }}x{{ end }}", "ERR:range can't iterate over hello" },
	{ "{{ range .Values.list }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}", "a" },
	{ "{{ range .Values.list }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}", "ac" },
	{ "{{ .x | template \"y\" }}", "ERR:unexpected <template>" },
	{ "{{ define \"h\" }}Hello {{ . }}!{{ end }}{{ template \"h\" }}", "Hello !" },
	{ "{{ block \"blk2\" .Values.s }}default:{{ . }}{{ end }}", "default:hello" },
	{ "{{ if eq .Values.one 2.0 }}a{{ else if eq .Values.one 1.0 }}b{{ else }}c{{ end }}", "b" },
	{ "{{ .Values.missing }}|{{ .Values.nul }}|{{ .Values.nested.a.zz }}", "||" },
	{ "{{ .Values.missing.sub }}", "ERR:nil pointer evaluating interface {}.sub" },
	{ "{{ .Values.nul.x }}", "ERR:nil pointer evaluating interface {}.x" },
	{ "{{ if .Values.missing.x }}{{ end }}", "ERR:nil pointer evaluating interface {}.x" },
	{ "{{ .Values.s.foo }}", "ERR:can't evaluate field foo" },
	{ "{{ $x := .Values.missing }}{{ $x.sub.deeper }}", "" },
	{ "{{ (.Values.missing).x.y }}", "" },
	{ "{{ and 1 2 }} {{ and 0 2 }} {{ or 0 \"\" \"x\" 5 }} [{{ or 0 \"\" }}]", "2 0 x []" },
	{ "{{ and .Values.s .Values.list }}", "[a b c]" },
	{ "{{ or true (fail \"boom\") }}", "true" },
	{ "{{ eq .Values.s \"a\" \"b\" \"hello\" }}", "true" },
	{ "{{ eq .Values.one 1 }}", "ERR:incompatible types for comparison" },
	{ "{{ eq 1 1.0 }}", "ERR:incompatible types for comparison" },
	{ "{{ lt 1 2.5 }}", "ERR:incompatible types for comparison" },
	{ "{{ eq \"1\" 1 }}", "ERR:incompatible types for comparison" },
	{ "{{ eq .Values.t \"true\" }}", "ERR:incompatible types for comparison" },
	{ "{{ eq 1 (int64 1) }}", "true" },
	{ "{{ eq .Values.missing \"x\" }} {{ eq nil nil }}", "false true" },
	{ "{{ eq .Values.list .Values.list }}", "ERR:non-comparable" },
	{ "{{ lt .Values.missing 1 }}", "ERR:invalid type for comparison" },
	{ "{{ lt \"a\" \"b\" }} {{ gt 2 1 }} {{ le 2 2 }} {{ ge 1 2 }} {{ ne 1 2 }}", "true true true false true" },
	{ "{{ not 0 }} {{ not \"0\" }} {{ not .Values.emptymap }}", "true false true" },
	{ "{{ .Values.m }}", "map[a:1 b:2 c:map[x:true]]" },
	{ "{{ .Values.list }} {{ .Values.mixed }}", "[a b c] [a <nil> 1.5 1e+06 true [] map[]]" },
	{ "{{ .Values.big }} {{ 999999.0 }} {{ 1234567.0 }} {{ 123456.7 }} {{ 0.0001 }} {{ 0.00001 }}",
	  "1e+06 999999 1.234567e+06 123456.7 0.0001 1e-05" },
	{ "{{ printf \"%d\" .Values.one }}", "%!d(float64=1)" },
	{ "{{ printf \"%d\" 1.5 }}|{{ printf \"%s\" 1 }}|{{ printf \"%s\" true }}|{{ printf \"%v\" nil }}|{{ printf \"%s\" nil }}",
	  "%!d(float64=1.5)|%!s(int=1)|%!s(bool=true)|<nil>|%!s(<nil>)" },
	{ "{{ printf \"%q\" .Values.list }}", "[\"a\" \"b\" \"c\"]" },
	{ "{{ printf \"%s-%s\" \"a\" }}|{{ printf \"%s\" \"a\" \"b\" }}", "a-%!s(MISSING)|a%!(EXTRA string=b)" },
	{ "{{ printf \"%05.1f|%x|%-4d|%+d|%t|%c|%T\" 3.14159 255 7 3 true 65 .Values.one }}", "003.1|ff|7   |+3|true|A|float64" },
	{ "{{ printf \"%d\" (int .Values.num) }} {{ printf \"%v\" .Values.num }} {{ printf \"%.0f\" .Values.num }}", "8080 8080 8080" },
	{ "{{ print 1 2 }}|{{ print 1 \"a\" 2 }}|{{ print \"a\" \"b\" }}|{{ print nil 1 }}", "1 2|1a2|ab|<nil> 1" },
	{ "{{ len .Values.s }} {{ len .Values.list }} {{ len .Values.m }}", "5 3 3" },
	{ "{{ len .Values.missing }}", "ERR:len of" },
	{ "{{ index .Values.list 1 }} {{ index .Values.m \"c\" \"x\" }} [{{ index .Values.m \"zz\" }}]", "b true []" },
	{ "{{ index .Values.list 5 }}", "ERR:index out of range: 5" },
	{ "{{ .Values.AsMap.one }} {{ hasKey .Values \"one\" }}", "1 true" },
	{ "{{ .Release.Name }} {{ .Release.Namespace }} {{ .Release.IsInstall }} {{ .Release.IsUpgrade }} {{ .Release.Revision }} {{ .Release.Service }}",
	  "rel ns true false 1 Helm" },
	{ "{{ .Chart.Name }}-{{ .Chart.Version }} {{ .Chart.AppVersion }} {{ .Chart.IsRoot }}", "tchart-1.2.3 1.0 true" },
	{ "{{ .Template.Name }} {{ .Template.BasePath }}", "tchart/templates/_inline tchart/templates" },
	{ "{{ .Capabilities.KubeVersion.Version }} {{ .Capabilities.KubeVersion.Major }} {{ .Capabilities.KubeVersion.Minor }} {{ .Capabilities.KubeVersion.GitVersion }}",
	  "v1.30.0 1 30 v1.30.0" },
	{ "{{ .Capabilities.APIVersions.Has \"apps/v1\" }} {{ .Capabilities.APIVersions.Has \"nope/v1\" }}", "true false" },
	{ "{{ .Files.Get \"files/a.txt\" }}|{{ .Files.Get \"nope\" }}|", "A\nB\n||" },
	{ "{{ range $p, $_ := .Files.Glob \"files/*\" }}{{ $p }},{{ end }}", "files/a.txt,files/b.conf," },
	{ "{{ range $p, $_ := .Files.Glob \"files/**\" }}{{ $p }},{{ end }}", "files/a.txt,files/b.conf,files/sub/c.txt," },
	{ "{{ range $p, $_ := .Files.Glob \"files/{a,b}.*\" }}{{ $p }},{{ end }}", "files/a.txt,files/b.conf," },
	{ "{{ (.Files.Glob \"files/*.txt\").AsConfig }}", "a.txt: |\n  A\n  B" },
	{ "{{ (.Files.Glob \"files/b.conf\").AsSecrets }}", "b.conf: Y29uZg==" },
	{ "{{ range .Files.Lines \"files/a.txt\" }}[{{ . }}]{{ end }}", "[A][B]" },
	{ "{{ include \"x\" 5 }}", "[5]" },
	{ "{{ include \"nope\" . }}", "ERR:no template \"nope\" associated with template \"gotpl\"" },
	{ "{{ template \"nope\" . }}", "ERR:template \"nope\" not defined" },
	{ "{{ include \"rec\" . }}", "ERR:rendering template has a nested reference name: rec" },
	{ "{{ tpl \"{{ define \\\"t2\\\" }}T2{{ end }}{{ include \\\"t2\\\" . }}-{{ .Values.num }}\" . }}", "T2-8080" },
	{ "{{ tpl \"{{ .Values.missing }}x\" . }}", "x" },
	{ "{{ tpl \"{{ $ }}\" \"data\" }}", "data" },
	{ "{{ tpl \"{{ .x\" . }}", "ERR:error during tpl function execution" },
	{ "{{ required \"value foo is required!\" .Values.foo }}", "ERR:execution error at (tchart/templates/_inline:1:3): value foo is required!" },
	{ "{{ required \"m\" \"\" }}", "ERR:execution error" },
	{ "{{ required \"m\" 0 }}|{{ required \"m\" false }}", "0|false" },
	{ "{{ fail \"boom\" }}", "ERR:execution error at (tchart/templates/_inline:1:3): boom" },
	{ "{{ lookup \"v1\" \"Secret\" \"ns\" \"x\" }}|{{ if lookup \"v1\" \"Secret\" \"ns\" \"x\" }}y{{ end }}", "map[]|" },
	{ "{{ $_ := set .Values \"newkey\" 5 }}{{ .Values.newkey }}", "5" },
	{ "{{ $_ := unset .Values \"one\" }}{{ hasKey .Values \"one\" }}", "false" },
	{ NULL, NULL },
};

/* ---------------------------------------------------------------- functions */

static const struct tcase func_cases[] = {
	/* logic */
	{ "{{ default \"d\" \"\" }} {{ default \"d\" 0 }} {{ default \"d\" false }} {{ default \"d\" .Values.nul }} {{ default \"d\" list }} {{ default \"d\" dict }} {{ default \"d\" \"x\" }}",
	  "d d d d d d x" },
	{ "{{ .Values.f | default true }}", "true" },
	{ "{{ empty \"0\" }} {{ empty 0 }} {{ empty .Values.emptymap }}", "false true true" },
	{ "{{ coalesce \"\" 0 nil \"x\" }} [{{ coalesce \"\" 0 }}]", "x []" },
	{ "{{ ternary \"y\" \"n\" true }}{{ ternary \"y\" \"n\" false }}", "yn" },
	{ "{{ ternary \"y\" \"n\" .Values.one }}", "ERR:wrong type for value; expected bool; got float64" },
	/* strings */
	{ "[{{ quote nil }}] {{ quote 1.5 }} {{ quote .Values.big }} {{ quote .Values.list }} {{ quote \"a\" 1 }}",
	  "[] \"1.5\" \"1e+06\" \"[a b c]\" \"a\" \"1\"" },
	{ "{{ quote \"a\\\"b\\\\c\\n\" }} {{ quote \"\\u00e9\\t\" }} {{ quote \"\\x01\" }}", "\"a\\\"b\\\\c\\n\" \"\xc3\xa9\\t\" \"\\x01\"" },
	{ "{{ squote \"a'b\" }} {{ squote 1 }}", "'a'b' '1'" },
	{ "{{ toString 1.0 }} {{ toString .Values.big }} {{ toString true }} {{ toString .Values.mixed }} {{ toString nil }}",
	  "1 1e+06 true [a <nil> 1.5 1e+06 true [] map[]] <nil>" },
	{ "{{ nindent 2 \"a\\nb\\n\" | toJson }} {{ indent 2 \"a\\n\\nb\" | toJson }} {{ indent 3 \"\" | toJson }}",
	  "\"\\n  a\\n  b\\n  \" \"  a\\n  \\n  b\" \"   \"" },
	{ "{{ indent 2 .Values.one }}", "ERR:wrong type for value; expected string; got float64" },
	{ "{{ b64enc (int 1) }}", "ERR:got int" },
	{ "{{ .Values.missing | trim }}", "ERR:invalid value; expected string" },
	{ "[{{ trim \"  \\u00a0x y\\t\\n\" }}] {{ trimSuffix \"-\" \"abc--\" }} {{ trimPrefix \"v\" \"vv1\" }} {{ trimAll \"-\" \"--a-b--\" }}",
	  "[x y] abc- v1 a-b" },
	{ "{{ lower \"\\u00c9A\" }} {{ upper \"\\u00e9a\" }}", "\xc3\xa9" "a \xc3\x89" "A" },
	{ "{{ title \"hello wORLD foo-bar a_b 1st o'neil\" }}", "Hello WORLD Foo-Bar A_b 1st O'Neil" },
	{ "{{ replace \"a\" \"b\" \"banana\" }} {{ replace \"\" \"-\" \"abc\" }}", "bbnbnb -a-b-c-" },
	{ "{{ contains \"ell\" \"hello\" }} {{ hasPrefix \"he\" \"hello\" }} {{ hasSuffix \"lo\" \"hello\" }}", "true true true" },
	{ "{{ split \":\" \"a:b::c\" }} [{{ (split \":\" \"a\")._5 }}] {{ (split \"https://\" .Values.host)._1 }}",
	  "map[_0:a _1:b _2: _3:c] [] h:6443" },
	{ "{{ splitList \",\" \"a,b,,c\" }} {{ len (splitList \" \" \"\") }} {{ typeOf (splitList \",\" \"a\") }}", "[a b  c] 1 []string" },
	{ "{{ join \",\" (list 1 \"a\" 1.5 true nil) }}|{{ join \",\" nil }}|{{ join \"-\" .Values.list }}", "1,a,1.5,true||a-b-c" },
	{ "{{ trunc 3 \"abcdef\" }} {{ trunc -2 \"abcdef\" }} {{ trunc 2 \"\\u00e9\\u00e8\" }} {{ trunc 10 \"ab\" }}", "abc ef \xc3\xa9 ab" },
	{ "{{ cat \"a\" 1 nil \"b\" }}", "a 1 b" },
	{ "{{ base \"a/b/\" }} {{ base \"\" }} {{ dir \"sock\" }} {{ dir \"/a//x/../y\" }} {{ base \"/a/b.txt\" }} {{ ext \"x/a.tar.gz\" }}",
	  "b . . /a b.txt .gz" },
	{ "{{ b64enc \"hello\" }} {{ b64dec \"aGVsbG8=\" }} {{ sha256sum \"hello\" }}",
	  "aGVsbG8= hello 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" },
	{ "{{ regexMatch \"b\" \"abc\" }} {{ regexMatch \"^([a-z0-9][-a-z0-9]*)?[a-z0-9]$\" \"my-name\" }} {{ regexMatch \"^([a-z0-9][-a-z0-9]*)?[a-z0-9]$\" \"-bad\" }} {{ regexMatch \"(\" \"x\" }}",
	  "true true false false" },
	{ "{{ mustRegexMatch \"(\" \"x\" }}", "ERR:mustRegexMatch" },
	{ "{{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"$1W\" }} {{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"${1}W\" }}", "--- -W-xxW-" },
	{ "{{ regexReplaceAll \"(^.*/)(.*)\\\\.json$\" \"dir/sub/file.json\" \"${2}\" }} {{ regexReplaceAll \"@.*$\" \"user@host\" \"\" }}", "file user" },
	{ "{{ repeat 3 \"ab\" }} {{ substr 1 3 \"hello\" }} {{ nospace \"a b\\tc\" }}", "ababab el abc" },
	{ "{{ regexSplit \"a+\" \"xaayazaaa\" -1 }} {{ regexSplit \"x*\" \"abc\" -1 }} {{ regexSplit \",\" \"a,b,c,d\" 3 }} {{ len (regexSplit \",\" \"\" -1) }}",
	  "[x y z ] [a b c] [a b c,d] 1" },
	{ "{{ snakecase \"HelloWorld fooBar-baz\" }} {{ kebabcase \"HelloWorld\" }} {{ camelcase \"hello_world-foo bar\" }} {{ swapcase \"Hi\" }} {{ initials \"hello big World\" }} {{ abbrev 8 \"hello world\" }}",
	  "hello_world_foo_bar_baz hello-world HelloWorldFooBar hI hbW hello..." },
	{ "{{ toStrings (list 1 \"a\" nil 1.5) }} {{ b32enc \"hello\" }} {{ regexQuoteMeta \"a.b*\" }} {{ plural \"one\" \"many\" 2 }}", "[1 a 1.5] NBSWY3DP a\\.b\\* many" },
	/* numbers */
	{ "{{ int 4.7 }} {{ int -4.7 }} {{ int .Values.missing }} {{ int true }}", "4 -4 0 1" },
	{ "{{ int \"4.0\" }} {{ int \"4.7\" }} {{ int \"0x1F\" }} {{ int \"012\" }} {{ int64 \"08\" }} {{ int \" 5\" }}", "4 0 31 10 0 0" },
	{ "{{ float64 \"1e3\" }} {{ typeOf (float64 1) }} {{ typeOf (int64 1) }} {{ typeOf (int 1.5) }}", "1000 float64 int64 int" },
	{ "{{ add 1.5 1.5 }} {{ mul 0.5 10 }} {{ max 1.9 1.2 }} {{ add 1 nil }} {{ sub 5 2 }} {{ div 7 2 }} {{ mod 7 2 }} {{ min 3 1 2 }} {{ typeOf (add 1 1) }}",
	  "2 0 1 1 3 3 1 1 int64" },
	{ "{{ div 1 0 }}", "ERR:integer divide by zero" },
	{ "{{ maxf 1.5 2.5 }} {{ minf 1.5 2.5 }} {{ add1 1 }}", "2.5 1.5 2" },
	{ "{{ until 3 }} {{ until -2 }} {{ untilStep 0 10 4 }} {{ seq 3 }}", "[0 1 2] [0 -1] [0 4 8] 1 2 3" },
	{ "{{ until .Values.one }}", "ERR:wrong type for value; expected int; got float64" },
	/* collections */
	{ "{{ list 1 \"a\" }} {{ typeOf (list) }} {{ tuple 1 2 }}", "[1 a] []interface {} [1 2]" },
	{ "{{ dict \"a\" 1 \"b\" \"x\" }} {{ dict 1 2 }} {{ dict \"a\" 1 \"odd\" }}", "map[a:1 b:x] map[1:2] map[a:1 odd:]" },
	{ "{{ $d := dict \"a\" 1 }}{{ $_ := set $d \"b\" 2 }}{{ $d }} {{ $_ := unset $d \"a\" }}{{ $d }}", "map[a:1 b:2] map[b:2]" },
	{ "{{ hasKey .Values \"nul\" }} {{ kindIs \"invalid\" .Values.nul }} {{ get .Values \"one\" }} [{{ get .Values \"zz\" }}] {{ typeOf (get .Values \"zz\") }}",
	  "true true 1 [] string" },
	{ "{{ omit .Values.m \"a\" \"c\" }} {{ pick .Values.m \"a\" }}", "map[b:2] map[a:1]" },
	{ "{{ merge (dict \"a\" \"\") (dict \"a\" \"x\") }} {{ merge (dict \"a\" \"y\") (dict \"a\" \"x\" \"b\" 1) }} {{ mergeOverwrite (dict \"a\" \"y\") (dict \"a\" \"x\") }}",
	  "map[a:x] map[a:y b:1] map[a:x]" },
	{ "{{ hasKey .Values.missing \"x\" }}", "ERR:expected map[string]interface {}; got interface {}" },
	{ "{{ dig \"a\" \"b\" \"def\" .Values.nested.AsMap }}", "ERR:interface conversion" },
	{ "{{ dig \"nested\" \"a\" \"b\" \"def\" .Values.AsMap }} {{ dig \"nested\" \"zz\" \"def\" .Values.AsMap }} {{ dig \"f\" \"def\" .Values.AsMap }}",
	  "1 def false" },
	{ "{{ dig \"s\" \"x\" \"def\" .Values.AsMap }}", "ERR:interface conversion" },
	{ "{{ has 1 (list 1.0) }} {{ has \"x\" nil }} {{ has \"b\" .Values.list }} {{ has 1 (list 1) }}", "false false true true" },
	{ "{{ has \"x\" \"xyz\" }}", "ERR:Cannot find has on type string" },
	{ "{{ append nil \"x\" }}", "ERR:Cannot push on type" },
	{ "{{ append (list) \"x\" }} {{ prepend .Values.list \"z\" }} {{ concat (list 1) (list 2 3) }}", "[x] [z a b c] [1 2 3]" },
	{ "[{{ first list }}] {{ first .Values.list }} {{ last .Values.list }} {{ rest .Values.list }} {{ initial .Values.list }}",
	  "[] a c [b c] [a b]" },
	{ "{{ mustFirst \"s\" }}", "ERR:Cannot first on type string" },
	{ "{{ uniq (list 1 1 2) }} {{ without (list 1 2 3) 2 }} {{ reverse .Values.list }} {{ sortAlpha (list \"b\" \"a\") }} {{ compact (list \"\" \"a\" 0) }}",
	  "[1 2] [1 3] [c b a] [a b] [a]" },
	{ "{{ slice .Values.list 1 }} {{ slice .Values.list 1 2 }}", "[b c] [b]" },
	/* types */
	{ "{{ kindOf \"s\" }} {{ kindOf .Values.one }} {{ kindOf true }} {{ kindOf .Values.list }} {{ kindOf .Values.m }} {{ kindOf (int 1) }} {{ kindOf (int64 1) }} {{ kindOf .Values.missing }}",
	  "string float64 bool slice map int int64 invalid" },
	{ "{{ kindOf (split \":\" \"a\") }} {{ kindOf (semver \"1.0.0\") }} {{ kindOf .Capabilities }}", "map ptr ptr" },
	{ "{{ typeOf .Values.one }} {{ typeOf .Values.list }} {{ typeOf .Values.m }} {{ typeOf .Values.nul }} {{ typeOf (split \":\" \"a\") }} {{ typeOf (semver \"1.0.0\") }} {{ typeOf .Values }}",
	  "float64 []interface {} map[string]interface {} <nil> map[string]string *semver.Version chartutil.Values" },
	{ "{{ kindIs \"int\" .Values.one }} {{ typeIs \"float64\" .Values.one }} {{ has (kindOf .Values.one) (list \"int64\" \"float64\") }}", "false true true" },
	/* values typing */
	{ "{{ .Values.yes11 }} {{ typeOf .Values.yes11 }} {{ .Values.octal }} {{ .Values.date }} {{ typeOf .Values.date }}", "true bool 15 2024-01-01 string" },
	/* yaml / json */
	{ "{{ toYaml .Values.nul }}|{{ toYaml \"\" }}|{{ toYaml list }}|{{ toYaml dict }}|{{ toYaml \"multi\\nline\" }}", "null|\"\"|[]|{}||-\n  multi\n  line" },
	{ "{{ toYaml (dict \"b\" 1 \"a\" (list 1 (dict \"k\" \"v\" \"j\" (list 2))) \"big\" .Values.big \"f\" 1.5) }}",
	  "a:\n- 1\n- j:\n  - 2\n  k: v\nb: 1\nbig: 1000000\nf: 1.5" },
	{ "{{ toYaml (list (list \"p\")) }}", "- - p" },
	{ "{{ toYaml (dict \"a1\" 1 \"a01\" 1 \"a9\" 1 \"a10\" 1 \"_x\" 1 \"-x\" 1 \"B\" 1 \"a\" 1 \"ab\" 1 \"aB\" 1 \"1\" 1 \"9\" 1 \"10\" 1 \"2a\" 1) }}",
	  "-x: 1\n_x: 1\n\"1\": 1\n2a: 1\n\"9\": 1\n\"10\": 1\nB: 1\na: 1\na1: 1\na01: 1\na9: 1\na10: 1\naB: 1\nab: 1" },
	{ "{{ toYaml (list \"true\" \"yes\" \"on\" \"y\" \"null\" \"~\" \"1.0\" \"01\" \"+1\" \".5\" \"1e3\" \"1_000\" \"0x1F\" \".inf\" \"2024-01-01\" \"12:30\" \"tab\\there\" \"NaN\") }}",
	  "- \"true\"\n- \"yes\"\n- \"on\"\n- \"y\"\n- \"null\"\n- \"~\"\n- \"1.0\"\n- \"01\"\n- \"+1\"\n- \".5\"\n- \"1e3\"\n- \"1_000\"\n- \"0x1F\"\n- \".inf\"\n- \"2024-01-01\"\n- \"12:30\"\n- \"tab\\there\"\n- NaN" },
	{ "{{ toYaml (list \"- item\" \"-\" \"*star\" \" lead\" \"a: b\" \"a #b\" \"key:value\" \"?q\" \"say \\\"hi\\\"\" \"a'b\" \"-x\") }}",
	  "- '- item'\n- '-'\n- '*star'\n- ' lead'\n- 'a: b'\n- 'a #b'\n- key:value\n- ?q\n- say \"hi\"\n- a'b\n- -x" },
	{ "{{ toYaml (dict \"a\" \"x\\n\" \"b\" \"x\\n\\n\" \"c\" \" x\\ny\" \"d\" \"ends with space \\n\") }}",
	  "a: |\n  x\nb: |+\n  x\n\nc: |2-\n   x\n  y\nd: \"ends with space \\n\"" },
	{ "{{ toYaml (dict \"a\" \"a\\n\\nb\") | nindent 4 }}", "\n    a: |-\n      a\n    \n      b" },
	{ "{{ toYaml (dict \"c\" \"word word word word word word word word word word word word word word word word word word word\") }}",
	  "c: word word word word word word word word word word word word word word word word\n  word word word" },
	{ "{{ toYaml (dict \"a\\nb\" (list 1) \"k\" (dict \"x\" 1)) }}", "? |-\n  a\n  b\n: - 1\nk:\n  x: 1" },
	{ "{{ toYaml (list 1234567.5 0.000015 1e20 12345678901.0) }}", "- 1.2345675e+06\n- 1.5e-05\n- 1e+20\n- 12345678901" },
	{ "{{ toJson (dict \"b\" 1 \"a\" \"<&>\" \"n\" nil \"l\" (list 1.5 .Values.big)) }}", "{\"a\":\"\\u003c\\u0026\\u003e\",\"b\":1,\"l\":[1.5,1000000],\"n\":null}" },
	{ "{{ toRawJson (dict \"a\" \"<&>\") }} {{ toJson 1e21 }} {{ toJson 1e20 }} {{ toJson 0.000001 }} {{ toJson 0.0000001 }}",
	  "{\"a\":\"<&>\"} 1e+21 100000000000000000000 0.000001 1e-7" },
	{ "{{ toPrettyJson (dict \"a\" (list 1)) }}", "{\n  \"a\": [\n    1\n  ]\n}" },
	{ "{{ fromYaml \"a: 1\\nb: [x, y]\" }} {{ typeOf (fromYaml \"a: 1\").a }}", "map[a:1 b:[x true]] float64" },
	{ "{{ fromYaml \"- a\" }}", "map[Error:error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}]" },
	{ "{{ (fromJson \"{\\\"a\\\": 1}\").a }}", "1" },
	{ "{{ fromYaml \"1.5: a\\ntrue: b\\n3: c\\n0x10: d\" | toJson }}", "{\"1.5\":\"a\",\"16\":\"d\",\"3\":\"c\",\"true\":\"b\"}" },
	{ "{{ (fromYaml \"a: .inf\").Error }}", "error converting YAML to JSON: json: unsupported value: +Inf" },
	{ "{{ toYaml (list \"<<\" \"-.5e323\" \"2024-13-01\" \"2024-02-29\" \"\\u2028x\") }}", "- <<\n- -.5e323\n- 2024-13-01\n- \"2024-02-29\"\n- '\xe2\x80\xa8  x'" },
	/* semver */
	{ "{{ semverCompare \">=1.16\" \"1.16\" }} {{ semverCompare \">= 1.27-0\" \"v1.30.0\" }} {{ semverCompare \"^1.19-0\" \"v1.30.2\" }} {{ semverCompare \">=1.4-0, <1.19-0\" \"v1.18.5\" }}",
	  "true true true true" },
	{ "{{ semverCompare \"~1.2\" \"1.3.0\" }} {{ semverCompare \"^0.2\" \"0.3.0\" }} {{ semverCompare \"> 1.2\" \"1.2.1\" }} {{ semverCompare \">=1.22\" \"v1.30.0-eks-abc\" }} {{ semverCompare \">=1.22-0\" \"v1.30.0-eks-abc\" }}",
	  "false false false false true" },
	{ "{{ semverCompare \"<1.20 || >=1.25\" \"1.26.1\" }} {{ semverCompare \"1.2 - 1.4\" \"1.3.9\" }} {{ semverCompare \"1.2.x\" \"1.2.7\" }} {{ semverCompare \"!=1.2.3\" \"1.2.3\" }}",
	  "true true true false" },
	{ "{{ semver \"latest\" }}", "ERR:Invalid Semantic Version" },
	{ "{{ semver \"1.16.0.1\" }}", "ERR:Invalid Semantic Version" },
	{ "{{ semver .Values.ver }} {{ (semver .Values.ver).Prerelease }} {{ (semver \"v1.2.3\").Major }}", "1.30.2-rc.1+b rc.1 1" },
	{ "{{ semverCompare \"bogus\" \"1.0.0\" }}", "ERR:semverCompare" },
	/* time */
	{ "{{ $now := now }}{{ ne $now ($now | dateModify \"0s\") }} {{ ne $now ($now | dateModify \"1h\") }} {{ eq $now ($now | dateModify \"10d\") }}",
	  "false true true" },
	{ "{{ mustDateModify \"10d\" now }}", "ERR:mustDateModify" },
	{ "{{ typeOf now }}", "time.Time" },
	{ NULL, NULL },
};

static void test_lexer(void) { run_cases(lexer_cases); }
static void test_exec(void) { run_cases(exec_cases); }
static void test_funcs(void) { run_cases(func_cases); }

static void test_certs(void)
{
	char *out = render("{{ $ca := genCA \"my-ca\" 365 }}{{ $c := genSignedCert \"srv\" (list \"10.0.0.1\") (list \"a.example\" \"b\") 365 $ca }}"
			   "{{ $ca.Cert | b64enc }}|{{ $c.Cert }}|{{ $c.Key }}|{{ typeOf $ca }}", NULL);
	check(strstr(out, "-----BEGIN CERTIFICATE-----\n") != NULL);
	check(strstr(out, "-----BEGIN RSA PRIVATE KEY-----\n") != NULL);
	check(strstr(out, "|sprig.certificate") != NULL);
	check(!strncmp(out, "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t", 36));
	free(out);
	out = render("{{ $ca := genCA \"x\" 1 }}{{ $c := buildCustomCert ($ca.Cert | b64enc) ($ca.Key | b64enc) }}{{ eq $c.Cert $ca.Cert }}", NULL);
	check_str(out, "true");
	free(out);
	out = render("{{ genCA \"x\" .Values.one }}", NULL);
	check(!strncmp(out, "ERR:", 4) && strstr(out, "expected int; got float64"));
	free(out);
	out = render("{{ buildCustomCert \"bm90\" \"bm90\" }}", NULL);
	check(!strncmp(out, "ERR:", 4));
	free(out);
}

/* Whether the PEM certificate after the first '|' of out was signed by the
 * one before it (and names it as its issuer). */
static int signed_by_first(const char *out)
{
	const char *bar = strchr(out, '|');
	if (!bar)
		return 0;
	BIO *a = BIO_new_mem_buf(out, (int)(bar - out)), *b = BIO_new_mem_buf(bar + 1, -1);
	X509 *ca = PEM_read_bio_X509(a, NULL, NULL, NULL), *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
	int ok = ca && leaf && X509_verify(leaf, X509_get0_pubkey(ca)) == 1 &&
		 X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca)) == 0;
	X509_free(ca);
	X509_free(leaf);
	BIO_free(a);
	BIO_free(b);
	return ok;
}

/* genSignedCert signs with its CA's key whichever way it gets it: the CA
 * the render made last (kept parsed, struct tengine), one made before
 * another certificate, one rebuilt from PEM by buildCustomCert. */
static void test_certs_signed_by_ca(void)
{
	const char *tpls[] = {
		"{{ $ca := genCA \"ca\" 365 }}{{ $c := genSignedCert \"srv\" nil nil 365 $ca }}{{ $ca.Cert }}|{{ $c.Cert }}",
		"{{ $ca := genCA \"ca\" 365 }}{{ $o := genCA \"other\" 365 }}"
		"{{ $c := genSignedCert \"srv\" nil nil 365 $ca }}{{ $ca.Cert }}|{{ $c.Cert }}",
		"{{ $o := genCA \"other\" 365 }}{{ $ca := genCA \"ca\" 365 }}"
		"{{ $c := genSignedCert \"srv\" nil nil 365 $o }}{{ $o.Cert }}|{{ $c.Cert }}",
		"{{ $x := genCA \"ca\" 365 }}{{ $ca := buildCustomCert ($x.Cert | b64enc) ($x.Key | b64enc) }}"
		"{{ $o := genCA \"other\" 365 }}{{ $c := genSignedCert \"srv\" nil nil 365 $ca }}{{ $ca.Cert }}|{{ $c.Cert }}",
		/* a leaf signs nothing, but may be passed as the CA (Helm allows it) */
		"{{ $ca := genCA \"ca\" 365 }}{{ $l := genSignedCert \"l\" nil nil 365 $ca }}"
		"{{ $c := genSignedCert \"srv\" nil nil 365 $l }}{{ $l.Cert }}|{{ $c.Cert }}",
	};
	for (size_t i = 0; i < sizeof tpls / sizeof tpls[0]; i++) {
		char *out = render(tpls[i], NULL);
		check(out && strncmp(out, "ERR:", 4) && signed_by_first(out));
		free(out);
	}
}

/* ---------------------------------------------------------------- values */

static json_t *merged(const char *const *yamls, size_t n, const char *const *sets, const char *const *strs,
		      const char *const *jsons, char *err)
{
	json_t *layers[8] = { NULL };
	for (size_t i = 0; i < n; i++) {
		layers[i] = chart_values_parse(yamls[i], strlen(yamls[i]), err, 512);
		if (!layers[i])
			return NULL;
	}
	json_t *r = chart_values_merge((const json_t *const *)layers, n, sets, strs, jsons, err, 512);
	for (size_t i = 0; i < n; i++)
		json_decref(layers[i]);
	return r;
}

static char *dumps(const json_t *j)
{
	return json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
}

static void test_values(void)
{
	char err[512];
	const char *y[] = { "a: {x: 1, w: [1, 2], y: 1}\nb: yes\nc: 1\n", "a: {w: [3], z: null}\nc: null\n" };
	json_t *m = merged(y, 2, NULL, NULL, NULL, err);
	char *s = dumps(m);
	check_str(s, "{\"a\":{\"true\":1.0,\"w\":[3.0],\"x\":1.0,\"z\":null},\"b\":true,\"c\":null}");
	free(s);
	json_decref(m);

	/* coalescing over chart defaults: user null deletes a defaulted key */
	const char *names[] = { "Chart.yaml", "values.yaml", "templates/x.yaml" };
	const char *contents[] = { "name: c\nversion: 0.1.0\n",
				   "keep: 1\ndel: 2\nnested: {a: 1, b: 2, m: null}\nnulldef: null\nlist: [1, 2]\n",
				   "x: {{ toJson .Values | quote }}\n" };
	struct chart *c = chart_load_files(names, contents, 3, err, sizeof(err));
	check(c != NULL);
	if (!c)
		return;
	const char *uy[] = { "del: null\nnested: {b: null, c: 3, m: 5}\nlist: [9]\nextra: null\n" };
	json_t *user = merged(uy, 1, NULL, NULL, NULL, err);
	struct chart_render_opts o = { 0 };
	char *out = NULL;
	check(chart_render_template(c, "{{ toJson .Values }}|{{ hasKey .Values \"nulldef\" }}|{{ kindIs \"invalid\" .Values.nulldef }}",
				    user, &o, &out, err, sizeof(err)) == 0);
	check_str(out, "{\"extra\":null,\"keep\":1,\"list\":[9],\"nested\":{\"a\":1,\"c\":3,\"m\":5},\"nulldef\":null}|true|true");
	free(out);
	struct chart_render *r = chart_render(c, user, &o, err, sizeof(err));
	check(r != NULL);
	if (r) {
		s = dumps(chart_render_values(r));
		check_str(s, "{\"extra\":null,\"keep\":1.0,\"list\":[9.0],\"nested\":{\"a\":1.0,\"c\":3.0,\"m\":5.0},\"nulldef\":null}");
		free(s);
		chart_render_free(r);
	}
	json_decref(user);
	chart_free(c);
}

static void test_set_grammar(void)
{
	char err[512];
	struct { const char *set; int mode; const char *want; } cases[] = {
		{ "a=1,b=true,c=null,d=1.5,e=007,f=0,g=-3,h=False,i=", 0,
		  "{\"a\":1,\"b\":true,\"c\":null,\"d\":\"1.5\",\"e\":\"007\",\"f\":0,\"g\":-3,\"h\":false,\"i\":\"\"}" },
		{ "operator.tolerations[0].key=node-role.kubernetes.io/control-plane,operator.tolerations[0].operator=Exists", 0,
		  "{\"operator\":{\"tolerations\":[{\"key\":\"node-role.kubernetes.io/control-plane\",\"operator\":\"Exists\"}]}}" },
		{ "a\\.b=1,esc=a\\,b,l={x,y,1}", 0, "{\"a.b\":1,\"esc\":\"a,b\",\"l\":[\"x\",\"y\",1]}" },
		{ "x[1].y=2,m[0][1]=z", 0, "{\"m\":[[null,\"z\"]],\"x\":[null,{\"y\":2}]}" },
		{ "a=1,b=true,n=null", 1, "{\"a\":\"1\",\"b\":\"true\",\"n\":\"null\"}" },
		{ "a={\"k\":[1,2]},b=\"s\",c=3", 2, "{\"a\":{\"k\":[1.0,2.0]},\"b\":\"s\",\"c\":3.0}" },
		{ "extraConfig.local-router-ipv4=169.254.32.16", 0, "{\"extraConfig\":{\"local-router-ipv4\":\"169.254.32.16\"}}" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *list[] = { cases[i].set, NULL };
		json_t *m = chart_values_merge(NULL, 0, cases[i].mode == 0 ? list : NULL, cases[i].mode == 1 ? list : NULL,
					       cases[i].mode == 2 ? list : NULL, err, sizeof(err));
		char *s = m ? dumps(m) : strdup(err);
		check_str(s, cases[i].want);
		free(s);
		json_decref(m);
	}
	const char *bad[] = { "a", "a,b=1", "a[x]=1", "a[1", "a.=1", "l={a,b", "a[70000]=1", NULL };
	for (int i = 0; bad[i]; i++) {
		const char *list[] = { bad[i], NULL };
		json_t *m = chart_values_merge(NULL, 0, list, NULL, NULL, err, sizeof(err));
		if (m) {
			char msg[256];
			snprintf(msg, sizeof(msg), "--set %s should fail", bad[i]);
			testlib_fail(__FILE__, __LINE__, msg);
			json_decref(m);
		}
	}
	/* layers keep their JSON number types and are not modified */
	{
		json_t *layer = json_pack("{s:i,s:[f,{s:i}]}", "x", 7, "l", 1.0, "y", 2);
		const json_t *ls[] = { layer };
		json_t *m = chart_values_merge(ls, 1, NULL, NULL, NULL, err, sizeof(err));
		char *s1 = dumps(m), *s2 = dumps(layer);
		check_str(s1, "{\"l\":[1.0,{\"y\":2}],\"x\":7}");
		check_str(s2, s1);
		free(s1);
		free(s2);
		json_decref(m);
		json_decref(layer);
	}
	/* --set ints are int64 in templates, values-file numbers float64 */
	const char *list[] = { "n=12", NULL };
	json_t *m = chart_values_merge(NULL, 0, list, NULL, NULL, err, sizeof(err));
	char *out = NULL;
	check(chart_render_template(C, "{{ typeOf .Values.n }} {{ typeOf .Values.one }} {{ printf \"%d\" .Values.n }}", m, NULL, &out,
				    err, sizeof(err)) == 0);
	check_str(out, "int64 float64 12");
	free(out);
	json_decref(m);
}

/* ---------------------------------------------------------------- documents */

static void test_documents(void)
{
	char err[512];
	const char *names[] = { "Chart.yaml", "templates/b.yaml", "templates/a.yaml", "templates/NOTES.txt",
				"templates/_p.tpl", "templates/hook.yaml", "templates/empty.yaml" };
	const char *contents[] = {
		"name: c\nversion: 0.1.0\nkubeVersion: \">= 1.21.0-0\"\n",
		"kind: Deployment\nmetadata:\n  name: d\n---   \nkind: Service\nmetadata:\n  name: s\n--- # c\nkind: Zeta\nmetadata:\n  name: z\n",
		"\n\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: |\n    v\n---x: 1\nkind: Namespace\n",
		"notes {{ .Release.Name }}",
		"{{ define \"p\" }}kind: Secret{{ end }}",
		"kind: Job\nmetadata:\n  name: j\n  annotations:\n    helm.sh/hook: pre-install,post-upgrade\n---\nkind: Job\nmetadata:\n  name: u\n  annotations:\n    helm.sh/hook: bogus\n",
		"{{/* nothing */}}\n  \n",
	};
	struct chart *c = chart_load_files(names, contents, 7, err, sizeof(err));
	check(c != NULL);
	if (!c)
		return;
	struct chart_render_opts o = { 0 };
	o.release_name = "r";
	struct chart_render *r = chart_render(c, NULL, &o, err, sizeof(err));
	check(r != NULL);
	if (r) {
		const json_t *docs = chart_render_documents(r);
		char kinds[256] = "";
		size_t i;
		json_t *d;
		json_array_foreach(docs, i, d) {
			strcat(kinds, json_string_value(json_object_get(d, "kind")));
			strcat(kinds, ",");
		}
		check_str(kinds, "Namespace,ConfigMap,Service,Deployment,Zeta,");
		check(json_array_size(chart_render_hooks(r)) == 1);
		check_str(json_string_value(json_object_get(json_array_get(docs, 1), "source")), "c/templates/a.yaml");
		check_str(json_string_value(json_object_get(json_object_get(json_object_get(json_array_get(docs, 1), "object"), "data"), "k")), "v\n");
		const char *man = chart_render_manifest(r);
		check(!strncmp(man, "---\n# Source: c/templates/a.yaml\nx: 1\nkind: Namespace\n---\n# Source: c/templates/a.yaml\nkind: ConfigMap\n", 101));
		check(strstr(man, "notes") == NULL);
		check(strstr(man, "pre-install") == NULL);
		check(strstr(chart_render_output(r), "helm.sh/hook: pre-install,post-upgrade") != NULL);
		check(strstr(chart_render_output(r), "bogus") == NULL);
		chart_render_free(r);
	}
	o.kube_version = "v1.20.0";
	r = chart_render(c, NULL, &o, err, sizeof(err));
	check(r == NULL && strstr(err, "chart requires kubeVersion"));
	chart_render_free(r);
	chart_free(c);

	/* YAML errors name the file */
	const char *n2[] = { "Chart.yaml", "templates/bad.yaml" };
	const char *c2[] = { "name: c\nversion: 0.1.0\n", "a: [\n" };
	c = chart_load_files(n2, c2, 2, err, sizeof(err));
	r = chart_render(c, NULL, NULL, err, sizeof(err));
	check(r == NULL && strstr(err, "YAML parse error on c/templates/bad.yaml"));
	chart_free(c);
	/* parse errors name file and line */
	const char *c3[] = { "name: c\nversion: 0.1.0\n", "a\n\n{{ if }}" };
	c = chart_load_files(n2, c3, 2, err, sizeof(err));
	r = chart_render(c, NULL, NULL, err, sizeof(err));
	check(r == NULL && strstr(err, "parse error at (c/templates/bad.yaml:3)"));
	chart_free(c);
}

/* ---------------------------------------------------------------- archive */

static size_t tar_entry(unsigned char *out, const char *name, char type, const char *data, size_t len)
{
	memset(out, 0, 512);
	snprintf((char *)out, 100, "%s", name);
	snprintf((char *)out + 100, 8, "%07o", 0644);
	snprintf((char *)out + 124, 12, "%011o", (unsigned)(len & 0x3fffffff));
	out[156] = (unsigned char)type;
	memcpy(out + 257, "ustar", 5);
	memset(out + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++) sum += out[i];
	snprintf((char *)out + 148, 8, "%06o", sum);
	if (len)
		memcpy(out + 512, data, len);
	return 512 + (len + 511) / 512 * 512;
}

/* tar bytes gzipped (malloc'd) */
static unsigned char *gzip_of(const unsigned char *tar, size_t pos, size_t *outlen)
{
	uLongf zl = compressBound(pos) + 64;
	unsigned char *gz = malloc(zl);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	zs.next_in = (unsigned char *)tar;
	zs.avail_in = (uInt)pos;
	zs.next_out = gz;
	zs.avail_out = (uInt)zl;
	deflate(&zs, Z_FINISH);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return gz;
}

static unsigned char *make_tgz(const char *const *names, const char *types, const char *const *datas, size_t n, size_t *outlen)
{
	size_t cap = 1024 * (n + 2) + 65536;
	for (size_t i = 0; i < n; i++)
		cap += strlen(datas[i]) + 512;
	unsigned char *tar = calloc(1, cap);
	size_t pos = 0;
	for (size_t i = 0; i < n; i++)
		pos += tar_entry(tar + pos, names[i], types[i], datas[i], strlen(datas[i]));
	pos += 1024;
	unsigned char *gz = gzip_of(tar, pos, outlen);
	free(tar);
	return gz;
}

static void test_archive(void)
{
	char err[512];
	const char *names[] = { "mychart/Chart.yaml", "mychart/values.yaml", "mychart/templates/cm.yaml", "mychart/files/x.txt" };
	const char *datas[] = { "\xef\xbb\xbfname: mychart\nversion: 1.0.0\nappVersion: v2\n", "v: 1\n",
				"kind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\ndata:\n  f: {{ .Files.Get \"files/x.txt\" | quote }}\n", "X" };
	size_t len;
	unsigned char *gz = make_tgz(names, "0000", datas, 4, &len);
	struct chart *c = chart_load_archive(gz, len, err, sizeof(err));
	check(c != NULL);
	free(gz);
	if (c) {
		check_str(chart_name(c), "mychart");
		check_str(chart_version(c), "1.0.0");
		check_str(chart_app_version(c), "v2");
		struct chart_render *r = chart_render(c, NULL, NULL, err, sizeof(err));
		check(r != NULL);
		if (r)
			check_str(chart_render_manifest(r), "---\n# Source: mychart/templates/cm.yaml\nkind: ConfigMap\nmetadata:\n  name: mychart\ndata:\n  f: \"X\"\n");
		chart_render_free(r);
		chart_free(c);
	}
	/* path traversal, links, absolute paths, garbage */
	struct { const char *name; char type; const char *want; } bad[] = {
		{ "mychart/../../etc/passwd", '0', "illegal path" },
		{ "/abs/Chart.yaml", '0', "illegal path" },
		{ "mychart/link", '2', "symbolic link" },
		{ "mychart/hard", '1', "hard link" },
		{ "mychart/dev", '3', "unsupported" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *nm[] = { "mychart/Chart.yaml", bad[i].name };
		const char *dd[] = { "name: x\nversion: 1\n", "" };
		char types[3] = { '0', bad[i].type, 0 };
		gz = make_tgz(nm, types, dd, 2, &len);
		c = chart_load_archive(gz, len, err, sizeof(err));
		check(c == NULL && strstr(err, bad[i].want));
		chart_free(c);
		free(gz);
	}
	c = chart_load_archive("not a gzip", 10, err, sizeof(err));
	check(c == NULL && strstr(err, "not a gzip"));
	/* a gzip bomb stops at the limit */
	size_t big = CHART_MAX_TOTAL_SIZE + 1024 * 1024;
	unsigned char *zeros = calloc(1, big);
	uLongf zl = compressBound(big);
	unsigned char *bomb = malloc(zl + 64);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
	zs.next_in = zeros;
	zs.avail_in = (uInt)big;
	zs.next_out = bomb;
	zs.avail_out = (uInt)zl;
	deflate(&zs, Z_FINISH);
	size_t bl = zs.total_out;
	deflateEnd(&zs);
	free(zeros);
	c = chart_load_archive(bomb, bl, err, sizeof(err));
	check(c == NULL && strstr(err, "decompressed size exceeds"));
	free(bomb);
	/* a header whose checksum does not add up; and one whose checksum
	 * field holds the sum of the bytes without counting it as spaces */
	for (int k = 0; k < 2; k++) {
		static unsigned char tar[4096];
		memset(tar, 0, sizeof(tar));
		size_t tl = tar_entry(tar, "mychart/Chart.yaml", '0', "name: x\nversion: 1\n", 20);
		if (k == 0) {
			tar[5] ^= 1;
		} else {
			unsigned sum = 0;
			memset(tar + 148, 0, 8);
			for (int i = 0; i < 512; i++) sum += tar[i];
			snprintf((char *)tar + 148, 8, "%06o", sum);
		}
		gz = gzip_of(tar, tl + 1024, &len);
		c = chart_load_archive(gz, len, err, sizeof(err));
		check(c == NULL && strstr(err, "tar header checksum mismatch at offset 0"));
		chart_free(c);
		free(gz);
	}
	/* missing Chart.yaml */
	const char *nm[] = { "x/values.yaml" };
	const char *dd[] = { "a: 1\n" };
	gz = make_tgz(nm, "0", dd, 1, &len);
	c = chart_load_archive(gz, len, err, sizeof(err));
	check(c == NULL && strstr(err, "Chart.yaml file is missing"));
	free(gz);
}

/* ---------------------------------------------------------------- real charts */

static void test_real_charts(void)
{
	const char *shared = getenv("FERRY_SHARED");
	char path[1024], err[4096];
	const char *charts[] = { "cilium-1.12.0.tgz", "cilium-1.15.1.tgz", "cilium-1.18.2.tgz", "cilium-1.18.3.tgz" };
	if (!shared)
		shared = "../shared";
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/charts/%s", shared, charts[i]);
		struct chart *c = chart_load(path, err, sizeof(err));
		if (!c) {
			printf("  %s: %s\n", path, err);
			check(c != NULL);
			continue;
		}
		struct chart_render_opts o = { 0 };
		o.release_name = "cilium";
		o.namespace_ = "kube-system";
		struct chart_render *r = chart_render(c, NULL, &o, err, sizeof(err));
		if (!r)
			printf("  %s: %s\n", charts[i], err);
		check(r != NULL);
		if (r) {
			check(json_array_size(chart_render_documents(r)) >= 10);
			check(chart_render_document_count(r) == json_array_size(chart_render_documents(r)));
			check(strstr(chart_render_manifest(r), "kind: DaemonSet") != NULL);
			/* The stored manifest reads back into the very objects the
			 * render produced (octal modes, numbers, block scalars). */
			const char *m = chart_render_manifest(r);
			json_t *back = chart_manifest_objects(m, strlen(m), err, sizeof(err));
			const json_t *docs = chart_render_documents(r);
			check(back != NULL && json_array_size(back) == json_array_size(docs));
			for (size_t k = 0; back && k < json_array_size(docs); k++)
				if (!json_equal(json_array_get(back, k),
						json_object_get(json_array_get(docs, k), "object"))) {
					printf("  %s: document %zu differs when read back\n", charts[i], k);
					check(0);
					break;
				}
			json_decref(back);
		}
		if (i == 0) {
			const char *bad = "---\n# Source: x\nkind: A\n---\na: [1,\n";
			err[0] = 0;
			check(chart_manifest_objects(bad, strlen(bad), err, sizeof(err)) == NULL && err[0]);
			const char *two = "---\n# Source: a\nkind: A\nmode: 0400\n---\n# Source: only a comment\n";
			json_t *t = chart_manifest_objects(two, strlen(two), err, sizeof(err));
			check(json_array_size(t) == 1);
			check(json_integer_value(json_object_get(json_array_get(t, 0), "mode")) == 256);
			json_decref(t);
		}
		chart_render_free(r);
		chart_free(c);
	}
}

static json_t *fake_lookup(void *ctx, const char *api_version, const char *kind, const char *ns, const char *name)
{
	int *calls = ctx;
	(*calls)++;
	if (!strcmp(api_version, "v1") && !strcmp(kind, "Secret") && !strcmp(ns, "kube-system") && !strcmp(name, "cilium-ca"))
		return json_pack("{s:s,s:{s:s},s:{s:i}}", "kind", "Secret", "data", "ca.crt", "Q0E=", "spec", "replicas", 3);
	return json_object();
}

static void test_lookup(void)
{
	char err[1024], *out = NULL;
	int calls = 0;
	struct chart_render_opts o = { 0 };
	o.lookup = fake_lookup;
	o.lookup_ctx = &calls;
	o.is_upgrade = 1;
	o.revision = 4;
	check(chart_render_template(C, "{{ $s := lookup \"v1\" \"Secret\" \"kube-system\" \"cilium-ca\" }}"
				       "{{ index $s.data \"ca.crt\" }} {{ typeOf $s.spec.replicas }} "
				       "[{{ lookup \"v1\" \"Secret\" \"x\" \"y\" }}] {{ .Release.IsUpgrade }} {{ .Release.Revision }}",
				       NULL, &o, &out, err, sizeof(err)) == 0);
	check_str(out, "Q0E= int64 [map[]] true 4");
	check(calls == 2);
	free(out);
}

static void test_schema(void)
{
	char err[2048];
	const char *names[] = { "Chart.yaml", "values.yaml", "values.schema.json", "templates/x.yaml" };
	const char *contents[] = { "name: s\nversion: 0.1.0\n", "a: 1\nb: x\nl: [1]\n",
				   "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"},"
				   " \"b\": {\"enum\": [\"x\", \"y\"]}, \"l\": {\"type\": \"array\", \"items\": {\"anyOf\": [{\"type\": \"integer\"}]}},"
				   " \"n\": {\"oneOf\": [{\"type\": \"null\"}, {\"type\": \"number\"}]}}}",
				   "kind: C\n" };
	struct chart *c = chart_load_files(names, contents, 4, err, sizeof(err));
	check(c != NULL);
	if (!c)
		return;
	struct chart_render *r = chart_render(c, NULL, NULL, err, sizeof(err));
	check(r != NULL);
	chart_render_free(r);
	const char *sets[] = { "a=x,b=z,l[1]=s,n=1", NULL };
	json_t *user = chart_values_merge(NULL, 0, sets, NULL, NULL, err, sizeof(err));
	r = chart_render(c, user, NULL, err, sizeof(err));
	check(r == NULL);
	check(strstr(err, "values don't meet the specifications of the schema(s) in the following chart(s):\ns:\n") != NULL);
	check(strstr(err, "- a: Invalid type. Expected: integer, given: string\n") != NULL);
	check(strstr(err, "- b: b must be one of the following: \"x\", \"y\"\n") != NULL);
	check(strstr(err, "- l.1: Must validate at least one schema (anyOf)\n- l.1: Invalid type. Expected: integer, given: string\n") != NULL);
	check(strstr(err, "- n:") == NULL);
	struct chart_render_opts o = { 0 };
	o.skip_schema_validation = 1;
	r = chart_render(c, user, &o, err, sizeof(err));
	check(r != NULL);
	chart_render_free(r);
	json_decref(user);
	chart_free(c);

	/* properties are matched to values side by side in key order: values
	 * keys the schema lacks, schema keys the values lack, prefixes */
	const char *contents2[] = { "name: s\nversion: 0.1.0\n", "aa: 1\nb: 2\nbb: 3\nc: x\nzz: 4\n",
				    "{\"properties\": {\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"string\"},"
				    " \"ba\": {\"type\": \"string\"}, \"bb\": {\"type\": \"boolean\"}, \"c\": {\"type\": \"integer\"},"
				    " \"d\": {\"type\": \"string\"}}}",
				    "kind: C\n" };
	c = chart_load_files(names, contents2, 4, err, sizeof(err));
	check(c != NULL);
	if (!c)
		return;
	r = chart_render(c, NULL, NULL, err, sizeof(err));
	check(r == NULL);
	check(strstr(err, ":\n- b: Invalid type. Expected: string, given: integer\n"
			  "- bb: Invalid type. Expected: boolean, given: integer\n"
			  "- c: Invalid type. Expected: integer, given: string\n") != NULL);
	check(strstr(err, "- a:") == NULL && strstr(err, "- aa:") == NULL && strstr(err, "- d:") == NULL);
	chart_render_free(r);
	chart_free(c);
}

/* cv_from_json's own reader must give exactly what jansson + conversion
 * gives (kinds, Go types, numbers, strings), and jansson's messages on
 * errors */
static void test_json_reader(void)
{
	const char *docs[] = {
		"{}", "[]", " {\"a\": 1, \"b\": [true, false, null, -0, 0.5, 1e3, -2.5E-3, 9007199254740993]}\n",
		"{\"a\": 1, \"a\": 2}", "{\"z\": {\"y\": {\"x\": []}}, \"\": \"\"}", "\"s\\n\\t\\\"\\\\\\/\\b\\f\\r\"",
		"\"\\u00e9\\u20ac\\ud83d\\ude00\"", "\"a\\u0000b\"", "\"caf\xc3\xa9\"", "123", "-0.0", "1.5e308",
		"9223372036854775807", "-9223372036854775808", "true", "null",
		"{\"k\\u0041y\": 1, \"long\\nkey_0123456789\": {\"n\": -12}}",
		/* errors: jansson's messages */
		"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "truex", "[1] x", "\"\\x\"", "\"\\ud800\"",
		"\"\\udc00\"", "{\"a\\u0000\": 1}", "9223372036854775808", "1e400", "\"\x01\"", "\"\xff\"",
		"[1 2]", "{\"a\":1,}", "nul", "\"abc",
	};
	for (int ints = 0; ints < 2; ints++)
		for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
			struct cv_arena *a = cv_arena_new();
			char e1[256] = "", e2[256] = "";
			cv v1 = cv_nil(), v2 = cv_nil();
			int r1 = cv_from_json(a, docs[i], strlen(docs[i]), &v1, ints, e1, sizeof(e1));
			json_error_t je;
			json_t *j = json_loadb(docs[i], strlen(docs[i]), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
			int r2 = j ? 0 : -1;
			if (j) {
				v2 = cv_from_jansson(a, j, ints);
				json_decref(j);
			} else
				snprintf(e2, sizeof(e2), "%s (line %d column %d)", je.text, je.line, je.column);
			if (r1 != r2 || (r1 == 0 && !cv_strict_equal(v1, v2, NULL, 0)) || strcmp(e1, e2)) {
				printf("  json reader differs on [%s] ints=%d: %d/%d %s / %s\n", docs[i], ints, r1, r2, e1, e2);
				check(0);
			}
			cv_arena_free(a);
		}
	/* deep nesting beyond jansson's limit is jansson's error */
	size_t n = 5000;
	char *deep = malloc(2 * n + 1);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = 0;
	struct cv_arena *a = cv_arena_new();
	char e[256];
	cv v;
	check(cv_from_json(a, deep, 2 * n, &v, 0, e, sizeof(e)) == -1 && strstr(e, "maximum parsing depth reached"));
	cv_arena_free(a);
	free(deep);
}

/* values.yaml and values.schema.json of an archive are parsed while the
 * rest is inflated: results must equal the plain path */
static void test_archive_early_parse(void)
{
	char err[2048];
	/* big enough that inflating takes several slices */
	size_t fill = 300000;
	char *big = malloc(fill + 64);
	for (size_t i = 0; i < fill; i++)
		big[i] = (char)('a' + (i * 7919 % 26));
	memcpy(big, "x: ", 3);
	big[fill - 1] = '\n';
	big[fill] = 0;
	const char *names[] = { "c/Chart.yaml", "c/values.yaml", "c/values.schema.json", "c/templates/x.yaml", "c/files/big" };
	const char *tmpl = "a: {{ .Values.a }}\nb: {{ .Values.b | quote }}\n";
	const char *schema = "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}}";
	const char *datas[] = { "name: c\nversion: 0.1.0\n", "a: 5\nb: hello\n", schema, tmpl, big };
	size_t len;
	unsigned char *gz = make_tgz(names, "00000", datas, 5, &len);
	struct chart *c = chart_load_archive(gz, len, err, sizeof(err));
	free(gz);
	check(c != NULL);
	if (c) {
		struct chart_render *r = chart_render(c, NULL, NULL, err, sizeof(err));
		check(r != NULL);
		if (r)
			check(strstr(chart_render_manifest(r), "a: 5\nb: \"hello\"\n") != NULL);
		chart_render_free(r);
		const char *sets[] = { "a=notanint", NULL };
		json_t *user = chart_values_merge(NULL, 0, sets, NULL, NULL, err, sizeof(err));
		r = chart_render(c, user, NULL, err, sizeof(err));
		check(r == NULL && strstr(err, "- a: Invalid type. Expected: integer, given: string"));
		chart_render_free(r);
		json_decref(user);
		chart_free(c);
	}
	/* a broken schema and a non-map values.yaml give the plain path's errors */
	const char *d2[] = { "name: c\nversion: 0.1.0\n", "a: 5\n", "{\"type\": ", tmpl, big };
	gz = make_tgz(names, "00000", d2, 5, &len);
	c = chart_load_archive(gz, len, err, sizeof(err));
	free(gz);
	check(c != NULL);
	if (c) {
		struct chart_render *r = chart_render(c, NULL, NULL, err, sizeof(err));
		check(r == NULL && strstr(err, "c: values.schema.json: ") != NULL);
		chart_render_free(r);
		chart_free(c);
	}
	const char *d3[] = { "name: c\nversion: 0.1.0\n", "- 1\n", schema, tmpl, big };
	gz = make_tgz(names, "00000", d3, 5, &len);
	c = chart_load_archive(gz, len, err, sizeof(err));
	free(gz);
	check(c == NULL && strstr(err, "cannot load values.yaml: top level is not a map"));
	const char *d4[] = { "name: c\nversion: 0.1.0\n", "a: [\n", schema, tmpl, big };
	gz = make_tgz(names, "00000", d4, 5, &len);
	c = chart_load_archive(gz, len, err, sizeof(err));
	free(gz);
	check(c == NULL && strstr(err, "cannot load values.yaml: "));
	free(big);
}


/* render a loaded chart with user values (may be NULL): the manifest
 * (malloc'd) or NULL */
static char *render_manifest_with(struct chart *c, const json_t *user)
{
	char err[2048];
	if (!c)
		return NULL;
	struct chart_render_opts o = { 0 };
	o.release_name = "r";
	o.namespace_ = "ns";
	struct chart_render *r = chart_render(c, user, &o, err, sizeof(err));
	char *m = r ? strdup(chart_render_manifest(r)) : NULL;
	if (!r)
		printf("  render: %s\n", err);
	chart_render_free(r);
	return m;
}

static char *render_manifest(struct chart *c) { return render_manifest_with(c, NULL); }

/*
 * Chart files are parsed on two threads (chart.c, "Parallel loading"): the
 * result must be what parsing them one by one in Helm's order gives.
 */
static void test_parallel_load(void)
{
	char err[2048];
	/* 12 templates, so directory-style loading uses the queue too; "x" is
	 * defined three times: Helm parses deeper paths first, then names in
	 * reverse order, so templates/_a.tpl comes last and wins */
	enum { NT = 14 };
	const char *names[NT] = { "c/Chart.yaml", "c/values.yaml", "c/templates/_a.tpl", "c/templates/_b.tpl",
				  "c/templates/sub/_c.tpl" };
	const char *datas[NT] = { "name: c\nversion: 0.1.0\n", "v: 1\n", "{{- define \"x\" }}A{{ end -}}",
				  "{{- define \"x\" }}B{{ end -}}", "{{- define \"x\" }}C{{ end -}}" };
	char nbuf[NT][64], dbuf[NT][96];
	for (int i = 5; i < NT; i++) {
		snprintf(nbuf[i], sizeof(nbuf[i]), "c/templates/t%02d.yaml", i);
		snprintf(dbuf[i], sizeof(dbuf[i]), "k%02d: {{ include \"x\" . }}-{{ .Values.v }}\n", i);
		names[i] = nbuf[i];
		datas[i] = dbuf[i];
	}
	char types[NT + 1];
	memset(types, '0', NT);
	types[NT] = 0;
	size_t len;
	unsigned char *gz = make_tgz(names, types, datas, NT, &len);
	struct chart *c1 = chart_load_archive(gz, len, err, sizeof(err));
	char *m1 = render_manifest(c1);
	check(m1 && strstr(m1, "k05: A-1\n") && strstr(m1, "k13: A-1\n") && !strstr(m1, "B-1") && !strstr(m1, "C-1"));
	/* the same files given one by one (the directory path) */
	const char *rel[NT];
	for (int i = 0; i < NT; i++)
		rel[i] = names[i] + 2;
	struct chart *c2 = chart_load_files(rel, datas, NT, err, sizeof(err));
	char *m2 = render_manifest(c2);
	check(m1 && m2 && !strcmp(m1, m2));
	chart_free(c2);
	free(m2);
	chart_free(c1);
	free(m1);
	free(gz);

	/* two broken templates: the error is the first one in Helm's order,
	 * whichever thread parsed it */
	datas[7] = "{{ if }}";
	datas[9] = "{{ end }}";
	gz = make_tgz(names, types, datas, NT, &len);
	struct chart *c = chart_load_archive(gz, len, err, sizeof(err));
	check(c != NULL);
	char *m3 = render_manifest(c);
	check(m3 == NULL);
	struct chart_render *r = c ? chart_render(c, NULL, NULL, err, sizeof(err)) : NULL;
	check(r == NULL && strstr(err, "c/templates/t09.yaml") != NULL);
	chart_render_free(r);
	chart_free(c);
	c2 = chart_load_files(rel, datas, NT, err, sizeof(err));
	char err2[2048];
	r = c2 ? chart_render(c2, NULL, NULL, err2, sizeof(err2)) : NULL;
	check(r == NULL && !strcmp(err, err2));
	chart_render_free(r);
	chart_free(c2);

	/* a gzip size field that lies makes the buffer move mid-way: the early
	 * work is dropped, and zlib's length check then refuses the archive */
	unsigned char *bad = malloc(len);
	memcpy(bad, gz, len);
	bad[len - 4] = 0x10;
	bad[len - 3] = bad[len - 2] = bad[len - 1] = 0;
	c = chart_load_archive(bad, len, err, sizeof(err));
	check(c == NULL && strstr(err, "gzip") != NULL);
	free(bad);
	free(gz);
}

/* a real chart read from its .tgz and from an unpacked directory renders
 * the same */
static void test_archive_vs_directory(void)
{
	const char *shared = getenv("FERRY_SHARED");
	char path[1024], dir[] = "/tmp/ferry-chart-XXXXXX", cmd[2200], err[4096];
	snprintf(path, sizeof(path), "%s/charts/cilium-1.18.3.tgz", shared ? shared : "../shared");
	if (!mkdtemp(dir)) {
		check(0);
		return;
	}
	snprintf(cmd, sizeof(cmd), "tar -xzf '%s' -C '%s'", path, dir);
	check(system(cmd) == 0);
	char sub[1100];
	snprintf(sub, sizeof(sub), "%s/cilium", dir);
	struct chart *a = chart_load(path, err, sizeof(err));
	struct chart *b = chart_load(sub, err, sizeof(err));
	/* no generated certificates: they differ from render to render */
	const char *sets[] = { "hubble.enabled=false", NULL };
	json_t *user = chart_values_merge(NULL, 0, sets, NULL, NULL, err, sizeof(err));
	char *ma = render_manifest_with(a, user), *mb = render_manifest_with(b, user);
	json_decref(user);
	check(ma && mb && strlen(ma) > 20000 && !strcmp(ma, mb));
	free(ma);
	free(mb);
	chart_free(a);
	chart_free(b);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	check(system(cmd) == 0);
}


/* Go's filepath.Match cases (1 match, 0 no match, -1 malformed pattern) */
static void test_helmignore_match(void)
{
	static const struct { const char *pat, *name; int want; } cases[] = {
		{ "abc", "abc", 1 }, { "*", "abc", 1 }, { "*c", "abc", 1 }, { "a*", "a", 1 },
		{ "a*", "abc", 1 }, { "a*", "ab/c", 0 }, { "a*/b", "abc/b", 1 }, { "a*/b", "a/c/b", 0 },
		{ "a*b*c*d*e*/f", "axbxcxdxe/f", 1 }, { "a*b*c*d*e*/f", "axbxcxdxexxx/f", 1 },
		{ "a*b*c*d*e*/f", "axbxcxdxe/xxx/f", 0 }, { "a*b*c*d*e*/f", "axbxcxdxexxx/fff", 0 },
		{ "a*b?c*x", "abxbbxdbxebxczzx", 1 }, { "a*b?c*x", "abxbbxdbxebxczzy", 0 },
		{ "ab[c]", "abc", 1 }, { "ab[b-d]", "abc", 1 }, { "ab[e-g]", "abc", 0 },
		{ "ab[^c]", "abc", 0 }, { "ab[^b-d]", "abc", 0 }, { "ab[^e-g]", "abc", 1 },
		{ "a\\*b", "a*b", 1 }, { "a\\*b", "ab", 0 }, { "a?b", "a\xe2\x98\xba" "b", 1 },
		{ "a[^a]b", "a\xe2\x98\xba" "b", 1 }, { "a???b", "a\xe2\x98\xba" "b", 0 },
		{ "a[^a][^a][^a]b", "a\xe2\x98\xba" "b", 0 }, { "[a-\xce\xb6]*", "\xce\xb1", 1 },
		{ "*[a-\xce\xb6]", "A", 0 }, { "a?b", "a/b", 0 }, { "a*b", "a/b", 0 },
		{ "[\\]a]", "]", 1 }, { "[\\-]", "-", 1 }, { "[x\\-]", "x", 1 }, { "[x\\-]", "-", 1 },
		{ "[x\\-]", "z", 0 }, { "[\\-x]", "x", 1 }, { "[\\-x]", "-", 1 }, { "[\\-x]", "a", 0 },
		{ "[]a]", "]", -1 }, { "[-]", "-", -1 }, { "[x-]", "x", -1 }, { "[x-]", "-", -1 },
		{ "[x-]", "z", -1 }, { "[-x]", "x", -1 }, { "[-x]", "-", -1 }, { "[-x]", "a", -1 },
		{ "\\", "a", -1 }, { "[a-b-c]", "a", -1 }, { "[", "a", -1 }, { "[^", "a", -1 },
		{ "[^bc", "a", -1 }, { "a[", "a", -1 }, { "a[", "ab", -1 }, { "a[", "x", -1 },
		{ "a/b[", "x", -1 }, { "*x", "xxx", 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = helmignore_match(cases[i].pat, cases[i].name);
		if (got != cases[i].want)
			printf("  match(%s, %s) = %d, want %d\n", cases[i].pat, cases[i].name, got, cases[i].want);
		check(got == cases[i].want);
	}
	/* rules: base names, rooted and structural paths, directories only,
	 * Helm's negation and its default rule for hidden templates */
	char err[256];
	const char *text = "# comment\n\n  *.md  \n/top.txt\nsub/*.txt\nbuild/\n";
	struct helmignore *h = helmignore_parse(text, strlen(text), err, sizeof(err));
	check(h != NULL);
	check(helmignore_ignored(h, "README.md", 0) && helmignore_ignored(h, "docs/x.md", 0));
	check(helmignore_ignored(h, "top.txt", 0) && !helmignore_ignored(h, "a/top.txt", 0));
	check(helmignore_ignored(h, "sub/a.txt", 0) && !helmignore_ignored(h, "sub/deeper/a.txt", 0));
	check(helmignore_ignored(h, "build", 1) && !helmignore_ignored(h, "build", 0));
	check(helmignore_ignored(h, "templates/.hidden.yaml", 0) && !helmignore_ignored(h, "templates/x.yaml", 0));
	check(!helmignore_ignored(h, "values.yaml", 0) && !helmignore_ignored(h, ".", 1));
	helmignore_free(h);
	h = helmignore_parse("!keep.txt\n", 10, err, sizeof(err));
	check(h && !helmignore_ignored(h, "keep.txt", 0) && helmignore_ignored(h, "other.txt", 0));
	helmignore_free(h);
	check(helmignore_parse("a[\n", 3, err, sizeof(err)) == NULL && strstr(err, "syntax error in pattern: a["));
	check(helmignore_parse("x/**/y\n", 7, err, sizeof(err)) == NULL && strstr(err, "double-star"));
}

/* a chart directory's .helmignore decides what .Files holds */
static void test_helmignore_dir(void)
{
	char dir[] = "/tmp/ferry-helmignore-XXXXXX", cmd[512], err[1024];
	if (!mkdtemp(dir)) {
		check(0);
		return;
	}
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && mkdir -p templates docs keep skip && printf 'name: h\\nversion: 0.1.0\\n' > Chart.yaml && "
		 "printf 'a: 1\\n' > values.yaml && printf 'x' > top.txt && printf 'x' > docs/a.md && printf 'x' > docs/b.txt && "
		 "printf 'x' > keep/c.txt && printf 'x' > skip/d.txt && printf '{{ broken' > templates/.backup.yaml && "
		 "printf 'files: {{ range $p, $_ := .Files.Glob \"**\" }}{{ $p }} {{ end }}\\n' > templates/f.yaml && "
		 "printf '*.md\\n/top.txt\\nskip/\\n.helmignore\\n' > .helmignore", dir);
	check(system(cmd) == 0);
	struct chart *c = chart_load(dir, err, sizeof(err));
	check(c != NULL);
	if (c) {
		struct chart_render *r = chart_render(c, NULL, NULL, err, sizeof(err));
		check(r != NULL);
		if (r)
			check_str(chart_render_manifest(r), "---\n# Source: h/templates/f.yaml\nfiles: docs/b.txt keep/c.txt\n");
		chart_render_free(r);
		chart_free(c);
	}
	/* a malformed rule stops the load with a clear message */
	snprintf(cmd, sizeof(cmd), "printf 'ok\\n[oops\\n' > '%s/.helmignore'", dir);
	check(system(cmd) == 0);
	c = chart_load(dir, err, sizeof(err));
	check(c == NULL && strstr(err, ".helmignore: syntax error in pattern: [oops"));
	chart_free(c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	check(system(cmd) == 0);
}

/* gzip framing is checked by ferry itself (libdeflate raw inflate + own trailer check) */
static void test_gzip_framing(void)
{
	char err[1024];
	const char *names[] = { "c/Chart.yaml", "c/templates/a.yaml" };
	const char *datas[] = { "name: c\nversion: 0.1.0\n", "a: 1\n" };
	size_t len;
	unsigned char *gz = make_tgz(names, "00", datas, 2, &len);
	struct archive ar;
	check(archive_read_tgz(gz, len, &ar, err, sizeof(err)) == 0 && ar.n == 2);
	archive_free(&ar);
	/* a wrong CRC in the trailer */
	unsigned char *bad = malloc(len + 64);
	memcpy(bad, gz, len);
	bad[len - 8] ^= 1;
	check(archive_read_tgz(bad, len, &ar, err, sizeof(err)) != 0 && strstr(err, "incorrect data check"));
	/* trailing garbage after the member */
	memcpy(bad, gz, len);
	memcpy(bad + len, "\0\0\0\0", 4);
	check(archive_read_tgz(bad, len + 4, &ar, err, sizeof(err)) != 0 && strstr(err, "gzip"));
	/* a truncated trailer */
	check(archive_read_tgz(gz, len - 3, &ar, err, sizeof(err)) != 0 && strstr(err, "gzip"));
	/* a header with a file name and an extra field, then a second member
	 * (an empty one) */
	size_t hl = 10;
	unsigned char *named = malloc(len + 64);
	memcpy(named, gz, 10);
	named[3] = 4 | 8;                        /* FEXTRA | FNAME */
	memcpy(named + 10, "\x03\x00" "abc" "chart.tar\0", 2 + 3 + 10);
	memcpy(named + 25, gz + hl, len - hl);
	size_t nl = 25 + len - hl;
	static const unsigned char empty_member[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	memcpy(named + nl, empty_member, sizeof(empty_member));
	check(archive_read_tgz(named, nl + sizeof(empty_member), &ar, err, sizeof(err)) == 0 && ar.n == 2);
	if (ar.n == 2)
		check_str(ar.e[1].data, "a: 1\n");
	archive_free(&ar);
	free(named);
	free(bad);
	free(gz);
}

/* several threads render the same loaded chart at once */
struct tjob { struct chart *c; json_t *user; char *manifest; int ok; };

static void *render_thread(void *arg)
{
	struct tjob *j = arg;
	char err[1024];
	struct chart_render_opts o = { 0 };
	o.release_name = "cilium";
	o.namespace_ = "kube-system";
	struct chart_render *r = chart_render(j->c, j->user, &o, err, sizeof(err));
	if (r) {
		j->manifest = strdup(chart_render_manifest(r));
		j->ok = 1;
	}
	chart_render_free(r);
	return NULL;
}

static void test_concurrent(void)
{
	const char *shared = getenv("FERRY_SHARED");
	char path[1024], err[1024];
	snprintf(path, sizeof(path), "%s/charts/cilium-1.18.3.tgz", shared ? shared : "../shared");
	struct chart *c = chart_load(path, err, sizeof(err));
	check(c != NULL);
	if (!c)
		return;
	const char *sets[] = { "hubble.enabled=false", NULL };
	json_t *user = chart_values_merge(NULL, 0, sets, NULL, NULL, err, sizeof(err));
	struct tjob jobs[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct tjob){ c, user, NULL, 0 };
		check(pthread_create(&th[i], NULL, render_thread, &jobs[i]) == 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++) {
		check(jobs[i].ok);
		if (jobs[i].ok && jobs[0].ok)
			check(!strcmp(jobs[i].manifest, jobs[0].manifest));
	}
	for (int i = 0; i < 4; i++)
		free(jobs[i].manifest);
	json_decref(user);
	chart_free(c);
}

/* ---------------------------------------------------------------- JSON reader, more */

/* cv_from_json against jansson + cv_from_jansson (both typings): same
 * result, same message, same values. 0 when they differ (a line printed). */
static int json_vs_jansson(const char *label, const char *doc, size_t len)
{
	int ok = 1;
	for (int ints = 0; ints < 2; ints++) {
		struct cv_arena *a = cv_arena_new();
		char e1[256] = "", e2[256] = "";
		cv v1 = cv_nil(), v2 = cv_nil();
		int r1 = cv_from_json(a, doc, len, &v1, ints, e1, sizeof(e1));
		json_error_t je;
		json_t *j = json_loadb(doc, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
		int r2 = j ? 0 : -1;
		if (j) {
			v2 = cv_from_jansson(a, j, ints);
			json_decref(j);
		} else
			snprintf(e2, sizeof(e2), "%s (line %d column %d)", je.text, je.line, je.column);
		if (r1 != r2 || (r1 == 0 && !cv_strict_equal(v1, v2, NULL, 0)) || strcmp(e1, e2)) {
			printf("  json reader differs on %s [%.80s] ints=%d: %d/%d %s / %s\n", label, doc, ints, r1, r2, e1, e2);
			ok = 0;
		}
		cv_arena_free(a);
	}
	return ok;
}

static void test_json_reader_more(void)
{
	struct buf b = BUF_INIT;
	char label[64];
	/* strings of every length up to 40 with one special byte at each
	 * position (the word-at-a-time scan stops at the right byte) */
	const char *specials[] = { "\\n", "\\\"", "\\\\", "\\u00e9", "\\ud83d\\ude00", "\x01", "\t", "\xc3\xa9", "\\u0000", "\x7f", "\\x" };
	for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++)
		for (int len = 0; len <= 40; len++)
			for (int pos = 0; pos <= len; pos++) {
				buf_reset(&b);
				buf_puts(&b, "{\"");
				for (int i = 0; i < len; i++) {
					if (i == pos)
						buf_puts(&b, specials[k]);
					buf_putc(&b, (char)('a' + i % 26));
				}
				if (pos == len)
					buf_puts(&b, specials[k]);
				buf_puts(&b, "\": \"");
				for (int i = 0; i < len; i++)
					buf_putc(&b, (char)('A' + i % 26));
				if (pos < len)
					buf_puts(&b, specials[k]);
				buf_puts(&b, "\"}");
				snprintf(label, sizeof(label), "special %zu len %d pos %d", k, len, pos);
				check(json_vs_jansson(label, b.data, b.len));
			}
	/* runs of blanks of every length before and after every token */
	const char *blanks[] = { " ", "\n", "\t", "\r\n", "  \t" };
	for (size_t k = 0; k < sizeof(blanks) / sizeof(blanks[0]); k++)
		for (int len = 0; len <= 40; len++) {
			struct buf ws = BUF_INIT;
			buf_puts(&ws, "\n");
			for (int i = 0; i < len; i++)
				buf_puts(&ws, i % 7 == 6 ? blanks[k] : " ");
			buf_reset(&b);
			const char *toks[] = { "{", "\"a\"", ":", "[", "1", ",", "true", ",", "{", "}", ",", "[", "]", "]", ",",
					       "\"b\"", ":", "null", "}" };
			for (size_t t = 0; t < sizeof(toks) / sizeof(toks[0]); t++) {
				buf_append(&b, ws.data, ws.len);
				buf_puts(&b, toks[t]);
			}
			buf_append(&b, ws.data, ws.len);
			buf_free(&ws);
			snprintf(label, sizeof(label), "blanks %zu len %d", k, len);
			check(json_vs_jansson(label, b.data, b.len));
		}
	/* many keys in random order, with repeats (the last value wins) */
	unsigned x = 12345;
	for (int round = 0; round < 20; round++) {
		buf_reset(&b);
		buf_putc(&b, '{');
		int n = 1 + round * 15;
		for (int i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			unsigned k = (x >> 16) % (unsigned)(n / 2 + 1);
			buf_printf(&b, "%s\"%s%u\": {\"v\": %d, \"l\": [%d, \"s%u\"]}", i ? ", " : "", (x >> 8) & 1 ? "key" : "k", k, i,
				   -i, k);
		}
		buf_putc(&b, '}');
		snprintf(label, sizeof(label), "keys round %d", round);
		check(json_vs_jansson(label, b.data, b.len));
	}
	/* numbers around the direct integer path's 18 digits */
	const char *nums[] = { "999999999999999999", "1000000000000000000", "-999999999999999999", "-1000000000000000000",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809", "0", "-0",
		"123456789012345678", "1234567890123456789", "12345678901234567890123", "1e5", "-1.5e-3", "0.000",
		"100000000000000000000000000000000000000000000000000000000000000000000000000", "[1,-2,3.5,-0.0,1E2]" };
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		check(json_vs_jansson(nums[i], nums[i], strlen(nums[i])));
	buf_free(&b);
	/* every chart's values.schema.json */
	const char *sh = getenv("FERRY_SHARED");
	char dir[512], err[512];
	snprintf(dir, sizeof(dir), "%s/charts", sh && *sh ? sh : "/work/shared");
	const char *charts[] = { "cilium-1.12.0.tgz", "cilium-1.15.1.tgz", "cilium-1.18.2.tgz", "cilium-1.18.3.tgz" };
	int schemas = 0;
	for (size_t c = 0; c < sizeof(charts) / sizeof(charts[0]); c++) {
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, charts[c]);
		size_t len;
		char *data = read_file_all(path, &len);
		struct archive ar;
		if (!data || archive_read_tgz(data, len, &ar, err, sizeof(err))) {
			free(data);
			continue;
		}
		for (size_t i = 0; i < ar.n; i++)
			if (!strcmp(ar.e[i].name, "values.schema.json")) {
				schemas++;
				check(json_vs_jansson(path, ar.e[i].data, ar.e[i].len));
			}
		archive_free(&ar);
		free(data);
	}
	check(schemas >= 2);
}

/* The arena: blocks come zeroed and never overlap, across small chunks,
 * mapped chunks faulted in window by window, and big blocks placed behind
 * the current chunk. The second pass gets the first pass's freed mapped
 * chunks back from the chunk cache (value.c), written all over: they must
 * come zeroed again. */
static void test_arena(void)
{
	for (int pass = 0; pass < 2; pass++) {
		struct cv_arena *a = cv_arena_new();
		enum { N = 3000 };
		static unsigned char *blk[N];
		static size_t len[N];
		unsigned seed = 12345;
		size_t total = 0;
		int zero_ok = 1, align_ok = 1;
		for (int i = 0; i < N; i++) {
			seed = seed * 1103515245u + 12345u;
			size_t n = (seed >> 8) % 3000;
			if (i % 97 == 0)
				n = 40000 + (seed >> 4) % 400000;   /* big blocks, some mapped */
			if (i % 500 == 1)
				n = 0;
			len[i] = n;
			blk[i] = cv_alloc(a, n);
			total += n;
			for (size_t k = 0; k < n; k++)
				if (blk[i][k]) {
					zero_ok = 0;
					break;
				}
			if ((uintptr_t)blk[i] % 16)
				align_ok = 0;
			memset(blk[i], (int)(i % 251) + 1, n);
		}
		int intact = 1;
		for (int i = 0; i < N && intact; i++)
			for (size_t k = 0; k < len[i]; k++)
				if (blk[i][k] != (unsigned char)(i % 251 + 1)) {
					intact = 0;
					break;
				}
		check(zero_ok);
		check(align_ok);
		check(intact);
		check(total > (size_t)8 * 1024 * 1024);
		check(cv_arena_used(a) >= total);
		/* merging moves the blocks along with the arena */
		struct cv_arena *b = cv_arena_new();
		char *keep = cv_strndup(b, "survives", 8);
		cv_arena_merge(a, b);
		check_str(keep, "survives");
		cv_arena_free(a);
	}
}

int main(void)
{
	C = test_chart();
	if (!C) {
		printf("FAIL: chart: cannot build the test chart\n");
		return 1;
	}
	test_run("chart_lexer", test_lexer);
	test_run("chart_exec", test_exec);
	test_run("chart_funcs", test_funcs);
	test_run("chart_certs", test_certs);
	test_run("chart_certs_signed_by_ca", test_certs_signed_by_ca);
	test_run("chart_values_coalesce", test_values);
	test_run("chart_set_grammar", test_set_grammar);
	test_run("chart_documents", test_documents);
	test_run("chart_archive", test_archive);
	test_run("chart_real_charts", test_real_charts);
	test_run("chart_concurrent_renders", test_concurrent);
	test_run("chart_lookup_callback", test_lookup);
	test_run("chart_values_schema", test_schema);
	test_run("chart_json_reader", test_json_reader);
	test_run("chart_archive_early_parse", test_archive_early_parse);
	test_run("chart_parallel_load", test_parallel_load);
	test_run("chart_gzip_framing", test_gzip_framing);
	test_run("chart_archive_vs_directory", test_archive_vs_directory);
	test_run("chart_json_reader_more", test_json_reader_more);
	test_run("chart_arena", test_arena);
	test_run("chart_helmignore_match", test_helmignore_match);
	test_run("chart_helmignore_dir", test_helmignore_dir);
	chart_free(C);
	return test_summary();
}

/*
 * test_kubeconfig: kubeconfig import (server/common/kubeconfig.h): context
 * choice, *-data decoding, and every refusal (exec, auth-provider,
 * insecure-skip-tls-verify, file references, basic auth, http, missing
 * pieces), plus file references when the caller allows a base directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/common/kubeconfig.h"
#include "tests/unit/testlib.h"

static const char ca_pem[] =
	"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
static const char key_pem[] =
	"-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----\n";

/* A kubeconfig with two contexts; user_block and cluster_extra are spliced in. */
static char *make_kc(const char *current, const char *server, const char *cluster_extra,
		     const char *user_block)
{
	char *ca64 = base64_encode(ca_pem, strlen(ca_pem));
	struct buf b = BUF_INIT;
	buf_printf(&b,
		   "apiVersion: v1\nkind: Config\n%s%s%s"
		   "clusters:\n"
		   "- name: c1\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n%s"
		   "- name: c2\n  cluster:\n    server: https://two.example\n"
		   "contexts:\n"
		   "- name: one\n  context:\n    cluster: c1\n    user: u1\n"
		   "- name: two\n  context:\n    cluster: c2\n    user: u2\n"
		   "users:\n"
		   "- name: u1\n  user:\n%s"
		   "- name: u2\n  user:\n    token: tok-two\n",
		   current ? "current-context: " : "", current ? current : "", current ? "\n" : "",
		   server, ca64, cluster_extra ? cluster_extra : "",
		   user_block ? user_block : "    token: tok-one\n");
	free(ca64);
	return buf_steal(&b);
}

static int parse(const char *kc, const char *ctx, int allow, const char *base,
		 struct kubeconfig_creds *out, char *err, size_t errlen)
{
	struct kubeconfig_opts o = { allow, base };
	return kubeconfig_parse(kc, strlen(kc), ctx, &o, out, err, errlen);
}

static void test_current_context(void)
{
	char err[512] = "";
	struct kubeconfig_creds c;
	char *kc = make_kc("one", "https://one.example:6443", NULL, NULL);
	check(parse(kc, NULL, 0, NULL, &c, err, sizeof(err)) == 0);
	check_str(c.context, "one");
	check_str(c.api_server, "https://one.example:6443");
	check_str(c.token, "tok-one");
	check_str(c.ca_pem, ca_pem);
	check(c.client_cert_pem == NULL);
	check(c.insecure == 0);
	kubeconfig_creds_free(&c);
	/* An explicit context wins over current-context. */
	check(parse(kc, "two", 0, NULL, &c, err, sizeof(err)) == 0);
	check_str(c.api_server, "https://two.example");
	check_str(c.token, "tok-two");
	check(c.ca_pem == NULL);
	kubeconfig_creds_free(&c);
	free(kc);
}

static void test_no_current_context(void)
{
	char err[512] = "";
	struct kubeconfig_creds c;
	char *kc = make_kc(NULL, "https://one.example", NULL, NULL);
	check(parse(kc, NULL, 0, NULL, &c, err, sizeof(err)) == -1);
	check(strstr(err, "one, two") != NULL);
	check(parse(kc, "nope", 0, NULL, &c, err, sizeof(err)) == -1);
	check(strstr(err, "\"nope\"") != NULL);
	free(kc);
}

static void test_client_cert_data(void)
{
	char err[512] = "";
	struct kubeconfig_creds c;
	char *c64 = base64_encode(ca_pem, strlen(ca_pem));
	char *k64 = base64_encode(key_pem, strlen(key_pem));
	char user[2048];
	snprintf(user, sizeof(user),
		 "    client-certificate-data: %s\n    client-key-data: %s\n    token: also\n", c64, k64);
	char *kc = make_kc("one", "https://one.example", "    tls-server-name: kubernetes\n", user);
	check(parse(kc, NULL, 0, NULL, &c, err, sizeof(err)) == 0);
	check_str(c.client_cert_pem, ca_pem);
	check_str(c.client_key_pem, key_pem);
	check(c.token == NULL); /* the certificate is kept, the token dropped */
	check_str(c.tls_server_name, "kubernetes");
	kubeconfig_creds_free(&c);
	free(kc);
	/* Certificate without key. */
	snprintf(user, sizeof(user), "    client-certificate-data: %s\n", c64);
	kc = make_kc("one", "https://one.example", NULL, user);
	check(parse(kc, NULL, 0, NULL, &c, err, sizeof(err)) == -1);
	check(strstr(err, "key") != NULL);
	free(kc);
	free(c64);
	free(k64);
}

struct refusal {
	const char *name;
	const char *server;
	const char *cluster_extra;
	const char *user;
	const char *word;     /* must appear in the message */
};

static void test_refusals(void)
{
	static const struct refusal cases[] = {
		{ "exec", NULL, NULL, "    exec:\n      command: aws\n", "exec" },
		{ "exec+token", NULL, NULL, "    token: t\n    exec:\n      command: aws\n", "exec" },
		{ "auth-provider", NULL, NULL, "    auth-provider:\n      name: oidc\n", "auth-provider" },
		{ "insecure", NULL, "    insecure-skip-tls-verify: true\n", NULL, "insecure-skip-tls-verify" },
		{ "token file", NULL, NULL, "    tokenFile: /etc/shadow\n", "tokenFile" },
		{ "cert file", NULL, NULL, "    client-certificate: /x.crt\n    client-key: /x.key\n", "file" },
		{ "basic", NULL, NULL, "    username: u\n    password: p\n", "basic" },
		{ "no cred", NULL, NULL, "    {}\n", "no usable credential" },
		{ "http", "http://one.example", NULL, NULL, "https" },
		{ "no server", "\"\"", NULL, NULL, "no server" },
		{ "bad token", NULL, NULL, "    token: \"a b\"\n", "spaces" },
		{ "proxy", NULL, "    proxy-url: http://proxy\n", NULL, "proxy-url" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct refusal *rc = &cases[i];
		char err[512] = "";
		struct kubeconfig_creds c;
		char *kc = make_kc("one", rc->server ? rc->server : "https://one.example",
				   rc->cluster_extra, rc->user);
		int r = parse(kc, NULL, 0, NULL, &c, err, sizeof(err));
		if (r != -1 || (rc->word && !strstr(err, rc->word))) {
			char msg[700];
			snprintf(msg, sizeof(msg), "case %s: rc %d, err \"%s\"", rc->name, r, err);
			testlib_fail(__FILE__, __LINE__, msg);
		}
		if (r == 0)
			kubeconfig_creds_free(&c);
		free(kc);
	}
}

/* With both, the inline data wins (as in kubectl) and no file is read. */
static void test_data_beats_file(void)
{
	char err[512] = "";
	struct kubeconfig_creds c;
	char *kc = make_kc("one", "https://one.example", "    certificate-authority: /nonexistent/ca.pem\n",
			   NULL);
	check(parse(kc, NULL, 0, NULL, &c, err, sizeof(err)) == 0);
	check_str(c.ca_pem, ca_pem);
	kubeconfig_creds_free(&c);
	free(kc);
}

static void test_allow_insecure(void)
{
	char err[512] = "";
	struct kubeconfig_creds c;
	char *kc = make_kc("one", "https://one.example", "    insecure-skip-tls-verify: true\n", NULL);
	check(parse(kc, NULL, 1, NULL, &c, err, sizeof(err)) == 0);
	check(c.insecure == 1);
	kubeconfig_creds_free(&c);
	free(kc);
	kc = make_kc("one", "https://one.example", NULL, "    token: t\n    exec:\n      command: aws\n");
	check(parse(kc, NULL, 1, NULL, &c, err, sizeof(err)) == 0);
	check_str(c.token, "t");
	kubeconfig_creds_free(&c);
	free(kc);
	/* A plugin alone cannot be used even when allowed. */
	kc = make_kc("one", "https://one.example", NULL, "    exec:\n      command: aws\n");
	check(parse(kc, NULL, 1, NULL, &c, err, sizeof(err)) == -1);
	check(strstr(err, "plugins") != NULL);
	free(kc);
}

static void test_files_with_base_dir(void)
{
	char dir[] = "/tmp/ferry-kc-XXXXXX";
	check(mkdtemp(dir) != NULL);
	char path[256];
	snprintf(path, sizeof(path), "%s/token", dir);
	FILE *fp = fopen(path, "w");
	check(fp != NULL);
	if (!fp)
		return;
	fputs("  file-token\n", fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	fp = fopen(path, "w");
	fputs(ca_pem, fp);
	fclose(fp);
	char err[512] = "";
	struct kubeconfig_creds c;
	char *kc = make_kc("two", "https://one.example", NULL, NULL);
	/* Replace user two's inline token by a tokenFile, and give c2 a CA file. */
	struct buf b = BUF_INIT;
	const char *at = strstr(kc, "    token: tok-two\n");
	check(at != NULL);
	if (!at)
		return;
	buf_append(&b, kc, (size_t)(at - kc));
	buf_puts(&b, "    tokenFile: token\n");
	char *kc2 = buf_steal(&b);
	char *cl2 = strstr(kc2, "server: https://two.example\n");
	check(cl2 != NULL);
	buf_append(&b, kc2, (size_t)(cl2 - kc2));
	buf_puts(&b, "server: https://two.example\n    certificate-authority: ca.pem\n");
	buf_puts(&b, cl2 + strlen("server: https://two.example\n"));
	char *kc3 = buf_steal(&b);
	check(parse(kc3, NULL, 0, dir, &c, err, sizeof(err)) == 0);
	check_str(c.token, "file-token");
	check_str(c.ca_pem, ca_pem);
	kubeconfig_creds_free(&c);
	/* Without a base directory the same document is refused. */
	check(parse(kc3, NULL, 0, NULL, &c, err, sizeof(err)) == -1);
	free(kc);
	free(kc2);
	free(kc3);
	snprintf(path, sizeof(path), "%s/token", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	unlink(path);
	rmdir(dir);
}

static void test_garbage(void)
{
	static const char *const docs[] = {
		"", "[", "- a\n- b\n", "kind: Pod\n", "a: [1, {b: \n", "contexts: 5\ncurrent-context: x\n",
		"current-context: x\ncontexts:\n- name: x\n  context: {cluster: 1, user: [2]}\n",
		"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters: {c: 1}\n",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		char err[512] = "";
		struct kubeconfig_creds c;
		check(parse(docs[i], NULL, 0, NULL, &c, err, sizeof(err)) == -1);
		check(err[0] != '\0');
	}
}

/* Deterministic random mutations of a valid kubeconfig: every outcome is
 * fine except a crash, a sanitizer report or an error without a message. */
static void test_mutations(void)
{
	char *kc = make_kc("one", "https://one.example", NULL, NULL);
	size_t n = strlen(kc);
	unsigned int seed = 12345;
	static const char alphabet[] = "{}[]:,-'\"!&*|>#\n \t?%@`abc019";
	for (int round = 0; round < 3000; round++) {
		char *m = xstrdup(kc);
		int edits = 1 + round % 4;
		for (int e = 0; e < edits; e++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % n;
			seed = seed * 1103515245u + 12345u;
			m[at] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
		}
		seed = seed * 1103515245u + 12345u;
		size_t len = round % 7 == 0 ? (seed >> 8) % n : n; /* sometimes truncated */
		char err[512] = "";
		struct kubeconfig_creds c;
		struct kubeconfig_opts o = { round % 2, NULL };
		int rc = kubeconfig_parse(m, len, NULL, &o, &c, err, sizeof(err));
		if (rc == 0) {
			check(c.api_server != NULL);
			check(c.token != NULL || c.client_cert_pem != NULL);
			kubeconfig_creds_free(&c);
		} else {
			check(err[0] != '\0');
		}
		free(m);
	}
	free(kc);
}

int main(void)
{
	test_run("kubeconfig_current_context", test_current_context);
	test_run("kubeconfig_no_current_context", test_no_current_context);
	test_run("kubeconfig_client_cert_data", test_client_cert_data);
	test_run("kubeconfig_refusals", test_refusals);
	test_run("kubeconfig_data_beats_file", test_data_beats_file);
	test_run("kubeconfig_allow_insecure", test_allow_insecure);
	test_run("kubeconfig_files_with_base_dir", test_files_with_base_dir);
	test_run("kubeconfig_garbage", test_garbage);
	test_run("kubeconfig_mutations", test_mutations);
	return test_summary();
}

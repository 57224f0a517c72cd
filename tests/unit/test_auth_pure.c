/*
 * test_auth_pure: the pure parts of issue 15's modules: trusted-proxy CIDRs
 * and the client address / scheme of a request (server/trustproxy.c), and
 * the OIDC settings and group -> tenant/role mapping (api/oidc.c, no
 * network: the issuer is only contacted on first use).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "api/oidc.h"
#include "server/trustproxy.h"
#include "tests/unit/testlib.h"

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static void t_cidrs(void)
{
	char err[160];
	struct trustproxy *tp = trustproxy_parse("10.0.0.0/8, 192.0.2.7,fd00::/8", err, sizeof(err));
	check(tp != NULL);
	check(trustproxy_count(tp) == 3);
	check(trustproxy_contains_text(tp, "10.200.1.1"));
	check(!trustproxy_contains_text(tp, "11.0.0.1"));
	check(trustproxy_contains_text(tp, "192.0.2.7"));
	check(!trustproxy_contains_text(tp, "192.0.2.8"));
	check(trustproxy_contains_text(tp, "fd12::1"));
	check(!trustproxy_contains_text(tp, "fe80::1"));
	check(trustproxy_contains_text(tp, "::ffff:10.1.2.3"));   /* mapped IPv4 */
	check(!trustproxy_contains_text(tp, "not-an-ip"));
	trustproxy_free(tp);
	check(trustproxy_parse("10.0.0.0/33", err, sizeof(err)) == NULL && strstr(err, "longer"));
	check(trustproxy_parse("10.0.0.0/", err, sizeof(err)) == NULL);
	check(trustproxy_parse("proxy.example", err, sizeof(err)) == NULL);
	check(trustproxy_parse("::/129", err, sizeof(err)) == NULL);
	tp = trustproxy_parse("", err, sizeof(err));
	check(tp && trustproxy_count(tp) == 0);
	trustproxy_free(tp);
	tp = trustproxy_parse("0.0.0.0/0", err, sizeof(err));
	check(tp && trustproxy_contains_text(tp, "203.0.113.1") && !trustproxy_contains_text(tp, "2001:db8::1"));
	trustproxy_free(tp);
}

static void t_client(void)
{
	char err[160], ip[46];
	int secure;
	struct trustproxy *tp = trustproxy_parse("10.0.0.0/8", err, sizeof(err));
	struct sockaddr_in proxy = v4("10.0.0.5"), other = v4("198.51.100.4");
	/* From the proxy: right-most untrusted X-Forwarded-For entry. */
	trustproxy_client(tp, (struct sockaddr *)&proxy, "1.2.3.4, 203.0.113.9, 10.0.0.7", "https", 0,
			  ip, &secure);
	check_str(ip, "203.0.113.9");
	check(secure == 1);
	trustproxy_client(tp, (struct sockaddr *)&proxy, NULL, "http,https", 0, ip, &secure);
	check_str(ip, "10.0.0.5");
	check(secure == 1);
	trustproxy_client(tp, (struct sockaddr *)&proxy, "garbage", "https, http", 0, ip, &secure);
	check_str(ip, "10.0.0.5");
	check(secure == 0);
	/* From anyone else the headers count for nothing. */
	trustproxy_client(tp, (struct sockaddr *)&other, "1.2.3.4", "https", 0, ip, &secure);
	check_str(ip, "198.51.100.4");
	check(secure == 0);
	trustproxy_client(tp, (struct sockaddr *)&other, NULL, NULL, 1, ip, &secure);
	check(secure == 1);
	trustproxy_client(NULL, (struct sockaddr *)&proxy, "1.2.3.4", "https", 0, ip, &secure);
	check_str(ip, "10.0.0.5");
	check(secure == 0);
	trustproxy_free(tp);
}

static struct oidc *with_env(const char *map, char *err, size_t errlen)
{
	setenv("FERRY_OIDC_CLIENT_ID", "ferry", 1);
	setenv("FERRY_OIDC_REDIRECT_URL", "https://ferry.example/v1/auth/callback", 1);
	if (map)
		setenv("FERRY_OIDC_ROLE_MAP", map, 1);
	else
		unsetenv("FERRY_OIDC_ROLE_MAP");
	return oidc_from_env("https://idp.example", err, errlen);
}

static void t_oidc_map(void)
{
	char err[256], tenant[64], why[256];
	enum api_role role;
	check(oidc_from_env(NULL, err, sizeof(err)) == NULL && err[0] == '\0');
	check(with_env(NULL, err, sizeof(err)) == NULL && strstr(err, "ROLE_MAP is required"));
	check(with_env("ops=acme", err, sizeof(err)) == NULL && strstr(err, "GROUP=TENANT:ROLE"));
	check(with_env("ops=Acme:admin", err, sizeof(err)) == NULL && strstr(err, "bad tenant"));
	check(with_env("ops=acme:owner", err, sizeof(err)) == NULL);
	check(with_env("cn=ops,dc=x=acme:viewer", err, sizeof(err)) == NULL);   /* ',' separates rules */
	struct oidc *o = with_env("/ops/net=acme:viewer, acme-ops=acme:operator,acme-admins=acme:admin,"
				  "globex=globex:viewer,root=*:admin", err, sizeof(err));
	check(o != NULL);
	if (!o)
		return;
	check_str(oidc_client_id(o), "ferry");
	check(oidc_session_ttl(o) == 8 * 3600);
	json_t *c = json_pack("{s:[s,s,s]}", "groups", "globex", "acme-admins", "acme-ops");
	/* First matching rule's tenant (acme-ops comes before globex in the
	 * map), highest role for it. */
	check(oidc_map(o, c, NULL, tenant, &role, why, sizeof(why)) == 0);
	check_str(tenant, "acme");
	check(role == API_ROLE_ADMIN);
	check(oidc_map(o, c, "globex", tenant, &role, why, sizeof(why)) == 0);
	check_str(tenant, "globex");
	check(role == API_ROLE_VIEWER);
	check(oidc_map(o, c, "*", tenant, &role, why, sizeof(why)) == -1);
	json_decref(c);
	c = json_pack("{s:s}", "groups", "root");   /* a single string claim */
	check(oidc_map(o, c, NULL, tenant, &role, why, sizeof(why)) == 0);
	check_str(tenant, "");
	check(role == API_ROLE_ADMIN);
	json_decref(c);
	c = json_pack("{s:[s]}", "groups", "/ops/net");   /* Keycloak-style group path */
	check(oidc_map(o, c, NULL, tenant, &role, why, sizeof(why)) == 0);
	check(role == API_ROLE_VIEWER);
	json_decref(c);
	c = json_pack("{s:[s]}", "roles", "acme-ops");
	check(oidc_map(o, c, NULL, tenant, &role, why, sizeof(why)) == -1);
	check(strstr(why, "groups") != NULL);
	json_decref(c);
	oidc_free(o);
	setenv("FERRY_OIDC_ROLE_MAP", "ops=acme:viewer", 1);
	check(oidc_from_env("http://idp.example", err, sizeof(err)) == NULL && strstr(err, "https://"));
	o = oidc_from_env("http://127.0.0.1:5556", err, sizeof(err));
	check(o != NULL);   /* loopback issuers may be plain HTTP */
	oidc_free(o);
}

int main(void)
{
	test_run("trustproxy_cidrs", t_cidrs);
	test_run("trustproxy_client_address_and_scheme", t_client);
	test_run("oidc_settings_and_group_mapping", t_oidc_map);
	return test_summary();
}

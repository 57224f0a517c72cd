/*
 * oidc: see oidc.h. Network calls (discovery, JWKS, token endpoint) use
 * one libcurl easy handle per call with short timeouts and a 1 MiB answer
 * cap; the issuer must be https:// unless it is on the loopback (tests,
 * a provider on the same host).
 */
#include "api/oidc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define OIDC_MAX_ANSWER (1024 * 1024)
#define OIDC_JWKS_MAX_AGE_S 3600
#define OIDC_DISCOVERY_RETRY_S 5
#define OIDC_MAX_RULES 64

struct rule {
	char *group;
	char *tenant;       /* "" = platform-wide */
	enum api_role role;
};

struct oidc {
	char *issuer;
	char *client_id;
	char *client_secret;   /* NULL = public client (PKCE only) */
	char *redirect_url;
	char *audience;        /* for API bearer tokens */
	char *groups_claim;
	char *scopes;
	char *ca_file;
	long session_ttl;
	int jwks_min_refresh;
	int skew;
	struct rule rules[OIDC_MAX_RULES];
	int nrules;

	pthread_mutex_t mu;
	json_t *discovery;     /* the provider's metadata, once fetched */
	time_t discovery_failed_at;
	json_t *jwks;
	time_t jwks_at;        /* when jwks was fetched (0 = never) */
	time_t jwks_failed_at; /* the last failed fetch (0 = none) */
};

static char *dupenv(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? xstrdup(v) : def ? xstrdup(def) : NULL;
}

static int loopback_url(const char *u)
{
	return !strncmp(u, "http://127.", 11) || !strncmp(u, "http://localhost:", 17) ||
	       !strncmp(u, "http://localhost/", 17) || !strncmp(u, "http://[::1]", 12);
}

static int url_ok(const char *u)
{
	return u && (!strncmp(u, "https://", 8) || loopback_url(u)) && !strpbrk(u, " \t\r\n\"<>");
}

static int parse_rules(struct oidc *o, const char *spec, char *err, size_t errlen)
{
	if (!spec)
		return 0;
	char *copy = xstrdup(spec), *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ')
			item++;
		if (!*item)
			continue;
		char *eq = strrchr(item, '=');
		char *colon = eq ? strrchr(eq, ':') : NULL;
		if (!eq || !colon || eq == item || colon == eq + 1) {
			snprintf(err, errlen, "FERRY_OIDC_ROLE_MAP: \"%.80s\" is not GROUP=TENANT:ROLE", item);
			free(copy);
			return -1;
		}
		*eq = *colon = '\0';
		enum api_role role = api_role_parse(colon + 1);
		const char *tenant = eq + 1;
		if (role == API_ROLE_NONE || (strcmp(tenant, "*") != 0 && !api_dns_label_ok(tenant))) {
			snprintf(err, errlen, "FERRY_OIDC_ROLE_MAP: bad tenant \"%.64s\" or role \"%.20s\" "
				 "(roles: viewer, operator, admin; tenant * = platform-wide)", tenant, colon + 1);
			free(copy);
			return -1;
		}
		if (o->nrules == OIDC_MAX_RULES) {
			snprintf(err, errlen, "FERRY_OIDC_ROLE_MAP: more than %d rules", OIDC_MAX_RULES);
			free(copy);
			return -1;
		}
		struct rule *r = &o->rules[o->nrules++];
		r->group = xstrdup(item);
		r->tenant = xstrdup(strcmp(tenant, "*") ? tenant : "");
		r->role = role;
	}
	free(copy);
	return 0;
}

static long env_long(const char *name, long lo, long hi, long def, int *bad)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *e;
	long n = strtol(v, &e, 10);
	if (*e || n < lo || n > hi)
		*bad = 1;
	return n;
}

struct oidc *oidc_from_env(const char *issuer, char *err, size_t errlen)
{
	err[0] = '\0';
	if (!issuer)
		return NULL;
	struct oidc *o = xcalloc(1, sizeof(*o));
	pthread_mutex_init(&o->mu, NULL);
	o->issuer = xstrdup(issuer);
	/* The issuer identifier is compared as a string: keep it exactly. */
	o->client_id = dupenv("FERRY_OIDC_CLIENT_ID", NULL);
	o->client_secret = dupenv("FERRY_OIDC_CLIENT_SECRET", NULL);
	const char *secret_file = getenv("FERRY_OIDC_CLIENT_SECRET_FILE");
	o->redirect_url = dupenv("FERRY_OIDC_REDIRECT_URL", NULL);
	o->groups_claim = dupenv("FERRY_OIDC_GROUPS_CLAIM", "groups");
	o->scopes = dupenv("FERRY_OIDC_SCOPES", "openid profile email groups");
	o->ca_file = dupenv("FERRY_OIDC_CA_FILE", NULL);
	int bad = 0;
	o->session_ttl = env_long("FERRY_OIDC_SESSION_HOURS", 1, 24 * 30, 8, &bad) * 3600;
	o->jwks_min_refresh = (int)env_long("FERRY_OIDC_JWKS_MIN_REFRESH_S", 0, 86400, 60, &bad);
	o->skew = (int)env_long("FERRY_OIDC_CLOCK_SKEW_S", 0, 600, 60, &bad);
	if (!url_ok(o->issuer)) {
		snprintf(err, errlen, "--oidc-issuer/FERRY_OIDC_ISSUER must be an https:// URL "
			 "(http:// only on the loopback)");
		goto fail;
	}
	if (!o->client_id) {
		snprintf(err, errlen, "FERRY_OIDC_CLIENT_ID is required with an OIDC issuer");
		goto fail;
	}
	if (!o->redirect_url || !url_ok(o->redirect_url)) {
		snprintf(err, errlen, "FERRY_OIDC_REDIRECT_URL must be ferryd's public callback URL, "
			 "https://HOST/v1/auth/callback (http:// only on the loopback)");
		goto fail;
	}
	if (bad) {
		snprintf(err, errlen, "FERRY_OIDC_SESSION_HOURS (1-720), FERRY_OIDC_JWKS_MIN_REFRESH_S "
			 "(0-86400) or FERRY_OIDC_CLOCK_SKEW_S (0-600) is out of range");
		goto fail;
	}
	if (!o->client_secret && secret_file) {
		size_t n = 0;
		char *s = read_file_limit(secret_file, 4096, &n);
		if (!s) {
			snprintf(err, errlen, "FERRY_OIDC_CLIENT_SECRET_FILE %s cannot be read", secret_file);
			goto fail;
		}
		while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
			s[--n] = '\0';
		o->client_secret = s;
	}
	o->audience = dupenv("FERRY_OIDC_AUDIENCE", o->client_id);
	if (parse_rules(o, getenv("FERRY_OIDC_ROLE_MAP"), err, errlen) != 0)
		goto fail;
	if (o->nrules == 0) {
		snprintf(err, errlen, "FERRY_OIDC_ROLE_MAP is required with an OIDC issuer "
			 "(GROUP=TENANT:ROLE,...): without it nobody could sign in");
		goto fail;
	}
	return o;
fail:
	oidc_free(o);
	return NULL;
}

void oidc_free(struct oidc *o)
{
	if (!o)
		return;
	for (int i = 0; i < o->nrules; i++) {
		free(o->rules[i].group);
		free(o->rules[i].tenant);
	}
	free(o->issuer);
	free(o->client_id);
	free(o->client_secret);
	free(o->redirect_url);
	free(o->audience);
	free(o->groups_claim);
	free(o->scopes);
	free(o->ca_file);
	json_decref(o->discovery);
	json_decref(o->jwks);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

const char *oidc_issuer(const struct oidc *o) { return o->issuer; }
const char *oidc_client_id(const struct oidc *o) { return o->client_id; }
long oidc_session_ttl(const struct oidc *o) { return o->session_ttl; }

/* ---- fetching ----------------------------------------------------------- */

static size_t collect(char *data, size_t size, size_t n, void *cls)
{
	struct buf *b = cls;
	size_t len = size * n;
	if (b->len + len > OIDC_MAX_ANSWER)
		return 0;
	buf_append(b, data, len);
	return len;
}

/* GET url (or POST form when form != NULL) expecting a JSON object. */
static json_t *fetch_json(struct oidc *o, const char *url, const char *form, char *err,
			  size_t errlen)
{
	if (!url_ok(url)) {
		snprintf(err, errlen, "the issuer named an unusable URL");
		return NULL;
	}
	CURL *c = curl_easy_init();
	if (!c) {
		snprintf(err, errlen, "libcurl failed to start");
		return NULL;
	}
	struct buf b = BUF_INIT;
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (o->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	if (form) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
		if (o->client_secret) {
			/* client_secret_basic (RFC 6749 2.3.1): both parts
			 * form-encoded before going into Basic. */
			char *u = curl_easy_escape(c, o->client_id, 0);
			char *p = curl_easy_escape(c, o->client_secret, 0);
			curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
			curl_easy_setopt(c, CURLOPT_USERNAME, u);
			curl_easy_setopt(c, CURLOPT_PASSWORD, p);
			curl_free(u);
			curl_free(p);
		}
	}
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	json_t *j = NULL;
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "cannot reach the issuer at %.200s: %s", url, curl_easy_strerror(cc));
	} else if (status != 200) {
		snprintf(err, errlen, "the issuer answered %ld at %.200s", status, url);
	} else {
		j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
		if (!json_is_object(j)) {
			json_decref(j);
			j = NULL;
			snprintf(err, errlen, "the issuer's answer at %.200s is not a JSON object", url);
		}
	}
	buf_free(&b);
	return j;
}

/* The discovery document (a new reference), fetched once. */
static json_t *discovery(struct oidc *o, char *err, size_t errlen)
{
	pthread_mutex_lock(&o->mu);
	json_t *d = json_incref(o->discovery);
	time_t failed = o->discovery_failed_at;
	pthread_mutex_unlock(&o->mu);
	if (d)
		return d;
	if (failed && time(NULL) - failed < OIDC_DISCOVERY_RETRY_S) {
		snprintf(err, errlen, "the issuer's discovery document failed moments ago; retrying shortly");
		return NULL;
	}
	struct buf url = BUF_INIT;
	size_t il = strlen(o->issuer);
	buf_printf(&url, "%s%s.well-known/openid-configuration", o->issuer,
		   il && o->issuer[il - 1] == '/' ? "" : "/");
	d = fetch_json(o, buf_cstr(&url), NULL, err, errlen);
	buf_free(&url);
	if (d) {
		const char *iss = json_string_value(json_object_get(d, "issuer"));
		if (!iss || strcmp(iss, o->issuer) != 0) {
			snprintf(err, errlen, "the discovery document names issuer \"%.200s\", not the "
				 "configured \"%.200s\"", iss ? iss : "", o->issuer);
			json_decref(d);
			d = NULL;
		} else if (!json_is_string(json_object_get(d, "authorization_endpoint")) ||
			   !json_is_string(json_object_get(d, "token_endpoint")) ||
			   !json_is_string(json_object_get(d, "jwks_uri"))) {
			snprintf(err, errlen, "the discovery document lacks an authorization, token or "
				 "jwks_uri endpoint");
			json_decref(d);
			d = NULL;
		}
	}
	pthread_mutex_lock(&o->mu);
	if (d && !o->discovery)
		o->discovery = json_incref(d);
	o->discovery_failed_at = d ? 0 : time(NULL);
	pthread_mutex_unlock(&o->mu);
	return d;
}

static const char *endpoint(const json_t *d, const char *name)
{
	return json_string_value(json_object_get(d, name));
}

/* The key set (new reference): the cached one unless it is older than an
 * hour or refresh asks for a new one and the last fetch is old enough. */
static json_t *jwks(struct oidc *o, int refresh, char *err, size_t errlen)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&o->mu);
	json_t *k = json_incref(o->jwks);
	time_t at = o->jwks_at;
	pthread_mutex_unlock(&o->mu);
	pthread_mutex_lock(&o->mu);
	time_t failed = o->jwks_failed_at;
	pthread_mutex_unlock(&o->mu);
	int stale = !k || now - at >= OIDC_JWKS_MAX_AGE_S;
	if (!stale && !(refresh && now - at >= o->jwks_min_refresh))
		return k;
	/* An issuer that just failed is not asked again at once: requests
	 * would pile up behind its timeouts. */
	if (failed && now - failed < OIDC_DISCOVERY_RETRY_S) {
		if (!k)
			snprintf(err, errlen, "the issuer's key set failed moments ago; retrying shortly");
		return k;
	}
	json_t *d = discovery(o, err, errlen);
	if (!d)
		return k;
	json_t *fresh = fetch_json(o, endpoint(d, "jwks_uri"), NULL, err, errlen);
	json_decref(d);
	if (fresh && !json_is_array(json_object_get(fresh, "keys"))) {
		snprintf(err, errlen, "the issuer's JWKS has no \"keys\" array");
		json_decref(fresh);
		fresh = NULL;
	}
	pthread_mutex_lock(&o->mu);
	o->jwks_at = now;   /* also after a failure: the rate limit holds */
	o->jwks_failed_at = fresh ? 0 : now;
	if (fresh) {
		json_decref(o->jwks);
		o->jwks = json_incref(fresh);
	}
	pthread_mutex_unlock(&o->mu);
	if (fresh) {
		json_decref(k);
		return fresh;
	}
	return k;
}

/* ---- the flows ---------------------------------------------------------- */

static void form_add(CURL *c, struct buf *b, const char *k, const char *v)
{
	char *e = curl_easy_escape(c, v, 0);
	buf_printf(b, "%s%s=%s", b->len ? "&" : "", k, e ? e : "");
	curl_free(e);
}

int oidc_authorize_url(struct oidc *o, const char *state, const char *nonce,
		       const char *code_challenge, struct buf *out, char *err, size_t errlen)
{
	json_t *d = discovery(o, err, errlen);
	if (!d)
		return -1;
	CURL *c = curl_easy_init();
	struct buf q = BUF_INIT;
	form_add(c, &q, "response_type", "code");
	form_add(c, &q, "client_id", o->client_id);
	form_add(c, &q, "redirect_uri", o->redirect_url);
	form_add(c, &q, "scope", o->scopes);
	form_add(c, &q, "state", state);
	form_add(c, &q, "nonce", nonce);
	form_add(c, &q, "code_challenge", code_challenge);
	form_add(c, &q, "code_challenge_method", "S256");
	curl_easy_cleanup(c);
	const char *ae = endpoint(d, "authorization_endpoint");
	buf_printf(out, "%s%s%s", ae, strchr(ae, '?') ? "&" : "?", buf_cstr(&q));
	buf_free(&q);
	json_decref(d);
	return 0;
}

int oidc_exchange_code(struct oidc *o, const char *code, const char *code_verifier,
		       json_t **tokens, char *err, size_t errlen)
{
	*tokens = NULL;
	json_t *d = discovery(o, err, errlen);
	if (!d)
		return -1;
	CURL *c = curl_easy_init();
	struct buf f = BUF_INIT;
	form_add(c, &f, "grant_type", "authorization_code");
	form_add(c, &f, "code", code);
	form_add(c, &f, "redirect_uri", o->redirect_url);
	form_add(c, &f, "code_verifier", code_verifier);
	if (!o->client_secret)
		form_add(c, &f, "client_id", o->client_id);
	curl_easy_cleanup(c);
	json_t *t = fetch_json(o, endpoint(d, "token_endpoint"), buf_cstr(&f), err, errlen);
	buf_free(&f);
	json_decref(d);
	if (!t)
		return -1;
	if (!json_is_string(json_object_get(t, "id_token"))) {
		snprintf(err, errlen, "the token endpoint returned no id_token");
		json_decref(t);
		return -1;
	}
	*tokens = t;
	return 0;
}

int oidc_verify(struct oidc *o, const char *token, const char *audience, const char *nonce,
		json_t **claims, char *why, size_t whylen)
{
	*claims = NULL;
	json_t *keys = jwks(o, 0, why, whylen);
	if (!keys)
		return -1;
	struct jwt_expect x = { .issuer = o->issuer, .audience = audience ? audience : o->audience,
				.now = (long long)time(NULL), .skew = o->skew, .nonce = nonce };
	enum jwt_result r = jwt_verify(token, keys, &x, claims, why, whylen);
	if (r == JWT_UNKNOWN_KID) {
		/* A key we have not seen: the issuer may have rotated. */
		json_t *fresh = jwks(o, 1, why, whylen);
		if (fresh && fresh != keys)
			r = jwt_verify(token, fresh, &x, claims, why, whylen);
		json_decref(fresh);
	}
	json_decref(keys);
	return (int)r;
}

static int has_group(const json_t *groups, const char *g)
{
	if (json_is_string(groups))
		return !strcmp(json_string_value(groups), g);
	size_t i;
	const json_t *v;
	json_array_foreach(groups, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), g))
			return 1;
	return 0;
}

int oidc_map(const struct oidc *o, const json_t *claims, const char *want_tenant,
	     char tenant[64], enum api_role *role, char *why, size_t whylen)
{
	const json_t *groups = json_object_get(claims, o->groups_claim);
	const char *chosen = NULL;
	enum api_role best = API_ROLE_NONE;
	if (want_tenant && !strcmp(want_tenant, "*"))
		want_tenant = "";
	for (int i = 0; i < o->nrules; i++) {
		const struct rule *r = &o->rules[i];
		if (!has_group(groups, r->group))
			continue;
		if (want_tenant && strcmp(want_tenant, r->tenant) != 0)
			continue;
		if (!chosen)
			chosen = r->tenant;
		if (!strcmp(chosen, r->tenant) && r->role > best)
			best = r->role;
	}
	if (!chosen) {
		snprintf(why, whylen, "no FERRY_OIDC_ROLE_MAP rule matches the \"%s\" claim%s%.64s",
			 o->groups_claim, want_tenant ? " for tenant " : "", want_tenant ? want_tenant : "");
		return -1;
	}
	snprintf(tenant, 64, "%s", chosen);
	*role = best;
	return 0;
}

const char *oidc_end_session_endpoint(struct oidc *o)
{
	char err[256];
	json_t *d = discovery(o, err, sizeof(err));
	/* The cached document outlives this reference (kept until oidc_free). */
	const char *e = endpoint(d, "end_session_endpoint");
	json_decref(d);
	return e;
}

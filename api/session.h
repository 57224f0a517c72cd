/*
 * session: single sign-on for the console and the issuer's JWTs for API
 * clients (docs/AUTH.md), on top of api/oidc.c and db/sessions.c.
 *
 * Routes (all public; SSO off = 404 except /v1/auth/session):
 *   GET  /v1/auth/login     redirect to the issuer (code flow + PKCE S256;
 *                           state also in a cookie, so a callback only
 *                           completes in the browser that started it)
 *   GET  /v1/auth/callback  code -> tokens -> ID token verified (nonce,
 *                           aud = client id) -> groups mapped -> session
 *                           cookie -> redirect to the console
 *   POST /v1/auth/logout    end the session (CSRF header required)
 *   GET  /v1/auth/session   whether SSO is on, and the caller's session with
 *                           its CSRF token
 *
 * The session cookie "ferry_session" is HttpOnly, SameSite=Lax, Path=/,
 * Secure when the request came over HTTPS. Requests authenticated by it
 * must carry the session's CSRF token in X-CSRF-Token on every POST, PUT,
 * PATCH and DELETE (double submit: a page on another site can neither read
 * the token nor set the header cross-origin).
 *
 * Memory/threads: no state of its own; the process's struct oidc hangs off
 * struct app.
 */
#ifndef FERRY_SESSION_H
#define FERRY_SESSION_H

struct api_req;

/* api/auth.c's hook. When the request carries no Authorization header but
 * a session cookie, or a bearer token that is a JWT, authenticate it here:
 * returns 1 with *ok = 1 (r->auth filled) or *ok = 0 (answered 401/403/
 * 503). Returns 0 when the request is not for SSO (an API token). */
int api_sso_authenticate(struct api_req *r, const char *authorization, int *ok);

void api_auth_login(struct api_req *r);
void api_auth_callback(struct api_req *r);
void api_auth_logout(struct api_req *r);
void api_auth_session(struct api_req *r);

#endif

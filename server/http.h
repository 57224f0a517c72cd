/*
 * http: the HTTP front of ferryd on libmicrohttpd: routing to api/ handlers,
 * body limits, problem+json errors, static console files, /healthz, /readyz,
 * /metrics. Implemented by the API side (server/http.c + api/).
 *
 * http_server_start() binds app->cfg.listen ("host:port", "[v6]:port";
 * port 0 = any free port) and serves it with libmicrohttpd event threads
 * (one per core, at most 4) that hand complete requests to
 * cfg.http_threads handler threads (-1 = 16; 0 = none: the event threads
 * run the handlers themselves) in arrival order (GETs of API_QUICK_READ
 * routes are answered by the event thread itself when a database
 * connection is free at once), until
 * http_server_stop(), which ends open SSE streams, lets the handler
 * threads answer what is queued and waits for every thread. Idle SSE
 * streams hold no thread (suspended connections woken by one hub thread). NULL + message in err on failure (port in use, bad
 * listen address, unreadable TLS certificate or key, bad --trusted-proxy).
 * With cfg.tls_cert/tls_key it speaks only HTTPS (server/tlscreds.h for
 * protocols and ciphers); requests that came over HTTPS (its own TLS, or
 * a trusted proxy's X-Forwarded-Proto: https, server/trustproxy.h) get
 * Strict-Transport-Security. It fills cfg.max_body_bytes (1 MiB) and
 * cfg.max_json_depth (32) when they are 0. The server reads *app (metrics
 * may be NULL; without a keyring cluster writes answer 500); app must
 * outlive it.
 *
 * Memory: the returned server belongs to the caller; http_server_stop()
 * frees it. Thread-safety: start and stop from one thread (ferryd's main);
 * requests are handled on the handler threads.
 */
#ifndef FERRY_HTTP_H
#define FERRY_HTTP_H

#include <stddef.h>

struct app;
struct http_server;

struct http_server *http_server_start(struct app *app, char *err, size_t errlen);
/* The port actually bound (useful with listen "127.0.0.1:0"). */
int http_server_port(const struct http_server *srv);
void http_server_stop(struct http_server *srv);
/* 1 when the listener speaks TLS (cfg.tls_cert was set). */
int http_server_tls(const struct http_server *srv);
/* Read cfg.tls_cert / cfg.tls_key again and present them from the next
 * handshake on; open connections are not touched. 0, or -1 with the
 * reason in err (the previous certificate stays). Main thread (SIGHUP). */
int http_server_reload_tls(struct http_server *srv, char *err, size_t errlen);

#endif

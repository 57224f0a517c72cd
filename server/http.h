/*
 * http: the HTTP front of ferryd on libmicrohttpd: routing to api/ handlers,
 * body limits, problem+json errors, static console files, /healthz, /readyz,
 * /metrics. Implemented by the API side (server/http.c + api/).
 *
 * http_server_start() binds app->cfg.listen ("host:port", "[v6]:port";
 * port 0 = any free port) and serves with one MHD thread per connection
 * until http_server_stop(), which ends open SSE streams and waits for the
 * connection threads. NULL + message in err on failure (port in use, bad
 * listen address). It fills cfg.max_body_bytes (1 MiB) and
 * cfg.max_json_depth (32) when they are 0. The server reads *app (metrics
 * may be NULL; without a keyring cluster writes answer 500); app must
 * outlive it.
 *
 * Memory: the returned server belongs to the caller; http_server_stop()
 * frees it. Thread-safety: start and stop from one thread (ferryd's main);
 * requests are handled on libmicrohttpd's connection threads.
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

#endif

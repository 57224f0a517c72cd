/*
 * connguard: keeps slow clients from holding ferryd's HTTP connections
 * (issue 13, finding 3: 512 connections trickling header lines kept the
 * API down, because libmicrohttpd's idle timeout restarts with every byte).
 *
 * A connection must deliver a complete request head (request line and
 * headers) within header_s seconds of being accepted; between requests on
 * a keep-alive connection it may wait at most idle_s seconds for the next
 * request head to be complete. These are absolute deadlines that trickling
 * does not extend. Once the request head is in, the request runs without a
 * deadline here (SSE streams last long; bodies are bounded by the body
 * limit and libmicrohttpd's idle timeout). A connection past its deadline
 * is shut down (shutdown(2) on its socket: libmicrohttpd's thread sees the
 * end of the stream and closes it). A watchdog thread checks every 250 ms.
 * The per-IP and total connection limits are libmicrohttpd options set by
 * server/http.c.
 *
 * Wiring (server/http.c): connguard_notify is the MHD_OPTION_NOTIFY_CONNECTION
 * callback (cls = the guard); connguard_head_received() is called when the
 * access handler first sees a request; connguard_request_done() from the
 * request-completed callback.
 *
 * Memory: the guard owns its entries (one per open connection) and the
 * thread; connguard_free() after MHD_stop_daemon(). Thread-safe.
 */
#ifndef FERRY_CONNGUARD_H
#define FERRY_CONNGUARD_H

#include <microhttpd.h>

struct connguard;

struct connguard *connguard_new(double header_s, double idle_s);
void connguard_free(struct connguard *g);

void connguard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		      enum MHD_ConnectionNotificationCode toe);
void connguard_head_received(struct connguard *g, struct MHD_Connection *conn);
void connguard_request_done(struct connguard *g, struct MHD_Connection *conn);
/* Connections shut down for missing a deadline since the start. */
long connguard_dropped(struct connguard *g);

#endif

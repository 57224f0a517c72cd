/*
 * connguard.c: absolute request-head deadlines (see connguard.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "server/connguard.h"
#include "server/common/buf.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct centry {
	int fd;
	double deadline;        /* monotonic seconds; 0 = a request is running */
	int dropped;
	struct centry *prev, *next;
};

struct connguard {
	double header_s, idle_s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct centry *head;
	int stop;
	long dropped;
	pthread_t thread;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *watchdog(void *arg)
{
	struct connguard *g = arg;
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
		double t = now_s();
		/* Under the lock: an entry leaves the list (CLOSED) before
		 * libmicrohttpd closes its socket, so fd is still this
		 * connection's. */
		for (struct centry *e = g->head; e; e = e->next) {
			if (e->deadline > 0 && t > e->deadline && !e->dropped) {
				shutdown(e->fd, SHUT_RDWR);
				e->dropped = 1;
				g->dropped++;
			}
		}
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

struct connguard *connguard_new(double header_s, double idle_s)
{
	struct connguard *g = xcalloc(1, sizeof(*g));
	g->header_s = header_s;
	g->idle_s = idle_s;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	if (pthread_create(&g->thread, NULL, watchdog, g) != 0) {
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->cv);
		free(g);
		return NULL;
	}
	return g;
}

void connguard_free(struct connguard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	while (g->head) {
		struct centry *e = g->head;
		g->head = e->next;
		free(e);
	}
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	free(g);
}

void connguard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		      enum MHD_ConnectionNotificationCode toe)
{
	struct connguard *g = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct centry *e = xcalloc(1, sizeof(*e));
		e->fd = ci ? ci->connect_fd : -1;
		e->deadline = e->fd >= 0 ? now_s() + g->header_s : 0;
		pthread_mutex_lock(&g->mu);
		e->next = g->head;
		if (g->head)
			g->head->prev = e;
		g->head = e;
		pthread_mutex_unlock(&g->mu);
		*socket_context = e;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct centry *e = *socket_context;
		if (!e)
			return;
		pthread_mutex_lock(&g->mu);
		if (e->prev)
			e->prev->next = e->next;
		else
			g->head = e->next;
		if (e->next)
			e->next->prev = e->prev;
		pthread_mutex_unlock(&g->mu);
		free(e);
		*socket_context = NULL;
	}
}

static struct centry *entry_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void connguard_head_received(struct connguard *g, struct MHD_Connection *conn)
{
	struct centry *e = g ? entry_of(conn) : NULL;
	if (!e)
		return;
	pthread_mutex_lock(&g->mu);
	e->deadline = 0;
	pthread_mutex_unlock(&g->mu);
}

void connguard_request_done(struct connguard *g, struct MHD_Connection *conn)
{
	struct centry *e = g ? entry_of(conn) : NULL;
	if (!e)
		return;
	pthread_mutex_lock(&g->mu);
	if (e->fd >= 0)
		e->deadline = now_s() + g->idle_s;
	pthread_mutex_unlock(&g->mu);
}

long connguard_dropped(struct connguard *g)
{
	pthread_mutex_lock(&g->mu);
	long n = g->dropped;
	pthread_mutex_unlock(&g->mu);
	return n;
}

/*
 * db/audit: the audit log. Every mutating API request (POST, PUT, PATCH,
 * DELETE under /v1, whatever its outcome, authenticated or not) gets one row:
 * who (tenant, token), what (method, path, target object id), the outcome
 * (status) and the request id that also appears in the logs. Never bodies:
 * they may hold credentials.
 *
 * Memory: e's strings are only read during the call; nothing is returned
 * to free. Thread-safety: stateless; one PGconn per caller.
 */
#ifndef FERRY_DB_AUDIT_H
#define FERRY_DB_AUDIT_H

#include <libpq-fe.h>
#include <stddef.h>

struct db_audit_entry {
	const char *tenant_id;   /* NULL or "" = none (platform or anonymous) */
	const char *token_id;    /* NULL or "" = unauthenticated */
	const char *request_id;
	const char *method;
	const char *path;
	int status;
	const char *target;      /* object id the request acted on, or NULL */
	const char *actor;       /* "oidc:<subject>" for single sign-on, or NULL */
};

/* Insert the row; 0 or -1 with a message in err. */
int db_audit_write(PGconn *conn, const struct db_audit_entry *e, char *err, size_t errlen);

#endif

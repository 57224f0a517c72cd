/*
 * db/dbq: run parameterised queries whose rows are JSON text, and map
 * PostgreSQL error classes (SQLSTATE) to the few outcomes handlers care
 * about: conflict (23505 unique violation, 23P01 exclusion), invalid value
 * (23514 check, 22xxx data exceptions), anything else an error.
 */
#include "db/dbq.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dbq_status_of(PGresult *res, PGconn *conn, char *err, size_t errlen)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
	if (err && errlen) {
		snprintf(err, errlen, "%s", msg && *msg ? msg : "database error");
		size_t n = strlen(err);
		while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
	}
	if (state && (!strcmp(state, "23505") || !strcmp(state, "23P01")))
		return DB_CONFLICT;
	if (state && (!strcmp(state, "23514") || !strncmp(state, "22", 2)))
		return DB_INVALID;
	return DB_ERROR;
}

int dbq_json_rows(PGconn *conn, const char *sql, int nparams,
		  const char *const *params, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		int st = dbq_status_of(res, conn, err, errlen);
		PQclear(res);
		return st;
	}
	json_t *arr = json_array();
	int n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		json_error_t jerr;
		const char *text = PQgetvalue(res, i, 0);
		json_t *row = json_loads(text, JSON_DECODE_ANY, &jerr);
		if (!row) {
			snprintf(err, errlen, "bad JSON from database: %s", jerr.text);
			json_decref(arr);
			PQclear(res);
			return DB_ERROR;
		}
		json_array_append_new(arr, row);
	}
	PQclear(res);
	*out = arr;
	return DB_OK;
}

int dbq_json_row(PGconn *conn, const char *sql, int nparams,
		 const char *const *params, json_t **out, char *err, size_t errlen)
{
	json_t *arr = NULL;
	*out = NULL;
	int st = dbq_json_rows(conn, sql, nparams, params, &arr, err, errlen);
	if (st != DB_OK)
		return st;
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		if (err && errlen)
			err[0] = '\0';
		return DB_NOT_FOUND;
	}
	*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return DB_OK;
}

int dbq_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
	     long *affected, char *err, size_t errlen)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		int st = dbq_status_of(res, conn, err, errlen);
		PQclear(res);
		return st;
	}
	if (affected)
		*affected = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return DB_OK;
}

int dbq_cursor_parse(const char *cursor, char us[24], char id[37])
{
	const char *dot = strchr(cursor, '.');
	if (!dot || dot == cursor || (size_t)(dot - cursor) > 20)
		return -1;
	for (const char *p = cursor; p < dot; p++)
		if (*p < '0' || *p > '9')
			return -1;
	/* A timestamp PostgreSQL can hold: at most 9999-12-31T23:59:59.999999Z
	 * (253402300799999999 us); anything larger is not a cursor of ours. */
	if ((size_t)(dot - cursor) > 18 ||
	    ((size_t)(dot - cursor) == 18 && strncmp(cursor, "253402300799999999", 18) > 0))
		return -1;
	const char *u = dot + 1;
	if (strlen(u) != 36)
		return -1;
	for (int i = 0; i < 36; i++) {
		char c = u[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return -1;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return -1;
		}
	}
	memcpy(us, cursor, (size_t)(dot - cursor));
	us[dot - cursor] = '\0';
	memcpy(id, u, 37);
	return 0;
}

int dbq_page(PGconn *conn, const char *sql, int nparams, const char *const *params,
	     int limit, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		int st = dbq_status_of(res, conn, err, errlen);
		PQclear(res);
		return st;
	}
	json_t *items = json_array();
	int n = PQntuples(res);
	json_t *next = json_null();
	for (int i = 0; i < n; i++) {
		if (i == limit) {
			json_decref(next);
			next = json_string(PQgetvalue(res, i - 1, 1));
			break;
		}
		json_error_t jerr;
		json_t *row = json_loads(PQgetvalue(res, i, 0), JSON_DECODE_ANY, &jerr);
		if (!row) {
			snprintf(err, errlen, "bad JSON from database: %s", jerr.text);
			json_decref(items);
			json_decref(next);
			PQclear(res);
			return DB_ERROR;
		}
		json_array_append_new(items, row);
	}
	PQclear(res);
	*out = json_pack("{s:o,s:o}", "items", items, "next_cursor", next);
	return DB_OK;
}

int dbq_is_uuid(const char *s)
{
	if (!s || strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/*
 * api/jobparams: the job kinds and the JSON Schema of each kind's params,
 * in one table, and the check that POST /v1/clusters/{id}/jobs runs on a
 * body's params before anything is queued.
 *
 * Every parameter is one row (name, the kinds that take it, its schema as
 * JSON text with a description and, where there is one, the default); a
 * kind is one row of the kind table. Adding a kind or a parameter is adding
 * a row: the OpenAPI document (JobCreate), GET /v1/job-kinds and the check
 * all read the same rows.
 *
 * The check supports the schema keywords the rows use: type (one or a
 * list), properties, additionalProperties (false or a schema), required,
 * items, enum, const, minimum, maximum, minLength, minItems. An unknown
 * parameter (with a "did you mean" for a near miss), a wrong type or a
 * value out of range fails naming the field ("params.l2.cidrs[0]").
 *
 * Memory: returned json_t are new references owned by the caller.
 * Thread-safe (the table is constant; schemas are parsed per call).
 */
#ifndef FERRY_API_JOBPARAMS_H
#define FERRY_API_JOBPARAMS_H

#include <jansson.h>
#include <stddef.h>

struct api_req;

/* 1 when kind is a job kind ferry knows (whether or not this build runs it). */
int jobparams_kind_known(const char *kind);

/* The JSON Schema of kind's params (an object schema with
 * additionalProperties false), or NULL for an unknown kind. */
json_t *jobparams_schema(const char *kind);

/* Check params (an object or NULL) for kind. 0 when valid; else -1 with the
 * field ("params.x.y") and a message. */
int jobparams_check(const char *kind, const json_t *params, char *field, size_t fieldlen,
		    char *msg, size_t msglen);

/* OpenAPI's JobCreate schema: one alternative per kind, each with its
 * params schema. */
json_t *jobparams_openapi_job_create(void);

/* GET /v1/job-kinds: {"items": [{kind, description, params_schema}]}. */
void api_job_kinds(struct api_req *r);

#endif

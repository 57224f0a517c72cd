/*
 * api/revisions: a cluster's Helm release history as ferry recorded it
 * (db/releases.h).
 *
 *   GET /v1/clusters/{id}/revisions             {"items": [revision…]} newest first
 *   GET /v1/clusters/{id}/revisions/{revision}  one revision with values,
 *                                               manifest and surroundings
 * Viewer role; tenant-scoped: a cluster of another tenant is 404, as is a
 * revision the cluster does not have.
 *
 * Handlers follow api/api.h (answer exactly once); memory and
 * thread-safety as there.
 */
#ifndef FERRY_API_REVISIONS_H
#define FERRY_API_REVISIONS_H

struct api_req;

void api_revisions_list(struct api_req *r);
void api_revisions_get(struct api_req *r);

#endif

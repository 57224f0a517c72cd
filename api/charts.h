/*
 * api/charts: the chart resource (SPEC §5, the offline route: `helm pull`,
 * upload the .tgz, install from it).
 *
 *   POST   /v1/charts        body: the chart .tgz (Content-Type
 *                            application/gzip, application/x-gzip,
 *                            application/x-tar+gzip or application/octet-stream);
 *                            201 + Location for a new chart, 200 when the
 *                            same bytes are already stored under that name
 *                            and version, 409 when other bytes are, 400 for
 *                            anything that is not a well-formed chart
 *                            archive (server/install/chartsource.h), 415.
 *   GET    /v1/charts        list (?name=, ?limit=, ?cursor=)
 *   GET    /v1/charts/{id}   one chart
 *   DELETE /v1/charts/{id}   204
 * Tenant-scoped: another tenant's chart is 404. Upload and delete need
 * operator, reads viewer (enforced by the route table).
 *
 * Handlers follow api/api.h (answer exactly once); memory and
 * thread-safety as there (one request on one thread).
 */
#ifndef FERRY_API_CHARTS_H
#define FERRY_API_CHARTS_H

struct api_req;

void api_charts_upload(struct api_req *r);
void api_charts_list(struct api_req *r);
void api_charts_get(struct api_req *r);
void api_charts_delete(struct api_req *r);

#endif

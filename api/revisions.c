/*
 * api/revisions: the release history routes (see revisions.h).
 */
#include "api/revisions.h"
#include "api/api.h"
#include "db/dbq.h"
#include "db/releases.h"

#include <stdlib.h>

void api_revisions_list(struct api_req *r)
{
	PGconn *db = api_db(r);
	if (!db)
		return;
	json_t *out = NULL;
	char err[256] = "";
	int st = db_release_list_json(db, r->auth.tenant_id, r->params[0], &out, err, sizeof err);
	if (st == DB_NOT_FOUND)
		api_problem(r, 404, "Not found", "no cluster %s", r->params[0]);
	else if (st != DB_OK)
		api_db_error(r, err);
	else
		api_reply(r, 200, out);
}

void api_revisions_get(struct api_req *r)
{
	PGconn *db = api_db(r);
	if (!db)
		return;
	int revision = atoi(r->params[1]);
	json_t *out = NULL;
	char err[256] = "";
	int found = 0;
	int st = db_release_get_json(db, r->auth.tenant_id, r->params[0], revision, &out, &found, err, sizeof err);
	if (st == DB_NOT_FOUND && !found)
		api_problem(r, 404, "Not found", "no cluster %s", r->params[0]);
	else if (st == DB_NOT_FOUND)
		api_problem(r, 404, "Not found", "the cluster has no release revision %d", revision);
	else if (st != DB_OK)
		api_db_error(r, err);
	else
		api_reply(r, 200, out);
}

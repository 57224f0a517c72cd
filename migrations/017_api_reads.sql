-- 017: API reads close to PostgreSQL (issue 14).
--
-- ferry_ts() was declared IMMUTABLE around to_char(), which is only
-- STABLE, so PostgreSQL could not inline it: every call parsed and
-- planned its body again (five calls per job or cluster read, about half
-- of the database's CPU of a GET). Declared STABLE, as its body is, it is
-- inlined into the query at plan time. Same text out.
CREATE OR REPLACE FUNCTION ferry_ts(t timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- Tell every ferryd when a token stops being valid.
-- ferryd keeps the tokens it has seen in a small in-memory cache (a few
-- seconds) and LISTENs on ferry_tokens: any change that can make a cached
-- answer wrong (revoked, deleted, its role, tenant or hash changed, its
-- tenant renamed, deleted or soft-deleted) NOTIFYs that channel from the
-- changing transaction, whichever process or tool ran it, and every cache
-- empties itself when the notification arrives. The once-a-minute
-- last_used_at touch of a live token notifies nothing.
-- One payload for all: PostgreSQL folds identical notifications of one
-- transaction into one.
CREATE FUNCTION ferry_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ferry_tokens', 'changed');
    RETURN NULL;
END $$;

-- Any update of a revoked token notifies too (an idempotent second revoke
-- changes nothing, but the revoking ferryd waits for a notification); the
-- last_used_at touch is made on live tokens only.
CREATE TRIGGER api_tokens_changed AFTER UPDATE ON api_tokens FOR EACH ROW
    WHEN (NEW.revoked_at IS NOT NULL OR OLD.role IS DISTINCT FROM NEW.role
          OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.token_hash IS DISTINCT FROM NEW.token_hash)
    EXECUTE FUNCTION ferry_tokens_changed();
CREATE TRIGGER api_tokens_deleted AFTER DELETE ON api_tokens FOR EACH ROW
    EXECUTE FUNCTION ferry_tokens_changed();
CREATE TRIGGER tenants_changed AFTER UPDATE ON tenants FOR EACH ROW
    WHEN (OLD.deleted_at IS DISTINCT FROM NEW.deleted_at OR OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION ferry_tokens_changed();
CREATE TRIGGER tenants_deleted AFTER DELETE ON tenants FOR EACH ROW
    EXECUTE FUNCTION ferry_tokens_changed();

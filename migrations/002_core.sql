-- 002: helpers for the job queue (core).

-- RFC 3339 UTC text of a timestamp with milliseconds, NULL stays NULL.
CREATE FUNCTION ferry_ts(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- Listing jobs of a cluster newest first, and by state.
CREATE INDEX jobs_cluster_idx ON jobs (cluster_id, created_at DESC, id);
CREATE INDEX jobs_state_idx ON jobs (state, created_at DESC, id);

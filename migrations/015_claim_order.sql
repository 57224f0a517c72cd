-- 015: the claim's index (issue 14). The claim picks the next job with
-- ORDER BY run_after, created_at LIMIT 1 ... FOR UPDATE SKIP LOCKED
-- (db/jobs.c); an index on run_after alone left PostgreSQL sorting every
-- queued job whenever many share one run_after (a campaign's burst, a bulk
-- enqueue). With both columns the claim walks the index in order and stops
-- at the first claimable row.
CREATE INDEX jobs_claim_order_idx ON jobs (run_after, created_at)
    WHERE state IN ('queued', 'running');
DROP INDEX jobs_claim_idx;
-- The fair claim counts each candidate tenant's running jobs (db_job_claim_fair):
-- an index on the running jobs alone keeps that count off the tenant's history.
CREATE INDEX jobs_running_tenant_idx ON jobs (tenant_id) WHERE state = 'running';

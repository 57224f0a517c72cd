-- 014: fleet campaigns (issue 11). A campaign runs one job kind over the
-- clusters a label selector matched when it was created; membership is
-- stored per cluster (campaign_clusters) so later label changes do not move
-- clusters in or out of a running rollout.

-- state: pending | running | paused | succeeded | failed | cancelled
-- pause_kind (while paused): user | budget | approval | window
CREATE TABLE campaigns (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    name            text NOT NULL,
    selector        text NOT NULL,
    kind            text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}',
    strategy        jsonb NOT NULL,            -- as given by the client
    canary          integer NOT NULL CHECK (canary >= 0),
    max_in_flight   integer NOT NULL CHECK (max_in_flight >= 1),
    max_failures    integer NOT NULL CHECK (max_failures >= 1),
    waves           integer NOT NULL CHECK (waves >= 1),   -- waves after the canary
    pause_between_waves_s integer NOT NULL DEFAULT 0 CHECK (pause_between_waves_s >= 0),
    manual_approval boolean NOT NULL DEFAULT false,
    approved_wave   integer NOT NULL DEFAULT 0,    -- highest wave an operator approved
    window_cron     text,
    window_duration_s integer,
    window_tz       text,
    total           integer NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'running', 'paused', 'succeeded', 'failed', 'cancelled')),
    pause_kind      text CHECK (pause_kind IN ('user', 'budget', 'approval', 'window')),
    reason          text,
    idempotency_key text,
    created_by      uuid REFERENCES api_tokens(id),
    created_by_name text NOT NULL DEFAULT '',
    ticks           bigint NOT NULL DEFAULT 0,     -- advancer passes over it
    -- What the advancers scan: not finished, or cancelled with jobs still
    -- running (stays true until they ended).
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX campaigns_idempotency ON campaigns (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX campaigns_tenant_idx ON campaigns (tenant_id, created_at DESC, id);
CREATE INDEX campaigns_active_idx ON campaigns (updated_at) WHERE active;

-- wave 0 = the canary; state: pending | waiting | running | succeeded |
-- skipped | failed | cancelled. No foreign key to clusters: deleting a
-- cluster leaves its campaign history (cluster_name keeps the name).
CREATE TABLE campaign_clusters (
    campaign_id     uuid NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    cluster_id      uuid NOT NULL,
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    cluster_name    text NOT NULL,
    wave            integer NOT NULL,
    position        integer NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'waiting', 'running', 'succeeded', 'skipped', 'failed', 'cancelled')),
    reason          text,
    job_id          uuid,
    error           text,
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, cluster_id)
);
CREATE UNIQUE INDEX campaign_clusters_order ON campaign_clusters (campaign_id, position);
CREATE INDEX campaign_clusters_state_idx ON campaign_clusters (campaign_id, state);

-- 001: tenants, tokens, clusters, jobs and their phases and events, audit.
-- Every row of tenant data carries tenant_id; every query filters on it.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

-- role: admin | operator | viewer. tenant_id NULL = platform-wide token.
CREATE TABLE api_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid REFERENCES tenants(id),
    name        text NOT NULL DEFAULT '',
    role        text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz
);

CREATE TABLE clusters (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    name            text NOT NULL,
    labels          jsonb NOT NULL DEFAULT '{}',
    profile         text NOT NULL CHECK (profile IN ('tke', 'tke-coexist', 'k3s', 'generic')),
    api_server      text NOT NULL,
    tls_server_name text,
    ca_bundle       text,               -- PEM, public
    credentials     text NOT NULL,      -- crypto_seal() of a JSON object {token|client_cert,client_key}
    credentials_key_id text NOT NULL,
    kube_version    text,
    node_count      integer,
    cilium_version  text,
    release_revision integer,
    last_contact_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer NOT NULL DEFAULT 1,  -- ETag / If-Match
    UNIQUE (tenant_id, name)
);
CREATE INDEX clusters_tenant_idx ON clusters (tenant_id, id);

-- kind: install | upgrade | rollback | uninstall | adopt | preflight
-- state: queued | running | succeeded | failed | cancelled
CREATE TABLE jobs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    cluster_id      uuid NOT NULL REFERENCES clusters(id),
    kind            text NOT NULL CHECK (kind IN ('install', 'upgrade', 'rollback', 'uninstall', 'adopt', 'preflight')),
    params          jsonb NOT NULL DEFAULT '{}',
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    cancel_requested boolean NOT NULL DEFAULT false,
    attempt         integer NOT NULL DEFAULT 0,
    lease_owner     text,
    lease_token     bigint NOT NULL DEFAULT 0,   -- fencing token, bumped on every claim
    lease_expires_at timestamptz,
    run_after       timestamptz NOT NULL DEFAULT now(),
    idempotency_key text,
    created_by      uuid REFERENCES api_tokens(id),
    error           text,
    result          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- At most one queued-or-running job per cluster.
CREATE UNIQUE INDEX jobs_one_active_per_cluster ON jobs (cluster_id)
    WHERE state IN ('queued', 'running');
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_claim_idx ON jobs (run_after) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_tenant_idx ON jobs (tenant_id, created_at DESC, id);

-- state: pending | running | succeeded | failed | skipped
CREATE TABLE job_phases (
    job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    name        text NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    attempts    integer NOT NULL DEFAULT 0,
    api_calls   integer NOT NULL DEFAULT 0,
    started_at  timestamptz,
    finished_at timestamptz,
    message     text,
    detail      jsonb,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE job_events (
    id          bigserial PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    level       text NOT NULL DEFAULT 'info' CHECK (level IN ('debug', 'info', 'warn', 'error')),
    phase       text,
    message     text NOT NULL
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    tenant_id   uuid,
    token_id    uuid,
    request_id  text,
    method      text NOT NULL,
    path        text NOT NULL,
    status      integer NOT NULL,
    target      text
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id);

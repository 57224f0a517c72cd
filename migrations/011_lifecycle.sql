-- 011: the release lifecycle (lifecycle helper, issue 10).
--   jobs.kind gains check and repair (drift check and repair).
--   release_revisions: every Helm release revision ferry wrote or adopted,
--     per cluster, with the user values and manifest it applied, so that the
--     history is readable without the cluster and a rollback works from the
--     stored manifest alone. status follows Helm's release statuses.
--     surroundings: what the ferry-managed objects around the release were
--     at that revision (tke-eni-agent image, cni-config data, retired
--     DaemonSets, APF objects), for a rollback to put them back.
--   clusters: release_status (status of the current revision),
--     last_success_at (end of the last successful job that wrote to the
--     cluster), last_check (outcome of the last drift check).
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN
    ('install', 'upgrade', 'rollback', 'uninstall', 'adopt', 'preflight', 'check', 'repair'));

CREATE TABLE release_revisions (
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    cluster_id    uuid NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    revision      integer NOT NULL CHECK (revision >= 1),
    release_name  text NOT NULL,
    namespace     text NOT NULL,
    status        text NOT NULL CHECK (status IN ('unknown', 'deployed', 'uninstalled', 'superseded',
                      'failed', 'uninstalling', 'pending-install', 'pending-upgrade', 'pending-rollback')),
    chart_name    text NOT NULL,
    chart_version text NOT NULL,
    app_version   text,
    description   text NOT NULL DEFAULT '',
    job_id        uuid REFERENCES jobs(id) ON DELETE SET NULL,
    started_by    uuid,               -- the token that created the job (api_tokens.id)
    values        jsonb NOT NULL DEFAULT '{}',
    manifest      text NOT NULL DEFAULT '',
    surroundings  jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, revision)
);
CREATE INDEX release_revisions_tenant_idx ON release_revisions (tenant_id, cluster_id, revision DESC);

ALTER TABLE clusters
    ADD COLUMN release_status text,
    ADD COLUMN last_success_at timestamptz,
    ADD COLUMN last_check jsonb;

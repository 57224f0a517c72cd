-- 010: uploaded Helm chart archives, per tenant (install2 helper).
-- A chart is identified by (tenant, name, version); the archive bytes are
-- kept as uploaded so the SHA-256 stays meaningful. Re-uploading the same
-- bytes is a no-op; other bytes under the same version are refused.
CREATE TABLE charts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    name        text NOT NULL CHECK (name ~ '^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$'),
    version     text NOT NULL CHECK (length(version) BETWEEN 1 AND 64),
    app_version text,
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size        integer NOT NULL CHECK (size > 0),
    archive     bytea NOT NULL,
    created_by  uuid REFERENCES api_tokens(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name, version)
);
CREATE INDEX charts_tenant_created_idx ON charts (tenant_id, created_at, id);

-- 003: what the API needs to describe a cluster without opening its sealed
-- credentials (api helper).
--   auth_kind: which credential the sealed blob holds ("token" or
--     "client-certificate"), shown as the cluster's "auth".
--   insecure_skip_tls_verify: the cluster was imported from a kubeconfig with
--     insecure-skip-tls-verify: true, which the server accepted because it is
--     configured to allow it (allow_insecure_kubeconfig). The kube client must
--     then skip certificate verification for this cluster only.
ALTER TABLE clusters
    ADD COLUMN auth_kind text NOT NULL DEFAULT 'token'
        CHECK (auth_kind IN ('token', 'client-certificate')),
    ADD COLUMN insecure_skip_tls_verify boolean NOT NULL DEFAULT false;
ALTER TABLE clusters ADD CONSTRAINT clusters_name_format
    CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$');
CREATE INDEX clusters_tenant_created_idx ON clusters (tenant_id, created_at, id);
CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id, created_at, id);

-- 016: single sign-on (issue 15). Console sessions of people signed in
-- through the OpenID provider, and the pending logins between the redirect
-- to the provider and its callback. Secrets are stored as SHA-256 only.

-- One row per signed-in browser. tenant_id NULL = platform-wide (a
-- mapping to "*"). The cookie holds the secret; secret_hash finds the row.
CREATE TABLE auth_sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    secret_hash  text NOT NULL UNIQUE,
    csrf_token   text NOT NULL,
    tenant_id    uuid REFERENCES tenants (id),
    role         text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    issuer       text NOT NULL,
    subject      text NOT NULL,
    name         text NOT NULL DEFAULT '',
    groups       jsonb NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX auth_sessions_expires_idx ON auth_sessions (expires_at);

-- An authorization request in flight: the state (hashed; the browser holds
-- it in a cookie too), the nonce and the PKCE verifier. Used once.
CREATE TABLE auth_logins (
    state_hash     text PRIMARY KEY,
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    tenant         text,
    return_to      text,
    expires_at     timestamptz NOT NULL
);

-- Who acted, for requests authenticated by SSO ("oidc:<subject>"; their
-- token_id is NULL); API token requests keep token_id.
ALTER TABLE audit_log ADD COLUMN actor text;

-- Each tenant's own identity provider (OpenID Connect), and each tenant's
-- first admin. A subtenant without a row of its own uses its root's.
--
-- An issuer belongs to one tenant: the token's `iss` picks the provider
-- that verifies it, so two tenants can never share one.
CREATE TABLE tenant_identity_providers (
    tenant_id      uuid PRIMARY KEY REFERENCES tenants (id),
    issuer         text NOT NULL UNIQUE CHECK (length(issuer) BETWEEN 1 AND 2048),
    -- As given, or as the issuer's discovery document named it.
    jwks_uri       text NOT NULL CHECK (length(jwks_uri) BETWEEN 1 AND 2048),
    discovered     boolean NOT NULL,
    audience       text NOT NULL CHECK (length(audience) BETWEEN 1 AND 512),
    user_claim     text NOT NULL,
    groups_claim   text NOT NULL,
    -- [{ "group", "role", "subtenant_id"?, "permissions"? }], first match wins.
    mappings       jsonb NOT NULL,
    -- A root's: whether its subtenants may set providers of their own.
    subtenants_may_override boolean NOT NULL DEFAULT false,
    -- For the console's sign-in (authorization code flow); the secret is
    -- sealed with the master key, bound to the tenant.
    client_id      text,
    client_secret_enc bytea,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The admin a tenant was made with: a user of its provider whose subject
-- is this one is that tenant's tenant_admin.
CREATE TABLE tenant_first_admins (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id),
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    email      text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    created_at timestamptz NOT NULL DEFAULT now()
);

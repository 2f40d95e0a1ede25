-- The control plane's catalog: what should exist (intent) for every tenant.

CREATE TABLE db_servers (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9-]{0,62}$'),
    host               text NOT NULL,
    port               integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    admin_user         text NOT NULL,
    -- AES-256-GCM under the master key; NULL for the catalog's own server,
    -- which is reached with the configured catalog credentials.
    admin_password_enc bytea,
    is_catalog         boolean NOT NULL DEFAULT false,
    state              text NOT NULL DEFAULT 'active'
                       CHECK (state IN ('active', 'draining', 'down')),
    capacity           integer NOT NULL DEFAULT 1000 CHECK (capacity > 0),
    -- Connections the router may hold open to this server, across all of its
    -- tenants' pools; NULL means the configured default.
    connection_budget  integer CHECK (connection_budget > 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    id             uuid PRIMARY KEY,
    slug           text NOT NULL CHECK (slug ~ '^[a-z][a-z0-9-]{1,62}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_id      uuid REFERENCES tenants (id),
    tier           text NOT NULL DEFAULT 'standard',
    status         text NOT NULL
                   CHECK (status IN ('provisioning', 'active', 'suspended',
                                     'deleting', 'deleted', 'failed')),
    -- Placement. NULL for a subtenant that lives in its root tenant's database.
    db_server_id   uuid REFERENCES db_servers (id),
    db_name        text CHECK (db_name ~ '^ai_care_tenant_[0-9a-f]{32}$'),
    db_role        text CHECK (db_role ~ '^ai_care_tenant_[0-9a-f]{32}$'),
    db_password_enc bytea,
    schema_version integer NOT NULL DEFAULT 0,
    -- Typed settings without secrets; integration credentials live encrypted
    -- in settings_secrets_enc and are never returned by the API.
    settings       jsonb NOT NULL DEFAULT '{}'::jsonb,
    settings_secrets_enc bytea,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    -- Set when the database and role were dropped; the row stays for audit.
    purged_at      timestamptz
);
-- A slug is free again once its tenant is purged.
CREATE UNIQUE INDEX tenants_slug_live_idx ON tenants (slug) WHERE purged_at IS NULL;
CREATE INDEX tenants_parent_idx ON tenants (parent_id);
CREATE INDEX tenants_status_idx ON tenants (status, id);
CREATE INDEX tenants_server_idx ON tenants (db_server_id);

CREATE TABLE tenant_domains (
    domain     text PRIMARY KEY CHECK (domain = lower(domain)),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_domains_tenant_idx ON tenant_domains (tenant_id);

-- Every lifecycle step, written before its side effect and completed after it.
CREATE TABLE operations (
    id          uuid PRIMARY KEY,
    kind        text NOT NULL,
    tenant_id   uuid REFERENCES tenants (id),
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'rolled_back')),
    attempts    integer NOT NULL DEFAULT 0,
    params      jsonb NOT NULL DEFAULT '{}'::jsonb,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX operations_unfinished_idx ON operations (created_at)
    WHERE state IN ('pending', 'running');
CREATE INDEX operations_tenant_idx ON operations (tenant_id, created_at);
-- The per-tenant operation lock: at most one unfinished operation per tenant,
-- across every replica. A crashed operation keeps the lock until the
-- reconciler finishes or undoes it.
CREATE UNIQUE INDEX operations_one_per_tenant_idx ON operations (tenant_id)
    WHERE state IN ('pending', 'running');

-- A retried request with the same key returns the first response.
CREATE TABLE idempotency_keys (
    principal       text NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    text NOT NULL,
    response_status integer,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);

-- Control-plane audit events (tenant data-plane events live in each tenant database).
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    tenant_id    uuid,
    subtenant_id uuid,
    user_id      text NOT NULL,
    action       text NOT NULL,
    resource     text NOT NULL,
    ip_address   text,
    user_agent   text,
    result       text NOT NULL CHECK (result IN ('success', 'failure')),
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, at);

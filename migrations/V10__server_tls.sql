-- TLS to each registered server: libpq's sslmode, and the CA certificates
-- its certificate must chain to (PEM text, or 'system' for the operating
-- system's store). Kept in the catalog so that every replica reaches the
-- server the same way without a file of its own. Servers registered before
-- get libpq's default, 'prefer'.
ALTER TABLE db_servers
    ADD COLUMN ssl_mode text NOT NULL DEFAULT 'prefer'
        CHECK (ssl_mode IN ('disable', 'prefer', 'require', 'verify-ca', 'verify-full')),
    ADD COLUMN ssl_root_cert text;

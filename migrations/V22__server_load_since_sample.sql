-- Placement between samples: a server's storage as sampled only grows at
-- the next sample, so every tenant made meanwhile went to the same server.
-- A sample now also records how many root tenants the server held and what
-- a new tenant database weighs there (its template's size); placement adds
-- that weight for each tenant placed since.
ALTER TABLE server_load
    ADD COLUMN tenants integer NOT NULL DEFAULT 0,
    ADD COLUMN new_tenant_bytes bigint NOT NULL DEFAULT 0;

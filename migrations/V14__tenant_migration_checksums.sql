-- The checksum (refinery's, of version, name and SQL) of every tenant
-- migration version as first applied anywhere in the fleet. A build or a
-- migrations folder whose file for one of these versions differs is refused
-- at start-up and when a fleet run is created, so no two servers ever hold
-- two different schemas under one version number.
CREATE TABLE tenant_migration_checksums (
    version          integer PRIMARY KEY CHECK (version > 0),
    name             text NOT NULL,
    checksum         text NOT NULL CHECK (checksum ~ '^[0-9a-f]{16}$'),
    first_applied_at timestamptz NOT NULL DEFAULT now()
);

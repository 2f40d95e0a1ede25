-- The expected tenant schema of each migration version (drift detection):
-- built once for the fleet, in a scratch database migrated to that version,
-- and reused by every replica whose migration set up to that version has
-- the same checksum. A different checksum means a different set: the
-- snapshot is built again and replaces the row.
CREATE TABLE expected_schemas (
    version     integer PRIMARY KEY CHECK (version >= 0),
    -- SHA-256 (hex) of the set's (version, name, checksum) up to `version`.
    checksum    text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    -- SHA-256 (hex) of the snapshot's canonical form.
    fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    snapshot    jsonb NOT NULL,
    built_at    timestamptz NOT NULL DEFAULT now()
);

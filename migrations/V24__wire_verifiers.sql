-- SCRAM-SHA-256 verifiers of API keys, for the PostgreSQL-protocol gateway.
-- Computed when a key is minted (the only moment its secret is known), so
-- the secret never crosses the wire at login. A key minted before this has
-- none and cannot log in there; a new key can.
--
-- Every key of a tenant shares the tenant's salt (derived from its id): the
-- gateway must send the salt before it knows which key the client holds,
-- and then tries the proof against each of the tenant's keys.
ALTER TABLE api_keys
    ADD COLUMN wire_stored_key bytea CHECK (length(wire_stored_key) = 32),
    ADD COLUMN wire_server_key bytea CHECK (length(wire_server_key) = 32),
    ADD CONSTRAINT api_keys_wire_verifier_whole
        CHECK ((wire_stored_key IS NULL) = (wire_server_key IS NULL));

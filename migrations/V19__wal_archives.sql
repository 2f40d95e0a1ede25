-- Point-in-time restore: a server's pgBackRest archive (its stanza and
-- repository, in the clear) and the secrets that open it (its cipher
-- passphrase, sealed with the master key under the server's purpose).
ALTER TABLE db_servers
    ADD COLUMN wal_archive jsonb,
    ADD COLUMN wal_archive_secrets_enc bytea,
    ADD CONSTRAINT db_servers_wal_archive_whole
        CHECK ((wal_archive IS NULL) = (wal_archive_secrets_enc IS NULL));

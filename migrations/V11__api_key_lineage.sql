-- Which key minted which: revoking a key revokes the keys it minted, and
-- theirs, in one statement. A key minted by a token (not a key) has none.
-- Pruning a revoked or expired key leaves its children's link empty.
ALTER TABLE api_keys ADD COLUMN minted_by uuid REFERENCES api_keys (id) ON DELETE SET NULL;
CREATE INDEX api_keys_minted_by_idx ON api_keys (minted_by) WHERE minted_by IS NOT NULL;

-- Keys minted before this column existed name their maker in created_by.
UPDATE api_keys AS k SET minted_by = m.id
  FROM api_keys AS m
 WHERE k.created_by = 'apikey:' || m.id::text AND k.id <> m.id;

-- A restore as a new tenant names the tenant it restores from, but reads a
-- kept backup and leaves that tenant alone: like a backup, it does not take
-- the tenant's operation lock.
DROP INDEX operations_one_per_tenant_idx;
CREATE UNIQUE INDEX operations_one_per_tenant_idx ON operations (tenant_id)
    WHERE state IN ('pending', 'queued', 'running') AND kind NOT IN ('backup', 'restore_as_new');

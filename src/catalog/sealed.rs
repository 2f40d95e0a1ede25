//! The sealed columns of the catalog, read and written in batches for a
//! master key rotation (`tenants::keys`).
//!
//! Rules:
//! - A rotation changes only rows it holds locked, one batch per transaction
//!   (`reseal_batch`), so it can stop anywhere and run again, and two runs
//!   share the work.

use uuid::Uuid;

use super::{Catalog, CatalogError};

/// A column that holds a value sealed with the master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `tenants.db_password_enc`: a tenant login role's password.
    TenantRolePassword,
    /// `tenants.settings_secrets_enc`: a tenant's integration secrets.
    TenantSecrets,
    /// `db_servers.admin_password_enc`: a server's admin password.
    ServerAdminPassword,
    /// `tenant_identity_providers.client_secret_enc`: the console's client
    /// secret at a tenant's identity provider.
    IdentityClientSecret,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 4] = [
        Self::TenantRolePassword,
        Self::TenantSecrets,
        Self::ServerAdminPassword,
        Self::IdentityClientSecret,
    ];

    /// (table, its key column, the sealed column): fixed names, never from input.
    fn table_and_column(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::TenantRolePassword => ("tenants", "id", "db_password_enc"),
            Self::TenantSecrets => ("tenants", "id", "settings_secrets_enc"),
            Self::ServerAdminPassword => ("db_servers", "id", "admin_password_enc"),
            Self::IdentityClientSecret => (
                "tenant_identity_providers",
                "tenant_id",
                "client_secret_enc",
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TenantRolePassword => "tenant role passwords",
            Self::TenantSecrets => "integration secrets",
            Self::ServerAdminPassword => "server admin passwords",
            Self::IdentityClientSecret => "identity provider client secrets",
        }
    }
}

impl Catalog {
    /// Re-seals up to `limit` values of `column` that do not start with
    /// `current` (the newest key's prefix), in one transaction: the rows are
    /// locked (`SKIP LOCKED`, so two runs share the work), `reseal` gives
    /// each one's new value, and all are written together. Returns how many
    /// were re-sealed; 0 means the column is done.
    pub async fn reseal_batch<E>(
        &self,
        column: SealedColumn,
        current: &[u8],
        limit: i64,
        reseal: impl Fn(Uuid, &[u8]) -> Result<Vec<u8>, E>,
    ) -> Result<Result<usize, E>, CatalogError> {
        let (table, id, col) = column.table_and_column();
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {id}, {col} FROM {table}
                      WHERE {col} IS NOT NULL AND substring({col} FROM 1 FOR $1) <> $2
                      ORDER BY {id} LIMIT $3 FOR UPDATE SKIP LOCKED"
                ),
                &[&(current.len() as i32), &current, &limit],
            )
            .await?;
        let update = tx
            .prepare(&format!("UPDATE {table} SET {col} = $2 WHERE {id} = $1"))
            .await?;
        for row in &rows {
            let id: Uuid = row.get(0);
            let old: Vec<u8> = row.get(1);
            let new = match reseal(id, &old) {
                Ok(new) => new,
                // Nothing of this batch is written; the caller says why.
                Err(e) => return Ok(Err(e)),
            };
            tx.execute(&update, &[&id, &new]).await?;
        }
        tx.commit().await?;
        Ok(Ok(rows.len()))
    }
}

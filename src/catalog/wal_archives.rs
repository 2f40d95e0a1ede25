//! Each server's WAL archive (`db_servers.wal_archive`): the pgBackRest
//! stanza and repository a point-in-time restore reads, with its secrets
//! kept sealed (`wal_archive_secrets_enc`).

use uuid::Uuid;

use super::{Catalog, CatalogError, TenantRecord};
use crate::domain::TenantId;

/// A server's archive as stored: the record in the clear, the secrets sealed.
#[derive(Debug, Clone)]
pub struct StoredArchive {
    pub record: serde_json::Value,
    pub secrets_enc: Vec<u8>,
}

/// The purpose a server's archive secrets are sealed under.
pub fn wal_archive_purpose(server: Uuid) -> String {
    format!("db_server:{server}:wal_archive")
}

impl Catalog {
    /// Records (or replaces) `server`'s archive.
    pub async fn set_wal_archive(
        &self,
        server: Uuid,
        record: &serde_json::Value,
        secrets_enc: &[u8],
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE db_servers SET wal_archive = $2, wal_archive_secrets_enc = $3, updated_at = now()
                  WHERE id = $1",
                &[&server, record, &secrets_enc],
            )
            .await?;
        Ok(())
    }

    /// Forgets `server`'s archive; whether it had one.
    pub async fn clear_wal_archive(&self, server: Uuid) -> Result<bool, CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "UPDATE db_servers SET wal_archive = NULL, wal_archive_secrets_enc = NULL, updated_at = now()
                  WHERE id = $1 AND wal_archive IS NOT NULL",
                &[&server],
            )
            .await?;
        Ok(n == 1)
    }

    /// `server`'s archive, if it has one.
    pub async fn wal_archive(&self, server: Uuid) -> Result<Option<StoredArchive>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT wal_archive, wal_archive_secrets_enc FROM db_servers
                  WHERE id = $1 AND wal_archive IS NOT NULL",
                &[&server],
            )
            .await?;
        Ok(row.map(|r| StoredArchive {
            record: r.get(0),
            secrets_enc: r.get(1),
        }))
    }

    /// Every subtenant `root` ever had, purged ones too: a restore to a
    /// time must know which of the rows it brings back belong to a
    /// subtenant purged since.
    pub async fn subtenants_ever_of(
        &self,
        root: TenantId,
    ) -> Result<Vec<TenantRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {} FROM tenants WHERE parent_id = $1 ORDER BY id",
                super::tenants::TENANT_COLUMNS
            ),
            &[&root.as_uuid()],
            super::tenants::tenant_from_row,
        )
        .await
    }
}

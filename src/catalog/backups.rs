//! `backups`: one row per archive written to the backup location, so a
//! listing, a restore by id and retention never have to list the bucket.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::{TenantId, Tier};

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupReason {
    Manual,
    Scheduled,
    /// Before a purge; never pruned.
    Final,
}

impl BackupReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Scheduled => "scheduled",
            Self::Final => "final",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "scheduled" => Self::Scheduled,
            "final" => Self::Final,
            _ => Self::Manual,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackupRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// The operation that wrote it.
    pub operation_id: Option<Uuid>,
    /// The object: `file:///…` or `s3://bucket/key`.
    pub location: String,
    /// Size of the stored (encrypted) object.
    pub bytes: i64,
    /// SHA-256 of the stored object, hex.
    pub sha256: String,
    pub schema_version: i32,
    pub reason: BackupReason,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, tenant_id, operation_id, location, bytes, sha256, schema_version, reason, created_at";

fn from_row(r: &tokio_postgres::Row) -> BackupRecord {
    BackupRecord {
        id: r.get(0),
        tenant_id: TenantId::from(r.get::<_, Uuid>(1)),
        operation_id: r.get(2),
        location: r.get(3),
        bytes: r.get(4),
        sha256: r.get(5),
        schema_version: r.get(6),
        reason: BackupReason::parse(r.get(7)),
        created_at: r.get(8),
    }
}

/// The advisory lock class of the scheduled-backup pass ("tpbk").
const SCHEDULE_LOCK_CLASS: i32 = 0x7470_626b;

/// Held while one replica runs the scheduled-backup pass; dropping it ends
/// its session, which frees the lock (so does the process dying).
pub struct ScheduleLock {
    _client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for ScheduleLock {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Catalog {
    /// The scheduled-backup pass's lock, on a session of its own; `None`
    /// while another replica runs the pass, so no tenant is backed up twice.
    pub async fn try_schedule_lock(&self) -> Result<Option<ScheduleLock>, CatalogError> {
        let (client, connection) = self
            .config()
            .connect()
            .await
            .map_err(CatalogError::Connect)?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let held: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, 0)",
                &[&SCHEDULE_LOCK_CLASS],
            )
            .await?
            .get(0);
        let lock = ScheduleLock {
            _client: client,
            driver,
        };
        Ok(held.then_some(lock))
    }

    pub async fn insert_backup(&self, b: &BackupRecord) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO backups (id, tenant_id, operation_id, location, bytes, sha256,
                        schema_version, reason, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &b.id,
                    &b.tenant_id.as_uuid(),
                    &b.operation_id,
                    &b.location,
                    &b.bytes,
                    &b.sha256,
                    &b.schema_version,
                    &b.reason.as_str(),
                    &b.created_at,
                ],
            )
            .await?;
        Ok(())
    }

    /// A tenant's kept backups, newest first.
    pub async fn list_backups(&self, tenant: TenantId) -> Result<Vec<BackupRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {COLUMNS} FROM backups
                  WHERE tenant_id = $1 AND pruned_at IS NULL ORDER BY created_at DESC, id DESC"
            ),
            &[&tenant.as_uuid()],
            from_row,
        )
        .await
    }

    /// A kept backup of `tenant`.
    pub async fn get_backup(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<BackupRecord>, CatalogError> {
        self.read_opt(
            &format!(
                "SELECT {COLUMNS} FROM backups
                  WHERE id = $1 AND tenant_id = $2 AND pruned_at IS NULL"
            ),
            &[&id, &tenant.as_uuid()],
            from_row,
        )
        .await
    }

    /// A kept backup by id alone (the CLI's `restore --backup`).
    pub async fn find_backup(&self, id: Uuid) -> Result<Option<BackupRecord>, CatalogError> {
        self.read_opt(
            &format!("SELECT {COLUMNS} FROM backups WHERE id = $1 AND pruned_at IS NULL"),
            &[&id],
            from_row,
        )
        .await
    }

    /// Active root tenants of `tier` whose newest backup is older than
    /// `every` (or who have none), oldest first, at most `limit`.
    pub async fn tenants_due_for_backup(
        &self,
        tier: Tier,
        every: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<TenantId>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT t.id FROM tenants t
                  LEFT JOIN LATERAL (
                        SELECT max(created_at) AS last FROM backups b
                         WHERE b.tenant_id = t.id AND b.pruned_at IS NULL) b ON true
                  WHERE t.parent_id IS NULL AND t.status = 'active' AND t.purged_at IS NULL
                    AND t.tier = $1
                    AND (b.last IS NULL OR b.last <= now() - make_interval(secs => $2))
                  ORDER BY b.last NULLS FIRST, t.id
                  LIMIT $3",
                &[&tier.as_str(), &every.as_secs_f64(), &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TenantId::from(r.get::<_, Uuid>(0)))
            .collect())
    }

    /// Tenants with more kept backups than `keep` could hold: the ones
    /// retention looks at.
    pub async fn tenants_with_backups_over(
        &self,
        keep: i64,
    ) -> Result<Vec<TenantId>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT tenant_id FROM backups
                  WHERE pruned_at IS NULL AND reason <> 'final'
                  GROUP BY tenant_id HAVING count(*) > $1",
                &[&keep],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TenantId::from(r.get::<_, Uuid>(0)))
            .collect())
    }

    pub async fn mark_backup_pruned(&self, id: Uuid) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute("UPDATE backups SET pruned_at = now() WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }
}

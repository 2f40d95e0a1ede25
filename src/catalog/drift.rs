//! Each root tenant's drift state as last checked (`tenant_drift`): in
//! sync, drifted (with its per-object diff) or unknown (with the reason it
//! could not be checked), against the expected schema of one version.
//!
//! Rules:
//! - A record names the version it was checked against. Once the tenant's
//!   recorded `schema_version` moved past it, the record is stale: readers
//!   see it as `unknown`, never `in_sync`, and nothing treats it as drifted
//!   (`DriftRecord::effective`).
//! - A scan's writes are fenced: a record written for a scan lands only
//!   while that scan's operation is still held by the writer's fence.
//! - `notified_fingerprint` is kept here, with the state, in one statement:
//!   the `tenant.drifted` event (a trigger) fires when it changes to a new
//!   drift, so an unknown check between two equal drifts sends nothing.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Catalog, CatalogError, Fence};
use crate::domain::TenantId;

/// A tenant's drift state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DriftState {
    InSync,
    Drifted,
    Unknown,
}

impl DriftState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InSync => "in_sync",
            Self::Drifted => "drifted",
            Self::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "in_sync" => Self::InSync,
            "drifted" => Self::Drifted,
            _ => Self::Unknown,
        }
    }
}

/// A tenant's drift record as stored, with the tenant's version now.
#[derive(Debug, Clone, Serialize)]
pub struct DriftRecord {
    pub tenant_id: TenantId,
    pub slug: String,
    /// As recorded; see `effective` for what it means now.
    pub state: DriftState,
    /// The version checked against.
    pub version: i32,
    /// The tenant's recorded schema version now.
    pub schema_version: i32,
    pub fingerprint: Option<String>,
    pub expected_fingerprint: Option<String>,
    pub diff: serde_json::Value,
    pub reason: Option<String>,
    pub checked_at: DateTime<Utc>,
    pub scan_id: Option<Uuid>,
}

impl DriftRecord {
    /// Whether the record was checked against the tenant's version now.
    pub fn is_current(&self) -> bool {
        self.version == self.schema_version
    }

    /// The state as it stands now: a stale record is `unknown`.
    pub fn effective(&self) -> DriftState {
        if self.is_current() {
            self.state
        } else {
            DriftState::Unknown
        }
    }

    /// Whether the tenant is drifted at its version now.
    pub fn is_drifted(&self) -> bool {
        self.effective() == DriftState::Drifted
    }

    /// Why a migration leaves the tenant alone: "drifted at <checked_at>; …".
    pub fn refusal(&self) -> String {
        let objects = self.diff.as_array().map_or(0, Vec::len);
        format!(
            "drifted at {}; {objects} schema objects differ from version {}; allow_drift migrates it anyway",
            self.checked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.version
        )
    }
}

/// One check's result, to record.
#[derive(Debug, Clone)]
pub struct NewDrift<'a> {
    pub state: DriftState,
    pub version: i32,
    pub fingerprint: Option<&'a str>,
    pub expected_fingerprint: Option<&'a str>,
    pub diff: serde_json::Value,
    pub reason: Option<&'a str>,
    pub scan: Option<Uuid>,
}

/// Root tenants over the fleet, by effective drift state (a tenant never
/// checked, or checked at an older version, counts as unknown).
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct DriftCounts {
    pub in_sync: i64,
    pub drifted: i64,
    pub unknown: i64,
}

/// The tenants a drift check covers, as `t`: root tenants with a database
/// that is not purged or failed (the fleet run's own set).
pub(super) const DRIFT_TENANTS: &str = "t.parent_id IS NULL AND t.purged_at IS NULL
    AND t.db_name IS NOT NULL AND t.status IN ('active', 'suspended', 'deleted')";

const DRIFT_COLUMNS: &str = "d.tenant_id, t.slug, d.state, d.version, t.schema_version,
    d.fingerprint, d.expected_fingerprint, d.diff, d.reason, d.checked_at, d.scan_id";

fn drift_from_row(r: &Row) -> DriftRecord {
    DriftRecord {
        tenant_id: TenantId::from(r.get::<_, Uuid>("tenant_id")),
        slug: r.get("slug"),
        state: DriftState::parse(r.get("state")),
        version: r.get("version"),
        schema_version: r.get("schema_version"),
        fingerprint: r.get("fingerprint"),
        expected_fingerprint: r.get("expected_fingerprint"),
        diff: r.get("diff"),
        reason: r.get("reason"),
        checked_at: r.get("checked_at"),
        scan_id: r.get("scan_id"),
    }
}

impl Catalog {
    /// Records one check of `tenant`. With `fence` (a scan's), it lands only
    /// while that operation is held by it: `Fenced` otherwise.
    pub async fn record_drift(
        &self,
        tenant: TenantId,
        new: &NewDrift<'_>,
        fence: Option<Fence>,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "INSERT INTO tenant_drift AS d (tenant_id, state, version, fingerprint,
                        expected_fingerprint, diff, reason, checked_at, scan_id, notified_fingerprint)
                 SELECT $1, $2, $3, $4, $5, $6, $7, now(), $8, CASE WHEN $2 = 'drifted' THEN $4 END
                  WHERE $9::uuid IS NULL OR EXISTS (SELECT 1 FROM operations
                         WHERE id = $9 AND generation = $10 AND state = 'running')
                 ON CONFLICT (tenant_id) DO UPDATE SET state = EXCLUDED.state,
                        version = EXCLUDED.version, fingerprint = EXCLUDED.fingerprint,
                        expected_fingerprint = EXCLUDED.expected_fingerprint,
                        diff = EXCLUDED.diff, reason = EXCLUDED.reason,
                        checked_at = EXCLUDED.checked_at, scan_id = EXCLUDED.scan_id,
                        notified_fingerprint = CASE EXCLUDED.state
                            WHEN 'drifted' THEN EXCLUDED.fingerprint
                            WHEN 'in_sync' THEN NULL
                            ELSE d.notified_fingerprint END",
                &[
                    &tenant.as_uuid(),
                    &new.state.as_str(),
                    &new.version,
                    &new.fingerprint,
                    &new.expected_fingerprint,
                    &new.diff,
                    &new.reason,
                    &new.scan,
                    &fence.map(|f| f.op),
                    &fence.map(|f| f.generation),
                ],
            )
            .await?;
        if n == 1 {
            Ok(())
        } else {
            Err(CatalogError::Fenced)
        }
    }

    /// `tenant`'s drift record; `None` when it was never checked.
    pub async fn tenant_drift(
        &self,
        tenant: TenantId,
    ) -> Result<Option<DriftRecord>, CatalogError> {
        self.read_opt(
            &format!(
                "SELECT {DRIFT_COLUMNS} FROM tenant_drift d JOIN tenants t ON t.id = d.tenant_id
                  WHERE d.tenant_id = $1"
            ),
            &[&tenant.as_uuid()],
            drift_from_row,
        )
        .await
    }

    /// Tenants drifted at their version now, most recently checked first.
    pub async fn drifted_tenants(&self, limit: i64) -> Result<Vec<DriftRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {DRIFT_COLUMNS} FROM tenant_drift d JOIN tenants t ON t.id = d.tenant_id
                  WHERE d.state = 'drifted' AND d.version = t.schema_version AND {DRIFT_TENANTS}
                  ORDER BY d.checked_at DESC, d.tenant_id LIMIT $1"
            ),
            &[&limit],
            drift_from_row,
        )
        .await
    }

    /// Ends a fleet run's item `skipped`, with `reason` (the drift gate).
    pub async fn skip_item(
        &self,
        run: Uuid,
        tenant: TenantId,
        reason: &str,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE migration_items SET state = 'skipped', error = $3, finished_at = now()
                  WHERE run_id = $1 AND tenant_id = $2",
                &[&run, &tenant.as_uuid(), &reason],
            )
            .await?;
        Ok(())
    }

    /// The fleet's root tenants by effective drift state.
    pub async fn drift_counts(&self) -> Result<DriftCounts, CatalogError> {
        let rows = self
            .read_all(
                &format!(
                    "SELECT CASE WHEN d.tenant_id IS NULL OR d.version <> t.schema_version
                                 THEN 'unknown' ELSE d.state END, count(*)
                       FROM tenants t LEFT JOIN tenant_drift d ON d.tenant_id = t.id
                      WHERE {DRIFT_TENANTS} GROUP BY 1"
                ),
                &[],
                |r| (r.get::<_, String>(0), r.get::<_, i64>(1)),
            )
            .await?;
        let mut counts = DriftCounts::default();
        for (state, n) in rows {
            match DriftState::parse(&state) {
                DriftState::InSync => counts.in_sync += n,
                DriftState::Drifted => counts.drifted += n,
                DriftState::Unknown => counts.unknown += n,
            }
        }
        Ok(counts)
    }
}

//! The fleet migration ledger: `migration_runs` and `migration_items`.
//!
//! Rules:
//! - Items are taken and finished in `migration_items.rs`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::{TenantId, Tier};
use crate::lint::Finding;

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: Uuid,
    pub state: String,
    pub target_version: i32,
    pub concurrency: i32,
    pub canary: i32,
    pub max_failures: i32,
    pub tier: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Lint findings on the run's pending migrations when it was created.
    pub lint: Vec<Finding>,
    /// The lint rules the run named to start despite their findings.
    pub acknowledged: Vec<String>,
    /// Tenants recorded as drifted are migrated too (else skipped).
    pub allow_drift: bool,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RunCounts {
    pub total: i64,
    pub pending: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemRecord {
    pub tenant_id: TenantId,
    pub canary: bool,
    pub state: String,
    pub from_version: Option<i32>,
    pub to_version: Option<i32>,
    pub applied: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: Option<i32>,
}

/// Parameters of a new run.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub target_version: i32,
    pub concurrency: i32,
    pub canary: i32,
    pub max_failures: i32,
    pub tier: Option<Tier>,
    /// Connect to every tenant, even those the catalog records as current.
    pub verify: bool,
    /// Lint findings and the acknowledged rules, kept with the run.
    pub lint: Vec<Finding>,
    pub acknowledged: Vec<String>,
    pub allow_drift: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionCount {
    pub version: i32,
    pub tenants: i64,
}

const RUN_COLUMNS: &str = "id, state, target_version, concurrency, canary, max_failures, tier,
    error, created_at, updated_at, finished_at, lint, acknowledged, allow_drift";

fn run_from_row(r: &Row) -> RunRecord {
    RunRecord {
        id: r.get("id"),
        state: r.get("state"),
        target_version: r.get("target_version"),
        concurrency: r.get("concurrency"),
        canary: r.get("canary"),
        max_failures: r.get("max_failures"),
        tier: r.get("tier"),
        error: r.get("error"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        finished_at: r.get("finished_at"),
        // A finding shape this release cannot read (written by a newer one)
        // shows as none rather than failing the read of the run.
        lint: r
            .try_get::<_, Json<Vec<Finding>>>("lint")
            .map(|j| j.0)
            .unwrap_or_default(),
        acknowledged: r.get("acknowledged"),
        allow_drift: r.get("allow_drift"),
    }
}

/// Tenants a fleet run covers: those with a database that is not purged or failed.
pub(super) const FLEET_TENANTS: &str =
    "parent_id IS NULL AND purged_at IS NULL AND db_name IS NOT NULL
    AND status IN ('active', 'suspended', 'deleted')";

impl Catalog {
    /// Records a run with one pending item per tenant in the fleet (of `tier`,
    /// if given); the first `canary` tenants form the canary wave.
    pub async fn create_run(&self, new: &NewRun) -> Result<RunRecord, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let id = Uuid::now_v7();
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO migration_runs (id, target_version, concurrency, canary, max_failures, tier,
                                                 lint, acknowledged, allow_drift)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {RUN_COLUMNS}"
                ),
                &[
                    &id,
                    &new.target_version,
                    &new.concurrency,
                    &new.canary,
                    &new.max_failures,
                    &new.tier.map(Tier::as_str),
                    &Json(&new.lint),
                    &new.acknowledged,
                    &new.allow_drift,
                ],
            )
            .await?;
        // Unless `verify` is set, a tenant the catalog already records at the
        // target is skipped without connecting to it: the migrator records a
        // tenant's version only after its migration commits, so the catalog
        // can lag a database but never lead it.
        tx.execute(
            &format!(
                "INSERT INTO migration_items
                    (run_id, tenant_id, canary, position, state, from_version, to_version, applied)
                 SELECT $1, id,
                        NOT skip AND sum((NOT skip)::int) OVER (ORDER BY id) <= $2,
                        row_number() OVER (ORDER BY id),
                        CASE WHEN skip THEN 'skipped' ELSE 'pending' END,
                        CASE WHEN skip THEN schema_version END,
                        CASE WHEN skip THEN schema_version END,
                        CASE WHEN skip THEN 0 END
                   FROM (SELECT id, schema_version, (NOT $4 AND schema_version >= $5) AS skip
                           FROM tenants WHERE {FLEET_TENANTS} AND ($3::text IS NULL OR tier = $3)) t"
            ),
            &[
                &id,
                &i64::from(new.canary),
                &new.tier.map(Tier::as_str),
                &new.verify,
                &new.target_version,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(run_from_row(&row))
    }

    pub async fn get_run(&self, id: Uuid) -> Result<Option<RunRecord>, CatalogError> {
        self.read_opt(
            &format!("SELECT {RUN_COLUMNS} FROM migration_runs WHERE id = $1"),
            &[&id],
            run_from_row,
        )
        .await
    }

    pub async fn set_run_state(
        &self,
        id: Uuid,
        state: &str,
        error: Option<&str>,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE migration_runs SET state = $2, error = $3, updated_at = now(),
                        finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'stopped') THEN now() END
                  WHERE id = $1",
                &[&id, &state, &error],
            )
            .await?;
        Ok(())
    }

    pub async fn run_counts(&self, id: Uuid) -> Result<RunCounts, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT state, count(*) FROM migration_items WHERE run_id = $1 GROUP BY state",
                &[&id],
            )
            .await?;
        let mut counts = RunCounts::default();
        for r in rows {
            let n: i64 = r.get(1);
            counts.total += n;
            match r.get::<_, &str>(0) {
                "pending" => counts.pending = n,
                "running" => counts.running = n,
                "succeeded" => counts.succeeded = n,
                "failed" => counts.failed = n,
                _ => counts.skipped = n,
            }
        }
        Ok(counts)
    }

    /// Items of a run in `state` (all when `None`), canaries first.
    pub async fn run_items(
        &self,
        id: Uuid,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ItemRecord>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT tenant_id, canary, state, from_version, to_version, applied, error, duration_ms
                   FROM migration_items WHERE run_id = $1 AND ($2::text IS NULL OR state = $2)
                  ORDER BY canary DESC, position LIMIT $3",
                &[&id, &state, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ItemRecord {
                tenant_id: TenantId::from(r.get::<_, Uuid>(0)),
                canary: r.get(1),
                state: r.get(2),
                from_version: r.get(3),
                to_version: r.get(4),
                applied: r.get(5),
                error: r.get(6),
                duration_ms: r.get(7),
            })
            .collect())
    }

    /// Tenants per schema version, over the fleet.
    pub async fn version_histogram(&self) -> Result<Vec<VersionCount>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT schema_version, count(*) FROM tenants WHERE {FLEET_TENANTS}
                      GROUP BY schema_version ORDER BY schema_version"
                ),
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| VersionCount {
                version: r.get(0),
                tenants: r.get(1),
            })
            .collect())
    }

    /// Tenants below `version`, oldest version first.
    pub async fn tenants_behind(
        &self,
        version: i32,
        limit: i64,
    ) -> Result<Vec<(TenantId, String, i32)>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT id, slug, schema_version FROM tenants
                      WHERE {FLEET_TENANTS} AND schema_version < $1
                      ORDER BY schema_version, id LIMIT $2"
                ),
                &[&version, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (TenantId::from(r.get::<_, Uuid>(0)), r.get(1), r.get(2)))
            .collect())
    }
}

//! Fencing running operations among replicas. Each process holds a
//! session-level advisory lock on the catalog while it lives (its `Owner`
//! key, see `operations::instance`); an operation records its owner, and a
//! claim bumps its generation. A peer takes over an operation whose owner's
//! lock is free (the process or its session died) at once, and one whose
//! owner stopped beating after `stale_after`; a slow but live owner keeps
//! it. A destructive step runs holding the operation's step lock (`hold`:
//! a transaction-level advisory lock keyed by the operation), which every
//! claim must take too, so no claim can slip between the step's last check
//! and its act. Heartbeats do not need it, so a long step still beats.
//!
//! Rules:
//! - A claim takes a new generation and the step lock, so the process that
//!   lost an operation changes nothing more of it.
//! - A released operation (owner key 0: its work stopped half-way) is
//!   claimable by any process after two seconds per attempt so far, at
//!   most a minute (`gone_or_silent`), so a failing one is not retried in a
//!   tight loop.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Catalog, CatalogError};

/// The advisory lock class of owner locks ("tpow"); the owner's key is the
/// object id, so `pg_locks` shows which owners are alive.
pub const OWNER_LOCK_CLASS: i32 = 0x7470_6f77;

/// The advisory lock class of step locks ("tpst"), keyed by operation.
const STEP_LOCK_CLASS: i32 = 0x7470_7374;

/// An operation's step-lock key: the low bits of its id. Two operations
/// that share one only wait for each other's steps.
fn step_key(op: Uuid) -> i32 {
    let bytes = op.as_bytes();
    i32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]])
}

#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub id: Uuid,
    /// A kind a newer release wrote reads as `OpKind::Unknown`, so it
    /// breaks none of this one's reads (the reconciler cannot finish it).
    pub kind: super::OpKind,
    pub tenant_id: Option<Uuid>,
    pub state: super::OpState,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the operation needs to be finished by someone else (a move's servers).
    pub params: serde_json::Value,
    /// Bumped by every claim; a write that names an older one changes nothing.
    pub generation: i64,
    /// The process running it (`None`: written before owners were recorded).
    pub owner: Option<Uuid>,
    /// How far a multi-step operation got.
    pub step: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pub bytes: Option<i64>,
    pub error_code: Option<String>,
    pub cancel_requested: bool,
}

impl Operation {
    /// What the operation works on, when its parameters name it by id (a
    /// run, a revert, a scan, a drained server).
    pub fn subject(&self) -> Option<Uuid> {
        self.params
            .get("subject")
            .and_then(|s| s.as_str())
            .and_then(|s| s.parse().ok())
    }
}

/// Who may write a running operation: its id and the generation claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub op: Uuid,
    pub generation: i64,
}

/// A process that runs operations: its id, and the key of the advisory
/// lock it holds on the catalog while it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub id: Uuid,
    pub key: i32,
}

pub(super) const OPERATION_COLUMNS: &str =
    "id, kind, tenant_id, state, attempts, error, created_at, updated_at, params, generation, owner, step, \
     finished_at, progress_done, progress_total, bytes, error_code, cancel_requested";

pub(super) fn operation_from_row(r: &tokio_postgres::Row) -> Operation {
    Operation {
        id: r.get(0),
        kind: r.get(1),
        tenant_id: r.get(2),
        state: r.get(3),
        attempts: r.get(4),
        error: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
        params: r.get(8),
        generation: r.get(9),
        owner: r.get(10),
        step: r.get(11),
        finished_at: r.get(12),
        progress_done: r.get(13),
        progress_total: r.get(14),
        bytes: r.get(15),
        error_code: r.get(16),
        cancel_requested: r.get(17),
    }
}

/// The condition on an operation `o` that lets a peer take it over: its
/// owner's lock is free (the process or its session died), or nobody beat
/// for the seconds in parameter `$stale`. A released operation (owner key
/// 0, which nobody holds) waits two seconds per attempt so far, at most a
/// minute, so one that keeps failing is not retried in a tight loop.
/// Parameter `$class` is `OWNER_LOCK_CLASS`.
fn gone_or_silent(stale: u8, class: u8) -> String {
    format!(
        "(o.updated_at <= now() - make_interval(secs => ${stale})
          OR (o.owner_key = 0
              AND o.updated_at <= now() - make_interval(secs => least(o.attempts * 2, 60)))
          OR (o.owner IS NOT NULL AND o.owner_key <> 0 AND NOT EXISTS (
                SELECT 1 FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.granted
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND l.classid = ${class}::int4::oid AND l.objid = o.owner_key::oid
                   AND l.objsubid = 2)))"
    )
}

impl Catalog {
    /// Running operations whose owner is gone or silent (see `CLAIMABLE`).
    pub async fn claimable_operations(
        &self,
        stale_after: Duration,
    ) -> Result<Vec<Operation>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {OPERATION_COLUMNS} FROM operations o
                  WHERE state IN ('pending', 'running') AND {}
                  ORDER BY created_at",
                gone_or_silent(1, 2)
            ),
            &[&stale_after.as_secs_f64(), &OWNER_LOCK_CLASS],
            operation_from_row,
        )
        .await
    }

    /// Takes over `seen` for `owner` if nobody claimed it since it was
    /// read: a new generation, so the previous owner's writes stop counting.
    /// The takeover condition is checked again as the row is updated, and
    /// an operation whose owner is in the middle of a step (its step lock
    /// is held) is left alone: that owner is plainly alive.
    pub async fn claim_operation(
        &self,
        seen: &Operation,
        owner: Owner,
        stale_after: Duration,
    ) -> Result<Option<Fence>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let free: bool = tx
            .query_one(
                "SELECT pg_try_advisory_xact_lock($1, $2)",
                &[&STEP_LOCK_CLASS, &step_key(seen.id)],
            )
            .await?
            .get(0);
        if !free {
            return Ok(None);
        }
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE operations o
                        SET generation = generation + 1, owner = $3, owner_key = $4,
                            attempts = attempts + 1, updated_at = clock_timestamp()
                      WHERE id = $1 AND generation = $2 AND state IN ('pending', 'running')
                        AND {}
                      RETURNING generation",
                    gone_or_silent(5, 6)
                ),
                &[
                    &seen.id,
                    &seen.generation,
                    &owner.id,
                    &owner.key,
                    &stale_after.as_secs_f64(),
                    &OWNER_LOCK_CLASS,
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(row.map(|r| Fence {
            op: seen.id,
            generation: r.get(0),
        }))
    }

    /// The owner's sign of life: `None` when the operation was claimed by
    /// another process (or finished) since, else whether a cancel was asked.
    pub async fn heartbeat_operation(&self, fence: Fence) -> Result<Option<bool>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE operations SET updated_at = clock_timestamp()
                  WHERE id = $1 AND generation = $2 AND state = 'running'
                  RETURNING cancel_requested",
                &[&fence.op, &fence.generation],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Records how far the operation got (and what whoever finishes it
    /// needs), if `fence` still holds it.
    pub async fn record_step(
        &self,
        fence: Fence,
        step: &str,
        params: Option<&serde_json::Value>,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "UPDATE operations SET step = $3, params = coalesce($4, params), updated_at = clock_timestamp()
                  WHERE id = $1 AND generation = $2 AND state = 'running'",
                &[&fence.op, &fence.generation, &step, &params],
            )
            .await?;
        if n == 1 {
            Ok(())
        } else {
            Err(CatalogError::Fenced)
        }
    }

    /// Gives a running operation up so that any reconciler takes it over at
    /// once (an owner that could not finish or undo it, say because a
    /// server is down). Nobody holds the released owner's lock.
    pub async fn release_operation(&self, fence: Fence, why: &str) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE operations SET owner = $3, owner_key = 0, error = $4, updated_at = clock_timestamp()
                  WHERE id = $1 AND generation = $2 AND state = 'running'",
                &[&fence.op, &fence.generation, &Uuid::nil(), &why],
            )
            .await?;
        Ok(())
    }

    /// The unfinished operation holding a tenant's lock (at most one). A
    /// backup and a restore from it as a new tenant hold none.
    pub async fn unfinished_operation_of(
        &self,
        tenant: crate::domain::TenantId,
    ) -> Result<Option<Operation>, CatalogError> {
        self.read_opt(
            &format!(
                "SELECT {OPERATION_COLUMNS} FROM operations
                  WHERE tenant_id = $1 AND state IN ('pending', 'queued', 'running')
                    AND kind NOT IN ('backup', 'restore_as_new')"
            ),
            &[&tenant.as_uuid()],
            operation_from_row,
        )
        .await
    }

    /// Every unfinished operation.
    pub async fn unfinished_operations(&self) -> Result<Vec<Operation>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {OPERATION_COLUMNS} FROM operations
                  WHERE state IN ('pending', 'queued', 'running') ORDER BY created_at"
            ),
            &[],
            operation_from_row,
        )
        .await
    }

    /// Holds the operation's step lock while the caller takes a destructive
    /// step, if `fence` still holds the operation: no claim can happen until
    /// the guard is released, so what the step checked through the guard
    /// stays true while it acts. `Fenced` otherwise.
    pub async fn hold(&self, fence: Fence) -> Result<FenceGuard, CatalogError> {
        let client = self.pool().get().await?;
        let mut guard = FenceGuard {
            client: Some(client),
        };
        let held = guard.lock(fence).await;
        match held {
            Ok(true) => Ok(guard),
            Ok(false) => {
                guard.release().await;
                Err(CatalogError::Fenced)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// An open catalog transaction holding an operation's step lock. Release
/// it when the step is done; dropped without a release, its session is
/// thrown away (never returned to the pool mid-transaction), which ends the
/// transaction and the lock.
pub struct FenceGuard {
    client: Option<deadpool_postgres::Object>,
}

impl FenceGuard {
    /// Takes the step lock, then checks that `fence` still holds the
    /// operation.
    async fn lock(&mut self, fence: Fence) -> Result<bool, tokio_postgres::Error> {
        let client = self.client.as_ref().expect("held until released");
        client.batch_execute("BEGIN").await?;
        client
            .execute(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&STEP_LOCK_CLASS, &step_key(fence.op)],
            )
            .await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM operations WHERE id = $1 AND generation = $2 AND state = 'running'",
                &[&fence.op, &fence.generation],
            )
            .await?;
        Ok(row.is_some())
    }

    /// The tenant row as the catalog has it now (read under the guard).
    pub async fn tenant(
        &self,
        id: crate::domain::TenantId,
    ) -> Result<Option<super::TenantRecord>, CatalogError> {
        let client = self.client.as_ref().expect("held until released");
        let row = client
            .query_opt(
                &format!(
                    "SELECT {} FROM tenants WHERE id = $1",
                    super::tenants::TENANT_COLUMNS
                ),
                &[&id.as_uuid()],
            )
            .await?;
        Ok(row.as_ref().map(super::tenants::tenant_from_row))
    }

    /// Ends the transaction and lets the lock go.
    pub async fn release(&mut self) {
        if let Some(client) = self.client.take() {
            if client.batch_execute("COMMIT").await.is_err() {
                let _ = deadpool_postgres::Object::take(client);
            }
        }
    }
}

impl Drop for FenceGuard {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Closing the session aborts the transaction on the server.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

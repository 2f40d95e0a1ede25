//! Reverting one database to an earlier version (`revert_database`): each
//! applied version above the target, newest first, is undone by its down
//! migration.
//!
//! Rules:
//! - Under the same advisory lock as `migrate_database`
//!   (`TENANT_MIGRATION_LOCK`), so a revert and a migration of one database
//!   never overlap, and with the same lock policy (timeouts, retries).
//! - The whole plan is checked before anything runs (`DownSet::plan`): a
//!   missing down, or a destructive one not accepted, changes nothing.
//! - A version's down SQL and the removal of its `refinery_schema_history`
//!   row commit in ONE transaction, so a crash leaves the database on a
//!   whole version, and its history row says which.
//! - The session is closed, and its connection ended, before it returns
//!   (as `migrate_database`'s).

use std::time::Instant;

use super::down::DownMigration;
use super::{lock_safety, MigrateError, MigrationSet, Outcome};

impl MigrationSet {
    /// Checks, without a database, a revert of a database recorded at
    /// `from` back to `target`: the versions of this set in between each
    /// need a down file, and a destructive one needs `accept_data_loss`.
    pub fn check_revert(
        &self,
        from: i32,
        target: i32,
        accept_data_loss: bool,
    ) -> Result<(), MigrateError> {
        let applied: Vec<i32> = self
            .migrations
            .iter()
            .map(|m| m.version())
            .filter(|v| *v <= from)
            .collect();
        self.downs.plan(&applied, target, accept_data_loss)?;
        Ok(())
    }

    /// Reverts the database `config` points at to `target`: every applied
    /// version above it, newest first. Waits while another runner holds the
    /// database's lock. A database at or below `target` is left as it is.
    pub async fn revert_database(
        &self,
        config: &crate::pg::PgConfig,
        target: i32,
        accept_data_loss: bool,
    ) -> Result<Outcome, MigrateError> {
        self.revert_database_from(config, None, target, accept_data_loss)
            .await
    }

    /// As `revert_database`, but only a database whose newest applied
    /// version, read under its lock, is at most `at_most` (a run's revert:
    /// a tenant found above the run's target was moved on, and is left as
    /// it is; one found between the target and the run's was cut short by
    /// a crash, and goes on). The outcome says where it was found.
    #[tracing::instrument(skip_all, fields(db = config.get_dbname().unwrap_or(""), target))]
    pub async fn revert_database_from(
        &self,
        config: &crate::pg::PgConfig,
        at_most: Option<i32>,
        target: i32,
        accept_data_loss: bool,
    ) -> Result<Outcome, MigrateError> {
        let started = Instant::now();
        let (mut client, driver) = super::open_session(config).await?;
        let result = self
            .revert_locked(&mut client, at_most, target, accept_data_loss)
            .await;
        super::apply::close_session(client, driver, "database_revert", started, result).await
    }

    async fn revert_locked(
        &self,
        client: &mut tokio_postgres::Client,
        at_most: Option<i32>,
        target: i32,
        accept_data_loss: bool,
    ) -> Result<(i32, i32, usize), MigrateError> {
        let applied = self.lock_and_read(client).await?;
        let from = applied.iter().copied().max().unwrap_or(0);
        if at_most.is_some_and(|v| from > v) {
            return Ok((from, from, 0));
        }
        let plan = self.downs.plan(&applied, target, accept_data_loss)?;
        if plan.is_empty() {
            return Ok((from, from, 0));
        }
        for down in &plan {
            self.undo_safely(client, down).await?;
        }
        // Under the lock, what is left is what the plan did not undo.
        let to = applied
            .iter()
            .copied()
            .filter(|v| plan.iter().all(|d| d.version != *v))
            .max()
            .unwrap_or(0);
        Ok((from, to, plan.len()))
    }

    /// Takes the database's migration lock and reads the versions refinery's
    /// history records (none for a database refinery has not touched), with
    /// the lock policy's timeouts set in the same round trip.
    async fn lock_and_read(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Vec<i32>, MigrateError> {
        let timeouts = self.lock.statements();
        let read = "SELECT version FROM refinery_schema_history";
        let Some(read) = super::apply::lock_and_read(client, &timeouts, read).await? else {
            return Ok(Vec::new());
        };
        Ok(super::batched::last_statement_rows(&read)
            .into_iter()
            .filter_map(|row| row.get(0)?.parse().ok())
            .collect())
    }

    /// Undoes one version; a lock timeout is tried again after a backoff,
    /// as a migration's is.
    async fn undo_safely(
        &self,
        client: &mut tokio_postgres::Client,
        down: &DownMigration,
    ) -> Result<(), MigrateError> {
        let mut attempt = 0;
        loop {
            match undo(client, down).await {
                Ok(()) => return Ok(()),
                Err(e) if lock_safety::is_lock_timeout(&e) && attempt < self.lock.retries => {
                    attempt += 1;
                    let wait = self.lock.backoff(attempt);
                    tracing::info!(
                        attempt,
                        version = down.version,
                        wait_ms = wait.as_millis() as u64,
                        "a down migration hit its lock timeout; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) if lock_safety::is_lock_timeout(&e) => {
                    return Err(MigrateError::LockTimeout {
                        attempts: attempt + 1,
                        source: Box::new(MigrateError::Query(e)),
                    })
                }
                Err(e) => return Err(MigrateError::Query(e)),
            }
        }
    }
}

/// One version's down SQL and the removal of its history row, in one
/// transaction sent as one message (the version is a number, written in).
async fn undo(
    client: &mut tokio_postgres::Client,
    down: &DownMigration,
) -> Result<(), tokio_postgres::Error> {
    let forget = format!(
        "DELETE FROM refinery_schema_history WHERE version = {}",
        down.version
    );
    super::batched::in_one_transaction(client, [down.sql.as_str(), forget.as_str()].into_iter())
        .await
        .map(|_| ())
}

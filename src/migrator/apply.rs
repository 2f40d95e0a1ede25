//! Applying the pending migrations to one database (`migrate_database`):
//! one session, the database's advisory lock, refinery, the lock policy.
//!
//! Rule: `migrate_database` closes its session, and waits for the server
//! to end it, before it returns: a template it migrated has no session left
//! when it is cloned, and a fleet run's session permit outlives the backend.

use std::time::Instant;

use tokio_postgres::error::SqlState;

use super::batched::{applied_query, Batched, History};
use super::{lock_safety, MigrateError, MigrationSet, Outcome, TENANT_MIGRATION_LOCK};

impl MigrationSet {
    /// Migrates the database `config` points at, to `target` or the newest
    /// version. Waits while another runner holds the database's lock.
    #[tracing::instrument(skip_all, fields(db = config.get_dbname().unwrap_or("")))]
    pub async fn migrate_database(
        &self,
        config: &crate::pg::PgConfig,
        target: Option<i32>,
    ) -> Result<Outcome, MigrateError> {
        let started = Instant::now();
        let (mut client, driver) = open_session(config).await?;
        let result = self.migrate_safely(&mut client, target).await;
        // Closed now: a template must have no connections when cloned.
        close_session(client, driver, "database_migrate", started, result).await
    }

    /// Runs the pending migrations under the lock policy: a migration that
    /// hit `lock_timeout` is tried again after a backoff, from the last
    /// version that committed, until the retries run out.
    async fn migrate_safely(
        &self,
        client: &mut tokio_postgres::Client,
        target: Option<i32>,
    ) -> Result<(i32, i32, usize), MigrateError> {
        // One round trip for every tenant of a fleet run: the lock, the
        // lock policy's timeouts and refinery's history, which refinery is
        // then handed instead of asking for it again.
        let timeouts = self.lock.statements();
        let history = match lock_and_read(client, &timeouts, &applied_query()).await? {
            Some(read) => History::read(&read),
            None => History::Missing,
        };
        let from = history.version();
        if self.pending(from, target).is_empty() {
            return Ok((from, from, 0));
        }
        let mut known = Some(history);
        let mut reached = from;
        let mut attempt = 0;
        loop {
            match self
                .migrate_locked(client, target, reached, known.take())
                .await
            {
                Ok(to) => {
                    // Counted over every attempt: earlier ones may have committed some.
                    let applied = self
                        .migrations
                        .iter()
                        .filter(|m| m.version() > from && m.version() <= to)
                        .count();
                    return Ok((from, to, applied));
                }
                Err(e) if lock_safety::is_lock_timeout(&e) && attempt < self.lock.retries => {
                    attempt += 1;
                    let wait = self.lock.backoff(attempt);
                    tracing::info!(
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "tenant migration hit its lock timeout; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    // What the failed attempt committed before its timeout.
                    reached = history_max(client).await?;
                }
                Err(e) if lock_safety::is_lock_timeout(&e) => {
                    return Err(MigrateError::LockTimeout {
                        attempts: attempt + 1,
                        source: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs refinery once (pending migrations were found by the caller)
    /// on a database at version `reached`, with its history as `known`
    /// when it was read in this session since the last change; the version
    /// it reached, from refinery's report of what it applied.
    async fn migrate_locked(
        &self,
        client: &mut tokio_postgres::Client,
        target: Option<i32>,
        reached: i32,
        known: Option<History>,
    ) -> Result<i32, MigrateError> {
        let report = self
            .runner(target)
            .run_async(&mut Batched::new(client, known))
            .await?;
        Ok(report
            .applied_migrations()
            .iter()
            .map(|m| m.version())
            .fold(reached, i32::max))
    }
}

/// One session to a tenant database, named `tenant-plane-migrate` in
/// `pg_stat_activity`. Its driver (the handle) ends once the server has
/// closed its end (`pg::closing`): a caller that awaits it after dropping
/// the client knows the backend is gone, so a fleet run's session permit,
/// or a template about to be cloned, never overlaps it.
pub(crate) async fn open_session(
    config: &crate::pg::PgConfig,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), MigrateError> {
    let mut config = config.clone();
    config.application_name("tenant-plane-migrate");
    let (client, connection) = config
        .connect_closing()
        .await
        .map_err(MigrateError::Connect)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, driver))
}

/// Closes a session from `open_session` and awaits its end on the server
/// (the database's advisory lock ends with it), records the operation's
/// time as `metric`, and makes the outcome of `result` (from, to, applied).
pub(super) async fn close_session(
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
    metric: &'static str,
    started: Instant,
    result: Result<(i32, i32, usize), MigrateError>,
) -> Result<Outcome, MigrateError> {
    drop(client);
    let _ = driver.await;
    crate::telemetry::metrics::record_operation(metric, started, result.is_ok());
    let (from_version, to_version, applied) = result?;
    Ok(Outcome {
        from_version,
        to_version,
        applied,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// The highest applied version, 0 for a database refinery has not touched.
pub async fn current_version(client: &tokio_postgres::Client) -> Result<i32, MigrateError> {
    // Two statements: a query naming a missing table would not even parse.
    let exists = first_value(
        client
            .simple_query("SELECT to_regclass('refinery_schema_history') IS NOT NULL")
            .await?,
    );
    if exists.as_deref() != Some("t") {
        return Ok(0);
    }
    history_max(client).await
}

/// Takes the database's migration lock (held until the session ends), sets
/// the lock policy's `timeouts` and runs `read` on refinery's history, in
/// one round trip. `None` when the history table does not exist: then the
/// lock and the timeouts hold, and nothing was read.
pub(super) async fn lock_and_read(
    client: &tokio_postgres::Client,
    timeouts: &str,
    read: &str,
) -> Result<Option<Vec<tokio_postgres::SimpleQueryMessage>>, MigrateError> {
    // The statements of one message run in one transaction, and each names
    // its tables only when it runs: the lock is taken before the read can
    // fail, and it outlasts the rollback (a session-level advisory lock
    // ignores transactions); the timeouts do not, so they are set again.
    let message = format!("SELECT pg_advisory_lock({TENANT_MIGRATION_LOCK}); {timeouts}; {read}");
    match client.simple_query(&message).await {
        Ok(read) => Ok(Some(read)),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
            client.batch_execute(timeouts).await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

const HISTORY_MAX: &str = "SELECT coalesce(max(version), 0) FROM refinery_schema_history";

/// The highest version in refinery's history table, which exists.
async fn history_max(client: &tokio_postgres::Client) -> Result<i32, MigrateError> {
    let max = first_value(client.simple_query(HISTORY_MAX).await?);
    Ok(max.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// The first column of the first row of a simple query's answer, as text.
fn first_value(messages: Vec<tokio_postgres::SimpleQueryMessage>) -> Option<String> {
    messages.into_iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    })
}

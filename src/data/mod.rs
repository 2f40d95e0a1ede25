//! The tenant data plane's queries: agents, calls, analytics and the tenant
//! audit log, on the tenant's own database. Every write, and every read of a
//! scoped caller, runs in a transaction that first sets `app.subtenant_id`
//! and `app.user_id` for that transaction only, so row-level security keeps
//! a subtenant's session on its own rows even if a query here forgets a
//! filter. A tenant-wide read is its query alone (see `read`).
//!
//! Rules:
//! - Nothing sets the scope beyond one transaction (`set_config(…, true)`),
//!   so a tenant-wide read, which sets none, finds the scope unset: the whole
//!   tenant (`tests/api/data_scope.rs`).
//! - A session goes back to its pool outside any transaction: writes use a
//!   transaction object that rolls back when dropped, and `read` sends its
//!   `COMMIT` together with its `BEGIN`, so even a cancelled read ends its
//!   transaction.

#[macro_use]
mod record;

pub mod agents;
pub mod analytics;
pub mod calls;
mod limit;
pub mod tenant_audit;
mod timestamp;

use futures_util::try_join;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::domain::TenantId;

/// A data-plane transaction: its statements are prepared once per session
/// and cached (deadpool's statement cache), so each later use is one bind.
pub type Transaction<'a> = deadpool_postgres::Transaction<'a>;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum DataError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    /// The body names a record (an agent) this caller cannot see.
    #[error("no such {0}")]
    UnknownReference(&'static str),
    #[error("limit reached: {limit} is {max}")]
    LimitExceeded { limit: &'static str, max: u32 },
    #[error("the feature `{0}` is not enabled for this tenant")]
    FeatureDisabled(&'static str),
    #[error("{0} is still referenced")]
    InUse(&'static str),
    #[error("the tenant's writes are paused (it is being moved or restored)")]
    Paused,
    #[error("the query ran past the tenant's statement timeout")]
    Timeout,
    #[error("the tenant database went away (suspended, moved, or its server restarted)")]
    Unavailable(#[source] tokio_postgres::Error),
    /// The tenant role lacks a privilege it should have (SQLSTATE 42501):
    /// the database is misconfigured, not the request.
    #[error("the tenant database refused the tenant role a privilege")]
    Denied(#[source] tokio_postgres::Error),
    #[error("tenant database query failed")]
    Query(#[source] tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for DataError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => DataError::InUse("the record"),
            // A move pauses writes by making the tenant role's sessions read-only.
            Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => DataError::Paused,
            // The tier's statement_timeout (or idle_in_transaction timeout).
            Some(c) if *c == SqlState::QUERY_CANCELED => DataError::Timeout,
            Some(c) if *c == SqlState::CHECK_VIOLATION => {
                DataError::Invalid("a value is out of range".into())
            }
            // The session was ended under us: a suspension terminates the
            // tenant's sessions, and a server restart all of them.
            Some(c) if c.code().starts_with("57P") || c.code().starts_with("08") => {
                DataError::Unavailable(e)
            }
            Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => DataError::Denied(e),
            None if e.is_closed() => DataError::Unavailable(e),
            _ => DataError::Query(e),
        }
    }
}

/// Advisory lock key ("tplimits") that serialises limit checks (agents,
/// calls in progress) inside one tenant database.
pub const LIMIT_LOCK: i64 = 0x7470_6c69_6d69_7473;

/// Who a transaction acts for: row-level security reads these.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: TenantId,
    /// Set: the session sees only this subtenant's rows.
    pub subtenant_id: Option<TenantId>,
    pub user_id: String,
    /// Set: only rows this user owns (permission scope `own`).
    pub own_only: bool,
}

impl Caller {
    /// The owner filter of a query: the user, when the scope is `own`.
    pub fn owner_filter(&self) -> Option<&str> {
        self.own_only.then_some(self.user_id.as_str())
    }

    pub fn subtenant_uuid(&self) -> Option<Uuid> {
        self.subtenant_id.map(|s| s.as_uuid())
    }

    /// Whether a read must enter a scope first. A tenant-wide caller needs
    /// none: the policies admit every row while `app.subtenant_id` is
    /// unset, and it is never set beyond one transaction.
    pub fn needs_scope(&self) -> bool {
        self.subtenant_id.is_some() || self.own_only
    }
}

const ENTER: &str =
    "SELECT set_config('app.subtenant_id', $1, true), set_config('app.user_id', $2, true)";

fn caller_params(caller: &Caller) -> String {
    caller
        .subtenant_id
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Sets the session variables row-level security reads, for this transaction only.
pub async fn enter(tx: &Transaction<'_>, caller: &Caller) -> Result<(), DataError> {
    let statement = tx.prepare_cached(ENTER).await?;
    tx.execute(&statement, &[&caller_params(caller), &caller.user_id])
        .await?;
    Ok(())
}

/// A read-only request in one round trip.
///
/// A tenant-wide caller's query goes alone, as a cached prepared statement:
/// no transaction and no scope. Every scope is transaction-local
/// (`set_config(…, true)`), so none is left on the session by an earlier
/// request, and with none set the policies admit the whole tenant.
///
/// A scoped caller (a subtenant, or `own` rows) gets a whole transaction:
/// `BEGIN`, the scope, the query and `COMMIT` are cached prepared statements
/// sent together on the first poll, so the server runs them in order and
/// the session is back outside any transaction however this future ends:
/// dropped half-way, the `COMMIT` is already on its way; if a statement
/// fails, the rest of the transaction is refused and `COMMIT` rolls it back.
/// Row-level security never sees a scope left by an earlier request.
pub async fn read(
    client: &deadpool_postgres::ClientWrapper,
    caller: &Caller,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, DataError> {
    if !caller.needs_scope() {
        let statement = client.prepare_cached(sql).await?;
        return Ok(client.query(&statement, params).await?);
    }
    // One after another: cached, each is ready at once, and the future
    // holds one preparation at a time instead of four.
    let begin = client.prepare_cached("BEGIN READ ONLY").await?;
    let enter = client.prepare_cached(ENTER).await?;
    let statement = client.prepare_cached(sql).await?;
    let commit = client.prepare_cached("COMMIT").await?;
    let subtenant = caller_params(caller);
    let enter_params: [&(dyn ToSql + Sync); 2] = [&subtenant, &caller.user_id];
    // `join!`, not `try_join!`: every reply is awaited, so the session is
    // idle again before it goes back to the pool. Boxed, so the four query
    // futures are not carried (and copied) by every caller's future.
    let (began, entered, rows, committed) = Box::pin(async {
        futures_util::join!(
            client.execute(&begin, &[]),
            client.execute(&enter, &enter_params),
            client.query(&statement, params),
            client.execute(&commit, &[]),
        )
    })
    .await;
    began?;
    entered?;
    let rows = rows?;
    committed?;
    Ok(rows)
}

/// `read` for at most one row.
pub async fn read_opt(
    client: &deadpool_postgres::ClientWrapper,
    caller: &Caller,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, DataError> {
    one(read(client, caller, sql, params).await?)
}

/// Enters the scope and runs one read inside a longer transaction,
/// pipelined: both go to the server in one round trip once cached.
pub async fn scoped_query(
    tx: &Transaction<'_>,
    caller: &Caller,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, DataError> {
    let (enter, statement) = try_join!(tx.prepare_cached(ENTER), tx.prepare_cached(sql))?;
    let subtenant = caller_params(caller);
    let enter_params: [&(dyn ToSql + Sync); 2] = [&subtenant, &caller.user_id];
    let (_, rows) = try_join!(
        tx.execute(&enter, &enter_params),
        tx.query(&statement, params)
    )?;
    Ok(rows)
}

/// `scoped_query` for at most one row.
pub async fn scoped_query_opt(
    tx: &Transaction<'_>,
    caller: &Caller,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, DataError> {
    one(scoped_query(tx, caller, sql, params).await?)
}

fn one(mut rows: Vec<Row>) -> Result<Option<Row>, DataError> {
    if rows.len() > 1 {
        return Err(DataError::Invalid("more than one row matched".into()));
    }
    Ok(rows.pop())
}

//! A tenant session as refinery drives it, each of refinery's steps in one
//! round trip.
//!
//! refinery's own tokio-postgres driver wraps every step in a transaction
//! object and sends each statement on its own: asserting its history
//! table takes three round trips, reading it four (`BEGIN`, a prepare, the
//! query, `COMMIT`), and each migration four more. Across a fleet every
//! round trip waits for a tenant's backend to be scheduled on a busy
//! server, so here each step is one simple-query message: `BEGIN`, the
//! step's statements and `COMMIT`, sent together.
//!
//! Rules:
//! - A step's statements run in one transaction, as refinery's driver
//!   runs them: a migration and its history row commit together or not
//!   at all.
//! - A failed step leaves no transaction open: the server skips the rest
//!   of the message after the failing statement, so the step sends
//!   `ROLLBACK` itself before it reports the error, and a retry (the lock
//!   policy's) starts outside any transaction.
//! - Each statement of the message still gets its own `statement_timeout`
//!   (PostgreSQL times each statement of a simple query separately).
//! - refinery is handed the history its session read under the lock, in
//!   the round trip that took the lock (`History`), instead of asserting
//!   and reading the table again. It is handed over once: a retry after a
//!   lock timeout lets refinery read the table itself.

use refinery::{AsyncMigrate, Migration};
use refinery_core::error::WrapMigrationError;
use refinery_core::traits::r#async::{AsyncQuery, AsyncTransaction};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_postgres::{Client, SimpleQueryMessage, SimpleQueryRow};

/// refinery's connection for one migration session.
pub(super) struct Batched<'a> {
    client: &'a Client,
    /// The history as read in this session under the lock, handed to
    /// refinery once instead of asserting and reading the table again.
    known: Option<History>,
}

impl<'a> Batched<'a> {
    pub(super) fn new(client: &'a Client, known: Option<History>) -> Self {
        Self { client, known }
    }
}

/// The table refinery keeps its history in (its default).
const TABLE: &str = "refinery_schema_history";

/// The query refinery reads its applied migrations with.
pub(super) fn applied_query() -> String {
    <Batched as AsyncMigrate>::get_applied_migrations_query(TABLE)
}

/// refinery's history table as read under the lock.
#[derive(Debug)]
pub(super) enum History {
    /// No table yet: refinery creates it.
    Missing,
    /// Its rows, as refinery's driver reads them.
    Rows(Vec<Migration>),
    /// A row refinery could not have written, and the highest version:
    /// refinery reads the table itself, and its error is the tenant's.
    Unreadable(i32),
}

impl History {
    /// The history from the answer of a message whose last statement is
    /// `applied_query()`.
    pub(super) fn read(messages: &[SimpleQueryMessage]) -> Self {
        let rows = last_statement_rows(messages);
        match rows.iter().map(|row| applied(row)).collect() {
            Ok(applied) => Self::Rows(applied),
            Err(_) => Self::Unreadable(
                rows.iter()
                    .filter_map(|row| row.get(0)?.parse().ok())
                    .max()
                    .unwrap_or(0),
            ),
        }
    }

    /// The highest applied version, 0 for none.
    pub(super) fn version(&self) -> i32 {
        match self {
            Self::Missing => 0,
            Self::Rows(rows) => rows.iter().map(Migration::version).max().unwrap_or(0),
            Self::Unreadable(version) => *version,
        }
    }
}

/// The rows the last statement of a simple-query message returned.
pub(super) fn last_statement_rows(messages: &[SimpleQueryMessage]) -> Vec<&SimpleQueryRow> {
    let mut done = Vec::new();
    let mut current = Vec::new();
    for message in messages {
        match message {
            SimpleQueryMessage::Row(row) => current.push(row),
            SimpleQueryMessage::CommandComplete(_) => done = std::mem::take(&mut current),
            _ => {}
        }
    }
    done
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    // Not `transparent`: the lock policy finds the SQL error in the chain.
    #[error("{0}")]
    Postgres(#[source] tokio_postgres::Error),
    #[error("refinery_schema_history has a row refinery could not have written (version {0})")]
    History(String),
}

impl AsyncTransaction for Batched<'_> {
    type Error = BatchError;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut queries = queries.peekable();
        // The table is known to exist: asserting it would change nothing.
        if matches!(self.known, Some(History::Rows(_) | History::Unreadable(_)))
            && queries.peek().copied() == Some(assert_query().as_str())
        {
            return Ok(0);
        }
        in_one_transaction(self.client, queries)
            .await
            .map_err(BatchError::Postgres)
    }
}

/// Runs `statements` in one transaction, sent as one message: `BEGIN`,
/// each statement, `COMMIT`. On failure the transaction is rolled back
/// before the error is returned. The count of statements sent.
pub(super) async fn in_one_transaction<'a>(
    client: &Client,
    statements: impl Iterator<Item = &'a str>,
) -> Result<usize, tokio_postgres::Error> {
    let mut message = String::from("BEGIN;\n");
    let mut count = 0;
    for statement in statements {
        // On a line of its own: a file that ends in a `--` comment or
        // without a semicolon still ends its last statement here.
        message.push_str(statement);
        message.push_str("\n;\n");
        count += 1;
    }
    message.push_str("COMMIT;");
    match client.batch_execute(&message).await {
        Ok(()) => Ok(count),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

impl AsyncQuery<Vec<Migration>> for Batched<'_> {
    async fn query<'a>(&'a mut self, query: &'a str) -> Result<Vec<Migration>, Self::Error> {
        let messages = self
            .client
            .simple_query(query)
            .await
            .map_err(BatchError::Postgres)?;
        messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(applied(row)),
                _ => None,
            })
            .collect()
    }
}

impl AsyncMigrate for Batched<'_> {
    async fn get_applied_migrations<'a>(
        &'a mut self,
        table: &'a str,
    ) -> Result<Vec<Migration>, refinery::Error> {
        match self.known.take() {
            Some(History::Rows(rows)) => return Ok(rows),
            // Created just now, in this session, under the lock.
            Some(History::Missing) => return Ok(Vec::new()),
            _ => {}
        }
        self.query(&Self::get_applied_migrations_query(table))
            .await
            .migration_err("error getting applied migrations", None)
    }
}

fn assert_query() -> String {
    <Batched as AsyncMigrate>::assert_migrations_table_query(TABLE)
}

/// One row of refinery's history (`version, name, applied_on, checksum`),
/// read as refinery's own driver reads it. A row refinery could not have
/// written (where its driver would panic) stops the run with an error.
fn applied(row: &tokio_postgres::SimpleQueryRow) -> Result<Migration, BatchError> {
    let bad = || BatchError::History(row.get(0).unwrap_or("null").to_string());
    let version = row.get(0).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let name = row.get(1).unwrap_or_default().to_string();
    let applied_on = row
        .get(2)
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .ok_or_else(bad)?;
    let checksum = row.get(3).and_then(|c| c.parse().ok()).ok_or_else(bad)?;
    Ok(Migration::applied(version, name, applied_on, checksum))
}

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

use refinery::Migration;
use refinery_core::traits::r#async::{AsyncQuery, AsyncTransaction};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_postgres::{Client, SimpleQueryMessage};

/// refinery's connection for one migration session.
pub(super) struct Batched<'a>(pub(super) &'a Client);

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
        in_one_transaction(self.0, queries)
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
            .0
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

impl refinery::AsyncMigrate for Batched<'_> {}

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

//! The tenant's own audit log, written in the same transaction as the
//! mutation it records: if the audit write fails, the mutation fails.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Caller, DataError, Transaction};

record! {
    /// One event, with the seed's AuditLog fields.
    #[derive(Debug, Clone, Serialize)]
    pub struct AuditEvent {
        pub tenant_id: uuid::Uuid,
        pub subtenant_id: Option<uuid::Uuid>,
        pub user_id: String,
        pub action: String,
        pub resource: String,
        #[serde(serialize_with = "super::timestamp::rfc3339")]
        pub timestamp: DateTime<Utc> as "\"timestamp\"",
        pub ip_address: Option<String>,
        pub user_agent: Option<String>,
        pub result: String,
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

pub async fn record(
    tx: &Transaction<'_>,
    caller: &Caller,
    origin: &Origin,
    action: &str,
    resource: &str,
    success: bool,
) -> Result<(), DataError> {
    tx.execute(
        "INSERT INTO audit_log (tenant_id, subtenant_id, user_id, action, resource, ip_address, user_agent, result)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &caller.tenant_id.as_uuid(),
            &caller.subtenant_uuid(),
            &caller.user_id,
            &action,
            &resource,
            &origin.ip_address,
            &origin.user_agent,
            &if success { "success" } else { "failure" },
        ],
    )
    .await?;
    Ok(())
}

pub async fn list(
    client: &deadpool_postgres::ClientWrapper,
    caller: &Caller,
    limit: i64,
) -> Result<Vec<AuditEvent>, DataError> {
    let rows = super::read(
        client,
        caller,
        concat!(
            "SELECT ",
            columns!(),
            " FROM audit_log WHERE ($1::text IS NULL OR user_id = $1)
              ORDER BY id DESC LIMIT $2"
        ),
        &[&caller.owner_filter(), &limit],
    )
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

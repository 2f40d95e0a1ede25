//! Calls handled by agents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use deadpool_postgres::ClientWrapper;

use super::limit::RowLimit;
use super::{enter, read, read_opt, scoped_query_opt, Caller, DataError, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Queued,
    InProgress,
    Completed,
    Failed,
    Abandoned,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
        }
    }
}

record! {
    #[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
    pub struct Call {
        pub id: Uuid,
        pub subtenant_id: Option<Uuid>,
        pub agent_id: Uuid,
        pub customer_phone: Option<String>,
        pub status: String,
        pub duration: Option<i32>,
        pub owner: String,
        #[serde(serialize_with = "super::timestamp::rfc3339")]
        pub created_at: DateTime<Utc>,
        #[serde(serialize_with = "super::timestamp::rfc3339")]
        pub updated_at: DateTime<Utc>,
    }
}

#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub status: Option<CallStatus>,
    pub agent_id: Option<Uuid>,
    pub subtenant_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// `maxConcurrentCalls`: the calls in progress.
const MAX_CONCURRENT_CALLS: RowLimit = RowLimit {
    name: "maxConcurrentCalls",
    count_all: "SELECT count(*) FROM calls WHERE status = 'in_progress'",
    count_subtenant:
        "SELECT count(*) FROM calls WHERE status = 'in_progress' AND subtenant_id = $1",
};

/// Checks `maxConcurrentCalls` before a call goes in progress: the
/// subtenant's own limit and its root's total both apply.
async fn check_concurrency(
    tx: &Transaction<'_>,
    caller: &Caller,
    sub_limit: u32,
    root_limit: u32,
) -> Result<(), DataError> {
    tx.execute("SELECT set_config('app.subtenant_id', '', true)", &[])
        .await?;
    MAX_CONCURRENT_CALLS
        .check(tx, caller, root_limit, sub_limit)
        .await
}

#[allow(clippy::too_many_arguments)]
pub async fn create(
    tx: &Transaction<'_>,
    caller: &Caller,
    sub_limit: u32,
    root_limit: u32,
    agent_id: Uuid,
    customer_phone: Option<&str>,
    status: CallStatus,
    duration: Option<i32>,
) -> Result<Call, DataError> {
    if status == CallStatus::InProgress {
        check_concurrency(tx, caller, sub_limit, root_limit).await?;
    }
    enter(tx, caller).await?;
    // The agent must be visible in this scope (row-level security decides).
    let agent = tx
        .query_opt("SELECT 1 FROM agents WHERE id = $1", &[&agent_id])
        .await?;
    if agent.is_none() {
        return Err(DataError::UnknownReference("agent"));
    }
    let row = tx
        .query_one(
            concat!("INSERT INTO calls (id, subtenant_id, agent_id, customer_phone, status, duration, owner)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ", columns!()),
            &[
                &Uuid::now_v7(),
                &caller.subtenant_uuid(),
                &agent_id,
                &customer_phone,
                &status.as_str(),
                &duration,
                &caller.user_id,
            ],
        )
        .await?;
    Ok(from_row(&row))
}

pub async fn list(
    client: &ClientWrapper,
    caller: &Caller,
    f: &CallFilter,
) -> Result<Vec<Call>, DataError> {
    let rows = read(
        client,
        caller,
        concat!(
            "SELECT ",
            columns!(),
            " FROM calls
              WHERE ($1::text IS NULL OR owner = $1)
                AND ($2::text IS NULL OR status = $2)
                AND ($3::uuid IS NULL OR agent_id = $3)
                AND ($4::uuid IS NULL OR subtenant_id = $4)
                AND ($5::timestamptz IS NULL OR created_at >= $5)
                AND ($6::timestamptz IS NULL OR created_at < $6)
                AND ($7::uuid IS NULL OR id > $7)
              ORDER BY id LIMIT $8"
        ),
        &[
            &caller.owner_filter(),
            &f.status.map(CallStatus::as_str),
            &f.agent_id,
            &f.subtenant_id,
            &f.from,
            &f.to,
            &f.after,
            &f.limit,
        ],
    )
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM calls WHERE id = $1 AND ($2::text IS NULL OR owner = $2)"
);

/// One call, as a read-only request of its own.
pub async fn get(client: &ClientWrapper, caller: &Caller, id: Uuid) -> Result<Call, DataError> {
    let row = read_opt(client, caller, GET, &[&id, &caller.owner_filter()]).await?;
    row.as_ref()
        .map(from_row)
        .ok_or(DataError::NotFound("call"))
}

/// One call, inside a transaction that goes on to change it.
async fn get_in(tx: &Transaction<'_>, caller: &Caller, id: Uuid) -> Result<Call, DataError> {
    let row = scoped_query_opt(tx, caller, GET, &[&id, &caller.owner_filter()]).await?;
    row.as_ref()
        .map(from_row)
        .ok_or(DataError::NotFound("call"))
}

/// Changes a call's status or duration; going in progress checks the limit.
pub async fn update(
    tx: &Transaction<'_>,
    caller: &Caller,
    limits: (u32, u32),
    id: Uuid,
    status: Option<CallStatus>,
    duration: Option<i32>,
) -> Result<Call, DataError> {
    let current = get_in(tx, caller, id).await?;
    if status == Some(CallStatus::InProgress) && current.status != "in_progress" {
        check_concurrency(tx, caller, limits.0, limits.1).await?;
        enter(tx, caller).await?;
    }
    let row = tx
        .query_opt(
            concat!(
                "UPDATE calls SET status = coalesce($2, status), duration = coalesce($3, duration),
                        updated_at = now()
                  WHERE id = $1 RETURNING ",
                columns!()
            ),
            &[&id, &status.map(CallStatus::as_str), &duration],
        )
        .await?;
    row.as_ref()
        .map(from_row)
        .ok_or(DataError::NotFound("call"))
}

//! Agents: the voice and chat bots a tenant runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use deadpool_postgres::ClientWrapper;

use super::limit::RowLimit;
use super::{enter, read, read_opt, Caller, DataError, Transaction};
use crate::tenant_config::Resolved;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentType {
    Voice,
    Chat,
}

impl AgentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Voice => "voice",
            Self::Chat => "chat",
        }
    }
}

record! {
    #[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
    pub struct Agent {
        pub id: Uuid,
        pub subtenant_id: Option<Uuid>,
        pub name: String,
        #[serde(rename = "type")]
        pub kind: String as "type",
        pub configuration: serde_json::Value,
        pub owner: String,
        #[serde(serialize_with = "super::timestamp::rfc3339")]
        pub created_at: DateTime<Utc>,
        #[serde(serialize_with = "super::timestamp::rfc3339")]
        pub updated_at: DateTime<Utc>,
    }
}

/// `maxAgents`: counted before the scope is entered, so the root's limit
/// covers every subtenant.
const MAX_AGENTS: RowLimit = RowLimit {
    name: "maxAgents",
    count_all: "SELECT count(*) FROM agents",
    count_subtenant: "SELECT count(*) FROM agents WHERE subtenant_id = $1",
};

/// A validated new agent.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub name: String,
    pub kind: AgentType,
    pub configuration: serde_json::Value,
}

/// Creates an agent within the tenant's features and `maxAgents`; the
/// subtenant's own limit and its root's total both apply.
pub async fn create(
    tx: &Transaction<'_>,
    caller: &Caller,
    features: &Resolved,
    root_limit: u32,
    new: &NewAgent,
) -> Result<Agent, DataError> {
    let enabled = match new.kind {
        AgentType::Voice => features.voice_agents,
        AgentType::Chat => features.chat_agents,
    };
    if !enabled {
        return Err(DataError::FeatureDisabled(match new.kind {
            AgentType::Voice => "voiceAgents",
            AgentType::Chat => "chatAgents",
        }));
    }
    MAX_AGENTS
        .check(tx, caller, root_limit, features.max_agents)
        .await?;
    enter(tx, caller).await?;
    let row = tx
        .query_one(
            concat!(
                "INSERT INTO agents (id, subtenant_id, name, type, configuration, owner)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
                columns!()
            ),
            &[
                &Uuid::now_v7(),
                &caller.subtenant_uuid(),
                &new.name,
                &new.kind.as_str(),
                &new.configuration,
                &caller.user_id,
            ],
        )
        .await?;
    Ok(from_row(&row))
}

pub async fn list(
    client: &ClientWrapper,
    caller: &Caller,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Agent>, DataError> {
    let rows = read(
        client,
        caller,
        concat!(
            "SELECT ",
            columns!(),
            " FROM agents
              WHERE ($1::text IS NULL OR owner = $1) AND ($2::uuid IS NULL OR id > $2)
              ORDER BY id LIMIT $3"
        ),
        &[&caller.owner_filter(), &after, &limit],
    )
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn get(client: &ClientWrapper, caller: &Caller, id: Uuid) -> Result<Agent, DataError> {
    let row = read_opt(
        client,
        caller,
        concat!(
            "SELECT ",
            columns!(),
            " FROM agents WHERE id = $1 AND ($2::text IS NULL OR owner = $2)"
        ),
        &[&id, &caller.owner_filter()],
    )
    .await?;
    row.as_ref()
        .map(from_row)
        .ok_or(DataError::NotFound("agent"))
}

pub async fn update(
    tx: &Transaction<'_>,
    caller: &Caller,
    id: Uuid,
    name: Option<&str>,
    configuration: Option<&serde_json::Value>,
) -> Result<Agent, DataError> {
    enter(tx, caller).await?;
    let row = tx
        .query_opt(
            concat!("UPDATE agents SET name = coalesce($3, name), configuration = coalesce($4, configuration),
                        updated_at = now()
                  WHERE id = $1 AND ($2::text IS NULL OR owner = $2) RETURNING ", columns!()),
            &[&id, &caller.owner_filter(), &name, &configuration],
        )
        .await?;
    row.as_ref()
        .map(from_row)
        .ok_or(DataError::NotFound("agent"))
}

pub async fn delete(tx: &Transaction<'_>, caller: &Caller, id: Uuid) -> Result<(), DataError> {
    enter(tx, caller).await?;
    let n = tx
        .execute(
            "DELETE FROM agents WHERE id = $1 AND ($2::text IS NULL OR owner = $2)",
            &[&id, &caller.owner_filter()],
        )
        .await
        .map_err(|e| match DataError::from(e) {
            DataError::InUse(_) => DataError::InUse("the agent (it has calls)"),
            other => other,
        })?;
    if n == 0 {
        return Err(DataError::NotFound("agent"));
    }
    Ok(())
}

//! Call analytics over a time range, within the caller's scope.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{enter, Caller, DataError, Transaction};

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub total_calls: i64,
    pub calls_by_status: std::collections::BTreeMap<String, i64>,
    /// Seconds, over calls with a duration; `null` when there are none.
    pub average_duration: Option<f64>,
    pub calls_per_agent: Vec<AgentCalls>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentCalls {
    pub agent_id: Uuid,
    pub calls: i64,
}

pub async fn summary(
    tx: &Transaction<'_>,
    caller: &Caller,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Summary, DataError> {
    enter(tx, caller).await?;
    let filter = "($1::text IS NULL OR owner = $1)
        AND ($2::timestamptz IS NULL OR created_at >= $2)
        AND ($3::timestamptz IS NULL OR created_at < $3)";
    let owner = caller.owner_filter();
    let by_status = tx
        .query(
            &format!("SELECT status, count(*) FROM calls WHERE {filter} GROUP BY status"),
            &[&owner, &from, &to],
        )
        .await?;
    let average: Option<f64> = tx
        .query_one(
            &format!(
                "SELECT avg(duration)::float8 FROM calls WHERE {filter} AND duration IS NOT NULL"
            ),
            &[&owner, &from, &to],
        )
        .await?
        .get(0);
    let per_agent = tx
        .query(
            &format!(
                "SELECT agent_id, count(*) FROM calls WHERE {filter}
                  GROUP BY agent_id ORDER BY count(*) DESC, agent_id LIMIT 1000"
            ),
            &[&owner, &from, &to],
        )
        .await?;
    let calls_by_status: std::collections::BTreeMap<String, i64> =
        by_status.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(Summary {
        total_calls: calls_by_status.values().sum(),
        calls_by_status,
        average_duration: average,
        calls_per_agent: per_agent
            .iter()
            .map(|r| AgentCalls {
                agent_id: r.get(0),
                calls: r.get(1),
            })
            .collect(),
    })
}

//! Cold starts, against pgbench -C doing the same work: the same role, the
//! same authentication, the same query.
//!
//! - a *first visit*: the first request to a tenant database no session has
//!   opened since it was cloned, against `pgbench -C -t 1` running the same
//!   query as the tenant's role on another such database;
//! - an *evicted pool*: the first request after the router closed the
//!   tenant's pool (the database was visited before), against `pgbench -C`
//!   on a visited tenant database, where every transaction opens a session.

use std::path::Path;
use std::process::Command;

use tenant_plane::local_pg::LocalCluster;

/// The list query a tenant-wide `GET /v1/agents` sends.
pub const LIST_SQL: &str = "SELECT id, subtenant_id, name, type, configuration, owner, created_at, updated_at FROM agents WHERE (NULL::text IS NULL OR owner = NULL) AND (NULL::uuid IS NULL OR id > NULL) ORDER BY id LIMIT 51;\n";

/// What pgbench reports, in ms: the mean connection time, and the mean
/// latency, which pgbench computes from the run's wall time (duration ×
/// clients / transactions), so under `-C` it holds each transaction's
/// connection too: it is the whole cost of a visit. And the wall time of
/// the whole pgbench process.
pub struct PgbenchCost {
    pub connect_ms: f64,
    pub latency_ms: f64,
    pub wall_ms: f64,
}

/// What pgbench pays for its first visit to a fresh database. pgbench opens
/// the database once before it measures anything (the server's log shows
/// two sessions for `pgbench -C -t 1`), so its reported latency is a second
/// visit: the backend caches the first session built (the relation cache's
/// init file) are already there. The first open's extra cost shows in the
/// process's wall time instead: `fresh` against `again`, the same run on
/// the same, now visited, database, the process's own start cancelling out.
pub fn first_visit_ms(fresh: &PgbenchCost, again: &PgbenchCost) -> f64 {
    fresh.latency_ms + (fresh.wall_ms - again.wall_ms)
}

impl PgbenchCost {
    /// A visit: the session and its query.
    pub fn total_ms(&self) -> f64 {
        self.latency_ms
    }
}

/// `pgbench -n -C -t <transactions>` with `sql`, as `role` on `db`.
pub fn pgbench(
    cluster: &LocalCluster,
    dir: &Path,
    db: &str,
    role: &str,
    sql: &str,
    transactions: u32,
) -> anyhow::Result<PgbenchCost> {
    let script = dir.join("cold-start.sql");
    std::fs::write(&script, sql)?;
    let started = std::time::Instant::now();
    let out = Command::new(cluster.binaries().tool("pgbench"))
        .args([
            "-n",
            "-C",
            "-t",
            &transactions.to_string(),
            "-h",
            "127.0.0.1",
        ])
        .args(["-p", &cluster.port().to_string(), "-U", role, "-f"])
        .arg(&script)
        .arg(db)
        .output()?;
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let number = |label: &str| -> anyhow::Result<f64> {
        let line = text
            .lines()
            .find(|l| l.contains(label))
            .ok_or_else(|| anyhow::anyhow!("pgbench printed no `{label}`: {text}"))?;
        let value = line
            .split('=')
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("cannot read `{line}`"))?;
        Ok(value)
    };
    Ok(PgbenchCost {
        connect_ms: number("average connection time")?,
        latency_ms: number("latency average")?,
        wall_ms,
    })
}

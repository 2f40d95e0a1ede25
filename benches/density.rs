//! What one tenant costs, measured: the disk of an empty cloned database,
//! PostgreSQL's shared memory and one session's private memory, the
//! catalog's rows and bytes, and what one cached pool (with its one idle
//! session and its route) costs tenant-plane in memory.
//!
//! Usage: `cargo bench --bench density [-- TENANTS]` (default 300).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/mod.rs"]
mod common;

use secrecy::ExposeSecret;
use tenant_plane::domain::{Slug, TenantName, Tier, TEMPLATE_DB};
use tenant_plane::startup::Application;
use tenant_plane::tenants::NewTenantInput;

/// Rows and bytes of every catalog table.
async fn catalog_tables(
    catalog: &tokio_postgres::Client,
) -> anyhow::Result<Vec<(String, i64, i64)>> {
    let tables = catalog
        .query(
            "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await?;
    let mut out = Vec::new();
    for t in tables {
        let name: String = t.get(0);
        // The name comes from pg_class; quoted all the same.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let rows: i64 = catalog
            .query_one(&format!("SELECT count(*) FROM {quoted}"), &[])
            .await?
            .get(0);
        out.push((name, rows, t.get(1)));
    }
    Ok(out)
}

async fn shared_memory(catalog: &tokio_postgres::Client) -> anyhow::Result<i64> {
    Ok(catalog
        .query_one(
            "SELECT sum(allocated_size)::bigint FROM pg_shmem_allocations",
            &[],
        )
        .await?
        .get(0))
}

/// A process's private memory (kB), from `/proc/<pid>/smaps_rollup`.
fn private_kb(pid: i32) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("Private_Clean:") || l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum())
}

/// This process's resident memory (kB).
fn rss_kb() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tenants: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let (_dir, cluster) =
        common::start_cluster_with("tp-bench-density-", false, tenants as u32 + 100).await?;
    let mut settings = common::settings(&cluster)?;
    settings.router.rate_limit_scale = 0.0;
    settings.router.connection_budget = tenants as u32 + 10;
    let app = Application::build(settings).await?;
    let state = app.state();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let (catalog, conn) = tokio_postgres::connect(
        cluster.dsn("tenant_plane").expose_secret(),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);

    let tables_before = catalog_tables(&catalog).await?;
    let shm_before = shared_memory(&catalog).await?;
    let keys = common::jwt_keys()?;
    let mut made = Vec::new();
    for i in 0..tenants {
        let view = state
            .tenants()
            .create(NewTenantInput {
                name: TenantName::parse(&format!("Density {i}")).expect("name"),
                slug: Slug::parse(&format!("density-{i}")).expect("slug"),
                tier: Tier::Standard,
                settings: Default::default(),
            })
            .await?;
        let token = common::admin_token(&keys, view.id)?;
        made.push((view.database.expect("database"), token));
    }
    let tables_after = catalog_tables(&catalog).await?;
    let shm_after = shared_memory(&catalog).await?;

    let sizes: Vec<i64> = catalog
        .query(
            "SELECT pg_database_size(datname) FROM pg_database WHERE datname LIKE 'ai_care_tenant_%' AND datname <> $1",
            &[&TEMPLATE_DB],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let template: i64 = catalog
        .query_one("SELECT pg_database_size($1::text)", &[&TEMPLATE_DB])
        .await?
        .get(0);
    let mean_size = sizes.iter().sum::<i64>() as f64 / sizes.len() as f64;
    println!("| what one tenant costs | measured |");
    println!("|---|---|");
    println!(
        "| disk: an empty cloned tenant database (pg_database_size, mean of {}) | {:.2} MiB (the template: {:.2} MiB) |",
        sizes.len(),
        mean_size / 1048576.0,
        template as f64 / 1048576.0
    );
    println!(
        "| PostgreSQL shared memory, before and after {tenants} tenants | {:.1} MiB, {:.1} MiB ({:+} bytes) |",
        shm_before as f64 / 1048576.0,
        shm_after as f64 / 1048576.0,
        shm_after - shm_before
    );
    let (mut rows, mut bytes) = (0i64, 0i64);
    let mut per_table = Vec::new();
    for ((name, r0, b0), (_, r1, b1)) in tables_before.iter().zip(&tables_after) {
        rows += r1 - r0;
        bytes += b1 - b0;
        if r1 != r0 {
            per_table.push(format!("{name} {:.2}", (r1 - r0) as f64 / tenants as f64));
        }
    }
    println!(
        "| catalog rows per tenant (by table) | {:.2} ({}) |",
        rows as f64 / tenants as f64,
        per_table.join(", ")
    );
    println!(
        "| catalog bytes per tenant (tables and indexes, as PostgreSQL allocated them) | {:.0} bytes |",
        bytes as f64 / tenants as f64
    );

    // Every tenant's first request builds its pool, opens one session and
    // caches its route: the process's growth, per tenant.
    let client = reqwest::Client::new();
    let visit = |token: String| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let r = client
                .get(format!("{url}/v1/agents"))
                .bearer_auth(token)
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "a tenant's first request failed");
            Ok(())
        }
    };
    // One warm request first, so that one-time costs (the HTTP client, the
    // first pool's machinery) are not counted per tenant.
    visit(made[0].1.clone()).await?;
    let rss_before = rss_kb()?;
    for (_, token) in made.iter().skip(1) {
        visit(token.clone()).await?;
    }
    let rss_after = rss_kb()?;
    let pools = state.tenancy().router().pools_cached().await;
    println!(
        "| tenant-plane memory per cached pool (its one idle session and its route; RSS growth over {} pools) | {:.1} KiB |",
        pools - 1,
        (rss_after.saturating_sub(rss_before)) as f64 / (pools - 1) as f64
    );
    let pids: Vec<i32> = catalog
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname LIKE 'ai_care_tenant_%'",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut private: Vec<u64> = pids.iter().filter_map(|&p| private_kb(p).ok()).collect();
    private.sort_unstable();
    anyhow::ensure!(
        !private.is_empty(),
        "no tenant session's memory was readable"
    );
    println!(
        "| PostgreSQL: one idle tenant session's private memory (median of {}) | {:.1} MiB |",
        private.len(),
        private[private.len() / 2] as f64 / 1024.0
    );
    state.tenancy().router().close_all().await;
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    Ok(())
}

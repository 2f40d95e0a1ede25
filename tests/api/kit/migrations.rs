//! Migration resources: a server of a test's own, a migration directory,
//! an app that takes its tenant migrations from it, and tenants in bulk.

use std::path::Path;

use crate::cluster::{self, ExtraCluster};
use crate::helpers::{spawn_app_on, test_settings, TestApp};

const V1: &str = include_str!("../../../tenant_template/migrations/V1__tenant_schema.sql");

/// V2 adds a column, and a constraint that rows with long agent names break.
/// The constraint is added `NOT VALID` and the rows are checked by a `DO`
/// block, so the file passes the lint a fleet run starts with (a plain
/// `ADD CONSTRAINT … CHECK` is a lint error: it scans the table under lock).
pub const V2_FRAGILE: &str = r#"ALTER TABLE agents ADD COLUMN language text;
ALTER TABLE agents ADD CONSTRAINT agents_name_short CHECK (length(name) <= 20) NOT VALID;
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM agents WHERE length(name) > 20) THEN
        RAISE EXCEPTION 'check constraint "agents_name_short" of relation "agents" is violated by some row'
            USING ERRCODE = 'check_violation';
    END IF;
END $$;"#;

/// A migration directory: the real V1 plus `extra` (`(file stem, sql)`).
pub fn migrations_dir(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("V1__tenant_schema.sql"), V1).unwrap();
    for (stem, sql) in extra {
        std::fs::write(dir.path().join(format!("{stem}.sql")), sql).unwrap();
    }
    dir
}

pub async fn server_of_its_own() -> ExtraCluster {
    tokio::task::spawn_blocking(cluster::start_extra)
        .await
        .unwrap()
}

/// An app on `extra` whose tenant migrations come from `dir`; `catalog` names
/// the catalog database, so a second app can share it (a new deploy).
pub async fn app_on(extra: &ExtraCluster, dir: &Path, catalog: &str) -> TestApp {
    app_on_with(extra, dir, catalog, |_| {}).await
}

/// `app_on` whose reconciler's full passes run at start-up only. Its
/// takeovers of dead owners' operations still run every 2 s: an app with
/// an older migration set is stopped (`TestApp::stop`) before another
/// process's operation may need taking over (it lacks their files).
pub async fn app_on_quiet(extra: &ExtraCluster, dir: &Path, catalog: &str) -> TestApp {
    app_on_with(extra, dir, catalog, |s| s.reconciler.interval_secs = 3600).await
}

async fn app_on_with(
    extra: &ExtraCluster,
    dir: &Path,
    catalog: &str,
    customize: impl FnOnce(&mut tenant_plane::config::Settings),
) -> TestApp {
    let (mut settings, _) = test_settings();
    settings.database_url = Some(extra.server.url(catalog));
    settings.migrations.tenant_dir = Some(dir.to_path_buf());
    customize(&mut settings);
    spawn_app_on(settings, catalog.to_string(), extra.server.clone()).await
}

/// Creates `n` tenants, ten at a time; returns their ids and databases in id order.
pub async fn create_tenants(app: &TestApp, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let slugs: Vec<String> = chunk.iter().map(|i| format!("fleet-{i:03}")).collect();
        let created =
            futures_util::future::join_all(slugs.iter().map(|s| app.create_tenant_named(s))).await;
        out.extend(created);
    }
    out.sort();
    out
}

/// The column count of `agents.language` and the applied V2 rows, per tenant database.
pub async fn has_v2(app: &TestApp, db: &str) -> (bool, i64) {
    let client = app.server.connect(db).await;
    let column = client
        .query_opt(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'agents' AND column_name = 'language'",
            &[],
        )
        .await
        .unwrap()
        .is_some();
    let applied: i64 = client
        .query_one(
            "SELECT count(*) FROM refinery_schema_history WHERE version = 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (column, applied)
}

pub async fn add_agent(app: &TestApp, db: &str, name: &str) {
    app.server
        .connect(db)
        .await
        .execute(
            "INSERT INTO agents (id, name, type, owner) VALUES ($1, $2, 'voice', 'seed')",
            &[&uuid::Uuid::now_v7(), &name],
        )
        .await
        .unwrap();
}

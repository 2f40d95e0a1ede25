//! Lock safety of tenant migrations: a migration that needs a lock a long
//! transaction holds gives up within its lock timeout and retries, the
//! tenant's own queries never queue behind it for longer, and the rest of
//! the fleet finishes.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app_on, test_settings, TestApp, MASTER_KEY};
use crate::kit::migrations::{create_tenants, has_v2, migrations_dir, server_of_its_own};

const V2: &str = "ALTER TABLE agents ADD COLUMN language text;";

/// An app on `extra` with `dir` as its tenant migrations and a short lock policy.
async fn app_with_lock_policy(
    extra: &crate::cluster::ExtraCluster,
    dir: &std::path::Path,
    catalog: &str,
) -> TestApp {
    let (mut settings, _) = test_settings();
    settings.database_url = Some(extra.server.url(catalog));
    settings.migrations.tenant_dir = Some(dir.to_path_buf());
    settings.migrations.lock_timeout_ms = 300;
    settings.migrations.lock_retries = 2;
    settings.migrations.lock_retry_backoff_ms = 100;
    spawn_app_on(settings, catalog.to_string(), extra.server.clone()).await
}

/// A session of `db` inside a transaction that has read `agents`: it holds
/// the table's ACCESS SHARE lock, which every `ALTER TABLE` waits for.
async fn hold_agents(app: &TestApp, db: &str) -> tokio_postgres::Client {
    let holder = app.server.connect(db).await;
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM agents;")
        .await
        .unwrap();
    holder
}

#[tokio::test]
async fn a_tenant_whose_table_a_long_transaction_holds_fails_within_its_lock_timeout_and_retries_while_its_queries_keep_answering_and_the_others_finish(
) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2)]);
    let before = app_with_lock_policy(&extra, v1.path(), "lock_safety_catalog").await;
    let tenants = create_tenants(&before, 4).await;
    let app = app_with_lock_policy(&extra, v2.path(), "lock_safety_catalog").await;
    let (locked_id, locked_db) = tenants[1].clone();
    let holder = hold_agents(&app, &locked_db).await;

    // The tenant's application goes on reading while the run waits: its
    // longest query is the measure of how long it queued behind the run.
    let probe = app.server.connect(&locked_db).await;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let prober = tokio::spawn(async move {
        let mut longest = Duration::ZERO;
        loop {
            let started = Instant::now();
            probe
                .query_one("SELECT count(*) FROM agents", &[])
                .await
                .unwrap();
            longest = longest.max(started.elapsed());
            tokio::select! {
                _ = &mut stopped => return longest,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    });

    let started = Instant::now();
    let summary = app
        .admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({"concurrency": 2, "canary": 0, "max_failures": 4})),
        )
        .await;
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let longest_query = prober.await.unwrap();
    assert_eq!(summary.status(), 200);
    let summary: serde_json::Value = summary.json().await.unwrap();
    assert_eq!(summary["counts"]["succeeded"], 3, "{summary}");
    assert_eq!(summary["counts"]["failed"], 1, "{summary}");
    let failure = &summary["failures"][0];
    assert_eq!(failure["tenant_id"], locked_id.as_str(), "{summary}");
    let error = failure["error"].as_str().unwrap();
    assert!(error.contains("3 times"), "three attempts: {error}");
    assert!(error.contains("lock timeout"), "{error}");

    // Three attempts of 300 ms and backoffs of 100 and 200 ms: about 1.2 s,
    // far under the default policy's 11.5 s, and never the holder's lifetime.
    assert!(elapsed < Duration::from_secs(8), "the run took {elapsed:?}");
    assert!(
        longest_query < Duration::from_millis(300 + 700),
        "a tenant query queued {longest_query:?} behind the migration"
    );
    // The locked tenant stays on V1, whole; the others are on V2.
    assert_eq!(has_v2(&app, &locked_db).await, (false, 0));
    for (id, db) in &tenants {
        if *id != locked_id {
            assert_eq!(has_v2(&app, db).await, (true, 1), "{db}");
        }
    }
    let code: String = app
        .catalog_db()
        .await
        .query_one(
            "SELECT error_code FROM operations WHERE kind = 'migrate' AND tenant_id = $1::text::uuid ORDER BY created_at DESC LIMIT 1",
            &[&locked_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(code, "migration_lock_timeout");

    // Once the long transaction ends, a resume migrates it.
    holder.batch_execute("COMMIT").await.unwrap();
    let run = summary["run"]["id"].as_str().unwrap();
    let resumed = app
        .admin(
            Method::POST,
            &format!("/v1/migrations/runs/{run}/resume?wait=true"),
            None,
        )
        .await;
    assert_eq!(resumed.status(), 200);
    assert_eq!(has_v2(&app, &locked_db).await, (true, 1));
}

/// `tenant-plane migrate --tenant ID` on `catalog` with `dir` and `env`:
/// (exit code, stderr, time taken).
async fn migrate_one(
    url: &str,
    dir: &std::path::Path,
    tenant: &str,
    env: &[(&str, &str)],
) -> (i32, String, Duration) {
    let started = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"))
        .args(["migrate", "--tenant", tenant])
        .env("TENANT_PLANE_DATABASE_URL", url)
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("TENANT_PLANE_MIGRATIONS_TENANT_DIR", dir)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn the_lock_settings_set_as_environment_variables_bound_a_one_tenant_migration_run_from_the_cli(
) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    // V3 sleeps in tenant databases only, so the template's own migration passes.
    let slow = "DO $$ BEGIN IF current_database() NOT LIKE '%template%' THEN PERFORM pg_sleep(5); END IF; END $$;";
    let v3 = migrations_dir(&[("V2__agent_language", V2), ("V3__slow_backfill", slow)]);
    let before = app_with_lock_policy(&extra, v1.path(), "lock_cli_catalog").await;
    let tenants = create_tenants(&before, 1).await;
    let (id, db) = tenants[0].clone();
    let url =
        secrecy::ExposeSecret::expose_secret(&extra.server.url("lock_cli_catalog")).to_string();

    // A lock held: two attempts of 200 ms, as the variables say.
    let holder = hold_agents(&before, &db).await;
    let lock_env = [
        ("TENANT_PLANE_MIGRATIONS_LOCK_TIMEOUT_MS", "200"),
        ("TENANT_PLANE_MIGRATIONS_LOCK_RETRIES", "1"),
        ("TENANT_PLANE_MIGRATIONS_LOCK_RETRY_BACKOFF_MS", "50"),
    ];
    let (code, stderr, took) = migrate_one(&url, v3.path(), &id, &lock_env).await;
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("2 times"), "{stderr}");
    assert_eq!(has_v2(&before, &db).await, (false, 0));
    // The default policy would wait at least 2 s for its first attempt alone.
    assert!(took < Duration::from_secs(6), "{took:?}");
    holder.batch_execute("COMMIT").await.unwrap();

    // A statement longer than the statement timeout is cancelled: V2
    // commits, V3 does not.
    let (code, stderr, _) = migrate_one(
        &url,
        v3.path(),
        &id,
        &[("TENANT_PLANE_MIGRATIONS_STATEMENT_TIMEOUT_MS", "300")],
    )
    .await;
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("statement timeout"), "{stderr}");
    let version: i32 = before
        .server
        .connect(&db)
        .await
        .query_one("SELECT max(version) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 2);

    // A zero timeout is refused at start-up, naming the setting.
    let (code, stderr, _) = migrate_one(
        &url,
        v3.path(),
        &id,
        &[("TENANT_PLANE_MIGRATIONS_LOCK_TIMEOUT_MS", "0")],
    )
    .await;
    assert_ne!(code, 0);
    assert!(stderr.contains("migrations.lock_timeout_ms"), "{stderr}");
}

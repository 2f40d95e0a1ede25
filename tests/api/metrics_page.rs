//! The `/metrics` page itself: valid for promtool, with HELP for every
//! family, the fleet's first answers (build, process, tenants by state, tier
//! and schema version, fleet migrations), bounded labels, an optional token,
//! and no catalog query per scrape.
//!
//! The metrics recorder is one per test process, shared by every app the
//! tests start, so these tests check that series exist, not their values.

use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{envelope, spawn_app_with, TestApp};

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn has_series(page: &str, name: &str, labels: &[&str]) -> bool {
    page.lines().any(|l| {
        l.starts_with(name)
            && l[name.len()..].starts_with(['{', ' '])
            && labels.iter().all(|want| l.contains(want))
    })
}

/// Scrapes until `ready` holds: the fleet gauges refresh in the background.
async fn scrape_until(app: &TestApp, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = scrape(app, None).await.text().await.unwrap();
        if ready(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "the gauges never showed up:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_scrape_passes_promtool_and_answers_the_fleets_first_questions() {
    let app = spawn_app_with(|s| s.metrics.refresh_secs = 1).await;
    app.create_tenant("metrics-fleet", json!({})).await;
    // A method no route knows is counted under `other`, never by its name.
    let odd = Method::from_bytes(b"BREW").unwrap();
    app.client
        .request(odd, app.url("/v1/tenants"))
        .send()
        .await
        .unwrap();
    let page = scrape_until(&app, |p| {
        has_series(
            p,
            "tenant_plane_tenants",
            &["state=\"active\"", "tier=\"standard\""],
        )
    })
    .await;
    assert!(
        has_series(&page, "tenant_plane_build_info", &["version=\""]),
        "{page}"
    );
    assert!(
        has_series(&page, "process_resident_memory_bytes", &[]),
        "{page}"
    );
    assert!(
        has_series(&page, "process_cpu_seconds_total", &[]),
        "{page}"
    );
    assert!(has_series(&page, "process_open_fds", &[]), "{page}");
    assert!(
        has_series(
            &page,
            "tenant_plane_tenants_by_schema_version",
            &["version=\""]
        ),
        "{page}"
    );
    assert!(
        has_series(&page, "tenant_plane_migration_runs_running", &[]),
        "{page}"
    );
    assert!(
        has_series(
            &page,
            "tenant_plane_http_requests_total",
            &["method=\"other\""]
        ),
        "{page}"
    );
    assert!(!page.contains("BREW"), "a method name became a label");
    // Every family has its HELP line.
    for line in page.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = line.split_whitespace().nth(2).unwrap();
        assert!(
            page.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
    }
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is on PATH (scripts/test.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn with_a_metrics_token_set_a_scrape_without_it_or_with_another_gets_401() {
    let token = "scrape-token-0123456789";
    let app = spawn_app_with(|s| s.metrics.token = Some(token.to_string().into())).await;
    let (status, code, _) = envelope(scrape(&app, None).await).await;
    assert_eq!((status, code.as_str()), (401, "missing_credentials"));
    let (status, _, _) = envelope(scrape(&app, Some("scrape-token-0123456780")).await).await;
    assert_eq!(status, 401);
    // A tenant's or an admin's token is not the scrape token either.
    let (status, _, _) = envelope(scrape(&app, Some(&app.super_admin_token())).await).await;
    assert_eq!(status, 401);
    let ok = scrape(&app, Some(token)).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("tenant_plane_build_info"));
}

#[tokio::test]
async fn a_scrape_reads_cached_gauges_and_answers_while_the_catalog_is_unreachable() {
    let app = spawn_app_with(|s| s.metrics.refresh_secs = 1).await;
    app.create_tenant("metrics-cached", json!({})).await;
    scrape_until(&app, |p| {
        has_series(p, "tenant_plane_tenants", &["state=\"active\""])
    })
    .await;
    // Cut the app off from its catalog: a scrape that queried it would wait
    // for the catalog's connect timeout and fail.
    let admin = app.server.connect("postgres").await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {db} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}';",
            db = app.catalog_db
        ))
        .await
        .unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        let response = scrape(&app, None).await;
        assert_eq!(response.status(), 200);
        let page = response.text().await.unwrap();
        assert!(has_series(
            &page,
            "tenant_plane_tenants",
            &["state=\"active\""]
        ));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a scrape took {:?}",
            started.elapsed()
        );
    }
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            app.catalog_db
        ))
        .await
        .unwrap();
}

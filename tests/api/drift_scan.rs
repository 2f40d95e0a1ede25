//! Drift scans over the fleet: a change made by hand in one tenant is found
//! there alone, with its per-object diff, and shows in every view (the
//! fleet's list, the tenant's record, the gauge, the event feed, the
//! webhook queue, the CLI); a scan holds at most 2 sessions per server.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::spawn_app_with;
use crate::kit::cli::cli;
use crate::kit::drift::{
    by_hand, fleet_drift, objects, open_feed, read_until, scan, sessions_on, tenant_drift,
};
use crate::kit::expected_schemas::installation;
use crate::kit::ok_json;

#[tokio::test]
async fn an_index_added_by_hand_in_one_of_four_tenants_is_found_there_alone_and_shown_everywhere() {
    let app = spawn_app_with(|s| {
        // Nobody listens here: deliveries stay queued, for the log to show.
        s.webhooks.url = Some("http://127.0.0.1:9/hooks".into());
        s.webhooks.secret = Some("webhook-secret-0123456789".to_string().into());
    })
    .await;
    let mut tenants = Vec::new();
    for i in 0..4 {
        tenants.push(app.create_tenant_named(&format!("drift-index-{i}")).await);
    }
    let (drifted, db) = tenants[2].clone();
    by_hand(
        &app,
        &db,
        "CREATE INDEX agents_by_hand_idx ON agents (name)",
    )
    .await;
    let feed = open_feed(&app).await;

    let summary = scan(&app).await;
    let record = &summary["scan"];
    assert_eq!(record["state"], "succeeded", "{summary}");
    assert_eq!(
        (record["total"].as_i64(), record["in_sync"].as_i64()),
        (Some(4), Some(3))
    );
    assert_eq!(
        (record["drifted"].as_i64(), record["unknown"].as_i64()),
        (Some(1), Some(0))
    );
    let found: Vec<&str> = summary["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(found, [drifted.as_str()], "{summary}");

    // The tenant's own record: the index, added, with the DDL that undoes it.
    let shown = tenant_drift(&app, &drifted).await;
    assert_eq!(shown["state"], "drifted", "{shown}");
    assert_eq!(shown["stale"], false);
    assert_ne!(shown["fingerprint"], shown["expected_fingerprint"]);
    let diff = objects(&shown);
    assert_eq!(diff.len(), 1, "{shown}");
    let (kind, name, change, ddl) = &diff[0];
    assert_eq!(
        (kind.as_str(), change.as_str()),
        ("index", "added"),
        "{shown}"
    );
    assert!(name.contains("agents_by_hand_idx"), "{name}");
    assert!(
        ddl.as_deref().unwrap().contains("agents_by_hand_idx"),
        "{ddl:?}"
    );

    // Every tenant was checked by this scan, at its version.
    for (id, _) in &tenants {
        let t = tenant_drift(&app, id).await;
        assert_eq!(t["scan_id"], record["id"], "{t}");
        assert!(t["checked_at"].is_string(), "{t}");
        assert_eq!(t["checked_version"], t["schema_version"], "{t}");
        let want = if *id == drifted { "drifted" } else { "in_sync" };
        assert_eq!(t["state"], want, "{t}");
    }

    // The fleet's list: just it, with its diff, the counts and the scan.
    let fleet = fleet_drift(&app).await;
    let listed = fleet["drifted"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{fleet}");
    assert_eq!(listed[0]["tenant_id"], drifted.as_str());
    assert_eq!(listed[0]["diff"], shown["diff"]);
    assert_eq!(fleet["counts"]["drifted"], 1, "{fleet}");
    assert_eq!(fleet["counts"]["in_sync"], 3, "{fleet}");
    assert_eq!(fleet["last_scan"]["id"], record["id"]);

    // The gauge's count (the recorder is shared by every test's app, so
    // its value is read where this app's refresh reads it), and its series.
    let counts = app.state().await.fleet().counts().await.unwrap();
    assert_eq!(counts.drifted, 1);
    let page = app.get("/metrics", None).await.text().await.unwrap();
    assert!(page.contains("tenant_plane_tenants_drifted"), "{page}");

    // The event feed, and a webhook delivery queued for it.
    let event = read_until(feed, "tenant.drifted", &drifted).await;
    assert_eq!(event["data"]["objects"], 1, "{event}");
    let log = ok_json(
        app.admin(Method::GET, "/v1/webhooks/deliveries", None)
            .await,
        200,
    )
    .await;
    let queued = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event_type"] == "tenant.drifted")
        .count();
    assert_eq!(queued, 1, "{log}");

    // The same drift found again is not a new event; a tenant made since
    // the scan was never checked.
    let again = scan(&app).await;
    assert_eq!(again["scan"]["drifted"], 1, "{again}");
    let events = app
        .catalog_count("SELECT count(*) FROM events WHERE type = 'tenant.drifted'")
        .await;
    assert_eq!(events, 1);
    let (late, _) = app.create_tenant_named("drift-index-late").await;
    let never = tenant_drift(&app, &late).await;
    assert_eq!(
        (never["state"].as_str(), never["reason"].as_str()),
        (Some("unknown"), Some("never checked"))
    );
}

#[tokio::test]
async fn a_column_added_and_a_policy_dropped_are_each_found_in_their_tenant_and_the_cli_lists_them()
{
    let app = spawn_app_with(|_| {}).await;
    let mut tenants = Vec::new();
    for i in 0..4 {
        tenants.push(app.create_tenant_named(&format!("drift-shape-{i}")).await);
    }
    by_hand(
        &app,
        &tenants[0].1,
        "ALTER TABLE calls ADD COLUMN notes text",
    )
    .await;
    by_hand(&app, &tenants[3].1, "DROP POLICY subtenant_scope ON agents").await;
    let summary = scan(&app).await;
    assert_eq!(summary["scan"]["drifted"], 2, "{summary}");

    let column = tenant_drift(&app, &tenants[0].0).await;
    let diff = objects(&column);
    assert!(
        diff.iter()
            .any(|(k, n, c, _)| k == "column" && n.contains("calls.notes") && c == "added"),
        "{column}"
    );
    let policy = tenant_drift(&app, &tenants[3].0).await;
    let diff = objects(&policy);
    let dropped = diff
        .iter()
        .find(|(k, n, _, _)| k == "policy" && n.contains("subtenant_scope"))
        .unwrap_or_else(|| panic!("{policy}"));
    assert_eq!(dropped.2, "missing", "{policy}");
    assert!(
        dropped.3.as_deref().unwrap().contains("CREATE POLICY"),
        "{policy}"
    );
    for (id, _) in &tenants[1..3] {
        assert_eq!(tenant_drift(&app, id).await["state"], "in_sync");
    }

    // The real binary: the drifted tenants as JSON, and exit status 1.
    let (code, out, err) = cli(&app, &["drift", "--json"]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let mut listed: Vec<&str> = report["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant_id"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut want = vec![tenants[0].0.as_str(), tenants[3].0.as_str()];
    want.sort();
    assert_eq!(listed, want, "{out}");
    assert!(err.contains("2 tenant(s) drifted"), "{err}");
    // A scan from the command line: recorded like the API's, then listed.
    let (code, out, err) = cli(&app, &["drift", "--scan", "--json"]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["counts"]["drifted"], 2, "{out}");
    assert_eq!(report["last_scan"]["state"], "succeeded", "{out}");
    assert_ne!(report["last_scan"]["id"], summary["scan"]["id"], "{out}");
    // One tenant checked now: in sync, exit 0.
    let (code, out, err) = cli(&app, &["drift", "--tenant", &tenants[1].0, "--json"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let one: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(one["state"], "in_sync", "{out}");
    assert_eq!(one["scan_id"], Value::Null, "a check outside a scan: {out}");
}

#[tokio::test]
async fn a_scan_of_eight_tenants_never_holds_more_than_two_sessions_on_their_server() {
    let app = spawn_app_with(|_| {}).await;
    // A second server, draining, so every tenant lands on the first while
    // the scan still sees two servers (and could run four checks at once).
    let extra = crate::kit::migrations::server_of_its_own().await;
    let second = crate::kit::servers::register(&app, "second", &extra, serde_json::json!([])).await;
    let second = second["id"].as_str().unwrap().to_string();
    crate::kit::servers::set_server_state(&app, &second, "draining").await;
    let mut databases = Vec::new();
    for i in 0..8 {
        databases.push(app.create_tenant_named(&format!("drift-peak-{i}")).await.1);
    }
    let installation = installation(&app).await.to_string();
    let admin = app.server.connect("postgres").await;
    let (done, peak) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicI64::new(0)),
    );
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let now = sessions_on(&admin, &databases, &installation).await;
                peak.fetch_max(now, Ordering::SeqCst);
            }
        })
    };
    // A check's session is short: on a loaded machine the sampler may miss
    // every one of a scan's, so scans are repeated (up to five) until it
    // has seen one; each scan must stay within two sessions.
    for _ in 0..5 {
        let summary = scan(&app).await;
        assert_eq!(summary["scan"]["in_sync"], 8, "{summary}");
        if peak.load(Ordering::SeqCst) >= 1 {
            break;
        }
    }
    done.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak >= 1, "the sampler saw the scans' sessions");
    assert!(
        peak <= 2,
        "at most 2 sessions on the server at once, saw {peak}"
    );
}

#[tokio::test]
async fn a_tenant_whose_server_is_down_is_recorded_unknown_with_the_reason_and_the_rest_are_checked(
) {
    let app = spawn_app_with(|_| {}).await;
    let extra = crate::kit::migrations::server_of_its_own().await;
    let (here, _) = app.create_tenant_named("drift-down-a").await;
    // A tenant busy with an operation of this (live) process: not opened.
    let (busy, _) = app.create_tenant_named("drift-down-busy").await;
    app.catalog_db()
        .await
        .execute(
            "INSERT INTO operations (id, kind, tenant_id, state, attempts, params, owner, owner_key, generation)
             SELECT gen_random_uuid(), 'suspend', $1::text::uuid, 'running', 1, '{}', owner, owner_key, 1
               FROM operations WHERE owner IS NOT NULL ORDER BY created_at DESC LIMIT 1",
            &[&busy],
        )
        .await
        .unwrap();
    // The catalog's server takes no more tenants: the next one goes to the second.
    let catalog = crate::kit::servers::catalog_server_id(&app).await;
    crate::kit::servers::set_server_state(&app, &catalog, "draining").await;
    let second = crate::kit::servers::register(&app, "second", &extra, serde_json::json!([])).await;
    let second = second["id"].as_str().unwrap().to_string();
    let (there, _) = app.create_tenant_named("drift-down-b").await;
    assert_eq!(crate::kit::servers::server_of(&app, &there).await, second);
    crate::kit::servers::set_server_state(&app, &second, "down").await;

    let summary = scan(&app).await;
    assert_eq!(summary["scan"]["state"], "succeeded", "{summary}");
    assert_eq!(
        (
            summary["scan"]["in_sync"].as_i64(),
            summary["scan"]["unknown"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(tenant_drift(&app, &here).await["state"], "in_sync");
    let unknown = tenant_drift(&app, &there).await;
    assert_eq!(unknown["state"], "unknown", "{unknown}");
    assert!(unknown["checked_at"].is_string(), "{unknown}");
    let reason = unknown["reason"].as_str().unwrap();
    assert!(
        reason.contains("second") && reason.contains("down"),
        "{reason}"
    );
    let fleet = fleet_drift(&app).await;
    assert_eq!(fleet["counts"]["unknown"], 2, "{fleet}");
    let busy = tenant_drift(&app, &busy).await;
    assert_eq!(busy["state"], "unknown", "{busy}");
    assert_eq!(busy["reason"], "busy with a suspend operation", "{busy}");
    assert_eq!(fleet["drifted"], serde_json::json!([]), "{fleet}");
}

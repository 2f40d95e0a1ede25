//! Operations across processes: drains and fleet runs that a shutdown
//! interrupted are resumed by the next process, and a cancel taken by
//! another replica stops a drain between two moves and a backup before its
//! upload. Each runs real replicas stopped at a failpoint (`rig.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::rig::{Replica, Rig};

/// Three tenants with agents on the catalog's server; the second server
/// registered and active. Returns (catalog server, acknowledged agents).
async fn three_tenants(
    rig: &Rig,
    replica: &Replica,
    tag: &str,
) -> (String, BTreeMap<tenant_plane::domain::TenantId, i64>) {
    let second = rig.register_second(replica).await;
    rig.ok(
        replica,
        Method::PATCH,
        &format!("/v1/servers/{second}"),
        Some(json!({ "state": "draining" })),
        200,
    )
    .await;
    let mut acknowledged = BTreeMap::new();
    for i in 0..3 {
        let id = rig
            .tenant_with_agents(replica, &format!("{tag}-{i}"), 2)
            .await;
        acknowledged.insert(id, 2);
    }
    rig.ok(
        replica,
        Method::PATCH,
        &format!("/v1/servers/{second}"),
        Some(json!({ "state": "active" })),
        200,
    )
    .await;
    (rig.catalog_server(replica).await, acknowledged)
}

/// A replica stopped (SIGSTOP) the first time it reached `point`, in the
/// middle of the long action `method path` (given the catalog server's id)
/// that it began on three tenants.
struct StoppedMidway {
    rig: Rig,
    first: Replica,
    catalog: String,
    acknowledged: BTreeMap<tenant_plane::domain::TenantId, i64>,
    location: String,
    begun: Value,
}

async fn stopped_midway(
    tag: &str,
    point: &str,
    method: Method,
    path: impl FnOnce(&str) -> String,
    body: Option<Value>,
) -> StoppedMidway {
    let rig = Rig::new(tag).await;
    let first = rig.replica(Some((point, "1*return(stop)"))).await;
    rig.log_finishes().await;
    let (catalog, acknowledged) = three_tenants(&rig, &first, &tag.replace('_', "-")).await;
    let (location, begun) = begin(&rig, &first, method, &path(&catalog), body).await;
    first.stopped(Duration::from_secs(60)).await;
    StoppedMidway {
        rig,
        first,
        catalog,
        acknowledged,
        location,
        begun,
    }
}

/// Starts a long action on `replica`; returns its operation's path.
async fn begin(
    rig: &Rig,
    replica: &Replica,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (String, Value) {
    let response = rig.admin(replica, method, path, body).await.unwrap();
    assert_eq!(response.status(), 202, "{path}");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let op: Value = response.json().await.unwrap();
    assert_eq!(op["state"], "running", "{op}");
    (location, op)
}

/// Polls the operation on `replica` until it finished.
async fn finished(rig: &Rig, replica: &Replica, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let op = rig.ok(replica, Method::GET, location, None, 200).await;
        if !matches!(op["state"].as_str(), Some("queued" | "running")) {
            return op;
        }
        assert!(Instant::now() < deadline, "never finished: {op}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM to a replica stopped at its failpoint, then SIGCONT: it goes on
/// into an orderly shutdown.
async fn shut_down(mut replica: Replica) {
    replica.signal(nix::sys::signal::Signal::SIGTERM);
    replica.signal(nix::sys::signal::Signal::SIGCONT);
    replica.ended(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_drain_interrupted_by_a_shutdown_is_resumed_by_the_next_process_and_moves_every_tenant() {
    let StoppedMidway {
        rig,
        first,
        catalog,
        acknowledged,
        location,
        begun: before,
    } = stopped_midway(
        "resume_drain",
        "drain.between_moves",
        Method::POST,
        |catalog| format!("/v1/servers/{catalog}/drain"),
        None,
    )
    .await;
    shut_down(first).await;
    let next = rig.replica(None).await;
    let op = finished(&rig, &next, &location).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["progress"]["done"], 3, "{op}");
    assert_eq!(op["progress"]["total"], 3, "{op}");
    assert!(op["attempts"].as_i64().unwrap() >= 2, "taken over: {op}");
    assert_ne!(
        op["owner"], before["owner"],
        "another process finished it: {op}"
    );
    let server = rig
        .ok(
            &next,
            Method::GET,
            &format!("/v1/servers/{catalog}"),
            None,
            200,
        )
        .await;
    assert_eq!(server["tenants"], 0, "{server}");
    rig.check_invariants(&acknowledged).await;
    next.stop().await;
}

#[tokio::test]
async fn a_fleet_run_interrupted_by_a_shutdown_is_resumed_by_the_next_process_to_its_end() {
    let StoppedMidway {
        rig,
        first,
        acknowledged,
        location,
        ..
    } = stopped_midway(
        "resume_fleet",
        "fleet.between_items",
        Method::POST,
        |_| "/v1/migrations/runs".to_string(),
        Some(json!({ "concurrency": 1, "canary": 0, "verify": true })),
    )
    .await;
    shut_down(first).await;
    let next = rig.replica(None).await;
    let op = finished(&rig, &next, &location).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert!(op["attempts"].as_i64().unwrap() >= 2, "taken over: {op}");
    let run = rig
        .ok(
            &next,
            Method::GET,
            op["result"].as_str().unwrap(),
            None,
            200,
        )
        .await;
    assert_eq!(run["run"]["state"], "succeeded", "{run}");
    assert_eq!(run["counts"]["pending"], 0, "{run}");
    assert_eq!(run["counts"]["failed"], 0, "{run}");
    assert_eq!(op["progress"]["done"], op["progress"]["total"], "{op}");
    rig.check_invariants(&acknowledged).await;
    next.stop().await;
}

#[tokio::test]
async fn a_cancelled_drain_stops_between_two_moves_and_says_so() {
    let StoppedMidway {
        rig,
        first,
        catalog,
        acknowledged,
        location,
        ..
    } = stopped_midway(
        "cancel_drain",
        "drain.between_moves",
        Method::POST,
        |catalog| format!("/v1/servers/{catalog}/drain"),
        None,
    )
    .await;
    let other = rig.replica(None).await;
    // Another replica takes the cancel; the one running the drain sees it
    // before its next move.
    let asked = rig
        .ok(
            &other,
            Method::POST,
            &format!("{location}/cancel"),
            None,
            202,
        )
        .await;
    assert_eq!(asked["cancel_requested"], true);
    first.signal(nix::sys::signal::Signal::SIGCONT);
    let op = finished(&rig, &other, &location).await;
    assert_eq!(op["state"], "cancelled", "{op}");
    assert_eq!(op["error"]["code"], "cancelled", "{op}");
    assert_eq!(
        op["progress"]["done"], 1,
        "one move before the cancel: {op}"
    );
    let server = rig
        .ok(
            &other,
            Method::GET,
            &format!("/v1/servers/{catalog}"),
            None,
            200,
        )
        .await;
    assert_eq!(server["tenants"], 2, "{server}");
    rig.check_invariants(&acknowledged).await;
    first.stop().await;
    other.stop().await;
}

#[tokio::test]
async fn a_cancelled_backup_stops_before_its_upload_and_leaves_no_object() {
    let dir = tempfile::tempdir().unwrap();
    let location = format!("file://{}", dir.path().display());
    let rig = Rig::new("cancel_backup")
        .await
        .with_env("TENANT_PLANE_BACKUP_LOCATION", &location);
    let first = rig
        .replica(Some(("backup.before_upload", "1*return(stop)")))
        .await;
    let tenant = rig.tenant_with_agents(&first, "cancelled-backup", 1).await;
    let (location, _) = begin(
        &rig,
        &first,
        Method::POST,
        &format!("/v1/tenants/{tenant}/backups"),
        None,
    )
    .await;
    first.stopped(Duration::from_secs(60)).await;
    let other = rig.replica(None).await;
    rig.ok(
        &other,
        Method::POST,
        &format!("{location}/cancel"),
        None,
        202,
    )
    .await;
    first.signal(nix::sys::signal::Signal::SIGCONT);
    let op = finished(&rig, &other, &location).await;
    assert_eq!(op["state"], "cancelled", "{op}");
    assert_eq!(op["error"]["code"], "cancelled", "{op}");
    let listed = rig
        .ok(
            &other,
            Method::GET,
            &format!("/v1/tenants/{tenant}/backups"),
            None,
            200,
        )
        .await;
    assert_eq!(listed["backups"], json!([]));
    let objects = walkdir(dir.path());
    assert!(objects.is_empty(), "no object was written: {objects:?}");
    first.stop().await;
    other.stop().await;
}

/// Every file below `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

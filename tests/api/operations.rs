//! The operations resource: long actions answer 202 with `Location`, the
//! operation shows state, progress, owner, error and result, listings
//! filter and page, cancels stop what can stop, and drains and fleet runs
//! that a shutdown interrupted are resumed by the next process.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::data_plane::ok_json;
use crate::helpers::{envelope, spawn_app};
use crate::rig::{Replica, Rig};

#[tokio::test]
async fn a_create_names_the_tenant_in_location_and_its_operation_in_the_body() {
    let app = spawn_app().await;
    let response = app
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": "Located", "slug": "located" })),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let t: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/tenants/{}", t["id"].as_str().unwrap())
    );
    let op_id = t["operation_id"].as_str().expect("an operation_id");
    let op = ok_json(
        app.admin(Method::GET, &format!("/v1/operations/{op_id}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(op["kind"], "create_tenant");
    assert_eq!(op["state"], "succeeded");
    assert_eq!(op["tenant_id"], t["id"]);
    assert_eq!(op["result"], location);
    assert!(op["finished_at"].is_string(), "{op}");
    assert!(op["owner"].is_string(), "the instance that ran it: {op}");
    assert!(op["error"].is_null(), "{op}");
    // A plain read carries no operation id.
    let read = ok_json(app.admin(Method::GET, &location, None).await, 200).await;
    assert!(read.get("operation_id").is_none(), "{read}");
}

#[tokio::test]
async fn operations_are_listed_newest_first_filtered_by_tenant_kind_and_state_and_paged() {
    let app = spawn_app().await;
    let a = app.create_tenant("listed-a", json!({})).await;
    let b = app.create_tenant("listed-b", json!({})).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{a_id}/suspend"), None)
            .await,
        200,
    )
    .await;
    let of_a = ok_json(
        app.admin(Method::GET, &format!("/v1/operations?tenant={a_id}"), None)
            .await,
        200,
    )
    .await;
    let kinds: Vec<&str> = of_a["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["suspend", "create_tenant"], "newest first: {of_a}");
    let creates = ok_json(
        app.admin(
            Method::GET,
            "/v1/operations?kind=create_tenant&state=succeeded",
            None,
        )
        .await,
        200,
    )
    .await;
    let tenants: Vec<&str> = creates["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, [b_id, a_id]);
    let none_running = ok_json(
        app.admin(Method::GET, "/v1/operations?state=running", None)
            .await,
        200,
    )
    .await;
    assert_eq!(none_running["operations"], json!([]));
    // One per page: three pages, then no cursor.
    let mut seen = Vec::new();
    let mut path = "/v1/operations?limit=1".to_string();
    loop {
        let page = ok_json(app.admin(Method::GET, &path, None).await, 200).await;
        let ops = page["operations"].as_array().unwrap();
        assert!(ops.len() <= 1);
        seen.extend(ops.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/operations?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    let (status, code, _) = envelope(
        app.admin(Method::GET, "/v1/operations?kind=reboot", None)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_query"));
}

#[tokio::test]
async fn a_cancel_is_refused_for_a_finished_operation_and_unknown_for_a_missing_one() {
    let app = spawn_app().await;
    let t = app.create_tenant("uncancellable", json!({})).await;
    let op = t["operation_id"].as_str().unwrap();
    let (status, code, message) = envelope(
        app.admin(Method::POST, &format!("/v1/operations/{op}/cancel"), None)
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (409, "not_cancellable"),
        "{message}"
    );
    let missing = uuid::Uuid::now_v7();
    let (status, code, _) = envelope(
        app.admin(
            Method::POST,
            &format!("/v1/operations/{missing}/cancel"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "operation_not_found"));
    let (status, code, _) = envelope(
        app.admin(Method::GET, &format!("/v1/operations/{missing}"), None)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "operation_not_found"));
    // Only an operator follows operations.
    let admin = app.token(
        tenant_plane::auth::Role::TenantAdmin,
        Some(t["id"].as_str().unwrap().parse().unwrap()),
        None,
    );
    let response = app
        .client
        .get(app.url(&format!("/v1/operations/{op}")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

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

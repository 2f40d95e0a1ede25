//! A drift scan killed half-way (SIGKILL at a failpoint, between two
//! tenants) is taken over by the next process's reconciler, which checks
//! only the tenants the scan had not recorded: every tenant is written
//! once by the scan, and the first one's record is the killed process's.
//! A cancel another replica takes stops a scan between two tenants.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::rig::{Replica, Rig};

/// Polls operation `op` on `replica` until it finished.
async fn finished(rig: &Rig, replica: &Replica, op: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = rig
            .ok(
                replica,
                Method::GET,
                &format!("/v1/operations/{op}"),
                None,
                200,
            )
            .await;
        if !matches!(got["state"].as_str(), Some("queued" | "running")) {
            return got;
        }
        assert!(Instant::now() < deadline, "never finished: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one drift scan's operation id, as the catalog has it.
async fn scan_operation(rig: &Rig) -> String {
    rig.catalog_db()
        .await
        .query_one(
            "SELECT id::text FROM operations WHERE kind = 'drift_scan'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_scan_killed_half_way_is_resumed_by_the_next_process_and_checks_only_the_rest() {
    let rig = Rig::new("drift_resume").await;
    let first = rig
        .replica(Some(("drift.between_tenants", "1*return(kill)")))
        .await;
    let mut tenants = Vec::new();
    for i in 0..4 {
        tenants.push(
            rig.tenant_with_agents(&first, &format!("drift-resume-{i}"), 0)
                .await,
        );
    }
    // Every write to a tenant's drift record, for the test to count.
    rig.catalog_db()
        .await
        .batch_execute(
            "CREATE TABLE test_drift_writes (tenant_id uuid, scan_id uuid, checked_at timestamptz);
             CREATE FUNCTION test_log_drift() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               INSERT INTO test_drift_writes VALUES (NEW.tenant_id, NEW.scan_id, NEW.checked_at);
               RETURN NULL;
             END $$;
             CREATE TRIGGER test_log_drift AFTER INSERT OR UPDATE ON tenant_drift
               FOR EACH ROW EXECUTE FUNCTION test_log_drift();",
        )
        .await
        .unwrap();
    // The answer may or may not arrive before the kill; the catalog knows.
    let _ = rig
        .admin(&first, Method::POST, "/v1/migrations/drift/scans", None)
        .await;
    let mut first = first;
    first.ended(Duration::from_secs(120)).await;
    let catalog = rig.catalog_db().await;
    let op = scan_operation(&rig).await;
    let before: Vec<(String, String)> = catalog
        .query(
            "SELECT tenant_id::text, checked_at::text FROM tenant_drift",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(before.len(), 1, "killed after its first tenant: {before:?}");

    let next = rig.replica(None).await;
    let done = finished(&rig, &next, &op).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(
        done["attempts"].as_i64().unwrap() >= 2,
        "taken over: {done}"
    );
    assert_eq!(
        (
            done["progress"]["done"].as_i64(),
            done["progress"]["total"].as_i64()
        ),
        (Some(4), Some(4)),
        "{done}"
    );
    let fleet = rig
        .ok(&next, Method::GET, "/v1/migrations/drift", None, 200)
        .await;
    assert_eq!(fleet["last_scan"]["state"], "succeeded", "{fleet}");
    assert_eq!(fleet["last_scan"]["in_sync"], 4, "{fleet}");

    // Each tenant written once, by the one scan; the first kept its record.
    let writes: Vec<(String, i64, i64)> = catalog
        .query(
            "SELECT tenant_id::text, count(*), count(DISTINCT scan_id) FROM test_drift_writes GROUP BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(writes.len(), 4, "{writes:?}");
    assert!(
        writes.iter().all(|(_, n, scans)| (*n, *scans) == (1, 1)),
        "{writes:?}"
    );
    let (kept, at): (String, String) = before[0].clone();
    let now: String = catalog
        .query_one(
            "SELECT checked_at::text FROM tenant_drift WHERE tenant_id = $1::text::uuid",
            &[&kept],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(now, at);
    assert!(tenants.iter().any(|t| t.to_string() == kept));
    next.stop().await;
}

#[tokio::test]
async fn a_scan_cancelled_by_another_replica_stops_between_two_tenants_and_says_so() {
    let rig = Rig::new("drift_cancel").await;
    let first = rig
        .replica(Some(("drift.between_tenants", "1*return(stop)")))
        .await;
    for i in 0..4 {
        rig.tenant_with_agents(&first, &format!("drift-cancel-{i}"), 0)
            .await;
    }
    let _ = rig
        .admin(&first, Method::POST, "/v1/migrations/drift/scans", None)
        .await;
    first.stopped(Duration::from_secs(120)).await;
    let op = scan_operation(&rig).await;
    let other = rig.replica(None).await;
    let asked = rig
        .ok(
            &other,
            Method::POST,
            &format!("/v1/operations/{op}/cancel"),
            None,
            202,
        )
        .await;
    assert_eq!(asked["cancel_requested"], true, "{asked}");
    first.signal(nix::sys::signal::Signal::SIGCONT);
    let done = finished(&rig, &other, &op).await;
    assert_eq!(done["state"], "cancelled", "{done}");
    assert_eq!(done["error"]["code"], "cancelled", "{done}");
    let fleet = rig
        .ok(&other, Method::GET, "/v1/migrations/drift", None, 200)
        .await;
    assert_eq!(fleet["last_scan"]["state"], "cancelled", "{fleet}");
    // The one tenant checked before the stop; no other after the cancel.
    let recorded: i64 = rig
        .catalog_db()
        .await
        .query_one("SELECT count(*) FROM tenant_drift", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 1);
    assert_eq!(fleet["last_scan"]["in_sync"], 1, "{fleet}");
    first.stop().await;
    other.stop().await;
}

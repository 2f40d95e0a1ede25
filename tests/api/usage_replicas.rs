//! Request counts across two replicas of the real binary on one catalog,
//! set as a user sets them, with a `kill -9` of one: every request sent is
//! counted once. The killed replica's journal is flushed by the next start
//! on its data directory, and a journal segment put back after it was
//! flushed (a crash between the flush and the file's removal) adds nothing.

use std::path::Path;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;
use tenant_plane::auth::{Claims, Role};

use crate::helpers::{sign, JWT_SECRET, MASTER_KEY};
use crate::kit::binary::{command, open_folder, serve, terminate, Serving};

async fn replica(url: &str, data_dir: &Path) -> Serving {
    let mut cmd = command();
    cmd.env("TENANT_PLANE_DATABASE_URL", url)
        .env("TENANT_PLANE_JWT_SECRET", JWT_SECRET)
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("TENANT_PLANE_DATA_DIR", data_dir)
        // Nothing is flushed on a timer during the test: a count reaches
        // the catalog only through a shutdown's flush or a journal.
        .env("TENANT_PLANE_USAGE_FLUSH_SECS", "3600")
        .env("TENANT_PLANE_USAGE_SAMPLE_SECS", "3600")
        .env("TENANT_PLANE_USAGE_HOURLY_RETENTION_DAYS", "40");
    serve(&mut cmd).await
}

async fn requests(base: &str, token: &str, n: usize) {
    let client = reqwest::Client::new();
    for _ in 0..n {
        let answer = client
            .get(format!("{base}/v1/agents"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
}

async fn counted(catalog: &tokio_postgres::Client, tenant: uuid::Uuid) -> i64 {
    catalog
        .query_one(
            "SELECT coalesce(sum(requests_data), 0)::int8 FROM usage_hourly WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0)
}

/// Copies every file under `from` into `to`, folders and all.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn requests_across_two_replicas_and_a_kill_9_of_one_are_each_counted_exactly_once() {
    let server = crate::cluster::shared().clone();
    let catalog_db = crate::cluster::catalog_name("usage_");
    let url = server.url(&catalog_db).expose_secret().to_string();
    let (dir_a, dir_b, kept) = (open_folder(), open_folder(), open_folder());
    let mut a = replica(&url, dir_a.path()).await;
    let mut b = replica(&url, dir_b.path()).await;
    let admin = sign(Claims::new(
        "usage",
        Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(3600),
    ));
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/tenants", a.base))
        .bearer_auth(&admin)
        .json(&json!({ "name": "Counted", "slug": "counted", "tier": "enterprise" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let token = sign(Claims::new(
        "usage-admin",
        Role::TenantAdmin,
        Some(tenant.into()),
        None,
        Duration::from_secs(3600),
    ));
    requests(&a.base, &token, 20).await;
    requests(&b.base, &token, 15).await;

    // A dies without a flush; its journal holds its 20.
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    let usage_a = dir_a.path().join("usage");
    copy_tree(&usage_a, kept.path());
    let catalog = server.connect(&catalog_db).await;
    assert_eq!(counted(&catalog, tenant).await, 0, "nothing flushed yet");

    // Its next start flushes the dead journal; B flushes as it stops.
    let mut a2 = replica(&url, dir_a.path()).await;
    terminate(&mut b.child).await;
    assert_eq!(counted(&catalog, tenant).await, 35, "20 on A and 15 on B");

    // The dead journal again, as if the start had crashed after its flush
    // but before removing the files: the catalog adds a segment once.
    terminate(&mut a2.child).await;
    copy_tree(kept.path(), &usage_a);
    let mut a3 = replica(&url, dir_a.path()).await;
    terminate(&mut a3.child).await;
    assert_eq!(counted(&catalog, tenant).await, 35, "nothing counted twice");
    let left: Vec<_> = std::fs::read_dir(&usage_a).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "every journal flushed and removed: {left:?}"
    );
}

//! Point-in-time restore of one tenant (pgBackRest), through the real
//! binary on its embedded default, set as a user sets it: a backup location
//! that is a folder turns WAL archiving on.

use std::time::Duration;

use serde_json::{json, Value};

use crate::kit::binary::{command, open_folder, run, start_serve, terminate};
use crate::kit::pitr::{
    archiving_serve, finished, markers, pgbackrest_or_skip, post, scratch_left, superuser,
    window_with_a_backup,
};

async fn checksum(client: &tokio_postgres::Client) -> String {
    client
        .query_one(
            "SELECT md5(coalesce(string_agg(id::text || ':' || note, ',' ORDER BY id), '')) FROM notes",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_tenant_restored_to_a_time_gets_exactly_the_rows_written_up_to_it_and_its_neighbour_keeps_every_write(
) {
    if !pgbackrest_or_skip() {
        return;
    }
    // Alone: its servers, scratch clusters and pgBackRest would load the
    // two cores under the timed waits of other tests (a killed revert's
    // takeover among them).
    crate::timing::run_alone();
    let data_dir = open_folder();
    let backups = open_folder();
    let recovery = open_folder();
    // Tenants made before archiving is on: the first base backup holds them.
    let (mut first, base, token) = start_serve(data_dir.path()).await;
    let token = token.expect("a first start prints a token");
    let mut ids = Vec::new();
    for slug in ["pitr-a", "pitr-b"] {
        let (status, tenant, _) = post(
            &base,
            &token,
            "/v1/tenants",
            json!({ "name": slug, "slug": slug }),
        )
        .await;
        assert_eq!(status, 201, "{tenant}");
        ids.push(tenant["id"].as_str().unwrap().to_string());
    }
    let db = |id: &str| format!("ai_care_tenant_{}", id.replace('-', ""));
    // Tenant B's history is in the base backup; it is vacuumed after it
    // (below), so the WAL a restore of A replays refers to B's pages, which
    // a restore of A alone does not have.
    superuser(data_dir.path(), &db(&ids[1]))
        .await
        .batch_execute(
            "CREATE TABLE history (id int PRIMARY KEY, line text NOT NULL);
             INSERT INTO history SELECT g, repeat('line ', 20) FROM generate_series(1, 2000) g;",
        )
        .await
        .unwrap();
    terminate(&mut first).await;

    let mut serving = archiving_serve(data_dir.path(), backups.path(), recovery.path(), None).await;
    let base = serving.base.clone();
    let window = window_with_a_backup(&base, &token, &ids[0]).await;
    assert_eq!(window["backups"][0]["kind"], "full", "{window}");
    assert_eq!(window["server_reachable"], true, "{window}");

    let b = superuser(data_dir.path(), &db(&ids[1])).await;
    b.batch_execute("VACUUM history").await.unwrap();

    // Tenant A: a marker a second, and a table whose checksum at T is kept.
    let a = superuser(data_dir.path(), &db(&ids[0])).await;
    a.batch_execute(
        "CREATE TABLE markers (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
         CREATE TABLE notes (id int PRIMARY KEY, note text NOT NULL);
         INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 50) g;",
    )
    .await
    .unwrap();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut at_three = None;
    let mut sum_at_t = String::new();
    for n in 0..6 {
        tick.tick().await;
        let row = a
            .query_one("INSERT INTO markers (n) VALUES ($1) RETURNING at", &[&n])
            .await
            .unwrap();
        if n == 3 {
            at_three = Some(row.get::<_, chrono::DateTime<chrono::Utc>>(0));
            sum_at_t = checksum(&a).await;
        }
        if n == 4 {
            // After T: the other table changes too.
            a.batch_execute(
                "UPDATE notes SET note = 'changed' WHERE id <= 10; DELETE FROM notes WHERE id > 40",
            )
            .await
            .unwrap();
        }
    }
    let t = at_three.unwrap() + chrono::Duration::milliseconds(500);

    // Tenant B on the same server is written all through the restore.
    b.batch_execute("CREATE TABLE writes (n int PRIMARY KEY)")
        .await
        .unwrap();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut n = 0;
        loop {
            if stop_rx.try_recv().is_ok() {
                return n;
            }
            b.execute("INSERT INTO writes VALUES ($1)", &[&n])
                .await
                .unwrap();
            n += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let (status, _, _) = post(
        &base,
        &token,
        &format!("/v1/tenants/{}/suspend", ids[0]),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, answer, location) = post(
        &base,
        &token,
        &format!("/v1/tenants/{}/restore-to-time", ids[0]),
        json!({ "at": t.to_rfc3339() }),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let view = finished(&base, &token, &location.unwrap()).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let wrote = {
        stop_tx.send(()).unwrap();
        writer.await.unwrap()
    };

    let (status, _, _) = post(
        &base,
        &token,
        &format!("/v1/tenants/{}/resume", ids[0]),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let a = superuser(data_dir.path(), &db(&ids[0])).await;
    assert_eq!(
        markers(&a).await,
        vec![0, 1, 2, 3],
        "exactly the markers written up to T"
    );
    assert_eq!(
        checksum(&a).await,
        sum_at_t,
        "the other table as it was at T"
    );
    let b = superuser(data_dir.path(), &db(&ids[1])).await;
    let kept: i64 = b
        .query_one("SELECT count(*) FROM writes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, i64::from(wrote), "the neighbour keeps every write");
    assert!(
        recovery.path().join("tenant-plane-recovery").is_dir(),
        "the scratch cluster was made in backup.recovery_dir"
    );
    let (left, running) = scratch_left(recovery.path());
    assert!(
        left.is_empty() && !running,
        "no scratch cluster is left behind: {left:?}"
    );

    // The same time as a new tenant, from the command line (its own
    // process, its own scratch cluster); the source stays as it is.
    let (code, out, err) = run(command()
        .env("TENANT_PLANE_DATA_DIR", data_dir.path())
        .env("TENANT_PLANE_BACKUP_LOCATION", backups.path())
        .env("TENANT_PLANE_BACKUP_RECOVERY_DIR", recovery.path())
        .args(["restore", "--tenant", &ids[0], "--at", &t.to_rfc3339()])
        .args(["--as-new", "--slug", "pitr-a-copy", "--json"]))
    .await;
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["tenant"]["slug"], "pitr-a-copy", "{report}");
    let copy = superuser(
        data_dir.path(),
        &db(report["tenant"]["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(markers(&copy).await, vec![0, 1, 2, 3], "the clone as of T");
    assert_eq!(markers(&a).await, vec![0, 1, 2, 3], "the source untouched");

    // A time before the first base backup is refused, and nothing begins.
    let before = chrono::DateTime::parse_from_rfc3339(window["earliest"].as_str().unwrap())
        .unwrap()
        - chrono::Duration::hours(1);
    let (status, refused, _) = post(
        &base,
        &token,
        &format!("/v1/tenants/{}/restore-to-time", ids[0]),
        json!({ "at": before.to_rfc3339() }),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "outside_recovery_window");
    // So is a time to come, and a body that is no time at all gets a 4xx
    // in the envelope; none of them begins an operation.
    let path = format!("/v1/tenants/{}/restore-to-time", ids[0]);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let (status, refused, location) =
        post(&base, &token, &path, json!({ "at": later.to_rfc3339() })).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("outside_recovery_window")),
        "{refused}"
    );
    assert!(location.is_none());
    for body in [
        json!({ "at": "yesterday" }),
        json!({ "at": t.to_rfc3339(), "when": "now" }),
        json!({ "at": t.to_rfc3339(), "as_new": { "slug": "Not A Slug!" } }),
        json!({}),
    ] {
        let (status, refused, location) = post(&base, &token, &path, body.clone()).await;
        assert!(
            (400..500).contains(&status) && refused["error"]["code"].is_string(),
            "{body}: {status} {refused}"
        );
        assert!(location.is_none(), "{body}");
    }
    terminate(&mut serving.child).await;
}

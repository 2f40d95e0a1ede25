//! Point-in-time restore on the embedded default with a bucket backup
//! location, through the real binary set as a user sets it: the cluster
//! archives its WAL into the backups' bucket (an S3 server over HTTPS whose
//! certificate only `TENANT_PLANE_BACKUP_S3_CA_FILE` vouches for), and a
//! tenant comes back as of a time from there.

use serde_json::{json, Value};

use crate::kit::binary::{command, open_folder, serve, terminate};
use crate::kit::pitr::{
    finished, four_markers, markers, pgbackrest_or_skip, post, scratch_left, superuser,
    window_with_a_backup,
};
use crate::kit::s3::{ACCESS_KEY, BUCKET, SECRET_KEY};

/// Every file under `root`, as paths relative to it.
fn files_under(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_embedded_cluster_archives_into_the_https_bucket_of_its_backups_and_a_tenant_restores_to_a_time_from_there(
) {
    if !pgbackrest_or_skip() {
        return;
    }
    // Alone: its server, scratch cluster and pgBackRest would load the two
    // cores under the timed waits of other tests.
    crate::timing::run_alone();
    let s3 = crate::kit::s3::start_tls().await;
    let (data_dir, recovery, files) = (open_folder(), open_folder(), open_folder());
    let ca_file = files.path().join("s3-ca.pem");
    std::fs::write(&ca_file, s3.ca_pem.as_ref().unwrap()).unwrap();
    let mut cmd = command();
    cmd.env("TENANT_PLANE_DATA_DIR", data_dir.path())
        // A short prefix: the test server names a multipart upload's file
        // after its key in base64, and a file name holds 255 bytes at most.
        .env("TENANT_PLANE_BACKUP_LOCATION", format!("s3://{BUCKET}/tp"))
        .env("TENANT_PLANE_BACKUP_S3_ENDPOINT", &s3.endpoint)
        .env("TENANT_PLANE_BACKUP_S3_REGION", "us-east-1")
        .env("TENANT_PLANE_BACKUP_S3_ACCESS_KEY_ID", ACCESS_KEY)
        .env("TENANT_PLANE_BACKUP_S3_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("TENANT_PLANE_BACKUP_S3_CA_FILE", &ca_file)
        .env("TENANT_PLANE_BACKUP_ARCHIVE_TIMEOUT_SECS", "5")
        .env("TENANT_PLANE_BACKUP_RECOVERY_DIR", recovery.path())
        .env("TENANT_PLANE_RECONCILER_INTERVAL_SECS", "1");
    let mut serving = serve(&mut cmd).await;
    let (base, token) = (
        serving.base.clone(),
        serving.token.clone().expect("a first start prints a token"),
    );
    let (status, tenant, _) = post(
        &base,
        &token,
        "/v1/tenants",
        json!({ "name": "Bucket", "slug": "bucket" }),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let id = tenant["id"].as_str().unwrap().to_string();
    let window = window_with_a_backup(&base, &token, &id).await;
    assert_eq!(window["backups"][0]["kind"], "full", "{window}");

    // The archive is in the bucket, beside the backups, under the prefix.
    let bucket = s3.object_file(&format!("s3://{BUCKET}/tp/pgbackrest"));
    let archived = files_under(&bucket);
    assert!(
        archived
            .iter()
            .any(|f| f.starts_with("archive/tenant-plane/"))
            && archived
                .iter()
                .any(|f| f.starts_with("backup/tenant-plane/")),
        "WAL and a base backup in s3://{BUCKET}/tp/pgbackrest: {archived:?}"
    );
    // A logical backup reaches the same bucket through the same CA.
    let before = s3.objects().len();
    let (status, _, location) = post(
        &base,
        &token,
        &format!("/v1/tenants/{id}/backups"),
        json!({}),
    )
    .await;
    assert_eq!(status, 202);
    let backup = finished(&base, &token, &location.unwrap()).await;
    assert_eq!(backup["state"], "succeeded", "{backup}");
    assert_eq!(
        s3.objects().len(),
        before + 1,
        "the backup is in the bucket"
    );

    let db = |id: &str| format!("ai_care_tenant_{}", id.replace('-', ""));
    let t = four_markers(&superuser(data_dir.path(), &db(&id)).await).await;
    let (status, answer, location) = post(
        &base,
        &token,
        &format!("/v1/tenants/{id}/restore-to-time"),
        json!({ "at": t.to_rfc3339(), "as_new": { "slug": "bucket-copy" } }),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let view = finished(&base, &token, &location.unwrap()).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let listed: Value = reqwest::Client::new()
        .get(format!("{base}/v1/tenants?q=bucket-copy"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let copy = listed["tenants"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["slug"] == "bucket-copy"))
        .unwrap_or_else(|| panic!("the clone is listed: {listed}"));
    let copy_id = copy["id"].as_str().unwrap().to_string();
    let restored = superuser(data_dir.path(), &db(&copy_id)).await;
    assert_eq!(markers(&restored).await, vec![0, 1], "the clone as of T");
    let source = superuser(data_dir.path(), &db(&id)).await;
    assert_eq!(
        markers(&source).await,
        vec![0, 1, 2, 3],
        "the source untouched"
    );
    let (left, running) = scratch_left(recovery.path());
    assert!(left.is_empty() && !running, "no scratch cluster: {left:?}");
    terminate(&mut serving.child).await;
}

//! A restore to a time whose process is killed (-9) at each of its steps:
//! the next start stops and removes the scratch cluster, the restore fails
//! cleanly with the tenant's database untouched, and a new one succeeds.

use std::time::Duration;

use serde_json::json;

use crate::kit::binary::{open_folder, terminate};
use crate::kit::pitr::{
    archiving_serve, finished, four_markers, markers, pgbackrest_or_skip, post, scratch_left,
    superuser, window_with_a_backup,
};

#[tokio::test]
async fn a_restore_to_a_time_killed_at_each_step_leaves_no_scratch_cluster_and_the_tenant_untouched(
) {
    if !pgbackrest_or_skip() {
        return;
    }
    // Alone: its servers, scratch clusters and pgBackRest would load the
    // two cores under the timed waits of other tests (a killed revert's
    // takeover among them).
    crate::timing::run_alone();
    let (data_dir, backups, recovery) = (open_folder(), open_folder(), open_folder());
    let mut serving = archiving_serve(data_dir.path(), backups.path(), recovery.path(), None).await;
    let token = serving.token.clone().expect("a first start prints a token");
    // Made after the first base backup: restored from the whole cluster's files.
    let (status, tenant, _) = post(
        &serving.base,
        &token,
        "/v1/tenants",
        json!({ "name": "Killed", "slug": "killed" }),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let id = tenant["id"].as_str().unwrap().to_string();
    window_with_a_backup(&serving.base, &token, &id).await;
    let db = format!("ai_care_tenant_{}", id.replace('-', ""));
    let a = superuser(data_dir.path(), &db).await;
    let t = four_markers(&a).await;
    let at = json!({ "at": t.to_rfc3339() });
    let (status, _, _) = post(
        &serving.base,
        &token,
        &format!("/v1/tenants/{id}/suspend"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let path = format!("/v1/tenants/{id}/restore-to-time");

    for point in [
        "restore_time.after_wal",
        "restore_time.after_files",
        "restore_time.after_recovery",
        "restore_time.after_dump",
    ] {
        terminate(&mut serving.child).await;
        let mut victim = archiving_serve(
            data_dir.path(),
            backups.path(),
            recovery.path(),
            Some(&format!("{point}=return(kill)")),
        )
        .await;
        let (status, answer, location) = post(&victim.base, &token, &path, at.clone()).await;
        assert_eq!(status, 202, "{point}: {answer}");
        let exit = tokio::time::timeout(Duration::from_secs(120), victim.child.wait())
            .await
            .expect("the process reached its failpoint")
            .unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&exit),
            Some(9),
            "{point}"
        );

        serving = archiving_serve(data_dir.path(), backups.path(), recovery.path(), None).await;
        let view = finished(&serving.base, &token, &location.unwrap()).await;
        assert_eq!(view["state"], "failed", "{point}: {view}");
        assert_eq!(view["error"]["code"], "interrupted", "{point}: {view}");
        let (left, running) = scratch_left(recovery.path());
        assert!(
            left.is_empty() && !running,
            "{point}: a scratch cluster is left: {left:?}"
        );
        let a = superuser(data_dir.path(), &db).await;
        assert_eq!(
            markers(&a).await,
            vec![0, 1, 2, 3],
            "{point}: the tenant is untouched"
        );
    }

    let (status, answer, location) = post(&serving.base, &token, &path, at).await;
    assert_eq!(status, 202, "{answer}");
    let view = finished(&serving.base, &token, &location.unwrap()).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let a = superuser(data_dir.path(), &db).await;
    assert_eq!(
        markers(&a).await,
        vec![0, 1],
        "restored to T after the two kills"
    );
    terminate(&mut serving.child).await;
}

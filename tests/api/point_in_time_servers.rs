//! A restore to a time of a tenant on a registered server that its
//! operator already backs up with pgBackRest: tenant-plane is told the
//! stanza and the repository (`PUT /v1/servers/{id}/wal-archive`), and only
//! ever reads them.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use reqwest::Method;
use serde_json::json;

use crate::cluster::start_extra_with;
use crate::helpers::spawn_app_with;
use crate::kit::binary::open_folder;
use crate::kit::ok_json;
use crate::kit::pitr::{four_markers, markers, pgbackrest_or_skip};

const STANZA: &str = "ops";
const PASS: &str = "the-operators-own-passphrase";

/// Hands `path` to the cluster's user, as an operator's set-up would.
fn give(path: &Path) {
    if let Some((uid, gid)) = tenant_plane::local_pg::postgres_owner().unwrap() {
        nix::unistd::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// Runs pgbackrest as the cluster's user, as the operator's own jobs do.
fn operator_pgbackrest(conf: &Path, command: &str, args: &[String]) {
    let mut cmd = std::process::Command::new("pgbackrest");
    cmd.arg(format!("--config={}", conf.display()))
        .arg(format!("--stanza={STANZA}"))
        .args(args)
        .arg(command);
    if let Some((uid, gid)) = tenant_plane::local_pg::postgres_owner().unwrap() {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "pgbackrest {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_tenant_on_a_registered_server_backed_up_by_its_operator_restores_to_a_time() {
    if !pgbackrest_or_skip() {
        return;
    }
    // Alone: its servers, scratch clusters and pgBackRest would load the
    // two cores under the timed waits of other tests (a killed revert's
    // takeover among them).
    crate::timing::run_alone();
    // The operator's repository and configuration, outside tenant-plane.
    let (repo, work, recovery) = (open_folder(), open_folder(), open_folder());
    give(repo.path());
    give(work.path());
    let conf = work.path().join("pgbackrest.conf");
    let extra = start_extra_with(|root| {
        let text = format!(
            "[global]\nrepo1-path={}\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={PASS}\n\
             lock-path={work}/lock\nlog-path={work}/log\nlog-level-console=off\nlog-level-file=off\n\
             log-level-stderr=warn\nstart-fast=y\n\n[{STANZA}]\npg1-path={root}/pgdata\npg1-socket-path={root}/run\n",
            repo.path().display(),
            work = work.path().display(),
            root = root.display(),
        );
        std::fs::write(&conf, text).unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
        give(&conf);
        vec![
            "archive_mode=on".into(),
            format!(
                "archive_command=pgbackrest --config={} --stanza={STANZA} archive-push %p",
                conf.display()
            ),
            "archive_timeout=5".into(),
        ]
    });
    let port = format!("--pg1-port={}", extra.server.port());
    operator_pgbackrest(&conf, "stanza-create", std::slice::from_ref(&port));

    let recovery_dir = recovery.path().to_path_buf();
    let app = spawn_app_with(|s| s.backup.recovery_dir = Some(recovery_dir)).await;
    let server =
        crate::kit::servers::register(&app, "archived", &extra, json!(["enterprise"])).await;
    let server_id = server["id"].as_str().unwrap().to_string();
    let new = json!({ "name": "On Ops", "slug": "on-ops", "tier": "enterprise" });
    let tenant = ok_json(app.admin(Method::POST, "/v1/tenants", Some(new)).await, 201).await;
    let (tenant_id, db) = (
        tenant["id"].as_str().unwrap(),
        tenant["database"].as_str().unwrap(),
    );
    operator_pgbackrest(&conf, "backup", &[port.clone(), "--type=full".into()]);

    // Refused: a strange stanza, a relative path, an unknown server.
    let path = format!("/v1/servers/{server_id}/wal-archive");
    let body = |stanza: &str, repo_path: &str| json!({ "stanza": stanza, "repository": { "type": "posix", "path": repo_path }, "cipher_pass": PASS });
    let repo_path = repo.path().display().to_string();
    for (bad, status) in [
        (body("ops]\nrepo2", &repo_path), 422),
        (body(STANZA, "relative/repo"), 422),
        (
            json!({ "stanza": STANZA, "repository": { "type": "s4", "path": repo_path }, "cipher_pass": PASS }),
            422,
        ),
    ] {
        let answer = app.admin(Method::PUT, &path, Some(bad.clone())).await;
        assert!(
            answer.status().as_u16() == status || answer.status().as_u16() == 400,
            "{bad}"
        );
    }
    let missing = format!("/v1/servers/{}/wal-archive", uuid::Uuid::now_v7());
    let answer = app
        .admin(Method::PUT, &missing, Some(body(STANZA, &repo_path)))
        .await;
    assert_eq!(answer.status(), 404);

    let server = ok_json(
        app.admin(Method::PUT, &path, Some(body(STANZA, &repo_path)))
            .await,
        200,
    )
    .await;
    assert_eq!(server["wal_archive"]["stanza"], STANZA, "{server}");
    assert!(
        !server.to_string().contains(PASS),
        "the passphrase is never shown"
    );
    let window = ok_json(
        app.admin(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}/recovery-window"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert!(window["earliest"].is_string(), "{window}");

    let client = extra.server.connect(db).await;
    let t = four_markers(&client).await;
    drop(client);
    let suspend = format!("/v1/tenants/{tenant_id}/suspend");
    assert_eq!(
        app.admin(Method::POST, &suspend, Some(json!({})))
            .await
            .status(),
        200
    );
    let restore = format!("/v1/tenants/{tenant_id}/restore-to-time");
    let at = json!({ "at": t.to_rfc3339() });
    let op = app
        .follow(app.admin(Method::POST, &restore, Some(at)).await)
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let client = extra.server.connect(db).await;
    assert_eq!(
        markers(&client).await,
        vec![0, 1],
        "exactly the markers written up to T"
    );
}

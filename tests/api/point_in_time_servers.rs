//! A restore to a time of a tenant on a registered server that its
//! operator already backs up with pgBackRest, into a folder or an S3
//! bucket: tenant-plane is told the stanza and the repository
//! (`PUT /v1/servers/{id}/wal-archive`), checks that it can read them, and
//! only ever reads them.

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use crate::cluster::ExtraCluster;
use crate::helpers::{spawn_app_with, TestApp};
use crate::kit::binary::open_folder;
use crate::kit::cli::cli_env;
use crate::kit::operator_repo::{
    archived_server, body, bucket_repo, folder_repo, OperatorRepo, PASS, STANZA,
};
use crate::kit::pitr::{four_markers, markers, operator_pgbackrest, pgbackrest_or_skip};
use crate::kit::s3;
use crate::kit::{expect_error, ok_json};

/// A tenant on the registered server, backed up by the operator, restored
/// in place to T: exactly its markers up to T come back.
async fn restores_to_a_time(
    app: &TestApp,
    server_id: &str,
    repo: &OperatorRepo,
    extra: &ExtraCluster,
    conf: &Path,
) {
    let new = json!({ "name": "On Ops", "slug": "on-ops", "tier": "enterprise" });
    let tenant = ok_json(app.admin(Method::POST, "/v1/tenants", Some(new)).await, 201).await;
    let (tenant_id, db) = (
        tenant["id"].as_str().unwrap(),
        tenant["database"].as_str().unwrap(),
    );
    let port = format!("--pg1-port={}", extra.server.port());
    operator_pgbackrest(conf, STANZA, "backup", &[port, "--type=full".into()]);

    // What this machine cannot read is refused, and nothing changes.
    let path = format!("/v1/servers/{server_id}/wal-archive");
    let before = ok_json(
        app.admin(Method::GET, &format!("/v1/servers/{server_id}"), None)
            .await,
        200,
    )
    .await;
    for (n, (bad, why)) in [
        (
            body(repo, STANZA, "not-the-passphrase"),
            "a wrong passphrase",
        ),
        (
            body(repo, "elsewhere", PASS),
            "a stanza the repository lacks",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        // Through PUT, and through PATCH with a field it must not change either.
        let answer = match n {
            0 => app.admin(Method::PUT, &path, Some(bad)).await,
            _ => {
                let patch = json!({ "capacity": 7, "wal_archive": bad });
                app.admin(
                    Method::PATCH,
                    &format!("/v1/servers/{server_id}"),
                    Some(patch),
                )
                .await
            }
        };
        expect_error(answer, 409, "wal_archive_unreadable").await;
        let now = ok_json(
            app.admin(Method::GET, &format!("/v1/servers/{server_id}"), None)
                .await,
            200,
        )
        .await;
        assert_eq!(
            (&now["wal_archive"], &now["capacity"]),
            (&before["wal_archive"], &before["capacity"]),
            "{why} was recorded"
        );
    }

    let server = ok_json(
        app.admin(Method::PUT, &path, Some(body(repo, STANZA, PASS)))
            .await,
        200,
    )
    .await;
    assert_eq!(server["wal_archive"]["stanza"], STANZA, "{server}");
    let shown = server.to_string();
    assert!(!shown.contains(PASS), "the passphrase is never shown");
    assert!(!shown.contains(s3::SECRET_KEY), "nor the bucket's secret");
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
    // The markers' time must be inside the window: past its first second.
    let earliest: chrono::DateTime<chrono::Utc> =
        window["earliest"].as_str().unwrap().parse().unwrap();
    while chrono::Utc::now() <= earliest {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let client = extra.server.connect(db).await;
    let t = four_markers(&client).await;
    drop(client);
    let suspend = format!("/v1/tenants/{tenant_id}/suspend");
    let answer = app.admin(Method::POST, &suspend, Some(json!({}))).await;
    assert_eq!(answer.status(), 200);
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

    // Forgotten (`null` in a PATCH, as DELETE does): the tenant can no
    // longer be restored to a time.
    let patch = json!({ "wal_archive": null, "capacity": 9 });
    let server = ok_json(
        app.admin(
            Method::PATCH,
            &format!("/v1/servers/{server_id}"),
            Some(patch),
        )
        .await,
        200,
    )
    .await;
    assert!(server["wal_archive"].is_null(), "{server}");
    assert_eq!(server["capacity"], 9, "{server}");
    let answer = app
        .admin(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}/recovery-window"),
            None,
        )
        .await;
    expect_error(answer, 409, "no_wal_archive").await;
}

#[tokio::test]
async fn a_tenant_on_a_registered_server_backed_up_by_its_operator_into_a_folder_restores_to_a_time(
) {
    if !pgbackrest_or_skip() {
        return;
    }
    // Alone: its servers, scratch clusters and pgBackRest would load the
    // two cores under the timed waits of other tests (a killed revert's
    // takeover among them).
    crate::timing::run_alone();
    let (repo_dir, work, recovery) = (open_folder(), open_folder(), open_folder());
    let repo = folder_repo(repo_dir.path());
    let (extra, conf) = archived_server(&repo, work.path());
    let recovery_dir = recovery.path().to_path_buf();
    let app = spawn_app_with(|s| s.backup.recovery_dir = Some(recovery_dir)).await;

    // Refused before anything is read: a strange stanza, a relative path,
    // an unknown type, a key for a folder, an unknown server.
    let server =
        crate::kit::servers::register(&app, "archived", &extra, json!(["enterprise"])).await;
    let server_id = server["id"].as_str().unwrap();
    let path = format!("/v1/servers/{server_id}/wal-archive");
    let mut with_key = body(&repo, STANZA, PASS);
    with_key["repository"]["access_key_id"] = "a".into();
    for bad in [
        body(&repo, "ops]\nrepo2", PASS),
        json!({ "stanza": STANZA, "repository": { "type": "posix", "path": "relative/repo" }, "cipher_pass": PASS }),
        json!({ "stanza": STANZA, "repository": { "type": "s4", "path": "/r" }, "cipher_pass": PASS }),
        with_key,
    ] {
        let answer = app.admin(Method::PUT, &path, Some(bad.clone())).await;
        assert!(matches!(answer.status().as_u16(), 400 | 422), "{bad}");
    }
    let missing = format!("/v1/servers/{}/wal-archive", uuid::Uuid::now_v7());
    let answer = app
        .admin(Method::PUT, &missing, Some(body(&repo, STANZA, PASS)))
        .await;
    assert_eq!(answer.status(), 404);
    let answer = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(
        answer.status(),
        200,
        "removing what is not there is no error"
    );
    let answer = app
        .admin(Method::DELETE, "/v1/servers/not-a-uuid/wal-archive", None)
        .await;
    assert_eq!(answer.status(), 400);
    assert_eq!(
        app.admin(Method::DELETE, &missing, None).await.status(),
        404
    );

    // The CLI names it too, and reads it first; the passphrase comes from
    // the environment.
    let repo_path = repo_dir.path().display().to_string();
    let recovery_path = recovery.path().display().to_string();
    let env = [
        ("TENANT_PLANE_ARCHIVE_CIPHER_PASS", PASS),
        ("TENANT_PLANE_BACKUP_RECOVERY_DIR", recovery_path.as_str()),
    ];
    let named = |stanza: &'static str| {
        [
            "server",
            "--json",
            "wal-archive",
            server_id,
            "--stanza",
            stanza,
            "--repo-path",
            &repo_path,
        ]
    };
    let (code, _, err) = cli_env(&app, &named("elsewhere"), &env).await;
    assert_ne!(code, 0, "a stanza the repository lacks is refused");
    assert!(err.contains("WAL archive cannot be read"), "{err}");
    let (code, out, err) = cli_env(&app, &named(STANZA), &env).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown[0]["wal_archive"]["stanza"], STANZA, "{out}");
    let remove = ["server", "--json", "wal-archive", server_id, "--remove"];
    let (code, out, err) = cli_env(&app, &remove, &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"wal_archive\": null"), "{out}");

    restores_to_a_time(&app, server_id, &repo, &extra, &conf).await;
}

#[tokio::test]
async fn a_tenant_on_a_registered_server_backed_up_by_its_operator_into_s3_restores_to_a_time() {
    if !pgbackrest_or_skip() {
        return;
    }
    crate::timing::run_alone();
    let s3 = s3::start_tls().await;
    let (work, recovery) = (open_folder(), open_folder());
    let repo = bucket_repo(&s3, work.path());
    let (extra, conf) = archived_server(&repo, work.path());
    let recovery_dir = recovery.path().to_path_buf();
    let app = spawn_app_with(|s| s.backup.recovery_dir = Some(recovery_dir)).await;

    // Registered from the CLI with its archive: the DSN and the secrets
    // from the environment, the bucket's CA from a file.
    let dsn = extra.admin_dsn();
    let recovery_path = recovery.path().display().to_string();
    let env = [
        ("TENANT_PLANE_SERVER_DSN", dsn.as_str()),
        ("TENANT_PLANE_ARCHIVE_CIPHER_PASS", PASS),
        ("TENANT_PLANE_ARCHIVE_S3_KEY", s3::ACCESS_KEY),
        ("TENANT_PLANE_ARCHIVE_S3_KEY_SECRET", s3::SECRET_KEY),
        ("TENANT_PLANE_BACKUP_RECOVERY_DIR", recovery_path.as_str()),
    ];
    let endpoint = repo.registration["repository"]["endpoint"]
        .as_str()
        .unwrap();
    let ca_file = work.path().join("s3-ca.pem").display().to_string();
    let add = [
        "server",
        "--json",
        "add",
        "--name",
        "archived",
        "--pin",
        "enterprise",
        "--stanza",
        STANZA,
        "--s3-bucket",
        s3::BUCKET,
        "--s3-endpoint",
        endpoint,
        "--s3-region",
        "us-east-1",
        "--s3-path",
        "/ops-repo",
        "--s3-path-style",
        "--s3-ca-file",
        &ca_file,
    ];
    let (code, out, err) = cli_env(&app, &add, &env).await;
    assert_eq!(code, 0, "{err}");
    let added: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(added[0]["wal_archive"]["repository"]["type"], "s3", "{out}");
    assert!(
        !out.contains(s3::SECRET_KEY) && !out.contains(PASS),
        "{out}"
    );
    let server_id = added[0]["id"].as_str().unwrap();

    // An S3 repository needs its key; a wrong secret cannot read it.
    let path = format!("/v1/servers/{server_id}/wal-archive");
    let mut keyless = body(&repo, STANZA, PASS);
    keyless["repository"]
        .as_object_mut()
        .unwrap()
        .remove("secret_access_key");
    let answer = app.admin(Method::PUT, &path, Some(keyless)).await;
    assert_eq!(answer.status(), 422);
    let mut wrong = body(&repo, STANZA, PASS);
    wrong["repository"]["secret_access_key"] = "not-the-secret".into();
    let answer = app.admin(Method::PUT, &path, Some(wrong)).await;
    expect_error(answer, 409, "wal_archive_unreadable").await;
    // Without the CA, the endpoint's certificate does not verify.
    let mut untrusted = body(&repo, STANZA, PASS);
    untrusted["repository"]
        .as_object_mut()
        .unwrap()
        .remove("ca_pem");
    let answer = app.admin(Method::PUT, &path, Some(untrusted)).await;
    expect_error(answer, 409, "wal_archive_unreadable").await;

    restores_to_a_time(&app, server_id, &repo, &extra, &conf).await;
}

//! Restores that must not happen, or must not half-happen: damaged archives
//! are refused before anything changes, and a restore that fails half-way
//! leaves nothing behind.

use std::io::Read;
use std::path::Path;

use reqwest::Method;
use serde_json::json;
use tenant_plane::backup::{read_archive, BackupError};
use tenant_plane::crypto::MasterKey;
use tenant_plane::domain::{Slug, TenantId};
use tenant_plane::tenants::RestoreTarget;

use crate::helpers::spawn_app;
use crate::kit::backups::{checksums, master_key, populated_tenant};
use crate::kit::cli::cli;
use crate::kit::ok_json;

/// Rewrites an archive's parts with `edit`, decrypted and encrypted again
/// with the installation's key: what an attacker holding the key but not
/// the manifest's seal could make.
fn rewrite(from: &Path, to: &Path, edit: impl Fn(&str, Vec<u8>) -> Vec<u8>) {
    let key = master_key();
    let plain = tenant_plane::backup::decrypt(&key, std::fs::File::open(from).unwrap()).unwrap();
    let mut archive = tar::Archive::new(plain);
    let mut encrypted =
        tenant_plane::backup::encrypt(&key, std::fs::File::create(to).unwrap()).unwrap();
    {
        let mut builder = tar::Builder::new(&mut encrypted);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            let data = edit(&name, data);
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            builder
                .append_data(&mut header, &name, data.as_slice())
                .unwrap();
        }
        builder.finish().unwrap();
    }
    encrypted.finish().unwrap();
}

#[tokio::test]
async fn a_tampered_or_truncated_archive_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (t, _, _) = populated_tenant(&app, "guarded").await;
    let tid: TenantId = t["id"].as_str().unwrap().parse().unwrap();
    let state = app.state().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tpbackup");
    state.tenants().backup(tid, &good).await.unwrap();
    assert!(read_archive(&good, &master_key()).is_ok());

    let flipped = dir.path().join("flipped.tpbackup");
    rewrite(&good, &flipped, |name, mut data| {
        if name == "database.dump" {
            let last = data.len() - 1;
            data[last] ^= 0xff;
        }
        data
    });
    let resealed = dir.path().join("manifest-edited.tpbackup");
    rewrite(&good, &resealed, |name, data| {
        if name == "manifest.json" {
            String::from_utf8(data)
                .unwrap()
                .replace("guarded", "guarder")
                .into_bytes()
        } else {
            data
        }
    });
    // A byte changed in the encrypted file itself fails its authentication.
    let garbled = dir.path().join("garbled.tpbackup");
    let mut bytes = std::fs::read(&good).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&garbled, &bytes).unwrap();
    assert!(matches!(
        read_archive(&garbled, &master_key()),
        Err(BackupError::Corrupt(_))
    ));
    let truncated = dir.path().join("truncated.tpbackup");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let other_key = MasterKey::from_hex(&secrecy::SecretString::from("ff".repeat(32))).unwrap();

    assert!(
        matches!(read_archive(&flipped, &master_key()), Err(BackupError::Corrupt(m)) if m.contains("checksum"))
    );
    assert!(matches!(
        read_archive(&resealed, &master_key()),
        Err(BackupError::Unsealed)
    ));
    assert!(matches!(
        read_archive(&truncated, &master_key()),
        Err(BackupError::Corrupt(_))
    ));
    assert!(matches!(
        read_archive(&good, &other_key),
        Err(BackupError::Unsealed)
    ));

    // Through the CLI: refused with a clear message, and nothing changes.
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let before = checksums(&app.server, t["database"].as_str().unwrap()).await;
    let tenants_before = app.catalog_count("SELECT count(*) FROM tenants").await;
    let ops_before = app.catalog_count("SELECT count(*) FROM operations").await;
    for bad in [&flipped, &truncated] {
        for extra in [&[][..], &["--as-new", "--slug", "from-bad"][..]] {
            let mut args = vec!["restore", "--file", bad.to_str().unwrap()];
            args.extend_from_slice(extra);
            let (code, _, err) = cli(&app, &args).await;
            assert_ne!(code, 0);
            assert!(err.contains("refusing") && err.contains("damaged"), "{err}");
        }
    }
    assert_eq!(
        checksums(&app.server, t["database"].as_str().unwrap()).await,
        before
    );
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM tenants").await,
        tenants_before
    );
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM operations").await,
        ops_before
    );
}

#[tokio::test]
async fn a_restore_that_fails_half_way_leaves_no_half_made_tenant_and_the_original_untouched() {
    let app = spawn_app().await;
    let (t, _, _) = populated_tenant(&app, "half-way").await;
    let tid: TenantId = t["id"].as_str().unwrap().parse().unwrap();
    let db = t["database"].as_str().unwrap().to_string();
    // A grant to a role that exists at backup time and is gone at restore
    // time: pg_restore stops on it, after the tables are in.
    let role = format!("gone_{}", uuid::Uuid::new_v4().simple());
    let admin = app.server.connect(&db).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role}; GRANT SELECT ON agents TO {role}"
        ))
        .await
        .unwrap();
    let state = app.state().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("half-way.tpbackup");
    state.tenants().backup(tid, &file).await.unwrap();
    admin
        .batch_execute(&format!(
            "REVOKE ALL ON agents FROM {role}; DROP ROLE {role}"
        ))
        .await
        .unwrap();
    let archive = read_archive(&file, &master_key()).unwrap();
    // Other tests share this server: count only the names this test could leave.
    let server = app.server.clone();
    let exists = |names: Vec<String>| {
        let server = server.clone();
        async move {
            server
                .connect("postgres")
                .await
                .query_one(
                    "SELECT count(*) FROM pg_database WHERE datname = ANY($1)",
                    &[&names],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };

    // As a new tenant: nothing is left, and the slug is free again.
    let slug = Slug::parse("half-made").unwrap();
    let err = state
        .tenants()
        .restore_backup(&archive, RestoreTarget::AsNew { slug: slug.clone() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pg_restore"), "{err}");
    let failed_db: String = app
        .catalog_db()
        .await
        .query_one("SELECT db_name FROM tenants WHERE slug = 'half-made'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        exists(vec![failed_db]).await,
        0,
        "the half-made clone's database is gone"
    );
    assert_eq!(
        app.catalog_count(
            "SELECT count(*) FROM tenants WHERE slug = 'half-made' AND purged_at IS NULL"
        )
        .await,
        0
    );
    app.create_tenant("half-made", json!({})).await;

    // Into the same (suspended) tenant: its database is untouched.
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let before = checksums(&app.server, &db).await;
    state
        .tenants()
        .restore_backup(&archive, RestoreTarget::SameTenant)
        .await
        .unwrap_err();
    assert_eq!(checksums(&app.server, &db).await, before);
    assert_eq!(
        exists(vec![format!("{db}_restore"), format!("{db}_old")]).await,
        0,
        "no staging copy is left"
    );
    assert_eq!(app.unfinished_operations().await, 0);
    let view = ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/resume"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(view["status"], "active");
}

//! Versioned master keys: every sealed value names its key, the newest key
//! seals and all open, and `tenant-plane keys rotate` re-seals the catalog's
//! secrets in batches, audited, so the old key can then be removed.

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::crypto::MasterKey;

use crate::cluster::start_extra;
use crate::helpers::{spawn_app_on, test_settings, TestApp, MASTER_KEY};
use crate::kit::binary::{command, run};
use crate::kit::{call, id, ok_json};

const NEW_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

/// Sealed values in the catalog not under `key`'s newest key.
async fn not_under(app: &TestApp, key: &MasterKey) -> i64 {
    let prefix = key.newest_prefix();
    let db = app.catalog_db().await;
    let mut left = 0;
    for (table, column) in [
        ("tenants", "db_password_enc"),
        ("tenants", "settings_secrets_enc"),
        ("db_servers", "admin_password_enc"),
    ] {
        let sql = format!(
            "SELECT count(*) FROM {table} WHERE {column} IS NOT NULL AND substring({column} FROM 1 FOR 5) <> $1"
        );
        let n: i64 = db.query_one(&sql, &[&prefix]).await.unwrap().get(0);
        left += n;
    }
    left
}

#[tokio::test]
async fn keys_rotate_reseals_every_secret_under_the_new_key_and_the_old_key_can_then_go() {
    let extra = tokio::task::spawn_blocking(start_extra).await.unwrap();
    let (settings, catalog_db) = test_settings();
    let server = crate::cluster::shared().clone();
    let app = spawn_app_on(settings.clone(), catalog_db.clone(), server.clone()).await;
    // Secrets of every kind, sealed under the old key: tenants' role
    // passwords and integration secrets, and a server's admin password.
    // The test cluster trusts local connections, so the password is never
    // checked; it is sealed all the same.
    let dsn = extra.admin_dsn().replace("postgres@", "postgres:admin-pw@");
    let registered = ok_json(
        app.admin(
            Method::POST,
            "/v1/servers",
            Some(json!({ "name": "extra", "dsn": dsn })),
        )
        .await,
        201,
    )
    .await;
    let crm = json!({ "integrations": { "crm": { "provider": "hubspot", "configuration": { "apiKey": "hk-rotate" } } } });
    let mut tenants = Vec::new();
    for i in 0..5 {
        tenants.push(app.create_tenant(&format!("rekey-{i}"), crm.clone()).await);
    }
    let old = MasterKey::from_hex(&MASTER_KEY.to_string().into()).unwrap();
    let both_hex = format!("{MASTER_KEY},{NEW_KEY}");
    let both = MasterKey::from_hex(&both_hex.clone().into()).unwrap();
    assert_eq!(not_under(&app, &old).await, 0);
    assert_eq!(
        not_under(&app, &both).await,
        11,
        "5 passwords, 5 secrets, 1 admin password"
    );

    // The CLI, with the new key configured after the old, in batches of 2.
    let rotate = || {
        let mut cmd = command();
        cmd.args(["keys", "rotate", "--batch", "2"])
            .env(
                "TENANT_PLANE_DATABASE_URL",
                settings.database_url.as_ref().unwrap().expose_secret(),
            )
            .env("TENANT_PLANE_MASTER_KEY", &both_hex);
        cmd
    };
    let (code, stdout, stderr) = run(&mut rotate()).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("5  tenant role passwords re-sealed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1  server admin passwords re-sealed"),
        "{stdout}"
    );
    assert_eq!(not_under(&app, &both).await, 0);
    // Run again, it finds nothing left: a stopped rotation resumes where it was.
    let (code, stdout, _) = run(&mut rotate()).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("0  tenant role passwords re-sealed"),
        "{stdout}"
    );
    assert_eq!(
        app.catalog_count(
            "SELECT count(*) FROM audit_log WHERE action = 'keys.rotate' AND result = 'success'"
        )
        .await,
        2
    );

    // A second life of the catalog with only the new key.
    let mut renewed = settings.clone();
    renewed.master_key = Some(NEW_KEY.to_string().into());
    let app = spawn_app_on(renewed, catalog_db, server).await;
    // Tenant role passwords open: the data plane reaches each database.
    for tenant in &tenants {
        let token = app.token(Role::TenantAdmin, Some(id(tenant)), None);
        ok_json(
            call(
                &app,
                Method::POST,
                "/v1/agents",
                &token,
                None,
                Some(json!({ "name": "after", "type": "voice" })),
            )
            .await,
            201,
        )
        .await;
    }
    // Integration secrets open: a settings change merges with them.
    let t = tenants[0]["id"].as_str().unwrap();
    ok_json(
        app.admin(
            Method::PATCH,
            &format!("/v1/tenants/{t}"),
            Some(json!({ "settings": { "branding": { "primaryColor": "#123456" } } })),
        )
        .await,
        200,
    )
    .await;
    // The server's admin password opens: a tenant moves there.
    let moved = app
        .admin(
            Method::POST,
            &format!("/v1/tenants/{t}/move"),
            Some(json!({ "server": registered["id"] })),
        )
        .await;
    let moved = app.follow(moved).await;
    assert_eq!(moved["state"], "succeeded", "{moved}");
}

#[tokio::test]
async fn a_rotation_stops_and_names_what_no_configured_key_opens() {
    let (settings, catalog_db) = test_settings();
    let app = spawn_app_on(
        settings.clone(),
        catalog_db,
        crate::cluster::shared().clone(),
    )
    .await;
    app.create_tenant_named("rekey-lost").await;
    // Only a key that never sealed anything here.
    let (code, _, stderr) = run(command()
        .args(["keys", "rotate"])
        .env(
            "TENANT_PLANE_DATABASE_URL",
            settings.database_url.as_ref().unwrap().expose_secret(),
        )
        .env("TENANT_PLANE_MASTER_KEY", NEW_KEY))
    .await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("opens with none of the configured master keys"),
        "{stderr}"
    );
    let old = MasterKey::from_hex(&MASTER_KEY.to_string().into()).unwrap();
    assert_eq!(not_under(&app, &old).await, 0, "nothing was changed");
}

//! Subtenants, configuration, and the lifecycle: suspend, resume, soft delete,
//! restore, purge.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{envelope, spawn_app, TestApp};
use crate::kit::tenant_db::{http_session, role_password};

async fn post(app: &TestApp, path: &str, body: serde_json::Value) -> reqwest::Response {
    app.admin(Method::POST, path, Some(body)).await
}

async fn json_of(response: reqwest::Response, want: u16) -> serde_json::Value {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, want, "{body}");
    body
}

#[tokio::test]
async fn a_subtenant_inherits_its_parents_configuration_and_may_only_narrow_its_limits() {
    let app = spawn_app().await;
    let root = app
        .create_tenant(
            "agency",
            json!({
                "branding": { "primaryColor": "#112233", "logo": "https://cdn.example/agency.png" },
                "features": { "maxAgents": 10, "voiceAgents": false },
                "integrations": { "crm": { "provider": "hubspot", "configuration": { "apiKey": "hk-secret-1" } } }
            }),
        )
        .await;
    let root_id = root["id"].as_str().unwrap();
    // Integration secrets are never returned.
    assert!(!root.to_string().contains("hk-secret-1"), "{root}");
    assert_eq!(
        root["settings"]["integrations"]["crm"]["configuration"]["apiKey"],
        "********"
    );

    let subtenants = format!("/v1/tenants/{root_id}/subtenants");
    let wider = post(&app, &subtenants, json!({ "name": "Client", "slug": "client-a", "settings": { "features": { "maxAgents": 20 } } })).await;
    let (status, code, message) = envelope(wider).await;
    assert_eq!((status, code.as_str()), (409, "exceeds_parent"));
    assert!(message.contains("features.maxAgents"), "{message}");
    let voice = post(&app, &subtenants, json!({ "name": "Client", "slug": "client-a", "settings": { "features": { "voiceAgents": true } } })).await;
    let (status, code, message) = envelope(voice).await;
    assert_eq!((status, code.as_str()), (409, "exceeds_parent"));
    assert!(message.contains("features.voiceAgents"), "{message}");

    let sub = json_of(
        post(&app, &subtenants, json!({ "name": "Client A", "slug": "client-a",
            "settings": { "features": { "maxAgents": 4 }, "branding": { "primaryColor": "#445566" } } })).await,
        201,
    )
    .await;
    let sub_id = sub["id"].as_str().unwrap();
    assert_eq!(sub["parent_id"], root_id);
    assert_eq!(
        sub["database"], root["database"],
        "a subtenant shares its root's database"
    );
    let eff = &sub["effective_settings"];
    assert_eq!(eff["features"]["maxAgents"], 4);
    assert_eq!(eff["features"]["voiceAgents"], false);
    assert_eq!(eff["branding"]["primaryColor"], "#445566");
    assert_eq!(eff["branding"]["logo"], "https://cdn.example/agency.png");
    assert_eq!(eff["integrations"]["crm"]["provider"], "hubspot");

    // Two levels only.
    let deeper = post(
        &app,
        &format!("/v1/tenants/{sub_id}/subtenants"),
        json!({ "name": "Deep", "slug": "deep" }),
    )
    .await;
    let (status, code, _) = envelope(deeper).await;
    assert_eq!((status, code.as_str()), (409, "subtenant_depth"));

    // A PATCH cannot widen either, nor give a subtenant a tier.
    let widen = app
        .admin(
            Method::PATCH,
            &format!("/v1/tenants/{sub_id}"),
            Some(json!({ "settings": { "features": { "maxAgents": 11 } } })),
        )
        .await;
    let (status, code, message) = envelope(widen).await;
    assert_eq!((status, code.as_str()), (409, "exceeds_parent"));
    assert!(message.contains("features.maxAgents"), "{message}");
    let tier = app
        .admin(
            Method::PATCH,
            &format!("/v1/tenants/{sub_id}"),
            Some(json!({ "tier": "enterprise" })),
        )
        .await;
    let (status, code, message) = envelope(tier).await;
    assert_eq!((status, code.as_str()), (409, "not_a_root_tenant"));
    assert!(message.contains("tier"), "{message}");

    // When the parent narrows, the subtenant's effective limit follows.
    json_of(
        app.admin(
            Method::PATCH,
            &format!("/v1/tenants/{root_id}"),
            Some(json!({ "settings": { "features": { "maxAgents": 3 } } })),
        )
        .await,
        200,
    )
    .await;
    let sub = json_of(
        app.admin(Method::GET, &format!("/v1/tenants/{sub_id}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(sub["effective_settings"]["features"]["maxAgents"], 3);
}

#[tokio::test]
async fn a_settings_patch_keeps_integration_secrets_sent_back_redacted() {
    let app = spawn_app().await;
    let t = app
        .create_tenant("secretive", json!({ "integrations": { "telephony": { "provider": "twilio", "configuration": { "token": "tw-1" } } } }))
        .await;
    let id = t["id"].as_str().unwrap();
    let patched = json_of(
        app.admin(
            Method::PATCH,
            &format!("/v1/tenants/{id}"),
            Some(json!({ "name": "Secretive Ltd", "settings": t["settings"].clone() })),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["name"], "Secretive Ltd");
    let catalog = app.catalog_db().await;
    let sealed: Vec<u8> = catalog
        .query_one(
            "SELECT settings_secrets_enc FROM tenants WHERE id = $1",
            &[&uuid::Uuid::parse_str(id).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    let key =
        tenant_plane::crypto::MasterKey::from_hex(&crate::helpers::MASTER_KEY.to_string().into())
            .unwrap();
    let secrets = key.open(&format!("tenant-settings:{id}"), &sealed).unwrap();
    assert!(String::from_utf8(secrets).unwrap().contains("tw-1"));
}

#[tokio::test]
async fn suspend_then_resume_revokes_and_restores_the_tenant_roles_access() {
    let app = spawn_app().await;
    let t = app.create_tenant("pausable", json!({})).await;
    let (id, db) = (t["id"].as_str().unwrap(), t["database"].as_str().unwrap());
    let pw = role_password(&app, id).await;
    let open_session = http_session(&app, db, &pw).await.unwrap();

    let suspended = json_of(
        post(&app, &format!("/v1/tenants/{id}/suspend"), json!({})).await,
        200,
    )
    .await;
    assert_eq!(suspended["status"], "suspended");
    assert!(
        http_session(&app, db, &pw).await.is_err(),
        "PostgreSQL refuses a suspended tenant"
    );
    assert!(
        open_session.simple_query("SELECT 1").await.is_err(),
        "open sessions were ended"
    );
    let again = post(&app, &format!("/v1/tenants/{id}/suspend"), json!({})).await;
    let (status, code, _) = envelope(again).await;
    assert_eq!((status, code.as_str()), (409, "invalid_state"));

    let resumed = json_of(
        post(&app, &format!("/v1/tenants/{id}/resume"), json!({})).await,
        200,
    )
    .await;
    assert_eq!(resumed["status"], "active");
    assert!(http_session(&app, db, &pw).await.is_ok());
}

#[tokio::test]
async fn a_soft_delete_keeps_the_database_and_a_restore_brings_the_tenant_and_its_subtenants_back()
{
    let app = spawn_app().await;
    let t = app.create_tenant("recoverable", json!({})).await;
    let (id, db) = (t["id"].as_str().unwrap(), t["database"].as_str().unwrap());
    let sub = app.create_subtenant(id, "office").await;
    let sub_id = sub["id"].as_str().unwrap();
    let pw = role_password(&app, id).await;

    let deleted = json_of(
        app.admin(Method::DELETE, &format!("/v1/tenants/{id}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(deleted["status"], "deleted");
    assert!(deleted["deleted_at"].is_string());
    let sub_now = json_of(
        app.admin(Method::GET, &format!("/v1/tenants/{sub_id}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(
        sub_now["status"], "deleted",
        "subtenants go with their tenant"
    );
    let admin = app.server.connect("postgres").await;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .unwrap();
    assert!(exists.is_some(), "a soft delete keeps the database");
    assert!(http_session(&app, db, &pw).await.is_err());

    let restored = json_of(
        post(&app, &format!("/v1/tenants/{id}/restore"), json!({})).await,
        200,
    )
    .await;
    assert_eq!(restored["status"], "active");
    assert!(restored["deleted_at"].is_null());
    let sub_now = json_of(
        app.admin(Method::GET, &format!("/v1/tenants/{sub_id}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(sub_now["status"], "active");
    assert!(http_session(&app, db, &pw).await.is_ok());
}

#[tokio::test]
async fn a_purge_drops_the_database_and_the_role_and_frees_the_slug() {
    let app = spawn_app().await;
    let t = app.create_tenant("doomed", json!({})).await;
    let (id, db) = (t["id"].as_str().unwrap(), t["database"].as_str().unwrap());
    let sub = app.create_subtenant(id, "doomed-branch").await;
    // A purge is only for a soft-deleted tenant: an active one is refused,
    // and nothing is dropped.
    let (status, code, _) = envelope(
        app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{id}?purge=true"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "tenant_not_deleted"));
    let pw = role_password(&app, id).await;
    assert!(http_session(&app, db, &pw).await.is_ok());
    let purge = app.delete_and_purge(id).await;
    assert_eq!(purge["state"], "succeeded", "{purge}");
    assert_eq!(purge["kind"], "purge");
    assert!(
        purge["result"].is_null(),
        "a purge leaves nothing to show: {purge}"
    );
    // A purged tenant is gone from the API.
    let (status, code, _) = envelope(
        app.admin(Method::GET, &format!("/v1/tenants/{id}"), None)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "tenant_not_found"));
    let admin = app.server.connect("postgres").await;
    let row = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1), EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&db],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, bool>(0), row.get::<_, bool>(1)),
        (false, false)
    );
    for gone in [id, sub["id"].as_str().unwrap()] {
        let (status, code, _) = envelope(
            app.admin(Method::GET, &format!("/v1/tenants/{gone}"), None)
                .await,
        )
        .await;
        assert_eq!((status, code.as_str()), (404, "tenant_not_found"));
    }
    app.create_tenant("doomed", json!({})).await;
}

#[tokio::test]
async fn two_operations_on_one_tenant_at_once_never_both_run() {
    let app = spawn_app().await;
    let t = app.create_tenant("contended", json!({})).await;
    let id = t["id"].as_str().unwrap();
    let suspend_path = format!("/v1/tenants/{id}/suspend");
    let delete_path = format!("/v1/tenants/{id}");
    let (a, b) = tokio::join!(
        app.admin(Method::POST, &suspend_path, None),
        app.admin(Method::DELETE, &delete_path, None),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    // Either both ran one after the other (suspend, then delete of a suspended
    // tenant), or the second was refused while the first held the tenant.
    assert!(
        statuses == [200, 200] || statuses == [200, 409],
        "{statuses:?}"
    );
    assert_eq!(app.unfinished_operations().await, 0);
}

#[tokio::test]
async fn the_tenant_cli_drives_the_same_lifecycle_as_the_api() {
    let app = spawn_app().await;
    let cli = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"));
        cmd.args(args)
            .env(
                "TENANT_PLANE_DATABASE_URL",
                secrecy::ExposeSecret::expose_secret(&app.server.url(&app.catalog_db)),
            )
            .env("TENANT_PLANE_MASTER_KEY", crate::helpers::MASTER_KEY);
        cmd
    };
    let out = cli(&[
        "tenant", "create", "--name", "From CLI", "--slug", "from-cli", "--json",
    ])
    .output()
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["status"], "active");

    // The API sees what the CLI made, and the other way round.
    let via_api = json_of(
        app.admin(Method::GET, &format!("/v1/tenants/{id}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(via_api["database"], created["database"]);
    let out = cli(&["tenant", "suspend", id, "--json"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let via_api = json_of(
        app.admin(Method::GET, &format!("/v1/tenants/{id}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(via_api["status"], "suspended");
    let out = cli(&["tenant", "list", "--status", "suspended", "--json"])
        .output()
        .await
        .unwrap();
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["tenants"][0]["id"], id);

    // A bad slug is refused before anything runs.
    let out = cli(&["tenant", "create", "--name", "Bad", "--slug", "Bad Slug!"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("slug"));
}

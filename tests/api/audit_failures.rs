//! A change whose audit record cannot be written fails and changes nothing:
//! in the catalog (control plane) and in a tenant's database (data plane).
//! A trigger that refuses every insert into `audit_log` stands in for
//! audit storage that is failing.

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app};
use crate::kit::{call, id, ok_json};

const REFUSE_AUDIT: &str = "
    CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'audit storage refuses writes'; END $$;
    CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
        FOR EACH ROW EXECUTE FUNCTION refuse_audit();";

const ALLOW_AUDIT: &str = "DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit();";

/// Everything a control-plane change could touch, as one digest per table.
const CATALOG_STATE: &str = "SELECT string_agg(t || ':' || s, ',' ORDER BY t) FROM (
    SELECT 'tenants' AS t, md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) AS s FROM tenants x
    UNION ALL SELECT 'domains', md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM tenant_domains x
    UNION ALL SELECT 'api_keys', md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM api_keys x
    UNION ALL SELECT 'servers', md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM db_servers x
    UNION ALL SELECT 'operations', md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM operations x
    UNION ALL SELECT 'runs', md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM migration_runs x
    UNION ALL SELECT 'audit', count(*)::text FROM audit_log) s";

const TENANT_STATE: &str = "SELECT
       (SELECT md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM agents x)
    || (SELECT md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM calls x)
    || (SELECT count(*)::text FROM audit_log)";

async fn digest(db: &tokio_postgres::Client, query: &str) -> String {
    db.query_one(query, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_control_plane_change_whose_audit_record_cannot_be_written_fails_and_changes_nothing() {
    let app = spawn_app().await;
    let t = app.create_tenant("audit-refused", json!({})).await;
    let tid = t["id"].as_str().unwrap().to_string();
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let catalog = app.catalog_db().await;
    let server = crate::kit::servers::catalog_server_id(&app).await;
    catalog.batch_execute(REFUSE_AUDIT).await.unwrap();
    let before = digest(&catalog, CATALOG_STATE).await;
    let changes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/v1/tenants".into(),
            Some(json!({ "name": "Never made", "slug": "never-made" })),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{tid}/subtenants"),
            Some(json!({ "name": "Never made", "slug": "never-made-sub" })),
        ),
        (
            Method::PATCH,
            format!("/v1/tenants/{tid}"),
            Some(json!({ "name": "Renamed" })),
        ),
        (Method::POST, format!("/v1/tenants/{tid}/suspend"), None),
        (Method::DELETE, format!("/v1/tenants/{tid}"), None),
        (
            Method::DELETE,
            format!("/v1/tenants/{tid}?purge=true"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/servers/{server}"),
            Some(json!({ "capacity": 5 })),
        ),
        (Method::POST, format!("/v1/servers/{server}/drain"), None),
        (Method::POST, "/v1/migrations/runs".into(), Some(json!({}))),
        (
            Method::POST,
            format!("/v1/tenants/{tid}/migrations"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{tid}/api-keys"),
            Some(json!({ "name": "never issued", "role": "agent" })),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{tid}/domains"),
            Some(json!({ "domain": "care.never.example" })),
        ),
    ];
    // Unchanged tenants and operations also mean no database was made: a
    // create records both before it makes one. (Counting databases would
    // count other tests' too.)
    for (method, path, body) in changes {
        let (status, code, message) = envelope(app.admin(method.clone(), &path, body).await).await;
        assert!(
            status >= 500,
            "{method} {path} got {status} {code}: {message}"
        );
        assert!(
            !message.contains("audit storage"),
            "{method} {path} leaked the cause: {message}"
        );
        assert_eq!(
            digest(&catalog, CATALOG_STATE).await,
            before,
            "{method} {path} changed the catalog"
        );
    }
    // The refused suspension never reached the tenant: it still serves.
    ok_json(
        call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;

    // With audit storage back, the same change goes through, and its record
    // says so; a change that fails is recorded as a failure.
    catalog.batch_execute(ALLOW_AUDIT).await.unwrap();
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let missing = uuid::Uuid::new_v4();
    let (status, code, _) = envelope(
        app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{tid}/api-keys/{missing}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "api_key_not_found"));
    let made = app.create_tenant("audited-later", json!({})).await;
    let made_id = made["id"].as_str().unwrap();
    let records: Vec<(String, Option<uuid::Uuid>, String, String)> = catalog
        .query(
            "SELECT action, tenant_id, resource, result FROM audit_log
              WHERE action IN ('tenants.suspend', 'api_keys.revoke', 'tenants.create') ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let tenant = |s: &str| Some(s.parse::<uuid::Uuid>().unwrap());
    assert_eq!(
        records[1..],
        [
            (
                "tenants.suspend".to_string(),
                tenant(&tid),
                format!("tenants/{tid}"),
                "success".to_string()
            ),
            (
                "api_keys.revoke".to_string(),
                tenant(&tid),
                format!("api_keys/{missing}"),
                "failure".to_string()
            ),
            (
                "tenants.create".to_string(),
                tenant(made_id),
                format!("tenants/{made_id}"),
                "success".to_string()
            ),
        ],
        "{records:?}"
    );
    // The first record is the create of the tenant this test began with.
    assert_eq!(records[0].0, "tenants.create");
    assert_eq!(records.len(), 4, "{records:?}");
}

#[tokio::test]
async fn a_data_plane_mutation_whose_audit_record_cannot_be_written_is_rolled_back() {
    let app = spawn_app().await;
    let t = app.create_tenant("data-audit-refused", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let agent = ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "kept", "type": "voice" })),
        )
        .await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tenant_db = app.server.connect(t["database"].as_str().unwrap()).await;
    tenant_db.batch_execute(REFUSE_AUDIT).await.unwrap();
    let before = digest(&tenant_db, TENANT_STATE).await;
    let mutations: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/v1/agents".into(),
            Some(json!({ "name": "never made", "type": "chat" })),
        ),
        (
            Method::PATCH,
            format!("/v1/agents/{agent}"),
            Some(json!({ "name": "renamed" })),
        ),
        (Method::DELETE, format!("/v1/agents/{agent}"), None),
        (
            Method::POST,
            "/v1/calls".into(),
            Some(json!({ "agent_id": agent, "status": "completed", "duration": 7 })),
        ),
    ];
    for (method, path, body) in mutations {
        let (status, code, message) =
            envelope(call(&app, method.clone(), &path, &admin, None, body).await).await;
        assert!(
            status >= 500,
            "{method} {path} got {status} {code}: {message}"
        );
        assert_eq!(
            digest(&tenant_db, TENANT_STATE).await,
            before,
            "{method} {path} changed the tenant's data"
        );
    }
    tenant_db.batch_execute(ALLOW_AUDIT).await.unwrap();
    ok_json(
        call(
            &app,
            Method::PATCH,
            &format!("/v1/agents/{agent}"),
            &admin,
            None,
            Some(json!({ "name": "renamed" })),
        )
        .await,
        200,
    )
    .await;
    let recorded: i64 = tenant_db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE resource LIKE '%' || $1",
            &[&agent],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 2, "the create and the rename, nothing refused");
}

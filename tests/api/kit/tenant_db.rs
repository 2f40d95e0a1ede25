//! A tenant's database as PostgreSQL sees it: its role's password and the
//! router's sessions to it.

use secrecy::ExposeSecret;
use tenant_plane::crypto::MasterKey;
use tenant_plane::domain::TenantId;

use crate::helpers::{TestApp, MASTER_KEY};

/// The login role the HTTP plane's sessions of the tenant database `db`
/// log in as (the tenant role itself is a group that cannot log in).
pub fn http_login(db: &str) -> String {
    tenant_plane::domain::DbName::recognise(db)
        .expect("a tenant database")
        .http_login()
}

/// A session to the tenant database `db` as the HTTP plane's login, with
/// `password`, or the error PostgreSQL answered.
pub async fn http_session(
    app: &TestApp,
    db: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    app.server.connect_as(db, &http_login(db), password).await
}

/// The tenant role's password, read from the catalog and decrypted.
pub async fn role_password(app: &TestApp, id: &str) -> String {
    let catalog = app.catalog_db().await;
    let row = catalog
        .query_one(
            "SELECT db_password_enc FROM tenants WHERE id = $1",
            &[&uuid::Uuid::parse_str(id).unwrap()],
        )
        .await
        .unwrap();
    let key = MasterKey::from_hex(&MASTER_KEY.to_string().into()).unwrap();
    let id: TenantId = id.parse().unwrap();
    key.open_string(
        &tenant_plane::catalog::role_purpose(id),
        row.get::<_, &[u8]>(0),
    )
    .unwrap()
    .expose_secret()
    .to_string()
}

/// The router's sessions open (in pg_stat_activity) to `databases`.
pub async fn router_sessions(admin: &tokio_postgres::Client, databases: &[String]) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tenant-plane-router' AND datname = ANY($1)",
            &[&databases],
        )
        .await
        .unwrap()
        .get(0)
}

/// Creates an agent through the HTTP plane with `key`, on a session opened
/// after whatever came before (every pool closed first).
pub async fn http_plane_writes(app: &TestApp, key: &str, name: &str) {
    app.state().await.tenancy().router().close_all().await;
    crate::kit::ok_json(
        crate::kit::call(
            app,
            reqwest::Method::POST,
            "/v1/agents",
            key,
            None,
            Some(serde_json::json!({ "name": name, "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
}

/// Whether the role `role` may log in; `None` when it does not exist.
async fn logs_in(admin: &tokio_postgres::Client, role: &str) -> Option<bool> {
    admin
        .query_opt(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

/// Whether the role `role` exists and may log in.
pub async fn can_log_in(admin: &tokio_postgres::Client, role: &str) -> bool {
    logs_in(admin, role).await == Some(true)
}

/// Whether the role `role` exists and cannot log in (a group).
pub async fn is_group(admin: &tokio_postgres::Client, role: &str) -> bool {
    logs_in(admin, role).await == Some(false)
}

/// Whether the role `role` has a read-only default of its own.
pub async fn read_only_default(admin: &tokio_postgres::Client, role: &str) -> bool {
    admin
        .query_one(
            "SELECT coalesce(bool_or('default_transaction_read_only=on' = ANY(rolconfig)), false)
               FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap()
        .get(0)
}

/// Pauses the tenant's writes as a move does (`set_writes_paused`). With
/// `defaults_alone`, a table is first taken from the reader group, so the
/// pause cannot move the tenant role into it: read-only defaults (and the
/// pause's mark) are then all the pause is.
pub async fn pause_writes(app: &TestApp, db: &tenant_plane::domain::DbName, defaults_alone: bool) {
    if defaults_alone {
        app.server
            .connect(db.as_str())
            .await
            .batch_execute("REVOKE SELECT ON calls FROM ai_care_tenant_reader")
            .await
            .unwrap();
    }
    set_writes_paused(app, db, true).await;
}

/// Ends the pause `pause_writes` began.
pub async fn resume_writes(app: &TestApp, db: &tenant_plane::domain::DbName) {
    set_writes_paused(app, db, false).await;
}

async fn set_writes_paused(app: &TestApp, db: &tenant_plane::domain::DbName, paused: bool) {
    let server = crate::kit::servers::catalog_server(app).await;
    let state = app.state().await;
    state
        .tenants()
        .provisioner()
        .set_writes_paused(&server, db, paused)
        .await
        .unwrap();
}

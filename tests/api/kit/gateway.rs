//! The PostgreSQL-protocol gateway as an application reaches it: a tenant
//! with a key, tokio-postgres connections and `psql` runs through it, and
//! the sessions it holds on the server.

use reqwest::Method;
use serde_json::json;

use crate::helpers::TestApp;
use crate::kit::{call, ok_json};

/// A tenant made through the API and a key of `role` minted for it:
/// (tenant id, slug, key).
pub async fn tenant_with_key(app: &TestApp, slug: &str, role: &str) -> (String, String, String) {
    let tenant = app.create_tenant(slug, json!({})).await;
    let id = tenant["id"].as_str().unwrap().to_string();
    let key = mint_key(app, &id, json!({ "name": "wire", "role": role })).await;
    (id, slug.to_string(), key)
}

/// A key minted by super_admin with this body; the secret.
pub async fn mint_key(app: &TestApp, tenant: &str, body: serde_json::Value) -> String {
    let minted = ok_json(
        call(
            app,
            Method::POST,
            &format!("/v1/tenants/{tenant}/api-keys"),
            &app.super_admin_token(),
            None,
            Some(body),
        )
        .await,
        201,
    )
    .await;
    minted["key"].as_str().unwrap().to_string()
}

/// A key's body that may read all of the tenant's agents and calls, and
/// nothing else: a read-only key on the wire.
pub fn read_only_key() -> serde_json::Value {
    json!({ "name": "reports", "role": "tenant_admin", "permissions": [
        { "resource": "agents", "actions": ["read"], "scope": "tenant" },
        { "resource": "calls", "actions": ["read"], "scope": "tenant" },
    ] })
}

/// Connection settings for the gateway as `user` with `password`.
pub fn config(app: &TestApp, user: &str, password: &str) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(app.gateway_port.expect("the gateway is on"))
        .user(user)
        .password(password)
        .dbname(user)
        .connect_timeout(std::time::Duration::from_secs(10));
    config
}

/// A connection through the gateway, its driver spawned.
pub async fn connect(
    app: &TestApp,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config(app, user, password)
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The server's message for a refused login.
pub async fn refusal(app: &TestApp, user: &str, password: &str) -> String {
    refusal_with(app, user, password, "").await
}

/// Why a client is refused: at login, or at its first transaction (when
/// its login found the server's parameters known and needed no session).
pub async fn refused_before_any_sql(app: &TestApp, user: &str, key: &str) -> String {
    let refused = match connect(app, user, key).await {
        Err(e) => e,
        Ok(client) => client.simple_query("SELECT 1").await.unwrap_err(),
    };
    let refused = refused.as_db_error().expect("the gateway's own message");
    format!("{}: {}", refused.code().code(), refused.message())
}

/// The server's message for a refused login that sent `options`.
pub async fn refusal_with(app: &TestApp, user: &str, password: &str, options: &str) -> String {
    let mut config = config(app, user, password);
    if !options.is_empty() {
        config.options(options);
    }
    let connected = config.connect(tokio_postgres::NoTls).await;
    match connected.map(|(client, connection)| {
        tokio::spawn(connection);
        client
    }) {
        Ok(_) => panic!("{user} logged in"),
        Err(e) => e
            .as_db_error()
            .map(|db| format!("{}: {}", db.code().code(), db.message()))
            .unwrap_or_else(|| e.to_string()),
    }
}

/// Sessions the gateway holds to these databases now.
pub async fn gateway_sessions(admin: &tokio_postgres::Client, databases: &[String]) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE application_name = 'tenant-plane-gateway' AND datname = ANY($1)",
            &[&databases],
        )
        .await
        .unwrap()
        .get(0)
}

/// Every router session, the HTTP plane's and the gateway's, open to
/// these databases now.
pub async fn tenant_sessions(admin: &tokio_postgres::Client, databases: &[String]) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE application_name IN ('tenant-plane-router', 'tenant-plane-gateway')
                AND datname = ANY($1)",
            &[&databases],
        )
        .await
        .unwrap()
        .get(0)
}

/// The tenant's database name, as the API shows it.
pub async fn tenant_database(app: &TestApp, id: &str) -> String {
    let tenant = ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{id}"), None)
            .await,
        200,
    )
    .await;
    tenant["database"].as_str().unwrap().to_string()
}

/// The SQLSTATE a statement was refused with; `None` when it ran (or the
/// error came from no server).
pub fn sqlstate<T>(result: &Result<T, tokio_postgres::Error>) -> Option<String> {
    result
        .as_ref()
        .err()
        .and_then(|e| e.as_db_error())
        .map(|e| e.code().code().to_string())
}

//! What registering a server checks: the admin role holds every privilege
//! the service uses (and a provisioning step refused later says why), and a
//! server on another host has its certificate verified unless the request
//! says otherwise.

use reqwest::Method;
use serde_json::json;
use tenant_plane::provisioner::ProvisionError;

use crate::cluster::start_extra;
use crate::helpers::{envelope, spawn_app};
use crate::kit::ok_json;

#[tokio::test]
async fn a_server_whose_admin_role_lacks_pg_signal_backend_is_refused_naming_it_and_accepted_once_granted(
) {
    let app = spawn_app().await;
    let extra = start_extra();
    let su = extra.server.connect("postgres").await;
    su.batch_execute("CREATE ROLE tp_limited LOGIN CREATEDB CREATEROLE")
        .await
        .unwrap();
    let dsn = format!(
        "postgres://tp_limited@127.0.0.1:{}/postgres",
        extra.server.port()
    );
    let body = json!({ "name": "pg-limited", "dsn": dsn });

    let (status, code, message) = envelope(
        app.admin(Method::POST, "/v1/servers", Some(body.clone()))
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (409, "server_unusable"),
        "{message}"
    );
    assert!(
        message.contains("missing membership in pg_signal_backend"),
        "{message}"
    );
    assert!(
        !message.contains("CREATEDB") && !message.contains("CREATEROLE"),
        "names only what is missing: {message}"
    );

    su.batch_execute("GRANT pg_signal_backend TO tp_limited")
        .await
        .unwrap();
    let server = ok_json(
        app.admin(Method::POST, "/v1/servers", Some(body)).await,
        201,
    )
    .await;
    assert_eq!(server["name"], "pg-limited");
}

#[tokio::test]
async fn a_provisioning_statement_refused_by_postgresql_carries_its_sqlstate_and_the_privilege_it_names(
) {
    let extra = start_extra();
    let su = extra.server.connect("postgres").await;
    su.batch_execute(
        "CREATE ROLE tp_unsignalled LOGIN CREATEDB CREATEROLE; CREATE ROLE tp_tenant LOGIN",
    )
    .await
    .unwrap();
    let tenant = extra
        .server
        .connect_as("postgres", "tp_tenant", "")
        .await
        .unwrap();
    let pid: i32 = tenant
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let admin = extra
        .server
        .connect_as("postgres", "tp_unsignalled", "")
        .await
        .unwrap();
    // What a move or a drain runs to end a tenant's sessions.
    let refused = admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap_err();
    let text = ProvisionError::Sql(refused).to_string();
    assert!(
        text.starts_with("provisioning statement failed: SQLSTATE 42501: "),
        "{text}"
    );
    assert!(text.contains("pg_signal_backend"), "{text}");
    // Other errors say only their SQLSTATE: their text is not vetted.
    let other = admin.execute("SELECT 1 / 0", &[]).await.unwrap_err();
    assert_eq!(
        ProvisionError::Sql(other).to_string(),
        "provisioning statement failed: SQLSTATE 22012"
    );
}

#[tokio::test]
async fn a_server_on_another_host_without_certificate_verification_is_refused_before_connecting_unless_the_request_allows_it(
) {
    let app = spawn_app().await;
    let register = |body: serde_json::Value| {
        let app = &app;
        async move { envelope(app.admin(Method::POST, "/v1/servers", Some(body)).await).await }
    };
    for mode in ["disable", "prefer", "require"] {
        let dsn = format!("postgres://postgres@db.example.invalid/postgres?sslmode={mode}");
        let (status, code, message) = register(json!({ "name": "pg-far", "dsn": dsn })).await;
        assert_eq!(
            (status, code.as_str()),
            (409, "server_unusable"),
            "{mode}: {message}"
        );
        assert!(
            message.contains("allow_unverified_tls"),
            "{mode}: {message}"
        );
        // Said explicitly, the refusal is lifted: what stops this one is
        // only that the name does not resolve.
        let (status, code, message) =
            register(json!({ "name": "pg-far", "dsn": dsn, "allow_unverified_tls": true })).await;
        assert_eq!(
            (status, code.as_str()),
            (409, "server_unusable"),
            "{message}"
        );
        assert!(message.contains("cannot connect"), "{mode}: {message}");
    }
    // On loopback nothing leaves the machine: accepted as it is, no warning.
    let extra = start_extra();
    let dsn = format!("{}?sslmode=prefer", extra.admin_dsn());
    let server = ok_json(
        app.admin(
            Method::POST,
            "/v1/servers",
            Some(json!({ "name": "pg-near", "dsn": dsn })),
        )
        .await,
        201,
    )
    .await;
    let list = ok_json(app.admin(Method::GET, "/v1/servers", None).await, 200).await;
    let listed = list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == server["id"])
        .unwrap()
        .clone();
    assert_eq!(listed["ssl_mode"], "prefer", "{listed}");
    assert!(listed["tls_warning"].is_null(), "{listed}");
}

//! TLS to PostgreSQL against a real server with `ssl = on`, a CA made at
//! test time (rcgen), a certificate for `localhost` only, and only `hostssl`
//! lines in `pg_hba.conf`: verify-full works for the catalog, a registered
//! server and the tenant sessions on it; a plain connection, a wrong CA and
//! a certificate for another host are refused, each with a clear error.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::pg::PgConfig;

use crate::cluster;
use crate::helpers::{spawn_app, spawn_app_on, test_settings, TestApp};
use crate::kit::{call, id, ok_json};
use crate::tls_rig::tls_server;

#[tokio::test]
async fn the_service_runs_on_a_tls_only_catalog_with_verify_full_and_refuses_plain_wrong_ca_and_wrong_host(
) {
    let tls = tls_server();
    let ca = tls.ca_file.display().to_string();

    // Plain: the server's pg_hba.conf has no line for it.
    let plain = tls.connect_error("localhost", "sslmode=disable").await;
    assert!(plain.contains("no encryption"), "{plain}");
    // A CA that did not sign the server's certificate.
    let other = tls.other_ca_file.display();
    let wrong_ca = tls
        .connect_error(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={other}"),
        )
        .await;
    assert!(
        wrong_ca.contains("not signed by a CA in sslrootcert"),
        "{wrong_ca}"
    );
    // The certificate names localhost; 127.0.0.1 is another host to verify-full,
    // while verify-ca checks only the chain.
    let wrong_host = tls
        .connect_error(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )
        .await;
    assert!(
        wrong_host.contains("certificate not valid for name \"127.0.0.1\""),
        "{wrong_host}"
    );
    let chain_only = PgConfig::parse(&tls.dsn(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .unwrap();
    assert!(chain_only.connect().await.is_ok());

    // The whole service on it: the catalog, the template, a tenant's
    // database and the tenant's own sessions, all over verified TLS.
    let (mut settings, _) = test_settings();
    let archives = tempfile::tempdir().unwrap();
    settings.backup.location = Some(format!("file://{}", archives.path().display()));
    let catalog_db = cluster::catalog_name("tls");
    settings.database_url = Some(
        tls.dsn(
            "localhost",
            &catalog_db,
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )
        .into(),
    );
    let app = spawn_app_on(settings.clone(), catalog_db, tls.extra.server.clone()).await;
    let tenant = app.create_tenant("over-tls", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&tenant)), None);
    let agent = ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "Ava", "type": "voice" })),
        )
        .await,
        201,
    )
    .await;
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());
    ok_json(
        call(&app, Method::GET, &path, &admin, None, None).await,
        200,
    )
    .await;
    let servers = ok_json(
        call(
            &app,
            Method::GET,
            "/v1/servers",
            &app.super_admin_token(),
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        servers["servers"][0]["ssl_mode"], "verify-full",
        "{servers}"
    );
    // The server admits TLS sessions only, so the router's session to the
    // tenant's database is one; the agent's read above went through it.
    let inside = tls.inside().await;
    let sessions: Vec<String> = inside
        .query(
            "SELECT a.datname FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE s.ssl AND a.datname IS NOT NULL AND a.pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let database = tenant["database"].as_str().unwrap();
    assert!(
        sessions.iter().any(|db| db == database),
        "the router keeps a session to the tenant's database: {sessions:?}"
    );
    // The tenant's HTTP login logged in with SCRAM (the only way in for
    // it here) against a verifier of few iterations.
    let verifier: String = inside
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&format!("{database}_http")],
        )
        .await
        .unwrap()
        .get(0);
    assert!(verifier.starts_with("SCRAM-SHA-256$16:"), "{verifier}");

    // A backup (pg_dump under libpq's PGSSLMODE and PGSSLROOTCERT) takes
    // the same policy.
    let backup = app
        .follow(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{}/backups", id(&tenant)),
                None,
            )
            .await,
        )
        .await;
    assert_eq!(backup["state"], "succeeded", "{backup}");

    // The same start with the wrong CA stops with a clear reason.
    let mut wrong = settings;
    wrong.database_url = Some(
        tls.dsn(
            "localhost",
            "postgres",
            &format!("sslmode=verify-full&sslrootcert={other}"),
        )
        .into(),
    );
    let refused = match tenant_plane::startup::Application::build(wrong).await {
        Ok(_) => panic!("the service started on a catalog whose certificate did not verify"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        refused.contains("not signed by a CA in sslrootcert"),
        "{refused}"
    );
}

async fn register(app: &TestApp, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = call(
        app,
        Method::POST,
        "/v1/servers",
        &app.super_admin_token(),
        None,
        Some(body),
    )
    .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_server_registered_with_verify_full_holds_tenants_over_tls_and_a_wrong_host_wrong_ca_or_plain_registration_is_refused(
) {
    let tls = tls_server();
    let app = spawn_app().await;
    let port = tls.port();
    let other_pem = std::fs::read_to_string(&tls.other_ca_file).unwrap();
    let refusals = [
        (
            format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full"),
            Some(tls.ca.pem.clone()),
            "certificate not valid for name \"127.0.0.1\"",
        ),
        (
            format!("postgres://postgres@localhost:{port}/postgres?sslmode=verify-full"),
            Some(other_pem),
            "not signed by a CA in sslrootcert",
        ),
        (
            format!("postgres://postgres@localhost:{port}/postgres?sslmode=disable"),
            None,
            "no encryption",
        ),
        (
            format!("postgres://postgres@localhost:{port}/postgres?sslmode=verify-full"),
            None,
            "needs sslrootcert",
        ),
    ];
    for (dsn, root, expected) in refusals {
        let (status, body) = register(
            &app,
            json!({ "name": "tls-refused", "dsn": dsn, "ssl_root_cert": root }),
        )
        .await;
        assert!(status == 409 || status == 422, "{dsn}: {status} {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{dsn}: {body}");
    }
    let (status, body) = register(
        &app,
        json!({
            "name": "tls-bad-pem",
            "dsn": format!("postgres://postgres@localhost:{port}/postgres?sslmode=verify-full"),
            "ssl_root_cert": "not a certificate",
        }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_dsn")),
        "{body}"
    );

    // Registered with verify-full and the CA: tenants placed there work.
    let (status, server) = register(
        &app,
        json!({
            "name": "tls-only",
            "dsn": format!("postgres://postgres@localhost:{port}/postgres?sslmode=verify-full"),
            "ssl_root_cert": tls.ca.pem,
            "pinned_tiers": ["enterprise"],
        }),
    )
    .await;
    assert_eq!(status, 201, "{server}");
    assert_eq!(server["ssl_mode"], "verify-full");
    let created = ok_json(
        call(
            &app,
            Method::POST,
            "/v1/tenants",
            &app.super_admin_token(),
            None,
            Some(json!({ "name": "Secure", "slug": "secure-co", "tier": "enterprise" })),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["server_id"], server["id"], "{created}");
    let admin = app.token(Role::TenantAdmin, Some(id(&created)), None);
    ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "Bo", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    let listed = ok_json(
        call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;
    assert_eq!(listed["agents"][0]["name"], "Bo", "{listed}");
    let inside = tls.inside().await;
    let tenant_sessions: i64 = inside
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.datname = $1 AND s.ssl",
            &[&created["database"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(tenant_sessions > 0, "the tenant's sessions go over TLS");
}

//! The binary itself: configuration errors, the token command, and `serve`
//! with the embedded PostgreSQL from a cold start.

use crate::helpers::JWT_SECRET;
use crate::kit::binary::{command, run, start_serve, terminate};

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let (code, _, stderr) = run(command()
        .arg("serve")
        .env("TENANT_PLANE_LISTEN", "not-an-address"))
    .await;
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("TENANT_PLANE_LISTEN") && stderr.contains("`listen`"),
        "{stderr}"
    );

    let (code, _, stderr) = run(command()
        .arg("serve")
        .env("TENANT_PLANE_HTTP_MAX_BODY_BYTES", "lots"))
    .await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("TENANT_PLANE_HTTP_MAX_BODY_BYTES"),
        "{stderr}"
    );

    let (code, _, stderr) = run(command()
        .arg("serve")
        .env("TENANT_PLANE_LISTNE", "127.0.0.1:1"))
    .await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown setting") && stderr.contains("TENANT_PLANE_LISTNE"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_short_jwt_secret_is_refused_without_echoing_it() {
    let (code, _, stderr) = run(command()
        .arg("serve")
        .env("TENANT_PLANE_JWT_SECRET", "hunter2-hunter2"))
    .await;
    assert_eq!(code, 2);
    assert!(stderr.contains("TENANT_PLANE_JWT_SECRET"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the secret leaked: {stderr}");
}

#[tokio::test]
async fn a_bad_value_in_the_config_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tp.toml");
    std::fs::write(&file, "[http]\nmax_body_bytes = \"big\"\n").unwrap();
    let (code, _, stderr) = run(command().arg("--config").arg(&file).arg("serve")).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("http.max_body_bytes") && stderr.contains("tp.toml"),
        "{stderr}"
    );

    let (code, _, stderr) = run(command()
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .arg("serve"))
    .await;
    assert_eq!(code, 2);
    assert!(stderr.contains("no such file"), "{stderr}");
}

#[tokio::test]
async fn secrets_never_appear_in_help() {
    let (code, stdout, _) = run(command().arg("--help").env(
        "TENANT_PLANE_JWT_SECRET",
        "a-very-secret-value-that-is-long-enough",
    ))
    .await;
    assert_eq!(code, 0);
    assert!(!stdout.contains("a-very-secret-value"), "{stdout}");
}

#[tokio::test]
async fn serve_without_postgres_binaries_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(command()
        .arg("serve")
        .env("TENANT_PLANE_DATA_DIR", dir.path())
        .env("TENANT_PLANE_EMBEDDED_BIN_DIR", dir.path().join("no-bin")))
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
}

#[tokio::test]
async fn the_token_command_refuses_a_ttl_past_the_configured_cap() {
    let args = ["token", "--role", "super_admin", "--ttl", "48h"];
    let (code, _, stderr) = run(command()
        .args(args)
        .env("TENANT_PLANE_JWT_SECRET", JWT_SECRET))
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("tokens.max_ttl_secs"), "{stderr}");
    let (code, stdout, stderr) = run(command()
        .args(args)
        .env("TENANT_PLANE_JWT_SECRET", JWT_SECRET)
        .env("TENANT_PLANE_TOKENS_MAX_TTL_SECS", "259200"))
    .await;
    assert_eq!(code, 0, "{stderr}");
    let keys = tenant_plane::auth::JwtKeys::hs256(&JWT_SECRET.to_string().into()).unwrap();
    let ttl = keys.verify(stdout.trim()).unwrap().exp - chrono::Utc::now().timestamp();
    assert!((48 * 3600 - 60..=48 * 3600).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn the_token_command_prints_a_token_the_service_accepts() {
    let tenant = tenant_plane::domain::TenantId::generate();
    let (code, stdout, stderr) = run(command()
        .args([
            "token",
            "--role",
            "tenant_admin",
            "--tenant",
            &tenant.to_string(),
            "--sub",
            "ops",
            "--ttl",
            "15m",
        ])
        .env("TENANT_PLANE_JWT_SECRET", JWT_SECRET))
    .await;
    assert_eq!(code, 0, "{stderr}");
    let keys = tenant_plane::auth::JwtKeys::hs256(&JWT_SECRET.to_string().into()).unwrap();
    let claims = keys.verify(stdout.trim()).unwrap();
    assert_eq!(claims.tenant_id, Some(tenant));
    assert_eq!(claims.sub, "ops");
    let ttl = claims.exp - chrono::Utc::now().timestamp();
    assert!((850..=900).contains(&ttl), "ttl {ttl}");

    let (code, _, stderr) = run(command()
        .args([
            "token",
            "--role",
            "subtenant_admin",
            "--tenant",
            &tenant.to_string(),
        ])
        .env("TENANT_PLANE_JWT_SECRET", JWT_SECRET))
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("subtenant_id"), "{stderr}");
}

#[tokio::test]
async fn serve_with_no_database_runs_embedded_postgres_and_keeps_its_data_across_restarts() {
    // An absolute data directory the postgres user can enter, so the
    // cluster stays in place (first_run.rs covers closed folders).
    let data_dir = crate::kit::binary::open_folder();
    let client = reqwest::Client::new();

    let (mut child, base, token) = start_serve(data_dir.path()).await;
    let token = token.expect("a first start prints a super_admin token");
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let servers: serde_json::Value = client
        .get(format!("{base}/v1/servers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = servers["servers"][0]["id"].as_str().unwrap().to_string();
    let patched = client
        .patch(format!("{base}/v1/servers/{id}"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "capacity": 77 }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    terminate(&mut child).await;
    assert!(
        !data_dir.path().join("postgres/postmaster.pid").exists(),
        "PostgreSQL stopped with the service"
    );

    let (mut child, base, second_token) = start_serve(data_dir.path()).await;
    assert_eq!(second_token, None, "only the first start prints a token");
    // The secret was kept, so the first token still works, and so was the catalog.
    let servers: serde_json::Value = client
        .get(format!("{base}/v1/servers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(servers["servers"][0]["capacity"], 77);
    terminate(&mut child).await;
}

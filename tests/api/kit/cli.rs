//! The `tenant-plane` CLI against a test app's catalog, as an operator runs it.

use secrecy::ExposeSecret;

use crate::helpers::{TestApp, MASTER_KEY};

/// The CLI against `app`'s catalog; returns (exit code, stdout, stderr).
pub async fn cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    cli_env(app, args, &[]).await
}

/// Like `cli`, with more environment variables.
pub async fn cli_env(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"))
        .args(args)
        .envs(env.iter().copied())
        .env(
            "TENANT_PLANE_DATABASE_URL",
            app.server.url(&app.catalog_db).expose_secret(),
        )
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

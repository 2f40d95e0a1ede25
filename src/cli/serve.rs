//! `tenant-plane serve`: the HTTP service, with the embedded PostgreSQL when no
//! catalog database is configured. Shutdown is ordered: HTTP first, then the
//! embedded cluster.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::auth::{Claims, JwtKeys, Role};
use crate::config::Settings;
use crate::embedded;
use crate::startup::Application;
use crate::telemetry;

/// Lifetime of the super_admin token printed at start-up (at most
/// `tokens.max_ttl_secs`).
const STARTUP_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Print a new super_admin token at start-up. Without it, one is printed
    /// only on the first start, when the token secret is generated.
    #[arg(long)]
    print_token: bool,
}

pub async fn run(mut settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(settings.log_format, "info");
    let mut cluster = None;
    let mut archive = None;
    let external_catalog = settings.database_url.is_some();
    // Before the cluster: its WAL archive's passphrase derives from it.
    if settings.master_key.is_none() {
        let key = embedded::load_or_generate_secret(&settings.data_dir, "master_key")?;
        if key.generated && external_catalog {
            tracing::warn!("generated a master key in the data directory; replicas sharing this catalog need the same TENANT_PLANE_MASTER_KEY");
        }
        settings.master_key = Some(key.value);
    }
    if settings.database_url.is_none() {
        let for_start = settings.clone();
        let started = tokio::task::spawn_blocking(move || embedded::start_cluster(&for_start))
            .await
            .context("embedded PostgreSQL start-up panicked")??;
        let port = started.cluster.port();
        tracing::info!(port, pgdata = %started.cluster.pgdata().display(), "embedded PostgreSQL is running");
        if let Some(mut made) = started.archive {
            embedded::archiving::create_stanza(&mut made, port).await?;
            tracing::info!(stanza = %made.archive.record.stanza, "the embedded cluster archives its WAL with pgBackRest");
            archive = Some(made);
        }
        settings.database_url = Some(started.url);
        cluster = Some(started.cluster);
        // The embedded default has its gateway on, where the port is free
        // (a PgBouncer may hold 6432): applications can try it at once.
        if settings.gateway.listen.is_none() {
            let address = crate::config::EMBEDDED_GATEWAY;
            match std::net::TcpListener::bind(address) {
                Ok(probe) => {
                    drop(probe);
                    settings.gateway.listen = Some(address.into());
                }
                Err(e) => {
                    tracing::warn!(%address, error = %e, "the gateway's default address is taken; the gateway is off (set TENANT_PLANE_GATEWAY_LISTEN)")
                }
            }
        }
    }
    // A token is printed where nobody could have one yet (the secret was
    // just generated), or when asked: not at every start, where it would
    // sit in logs.
    let mut print_token = args.print_token;
    if settings.jwt_secret.is_none() {
        let secret = embedded::load_or_generate_secret(&settings.data_dir, "jwt_secret")?;
        settings.jwt_secret = Some(secret.value);
        print_token |= secret.generated;
    }
    let token_ttl = STARTUP_TOKEN_TTL.min(Duration::from_secs(settings.tokens.max_ttl_secs));
    let host = settings.listen.ip();
    let secret = settings.jwt_secret.clone().expect("set above");
    let app = Application::build_with(settings, archive).await?;
    let base = format!("http://{host}:{}", app.port());
    let mut banner = vec![format!("tenant-plane listening on {base}")];
    if let Some(port) = app.gateway_port() {
        banner.push(format!(
            "PostgreSQL gateway on {host}:{port} (user: a tenant's slug, password: one of its API keys)"
        ));
    }
    if print_token {
        let claims = Claims::new("bootstrap", Role::SuperAdmin, None, None, token_ttl);
        let token = JwtKeys::hs256(&secret)?.sign(&claims)?;
        let valid = match token_ttl.as_secs() {
            secs if secs % 3600 == 0 => format!("{}h", secs / 3600),
            _ => humantime::format_duration(token_ttl).to_string(),
        };
        banner.push(format!("super_admin token (valid {valid}): {token}"));
        banner.push(format!(
            "try: curl -H \"Authorization: Bearer {token}\" {base}/v1/servers"
        ));
    } else {
        banner.push("super_admin token: printed at the first start; `tenant-plane token --role super_admin` (or `serve --print-token`) makes a new one".into());
        banner.push(format!("try: curl {base}/readyz"));
    }
    print_banner(&banner);
    let served = app.run_until_stopped().await;
    tracing::info!("HTTP server stopped");
    if let Some(mut cluster) = cluster {
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .context("embedded PostgreSQL shutdown panicked")??;
        tracing::info!("embedded PostgreSQL stopped");
    }
    served.context("HTTP server failed")
}

/// The start-up lines, on standard output. Whoever started the service may
/// have stopped reading it (a supervisor that only waited for the first
/// line): a write that fails is dropped, never a reason to stop serving.
fn print_banner(lines: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
    let _ = out.flush();
}

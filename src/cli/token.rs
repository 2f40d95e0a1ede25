//! `tenant-plane token`: print a signed access token. Issuing one is
//! audited (its subject, role, tenant and lifetime, never the token) when
//! the catalog can be reached; it works without one, with a warning.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::audit::{record_action_or_warn, Action};
use crate::auth::{Claims, Role};
use crate::config::Settings;
use crate::domain::TenantId;
use crate::embedded;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// super_admin, tenant_admin, subtenant_admin, agent or viewer.
    #[arg(long)]
    role: Role,
    /// The tenant the token belongs to (all roles but super_admin).
    #[arg(long)]
    tenant: Option<TenantId>,
    /// The subtenant, for subtenant-scoped users.
    #[arg(long)]
    subtenant: Option<TenantId>,
    /// The user id (`sub`).
    #[arg(long, default_value = "cli")]
    sub: String,
    /// Lifetime, e.g. `15m`, `1h`, `7d`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

pub async fn run(settings: &Settings, args: TokenArgs) -> anyhow::Result<()> {
    let secret = match &settings.jwt_secret {
        Some(secret) => secret.clone(),
        None => embedded::read_stored_secret(&settings.data_dir, "jwt_secret")?.context(
            "no JWT secret: set TENANT_PLANE_JWT_SECRET, or run `tenant-plane serve` once to generate one in the data directory",
        )?,
    };
    let max = Duration::from_secs(settings.tokens.max_ttl_secs);
    if args.ttl > max {
        anyhow::bail!(
            "--ttl {} is longer than tokens.max_ttl_secs allows ({}); raise TENANT_PLANE_TOKENS_MAX_TTL_SECS to make longer-lived tokens",
            humantime::format_duration(args.ttl),
            humantime::format_duration(max)
        );
    }
    let claims = Claims::new(
        args.sub.clone(),
        args.role,
        args.tenant,
        args.subtenant,
        args.ttl,
    );
    claims
        .check_shape()
        .map_err(|why| anyhow::anyhow!("cannot make this token: {why}"))?;
    let (keys, public) = crate::auth::keys_from_settings(settings, &secret)?;
    let token = match (&public, &settings.jwt_private_keys) {
        // With keys of its own, `token` signs with the newest it holds.
        (Some(public), Some(dir)) => {
            keys.sign_with(&claims, &crate::auth::newest_signing_key(public, dir)?)?
        }
        _ => keys.sign(&claims)?,
    };
    // Who may act as whom, for how long: never the token itself.
    let resource = format!(
        "tokens/{}?role={}&ttl_secs={}&expires={}",
        args.sub,
        args.role.as_str(),
        args.ttl.as_secs(),
        claims.exp
    );
    let action = Action {
        tenant: args.tenant,
        subtenant: args.subtenant,
        action: "tokens.issue",
        resource: &resource,
    };
    record_action_or_warn(settings, &action).await;
    println!("{token}");
    Ok(())
}

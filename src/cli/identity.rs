//! `tenant-plane identity-provider …`: a tenant's own identity provider,
//! by the same service commands as `/v1/tenants/{id}/identity-provider`.
//! `set` takes the API's JSON body from a file (`-` for standard input), so
//! the client secret never sits on a command line.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::auth::providers::spec::{ProviderInput, ProviderView};
use crate::config::Settings;
use crate::control_audit::Actor;
use crate::domain::TenantId;
use crate::embedded;
use crate::services::Services;

#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: IdentityCommand,
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Set a tenant's provider from a JSON file shaped as the API's body
    /// (issuer, audience, mappings, …); `-` reads standard input.
    Set {
        tenant: TenantId,
        #[arg(long)]
        from: PathBuf,
    },
    /// Show a tenant's provider (its own, or its root's).
    Show { tenant: TenantId },
    /// Remove a tenant's own provider: its tokens stop working.
    Remove { tenant: TenantId },
}

pub async fn run(mut settings: Settings, args: IdentityArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    let identity = &services.identity;
    let actor = Actor::cli();
    let view = match args.command {
        IdentityCommand::Set { tenant, from } => {
            let mut text = String::new();
            if from.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&from)?;
            }
            let input: ProviderInput = serde_json::from_str(&text)?;
            identity.set(&actor, tenant, input).await?
        }
        IdentityCommand::Show { tenant } => identity.show(tenant).await?,
        IdentityCommand::Remove { tenant } => {
            identity.remove(&actor, tenant).await?;
            if !args.json {
                println!("removed the identity provider of {tenant}");
            }
            return Ok(());
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print_view(&view);
    }
    Ok(())
}

fn print_view(view: &ProviderView) {
    let inherited = if view.inherited {
        " (inherited from its root)"
    } else {
        ""
    };
    println!("tenant    {}{inherited}", view.tenant_id);
    println!("issuer    {}", view.issuer);
    println!(
        "keys      {}{}",
        view.jwks_uri,
        if view.discovered { " (discovered)" } else { "" }
    );
    println!("audience  {}", view.audience);
    println!("user      claim `{}`", view.user_claim);
    println!("groups    claim `{}`", view.groups_claim);
    for m in &view.mappings {
        let role = serde_json::to_value(m.role).unwrap_or_default();
        let held = m
            .subtenant_id
            .map(|s| format!(" in subtenant {s}"))
            .unwrap_or_default();
        println!("  {} -> {}{held}", m.group, role.as_str().unwrap_or("?"));
    }
    if let Some(client) = &view.client_id {
        let secret = if view.client_secret_set {
            "with a secret"
        } else {
            "public (PKCE)"
        };
        println!("console   client `{client}`, {secret}");
    }
}

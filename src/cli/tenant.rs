//! `tenant-plane tenant …`: the tenant lifecycle from the command line, on the
//! same library code as the API. `--json` prints machine-readable output.

use clap::{Args, Subcommand};

use crate::catalog::TenantFilter;
use crate::config::Settings;
use crate::control_audit::Actor;
use crate::domain::{FirstAdmin, Slug, TenantId, TenantName, TenantStatus, Tier};
use crate::embedded;
use crate::services::Services;
use crate::tenant_config::TenantConfig;
use crate::tenants::{NewSubtenantInput, NewTenantInput, TenantView, Transition};

#[derive(Debug, Args)]
pub struct TenantArgs {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: TenantCommand,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant (with --parent, a subtenant).
    Create {
        #[arg(long, value_parser = parse_name)]
        name: TenantName,
        #[arg(long, value_parser = parse_slug)]
        slug: Slug,
        /// free, standard or enterprise.
        #[arg(long, default_value = "standard", value_parser = super::parse_tier)]
        tier: Tier,
        /// Settings as JSON (branding, features, integrations).
        #[arg(long)]
        settings: Option<String>,
        /// Make a subtenant of this tenant.
        #[arg(long)]
        parent: Option<TenantId>,
        /// The first admin's subject (with --admin-email): a `tenant_admin`
        /// API key is minted for them and printed this once.
        #[arg(long, requires = "admin_email", conflicts_with = "parent")]
        admin_subject: Option<String>,
        /// The first admin's e-mail address.
        #[arg(long, requires = "admin_subject")]
        admin_email: Option<String>,
    },
    /// List tenants.
    List {
        #[arg(long, value_parser = parse_status)]
        status: Option<TenantStatus>,
        #[arg(long)]
        parent: Option<TenantId>,
        /// Page size, 1 to 500 (as the API's `limit`).
        #[arg(long, default_value_t = 50, value_parser = |s: &str| crate::domain::parse_page_limit(s))]
        limit: u16,
        #[arg(long)]
        cursor: Option<TenantId>,
        /// Only tenants whose slug or name contains this, or whose id it is.
        #[arg(long)]
        search: Option<String>,
    },
    /// Show one tenant with its effective configuration.
    Show {
        id: TenantId,
    },
    Suspend {
        id: TenantId,
    },
    Resume {
        id: TenantId,
    },
    /// Soft delete; with --purge, drop the database and role.
    Delete {
        id: TenantId,
        #[arg(long)]
        purge: bool,
    },
    /// Undo a soft delete.
    Restore {
        id: TenantId,
    },
    /// Move a root tenant's database to another server.
    Move {
        id: TenantId,
        /// The target server's id (see `server list`).
        #[arg(long)]
        server: uuid::Uuid,
    },
}

fn parse_name(s: &str) -> Result<TenantName, String> {
    TenantName::parse(s).map_err(|e| e.to_string())
}

pub(super) fn parse_slug(s: &str) -> Result<Slug, String> {
    Slug::parse(s).map_err(|e| e.to_string())
}

fn parse_status(s: &str) -> Result<TenantStatus, String> {
    TenantStatus::parse(s).ok_or_else(|| format!("unknown status `{s}`"))
}

/// A state change, the API's command (a purge waits for its operation).
async fn transition(
    services: &Services,
    id: TenantId,
    transition: Transition,
) -> anyhow::Result<TenantView> {
    let lifecycle = &services.lifecycle;
    Ok(lifecycle
        .change_state(&Actor::cli(), id, transition)
        .await?)
}

pub async fn run(mut settings: Settings, args: TenantArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    let lifecycle = &services.lifecycle;
    let actor = Actor::cli();
    let views: Vec<TenantView> = match args.command {
        TenantCommand::Create {
            name,
            slug,
            tier,
            settings,
            parent,
            admin_subject,
            admin_email,
        } => {
            let config = match settings {
                Some(json) => TenantConfig::parse(serde_json::from_str(&json)?)?,
                None => TenantConfig::default(),
            };
            let view = match parent {
                Some(parent) => {
                    let input = NewSubtenantInput {
                        name,
                        slug,
                        settings: config,
                    };
                    lifecycle.create_subtenant(&actor, parent, input).await?
                }
                None => {
                    let input = NewTenantInput {
                        name,
                        slug,
                        tier,
                        settings: config,
                    };
                    let admin = match (admin_subject, admin_email) {
                        (Some(subject), Some(email)) => Some(FirstAdmin::parse(&subject, &email)?),
                        _ => None,
                    };
                    let made = services.onboarding.create(&actor, input, admin).await?;
                    if let Some(key) = &made.admin_key {
                        if args.json {
                            println!("{}", serde_json::to_string_pretty(&made)?);
                            return Ok(());
                        }
                        // The secret is shown here only.
                        eprintln!("first admin key (shown once): {}", key.record.name);
                        println!("{}", key.key);
                    }
                    made.tenant
                }
            };
            vec![view]
        }
        TenantCommand::List {
            status,
            parent,
            limit,
            cursor,
            search,
        } => {
            let page = lifecycle
                .list(TenantFilter {
                    status,
                    parent_id: parent,
                    after: cursor,
                    search,
                    limit: i64::from(limit),
                })
                .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            page.tenants
        }
        TenantCommand::Show { id } => vec![lifecycle.show(id).await?],
        TenantCommand::Suspend { id } => {
            vec![transition(&services, id, Transition::Suspend).await?]
        }
        TenantCommand::Resume { id } => vec![transition(&services, id, Transition::Resume).await?],
        TenantCommand::Restore { id } => {
            vec![transition(&services, id, Transition::Restore).await?]
        }
        TenantCommand::Move { id, server } => {
            let moved = services.placement.move_tenant(&actor, id, server);
            vec![moved.await?.wait().await?]
        }
        TenantCommand::Delete { id, purge } => {
            let t = if purge {
                Transition::Purge
            } else {
                Transition::Delete
            };
            vec![transition(&services, id, t).await?]
        }
    };
    if args.json {
        match views.as_slice() {
            [one] => println!("{}", serde_json::to_string_pretty(one)?),
            many => println!("{}", serde_json::to_string_pretty(many)?),
        }
    } else {
        println!(
            "{:<36}  {:<24}  {:<12}  {:<10}  DATABASE",
            "ID", "SLUG", "STATUS", "TIER"
        );
        for v in views {
            println!(
                "{:<36}  {:<24}  {:<12}  {:<10}  {}",
                v.id.to_string(),
                v.slug,
                v.status.as_str(),
                v.tier.as_str(),
                v.database.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}

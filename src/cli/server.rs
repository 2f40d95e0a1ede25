//! `tenant-plane server …`: register, list and drain database servers, and
//! name the pgBackRest archive of one its operator backs up.

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::SecretString;
use uuid::Uuid;

use crate::config::Settings;
use crate::control_audit::Actor;
use crate::domain::{ServerName, Tier};
use crate::embedded;
use crate::servers::NewServerInput;
use crate::services::Services;

use super::wal_archive::ArchiveArgs;

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ServerCommand,
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// Register a server (checked by connecting to it).
    Add {
        #[arg(long, value_parser = |s: &str| ServerName::parse(s).map_err(|e| e.to_string()))]
        name: ServerName,
        /// Admin DSN; prefer TENANT_PLANE_SERVER_DSN to keep it off the command line.
        #[arg(long, env = "TENANT_PLANE_SERVER_DSN", hide_env_values = true)]
        dsn: String,
        #[arg(long, default_value_t = 1000)]
        capacity: u32,
        #[arg(long)]
        connection_budget: Option<u32>,
        /// Place only these tiers here (repeatable).
        #[arg(long = "pin", value_parser = super::parse_tier)]
        pinned_tiers: Vec<Tier>,
        /// Register a server on another host whose sslmode does not verify
        /// its certificate (below verify-ca); refused without it.
        #[arg(long)]
        allow_unverified_tls: bool,
        /// The server's pgBackRest archive, when its operator backs it up.
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Tell tenant-plane how to read a server's pgBackRest archive (it is
    /// read once, here, before it is recorded), or forget it.
    WalArchive {
        id: Uuid,
        #[command(flatten)]
        archive: ArchiveArgs,
        /// Forget the archive (the repository is left as it is).
        #[arg(long, conflicts_with = "stanza")]
        remove: bool,
    },
    /// List servers with their tenant counts.
    List,
    /// Each server's measured load (tenants, storage, sessions, requests an
    /// hour) against its capacity, the busiest first: what placement weighs.
    Load,
    /// Set what a server can hold, as placement weighs it.
    Capacity {
        id: Uuid,
        /// Tenants.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        tenants: Option<u32>,
        /// Storage, in MiB.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        storage_mb: Option<u32>,
        /// Requests an hour.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        requests_per_hour: Option<u32>,
    },
    /// Mark a server draining and move every tenant off it.
    Drain { id: Uuid },
    /// Propose (--plan) or run (--apply) the moves that bring every server
    /// under a target utilisation, with the fewest bytes moved.
    Rebalance {
        /// Show the plan; nothing moves.
        #[arg(long, conflicts_with = "apply", required_unless_present = "apply")]
        plan: bool,
        /// Run the plan as one operation, with a progress bar.
        #[arg(long)]
        apply: bool,
        /// The utilisation every server should end under.
        #[arg(long, default_value_t = 0.8, value_parser = parse_target)]
        target: f64,
        /// Moves at once (with --apply).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
        parallel: u32,
    },
}

pub async fn run(mut settings: Settings, args: ServerArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    match args.command {
        ServerCommand::Add {
            name,
            dsn,
            capacity,
            connection_budget,
            pinned_tiers,
            allow_unverified_tls,
            archive,
        } => {
            // Checked before the server is registered.
            let archive = archive.into_archive()?;
            let to_i32 = |v: u32| i32::try_from(v.max(1)).unwrap_or(i32::MAX);
            let input = NewServerInput {
                name,
                dsn: SecretString::from(dsn),
                capacity: to_i32(capacity),
                connection_budget: connection_budget.map(to_i32),
                pinned_tiers,
                // The DSN's own `sslrootcert=<file>` names them here.
                ssl_root_cert: None,
                allow_unverified_tls,
            };
            let mut server = services.servers.register(&Actor::cli(), input).await?;
            if let Some(archive) = archive {
                server = services
                    .servers
                    .set_wal_archive(&Actor::cli(), server.id, &archive)
                    .await?;
            }
            print_servers(args.json, &[server])?;
        }
        ServerCommand::WalArchive {
            id,
            archive,
            remove,
        } => {
            let server = match (archive.into_archive()?, remove) {
                (Some(archive), false) => {
                    services
                        .servers
                        .set_wal_archive(&Actor::cli(), id, &archive)
                        .await?
                }
                (None, true) => {
                    services
                        .servers
                        .remove_wal_archive(&Actor::cli(), id)
                        .await?
                }
                _ => anyhow::bail!("name the archive (--stanza and its repository), or --remove"),
            };
            print_servers(args.json, &[server])?;
        }
        ServerCommand::List => {
            let servers = services.servers.list().await?;
            print_servers(args.json, &servers)?;
        }
        ServerCommand::Load => print_loads(args.json, &services.servers.loads().await?)?,
        ServerCommand::Rebalance {
            plan: _,
            apply,
            target,
            parallel,
        } => {
            let placement = &services.placement;
            let plan = placement.rebalance_plan(target).await?;
            print_plan(args.json && !apply, &plan)?;
            if apply && !plan.moves.is_empty() {
                let bar = ProgressBar::new(plan.moves.len() as u64);
                let shown = bar.clone();
                let launched = placement
                    .rebalance(
                        &Actor::cli(),
                        target,
                        parallel as usize,
                        std::sync::Arc::new(move |done, total| {
                            shown.set_length(total as u64);
                            shown.set_position(done as u64);
                        }),
                    )
                    .await?;
                let items = launched.wait().await?;
                bar.finish();
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&items)?);
                }
                let failed = items.iter().filter(|i| i.outcome == "failed").count();
                if failed > 0 {
                    anyhow::bail!("{failed} of {} moves failed", items.len());
                }
            }
        }
        ServerCommand::Capacity {
            id,
            tenants,
            storage_mb,
            requests_per_hour,
        } => {
            let patch = crate::servers::ServerPatch {
                capacity: tenants.map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
                storage_capacity_mb: storage_mb.map(i64::from),
                requests_per_hour_capacity: requests_per_hour.map(i64::from),
                ..Default::default()
            };
            let server = services.servers.update(&Actor::cli(), id, &patch).await?;
            print_servers(args.json, &[server])?;
        }
        ServerCommand::Drain { id } => {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} tenants moved  {elapsed}")
                    .expect("template"),
            );
            let shown = bar.clone();
            let actor = Actor::cli();
            let drain = services.placement.drain(
                &actor,
                id,
                std::sync::Arc::new(move |done, total| {
                    shown.set_length(total as u64);
                    shown.set_position(done as u64);
                }),
            );
            let items = drain.await?.wait().await?;
            bar.finish();
            let failed: Vec<_> = items.iter().filter(|i| i.error.is_some()).collect();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                println!(
                    "drained: {} moved, {} failed",
                    items.len() - failed.len(),
                    failed.len()
                );
                for f in &failed {
                    println!(
                        "  {} ({}): {}",
                        f.tenant_id,
                        f.slug,
                        f.error.as_deref().unwrap_or("")
                    );
                }
            }
            if !failed.is_empty() {
                anyhow::bail!("{} tenants are still on the server", failed.len());
            }
        }
    }
    Ok(())
}

fn parse_target(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        // The API's bounds.
        Ok(t) if (0.01..=1.0).contains(&t) => Ok(t),
        _ => Err("a utilisation from 0.01 to 1 (0.8 is 80 %)".into()),
    }
}

fn print_plan(json: bool, plan: &crate::tenants::RebalancePlan) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(plan)?);
        return Ok(());
    }
    println!(
        "{} moves, {} MiB to copy, every server under {:.0}%:",
        plan.moves.len(),
        plan.bytes / (1024 * 1024),
        plan.target * 100.0
    );
    for m in &plan.moves {
        println!(
            "  {}  {} -> {}  ({} MiB)",
            m.slug,
            m.from_name,
            m.to_name,
            m.bytes / (1024 * 1024)
        );
    }
    for s in &plan.servers {
        println!(
            "  {:<16} {:>5.1}% -> {:>5.1}%",
            s.name,
            s.before * 100.0,
            s.after * 100.0
        );
    }
    for u in &plan.unresolved {
        println!("  still over: {u}");
    }
    Ok(())
}

fn print_loads(json: bool, loads: &[crate::servers::ServerLoad]) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(loads)?);
        return Ok(());
    }
    let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    println!(
        "{:<16}  {:>11}  {:>9}  {:>14}  {:>12}  {:>9}  {:>15}",
        "NAME", "UTILISATION", "TENANTS", "STORAGE (MiB)", "CAP (MiB)", "SESSIONS", "REQUESTS/HOUR"
    );
    for l in loads {
        println!(
            "{:<16}  {:>10.1}%  {:>4}/{:<4}  {:>14}  {:>12}  {:>4}/{:<4}  {:>15}",
            l.name,
            l.utilisation * 100.0,
            l.tenants,
            l.capacity,
            // What placement weighs: the sample and the tenants placed since.
            show(
                l.storage_estimate_bytes
                    .or(l.storage_bytes)
                    .map(|b| b / (1024 * 1024))
            ),
            show(l.storage_capacity_mb),
            show(l.connections.map(i64::from)),
            show(l.max_connections.map(i64::from)),
            show(l.requests_per_hour),
        );
    }
    Ok(())
}

fn print_servers(json: bool, servers: &[crate::servers::DbServer]) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(servers)?);
        return Ok(());
    }
    println!(
        "{:<36}  {:<16}  {:<9}  {:>7}  {:>8}  {:<11}  ADDRESS",
        "ID", "NAME", "STATE", "TENANTS", "CAPACITY", "SSLMODE"
    );
    for s in servers {
        println!(
            "{:<36}  {:<16}  {:<9}  {:>7}  {:>8}  {:<11}  {}:{}",
            s.id.to_string(),
            s.name,
            s.state.as_str(),
            s.tenants,
            s.capacity,
            s.ssl_mode.as_str(),
            s.host,
            s.port
        );
        if let Some(warning) = crate::servers::tls_warning(s) {
            println!("  warning: {warning}");
        }
    }
    Ok(())
}

//! The command line. Every command calls the same library code as the API.
//!
//! Rule: `main.rs` holds no logic (it calls `cli::main`), and no command does
//! work of its own that the API does differently: each calls the library
//! function the API's handler calls.

mod audit;
mod backup;
mod doctor;
mod identity;
// `tenant-plane drift` (drift plumbing).
mod drift;
mod keys;
mod migrate;
mod migrate_lint;
// `migrate --revert RUN_ID` and `migrate --tenant ID --revert-to N`.
mod migrate_revert;
mod serve;
mod server;
mod tenant;
mod token;
mod usage;
mod wal_archive;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "tenant-plane",
    version,
    about = "Control plane for database-per-tenant PostgreSQL"
)]
pub struct Cli {
    /// TOML settings file, read after the defaults and before TENANT_PLANE_* variables.
    #[arg(long, global = true, value_name = "FILE", value_parser = crate::config::parse_absolute)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service. With no TENANT_PLANE_DATABASE_URL it starts a
    /// managed PostgreSQL under the data directory.
    Serve(serve::ServeArgs),
    /// Print an access token signed with the configured secret.
    Token(token::TokenArgs),
    /// Create, list, show, suspend, resume, delete or restore tenants.
    Tenant(tenant::TenantArgs),
    /// Find orphan databases, missing databases, stuck operations and quarantined databases.
    Doctor(doctor::DoctorArgs),
    /// Migrate one tenant, or every tenant, to the newest schema.
    Migrate(migrate::MigrateArgs),
    /// List tenants whose schema drifted from their version (--scan checks
    /// the fleet first, --tenant one tenant now); exits 1 when one has.
    Drift(drift::DriftArgs),
    /// A tenant's usage per hour or day (--tenant), or the fleet's top tenants.
    Usage(usage::UsageArgs),
    /// Write one tenant's backup archive (database, catalog records, manifest).
    Backup(backup::BackupArgs),
    /// Restore a backup archive, or a tenant as of a time, into the tenant or as a new one.
    Restore(backup::RestoreArgs),
    /// Register, list and drain database servers; name one's WAL archive.
    // Boxed: its archive arguments make it the largest variant by far.
    Server(Box<server::ServerArgs>),
    /// Re-seal the catalog's secrets under the newest master key.
    Keys(keys::KeysArgs),
    /// Set, show or remove a tenant's own identity provider (single sign-on).
    IdentityProvider(identity::IdentityArgs),
}

/// Parses the command line, loads settings, and runs the command.
pub fn main() -> ExitCode {
    #[cfg(feature = "failpoints")]
    let _failpoints = crate::failpoint::setup();
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tenant-plane: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenant-plane: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(settings, args).await,
            Command::Token(args) => {
                init_cli_logging(&settings);
                token::run(&settings, args).await
            }
            Command::Tenant(args) => {
                init_cli_logging(&settings);
                tenant::run(settings, args).await
            }
            Command::Migrate(args) => {
                init_cli_logging(&settings);
                migrate::run(settings, args).await
            }
            Command::Drift(args) => {
                init_cli_logging(&settings);
                drift::run(settings, args).await
            }
            Command::Usage(args) => {
                init_cli_logging(&settings);
                usage::run(settings, args).await
            }
            Command::Doctor(args) => {
                init_cli_logging(&settings);
                doctor::run(settings, args).await
            }
            Command::Backup(args) => {
                init_cli_logging(&settings);
                backup::backup(settings, args).await
            }
            Command::Restore(args) => {
                init_cli_logging(&settings);
                backup::restore(settings, args).await
            }
            Command::Server(args) => {
                init_cli_logging(&settings);
                server::run(settings, *args).await
            }
            Command::Keys(args) => {
                init_cli_logging(&settings);
                keys::run(settings, args).await
            }
            Command::IdentityProvider(args) => {
                init_cli_logging(&settings);
                identity::run(settings, args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenant-plane: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// CLI commands log warnings and errors only, unless RUST_LOG says otherwise.
fn init_cli_logging(settings: &Settings) {
    crate::telemetry::init(settings.log_format, "warn");
}

/// clap value parser for `--tier`.
fn parse_tier(s: &str) -> Result<crate::domain::Tier, String> {
    crate::domain::Tier::parse(s).ok_or_else(|| "expected free, standard or enterprise".into())
}

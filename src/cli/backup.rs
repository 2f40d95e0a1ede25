//! `tenant-plane backup` and `tenant-plane restore`: one tenant into the
//! backup location (or an archive file) and back, on the same library code
//! and operations as the service.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::audit::{record_action_or_warn, Action};
use crate::backup::read_archive_in;
use crate::config::Settings;
use crate::control_audit::Actor;
use crate::domain::{Slug, TenantId};
use crate::embedded;
use crate::services::Services;
use crate::tenants::RestoreTarget;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The root tenant to back up: into the backup location, or to --out.
    #[arg(
        long,
        required_unless_present_any = ["all", "print_age_identity"],
        conflicts_with = "all"
    )]
    tenant: Option<TenantId>,
    /// Write the archive to this file instead (replaced if it exists).
    #[arg(long, value_parser = crate::config::parse_absolute)]
    out: Option<PathBuf>,
    /// Back up every root tenant (not purged): into the backup location,
    /// or into --dir, one archive each.
    #[arg(long)]
    all: bool,
    /// With --all: archives go to DIR/<tenant id>/<UTC time>.tpbackup.
    #[arg(long, value_parser = crate::config::parse_absolute)]
    dir: Option<PathBuf>,
    /// Print the age identity that decrypts this installation's backups
    /// (derived from the master key), for `age -d -i`, and exit.
    #[arg(long, conflicts_with_all = ["tenant", "all"])]
    print_age_identity: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive file `backup --out` wrote.
    #[arg(long, value_parser = crate::config::parse_absolute, required_unless_present_any = ["backup", "at"], conflicts_with_all = ["backup", "at"])]
    file: Option<PathBuf>,
    /// A backup in the backup location, by its id (`GET /v1/tenants/{id}/backups`).
    #[arg(long, conflicts_with = "at")]
    backup: Option<uuid::Uuid>,
    /// Restore the tenant as it was at this time (RFC 3339), from its
    /// server's WAL archive (`GET /v1/tenants/{id}/recovery-window`).
    #[arg(long, requires = "tenant", value_parser = parse_time)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// The tenant to restore to a time (with --at).
    #[arg(long, requires = "at")]
    tenant: Option<TenantId>,
    /// Restore as a new tenant (a clone) instead of into the original.
    #[arg(long, requires = "slug")]
    as_new: bool,
    /// The new tenant's slug (with --as-new).
    #[arg(long, value_parser = super::tenant::parse_slug, requires = "as_new")]
    slug: Option<Slug>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn backup(mut settings: Settings, args: BackupArgs) -> anyhow::Result<()> {
    if args.print_age_identity {
        return print_age_identity(settings).await;
    }
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    if let Some(tenant) = args.tenant {
        return match &args.out {
            Some(out) => backup_one(&services, tenant, out).await,
            None => backup_to_location(&services, tenant).await,
        };
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut failed = 0;
    for server in services.catalog.list_servers().await? {
        for tenant in services.catalog.root_tenants_on(server.id).await? {
            let done = match &args.dir {
                Some(dir) => {
                    let tenant_dir = dir.join(tenant.id.to_string());
                    std::fs::create_dir_all(&tenant_dir)
                        .with_context(|| format!("creating {}", tenant_dir.display()))?;
                    let out = tenant_dir.join(format!("{stamp}.tpbackup"));
                    backup_one(&services, tenant.id, &out).await
                }
                None => backup_to_location(&services, tenant.id).await,
            };
            if let Err(e) = done {
                failed += 1;
                eprintln!(
                    "tenant-plane: backing up {} ({}) failed: {e:#}",
                    tenant.id, tenant.slug
                );
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} tenant backups failed");
    }
    Ok(())
}

/// Prints the age identity from the master key alone: with the catalog
/// lost, it is what decrypts the archives. It is audited when the catalog
/// can be reached, and says so on standard error when it cannot.
async fn print_age_identity(settings: Settings) -> anyhow::Result<()> {
    let hex = match &settings.master_key {
        Some(key) => key.clone(),
        None => embedded::read_stored_secret(&settings.data_dir, "master_key")?.context(
            "no master key: set TENANT_PLANE_MASTER_KEY (or TENANT_PLANE_MASTER_KEY_FILE)",
        )?,
    };
    let identity =
        crate::backup::identity_string_from_hex(&hex).context("TENANT_PLANE_MASTER_KEY")?;
    let action = Action {
        tenant: None,
        subtenant: None,
        action: "backup.print_age_identity",
        resource: "backups/age_identity",
    };
    record_action_or_warn(&settings, &action).await;
    println!("{}", secrecy::ExposeSecret::expose_secret(&identity));
    Ok(())
}

/// A backup into the backup location, as the API takes one (an operation).
async fn backup_to_location(services: &Services, tenant: TenantId) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let taken = services.backups.take(&Actor::cli(), tenant).await?;
    let record = taken.wait().await?;
    println!(
        "backed up tenant {} at schema version {} to {} ({} bytes, sha256 {}, {:.1} s); backup id {}",
        record.tenant_id,
        record.schema_version,
        record.location,
        record.bytes,
        record.sha256,
        started.elapsed().as_secs_f64(),
        record.id
    );
    Ok(())
}

async fn backup_one(
    services: &Services,
    tenant: TenantId,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let manifest = services.tenants.backup(tenant, out).await?;
    let bytes: u64 = manifest.parts.values().map(|p| p.bytes).sum();
    println!(
        "backed up tenant {} ({}) at schema version {} to {} ({} bytes, {:.1} s)",
        manifest.tenant_id,
        manifest.slug,
        manifest.schema_version,
        out.display(),
        bytes,
        started.elapsed().as_secs_f64()
    );
    for (name, part) in &manifest.parts {
        println!("  {name}  sha256 {}  {} bytes", part.sha256, part.bytes);
    }
    Ok(())
}

pub async fn restore(mut settings: Settings, args: RestoreArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    let target = match args.slug.clone() {
        Some(slug) if args.as_new => RestoreTarget::AsNew { slug },
        _ => RestoreTarget::SameTenant,
    };
    let (source, report) = match (&args.file, args.backup) {
        (Some(file), _) => (
            file.display().to_string(),
            restore_file(&services, file, target).await?,
        ),
        (None, Some(backup)) => (
            format!("backup {backup}"),
            restore_stored(&services, backup, target).await?,
        ),
        (None, None) => match (args.tenant, args.at) {
            (Some(tenant), Some(at)) => {
                let backups = &services.backups;
                let launched = backups
                    .restore_to_time(&Actor::cli(), tenant, at, target)
                    .await?;
                (format!("tenant {tenant} as of {}", at.to_rfc3339()), launched.wait().await?)
            }
            _ => anyhow::bail!("name an archive (--file), a backup (--backup), or a tenant and a time (--tenant, --at)"),
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "restored {} into tenant {} ({}), status {}, schema version {} (archive: {})",
        source,
        report.tenant.id,
        report.tenant.slug,
        report.tenant.status.as_str(),
        report.schema_version,
        report.from_schema_version
    );
    for renamed in &report.subtenants_renamed {
        println!("subtenant {} restored as {}", renamed.from, renamed.to);
    }
    if !report.domains_skipped.is_empty() {
        println!(
            "custom domains not restored: {}",
            report.domains_skipped.join(", ")
        );
    }
    Ok(())
}

fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-12-05T14:02:00Z"))
}

/// Restores an archive file: verified before anything is touched.
async fn restore_file(
    services: &Services,
    file: &std::path::Path,
    target: RestoreTarget,
) -> anyhow::Result<crate::tenants::RestoreReport> {
    let key = services.tenants.master_key().clone();
    let path = file.to_path_buf();
    let scratch = services.tenants.scratch_dir()?.to_path_buf();
    let archive = tokio::task::spawn_blocking(move || read_archive_in(&path, &key, &scratch))
        .await?
        .with_context(|| format!("refusing {}", file.display()))?;
    let backups = &services.backups;
    Ok(backups
        .restore_archive(&Actor::cli(), &archive, target)
        .await?)
}

/// Restores a backup from the backup location, as the API does (an
/// operation that reads and verifies it first).
async fn restore_stored(
    services: &Services,
    backup: uuid::Uuid,
    target: RestoreTarget,
) -> anyhow::Result<crate::tenants::RestoreReport> {
    let record = services
        .catalog
        .find_backup(backup)
        .await?
        .with_context(|| format!("no backup {backup} is recorded in the catalog"))?;
    let restore = async {
        let backups = &services.backups;
        let launched = backups
            .restore(&Actor::cli(), record.tenant_id, backup, target)
            .await?;
        launched.wait().await
    };
    restore
        .await
        .with_context(|| format!("refusing backup {backup}"))
}

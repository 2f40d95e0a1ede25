//! `tenant-plane backup` and `tenant-plane restore`: one tenant to one
//! archive file and back, on the same library code as the service.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::audit::audited;
use crate::backup::read_archive;
use crate::config::Settings;
use crate::domain::{Slug, TenantId};
use crate::embedded;
use crate::services::Services;
use crate::tenants::RestoreTarget;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The root tenant to back up.
    #[arg(
        long,
        required_unless_present = "all",
        conflicts_with = "all",
        requires = "out"
    )]
    tenant: Option<TenantId>,
    /// The archive to write (replaced if it exists).
    #[arg(long, value_parser = crate::config::parse_absolute)]
    out: Option<PathBuf>,
    /// Back up every root tenant (not purged) into --dir, one archive each.
    #[arg(long, requires = "dir")]
    all: bool,
    /// With --all: archives go to DIR/<tenant id>/<UTC time>.tpbackup.
    #[arg(long, value_parser = crate::config::parse_absolute)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive `backup` wrote.
    #[arg(long, value_parser = crate::config::parse_absolute)]
    file: PathBuf,
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
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    if let (Some(tenant), Some(out)) = (args.tenant, &args.out) {
        return backup_one(&services, tenant, out).await;
    }
    let dir = args.dir.context("--all needs --dir")?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut failed = 0;
    for server in services.catalog.list_servers().await? {
        for tenant in services.catalog.root_tenants_on(server.id).await? {
            let tenant_dir = dir.join(tenant.id.to_string());
            std::fs::create_dir_all(&tenant_dir)
                .with_context(|| format!("creating {}", tenant_dir.display()))?;
            let out = tenant_dir.join(format!("{stamp}.tpbackup"));
            if let Err(e) = backup_one(&services, tenant.id, &out).await {
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
    // Verified before anything is touched.
    let key = services.tenants.master_key().clone();
    let file = args.file.clone();
    let archive = tokio::task::spawn_blocking(move || read_archive(&file, &key))
        .await?
        .with_context(|| format!("refusing {}", args.file.display()))?;
    let target = match args.slug {
        Some(slug) if args.as_new => RestoreTarget::AsNew { slug },
        _ => RestoreTarget::SameTenant,
    };
    let resource = format!("tenants/{}", archive.manifest.tenant_id);
    let restore = services.tenants.restore_backup(&archive, target);
    let report = audited(
        &services,
        Some(archive.manifest.tenant_id),
        "tenants.restore_backup",
        &resource,
        restore,
        |r| Some((Some(r.tenant.id), format!("tenants/{}", r.tenant.id))),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "restored {} into tenant {} ({}), status {}, schema version {} (archive: {})",
        args.file.display(),
        report.tenant.id,
        report.tenant.slug,
        report.tenant.status.as_str(),
        report.schema_version,
        report.from_schema_version
    );
    if !report.domains_skipped.is_empty() {
        println!(
            "custom domains not restored: {}",
            report.domains_skipped.join(", ")
        );
    }
    Ok(())
}

//! `tenant-plane doctor [--fix]`: orphan databases and roles, missing
//! databases, and stuck operations; exits non-zero when something is wrong
//! and was not fixed.

use clap::Args;

use super::audit::audited;
use crate::config::Settings;
use crate::embedded;
use crate::services::Services;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Repair what was found: drop orphans, mark tenants with a missing
    /// database failed, finish interrupted operations.
    #[arg(long)]
    fix: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(mut settings: Settings, args: DoctorArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    let doctor = services.reconciler.doctor(args.fix);
    let report = if args.fix {
        audited(&services, None, "doctor.fix", "servers", doctor, |_| None).await?
    } else {
        doctor.await?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for o in &report.orphan_databases {
            println!("orphan database  {} on {}", o.name, o.server);
        }
        for o in &report.orphan_roles {
            println!("orphan role      {} on {}", o.name, o.server);
        }
        for m in &report.missing_databases {
            println!(
                "missing database {} of tenant {} ({}) on {}",
                m.database, m.tenant_id, m.slug, m.server
            );
        }
        for op in &report.stuck_operations {
            println!(
                "stuck operation  {} {} on tenant {:?} since {}",
                op.id, op.kind, op.tenant_id, op.updated_at
            );
        }
        for line in &report.fixed {
            println!("fixed: {line}");
        }
        if report.is_healthy() {
            println!("no problems found");
        }
    }
    if !report.is_healthy() && !args.fix {
        anyhow::bail!("doctor found problems; run with --fix to repair them");
    }
    Ok(())
}

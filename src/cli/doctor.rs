//! `tenant-plane doctor [--fix [--confirm]]`: orphan databases and roles,
//! missing databases, stuck operations and quarantined databases; exits
//! non-zero when something is wrong and was not fixed, or a repair failed
//! (after the others ran and the report is printed). Text mode prints the
//! plan (without `--fix`, as what `--fix` would do), what was fixed,
//! skipped and failed, hints, and the quarantine list.

use clap::Args;

use crate::config::Settings;
use crate::control_audit::Actor;
use crate::embedded;
use crate::reconciler::{DoctorMode, DoctorReport};
use crate::services::Services;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Repair what was found: quarantine orphan databases (renamed and
    /// closed, never dropped), drop orphan roles, mark tenants whose
    /// database is missing (with no copy on any server) failed, finish
    /// interrupted operations. Without it, nothing is changed.
    #[arg(long)]
    fix: bool,
    /// With --fix: also drop the quarantined databases older than
    /// `tenants.retention_days` (never one whose tenant is in the catalog
    /// without its live database). Without it, --fix only lists them.
    #[arg(long, requires = "fix")]
    confirm: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(mut settings: Settings, args: DoctorArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    let mode = match (args.fix, args.confirm) {
        (false, _) => DoctorMode::Check,
        (true, false) => DoctorMode::Fix,
        (true, true) => DoctorMode::FixAndPurge,
    };
    let report = services.reconciler.doctor_as(&Actor::cli(), mode).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report, args.fix);
    }
    // Everything that was fixed is printed above; a failure still fails
    // the command.
    if !report.failed.is_empty() {
        anyhow::bail!(
            "doctor could not finish {} of its steps (the `failed` lines)",
            report.failed.len()
        );
    }
    if !report.is_healthy() && !args.fix {
        anyhow::bail!("doctor found problems; run with --fix to repair them");
    }
    Ok(())
}

fn print_text(report: &DoctorReport, fix: bool) {
    for line in &report.planned {
        if fix {
            println!("planned: {line}");
        } else {
            // Nothing is done without --fix: say so on each line.
            println!("--fix would {line}");
        }
    }
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
    for o in &report.in_use {
        println!(
            "in use           {} on {} (an operation runs)",
            o.name, o.server
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
    for line in &report.skipped {
        println!("skipped: {line}");
    }
    for line in &report.hints {
        println!("hint: {line}");
    }
    for line in &report.failed {
        println!("failed: {line}");
    }
    for q in &report.quarantined {
        let since = q.since.map_or_else(
            || "an unrecorded time".to_string(),
            |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        let due = if q.purge_due {
            ", past its retention"
        } else {
            ""
        };
        println!(
            "quarantined      {} on {} of tenant {} since {since}{due}",
            q.name, q.server, q.tenant_id
        );
    }
    if report.is_healthy() {
        println!("no problems found");
    }
}

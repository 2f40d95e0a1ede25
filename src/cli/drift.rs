//! `tenant-plane drift`: the tenants whose schema drifted from their
//! recorded version, with each object's diff; `--scan` checks the whole
//! fleet first (a `drift_scan` operation, with a progress bar), `--tenant`
//! checks one tenant now. Both record what they find, as the API's do.
//!
//! Exit status: 0 when no tenant shown is drifted, 1 when one is (or on an
//! error), so a script or a CI step can gate on it.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::control_audit::Actor;
use crate::domain::TenantId;
use crate::drift::{DriftState, ScanProgress, TenantDrift};
use crate::embedded;
use crate::services::Services;

#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 when no tenant is drifted, 1 when one is or on an error.")]
pub struct DriftArgs {
    /// Check this tenant now (recording it), and show its diff.
    #[arg(long, conflicts_with = "scan")]
    tenant: Option<TenantId>,
    /// Scan every root tenant first (at most 2 sessions per server), then list.
    #[arg(long)]
    scan: bool,
    /// Print JSON: the tenant's drift (--tenant) or the fleet's report.
    #[arg(long)]
    json: bool,
}

pub async fn run(mut settings: Settings, args: DriftArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    let drift = &services.drift;
    let actor = Actor::cli();
    if let Some(tenant) = args.tenant {
        let found = drift.check_tenant(&actor, tenant).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&found)?);
        } else {
            print_tenant(&found);
        }
        return verdict(usize::from(found.state == DriftState::Drifted));
    }
    if args.scan {
        let bar = progress_bar(args.json);
        let on_progress = {
            let bar = bar.clone();
            Arc::new(move |p: ScanProgress| {
                bar.set_length(u64::try_from(p.total).unwrap_or(0));
                bar.set_position(u64::try_from(p.done).unwrap_or(0));
            })
        };
        let launched = drift.start(&actor, on_progress).await?;
        if !args.json {
            println!("drift scan {}", launched.scan.id);
        }
        let scan = launched.wait().await?;
        bar.finish_and_clear();
        if !args.json {
            println!(
                "scan {}: {}, {} tenants: {} in sync, {} drifted, {} unknown",
                scan.id, scan.state, scan.total, scan.in_sync, scan.drifted, scan.unknown
            );
        }
    }
    let report = drift.report().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let c = &report.counts;
        println!(
            "tenants: {} in sync, {} drifted, {} unknown",
            c.in_sync, c.drifted, c.unknown
        );
        match &report.last_scan {
            Some(s) => println!("last scan {}: {} (started {})", s.id, s.state, s.started_at),
            None => println!("no scan yet: `tenant-plane drift --scan`"),
        }
        report.drifted.iter().for_each(print_tenant);
    }
    verdict(report.drifted.len())
}

/// Non-zero exit when `drifted` tenants were shown.
fn verdict(drifted: usize) -> anyhow::Result<()> {
    if drifted > 0 {
        anyhow::bail!("{drifted} tenant(s) drifted from their schema version");
    }
    Ok(())
}

fn print_tenant(t: &TenantDrift) {
    let at = t
        .checked_at
        .map_or("never".to_string(), |at| at.to_rfc3339());
    println!(
        "{} ({}): {} at version {} (checked {at})",
        t.slug,
        t.tenant_id,
        t.state.as_str(),
        t.schema_version
    );
    if let Some(reason) = &t.reason {
        println!("  {reason}");
    }
    for d in &t.diff {
        let change = serde_json::to_value(d.change).unwrap_or_default();
        let change = change.as_str().unwrap_or("?");
        println!("  {change} {} {}", d.kind.as_str(), d.name);
        if let Some(ddl) = &d.ddl {
            ddl.lines().for_each(|line| println!("    {line}"));
        }
    }
}

fn progress_bar(hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} tenants  eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

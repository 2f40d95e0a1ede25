//! `tenant-plane migrate`: one tenant (`--tenant`), the fleet (`--all`), or a
//! resumed run (`--resume`), or a lint of the pending migrations (`--lint`). A fleet run shows a progress bar, then a summary,
//! and exits non-zero when any tenant failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::config::Settings;
use crate::control_audit::Actor;
use crate::domain::{TenantId, Tier};
use crate::embedded;
use crate::fleet::{FleetOptions, Progress, RunSummary};
use crate::services::Services;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["tenant", "all", "resume", "lint", "revert"])))]
pub struct MigrateArgs {
    /// Migrate one tenant.
    #[arg(long)]
    tenant: Option<TenantId>,
    /// Migrate every tenant (the template first).
    #[arg(long)]
    all: bool,
    /// Resume a fleet run: retry its failed and unfinished tenants only.
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<Uuid>,
    /// Lint the pending migrations (above the lowest tenant version, up to
    /// --target) and exit non-zero on an error-level finding.
    #[arg(long)]
    lint: bool,
    /// Revert a fleet run: take the tenants it moved forward back to their
    /// pre-run versions with the down migrations (migrate_revert.rs).
    #[arg(long, value_name = "RUN_ID")]
    revert: Option<Uuid>,
    /// With --tenant: revert it down to this version instead of migrating.
    #[arg(long, value_name = "N", requires = "tenant")]
    revert_to: Option<i32>,
    /// With --revert or --revert-to: run down steps that lose data (a
    /// dropped table or column).
    #[arg(long)]
    accept_data_loss: bool,
    /// With --all: start despite the Error lint findings of this rule
    /// (repeat for each rule).
    #[arg(long, value_name = "RULE", requires = "all")]
    acknowledge: Vec<String>,
    /// Migrate up to this version instead of the newest.
    #[arg(long)]
    target: Option<i32>,
    /// With --tenant: show what would run, and run nothing.
    #[arg(long, requires = "tenant")]
    dry_run: bool,
    /// Tenants migrated at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Tenants migrated first, on their own; the rest wait for them.
    #[arg(long, default_value_t = 1)]
    canary: usize,
    /// Stop the run (leaving the rest pending) once more tenants than this fail.
    #[arg(long, default_value_t = 0)]
    max_failures: usize,
    /// Open every tenant database, even those the catalog records as current.
    #[arg(long)]
    verify: bool,
    /// Migrate tenants recorded as drifted too (`tenant-plane drift`);
    /// otherwise a fleet run skips them and --tenant refuses one.
    #[arg(long)]
    allow_drift: bool,
    /// Only tenants of this tier.
    #[arg(long, value_parser = super::parse_tier)]
    tier: Option<Tier>,
    #[arg(long)]
    json: bool,
}

pub async fn run(mut settings: Settings, args: MigrateArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    if let (Some(tenant), Some(target)) = (args.tenant, args.revert_to) {
        let lifecycle = &services.lifecycle;
        return super::migrate_revert::one(
            lifecycle,
            tenant,
            target,
            args.accept_data_loss,
            args.json,
        )
        .await;
    }
    if let Some(run) = args.revert {
        let (accept, concurrency) = (args.accept_data_loss, args.concurrency);
        return super::migrate_revert::run(&services.fleet, run, accept, concurrency, args.json)
            .await;
    }
    if let Some(tenant) = args.tenant {
        let lifecycle = &services.lifecycle;
        let actor = Actor::cli();
        let report = lifecycle
            .migrate(&actor, tenant, args.target, args.dry_run, args.allow_drift)
            .await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if args.dry_run {
            println!("tenant {} is at version {}", tenant, report.from_version);
            for m in &report.pending {
                println!("would apply V{}__{}", m.version, m.name);
            }
        } else {
            println!(
                "tenant {}: version {} -> {} ({} applied)",
                tenant, report.from_version, report.to_version, report.applied
            );
        }
        return Ok(());
    }
    let fleet = &services.fleet;
    if args.lint {
        return super::migrate_lint::run(fleet, args.target, args.json).await;
    }
    let bar = progress_bar(args.json);
    let started = Instant::now();
    let on_progress = {
        let bar = bar.clone();
        Arc::new(move |p: Progress| {
            bar.set_length(u64::try_from(p.total).unwrap_or(0));
            bar.set_position(u64::try_from(p.succeeded + p.failed).unwrap_or(0));
            bar.set_message(format!("{} ok, {} failed", p.succeeded, p.failed));
        })
    };
    let actor = Actor::cli();
    let launched = match args.resume {
        Some(run) => fleet.resume(&actor, run, true, on_progress).await?,
        None => {
            let options = FleetOptions {
                concurrency: args.concurrency,
                canary: args.canary,
                max_failures: args.max_failures,
                tier: args.tier,
                target: args.target,
                verify: args.verify,
                acknowledge: args.acknowledge,
                allow_drift: args.allow_drift,
            };
            fleet.start_run(&actor, &options, on_progress).await?
        }
    };
    if !args.json {
        let run = &launched.run;
        println!("migration run {} to version {}", run.id, run.target_version);
    }
    let summary = launched.wait().await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary, started.elapsed());
    }
    // The state, not only the counts: a catalog failure can leave a
    // tenant's end unrecorded with nothing pending.
    let run = &summary.run;
    if run.state != "succeeded" || summary.counts.failed > 0 || summary.counts.pending > 0 {
        anyhow::bail!(
            "the run ended {}{}: {} tenant(s) failed and {} left pending; fix them, then `tenant-plane migrate --resume {}`",
            run.state,
            run.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
            summary.counts.failed,
            summary.counts.pending,
            run.id
        );
    }
    Ok(())
}

pub(super) fn progress_bar(hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} tenants  {msg}  eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_summary(summary: &RunSummary, elapsed: Duration) {
    let c = &summary.counts;
    println!("run {}: {}", summary.run.id, summary.run.state);
    println!("{:<10} {:>8}", "state", "tenants");
    for (name, n) in [
        ("succeeded", c.succeeded),
        ("skipped", c.skipped),
        ("failed", c.failed),
        ("pending", c.pending),
        ("running", c.running),
        ("total", c.total),
    ] {
        println!("{name:<10} {n:>8}");
    }
    let done = (c.succeeded + c.skipped + c.failed).max(1) as f64;
    println!(
        "took {:.1}s ({:.1} ms per tenant)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / done
    );
    for item in &summary.failures {
        println!(
            "failed {}: {}",
            item.tenant_id,
            item.error.as_deref().unwrap_or("?")
        );
    }
}

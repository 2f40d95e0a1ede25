//! `tenant-plane migrate --revert RUN_ID [--accept-data-loss]`: a fleet
//! run's revert, with a progress bar and a summary (every tenant not
//! reverted, with its reason); and `migrate --tenant ID --revert-to N`, one
//! tenant's. Both exit non-zero when a tenant failed.

use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use crate::control_audit::Actor;
use crate::domain::TenantId;
use crate::fleet::{Fleet, Progress, RevertOptions, RevertSummary};
use crate::tenants::Lifecycle;

/// One tenant's revert.
pub(super) async fn one(
    lifecycle: &Lifecycle,
    tenant: TenantId,
    target: i32,
    accept_data_loss: bool,
    json: bool,
) -> anyhow::Result<()> {
    let report = lifecycle
        .revert(&Actor::cli(), tenant, target, accept_data_loss)
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "tenant {}: version {} -> {} ({} reverted)",
            tenant, report.from_version, report.to_version, report.reverted
        );
    }
    Ok(())
}

/// A run's revert, to its end.
pub(super) async fn run(
    fleet: &Fleet,
    run: Uuid,
    accept_data_loss: bool,
    concurrency: usize,
    json: bool,
) -> anyhow::Result<()> {
    let bar = super::migrate::progress_bar(json);
    let started = Instant::now();
    let on_progress = {
        let bar = bar.clone();
        Arc::new(move |p: Progress| {
            bar.set_length(u64::try_from(p.total).unwrap_or(0));
            bar.set_position(u64::try_from(p.succeeded + p.failed).unwrap_or(0));
            bar.set_message(format!("{} done, {} failed", p.succeeded, p.failed));
        })
    };
    let options = RevertOptions {
        accept_data_loss,
        concurrency,
    };
    let launched = fleet
        .revert_run(&Actor::cli(), run, &options, on_progress)
        .await?;
    if !launched.began() {
        bar.finish_and_clear();
        anyhow::bail!(
            "revert {} of run {run} is under way (operation {}); follow it, or let the service take it over if its runner died",
            launched.revert.id,
            launched.op
        );
    }
    if !json {
        println!("revert {} of migration run {run}", launched.revert.id);
    }
    let summary = launched.wait().await?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary, started.elapsed());
    }
    // The state, not only the counts: a catalog failure can leave a
    // tenant's end unrecorded with nothing pending.
    let revert = &summary.revert;
    if revert.state != "succeeded" || summary.counts.failed > 0 || summary.counts.pending > 0 {
        anyhow::bail!(
            "the revert ended {}{}: {} tenant(s) failed and {} left pending; fix them, then `tenant-plane migrate --revert {run}` again",
            revert.state,
            revert.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
            summary.counts.failed,
            summary.counts.pending,
        );
    }
    Ok(())
}

fn print_summary(summary: &RevertSummary, elapsed: std::time::Duration) {
    let c = &summary.counts;
    println!("revert {}: {}", summary.revert.id, summary.revert.state);
    println!("{:<10} {:>8}", "state", "tenants");
    for (name, n) in [
        ("reverted", c.succeeded),
        ("skipped", c.skipped),
        ("failed", c.failed),
        ("pending", c.pending),
        ("total", c.total),
    ] {
        println!("{name:<10} {n:>8}");
    }
    println!("took {:.1}s", elapsed.as_secs_f64());
    for item in summary.items.iter().filter(|i| i.state != "succeeded") {
        println!(
            "{} {}: {}",
            item.state,
            item.tenant_id,
            item.reason.as_deref().unwrap_or("-")
        );
    }
}

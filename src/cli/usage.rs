//! `tenant-plane usage`: one tenant's usage per hour or day (`--tenant`),
//! or the fleet's top tenants by a metric; `--sample` samples every tenant
//! database first, as the service does every `usage.sample_secs`.

use chrono::{DateTime, Duration, Utc};
use clap::{Args, ValueEnum};

use crate::config::Settings;
use crate::domain::TenantId;
use crate::embedded;
use crate::services::Services;
use crate::usage::{Granularity, UsageMetric};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Metric {
    Requests,
    StatementMs,
    RowsRead,
    RowsWritten,
    ConnectionMs,
    StorageBytes,
    BackupBytes,
}

impl From<Metric> for UsageMetric {
    fn from(m: Metric) -> Self {
        match m {
            Metric::Requests => Self::Requests,
            Metric::StatementMs => Self::StatementMs,
            Metric::RowsRead => Self::RowsRead,
            Metric::RowsWritten => Self::RowsWritten,
            Metric::ConnectionMs => Self::ConnectionMs,
            Metric::StorageBytes => Self::StorageBytes,
            Metric::BackupBytes => Self::BackupBytes,
        }
    }
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// This tenant's usage; without it, the fleet's top tenants.
    #[arg(long)]
    tenant: Option<TenantId>,
    /// Days instead of hours (with --tenant).
    #[arg(long)]
    daily: bool,
    /// The range's start (RFC 3339); default: a day (hours) or 30 days
    /// (days) back, or this month's start (top).
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// The range's end, excluded (RFC 3339); default: now.
    #[arg(long)]
    to: Option<DateTime<Utc>>,
    /// What the top tenants are ranked by.
    #[arg(long, value_enum, default_value = "requests")]
    metric: Metric,
    /// How many top tenants.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=500))]
    limit: i64,
    /// Sample every tenant database's size and counters first.
    #[arg(long)]
    sample: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(mut settings: Settings, args: UsageArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    let usage = &services.usage;
    if args.sample {
        let n = usage.sample().await?;
        if !args.json {
            println!("sampled {n} tenant databases");
        }
    }
    let to = args.to.unwrap_or_else(Utc::now);
    if let Some(tenant) = args.tenant {
        let granularity = if args.daily {
            Granularity::Day
        } else {
            Granularity::Hour
        };
        let from = args.from.unwrap_or(match granularity {
            Granularity::Hour => to - Duration::days(1),
            Granularity::Day => to - Duration::days(30),
        });
        let points = usage.tenant_usage(tenant, from, to, granularity).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&points)?);
            return Ok(());
        }
        for q in usage.quotas(tenant).await? {
            let percent = if q.limit > 0 {
                q.used as f64 * 100.0 / q.limit as f64
            } else {
                0.0
            };
            println!(
                "quota {}: {} of {} ({percent:.1}%){}",
                q.quota.as_str(),
                q.used,
                q.limit,
                if q.exceeded { ", writes refused" } else { "" }
            );
        }
        println!("start                 requests(data/control)  statement_ms  rows_read  rows_written  storage_bytes");
        for p in points {
            println!(
                "{}  {:>10}/{:<10}  {:>12}  {:>9}  {:>12}  {:>13}",
                p.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                p.requests_data,
                p.requests_control,
                p.statement_ms,
                p.rows_read,
                p.rows_written,
                p.storage_bytes
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "-".into()),
            );
        }
        return Ok(());
    }
    let from = args.from.unwrap_or_else(|| {
        crate::usage::month_of(to)
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
    });
    let top = usage.top(args.metric.into(), from, to, args.limit).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&top)?);
        return Ok(());
    }
    for t in top {
        println!("{:>16}  {}  {}", t.value, t.tenant_id, t.slug);
    }
    Ok(())
}

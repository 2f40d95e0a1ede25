//! The router bench's load generator: concurrent clients sending
//! `GET /v1/agents/{id}`, uniformly to one tenant or by Zipf(1.1) rank.

// Each bench uses its own part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// One tenant's agent and a token for it.
pub struct Target {
    pub tenant: tenant_plane::domain::TenantId,
    pub agent: uuid::Uuid,
    pub token: String,
}

pub type Picker = Arc<dyn Fn(&mut rand::rngs::StdRng) -> (uuid::Uuid, String) + Send + Sync>;

pub fn picker(targets: Arc<Vec<Target>>, zipf: bool) -> Picker {
    let dist = Zipf::new(targets.len() as f64, 1.1).expect("zipf");
    Arc::new(move |rng| {
        let i = if zipf {
            (dist.sample(rng) as usize)
                .saturating_sub(1)
                .min(targets.len() - 1)
        } else {
            0
        };
        (targets[i].agent, targets[i].token.clone())
    })
}

pub struct LoadResult {
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
    /// Share of responses that were 429.
    pub refused: f64,
    /// Responses received in the window.
    pub requests: usize,
}

/// One markdown row per contender of `label`: medians of its rounds, and
/// the median of its per-round ratios against the first contender.
pub fn print_rows(label: &str, names: &[&str], runs: &[Vec<LoadResult>]) {
    for (name, own) in names.iter().zip(runs) {
        let ratio = |f: fn(&LoadResult) -> f64| {
            median(own.iter().zip(&runs[0]).map(|(r, b)| f(r) / f(b)).collect())
        };
        let med = |f: fn(&LoadResult) -> f64| median(own.iter().map(f).collect());
        println!(
            "| {label} | {name} | {:.0} | {:.2} ms | {:.2} ms | {:.2} | {:.2} |",
            med(|r| r.rps),
            med(|r| r.p50),
            med(|r| r.p99),
            ratio(|r| r.rps),
            ratio(|r| r.p99),
        );
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub async fn load(
    base: &str,
    pick: &Picker,
    window: Duration,
    concurrency: usize,
) -> anyhow::Result<LoadResult> {
    load_paced(base, pick, window, concurrency, None).await
}

/// Like `load`; with `pace`, each worker sends one request per `pace` at
/// most (an offered rate, as a misbehaving client would send).
pub async fn load_paced(
    base: &str,
    pick: &Picker,
    window: Duration,
    concurrency: usize,
    pace: Option<Duration>,
) -> anyhow::Result<LoadResult> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let base = base.to_string();
        let pick = pick.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(worker as u64);
            let mut latencies = Vec::new();
            let mut refused = 0usize;
            let mut next = Instant::now();
            while started.elapsed() < window {
                if let Some(pace) = pace {
                    tokio::time::sleep_until(next.into()).await;
                    next += pace;
                }
                let (agent, token) = pick(&mut rng);
                let t = Instant::now();
                let r = client
                    .get(format!("{base}/v1/agents/{agent}"))
                    .bearer_auth(token)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 429 => refused += 1,
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(r) => anyhow::bail!("unexpected status {}", r.status()),
                    Err(e) => anyhow::bail!("request failed: {e}"),
                }
                let _ = rng.random::<u8>();
            }
            Ok((latencies, refused))
        }));
    }
    let mut all = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (l, r) = t.await??;
        all.extend(l);
        refused += r;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let total = all.len() + refused;
    Ok(LoadResult {
        rps: total as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        refused: if total == 0 {
            0.0
        } else {
            refused as f64 / total as f64
        },
        requests: total,
    })
}

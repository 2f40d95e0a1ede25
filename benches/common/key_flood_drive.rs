//! The key flood's traffic: paced quiet streams from one client address
//! and a flood with one valid API key from another, with the catalog
//! pool's waiters sampled every millisecond meanwhile.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::drive::Target;

/// Requests in flight from the flooder.
pub const FLOOD_CONCURRENCY: usize = 32;
/// Each paced quiet stream sends one request per this (50 a second).
pub const QUIET_EVERY: Duration = Duration::from_millis(20);

pub fn client(from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from)
        .pool_max_idle_per_host(FLOOD_CONCURRENCY)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// One stream's answers: every latency (ms) and the answers that were not
/// 2xx (a failed request counts as status 0).
#[derive(Default)]
pub struct Stream {
    pub latencies: Vec<f64>,
    pub errors: BTreeMap<u16, usize>,
}

impl Stream {
    pub fn percentile(&self, p: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    }

    pub fn error_count(&self) -> usize {
        self.errors.values().sum()
    }

    pub async fn get(&mut self, client: &reqwest::Client, url: &str, token: &str) {
        let started = Instant::now();
        let status = match client.get(url).bearer_auth(token).send().await {
            Ok(r) => {
                let status = r.status();
                let _ = r.bytes().await;
                status.as_u16()
            }
            Err(_) => 0,
        };
        self.latencies.push(started.elapsed().as_secs_f64() * 1e3);
        if !(200..300).contains(&status) {
            *self.errors.entry(status).or_default() += 1;
        }
    }
}

/// The quiet side: (a) a tenant's data plane, (b) the control plane,
/// (c) first visits to tenants nobody has visited yet.
#[derive(Clone)]
pub struct Quiet {
    pub base: String,
    pub tenant: Arc<Target>,
    pub super_admin: String,
}

pub struct Window {
    pub data: Stream,
    pub control: Stream,
    pub cold: Stream,
}

/// Sleeps until `due`; false if `stop` was set first.
async fn wait_until(due: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        tokio::time::sleep((due - now).min(Duration::from_millis(10))).await;
    }
}

async fn paced(
    client: reqwest::Client,
    url: String,
    token: String,
    stop: Arc<AtomicBool>,
) -> Stream {
    let mut stream = Stream::default();
    let mut due = Instant::now();
    while wait_until(due, &stop).await {
        stream.get(&client, &url, &token).await;
        // No catching up in a burst after a slow answer.
        due = (due + QUIET_EVERY).max(Instant::now());
    }
    stream
}

/// Runs the quiet streams until `stop` is set, visiting one of `cold` every
/// `cold_every` (the first after half of it).
pub async fn quiet_window(
    quiet: &Quiet,
    cold: Vec<Target>,
    cold_every: Duration,
    stop: Arc<AtomicBool>,
) -> Window {
    let client = client(IpAddr::from([127, 0, 0, 1]));
    let data = tokio::spawn(paced(
        client.clone(),
        format!("{}/v1/agents/{}", quiet.base, quiet.tenant.agent),
        quiet.tenant.token.clone(),
        stop.clone(),
    ));
    let control = tokio::spawn(paced(
        client.clone(),
        format!("{}/v1/tenants/{}", quiet.base, quiet.tenant.tenant),
        quiet.super_admin.clone(),
        stop.clone(),
    ));
    let base = quiet.base.clone();
    let cold = tokio::spawn(async move {
        let mut stream = Stream::default();
        let started = Instant::now();
        for (i, target) in cold.iter().enumerate() {
            let due = started + cold_every / 2 + cold_every * i as u32;
            if !wait_until(due, &stop).await {
                break;
            }
            stream
                .get(&client, &format!("{base}/v1/agents"), &target.token)
                .await;
        }
        stream
    });
    Window {
        data: data.await.expect("data stream"),
        control: control.await.expect("control stream"),
        cold: cold.await.expect("cold stream"),
    }
}

pub struct Flood {
    pub secs: f64,
    pub statuses: BTreeMap<u16, usize>,
    /// Share of 1 ms samples with a waiter on the catalog pool, and the
    /// most waiters seen at once.
    pub wait_share: f64,
    pub max_waiting: usize,
}

/// `requests` × `GET <path>` with `key`, paced at `rate` a second (0:
/// unpaced), at most `FLOOD_CONCURRENCY` in flight, from 127.0.0.2; sets
/// `done` when the last answer is in.
pub async fn flood(
    base: &str,
    path: &str,
    key: &str,
    requests: usize,
    rate: f64,
    done: Arc<AtomicBool>,
    waiting: impl Fn() -> usize + Send + Sync + 'static,
) -> Flood {
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let (mut samples, mut with_waiters, mut most) = (0usize, 0usize, 0usize);
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                let w = waiting();
                samples += 1;
                with_waiters += usize::from(w > 0);
                most = most.max(w);
            }
            (with_waiters as f64 / samples.max(1) as f64, most)
        })
    };
    let flooder = client(IpAddr::from([127, 0, 0, 2]));
    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..FLOOD_CONCURRENCY {
        let (flooder, next, statuses) = (flooder.clone(), next.clone(), statuses.clone());
        let (url, key) = (format!("{base}{path}"), key.to_string());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                if rate > 0.0 {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let status = match flooder.get(&url).bearer_auth(&key).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            }
        }));
    }
    for w in workers {
        w.await.expect("flood worker");
    }
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let (wait_share, max_waiting) = sampler.await.expect("sampler");
    let statuses = statuses.lock().unwrap().clone();
    Flood {
        secs,
        statuses,
        wait_share,
        max_waiting,
    }
}

/// The catalog's committed transactions and reads of `api_keys` so far, as
/// PostgreSQL's cumulative statistics have them.
pub async fn catalog_counts(watch: &tokio_postgres::Client) -> anyhow::Result<(i64, i64)> {
    let row = watch
        .query_one(
            "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
                    (SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0)
                       FROM pg_stat_user_tables WHERE relname = 'api_keys')",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

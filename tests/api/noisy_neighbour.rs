//! One tenant floods the service with expensive requests far over its quota
//! while another sends its usual traffic: the flood is refused at the rate
//! limit, so the quiet tenant's p99 stays within twice what it is alone.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::domain::Tier;
use tenant_plane::router::tier_rate;
use tokio::time::MissedTickBehavior;

use crate::helpers::{spawn_app_with, TestApp};
use crate::kit::{call, id, ok_json};
use crate::timing;

/// Alternating windows, quiet tenant alone then under the flood. The test
/// compares each round's two p99s and takes the median ratio, so that one
/// slow spell of the machine (a checkpoint, another process) in one window
/// does not decide the result.
const ROUNDS: u32 = 5;
const WINDOW: Duration = Duration::from_millis(2_000);
/// The quiet tenant's pace: about 50 requests a second, half its quota.
const QUIET_EVERY: Duration = Duration::from_millis(19);
/// The flood: 8 clients, one request each every 37 ms, staggered so that
/// they do not fire together: about 216 a second. The periods share no
/// factor with the quiet tenant's, so no phase of one stays locked to the
/// other.
const FLOOD_CLIENTS: u32 = 8;
const FLOOD_EVERY: Duration = Duration::from_millis(37);
/// Rate limits at a tenth: the free flooder may send 2 requests a second
/// (a burst of 4), the enterprise quiet tenant 100 (a burst of 200).
const RATE_LIMIT_SCALE: f64 = 0.1;
/// Calls in the flooder's database: each summary it asks for scans them
/// three times, so a served flood would keep PostgreSQL's cores busy.
const FLOODER_CALLS: i32 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_flooding_analytics_at_a_hundred_times_its_quota_keeps_a_quiet_tenants_p99_within_twice_its_p99_alone(
) {
    timing::run_alone();
    let app = spawn_app_with(|s| {
        s.router.rate_limit_scale = RATE_LIMIT_SCALE;
        s.http.workers = 2;
    })
    .await;
    let flooder = tenant_with_agent(&app, "flooder-heavy", "free").await;
    let quiet = tenant_with_agent(&app, "quiet-heavy", "enterprise").await;
    fill_calls(&app, &flooder).await;

    // The premise: one summary costs the flooder's database far more than
    // one quiet request, so the flood would hurt if it were served.
    let summary_started = Instant::now();
    ok_json(
        call(
            &app,
            Method::GET,
            "/v1/analytics/summary",
            &flooder.token,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    let summary = summary_started.elapsed();
    let quiet_url = app.url(&format!("/v1/agents/{}", quiet.agent));
    let warm = quiet_window(&app, &quiet_url, &quiet.token, Duration::from_millis(500)).await;
    let quiet_median = percentile(warm, 0.5);
    assert!(
        summary > quiet_median * 5,
        "a summary took {summary:?}, a quiet request {quiet_median:?}: the flood would be cheap"
    );

    let flood_url = app.url("/v1/analytics/summary");
    let (mut rounds, mut flood_statuses) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let alone = quiet_window(&app, &quiet_url, &quiet.token, WINDOW).await;
        let flood = start_flood(flood_url.clone(), flooder.token.clone(), WINDOW);
        let flooded = quiet_window(&app, &quiet_url, &quiet.token, WINDOW).await;
        flood_statuses.extend(flood.join().expect("the flood thread"));
        rounds.push((percentile(alone, 0.99), percentile(flooded, 0.99)));
    }

    let flooder_quota = f64::from(tier_rate(Tier::Free).0) * RATE_LIMIT_SCALE;
    let offered = flood_statuses.len() as f64 / (WINDOW * ROUNDS).as_secs_f64();
    let refused = flood_statuses.iter().filter(|s| **s == 429).count();
    let served = flood_statuses.iter().filter(|s| **s == 200).count();
    let mut ratios: Vec<f64> = rounds
        .iter()
        .map(|(alone, flooded)| flooded.as_secs_f64() / alone.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median_ratio = ratios[ratios.len() / 2];
    eprintln!(
        "noisy neighbour: flood {offered:.0}/s ({:.0}× quota), {refused} refused, {served} served; \
         summary {summary:?}; quiet p99 (alone, flooded) by round {rounds:?}; median ratio ×{median_ratio:.2}",
        offered / flooder_quota,
    );
    assert_eq!(
        refused + served,
        flood_statuses.len(),
        "the flood saw other statuses"
    );
    // Pacing can slip on a loaded machine; at 50× its quota it is still a
    // flood, below that the test would prove little.
    assert!(
        offered >= 50.0 * flooder_quota,
        "the flood offered only {offered:.0} requests a second"
    );
    assert!(
        refused as f64 >= 0.9 * flood_statuses.len() as f64,
        "only {refused} of {} flood requests were refused",
        flood_statuses.len()
    );
    assert!(
        median_ratio <= 2.0,
        "the flood raised the quiet tenant's p99 ×{median_ratio:.2} (alone, flooded by round: {rounds:?})"
    );
}

struct Seeded {
    database: String,
    token: String,
    agent: String,
}

async fn tenant_with_agent(app: &TestApp, slug: &str, tier: &str) -> Seeded {
    let tenant = ok_json(
        app.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": slug, "slug": slug, "tier": tier })),
        )
        .await,
        201,
    )
    .await;
    let token = app.token(Role::TenantAdmin, Some(id(&tenant)), None);
    let agent = ok_json(
        call(
            app,
            Method::POST,
            "/v1/agents",
            &token,
            None,
            Some(json!({ "name": "Ava", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    Seeded {
        database: tenant["database"].as_str().unwrap().to_string(),
        token,
        agent: agent["id"].as_str().unwrap().to_string(),
    }
}

/// Writes the calls straight into the flooder's database: the API would
/// spend its quota (and this test's minutes) on it.
async fn fill_calls(app: &TestApp, flooder: &Seeded) {
    let db = app.server.connect(&flooder.database).await;
    let agent: uuid::Uuid = flooder.agent.parse().unwrap();
    db.execute(
        "INSERT INTO calls (id, agent_id, status, duration, owner, created_at)
         SELECT gen_random_uuid(), $1,
                (ARRAY['queued','completed','failed','abandoned'])[1 + i % 4],
                i % 900, 'seed', now() - i * interval '1 minute'
           FROM generate_series(1, $2) AS i",
        &[&agent, &FLOODER_CALLS],
    )
    .await
    .unwrap();
    db.batch_execute("ANALYZE calls").await.unwrap();
}

/// The quiet tenant's traffic for `window`: one request every
/// `QUIET_EVERY`, each timed; every one must succeed.
async fn quiet_window(app: &TestApp, url: &str, token: &str, window: Duration) -> Vec<Duration> {
    let mut tick = tokio::time::interval(QUIET_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let end = Instant::now() + window;
    let mut latencies = Vec::new();
    while Instant::now() < end {
        tick.tick().await;
        let started = Instant::now();
        let response = app.client.get(url).bearer_auth(token).send().await.unwrap();
        let status = response.status();
        response.bytes().await.unwrap();
        latencies.push(started.elapsed());
        assert_eq!(status, 200, "the quiet tenant was refused");
    }
    latencies
}

/// The flood runs on its own runtime and thread, as another client's
/// process would, so the quiet client's requests never queue behind the
/// flood's tasks. The thread runs at the lowest CPU priority: a real flood
/// spends another machine's CPU, and what this test measures is what the
/// service spends refusing it, not what the generator spends sending it.
/// It returns the status of every request it sent.
fn start_flood(url: String, token: String, window: Duration) -> std::thread::JoinHandle<Vec<u16>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the flood's runtime");
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let end = Instant::now() + window;
            let clients = (0..FLOOD_CLIENTS).map(|i| {
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                let first = tokio::time::Instant::now() + FLOOD_EVERY * i / FLOOD_CLIENTS;
                async move {
                    let mut tick = tokio::time::interval_at(first, FLOOD_EVERY);
                    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
                    let mut statuses = Vec::new();
                    while Instant::now() < end {
                        tick.tick().await;
                        let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
                        statuses.push(response.status().as_u16());
                        response.bytes().await.unwrap();
                    }
                    statuses
                }
            });
            futures_util::future::join_all(clients)
                .await
                .into_iter()
                .flatten()
                .collect()
        })
    })
}

fn percentile(mut samples: Vec<Duration>, q: f64) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    samples.sort_unstable();
    let rank = ((samples.len() as f64) * q).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

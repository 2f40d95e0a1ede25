//! The randomized schedule: three replicas share one catalog while random
//! operations run (create, move, suspend, resume, delete, undelete, purge,
//! restore as a new tenant, migrate, and data-plane writes), and the
//! replicas are killed, paused and cut from their catalog (it restarts) at
//! random. At the end every invariant of `rig.rs` must hold.
//!
//! The RNG is seeded: a failure prints its seed, and `SCHEDULE_SEED=<seed>`
//! runs the same schedule again. `SCHEDULE_SECS` sets how long the chaos
//! lasts (CI: 40 s; `scripts/schedule.sh` runs it longer).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;
use tenant_plane::domain::TenantId;

use crate::helpers::sign;
use crate::rig::{admin_token, Replica, Rig};

const REPLICAS: usize = 3;

/// What a finished request tells the schedule.
enum Outcome {
    Created(TenantId),
    Wrote(TenantId),
    Nothing,
}

fn seed() -> u64 {
    std::env::var("SCHEDULE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

fn budget() -> Duration {
    Duration::from_secs(
        std::env::var("SCHEDULE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(40),
    )
}

/// One request, sent and forgotten; its outcome comes back on `done`.
#[allow(clippy::too_many_arguments)] // one call site, each argument plain
fn send(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: String,
    body: Option<serde_json::Value>,
    token: String,
    on_success: impl FnOnce(serde_json::Value) -> Outcome + Send + 'static,
    done: &tokio::sync::mpsc::UnboundedSender<Outcome>,
) {
    let (client, url, done) = (client.clone(), format!("{base}{path}"), done.clone());
    tokio::spawn(async move {
        let mut req = client
            .request(method, url)
            .bearer_auth(token)
            .timeout(Duration::from_secs(20));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let outcome = match req.send().await {
            Ok(r) if r.status().is_success() => {
                on_success(r.json().await.unwrap_or(serde_json::Value::Null))
            }
            _ => Outcome::Nothing,
        };
        let _ = done.send(outcome);
    });
}

#[tokio::test]
async fn replicas_killed_paused_and_cut_from_their_catalog_at_random_keep_every_invariant() {
    let seed = seed();
    eprintln!("schedule: seed {seed} (SCHEDULE_SEED={seed} runs this schedule again)");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rig = Rig::with_own_catalog("schedule_")
        .await
        .with_env("TENANT_PLANE_RECONCILER_STALE_AFTER_SECS", "3");
    let mut replicas: Vec<Option<Replica>> = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(Some(rig.replica(None).await));
    }
    let second = rig.register_second(replicas[0].as_ref().unwrap()).await;
    let catalog_server: String = rig
        .catalog_db()
        .await
        .query_one("SELECT id::text FROM db_servers WHERE is_catalog", &[])
        .await
        .unwrap()
        .get(0);
    let servers = [catalog_server, second];
    rig.log_finishes().await;
    let archives = tempfile::tempdir().unwrap();
    let (done, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    let mut tenants: Vec<TenantId> = Vec::new();
    let mut acknowledged: BTreeMap<TenantId, i64> = BTreeMap::new();
    let mut paused: Vec<u32> = Vec::new();
    let mut actions: BTreeMap<&str, u32> = BTreeMap::new();
    let started = Instant::now();
    while started.elapsed() < budget() {
        while let Ok(outcome) = outcomes.try_recv() {
            match outcome {
                Outcome::Created(id) => tenants.push(id),
                Outcome::Wrote(id) => *acknowledged.entry(id).or_default() += 1,
                Outcome::Nothing => {}
            }
        }
        let alive: Vec<usize> = (0..REPLICAS).filter(|i| replicas[*i].is_some()).collect();
        let Some(&pick) = alive.get(rng.random_range(0..alive.len().max(1))) else {
            replicas[0] = Some(rig.replica(None).await);
            continue;
        };
        let base = replicas[pick].as_ref().unwrap().base.clone();
        let tenant = (!tenants.is_empty()).then(|| tenants[rng.random_range(0..tenants.len())]);
        let roll = rng.random_range(0..100);
        let action = match (roll, tenant) {
            (0..=14, _) | (_, None) => {
                let slug = format!("sched-{}", rng.random_range(0..u32::MAX));
                send(
                    &rig.client,
                    &base,
                    Method::POST,
                    "/v1/tenants".into(),
                    Some(json!({ "name": slug, "slug": slug })),
                    admin_token(),
                    |t| {
                        t["id"]
                            .as_str()
                            .and_then(|i| i.parse().ok())
                            .map(Outcome::Created)
                            .unwrap_or(Outcome::Nothing)
                    },
                    &done,
                );
                "create"
            }
            (15..=39, Some(t)) => {
                let token = sign(tenant_plane::auth::Claims::new(
                    "schedule",
                    tenant_plane::auth::Role::TenantAdmin,
                    Some(t),
                    None,
                    Duration::from_secs(3600),
                ));
                send(
                    &rig.client,
                    &base,
                    Method::POST,
                    "/v1/agents".into(),
                    Some(json!({ "name": "scheduled", "type": "chat" })),
                    token,
                    move |_| Outcome::Wrote(t),
                    &done,
                );
                "write"
            }
            (40..=49, Some(t)) => {
                let to = &servers[rng.random_range(0..servers.len())];
                send(
                    &rig.client,
                    &base,
                    Method::POST,
                    format!("/v1/tenants/{t}/move"),
                    Some(json!({ "server": to })),
                    admin_token(),
                    |_| Outcome::Nothing,
                    &done,
                );
                "move"
            }
            (50..=61, Some(t)) => {
                let (method, path, name) = match rng.random_range(0..5) {
                    0 => (Method::POST, format!("/v1/tenants/{t}/suspend"), "suspend"),
                    1 => (Method::POST, format!("/v1/tenants/{t}/resume"), "resume"),
                    2 => (Method::DELETE, format!("/v1/tenants/{t}"), "delete"),
                    3 => (Method::POST, format!("/v1/tenants/{t}/restore"), "undelete"),
                    _ => (
                        Method::DELETE,
                        format!("/v1/tenants/{t}?purge=true"),
                        "purge",
                    ),
                };
                send(
                    &rig.client,
                    &base,
                    method,
                    path,
                    None,
                    admin_token(),
                    |_| Outcome::Nothing,
                    &done,
                );
                name
            }
            (62..=67, Some(t)) => {
                send(
                    &rig.client,
                    &base,
                    Method::POST,
                    format!("/v1/tenants/{t}/migrations"),
                    Some(json!({})),
                    admin_token(),
                    |_| Outcome::Nothing,
                    &done,
                );
                "migrate"
            }
            (68..=71, Some(t)) => {
                // A backup restored as a new tenant, through the CLI.
                let file = archives.path().join(format!("{t}.tpbackup"));
                let out = rig
                    .cli(
                        &[
                            "backup",
                            "--tenant",
                            &t.to_string(),
                            "--out",
                            file.to_str().unwrap(),
                        ],
                        None,
                    )
                    .await;
                if out.status.success() {
                    let slug = format!("clone-{}", rng.random_range(0..u32::MAX));
                    let out = rig
                        .cli(
                            &[
                                "restore",
                                "--file",
                                file.to_str().unwrap(),
                                "--as-new",
                                "--slug",
                                &slug,
                                "--json",
                            ],
                            None,
                        )
                        .await;
                    if let Ok(report) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                        if let Some(id) =
                            report["tenant"]["id"].as_str().and_then(|i| i.parse().ok())
                        {
                            tenants.push(id);
                        }
                    }
                }
                "restore-as-new"
            }
            (72..=79, _) if alive.len() > 1 => {
                replicas[pick].take().unwrap().stop().await;
                "kill -9"
            }
            (80..=87, _) if alive.len() > 1 => {
                let replica = replicas[pick].as_ref().unwrap();
                replica.signal(nix::sys::signal::Signal::SIGSTOP);
                let pause = Duration::from_millis(rng.random_range(500..6000));
                let pid = replica.child.id().unwrap();
                paused.push(pid);
                tokio::spawn(async move {
                    tokio::time::sleep(pause).await;
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGCONT,
                    );
                });
                "pause"
            }
            (88..=90, _) => {
                rig.restart_catalog().await;
                "catalog restart"
            }
            _ => match replicas.iter().position(Option::is_none) {
                Some(dead) => {
                    replicas[dead] = Some(rig.replica(None).await);
                    "restart"
                }
                None => "idle",
            },
        };
        *actions.entry(action).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..250))).await;
    }
    // The end: every replica runs again, and what is in flight finishes.
    for pid in paused.drain(..) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGCONT,
        );
    }
    for slot in replicas.iter_mut() {
        if slot.is_none() {
            *slot = Some(rig.replica(None).await);
        }
    }
    drop(done);
    while let Ok(Some(outcome)) =
        tokio::time::timeout(Duration::from_secs(30), outcomes.recv()).await
    {
        match outcome {
            Outcome::Created(id) => tenants.push(id),
            Outcome::Wrote(id) => *acknowledged.entry(id).or_default() += 1,
            Outcome::Nothing => {}
        }
    }
    eprintln!(
        "schedule {seed}: {} tenants, actions {actions:?}",
        tenants.len()
    );
    let settled = rig.settled(Duration::from_secs(120)).await;
    eprintln!(
        "schedule {seed}: settled {:.1} s after the chaos",
        settled.as_secs_f64()
    );
    rig.check_invariants(&acknowledged).await;
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}

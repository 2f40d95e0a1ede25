//! Crashes and pauses at every failpoint of create, purge, move, restore and
//! drain. At each point:
//! - kill: the replica running the operation kills itself there (SIGKILL);
//!   a new replica starts at once, with the default stale limit, and must
//!   settle everything within 10 s;
//! - pause: the replica stops itself there (SIGSTOP) while a second one,
//!   past the stale limit, takes the operation over; then the first one
//!   continues, and must change nothing.
//!
//! After each, `doctor --fix` runs and the invariants are checked: nothing
//! acknowledged is lost, every live tenant has exactly one database (on its
//! server), nothing is orphaned, no tenant is left paused, no operation
//! finished twice (`rig.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tenant_plane::domain::TenantId;

use crate::rig::{Replica, Rig};

mod setup;
use setup::{restore_args, set_up, start_operation};

/// The takeover threshold of the pause scenario's replicas.
const STALE: &str = "3";

/// A setting changed after a restore round's backup.
const CHANGED: &str = "#ffffff";

/// A restore that finished brought its records back with its database; one
/// that did not left both as they were.
async fn restore_is_whole(rig: &Rig, tenant: TenantId) {
    let catalog = rig.catalog_db().await;
    let row = catalog
        .query_one(
            "SELECT o.state, t.settings::text FROM operations o JOIN tenants t ON t.id = o.tenant_id
              WHERE o.tenant_id = $1 AND o.kind = 'restore_backup'
              ORDER BY o.created_at DESC LIMIT 1",
            &[&tenant.as_uuid()],
        )
        .await
        .unwrap();
    let (state, settings): (String, String) = (row.get(0), row.get(1));
    let kept_change = settings.contains(CHANGED);
    let ops: Vec<String> = catalog
        .query(
            "SELECT kind || ' ' || state || ' gen ' || generation || ' step ' || coalesce(step, '-') || ' ' || coalesce(error, '')
               FROM operations WHERE tenant_id = $1 ORDER BY created_at",
            &[&tenant.as_uuid()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        state == "succeeded",
        !kept_change,
        "the restore {state}, and the settings are {settings}: {ops:#?}"
    );
}

/// What one family of operations needs: a name prefix, its setup, and the
/// request that runs the operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    Create,
    Purge,
    Move,
    Restore,
    Drain,
}

impl Family {
    fn points(self) -> Vec<&'static str> {
        let prefix = match self {
            Family::Create => "create.",
            Family::Purge => "purge.",
            Family::Move => "move.",
            Family::Restore => "restore.",
            Family::Drain => "drain.",
        };
        tenant_plane::failpoint::NAMES
            .iter()
            .copied()
            .filter(|n| n.starts_with(prefix))
            .collect()
    }
}

async fn kill_at(
    rig: &Rig,
    family: Family,
    point: &'static str,
    round: usize,
    dir: &std::path::Path,
) {
    let setup = set_up(rig, family, round, dir).await;
    if family == Family::Restore {
        let args = restore_args(&setup);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = rig.cli(&args, Some((point, "kill"))).await;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9),
            "{point}: the restore did not reach its failpoint: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        let mut victim = rig.replica(Some((point, "kill"))).await;
        let request = start_operation(rig, family, round, &setup, &victim);
        victim.ended(Duration::from_secs(60)).await;
        request.abort();
    }
    // A new replica at once, with the default stale limit: the dead one's
    // lease ended with it, so its operation is taken over as it starts.
    let started = std::time::Instant::now();
    let replica = rig.replica(None).await;
    let settled = rig.settled(Duration::from_secs(10)).await;
    let total = started.elapsed();
    eprintln!(
        "kill at {point}: settled {:.2} s after the restart",
        total.max(settled).as_secs_f64()
    );
    assert!(
        total < Duration::from_secs(10),
        "{point}: settled after {total:?}"
    );
    rig.check_invariants(&setup.acknowledged).await;
    if family == Family::Restore {
        restore_is_whole(rig, setup.tenant.unwrap()).await;
    }
    replica.stop().await;
}

async fn pause_at(
    rig: &Rig,
    family: Family,
    point: &'static str,
    round: usize,
    dir: &std::path::Path,
) {
    let setup = set_up(rig, family, round, dir).await;
    let taker = rig.replica(None).await;
    let (paused, request) = if family == Family::Restore {
        let args = restore_args(&setup);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        (rig.cli_child(&args, Some((point, "stop"))), None)
    } else {
        let victim = rig.replica(Some((point, "stop"))).await;
        let request = start_operation(rig, family, round, &setup, &victim);
        (victim, Some(request))
    };
    paused.stopped(Duration::from_secs(60)).await;
    // Past the stale limit, the other replica takes the operation over,
    // unless the paused one holds the step lock (it is mid-step: plainly alive).
    let taken_over = tokio::time::timeout(
        Duration::from_secs(15),
        rig.settled(Duration::from_secs(15)),
    )
    .await;
    if point != "restore.mid_swap" {
        assert!(
            taken_over.is_ok(),
            "{point}: the other replica did not take over"
        );
    }
    paused.signal(nix::sys::signal::Signal::SIGCONT);
    let mut paused = paused;
    match request {
        Some(request) => {
            let _ = tokio::time::timeout(Duration::from_secs(30), request).await;
        }
        None => {
            tokio::time::timeout(Duration::from_secs(60), paused.child.wait())
                .await
                .expect("the paused CLI ended")
                .unwrap();
        }
    }
    if family == Family::Drain {
        // The drain goes on in the background of the continued replica.
        drained(rig, &setup.catalog_server).await;
    }
    rig.settled(Duration::from_secs(20)).await;
    eprintln!("pause at {point}: taken over, and the paused replica changed nothing");
    rig.check_invariants(&setup.acknowledged).await;
    if family == Family::Restore {
        restore_is_whole(rig, setup.tenant.unwrap()).await;
    }
    paused.stop().await;
    taker.stop().await;
}

/// Waits until no root tenant is left on `server`.
async fn drained(rig: &Rig, server: &str) {
    let catalog = rig.catalog_db().await;
    let server: uuid::Uuid = server.parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left: i64 = catalog
            .query_one(
                "SELECT count(*) FROM tenants WHERE db_server_id = $1 AND parent_id IS NULL AND purged_at IS NULL",
                &[&server],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the drain never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn every_point(family: Family) {
    let dir = tempfile::tempdir().unwrap();
    let killed = Rig::new(&format!("kill_{family:?}_").to_lowercase()).await;
    let paused = Rig::new(&format!("pause_{family:?}_").to_lowercase())
        .await
        .with_env("TENANT_PLANE_RECONCILER_STALE_AFTER_SECS", STALE);
    for (round, point) in family.points().into_iter().enumerate() {
        if round == 0 {
            // The finish log needs the catalog's tables: a first replica makes them.
            for rig in [&killed, &paused] {
                rig.replica(None).await.stop().await;
                rig.log_finishes().await;
            }
        }
        kill_at(&killed, family, point, round, dir.path()).await;
        pause_at(&paused, family, point, round, dir.path()).await;
    }
}

#[tokio::test]
async fn a_create_killed_or_paused_at_any_step_settles_with_every_invariant_kept() {
    every_point(Family::Create).await;
}

#[tokio::test]
async fn a_purge_killed_or_paused_at_any_step_settles_with_every_invariant_kept() {
    every_point(Family::Purge).await;
}

#[tokio::test]
async fn a_move_killed_or_paused_at_any_step_settles_with_every_invariant_kept() {
    every_point(Family::Move).await;
}

#[tokio::test]
async fn a_restore_killed_or_paused_at_any_step_settles_with_every_invariant_kept() {
    every_point(Family::Restore).await;
}

#[tokio::test]
async fn a_drain_killed_or_paused_between_moves_settles_with_every_invariant_kept() {
    every_point(Family::Drain).await;
}

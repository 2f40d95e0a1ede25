//! The rebalance plan: moves that bring every active server under a target
//! utilisation, moving as few bytes as it can. A pure function of the
//! servers' measured loads and their tenants' sizes, so it is tested on its
//! own and shown (`--plan`, the console) exactly as `--apply` runs it.
//!
//! Rules:
//! - A server's utilisation is placement's (`catalog::placement`): the
//!   largest of its ratios of tenants, storage and requests an hour to its
//!   capacities, and of client sessions to `max_connections`. A move takes
//!   the tenant's count, bytes and requests from one server to another; the
//!   sessions stay (they follow traffic, which a plan cannot foresee).
//! - A tenant goes only where placement would put it: an active server,
//!   among those its tier is pinned to when any is. A move never takes its
//!   target over the target utilisation.
//! - For each server over the target, the smallest tenant whose move alone
//!   brings it under is moved; when none does, the one that lowers its
//!   utilisation most for each byte moved, and so on.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::ServerLoad;
use crate::domain::{TenantId, Tier};

pub use crate::catalog::PlanTenant;

/// A server's active state and pins, beside its load.
#[derive(Debug, Clone)]
pub struct PlanServer {
    pub load: ServerLoad,
    pub pinned_tiers: Vec<String>,
}

/// One move of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlannedMove {
    pub tenant_id: TenantId,
    pub slug: String,
    pub from: Uuid,
    pub from_name: String,
    pub to: Uuid,
    pub to_name: String,
    pub bytes: i64,
}

/// A server's utilisation before and after the plan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlannedServer {
    pub server_id: Uuid,
    pub name: String,
    pub before: f64,
    pub after: f64,
}

/// The moves, what they cost, and where they leave each server.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RebalancePlan {
    pub target: f64,
    pub moves: Vec<PlannedMove>,
    /// Bytes the moves copy, in all.
    pub bytes: i64,
    pub servers: Vec<PlannedServer>,
    /// Servers still over the target after the plan, and why.
    pub unresolved: Vec<String>,
}

#[derive(Debug, Clone)]
struct Load {
    id: Uuid,
    name: String,
    active: bool,
    pins: Vec<String>,
    tenants: i64,
    capacity: f64,
    storage: i64,
    storage_cap: Option<f64>,
    sessions: f64,
    rph: i64,
    rph_cap: Option<f64>,
}

impl Load {
    fn utilisation(&self) -> f64 {
        let mut u = self.tenants as f64 / self.capacity;
        if let Some(cap) = self.storage_cap {
            u = u.max(self.storage as f64 / cap);
        }
        if let Some(cap) = self.rph_cap {
            u = u.max(self.rph as f64 / cap);
        }
        u.max(self.sessions)
    }

    fn with(&self, t: &PlanTenant, sign: i64) -> Load {
        let mut l = self.clone();
        l.tenants += sign;
        l.storage += sign * t.storage_bytes;
        l.rph += sign * t.requests_per_hour;
        l
    }
}

/// The plan for `servers` and their root `tenants` at `target` (0 to 1).
pub fn plan(servers: &[PlanServer], tenants: &[PlanTenant], target: f64) -> RebalancePlan {
    let mut loads: Vec<Load> = servers
        .iter()
        .map(|s| {
            let l = &s.load;
            Load {
                id: l.server_id,
                name: l.name.clone(),
                active: l.state == "active",
                pins: s.pinned_tiers.clone(),
                tenants: l.tenants,
                capacity: f64::from(l.capacity.max(1)),
                storage: l.storage_estimate_bytes.or(l.storage_bytes).unwrap_or(0),
                storage_cap: l.storage_capacity_mb.map(|mb| mb as f64 * 1024.0 * 1024.0),
                sessions: match (l.connections, l.max_connections) {
                    (Some(c), Some(m)) if m > 0 => f64::from(c) / f64::from(m),
                    _ => 0.0,
                },
                rph: l.requests_per_hour.unwrap_or(0),
                rph_cap: l.requests_per_hour_capacity.map(|c| c as f64),
            }
        })
        .collect();
    let before: Vec<f64> = loads.iter().map(Load::utilisation).collect();
    let mut placed: Vec<PlanTenant> = tenants.to_vec();
    let mut moves = Vec::new();
    let mut unresolved = Vec::new();
    let mut order: Vec<usize> = (0..loads.len()).collect();
    order.sort_by(|&a, &b| before[b].total_cmp(&before[a]));
    for i in order {
        while loads[i].utilisation() > target {
            let Some((t, to)) = next_move(&loads, &placed, i, target) else {
                unresolved.push(format!(
                    "{}: {:.0}% and no tenant of it can move to a server that stays under {:.0}%",
                    loads[i].name,
                    loads[i].utilisation() * 100.0,
                    target * 100.0
                ));
                break;
            };
            let tenant = placed[t].clone();
            loads[i] = loads[i].with(&tenant, -1);
            loads[to] = loads[to].with(&tenant, 1);
            placed[t].server = loads[to].id;
            moves.push(PlannedMove {
                tenant_id: tenant.id,
                slug: tenant.slug.clone(),
                from: loads[i].id,
                from_name: loads[i].name.clone(),
                to: loads[to].id,
                to_name: loads[to].name.clone(),
                bytes: tenant.storage_bytes,
            });
        }
    }
    RebalancePlan {
        target,
        bytes: moves.iter().map(|m| m.bytes).sum(),
        moves,
        servers: loads
            .iter()
            .zip(before)
            .map(|(l, before)| PlannedServer {
                server_id: l.id,
                name: l.name.clone(),
                before,
                after: l.utilisation(),
            })
            .collect(),
        unresolved,
    }
}

/// Whether `load` takes a tenant of `tier`, as placement decides.
fn takes(loads: &[Load], load: &Load, tier: Tier) -> bool {
    let tier = tier.as_str();
    let pinned_somewhere = loads
        .iter()
        .any(|l| l.active && l.pins.iter().any(|p| p == tier));
    load.active
        && if pinned_somewhere {
            load.pins.iter().any(|p| p == tier)
        } else {
            load.pins.is_empty()
        }
}

/// The next move off server `from`: (index in `placed`, index of the target).
fn next_move(
    loads: &[Load],
    placed: &[PlanTenant],
    from: usize,
    target: f64,
) -> Option<(usize, usize)> {
    let here = &loads[from];
    let mut candidates: Vec<(usize, usize)> = placed
        .iter()
        .enumerate()
        .filter(|(_, t)| t.server == here.id)
        .filter_map(|(ti, t)| {
            let to = loads
                .iter()
                .enumerate()
                .filter(|(li, l)| *li != from && takes(loads, l, t.tier))
                .map(|(li, l)| (li, l.with(t, 1).utilisation()))
                .filter(|(_, after)| *after <= target)
                .min_by(|a, b| a.1.total_cmp(&b.1))?
                .0;
            Some((ti, to))
        })
        .collect();
    candidates.sort_by_key(|&(ti, _)| (placed[ti].storage_bytes, placed[ti].id));
    // The smallest whose move alone is enough.
    if let Some(&found) = candidates
        .iter()
        .find(|&&(ti, _)| here.with(&placed[ti], -1).utilisation() <= target)
    {
        return Some(found);
    }
    // Else the most relief for each byte moved.
    let now = here.utilisation();
    candidates
        .into_iter()
        .map(|(ti, to)| {
            let relief = now - here.with(&placed[ti], -1).utilisation();
            (ti, to, relief / (placed[ti].storage_bytes.max(1) as f64))
        })
        .filter(|c| c.2 > 0.0)
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(ti, to, _)| (ti, to))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

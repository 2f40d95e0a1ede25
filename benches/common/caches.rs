//! Reference caches replayed on a recorded trace of tenant requests, to
//! judge the router's hit ratio: each keeps at most `capacity` tenants (one
//! session each) and counts the hits among the requests from `from` on (the
//! requests before warm the cache up, as the bench's warm-up does).

use std::collections::{BTreeSet, HashMap, HashSet};

/// The share of requests from `from` on that found their tenant cached.
pub struct HitRatios {
    /// Least recently used: what closing the longest-idle session does.
    pub lru: f64,
    /// An ideal frequency-aware cache: it keeps the `capacity` tenants asked
    /// for most often over the whole trace (it knows the future counts).
    pub frequency_oracle: f64,
    /// Belady's optimal, with admission: on a miss it keeps, of the cached
    /// tenants and the new one, those asked for again soonest. No cache
    /// does better on this trace.
    pub optimal: f64,
}

pub fn replay(trace: &[u32], from: usize, capacity: usize) -> HitRatios {
    let measured = trace.len().saturating_sub(from).max(1) as f64;
    HitRatios {
        lru: lru(trace, from, capacity) as f64 / measured,
        frequency_oracle: frequency_oracle(trace, from, capacity) as f64 / measured,
        optimal: optimal(trace, from, capacity) as f64 / measured,
    }
}

fn lru(trace: &[u32], from: usize, capacity: usize) -> usize {
    // Last use by tenant, and tenants ordered by last use.
    let mut last: HashMap<u32, usize> = HashMap::new();
    let mut order: BTreeSet<(usize, u32)> = BTreeSet::new();
    let mut hits = 0;
    for (i, &t) in trace.iter().enumerate() {
        if let Some(prev) = last.insert(t, i) {
            order.remove(&(prev, t));
            hits += usize::from(i >= from);
        } else if order.len() == capacity {
            let oldest = order.pop_first().expect("a full cache");
            last.remove(&oldest.1);
        }
        order.insert((i, t));
    }
    hits
}

fn frequency_oracle(trace: &[u32], from: usize, capacity: usize) -> usize {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for &t in trace {
        *counts.entry(t).or_default() += 1;
    }
    let mut ranked: Vec<(usize, u32)> = counts.into_iter().map(|(t, c)| (c, t)).collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    let kept: HashSet<u32> = ranked.iter().take(capacity).map(|&(_, t)| t).collect();
    // Its first request to each kept tenant still opens a session.
    let mut seen = HashSet::new();
    trace
        .iter()
        .enumerate()
        .filter(|&(i, t)| {
            let hit = kept.contains(t) && !seen.insert(*t);
            hit && i >= from
        })
        .count()
}

fn optimal(trace: &[u32], from: usize, capacity: usize) -> usize {
    // The index of each request's next request to the same tenant.
    let mut next = vec![usize::MAX; trace.len()];
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for (i, &t) in trace.iter().enumerate().rev() {
        if let Some(&j) = seen.get(&t) {
            next[i] = j;
        }
        seen.insert(t, i);
    }
    // Cached tenants keyed by their next request.
    let mut cached: HashMap<u32, usize> = HashMap::new();
    let mut by_next: BTreeSet<(usize, u32)> = BTreeSet::new();
    let mut hits = 0;
    for (i, &t) in trace.iter().enumerate() {
        if let Some(n) = cached.remove(&t) {
            by_next.remove(&(n, t));
            hits += usize::from(i >= from);
        } else if by_next.len() == capacity {
            let furthest = *by_next.last().expect("a full cache");
            if furthest.0 <= next[i] {
                // The new tenant is the one wanted last: serve, keep nothing.
                continue;
            }
            by_next.pop_last();
            cached.remove(&furthest.1);
        }
        cached.insert(t, next[i]);
        by_next.insert((next[i], t));
    }
    hits
}

/// Replays a hand-counted trace, so that a wrong reference cache stops the
/// bench instead of skewing its figures (a bench's own code has no tests).
pub fn check() {
    // Capacity 2; tenant 0 is hot, 1 and 2 alternate.
    let trace = [0, 1, 0, 2, 0, 1, 0, 2];
    // LRU: 0 hits at 2, 4 and 6; 1 and 2 always miss.
    assert_eq!(lru(&trace, 0, 2), 3, "LRU");
    // The oracle keeps 0 and one of 1 and 2 (two requests each).
    assert_eq!(frequency_oracle(&trace, 0, 2), 4, "frequency oracle");
    // Belady with admission: 2 is not kept, so 0 hits 3 times and 1 once.
    assert_eq!(optimal(&trace, 0, 2), 4, "Belady");
    // Hits before `from` are not counted.
    assert_eq!(lru(&trace, 3, 2), 2, "LRU after warm-up");
}

//! Refusals counted per client address and minute: the HTTP API's 401s
//! and 403s and the gateway's failed logins, each with its own `Throttle`.
//! IPv6 clients are counted per /64, the block one subscriber holds.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Refusals per client address in the current minute.
pub struct Throttle {
    per_minute: u32,
    counts: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
}

impl Throttle {
    /// Refusals a client may have in a minute before its answers change.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            counts: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }

    /// Whether `client` is past its refusals for this minute.
    pub fn exhausted(&self, client: IpAddr) -> bool {
        self.counts
            .get(&bucket(client))
            .is_some_and(|n| n.load(Ordering::Relaxed) >= self.per_minute)
    }

    /// Counts one refusal; returns the count before it.
    pub fn charge(&self, client: IpAddr) -> u32 {
        self.counts
            .get_with(bucket(client), Arc::default)
            .fetch_add(1, Ordering::Relaxed)
    }
}

/// What one client is counted as: an IPv4 address, or an IPv6 address's /64.
pub(crate) fn bucket(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

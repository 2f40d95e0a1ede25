//! Per-tenant request rate limits: a token bucket for each tenant, sized by
//! its tier, so that a noisy tenant cannot starve the others.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::{TenantId, Tier};

/// Requests per second and burst of each tier, before `rate_limit_scale`.
pub fn tier_rate(tier: Tier) -> (u32, u32) {
    match tier {
        Tier::Free => (20, 40),
        Tier::Standard => (200, 400),
        Tier::Enterprise => (1000, 2000),
    }
}

pub struct RateLimits {
    free: Option<DefaultKeyedRateLimiter<TenantId>>,
    standard: Option<DefaultKeyedRateLimiter<TenantId>>,
    enterprise: Option<DefaultKeyedRateLimiter<TenantId>>,
    clock: DefaultClock,
}

fn limiter(tier: Tier, scale: f64) -> Option<DefaultKeyedRateLimiter<TenantId>> {
    if scale <= 0.0 {
        return None;
    }
    let (rate, burst) = tier_rate(tier);
    let scaled = |v: u32| {
        NonZeroU32::new(((f64::from(v) * scale).round() as u32).max(1)).expect("at least 1")
    };
    Some(RateLimiter::keyed(
        Quota::per_second(scaled(rate)).allow_burst(scaled(burst)),
    ))
}

impl RateLimits {
    /// `scale` multiplies every tier's rate; 0 turns limits off.
    pub fn new(scale: f64) -> Self {
        Self {
            free: limiter(Tier::Free, scale),
            standard: limiter(Tier::Standard, scale),
            enterprise: limiter(Tier::Enterprise, scale),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from the tenant's bucket, or says how long to wait.
    pub fn check(&self, tenant: TenantId, tier: Tier) -> Result<(), Duration> {
        let limiter = match tier {
            Tier::Free => &self.free,
            Tier::Standard => &self.standard,
            Tier::Enterprise => &self.enterprise,
        };
        match limiter {
            None => Ok(()),
            Some(l) => l
                .check_key(&tenant)
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Forgets buckets that are full again, so memory follows active tenants.
    pub fn forget_idle(&self) {
        for l in [&self.free, &self.standard, &self.enterprise]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
        }
    }
}

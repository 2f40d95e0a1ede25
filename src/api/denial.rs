//! Refused requests cost the refused client, not the service: each 401 or
//! 403 is counted in memory per client address (`Throttle`) and for the
//! audit (`control_audit::Denials`, written in aggregate); a client past
//! `http.denials_per_minute` refusals gets 429 before its credentials are
//! even looked at (an API-key guess costs a catalog query otherwise).
//! The client address is the peer's, or, when the peer is one of
//! `http.trusted_proxies`, the last address `X-Forwarded-For` names that is
//! not a trusted proxy itself.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpMessage, HttpRequest};
use ipnet::IpNet;

use crate::api::{ApiError, AppState, RouteLabel};
use crate::auth::Principal;
use crate::control_audit::DenialKey;

/// Request marker: this denial was counted already.
#[derive(Clone, Copy)]
pub struct DenialCounted;

/// Refusals per client address in the current minute.
pub struct Throttle {
    per_minute: u32,
    counts: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
}

impl Throttle {
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
    fn exhausted(&self, client: IpAddr) -> bool {
        self.counts
            .get(&client)
            .is_some_and(|n| n.load(Ordering::Relaxed) >= self.per_minute)
    }

    fn charge(&self, client: IpAddr) {
        self.counts
            .get_with(client, Arc::default)
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The client's address (see the module's description).
pub fn client_address(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.iter().any(|net| net.contains(a)))
            .unwrap_or(peer),
    )
}

/// Refuses a client past its refusals for the minute, before its
/// credentials are checked. The refusal is counted as `throttled`.
pub fn check_throttle(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(client) = client_address(req, state.trusted_proxies()) else {
        return Ok(());
    };
    if !state.throttle().exhausted(client) {
        return Ok(());
    }
    count(req, state, "throttled", None);
    Err(ApiError::new(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        "too_many_denials",
        "too many refused requests from this address; wait a minute",
    )
    .with_retry_after(60))
}

/// Counts a refusal: against the client's minute, and for the audit.
pub fn count(
    req: &HttpRequest,
    state: &AppState,
    reason: &'static str,
    principal: Option<&Principal>,
) {
    if req.extensions().get::<DenialCounted>().is_some() {
        return;
    }
    req.extensions_mut().insert(DenialCounted);
    let client = client_address(req, state.trusted_proxies());
    if reason != "throttled" {
        if let Some(client) = client {
            state.throttle().charge(client);
        }
    }
    let principal = principal
        .cloned()
        .or_else(|| req.extensions().get::<Principal>().cloned());
    state.denials().record(DenialKey {
        source: client.map_or_else(|| "unknown".into(), |c| c.to_string()),
        route: RouteLabel::of(req)
            .map(|r| r.as_str().to_string())
            .unwrap_or_else(|| "unmatched".into()),
        reason,
        tenant: principal.as_ref().and_then(Principal::tenant_id),
        user: principal.as_ref().map(|p| p.user_id().to_string()),
    });
}

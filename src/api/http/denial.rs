//! Refused requests cost the refused client, not the service: each 401 or
//! 403 is counted in memory per client address (`Throttle`) and for the
//! audit (`control_audit::Denials`, written in aggregate).
//!
//! Rules:
//! - A valid credential is never refused because of denials: many users
//!   share one address behind a NAT or a load balancer, and one of them
//!   must not lock the others out. The throttle only changes the answer to
//!   a credential that failed: past `http.denials_per_minute` refusals in a
//!   minute it is 429 `too_many_denials` instead of 401.
//! - Checking a credential first stays cheap for a guesser: a token is
//!   checked in memory, and an API key not yet known costs one of a few
//!   bounded catalog lookups (`auth::api_key`).
//! - IPv6 clients are counted per /64, the block one subscriber holds, so
//!   rotating addresses inside it gains nothing.
//! - The client address is the peer's, or, when the peer is one of
//!   `http.trusted_proxies`, the last address `X-Forwarded-For` names that
//!   is not a trusted proxy itself.

use actix_web::{HttpMessage, HttpRequest};
use ipnet::IpNet;
use std::net::IpAddr;

use crate::api::http::{ApiError, AppState, ErrorCode, RouteLabel};
use crate::auth::api_key::Patience;
use crate::auth::{AuthError, Principal};
#[cfg(test)]
use crate::control_audit::throttle::bucket;
use crate::control_audit::DenialKey;
pub use crate::control_audit::Throttle;

/// Request marker: this denial was counted already.
#[derive(Clone, Copy)]
pub struct DenialCounted;

/// Request marker: this refusal was charged against its client's minute.
#[derive(Clone, Copy)]
struct Charged;

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

/// Whether this request's API-key lookup may wait its turn: not for a
/// client already past its refusals (see `auth::api_key::Patience`).
pub fn patience(req: &HttpRequest, state: &AppState) -> Patience {
    match client_address(req, state.trusted_proxies()) {
        Some(client) if state.throttle().exhausted(client) => Patience::NoWait,
        _ => Patience::Wait,
    }
}

/// The answer to a credential that did not verify: the refusal itself, or,
/// for a client past its refusals for the minute, 429 (counted as
/// `throttled`). The refusal is charged here, in the same step that reads
/// the count, so concurrent refusals never slip past the limit together.
/// Not charged, and never 429: a genuine credential that has expired (its
/// holder must learn to renew it), a missing CSRF token, and a lookup that
/// could not run, unless its caller was already past its refusals and so
/// was not allowed to wait for one.
pub fn refusal(req: &HttpRequest, state: &AppState, e: AuthError) -> ApiError {
    let Some(client) = client_address(req, state.trusted_proxies()) else {
        return e.into();
    };
    match e {
        AuthError::Expired | AuthError::Csrf | AuthError::Lookup(_) => return e.into(),
        AuthError::Busy if !state.throttle().exhausted(client) => return e.into(),
        _ => {}
    }
    let before = match e {
        AuthError::Busy => u32::MAX,
        _ => state.throttle().charge(client),
    };
    if before < state.throttle().per_minute() {
        // Charged: the error handler that records the 401 must not charge again.
        req.extensions_mut().insert(Charged);
        if matches!(e, AuthError::CrossTenant(_)) {
            // A credential that names another tenant (a tenant provider's
            // token) is audited as what it is.
            count(req, state, "cross_tenant", None);
        }
        return e.into();
    }
    count(req, state, "throttled", None);
    ApiError::new(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooManyDenials,
        "too many refused requests from this address; wait a minute",
    )
    .with_retry_after(60)
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
    if reason != "throttled" && req.extensions().get::<Charged>().is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_block_and_a_mapped_ipv4_as_itself() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(bucket(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(bucket(v4), v4);
    }

    #[test]
    fn rotating_addresses_inside_one_64_exhausts_the_block() {
        let throttle = Throttle::new(3);
        for host in 1..=3u16 {
            throttle.charge(IpAddr::V6(std::net::Ipv6Addr::new(
                0x2001, 0xdb8, 0, 7, host, 0, 0, 1,
            )));
        }
        let fresh = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 99, 0, 0, 9));
        assert!(throttle.exhausted(fresh));
        let elsewhere = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 8, 1, 0, 0, 1));
        assert!(!throttle.exhausted(elsewhere));
    }
}

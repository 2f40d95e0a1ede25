//! A client's login: SCRAM-SHA-256 against its tenant's keys, then what
//! the key may do decides the login role its sessions run as.
//!
//! Rules:
//! - Nothing is said about the tenant before the proof is checked: an
//!   unknown tenant, a tenant without wire keys and a wrong key all fail
//!   the same way, at the same step.
//! - A key reaches the wire only when a login role holds its rights whole
//!   (`login_role.rs`).
//! - Every refusal of class 28 (a failed proof, an expired key, a key
//!   without the rights) is charged against the client's minute and
//!   counted for the audit like an HTTP 401 or 403: for the tenant the
//!   login named, and the key, once the proof named one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;

use super::client::ClientIo;
use super::client_settings::{ClientSettings, Unsupported};
use super::Shared;
use crate::auth::scram::{self, Exchange};
use crate::catalog::ApiKeyRecord;
use crate::control_audit::DenialKey;
use crate::domain::TenantId;
use crate::pg::wire;
use crate::router::{Route, RouterError, WireRole};

/// A client that logged in.
pub(super) struct Login {
    pub route: Arc<Route>,
    pub role: WireRole,
    /// The key the client cancels with; forgotten when it leaves.
    pub cancel_key: super::CancelKey,
    pub cancel_slot: super::CancelSlot,
    /// The client's settings (at start-up, and those kept since), applied
    /// before each transaction.
    pub settings: ClientSettings,
    /// The key the client proved, and when it expires: asked about again
    /// before each transaction (`relay.rs`).
    pub key: uuid::Uuid,
    pub key_expires: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why a login was refused: the SQLSTATE and the message the client sees.
pub(super) struct Refusal {
    pub code: &'static str,
    pub message: String,
    /// The tenant the login named and the key it proved, once known.
    against: Option<(TenantId, Option<String>)>,
}

pub(super) fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
        against: None,
    }
}

impl Refusal {
    fn against(mut self, tenant: TenantId, key: Option<&ApiKeyRecord>) -> Self {
        self.against = Some((tenant, key.map(|k| format!("apikey:{}", k.id))));
        self
    }
}

/// Logs a client in, or says why not. A refusal of class 28 is charged
/// and counted (see the module's rules); a failed proof from a client
/// past its refusals for the minute is answered a second late.
pub(super) async fn login(
    shared: &Shared,
    io: &mut ClientIo,
    peer: SocketAddr,
    params: &[(String, String)],
) -> Result<Login, Refusal> {
    let refusal = match attempt(shared, io, peer, params).await {
        Ok(login) => return Ok(login),
        Err(refusal) => refusal,
    };
    if !refusal.code.starts_with("28") {
        return Err(refusal);
    }
    let before = shared.throttle.charge(peer.ip());
    let throttled = before >= shared.throttle.per_minute();
    let reason = match (throttled, refusal.code) {
        (true, _) => "throttled",
        (false, "28P01") => "unauthenticated",
        (false, _) => "forbidden",
    };
    let (tenant, user) = refusal.against.clone().unzip();
    shared.denials.record(DenialKey {
        source: peer.ip().to_string(),
        route: "gateway".into(),
        reason,
        tenant,
        user: user.flatten(),
    });
    if throttled && refusal.code == "28P01" {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(refusal)
}

impl From<std::io::Error> for Refusal {
    fn from(_: std::io::Error) -> Self {
        refuse("08P01", "the login was cut short")
    }
}

async fn attempt(
    shared: &Shared,
    io: &mut ClientIo,
    peer: SocketAddr,
    params: &[(String, String)],
) -> Result<Login, Refusal> {
    let user = params
        .iter()
        .find(|(name, _)| name == "user")
        .map(|(_, value)| value.as_str())
        .filter(|user| !user.is_empty())
        .ok_or_else(|| refuse("28000", "no user name: connect as your tenant's slug"))?;
    let (slug, subtenant) = match user.split_once('.') {
        Some((slug, sub)) => (slug, Some(sub)),
        None => (user, None),
    };
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "a gateway login could not read its tenant's keys");
        refuse(
            "57P03",
            "the service cannot check credentials now; try again",
        )
    };
    let root = shared
        .keys
        .root_by_slug(slug)
        .await
        .map_err(|e| unavailable(&e))?;
    let keys = match root {
        Some(id) => shared.keys.keys(id).await.map_err(|e| unavailable(&e))?,
        None => Default::default(),
    };
    let salt = match root {
        Some(id) => scram::tenant_salt(id),
        None => scram::unknown_salt(user),
    };
    let (exchange, client_final) = exchange(io, &salt).await?;
    let mut proven = check(&exchange, &client_final, &keys)?;
    if proven.is_none() {
        if let Some(id) = root {
            // A key minted since the list was read (here or on another
            // replica): the same proof against the catalog's list now.
            let fresh = shared.keys.refresh(id).await.map_err(|e| unavailable(&e))?;
            proven = check(&exchange, &client_final, &fresh)?;
        }
    }
    let Some((key, server_final)) = proven else {
        let refusal = refuse(
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        );
        return Err(match root {
            Some(root) => refusal.against(root, None),
            None => refusal,
        });
    };
    let root = root.expect("a key matched, so the tenant exists");
    let against = |refusal: Refusal| refusal.against(root, Some(&key));
    let target = super::login_role::subtenant_target(shared, root, &key, subtenant)
        .await
        .map_err(against)?;
    let role = super::login_role::session_role(&key, target).map_err(against)?;
    let route = shared
        .router
        .route(target.unwrap_or(root))
        .await
        .map_err(|e| against(route_refusal(e)))?;
    if route.root.id != root {
        return Err(against(refuse(
            "28000",
            "the subtenant belongs to another tenant",
        )));
    }
    shared.ensure_role(&route, role).await.map_err(|e| {
        let (code, text) = e.refusal(root);
        against(refuse(code, text))
    })?;
    let mut parameters = shared
        .parameters(&route, role)
        .await
        .map_err(route_refusal)?;
    let settings = ClientSettings::from_startup(params, &parameters)
        .map_err(|Unsupported(text)| refuse("0A000", text))?;
    // The client is told the values it asked for.
    let asked = params
        .iter()
        .filter(|(name, _)| name == "application_name")
        .chain(&settings.asked);
    for (name, value) in asked {
        if let Some(slot) = parameters
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            slot.1.clone_from(value);
        } else if name == "application_name" {
            parameters.push((name.clone(), value.clone()));
        }
    }
    let mut out = BytesMut::new();
    wire::authentication(&mut out, 12, server_final.as_bytes());
    wire::authentication(&mut out, 0, &[]);
    for (name, value) in &parameters {
        wire::parameter_status(&mut out, name, value);
    }
    let (cancel_key, cancel_slot) = shared.register_cancel();
    wire::backend_key_data(&mut out, cancel_key.0, cancel_key.1);
    wire::ready_for_query(&mut out, b'I');
    if let Err(e) = io.stream.write_all(&out).await {
        shared.forget_cancel(cancel_key);
        return Err(e.into());
    }
    tracing::info!(tenant.id = %root, key = %key.id, %peer, "a gateway client logged in");
    Ok(Login {
        route,
        role,
        cancel_key,
        cancel_slot,
        settings,
        key: key.id,
        key_expires: key.expires_at,
    })
}

/// Runs the SCRAM exchange up to the client's proof: the exchange and the
/// client's final message.
async fn exchange(io: &mut ClientIo, salt: &[u8]) -> Result<(Exchange, String), Refusal> {
    let mut out = BytesMut::new();
    wire::authentication(&mut out, 10, b"SCRAM-SHA-256\0\0");
    io.stream.write_all(&out).await?;
    let first = sasl_message(io).await?;
    let mut body = &first[..];
    let (mechanism, rest) = wire::cstr(body).map_err(|_| malformed())?;
    if mechanism != "SCRAM-SHA-256" {
        return Err(refuse("28000", "only SCRAM-SHA-256 is offered"));
    }
    body = rest;
    if body.len() < 4 {
        return Err(malformed());
    }
    body.advance(4);
    let client_first = std::str::from_utf8(body).map_err(|_| malformed())?;
    let (exchange, server_first) = Exchange::start(client_first, salt).map_err(scram_refusal)?;
    let mut out = BytesMut::new();
    wire::authentication(&mut out, 11, server_first.as_bytes());
    io.stream.write_all(&out).await?;
    let last = sasl_message(io).await?;
    let client_final = std::str::from_utf8(&last).map_err(|_| malformed())?;
    Ok((exchange, client_final.to_string()))
}

/// The key whose verifier the proof matches, and the server's final
/// message; `None` when none does.
fn check(
    exchange: &Exchange,
    client_final: &str,
    keys: &[ApiKeyRecord],
) -> Result<Option<(ApiKeyRecord, String)>, Refusal> {
    let verifiers: Vec<_> = keys.iter().filter_map(|k| k.wire.as_ref()).collect();
    let with_verifier: Vec<&ApiKeyRecord> = keys.iter().filter(|k| k.wire.is_some()).collect();
    match exchange.finish(client_final, &verifiers) {
        Ok((index, server_final)) => Ok(Some((with_verifier[index].clone(), server_final))),
        Err(scram::ScramError::Refused) => Ok(None),
        Err(e) => Err(scram_refusal(e)),
    }
}

/// The body of the client's next SASL message (`p`).
async fn sasl_message(io: &mut ClientIo) -> Result<bytes::Bytes, Refusal> {
    match io.message().await? {
        Some(frame) if frame.tag == b'p' => Ok(frame.bytes.slice(5..)),
        _ => Err(malformed()),
    }
}

fn malformed() -> Refusal {
    refuse("08P01", "malformed SASL message")
}

fn scram_refusal(e: scram::ScramError) -> Refusal {
    refuse("28000", e.to_string())
}

/// What the client is told when its tenant cannot be served.
fn route_refusal(e: RouterError) -> Refusal {
    match e {
        RouterError::Suspended => refuse("28000", "the tenant is suspended"),
        RouterError::Deleted | RouterError::NotFound => refuse("28000", "the tenant is deleted"),
        RouterError::NotReady(status) => refuse(
            "57P03",
            format!("the tenant is not ready ({})", status.as_str()),
        ),
        RouterError::BudgetSpent => refuse(
            "53300",
            "the tenant's database server is at its connection budget; try again",
        ),
        RouterError::SchemaBehind(gap) => refuse("28000", gap.to_string()),
        other => {
            tracing::warn!(error = %format!("{:#}", anyhow::Error::from(other)), "a gateway login could not reach its tenant");
            refuse(
                "57P03",
                "the tenant's database cannot be reached now; try again",
            )
        }
    }
}

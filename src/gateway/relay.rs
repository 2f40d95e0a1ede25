//! Transaction pooling: a client holds a tenant session from its first
//! message after idling until the server is idle again (`ReadyForQuery`
//! with status `I`) with nothing of the client's pending; then the session
//! goes back to the pool.
//!
//! Rules:
//! - A session that served a transaction is reset before its next one
//!   (`transaction::RESET`), in the same round trip as that transaction's first
//!   messages; the reset's answers are swallowed.
//! - The route is read again for every transaction: after a move the next
//!   transaction goes to the new server on the same client connection;
//!   a suspended tenant's next transaction ends the connection. So is the
//!   key the client proved: once it is revoked or expired, the next
//!   transaction ends the connection.
//! - A session whose state the gateway lost (the client left mid-way, the
//!   server ended it, a broken stream) is closed, never pooled.
//! - A read-only client whose database would show its sessions the audit
//!   log (tenant migration V4 reverted) is told so and let go (`28000`).
//! - While the root tenant is over a quota, a writer's transaction runs
//!   as its reader (writes fail read-only, 25006), after a warning that
//!   says which quota and until when.
//! - Every transaction that got a session counts as one data-plane request
//!   of the root tenant, as an HTTP data request does.
//! - The tier's statement and idle-in-transaction timeouts hold whatever
//!   the client sets (`watch.rs`).
//! - A client's settings hold in each of its transactions: those of its
//!   start-up message, and those the server reported to it as changed
//!   (`client_settings.rs`).

use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::client::{fatal, ClientIo};
use super::client_settings::Unapplied;
use super::login::Login;
use super::statements::Statements;
use super::transaction::{transaction, End};
use super::Shared;
use crate::pg::wire::{self, Frame};
use crate::router::RouterError;
use tokio_util::sync::CancellationToken;

pub(super) async fn relay(
    shared: &Shared,
    mut client: ClientIo,
    mut login: Login,
    shutdown: &CancellationToken,
) {
    // The subtenant's own route for a subtenant's login: its suspension
    // or deletion reaches its clients at their next transaction.
    let tenant = login.route.tenant.id;
    let mut statements = Statements::default();
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => {
                fatal(&mut client, "57P01", "the service is shutting down").await;
                return;
            }
            next = client.message() => next,
        };
        let first = match next {
            Ok(Some(frame)) if frame.tag != b'X' => frame,
            _ => return,
        };
        let route = match shared.router.route(tenant).await {
            Ok(route) => route,
            Err(e @ (RouterError::Suspended | RouterError::Deleted | RouterError::NotFound)) => {
                fatal(&mut client, "57P01", &format!("{e}: the session ends")).await;
                return;
            }
            Err(e) => {
                refuse(&mut client, first, "57P03", &e.to_string()).await;
                continue;
            }
        };
        if !key_holds(shared, route.root.id, &login).await {
            let text = "the API key this client logged in with was revoked or has expired: the session ends";
            fatal(&mut client, "28000", text).await;
            return;
        }
        if let Err(wait) = shared.router.check_rate(route.root.id, route.root.tier) {
            let text = format!(
                "the tenant's rate limit is spent; retry in {} ms",
                wait.as_millis().max(1)
            );
            refuse(&mut client, first, "53400", &text).await;
            continue;
        }
        let breach = route.quota_breach().filter(|_| !login.role.read_only());
        let role = match breach {
            Some(_) => login.role.reader(),
            None => login.role,
        };
        if let Err(e) = shared.ensure_role(&route, role).await {
            let (code, text) = e.refusal(tenant);
            refuse(&mut client, first, code, &text).await;
            continue;
        }
        if let Some(breach) = breach {
            if warn_over_quota(&mut client, breach).await.is_err() {
                return;
            }
        }
        let waited = Instant::now();
        let mut session = match session(shared, &route, role).await {
            Ok(session) => session,
            Err(RouterError::SchemaBehind(gap)) => {
                fatal(&mut client, "28000", &gap.to_string()).await;
                return;
            }
            Err(e) => {
                refuse(&mut client, first, "53300", &format!("{e}; try again")).await;
                continue;
            }
        };
        ::metrics::histogram!(crate::telemetry::metrics::GATEWAY_WAIT)
            .record(waited.elapsed().as_secs_f64());
        // Counted before any answer: a client that read its answer finds
        // its transaction in the meter.
        shared.usage.count(route.root.id, crate::usage::Plane::Data);
        match super::client_settings::apply(&mut session, login.settings.apply.as_ref()).await {
            Ok(()) => {}
            Err(Unapplied::Refused(code, message)) => {
                let text = format!("a start-up setting was refused: {message}");
                fatal(&mut client, &code, &text).await;
                return;
            }
            Err(Unapplied::Lost) => {
                crate::router::discard_wire_session(session);
                fatal(&mut client, "08006", "the tenant's database session ended").await;
                return;
            }
        }
        let (statement_ms, idle_ms) = shared.router.session_timeouts_ms(route.root.tier);
        let watch = &login.cancel_slot;
        watch.begin(session.raw().cancel.clone(), statement_ms, idle_ms);
        let end = transaction(
            &mut client,
            &mut session,
            first,
            &mut statements,
            watch,
            &mut login.settings,
        )
        .await;
        watch.end();
        ::metrics::counter!(crate::telemetry::metrics::GATEWAY_TRANSACTIONS, "tier" => route.root.tier.as_str())
            .increment(1);
        let (code, text) = match end {
            Ok(End::Idle) => continue,
            Ok(End::ClientGone) | Err(_) => ("", String::new()),
            Ok(End::SessionLost) => ("08006", "the tenant's database session ended".into()),
            Ok(End::IdledOut) => ("25P03", format!("the transaction was idle longer than its tier allows ({idle_ms} ms); the connection ends")),
        };
        // Closed now, not at its pool's next checkout: a transaction its
        // client abandoned must not keep its locks meanwhile.
        crate::router::discard_wire_session(session);
        if !code.is_empty() {
            fatal(&mut client, code, &text).await;
        }
        return;
    }
}

/// Whether the key `login` proved still stands: unexpired, and in its
/// tenant's list of unrevoked keys (kept in memory; a revocation reaches
/// it at once in this process, on the catalog's notice in others). A list
/// the catalog cannot give now does not end a client that logged in.
async fn key_holds(shared: &Shared, root: crate::domain::TenantId, login: &Login) -> bool {
    if login.key_expires.is_some_and(|at| at <= chrono::Utc::now()) {
        return false;
    }
    shared.keys.still_listed(root, login.key).await != Some(false)
}

/// A session of `role` for the route. When the server refused its login
/// (its password changed: a role may change its own, so one client could
/// lock its login's other clients out), or the login carries session
/// defaults a client set, the login is made again, which sets its password
/// back and takes the defaults back, and asked for once more.
async fn session(
    shared: &Shared,
    route: &crate::router::Route,
    role: crate::router::WireRole,
) -> Result<crate::router::WireConnection, RouterError> {
    match shared.router.wire_session(route, role).await {
        Err(e) if e.login_to_remake() => {
            if shared.ensure_role(route, role).await.is_err() {
                return Err(e);
            }
            shared.router.wire_session(route, role).await
        }
        outcome => outcome,
    }
}

/// Tells a writer its transaction runs read-only, and why.
async fn warn_over_quota(
    client: &mut ClientIo,
    breach: &crate::catalog::QuotaBreach,
) -> std::io::Result<()> {
    let until = match breach.resets_at {
        Some(at) => format!(
            "until {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "until its use drops under it".into(),
    };
    let text = format!(
        "the tenant is over its {} quota ({} of {}): this transaction is read-only, and sees no audit entry, {until}",
        breach.quota.as_str(),
        breach.used,
        breach.limit
    );
    let mut out = BytesMut::new();
    wire::notice(&mut out, "WARNING", "01000", &text);
    client.stream.write_all(&out).await
}

/// Answers a client's transaction that cannot be served with an error:
/// after its `Query`, or after the `Sync` that ends its extended messages.
async fn refuse(client: &mut ClientIo, first: Frame, code: &str, message: &str) {
    let mut tag = first.tag;
    while !matches!(tag, b'Q' | b'S' | b'F') {
        match client.message().await {
            Ok(Some(frame)) if frame.tag != b'X' => tag = frame.tag,
            _ => return,
        }
    }
    let mut out = BytesMut::new();
    wire::error(&mut out, "ERROR", code, message);
    wire::ready_for_query(&mut out, b'I');
    let _ = client.stream.write_all(&out).await;
}

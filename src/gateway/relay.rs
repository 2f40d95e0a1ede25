//! Transaction pooling: a client holds a tenant session from its first
//! message after idling until the server is idle again (`ReadyForQuery`
//! with status `I`) with nothing of the client's pending; then the session
//! goes back to the pool.
//!
//! Rules:
//! - A session that served a transaction is reset before its next one
//!   (`RESET`), in the same round trip as that transaction's first
//!   messages; the reset's answers are swallowed.
//! - The route is read again for every transaction: after a move the next
//!   transaction goes to the new server on the same client connection;
//!   a suspended tenant's next transaction ends the connection.
//! - A session whose state the gateway lost (the client left mid-way, the
//!   server ended it, a broken stream) is closed, never pooled.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::client::{fatal, ClientIo};
use super::login::Login;
use super::statements::{Answer, Statements};
use super::Shared;
use crate::pg::wire::{self, Frame};
use crate::router::{RouterError, WireConnection};
use tokio_util::sync::CancellationToken;

/// The reset between two transactions: what a client may have left behind
/// in the session, except the prepared statements the gateway tracks.
const RESET: &str = "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; \
                     SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// How one transaction's relay ended.
enum End {
    /// Idle again: the session may go back to its pool.
    Idle,
    /// The client left (or broke the protocol); the session is not reused.
    ClientGone,
    /// The session ended or broke; the client is told and let go.
    SessionLost,
}

pub(super) async fn relay(
    shared: &Shared,
    mut client: ClientIo,
    login: Login,
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
        if let Err(wait) = shared.router.check_rate(route.root.id, route.root.tier) {
            let text = format!(
                "the tenant's rate limit is spent; retry in {} ms",
                wait.as_millis().max(1)
            );
            refuse(&mut client, first, "53400", &text).await;
            continue;
        }
        if let Err(e) = shared.ensure_role(&route, login.role).await {
            let (code, text) = e.refusal(tenant);
            refuse(&mut client, first, code, text).await;
            continue;
        }
        let waited = Instant::now();
        let mut session = match shared.router.wire_session(&route, login.role).await {
            Ok(session) => session,
            Err(e) => {
                refuse(&mut client, first, "53300", &format!("{e}; try again")).await;
                continue;
            }
        };
        ::metrics::histogram!(crate::telemetry::metrics::GATEWAY_WAIT)
            .record(waited.elapsed().as_secs_f64());
        *login.cancel_slot.lock().expect("cancel slot") = session.raw().cancel.clone();
        let end = transaction(&mut client, &mut session, first, &mut statements).await;
        *login.cancel_slot.lock().expect("cancel slot") = None;
        ::metrics::counter!(crate::telemetry::metrics::GATEWAY_TRANSACTIONS, "tier" => route.root.tier.as_str())
            .increment(1);
        match end {
            Ok(End::Idle) => {}
            Ok(End::ClientGone) | Err(_) => {
                session.broken = true;
                return;
            }
            Ok(End::SessionLost) => {
                session.broken = true;
                fatal(&mut client, "08006", "the tenant's database session ended").await;
                return;
            }
        }
    }
}

/// Relays one transaction, from `first` until the server is idle with
/// nothing of the client's pending.
async fn transaction(
    client: &mut ClientIo,
    session: &mut WireConnection,
    first: Frame,
    statements: &mut Statements,
) -> std::io::Result<End> {
    let mut state = Flow::default();
    let mut to_server = BytesMut::new();
    if session.leaves_state {
        wire::message(&mut to_server, b'Q', |b| wire::put_cstr(b, RESET));
        state.sent += 1;
        state.resetting = true;
        session.leaves_state = false;
    }
    state.forward(first, statements, session, &mut to_server)?;
    // What came with the first message (a Parse's Describe and Sync).
    if take_client(client, &mut state, statements, session, &mut to_server)? {
        return Ok(End::ClientGone);
    }
    let mut to_client = BytesMut::new();
    loop {
        if !to_server.is_empty() {
            session.raw().io.stream.write_all(&to_server).await?;
            to_server.clear();
        }
        let raw = session.raw();
        tokio::select! {
            more = client.fill() => {
                if !more? || take_client(client, &mut state, statements, session, &mut to_server)? {
                    return Ok(End::ClientGone);
                }
            }
            more = raw.io.fill() => {
                if !more.unwrap_or(false) {
                    return Ok(End::SessionLost);
                }
                let mut idle = false;
                while let Some(len) = raw.io.complete()? {
                    let frame = raw.io.buf.split_to(len);
                    idle = state.answer(&frame, &mut to_client);
                }
                if !to_client.is_empty() {
                    client.stream.write_all(&to_client).await?;
                    to_client.clear();
                }
                if idle && client.complete()?.is_none() {
                    return Ok(End::Idle);
                }
            }
        }
    }
}

/// Forwards the client's whole messages that have arrived; whether the
/// client said it is leaving (`Terminate`).
fn take_client(
    client: &mut ClientIo,
    state: &mut Flow,
    statements: &mut Statements,
    session: &mut WireConnection,
    to_server: &mut BytesMut,
) -> std::io::Result<bool> {
    while let Some(len) = client.complete()? {
        let frame = client.buf.split_to(len).freeze();
        let frame = Frame {
            tag: frame[0],
            bytes: frame,
        };
        if frame.tag == b'X' {
            return Ok(true);
        }
        state.forward(frame, statements, session, to_server)?;
    }
    Ok(false)
}

/// Where one transaction's exchange stands.
#[derive(Default)]
struct Flow {
    /// `Query`s and `Sync`s sent, and `ReadyForQuery`s received.
    sent: u64,
    received: u64,
    /// Extended-protocol messages sent since the last `Sync`.
    unsynced: bool,
    /// The reset's answers are still to be swallowed (up to its `Z`).
    resetting: bool,
    /// Each `ParseComplete`/`CloseComplete` to come: the `ReadyForQuery`
    /// count it belongs before, and whose it is.
    answers: VecDeque<(u64, Answer)>,
}

impl Flow {
    /// Sends a client message to the session (rewritten where it names a
    /// prepared statement).
    fn forward(
        &mut self,
        frame: Frame,
        statements: &mut Statements,
        session: &mut WireConnection,
        out: &mut BytesMut,
    ) -> std::io::Result<()> {
        let tag = frame.tag;
        if tag == b'Q' && forgets_statements(frame.body()) {
            // DEALLOCATE or DISCARD may drop the statements the gateway
            // made: they are made again when next used.
            session.prepared.clear();
        }
        let translated = statements.translate(frame, &mut session.prepared)?;
        session.leaves_state |= translated.leaves_state;
        for (bytes, answer) in translated.out {
            out.extend_from_slice(&bytes);
            if let Some(answer) = answer {
                self.answers.push_back((self.sent, answer));
            }
        }
        match tag {
            b'Q' | b'S' | b'F' => {
                self.sent += 1;
                if tag == b'S' {
                    self.unsynced = false;
                }
            }
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => self.unsynced = true,
            _ => {}
        }
        Ok(())
    }

    /// Takes one message of the session's; whether it left the session
    /// idle with nothing pending.
    fn answer(&mut self, frame: &[u8], to_client: &mut BytesMut) -> bool {
        let tag = frame[0];
        if self.resetting {
            if tag == b'Z' {
                self.resetting = false;
                self.received += 1;
            } else if tag == b'E' {
                tracing::warn!(error = %wire::error_text(&frame[5..]), "a gateway session's reset failed");
            }
            return false;
        }
        match tag {
            b'1' | b'3' => {
                // Answers whose `Sync` was answered never come (an error
                // skipped their messages).
                while self
                    .answers
                    .front()
                    .is_some_and(|(s, _)| *s < self.received)
                {
                    self.answers.pop_front();
                }
                if let Some((_, answer)) = self.answers.pop_front() {
                    if !answer.client && answer.tag == tag {
                        return false;
                    }
                }
                to_client.extend_from_slice(frame);
                false
            }
            b'Z' => {
                self.received += 1;
                to_client.extend_from_slice(frame);
                frame.get(5) == Some(&b'I') && self.received >= self.sent && !self.unsynced
            }
            _ => {
                to_client.extend_from_slice(frame);
                false
            }
        }
    }
}

/// Whether a simple query may drop prepared statements.
fn forgets_statements(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    text.contains("deallocate") || text.contains("discard")
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

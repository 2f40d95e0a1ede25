//! One transaction's relay: the client's messages to its session (with
//! prepared statements renamed, `statements`), the session's answers back,
//! until the server is idle with nothing of the client's pending.
//!
//! Rules:
//! - A session whose state the gateway lost is reported as such (`End`)
//!   and never pooled.
//! - Where the exchange stands is told to the client's watch (`watch.rs`):
//!   the server's turn or the client's inside a transaction.
//! - A setting the server reports to the client (`ParameterStatus`) is
//!   passed on and kept in the client's settings once the transaction
//!   ends; those the reset and `client_settings::apply` cause are not the
//!   client's and never reach it.

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;

use super::client::ClientIo;
use super::client_settings::ClientSettings;
use super::statements::{Answer, Statements};
use super::watch::Watch;
use crate::pg::wire::{self, Frame};
use crate::router::WireConnection;

/// The reset between two transactions: what a client may have left behind
/// in the session, except the prepared statements the gateway tracks.
pub(super) const RESET: &str =
    "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; \
                     SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// The reset for `session`: `RESET`, and `DEALLOCATE ALL` when a client's
/// SQL may have dropped prepared statements or made one by name; the
/// gateway then knows of none, and makes each again when next used. So
/// no statement of another client's runs under a name the gateway uses.
pub(super) fn reset(session: &mut WireConnection) -> std::borrow::Cow<'static, str> {
    if std::mem::take(&mut session.statements_unsure) {
        session.prepared.clear();
        format!("{RESET}; DEALLOCATE ALL").into()
    } else {
        RESET.into()
    }
}

/// How one transaction's relay ended.
pub(super) enum End {
    /// Idle again: the session may go back to its pool.
    Idle,
    /// The client left (or broke the protocol); the session is not reused.
    ClientGone,
    /// The session ended or broke; the client is told and let go.
    SessionLost,
    /// The client idled inside its transaction past its tier's limit
    /// (`watch.rs`); the client is told and let go.
    IdledOut,
}

/// Relays one transaction, from `first` until the server is idle with
/// nothing of the client's pending.
pub(super) async fn transaction(
    client: &mut ClientIo,
    session: &mut WireConnection,
    first: Frame,
    statements: &mut Statements,
    watch: &Watch,
    settings: &mut ClientSettings,
) -> std::io::Result<End> {
    let mut state = Flow::default();
    let mut to_server = BytesMut::new();
    if session.leaves_state {
        let reset = reset(session);
        wire::message(&mut to_server, b'Q', |b| wire::put_cstr(b, &reset));
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
        let waiting = watch.is_waiting();
        // The session's answers first: a client is never kept waiting for
        // them by its own next messages, and no random draw per message.
        tokio::select! {
            biased;
            more = raw.io.fill() => {
                if !more.unwrap_or(false) {
                    return Ok(End::SessionLost);
                }
                let (mut idle, before, mut completed) = (false, state.received, false);
                while let Some(len) = raw.io.complete()? {
                    completed |= raw.io.buf[0] == b'C';
                    idle = state.answer(&raw.io.buf[..len], &mut to_client);
                    raw.io.buf.advance(len);
                }
                if !to_client.is_empty() {
                    client.stream.write_all(&to_client).await?;
                    to_client.clear();
                }
                if idle && client.complete()?.is_none() {
                    for (name, value) in &state.reported {
                        settings.keep(name, value);
                    }
                    return Ok(End::Idle);
                }
                if state.received > before {
                    // A statement ended: the next one's time, or the client's turn.
                    if state.settled() {
                        watch.waiting();
                    } else {
                        watch.busy();
                    }
                } else if completed && state.unsynced {
                    // A statement of a pipeline the client drives by Flush
                    // ended: the next one's time starts.
                    watch.busy();
                }
            }
            more = client.fill() => {
                if !more? || take_client(client, &mut state, statements, session, &mut to_server)? {
                    return Ok(End::ClientGone);
                }
                if waiting && !to_server.is_empty() {
                    watch.busy();
                }
            }
            // Also while the client's messages wait for a `Sync` it has not
            // sent: the watch ends a transaction held open so (`watch.rs`).
            () = watch.idled_out.notified(), if waiting || state.unsynced => {
                if watch.idled_too_long() || watch.stuck() {
                    return Ok(End::IdledOut);
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
    /// The settings the server reported to the client, in order.
    reported: Vec<(String, String)>,
}

impl Flow {
    /// Whether every exchange sent was answered, nothing of the client's
    /// pending on the server.
    fn settled(&self) -> bool {
        self.received >= self.sent && !self.unsynced
    }

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
        // A query's text: a simple query's, or a Parse's after its name.
        let query = match tag {
            b'Q' => Some(frame.bytes.slice(5..)),
            b'P' => frame
                .body()
                .iter()
                .position(|&b| b == 0)
                .map(|end| frame.bytes.slice(6 + end..)),
            _ => None,
        };
        let translated = statements.translate(frame, &mut session.prepared)?;
        if let Some(query) = query.filter(|_| translated.leaves_state) {
            // DEALLOCATE or DISCARD may drop the statements the gateway
            // made, and PREPARE make one under a name it uses: the next
            // reset drops them all, and they are made again when next used.
            if forgets_statements(&query) {
                session.statements_unsure = true;
                // A simple query that drops them all has done so before
                // anything after it runs: they are made again when next
                // used, in this transaction too.
                if tag == b'Q' && drops_all_statements(&query) {
                    session.prepared.clear();
                }
            }
        }
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
            b'S' => {
                if let Some(setting) = parameter_status(&frame[5..]) {
                    self.reported.push(setting);
                }
                to_client.extend_from_slice(frame);
                false
            }
            _ => {
                to_client.extend_from_slice(frame);
                false
            }
        }
    }
}

/// A `ParameterStatus` body: the setting's name and value.
fn parameter_status(body: &[u8]) -> Option<(String, String)> {
    let mut parts = body.split(|b| *b == 0);
    let name = std::str::from_utf8(parts.next()?).ok()?;
    let value = std::str::from_utf8(parts.next()?).ok()?;
    Some((name.to_string(), value.to_string()))
}

/// Whether a query's text drops every prepared statement (`DEALLOCATE
/// [PREPARE] ALL`, `DISCARD ALL`).
fn drops_all_statements(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    let words: Vec<&str> = text.split_whitespace().collect();
    words.windows(2).any(|w| {
        matches!(
            w,
            ["discard", "all"] | ["deallocate", "all"] | ["prepare", "all"]
        )
    })
}

/// Whether a query's text may drop prepared statements, or make one by
/// name.
fn forgets_statements(body: &[u8]) -> bool {
    super::session_state::forgets_statements(&String::from_utf8_lossy(body))
}

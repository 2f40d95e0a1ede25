//! Prepared statements across transactions. A client's named statement
//! gets a server-side name made from its text and parameter types
//! (`tp_<digest>`), so clients of one tenant share it on a session; the
//! gateway remembers each client's statements and prepares one again on
//! whichever session serves the client when the client uses it (as
//! PgBouncer 1.21+ and PgDog do).
//!
//! Only the messages that name a statement are rewritten (`Parse`, `Bind`,
//! `Describe`, `Close`); every other message passes as it came.

use std::collections::{HashMap, HashSet};

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::pg::wire::{self, Frame};

/// A client's named statements: its name → the server's name and the
/// `Parse` that makes it.
#[derive(Default)]
pub(super) struct Statements {
    by_client: HashMap<String, Prepared>,
}

#[derive(Clone)]
struct Prepared {
    server: String,
    parse: Bytes,
    /// Whether running it may leave state in the session.
    leaves_state: bool,
}

/// What to send the backend for one client message, in order; each
/// `Parse` or `Close` answered with `1` or `3`, and whether the client
/// expects that answer (`false`: the gateway's own, to be swallowed).
pub(super) struct Translated {
    pub out: Vec<(Bytes, Option<Answer>)>,
    /// Whether the message runs (or makes) SQL that may leave state in the
    /// session past its transaction (`session_state`).
    pub leaves_state: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Answer {
    pub tag: u8,
    pub client: bool,
}

impl Statements {
    /// The messages that carry `frame` to a session whose prepared
    /// statements are `prepared` (updated as they will be once sent).
    pub(super) fn translate(
        &mut self,
        frame: Frame,
        prepared: &mut HashSet<String>,
    ) -> std::io::Result<Translated> {
        let mut out = Vec::new();
        let mut leaves_state = false;
        let body = frame.body();
        match frame.tag {
            b'Q' => {
                leaves_state = super::session_state::leaves_state(wire::cstr(body)?.0);
                out.push((frame.bytes.clone(), None));
            }
            b'P' => {
                let (name, rest) = wire::cstr(body)?;
                leaves_state = super::session_state::leaves_state(wire::cstr(rest)?.0);
                if name.is_empty() {
                    out.push((frame.bytes.clone(), Some(answer(b'1'))));
                } else {
                    let server = server_name(rest);
                    let parse = with_name(b'P', &[], &server, rest);
                    if prepared.contains(&server) {
                        // The client expects its ParseComplete: close the
                        // server's copy and make it again, in order.
                        out.push((close(&server), Some(ours(b'3'))));
                    }
                    prepared.insert(server.clone());
                    out.push((parse.clone(), Some(answer(b'1'))));
                    self.by_client.insert(
                        name.to_string(),
                        Prepared {
                            server,
                            parse,
                            leaves_state,
                        },
                    );
                }
            }
            b'B' => {
                let (portal, rest) = wire::cstr(body)?;
                let (statement, rest) = wire::cstr(rest)?;
                match self.known(statement) {
                    Some(p) => {
                        leaves_state = p.leaves_state;
                        self.ensure(&p, prepared, &mut out);
                        let mut head = portal.as_bytes().to_vec();
                        head.push(0);
                        out.push((with_name(b'B', &head, &p.server, rest), None));
                    }
                    None => out.push((frame.bytes.clone(), None)),
                }
            }
            b'D' | b'C' if body.first() == Some(&b'S') => {
                let (statement, _) = wire::cstr(&body[1..])?;
                let answer_of = (frame.tag == b'C').then(|| answer(b'3'));
                match self.known(statement) {
                    Some(p) if frame.tag == b'D' => {
                        self.ensure(&p, prepared, &mut out);
                        out.push((with_name(b'D', b"S", &p.server, &[]), None));
                    }
                    Some(p) => {
                        // Closed on the server too: another client that uses
                        // it has it prepared again when it needs it.
                        self.by_client.remove(statement);
                        prepared.remove(&p.server);
                        out.push((with_name(b'C', b"S", &p.server, &[]), answer_of));
                    }
                    None => out.push((frame.bytes.clone(), answer_of)),
                }
            }
            b'C' => out.push((frame.bytes.clone(), Some(answer(b'3')))),
            // A function called by its OID: its name is not in the message,
            // so any may be (`set_config`, an advisory lock).
            b'F' => {
                leaves_state = true;
                out.push((frame.bytes.clone(), None));
            }
            _ => out.push((frame.bytes.clone(), None)),
        }
        Ok(Translated { out, leaves_state })
    }

    fn known(&self, client_name: &str) -> Option<Prepared> {
        if client_name.is_empty() {
            return None;
        }
        self.by_client.get(client_name).cloned()
    }

    /// Prepares `p` on the session first when it lacks it.
    fn ensure(
        &self,
        p: &Prepared,
        prepared: &mut HashSet<String>,
        out: &mut Vec<(Bytes, Option<Answer>)>,
    ) {
        if prepared.insert(p.server.clone()) {
            out.push((p.parse.clone(), Some(ours(b'1'))));
        }
    }
}

fn answer(tag: u8) -> Answer {
    Answer { tag, client: true }
}

fn ours(tag: u8) -> Answer {
    Answer { tag, client: false }
}

/// The server's name for a statement: its text and parameter types.
fn server_name(after_name: &[u8]) -> String {
    let digest = Sha256::digest(after_name);
    format!("tp_{}", hex::encode(&digest[..12]))
}

/// A message `tag` of `head`, then `name` and its NUL, then `rest`.
fn with_name(tag: u8, head: &[u8], name: &str, rest: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(6 + head.len() + name.len() + rest.len());
    wire::message(&mut out, tag, |b| {
        b.put_slice(head);
        wire::put_cstr(b, name);
        b.put_slice(rest);
    });
    out.freeze()
}

/// `Close` of the server's statement `name`.
fn close(name: &str) -> Bytes {
    with_name(b'C', b"S", name, &[])
}

#[cfg(test)]
mod tests;

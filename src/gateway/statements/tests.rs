//! Rewriting of the messages that name prepared statements.

use std::collections::HashSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

fn frame(tag: u8, body: &[u8]) -> Frame {
    let mut out = BytesMut::new();
    wire::message(&mut out, tag, |b| b.put_slice(body));
    let bytes = out.freeze();
    Frame { tag, bytes }
}

fn parse(name: &str, query: &str) -> Frame {
    frame(b'P', format!("{name}\0{query}\0\0\0").as_bytes())
}

fn bind(statement: &str) -> Frame {
    frame(b'B', format!("\0{statement}\0\0\0\0\0\0\0").as_bytes())
}

/// The statement name a rewritten message carries.
fn named(bytes: &Bytes) -> String {
    let body = &bytes[5..];
    let body = match bytes[0] {
        b'B' => wire::cstr(body).unwrap().1,
        b'D' | b'C' => &body[1..],
        _ => body,
    };
    wire::cstr(body).unwrap().0.to_string()
}

#[test]
fn a_statement_parsed_on_one_session_is_prepared_again_on_another_before_its_bind() {
    let mut statements = Statements::default();
    let mut first = HashSet::new();
    let out = statements
        .translate(parse("s1", "SELECT 1"), &mut first)
        .unwrap()
        .out;
    assert_eq!(out.len(), 1);
    let server = named(&out[0].0);
    assert!(server.starts_with("tp_"), "{server}");
    assert_eq!(
        out[0].1,
        Some(Answer {
            tag: b'1',
            client: true
        })
    );
    // On a second session, the Bind is preceded by the gateway's own Parse.
    let mut second = HashSet::new();
    let out = statements.translate(bind("s1"), &mut second).unwrap().out;
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].0[0], named(&out[0].0)), (b'P', server.clone()));
    assert_eq!(
        out[0].1,
        Some(Answer {
            tag: b'1',
            client: false
        })
    );
    assert_eq!((out[1].0[0], named(&out[1].0)), (b'B', server.clone()));
    // Once there, it is not prepared again.
    let out = statements.translate(bind("s1"), &mut second).unwrap().out;
    assert_eq!(out.len(), 1);
}

#[test]
fn the_same_text_parsed_again_on_a_session_that_has_it_is_closed_first_and_answered_once() {
    let mut statements = Statements::default();
    let mut session = HashSet::new();
    statements
        .translate(parse("a", "SELECT 2"), &mut session)
        .unwrap();
    let out = statements
        .translate(parse("b", "SELECT 2"), &mut session)
        .unwrap()
        .out;
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].0[0], out[0].1),
        (
            b'C',
            Some(Answer {
                tag: b'3',
                client: false
            })
        )
    );
    assert_eq!(
        (out[1].0[0], out[1].1),
        (
            b'P',
            Some(Answer {
                tag: b'1',
                client: true
            })
        )
    );
}

#[test]
fn unnamed_and_unknown_statements_and_other_messages_pass_as_they_came() {
    let mut statements = Statements::default();
    let mut session = HashSet::new();
    for f in [
        parse("", "SELECT 3"),
        bind(""),
        bind("never_parsed"),
        frame(b'S', b""),
        frame(b'Q', b"SELECT 4\0"),
    ] {
        let bytes = f.bytes.clone();
        let out = statements.translate(f, &mut session).unwrap().out;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, bytes);
    }
    assert!(session.is_empty());
}

#[test]
fn a_closed_statement_is_forgotten_by_the_client_and_the_session() {
    let mut statements = Statements::default();
    let mut session = HashSet::new();
    statements
        .translate(parse("s", "SELECT 5"), &mut session)
        .unwrap();
    let out = statements
        .translate(frame(b'C', b"Ss\0"), &mut session)
        .unwrap()
        .out;
    assert_eq!(
        out[0].1,
        Some(Answer {
            tag: b'3',
            client: true
        })
    );
    assert!(named(&out[0].0).starts_with("tp_"));
    assert!(session.is_empty());
    // A Bind of it now reaches the server as the client named it.
    let out = statements.translate(bind("s"), &mut session).unwrap().out;
    assert_eq!(named(&out[0].0), "s");
}

#[test]
fn a_message_cut_short_is_an_error_not_a_panic() {
    let mut statements = Statements::default();
    let mut session = HashSet::new();
    for f in [
        frame(b'P', b"no end"),
        frame(b'B', b"\0no end"),
        frame(b'D', b"S"),
        frame(b'C', b"Sx"),
    ] {
        assert!(statements.translate(f, &mut session).is_err());
    }
}

#[test]
fn a_statement_that_leaves_state_marks_its_session_where_it_is_parsed_and_wherever_it_runs() {
    let mut statements = Statements::default();
    let mut first = HashSet::new();
    let set = statements
        .translate(
            parse("s", "SELECT set_config('search_path', $1, false)"),
            &mut first,
        )
        .unwrap();
    assert!(set.leaves_state);
    let plain = statements
        .translate(parse("p", "SELECT 1"), &mut first)
        .unwrap();
    assert!(!plain.leaves_state);
    // Run on another session: that one is marked too, and only by `s`.
    let mut second = HashSet::new();
    assert!(
        !statements
            .translate(bind("p"), &mut second)
            .unwrap()
            .leaves_state
    );
    assert!(
        statements
            .translate(bind("s"), &mut second)
            .unwrap()
            .leaves_state
    );
    let query = frame(b'Q', b"SET search_path = x\0");
    assert!(
        statements
            .translate(query, &mut second)
            .unwrap()
            .leaves_state
    );
    let query = frame(b'Q', b"SELECT 1\0");
    assert!(
        !statements
            .translate(query, &mut second)
            .unwrap()
            .leaves_state
    );
}

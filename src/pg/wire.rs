//! The PostgreSQL protocol's framing (a type byte and a length), read as
//! whole messages without decoding them, and the few server messages the
//! gateway writes itself. Reading what the backend sends uses
//! `postgres_protocol`'s parser; the client's messages are forwarded as the
//! bytes that came.
//!
//! Rule: no message larger than `MAX_MESSAGE` is buffered; a peer that
//! announces one is cut off, so a client cannot make the gateway hold
//! gigabytes.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest message taken from a client or a backend (PostgreSQL's own
/// limit for most messages is 1 GB; 64 MiB covers any sane statement).
pub const MAX_MESSAGE: usize = 64 << 20;

pub const SSL_REQUEST: i32 = 80_877_103;
pub const GSSENC_REQUEST: i32 = 80_877_104;
pub const CANCEL_REQUEST: i32 = 80_877_102;
pub const PROTOCOL_3: i32 = 196_608;

/// One whole message: its type byte and its bytes, header included.
#[derive(Debug, Clone)]
pub struct Frame {
    pub tag: u8,
    pub bytes: Bytes,
}

impl Frame {
    /// The body, after the type byte and the length.
    pub fn body(&self) -> &[u8] {
        &self.bytes[5..]
    }
}

/// A stream read in whole messages.
pub struct Reader<S> {
    pub stream: S,
    pub buf: BytesMut,
}

impl<S: AsyncRead + Unpin> Reader<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(8192),
        }
    }

    /// Reads more; `false` at the end of the stream.
    pub async fn fill(&mut self) -> io::Result<bool> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    /// The length of the whole message at the front of the buffer, when it
    /// has all arrived.
    pub fn complete(&self) -> io::Result<Option<usize>> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = i32::from_be_bytes(self.buf[1..5].try_into().expect("4 bytes"));
        let len = usize::try_from(len)
            .ok()
            .filter(|l| (4..=MAX_MESSAGE).contains(l))
            .ok_or_else(|| invalid("a message with an impossible length"))?;
        Ok((self.buf.len() > len).then_some(len + 1))
    }

    /// The next whole message; `None` at a clean end of the stream.
    pub async fn message(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(len) = self.complete()? {
                let bytes = self.buf.split_to(len).freeze();
                return Ok(Some(Frame {
                    tag: bytes[0],
                    bytes,
                }));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// A message with no type byte (the start-up phase's): its body.
    pub async fn untyped(&mut self) -> io::Result<Bytes> {
        loop {
            if self.buf.len() >= 4 {
                let len = i32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes"));
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| (8..=10_000).contains(l))
                    .ok_or_else(|| invalid("a start-up packet with an impossible length"))?;
                if self.buf.len() >= len {
                    let mut packet = self.buf.split_to(len);
                    packet.advance(4);
                    return Ok(packet.freeze());
                }
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

pub fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A NUL-terminated string at the front of `body`, and the rest.
pub fn cstr(body: &[u8]) -> io::Result<(&str, &[u8])> {
    let end = body
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| invalid("a string without its end"))?;
    let text = std::str::from_utf8(&body[..end]).map_err(|_| invalid("a string not in UTF-8"))?;
    Ok((text, &body[end + 1..]))
}

/// The start-up packet's parameters (after its protocol version).
pub fn startup_parameters(body: &[u8]) -> io::Result<Vec<(String, String)>> {
    let mut rest = body;
    let mut params = Vec::new();
    while rest.first().is_some_and(|b| *b != 0) {
        let (name, after) = cstr(rest)?;
        let (value, after) = cstr(after)?;
        params.push((name.to_string(), value.to_string()));
        rest = after;
    }
    Ok(params)
}

/// Writes one message of type `tag` whose body `body` writes.
pub fn message(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let at = out.len();
    out.put_i32(0);
    body(out);
    let len = i32::try_from(out.len() - at).expect("a small message");
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

pub fn put_cstr(out: &mut BytesMut, text: &str) {
    out.put_slice(text.as_bytes());
    out.put_u8(0);
}

/// `Authentication*`: `code` and its data.
pub fn authentication(out: &mut BytesMut, code: i32, data: &[u8]) {
    message(out, b'R', |b| {
        b.put_i32(code);
        b.put_slice(data);
    });
}

pub fn parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    message(out, b'S', |b| {
        put_cstr(b, name);
        put_cstr(b, value);
    });
}

pub fn backend_key_data(out: &mut BytesMut, pid: i32, secret: i32) {
    message(out, b'K', |b| {
        b.put_i32(pid);
        b.put_i32(secret);
    });
}

pub fn ready_for_query(out: &mut BytesMut, status: u8) {
    message(out, b'Z', |b| b.put_u8(status));
}

/// `ErrorResponse` (severity `ERROR` or `FATAL`) with its SQLSTATE.
pub fn error(out: &mut BytesMut, severity: &str, code: &str, text: &str) {
    fields(out, b'E', severity, code, text);
}

/// `NoticeResponse` (severity `WARNING`, say) with its SQLSTATE.
pub fn notice(out: &mut BytesMut, severity: &str, code: &str, text: &str) {
    fields(out, b'N', severity, code, text);
}

fn fields(out: &mut BytesMut, tag: u8, severity: &str, code: &str, text: &str) {
    message(out, tag, |b| {
        for (field, value) in [
            (b'S', severity),
            (b'V', severity),
            (b'C', code),
            (b'M', text),
        ] {
            b.put_u8(field);
            put_cstr(b, value);
        }
        b.put_u8(0);
    });
}

/// The SQLSTATE of a backend `ErrorResponse` body, if it has one.
pub fn error_code(body: &[u8]) -> Option<String> {
    let mut rest = body;
    while let Some((&field, after)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let (value, after) = cstr(after).ok()?;
        if field == b'C' {
            return Some(value.to_string());
        }
        rest = after;
    }
    None
}

/// The message of a backend `ErrorResponse` body.
pub fn error_text(body: &[u8]) -> String {
    let mut rest = body;
    while let Some((&field, after)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let Ok((value, after)) = cstr(after) else {
            break;
        };
        if field == b'M' {
            return value.to_string();
        }
        rest = after;
    }
    "an error without a message".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_are_cut_whole_and_an_impossible_length_is_refused() {
        let mut out = BytesMut::new();
        ready_for_query(&mut out, b'I');
        parameter_status(&mut out, "a", "b");
        let mut reader = Reader::new(&out[..]);
        let first = reader.message().await.unwrap().unwrap();
        assert_eq!((first.tag, first.body()), (b'Z', &b"I"[..]));
        let second = reader.message().await.unwrap().unwrap();
        assert_eq!(second.body(), b"a\0b\0");
        assert!(reader.message().await.unwrap().is_none());
        let huge = [b'Q', 0x7f, 0xff, 0xff, 0xff];
        assert!(Reader::new(&huge[..]).message().await.is_err());
        let negative = [b'Q', 0xff, 0xff, 0xff, 0xff];
        assert!(Reader::new(&negative[..]).message().await.is_err());
        let cut = [b'Q', 0, 0, 0, 9, b'S'];
        assert!(Reader::new(&cut[..]).message().await.is_err());
    }

    #[test]
    fn an_error_written_here_reads_back_with_its_code_and_text() {
        let mut out = BytesMut::new();
        error(&mut out, "FATAL", "28P01", "no");
        assert_eq!(error_code(&out[5..]).as_deref(), Some("28P01"));
        assert_eq!(error_text(&out[5..]), "no");
        assert!(startup_parameters(b"user\0acme\0\0").unwrap() == [("user".into(), "acme".into())]);
        assert!(startup_parameters(b"user\0acme").is_err());
    }
}

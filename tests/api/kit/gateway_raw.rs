//! A gateway client at the message level, for what a driver would not
//! send (an extended-protocol transaction with no `Sync`).

use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::{backend::Message, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// A connection to the gateway as `user`, logged in by SCRAM with `key`,
/// at its first `ReadyForQuery`.
pub async fn logged_in(app: &TestApp, user: &str, key: &str) -> TcpStream {
    let port = app.gateway_port.expect("the gateway is on");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut out = BytesMut::new();
    frontend::startup_message([("user", user), ("database", user)], &mut out).unwrap();
    stream.write_all(&out).await.unwrap();
    let (mut buf, mut scram) = (BytesMut::new(), None);
    loop {
        out.clear();
        match next(&mut stream, &mut buf).await {
            Message::AuthenticationSasl(_) => {
                let first = ScramSha256::new(key.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response("SCRAM-SHA-256", first.message(), &mut out)
                    .unwrap();
                scram = Some(first);
            }
            Message::AuthenticationSaslContinue(body) => {
                let exchange = scram.as_mut().expect("SASL began");
                exchange.update(body.data()).unwrap();
                frontend::sasl_response(exchange.message(), &mut out).unwrap();
            }
            Message::AuthenticationSaslFinal(body) => {
                scram
                    .as_mut()
                    .expect("SASL began")
                    .finish(body.data())
                    .unwrap();
            }
            Message::ReadyForQuery(_) => return stream,
            Message::ErrorResponse(_) => panic!("the gateway refused the login"),
            _ => {}
        }
        if !out.is_empty() {
            stream.write_all(&out).await.unwrap();
        }
    }
}

/// A Bind of the unnamed statement to the unnamed portal, no parameters.
pub fn bind_unnamed(out: &mut BytesMut) {
    out.put_u8(b'B');
    out.put_i32(12);
    out.put_u8(0);
    out.put_u8(0);
    out.put_i16(0);
    out.put_i16(0);
    out.put_i16(0);
}

/// The next message from the gateway.
pub async fn next(stream: &mut TcpStream, buf: &mut BytesMut) -> Message {
    loop {
        if let Some(message) = Message::parse(buf).unwrap() {
            return message;
        }
        let read = stream.read_buf(buf).await.unwrap();
        assert!(read > 0, "the gateway closed the connection");
    }
}

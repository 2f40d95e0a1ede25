//! Sessions spoken at the message level, for the gateway: the same socket,
//! TLS policy and credentials as `connect_closing`, but after the start-up
//! the caller reads and writes protocol messages itself, so a client's
//! messages can be forwarded as they came. The start-up uses
//! `postgres_protocol` (tokio-postgres's own codec and SCRAM client).
//!
//! Rule: a raw session is ended with `close`, which sends `Terminate` and
//! waits for the server to close its end (as `ClosingSocket` does), so a
//! budget permit released after it never overlaps the backend.

use std::io;

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use super::closing::{open_host, ClosingSocket};
use super::wire::{error_code, error_text, Reader};
use super::PgConfig;

/// A stream a raw session runs over (TLS or not).
pub trait RawIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> RawIo for T {}

/// A session after its start-up: ready for a query.
pub struct RawSession {
    pub io: Reader<Box<dyn RawIo>>,
    /// What the server reported at start-up (`server_version`, …).
    pub parameters: Vec<(String, String)>,
    /// The backend's process id and cancel key.
    pub pid: i32,
    pub secret: i32,
    /// Where a cancel request for this session goes (shared: a client's
    /// slot takes it at every transaction).
    pub cancel: Option<std::sync::Arc<CancelTarget>>,
}

/// A session's backend as a cancel request names it: the host it was
/// opened on, its process id and its cancel key.
pub struct CancelTarget {
    config: PgConfig,
    host: usize,
    pid: i32,
    secret: i32,
}

impl CancelTarget {
    /// Asks the server to cancel what the session runs now: PostgreSQL's
    /// cancel request, on a connection of its own (TLS as the session's).
    pub async fn cancel(&self) -> Result<(), RawError> {
        let (socket, hostname) = open_host(&self.config, self.host).await?;
        let mut stream = self.config.negotiate_tls(socket, &hostname).await?;
        let mut out = BytesMut::new();
        frontend::cancel_request(self.pid, self.secret, &mut out);
        stream.write_all(&out).await?;
        // The server reads the request, then closes: wait for that.
        let _ = tokio::time::timeout(super::CLOSE_WAIT, stream.shutdown()).await;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("cannot reach the server: {0}")]
    Io(#[from] io::Error),
    #[error("the server refused the session: {message} ({code})")]
    Refused { code: String, message: String },
    #[error("the server requires TLS, which sslmode=disable turns off, or refused it")]
    Tls,
    #[error("the server asked for an authentication method the gateway does not speak")]
    Method,
    #[error("no host to connect to")]
    NoHost,
}

impl RawError {
    /// The server's SQLSTATE, when it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl PgConfig {
    /// Opens a session to the first host that takes it, as these settings
    /// say (user, password, database, options, TLS).
    pub async fn connect_raw_session(&self) -> Result<RawSession, RawError> {
        let mut last = RawError::NoHost;
        for i in 0..self.get_hosts().len() {
            let attempt = async {
                let (socket, hostname) = open_host(self, i).await?;
                let stream = self.negotiate_tls(socket, &hostname).await?;
                let mut session = self.start(stream).await?;
                session.cancel = Some(std::sync::Arc::new(CancelTarget {
                    config: self.clone(),
                    host: i,
                    pid: session.pid,
                    secret: session.secret,
                }));
                Ok(session)
            };
            match attempt.await {
                Ok(session) => return Ok(session),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn negotiate_tls(
        &self,
        mut socket: ClosingSocket,
        hostname: &str,
    ) -> Result<Box<dyn RawIo>, RawError> {
        let mode = self.tls.mode.wire();
        if mode == WireSslMode::Disable || hostname.is_empty() {
            return Ok(Box::new(socket));
        }
        let mut out = BytesMut::new();
        frontend::ssl_request(&mut out);
        socket.write_all(&out).await?;
        let mut answer = [0u8; 1];
        socket.read_exact(&mut answer).await?;
        match answer[0] {
            b'S' => {
                let mut make = self.tls.connector();
                let Ok(tls) =
                    MakeTlsConnect::<ClosingSocket>::make_tls_connect(&mut make, hostname);
                let stream = tls
                    .connect(socket)
                    .await
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Ok(Box::new(stream))
            }
            b'N' if mode == WireSslMode::Prefer => Ok(Box::new(socket)),
            _ => Err(RawError::Tls),
        }
    }

    async fn start(&self, stream: Box<dyn RawIo>) -> Result<RawSession, RawError> {
        let mut io = Reader::new(stream);
        let user = self.get_user().unwrap_or_default();
        let mut params = vec![("user", user), ("client_encoding", "UTF8")];
        if let Some(db) = self.get_dbname() {
            params.push(("database", db));
        }
        if let Some(options) = self.get_options() {
            params.push(("options", options));
        }
        if let Some(name) = self.get_application_name() {
            params.push(("application_name", name));
        }
        let mut out = BytesMut::new();
        frontend::startup_message(params.iter().copied(), &mut out)?;
        io.stream.write_all(&out).await?;
        let password = self.get_password().unwrap_or_default();
        let mut scram: Option<ScramSha256> = None;
        let mut session = RawSession {
            io,
            parameters: Vec::new(),
            pid: 0,
            secret: 0,
            cancel: None,
        };
        loop {
            let frame = session
                .io
                .message()
                .await?
                .ok_or(io::Error::from(io::ErrorKind::UnexpectedEof))?;
            let mut buf = BytesMut::from(&frame.bytes[..]);
            let message =
                Message::parse(&mut buf)?.ok_or(io::Error::from(io::ErrorKind::InvalidData))?;
            let mut out = BytesMut::new();
            match message {
                Message::AuthenticationOk | Message::NoticeResponse(_) => {}
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password, &mut out)?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = postgres_protocol::authentication::md5_hash(
                        user.as_bytes(),
                        password,
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut out)?;
                }
                Message::AuthenticationSasl(_) => {
                    // The mechanisms: NUL-terminated names after the code.
                    let offered = frame.body().get(4..).unwrap_or_default();
                    let found = offered
                        .split(|b| *b == 0)
                        .any(|m| m == SCRAM_SHA_256.as_bytes());
                    if !found {
                        return Err(RawError::Method);
                    }
                    let client = ScramSha256::new(password, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, client.message(), &mut out)?;
                    scram = Some(client);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let client = scram.as_mut().ok_or(RawError::Method)?;
                    client.update(body.data())?;
                    frontend::sasl_response(client.message(), &mut out)?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    scram
                        .as_mut()
                        .ok_or(RawError::Method)?
                        .finish(body.data())?;
                }
                Message::ParameterStatus(body) => {
                    session
                        .parameters
                        .push((body.name()?.to_string(), body.value()?.to_string()));
                }
                Message::BackendKeyData(body) => {
                    session.pid = body.process_id();
                    session.secret = body.secret_key();
                }
                Message::ReadyForQuery(_) => return Ok(session),
                Message::ErrorResponse(_) => {
                    return Err(RawError::Refused {
                        code: error_code(frame.body()).unwrap_or_default(),
                        message: error_text(frame.body()),
                    })
                }
                _ => return Err(RawError::Method),
            }
            if !out.is_empty() {
                session.io.stream.write_all(&out).await?;
            }
        }
    }
}

impl RawSession {
    /// Runs one simple query on an idle session and returns the first
    /// column of its first row, as text (`None`: no row, or NULL).
    pub async fn query_value(&mut self, sql: &str) -> Result<Option<String>, RawError> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out)?;
        self.io.stream.write_all(&out).await?;
        let (mut value, mut refused) = (None, None);
        loop {
            let frame = self
                .io
                .message()
                .await?
                .ok_or(io::Error::from(io::ErrorKind::UnexpectedEof))?;
            match frame.tag {
                b'D' if value.is_none() => {
                    // Column count (2 bytes), then the first column's length.
                    let body = frame.body();
                    let len = body
                        .get(2..6)
                        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                        .ok_or(io::Error::from(io::ErrorKind::InvalidData))?;
                    if let Ok(len) = usize::try_from(len) {
                        let text = body
                            .get(6..6 + len)
                            .ok_or(io::Error::from(io::ErrorKind::InvalidData))?;
                        value = Some(String::from_utf8_lossy(text).into_owned());
                    }
                }
                b'E' => {
                    refused = Some(RawError::Refused {
                        code: error_code(frame.body()).unwrap_or_default(),
                        message: error_text(frame.body()),
                    })
                }
                b'Z' => break,
                _ => {}
            }
        }
        match refused {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }

    /// Whether an idle session is still open: nothing has come from the
    /// server since its last answer. A backend that was ended (a pause's
    /// `pg_terminate_backend`, a restart) has sent its error and closed the
    /// stream by now; reading that is not waiting, so this never blocks.
    pub fn is_open(&mut self) -> bool {
        use futures_util::FutureExt;
        self.io.buf.is_empty() && self.io.fill().now_or_never().is_none()
    }

    /// Ends the session: `Terminate`, then the wait for the server's end.
    pub async fn close(mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let stream = &mut self.io.stream;
        let _ = tokio::time::timeout(super::CLOSE_WAIT, async {
            let _ = stream.write_all(&out).await;
            // The shutdown of a `ClosingSocket` (under TLS too) waits for EOF.
            let _ = stream.shutdown().await;
        })
        .await;
    }
}

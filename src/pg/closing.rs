//! Sessions whose driver ends only once the server has let go of them.
//!
//! tokio-postgres's connection future ends as soon as it has sent
//! `Terminate` and shut its own half of the socket; the server's backend is
//! then still alive, and still counted in `pg_stat_activity` and against
//! `max_connections`, until it has processed the message and exited. A
//! budget released at that point lets a new session open beside a backend
//! that has not gone yet. So these sessions run over `ClosingSocket`, whose
//! shutdown then reads until the server closes its end: a backend closes its
//! socket only on exit, after it has left the server's process table.
//!
//! The wait is bounded (`CLOSE_WAIT`), so a server that never answers cannot
//! hold a session's budget forever.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Sleep;
use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgConfig;

/// The longest a closing session waits for the server to close its end.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The stream under a closing session (TLS or not).
pub type ClosingStream = <MakeRustlsConnect as MakeTlsConnect<ClosingSocket>>::Stream;
/// A closing session's driver: it ends once the server has closed the socket.
pub type ClosingConnection = tokio_postgres::Connection<ClosingSocket, ClosingStream>;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot open a socket to the server: {0}")]
    Socket(#[source] io::Error),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
}

enum Io {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A TCP or Unix socket whose shutdown waits for the server's end to close.
pub struct ClosingSocket {
    io: Io,
    /// Set once our write half is shut: the deadline of the wait for EOF.
    closing: Option<Pin<Box<Sleep>>>,
}

impl ClosingSocket {
    fn io(&mut self) -> Pin<&mut dyn AsyncReadWrite> {
        match &mut self.io {
            Io::Tcp(s) => Pin::new(s as &mut dyn AsyncReadWrite),
            Io::Unix(s) => Pin::new(s as &mut dyn AsyncReadWrite),
        }
    }
}

trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> AsyncReadWrite for T {}

impl AsyncRead for ClosingSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io().poll_read(cx, buf)
    }
}

impl AsyncWrite for ClosingSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closing.is_none() {
            if ready!(self.io().poll_shutdown(cx)).is_err() {
                return Poll::Ready(Ok(()));
            }
            self.closing = Some(Box::pin(tokio::time::sleep(CLOSE_WAIT)));
        }
        // Whatever the server still sends is of no use now; its EOF is.
        let mut scratch = [0u8; 512];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match self.io().poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => break,
            }
        }
        let deadline = self.closing.as_mut().expect("closing");
        ready!(deadline.as_mut().poll(cx));
        Poll::Ready(Ok(()))
    }
}

impl PgConfig {
    /// Opens one session whose driver, once the session is closed, ends only
    /// when the server has closed its end (or after `CLOSE_WAIT`). For
    /// sessions counted against a budget: the count is the server's, so a
    /// permit must outlive the backend.
    pub async fn connect_closing(
        &self,
    ) -> Result<(tokio_postgres::Client, ClosingConnection), SessionError> {
        let config = &self.config;
        let mut last = None;
        for i in 0..config.get_hosts().len() {
            let (socket, hostname) = match open_host(config, i).await {
                Ok(opened) => opened,
                Err(e) => {
                    last = Some(SessionError::Socket(e));
                    continue;
                }
            };
            let hostname = hostname.as_str();
            let mut make = self.tls.connector();
            let Ok(tls) = MakeTlsConnect::<ClosingSocket>::make_tls_connect(&mut make, hostname);
            match config.connect_raw(socket, tls).await {
                Ok(session) => return Ok(session),
                Err(e) => last = Some(SessionError::Postgres(e)),
            }
        }
        Err(last.unwrap_or_else(|| {
            SessionError::Socket(io::Error::new(io::ErrorKind::InvalidInput, "no host"))
        }))
    }
}

/// A socket to the `i`th host of `config`, and the name its certificate
/// must carry (none over a Unix socket: PostgreSQL offers no TLS there).
pub(super) async fn open_host(
    config: &tokio_postgres::Config,
    i: usize,
) -> io::Result<(ClosingSocket, String)> {
    let ports = config.get_ports();
    let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    match &config.get_hosts()[i] {
        Host::Tcp(name) => {
            let addrs = match config.get_hostaddrs().get(i) {
                Some(ip) => vec![SocketAddr::new(*ip, port)],
                None => tokio::net::lookup_host((name.as_str(), port))
                    .await?
                    .collect(),
            };
            Ok((open_tcp(config, addrs).await?, name.clone()))
        }
        Host::Unix(dir) => Ok((open_unix(config, dir, port).await?, String::new())),
    }
}

fn closing(io: Io) -> ClosingSocket {
    ClosingSocket { io, closing: None }
}

async fn open_unix(
    config: &tokio_postgres::Config,
    dir: &Path,
    port: u16,
) -> io::Result<ClosingSocket> {
    let path = dir.join(format!(".s.PGSQL.{port}"));
    let timeout = config.get_connect_timeout().copied();
    Ok(closing(Io::Unix(
        within(timeout, UnixStream::connect(path)).await?,
    )))
}

/// The first of `addrs` that answers, set up as tokio-postgres sets its own.
async fn open_tcp(
    config: &tokio_postgres::Config,
    addrs: Vec<SocketAddr>,
) -> io::Result<ClosingSocket> {
    let timeout = config.get_connect_timeout().copied();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    for addr in addrs {
        let stream = match within(timeout, TcpStream::connect(addr)).await {
            Ok(stream) => stream,
            Err(e) => {
                last = e;
                continue;
            }
        };
        stream.set_nodelay(true)?;
        if config.get_keepalives() {
            let mut keepalive = TcpKeepalive::new().with_time(config.get_keepalives_idle());
            if let Some(every) = config.get_keepalives_interval() {
                keepalive = keepalive.with_interval(every);
            }
            SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
        }
        return Ok(closing(Io::Tcp(stream)));
    }
    Err(last)
}

async fn within<T>(
    timeout: Option<Duration>,
    connect: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match timeout {
        None => connect.await,
        Some(limit) => tokio::time::timeout(limit, connect)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))),
    }
}

//! One client connection: the start-up packets (TLS, GSS and cancel
//! requests, the start-up message), the login, then the relay.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::{GatewayError, Shared};
use crate::pg::wire::{self, Reader};
use crate::pg::RawIo;

/// The client's stream, TLS or not.
pub(super) type ClientIo = Reader<Box<dyn RawIo>>;

pub(super) fn tls_acceptor(
    cert: &Path,
    key: &Path,
) -> Result<tokio_rustls::TlsAcceptor, GatewayError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(GatewayError::Tls(format!(
            "{}: no certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// What the start-up phase ended with.
enum Start {
    /// A start-up message: its parameters.
    Login(Vec<(String, String)>),
    /// A cancel request, or a client that left: nothing more to do.
    Done,
}

/// Serves one client until it leaves. `permit` is its place among
/// `gateway.max_clients`; without one the client is told so and let go.
pub(super) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
    shutdown: CancellationToken,
) {
    let mut io: ClientIo = Reader::new(Box::new(stream));
    let Some(_permit) = permit else {
        fatal(&mut io, "53300", "sorry, too many clients already").await;
        return;
    };
    ::metrics::gauge!(crate::telemetry::metrics::GATEWAY_CLIENTS).increment(1.0);
    let timeout = std::time::Duration::from_secs(shared.settings.login_timeout_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    let started = tokio::time::timeout_at(deadline, start(&shared, io, peer)).await;
    let login = match started {
        Ok(Ok((io, Start::Login(params)))) => {
            let mut io = io;
            // Raced here rather than under the timeout above, so that a
            // client too slow to log in is told so, as PostgreSQL tells it.
            let logged_in = tokio::select! {
                logged_in = super::login::login(&shared, &mut io, peer, &params) => Some(logged_in),
                () = tokio::time::sleep_until(deadline) => None,
            };
            match logged_in {
                Some(Ok(login)) => Some((io, login)),
                Some(Err(refusal)) => {
                    fatal(&mut io, refusal.code, &refusal.message).await;
                    None
                }
                None => {
                    tracing::info!(%peer, "a gateway client did not log in within gateway.login_timeout_secs");
                    fatal(&mut io, "57014", "canceling authentication due to timeout").await;
                    None
                }
            }
        }
        Ok(Ok((_, Start::Done))) => None,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "a gateway client's start-up failed");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "a gateway client sent no start-up message within gateway.login_timeout_secs");
            None
        }
    };
    if let Some((io, login)) = login {
        let key = login.cancel_key;
        super::relay::relay(&shared, io, login, &shutdown).await;
        shared.forget_cancel(key);
    }
    ::metrics::gauge!(crate::telemetry::metrics::GATEWAY_CLIENTS).decrement(1.0);
}

/// Reads start-up packets until a start-up message: answers TLS and GSS
/// encryption requests, and takes a cancel request.
async fn start(
    shared: &Shared,
    mut io: ClientIo,
    peer: SocketAddr,
) -> std::io::Result<(ClientIo, Start)> {
    let mut encrypted = false;
    loop {
        let packet = io.untyped().await?;
        let code = i32::from_be_bytes(packet[..4].try_into().expect("4 bytes"));
        match code {
            wire::SSL_REQUEST if !encrypted => match &shared.tls {
                Some(acceptor) if io.buf.is_empty() => {
                    io.stream.write_all(b"S").await?;
                    let tls = acceptor.accept(io.stream).await?;
                    io = Reader::new(Box::new(tls));
                    encrypted = true;
                }
                _ => io.stream.write_all(b"N").await?,
            },
            wire::GSSENC_REQUEST if !encrypted => io.stream.write_all(b"N").await?,
            wire::CANCEL_REQUEST => {
                if let (Some(pid), Some(secret)) = (packet.get(4..8), packet.get(8..12)) {
                    let pid = i32::from_be_bytes(pid.try_into().expect("4 bytes"));
                    let secret = i32::from_be_bytes(secret.try_into().expect("4 bytes"));
                    shared.cancel((pid, secret));
                }
                return Ok((io, Start::Done));
            }
            version if version >> 16 == 3 => {
                if !encrypted && !peer.ip().is_loopback() && !shared.settings.allow_plain {
                    fatal(
                        &mut io,
                        "28000",
                        "this gateway takes unencrypted connections only from loopback; connect with sslmode=require",
                    )
                    .await;
                    return Ok((io, Start::Done));
                }
                let params = wire::startup_parameters(&packet[4..])?;
                if version & 0xffff != 0 {
                    negotiate_version(&mut io, &params).await?;
                }
                return Ok((io, Start::Login(params)));
            }
            _ => {
                fatal(&mut io, "08P01", "unsupported frontend protocol").await;
                return Ok((io, Start::Done));
            }
        }
    }
}

/// Tells a client that asked for protocol 3.x that it gets 3.0, and which
/// of its `_pq_.` options are not known.
async fn negotiate_version(io: &mut ClientIo, params: &[(String, String)]) -> std::io::Result<()> {
    let unknown: Vec<&str> = params
        .iter()
        .filter(|(name, _)| name.starts_with("_pq_."))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut out = BytesMut::new();
    wire::message(&mut out, b'v', |b| {
        b.put_i32(wire::PROTOCOL_3);
        b.put_i32(i32::try_from(unknown.len()).unwrap_or(0));
        for name in unknown {
            wire::put_cstr(b, name);
        }
    });
    io.stream.write_all(&out).await
}

/// Sends a FATAL error and ends the connection.
pub(super) async fn fatal(io: &mut ClientIo, code: &str, message: &str) {
    let mut out = BytesMut::new();
    wire::error(&mut out, "FATAL", code, message);
    let _ = io.stream.write_all(&out).await;
    let _ = io.stream.shutdown().await;
}

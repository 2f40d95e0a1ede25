//! The PostgreSQL-protocol gateway: any application or ORM reaches its
//! tenant's database through the router. The user name names the tenant
//! (its slug), the password is one of its API keys, checked by SCRAM
//! against the verifier kept when the key was minted (`auth::scram`).
//! Sessions are pooled per transaction on the router's wire pools, under
//! the same per-server budget as the HTTP plane.
//!
//! Rules:
//! - Scope is held by what the client cannot undo: the login role the
//!   session runs as (`login.rs`). A key whose rights no role expresses
//!   (a subtenant's, rows it owns, some tables only) is refused at login
//!   with a message that says so; nothing is kept in a setting the client
//!   can change.
//! - A plain (unencrypted) client is taken only from a loopback address,
//!   unless `gateway.allow_plain`.
//! - Failed logins are counted per client address like the HTTP API's
//!   refusals (`control_audit::Throttle`): past the limit each costs the
//!   client a second before its answer.
//! - A backend session goes back to its pool only between transactions,
//!   with no statement of the client pending, and is reset before another
//!   client uses it (`relay.rs`).

mod client;
mod login;
mod relay;
mod statements;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth::wire_keys::WireKeys;
use crate::config::GatewaySettings;
use crate::control_audit::Throttle;
use crate::router::Router;

/// What every client connection of the gateway shares.
pub(crate) struct Shared {
    router: Router,
    keys: WireKeys,
    settings: GatewaySettings,
    tls: Option<tokio_rustls::TlsAcceptor>,
    throttle: Throttle,
    clients: Arc<Semaphore>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("gateway TLS: {0}")]
    Tls(String),
}

/// The gateway, bound and ready to serve.
pub struct Gateway {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Gateway {
    /// Binds `settings.address()` (the caller checked it is on) and reads
    /// the TLS certificate and key, if set.
    pub async fn bind(
        address: SocketAddr,
        settings: &GatewaySettings,
        router: Router,
        keys: WireKeys,
        denials_per_minute: u32,
    ) -> Result<Self, GatewayError> {
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(client::tls_acceptor(cert, key)?),
            _ => None,
        };
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| GatewayError::Listen { address, source })?;
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                router,
                keys,
                settings: settings.clone(),
                tls,
                throttle: Throttle::new(denials_per_minute),
                clients: Arc::new(Semaphore::new(settings.max_clients)),
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves clients until `shutdown`; a client being served meanwhile
    /// finishes its connection on its own.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = self.listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, say: wait rather than spin.
                        tracing::warn!(error = %e, "the gateway could not accept a client");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = self.shared.clone();
                let permit = shared.clients.clone().try_acquire_owned().ok();
                tokio::spawn(client::serve(shared, stream, peer, permit));
            }
        })
    }
}

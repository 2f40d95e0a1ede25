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
//! - Refused logins are counted per client address like the HTTP API's
//!   refusals (`control_audit::Throttle`): past the limit a wrong key's
//!   answer comes a second late. Each is counted for the audit too
//!   (`control_audit::Denials`, route `gateway`).
//! - Every transaction served is metered as one data-plane request of its
//!   root tenant (`usage`); while the root is over a quota, a writer's
//!   transactions run as its reader, so writes fail read-only.
//! - A cancel request reaches a backend only with the key its client was
//!   given, and only while that backend serves that client's transaction.
//! - A backend session goes back to its pool only between transactions,
//!   with no statement of the client pending (`relay.rs`), and is reset
//!   before its next transaction whenever what it ran may have left state
//!   (`session_state.rs`: anything not recognised as plain).
//! - A login the server refuses (a client may change its own login's
//!   password) is made again, which sets the password back, before the
//!   transaction is given up on (`relay.rs`).

mod client;
mod client_settings;
mod login;
mod login_role;
mod relay;
mod session_state;
mod statements;
mod transaction;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth::wire_keys::WireKeys;
use crate::config::GatewaySettings;
use crate::control_audit::{Denials, Throttle};
use crate::usage::Usage;
use std::collections::HashMap;

use crate::domain::TenantId;
use crate::router::{Route, Router, RouterError, SchemaGap, WireRole};
use crate::tenants::{Tenants, TenantsError};
use uuid::Uuid;

/// What every client connection of the gateway shares.
pub(crate) struct Shared {
    router: Router,
    keys: WireKeys,
    /// Makes a tenant's reader, its writer login and its subtenants' logins.
    tenants: Tenants,
    /// Login roles being made, by tenant, server and role: the logins that
    /// find one unknown at once wait for one making (concurrent `CREATE
    /// ROLE` and `ALTER ROLE` of one role fail each other).
    making: moka::future::Cache<(TenantId, Uuid, WireRole), ()>,
    /// Each server's start-up parameters, as a session of one of its
    /// tenants reported them (`parameters`).
    server_parameters: std::sync::Mutex<HashMap<Uuid, Vec<(String, String)>>>,
    /// Logged-in clients by the cancel key they were given, and the
    /// session that serves each one's transaction now.
    cancels: std::sync::Mutex<HashMap<CancelKey, CancelSlot>>,
    settings: GatewaySettings,
    tls: Option<tokio_rustls::TlsAcceptor>,
    throttle: Throttle,
    /// Refused logins, counted for the audit.
    denials: Denials,
    /// Transactions, metered as data-plane requests.
    usage: Usage,
    clients: Arc<Semaphore>,
    /// What the clients' watches count time from.
    epoch: std::time::Instant,
}

/// What the gateway serves with: the router, the keys, and the services
/// its logins and transactions answer to.
pub struct GatewayDeps {
    pub router: Router,
    pub keys: WireKeys,
    pub tenants: Tenants,
    pub usage: Usage,
    pub denials: Denials,
    /// Refused logins a client address may have in a minute.
    pub denials_per_minute: u32,
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

/// How long a stopping gateway lets its connected clients finish.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// Why a login role could not be made sure of.
pub(super) enum RoleUnready {
    /// The tenant's database does not hold a subtenant login to its rows.
    Unscoped,
    Failed(TenantsError),
}

impl RoleUnready {
    /// The SQLSTATE and message a client is told.
    pub(super) fn refusal(&self, tenant: TenantId) -> (&'static str, String) {
        match self {
            RoleUnready::Unscoped => ("28000", SchemaGap::SubtenantRows.to_string()),
            RoleUnready::Failed(e) => {
                tracing::warn!(tenant.id = %tenant, error = e as &dyn std::error::Error, "a gateway login role could not be made");
                (
                    "57P03",
                    "the tenant's database cannot be reached now; try again".into(),
                )
            }
        }
    }
}

/// The process id and secret a client was given (`BackendKeyData`).
pub(crate) type CancelKey = (i32, i32);

/// A logged-in client's watch: the backend serving its transaction, while
/// one does, and the transaction's timeouts (`watch.rs`).
pub(crate) type CancelSlot = Arc<watch::Watch>;

impl Shared {
    /// The start-up parameters a client of `route` as `role` is told: the
    /// server's, as any of its sessions reported them, with the session's
    /// own user. Only the first login on a server needs a session for them:
    /// a login must not wait for a budget that its own traffic is using.
    async fn parameters(
        &self,
        route: &Route,
        role: WireRole,
    ) -> Result<Vec<(String, String)>, RouterError> {
        let known = self
            .server_parameters
            .lock()
            .expect("server parameters")
            .get(&route.server.id)
            .cloned();
        let mut parameters = match known {
            Some(known) => known,
            None => {
                let read = self.router.wire_parameters(route, role).await?;
                self.server_parameters
                    .lock()
                    .expect("server parameters")
                    .insert(route.server.id, read.clone());
                read
            }
        };
        let db = route.root.db_name.as_ref().map(|db| role.login(db));
        for (name, value) in parameters.iter_mut() {
            match name.as_str() {
                "session_authorization" => *value = db.clone().unwrap_or_default(),
                "is_superuser" => *value = "off".into(),
                _ => {}
            }
        }
        Ok(parameters)
    }

    /// A cancel key no other client of this process holds, and its slot.
    fn register_cancel(&self) -> (CancelKey, CancelSlot) {
        let slot = Arc::new(watch::Watch::new(self.epoch));
        let mut cancels = self.cancels.lock().expect("cancel keys");
        loop {
            let key = (rand::random::<i32>() & i32::MAX, rand::random::<i32>());
            if let std::collections::hash_map::Entry::Vacant(free) = cancels.entry(key) {
                free.insert(slot.clone());
                return (key, slot);
            }
        }
    }

    fn forget_cancel(&self, key: CancelKey) {
        self.cancels.lock().expect("cancel keys").remove(&key);
    }

    /// Relays a client's cancel request to the backend serving it now, if
    /// the key is one this process gave and a transaction is running.
    fn cancel(&self, key: CancelKey) {
        let target = self
            .cancels
            .lock()
            .expect("cancel keys")
            .get(&key)
            .and_then(|slot| slot.target.lock().expect("cancel slot").clone());
        if let Some(target) = target {
            tokio::spawn(async move {
                if let Err(e) = target.cancel().await {
                    tracing::info!(error = %e, "a gateway client's cancel request could not be relayed");
                }
            });
        }
    }

    /// Makes sure the login role `role` names exists on the route's server
    /// before a session is asked for. The tenant's writer and reader
    /// logins and a subtenant's logins are made here, at their first use on
    /// each server (the reader group too, for a tenant made before readers
    /// were).
    async fn ensure_role(&self, route: &Route, role: WireRole) -> Result<(), Arc<RoleUnready>> {
        // Known for as long as the router's pool for the role lives on this
        // server: a move away and back (whose clean-up dropped the role
        // there) makes sure again.
        if self.router.wire_role_known(route, role).await {
            return Ok(());
        }
        let (root, server) = (&route.root, &route.server);
        let make = async {
            let made = self
                .tenants
                .ensure_gateway_login(root, server, role.subtenant(), role.read_only())
                .await;
            // A refusal is an error, so the cache keeps it for no one.
            match made {
                Ok(true) => Ok(()),
                Ok(false) => Err(RoleUnready::Unscoped),
                Err(e) => Err(RoleUnready::Failed(e)),
            }
        };
        let key = (root.id, server.id, role);
        self.making.try_get_with(key, make).await?;
        // A pool that cannot be built now fails the session next.
        let _ = self.router.note_wire_role(route, role).await;
        // Known now, or made again by the next login (after a move away
        // and back, whose clean-up dropped it).
        self.making.invalidate(&key).await;
        Ok(())
    }
}

impl Gateway {
    /// Binds `settings.address()` (the caller checked it is on) and reads
    /// the TLS certificate and key, if set.
    pub async fn bind(
        address: SocketAddr,
        settings: &GatewaySettings,
        deps: GatewayDeps,
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
                router: deps.router,
                keys: deps.keys,
                tenants: deps.tenants,
                // Each entry is taken out once its making is noted; the
                // time limit is for a login cut short in between.
                making: moka::future::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(Duration::from_secs(5))
                    .build(),
                cancels: Default::default(),
                server_parameters: Default::default(),
                settings: settings.clone(),
                tls,
                throttle: Throttle::new(deps.denials_per_minute),
                denials: deps.denials,
                usage: deps.usage,
                epoch: std::time::Instant::now(),
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
        // Stops with `shutdown`, or when the runtime that started it ends
        // (the task below is dropped with it, and its guard cancels `stop`).
        let stop = shutdown.child_token();
        let guard = stop.clone().drop_guard();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        // A thread of its own, as PgBouncer has: a client's messages and
        // its session's answers are relayed without waking another thread,
        // which on a busy server cost more than the relaying itself.
        let started = std::thread::Builder::new()
            .name("gateway".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(self.serve(stop)),
                    Err(e) => tracing::error!(error = %e, "the gateway's runtime could not start"),
                }
                let _ = done.send(());
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "the gateway's thread could not start");
        }
        tokio::spawn(async move {
            let _guard = guard;
            let _ = finished.await;
        })
    }

    async fn serve(self, shutdown: CancellationToken) {
        // Registered with this thread's runtime, as every client will be.
        let listener = match self.listener.into_std().and_then(TcpListener::from_std) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(error = %e, "the gateway's listener could not move to its thread");
                return;
            }
        };
        tokio::spawn(watch::watchdog(self.shared.clone()));
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
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
            tokio::spawn(client::serve(
                shared,
                stream,
                peer,
                permit,
                shutdown.clone(),
            ));
        }
        // Each client finishes the transaction it is in, then is let go
        // (`relay`); their tasks live on this thread, so it waits for them.
        let all = u32::try_from(self.shared.settings.max_clients).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(DRAIN_WAIT, self.shared.clients.acquire_many(all)).await;
    }
}

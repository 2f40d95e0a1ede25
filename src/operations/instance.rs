//! This process's owner lease: a session on the catalog that holds a
//! session-level advisory lock (`OWNER_LOCK_CLASS`, key) for as long as the
//! process lives. PostgreSQL frees it the moment the process or the session
//! dies, which is how a peer tells a dead owner from a slow one without
//! waiting. If the session is lost, or stops answering, every operation this
//! process runs is abandoned at once (a peer may take it over now), and a new
//! lease with a new key is taken: the old key's operations are claimable.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::catalog::{CatalogError, Owner, OWNER_LOCK_CLASS};

/// How often the lease session is asked whether it still answers, and how
/// long an answer may take before the lease counts as lost.
const PING_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// The current lease (`None` while there is none), shared with every
/// running operation of this process.
#[derive(Clone)]
pub struct Instance {
    current: watch::Receiver<Option<Owner>>,
}

impl Instance {
    /// Takes the first lease (start-up fails if the catalog cannot give
    /// one), then keeps a lease until `shutdown`.
    pub async fn start(
        catalog: crate::pg::PgConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, CatalogError> {
        let (owner, session) = take_lease(&catalog).await?;
        let (tx, rx) = watch::channel(Some(owner));
        tokio::spawn(keep(catalog, session, tx, shutdown));
        Ok(Self { current: rx })
    }

    /// The lease this process holds now.
    pub fn owner(&self) -> Option<Owner> {
        *self.current.borrow()
    }

    /// Changes of the lease, for operations to abandon when theirs ends.
    pub fn watch(&self) -> watch::Receiver<Option<Owner>> {
        self.current.clone()
    }
}

/// A session holding an owner lock.
struct Session {
    client: tokio_postgres::Client,
    ended: tokio::task::JoinHandle<()>,
}

async fn take_lease(catalog: &crate::pg::PgConfig) -> Result<(Owner, Session), CatalogError> {
    let mut config = catalog.clone();
    config.application_name("tenant-plane-lease");
    let (client, connection) = config.connect().await.map_err(CatalogError::Connect)?;
    let ended = tokio::spawn(async move {
        let _ = connection.await;
    });
    loop {
        // Keys are positive; 0 marks a released operation nobody owns.
        let key = (rand::random::<u32>() >> 1).max(1) as i32;
        let taken: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&OWNER_LOCK_CLASS, &key],
            )
            .await?
            .get(0);
        if taken {
            let owner = Owner {
                id: Uuid::now_v7(),
                key,
            };
            tracing::debug!(owner = %owner.id, key, "took an owner lease");
            return Ok((owner, Session { client, ended }));
        }
    }
}

/// Holds the lease while its session answers; when it does not, publishes
/// that there is none, then takes a new one as soon as the catalog lets it.
async fn keep(
    catalog: crate::pg::PgConfig,
    mut session: Session,
    current: watch::Sender<Option<Owner>>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = watch_session(&mut session) => {}
        }
        tracing::warn!(
            "the owner lease on the catalog was lost; this process's operations are abandoned"
        );
        current.send_replace(None);
        session.ended.abort();
        let mut backoff = Duration::from_millis(100);
        session = loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            match take_lease(&catalog).await {
                Ok((owner, fresh)) => {
                    current.send_replace(Some(owner));
                    break fresh;
                }
                Err(e) => tracing::debug!(error = %e, "cannot take an owner lease yet"),
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        };
    }
    // Shutdown: closing the session frees the lock at once, so peers may
    // take over whatever this process leaves unfinished.
    current.send_replace(None);
    drop(session.client);
    let _ = session.ended.await;
}

/// Returns when the session has ended or stopped answering.
async fn watch_session(session: &mut Session) {
    loop {
        tokio::select! {
            _ = &mut session.ended => return,
            _ = tokio::time::sleep(PING_EVERY) => {}
        }
        match tokio::time::timeout(PING_TIMEOUT, session.client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
    }
}

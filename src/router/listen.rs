//! Cross-replica cache invalidation: a session on the catalog LISTENs to
//! `tenant_plane_tenants`, which a trigger notifies on every tenant or domain
//! change (the tenant's route is forgotten and its pool closed) and on every
//! server change (every route is forgotten), and on every quota breach
//! that begins or ends (`quota:<tenant>`: the route, which carries it, is
//! forgotten; the pool stays). If the session drops, the
//! listener reconnects and then forgets every route (notices may have been
//! missed meanwhile); until then cached routes are served.
//!
//! The API-key cache passes a `ChangeHook`: it hears each `apikey:<tenant>`
//! notice (`Some(tenant)`: a key was revoked or its expiry moved) and every
//! "forget everything" (`None`, a reconnect). Those notices go to the hook
//! alone: a key changes no route, and a route change no key.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::Router;
use crate::domain::TenantId;

/// The channel the catalog's triggers notify.
pub const CHANNEL: &str = "tenant_plane_tenants";

/// Told of API-key changes per tenant (`None`: forget every key).
pub type ChangeHook = std::sync::Arc<dyn Fn(Option<TenantId>) + Send + Sync>;

pub fn spawn_listener(
    router: Router,
    catalog: crate::pg::PgConfig,
    hook: ChangeHook,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                result = listen_once(&router, &catalog, &hook) => {
                    // Routes stay until their TTL: the catalog may be down, and
                    // cached tenants keep working. Reconnecting starts clean.
                    match result {
                        Ok(()) => backoff = Duration::from_millis(100),
                        Err(e) => tracing::warn!(error = %e, "catalog change listener lost its session; reconnecting"),
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    })
}

async fn listen_once(
    router: &Router,
    catalog: &crate::pg::PgConfig,
    hook: &ChangeHook,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = catalog.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Anything changed before LISTEN took effect is unknown: start clean.
    router.invalidate_all();
    hook(None);
    tokio::spawn(refresh_budgets(router.clone()));
    while let Some(payload) = rx.recv().await {
        if let Some(tenant) = payload.strip_prefix("apikey:") {
            if let Ok(id) = tenant.parse::<TenantId>() {
                hook(Some(id));
            }
        } else if let Some(tenant) = payload.strip_prefix("quota:") {
            // A quota breach began or ended: the route carries it; the
            // tenant's sessions are fine as they are.
            if let Ok(id) = tenant.parse::<TenantId>() {
                router.invalidate(id).await;
            }
        } else if payload.starts_with("server:") {
            // A server changed state or budget: every route may name it.
            router.invalidate_all();
            tokio::spawn(refresh_budgets(router.clone()));
        } else if let Ok(id) = payload.parse::<TenantId>() {
            router.invalidate(id).await;
            // A suspension ends the tenant's sessions and a migration changes
            // its schema: start from fresh connections either way.
            router.close_pool(id).await;
        }
    }
    drop(client);
    driver.await.unwrap_or(Ok(()))
}

/// Budgets follow catalog reads, off the listener's own loop.
async fn refresh_budgets(router: Router) {
    router.refresh_budgets().await;
}

//! The tenant commands, by noun: `Lifecycle` (create, change, suspend,
//! resume, delete, restore, purge, migrate), `Placement` (move, drain),
//! `Backups` (take, restore) and `Keys` (re-seal). The API, the console and
//! the CLI call these, and only these, to change a tenant.
//!
//! Rules every command holds, in this order:
//! 1. it takes the `Actor` and writes its audit record first
//!    (`control_audit::audited`): a change whose record cannot be written
//!    does not run;
//! 2. it makes the change under the tenant's lock (the operation row);
//! 3. it tells this replica's router (`RouteNotices`), never its caller;
//! 4. long work (a purge, a move, a drain, a backup, a restore) is spawned
//!    here, with what follows it (its router notices), once its checks
//!    passed under the lock: the command answers with the operation
//!    (`Launched`), which records how the work ended, with its error code
//!    in the same write as `failed`. The audit record of a long command says
//!    whether it was accepted.

mod backups;
mod keys;
mod lifecycle;
mod placement;

use std::future::Future;

use futures_util::future::BoxFuture;
use uuid::Uuid;

pub use backups::Backups;
pub use keys::Keys;
pub use lifecycle::{Lifecycle, MigrationHistory};
pub use placement::Placement;

use super::{Tenants, TenantsError};
use crate::catalog::CatalogError;
use crate::control_audit::{self, Actor, Change};
use crate::domain::TenantId;

/// A long command accepted: its operation, and its work, already running;
/// `E` is its noun's error.
#[must_use = "the operation runs either way; wait for it or answer with its id"]
pub struct Launched<T, E = TenantsError> {
    pub op: Uuid,
    task: Option<tokio::task::JoinHandle<Result<T, E>>>,
}

impl<T, E: From<CatalogError>> Launched<T, E> {
    /// Waits for the work's end (the CLI, which must not exit before it).
    /// An equal operation was running already: busy, as nothing new ran.
    /// Both refusals read as the catalog's own would (each noun's error
    /// takes them as its `Busy` and `Abandoned`).
    pub async fn wait(self) -> Result<T, E> {
        let Some(task) = self.task else {
            return Err(CatalogError::TenantBusy.into());
        };
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime shutting down cancels the task.
            Err(_) => Err(CatalogError::Fenced.into()),
        }
    }
}

/// Spawns `started`'s work, wrapped by `follow` (which awaits it and adds
/// what comes after, such as router notices), under the operation's span.
fn launch<T, E, F>(
    started: crate::operations::Started<T, E>,
    follow: impl FnOnce(BoxFuture<'static, Result<T, E>>) -> F,
) -> Launched<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
    F: Future<Output = Result<T, E>> + Send + 'static,
{
    let op = started.op;
    let task = started.run.map(|run| {
        let span = tracing::info_span!("operation", op = %op);
        tokio::spawn(tracing::Instrument::instrument(follow(run), span))
    });
    Launched { op, task }
}

impl Tenants {
    /// Runs `change` under `actor`'s audit record (see the module's rules).
    async fn audited<T, E: From<CatalogError>>(
        &self,
        actor: &Actor,
        (tenant, action, resource): (Option<TenantId>, &str, &str),
        change: impl Future<Output = Result<T, E>>,
        subject: impl FnOnce(&T) -> Option<(Option<TenantId>, String)>,
    ) -> Result<T, E> {
        let what = Change {
            tenant,
            action,
            resource,
        };
        control_audit::audited(&self.catalog, actor, what, change, subject).await
    }

    /// A long change of tenant `id` (a purge, a move) begun under `actor`'s
    /// audit record and launched; when its work ends, a failure is logged as
    /// `what` failed, and either way this replica forgets the tenant's route
    /// and closes its sessions at once (the others hear it from the catalog).
    async fn launch_tenant_change<T, E>(
        &self,
        actor: &Actor,
        (id, action, what): (TenantId, &str, &'static str),
        change: impl Future<Output = Result<crate::operations::Started<T, E>, E>>,
    ) -> Result<Launched<T, E>, E>
    where
        T: Send + 'static,
        E: From<CatalogError> + std::fmt::Display + Send + 'static,
    {
        let resource = format!("tenants/{id}");
        let audit = (Some(id), action, resource.as_str());
        let started = self.audited(actor, audit, change, |_| None).await?;
        let routes = self.routes.clone();
        Ok(launch(started, move |run| async move {
            let result = run.await;
            if let Err(e) = &result {
                tracing::warn!(tenant.id = %id, error = %e, "{what} failed");
            }
            routes.tenant_changed(id, true).await;
            result
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::tenants::Started;

    #[tokio::test]
    async fn launched_work_runs_spawned_with_what_follows_it_and_wait_returns_its_result() {
        let op = Uuid::now_v7();
        let followed = Arc::new(AtomicBool::new(false));
        let seen = followed.clone();
        let started = Started::new(op, async { Ok::<_, TenantsError>(7) });
        let launched = launch(started, move |run| async move {
            let result = run.await;
            seen.store(true, Ordering::SeqCst);
            result
        });
        assert_eq!(launched.op, op);
        assert_eq!(launched.wait().await.unwrap(), 7);
        assert!(followed.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn an_equal_operation_already_running_launches_nothing_and_waits_as_busy() {
        let op = Uuid::now_v7();
        let launched = launch(Started::<()>::already(op), |run| run);
        assert_eq!(launched.op, op);
        assert!(matches!(launched.wait().await, Err(TenantsError::Busy)));
    }
}

//! The tenant lifecycle: create, subtenants, configuration, suspend, resume,
//! delete, restore and purge. The API and the CLI both call this module.
//! Every step is an operation row in the catalog, written before its side
//! effect and finished after it; the reconciler finishes what a crash cut off.

mod backup;
mod clone_ids;
mod create;
mod error;
mod lifecycle;
mod migrate;
mod relocate;
mod restore_backup;
mod update;
mod view;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use uuid::Uuid;

pub use create::{NewSubtenantInput, NewTenantInput};
pub use error::TenantsError;
pub use lifecycle::Transition;
pub use migrate::TenantMigration;
pub use relocate::DrainItem;
pub use restore_backup::{RestoreReport, RestoreTarget};
pub use update::TenantPatch;
pub use view::{TenantList, TenantView};

use crate::catalog::role_purpose;
use crate::catalog::{Catalog, TenantRecord};
use crate::crypto::MasterKey;
use crate::domain::TenantId;
use crate::dump::DumpTools;
use crate::provisioner::Provisioner;

/// What the lifecycle needs: the catalog, the provisioner and the master key.
#[derive(Clone)]
pub struct Tenants {
    catalog: Catalog,
    provisioner: Provisioner,
    master_key: MasterKey,
    dump: DumpTools,
    in_flight: Arc<Mutex<HashSet<Uuid>>>,
    heartbeat_every: Duration,
}

/// How often a running operation beats, unless `with_heartbeat` says.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(20);

impl Tenants {
    pub fn new(catalog: Catalog, provisioner: Provisioner, master_key: MasterKey) -> Self {
        Self {
            catalog,
            provisioner,
            master_key,
            dump: DumpTools::locate(),
            in_flight: Arc::default(),
            heartbeat_every: DEFAULT_HEARTBEAT,
        }
    }

    /// Running operations beat this often; it must be well under the
    /// reconciler's `stale_after`, or another replica would take over an
    /// operation that is only slow.
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat_every = every.max(Duration::from_millis(100));
        self
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn provisioner(&self) -> &Provisioner {
        &self.provisioner
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master_key
    }

    pub fn dump_tools(&self) -> &DumpTools {
        &self.dump
    }

    /// Marks `op` as running in this process until the guard drops; `None`
    /// when it already is (the reconciler then leaves it alone). Until then
    /// its row's heartbeat is kept fresh, so that no replica's reconciler
    /// takes it for abandoned.
    pub fn try_track(&self, op: Uuid) -> Option<InFlight> {
        let fresh = self.in_flight.lock().expect("in-flight set").insert(op);
        fresh.then(|| InFlight {
            set: self.in_flight.clone(),
            op,
            heartbeat: self.beat(op),
        })
    }

    fn beat(&self, op: Uuid) -> tokio::task::AbortHandle {
        let (catalog, every) = (self.catalog.clone(), self.heartbeat_every);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticker.tick().await;
                if let Err(e) = catalog.heartbeat_operation(op).await {
                    tracing::warn!(op = %op, error = %e, "could not renew a running operation's heartbeat");
                }
            }
        })
        .abort_handle()
    }

    /// A tenant that exists and is not purged.
    pub(crate) async fn record(&self, id: TenantId) -> Result<TenantRecord, TenantsError> {
        match self.catalog.get_tenant(id).await? {
            Some(r) if r.purged_at.is_none() => Ok(r),
            _ => Err(TenantsError::NotFound),
        }
    }

    /// The tenant role's password, decrypted.
    pub(crate) fn role_password(
        &self,
        record: &TenantRecord,
    ) -> Result<SecretString, TenantsError> {
        record
            .role_password(&self.master_key)?
            .ok_or(TenantsError::Inconsistent("tenant has no role password"))
    }
}

impl Tenants {
    /// The reconciler's entry to finish an interrupted create; the caller
    /// holds the operation's `try_track` guard and its catalog claim.
    pub async fn finish_create_for_reconciler(
        &self,
        record: &TenantRecord,
        server: &crate::catalog::DbServer,
        op: Uuid,
    ) -> Result<TenantView, TenantsError> {
        self.finish_create(record, server, op).await
    }

    /// The reconciler's entry to finish an interrupted transition; the caller
    /// holds the operation's `try_track` guard and its catalog claim.
    pub async fn finish_transition_for_reconciler(
        &self,
        record: &TenantRecord,
        transition: Transition,
        op: Uuid,
    ) -> Result<TenantView, TenantsError> {
        self.finish_transition(record, transition, op).await
    }
}

/// Removes an operation from the in-flight set, and stops its heartbeat,
/// when its work ends, however it ends.
pub struct InFlight {
    set: Arc<Mutex<HashSet<Uuid>>>,
    op: Uuid,
    heartbeat: tokio::task::AbortHandle,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.op);
        }
    }
}

/// Associated data of a tenant's integration secrets.
pub(crate) fn settings_purpose(id: TenantId) -> String {
    format!("tenant-settings:{id}")
}

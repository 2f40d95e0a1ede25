//! The tenant lifecycle: create, subtenants, configuration, suspend, resume,
//! delete, restore and purge. The API and the CLI both call this module.
//! Every step is an operation row in the catalog, written before its side
//! effect and finished after it; the reconciler finishes what a crash cut off.
//! Callers change tenants through the commands (`commands`), which add the
//! audit record, the router notices and the spawned work to these steps.
//!
//! By noun, each with its own error: the lifecycle (the files here,
//! `TenantsError`), `placement/` (move, drain: `PlacementError`),
//! `backups/` (take, schedule, restore: `BackupsError`) and `keys/`
//! (re-seal: `KeysError`). `Tenants` is what they share: the catalog, the
//! provisioner, the master key, the running operations.
//!
//! Rules: a failure keeps its code whichever noun's error carries it. Where
//! one noun waits for another (a purge's final backup, a restore as a new
//! tenant placed like a create, `resume.rs` finishing every kind), the
//! other's error converts into its own: the failures both know become its
//! own variants (so `Busy` and `Abandoned` match however they arose), the
//! rest ride in a wrapper variant whose `code()` and answer are the
//! carried error's.

mod backups;
mod commands;
mod create;
mod error;
mod keys;
mod legacy_logins;
mod lifecycle;
mod migrate;
mod placement;
// Point-in-time restore from a server's WAL archive (pgBackRest).
mod pitr;
mod resume;
// One tenant's revert, with the down migrations.
mod revert;
mod shared_failures;
mod update;
mod view;

use secrecy::SecretString;

pub use backups::{BackupsError, RenamedSubtenant, RestoreReport, RestoreTarget};
// Rows the tenant queries answer with, named here so callers need not
// reach into the catalog.
pub use crate::catalog::{BackupRecord, TenantFilter};
pub use commands::{Backups, Keys, Launched, Lifecycle, MigrationHistory, Placement};
pub use create::{NewSubtenantInput, NewTenantInput};
pub use error::TenantsError;
pub use keys::{KeysError, RekeyReport};
pub use legacy_logins::Conversions;
pub use lifecycle::Transition;
pub use migrate::TenantMigration;
pub use pitr::{pitr_tools, PitrTools, RecoveryWindow};
pub use placement::plan::{PlannedMove, PlannedServer, RebalancePlan};
pub use placement::{DrainItem, DrainProgress, PlacementError, RebalanceItem, RebalanceProgress};
pub use revert::TenantRevert;
pub use update::TenantPatch;
pub use view::{TenantList, TenantView};

use crate::catalog::role_purpose;
use crate::catalog::{Catalog, DbServer, TenantRecord};
use crate::crypto::MasterKey;
use crate::domain::{DbName, TenantId};
use crate::dump::DumpTools;
use crate::operations::Operations;
use crate::provisioner::Provisioner;

/// A long lifecycle operation begun (see `operations::Started`).
pub type Started<T> = crate::operations::Started<T, TenantsError>;

/// What the lifecycle needs: the catalog, the provisioner, the master key,
/// and this process's running operations.
#[derive(Clone)]
pub struct Tenants {
    catalog: Catalog,
    provisioner: Provisioner,
    master_key: MasterKey,
    dump: DumpTools,
    ops: Operations,
    /// The backup location (`backup.location`), when one is set.
    backups: Option<crate::backup::BackupStore>,
    /// Where plaintext dumps go (`backup.scratch_dir`).
    scratch: crate::backup::Scratch,
    /// Tells this replica's router what the commands changed.
    routes: crate::route_notices::RouteNotices,
    /// Restores to a time (pgBackRest), when this process can run them.
    pitr: Option<std::sync::Arc<pitr::PitrTools>>,
}

impl Tenants {
    pub fn new(
        catalog: Catalog,
        provisioner: Provisioner,
        master_key: MasterKey,
        ops: Operations,
    ) -> Self {
        Self {
            catalog,
            provisioner,
            master_key,
            dump: DumpTools::locate(),
            ops,
            backups: None,
            scratch: crate::backup::Scratch::in_root(&std::env::temp_dir()),
            routes: crate::route_notices::RouteNotices::default(),
            pitr: None,
        }
    }

    /// The commands tell the router through `routes` (see `route_notices`).
    pub fn with_routes(mut self, routes: crate::route_notices::RouteNotices) -> Self {
        self.routes = routes;
        self
    }

    /// Plaintext dumps go to `scratch` (opened, and so swept, by the caller).
    pub fn with_scratch(mut self, scratch: crate::backup::Scratch) -> Self {
        self.scratch = scratch;
        self
    }

    /// This process's scratch folder, made if needed.
    pub(crate) fn scratch_dir(&self) -> std::io::Result<&std::path::Path> {
        self.scratch.dir()
    }

    /// Backups go to `store`; purges keep a final backup there first.
    pub fn with_backup_store(mut self, store: Option<crate::backup::BackupStore>) -> Self {
        self.backups = store;
        self
    }

    pub fn operations(&self) -> &Operations {
        &self.ops
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

    /// A tenant that exists and is not purged.
    pub(crate) async fn record(&self, id: TenantId) -> Result<TenantRecord, TenantsError> {
        match self.catalog.get_tenant(id).await? {
            Some(r) if r.purged_at.is_none() => Ok(r),
            _ => Err(TenantsError::NotFound),
        }
    }

    /// The server a root tenant's database is on.
    pub(crate) async fn server_of(&self, record: &TenantRecord) -> Result<DbServer, TenantsError> {
        let server_id = record
            .db_server_id
            .ok_or(TenantsError::Inconsistent("root tenant without placement"))?;
        self.catalog
            .get_server(server_id)
            .await?
            .ok_or(TenantsError::Inconsistent(
                "tenant placed on an unknown server",
            ))
    }

    /// Makes a gateway login of the root tenant on `server`, or makes its
    /// password current: a subtenant's (`subtenant`), or the tenant's own
    /// writer or reader (with the reader group, for a tenant made before
    /// readers were). `false`, and nothing made, for a subtenant's login
    /// where the tenant database does not hold it to its rows.
    pub async fn ensure_gateway_login(
        &self,
        root: &TenantRecord,
        server: &DbServer,
        subtenant: Option<TenantId>,
        read_only: bool,
    ) -> Result<bool, TenantsError> {
        let password = self.role_password(root)?;
        let db = DbName::for_tenant(root.id);
        let p = &self.provisioner;
        Ok(match subtenant {
            Some(sub) => {
                p.ensure_subtenant_login(server, &db, sub, read_only, &password)
                    .await?
            }
            None if read_only => {
                p.ensure_reader_role(server, &db, &password).await?;
                true
            }
            None => {
                p.ensure_wire_writer(server, &db, &password).await?;
                true
            }
        })
    }

    /// The root's direct subtenant with this slug, if one is not purged.
    pub async fn subtenant_by_slug(
        &self,
        root: TenantId,
        slug: &str,
    ) -> Result<Option<TenantId>, TenantsError> {
        let subtenants = self.catalog.subtenants_of(root).await?;
        Ok(subtenants
            .into_iter()
            .find(|t| t.slug.as_str() == slug)
            .map(|t| t.id))
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

/// Associated data of a tenant's integration secrets.
pub(crate) fn settings_purpose(id: TenantId) -> String {
    format!("tenant-settings:{id}")
}

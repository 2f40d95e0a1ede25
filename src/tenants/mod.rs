//! The tenant lifecycle: create, subtenants, configuration, suspend, resume,
//! delete, restore and purge. The API and the CLI both call this module.
//! Every step is an operation row in the catalog, written before its side
//! effect and finished after it; the reconciler finishes what a crash cut off.

mod backup;
mod backup_schedule;
mod clone_ids;
mod create;
mod drain;
mod error;
mod lifecycle;
mod migrate;
mod rekey;
mod relocate;
mod restore_backup;
mod restore_clone;
mod restore_stored;
mod resume;
mod update;
mod view;

pub use rekey::{RekeyError, RekeyReport};

use secrecy::SecretString;

pub use create::{NewSubtenantInput, NewTenantInput};
pub use drain::{DrainItem, DrainProgress};
pub use error::TenantsError;
pub use lifecycle::Transition;
pub use migrate::TenantMigration;
pub use restore_backup::{RenamedSubtenant, RestoreReport, RestoreTarget};
pub use update::TenantPatch;
pub use view::{TenantList, TenantView};

use crate::catalog::role_purpose;
use crate::catalog::{Catalog, TenantRecord};
use crate::crypto::MasterKey;
use crate::domain::TenantId;
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
        }
    }

    /// Plaintext dumps go to `scratch` (opened, and so swept, by the caller).
    pub fn with_scratch(mut self, scratch: crate::backup::Scratch) -> Self {
        self.scratch = scratch;
        self
    }

    /// This process's scratch folder, made if needed.
    pub(crate) fn scratch_dir(&self) -> Result<&std::path::Path, TenantsError> {
        self.scratch
            .dir()
            .map_err(|e| TenantsError::copy("creating the scratch folder", e))
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

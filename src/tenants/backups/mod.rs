//! Backups: taking a root tenant's backup (to a file, or into the backup
//! location as a `backup` operation; a purge's final one), scheduled
//! backups and their retention, and restoring an archive in place or as a
//! new tenant. All of them fail with `BackupsError`.
//!
//! Rules: an archive is verified whole before anything is touched; a
//! backup takes no tenant lock (its dump reads one snapshot), a restore in
//! place holds the tenant's; a restore never leaves a half-made database
//! behind a tenant the catalog serves; a purge's final backup is never
//! pruned.

mod backup;
mod clone_ids;
mod error;
mod restore_backup;
mod restore_clone;
mod restore_stored;
mod schedule;

pub(in crate::tenants) use backup::snapshot;
pub use error::BackupsError;
pub use restore_backup::{RenamedSubtenant, RestoreReport, RestoreTarget};

/// A backup's or a restore's long operation begun (see
/// `operations::Started`).
pub type Started<T> = crate::operations::Started<T, BackupsError>;

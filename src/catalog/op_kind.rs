//! What an operation does (`OpKind`), as the catalog stores it in
//! `operations.kind` and the API names it.

use serde::{Deserialize, Serialize};

/// What an operation does; also the API's `kind` (`GET /v1/operations?kind=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    CreateTenant,
    CreateSubtenant,
    Suspend,
    Resume,
    Delete,
    Restore,
    Purge,
    /// A root tenant's database copied to another server.
    Move,
    /// A tenant's database replaced (or a new tenant made) from a backup.
    RestoreBackup,
    /// One tenant's database migrated (on request, or as a fleet run's item).
    Migrate,
    /// `doctor --fix` repairing what belongs to one tenant.
    Repair,
    /// A subtenant's rows deleted from its root's database (on the root).
    SubtenantPurge,
    /// Every tenant moved off a server (subject: the server).
    Drain,
    /// A fleet migration run (subject: the run).
    FleetRun,
    /// A root tenant's archive written to the backup location.
    Backup,
    /// A stored backup restored as a new tenant (subject: the backup); the
    /// new tenant's own `restore_backup` operation makes it.
    RestoreAsNew,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateTenant => "create_tenant",
            Self::CreateSubtenant => "create_subtenant",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Delete => "delete",
            Self::Restore => "restore",
            Self::Purge => "purge",
            Self::Move => "move",
            Self::RestoreBackup => "restore_backup",
            Self::Migrate => "migrate",
            Self::Repair => "repair",
            Self::SubtenantPurge => "subtenant_purge",
            Self::Drain => "drain",
            Self::FleetRun => "fleet_run",
            Self::Backup => "backup",
            Self::RestoreAsNew => "restore_as_new",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub const ALL: [Self; 16] = [
        Self::CreateTenant,
        Self::CreateSubtenant,
        Self::Suspend,
        Self::Resume,
        Self::Delete,
        Self::Restore,
        Self::Purge,
        Self::Move,
        Self::RestoreBackup,
        Self::Migrate,
        Self::Repair,
        Self::SubtenantPurge,
        Self::Drain,
        Self::FleetRun,
        Self::Backup,
        Self::RestoreAsNew,
    ];
}

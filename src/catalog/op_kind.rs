//! What an operation does (`OpKind`), as the catalog stores it in
//! `operations.kind` (written through `ToSql`, read through `FromSql`) and
//! the API names it.
//!
//! Rule: a kind this release does not know reads as `OpKind::Unknown`,
//! never as an error. Every replica reads every operation row (listings,
//! the reconciler's scan, a view), and during a rolling upgrade a newer
//! release may write a kind an older one has never heard of: that row must
//! not make those reads fail. `Unknown` is never written, never parsed from
//! a request, and is not in the spec.

use std::error::Error;
use std::fmt;

use serde::{Deserialize, Serialize};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

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
    /// A fleet run's revert (subject: the revert).
    FleetRevert,
    /// A root tenant's archive written to the backup location.
    Backup,
    /// A stored backup restored as a new tenant (subject: the backup); the
    /// new tenant's own `restore_backup` operation makes it.
    RestoreAsNew,
    /// A fleet drift scan (subject: the scan).
    DriftScan,
    /// A pgBackRest base backup of a server (subject: the server).
    BaseBackup,
    /// A rebalance plan's moves (subject: the nil id, one at a time).
    Rebalance,
    /// A kind a newer release wrote (see the module's rule): this release
    /// cannot finish it, and shows it as `unknown`.
    #[serde(skip_deserializing)]
    Unknown,
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
            Self::FleetRevert => "fleet_revert",
            Self::Backup => "backup",
            Self::RestoreAsNew => "restore_as_new",
            Self::DriftScan => "drift_scan",
            Self::BaseBackup => "base_backup",
            Self::Rebalance => "rebalance",
            Self::Unknown => "unknown",
        }
    }

    /// A kind this release knows (never `Unknown`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Every kind this release writes (`Unknown` is only ever read).
    pub const ALL: [Self; 20] = [
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
        Self::DriftScan,
        Self::FleetRevert,
        Self::BaseBackup,
        Self::Rebalance,
    ];
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for OpKind {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if *self == Self::Unknown {
            return Err("an unknown operation kind is never written".into());
        }
        self.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for OpKind {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let text = <&str as FromSql>::from_sql(ty, raw)?;
        Ok(Self::parse(text).unwrap_or(Self::Unknown))
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_text_and_a_newer_one_reads_as_unknown() {
        for kind in OpKind::ALL {
            let mut out = bytes::BytesMut::new();
            kind.to_sql(&Type::TEXT, &mut out).unwrap();
            assert_eq!(OpKind::from_sql(&Type::TEXT, &out).unwrap(), kind);
            assert_eq!(OpKind::parse(kind.as_str()), Some(kind));
        }
        let read = OpKind::from_sql(&Type::TEXT, b"lint").unwrap();
        assert_eq!(read, OpKind::Unknown);
        assert_eq!(OpKind::parse("unknown"), None);
        let mut out = bytes::BytesMut::new();
        assert!(OpKind::Unknown.to_sql(&Type::TEXT, &mut out).is_err());
        assert!(serde_json::from_value::<OpKind>(serde_json::json!("unknown")).is_err());
    }
}

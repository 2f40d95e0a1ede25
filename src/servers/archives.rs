//! A server's pgBackRest archive, as its operator registers it: recorded
//! only once this machine has read it, its secrets sealed; and removed.
//!
//! Rule: tenant-plane only ever reads a registered server's repository
//! (`pgbackrest info` and `restore`); it never pushes to it or expires it.

use uuid::Uuid;

use super::{Servers, ServersError};
use crate::catalog::{wal_archive_purpose, DbServer, ServerPatch};
use crate::control_audit::{audited, Actor, Change};
use crate::wal_archive::Archive;

/// What a change of a server does to its archive.
pub enum ArchiveChange {
    Keep,
    Set(Box<Archive>),
    Remove,
}

impl Servers {
    /// `PATCH`'s command: the archive changed first (an archive this
    /// machine cannot read is refused before anything changes), then the
    /// operational fields; each change audited.
    pub async fn change(
        &self,
        actor: &Actor,
        id: Uuid,
        patch: &ServerPatch,
        archive: ArchiveChange,
    ) -> Result<DbServer, ServersError> {
        let changed = match &archive {
            ArchiveChange::Keep => None,
            ArchiveChange::Set(archive) => Some(self.set_wal_archive(actor, id, archive).await?),
            ArchiveChange::Remove => Some(self.remove_wal_archive(actor, id).await?),
        };
        match changed {
            Some(server) if patch.is_empty() => Ok(server),
            _ => self.update(actor, id, patch).await,
        }
    }

    /// Records the pgBackRest archive of server `id` that a restore to a
    /// time reads (replacing any): its stanza and repository, and its
    /// secrets sealed under the server's purpose. An archive this machine
    /// cannot read (no pgBackRest here, a wrong passphrase, a missing
    /// stanza, an unreachable bucket) is refused.
    pub async fn set_wal_archive(
        &self,
        actor: &Actor,
        id: Uuid,
        archive: &Archive,
    ) -> Result<DbServer, ServersError> {
        let resource = format!("servers/{id}/wal-archive");
        let what = Change {
            tenant: None,
            action: "servers.set_wal_archive",
            resource: &resource,
        };
        let change = async {
            self.get(id).await?;
            self.check_readable(archive).await?;
            let record = serde_json::to_value(&archive.record).expect("a record serializes");
            let sealed = self
                .master_key
                .seal(&wal_archive_purpose(id), archive.secrets_json().as_bytes());
            self.catalog.set_wal_archive(id, &record, &sealed).await?;
            self.get(id).await
        };
        audited(&self.catalog, actor, what, change, |_| None).await
    }

    /// Forgets server `id`'s archive: its tenants can no longer be restored
    /// to a time. The repository itself is left as it is.
    pub async fn remove_wal_archive(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<DbServer, ServersError> {
        let resource = format!("servers/{id}/wal-archive");
        let what = Change {
            tenant: None,
            action: "servers.remove_wal_archive",
            resource: &resource,
        };
        let change = async {
            self.get(id).await?;
            self.catalog.clear_wal_archive(id).await?;
            self.get(id).await
        };
        audited(&self.catalog, actor, what, change, |_| None).await
    }

    async fn check_readable(&self, archive: &Archive) -> Result<(), ServersError> {
        let reader = self.archive_reader.as_ref().ok_or_else(|| {
            ServersError::ArchiveUnreadable(
                "pgBackRest (or the PostgreSQL server programs a restore needs) is not installed on the control plane's machine".into(),
            )
        })?;
        let info = reader
            .info(archive)
            .await
            .map_err(|e| ServersError::ArchiveUnreadable(e.to_string()))?;
        match info.unreadable() {
            Some(why) => Err(ServersError::ArchiveUnreadable(format!(
                "stanza {}: {why}",
                archive.record.stanza
            ))),
            None => Ok(()),
        }
    }
}

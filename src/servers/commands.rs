//! The server commands the API and the CLI share: registering a server and
//! changing one. Each writes its audit record first (a change whose record
//! cannot be written does not run), then makes the change, then tells this
//! replica's router that every route may be stale (`RouteChange::All`);
//! the other replicas hear the catalog's change notice.

use uuid::Uuid;

use super::{NewServerInput, Servers, ServersError};
use crate::catalog::{wal_archive_purpose, DbServer, ServerPatch};
use crate::control_audit::{audited, Actor, Change};
use crate::route_notices::RouteChange;

impl Servers {
    /// Registers a server once it is checked by connecting to it.
    pub async fn register(
        &self,
        actor: &Actor,
        input: NewServerInput,
    ) -> Result<DbServer, ServersError> {
        let what = Change {
            tenant: None,
            action: "servers.register",
            resource: "servers",
        };
        audited(
            &self.catalog,
            actor,
            what,
            self.check_and_record(input),
            |s| Some((None, format!("servers/{}", s.id))),
        )
        .await
    }

    /// Changes a server's state, capacity or connection budget; this
    /// replica's routes and budget follow before it answers.
    pub async fn update(
        &self,
        actor: &Actor,
        id: Uuid,
        patch: &ServerPatch,
    ) -> Result<DbServer, ServersError> {
        let resource = format!("servers/{id}");
        let what = Change {
            tenant: None,
            action: "servers.update",
            resource: &resource,
        };
        let server = audited(&self.catalog, actor, what, self.patch(id, patch), |_| None).await?;
        self.routes.tell(RouteChange::All).await;
        Ok(server)
    }

    /// Records the pgBackRest archive of server `id` that a restore to a
    /// time reads (replacing any): its stanza and repository, and its
    /// passphrase sealed under the server's purpose. tenant-plane only ever
    /// reads that repository.
    pub async fn set_wal_archive(
        &self,
        actor: &Actor,
        id: Uuid,
        archive: &crate::wal_archive::Archive,
    ) -> Result<DbServer, ServersError> {
        let resource = format!("servers/{id}/wal-archive");
        let what = Change {
            tenant: None,
            action: "servers.set_wal_archive",
            resource: &resource,
        };
        let change = async {
            self.catalog
                .get_server(id)
                .await?
                .ok_or(ServersError::NotFound)?;
            let record = serde_json::to_value(&archive.record).expect("a record serializes");
            let sealed = self
                .master_key
                .seal(&wal_archive_purpose(id), archive.secrets_json().as_bytes());
            self.catalog.set_wal_archive(id, &record, &sealed).await?;
            self.catalog
                .get_server(id)
                .await?
                .ok_or(ServersError::NotFound)
        };
        audited(&self.catalog, actor, what, change, |_| None).await
    }
}

//! The server commands the API and the CLI share: registering a server and
//! changing one. Each writes its audit record first (a change whose record
//! cannot be written does not run), then makes the change, then tells this
//! replica's router that every route may be stale (`RouteChange::All`);
//! the other replicas hear the catalog's change notice.

use uuid::Uuid;

use super::{NewServerInput, Servers, ServersError};
use crate::catalog::{DbServer, ServerPatch};
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
}

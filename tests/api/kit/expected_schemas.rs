//! Drift detection's core on a test app: an `Inspector` over the app's own
//! catalog and provisioner (a second one stands for another replica), a
//! tenant's place and version, and the scratch databases on the server.

use tenant_plane::catalog::DbServer;
use tenant_plane::domain::{DbName, TenantId};
use tenant_plane::drift::Inspector;
use tenant_plane::provisioner::EXPECTED_DB_PREFIX;

use crate::helpers::TestApp;

/// A new inspector over the app's catalog and provisioner, with nothing in
/// memory: like another replica's.
pub async fn inspector(app: &TestApp) -> Inspector {
    let state = app.state().await;
    let services = state.services();
    Inspector::new(
        services.catalog.clone(),
        services.tenants.provisioner().clone(),
    )
}

/// The tenant's server, database and recorded schema version.
pub async fn tenant_target(app: &TestApp, id: &str) -> (DbServer, DbName, i32) {
    let state = app.state().await;
    let catalog = &state.services().catalog;
    let id: TenantId = id.parse().unwrap();
    let tenant = catalog.get_tenant(id).await.unwrap().unwrap();
    let server = catalog
        .get_server(tenant.db_server_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    (server, tenant.db_name.unwrap(), tenant.schema_version)
}

/// The installation the app tags what it makes with.
pub async fn installation(app: &TestApp) -> uuid::Uuid {
    app.state()
        .await
        .services()
        .tenants
        .provisioner()
        .installation()
}

/// Scratch databases on the test server tagged with this app's
/// installation (other apps share the server).
pub async fn scratch_databases(app: &TestApp) -> Vec<String> {
    let tag = format!("tenant-plane installation {}", installation(app).await);
    let pattern = format!("{}%", EXPECTED_DB_PREFIX.replace('_', "\\_"));
    app.server
        .connect("postgres")
        .await
        .query(
            "SELECT datname::text FROM pg_database
              WHERE datname LIKE $1 AND shobj_description(oid, 'pg_database') = $2",
            &[&pattern, &tag],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

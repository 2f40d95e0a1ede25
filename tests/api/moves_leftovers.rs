//! Moves onto a server that still holds something of the tenant from an
//! earlier stint there: the move makes the target's copy whole and writable.

use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::domain::TENANT_APP_ROLE;

use crate::cluster::start_extra;
use crate::kit::id;
use crate::kit::servers::{agent_for, register, server_of};

#[tokio::test]
async fn a_move_onto_a_server_holding_the_tenants_old_role_with_writes_paused_leaves_the_tenant_writable(
) {
    let app = crate::helpers::spawn_app().await;
    let t = app.create_tenant("comes-back", json!({})).await;
    let tid = t["id"].as_str().unwrap().to_string();
    let db = t["database"].as_str().unwrap().to_string();
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    agent_for(&app, &admin, "before").await;
    let extra = start_extra();
    let target = register(&app, "pg-return", &extra, json!([])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // What an earlier move away from this server can leave when dropping
    // its old copy failed: the tenant's role, its writes still paused.
    extra
        .server
        .connect("postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE \"{db}\" LOGIN IN ROLE {TENANT_APP_ROLE}; ALTER ROLE \"{db}\" SET default_transaction_read_only = on"
        ))
        .await
        .unwrap();

    let op = crate::kit::servers::move_tenant(&app, &tid, &target).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(server_of(&app, &tid).await, target);
    // Writes work on the new home, and its role carries no pause.
    agent_for(&app, &admin, "after").await;
    let paused: bool = extra
        .server
        .connect("postgres")
        .await
        .query_one(
            "SELECT coalesce(array_to_string(rolconfig, ',') LIKE '%default_transaction_read_only=on%', false)
               FROM pg_roles WHERE rolname = $1",
            &[&db],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        !paused,
        "the tenant's role on its new server is still paused"
    );
}

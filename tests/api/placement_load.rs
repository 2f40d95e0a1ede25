//! Placement by measured load: a new tenant goes to the server with the
//! most headroom by storage, sessions and request rate against its
//! capacity, not to the one with the fewest tenants.

use reqwest::Method;
use serde_json::{json, Value};

use crate::cluster::start_extra;
use crate::helpers::spawn_app;
use crate::kit::ok_json;
use crate::kit::servers::{catalog_server_id, register, server_of};

#[tokio::test]
async fn a_new_tenant_goes_to_the_server_with_the_most_measured_headroom_not_the_fewest_tenants() {
    let app = spawn_app().await;
    let catalog_server = catalog_server_id(&app).await;
    let extra = start_extra();
    let other = register(&app, "pg-roomy", &extra, json!([])).await;
    let other_id = other["id"].as_str().unwrap().to_string();
    // Three tenants on the extra server, none on the catalog's.
    for slug in ["a-one", "a-two", "a-three"] {
        let t = app.create_tenant(slug, json!({})).await;
        let on = server_of(&app, t["id"].as_str().unwrap()).await;
        if on != other_id {
            let moved = app
                .follow(
                    app.admin(
                        Method::POST,
                        &format!("/v1/tenants/{}/move", t["id"].as_str().unwrap()),
                        Some(json!({ "server": other_id })),
                    )
                    .await,
                )
                .await;
            assert_eq!(moved["state"], "succeeded", "{moved}");
        }
    }
    // The catalog's server is nearly full by storage: its own databases
    // (the catalog, the template) against a capacity of 1 MiB.
    let patch = |id: &str, body: Value| {
        let path = format!("/v1/servers/{id}");
        let app = &app;
        async move { ok_json(app.admin(Method::PATCH, &path, Some(body)).await, 200).await }
    };
    let server = patch(&catalog_server, json!({ "storage_capacity_mb": 1 })).await;
    assert_eq!(server["storage_capacity_mb"], 1, "{server}");
    let state = app.state().await;
    state.services().usage.sample().await.unwrap();
    let busy_first = ok_json(app.admin(Method::GET, "/v1/servers/load", None).await, 200).await;
    assert_eq!(
        busy_first["servers"][0]["server_id"], catalog_server,
        "{busy_first}"
    );
    assert!(busy_first["servers"][0]["utilisation"].as_f64().unwrap() > 1.0);

    let placed = app.create_tenant("by-load", json!({})).await;
    assert_eq!(
        server_of(&app, placed["id"].as_str().unwrap()).await,
        other_id,
        "the server with three tenants and room, not the empty full one"
    );

    // Given room, and the other server full, the catalog's server wins.
    patch(&catalog_server, json!({ "storage_capacity_mb": 1_000_000 })).await;
    patch(&other_id, json!({ "storage_capacity_mb": 1 })).await;
    state.services().usage.sample().await.unwrap();
    let placed = app.create_tenant("back", json!({})).await;
    assert_eq!(
        server_of(&app, placed["id"].as_str().unwrap()).await,
        catalog_server
    );
}

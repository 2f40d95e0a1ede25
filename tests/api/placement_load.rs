//! Placement by measured load: a new tenant goes to the server with the
//! most headroom by storage, sessions and request rate against its
//! capacity, not to the one with the fewest tenants, and tenants made
//! between two samples spread instead of herding.

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

#[tokio::test]
async fn tenants_made_in_a_burst_between_samples_spread_over_servers_instead_of_herding() {
    let app = spawn_app().await;
    let catalog_server = catalog_server_id(&app).await;
    let patch = |id: String, body: Value| {
        let path = format!("/v1/servers/{id}");
        let app = &app;
        async move { ok_json(app.admin(Method::PATCH, &path, Some(body)).await, 200).await }
    };
    // The catalog's server out of the running: full by storage.
    patch(catalog_server.clone(), json!({ "storage_capacity_mb": 1 })).await;
    let (first, second) = (start_extra(), start_extra());
    let mut extras = Vec::new();
    for (name, cluster) in [("pg-left", &first), ("pg-right", &second)] {
        let server = register(&app, name, cluster, json!([])).await;
        let id = server["id"].as_str().unwrap().to_string();
        patch(id.clone(), json!({ "storage_capacity_mb": 2000 })).await;
        extras.push(id);
    }
    let state = app.state().await;
    state.services().usage.sample().await.unwrap();

    // Six tenants, no sample in between.
    let mut placed = Vec::new();
    for n in 0..6 {
        let t = app.create_tenant(&format!("burst-{n}"), json!({})).await;
        placed.push(server_of(&app, t["id"].as_str().unwrap()).await);
    }
    for extra in &extras {
        let here = placed.iter().filter(|p| *p == extra).count();
        assert!(here >= 2, "{here} of 6 on {extra}: {placed:?}");
    }
    // The load shows the estimate placement used: the sample, plus a new
    // tenant database's weight for each tenant placed since.
    let loads = ok_json(app.admin(Method::GET, "/v1/servers/load", None).await, 200).await;
    for extra in &extras {
        let load = loads["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["server_id"] == extra.as_str())
            .unwrap();
        let (sampled, estimate) = (
            load["storage_bytes"].as_i64().unwrap(),
            load["storage_estimate_bytes"].as_i64().unwrap(),
        );
        let here = placed.iter().filter(|p| *p == extra).count() as i64;
        assert_eq!(load["tenants"], here, "{load}");
        assert!(estimate > sampled + here * 5_000_000, "{load}");
    }
}

//! Rebalancing a skewed fleet by measured load: the plan brings every
//! server under the target, shown before anything moves; applied as one
//! operation under write traffic, it loses no acknowledged write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;

use crate::helpers::spawn_app_without_rate_limits;
use crate::kit::cli::cli;
use crate::kit::servers::{agent_for, server_of, skewed_pair};
use crate::kit::{expect_error, id, ok_json};

#[tokio::test]
async fn the_plan_brings_a_skewed_pair_under_its_target_and_applying_it_loses_no_acknowledged_write(
) {
    let app = spawn_app_without_rate_limits().await;
    // Four tenants on the catalog's server, full by tenants (four of a
    // capacity of four), and a fresh server beside it.
    let slugs = ["skew-a", "skew-b", "skew-c", "skew-d"];
    let (tenants, roomy_id, _extra) = skewed_pair(&app, &slugs).await;

    // The plan, shown; nothing moves.
    let plan = ok_json(
        app.admin(Method::GET, "/v1/servers/rebalance?target=0.8", None)
            .await,
        200,
    )
    .await;
    let moves = plan["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 1, "four of four is brought to three: {plan}");
    assert_eq!(moves[0]["to"], roomy_id, "{plan}");
    assert!(plan["unresolved"].as_array().unwrap().is_empty(), "{plan}");
    for s in plan["servers"].as_array().unwrap() {
        assert!(s["after"].as_f64().unwrap() <= 0.8, "{s}");
    }
    let mover = moves[0]["tenant_id"].as_str().unwrap().to_string();
    assert_ne!(server_of(&app, &mover).await, roomy_id, "nothing moved yet");
    // The same plan from the command line.
    let (code, out, err) = cli(&app, &["server", "rebalance", "--plan", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["moves"][0]["tenant_id"], mover, "{out}");
    // Bad targets and widths are refused before anything runs.
    let bad = app
        .admin(Method::GET, "/v1/servers/rebalance?target=1.5", None)
        .await;
    expect_error(bad, 422, "invalid_field").await;
    let bad = app
        .admin(
            Method::POST,
            "/v1/servers/rebalance",
            Some(json!({ "parallel": 9 })),
        )
        .await;
    assert!(matches!(bad.status().as_u16(), 400 | 422));

    // Applied under writes to the tenant it moves.
    let tenant = tenants.iter().find(|t| t["id"] == mover.as_str()).unwrap();
    let admin = app.token(Role::TenantAdmin, Some(id(tenant)), None);
    let agent = agent_for(&app, &admin, "steady").await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (url, client, admin, stop) = (
            app.address.clone(),
            app.client.clone(),
            admin.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(format!("{url}/v1/calls"))
                    .bearer_auth(&admin)
                    .json(&json!({ "agent_id": agent, "status": "completed", "duration": 3 }))
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    201 => acknowledged.push(r.json::<Value>().await.unwrap()["id"].clone()),
                    503 => {}
                    other => panic!("a write got {other}: {}", r.text().await.unwrap()),
                }
                // Paced, so every acknowledged call fits one page below.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let op = app
        .follow(
            app.admin(
                Method::POST,
                "/v1/servers/rebalance",
                Some(json!({ "target": 0.8, "parallel": 2 })),
            )
            .await,
        )
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "rebalance");
    assert_eq!(op["progress"]["done"], 1, "{op}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.await.unwrap();
    assert!(acknowledged.len() > 5, "{} writes", acknowledged.len());
    assert_eq!(server_of(&app, &mover).await, roomy_id, "moved as planned");
    let calls = ok_json(
        app.request(Method::GET, "/v1/calls?limit=500")
            .bearer(&admin)
            .send()
            .await,
        200,
    )
    .await;
    let kept: Vec<&Value> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    for id in &acknowledged {
        assert!(
            kept.contains(&id),
            "acknowledged call {id} is there after the move"
        );
    }

    // Measured again, the fleet is under its target: nothing left to do.
    app.state().await.services().usage.sample().await.unwrap();
    let again = ok_json(
        app.admin(Method::GET, "/v1/servers/rebalance?target=0.8", None)
            .await,
        200,
    )
    .await;
    assert!(again["moves"].as_array().unwrap().is_empty(), "{again}");
}

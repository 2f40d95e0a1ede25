//! The rebalance in the console: the servers page shows the plan (each
//! move, and every server's utilisation now and after) before anything
//! moves; applied after a confirmation, it runs as one followed operation.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::kit::browser::{self, sign_in, ENTER};
use crate::kit::ok_json;
use crate::kit::servers::{server_of, skewed_pair};

#[tokio::test]
async fn the_servers_page_shows_the_rebalance_plan_before_anything_moves_then_follows_it() {
    let app = spawn_app().await;
    // Four tenants on the catalog's server, full by tenants, and a fresh
    // server beside it.
    let slugs = ["tilt-a", "tilt-b", "tilt-c", "tilt-d"];
    let (_, roomy_id, _extra) = skewed_pair(&app, &slugs).await;
    let plan = ok_json(
        app.admin(Method::GET, "/v1/servers/rebalance?target=0.8", None)
            .await,
        200,
    )
    .await;
    let mover = plan["moves"][0]["slug"].as_str().unwrap().to_string();
    let mover_id = plan["moves"][0]["tenant_id"].as_str().unwrap().to_string();

    let Some(b) = browser::start().await else {
        return;
    };
    sign_in(&b, &app.url("/console/"), &app.super_admin_token()).await;
    b.client.goto(&app.url("/console/#/servers")).await.unwrap();
    b.until(
        "the rebalance form",
        20,
        "return !!document.querySelector('#rebalance-form')",
    )
    .await;
    b.click("#rebalance-form button[type=submit]").await;
    b.until(
        "the plan",
        20,
        "return !!document.querySelector('#rebalance-summary')",
    )
    .await;
    let shown = b
        .eval("return [...document.querySelectorAll('#rebalance-plan tr[data-move]')].map((r) => r.dataset.move)")
        .await;
    assert_eq!(shown, json!([mover]), "the API's plan, move for move");
    let after: Value = b
        .eval(
            "return [...document.querySelectorAll('#rebalance-plan tr[data-server]')]\
             .map((r) => r.cells[2].textContent)",
        )
        .await;
    assert_eq!(after.as_array().unwrap().len(), 2, "{after}");
    assert_ne!(
        server_of(&app, &mover_id).await,
        roomy_id,
        "nothing moved yet"
    );
    b.screenshot("rebalance-plan").await;

    b.click("#rebalance-apply").await;
    b.until(
        "the confirmation",
        5,
        "return document.querySelector('#confirm').open",
    )
    .await;
    b.keys(ENTER).await;
    b.until(
        "the rebalance to succeed",
        60,
        "return (document.querySelector('#rebalance-progress')?.textContent || '').includes('1/1 moves · succeeded')",
    )
    .await;
    assert_eq!(server_of(&app, &mover_id).await, roomy_id);
    b.close().await;
}

//! Usage and quotas in the console, in a real browser: the tenant page
//! shows each quota against its limit (and a breach), and draws the
//! requests per hour as bars, one for each hour the report holds; the fleet
//! page draws the top tenants and each server's utilisation.

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;

use crate::helpers::spawn_app_with;
use crate::kit::browser::{self, sign_in};
use crate::kit::{call, id, ok_json};

#[tokio::test]
async fn the_tenant_page_shows_its_quotas_and_draws_one_bar_per_hour_of_requests() {
    let app = spawn_app_with(|s| s.usage.flush_secs = 3600).await;
    // Over its storage quota at once (a fresh database holds several MiB).
    let tenant = app
        .create_tenant("charted", json!({ "features": { "maxStorageMb": 1 } }))
        .await;
    let admin = app.token(Role::TenantAdmin, Some(id(&tenant)), None);
    for _ in 0..6 {
        let answer = call(&app, Method::GET, "/v1/agents", &admin, None, None).await;
        assert_eq!(answer.status(), 200);
    }
    // Two quieter tenants, for the fleet's top tenants.
    for (slug, n) in [("second", 3), ("third", 1)] {
        let quieter = app.create_tenant(slug, json!({})).await;
        let token = app.token(Role::TenantAdmin, Some(id(&quieter)), None);
        for _ in 0..n {
            let answer = call(&app, Method::GET, "/v1/agents", &token, None, None).await;
            assert_eq!(answer.status(), 200);
        }
    }
    let state = app.state().await;
    state.services().usage.flush().await;
    state.services().usage.sample().await.unwrap();
    let path = format!("/v1/tenants/{}/usage?granularity=hour", id(&tenant));
    let report = ok_json(app.admin(Method::GET, &path, None).await, 200).await;
    let hours = report["points"].as_array().unwrap().len();
    assert!(hours >= 1, "{report}");

    let Some(b) = browser::start().await else {
        return;
    };
    sign_in(&b, &app.url("/console/"), &app.super_admin_token()).await;
    b.client
        .goto(&app.url(&format!("/console/#/tenants/{}", id(&tenant))))
        .await
        .unwrap();
    b.until(
        "the usage chart",
        30,
        "return document.querySelectorAll('#usage-chart rect.bar').length > 0",
    )
    .await;
    let bars = b
        .eval("return document.querySelectorAll('#usage-chart rect.bar').length")
        .await;
    assert_eq!(bars, json!(hours), "one bar per hour the report holds");
    // The bar's value is what the API counted for that hour.
    let value = b
        .eval("return Number(document.querySelector('#usage-chart rect.bar').dataset.value)")
        .await;
    let first = &report["points"][0];
    let counted =
        first["requests_data"].as_i64().unwrap() + first["requests_control"].as_i64().unwrap();
    assert_eq!(value, json!(counted));
    // Drawn at its height: the tallest bar fills most of the plot.
    let tallest = b
        .eval(
            "const bars = [...document.querySelectorAll('#usage-chart rect.bar')]; \
             const top = bars.reduce((a, r) => Number(r.dataset.value) > Number(a.dataset.value) ? r : a); \
             return top.getBoundingClientRect().height / top.ownerSVGElement.getBoundingClientRect().height",
        )
        .await;
    assert!(
        tallest.as_f64().unwrap() > 0.6,
        "drawn {tallest} of the chart's height"
    );
    // The storage quota, over, and the monthly requests under theirs.
    let storage = b
        .eval("return document.querySelector('#usage-quotas [data-quota=storage_bytes]').dataset.exceeded")
        .await;
    assert_eq!(storage, json!("true"));
    let requests = b
        .eval("return document.querySelector('#usage-quotas [data-quota=requests_per_month]').dataset.exceeded")
        .await;
    assert_eq!(requests, json!("false"));
    let text = b.text("#tenant-usage").await;
    assert!(text.contains("writes refused"), "{text}");
    b.screenshot_at("tenant-usage", "#usage-chart").await;

    // The fleet page: the top tenants this month, and each server's
    // utilisation, a bar for each.
    b.client.goto(&app.url("/console/#/fleet")).await.unwrap();
    b.until(
        "the fleet's charts",
        30,
        "return document.querySelectorAll('#top-tenants-chart rect.bar').length > 0 \
         && document.querySelectorAll('#server-load-chart rect.bar').length > 0",
    )
    .await;
    let top = b
        .eval(
            "return [...document.querySelectorAll('#top-tenants-chart rect.bar')]\
             .map((r) => [r.dataset.label, Number(r.dataset.value)])",
        )
        .await;
    let listed = ok_json(
        app.admin(Method::GET, "/v1/usage/top?metric=requests&limit=10", None)
            .await,
        200,
    )
    .await;
    let expected: Vec<Value> = listed["tenants"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|t| json!([t["slug"], t["value"]]))
        .collect();
    assert_eq!(top, Value::Array(expected), "{listed}");
    let order: Vec<&str> = top
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[0].as_str().unwrap())
        .collect();
    assert_eq!(order, ["charted", "second", "third"], "the busiest first");
    let servers = ok_json(app.admin(Method::GET, "/v1/servers/load", None).await, 200).await;
    let drawn = b
        .eval("return document.querySelectorAll('#server-load-chart rect.bar').length")
        .await;
    assert_eq!(drawn, json!(servers["servers"].as_array().unwrap().len()));
    b.screenshot_at("fleet-usage", "#fleet-charts").await;
    b.close().await;
}

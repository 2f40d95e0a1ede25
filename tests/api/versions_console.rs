//! Tenants per schema version, drawn: `GET /v1/migrations/versions` with
//! `Accept: image/svg+xml` answers one bar per version, and the console's
//! fleet page shows those bars, each with the count the API gives.

use reqwest::header::ACCEPT;
use reqwest::Method;
use serde_json::{json, Value};

use crate::kit::browser::{self, sign_in};
use crate::kit::migrations::{app_on, create_tenants, migrations_dir, server_of_its_own};
use crate::kit::ok_json;
use crate::kit::revert::V2;

#[tokio::test]
async fn the_fleet_page_draws_one_bar_per_schema_version_with_its_tenant_count() {
    let extra = server_of_its_own().await;
    let (v1, v2) = (migrations_dir(&[]), migrations_dir(&V2));
    // Three tenants made at V1; a new deploy knows V2 and makes one more.
    let before = app_on(&extra, v1.path(), "versions_catalog").await;
    create_tenants(&before, 3).await;
    let app = app_on(&extra, v2.path(), "versions_catalog").await;
    app.create_tenant_named("newest").await;

    let versions = ok_json(
        app.admin(Method::GET, "/v1/migrations/versions", None)
            .await,
        200,
    )
    .await;
    let counts: Vec<(String, i64)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (format!("v{}", v["version"]), v["tenants"].as_i64().unwrap()))
        .collect();
    assert_eq!(counts, [("v1".to_string(), 3), ("v2".to_string(), 1)]);
    let svg = app
        .client
        .get(app.url("/v1/migrations/versions"))
        .bearer_auth(app.super_admin_token())
        .header(ACCEPT, "image/svg+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let svg = svg.text().await.unwrap();
    assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2, "{svg}");
    assert!(svg.contains("data-label=\"v1\" data-value=\"3\""), "{svg}");

    let Some(b) = browser::start().await else {
        return;
    };
    sign_in(&b, &app.url("/console/"), &app.super_admin_token()).await;
    b.client.goto(&app.url("/console/#/fleet")).await.unwrap();
    b.until(
        "the versions chart",
        30,
        "return document.querySelectorAll('#versions-chart rect.bar').length > 0",
    )
    .await;
    let drawn = b
        .eval(
            "return [...document.querySelectorAll('#versions-chart rect.bar')]\
             .map((r) => [r.dataset.label, Number(r.dataset.value)])",
        )
        .await;
    let expected: Vec<Value> = counts.iter().map(|(v, n)| json!([v, n])).collect();
    assert_eq!(
        drawn,
        Value::Array(expected),
        "a bar per version, its count"
    );
    b.screenshot_at("fleet-versions", "#versions-chart").await;
    b.close().await;
}

//! Input at the edges of what the spec allows: text holding a NUL, which
//! PostgreSQL cannot store; date-times with years chrono reads but the
//! spec's RFC 3339 does not; a mapping's group counted in characters, as
//! the spec counts; and the `Idempotency-Key` a subtenant's creation acts
//! on, declared. Each is a 4xx in the envelope, declared by its operation,
//! or accepted, never a 500.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};
use crate::kit::oidc::{allow_loopback, provider_body, set_provider, OidcProvider};
use crate::kit::spec::Spec;
use crate::kit::{call, expect_error, id};

/// `response` is `status` with `code`, and the spec declares that answer
/// for the operation `operation`.
async fn declared_error(
    spec: &Spec,
    operation: &str,
    response: reqwest::Response,
    status: u16,
    code: &str,
) {
    expect_error(response, status, code).await;
    let op = spec
        .operations()
        .into_iter()
        .find(|op| op.id == operation)
        .unwrap_or_else(|| panic!("no operation {operation}"));
    assert!(
        op.declares(status, code),
        "{operation} does not declare {status} {code}"
    );
}

#[tokio::test]
async fn text_holding_a_nul_in_a_query_string_or_a_body_is_refused_with_a_declared_4xx_and_stores_nothing(
) {
    let app = spawn_app().await;
    let spec = Spec::fetch(&app).await;
    let searched = app.admin(Method::GET, "/v1/tenants?q=a%00b", None).await;
    declared_error(&spec, "listTenants", searched, 400, "invalid_query").await;

    let tenant = app.create_tenant("nul-edges", json!({})).await;
    let token = app.token(Role::TenantAdmin, Some(id(&tenant)), None);
    let agent = json!({ "name": "a", "type": "chat", "configuration": { "k": "x\u{0}y" } });
    let made = call(&app, Method::POST, "/v1/agents", &token, None, Some(agent)).await;
    declared_error(&spec, "createAgent", made, 422, "invalid_body").await;
    let listed = call(&app, Method::GET, "/v1/agents", &token, None, None).await;
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listed["agents"], json!([]), "an agent was stored");

    let settings = json!({ "features": { "integrations": ["x\u{0}"] } });
    let body = json!({ "slug": "nul-settings", "name": "n", "settings": settings });
    let created = app.admin(Method::POST, "/v1/tenants", Some(body)).await;
    declared_error(&spec, "createTenant", created, 422, "invalid_body").await;
    let found = app
        .admin(Method::GET, "/v1/tenants?q=nul-settings", None)
        .await;
    let found: serde_json::Value = found.json().await.unwrap();
    assert_eq!(found["tenants"], json!([]), "a tenant was made");
}

#[tokio::test]
async fn a_query_date_time_outside_four_digit_years_is_refused_with_400_not_a_500_or_a_dropped_connection(
) {
    let app = spawn_app().await;
    let spec = Spec::fetch(&app).await;
    let tenant = app.create_tenant("date-edges", json!({})).await;
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let token = app.token(Role::TenantAdmin, Some(id(&tenant)), None);
    let calls = "/v1/calls?from=-5000-01-01T00:00:00Z";
    let listed = call(&app, Method::GET, calls, &token, None, None).await;
    declared_error(&spec, "listCalls", listed, 400, "invalid_query").await;
    let usage = format!("/v1/tenants/{tenant_id}/usage?to=-262143-01-01T00:00:00Z");
    let read = call(&app, Method::GET, &usage, &token, None, None).await;
    declared_error(&spec, "getTenantUsage", read, 400, "invalid_query").await;
    // The spec's own form is read as before.
    let fine = "/v1/calls?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z";
    let listed = call(&app, Method::GET, fine, &token, None, None).await;
    assert_eq!(
        listed.status().as_u16(),
        200,
        "{}",
        listed.text().await.unwrap()
    );
}

#[tokio::test]
async fn creating_a_subtenant_declares_the_idempotency_key_it_acts_on() {
    let app = spawn_app().await;
    let spec = Spec::fetch(&app).await;
    let root = app.create_tenant("idem-root", json!({})).await;
    let path = format!("/v1/tenants/{}/subtenants", root["id"].as_str().unwrap());
    let refused = app
        .client
        .post(app.url(&path))
        .bearer_auth(app.super_admin_token())
        .header("Idempotency-Key", "a b")
        .json(&json!({ "slug": "idem-sub", "name": "s" }))
        .send()
        .await
        .unwrap();
    declared_error(
        &spec,
        "createSubtenant",
        refused,
        400,
        "invalid_idempotency_key",
    )
    .await;
    let op = spec
        .operations()
        .into_iter()
        .find(|op| op.id == "createSubtenant")
        .unwrap();
    assert!(
        op.params
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case("Idempotency-Key") && p.location == "header"),
        "{:?}",
        op.params
    );
}

#[tokio::test]
async fn a_mapping_group_of_256_characters_in_more_bytes_is_accepted_as_the_spec_allows() {
    let app: TestApp = spawn_app_with(allow_loopback).await;
    let idp = OidcProvider::start(vec![], json!({}));
    let tenant = app.create_tenant("long-groups", json!({})).await;
    let group = "é".repeat(256);
    let body = provider_body(&idp.issuer(), json!([{ "group": group, "role": "viewer" }]));
    let set = set_provider(&app, tenant["id"].as_str().unwrap(), &body).await;
    assert_eq!(set.status().as_u16(), 200, "{}", set.text().await.unwrap());
}

//! `/metrics`: request, error, router, server and operation metrics, with
//! a tenant label only for as many tenants as the setting allows.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::spawn_app_with;
use crate::kit::{call, id, ok_json};

fn has_line(page: &str, name: &str, labels: &[&str]) -> bool {
    page.lines()
        .any(|l| l.starts_with(name) && labels.iter().all(|want| l.contains(want)))
}

#[tokio::test]
async fn metrics_show_requests_errors_router_pools_server_budgets_and_operation_durations() {
    let app = spawn_app_with(|s| {
        s.metrics.tenant_label_limit = 1;
        s.metrics.refresh_secs = 1;
    })
    .await;
    let first = app.create_tenant("metered-one", json!({})).await;
    let second = app.create_tenant("metered-two", json!({})).await;
    for t in [&first, &second] {
        let admin = app.token(Role::TenantAdmin, Some(id(t)), None);
        ok_json(
            call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
            200,
        )
        .await;
        ok_json(
            call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
            200,
        )
        .await;
        let missing = call(
            &app,
            Method::GET,
            &format!("/v1/agents/{}", uuid::Uuid::now_v7()),
            &admin,
            None,
            None,
        )
        .await;
        assert_eq!(missing.status(), 404);
    }
    // The server gauges come from the periodic refresh (every second
    // here), once the router holds a budget for the server.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let page = loop {
        let page = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        if has_line(
            &page,
            "tenant_plane_server_connection_budget",
            &["server=\"catalog\""],
        ) || std::time::Instant::now() > deadline
        {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let first_label = format!("tenant=\"{}\"", first["id"].as_str().unwrap());
    let second_label = format!("tenant=\"{}\"", second["id"].as_str().unwrap());
    assert!(
        has_line(
            &page,
            "tenant_plane_http_requests_total",
            &[
                "route=\"/v1/agents\"",
                "status=\"200\"",
                "tier=\"standard\"",
                &first_label
            ]
        ),
        "{page}"
    );
    assert!(has_line(
        &page,
        "tenant_plane_http_requests_total",
        &["route=\"/v1/agents\"", "tenant=\"other\""]
    ));
    assert!(
        !page.contains(&second_label),
        "the second tenant is over the label limit"
    );
    assert!(has_line(
        &page,
        "tenant_plane_http_request_duration_seconds_bucket",
        &["route=\"/v1/agents/{id}\""]
    ));
    assert!(has_line(
        &page,
        "tenant_plane_api_errors_total",
        &["code=\"agent_not_found\"", "status=\"404\""]
    ));
    assert!(has_line(
        &page,
        "tenant_plane_router_pool_misses_total",
        &[]
    ));
    assert!(has_line(&page, "tenant_plane_router_pool_hits_total", &[]));
    assert!(has_line(&page, "tenant_plane_router_pools_cached", &[]));
    assert!(has_line(
        &page,
        "tenant_plane_server_connections_open",
        &["server=\"catalog\""]
    ));
    assert!(has_line(
        &page,
        "tenant_plane_server_connection_budget",
        &["server=\"catalog\""]
    ));
    assert!(has_line(
        &page,
        "tenant_plane_operation_duration_seconds_bucket",
        &["operation=\"tenant_create\"", "outcome=\"ok\""]
    ));
    assert!(has_line(
        &page,
        "tenant_plane_operation_duration_seconds_bucket",
        &["operation=\"database_migrate\""]
    ));
}

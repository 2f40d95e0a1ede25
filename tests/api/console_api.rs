//! What the console reads, over plain HTTP: the tenant_admin's own
//! tenant and nothing else, the embedded files, the fleet summary and the
//! tenant search, and a fleet run's subject.

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app};

#[tokio::test]
async fn a_tenant_admin_reads_its_own_tenant_and_subtenants_but_no_other_tenant() {
    let app = spawn_app().await;
    let (own, _) = app.create_tenant_named("reader-own").await;
    let (other, _) = app.create_tenant_named("reader-other").await;
    let office = app.create_subtenant(&own, "reader-office").await;
    let foreign = app.create_subtenant(&other, "reader-foreign").await;
    let token = app.token(Role::TenantAdmin, Some(own.parse().unwrap()), None);
    let ok = |path: String| {
        let (app, token) = (&app, &token);
        async move { app.get(&path, Some(token)).await }
    };
    assert_eq!(ok(format!("/v1/tenants/{own}")).await.status(), 200);
    assert_eq!(
        ok(format!("/v1/tenants/{}", office["id"].as_str().unwrap()))
            .await
            .status(),
        200
    );
    let subs: Value = ok(format!("/v1/tenants?parent_id={own}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subs["tenants"].as_array().unwrap().len(), 1, "{subs}");
    assert_eq!(ok(format!("/v1/tenants/{own}/domains")).await.status(), 200);
    for path in [
        format!("/v1/tenants/{other}"),
        format!("/v1/tenants/{}", foreign["id"].as_str().unwrap()),
        format!("/v1/tenants/{}", uuid::Uuid::now_v7()),
        format!("/v1/tenants?parent_id={other}"),
        format!("/v1/tenants/{other}/domains"),
        format!("/v1/tenants/{other}/migrations"),
        "/v1/tenants".into(),
        "/v1/tenants?q=reader".into(),
        "/v1/fleet/summary".into(),
        "/v1/fleet/audit".into(),
    ] {
        let (status, code, _) = envelope(app.get(&path, Some(&token)).await).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{path}");
    }
    // A tenant_admin held to a subtenant reads no tenant record.
    let held = app.token(
        Role::TenantAdmin,
        Some(own.parse().unwrap()),
        Some(office["id"].as_str().unwrap().parse().unwrap()),
    );
    assert_eq!(
        app.get(&format!("/v1/tenants/{own}"), Some(&held))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_its_security_headers() {
    let app = spawn_app().await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirect.get(app.url("/console")).send().await.unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], "/console/");
    let page = app.client.get(app.url("/console/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    // Every script and style the page names is served, and nothing is fetched from elsewhere.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/console/") && s.len() > "/console/".len())
        .collect();
    assert!(assets.len() >= 6, "{assets:?}");
    for asset in assets {
        let response = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let etag = response.headers()["etag"].clone();
        let again = app
            .client
            .get(app.url(asset))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{asset}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("https://") && !body.contains("http://"),
            "{asset} loads nothing from elsewhere"
        );
    }
    let (status, code, _) = envelope(
        app.client
            .get(app.url("/console/missing.js"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (status, _, _) = envelope(
        app.client
            .get(app.url("/console/session"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_fleet_summary_counts_by_state_and_tier_and_the_tenant_search_takes_wildcards_literally(
) {
    let app = spawn_app().await;
    let (a, _) = app.create_tenant_named("search-alpha").await;
    app.create_tenant_named("search-beta").await;
    let suspended = app
        .admin(Method::POST, &format!("/v1/tenants/{a}/suspend"), None)
        .await;
    assert_eq!(suspended.status(), 200);
    let summary: Value = app
        .admin(Method::GET, "/v1/fleet/summary", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["total"], 2, "{summary}");
    assert_eq!(summary["by_status"], json!({ "active": 1, "suspended": 1 }));
    assert_eq!(summary["by_tier"], json!({ "standard": 2 }));
    assert_eq!(
        summary["by_schema_version"],
        json!({ (crate::kit::LATEST_TENANT_VERSION.to_string()): 2 })
    );
    let names = |body: Value| -> Vec<String> {
        body["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["slug"].as_str().unwrap().to_string())
            .collect()
    };
    let search = |q: &str| {
        let path = format!("/v1/tenants?q={}", urlencode(q));
        let app = &app;
        async move {
            app.admin(Method::GET, &path, None)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(names(search("ALPHA").await), ["search-alpha"]);
    assert_eq!(names(search("Tenant search-b").await), ["search-beta"]);
    assert_eq!(names(search(&a).await), ["search-alpha"]);
    assert!(
        names(search("search_alpha").await).is_empty(),
        "_ is not a wildcard"
    );
    assert!(names(search("%").await).is_empty(), "% is not a wildcard");
    let (status, code, _) = envelope(
        app.admin(
            Method::GET,
            &format!("/v1/tenants?q={}", "x".repeat(101)),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_query"));
    let audit: Value = app
        .admin(Method::GET, "/v1/fleet/audit?limit=5", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["events"][0]["action"], "tenants.suspend", "{audit}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_fleet_run_names_its_run_as_the_operations_subject_even_before_it_succeeds() {
    let app = spawn_app().await;
    app.create_tenant_named("subject-one").await;
    let started = app
        .admin(Method::POST, "/v1/migrations/runs", Some(json!({})))
        .await;
    assert_eq!(started.status(), 202);
    let op: Value = started.json().await.unwrap();
    let run = op["subject"].as_str().expect("the run id").to_string();
    let finished = app
        .wait_operation(&format!("/v1/operations/{}", op["id"].as_str().unwrap()))
        .await;
    assert_eq!(finished["subject"], run.as_str());
    let summary: Value = app
        .admin(Method::GET, &format!("/v1/migrations/runs/{run}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["run"]["id"], run.as_str());
}

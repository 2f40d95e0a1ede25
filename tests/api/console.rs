//! The operator console in a real browser: sign-in, the fleet table, a live
//! state change, a fleet run to 100 %, sign-out, and a tenant_admin held to
//! its own tenant. Screenshots go to `target/console-screenshots/`.

use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::domain::TenantId;

use crate::helpers::spawn_app;
use crate::kit::browser;
use crate::kit::browser::{sign_in, ENTER};

const TAB: &str = "\u{E004}";

#[tokio::test]
async fn an_operator_signs_in_creates_and_suspends_a_tenant_watches_a_fleet_run_reach_100_percent_and_signs_out(
) {
    let app = spawn_app().await;
    // A small fleet, so the pages (and their screenshots) show something.
    for (slug, tier) in [
        ("northwind", "enterprise"),
        ("globex", "standard"),
        ("initech", "free"),
    ] {
        let made = app
            .admin(
                reqwest::Method::POST,
                "/v1/tenants",
                Some(json!({ "slug": slug, "name": slug.to_uppercase(), "tier": tier })),
            )
            .await;
        assert_eq!(made.status(), 201);
    }
    let Some(b) = browser::start().await else {
        return;
    };

    // Sign in with the keyboard alone: the page focuses the credential field.
    b.client.goto(&app.url("/console")).await.unwrap();
    b.until(
        "the sign-in page",
        20,
        "return !!document.querySelector('#credential')",
    )
    .await;
    b.until(
        "the focus on the credential field",
        5,
        "return document.activeElement.id === 'credential'",
    )
    .await;
    b.screenshot("sign-in").await;
    b.keys(&app.super_admin_token()).await;
    b.keys(TAB).await;
    b.keys(ENTER).await;
    b.until(
        "the fleet page",
        20,
        "return document.querySelector('#count-total')?.textContent === '3tenants'",
    )
    .await;

    // Create a tenant from the console; it appears in the fleet table.
    b.type_into("#new-slug", "browser-acme").await;
    b.type_into("#new-name", "Browser Acme").await;
    b.click("#create-tenant button[type=submit]").await;
    let row = "#tenant-table tr[data-slug='browser-acme']";
    b.until(
        "the new tenant in the table",
        60,
        &format!("return !!document.querySelector(\"{row}\")"),
    )
    .await;
    // The row can first show the create's `provisioning` event; the live
    // update that follows turns it active.
    b.until(
        "the new tenant active in the table, and counted",
        30,
        &format!(
            "return document.querySelector(\"{row} .status\")?.textContent.includes('active')
                && document.querySelector('#count-status-active .n')?.textContent === '4'"
        ),
    )
    .await;
    b.until(
        "the audit of the create",
        20,
        "return document.querySelector('#recent-audit').textContent.includes('tenants.create')",
    )
    .await;
    b.screenshot("fleet").await;

    // A refused request shows the API's own message: the slug is taken.
    b.type_into("#new-slug", "browser-acme").await;
    b.type_into("#new-name", "Again").await;
    b.click("#create-tenant button[type=submit]").await;
    b.until(
        "the slug_taken message",
        20,
        "return document.querySelector('#create-tenant .error').textContent.includes('slug_taken')",
    )
    .await;

    // Give it settings of its own and a subtenant, for its page to show.
    let id = b
        .eval(&format!(
            "return document.querySelector(\"{row}\").dataset.tenant"
        ))
        .await;
    let id = id.as_str().unwrap().to_string();
    let settings =
        json!({ "settings": { "features": { "maxAgents": 12, "customWorkflows": true } } });
    let patched = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/v1/tenants/{id}"),
            Some(settings),
        )
        .await;
    assert_eq!(patched.status(), 200);
    app.create_subtenant(&id, "browser-acme-sales").await;

    // Suspend it from its page, through the confirmation that names it.
    b.click(&format!("{row} a")).await;
    b.until(
        "its own settings and its subtenant",
        20,
        "return document.querySelector('#tenant-settings').textContent.includes('own') && document.querySelector('#subtenant-tree').textContent.includes('browser-acme-sales')",
    )
    .await;
    b.until(
        "the tenant page",
        20,
        "return document.querySelector('h1')?.dataset.status === 'active'",
    )
    .await;
    b.click("#action-suspend").await;
    // A suspension needs no typed name: its field is not shown.
    b.until("the dialog naming the tenant, with no field to type in", 5, "return document.querySelector('#confirm').open && document.querySelector('#confirm-title').textContent.includes('browser-acme') && getComputedStyle(document.querySelector('#confirm-typed-label')).display === 'none'").await;
    b.keys(ENTER).await;
    b.until(
        "the suspended state, the dialog closed",
        30,
        "return document.querySelector('h1')?.dataset.status === 'suspended' && !document.querySelector('#confirm').open",
    )
    .await;
    b.screenshot("tenant").await;

    // Live: resumed by another client, the fleet table changes on its own.
    b.client.goto(&app.url("/console/#/fleet")).await.unwrap();
    b.until(
        "the suspended row",
        20,
        &format!("return document.querySelector(\"{row} .status\")?.textContent === 'suspended'"),
    )
    .await;
    b.eval("window.beforeLive = performance.now(); return true")
        .await;
    let resumed = app
        .admin(
            reqwest::Method::POST,
            &format!("/v1/tenants/{id}/resume"),
            None,
        )
        .await;
    assert_eq!(resumed.status(), 200);
    b.until(
        "the row to turn active without a reload",
        20,
        &format!("return document.querySelector(\"{row} .status\")?.textContent === 'active'"),
    )
    .await;
    let reloaded = b
        .eval(
            "return performance.getEntriesByType('navigation').length !== 1 || !window.beforeLive",
        )
        .await;
    assert_eq!(reloaded, json!(false), "the page was not reloaded");

    // A fleet migration, watched to 100 %.
    b.client
        .goto(&app.url("/console/#/migrations"))
        .await
        .unwrap();
    b.until(
        "the migrations page",
        20,
        "return !!document.querySelector('#start-run')",
    )
    .await;
    b.click("#start-run button[type=submit]").await;
    b.until(
        "the run's progress at 100 %",
        120,
        "return document.querySelector('#run-percent')?.textContent === '100 %'",
    )
    .await;
    assert_eq!(
        b.eval("return document.querySelector('#run-progress').value")
            .await,
        json!(100)
    );
    b.screenshot("migration-run-nothing-to-do").await;

    b.client.goto(&app.url("/console/#/servers")).await.unwrap();
    b.until(
        "the servers page",
        20,
        "return !!document.querySelector(\"[data-server='catalog']\")",
    )
    .await;
    b.screenshot("servers").await;

    // Sign out: the cookie is gone, and the API no longer knows the page.
    b.click("#sign-out").await;
    b.until(
        "the sign-in page again",
        20,
        "return !!document.querySelector('#credential')",
    )
    .await;
    let (status, body) = b.fetch("/v1/fleet/summary").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "missing_credentials");
    b.close().await;
}

#[tokio::test]
async fn every_page_reads_in_a_narrow_window_and_nothing_on_the_fleet_page_shifts_while_live_updates_arrive(
) {
    let app = spawn_app().await;
    app.create_tenant_named("shift-one").await;
    let Some(b) = browser::start().await else {
        return;
    };
    sign_in(&b, &app.url("/console/"), &app.super_admin_token()).await;
    b.until(
        "the fleet table",
        20,
        "return !!document.querySelector(\"tr[data-slug='shift-one']\")",
    )
    .await;
    // The browser measures layout shifts itself (the Layout Instability API).
    let supported = b
        .eval("return PerformanceObserver.supportedEntryTypes.includes('layout-shift')")
        .await;
    assert_eq!(supported, json!(true));
    b.eval("window.shift = 0; new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.shift += e.value; }).observe({ type: 'layout-shift', buffered: false }); return true").await;
    // Live updates: tenants made, suspended and resumed by another client.
    for slug in ["shift-two", "shift-three"] {
        let (id, _) = app.create_tenant_named(slug).await;
        let suspended = app
            .admin(
                reqwest::Method::POST,
                &format!("/v1/tenants/{id}/suspend"),
                None,
            )
            .await;
        assert_eq!(suspended.status(), 200);
    }
    b.until("both new tenants, suspended", 30, "return document.querySelectorAll(\"#tenant-table tr[data-slug^='shift-'] .s-suspended\").length === 2 && document.querySelector('#count-status-suspended .n').textContent === '2'").await;
    b.until(
        "the operations list to show the suspensions",
        20,
        "return document.querySelectorAll('#recent-operations tr[data-operation]').length >= 4",
    )
    .await;
    let shift = b.eval("return window.shift").await.as_f64().unwrap();
    assert!(
        shift < 0.001,
        "the layout shifted by {shift} while live updates arrived"
    );

    b.client.set_window_size(420, 860).await.unwrap();
    b.until("a narrow layout", 10, "return window.innerWidth <= 420")
        .await;
    assert_no_sideways_scroll(&b, "#/fleet").await;
    b.screenshot("fleet-narrow").await;
    // Every other page fits too.
    let (tenant, _) = app.create_tenant_named("shift-narrow").await;
    for (page, ready) in [
        (format!("#/tenants/{tenant}"), "#tenant-settings"),
        ("#/migrations".to_string(), "#start-run"),
        ("#/servers".to_string(), "#add-server"),
    ] {
        b.client
            .goto(&app.url(&format!("/console/{page}")))
            .await
            .unwrap();
        b.until(
            &page,
            20,
            &format!("return !!document.querySelector('{ready}')"),
        )
        .await;
        assert_no_sideways_scroll(&b, &page).await;
    }
    b.close().await;
}

#[tokio::test]
async fn a_tenant_admin_in_the_console_sees_only_its_own_tenant_in_the_page_and_in_the_json_behind_it(
) {
    let app = spawn_app().await;
    let (own, _) = app.create_tenant_named("own-tenant").await;
    let (other, _) = app.create_tenant_named("other-tenant").await;
    app.create_subtenant(&own, "own-office").await;
    let Some(b) = browser::start().await else {
        return;
    };
    let token = app.token(
        Role::TenantAdmin,
        Some(own.parse::<TenantId>().unwrap()),
        None,
    );
    sign_in(&b, &app.url("/console/"), &token).await;
    b.until(
        "its own tenant page",
        20,
        "return document.querySelector('h1')?.dataset.status === 'active'",
    )
    .await;
    b.until(
        "its subtenant",
        20,
        "return document.querySelector('#subtenant-tree')?.textContent.includes('own-office')",
    )
    .await;
    assert!(b.text("h1").await.contains("own-tenant"));
    assert_eq!(
        b.eval("return document.querySelectorAll('#nav a').length")
            .await,
        json!(1)
    );
    b.screenshot("tenant-admin").await;

    // Another tenant's page shows the API's refusal, and nothing of it.
    b.client
        .goto(&app.url(&format!("/console/#/tenants/{other}")))
        .await
        .unwrap();
    b.until(
        "the refusal",
        20,
        "return document.querySelector('#flash').textContent.includes('forbidden')",
    )
    .await;
    let page = b.text("main").await;
    assert!(!page.contains("other-tenant"), "{page}");
    // Nor does the JSON behind the console give it away.
    for path in [
        format!("/v1/tenants/{other}"),
        format!("/v1/tenants/{other}/api-keys"),
        format!("/v1/tenants/{other}/domains"),
        format!("/v1/tenants?parent_id={other}"),
        "/v1/tenants".to_string(),
        "/v1/fleet/summary".to_string(),
        "/v1/fleet/audit".to_string(),
        "/v1/operations".to_string(),
        "/v1/events".to_string(),
    ] {
        let (status, body) = b.fetch(&path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(!body.to_string().contains("other-tenant"), "{path}: {body}");
    }
    let (status, body) = b.fetch(&format!("/v1/tenants/{own}")).await;
    assert_eq!((status, body["slug"].as_str()), (200, Some("own-tenant")));
    b.close().await;
}

/// The page is no wider than the window: nothing makes it scroll sideways.
async fn assert_no_sideways_scroll(b: &browser::Browser, page: &str) {
    let overflow = b
        .eval("return document.documentElement.scrollWidth - window.innerWidth")
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "{page} scrolls sideways by {overflow} px"
    );
}

//! The console's live pages in a real browser: a fleet run that really
//! migrates tenants, seen mid-way with its canary wave passed; the run page
//! and the tenant page holding still while updates arrive; the keyboard
//! focus kept across a live redraw.

use reqwest::Method;
use serde_json::json;

use crate::kit::browser;
use crate::kit::browser::sign_in;
use crate::kit::migrations::{
    app_on, create_tenants, migrations_dir, server_of_its_own, V2_FRAGILE,
};

/// Sums the layout shifts the browser measures from now on (the Layout
/// Instability API), in `window.shift`.
const MEASURE_SHIFTS: &str = "window.shift = 0; new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.shift += e.value; }).observe({ type: 'layout-shift', buffered: false }); return true";

#[tokio::test]
async fn a_fleet_run_started_in_the_console_is_seen_mid_way_with_its_canary_wave_passed_then_at_100_percent_and_neither_the_run_nor_the_tenant_page_shifts(
) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_FRAGILE)]);
    let before = app_on(&extra, v1.path(), "console_run_catalog").await;
    let tenants = create_tenants(&before, 6).await;
    // A new deploy carries V2.
    let app = app_on(&extra, v2.path(), "console_run_catalog").await;
    // The last tenant's migration waits behind this lock, so the run is
    // seen mid-way however fast the others go.
    let (_, last_db) = tenants.last().unwrap();
    let mut blocker = app.server.connect(last_db).await;
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let Some(b) = browser::start().await else {
        return;
    };
    sign_in(&b, &app.url("/console/"), &app.super_admin_token()).await;
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
    b.eval("const f = document.querySelector('#start-run'); f.concurrency.value = 2; f.canary.value = 2; return true").await;
    b.click("#start-run button[type=submit]").await;
    b.until(
        "five of six tenants migrated, the canary wave passed",
        60,
        "return document.querySelector('#run-percent')?.textContent === '83 %' && document.querySelector('#run-canary')?.dataset.canary === 'passed'",
    )
    .await;
    let canary = b.text("#run-canary").await;
    assert_eq!(canary, "Canary wave of 2 passed.");
    assert!(
        b.eval("return !!document.querySelector('#run-cancel')")
            .await
            .as_bool()
            .unwrap(),
        "a running run offers Cancel"
    );
    b.eval(MEASURE_SHIFTS).await;
    lock.commit().await.unwrap();
    b.until(
        "the run at 100 %",
        60,
        "return document.querySelector('#run-percent')?.textContent === '100 %' && !document.querySelector('#run-cancel')",
    )
    .await;
    let shift = b.eval("return window.shift").await.as_f64().unwrap();
    assert!(
        shift < 0.001,
        "the run page shifted by {shift} as the run ended"
    );
    b.screenshot("migration-run").await;

    // The runs list shows it done.
    b.client
        .goto(&app.url("/console/#/migrations"))
        .await
        .unwrap();
    b.until(
        "the run in the list",
        20,
        "return !!document.querySelector('#migration-runs .s-succeeded')",
    )
    .await;
    b.screenshot("migrations").await;

    // The tenant page: a live suspension redraws its state and actions;
    // nothing moves, and the keyboard focus stays on the actions.
    let (id, _) = &tenants[0];
    b.client
        .goto(&app.url(&format!("/console/#/tenants/{id}")))
        .await
        .unwrap();
    b.until(
        "the tenant page, active, at schema version 2",
        20,
        "return document.querySelector('h1')?.dataset.status === 'active' && document.querySelector('#tenant-migrations').textContent.includes('Schema version 2 of 2')",
    )
    .await;
    b.eval(MEASURE_SHIFTS).await;
    b.eval("document.querySelector('#action-suspend').focus(); return true")
        .await;
    let suspended = app
        .admin(Method::POST, &format!("/v1/tenants/{id}/suspend"), None)
        .await;
    assert_eq!(suspended.status(), 200);
    b.until(
        "the suspension, live",
        20,
        "return document.querySelector('h1')?.dataset.status === 'suspended'",
    )
    .await;
    assert_eq!(
        b.eval("return document.activeElement.id").await,
        json!("action-resume"),
        "the focus moved with the redrawn actions"
    );
    let shift = b.eval("return window.shift").await.as_f64().unwrap();
    assert!(
        shift < 0.001,
        "the tenant page shifted by {shift} on a live update"
    );
    b.close().await;
}

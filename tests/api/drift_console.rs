//! The console's Migrations page shows drift: "Scan now" starts a scan,
//! follows its operation to the end, and lists the drifted tenant with its
//! per-object diff.

use crate::helpers::spawn_app;
use crate::kit::browser;
use crate::kit::browser::sign_in;
use crate::kit::drift::by_hand;

#[tokio::test]
async fn scan_now_on_the_migrations_page_lists_the_drifted_tenant_with_its_diff() {
    let app = spawn_app().await;
    let (_, clean) = app.create_tenant_named("drift-console-a").await;
    let (drifted, db) = app.create_tenant_named("drift-console-b").await;
    by_hand(
        &app,
        &db,
        "CREATE INDEX agents_console_idx ON agents (owner, name)",
    )
    .await;
    assert!(!clean.is_empty());

    let Some(b) = browser::start().await else {
        return;
    };
    sign_in(&b, &app.url("/console/"), &app.super_admin_token()).await;
    b.client
        .goto(&app.url("/console/#/migrations"))
        .await
        .unwrap();
    b.until(
        "the drift panel, before any scan",
        20,
        "return (document.querySelector('#drift-status')?.textContent || '').includes('no scan yet')",
    )
    .await;
    b.click("#drift-scan").await;
    b.until(
        "the drifted tenant listed once the scan ended",
        60,
        &format!(
            "return !!document.querySelector('#drift-list details[data-tenant=\"{drifted}\"]')
                && !document.querySelector('#drift-scan').disabled"
        ),
    )
    .await;
    let listed = b.text("#drift-list").await;
    assert!(listed.contains("drift-console-b"), "{listed}");
    assert!(listed.contains("agents_console_idx"), "{listed}");
    let status = b.text("#drift-status").await;
    assert!(status.contains("1 drifted"), "{status}");
    assert!(status.contains("succeeded"), "{status}");
    b.close().await;
}

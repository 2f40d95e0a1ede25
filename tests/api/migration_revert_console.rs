//! The console's run page reverts a run: "Revert" asks first, a destructive
//! down is refused until data loss is accepted in the dialog, and the
//! revert's operation is followed to its end on the page, and read over
//! the API where the operation links.

use reqwest::Method;
use serde_json::{json, Value};

use crate::kit::browser::{self, sign_in};
use crate::kit::migrations::{app_on, create_tenants, migrations_dir, server_of_its_own};
use crate::kit::revert::{tenant_state, V2};

#[tokio::test]
async fn the_run_page_reverts_a_run_once_its_data_loss_is_accepted_and_follows_the_revert_to_its_end(
) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&V2);
    let before = app_on(&extra, v1.path(), "revert_console_catalog").await;
    let tenants = create_tenants(&before, 2).await;
    let app = app_on(&extra, v2.path(), "revert_console_catalog").await;
    let response = app
        .admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({"canary": 0})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    let run = summary["run"]["id"].as_str().unwrap().to_string();
    for (_, db) in &tenants {
        assert_eq!(tenant_state(&app, db).await, (2, true, 0));
    }

    let Some(b) = browser::start().await else {
        return;
    };
    sign_in(&b, &app.url("/console/"), &app.super_admin_token()).await;
    b.client
        .goto(&app.url(&format!("/console/#/migrations/{run}")))
        .await
        .unwrap();
    b.until(
        "the Revert button of a finished run",
        20,
        "return !!document.querySelector('#run-revert-start')",
    )
    .await;

    // V2's down drops a column: refused, in the dialog, until accepted.
    b.click("#run-revert-start").await;
    b.until(
        "the dialog",
        10,
        "return document.getElementById('confirm').open",
    )
    .await;
    b.click("#confirm-ok").await;
    b.until(
        "the refusal in the dialog",
        20,
        "return (document.getElementById('confirm-error').textContent || '').length > 0",
    )
    .await;
    let refusal = b.text("#confirm-error").await;
    assert!(refusal.contains("V2__agent_language.down.sql"), "{refusal}");
    for (_, db) in &tenants {
        assert_eq!(tenant_state(&app, db).await, (2, true, 0), "nothing ran");
    }

    b.click("#revert-accept-data-loss").await;
    b.click("#confirm-ok").await;
    b.until(
        "the revert followed to its end",
        60,
        "return document.getElementById('run-revert').dataset.state === 'succeeded'",
    )
    .await;
    let status = b.text("#run-revert").await;
    assert!(status.contains("2/2"), "{status}");
    for (_, db) in &tenants {
        assert_eq!(tenant_state(&app, db).await, (1, false, 1), "{db}");
    }
    b.close().await;

    // Over the API: the revert's operation links to its counts and items.
    let ops: Value = app
        .admin(Method::GET, "/v1/operations?kind=fleet_revert", None)
        .await
        .json()
        .await
        .unwrap();
    let link = ops["operations"][0]["result"].as_str().unwrap().to_string();
    assert!(link.starts_with("/v1/migrations/reverts/"), "{ops}");
    let revert: Value = app
        .admin(Method::GET, &link, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revert["counts"]["succeeded"], 2, "{revert}");
    assert_eq!(revert["revert"]["run_id"], run.as_str(), "{revert}");
    let missing = app
        .admin(
            Method::GET,
            &format!("/v1/migrations/reverts/{}", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    crate::kit::expect_error(missing, 404, "revert_not_found").await;
}

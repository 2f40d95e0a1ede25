//! Lint in the console, in a real browser: a run over a migration with a
//! lint error is refused with the rule, file and line shown; with the rule
//! acknowledged in the start form it runs, and the run page shows the
//! findings and the acknowledged rule.

use crate::kit::browser;
use crate::kit::browser::sign_in;
use crate::kit::migrations::{app_on, create_tenants, migrations_dir, server_of_its_own};

const V2_INDEX: &str = "ALTER TABLE agents ADD COLUMN language text;
CREATE INDEX agents_language_idx ON agents (language);";

#[tokio::test]
async fn the_console_shows_a_refused_run_s_lint_errors_then_the_acknowledged_run_s_findings() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_INDEX)]);
    let before = app_on(&extra, v1.path(), "console_lint_catalog").await;
    create_tenants(&before, 1).await;
    let app = app_on(&extra, v2.path(), "console_lint_catalog").await;
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

    // Refused: the form says which rule, where.
    b.click("#start-run button[type=submit]").await;
    b.until(
        "the refusal",
        20,
        "return document.querySelector('#start-run .error')?.textContent.includes('lint_failed')",
    )
    .await;
    let refusal = b.text("#start-run .error").await;
    assert!(
        refusal.contains("require-concurrent-index-creation at V2__agent_language.sql:2"),
        "{refusal}"
    );

    // Acknowledged: the run starts, and its page shows the findings.
    b.eval("document.querySelector('#start-run').acknowledge.value = 'require-concurrent-index-creation'; return true").await;
    b.click("#start-run button[type=submit]").await;
    b.until(
        "the run's lint findings",
        60,
        "return document.querySelector('#run-lint')?.textContent.includes('V2__agent_language.sql:2')",
    )
    .await;
    let lint = b.text("#run-lint").await;
    assert!(lint.contains("require-concurrent-index-creation"), "{lint}");
    assert_eq!(
        b.text("#run-acknowledged").await,
        "Acknowledged: require-concurrent-index-creation"
    );
    b.close().await;
}

//! Lint before a run: a pending migration with lint errors blocks a fleet
//! run (422 `lint_failed`, naming each rule, file and line) until the run
//! acknowledges those rules; the findings and the acknowledgement stay
//! with the run. `POST /v1/migrations/lint` and `tenant-plane migrate
//! --lint` show the same findings on demand.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{envelope, MASTER_KEY};
use crate::kit::migrations::{app_on, create_tenants, has_v2, migrations_dir, server_of_its_own};

/// Two lock-dangerous statements, on lines 3 and 4.
const V2_DANGEROUS: &str = "-- Agents get a language, looked up by it.
ALTER TABLE agents ADD COLUMN language text;
CREATE INDEX agents_language_idx ON agents (language);
ALTER TABLE calls ALTER COLUMN duration TYPE bigint;
";
const FILE: &str = "V2__agent_language.sql";
const INDEX_RULE: &str = "require-concurrent-index-creation";
const TYPE_RULE: &str = "changing-column-type";

/// The (rule, file, line) of each finding at `severity` in `findings`.
fn where_found(findings: &Value, severity: &str) -> Vec<(String, String, u64)> {
    findings
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {findings}"))
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn both_errors() -> Vec<(String, String, u64)> {
    vec![
        (INDEX_RULE.into(), FILE.into(), 3),
        (TYPE_RULE.into(), FILE.into(), 4),
    ]
}

async fn start(app: &crate::helpers::TestApp, body: Value) -> reqwest::Response {
    app.admin(Method::POST, "/v1/migrations/runs?wait=true", Some(body))
        .await
}

#[tokio::test]
async fn a_run_over_a_dangerous_migration_is_refused_until_its_rules_are_acknowledged_and_keeps_the_findings(
) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_DANGEROUS)]);
    let before = app_on(&extra, v1.path(), "lint_catalog").await;
    let tenants = create_tenants(&before, 2).await;
    let app = app_on(&extra, v2.path(), "lint_catalog").await;

    // Refused, listing each rule, file and line; nothing recorded, nothing run.
    let refused = start(&app, json!({})).await;
    assert_eq!(refused.status().as_u16(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "lint_failed", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{INDEX_RULE} at {FILE}:3")),
        "{message}"
    );
    assert!(
        message.contains(&format!("{TYPE_RULE} at {FILE}:4")),
        "{message}"
    );
    assert_eq!(
        where_found(&body["error"]["details"]["findings"], "error"),
        both_errors()
    );
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM migration_runs")
            .await,
        0
    );

    // One rule acknowledged is not enough: the other is still listed alone.
    let refused = start(&app, json!({ "acknowledge": [INDEX_RULE] })).await;
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "lint_failed", "{body}");
    assert_eq!(
        where_found(&body["error"]["details"]["findings"], "error"),
        vec![(TYPE_RULE.to_string(), FILE.to_string(), 4)]
    );
    for (_, db) in &tenants {
        assert_eq!(
            has_v2(&app, db).await,
            (false, 0),
            "a refused run migrated {db}"
        );
    }

    // Both acknowledged: the run starts, and keeps what it was told.
    let done = start(&app, json!({ "acknowledge": [TYPE_RULE, INDEX_RULE] })).await;
    assert_eq!(done.status().as_u16(), 200);
    let summary: Value = done.json().await.unwrap();
    assert_eq!(summary["run"]["state"], "succeeded", "{summary}");
    let run_id = summary["run"]["id"].as_str().unwrap();
    let shown: Value = app
        .admin(Method::GET, &format!("/v1/migrations/runs/{run_id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(where_found(&shown["run"]["lint"], "error"), both_errors());
    assert_eq!(shown["run"]["acknowledged"], json!([TYPE_RULE, INDEX_RULE]));
    for (_, db) in &tenants {
        assert_eq!(has_v2(&app, db).await, (true, 1));
    }
}

#[tokio::test]
async fn an_acknowledged_rule_that_does_not_exist_is_refused_over_http_and_by_the_cli_and_starts_nothing(
) {
    let extra = server_of_its_own().await;
    let v2 = migrations_dir(&[("V2__agent_language", V2_DANGEROUS)]);
    let app = app_on(&extra, v2.path(), "lint_unknown_catalog").await;
    let typo = "require-concurrent-index-creatoin";
    // The spec lists the rule names, so the body's validator refuses it.
    let (status, code, message) =
        envelope(start(&app, json!({ "acknowledge": [INDEX_RULE, typo] })).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_body"), "{message}");
    assert!(message.contains("acknowledge"), "{message}");
    // The CLI reaches the same command without the validator.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"))
        .args(["migrate", "--all", "--acknowledge", typo])
        .env(
            "TENANT_PLANE_DATABASE_URL",
            secrecy::ExposeSecret::expose_secret(&extra.server.url("lint_unknown_catalog")),
        )
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("TENANT_PLANE_MIGRATIONS_TENANT_DIR", v2.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(typo), "{stderr}");
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM migration_runs")
            .await,
        0
    );
}

#[tokio::test]
async fn the_lint_endpoint_and_the_cli_show_the_pending_findings() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_DANGEROUS)]);
    let before = app_on(&extra, v1.path(), "lint_cli_catalog").await;
    create_tenants(&before, 1).await;
    let app = app_on(&extra, v2.path(), "lint_cli_catalog").await;

    // From the lowest tenant version (1) to the newest (2).
    let report: Value = app
        .admin(Method::POST, "/v1/migrations/lint", Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(
        (
            report["from_version"].clone(),
            report["target_version"].clone()
        ),
        (json!(1), json!(2))
    );
    assert_eq!(where_found(&report["findings"], "error"), both_errors());
    // Nothing pending above 2; V1 alone is clean.
    for range in [
        json!({ "from_version": 2 }),
        json!({ "from_version": 0, "target_version": 1 }),
    ] {
        let clean: Value = app
            .admin(Method::POST, "/v1/migrations/lint", Some(range.clone()))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(clean["ok"], true, "{range}: {clean}");
        assert_eq!(where_found(&clean["findings"], "error"), vec![], "{range}");
    }

    // The CLI, through the real binary: one line a finding, exit non-zero.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"))
        .args(["migrate", "--lint"])
        .env(
            "TENANT_PLANE_DATABASE_URL",
            secrecy::ExposeSecret::expose_secret(&extra.server.url("lint_cli_catalog")),
        )
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("TENANT_PLANE_MIGRATIONS_TENANT_DIR", v2.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{FILE}:3 {INDEX_RULE} error ")),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!("{FILE}:4 {TYPE_RULE} error ")),
        "{stdout}"
    );
}

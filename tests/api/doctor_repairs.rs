//! `doctor --fix`'s repairs as a whole run, through the binary: one that
//! fails is listed and the others are still done (and the command fails at
//! the end), and a repair leaves the tenant's recorded error alone and
//! no login of the tenant's behind.

use tenant_plane::domain::DbName;

use crate::kit::binary;
use crate::kit::doctor::{
    app_on_own_server, databases, doctor, doctor_json, forget, lines, parked_keepsake,
    plant_keepsake, role_exists,
};

#[tokio::test]
async fn a_repair_that_fails_is_listed_as_failed_while_the_other_repairs_are_done_and_doctor_exits_non_zero(
) {
    let (extra, app) = app_on_own_server().await;
    let (stuck, stuck_db) = app.create_tenant_named("stuck-role").await;
    let (parked_tenant, parked_db) = app.create_tenant_named("to-park").await;
    plant_keepsake(&extra, &parked_db).await;
    forget(&app, &stuck).await;
    forget(&app, &parked_tenant).await;
    // The first one's database is gone and its role cannot be dropped: a
    // grant on another database depends on it.
    let admin = extra.server.connect("postgres").await;
    for statement in [
        format!("DROP DATABASE \"{stuck_db}\" WITH (FORCE)"),
        format!("GRANT CONNECT ON DATABASE postgres TO \"{stuck_db}\""),
    ] {
        admin.batch_execute(&statement).await.unwrap();
    }
    let parked = DbName::recognise(&parked_db).unwrap().quarantined();

    let (code, text, stderr) = binary::run(&mut doctor(&extra, &["--fix"])).await;
    assert_ne!(code, 0, "{text}{stderr}");
    let quarantined =
        format!("fixed: quarantined orphan database {parked_db} on catalog as {parked}");
    assert!(
        text.lines().any(|l| l == quarantined),
        "{quarantined} in:\n{text}"
    );
    let failed = format!("failed: tenant {stuck} on catalog: ");
    assert!(
        text.lines().any(|l| l.starts_with(&failed)),
        "{failed} in:\n{text}"
    );
    assert!(
        stderr.contains("could not finish 1 of its steps"),
        "{stderr}"
    );
    assert_eq!(databases(&extra).await, std::slice::from_ref(&parked));
    assert_eq!(parked_keepsake(&extra, &parked).await, "kept");

    // Again as JSON: the report is whole, and the failure is in it.
    let mut again = doctor(&extra, &["--fix", "--json"]);
    let (code, stdout, stderr) = binary::run(&mut again).await;
    assert_ne!(code, 0, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let failed = lines(&report, "failed");
    assert!(
        failed.len() == 1 && failed[0].starts_with(&format!("tenant {stuck} on catalog: ")),
        "{report}"
    );
    assert!(role_exists(&extra, &stuck_db).await);
}

#[tokio::test]
async fn a_failed_tenants_recorded_error_survives_a_doctor_repair_of_its_orphan_role() {
    let (extra, app) = app_on_own_server().await;
    let (tenant, db) = app.create_tenant_named("failed-once").await;
    let id: uuid::Uuid = tenant.parse().unwrap();
    // The tenant failed, as a create undone leaves it: its database gone,
    // its role behind (with its logins: the HTTP plane's, made with it,
    // and the gateway's, its writer's, its reader's and a subtenant's,
    // members of it and of its reader), the reason recorded.
    let name = DbName::recognise(&db).unwrap();
    let (reader, http, wire, wire_reader) = (
        name.reader(),
        name.http_login(),
        name.wire_writer(),
        name.wire_reader(),
    );
    let subtenant = uuid::Uuid::now_v7().into();
    let (sub, sub_reader) = (
        tenant_plane::domain::subtenant_login(subtenant, false),
        tenant_plane::domain::subtenant_login(subtenant, true),
    );
    let admin = extra.server.connect("postgres").await;
    for statement in [
        format!("DROP DATABASE \"{db}\" WITH (FORCE)"),
        format!("CREATE ROLE \"{sub}\" LOGIN IN ROLE \"{db}\""),
        format!("CREATE ROLE \"{sub_reader}\" LOGIN IN ROLE \"{reader}\""),
        format!("CREATE ROLE \"{wire}\" LOGIN IN ROLE \"{db}\""),
        format!("CREATE ROLE \"{wire_reader}\" LOGIN IN ROLE \"{reader}\""),
    ] {
        admin.batch_execute(&statement).await.unwrap();
    }
    assert!(
        role_exists(&extra, &http).await,
        "made with the tenant role"
    );
    let catalog = app.catalog_db().await;
    catalog
        .execute(
            "UPDATE tenants SET status = 'failed', error = 'the first create ran out of disk'
              WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();

    let fixed = doctor_json(doctor(&extra, &["--fix"])).await;
    assert_eq!(
        lines(&fixed, "fixed"),
        [format!("dropped orphan role {db} on catalog")],
        "{fixed}"
    );
    for role in [&db, &reader, &http, &sub, &sub_reader, &wire, &wire_reader] {
        assert!(!role_exists(&extra, role).await, "{role} is left");
    }
    let row = catalog
        .query_one("SELECT status, error FROM tenants WHERE id = $1", &[&id])
        .await
        .unwrap();
    let (status, error): (String, Option<String>) = (row.get(0), row.get(1));
    assert_eq!(status, "failed");
    assert_eq!(error.as_deref(), Some("the first create ran out of disk"));
}

//! The locks around `doctor --fix`'s quarantine of a tenant the catalog
//! does not know, through the binary paused at its failpoints: a row that
//! comes back before the tenants table is held keeps its database, and one
//! that comes back while it is held waits until the quarantine is done.

use std::time::Duration;

use tenant_plane::domain::DbName;

use crate::kit::doctor::{
    app_on_own_server, continue_to_report, databases, doctor, doctor_json, forget, keepsake, lines,
    parked_keepsake, plant_keepsake, remember, role_exists, spawn_until_stopped,
};

#[tokio::test]
async fn a_quarantine_that_finds_the_tenants_catalog_row_back_under_the_lock_leaves_the_database_alone(
) {
    let (extra, app) = app_on_own_server().await;
    let (tenant, db) = app.create_tenant_named("comes-back").await;
    plant_keepsake(&extra, &db).await;
    forget(&app, &tenant).await;

    // doctor --fix plans the quarantine, then stops right before its lock.
    let mut cmd = doctor(&extra, &["--fix", "--json"]);
    cmd.env("FAILPOINTS", "doctor.before_quarantine=return(stop)");
    let (child, pid) = spawn_until_stopped(cmd).await;
    // Meanwhile the tenant's row comes back (a newer catalog restored).
    remember(&app, &tenant).await;
    let (_, report) = continue_to_report(child, pid).await;
    assert_eq!(
        lines(&report, "planned"),
        [format!(
            "quarantine orphan database {db} on catalog as {}",
            DbName::recognise(&db).unwrap().quarantined()
        )],
        "{report}"
    );
    assert_eq!(lines(&report, "fixed"), Vec::<String>::new(), "{report}");
    assert_eq!(
        lines(&report, "skipped"),
        [format!(
            "tenant {tenant}: back in the catalog; its objects on catalog are left alone"
        )],
        "{report}"
    );
    assert_eq!(databases(&extra).await, std::slice::from_ref(&db));
    assert_eq!(keepsake(&extra, &db).await, "kept");
    assert!(role_exists(&extra, &db).await);
    let found = doctor_json(doctor(&extra, &[])).await;
    assert_eq!(found["orphan_databases"], serde_json::json!([]), "{found}");
    assert_eq!(found["quarantined"], serde_json::json!([]), "{found}");
}

#[tokio::test]
async fn a_forgotten_tenants_row_that_comes_back_while_doctor_holds_the_tenants_table_waits_until_the_quarantine_is_done(
) {
    let (extra, app) = app_on_own_server().await;
    let (tenant, db) = app.create_tenant_named("held-off").await;
    plant_keepsake(&extra, &db).await;
    forget(&app, &tenant).await;
    let parked = DbName::recognise(&db).unwrap().quarantined();

    // doctor --fix takes the tenants table, then stops holding it.
    let mut cmd = doctor(&extra, &["--fix", "--json"]);
    cmd.env("FAILPOINTS", "doctor.holding_tenants=return(stop)");
    let (child, pid) = spawn_until_stopped(cmd).await;
    // The row comes back meanwhile (a newer catalog restored): it waits.
    let catalog = app.catalog_db().await;
    let id: uuid::Uuid = tenant.parse().unwrap();
    let insert = tokio::spawn(async move {
        catalog
            .execute(
                "INSERT INTO tenants SELECT * FROM forgotten_tenants WHERE id = $1",
                &[&id],
            )
            .await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !insert.is_finished(),
        "the row came back while doctor held the tenants table: {:?}",
        insert.await
    );
    let (code, report) = continue_to_report(child, pid).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        lines(&report, "fixed"),
        [format!(
            "quarantined orphan database {db} on catalog as {parked}"
        )],
        "{report}"
    );
    let inserted = tokio::time::timeout(Duration::from_secs(30), insert)
        .await
        .expect("the row came back once doctor let the table go")
        .unwrap()
        .unwrap();
    assert_eq!(inserted, 1);
    assert_eq!(parked_keepsake(&extra, &parked).await, "kept");
    // Back in the catalog without its database: not failed, and doctor
    // says where the copy is and how to bring it back.
    let found = doctor_json(doctor(&extra, &[])).await;
    let hints = lines(&found, "hints");
    assert!(
        hints.len() == 1
            && hints[0].starts_with(&format!(
                "tenant {tenant}: its database {db} is missing from catalog, but catalog holds its quarantined copy {parked}"
            ))
            && hints[0].contains("WITH ALLOW_CONNECTIONS true"),
        "{found}"
    );
    assert_eq!(lines(&found, "planned"), Vec::<String>::new(), "{found}");
}

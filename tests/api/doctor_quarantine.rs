//! `doctor` after a catalog restored to an earlier point, run as an
//! operator runs the binary: a tenant database the catalog forgot is
//! quarantined (renamed, its rows kept, closed to every session), listed,
//! and dropped only after `tenants.retention_days`, on `--fix --confirm`.
//! The locks around it: `doctor_locks.rs`.

use serde_json::Value;
use tenant_plane::domain::DbName;

use crate::kit::binary;
use crate::kit::doctor::{
    app_on_own_server, databases, doctor, doctor_json, forget, keepsake, lines, parked_keepsake,
    plant_keepsake, role_exists,
};

#[tokio::test]
async fn a_database_the_restored_catalog_forgot_is_quarantined_by_doctor_fix_and_dropped_only_past_retention_with_confirm(
) {
    let (extra, app) = app_on_own_server().await;
    let (forgotten, db) = app.create_tenant_named("forgotten").await;
    let (remembered, remembered_db) = app.create_tenant_named("remembered").await;
    plant_keepsake(&extra, &db).await;
    forget(&app, &forgotten).await;
    let parked = DbName::recognise(&db).unwrap().quarantined();

    let found = doctor_json(doctor(&extra, &[])).await;
    let orphans: Vec<&str> = found["orphan_databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(orphans, [db.as_str()], "{found}");

    // --fix: renamed, not dropped; its rows and its role stay.
    let fixed = doctor_json(doctor(&extra, &["--fix"])).await;
    assert_eq!(
        lines(&fixed, "planned"),
        [format!(
            "quarantine orphan database {db} on catalog as {parked}"
        )],
        "{fixed}"
    );
    assert_eq!(
        lines(&fixed, "fixed"),
        [format!(
            "quarantined orphan database {db} on catalog as {parked}"
        )],
        "{fixed}"
    );
    let mut want = vec![parked.clone(), remembered_db.clone()];
    want.sort();
    assert_eq!(databases(&extra).await, want);
    assert_eq!(parked_keepsake(&extra, &parked).await, "kept");
    assert!(role_exists(&extra, &db).await, "its role stays with it");

    // Listed, and not a problem: the check exits 0.
    let (code, stdout, stderr) = binary::run(&mut doctor(&extra, &["--json"])).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let quarantined = listed["quarantined"].as_array().unwrap();
    assert_eq!(quarantined.len(), 1, "{listed}");
    assert_eq!(quarantined[0]["name"], parked.as_str());
    assert_eq!(quarantined[0]["server"], "catalog");
    assert_eq!(quarantined[0]["tenant_id"], forgotten.as_str());
    assert_eq!(quarantined[0]["purge_due"], false);
    let since: chrono::DateTime<chrono::Utc> =
        quarantined[0]["since"].as_str().unwrap().parse().unwrap();
    assert!((chrono::Utc::now() - since).num_minutes() < 5, "{since}");
    assert_eq!(listed["orphan_roles"], serde_json::json!([]), "{listed}");

    // --confirm before the retention ran out: kept.
    let early = doctor_json(doctor(&extra, &["--fix", "--confirm"])).await;
    assert_eq!(lines(&early, "fixed"), Vec::<String>::new(), "{early}");
    assert!(databases(&extra).await.contains(&parked));

    // Past the retention, --fix alone only says what --confirm would do.
    let mut aged = doctor(&extra, &["--fix"]);
    aged.env("TENANT_PLANE_TENANTS_RETENTION_DAYS", "0");
    let unconfirmed = doctor_json(aged).await;
    assert_eq!(
        lines(&unconfirmed, "fixed"),
        Vec::<String>::new(),
        "{unconfirmed}"
    );
    let would = lines(&unconfirmed, "skipped");
    assert!(
        would.len() == 1
            && would[0].starts_with(&format!(
                "would purge quarantined database {parked} on catalog"
            )),
        "{unconfirmed}"
    );
    assert_eq!(parked_keepsake(&extra, &parked).await, "kept");

    // Past the retention and confirmed: dropped, and its role with it.
    let mut aged = doctor(&extra, &["--fix", "--confirm"]);
    aged.env("TENANT_PLANE_TENANTS_RETENTION_DAYS", "0");
    let purged = doctor_json(aged).await;
    let done = lines(&purged, "fixed");
    assert!(
        lines(&purged, "planned")[0]
            .starts_with(&format!("purge quarantined database {parked} on catalog")),
        "{purged}"
    );
    assert!(
        done.len() == 2
            && done[0].starts_with(&format!("purged quarantined database {parked} on catalog"))
            && done[1] == format!("dropped orphan role {db} on catalog"),
        "{purged}"
    );
    assert_eq!(databases(&extra).await, [remembered_db]);
    assert!(!role_exists(&extra, &db).await);
    let view = app
        .state()
        .await
        .tenants()
        .show(remembered.parse().unwrap())
        .await;
    assert_eq!(view.unwrap().status.as_str(), "active");

    // Text mode prints the plan, what it did, and the quarantine list.
    let (again, again_db) = app.create_tenant_named("forgotten-too").await;
    forget(&app, &again).await;
    let again_parked = DbName::recognise(&again_db).unwrap().quarantined();
    // Without --fix, the plan reads as what --fix would do.
    let (_, text, _) = binary::run(&mut doctor(&extra, &[])).await;
    let would =
        format!("--fix would quarantine orphan database {again_db} on catalog as {again_parked}");
    assert!(text.lines().any(|l| l == would), "{would} in:\n{text}");
    assert!(!text.lines().any(|l| l.starts_with("planned:")), "{text}");
    let (code, text, stderr) = binary::run(&mut doctor(&extra, &["--fix"])).await;
    assert_eq!(code, 0, "{text}{stderr}");
    for line in [
        format!("planned: quarantine orphan database {again_db} on catalog as {again_parked}"),
        format!("fixed: quarantined orphan database {again_db} on catalog as {again_parked}"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    let (_, text, _) = binary::run(&mut doctor(&extra, &[])).await;
    let listed = format!("quarantined      {again_parked} on catalog of tenant {again} since ");
    assert!(
        text.lines().any(|l| l.starts_with(&listed)),
        "{listed} in:\n{text}"
    );
}

#[tokio::test]
async fn a_quarantined_database_refuses_its_tenant_role_which_could_connect_to_it_before() {
    let (extra, app) = app_on_own_server().await;
    let (tenant, db) = app.create_tenant_named("closed-off").await;
    plant_keepsake(&extra, &db).await;
    // The tenant's role keeps CONNECT on its database through the rename.
    // The test cluster trusts every local connection, so the role's own
    // password is not needed: only the database's own rules decide.
    extra
        .server
        .connect_as(&db, &DbName::recognise(&db).unwrap().http_login(), "any")
        .await
        .expect("the tenant role reaches its live database");
    forget(&app, &tenant).await;
    let fixed = doctor_json(doctor(&extra, &["--fix"])).await;
    let parked = DbName::recognise(&db).unwrap().quarantined();
    assert_eq!(
        lines(&fixed, "fixed"),
        [format!(
            "quarantined orphan database {db} on catalog as {parked}"
        )],
        "{fixed}"
    );
    let Err(refused) = extra
        .server
        .connect_as(
            &parked,
            &DbName::recognise(&db).unwrap().http_login(),
            "any",
        )
        .await
    else {
        panic!("the tenant role reached its quarantined copy");
    };
    let why = refused
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_else(|| refused.to_string());
    assert!(why.contains("not currently accepting connections"), "{why}");
    // The copy itself is whole, and comes back as the README says.
    assert_eq!(parked_keepsake(&extra, &parked).await, "kept");
    extra
        .server
        .connect("postgres")
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{parked}\" RENAME TO \"{db}\"; ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    extra
        .server
        .connect_as(&db, &DbName::recognise(&db).unwrap().http_login(), "any")
        .await
        .expect("renamed back and opened, the tenant role reaches it again");
    assert_eq!(keepsake(&extra, &db).await, "kept");
}

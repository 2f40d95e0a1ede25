//! `doctor` when the catalog places a tenant on a server that does not
//! hold its database but another server does: a catalog restored to a point
//! before the tenant moved. The tenant is not marked failed, doctor says
//! where its copy is and how to bring it back, and no `--fix --confirm`
//! purges that copy, through the binary with two servers.

use serde_json::json;
use tenant_plane::domain::DbName;

use crate::cluster::{self, ExtraCluster};
use crate::kit::binary;
use crate::kit::doctor::{
    app_on_own_server, doctor, doctor_json, keepsake, lines, parked_keepsake, plant_keepsake,
};
use crate::kit::servers::{catalog_server_id, register, server_of};

async fn status_of(app: &crate::helpers::TestApp, tenant: &str) -> String {
    app.catalog_db()
        .await
        .query_one(
            "SELECT status FROM tenants WHERE id = $1::text::uuid",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_tenant_an_older_catalog_places_on_the_server_it_left_keeps_its_only_copy_through_doctor_fix_and_confirm(
) {
    let (first, app) = app_on_own_server().await;
    let second = tokio::task::spawn_blocking(cluster::start_extra)
        .await
        .unwrap();
    let second_id = register(&app, "pg-second", &second, json!([])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first_id = catalog_server_id(&app).await;
    let (tenant, db) = app.create_tenant_named("moved-away").await;
    // Wherever it was placed is where it "moved to"; the older catalog
    // names the other server, which no longer has its database.
    let on_first = server_of(&app, &tenant).await == first_id;
    let (here, here_name, here_id): (&ExtraCluster, &str, &str) = if on_first {
        (&first, "catalog", &first_id)
    } else {
        (&second, "pg-second", &second_id)
    };
    let (there_name, there_id) = if on_first {
        ("pg-second", &second_id)
    } else {
        ("catalog", &first_id)
    };
    plant_keepsake(here, &db).await;
    app.catalog_db()
        .await
        .execute(
            "UPDATE tenants SET db_server_id = $2::text::uuid WHERE id = $1::text::uuid",
            &[&tenant, there_id],
        )
        .await
        .unwrap();
    let parked = DbName::recognise(&db).unwrap().quarantined();

    // Checked: missing where the catalog says, and doctor points at the copy.
    let found = doctor_json(doctor(&first, &[])).await;
    assert_eq!(
        found["missing_databases"][0]["server"], there_name,
        "{found}"
    );
    let hints = lines(&found, "hints");
    assert!(
        hints.len() == 1
            && hints[0].starts_with(&format!(
                "tenant {tenant}: its database {db} is missing from {there_name}, but {here_name} holds its live copy {db}"
            ))
            && hints[0].contains(&format!(
                "UPDATE tenants SET db_server_id = '{here_id}' WHERE id = '{tenant}'"
            )),
        "{found}"
    );
    assert!(
        !lines(&found, "planned")
            .iter()
            .any(|l| l.starts_with("mark tenant")),
        "{found}"
    );

    // --fix parks the copy the catalog does not place, and fails nothing.
    let fixed = doctor_json(doctor(&first, &["--fix"])).await;
    assert_eq!(
        lines(&fixed, "fixed"),
        [format!(
            "quarantined orphan database {db} on {here_name} as {parked}"
        )],
        "{fixed}"
    );
    assert_eq!(status_of(&app, &tenant).await, "active");

    // Past the retention, --fix --confirm keeps it: it is the only copy.
    let mut aged = doctor(&first, &["--fix", "--confirm"]);
    aged.env("TENANT_PLANE_TENANTS_RETENTION_DAYS", "0");
    let confirmed = doctor_json(aged).await;
    assert_eq!(
        lines(&confirmed, "fixed"),
        Vec::<String>::new(),
        "{confirmed}"
    );
    let kept = format!(
        "{parked} on {here_name}: past its retention, kept: tenant {tenant} is in the catalog"
    );
    assert!(
        lines(&confirmed, "skipped")
            .iter()
            .any(|l| l.starts_with(&kept)),
        "{kept} in {confirmed}"
    );
    let hints = lines(&confirmed, "hints");
    assert!(
        hints.len() == 1
            && hints[0].contains(&format!("{here_name} holds its quarantined copy {parked}")),
        "{confirmed}"
    );
    assert_eq!(status_of(&app, &tenant).await, "active");
    assert_eq!(parked_keepsake(here, &parked).await, "kept");

    // The hint's statements bring it back whole.
    here.server
        .connect("postgres")
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{parked}\" RENAME TO \"{db}\";
             ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    app.catalog_db()
        .await
        .execute(
            "UPDATE tenants SET db_server_id = $2::text::uuid WHERE id = $1::text::uuid",
            &[&tenant, &here_id],
        )
        .await
        .unwrap();
    let (code, stdout, stderr) = binary::run(&mut doctor(&first, &["--json"])).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(keepsake(here, &db).await, "kept");
}

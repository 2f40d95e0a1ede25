//! `doctor`: it quarantines (renames, never drops) only this installation's
//! orphans, after checking again under the tenant's lock; never another
//! installation's databases on a shared server, an object it cannot place,
//! or one a running operation owns.

use secrecy::ExposeSecret;
use serde_json::json;
use tenant_plane::domain::{DbName, Slug, TenantId, TenantName, Tier};
use tenant_plane::services::Services;
use tenant_plane::tenants::NewTenantInput;

use crate::cluster::{self, ExtraCluster};
use crate::helpers::{test_settings, MASTER_KEY};
use crate::kit::doctor::databases;

async fn services_on(extra: &ExtraCluster, catalog: &str) -> Services {
    let (mut settings, _) = test_settings();
    settings.database_url = Some(extra.server.url(catalog));
    Services::connect(&settings).await.unwrap()
}

async fn create(services: &Services, slug: &str) -> TenantId {
    services
        .tenants
        .create(NewTenantInput {
            name: TenantName::parse(slug).unwrap(),
            slug: Slug::parse(slug).unwrap(),
            tier: Tier::Standard,
            settings: Default::default(),
        })
        .await
        .unwrap()
        .id
}

/// `tenant-plane doctor --json [--fix]` against `catalog`, as an operator runs it.
async fn doctor_cli(extra: &ExtraCluster, catalog: &str, fix: bool) -> serde_json::Value {
    let mut cmd = tokio::process::Command::new(crate::kit::binary::BIN);
    cmd.args(["doctor", "--json"]);
    if fix {
        cmd.arg("--fix");
    }
    let out = cmd
        .env(
            "TENANT_PLANE_DATABASE_URL",
            extra.server.url(catalog).expose_secret(),
        )
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .output()
        .await
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn names(report: &serde_json::Value, key: &str) -> Vec<String> {
    let mut names: Vec<String> = report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {report}"))
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn two_installations_sharing_a_server_survive_each_others_doctor_fix() {
    let extra = tokio::task::spawn_blocking(cluster::start_extra)
        .await
        .unwrap();
    let a = services_on(&extra, "installation_a").await;
    let b = services_on(&extra, "installation_b").await;
    let a_tenants = [create(&a, "alpha-one").await, create(&a, "alpha-two").await];
    let b_tenants = [create(&b, "beta-one").await, create(&b, "beta-two").await];
    let before = databases(&extra).await;
    assert_eq!(before.len(), 4);

    for catalog in ["installation_a", "installation_b"] {
        let report = doctor_cli(&extra, catalog, true).await;
        assert_eq!(
            names(&report, "orphan_databases"),
            Vec::<String>::new(),
            "{report}"
        );
        assert_eq!(report["fixed"], json!([]), "{report}");
        // The other installation's databases (and their roles) are seen,
        // and left alone.
        let foreign = report["foreign"].as_array().unwrap();
        assert_eq!(
            foreign.iter().filter(|o| o["kind"] == "database").count(),
            2,
            "{report}"
        );
    }
    assert_eq!(databases(&extra).await, before, "no database was dropped");
    for (services, tenants) in [(&a, a_tenants), (&b, b_tenants)] {
        for id in tenants {
            let view = services.tenants.show(id).await.unwrap();
            assert_eq!(view.status.as_str(), "active");
        }
        assert!(services
            .reconciler
            .doctor(false)
            .await
            .unwrap()
            .is_healthy());
    }
}

#[tokio::test]
async fn doctor_fix_quarantines_this_installations_orphans_and_leaves_what_it_cannot_place() {
    let extra = tokio::task::spawn_blocking(cluster::start_extra)
        .await
        .unwrap();
    let services = services_on(&extra, "tenant_plane").await;
    let kept = create(&services, "kept").await;
    let kept_db = DbName::for_tenant(kept);
    let admin = extra.server.connect("postgres").await;
    // Ours: a restore's staged copy that nothing owns any more.
    let staged = kept_db.staging();
    admin
        .batch_execute(&format!("CREATE DATABASE {staged}"))
        .await
        .unwrap();
    // Not ours: a tenant database of an id this catalog never had, made by
    // hand, and one tagged by another installation.
    let stranger = DbName::for_tenant(TenantId::generate());
    let theirs = DbName::for_tenant(TenantId::generate());
    for statement in [
        format!("CREATE DATABASE {stranger}"),
        format!("CREATE DATABASE {theirs}"),
        format!(
            "COMMENT ON DATABASE {theirs} IS 'tenant-plane installation {}'",
            uuid::Uuid::new_v4()
        ),
    ] {
        admin.batch_execute(&statement).await.unwrap();
    }

    let report = doctor_cli(&extra, "tenant_plane", false).await;
    assert_eq!(
        names(&report, "orphan_databases"),
        std::slice::from_ref(&staged),
        "{report}"
    );
    let mut foreign: Vec<String> = report["foreign"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "database")
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    foreign.sort();
    let mut want = vec![stranger.to_string(), theirs.to_string()];
    want.sort();
    assert_eq!(foreign, want, "{report}");

    let fixed = doctor_cli(&extra, "tenant_plane", true).await;
    let parked = kept_db.quarantined();
    assert_eq!(
        fixed["planned"],
        json!([format!(
            "quarantine orphan database {staged} on catalog as {parked}"
        )]),
        "{fixed}"
    );
    assert_eq!(
        fixed["fixed"],
        json!([format!(
            "quarantined orphan database {staged} on catalog as {parked}"
        )]),
        "{fixed}"
    );
    let left = databases(&extra).await;
    let mut want = vec![
        kept_db.to_string(),
        parked.clone(),
        stranger.to_string(),
        theirs.to_string(),
    ];
    want.sort();
    assert_eq!(left, want, "renamed, and nothing dropped");
    let after = doctor_cli(&extra, "tenant_plane", false).await;
    assert_eq!(
        names(&after, "quarantined"),
        std::slice::from_ref(&parked),
        "{after}"
    );
    assert!(services
        .reconciler
        .doctor(false)
        .await
        .unwrap()
        .is_healthy());
}

#[tokio::test]
async fn doctor_fix_leaves_a_copy_that_a_running_operation_owns() {
    let extra = tokio::task::spawn_blocking(cluster::start_extra)
        .await
        .unwrap();
    let services = services_on(&extra, "tenant_plane").await;
    let tenant = create(&services, "restoring").await;
    // A restore in flight: its operation runs, and its staged copy exists.
    let (_, lease) = services
        .operations
        .begin(
            tenant,
            tenant_plane::catalog::OpKind::RestoreBackup,
            &json!({ "mode": "same_tenant" }),
        )
        .await
        .unwrap();
    let staged = DbName::for_tenant(tenant).staging();
    extra
        .server
        .connect("postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {staged}"))
        .await
        .unwrap();

    let report = doctor_cli(&extra, "tenant_plane", true).await;
    assert_eq!(
        names(&report, "in_use"),
        std::slice::from_ref(&staged),
        "{report}"
    );
    assert_eq!(report["fixed"], json!([]), "{report}");
    assert!(databases(&extra).await.contains(&staged));
    lease.discard().await.unwrap();
}

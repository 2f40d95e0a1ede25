//! Catalog migrations are idempotent and safe when replicas start together.

use tenant_plane::catalog::{self, Catalog};
use tenant_plane::startup::Application;

use crate::helpers::test_settings;

async fn history_rows(catalog: &Catalog) -> Vec<i64> {
    catalog::schema_versions(catalog).await.unwrap()
}

#[tokio::test]
async fn migrating_the_catalog_twice_applies_nothing_the_second_time() {
    let (settings, _) = test_settings();
    let url = settings.database_url.clone().unwrap();
    let catalog = Catalog::connect(&url, &settings.catalog).await.unwrap();
    let first = catalog::upgrade_schema(&catalog).await.unwrap();
    assert!(first >= 1, "a fresh catalog gets every migration");
    assert_eq!(catalog::upgrade_schema(&catalog).await.unwrap(), 0);
    let versions = history_rows(&catalog).await;
    assert_eq!(versions.len(), first);
}

#[tokio::test]
async fn two_replicas_starting_together_on_one_fresh_catalog_both_come_up() {
    let (settings, _) = test_settings();
    let url = settings.database_url.clone().unwrap();
    let (a, b, c) = tokio::join!(
        Application::build(settings.clone()),
        Application::build(settings.clone()),
        Application::build(settings.clone()),
    );
    let (a, _b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let catalog = Catalog::connect(&url, &settings.catalog).await.unwrap();
    let versions = history_rows(&catalog).await;
    let mut unique = versions.clone();
    unique.dedup();
    assert_eq!(versions, unique, "each migration recorded once");
    // The catalog's server is registered exactly once.
    let servers = a.state().services().catalog.list_servers().await.unwrap();
    assert_eq!(servers.len(), 1);
    assert!(servers[0].is_catalog);
}

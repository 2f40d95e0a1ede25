//! Tenants for the router benches, made through the library as the CLI
//! makes them: each with one agent and a tenant_admin token.

use secrecy::ExposeSecret;
use tenant_plane::api::AppState;
use tenant_plane::auth::JwtKeys;
use tenant_plane::domain::{Slug, TenantName, Tier};
use tenant_plane::local_pg::LocalCluster;
use tenant_plane::tenants::NewTenantInput;

use crate::common::admin_token;
use crate::drive::Target;

/// `n` tenants named `<prefix>-<i>`, of the tier `tier_of(i)`, each with an
/// agent written straight into its database.
pub async fn with_agents(
    state: &AppState,
    cluster: &LocalCluster,
    keys: &JwtKeys,
    prefix: &str,
    n: usize,
    tier_of: impl Fn(usize) -> Tier,
) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::with_capacity(n);
    for i in 0..n {
        let view = state
            .tenants()
            .create(NewTenantInput {
                name: TenantName::parse(&format!("{prefix} {i}")).expect("name"),
                slug: Slug::parse(&format!("{prefix}-{i}")).expect("slug"),
                tier: tier_of(i),
                settings: Default::default(),
            })
            .await?;
        let db = view.database.expect("database");
        let (admin, conn) =
            tokio_postgres::connect(cluster.dsn(&db).expose_secret(), tokio_postgres::NoTls)
                .await?;
        tokio::spawn(conn);
        let agent = uuid::Uuid::now_v7();
        admin
            .execute(
                "INSERT INTO agents (id, name, type, owner) VALUES ($1, 'bench', 'chat', 'bench')",
                &[&agent],
            )
            .await?;
        targets.push(Target {
            tenant: view.id,
            agent,
            token: admin_token(keys, view.id)?,
        });
    }
    Ok(targets)
}

//! What every benchmark needs: a throwaway PostgreSQL cluster of its own.

use tenant_plane::local_pg::{
    postgres_owner, ClusterAuth, ClusterOptions, LocalCluster, PgBinaries,
};

/// A cluster in a new temp dir; `durable` keeps fsync on. The dir must
/// outlive the cluster.
#[allow(dead_code)]
pub async fn start_cluster(
    prefix: &str,
    durable: bool,
) -> anyhow::Result<(tempfile::TempDir, LocalCluster)> {
    start_cluster_with(prefix, durable, 300).await
}

/// `start_cluster` with room for `max_connections` sessions.
#[allow(dead_code)]
pub async fn start_cluster_with(
    prefix: &str,
    durable: bool,
    max_connections: u32,
) -> anyhow::Result<(tempfile::TempDir, LocalCluster)> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    if let Some((uid, gid)) = postgres_owner()? {
        nix::unistd::chown(dir.path(), Some(uid), Some(gid))?;
    }
    let options = ClusterOptions {
        pgdata: dir.path().join("pgdata"),
        run_dir: dir.path().join("run"),
        port: 0,
        auth: ClusterAuth::Trust,
        durable,
        max_connections,
    };
    let cluster = tokio::task::spawn_blocking(move || {
        LocalCluster::start(options, PgBinaries::locate(None)?)
    })
    .await??;
    Ok((dir, cluster))
}

/// A tenant_admin token for `tenant`, valid for an hour.
#[allow(dead_code)]
pub fn admin_token(
    keys: &tenant_plane::auth::JwtKeys,
    tenant: tenant_plane::domain::TenantId,
) -> anyhow::Result<String> {
    Ok(keys.sign(&tenant_plane::auth::Claims::new(
        "bench",
        tenant_plane::auth::Role::TenantAdmin,
        Some(tenant),
        None,
        std::time::Duration::from_secs(3600),
    ))?)
}

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
        server_settings: Vec::new(),
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

/// The JWT secret and master key of the in-process benches.
#[allow(dead_code)]
pub const JWT_SECRET: &str = "bench-secret-0123456789abcdef0123456789";
#[allow(dead_code)]
pub const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// Settings for a service on `cluster`'s catalog, on a free port, with the
/// benches' secret and master key.
#[allow(dead_code)]
pub fn settings(cluster: &LocalCluster) -> anyhow::Result<tenant_plane::config::Settings> {
    Ok(tenant_plane::config::Settings {
        listen: "127.0.0.1:0".parse()?,
        database_url: Some(cluster.dsn("tenant_plane")),
        jwt_secret: Some(secrecy::SecretString::from(JWT_SECRET)),
        master_key: Some(secrecy::SecretString::from(MASTER_KEY)),
        ..tenant_plane::config::Settings::default()
    })
}

/// The keys that sign the benches' tokens.
#[allow(dead_code)]
pub fn jwt_keys() -> anyhow::Result<tenant_plane::auth::JwtKeys> {
    Ok(tenant_plane::auth::JwtKeys::hs256(
        &secrecy::SecretString::from(JWT_SECRET),
    )?)
}

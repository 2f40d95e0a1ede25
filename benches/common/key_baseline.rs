//! The key flood's baseline: the plainest app a user would write, and the
//! service's own design before issue 27. A bare actix-web app whose every
//! API-key request reads the key's row from the catalog (`prefix`, then a
//! SHA-256 compare) over one shared 8-connection pool, the pool the control
//! plane and the cold routes read from too. Then, as the service did, the
//! tenant's rate limit (the service's own `RateLimits`, at the defaults)
//! and the data read on the tenant database over a small pool of its own.
//!
//! - `GET /v1/agents`, `GET /v1/agents/{id}`: a `tpk_` key (catalog read)
//!   or a JWT (checked in memory); the tenant's route is its catalog row,
//!   read once and kept with its pool;
//! - `GET /v1/tenants/{id}`: a super_admin JWT; the tenant row from the
//!   catalog.
//!
//! A catalog connection that does not come within the service's wait
//! (`catalog.connect_timeout_secs`) answers 503, as the service's does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use tenant_plane::auth::{JwtKeys, Role};
use tenant_plane::domain::{TenantId, Tier};
use tenant_plane::router::RateLimits;

/// A tenant's route as the baseline keeps it: its tier and database pool.
type Route = (Tier, deadpool_postgres::Pool);

pub struct Baseline {
    /// The shared catalog pool.
    pub catalog: deadpool_postgres::Pool,
    /// How to reach a tenant database (the catalog's settings, another name).
    tenant_config: tokio_postgres::Config,
    routes: Mutex<HashMap<uuid::Uuid, Route>>,
    limits: RateLimits,
    jwt: JwtKeys,
}

fn pool(config: tokio_postgres::Config, size: usize) -> anyhow::Result<deadpool_postgres::Pool> {
    let wait = Duration::from_secs(
        tenant_plane::config::Settings::default()
            .catalog
            .connect_timeout_secs,
    );
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig::default(),
    );
    Ok(deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .build()?)
}

impl Baseline {
    /// On the catalog at `dsn`, with the catalog pool's default size.
    pub fn new(dsn: &str, jwt: JwtKeys) -> anyhow::Result<Self> {
        let config: tokio_postgres::Config = dsn.parse()?;
        let settings = tenant_plane::config::Settings::default();
        Ok(Self {
            catalog: pool(config.clone(), settings.catalog.pool_size)?,
            tenant_config: config,
            routes: Mutex::new(HashMap::new()),
            limits: RateLimits::new(settings.router.rate_limit_scale),
            jwt,
        })
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/agents", web::get().to(list_agents))
        .route("/v1/agents/{id}", web::get().to(get_agent))
        .route("/v1/tenants/{id}", web::get().to(get_tenant));
}

enum Refused {
    Unauthorized,
    Unavailable,
    RateLimited,
    NotFound,
}

impl From<Refused> for HttpResponse {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Unauthorized => HttpResponse::Unauthorized().finish(),
            Refused::Unavailable => HttpResponse::ServiceUnavailable().finish(),
            Refused::RateLimited => HttpResponse::TooManyRequests().finish(),
            Refused::NotFound => HttpResponse::NotFound().finish(),
        }
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Who is asking: a key's tenant (a catalog read) or a token's claims.
async fn authenticate(
    b: &Baseline,
    req: &HttpRequest,
) -> Result<(Role, Option<TenantId>), Refused> {
    let presented = bearer(req).ok_or(Refused::Unauthorized)?;
    let Some(rest) = presented.strip_prefix("tpk_") else {
        let claims = b.jwt.verify(presented).map_err(|_| Refused::Unauthorized)?;
        return Ok((claims.role, claims.tenant_id));
    };
    let (prefix, secret) = rest.split_once('_').ok_or(Refused::Unauthorized)?;
    let client = b.catalog.get().await.map_err(|_| Refused::Unavailable)?;
    let row = client
        .query_opt(
            "SELECT tenant_id, key_hash, role FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL",
            &[&prefix],
        )
        .await
        .map_err(|_| Refused::Unavailable)?
        .ok_or(Refused::Unauthorized)?;
    let hash: Vec<u8> = row.get(1);
    if Sha256::digest(secret.as_bytes()).as_slice() != hash.as_slice() {
        return Err(Refused::Unauthorized);
    }
    let role = row
        .get::<_, String>(2)
        .parse()
        .map_err(|_| Refused::Unauthorized)?;
    Ok((role, Some(TenantId::from(row.get::<_, uuid::Uuid>(0)))))
}

/// The tenant's pool: kept after its first request, which reads the
/// tenant's row from the catalog.
async fn route(b: &Baseline, tenant: TenantId) -> Result<Route, Refused> {
    if let Some(route) = b.routes.lock().unwrap().get(&tenant.as_uuid()) {
        return Ok(route.clone());
    }
    let client = b.catalog.get().await.map_err(|_| Refused::Unavailable)?;
    let row = client
        .query_opt(
            "SELECT tier, db_name FROM tenants WHERE id = $1 AND status = 'active'",
            &[&tenant.as_uuid()],
        )
        .await
        .map_err(|_| Refused::Unavailable)?
        .ok_or(Refused::NotFound)?;
    drop(client);
    let tier = Tier::parse(row.get(0)).ok_or(Refused::Unavailable)?;
    let mut config = b.tenant_config.clone();
    config.dbname(row.get::<_, &str>(1));
    let route = (tier, pool(config, 2).map_err(|_| Refused::Unavailable)?);
    Ok(b.routes
        .lock()
        .unwrap()
        .entry(tenant.as_uuid())
        .or_insert(route)
        .clone())
}

/// Authenticates a data-plane request, routes it and checks its rate.
async fn enter(b: &Baseline, req: &HttpRequest) -> Result<deadpool_postgres::Pool, Refused> {
    let (_, tenant) = authenticate(b, req).await?;
    let tenant = tenant.ok_or(Refused::Unauthorized)?;
    let (tier, pool) = route(b, tenant).await?;
    b.limits
        .check(tenant, tier)
        .map_err(|_| Refused::RateLimited)?;
    Ok(pool)
}

async fn list_agents(b: web::Data<Baseline>, req: HttpRequest) -> HttpResponse {
    let pool = match enter(&b, &req).await {
        Ok(pool) => pool,
        Err(r) => return r.into(),
    };
    let Ok(client) = pool.get().await else {
        return Refused::Unavailable.into();
    };
    match client
        .query("SELECT id, name FROM agents ORDER BY id LIMIT 50", &[])
        .await
    {
        Ok(rows) => HttpResponse::Ok().json(serde_json::json!({
            "agents": rows.iter().map(|r| serde_json::json!({
                "id": r.get::<_, uuid::Uuid>(0),
                "name": r.get::<_, String>(1),
            })).collect::<Vec<_>>()
        })),
        Err(_) => Refused::Unavailable.into(),
    }
}

async fn get_agent(
    b: web::Data<Baseline>,
    req: HttpRequest,
    id: web::Path<uuid::Uuid>,
) -> HttpResponse {
    let pool = match enter(&b, &req).await {
        Ok(pool) => pool,
        Err(r) => return r.into(),
    };
    let Ok(client) = pool.get().await else {
        return Refused::Unavailable.into();
    };
    match client
        .query_opt(
            "SELECT id, name, type, owner FROM agents WHERE id = $1",
            &[&*id],
        )
        .await
    {
        Ok(Some(r)) => HttpResponse::Ok().json(serde_json::json!({
            "id": r.get::<_, uuid::Uuid>(0),
            "name": r.get::<_, String>(1),
            "type": r.get::<_, String>(2),
            "owner": r.get::<_, String>(3),
        })),
        Ok(None) => Refused::NotFound.into(),
        Err(_) => Refused::Unavailable.into(),
    }
}

async fn get_tenant(
    b: web::Data<Baseline>,
    req: HttpRequest,
    id: web::Path<uuid::Uuid>,
) -> HttpResponse {
    match authenticate(&b, &req).await {
        Ok((Role::SuperAdmin, _)) => {}
        Ok(_) => return HttpResponse::Forbidden().finish(),
        Err(r) => return r.into(),
    }
    let Ok(client) = b.catalog.get().await else {
        return Refused::Unavailable.into();
    };
    match client
        .query_opt(
            "SELECT id, slug, name, tier, status, schema_version FROM tenants WHERE id = $1",
            &[&*id],
        )
        .await
    {
        Ok(Some(r)) => HttpResponse::Ok().json(serde_json::json!({
            "id": r.get::<_, uuid::Uuid>(0),
            "slug": r.get::<_, String>(1),
            "name": r.get::<_, String>(2),
            "tier": r.get::<_, String>(3),
            "status": r.get::<_, String>(4),
            "schema_version": r.get::<_, i32>(5),
        })),
        Ok(None) => Refused::NotFound.into(),
        Err(_) => Refused::Unavailable.into(),
    }
}

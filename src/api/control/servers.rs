//! `/v1/servers`: the database servers tenants are placed on, and draining one.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::http::audited::actor;
use crate::api::http::wire::Dsn;
use crate::api::http::AppState;
use crate::api::http::{ApiError, ErrorCode};
use crate::auth::{Action, Principal, Resource};
use crate::domain::{ServerName, Tier};
use crate::servers::{ArchiveChange, DbServer, NewServerInput, ServerPatch, ServerState};

/// A server as the API shows it: the catalog record, plus the router
/// connections this replica holds open to it against its budget.
pub(crate) fn server_json(state: &AppState, server: &DbServer) -> serde_json::Value {
    let mut value = serde_json::to_value(server).expect("servers serialise");
    let (open, budget) = state.tenancy().connections_on(server).unwrap_or((
        0,
        server
            .connection_budget
            .map(|b| b as usize)
            .unwrap_or(state.settings().router.connection_budget as usize),
    ));
    value["connections"] = serde_json::json!({ "open": open, "budget": budget });
    value["tls_warning"] = crate::servers::tls_warning(server).into();
    value
}

/// `GET /v1/servers`: every server with its tenants, connections and state.
#[utoipa::path(get, path = "/v1/servers", tag = "servers", responses((status = 200, description = "Servers with tenants, open connections against the budget, and state")))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Read)?;
    let servers: Vec<_> = state
        .servers()
        .list()
        .await?
        .iter()
        .map(|s| server_json(&state, s))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "servers": servers })))
}

/// Every server's measured load against its capacity.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ServerLoads {
    /// The busiest first.
    pub servers: Vec<crate::servers::ServerLoad>,
}

/// `GET /v1/servers/load`: each server's tenants, storage, client sessions
/// and requests an hour, as the last usage sample measured them, against
/// its capacity, and its utilisation (the largest ratio): what placement
/// weighs.
#[utoipa::path(get, path = "/v1/servers/load", tag = "servers", responses((status = 200, description = "Every server's load, the busiest first (`Accept: image/svg+xml`: its utilisation in per cent, as bars)", content((ServerLoads = "application/json"), (String = "image/svg+xml")))))]
pub async fn load(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Read)?;
    let servers = state.servers().loads().await?;
    if super::usage::accepts(&req, "image/svg+xml") {
        let bars: Vec<(String, i64)> = servers
            .iter()
            .map(|s| (s.name.clone(), (s.utilisation * 100.0).round() as i64))
            .collect();
        return Ok(HttpResponse::Ok()
            .content_type("image/svg+xml")
            .body(super::usage_chart::bar_chart(&bars, "% utilisation")));
    }
    Ok(HttpResponse::Ok().json(ServerLoads { servers }))
}

/// `GET /v1/servers/{id}`
#[utoipa::path(get, path = "/v1/servers/{id}", tag = "servers", params(("id" = uuid::Uuid, Path, description = "Server id")), responses((status = 200, description = "The server", body = crate::servers::DbServer)))]
pub async fn show(
    principal: Principal,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Read)?;
    let server = state.servers().get(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(server_json(&state, &server)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterServer {
    name: ServerName,
    /// `postgres://user:password@host:port/db`, optionally with
    /// `?sslmode=disable|prefer|require|verify-ca|verify-full` (default
    /// `prefer`); the admin role must be able to create databases and
    /// roles. Stored sealed. A server that cannot be reached or used
    /// (a certificate that does not verify included) is refused with 409
    /// `server_unusable`.
    dsn: Dsn,
    /// The CA certificates (PEM) the server's certificate must chain to,
    /// for `verify-ca` and `verify-full`.
    #[serde(default)]
    #[schema(max_length = 16384)]
    ssl_root_cert: Option<String>,
    /// Registers a server on a host that is not loopback although its
    /// sslmode (`disable`, `prefer`, `require`) does not verify its
    /// certificate; without it such a registration is refused (409
    /// `server_unusable`). The server list then shows `tls_warning`.
    #[serde(default)]
    allow_unverified_tls: bool,
    /// Tenants the server may hold (default 1000).
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    capacity: Option<u32>,
    /// Router connections to it (default `router.connection_budget`).
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    connection_budget: Option<u32>,
    #[serde(default)]
    pinned_tiers: Vec<Tier>,
}

/// `POST /v1/servers`: registers a server after connecting to it.
#[utoipa::path(post, path = "/v1/servers", tag = "servers", request_body = RegisterServer, responses((status = 201, description = "The server, checked and registered", body = crate::servers::DbServer)))]
pub async fn register(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: crate::api::http::body::Json<RegisterServer>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Write)?;
    let body = body.into_inner();
    let input = NewServerInput {
        name: body.name,
        dsn: body.dsn.0,
        capacity: positive("capacity", body.capacity)?.unwrap_or(1000),
        connection_budget: positive("connection_budget", body.connection_budget)?,
        pinned_tiers: body.pinned_tiers,
        ssl_root_cert: body.ssl_root_cert,
        allow_unverified_tls: body.allow_unverified_tls,
    };
    let server = state
        .servers()
        .register(&actor(&principal, &req), input)
        .await?;
    Ok(HttpResponse::Created().json(server_json(&state, &server)))
}

impl UpdateServer {
    fn into_change(self) -> Result<(ServerPatch, ArchiveChange), ApiError> {
        let archive = match self.wal_archive {
            None => ArchiveChange::Keep,
            Some(None) => ArchiveChange::Remove,
            Some(Some(set)) => ArchiveChange::Set(Box::new(set.into_archive()?)),
        };
        let patch = ServerPatch {
            state: self.state,
            capacity: positive("capacity", self.capacity)?,
            connection_budget: positive("connection_budget", self.connection_budget)?,
            storage_capacity_mb: positive("storage_capacity_mb", self.storage_capacity_mb)?
                .map(i64::from),
            requests_per_hour_capacity: positive(
                "requests_per_hour_capacity",
                self.requests_per_hour_capacity,
            )?
            .map(i64::from),
        };
        Ok((patch, archive))
    }
}

fn positive(field: &'static str, v: Option<u32>) -> Result<Option<i32>, ApiError> {
    let invalid = |m: String| {
        ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            m,
        )
    };
    match v {
        Some(0) => Err(invalid(format!("{field} must be at least 1"))),
        Some(v) => i32::try_from(v)
            .map(Some)
            .map_err(|_| invalid(format!("{field} is too large"))),
        None => Ok(None),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServer {
    state: Option<ServerState>,
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    capacity: Option<u32>,
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    connection_budget: Option<u32>,
    /// Storage the server can hold, in MiB: placement weighs its sampled
    /// storage against it.
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    storage_capacity_mb: Option<u32>,
    /// Requests an hour its tenants may send: placement weighs their
    /// measured rate against it.
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    requests_per_hour_capacity: Option<u32>,
    /// The pgBackRest archive a restore to a time of its tenants reads
    /// (as `PUT /v1/servers/{id}/wal-archive` sets it), or `null` to
    /// forget it; absent, it is left as it is.
    #[serde(default, deserialize_with = "crate::api::http::wire::nullable")]
    #[schema(value_type = Option<super::wal_archives::SetWalArchive>, nullable)]
    wal_archive: Option<Option<super::wal_archives::SetWalArchive>>,
}

/// `PATCH /v1/servers/{id}`: mark a server draining or down, change its
/// capacity and connection budget, or set or forget its WAL archive (read
/// before it is recorded: 409 `wal_archive_unreadable`, and nothing changes).
#[utoipa::path(patch, path = "/v1/servers/{id}", tag = "servers", request_body = UpdateServer, params(("id" = uuid::Uuid, Path, description = "Server id")), responses((status = 200, description = "The server", body = crate::servers::DbServer)))]
pub async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: crate::api::http::body::Json<UpdateServer>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Write)?;
    let (patch, archive) = body.into_inner().into_change()?;
    let server = state
        .servers()
        .change(&actor(&principal, &req), id.into_inner(), &patch, archive)
        .await?;
    Ok(HttpResponse::Ok().json(server_json(&state, &server)))
}

/// `POST /v1/servers/{id}/drain`: marks the server draining and begins its
/// drain, an operation that moves every tenant off it; answers 202 with the
/// operation (the one already running, if the server is being drained).
#[utoipa::path(post, path = "/v1/servers/{id}/drain", tag = "servers", params(("id" = uuid::Uuid, Path, description = "Server id")), responses((status = 202, description = "Draining: follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}")))))]
pub async fn drain(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Write)?;
    // Marked draining before the answer, so the caller never sees it otherwise.
    let placement = &state.services().placement;
    let no_progress = std::sync::Arc::new(|_, _| {});
    let launched = placement
        .drain(&actor(&principal, &req), id.into_inner(), no_progress)
        .await?;
    crate::api::control::operations::operation_accepted(&state, launched.op).await
}

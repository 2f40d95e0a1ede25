use actix_web::{web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::TenantContext;
use crate::api::http::wire::PageLimit;
use crate::api::ApiError;
use crate::auth::{Action, Resource};
use crate::data::agents::{self, AgentType, NewAgent};
use crate::data::tenant_audit;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    #[schema(value_type = crate::domain::TenantName)]
    name: String,
    #[serde(rename = "type")]
    kind: AgentType,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    configuration: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    #[schema(value_type = Option<crate::domain::TenantName>)]
    name: Option<String>,
    #[schema(value_type = Option<Object>)]
    configuration: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    limit: Option<PageLimit>,
    cursor: Option<Uuid>,
}

fn valid_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(crate::data::DataError::Invalid(
            "name: 1 to 200 characters without control characters".into(),
        )
        .into());
    }
    Ok(name.to_string())
}

fn valid_configuration(
    c: Option<serde_json::Value>,
) -> Result<Option<serde_json::Value>, ApiError> {
    match c {
        Some(v) if !v.is_object() => Err(crate::data::DataError::Invalid(
            "configuration: must be a JSON object".into(),
        )
        .into()),
        other => Ok(other),
    }
}

/// `POST /v1/agents`
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = CreateAgent, responses((status = 201, description = "The new agent", body = crate::data::agents::Agent)))]
pub async fn create(
    ctx: TenantContext,
    body: crate::api::http::body::Json<CreateAgent>,
) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Agents, Action::Write).await?;
    let body = body.into_inner();
    let new = NewAgent {
        name: valid_name(&body.name)?,
        kind: body.kind,
        configuration: valid_configuration(body.configuration)?
            .unwrap_or_else(|| serde_json::json!({})),
    };
    let root_limit = ctx.route.root_features.max_agents;
    let mut conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let tx = conn.transaction().await?;
    let agent = agents::create(&tx, &caller, &ctx.route.features, root_limit, &new).await?;
    tenant_audit::record(
        &tx,
        &caller,
        &ctx.origin(),
        "agents.create",
        &format!("agents/{}", agent.id),
        true,
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(agent))
}

/// `GET /v1/agents?limit=&cursor=`
#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(Page), responses((status = 200, description = "A page of agents: `{agents, next_cursor}`")))]
pub async fn list(ctx: TenantContext, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Agents, Action::Read).await?;
    let limit = PageLimit::get(page.limit, 50);
    let conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let agents = agents::list(&conn, &caller, page.cursor, limit).await?;
    let next = (agents.len() as i64 == limit)
        .then(|| agents.last().map(|a| a.id))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "agents": agents, "next_cursor": next })))
}

/// `GET /v1/agents/{id}`
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = uuid::Uuid, Path, description = "Agent id")), responses((status = 200, description = "The agent", body = crate::data::agents::Agent)))]
pub async fn show(ctx: TenantContext, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Agents, Action::Read).await?;
    let conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let agent = agents::get(&conn, &caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(agent))
}

/// `PATCH /v1/agents/{id}`
#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "agents", request_body = UpdateAgent, params(("id" = uuid::Uuid, Path, description = "Agent id")), responses((status = 200, description = "The agent", body = crate::data::agents::Agent)))]
pub async fn update(
    ctx: TenantContext,
    id: web::Path<Uuid>,
    body: crate::api::http::body::Json<UpdateAgent>,
) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Agents, Action::Write).await?;
    let body = body.into_inner();
    let name = body.name.as_deref().map(valid_name).transpose()?;
    let configuration = valid_configuration(body.configuration)?;
    let mut conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let tx = conn.transaction().await?;
    let agent = agents::update(
        &tx,
        &caller,
        id.into_inner(),
        name.as_deref(),
        configuration.as_ref(),
    )
    .await?;
    tenant_audit::record(
        &tx,
        &caller,
        &ctx.origin(),
        "agents.update",
        &format!("agents/{}", agent.id),
        true,
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(agent))
}

/// `DELETE /v1/agents/{id}`
#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents", params(("id" = uuid::Uuid, Path, description = "Agent id")), responses((status = 204, description = "Deleted")))]
pub async fn delete(ctx: TenantContext, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Agents, Action::Delete).await?;
    let id = id.into_inner();
    let mut conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let tx = conn.transaction().await?;
    agents::delete(&tx, &caller, id).await?;
    tenant_audit::record(
        &tx,
        &caller,
        &ctx.origin(),
        "agents.delete",
        &format!("agents/{id}"),
        true,
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

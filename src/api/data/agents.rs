use actix_web::{web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::TenantContext;
use crate::api::http::wire::PageLimit;
use crate::api::http::ApiError;
use crate::auth::{Action, Resource};
use crate::data::agents::{self, AgentType, NewAgent};

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

impl CreateAgent {
    fn into_new(self) -> Result<NewAgent, ApiError> {
        Ok(NewAgent {
            name: valid_name(&self.name)?,
            kind: self.kind,
            configuration: valid_configuration(self.configuration)?
                .unwrap_or_else(|| serde_json::json!({})),
        })
    }
}

/// An update's new name and configuration, each checked.
type AgentChange = (Option<String>, Option<serde_json::Value>);

impl UpdateAgent {
    fn parse(self) -> Result<AgentChange, ApiError> {
        let name = self.name.as_deref().map(valid_name).transpose()?;
        Ok((name, valid_configuration(self.configuration)?))
    }
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
    let new = body.into_inner().into_new()?;
    let root_limit = ctx.route.root_features.max_agents;
    let mut conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let tx = conn.transaction().await?;
    let agent = agents::create(&tx, &caller, &ctx.route.features, root_limit, &new).await?;
    let resource = format!("agents/{}", agent.id);
    ctx.commit_audited(tx, &caller, "agents.create", &resource)
        .await?;
    Ok(HttpResponse::Created().json(agent))
}

/// `GET /v1/agents?limit=&cursor=`
#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(Page), responses((status = 200, description = "A page of agents: `{agents, next_cursor}`")))]
pub async fn list(
    ctx: TenantContext,
    page: crate::api::http::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Agents, Action::Read).await?;
    let limit = PageLimit::get(page.limit, 50);
    let conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let agents = agents::list(&conn, &caller, page.cursor, limit).await?;
    Ok(super::page("agents", agents, limit, |a| a.id))
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
    let (name, configuration) = body.into_inner().parse()?;
    let mut conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let tx = conn.transaction().await?;
    let (name, configuration) = (name.as_deref(), configuration.as_ref());
    let agent = agents::update(&tx, &caller, id.into_inner(), name, configuration).await?;
    let resource = format!("agents/{}", agent.id);
    ctx.commit_audited(tx, &caller, "agents.update", &resource)
        .await?;
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
    let resource = format!("agents/{id}");
    ctx.commit_audited(tx, &caller, "agents.delete", &resource)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::TenantContext;
use crate::api::http::wire::LimitQuery;
use crate::api::http::ApiError;
use crate::auth::{Action, Resource};
use crate::control_audit::DenialCount;
use crate::data::{analytics, tenant_audit, Caller};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default, deserialize_with = "crate::api::http::wire::date_time")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::api::http::wire::date_time")]
    to: Option<DateTime<Utc>>,
}

/// `GET /v1/analytics/summary?from=&to=`: calls by status, average duration,
/// calls per agent, within the caller's scope.
#[utoipa::path(get, path = "/v1/analytics/summary", tag = "analytics", params(Range), responses((status = 200, description = "Calls by status, average duration, calls per agent")))]
pub async fn summary(
    ctx: TenantContext,
    range: crate::api::http::Query<Range>,
) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Analytics, Action::Read).await?;
    let mut conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let tx = conn.transaction().await?;
    let summary = analytics::summary(&tx, &caller, range.from, range.to).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(summary))
}

/// `GET /v1/audit`: the tenant's data-plane events (from its own database)
/// and control-plane events about it (from the catalog), within scope.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(LimitQuery), responses((status = 200, description = "Audit events within the caller's scope: `{events}`")))]
pub async fn audit(
    ctx: TenantContext,
    query: crate::api::http::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Audit, Action::Read).await?;
    let limit = query.limit(100);
    let conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let events = tenant_audit::list(&conn, &caller, limit).await?;
    let audit = &ctx.state().services().audit;
    let control = audit
        .of_tenant(caller.tenant_id, caller.subtenant_id, limit)
        .await?;
    let denials = denials(&ctx, &caller, limit).await?;
    Ok(HttpResponse::Ok().json(
        serde_json::json!({ "events": events, "control_events": control, "denials": denials }),
    ))
}

/// Refusals are counted per minute, not logged one by one: a tenant-wide
/// reader sees its tenant's counts, a narrower one none.
async fn denials(
    ctx: &TenantContext,
    caller: &Caller,
    limit: i64,
) -> Result<Vec<DenialCount>, ApiError> {
    if caller.subtenant_id.is_some() || caller.own_only {
        return Ok(Vec::new());
    }
    Ok(ctx
        .state()
        .denials()
        .of_tenant(caller.tenant_id, limit)
        .await?)
}

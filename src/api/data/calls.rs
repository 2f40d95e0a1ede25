use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::TenantContext;
use crate::api::http::wire::PageLimit;
use crate::api::http::ApiError;
use crate::auth::{Action, Resource};
use crate::data::calls::{self, Call, CallFilter, CallStatus};
use crate::data::{Caller, DataError, Transaction};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCall {
    agent_id: Uuid,
    #[schema(min_length = 1, max_length = 32, pattern = "^[0-9+() -]+$")]
    customer_phone: Option<String>,
    #[serde(default = "queued")]
    status: CallStatus,
    /// Seconds.
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 0, maximum = 2147483647)]
    duration: Option<u32>,
}

fn queued() -> CallStatus {
    CallStatus::Queued
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCall {
    status: Option<CallStatus>,
    /// Seconds.
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 0, maximum = 2147483647)]
    duration: Option<u32>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListCalls {
    status: Option<CallStatus>,
    agent_id: Option<Uuid>,
    subtenant_id: Option<Uuid>,
    #[serde(default, deserialize_with = "crate::api::http::wire::date_time")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::api::http::wire::date_time")]
    to: Option<DateTime<Utc>>,
    limit: Option<PageLimit>,
    cursor: Option<Uuid>,
}

impl ListCalls {
    fn into_filter(self) -> CallFilter {
        CallFilter {
            status: self.status,
            agent_id: self.agent_id,
            subtenant_id: self.subtenant_id,
            from: self.from,
            to: self.to,
            after: self.cursor,
            limit: PageLimit::get(self.limit, 50),
        }
    }
}

/// A new call's fields, each checked.
struct NewCall {
    agent_id: Uuid,
    phone: Option<String>,
    status: CallStatus,
    duration: Option<i32>,
}

impl CreateCall {
    fn parse(self) -> Result<NewCall, ApiError> {
        Ok(NewCall {
            agent_id: self.agent_id,
            phone: valid_phone(self.customer_phone)?,
            status: self.status,
            duration: valid_duration(self.duration)?,
        })
    }
}

impl NewCall {
    /// Inserts it under the caller's and its root's concurrent-call limits.
    async fn insert(
        &self,
        tx: &Transaction<'_>,
        caller: &Caller,
        (sub_limit, root_limit): (u32, u32),
    ) -> Result<Call, DataError> {
        let phone = self.phone.as_deref();
        let (agent_id, status, duration) = (self.agent_id, self.status, self.duration);
        calls::create(
            tx, caller, sub_limit, root_limit, agent_id, phone, status, duration,
        )
        .await
    }
}

fn valid_phone(phone: Option<String>) -> Result<Option<String>, ApiError> {
    match phone {
        Some(p)
            if p.is_empty()
                || p.len() > 32
                || !p.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) =>
        {
            Err(
                DataError::Invalid("customer_phone: up to 32 digits, spaces and +-()".into())
                    .into(),
            )
        }
        other => Ok(other),
    }
}

fn valid_duration(d: Option<u32>) -> Result<Option<i32>, ApiError> {
    d.map(|d| i32::try_from(d).map_err(|_| DataError::Invalid("duration: too large".into()).into()))
        .transpose()
}

/// The caller's and its root's `maxConcurrentCalls`.
fn limits(ctx: &TenantContext) -> (u32, u32) {
    (
        ctx.route.features.max_concurrent_calls,
        ctx.route.root_features.max_concurrent_calls,
    )
}

/// `POST /v1/calls`
#[utoipa::path(post, path = "/v1/calls", tag = "calls", request_body = CreateCall, responses((status = 201, description = "The new call", body = crate::data::calls::Call)))]
pub async fn create(
    ctx: TenantContext,
    body: crate::api::http::body::Json<CreateCall>,
) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Calls, Action::Write).await?;
    let new = body.into_inner().parse()?;
    let mut conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let tx = conn.transaction().await?;
    let call = new.insert(&tx, &caller, limits(&ctx)).await?;
    let resource = format!("calls/{}", call.id);
    ctx.commit_audited(tx, &caller, "calls.create", &resource)
        .await?;
    Ok(HttpResponse::Created().json(call))
}

/// `GET /v1/calls?status=&agent_id=&subtenant_id=&from=&to=&limit=&cursor=`
#[utoipa::path(get, path = "/v1/calls", tag = "calls", params(ListCalls), responses((status = 200, description = "A page of calls: `{calls, next_cursor}`")))]
pub async fn list(
    ctx: TenantContext,
    query: crate::api::http::Query<ListCalls>,
) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Calls, Action::Read).await?;
    let filter = query.into_inner().into_filter();
    let conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let calls = calls::list(&conn, &caller, &filter).await?;
    Ok(super::page("calls", calls, filter.limit, |c| c.id))
}

/// `GET /v1/calls/{id}`
#[utoipa::path(get, path = "/v1/calls/{id}", tag = "calls", params(("id" = uuid::Uuid, Path, description = "Call id")), responses((status = 200, description = "The call", body = crate::data::calls::Call)))]
pub async fn show(ctx: TenantContext, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Calls, Action::Read).await?;
    let conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let call = calls::get(&conn, &caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(call))
}

/// `PATCH /v1/calls/{id}`: status or duration.
#[utoipa::path(patch, path = "/v1/calls/{id}", tag = "calls", request_body = UpdateCall, params(("id" = uuid::Uuid, Path, description = "Call id")), responses((status = 200, description = "The call", body = crate::data::calls::Call)))]
pub async fn update(
    ctx: TenantContext,
    id: web::Path<Uuid>,
    body: crate::api::http::body::Json<UpdateCall>,
) -> Result<HttpResponse, ApiError> {
    let caller = ctx.require(Resource::Calls, Action::Write).await?;
    let body = body.into_inner();
    let duration = valid_duration(body.duration)?;
    let limits = limits(&ctx);
    let mut conn = ctx.state().tenancy().connection(&ctx.route).await?;
    let tx = conn.transaction().await?;
    let call = calls::update(&tx, &caller, limits, id.into_inner(), body.status, duration).await?;
    let resource = format!("calls/{}", call.id);
    ctx.commit_audited(tx, &caller, "calls.update", &resource)
        .await?;
    Ok(HttpResponse::Ok().json(call))
}

//! Usage (`/v1/tenants/{id}/usage`, `/v1/usage/top`): a tenant's usage per
//! hour or day, as JSON or as CSV for billing (`Accept: text/csv`), and the
//! fleet's top tenants by one metric.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::tenants::TenantPath;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};
use crate::usage::{Granularity, TopTenant, UsageMetric, UsagePoint};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// The range's start (RFC 3339); default: `to` less a day (hours) or
    /// 30 days (days).
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::api::http::wire::date_time")]
    from: Option<DateTime<Utc>>,
    /// The range's end, excluded (RFC 3339); default: now.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::api::http::wire::date_time")]
    to: Option<DateTime<Utc>>,
    /// `hour` (default) or `day`.
    granularity: Option<Granularity>,
}

/// A tenant's usage over a range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub tenant_id: crate::domain::TenantId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
    /// A point per hour or day that has any usage, oldest first.
    pub points: Vec<UsagePoint>,
    /// The root tenant's quotas now: use, limit, reset, and whether its
    /// writes are refused.
    pub quotas: Vec<crate::usage::QuotaStatus>,
}

pub(super) fn accepts(req: &HttpRequest, kind: &str) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(kind))
}

/// The report as CSV: a header line, then a line per point.
fn csv(report: &UsageReport) -> String {
    let mut out = String::from(
        "tenant_id,start,requests_data,requests_control,statement_ms,rows_read,rows_written,connection_ms,storage_bytes,backup_bytes\n",
    );
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for p in &report.points {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            report.tenant_id,
            p.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            p.requests_data,
            p.requests_control,
            p.statement_ms,
            p.rows_read,
            p.rows_written,
            p.connection_ms,
            opt(p.storage_bytes),
            opt(p.backup_bytes),
        ));
    }
    out
}

/// `GET /v1/tenants/{id}/usage?from=&to=&granularity=hour|day`: the
/// tenant's requests (data and control plane), statement time, rows read
/// and written, connection time, storage and backup bytes, per hour or
/// day, with its quotas now. `Accept: text/csv` answers the points as CSV,
/// for billing; `Accept: image/svg+xml` as a bar chart of the requests.
#[utoipa::path(get, path = "/v1/tenants/{id}/usage", tag = "usage", params(("id" = uuid::Uuid, Path, description = "Tenant id"), UsageQuery), responses((status = 200, description = "The tenant's usage", content((UsageReport = "application/json"), (String = "text/csv"), (String = "image/svg+xml")))))]
pub async fn tenant(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
    query: crate::api::http::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    // Whoever may read the tenant (its own admins, fleet readers).
    super::tenants::read::readable(&principal, &state, id.0).await?;
    let query = query.into_inner();
    let granularity = query.granularity.unwrap_or(Granularity::Hour);
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(match granularity {
        Granularity::Hour => to - Duration::days(1),
        Granularity::Day => to - Duration::days(30),
    });
    let points = state
        .usage()
        .tenant_usage(id.0, from, to, granularity)
        .await?;
    let quotas = state.usage().quotas(id.0).await?;
    let report = UsageReport {
        tenant_id: id.0,
        from,
        to,
        granularity,
        points,
        quotas,
    };
    if accepts(&req, "text/csv") {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(csv(&report)));
    }
    if accepts(&req, "image/svg+xml") {
        return Ok(HttpResponse::Ok()
            .content_type("image/svg+xml")
            .body(super::usage_chart::requests_chart(&report.points)));
    }
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TopQuery {
    /// What to rank by; default `requests`.
    metric: Option<UsageMetric>,
    /// How many tenants, 1 to 500; default 10.
    #[param(value_type = Option<u16>, minimum = 1, maximum = 500)]
    limit: Option<crate::api::http::wire::PageLimit>,
    /// The range's start (RFC 3339); default: the start of this month (UTC).
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::api::http::wire::date_time")]
    from: Option<DateTime<Utc>>,
    /// The range's end, excluded; default: now.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::api::http::wire::date_time")]
    to: Option<DateTime<Utc>>,
}

/// The fleet's top tenants by one metric over a range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopReport {
    pub metric: UsageMetric,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tenants: Vec<TopTenant>,
}

/// `GET /v1/usage/top?metric=&limit=&from=&to=`: the tenants that use the
/// most (operators only).
#[utoipa::path(get, path = "/v1/usage/top", tag = "usage", params(TopQuery), responses((status = 200, description = "The top tenants (`Accept: image/svg+xml`: a bar chart)", content((TopReport = "application/json"), (String = "image/svg+xml")))))]
pub async fn top(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: crate::api::http::Query<TopQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Read)?;
    let query = query.into_inner();
    let metric = query.metric.unwrap_or(UsageMetric::Requests);
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or_else(|| {
        let first = crate::usage::month_of(to);
        first.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
    });
    let limit = crate::api::http::wire::PageLimit::get(query.limit, 10);
    let tenants = state.usage().top(metric, from, to, limit).await?;
    if accepts(&req, "image/svg+xml") {
        let bars: Vec<(String, i64)> = tenants.iter().map(|t| (t.slug.clone(), t.value)).collect();
        let unit = serde_json::to_value(metric)
            .ok()
            .and_then(|m| m.as_str().map(String::from))
            .unwrap_or_default();
        return Ok(HttpResponse::Ok()
            .content_type("image/svg+xml")
            .body(super::usage_chart::bar_chart(&bars, &unit)));
    }
    Ok(HttpResponse::Ok().json(TopReport {
        metric,
        from,
        to,
        tenants,
    }))
}

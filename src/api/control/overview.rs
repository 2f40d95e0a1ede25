//! `/v1/fleet/*`: the fleet at a glance, for the console's first page and
//! for dashboards. super_admin only.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::api::http::wire::LimitQuery;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};
use crate::fleet::FleetCounts;

/// A map from a version's digits to a count: JSON object keys are strings,
/// so the schema says so (serde writes an `i32` key as its digits).
fn counts_by_version() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9]+$")),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        ))
        .description(Some(
            "Root tenants with a database, by schema version: each key is a version's digits",
        ))
        .build()
}

/// Tenants counted by status and by tier, and root tenants by schema version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FleetSummary {
    /// Every tenant not purged, subtenants included.
    total: i64,
    by_status: BTreeMap<String, i64>,
    by_tier: BTreeMap<String, i64>,
    /// Root tenants with a database, by schema version. JSON keys are
    /// strings: each key is a version's digits (`"3"`), its value a count.
    #[schema(schema_with = counts_by_version)]
    by_schema_version: BTreeMap<i32, i64>,
    /// The newest schema version this build knows.
    latest_version: i32,
    migration_runs_running: i64,
}

impl FleetSummary {
    /// The fleet's `counts` summed by status and by tier; `latest_version`
    /// the newest schema version this build knows.
    fn new(counts: FleetCounts, latest_version: i32) -> Self {
        let mut summary = Self {
            total: 0,
            by_status: BTreeMap::new(),
            by_tier: BTreeMap::new(),
            by_schema_version: counts.versions.into_iter().collect(),
            latest_version,
            migration_runs_running: counts.runs_running,
        };
        for (status, tier, n) in counts.tenants {
            summary.total += n;
            *summary.by_status.entry(status).or_default() += n;
            *summary.by_tier.entry(tier).or_default() += n;
        }
        summary
    }
}

/// `GET /v1/fleet/summary`
#[utoipa::path(get, path = "/v1/fleet/summary", tag = "fleet", responses((status = 200, description = "Tenants by status, tier and schema version", body = FleetSummary)))]
pub async fn summary(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let counts = state.fleet().counts().await?;
    let summary = FleetSummary::new(counts, state.fleet().latest_version());
    Ok(HttpResponse::Ok().json(summary))
}

/// `GET /v1/fleet/audit?limit=`: the newest control-plane audit events of
/// the whole fleet.
#[utoipa::path(get, path = "/v1/fleet/audit", tag = "fleet", params(LimitQuery), responses((status = 200, description = "The newest control-plane audit events, newest first")))]
pub async fn audit(
    principal: Principal,
    state: web::Data<AppState>,
    query: crate::api::http::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let limit = query.limit(20);
    let events = state.services().audit.recent(limit).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "events": events })))
}

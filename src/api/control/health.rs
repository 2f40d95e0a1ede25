//! Liveness and readiness.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::api::http::AppState;
use crate::api::http::{ApiError, ErrorCode};

/// How long readiness waits for the catalog before saying "not ready".
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers while the process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Answers 200 when the catalog is reachable, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "The catalog answers")))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let not_ready = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            "the catalog database is not reachable",
        )
        .with_retry_after(1)
    };
    match tokio::time::timeout(READY_TIMEOUT, state.services().ping()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(json!({ "status": "ready" }))),
        Ok(Err(e)) => Err(not_ready().with_source(e)),
        Err(elapsed) => Err(not_ready().with_source(elapsed)),
    }
}

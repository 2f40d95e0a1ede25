//! One error type for every handler, with a stable JSON envelope:
//! `{"error":{"code":"…","message":"…"}}`, plus `details` for the codes
//! that carry structured detail (`lint_failed`: its findings). Every module error converts into
//! it here and nowhere else: `control.rs` (auth, catalog, lifecycle,
//! servers, fleet runs) and `data.rs` (router, data plane); `tests/` pins
//! the status and code of every variant. Codes are `ErrorCode`s (`crate::error_code`),
//! never bare strings. A 5xx or auth error tells the
//! client nothing internal; the cause chain goes to the log.
//!
//! Rules:
//! - every non-2xx response has the envelope; a table test counts the
//!   variants of every module error, so a new one fails it until mapped;
//! - while the catalog is unreachable, a control-plane call answers 503
//!   `catalog_unavailable` (the data plane serves the routes it knows).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

pub use crate::error_code::ErrorCode;

/// The error envelope every non-2xx response carries.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable, snake_case.
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
    /// Structured detail, for the codes that carry one (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub details: Option<ErrorDetails>,
}

/// The structured detail of an error: one field per kind of detail.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetails {
    /// `lint_failed`: the Error findings the run did not acknowledge, each
    /// with its rule, file and line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::lint::Finding>,
    /// `quota_exceeded`: the quota, its limit, the use that went over it,
    /// and when it resets (absent: when the use drops under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaDetail>,
}

/// Which quota a tenant is over.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuotaDetail {
    /// `storage_bytes` or `requests_per_month`.
    pub quota: String,
    pub limit: i64,
    pub used: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    retry_after_secs: Option<u64>,
    details: Option<Box<ErrorDetails>>,
    /// Logged where the error is turned into a response; never sent.
    source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            details: None,
            source: None,
        }
    }

    /// A 500 whose cause is logged and hidden from the client.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal error",
        )
        .with_source(source)
    }

    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with_source(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn with_details(mut self, details: ErrorDetails) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn log(&self) {
        let cause = self.source.as_ref().map(|e| format!("{e:#}"));
        let cause = cause.as_deref().unwrap_or("");
        if self.status.is_server_error() {
            tracing::error!(
                code = self.code.as_str(),
                status = self.status.as_u16(),
                cause,
                "{}",
                self.message
            );
        } else if matches!(
            self.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            tracing::warn!(
                code = self.code.as_str(),
                status = self.status.as_u16(),
                cause,
                "{}",
                self.message
            );
        } else {
            tracing::info!(
                code = self.code.as_str(),
                status = self.status.as_u16(),
                cause,
                "{}",
                self.message
            );
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

/// The envelope as a response, for errors raised outside `ApiError`.
pub fn envelope_response(status: StatusCode, code: ErrorCode, message: &str) -> HttpResponse {
    envelope_with_details(status, code, message, None)
}

fn envelope_with_details(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    details: Option<ErrorDetails>,
) -> HttpResponse {
    HttpResponse::build(status).json(ErrorEnvelope {
        error: ErrorBody {
            code: code.as_str().to_string(),
            message: message.to_string(),
            details,
        },
    })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        ::metrics::counter!(
            crate::telemetry::metrics::API_ERRORS,
            "code" => self.code.as_str(),
            "status" => self.status.as_str().to_string()
        )
        .increment(1);
        let mut response = envelope_with_details(
            self.status,
            self.code,
            &self.message,
            self.details.as_deref().cloned(),
        );
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

mod control;
mod data;
mod fleet;
mod identity;
// Drift's refusals and scan errors (drift plumbing).
mod drift;
mod lint;
mod migrate;
mod revert;
mod servers;
mod services;
#[cfg(test)]
mod tests;
mod usage;

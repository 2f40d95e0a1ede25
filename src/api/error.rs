//! One error type for every handler, with a stable JSON envelope:
//! `{"error":{"code":"…","message":"…"}}`. Module errors convert into it once,
//! here. A 5xx or auth error tells the client nothing internal; the cause
//! chain goes to the log.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

use crate::auth::AuthError;
use crate::catalog::CatalogError;

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
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
    /// Logged where the error is turned into a response; never sent.
    source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            source: None,
        }
    }

    /// A 500 whose cause is logged and hidden from the client.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
        .with_source(source)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with_source(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn code(&self) -> &'static str {
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
                code = self.code,
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
                code = self.code,
                status = self.status.as_u16(),
                cause,
                "{}",
                self.message
            );
        } else {
            tracing::info!(
                code = self.code,
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
pub fn envelope_response(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorEnvelope {
        error: ErrorBody {
            code: code.to_string(),
            message: message.to_string(),
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
            "code" => self.code,
            "status" => self.status.as_str().to_string()
        )
        .increment(1);
        let mut response = envelope_response(self.status, self.code, &self.message);
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

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let (status, code, message) = match &e {
            AuthError::MissingCredentials => (
                StatusCode::UNAUTHORIZED,
                "missing_credentials",
                "this route needs a bearer token",
            ),
            AuthError::InvalidToken(_) => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is not valid",
            ),
            AuthError::Expired => (
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the token has expired",
            ),
            AuthError::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "the token does not allow this request",
            ),
            AuthError::Key(_) => {
                return ApiError::internal(e);
            }
            AuthError::Lookup(_) => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "catalog_unavailable",
                    "credentials cannot be checked right now; retry shortly",
                )
                .with_retry_after(1)
                .with_source(e);
            }
        };
        ApiError::new(status, code, message).with_source(e)
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Unavailable(_) | CatalogError::Connect(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "catalog_unavailable",
                "the control plane cannot reach its catalog; retry shortly",
            )
            .with_retry_after(1)
            .with_source(e),
            CatalogError::ServerExists => ApiError::new(
                StatusCode::CONFLICT,
                "server_exists",
                "a server with this name or address is already registered",
            ),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Action, Resource};

    #[test]
    fn each_module_error_maps_to_a_pinned_status_and_code() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (
                AuthError::MissingCredentials.into(),
                401,
                "missing_credentials",
            ),
            (
                AuthError::InvalidToken("x".into()).into(),
                401,
                "invalid_token",
            ),
            (AuthError::Expired.into(), 401, "token_expired"),
            (
                AuthError::Forbidden {
                    resource: Resource::Tenants,
                    action: Action::Read,
                }
                .into(),
                403,
                "forbidden",
            ),
            (
                CatalogError::Unavailable(deadpool_postgres::PoolError::Closed).into(),
                503,
                "catalog_unavailable",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn internal_errors_hide_their_cause_from_the_client() {
        let error = ApiError::internal(anyhow::anyhow!("password=hunter2 at 10.0.0.7"));
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = actix_web::body::to_bytes(response.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("10.0.0.7"),
            "{text}"
        );
        let envelope: ErrorEnvelope = serde_json::from_str(&text).unwrap();
        assert_eq!(envelope.error.code, "internal_error");
    }
}

//! `Idempotency-Key`: the first response to a key is stored, and a retry with
//! the same key and body gets it again instead of repeating the work.

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::api::http::AppState;
use crate::api::http::{ApiError, ErrorCode};
use crate::auth::Principal;
use crate::idempotency::{IdempotencyClaim, StoredResponse};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Runs `work` at most once per (caller, key). Without the header it just runs.
pub async fn idempotent<F, Fut>(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    body: &serde_json::Value,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
{
    idempotent_stored_as(state, principal, req, body, serde_json::Value::clone, work).await
}

/// `idempotent`, storing for a replay `stored(answer)` instead of the
/// answer itself: a secret shown once stays out of the store.
pub async fn idempotent_stored_as<F, Fut>(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    body: &serde_json::Value,
    stored: fn(&serde_json::Value) -> serde_json::Value,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
{
    let Some(key) = req.headers().get(IDEMPOTENCY_HEADER) else {
        let (status, body) = work().await?;
        return Ok(respond(status, body));
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })?;
    let caller = principal.user_id();
    let hash = hex::encode(Sha256::digest(
        format!("{} {}\n{body}", req.method(), req.path()).as_bytes(),
    ));
    let keys = &state.services().idempotency;
    match keys.claim(caller, key, &hash).await? {
        IdempotencyClaim::Replay(stored) => {
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            let mut response = respond(status, stored.body);
            response.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
                actix_web::http::header::HeaderValue::from_static("true"),
            );
            Ok(response)
        }
        IdempotencyClaim::InProgress => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::IdempotencyInProgress,
            "a request with this Idempotency-Key is still running; retry shortly",
        )
        .with_retry_after(1)),
        // The request itself is valid; the key's history refuses it, so
        // this is a conflict (the API answers state refusals with 409).
        IdempotencyClaim::Mismatch => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request",
        )),
        IdempotencyClaim::New => match work().await {
            Ok((status, body)) => {
                let kept = StoredResponse {
                    status: status.as_u16(),
                    body: stored(&body),
                };
                keys.complete(caller, key, &kept).await?;
                Ok(respond(status, body))
            }
            Err(e) => {
                // Forget the key so that a retry runs again.
                if let Err(release) = keys.release(caller, key).await {
                    tracing::warn!(error = %release, "could not release an idempotency key");
                }
                Err(e)
            }
        },
    }
}

/// The answer, with `Location` naming what a 201 made (the routes that take
/// an Idempotency-Key all create a tenant).
fn respond(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if status == StatusCode::CREATED {
        if let Some(id) = body.get("id").and_then(|v| v.as_str()) {
            response.insert_header(("Location", format!("/v1/tenants/{id}")));
        }
    }
    response.json(body)
}

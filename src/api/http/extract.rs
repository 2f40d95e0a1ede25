//! Input errors from actix's own extractors, turned into the envelope.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpRequest};

use crate::api::http::error::envelope_response;
use crate::api::http::{ApiError, ErrorCode};

/// Extractor settings: the body limit, and errors in the envelope.
pub fn extractor_configs(
    max_body_bytes: usize,
) -> (
    web::JsonConfig,
    web::PayloadConfig,
    web::PathConfig,
    web::QueryConfig,
) {
    let json = web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(|e, _| json_error(e).into());
    let payload = web::PayloadConfig::new(max_body_bytes);
    let path =
        web::PathConfig::default().error_handler(|e: PathError, req| path_error(e, req).into());
    let query = web::QueryConfig::default().error_handler(|e: QueryPayloadError, _| {
        ApiError::bad_request(ErrorCode::InvalidQuery, e.to_string()).into()
    });
    (json, payload, path, query)
}

/// A path segment that does not parse: every typed segment is an id, so
/// the answer names the first that is not a UUID, as a tenant id's does,
/// rather than serde's words.
fn path_error(e: PathError, req: &HttpRequest) -> ApiError {
    let bad = req
        .match_info()
        .iter()
        .find(|(_, value)| uuid::Uuid::parse_str(value).is_err());
    match bad {
        Some((name, _)) => ApiError::bad_request(
            ErrorCode::InvalidPath,
            format!("`{name}` in the path must be a UUID"),
        ),
        None => ApiError::bad_request(
            ErrorCode::InvalidPath,
            format!("the path does not parse: {e}"),
        ),
    }
}

fn json_error(e: JsonPayloadError) -> ApiError {
    match e {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "the body must be application/json",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidBody,
            e.to_string(),
        ),
        JsonPayloadError::Deserialize(e) => ApiError::bad_request(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        ),
        other => ApiError::bad_request(ErrorCode::InvalidBody, other.to_string()),
    }
}

/// The default service: a path no route serves.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// Middleware hook that wraps any error response actix produced by itself
/// (405 from a route table, a payload error) in the envelope.
pub fn envelope_fallback<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::RequestError,
    };
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    let (req, old) = res.into_parts();
    let mut new = envelope_response(status, code, &message);
    // Keep headers such as `Allow` and `x-request-id`, but not the old body's type.
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

/// Resource data: the methods a route serves, as a 405's `Allow` lists
/// them. Set on each resource where the routes are built (`api::routes`),
/// from the same registrations the spec is written from.
#[derive(Clone)]
pub struct Allow(header::HeaderValue);

impl Allow {
    /// `methods` in the order the spec lists a path's operations.
    pub fn new(methods: &[actix_web::http::Method]) -> Self {
        use actix_web::http::Method;
        let order = [
            Method::GET,
            Method::PUT,
            Method::POST,
            Method::DELETE,
            Method::PATCH,
            Method::HEAD,
            Method::OPTIONS,
            Method::TRACE,
        ];
        let listed: Vec<&str> = order
            .iter()
            .filter(|m| methods.contains(m))
            .map(|m| m.as_str())
            .collect();
        let value = header::HeaderValue::from_str(&listed.join(", "))
            .expect("method names are header-safe");
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// A resource's default service: the path exists, the method does not.
/// `Allow` lists the methods the route serves, which are the ones the spec
/// declares for it (RFC 9110).
pub async fn method_not_allowed(req: HttpRequest) -> actix_web::HttpResponse {
    let allow = req.app_data::<Allow>();
    let listed = allow.map(Allow::as_str).unwrap_or("");
    let mut response = envelope_response(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        &format!(
            "{} is not allowed on {}; allowed: {listed}",
            req.method(),
            req.path()
        ),
    );
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(header::ALLOW, allow.0.clone());
    }
    response
}

//! `/console`: the operator console. Its pages are static files embedded in
//! the binary (no CDN, no build step at run time); their script calls the
//! same `/v1` API as every other client, signed in with the session cookie
//! of `session.rs`.
//!
//! Rules:
//! - the console is a client of the API, not a second API: its pages call
//!   the same `/v1` routes, under the same checks, as any client. No
//!   credential is held in script: it lives only in the sealed, HttpOnly,
//!   SameSite=Strict cookie (`http::session`), and every unsafe request made
//!   with it must echo the session's CSRF token (403 `csrf_failed`); a
//!   request with an `Authorization` header ignores the cookie;
//! - it loads nothing from another origin (CSP `'self'`), and its script
//!   never parses server text as HTML: every value becomes a text node;
//! - it signs in only tenant_admins that reach their whole tenant and
//!   unnarrowed super_admins.

pub(crate) mod sign_in;

use crate::api::http::session;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::Embed;
use serde::{Deserialize, Serialize};

use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState, ErrorCode};
use crate::auth::{self, AuthError, Principal, Role};

#[derive(Embed)]
#[folder = "src/api/console/assets/"]
struct Assets;

/// Scripts and styles come only from this origin; nothing may frame the console.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console's files (its session route is declared in `api::routes`,
/// before these: `{file}` would match `session` too).
pub fn files(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/console").route(web::get().to(redirect_to_index)))
        .service(
            web::resource("/console/")
                .route(web::get().to(index))
                .route(web::head().to(index)),
        )
        .service(web::resource("/console/{file}").route(web::get().to(asset)));
}

async fn redirect_to_index() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, "index.html").unwrap_or_else(|| HttpResponse::NotFound().finish())
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    serve(&req, &file).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such console file",
        )
    })
}

/// An embedded file with its type, an ETag from its hash, and the console's
/// security headers. Pages revalidate; a matching ETag gets 304.
fn serve(req: &HttpRequest, name: &str) -> Option<HttpResponse> {
    let file = Assets::get(name)?;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CONTENT_TYPE, content_type(name)))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if unchanged {
        return Some(response.finish());
    }
    Some(response.body(file.data.into_owned()))
}

fn content_type(name: &str) -> HeaderValue {
    let kind = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    HeaderValue::from_static(kind)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// A token (JWT) or a tenant API key of a super_admin or a tenant_admin.
    #[schema(min_length = 1, max_length = 8192)]
    credential: String,
}

/// The signed-in operator, and the CSRF token for unsafe requests.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    user_id: String,
    #[schema(value_type = String)]
    role: Role,
    tenant_id: Option<uuid::Uuid>,
    /// Echo in `X-CSRF-Token` on every POST, PATCH and DELETE made with the cookie.
    csrf_token: String,
    /// Seconds since the epoch.
    expires_at: i64,
}

impl SessionView {
    fn new(principal: &Principal, session: &session::Session) -> Self {
        Self {
            user_id: principal.user_id().to_string(),
            role: principal.role(),
            tenant_id: principal.tenant_id().map(|t| t.as_uuid()),
            csrf_token: session.csrf().to_string(),
            expires_at: session.expires_at(),
        }
    }
}

/// `POST /console/session`: signs in with a token or an API key.
#[utoipa::path(post, path = "/console/session", tag = "console", request_body = SignIn, responses((status = 201, description = "Signed in: the session cookie is set", body = SessionView, headers(("Set-Cookie" = String, description = "The session: HttpOnly, SameSite=Strict, Secure over TLS")))))]
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: crate::api::http::body::Json<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let credential = body.into_inner().credential;
    let credential = credential.trim();
    let principal = session::verify_sign_in(&req, &state, credential).await?;
    may_use_console(&principal)?;
    let sessions = &state.services().console_sessions;
    let actor = actor(&principal, &req);
    sessions
        .record(&actor, principal.tenant_id(), "console.sign_in")
        .await?;
    let session = session::Session::new(credential.to_string(), principal.expires_at());
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session.cookie_for(&req, &state))
        .json(SessionView::new(&principal, &session)))
}

/// The console is for operators: the fleet's (unnarrowed) or one whole
/// tenant's.
pub(super) fn may_use_console(principal: &Principal) -> Result<(), ApiError> {
    let operator = (principal.role() == Role::SuperAdmin && !principal.is_narrowed())
        || auth::reach::own_tenant(principal).is_some();
    if !operator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "the console is for super_admin and tenant_admin credentials whose permissions are not narrowed",
        ));
    }
    Ok(())
}

/// `GET /console/session`: who is signed in, and the CSRF token.
#[utoipa::path(get, path = "/console/session", tag = "console", responses((status = 200, description = "The signed-in operator", body = SessionView)), security(("session" = [])))]
pub async fn show_session(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (principal, session) = current(&state, &req).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SessionView::new(&principal, &session)))
}

/// `DELETE /console/session`: signs out (needs `X-CSRF-Token`). The session
/// ends on every replica, so a copy of the cookie stops working too.
#[utoipa::path(delete, path = "/console/session", tag = "console", responses((status = 204, description = "Signed out: the cookie is cleared. Without a session cookie there is nothing to end, and the answer is the same")), security((), ("session" = [])))]
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let secure = session::is_tls(&req, state.trusted_proxies());
    let removal = session::Session::removal(secure);
    if let Some(session) = session::to_sign_out(&req, &state, secure)? {
        session::sign_out(&req, &state, &session).await?;
    }
    Ok(HttpResponse::NoContent().cookie(removal).finish())
}

/// The session in the request's cookie, with its credential verified again
/// (a revoked key or an expired token ends the session).
async fn current(
    state: &AppState,
    req: &HttpRequest,
) -> Result<(Principal, session::Session), ApiError> {
    let refusal = |e| crate::api::http::denial::refusal(req, state, e);
    let session = session::current(req, state)
        .await
        .map_err(refusal)?
        .ok_or(AuthError::MissingCredentials)
        .map_err(refusal)?;
    let header = session.authorization();
    let principal = auth::authenticate(Some(header.as_bytes()), state.verifiers())
        .await
        .map_err(refusal)?;
    Ok((principal, session))
}

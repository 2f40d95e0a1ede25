//! `/console/sign-in`: signing in to the console through the tenant's own
//! identity provider (OpenID Connect code flow; `auth::providers::sign_in`).
//! The flow's state, nonce and PKCE verifier wait in a sealed cookie of
//! their own, sent back only to the callback; the session that ends the
//! flow is the same sealed cookie as a sign-in with a credential.

use actix_web::cookie::{time::Duration, Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::api::http::audited::actor;
use crate::api::http::session;
use crate::api::http::{ApiError, AppState};
use crate::auth::providers::{PendingSignIn, SignInError};
use crate::domain::Slug;

/// The cookie that carries a sign-in begun, to its callback.
const PENDING_COOKIE: &str = "tp_sign_in";
const PENDING_PATH: &str = "/console/sign-in";
const CALLBACK_PATH: &str = "/console/sign-in/callback";
/// Bound into the seal, so no other sealed value opens as a sign-in.
const PURPOSE: &str = "console-sign-in";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// The tenant's slug (a subtenant's signs in through its root's
    /// provider unless it has its own).
    tenant: Slug,
}

/// `GET /console/sign-in?tenant=<slug>`: sends the browser to the
/// tenant's identity provider.
#[utoipa::path(get, path = "/console/sign-in", tag = "console", params(StartQuery), responses((status = 303, description = "To the provider's authorization endpoint; the sign-in's own cookie is set", headers(("Location" = String, description = "The provider's authorization URL")))), security(()))]
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    let identity = &state.services().identity;
    let redirect_uri = format!("{}{CALLBACK_PATH}", base_url(&req, &state));
    let (url, pending) = identity
        .start_sign_in(query.tenant.as_str(), &redirect_uri)
        .await?;
    let json = serde_json::to_vec(&pending).expect("a pending sign-in serialises");
    let sealed = hex::encode(state.tenants().master_key().seal(PURPOSE, &json));
    let secure = session::is_tls(&req, state.trusted_proxies());
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(pending_cookie(sealed, secure, PENDING_SECS))
        .finish())
}

const PENDING_SECS: i64 = crate::auth::providers::PENDING_SECS;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The `state` the sign-in began with.
    state: Option<String>,
    /// The authorization code.
    code: Option<String>,
    /// The provider's refusal (`access_denied`, …), instead of a code.
    error: Option<String>,
    /// The issuer that answers (RFC 9207): when given, it must be the
    /// tenant's provider, so an answer from another provider is refused.
    iss: Option<String>,
}

/// `GET /console/sign-in/callback`: where the provider sends the browser
/// back. The code is exchanged (with the PKCE verifier), the ID token
/// checked (with the nonce), and the console's session cookie set.
#[utoipa::path(get, path = "/console/sign-in/callback", tag = "console", params(CallbackQuery), responses((status = 303, description = "Signed in: to the console, with the session cookie set", headers(("Set-Cookie" = String, description = "The session: HttpOnly, SameSite=Strict, Secure over TLS")))), security(()))]
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let secure = session::is_tls(&req, state.trusted_proxies());
    let pending = req
        .cookie(PENDING_COOKIE)
        .and_then(|c| hex::decode(c.value()).ok())
        .and_then(|sealed| state.tenants().master_key().open(PURPOSE, &sealed).ok())
        .and_then(|json| serde_json::from_slice::<PendingSignIn>(&json).ok())
        .ok_or(SignInError::Mismatch)?;
    if let Some(error) = query.error {
        return Err(SignInError::Denied(error.chars().take(100).collect()).into());
    }
    let (Some(returned_state), Some(code)) = (query.state, query.code) else {
        return Err(SignInError::Mismatch.into());
    };
    let identity = &state.services().identity;
    let id_token = identity
        .finish_sign_in(pending, &returned_state, &code, query.iss.as_deref())
        .await?;
    let principal = session::verify_sign_in(&req, &state, &id_token).await?;
    super::may_use_console(&principal)?;
    let sessions = &state.services().console_sessions;
    sessions
        .record(
            &actor(&principal, &req),
            principal.tenant_id(),
            "console.sign_in",
        )
        .await?;
    let signed_in = session::Session::new(id_token, principal.expires_at());
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(signed_in.cookie_for(&req, &state))
        .cookie(pending_cookie(String::new(), secure, 0))
        .finish())
}

/// Lax, not Strict: the provider's redirect back is a cross-site
/// navigation, and this cookie must come with it.
fn pending_cookie(value: String, secure: bool, max_age: i64) -> Cookie<'static> {
    Cookie::build(PENDING_COOKIE, value)
        .path(PENDING_PATH)
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(Duration::seconds(max_age))
        .finish()
}

/// The service's address as the browser reached it: `identity.public_url`,
/// or the request's scheme and `Host` (the provider accepts only redirect
/// URIs registered with it, so a forged `Host` only fails the sign-in).
fn base_url(req: &HttpRequest, state: &AppState) -> String {
    if let Some(url) = state.services().identity.public_url() {
        return url.trim_end_matches('/').to_string();
    }
    let scheme = if session::is_tls(req, state.trusted_proxies()) {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

//! `/console/sign-in`: signing in to the console through the tenant's own
//! identity provider (OpenID Connect code flow; `auth::providers::sign_in`).
//! The flow's state, nonce and PKCE verifier wait in a sealed cookie of
//! their own, sent back only to the callback; the session that ends the
//! flow is the same sealed cookie as a sign-in with a credential.
//!
//! Rule: the service sends a browser on to a provider by itself only when
//! the browser says the request came from the service's own pages
//! (`Sec-Fetch-Site: same-origin`, which no page can forge). Any other
//! request (a link in a mail, another site's page) gets a page that names
//! the provider's host and links there: a tenant admin chooses the
//! provider, so a link under this host must not lead a user unawares to
//! whatever site that admin named.

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
/// tenant's identity provider, from the console's own pages; from anywhere
/// else, a page that names the provider's host and links there.
#[utoipa::path(get, path = "/console/sign-in", tag = "console", params(StartQuery), responses((status = 303, description = "From the console's own pages (`Sec-Fetch-Site: same-origin`): to the provider's authorization endpoint; the sign-in's own cookie is set", headers(("Location" = String, description = "The provider's authorization URL"))), (status = 200, description = "From anywhere else: a page naming the provider's host, with a link to its authorization endpoint; the sign-in's own cookie is set", content_type = "text/html")), security(()))]
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: crate::api::http::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    let identity = &state.services().identity;
    let redirect_uri = format!("{}{CALLBACK_PATH}", base_url(&req, &state));
    let (url, pending) = identity
        .start_sign_in(query.tenant.as_str(), &redirect_uri)
        .await?;
    let json = serde_json::to_vec(&pending).expect("a pending sign-in serialises");
    let sealed = hex::encode(state.tenants().master_key().seal(PURPOSE, &json));
    let secure = session::is_tls(&req, state.trusted_proxies());
    let cookie = pending_cookie(sealed, secure, PENDING_SECS);
    let from_console = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"same-origin");
    let page = notice(query.tenant.as_str(), &url).ok_or_else(|| {
        SignInError::Provider("its authorization endpoint is not an http(s) URL".into())
    })?;
    if from_console {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(cookie)
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, NOTICE_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .cookie(cookie)
        .body(page))
}

/// The notice loads the console's style sheet and nothing else.
const NOTICE_CSP: &str = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; \
                          base-uri 'none'; form-action 'none'";

/// The page that names where a sign-in to `slug` goes (`url`, the
/// provider's authorization URL) and links there; `None` for a URL that is
/// not http(s), which a link must never follow.
fn notice(slug: &str, url: &str) -> Option<String> {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return None;
    }
    let host = parsed.host_str()?;
    let (slug, host, href) = (text(slug), text(host), attr(parsed.as_str()));
    Some(format!(
        "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to {slug}</title>
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<link rel=\"stylesheet\" href=\"/console/app.css\"></head>
<body><main class=\"panel signin\">
<h1>Sign in to {slug}</h1>
<p>The tenant <strong>{slug}</strong> signs in through its own identity provider, at
<strong id=\"provider-host\">{host}</strong>. Go on only if you expected to sign in there.</p>
<p><a id=\"continue\" href=\"{href}\">Continue to {host}</a></p>
<p><a href=\"/console/#/sign-in\">Back to the console</a></p>
</main></body></html>
"
    ))
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
    query: crate::api::http::Query<CallbackQuery>,
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

#[cfg(test)]
mod tests {
    use super::notice;

    #[test]
    fn the_notice_names_the_host_escapes_what_it_shows_and_links_only_to_http_urls() {
        let url = "https://idp.example/auth?a=1&b=\"<x>\"";
        let page = notice("acme", url).unwrap();
        assert!(page.contains("<strong id=\"provider-host\">idp.example</strong>"));
        assert!(page.contains("href=\"https://idp.example/auth?a=1&amp;b=%22%3Cx%3E%22\""));
        assert!(!page.contains("<x>"));
        for refused in ["javascript:alert(1)", "data:text/html,x", "not a url"] {
            assert_eq!(notice("acme", refused), None, "{refused}");
        }
    }
}

//! The console's sign-in session. The operator's credential (a token or an
//! API key) is sealed with the master key (AES-256-GCM: signed and
//! encrypted) into an HttpOnly, SameSite=Strict cookie, so page scripts
//! never hold it. Each session has a random CSRF token that every unsafe
//! request made with the cookie must echo in `X-CSRF-Token`.
//!
//! Rules:
//! - each session has a random id; signing out ends it for every replica
//!   (`auth::console_sessions`), so a copy of the cookie is refused from
//!   then on, not only cleared in the browser.
//! - over TLS the cookie is `__Host-tp_session` (Secure, Path=/, no Domain:
//!   no sibling host can set or shadow it); over plain HTTP `tp_session`.
//!   A request is read under the name its own scheme gives.

use actix_web::cookie::{time::Duration, Cookie, SameSite};
use actix_web::http::Method;
use actix_web::HttpRequest;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::api::http::{ApiError, AppState};
use crate::auth::console_sessions::MAX_AGE_SECS;
use crate::auth::{self, AuthError, Principal};
use crate::crypto::MasterKey;

/// The cookie's name over plain HTTP.
pub const COOKIE: &str = "tp_session";
/// The cookie's name over TLS.
pub const SECURE_COOKIE: &str = "__Host-tp_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Bound into the seal, so no other sealed value opens as a session.
const PURPOSE: &str = "console-session";

/// The cookie's name: `__Host-` prefixed when it is Secure.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

#[derive(Serialize, Deserialize)]
pub struct Session {
    /// Names the session for sign-out; random, and sealed like the rest.
    id: String,
    credential: String,
    csrf: String,
    expires_at: i64,
}

impl Session {
    /// A new session for `credential`, which stops working at `credential_exp`.
    pub fn new(credential: String, credential_exp: i64) -> Self {
        let mut csrf = [0u8; 32];
        rand::rng().fill_bytes(&mut csrf);
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let now = chrono::Utc::now().timestamp();
        Self {
            id: hex::encode(id),
            credential,
            csrf: hex::encode(csrf),
            expires_at: credential_exp.min(now.saturating_add(MAX_AGE_SECS)),
        }
    }

    /// Names the session for sign-out.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The credential as an `Authorization` header value.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.credential)
    }

    /// The `Set-Cookie` that holds this session. `secure` when served over TLS.
    pub fn cookie(&self, key: &MasterKey, secure: bool) -> Cookie<'static> {
        let json = serde_json::to_vec(self).expect("a session serialises");
        let value = hex::encode(key.seal(PURPOSE, &json));
        let max_age = self.expires_at - chrono::Utc::now().timestamp();
        base_cookie(value, secure)
            .max_age(Duration::seconds(max_age.max(0)))
            .finish()
    }

    /// The `Set-Cookie` that holds this session, for `req`'s scheme.
    pub fn cookie_for(&self, req: &HttpRequest, state: &AppState) -> Cookie<'static> {
        self.cookie(
            state.tenants().master_key(),
            is_tls(req, state.trusted_proxies()),
        )
    }

    /// The `Set-Cookie` that ends a session in the browser.
    pub fn removal(secure: bool) -> Cookie<'static> {
        base_cookie(String::new(), secure)
            .max_age(Duration::ZERO)
            .finish()
    }

    fn open(key: &MasterKey, value: &str) -> Option<Self> {
        let sealed = hex::decode(value).ok()?;
        let json = key.open(PURPOSE, &sealed).ok()?;
        let session: Self = serde_json::from_slice(&json).ok()?;
        (session.expires_at > chrono::Utc::now().timestamp()).then_some(session)
    }
}

fn base_cookie(value: String, secure: bool) -> actix_web::cookie::CookieBuilder<'static> {
    Cookie::build(cookie_name(secure), value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
}

/// Whether the request reached us over TLS, directly or (as a trusted proxy
/// says in `X-Forwarded-Proto`) before the proxy, so the cookie is marked
/// Secure. Any other client's word for it is not taken.
pub fn is_tls(req: &HttpRequest, trusted_proxies: &[ipnet::IpNet]) -> bool {
    if req.app_config().secure() {
        return true;
    }
    let from_proxy = req
        .peer_addr()
        .is_some_and(|peer| trusted_proxies.iter().any(|net| net.contains(&peer.ip())));
    from_proxy
        && req
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The session a request carries in its cookie (under the name `secure`
/// gives), if any. A cookie that does not open (forged, altered, from
/// another installation, or expired) is an invalid credential. An unsafe
/// method must echo the session's CSRF token. Whether it was signed out is
/// `current`'s to check.
pub fn from_request(
    req: &HttpRequest,
    key: &MasterKey,
    secure: bool,
) -> Result<Option<Session>, AuthError> {
    let Some(cookie) = req.cookie(cookie_name(secure)) else {
        return Ok(None);
    };
    let session = Session::open(key, cookie.value()).ok_or(AuthError::InvalidCredential(
        "the console session does not open",
    ))?;
    if !is_safe(req.method()) {
        let echoed = req
            .headers()
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(echoed.ct_eq(session.csrf.as_bytes())) {
            return Err(AuthError::Csrf);
        }
    }
    Ok(Some(session))
}

/// The request's session, as `from_request` reads it, unless it was signed out.
pub async fn current(req: &HttpRequest, state: &AppState) -> Result<Option<Session>, AuthError> {
    let secure = is_tls(req, state.trusted_proxies());
    let Some(session) = from_request(req, state.tenants().master_key(), secure)? else {
        return Ok(None);
    };
    let sessions = &state.services().console_sessions;
    if sessions.is_signed_out(session.id()).await? {
        return Err(AuthError::InvalidCredential(
            "the console session was signed out",
        ));
    }
    Ok(Some(session))
}

/// Verifies a credential offered to sign in as a request's is checked: a
/// guesser past its refusals gets 429; a valid credential never does.
pub async fn verify_sign_in(
    req: &HttpRequest,
    state: &AppState,
    credential: &str,
) -> Result<Principal, ApiError> {
    let authorization = format!("Bearer {credential}");
    auth::authenticate_with(Some(authorization.as_bytes()), state.verifiers(), || {
        super::denial::patience(req, state)
    })
    .await
    .map_err(|e| super::denial::refusal(req, state, e))
}

/// The session a sign-out ends, if any. A cookie that opens must come with
/// its CSRF token; one that does not open (expired, or sealed under another
/// key) is cleared all the same.
pub fn to_sign_out(
    req: &HttpRequest,
    state: &AppState,
    secure: bool,
) -> Result<Option<Session>, AuthError> {
    match from_request(req, state.tenants().master_key(), secure) {
        Ok(session) => Ok(session),
        Err(AuthError::Csrf) => Err(AuthError::Csrf),
        Err(_) => Ok(None),
    }
}

/// Ends `session` for every replica, not only in this browser: a copy of
/// the cookie is refused from now on. Audited when its credential still
/// verifies; a revoked key's session is ended without a record of who it was.
pub async fn sign_out(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
) -> Result<(), ApiError> {
    let sessions = &state.services().console_sessions;
    if !sessions
        .sign_out(session.id(), session.expires_at())
        .await?
    {
        return Ok(());
    }
    let authorization = session.authorization();
    let verified = auth::authenticate(Some(authorization.as_bytes()), state.verifiers()).await;
    if let Ok(principal) = verified {
        let actor = super::audited::actor(&principal, req);
        sessions
            .record(&actor, principal.tenant_id(), "console.sign_out")
            .await?;
    }
    Ok(())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn key() -> MasterKey {
        MasterKey::from_hex(&crate::crypto::random_hex_secret()).unwrap()
    }

    fn far() -> i64 {
        chrono::Utc::now().timestamp() + 3600
    }

    #[test]
    fn a_session_cookie_opens_only_with_the_key_that_sealed_it() {
        let key = key();
        let session = Session::new("tok".into(), far());
        let cookie = session.cookie(&key, false);
        assert!(cookie.http_only().unwrap());
        assert_eq!(cookie.same_site(), Some(SameSite::Strict));
        let req = TestRequest::get().cookie(cookie.clone()).to_http_request();
        let opened = from_request(&req, &key, false).unwrap().unwrap();
        assert_eq!(opened.authorization(), "Bearer tok");
        let other = from_request(&req, &self::key(), false);
        assert!(matches!(other, Err(AuthError::InvalidCredential(_))));
        let mut altered = cookie.value().to_string();
        altered.replace_range(0..2, if &altered[0..2] == "00" { "01" } else { "00" });
        let req = TestRequest::get()
            .cookie(Cookie::new(COOKIE, altered))
            .to_http_request();
        assert!(from_request(&req, &key, false).is_err());
    }

    #[test]
    fn an_unsafe_request_with_the_cookie_needs_the_matching_csrf_token() {
        let key = key();
        let session = Session::new("tok".into(), far());
        let cookie = session.cookie(&key, true);
        assert!(cookie.secure().unwrap());
        let bare = TestRequest::post().cookie(cookie.clone()).to_http_request();
        assert!(matches!(
            from_request(&bare, &key, true),
            Err(AuthError::Csrf)
        ));
        let wrong = TestRequest::post()
            .cookie(cookie.clone())
            .insert_header((CSRF_HEADER, "0".repeat(64)))
            .to_http_request();
        assert!(matches!(
            from_request(&wrong, &key, true),
            Err(AuthError::Csrf)
        ));
        let right = TestRequest::delete()
            .cookie(cookie)
            .insert_header((CSRF_HEADER, session.csrf()))
            .to_http_request();
        assert!(from_request(&right, &key, true).unwrap().is_some());
    }

    #[test]
    fn a_secure_cookie_carries_the_host_prefix_and_is_read_only_under_that_name() {
        let key = key();
        let session = Session::new("tok".into(), far());
        let cookie = session.cookie(&key, true);
        assert_eq!(cookie.name(), "__Host-tp_session");
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.domain(), None);
        assert_eq!(Session::removal(true).name(), "__Host-tp_session");
        let req = TestRequest::get().cookie(cookie).to_http_request();
        assert!(from_request(&req, &key, true).unwrap().is_some());
        assert!(from_request(&req, &key, false).unwrap().is_none());
        assert_eq!(
            Session::new("t".into(), far()).cookie(&key, false).name(),
            COOKIE
        );
    }

    #[test]
    fn a_session_ends_with_its_credential_and_after_eight_hours_at_most() {
        let now = chrono::Utc::now().timestamp();
        assert_eq!(Session::new("t".into(), now + 60).expires_at(), now + 60);
        assert!(Session::new("t".into(), i64::MAX).expires_at() <= now + MAX_AGE_SECS + 1);
        let key = key();
        let expired = Session::new("t".into(), now - 1).cookie(&key, false);
        let req = TestRequest::get()
            .cookie(Cookie::new(COOKIE, expired.value().to_string()))
            .to_http_request();
        assert!(from_request(&req, &key, false).is_err());
    }
}

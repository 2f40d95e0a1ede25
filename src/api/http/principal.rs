//! `Principal` as an actix extractor: the verified caller of a control-plane
//! request. Verification itself is `auth::authenticate`; this adds the HTTP
//! side (reading the header, remembering the caller for the denial audit).

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::api::http::{ApiError, AppState};
use crate::auth::{self, AuthError, Principal};

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let principal = match authenticate(&req).await {
                Ok(principal) => principal,
                Err(e) => {
                    let state = req
                        .app_data::<web::Data<AppState>>()
                        .expect("AppState is registered by startup");
                    return Err(crate::api::http::denial::refusal(&req, state, e));
                }
            };
            // Kept for the denial audit, should a handler refuse this caller.
            req.extensions_mut().insert(principal.clone());
            Ok(principal)
        })
    }
}

/// Verifies the request's bearer credential with the app's keys and catalog.
pub async fn authenticate(req: &HttpRequest) -> Result<Principal, AuthError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered by startup");
    let Some(authorization) = req.headers().get(header::AUTHORIZATION) else {
        // No header: the console's session cookie, if there is one.
        let session = crate::api::http::session::current(req, state).await?;
        let header = session.map(|s| s.authorization());
        return auth::authenticate_with(
            header.as_ref().map(|h| h.as_bytes()),
            state.verifiers(),
            || crate::api::http::denial::patience(req, state),
        )
        .await;
    };
    auth::authenticate_with(Some(authorization.as_bytes()), state.verifiers(), || {
        crate::api::http::denial::patience(req, state)
    })
    .await
}

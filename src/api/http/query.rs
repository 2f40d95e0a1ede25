//! `Query<T>`: a query string parsed into `T`, once it holds no `%00`.
//!
//! Rule: no text from a request holds U+0000 (NUL). PostgreSQL stores no
//! NUL in `text` or `jsonb`, so one would fail there as a 500; here it is
//! refused first, as 400 `invalid_query` (bodies: `body.rs`, 422).

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::{ready, Ready};
use serde::de::DeserializeOwned;

use crate::api::http::{ApiError, ErrorCode};

/// A query string with no NUL, parsed into `T` (actix's `web::Query`, whose
/// errors the app's `QueryConfig` puts in the envelope).
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if holds_nul(req.query_string()) {
            let refused = ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "the query string holds %00 (U+0000, NUL), which no text here may hold",
            );
            return ready(Err(refused.into()));
        }
        let parsed = web::Query::<T>::from_request(req, payload).into_inner();
        ready(parsed.map(|q| Query(q.into_inner())))
    }
}

/// Whether a raw (percent-encoded) query string decodes to a NUL anywhere.
fn holds_nul(query: &str) -> bool {
    query.as_bytes().windows(3).any(|w| w == b"%00") || query.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::holds_nul;

    #[test]
    fn a_percent_encoded_nul_anywhere_in_the_query_string_is_found() {
        for nul in ["q=a%00b", "%00", "a=1&q=%00", "q=%2500%00"] {
            assert!(holds_nul(nul), "{nul}");
        }
        for clean in ["", "q=a", "q=%2500", "q=%0a0", "q=100%25"] {
            assert!(!holds_nul(clean), "{clean}");
        }
    }
}

//! Database server errors as responses: registering, changing, and their
//! WAL archives.

use actix_web::http::StatusCode;

use super::control::server_not_found;
use super::{ApiError, ErrorCode};
use crate::servers::ServersError;
use crate::tenants::TenantsError;

impl From<ServersError> for ApiError {
    fn from(e: ServersError) -> Self {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e {
            ServersError::NotFound => server_not_found(),
            ServersError::InvalidDsn(_) => {
                ApiError::new(unprocessable, ErrorCode::InvalidDsn, e.to_string())
            }
            // The operator who registers a server needs to know why it was
            // refused (a wrong password, a missing right), so the cause is
            // part of this 409's message; it never reaches a tenant. The
            // DSN was well formed (the spec's pattern), so the refusal is
            // about the server's state, not the request.
            ServersError::Unusable { .. } => {
                // The whole chain: a TLS refusal's reason sits a few causes down.
                let mut message = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    message = format!("{message}: {c}");
                    cause = c.source();
                }
                ApiError::new(StatusCode::CONFLICT, ErrorCode::ServerUnusable, message)
            }
            // As with `Unusable`: the operator needs pgBackRest's reason.
            ServersError::ArchiveUnreadable(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::WalArchiveUnreadable,
                e.to_string(),
            ),
            ServersError::Catalog(inner) => inner.into(),
            ServersError::Provision(inner) => TenantsError::from(inner).into(),
        }
    }
}

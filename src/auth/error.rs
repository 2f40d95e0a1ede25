use thiserror::Error;

use super::{Action, Resource};

/// Why a request was not authenticated or not allowed. The client only learns
/// the category; the detail goes to the log.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("no bearer credentials")]
    MissingCredentials,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("token expired")]
    Expired,
    #[error("not allowed to {action:?} {resource:?}")]
    Forbidden { resource: Resource, action: Action },
    #[error("credential lookup failed: {0}")]
    Lookup(String),
    #[error("unusable signing key")]
    Key(#[source] jsonwebtoken::errors::Error),
}

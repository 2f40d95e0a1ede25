//! `/v1/servers/{id}/wal-archive`: the pgBackRest archive of a server its
//! operator already backs up, which restores to a time of its tenants read
//! (and only read). Its secrets are stored sealed and never shown.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::servers::server_json;
use crate::api::http::audited::actor;
use crate::api::http::AppState;
use crate::api::http::{ApiError, ErrorCode};
use crate::auth::{Action, Principal, Resource};
use crate::wal_archive::{Archive, ArchiveRecord, Repository, S3Key, UriStyle};

/// A server's pgBackRest archive, as an operator who backs the server up
/// with pgBackRest already tells it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWalArchive {
    /// The stanza (letters, digits, `-` and `_`).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    stanza: String,
    /// Where the repository is.
    repository: RepositoryInput,
    /// The repository's cipher passphrase (`repo1-cipher-pass`, AES-256-CBC);
    /// stored sealed, never shown.
    #[schema(pattern = "^[^\\x00-\\x1F\\x7F]{1,1024}$")]
    cipher_pass: String,
}

/// Where the repository is, and for a bucket the key that reads it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RepositoryInput {
    /// A folder on the control plane's machine (pgBackRest's `posix`).
    Posix {
        /// Its absolute path (`repo1-path`).
        #[schema(pattern = "^/[^\\x00-\\x1F\\x7F]*$")]
        path: String,
    },
    /// An S3 bucket (pgBackRest's `s3`), reached over HTTPS.
    S3 {
        /// The bucket (`repo1-s3-bucket`).
        #[schema(pattern = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
        bucket: String,
        /// The endpoint's host, with `:port` when it is not 443.
        #[schema(
            pattern = "^[A-Za-z0-9][A-Za-z0-9.-]{0,252}(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$"
        )]
        endpoint: String,
        /// The region (`repo1-s3-region`).
        #[schema(pattern = "^[a-z0-9-]{1,32}$")]
        region: String,
        /// The repository's path in the bucket (`repo1-path`, default `/`).
        #[serde(default)]
        #[schema(pattern = "^/[^\\x00-\\x1F\\x7F]*$")]
        path: Option<String>,
        /// `host` (default) or `path` (`repo1-s3-uri-style`).
        #[serde(default)]
        uri_style: UriStyle,
        /// CA certificates (PEM) the endpoint's certificate must chain to,
        /// when it is not one the system trusts.
        #[serde(default)]
        #[schema(max_length = 16384)]
        ca_pem: Option<String>,
        /// The access key that reads the bucket; stored sealed.
        #[schema(pattern = "^[^\\x00-\\x20\\x7F]{1,256}$")]
        access_key_id: String,
        /// Its secret; stored sealed, never shown.
        #[schema(pattern = "^[^\\x00-\\x20\\x7F]{1,1024}$")]
        secret_access_key: String,
    },
}

impl SetWalArchive {
    pub(super) fn into_archive(self) -> Result<Archive, ApiError> {
        let invalid = |message: String| {
            ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                message,
            )
        };
        let (repository, s3_key) = match self.repository {
            RepositoryInput::Posix { path } => (Repository::Posix { path: path.into() }, None),
            RepositoryInput::S3 {
                bucket,
                endpoint,
                region,
                path,
                uri_style,
                ca_pem,
                access_key_id,
                secret_access_key,
            } => (
                Repository::S3 {
                    bucket,
                    endpoint,
                    region,
                    path: path.unwrap_or_else(|| "/".into()).into(),
                    uri_style,
                    ca_pem,
                },
                Some(S3Key {
                    access_key_id,
                    secret_access_key: secret_access_key.into(),
                }),
            ),
        };
        let archive = Archive {
            record: ArchiveRecord {
                stanza: self.stanza,
                repository,
            },
            cipher_pass: self.cipher_pass.into(),
            s3_key,
        };
        match archive.problem() {
            Some(problem) => Err(invalid(problem)),
            None => Ok(archive),
        }
    }
}

/// `PUT /v1/servers/{id}/wal-archive`: the pgBackRest archive of a server
/// the operator backs up already, which a restore to a time of its tenants
/// reads (and only reads). It is read once before it is recorded: what this
/// machine cannot read is refused (409 `wal_archive_unreadable`).
#[utoipa::path(put, path = "/v1/servers/{id}/wal-archive", tag = "servers", request_body = SetWalArchive, params(("id" = uuid::Uuid, Path, description = "Server id")), responses((status = 200, description = "The server", body = crate::servers::DbServer)))]
pub async fn set(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: crate::api::http::body::Json<SetWalArchive>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Write)?;
    let archive = body.into_inner().into_archive()?;
    let server = state
        .servers()
        .set_wal_archive(&actor(&principal, &req), id.into_inner(), &archive)
        .await?;
    Ok(HttpResponse::Ok().json(server_json(&state, &server)))
}

/// `DELETE /v1/servers/{id}/wal-archive`: forgets the server's archive (the
/// repository is left as it is); its tenants can no longer be restored to
/// a time.
#[utoipa::path(delete, path = "/v1/servers/{id}/wal-archive", tag = "servers", params(("id" = uuid::Uuid, Path, description = "Server id")), responses((status = 200, description = "The server", body = crate::servers::DbServer)))]
pub async fn remove(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Write)?;
    let server = state
        .servers()
        .remove_wal_archive(&actor(&principal, &req), id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(server_json(&state, &server)))
}

//! Drift detection: whether a tenant database's schema is the one its
//! recorded migration version says it should be.
//!
//! - `describe` reads a database's schema from `pg_catalog` into a
//!   normalized `SchemaSnapshot` (tables, columns, constraints, indexes,
//!   row-level security and its policies, functions, triggers, grants,
//!   sequences, views, extensions), a few queries per database, never one
//!   per table.
//! - `diff` compares two snapshots object by object, with the DDL that
//!   brings the tenant back where one can be written.
//! - `Inspector` holds the expected snapshot of each version and checks a
//!   tenant against it.
//!
//! Rules:
//! - A tenant is *in sync* when its snapshot and the expected one of its
//!   recorded version have no difference: the same objects, each with the
//!   same definition. Equal snapshots have equal fingerprints (a SHA-256 of
//!   the sorted, canonical form), so a fingerprint is enough to compare.
//! - Owners (and grantors, and the owner's own privileges) are not part of
//!   a schema: the administrator that migrates may be a different role on
//!   each server, and a difference there is not drift. The database's own
//!   settings and ACL, extension versions (which come with the server's
//!   packages) and the rows of any table (`refinery_schema_history`
//!   included) are not part of it either.
//!   Not read yet: user-defined types (enums, domains), column order,
//!   column-level privileges, comments.
//! - The expected snapshot of a version is built once per fleet: in a
//!   scratch database on a tenant's server, migrated to that version,
//!   described and dropped (`expected.rs`). Its fingerprint and snapshot are
//!   kept in the catalog with the checksum of the migration set up to that
//!   version; a replica reuses the stored one only while that checksum
//!   matches its own set, and builds (and stores) it again otherwise.
//!   It is built on one server and compared on all: a server whose
//!   PostgreSQL writes definitions differently (another major version) or
//!   whose `template1` holds more shows its tenants as drifted.
//! - `Inspector::check` opens one session to the tenant database and
//!   closes it before it returns. A missing expected snapshot is built
//!   before that session opens, never beside it: the build's own sessions
//!   are the provisioner's lock session on `postgres` and one at a time on
//!   the scratch database.

mod ddl;
mod describe;
mod diff;
mod expected;
mod queries;
mod snapshot;
// Fleet scans, drift state and one tenant's check (drift plumbing).
mod scan_run;
mod scans;
mod state;

pub use describe::describe;
pub use diff::diff;
pub use expected::{ExpectedSchema, Inspector};
pub use snapshot::{SchemaObject, SchemaSnapshot, Shape};
// Fleet scans, drift state and one tenant's check (drift plumbing).
pub use crate::catalog::{DriftCounts, DriftState, ScanRecord};
pub use scan_run::{ScanProgress, ScanProgressFn, SESSIONS_PER_SERVER};
pub use scans::{LaunchedScan, ScanError, Scans};
pub use state::{DriftReport, ScanSummary, TenantDrift};

use serde::{Deserialize, Serialize};

use crate::error_code::ErrorCode;

/// The kind of a schema object.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Schema,
    Extension,
    Table,
    Column,
    Constraint,
    Index,
    RowSecurity,
    Policy,
    Sequence,
    View,
    Function,
    Trigger,
    Grant,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schema => "schema",
            Self::Extension => "extension",
            Self::Table => "table",
            Self::Column => "column",
            Self::Constraint => "constraint",
            Self::Index => "index",
            Self::RowSecurity => "row_security",
            Self::Policy => "policy",
            Self::Sequence => "sequence",
            Self::View => "view",
            Self::Function => "function",
            Self::Trigger => "trigger",
            Self::Grant => "grant",
        }
    }
}

/// How one object differs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DiffChange {
    /// In the tenant database, not in the expected schema.
    Added,
    /// In the expected schema, not in the tenant database.
    Missing,
    /// In both, with different definitions.
    Changed,
}

/// One object that differs between the expected schema and a tenant's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectDiff {
    pub kind: ObjectKind,
    /// Its stable name, e.g. `public.calls.status` for a column.
    pub name: String,
    pub change: DiffChange,
    /// Its definition in the expected schema (`None`: added).
    pub expected: Option<String>,
    /// Its definition in the tenant database (`None`: missing).
    pub actual: Option<String>,
    /// SQL that brings the tenant back to the expected schema, where one
    /// can be written.
    pub ddl: Option<String>,
}

/// The outcome of checking one tenant database.
#[derive(Debug, Clone, Serialize)]
pub struct DriftCheck {
    /// No difference from the expected schema of `version`.
    pub in_sync: bool,
    /// The migration version the tenant was checked against.
    pub version: i32,
    /// The tenant's schema fingerprint.
    pub fingerprint: String,
    /// The expected schema's fingerprint for `version`.
    pub expected_fingerprint: String,
    pub diff: Vec<ObjectDiff>,
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("cannot connect to the database to describe it")]
    Connect(#[source] crate::pg::SessionError),
    #[error("reading the schema failed")]
    Describe(#[source] tokio_postgres::Error),
    #[error("building the expected schema failed")]
    Provision(#[from] crate::provisioner::ProvisionError),
    #[error("migrating the scratch database failed")]
    Migrate(#[from] crate::migrator::MigrateError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("version {version} is not in this process's migration set (newest: {latest})")]
    UnknownVersion { version: i32, latest: i32 },
}

impl DriftError {
    /// The error code an operation or the API answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Connect(_) => ErrorCode::DatabaseServerUnavailable,
            Self::Provision(e) => e.code(),
            Self::Catalog(e) => e.code(),
            Self::Describe(_) | Self::Migrate(_) | Self::UnknownVersion { .. } => {
                ErrorCode::InternalError
            }
        }
    }
}

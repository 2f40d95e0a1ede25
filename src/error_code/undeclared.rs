//! The codes no operation declares in the spec, and why.

use super::ErrorCode;

impl ErrorCode {
    /// Codes no operation declares in the spec, and why: they answer for no
    /// route in particular, or are not an envelope's.
    pub const UNDECLARED: &'static [(ErrorCode, &'static str)] = &[
        (
            ErrorCode::NotFound,
            "a path no route matches (and a data-plane record with no code of its own)",
        ),
        (
            ErrorCode::MethodNotAllowed,
            "a method a path does not list (the spec's description says so)",
        ),
        (
            ErrorCode::BadRequest,
            "actix's own 400, wrapped in the envelope",
        ),
        (
            ErrorCode::RequestError,
            "any other status actix answers by itself",
        ),
        // A long operation's failures, read in its view (`GET
        // /v1/operations/{id}`), never in a response to the request that
        // started it.
        (
            ErrorCode::OperationFailed,
            "a failed operation's view when no code was recorded",
        ),
        (
            ErrorCode::Interrupted,
            "an operation whose process stopped and which was undone",
        ),
        (
            ErrorCode::BackupFailed,
            "a backup's view: the dump or the upload failed",
        ),
        (
            ErrorCode::DrainIncomplete,
            "a drain's view: tenants were left on the server",
        ),
        (
            ErrorCode::FleetRunFailed,
            "a fleet run's view: it ended with failures",
        ),
        (
            ErrorCode::TooManyFailures,
            "a fleet run's view: stopped past its failure threshold",
        ),
        (
            ErrorCode::TenantMigrationsFailed,
            "a fleet run's per-tenant step: the tenant's migration failed",
        ),
        (ErrorCode::Cancelled, "a cancelled operation's view"),
        (
            ErrorCode::BackupRefused,
            "a restore's view: the archive did not verify",
        ),
        (
            ErrorCode::BackupMissing,
            "a restore's view: the archive is gone from the location",
        ),
        (
            ErrorCode::BackupLocationUnavailable,
            "a backup's or restore's view: the location did not answer",
        ),
        (
            ErrorCode::BaseBackupFailed,
            "a base backup's view: pgBackRest failed",
        ),
    ];
}

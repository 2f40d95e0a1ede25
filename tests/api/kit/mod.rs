//! The test kit: what feature tests share. A feature test file (one noun:
//! `servers.rs`, `backups.rs` …) imports from the kit and from the
//! infrastructure beside it (`helpers`, `cluster`, `rig`, `tls_rig`,
//! `timing`), never from another feature's file; a helper two features
//! need moves here, into the file of its noun. `architecture/test_files.rs`
//! holds this rule and the 400-line limit.
//!
//! - `request`: the typed request builder on `TestApp` (and `call`, its
//!   positional shorthand);
//! - `expect`: checks on responses (`ok_json`, `expect_error`, `id`);
//! - `binary`, `cli`: the `tenant-plane` binary, and the CLI on an app's catalog;
//! - `servers`, `tenant_db`, `migrations`, `backups`, `drain`, `doctor`,
//!   `console`, `keys`, `pitr`, `operator_repo`: resources made or read for a test;
//! - `browser`: a real browser for the console; `oidc`: a real OpenID provider; `s3`: an S3 server (over
//!   HTTP, or HTTPS with a certificate from `ca`);
//! - `spec`, `spec_values`, `spec_invalid`, `fuzz_inputs`: the served spec,
//!   and requests generated from it;
//! - `user_path`: the README settings' examples and starts.

pub mod backups;
pub mod binary;
pub mod browser;
pub mod ca;
pub mod cli;
pub mod console;
pub mod data_dirs;
pub mod doctor;
pub mod drain;
// Drift scans and views (drift plumbing).
pub mod drift;
pub mod expect;
// Drift core: inspectors, tenants' places, scratch databases (issue 29).
pub mod expected_schemas;
// The PostgreSQL-protocol gateway: keys, connections, session counts.
pub mod fuzz_inputs;
pub mod gateway;
pub mod gateway_raw;
pub mod keys;
pub mod migrations;
// A real OpenID provider (npm's oidc-provider) for single sign-on.
pub mod oidc;
pub mod operator_repo;
pub mod pitr;
pub mod request;
// Revert (down migrations).
pub mod revert;
pub mod s3;
pub mod servers;
pub mod spec;
pub mod spec_invalid;
pub mod spec_values;
pub mod tenant_db;
pub mod user_path;

pub use expect::{expect_error, id, ok_json};
pub use request::call;

/// The newest version of the built-in tenant migrations
/// (`tenant_template/migrations`).
pub const LATEST_TENANT_VERSION: i32 = 7;

//! tenant-plane: a control plane for database-per-tenant PostgreSQL.
//!
//! See `ARCHITECTURE.md` for the map of modules and the rules they keep.

pub mod api;
pub mod auth;
pub mod backup;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod control_audit;
pub mod crypto;
pub mod custom_domains;
pub mod data;
pub mod directory;
pub mod domain;
pub mod drift;
pub mod dump;
pub mod embedded;
pub mod error_code;
pub mod events;
pub mod failpoint;
pub mod fleet;
pub mod gateway;
pub mod idempotency;
pub mod lint;
pub mod local_pg;
pub mod migrator;
pub mod onboarding;
pub mod operations;
pub mod pg;
pub mod process;
pub mod provisioner;
pub mod reconciler;
pub mod route_notices;
pub mod router;
pub mod servers;
pub mod services;
pub mod sql;
pub mod startup;
pub mod telemetry;
pub mod tenancy;
pub mod tenant_config;
pub mod tenant_keys;
pub mod tenants;
pub mod usage;
pub mod wal_archive;

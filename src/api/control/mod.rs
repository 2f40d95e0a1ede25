//! The control plane's resources: tenants and their keys, domains, backups
//! and migrations; servers; long operations; events; health and metrics.

pub(crate) mod api_keys;
pub(crate) mod backups;
pub(crate) mod domains;
// Drift scans and reports (drift plumbing).
pub(crate) mod drift;
pub(crate) mod events;
pub(crate) mod health;
// A tenant's own identity provider.
pub(crate) mod identity_providers;
pub(crate) mod metrics;
pub(crate) mod migration_lint;
// A fleet run's revert (down migrations).
pub(crate) mod migration_reverts;
pub(crate) mod migrations;
pub(crate) mod operations;
pub(crate) mod overview;
// A rebalance plan, and running it.
pub(crate) mod rebalance;
// Point-in-time restore: the recovery window, restore to a time.
pub(crate) mod restore_time;
pub(crate) mod servers;
pub(crate) mod tenants;
// Usage per tenant, and the fleet's top tenants.
pub(crate) mod usage;
pub(crate) mod usage_chart;
// A registered server's pgBackRest archive.
pub(crate) mod wal_archives;

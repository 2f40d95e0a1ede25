//! The integration tests: one binary, real servers, real PostgreSQL.
//!
//! Rules:
//! - tests never mock PostgreSQL: each binary runs throwaway clusters
//!   (`cluster.rs`);
//! - a timed test runs alone: it takes `timing.rs`'s claim exclusively, and
//!   every other test holds it shared from its first use of a server.

mod abuse;
mod api_key_lifetimes;
mod api_key_rights;
mod architecture;
mod audit_failures;
mod auth;
mod backup_service;
mod backup_trust;
mod backups;
mod budget_churn;
mod budget_resize;
mod catalog;
mod cli;
mod cluster;
mod console;
mod console_api;
// Lint findings in the console (issue 29).
mod console_lint;
mod console_live;
mod console_session;
mod console_sign_out;
mod contract;
mod crash_points;
mod data_access;
mod data_plane;
mod data_routing;
mod data_scope;
mod doctor;
mod doctor_locks;
mod doctor_placement;
mod doctor_quarantine;
mod doctor_repairs;
mod drain_listing;
mod drain_race;
mod drain_targets;
// Drift core: describe, diff, expected schemas (issue 29).
mod drift_describe;
mod drift_expected;
// Drift plumbing: scans, views, the fleet's drift gate (issue 29).
mod drift_console;
mod drift_fleet;
mod drift_resume;
mod drift_scan;
mod embedded;
mod errors;
mod event_stream_limits;
mod events;
mod faults;
mod first_run;
mod fuzz;
mod health;
mod helpers;
mod isolation;
mod kit;
mod master_keys;
mod metrics_page;
mod migration_checksums;
// Lint before a run (issue 29).
mod migration_lint;
mod migration_lock_safety;
// Revert (down migrations).
mod migration_revert;
mod migration_revert_console;
mod migration_revert_kill;
mod migration_sessions;
mod migrations;
mod migrations_cli;
mod moves;
mod moves_leftovers;
mod noisy_neighbour;
mod observability;
mod openapi;
mod operation_codes;
mod operations;
mod operations_cancelled_begin;
mod operations_resume;
mod placement_load;
mod point_in_time;
mod point_in_time_console;
mod point_in_time_kill;
mod point_in_time_s3;
mod point_in_time_servers;
mod postgres_tls;
mod rebalance;
mod restore_outcomes;
mod restore_refusals;
mod rig;
mod rough_edges;
mod router_fallback;
mod safety;
mod schedule;
mod scratch_and_children;
mod servers;
mod servers_privileges;
mod settings_user_path;
mod settings_user_path_starts;
mod spec_responses;
mod subtenant_purge;
mod tenant_db_denied;
mod tenants_create;
mod tenants_lifecycle;
mod tenants_recovery;
mod throttle;
mod timing;
mod tls_rig;
mod token_keys;
mod usage;
mod usage_console;
mod usage_days;
mod usage_replicas;

//! The integration tests: one binary, real servers, real PostgreSQL.

mod auth;
mod backups;
mod catalog;
mod cli;
mod cluster;
mod data_access;
mod data_plane;
mod data_routing;
mod embedded;
mod errors;
mod faults;
mod fuzz;
mod fuzz_inputs;
mod health;
mod helpers;
mod isolation;
mod migrations;
mod migrations_cli;
mod moves;
mod observability;
mod openapi;
mod restore_refusals;
mod servers;
mod tenants_create;
mod tenants_lifecycle;
mod tenants_recovery;

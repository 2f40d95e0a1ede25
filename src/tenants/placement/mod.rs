//! Placement: where a root tenant's database lives. A move copies it to
//! another server (`relocate.rs`); a drain moves every root tenant off one
//! (`drain.rs`); a rebalance runs the moves of a plan (`plan.rs`) that
//! brings every server under a target utilisation (`rebalance.rs`). All
//! fail with `PlacementError`.
//!
//! Rules: a tenant is placed only on an `active` server, re-checked in the
//! transaction that switches it; until that switch a failed move leaves the
//! tenant where it was, taking writes again; a drain ends only on an empty
//! listing read while its server is `draining`.

mod drain;
mod error;
pub mod plan;
mod rebalance;
mod relocate;

pub use drain::{DrainItem, DrainProgress};
pub use error::PlacementError;
pub use rebalance::{RebalanceItem, RebalanceProgress};

/// A placement's long operation begun (see `operations::Started`).
pub type Started<T> = crate::operations::Started<T, PlacementError>;

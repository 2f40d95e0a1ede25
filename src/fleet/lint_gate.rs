//! Lint before a run: every pending migration of a new run is linted, and
//! error-level findings block it unless the run acknowledges their rules.
//!
//! Rules:
//! - The pending range is the versions above the lowest schema version
//!   among the run's tenants (above 0 when it has none) and at most the
//!   target: the migrations some tenant of the run would apply.
//! - A run starts only when every rule of every Error finding is in its
//!   `acknowledge` list; the findings (all of them, warnings too) and the
//!   acknowledged rules are stored with the run.
//! - `acknowledge` names only rules this linter reports (a typo must not
//!   pass as an acknowledgement of nothing).
//! - The gate runs before any template is migrated: a blocked run changes
//!   nothing.

use serde::Serialize;

use super::{Fleet, FleetError};
use crate::domain::Tier;
use crate::lint::{self, Finding, Severity};

/// The lint of a pending range, on demand (`POST /v1/migrations/lint`,
/// `migrate --lint`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LintReport {
    /// No Error finding.
    pub ok: bool,
    /// Versions above this one were linted.
    pub from_version: i32,
    /// Up to and including this one.
    pub target_version: i32,
    /// The files linted, in version order.
    pub files: Vec<String>,
    pub findings: Vec<Finding>,
}

/// What the gate let through: kept with the run.
pub(super) struct Passed {
    pub findings: Vec<Finding>,
    pub acknowledged: Vec<String>,
}

impl Fleet {
    /// Lints the migrations above `from` (the lowest tenant version when
    /// `None`) up to `target` (the newest when `None`).
    pub async fn lint(
        &self,
        from: Option<i32>,
        target: Option<i32>,
    ) -> Result<LintReport, FleetError> {
        let target = target.unwrap_or_else(|| self.migrations().latest_version());
        let from = match from {
            Some(v) => v,
            None => self.lowest_version(None).await?,
        };
        let linted = lint::lint_pending(self.migrations(), from, target);
        Ok(LintReport {
            ok: !lint::has_errors(&linted.findings),
            from_version: linted.from_version,
            target_version: linted.target_version,
            files: linted.files,
            findings: linted.findings,
        })
    }

    /// The gate of a new run over `tier` to `target`.
    pub(super) async fn lint_gate(
        &self,
        tier: Option<Tier>,
        target: i32,
        acknowledge: &[String],
    ) -> Result<Passed, FleetError> {
        if let Some(unknown) = acknowledge.iter().find(|r| !lint::rules::is_known(r)) {
            return Err(FleetError::UnknownRule(unknown.clone()));
        }
        let from = self.lowest_version(tier).await?;
        let findings = lint::lint_pending(self.migrations(), from, target).findings;
        let blocking: Vec<Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error && !acknowledge.contains(&f.rule))
            .cloned()
            .collect();
        if !blocking.is_empty() {
            return Err(FleetError::LintFailed(blocking));
        }
        let mut acknowledged = acknowledge.to_vec();
        acknowledged.sort();
        acknowledged.dedup();
        Ok(Passed {
            findings,
            acknowledged,
        })
    }

    async fn lowest_version(&self, tier: Option<Tier>) -> Result<i32, FleetError> {
        Ok(self.catalog.lowest_fleet_version(tier).await?.unwrap_or(0))
    }
}

/// The message of a blocked run: each rule with its file and line.
pub(super) fn blocked_message(findings: &[Finding]) -> String {
    let list: Vec<String> = findings
        .iter()
        .map(|f| format!("{} at {}:{}", f.rule, f.file, f.line))
        .collect();
    format!(
        "pending migrations have lint errors; fix them or name their rules in acknowledge: {}",
        list.join(", ")
    )
}

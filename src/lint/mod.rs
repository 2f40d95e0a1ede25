//! Lint of tenant migrations before they reach live tenants.
//!
//! The linter is squawk (`squawk-linter`, used as a library): each file is
//! parsed with `squawk_syntax` and checked against the rules in
//! [`rules`]. Rules held here:
//! - The severity of a finding is OURS, not squawk's ([`rules::severity`]).
//!   `Error` is a statement that takes a lock which stops the tenant's
//!   application for the length of a rewrite or a scan, or that destroys
//!   data: non-concurrent index create/drop, a NOT NULL or required column,
//!   a column type change, a foreign key / check without `NOT VALID`, a
//!   unique constraint without `USING INDEX`, a volatile default, a serial
//!   primary key, renames (the running application still uses the old name),
//!   dropped tables, columns, databases, schemas, and `TRUNCATE` (with
//!   `CASCADE` squawk's rule; without, ours: `own_rules.rs`).
//!   `Warning` is style (prefer text, bigint, identity, timestamptz, robust
//!   statements, …). Error findings block a fleet run unless the run
//!   acknowledges every one of their rules (see `fleet::lint_gate`).
//! - Files are linted as running inside a transaction, as refinery runs each
//!   migration in one. So `CREATE INDEX CONCURRENTLY` in a tenant migration is
//!   itself an Error (`ban-concurrent-index-creation-in-transaction`: it
//!   cannot run in a transaction at all; squawk skips a file of one
//!   statement, `own_rules.rs` does not), and a plain `CREATE INDEX` on an
//!   existing table is an Error too. An operator either acknowledges
//!   `require-concurrent-index-creation` for a small table, or splits the
//!   change: build the index concurrently out of band on each tenant (or
//!   while the table is small), then ship a migration that only records it
//!   (`CREATE INDEX IF NOT EXISTS`, acknowledged).
//! - `require-lock-timeout` / `require-statement-timeout` are not enabled:
//!   the migrator sets both on each tenant's session itself.
//! - A file cannot silence its own findings: squawk's in-file directives
//!   (`-- squawk-ignore …`, `squawk-ignore-file`,
//!   `squawk-disable-assume-in-transaction`) are not honoured. A run's
//!   `acknowledge`, kept with the run, is the one way past an Error.
//! - `line` and `column` are 1-based, counted in characters of the file.

mod own_rules;
mod position;
mod range;
mod rule_name;
pub mod rules;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use range::{lint_pending, PendingLint};
pub use rule_name::RuleName;

/// How much a finding matters to a fleet run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Blocks a run unless its rule is acknowledged.
    Error,
    /// Shown, never blocks.
    Warning,
}

/// One rule broken by one statement of one migration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// squawk's rule name, e.g. `require-concurrent-index-creation`.
    #[schema(example = "require-concurrent-index-creation")]
    pub rule: String,
    pub severity: Severity,
    /// The migration file, e.g. `V2__add_index.sql`.
    #[schema(example = "V2__add_index.sql")]
    pub file: String,
    /// 1-based line of the statement's start.
    #[schema(minimum = 1)]
    pub line: u32,
    /// 1-based column (in characters) of the statement's start.
    #[schema(minimum = 1)]
    pub column: u32,
    pub message: String,
    pub help: Option<String>,
}

impl Finding {
    /// A statement that loses data when it runs (a dropped table, column,
    /// database or schema, a truncate): a down step with one needs the
    /// operator's explicit acceptance.
    pub fn is_destructive(&self) -> bool {
        rules::is_destructive(&self.rule)
    }
}

/// Lints one migration file's SQL; findings in the order of the file.
pub fn lint_file(file: &str, sql: &str) -> Vec<Finding> {
    // squawk's in-file directives (`-- squawk-ignore …`) would let a file
    // silence its own findings; renamed (same length, so offsets hold),
    // they are plain comments.
    let sql = &sql.replace("squawk-", "squawk_");
    let parsed = squawk_syntax::SourceFile::parse(sql);
    let mut linter = rules::linter();
    let lines = position::Lines::new(sql);
    let mut findings: Vec<Finding> = linter
        .lint(&parsed, sql)
        .into_iter()
        .filter_map(|v| {
            let severity = rules::severity(v.code)?;
            let (line, column) = lines.at(u32::from(v.text_range.start()) as usize);
            Some(Finding {
                rule: v.code.to_string(),
                severity,
                file: file.to_string(),
                line,
                column,
                message: v.message,
                help: v.help,
            })
        })
        .collect();
    findings.extend(own_rules::findings(file, &parsed, &lines));
    findings.sort_by(|a, b| (a.line, a.column, &a.rule).cmp(&(b.line, b.column, &b.rule)));
    // A rule squawk and `own_rules` both report at one place, once.
    findings.dedup_by(|a, b| (a.line, a.column, &a.rule) == (b.line, b.column, &b.rule));
    findings
}

/// True when some finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

//! `tenant-plane migrate --lint`: the pending migrations' lint findings,
//! one a line (`file:line rule severity message`), or the report as JSON.
//! Exits non-zero when any finding is an error.

use crate::fleet::Fleet;
use crate::lint::Severity;

pub(super) async fn run(fleet: &Fleet, target: Option<i32>, json: bool) -> anyhow::Result<()> {
    let report = fleet.lint(None, target).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "linted {} migration(s) above version {} up to {}",
            report.files.len(),
            report.from_version,
            report.target_version
        );
        for f in &report.findings {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            println!(
                "{}:{} {} {} {}",
                f.file, f.line, f.rule, severity, f.message
            );
        }
    }
    let errors = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    anyhow::ensure!(
        report.ok,
        "{errors} error-level lint finding(s); fix the migrations, or start the run with --acknowledge RULE"
    );
    Ok(())
}

//! Lint of a migration set's pending range.

use crate::migrator::MigrationSet;

use super::{lint_file, Finding, Severity};

/// What the pending range of a set looks like to the linter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLint {
    /// Versions above this one were linted.
    pub from_version: i32,
    /// Up to and including this one.
    pub target_version: i32,
    /// The files linted, in version order.
    pub files: Vec<String>,
    pub findings: Vec<Finding>,
}

/// Lints the migrations of `set` with a version above `from` and at most
/// `target`, in version order, each up followed by its down file.
///
/// A down's destructive findings are Warnings here: undoing its up means
/// dropping what the up made, and a revert asks for `accept_data_loss`
/// before it runs such a step. Its other findings count as the ups' do.
pub fn lint_pending(set: &MigrationSet, from: i32, target: i32) -> PendingLint {
    let mut sources = set.sources(from, Some(target));
    let downs = set.down_sources(from, Some(target));
    let down_files: Vec<String> = downs.iter().map(|d| d.file.clone()).collect();
    sources.extend(downs);
    // Stable: each version's up stays before its down.
    sources.sort_by_key(|s| s.version);
    let findings = sources
        .iter()
        .flat_map(|s| lint_file(&s.file, &s.sql))
        .map(|mut f| {
            if down_files.contains(&f.file) && f.is_destructive() {
                f.severity = Severity::Warning;
            }
            f
        })
        .collect();
    PendingLint {
        from_version: from,
        target_version: target,
        files: sources.into_iter().map(|s| s.file).collect(),
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(files: &[(&str, &str)]) -> (tempfile::TempDir, MigrationSet) {
        let dir = tempfile::tempdir().unwrap();
        for (name, sql) in files {
            std::fs::write(dir.path().join(name), sql).unwrap();
        }
        let set = MigrationSet::from_dir(dir.path()).unwrap();
        (dir, set)
    }

    #[test]
    fn a_down_file_is_linted_after_its_up_and_only_its_destructive_findings_are_demoted() {
        let (_dir, set) = set_of(&[
            ("V1__base.sql", "CREATE TABLE t (id bigint PRIMARY KEY);"),
            ("V2__extra.sql", "ALTER TABLE t ADD COLUMN note text;"),
            (
                "V2__extra.down.sql",
                "ALTER TABLE t DROP COLUMN note;\nCREATE INDEX t_id_idx ON t (id);",
            ),
        ]);
        let linted = lint_pending(&set, 1, 2);
        assert_eq!(linted.files, ["V2__extra.sql", "V2__extra.down.sql"]);
        let drop = linted
            .findings
            .iter()
            .find(|f| f.rule == "ban-drop-column")
            .expect("the dropped column is found");
        assert_eq!(
            (drop.file.as_str(), drop.severity),
            ("V2__extra.down.sql", Severity::Warning)
        );
        let index = linted
            .findings
            .iter()
            .find(|f| f.rule == "require-concurrent-index-creation")
            .expect("the blocking index build is found");
        assert_eq!((index.line, index.severity), (2, Severity::Error));
    }
}

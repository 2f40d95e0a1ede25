//! Down migrations: `V<n>__name.down.sql` beside the `V<n>__name.sql` it
//! undoes, in the built-in set (embedded in the binary) and in
//! `migrations.tenant_dir` (read at start-up with the ups). Refinery skips
//! the `.down.sql` name, so it never applies one.
//!
//! Rules:
//! - A down file is accepted only beside its up: a version the set does not
//!   have, or a name that differs from its up's, is refused at load, naming
//!   the file.
//! - Which downs a revert needs is decided before anything runs
//!   (`DownSet::plan`): a missing one anywhere in the range is
//!   `NoDownMigration` naming the version, and a step the linter calls
//!   destructive is `DataLossNotAccepted` unless the caller accepts it.
//! - What is destructive is the linter's call (`lint`, above this module:
//!   the container hands its check in, `MigrationSet::with_data_loss_check`).
//!   A set given no check cannot tell, so every down step needs
//!   `accept_data_loss`.

use std::collections::BTreeMap;
use std::path::Path;

use refinery::Migration;
use rust_embed::Embed;

use super::MigrateError;

/// The built-in tenant migrations' folder, for its `.down.sql` files.
#[derive(Embed)]
#[folder = "tenant_template/migrations/"]
struct BuiltIn;

const SUFFIX: &str = ".down.sql";

/// One down migration: what undoes version `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownMigration {
    pub version: i32,
    pub name: String,
    pub sql: String,
}

impl DownMigration {
    /// Its file name, as findings and errors name it.
    pub fn file(&self) -> String {
        format!("V{}__{}{SUFFIX}", self.version, self.name)
    }
}

/// What a down step loses: the linter's rule and the line it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLoss {
    pub rule: String,
    pub line: u32,
}

/// Finds the first statement of a file (`file`, `sql`) that loses data.
pub type DataLossCheck = fn(&str, &str) -> Option<DataLoss>;

/// With no check given: every down step may lose data, so none runs
/// without `accept_data_loss`.
fn unchecked(_file: &str, _sql: &str) -> Option<DataLoss> {
    Some(DataLoss {
        rule: "unchecked".into(),
        line: 1,
    })
}

/// The down migrations of a set, by version.
#[derive(Debug, Clone)]
pub struct DownSet {
    by_version: BTreeMap<i32, DownMigration>,
    data_loss: DataLossCheck,
}

impl DownSet {
    /// The built-in set's down files.
    pub fn embedded(ups: &[Migration]) -> Result<Self, MigrateError> {
        let files = BuiltIn::iter().filter_map(|name| {
            let file = BuiltIn::get(&name)?;
            let sql = String::from_utf8_lossy(&file.data).into_owned();
            Some((name.into_owned(), sql))
        });
        Self::from_files(files, ups)
    }

    /// The down files of `dir` (not its subfolders: refinery's ups may be
    /// there, but a down belongs beside its up, at the top).
    pub fn from_dir(dir: &Path, ups: &[Migration]) -> Result<Self, MigrateError> {
        let unreadable = |e: std::io::Error| MigrateError::DownFile {
            file: dir.display().to_string(),
            reason: e.to_string(),
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(unreadable)? {
            let path = entry.map_err(unreadable)?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(SUFFIX) && path.is_file() {
                let sql = std::fs::read_to_string(&path).map_err(|e| MigrateError::DownFile {
                    file: name.to_string(),
                    reason: e.to_string(),
                })?;
                files.push((name.to_string(), sql));
            }
        }
        Self::from_files(files, ups)
    }

    /// Checks each `(file name, sql)` against the ups; names that do not
    /// end in `.down.sql` are ignored.
    fn from_files(
        files: impl IntoIterator<Item = (String, String)>,
        ups: &[Migration],
    ) -> Result<Self, MigrateError> {
        let mut by_version = BTreeMap::new();
        for (file, sql) in files {
            let Some(stem) = file.strip_suffix(SUFFIX) else {
                continue;
            };
            let refused = |reason: String| MigrateError::DownFile {
                file: file.clone(),
                reason,
            };
            let (version, name) = parse_stem(stem).ok_or_else(|| {
                refused("a down migration is named V<version>__<name>.down.sql".into())
            })?;
            let up = ups.iter().find(|m| m.version() == version).ok_or_else(|| {
                refused(format!(
                    "there is no up migration V{version}__{name}.sql for it to undo"
                ))
            })?;
            if up.name() != name {
                return Err(refused(format!(
                    "its up migration is V{version}__{}.sql: a down file takes its up's name",
                    up.name()
                )));
            }
            by_version.insert(version, DownMigration { version, name, sql });
        }
        Ok(Self {
            by_version,
            data_loss: unchecked,
        })
    }

    /// The same downs, with `check` telling which lose data.
    pub fn with_data_loss_check(mut self, check: DataLossCheck) -> Self {
        self.data_loss = check;
        self
    }

    pub fn get(&self, version: i32) -> Option<&DownMigration> {
        self.by_version.get(&version)
    }

    /// The downs that take a database from `from` back to `target`, newest
    /// first, checked before anything runs: every applied version above
    /// `target` (of `applied`, or each from `target + 1` to `from` when
    /// `None`) needs a down file, and a destructive one needs
    /// `accept_data_loss`.
    pub fn plan(
        &self,
        applied: &[i32],
        target: i32,
        accept_data_loss: bool,
    ) -> Result<Vec<&DownMigration>, MigrateError> {
        let mut versions: Vec<i32> = applied.iter().copied().filter(|v| *v > target).collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions.dedup();
        let mut plan = Vec::with_capacity(versions.len());
        for version in versions {
            let down = self
                .get(version)
                .ok_or(MigrateError::NoDownMigration { version })?;
            if !accept_data_loss {
                let file = down.file();
                if let Some(loss) = (self.data_loss)(&file, &down.sql) {
                    return Err(MigrateError::DataLossNotAccepted {
                        file,
                        rule: loss.rule,
                        line: loss.line,
                    });
                }
            }
            plan.push(down);
        }
        Ok(plan)
    }
}

/// `V12__add_x` → (12, "add_x").
fn parse_stem(stem: &str) -> Option<(i32, String)> {
    let (version, name) = stem.strip_prefix('V')?.split_once("__")?;
    let version = version.parse::<i32>().ok()?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    valid.then(|| (version, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ups() -> Vec<Migration> {
        vec![
            Migration::unapplied("V1__first", "SELECT 1").unwrap(),
            Migration::unapplied("V2__second", "SELECT 2").unwrap(),
            Migration::unapplied("V3__third", "SELECT 3").unwrap(),
        ]
    }

    /// A stand-in for the linter: a DROP COLUMN loses data.
    fn drops(_file: &str, sql: &str) -> Option<DataLoss> {
        let line = sql.lines().position(|l| l.contains("DROP COLUMN"))?;
        Some(DataLoss {
            rule: "ban-drop-column".into(),
            line: line as u32 + 1,
        })
    }

    fn set(files: &[(&str, &str)]) -> Result<DownSet, MigrateError> {
        let files = files.iter().map(|(f, s)| (f.to_string(), s.to_string()));
        Ok(DownSet::from_files(files, &ups())?.with_data_loss_check(drops))
    }

    #[test]
    fn a_down_file_whose_up_is_missing_or_named_otherwise_is_refused_naming_the_file() {
        let missing = set(&[("V4__fourth.down.sql", "SELECT 1")]).unwrap_err();
        assert!(
            missing.to_string().contains("V4__fourth.down.sql"),
            "{missing}"
        );
        assert!(missing.to_string().contains("no up migration"), "{missing}");
        let renamed = set(&[("V2__other.down.sql", "SELECT 1")]).unwrap_err();
        assert!(renamed.to_string().contains("V2__second.sql"), "{renamed}");
        let odd = set(&[("2__second.down.sql", "SELECT 1")]).unwrap_err();
        assert!(odd.to_string().contains("2__second.down.sql"), "{odd}");
        assert!(set(&[("V2__second.sql", "SELECT 2")])
            .unwrap()
            .by_version
            .is_empty());
    }

    #[test]
    fn without_a_data_loss_check_every_down_step_needs_data_loss_accepted() {
        let files = [("V2__second.down.sql".to_string(), "SELECT 1".to_string())];
        let downs = DownSet::from_files(files, &ups()).unwrap();
        let refused = downs.plan(&[1, 2], 1, false).unwrap_err();
        assert!(
            matches!(refused, MigrateError::DataLossNotAccepted { .. }),
            "{refused}"
        );
        assert_eq!(downs.plan(&[1, 2], 1, true).unwrap().len(), 1);
    }

    #[test]
    fn a_plan_runs_newest_first_and_names_the_first_missing_down() {
        let downs = set(&[
            ("V2__second.down.sql", "SELECT 1"),
            ("V3__third.down.sql", "SELECT 1"),
        ])
        .unwrap();
        let plan = downs.plan(&[1, 2, 3], 1, false).unwrap();
        let versions: Vec<i32> = plan.iter().map(|d| d.version).collect();
        assert_eq!(versions, [3, 2]);
        assert!(downs.plan(&[1, 2, 3], 3, false).unwrap().is_empty());
        let below = downs.plan(&[1, 2, 3], 0, false).unwrap_err();
        assert!(matches!(
            below,
            MigrateError::NoDownMigration { version: 1 }
        ));
    }

    #[test]
    fn a_destructive_down_needs_data_loss_accepted_and_names_file_rule_and_line() {
        let downs = set(&[(
            "V3__third.down.sql",
            "SELECT 1;\nALTER TABLE t DROP COLUMN c;",
        )])
        .unwrap();
        let refused = downs.plan(&[1, 2, 3], 2, false).unwrap_err();
        let MigrateError::DataLossNotAccepted { file, line, .. } = &refused else {
            panic!("{refused}");
        };
        assert_eq!(file, "V3__third.down.sql");
        assert_eq!(*line, 2);
        assert_eq!(downs.plan(&[1, 2, 3], 2, true).unwrap().len(), 1);
    }

    #[test]
    fn the_built_in_downs_each_have_their_up() {
        let ups = super::super::embedded::migrations::runner()
            .get_migrations()
            .clone();
        let downs = DownSet::embedded(&ups).unwrap();
        // V1 has none: reverting it would drop the whole schema.
        assert!(downs.get(1).is_none());
    }
}

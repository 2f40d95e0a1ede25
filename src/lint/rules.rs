//! Which squawk rules run, and how much each one matters to us.
//!
//! Rules held here:
//! - [`severity`] names every rule we enable; a rule squawk adds in a later
//!   release is not enabled until it is given a severity here (so an upgrade
//!   never starts blocking runs by surprise).
//! - Two rules are ours, not squawk's (`own_rules.rs`): [`TRUNCATE_TABLE`]
//!   (a plain `TRUNCATE` empties a table; squawk only flags one with
//!   `CASCADE`) and [`DROP_INDEX_CONCURRENTLY`] (it cannot run in the
//!   transaction refinery runs each migration in).

use squawk_linter::{Linter, Rule};

use super::Severity;

/// Our own rule: a `TRUNCATE` without `CASCADE`.
pub const TRUNCATE_TABLE: &str = "ban-truncate";
/// Our own rule: `DROP INDEX CONCURRENTLY` in a migration's transaction.
pub const DROP_INDEX_CONCURRENTLY: &str = "ban-concurrent-index-deletion-in-transaction";

/// Our severity for a squawk rule, or `None` when we do not run it.
pub fn severity(rule: Rule) -> Option<Severity> {
    use Rule::*;
    use Severity::{Error, Warning};
    Some(match rule {
        // Locks that stop the tenant's application (writes, often reads)
        // for a scan or a rewrite of the table.
        RequireConcurrentIndexCreation
        | RequireConcurrentIndexDeletion
        | BanConcurrentIndexCreationInTransaction
        | RequireConcurrentReindex
        | RequireConcurrentPartitionDetach
        | AddingNotNullableField
        | AddingRequiredField
        | ChangingColumnType
        | AddingForeignKeyConstraint
        | ConstraintMissingNotValid
        | DisallowedUniqueConstraint
        | AddingFieldWithDefault
        | AddingSerialPrimaryKeyField
        | BanAlterDomainWithAddConstraint
        // The application that is running still uses the old name.
        | RenamingColumn
        | RenamingTable
        | RenamingObject
        | BanSetSchema
        // Data, or something the application reads, is gone.
        | BanDropDatabase
        | BanDropTable
        | BanDropColumn
        | BanDropSchema
        | BanDropSequence
        | BanDropView
        | BanDropFunction
        | BanDropType
        | BanDropDomain
        | BanDropExtension
        | BanTruncateCascade
        // Refinery owns the transaction each migration runs in.
        | TransactionNesting
        | BanUncommittedTransaction => Error,
        // Style, or a change whose harm depends on the application.
        PreferBigintOverInt
        | PreferBigintOverSmallint
        | PreferIdentity
        | PreferRepack
        | PreferRobustStmts
        | PreferTextField
        | PreferTimestampTz
        | BanCharField
        | BanDropNotNull
        | BanDropDefault
        | BanDropConstraint
        | BanDropGeneratedExpression
        | BanAlterIdentity
        | BanCreateDomainWithConstraint
        | BanDuplicateColumnAssignments
        | RequireEnumValueOrdering
        | IdentifierTooLong => Warning,
        // Not run: the migrator sets lock_timeout and statement_timeout on
        // each tenant's session; the rest are squawk's opt-in rules.
        _ => return None,
    })
}

/// A rule that loses data when its statement runs.
pub fn is_destructive(rule: &str) -> bool {
    [
        Rule::BanDropDatabase,
        Rule::BanDropTable,
        Rule::BanDropColumn,
        Rule::BanDropSchema,
        Rule::BanDropSequence,
        Rule::BanTruncateCascade,
    ]
    .iter()
    .any(|r| r.to_string() == rule)
        || rule == TRUNCATE_TABLE
}

/// Every rule name this linter can report (what `acknowledge` may name),
/// sorted.
pub fn known() -> &'static [String] {
    static KNOWN: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let mut names: Vec<String> = enum_iterator::all::<Rule>()
            .filter(|r| severity(*r).is_some())
            .map(|r| r.to_string())
            .chain([TRUNCATE_TABLE, DROP_INDEX_CONCURRENTLY].map(String::from))
            .collect();
        names.sort();
        names
    });
    &KNOWN
}

/// Whether `name` is a rule this linter can report.
pub fn is_known(name: &str) -> bool {
    known().binary_search_by(|k| k.as_str().cmp(name)).is_ok()
}

/// A linter with the rules [`severity`] names, treating each file as run
/// inside a transaction (refinery runs each migration in one).
pub(super) fn linter() -> Linter {
    // squawk's default set is every rule but its opt-in ones; keep those we
    // give a severity.
    let mut linter = Linter::with_default_rules();
    linter.rules.retain(|r| severity(*r).is_some());
    linter.settings.assume_in_transaction = true;
    linter
}

//! The linter against dangerous statements, a safe migration and the
//! built-in tenant migrations.

use super::{has_errors, lint_file, rules, Finding, Severity};

fn errors(sql: &str) -> Vec<Finding> {
    lint_file("V2__change.sql", sql)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

/// Each dangerous statement sits on line 3, after a comment and a safe
/// statement, so the line is checked too.
fn assert_flagged(statement: &str, rule: &str) {
    let sql = format!("-- a change\nSELECT 1;\n{statement}\n");
    let found = errors(&sql);
    assert!(
        found.iter().any(|f| f.rule == rule && f.line == 3),
        "{statement:?} should be flagged {rule} on line 3, found {found:#?}"
    );
    assert!(has_errors(&found));
}

#[test]
fn a_plain_create_index_on_an_existing_table_is_an_error() {
    assert_flagged(
        "CREATE INDEX agents_name_idx ON agents (name);",
        "require-concurrent-index-creation",
    );
}

#[test]
fn a_concurrent_create_index_is_an_error_inside_a_migrations_transaction() {
    assert_flagged(
        "CREATE INDEX CONCURRENTLY agents_name_idx ON agents (name);",
        "ban-concurrent-index-creation-in-transaction",
    );
}

#[test]
fn a_plain_drop_index_is_an_error() {
    assert_flagged(
        "DROP INDEX agents_owner_idx;",
        "require-concurrent-index-deletion",
    );
}

#[test]
fn adding_a_not_null_column_without_a_default_is_an_error() {
    assert_flagged(
        "ALTER TABLE agents ADD COLUMN language text NOT NULL;",
        "adding-required-field",
    );
}

#[test]
fn setting_not_null_on_an_existing_column_is_an_error() {
    assert_flagged(
        "ALTER TABLE agents ALTER COLUMN owner SET NOT NULL;",
        "adding-not-nullable-field",
    );
}

#[test]
fn changing_a_column_type_is_an_error() {
    assert_flagged(
        "ALTER TABLE calls ALTER COLUMN duration TYPE bigint;",
        "changing-column-type",
    );
}

#[test]
fn adding_a_foreign_key_without_not_valid_is_an_error() {
    assert_flagged(
        "ALTER TABLE calls ADD CONSTRAINT calls_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id);",
        "adding-foreign-key-constraint",
    );
}

#[test]
fn adding_a_check_without_not_valid_is_an_error() {
    assert_flagged(
        "ALTER TABLE calls ADD CONSTRAINT calls_duration_positive CHECK (duration > 0);",
        "constraint-missing-not-valid",
    );
}

#[test]
fn adding_a_unique_constraint_without_using_index_is_an_error() {
    assert_flagged(
        "ALTER TABLE agents ADD CONSTRAINT agents_name_key UNIQUE (name);",
        "disallowed-unique-constraint",
    );
}

#[test]
fn a_volatile_default_on_a_new_column_is_an_error() {
    assert_flagged(
        "ALTER TABLE agents ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        "adding-field-with-default",
    );
}

#[test]
fn a_serial_primary_key_added_to_an_existing_table_is_an_error() {
    assert_flagged(
        "ALTER TABLE calls ADD PRIMARY KEY (id);",
        "adding-serial-primary-key-field",
    );
}

#[test]
fn renaming_a_column_is_an_error() {
    assert_flagged(
        "ALTER TABLE agents RENAME COLUMN name TO title;",
        "renaming-column",
    );
}

#[test]
fn renaming_a_table_is_an_error() {
    assert_flagged("ALTER TABLE agents RENAME TO bots;", "renaming-table");
}

#[test]
fn dropping_a_table_is_an_error_and_destructive() {
    assert_flagged("DROP TABLE calls;", "ban-drop-table");
    assert!(errors("DROP TABLE calls;")[0].is_destructive());
}

#[test]
fn dropping_a_column_is_an_error_and_destructive() {
    assert_flagged("ALTER TABLE calls DROP COLUMN owner;", "ban-drop-column");
    assert!(errors("ALTER TABLE calls DROP COLUMN owner;")[0].is_destructive());
}

#[test]
fn dropping_a_database_is_an_error() {
    assert_flagged("DROP DATABASE other;", "ban-drop-database");
}

#[test]
fn a_truncate_is_an_error_and_destructive_with_or_without_cascade() {
    assert_flagged("TRUNCATE calls;", rules::TRUNCATE_TABLE);
    assert_flagged("TRUNCATE calls CASCADE;", "ban-truncate-cascade");
    assert!(errors("TRUNCATE calls;")[0].is_destructive());
}

#[test]
fn style_rules_are_warnings_only() {
    let found = lint_file(
        "V3__style.sql",
        "CREATE TABLE notes (id int PRIMARY KEY, title varchar(20), at timestamp);\n",
    );
    for rule in [
        "prefer-bigint-over-int",
        "prefer-text-field",
        "prefer-timestamp-tz",
    ] {
        let f = found.iter().find(|f| f.rule == rule);
        assert_eq!(
            f.map(|f| f.severity),
            Some(Severity::Warning),
            "{rule} in {found:#?}"
        );
    }
    assert!(!has_errors(&found));
    assert!(found.iter().all(|f| !f.is_destructive()));
}

#[test]
fn a_safe_migration_is_clean() {
    let sql = "\
-- A new table, a nullable column, a constraint added NOT VALID then validated.
CREATE TABLE notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notes_created_idx ON notes (created_at);
ALTER TABLE agents ADD COLUMN language text;
ALTER TABLE agents ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE calls ADD CONSTRAINT calls_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id) NOT VALID;
";
    let found = lint_file("V2__safe.sql", sql);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn findings_name_the_file_and_the_column_of_the_statement() {
    let found = errors("SELECT 1;\n  DROP TABLE calls;\n");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        (found[0].file.as_str(), found[0].line, found[0].column),
        ("V2__change.sql", 2, 3)
    );
}

#[test]
fn acknowledgeable_rule_names_are_exactly_the_ones_reported() {
    assert!(rules::is_known("require-concurrent-index-creation"));
    assert!(rules::is_known(rules::TRUNCATE_TABLE));
    assert!(!rules::is_known("no-such-rule"));
    // Run by squawk elsewhere, but not here: the migrator sets the timeouts.
    assert!(!rules::is_known("require-lock-timeout"));
    // squawk's alias spelling is not a name we report.
    assert!(!rules::is_known("prefer-timestamptz"));
}

#[test]
fn every_built_in_tenant_migration_lints_without_an_error() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenant_template/migrations");
    let mut linted = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".sql") {
            continue;
        }
        let sql = std::fs::read_to_string(&path).unwrap();
        let found = lint_file(&name, &sql);
        assert!(!has_errors(&found), "{name}: {found:#?}");
        linted += 1;
    }
    assert!(linted >= 1, "no migrations read from {}", dir.display());
}

#[test]
fn a_file_cannot_silence_its_own_findings_with_squawk_directives() {
    for (directive, statement, rule) in [
        (
            "-- squawk-ignore require-concurrent-index-creation",
            "CREATE INDEX agents_name_idx ON agents (name);",
            "require-concurrent-index-creation",
        ),
        (
            "-- squawk-ignore-file",
            "DROP TABLE calls;",
            "ban-drop-table",
        ),
        (
            "-- squawk-disable-assume-in-transaction",
            "CREATE INDEX CONCURRENTLY agents_name_idx ON agents (name); SELECT 1;",
            "ban-concurrent-index-creation-in-transaction",
        ),
    ] {
        let found = errors(&format!("{directive}\n{statement}\n"));
        assert!(
            found.iter().any(|f| f.rule == rule && f.line == 2),
            "{directive:?} silenced {rule}: {found:#?}"
        );
    }
}

#[test]
fn a_concurrent_index_alone_in_its_file_is_still_an_error_as_the_migration_runs_in_a_transaction() {
    let found = errors("CREATE INDEX CONCURRENTLY agents_name_idx ON agents (name);\n");
    assert_eq!(
        found
            .iter()
            .map(|f| (f.rule.as_str(), f.line))
            .collect::<Vec<_>>(),
        vec![("ban-concurrent-index-creation-in-transaction", 1)],
        "{found:#?}"
    );
    let found = errors("DROP INDEX CONCURRENTLY agents_owner_idx;\n");
    assert!(
        found
            .iter()
            .any(|f| f.rule == rules::DROP_INDEX_CONCURRENTLY && f.line == 1),
        "{found:#?}"
    );
}

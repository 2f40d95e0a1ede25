//! The user-path rule: every setting in the README's configuration table is
//! started at least once through the real binary, set the way a user sets
//! it (an environment variable, and a TOML file too), with a valid example
//! value. `SETTINGS` (in `kit/user_path.rs`) gives each variable its example, the start that sets
//! it and what that start checks; the starts are in
//! `settings_user_path_starts.rs`. The table is read from README.md: a new
//! row without an entry here fails, naming the variable, and so does an
//! entry whose row is gone.

use std::collections::BTreeSet;

use crate::kit::user_path::{readme_variables, Check, SETTINGS};

#[test]
fn the_readme_table_reader_expands_sibling_and_variant_shorthand() {
    let readme = "intro\n## Configuration\n\n| variable | meaning | default |\n|---|---|---|\n\
        | `TENANT_PLANE_WEBHOOKS_URL`, `_SECRET`, `_MAX_ATTEMPTS` | x (`json`) | `12` |\n\
        | `TENANT_PLANE_ROUTER_STATEMENT_TIMEOUT_FREE_MS` (`_STANDARD_MS`, `_ENTERPRISE_MS`) | y | `1` |\n\
        | `TENANT_PLANE_LOG_FORMAT` | `text` or `json` | `text` |\n\
        \n## Command line\n| `TENANT_PLANE_NOT_A_ROW` | | |\n";
    assert_eq!(
        readme_variables(readme),
        [
            "TENANT_PLANE_WEBHOOKS_URL",
            "TENANT_PLANE_WEBHOOKS_SECRET",
            "TENANT_PLANE_WEBHOOKS_MAX_ATTEMPTS",
            "TENANT_PLANE_ROUTER_STATEMENT_TIMEOUT_FREE_MS",
            "TENANT_PLANE_ROUTER_STATEMENT_TIMEOUT_STANDARD_MS",
            "TENANT_PLANE_ROUTER_STATEMENT_TIMEOUT_ENTERPRISE_MS",
            "TENANT_PLANE_LOG_FORMAT",
        ]
    );
}

#[test]
fn every_variable_in_the_readme_configuration_table_has_an_example_start_and_every_entry_a_row() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let named: BTreeSet<String> = readme_variables(&readme).into_iter().collect();
    assert!(named.len() >= 40, "the table was not read: {named:?}");
    let entries: BTreeSet<&str> = SETTINGS.iter().map(|(var, ..)| *var).collect();
    for (var, _, _, check) in SETTINGS {
        assert!(
            !matches!(check, Check::Effect("")),
            "{var}: say what the start checks"
        );
    }
    assert_eq!(entries.len(), SETTINGS.len(), "a variable has two entries");
    let unstarted: Vec<&String> = named
        .iter()
        .filter(|var| !entries.contains(var.as_str()))
        .collect();
    assert!(
        unstarted.is_empty(),
        "README's configuration table names {unstarted:?}, which no start of the real binary sets: \
         give each an entry in SETTINGS (tests/api/kit/user_path.rs) with a valid example value"
    );
    let gone: Vec<&&str> = entries
        .iter()
        .filter(|var| !named.contains(**var))
        .collect();
    assert!(
        gone.is_empty(),
        "SETTINGS has entries for {gone:?}, which README's configuration table no longer names"
    );
}

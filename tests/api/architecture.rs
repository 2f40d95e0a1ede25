//! The architecture test: reads every `crate::` path under `src/` and holds
//! the layering that ARCHITECTURE.md describes. It fails on
//! - an import between top-level modules that the table below does not allow;
//! - a cycle between top-level modules;
//! - `startup` imported from anywhere but `cli/serve.rs`;
//! - a file in `src/` longer than 400 lines;
//! - in the tests, a file longer than 400 lines or a feature's test file
//!   importing another's (`architecture/test_files.rs`);
//! - a file under `src/api` naming the catalog, provisioner or router (`architecture/api_reach.rs`).
//!
//! The table is the rule: to add an arrow, add it here and say why in
//! ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod api_layers;
mod api_reach;
mod pg_connections;
mod test_files;

/// Each top-level module and the modules it may use, from the bottom layer up.
#[rustfmt::skip]
const ALLOWED: &[(&str, &[&str])] = &[
    // Foundation: values, settings, crypto, SQL, telemetry, local binaries, failpoints.
    ("domain", &["error_code"]),
    ("sql", &["error_code"]), ("crypto", &["error_code"]),
    ("config", &["crypto", "domain", "pg", "error_code"]),
    ("telemetry", &["config", "domain", "error_code"]),
    ("local_pg", &["error_code"]), ("pg", &["error_code"]), ("process", &[]), // process: a pid and its start
    ("failpoint", &["error_code"]),
    // Every error code a client can read: below every service; everyone may use it.
    ("error_code", &[]),
    ("route_notices", &["domain", "error_code"]),
    // Stores and tools, each over one kind of thing.
    ("catalog", &["config", "crypto", "domain", "pg", "sql", "error_code", "lint"]), // lint: a run's findings
    ("tenant_config", &["domain", "error_code"]),
    ("backup", &["config", "crypto", "domain", "error_code", "process"]),
    ("dump", &["local_pg", "pg", "sql", "error_code"]),
    ("migrator", &["domain", "pg", "sql", "telemetry", "error_code"]), ("lint", &["migrator"]), // lint: squawk over its files
    ("embedded", &["config", "crypto", "local_pg", "error_code", "wal_archive"]), // its WAL archiving
    ("wal_archive", &["local_pg", "pg", "error_code"]), // pgBackRest
    // Services over the stores.
    ("provisioner", &["catalog", "crypto", "domain", "migrator", "pg", "sql", "telemetry", "error_code"]),
    ("directory", &["catalog", "crypto", "domain", "pg", "error_code"]),
    ("operations", &["catalog", "control_audit", "domain", "pg", "error_code"]),
    ("idempotency", &["catalog", "error_code"]),
    ("control_audit", &["catalog", "domain", "telemetry", "error_code"]),
    ("events", &["catalog", "config", "pg", "error_code"]),
    ("auth", &["catalog", "config", "control_audit", "crypto", "domain", "error_code"]),
    ("data", &["domain", "sql", "tenant_config", "telemetry", "error_code"]),
    // Drift: describing schemas, and the expected schema per version (built
    // in a scratch database the provisioner makes).
    // Its fleet scans are operations, audited, with a failpoint (drift plumbing).
    ("drift", &[
        "catalog", "control_audit", "domain", "failpoint", "migrator", "operations", "pg", "provisioner",
        "sql", "telemetry", "error_code",
    ]),
    // A tenant's API keys and custom domains, as commands and queries.
    ("tenant_keys", &["auth", "catalog", "control_audit", "domain", "error_code"]),
    ("custom_domains", &["catalog", "control_audit", "domain", "error_code"]),
    // Orchestrators: a tenant made with its first admin; the router reads only through the directory.
    ("onboarding", &["control_audit", "domain", "tenant_keys", "tenants"]),
    ("router", &["config", "directory", "domain", "pg", "telemetry", "tenant_config", "error_code"]),
    ("gateway", &["auth", "catalog", "config", "control_audit", "domain", "pg", "router", "telemetry", "tenants", "usage"]), // the wire, metered
    // What the HTTP layer needs of the router, so that it never names it.
    ("tenancy", &["catalog", "domain", "router", "error_code"]),
    ("usage", &["catalog", "config", "domain", "error_code", "pg", "process", "provisioner", "tenant_config"]),
    ("servers", &[
        "catalog", "control_audit", "crypto", "domain", "pg", "provisioner", "route_notices", "error_code", "wal_archive",
    ]),
    ("fleet", &[
        "catalog", "control_audit", "domain", "failpoint", "migrator", "operations", "provisioner",
        "telemetry", "route_notices", "error_code", "lint",
    ]),
    ("tenants", &[
        "backup", "catalog", "config", "control_audit", "crypto", "domain", "dump", "failpoint", "migrator",
        "operations", "pg", "provisioner", "sql", "telemetry", "tenant_config", "route_notices", "error_code",
        "local_pg", "wal_archive", // point-in-time restore
    ]),
    ("reconciler", &[
        "catalog", "config", "control_audit", "domain", "drift", "failpoint", "fleet", "operations", "provisioner",
        "telemetry", "tenants", "route_notices", "error_code",
    ]),
    // The container that both the HTTP layer and the CLI build.
    ("services", &[
        "auth", "backup", "catalog", "config", "crypto", "fleet", "migrator", "operations",
        "provisioner", "reconciler", "servers", "tenants", "route_notices", "error_code",
        "tenant_keys", "custom_domains", "control_audit", "events", "idempotency", "lint",
        // Drift scans and their inspector (drift plumbing); the embedded WAL archive.
        "drift", "wal_archive", "local_pg", "usage", "onboarding",
    ]),
    // The HTTP layer: it owns AppState and every HTTP concern, and may use
    // anything below it.
    ("api", &[
        "auth", "backup", "config", "control_audit", "crypto", "custom_domains", "data",
        "directory", "domain", "dump", "error_code", "events", "fleet", "idempotency", "migrator",
        "operations", "pg", "reconciler", "servers", "services", "telemetry", "tenancy",
        "tenant_config", "tenant_keys", "tenants",
        // Drift reports and scans (drift plumbing); lint findings and rule names; PITR.
        "drift", "lint", "wal_archive", "usage", "onboarding",
    ]),
    ("startup", &[ // provisioner: what a gateway session checks of its login
        "api", "auth", "config", "control_audit", "directory", "events", "gateway", "provisioner",
        "router", "services", "telemetry", "route_notices", "error_code", "tenancy", "wal_archive",
    ]),
    // The command line: the services, never the HTTP layer; `serve` alone
    // starts the HTTP application through `startup`.
    ("cli", &[
        "auth", "backup", "catalog", "config", "control_audit", "domain", "embedded", "failpoint",
        "fleet", "reconciler", "servers", "services", "startup", "telemetry", "tenant_config",
        "tenants", "route_notices", "error_code",
        // `drift` (drift plumbing); `migrate --lint`; `server wal-archive`; `usage`.
        "drift", "lint", "wal_archive", "usage", "onboarding",
    ]),
];

/// Longest file allowed under `src/`, in lines.
const MAX_LINES: usize = 400;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None`: `lib.rs`, `main.rs`).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// One `crate::<module>` reference: the file, its line, and the module.
struct Reference {
    file: String,
    line: usize,
    module: String,
}

/// Every `crate::<module>` in the code of a file (comments are skipped).
fn references(file: &Path, relative: &str) -> Vec<Reference> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = &rest[..at];
            rest = &rest[at + "crate::".len()..];
            // `tenant_plane::crate::` never occurs; `$crate::` is a macro's.
            if before.ends_with('$') || before.ends_with(|c: char| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            let module: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !module.is_empty() {
                found.push(Reference {
                    file: relative.to_string(),
                    line: number + 1,
                    module,
                });
            }
        }
        // A multi-line `use crate::{a, b}` names modules on its own lines.
    }
    found.extend(grouped_uses(&text, relative));
    found
}

/// Modules named inside `use crate::{…}` groups.
fn grouped_uses(text: &str, relative: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut search = 0;
    while let Some(at) = text[search..].find("use crate::{") {
        let start = search + at + "use crate::{".len();
        let end = start + text[start..].find("};").unwrap_or(0);
        let line = text[..start].lines().count();
        let mut depth = 0;
        let mut item = String::new();
        for c in text[start..end].chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    push_item(&mut found, &item, relative, line);
                    item.clear();
                    continue;
                }
                _ => {}
            }
            if depth == 0 || c != '{' {
                item.push(c);
            }
        }
        push_item(&mut found, &item, relative, line);
        search = end.max(start);
    }
    found
}

fn push_item(found: &mut Vec<Reference>, item: &str, relative: &str, line: usize) {
    let module: String = item
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if !module.is_empty() && module != "self" {
        found.push(Reference {
            file: relative.to_string(),
            line,
            module,
        });
    }
}

struct Crate {
    modules: BTreeSet<String>,
    /// (from, to) → the references that make the arrow.
    arrows: BTreeMap<(String, String), Vec<String>>,
    long_files: Vec<String>,
    startup_users: Vec<String>,
}

fn read_crate() -> Crate {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut krate = Crate {
        modules: BTreeSet::new(),
        arrows: BTreeMap::new(),
        long_files: Vec::new(),
        startup_users: Vec::new(),
    };
    for file in &files {
        let relative_path = file.strip_prefix(&src).unwrap();
        let relative = relative_path.display().to_string();
        let lines = std::fs::read_to_string(file).unwrap().lines().count();
        if lines > MAX_LINES {
            krate
                .long_files
                .push(format!("src/{relative} ({lines} lines)"));
        }
        let Some(from) = module_of(relative_path) else {
            continue;
        };
        krate.modules.insert(from.clone());
        for reference in references(file, &relative) {
            if reference.module == from {
                continue;
            }
            let place = format!("src/{}:{}", reference.file, reference.line);
            if reference.module == "startup" && relative != "cli/serve.rs" {
                krate.startup_users.push(place.clone());
            }
            krate
                .arrows
                .entry((from.clone(), reference.module))
                .or_default()
                .push(place);
        }
    }
    krate
}

fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    ALLOWED
        .iter()
        .map(|(module, uses)| (*module, uses.iter().copied().collect()))
        .collect()
}

/// A cycle in `arrows`, as the modules along it, if there is one.
fn find_cycle(arrows: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        arrows: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in arrows.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|n| n == next).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, arrows, state, path) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in arrows.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(node, arrows, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn the_allowed_arrows_themselves_form_no_cycle_and_name_real_modules() {
    let krate = read_crate();
    let table: BTreeMap<String, BTreeSet<String>> = allowed()
        .into_iter()
        .map(|(m, uses)| (m.to_string(), uses.iter().map(|u| u.to_string()).collect()))
        .collect();
    assert_eq!(find_cycle(&table), None);
    let named: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(
        named, krate.modules,
        "the table and src/ must name the same top-level modules"
    );
}

#[test]
fn every_import_between_top_level_modules_is_an_allowed_arrow() {
    let krate = read_crate();
    let allowed = allowed();
    let mut wrong = Vec::new();
    for ((from, to), places) in &krate.arrows {
        let ok = allowed
            .get(from.as_str())
            .is_some_and(|uses| uses.contains(to.as_str()));
        if !ok {
            wrong.push(format!("{from} -> {to} at {}", places.join(", ")));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that the layering forbids:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_top_level_modules_import_each_other_in_no_cycle() {
    let krate = read_crate();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in krate.arrows.keys() {
        graph.entry(from.clone()).or_default().insert(to.clone());
    }
    if let Some(cycle) = find_cycle(&graph) {
        let first = krate
            .arrows
            .get(&(cycle[0].clone(), cycle[1].clone()))
            .map(|p| p.join(", "))
            .unwrap_or_default();
        panic!(
            "an import cycle: {} (first arrow at {first})",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn only_the_serve_command_reaches_the_http_application() {
    let krate = read_crate();
    assert!(
        krate.startup_users.is_empty(),
        "`startup` is for `cli/serve.rs` alone; also imported at {}",
        krate.startup_users.join(", ")
    );
}

#[test]
fn no_file_in_src_is_longer_than_400_lines() {
    let krate = read_crate();
    assert!(
        krate.long_files.is_empty(),
        "split these by verb: {}",
        krate.long_files.join(", ")
    );
}

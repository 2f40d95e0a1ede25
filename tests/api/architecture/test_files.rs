//! The rules for the tests themselves: no file in `tests/api` is longer than
//! 400 lines, and a feature's test file imports only from the test kit and
//! the infrastructure beside it, never from another feature's file (a
//! helper two features share belongs in `kit/`). The kit and the
//! infrastructure import no feature file either.

use std::path::{Path, PathBuf};

use super::{rust_files, MAX_LINES};

/// The modules any test file may import: the kit, the app and cluster
/// helpers, the crash rig, the TLS rig and the timing helpers.
const INFRASTRUCTURE: &[&str] = &["kit", "helpers", "cluster", "rig", "tls_rig", "timing"];

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api")
}

/// The top-level test module a file belongs to: `servers` for `servers.rs`
/// and `servers/…`; `None` for `main.rs`.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "main").then(|| name.to_string())
}

/// The top-level modules a file names after `crate::`, with their lines.
fn crate_modules(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        // Comment lines only: `//` also starts `s3://` in a string.
        let mut rest = if line.trim_start().starts_with("//") {
            ""
        } else {
            line
        };
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
        }
    }
    // `use crate::{a, b::c}` names modules inside braces, maybe over lines.
    let mut search = 0;
    while let Some(at) = text[search..].find("use crate::{") {
        let start = search + at + "use crate::{".len();
        let end = start + text[start..].find("};").unwrap_or(0);
        let line = text[..start].lines().count();
        let mut depth = 0;
        let mut item = String::new();
        for c in text[start..end].chars().chain([',']) {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push((line, name));
                    }
                    item.clear();
                    continue;
                }
                _ => {}
            }
            if depth == 0 {
                item.push(c);
            }
        }
        search = end;
    }
    found
}

#[test]
fn no_file_in_the_tests_is_longer_than_400_lines() {
    let mut files = Vec::new();
    rust_files(&tests_dir(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines})", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by noun: {}", long.join(", "));
}

#[test]
fn a_feature_test_imports_only_the_kit_and_the_infrastructure() {
    let root = tests_dir();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut wrong = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&root).unwrap();
        // The architecture test reads code, and quotes it.
        let Some(own) = module_of(relative).filter(|m| m != "architecture") else {
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        for (line, name) in crate_modules(&text) {
            if name != own && !INFRASTRUCTURE.contains(&name.as_str()) {
                wrong.push(format!("{}:{line} uses crate::{name}", relative.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a test file may import only {INFRASTRUCTURE:?}; move the helper to kit/:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_import_reader_sees_paths_and_groups() {
    let text = "use crate::kit::ok_json;\nuse crate::{\n    helpers::spawn_app,\n    servers::{a, b},\n};\nlet x = crate::moves::go();\n";
    let names: Vec<String> = crate_modules(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["kit", "moves", "helpers", "servers"]);
}

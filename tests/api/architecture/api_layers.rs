//! The layers inside `src/api`: `http/` is the plumbing every route shares
//! (bodies, extractors, middleware, the throttle, the principal, errors,
//! the spec), so it names none of the handler layers (`control/`, `data/`,
//! `console/`) nor the route table; those may use `http/`, and only the
//! route table (`routes.rs`) and the api root bring the layers together.

use super::{rust_files, src_dir};

/// What lies above the plumbing: the handler layers, the route table, and
/// the names the api root re-exports from the data plane.
const ABOVE_HTTP: &[&str] = &[
    "console",
    "control",
    "data",
    "routes",
    "document",
    "TenantContext",
    "TENANT_HEADER",
    "SUBTENANT_HEADER",
];

/// The names a file takes from `crate::api::…`, `super::super::…` aside
/// (the layer's own modules reach the root only by `crate::api`).
fn api_names(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::api::") {
            rest = &rest[at + "crate::api::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    found.push((number + 1, first_name(item)));
                }
            } else {
                found.push((number + 1, first_name(rest)));
            }
        }
    }
    found.retain(|(_, name)| !name.is_empty());
    found
}

fn first_name(text: &str) -> String {
    text.trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn the_http_plumbing_names_no_handler_layer_and_not_the_route_table() {
    let http = src_dir().join("api").join("http");
    let mut files = Vec::new();
    rust_files(&http, &mut files);
    files.sort();
    assert!(files.len() > 5, "src/api/http has its files");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let relative = file.strip_prefix(src_dir()).unwrap().display().to_string();
        for (line, name) in api_names(&text) {
            if ABOVE_HTTP.contains(&name.as_str()) {
                found.push(format!("src/{relative}:{line}: crate::api::{name}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the HTTP plumbing names a layer above it:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_reader_sees_paths_and_groups_of_api_names() {
    let text = "use crate::api::control::servers;\nuse crate::api::{ApiError, data::x};\n// crate::api::console\n";
    let names: Vec<String> = api_names(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["control", "ApiError", "data"]);
}

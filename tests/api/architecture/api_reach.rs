//! The HTTP layer reaches the application through its services only: no
//! file under `src/api` names the catalog, the provisioner or the router,
//! in code or in a type of a signature. A handler parses, calls one service
//! command or query, and answers; a type it must show (a catalog row in a
//! response) is re-exported by the service module that owns it.

use std::path::Path;

use super::{references, rust_files, src_dir};

/// The modules below the services, which the HTTP layer never names.
const BELOW_THE_SERVICES: &[&str] = &["catalog", "provisioner", "router"];

#[test]
fn no_file_under_src_api_names_the_catalog_the_provisioner_or_the_router() {
    let api = src_dir().join("api");
    let mut files = Vec::new();
    rust_files(&api, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(src_dir()).unwrap().display().to_string();
        for reference in references(file, &relative) {
            if BELOW_THE_SERVICES.contains(&reference.module.as_str()) {
                found.push(format!(
                    "src/{}:{}: crate::{}",
                    reference.file, reference.line, reference.module
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the HTTP layer names what lies below the services (call a service, or \
         use the type its service module re-exports):\n  {}",
        found.join("\n  ")
    );
    assert!(Path::new(&api).is_dir());
}

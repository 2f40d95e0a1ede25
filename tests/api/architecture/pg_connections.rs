//! Every PostgreSQL session is opened by the `pg` module, with the DSN's
//! TLS policy: `NoTls` or a hand-built manager or connect would skip it.

use super::{rust_files, src_dir};

#[test]
fn every_postgresql_connection_is_opened_by_the_pg_module_with_its_tls_policy() {
    // `NoTls` or a hand-built manager or connect would skip the DSN's
    // sslmode; only `pg::PgConfig::connect` and `::manager` open sessions.
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src_dir()).unwrap().display().to_string();
        if relative.starts_with("pg/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for needle in ["NoTls", "Manager::from_config", "tokio_postgres::connect("] {
                if code.contains(needle) {
                    found.push(format!("src/{relative}:{}: {needle}", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "connections opened around the TLS policy:\n  {}",
        found.join("\n  ")
    );
}

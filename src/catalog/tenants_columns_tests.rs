//! `tenant_from_row` trusts the `tenants` columns' CHECKs to be the rules of
//! `Slug` and `DbName`; these tests hold the two together, so a looser
//! CHECK in a later migration fails here rather than as a panic on read.

use crate::domain::{DbName, Slug, TenantId};

const V1: &str = include_str!("../../migrations/V1__catalog.sql");

fn all_migrations() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_slug_and_db_name_checks_are_the_newtypes_rules_and_no_migration_changes_them() {
    assert!(V1.contains("slug           text NOT NULL CHECK (slug ~ '^[a-z][a-z0-9-]{1,62}$')"));
    assert!(V1.contains("db_name        text CHECK (db_name ~ '^ai_care_tenant_[0-9a-f]{32}$')"));
    for (name, text) in all_migrations() {
        if name.starts_with("V1__") {
            continue;
        }
        let lower = text.to_lowercase();
        for column in ["slug", "db_name"] {
            assert!(
                !(lower.contains("alter table tenants")
                    && lower.contains(column)
                    && (lower.contains("constraint") || lower.contains("type"))),
                "{name} may change tenants.{column}: keep its CHECK the newtype's rule"
            );
        }
    }
}

#[test]
fn what_the_slug_check_admits_slug_parses_and_what_it_refuses_slug_refuses() {
    let ok = ["ab", "a-", "a1-b2", &format!("a{}", "b".repeat(62))];
    let refused = [
        "a",
        "1ab",
        "Ab",
        "a_b",
        "ab ",
        "",
        &format!("a{}", "b".repeat(63)),
    ];
    for s in ok {
        assert!(Slug::parse(s).is_ok(), "{s}");
    }
    for s in refused {
        assert!(Slug::parse(s).is_err(), "{s}");
    }
}

#[test]
fn every_name_the_db_name_check_admits_is_recognised_as_a_db_name() {
    let made = DbName::for_tenant(TenantId::generate());
    assert!(DbName::recognise(made.as_str()).is_some());
    assert!(DbName::recognise("ai_care_tenant_template").is_none());
    assert!(DbName::recognise(&format!("ai_care_tenant_{}", "f".repeat(32))).is_some());
    assert!(DbName::recognise(&format!("ai_care_tenant_{}", "g".repeat(32))).is_none());
}

use super::*;
use crate::drift::{ObjectKind, SchemaObject, Shape};

fn column(
    table: &str,
    name: &str,
    data_type: &str,
    not_null: bool,
    default: Option<&str>,
) -> SchemaObject {
    SchemaObject {
        name: format!("public.{table}.{name}"),
        shape: Shape::Column {
            schema: "public".into(),
            table: table.into(),
            column: name.into(),
            data_type: data_type.into(),
            collation: None,
            not_null,
            default: default.map(String::from),
            identity: None,
            generated: None,
        },
    }
}

fn index(name: &str, definition: &str) -> SchemaObject {
    SchemaObject {
        name: format!("public.{name}"),
        shape: Shape::Index {
            schema: "public".into(),
            index: name.into(),
            definition: definition.into(),
        },
    }
}

fn grant(table: &str, grantee: &str, privilege: &str, grantable: bool) -> SchemaObject {
    SchemaObject {
        name: format!("table public.{table} to {grantee}: {privilege}"),
        shape: Shape::Grant {
            target: "table".into(),
            schema: "public".into(),
            object: table.into(),
            arguments: None,
            grantee: grantee.into(),
            privilege: privilege.into(),
            grantable,
        },
    }
}

fn constraint(table: &str, name: &str, definition: &str) -> SchemaObject {
    SchemaObject {
        name: format!("public.{table}.{name}"),
        shape: Shape::Constraint {
            schema: "public".into(),
            table: table.into(),
            constraint: name.into(),
            definition: definition.into(),
        },
    }
}

fn sample() -> Vec<SchemaObject> {
    vec![
        column("calls", "status", "text", true, None),
        column("calls", "duration", "integer", false, Some("0")),
        index(
            "calls_owner_idx",
            "CREATE INDEX calls_owner_idx ON public.calls USING btree (owner)",
        ),
        grant("calls", "ai_care_tenant_app", "SELECT", false),
        constraint("calls", "calls_duration_check", "CHECK ((duration >= 0))"),
    ]
}

#[test]
fn the_fingerprint_depends_on_the_schema_not_on_the_order_objects_were_read_in() {
    let forward = SchemaSnapshot::from_objects(sample());
    let mut reversed = sample();
    reversed.reverse();
    let reversed = SchemaSnapshot::from_objects(reversed);
    assert_eq!(forward, reversed);
    assert_eq!(forward.fingerprint(), reversed.fingerprint());
    assert_eq!(forward.fingerprint().len(), 64);

    let mut changed = sample();
    changed[1] = column("calls", "duration", "bigint", false, Some("0"));
    assert_ne!(
        SchemaSnapshot::from_objects(changed).fingerprint(),
        forward.fingerprint()
    );
}

#[test]
fn a_snapshot_read_back_from_json_in_any_order_keeps_its_fingerprint() {
    let snapshot = SchemaSnapshot::from_objects(sample());
    let mut json = serde_json::to_value(&snapshot).unwrap();
    json["objects"].as_array_mut().unwrap().reverse();
    let back: SchemaSnapshot = serde_json::from_value(json).unwrap();
    assert_eq!(back, snapshot);
    assert_eq!(back.fingerprint(), snapshot.fingerprint());
    assert!(back
        .get(ObjectKind::Index, "public.calls_owner_idx")
        .is_some());
}

#[test]
fn equal_snapshots_have_no_difference() {
    let snapshot = SchemaSnapshot::from_objects(sample());
    assert!(diff(&snapshot, &snapshot.clone()).is_empty());
}

#[test]
fn added_missing_and_changed_objects_each_get_the_ddl_that_undoes_them() {
    let expected = SchemaSnapshot::from_objects(sample());
    let mut tenant = sample();
    tenant.retain(|o| o.name != "public.calls.calls_duration_check");
    tenant.push(index(
        "calls_status_idx",
        "CREATE INDEX calls_status_idx ON public.calls USING btree (status)",
    ));
    tenant[0] = column(
        "calls",
        "status",
        "character varying(20)",
        false,
        Some("'queued'::text"),
    );
    tenant.push(grant("calls", "PUBLIC", "DELETE", false));
    let tenant = SchemaSnapshot::from_objects(tenant);

    let found = diff(&expected, &tenant);

    let by_name = |name: &str| found.iter().find(|d| d.name == name).unwrap();
    assert_eq!(found.len(), 4, "{found:#?}");
    let missing = by_name("public.calls.calls_duration_check");
    assert_eq!(
        (missing.kind, missing.change),
        (ObjectKind::Constraint, DiffChange::Missing)
    );
    assert_eq!(
        missing.ddl.as_deref(),
        Some(
            r#"ALTER TABLE "public"."calls" ADD CONSTRAINT "calls_duration_check" CHECK ((duration >= 0))"#
        )
    );
    let added = by_name("public.calls_status_idx");
    assert_eq!(added.change, DiffChange::Added);
    assert_eq!(
        added.ddl.as_deref(),
        Some(r#"DROP INDEX "public"."calls_status_idx""#)
    );
    let changed = by_name("public.calls.status");
    assert_eq!(changed.change, DiffChange::Changed);
    assert_eq!(changed.expected.as_deref(), Some("text NOT NULL"));
    assert_eq!(
        changed.actual.as_deref(),
        Some("character varying(20) DEFAULT 'queued'::text")
    );
    assert_eq!(
        changed.ddl.as_deref(),
        Some(
            r#"ALTER TABLE "public"."calls" ALTER COLUMN "status" TYPE text, ALTER COLUMN "status" DROP DEFAULT, ALTER COLUMN "status" SET NOT NULL"#
        )
    );
    let public = by_name("table public.calls to PUBLIC: DELETE");
    assert_eq!(
        public.ddl.as_deref(),
        Some(r#"REVOKE DELETE ON TABLE "public"."calls" FROM PUBLIC"#)
    );
    // The diff is in kind order: columns before constraints, indexes, grants.
    let kinds: Vec<ObjectKind> = found.iter().map(|d| d.kind).collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(kinds, sorted);
}

#[test]
fn missing_columns_indexes_and_grants_are_created_again() {
    let expected = SchemaSnapshot::from_objects(sample());
    let found = diff(&expected, &SchemaSnapshot::default());
    assert_eq!(found.len(), 5);
    assert!(found
        .iter()
        .all(|d| d.change == DiffChange::Missing && d.actual.is_none()));
    let ddl = |name: &str| {
        found
            .iter()
            .find(|d| d.name == name)
            .unwrap()
            .ddl
            .clone()
            .unwrap()
    };
    assert_eq!(
        ddl("public.calls.duration"),
        r#"ALTER TABLE "public"."calls" ADD COLUMN "duration" integer DEFAULT 0"#
    );
    assert_eq!(
        ddl("public.calls_owner_idx"),
        "CREATE INDEX calls_owner_idx ON public.calls USING btree (owner)"
    );
    assert_eq!(
        ddl("table public.calls to ai_care_tenant_app: SELECT"),
        r#"GRANT SELECT ON TABLE "public"."calls" TO "ai_care_tenant_app""#
    );
}

#[test]
fn identifiers_in_ddl_are_quoted_whatever_they_hold() {
    let hostile = column("calls\"; DROP TABLE agents; --", "x", "text", false, None);
    let found = diff(
        &SchemaSnapshot::default(),
        &SchemaSnapshot::from_objects(vec![hostile]),
    );
    assert_eq!(
        found[0].ddl.as_deref(),
        Some(r#"ALTER TABLE "public"."calls""; DROP TABLE agents; --" DROP COLUMN "x""#)
    );
}

#[test]
fn a_changed_policy_is_dropped_and_created_as_expected() {
    let policy = |using: &str| SchemaObject {
        name: "public.calls.scope".into(),
        shape: Shape::Policy {
            schema: "public".into(),
            table: "calls".into(),
            policy: "scope".into(),
            command: "ALL".into(),
            permissive: true,
            roles: vec!["PUBLIC".into()],
            using: Some(using.into()),
            with_check: None,
        },
    };
    let expected = SchemaSnapshot::from_objects(vec![policy("(subtenant_id IS NULL)")]);
    let tenant = SchemaSnapshot::from_objects(vec![policy("true")]);
    let found = diff(&expected, &tenant);
    assert_eq!(
        found[0].ddl.as_deref(),
        Some(
            r#"DROP POLICY "scope" ON "public"."calls"; CREATE POLICY "scope" ON "public"."calls" AS PERMISSIVE FOR ALL TO PUBLIC USING ((subtenant_id IS NULL))"#
        )
    );
}

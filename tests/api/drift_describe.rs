//! Drift detection's core against real tenant databases: a fresh tenant is
//! in sync with the expected schema of its version; an out-of-band change
//! is found in the tenant that has it (and no other), as the right kind of
//! difference, with DDL that, run, brings the tenant back in sync.

use tenant_plane::drift::{DiffChange, DriftCheck, ObjectDiff, ObjectKind};

use crate::helpers::{spawn_app, TestApp};
use crate::kit::expected_schemas::{inspector, tenant_target};

/// Runs `sql` in the tenant's database as the cluster's superuser: the
/// out-of-band change an operator might make.
async fn run_in_tenant(app: &TestApp, id: &str, sql: &str) {
    let (_, db, _) = tenant_target(app, id).await;
    let client = app.server.connect(db.as_str()).await;
    client.batch_execute(sql).await.unwrap();
}

async fn check(app: &TestApp, inspector: &tenant_plane::drift::Inspector, id: &str) -> DriftCheck {
    let (server, db, version) = tenant_target(app, id).await;
    inspector.check(&server, &db, version).await.unwrap()
}

/// The one difference of `kind` named `name`; panics (showing all) if absent.
fn find<'a>(check: &'a DriftCheck, kind: ObjectKind, name: &str) -> &'a ObjectDiff {
    check
        .diff
        .iter()
        .find(|d| d.kind == kind && d.name == name)
        .unwrap_or_else(|| panic!("no {kind:?} {name} in {:#?}", check.diff))
}

/// Runs every difference's DDL in the tenant: removals first, dependents
/// (later kinds: grants, triggers) before what they depend on; then the rest
/// in the diff's order.
async fn repair(app: &TestApp, id: &str, check: &DriftCheck) {
    let added = check.diff.iter().filter(|d| d.change == DiffChange::Added);
    let rest = check.diff.iter().filter(|d| d.change != DiffChange::Added);
    for d in added.rev().chain(rest) {
        let ddl = d
            .ddl
            .as_deref()
            .unwrap_or_else(|| panic!("no DDL for {d:?}"));
        run_in_tenant(app, id, ddl).await;
    }
}

#[tokio::test]
async fn a_fresh_tenant_is_in_sync_with_the_expected_schema_of_its_version() {
    let app = spawn_app().await;
    let (id, _) = app.create_tenant_named("drift-fresh").await;
    let inspector = inspector(&app).await;

    let check = check(&app, &inspector, &id).await;

    assert!(check.in_sync, "{:#?}", check.diff);
    assert!(check.diff.is_empty());
    assert_eq!(check.fingerprint, check.expected_fingerprint);
    assert_eq!(check.fingerprint.len(), 64);
    let (_, _, version) = tenant_target(&app, &id).await;
    assert_eq!(check.version, version);
    assert!(version >= 1, "the tenant was migrated");
}

#[tokio::test]
async fn an_index_added_and_a_column_dropped_by_hand_are_found_in_that_tenant_alone() {
    let app = spawn_app().await;
    let (changed, _) = app.create_tenant_named("drift-index").await;
    let (untouched, _) = app.create_tenant_named("drift-untouched").await;
    let inspector = inspector(&app).await;
    run_in_tenant(
        &app,
        &changed,
        "CREATE INDEX calls_status_idx ON calls (status);
         ALTER TABLE audit_log DROP COLUMN user_agent;",
    )
    .await;

    let found = check(&app, &inspector, &changed).await;

    assert!(!found.in_sync);
    assert_ne!(found.fingerprint, found.expected_fingerprint);
    assert_eq!(found.diff.len(), 2, "{:#?}", found.diff);
    let index = find(&found, ObjectKind::Index, "public.calls_status_idx");
    assert_eq!(index.change, DiffChange::Added);
    assert_eq!(index.expected, None);
    assert!(index.actual.as_deref().unwrap().contains("(status)"));
    assert_eq!(
        index.ddl.as_deref(),
        Some(r#"DROP INDEX "public"."calls_status_idx""#)
    );
    let column = find(&found, ObjectKind::Column, "public.audit_log.user_agent");
    assert_eq!(column.change, DiffChange::Missing);
    assert_eq!(column.expected.as_deref(), Some("text"));
    assert_eq!(
        column.ddl.as_deref(),
        Some(r#"ALTER TABLE "public"."audit_log" ADD COLUMN "user_agent" text"#)
    );
    let other = check(&app, &inspector, &untouched).await;
    assert!(other.in_sync, "{:#?}", other.diff);

    // The DDL given is the repair.
    repair(&app, &changed, &found).await;
    let repaired = check(&app, &inspector, &changed).await;
    assert!(repaired.in_sync, "{:#?}", repaired.diff);
    assert_eq!(repaired.fingerprint, other.fingerprint);
}

#[tokio::test]
async fn policies_grants_and_defaults_changed_by_hand_are_found_with_ddl_that_repairs_them() {
    let app = spawn_app().await;
    let (changed, _) = app.create_tenant_named("drift-policy").await;
    let (untouched, _) = app.create_tenant_named("drift-policy-other").await;
    let inspector = inspector(&app).await;
    run_in_tenant(
        &app,
        &changed,
        r#"CREATE POLICY "open door" ON calls FOR SELECT USING (true);
           ALTER POLICY subtenant_scope ON agents USING (true);
           GRANT UPDATE ON audit_log TO ai_care_tenant_app;
           ALTER TABLE agents ALTER COLUMN configuration SET DEFAULT '{"a": 1}'::jsonb;"#,
    )
    .await;

    let found = check(&app, &inspector, &changed).await;

    assert_eq!(found.diff.len(), 4, "{:#?}", found.diff);
    let added = find(&found, ObjectKind::Policy, "public.calls.open door");
    assert_eq!(added.change, DiffChange::Added);
    assert_eq!(
        added.ddl.as_deref(),
        Some(r#"DROP POLICY "open door" ON "public"."calls""#)
    );
    let altered = find(&found, ObjectKind::Policy, "public.agents.subtenant_scope");
    assert_eq!(altered.change, DiffChange::Changed);
    assert!(altered.actual.as_deref().unwrap().contains("USING (true)"));
    assert!(altered
        .expected
        .as_deref()
        .unwrap()
        .contains("public.app_subtenant_id()"));
    let grant = find(
        &found,
        ObjectKind::Grant,
        "table public.audit_log to ai_care_tenant_app: UPDATE",
    );
    assert_eq!(grant.change, DiffChange::Added);
    assert_eq!(
        grant.ddl.as_deref(),
        Some(r#"REVOKE UPDATE ON TABLE "public"."audit_log" FROM "ai_care_tenant_app""#)
    );
    let default = find(&found, ObjectKind::Column, "public.agents.configuration");
    assert_eq!(default.change, DiffChange::Changed);
    assert_eq!(
        default.ddl.as_deref(),
        Some(
            r#"ALTER TABLE "public"."agents" ALTER COLUMN "configuration" SET DEFAULT '{}'::jsonb"#
        )
    );
    let other = check(&app, &inspector, &untouched).await;
    assert!(other.in_sync, "{:#?}", other.diff);

    repair(&app, &changed, &found).await;
    let repaired = check(&app, &inspector, &changed).await;
    assert!(repaired.in_sync, "{:#?}", repaired.diff);
}

#[tokio::test]
async fn row_level_security_switched_off_by_hand_is_drift_with_the_ddl_to_switch_it_on() {
    let app = spawn_app().await;
    let (changed, _) = app.create_tenant_named("drift-rls").await;
    let inspector = inspector(&app).await;
    run_in_tenant(
        &app,
        &changed,
        "ALTER TABLE calls DISABLE ROW LEVEL SECURITY",
    )
    .await;

    let found = check(&app, &inspector, &changed).await;

    let rls = find(&found, ObjectKind::RowSecurity, "public.calls");
    assert_eq!(rls.change, DiffChange::Missing);
    assert_eq!(
        rls.ddl.as_deref(),
        Some(
            r#"ALTER TABLE "public"."calls" ENABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY"#
        )
    );
    repair(&app, &changed, &found).await;
    assert!(check(&app, &inspector, &changed).await.in_sync);
}

#[tokio::test]
async fn objects_owned_by_another_administrator_are_not_drift() {
    let app = spawn_app().await;
    let (changed, _) = app.create_tenant_named("drift-owner").await;
    let inspector = inspector(&app).await;
    // Another server's migrating administrator would own them all.
    run_in_tenant(
        &app,
        &changed,
        "DO $$ BEGIN CREATE ROLE drift_other_admin NOLOGIN;
              EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         ALTER TABLE calls OWNER TO drift_other_admin;
         ALTER TABLE audit_log OWNER TO drift_other_admin;
         ALTER FUNCTION app_subtenant_id() OWNER TO drift_other_admin;",
    )
    .await;

    let found = check(&app, &inspector, &changed).await;

    assert!(found.in_sync, "{:#?}", found.diff);
    assert_eq!(found.fingerprint, found.expected_fingerprint);
}

#[tokio::test]
async fn a_function_replaced_and_a_trigger_added_by_hand_are_found_and_repaired() {
    let app = spawn_app().await;
    let (changed, _) = app.create_tenant_named("drift-trigger").await;
    let inspector = inspector(&app).await;
    run_in_tenant(
        &app,
        &changed,
        "CREATE OR REPLACE FUNCTION app_subtenant_id() RETURNS uuid
             LANGUAGE sql STABLE AS $$ SELECT NULL::uuid $$;
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
         CREATE TRIGGER calls_touch BEFORE UPDATE ON calls
             FOR EACH ROW EXECUTE FUNCTION touch();",
    )
    .await;

    let found = check(&app, &inspector, &changed).await;

    let replaced = find(&found, ObjectKind::Function, "public.app_subtenant_id()");
    assert_eq!(replaced.change, DiffChange::Changed);
    assert!(replaced
        .ddl
        .as_deref()
        .unwrap()
        .starts_with("CREATE OR REPLACE FUNCTION public.app_subtenant_id()"));
    let trigger = find(&found, ObjectKind::Trigger, "public.calls.calls_touch");
    assert_eq!(trigger.change, DiffChange::Added);
    assert_eq!(
        trigger.ddl.as_deref(),
        Some(r#"DROP TRIGGER "calls_touch" ON "public"."calls""#)
    );
    let function = find(&found, ObjectKind::Function, "public.touch()");
    assert_eq!(
        function.ddl.as_deref(),
        Some(r#"DROP FUNCTION "public"."touch"()"#)
    );
    // A new function is executable by PUBLIC unless revoked: a grant too.
    let grant = find(
        &found,
        ObjectKind::Grant,
        "function public.touch() to PUBLIC: EXECUTE",
    );
    assert_eq!(grant.change, DiffChange::Added);
    assert_eq!(found.diff.len(), 4, "{:#?}", found.diff);

    repair(&app, &changed, &found).await;
    let repaired = check(&app, &inspector, &changed).await;
    assert!(repaired.in_sync, "{:#?}", repaired.diff);
}

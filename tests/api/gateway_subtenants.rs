//! Subtenant sessions on the wire: a key held to a subtenant (or a login
//! naming one) runs as the subtenant's own login role, which the tenant
//! database's policies hold to its rows whatever the client sends.

use serde_json::json;

use crate::helpers::{spawn_app, TestApp};
use crate::kit::gateway::{connect, mint_key, refusal, sqlstate, tenant_database, tenant_with_key};
use crate::kit::servers::{move_tenant, register, server_of};

/// A subtenant of `root` and a subtenant_admin key held to it: (id, key).
async fn subtenant_with_key(app: &TestApp, root: &str, slug: &str) -> (String, String) {
    let sub = app.create_subtenant(root, slug).await;
    let id = sub["id"].as_str().unwrap().to_string();
    let key = mint_key(
        app,
        root,
        json!({ "name": slug, "role": "subtenant_admin", "subtenant_id": id }),
    )
    .await;
    (id, key)
}

/// Agents of each subtenant id (`None`: the tenant's own), as the whole
/// tenant sees them.
async fn agents_by_owner(db: &tokio_postgres::Client) -> Vec<(Option<uuid::Uuid>, i64)> {
    db.query(
        "SELECT subtenant_id, count(*) FROM agents GROUP BY 1 ORDER BY 1 NULLS FIRST",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test]
async fn a_subtenant_key_sees_and_changes_only_its_own_rows_whatever_it_sets_or_becomes() {
    let app = spawn_app().await;
    let (root, slug, admin_key) = tenant_with_key(&app, "wire-subs", "tenant_admin").await;
    let (a, a_key) = subtenant_with_key(&app, &root, "wire-subs-a").await;
    let (b, _) = subtenant_with_key(&app, &root, "wire-subs-b").await;
    let whole = connect(&app, &slug, &admin_key).await.unwrap();
    whole
        .batch_execute(&format!(
            "INSERT INTO agents (id, subtenant_id, name, type, owner) VALUES
               (gen_random_uuid(), NULL, 'the tenant''s', 'chat', 'wire'),
               (gen_random_uuid(), '{a}', 'a''s', 'chat', 'wire'),
               (gen_random_uuid(), '{b}', 'b''s', 'voice', 'wire')"
        ))
        .await
        .unwrap();
    let before = agents_by_owner(&whole).await;
    assert_eq!(before.len(), 3, "{before:?}");

    let sub = connect(&app, &slug, &a_key).await.unwrap();
    let seen = |sql: &'static str| {
        let sub = &sub;
        async move {
            sub.query_one(sql, &[])
                .await
                .map(|r| r.get::<_, i64>(0))
                .map_err(|e| e.to_string())
        }
    };
    assert_eq!(seen("SELECT count(*) FROM agents").await, Ok(1));
    let database = tenant_database(&app, &root).await;
    // Every way a client may change its scope or its role, then a look at
    // the sibling's and the tenant's rows: none shows one.
    let escapes = [
        format!("SET app.subtenant_id = '{b}'"),
        "SET app.subtenant_id = ''".to_string(),
        "RESET app.subtenant_id".to_string(),
        format!("SELECT set_config('app.subtenant_id', '{b}', false)"),
        format!("SET ROLE {database}"),
        "SET ROLE ai_care_tenant_app".to_string(),
        "RESET ROLE".to_string(),
        "DISCARD ALL".to_string(),
    ];
    for escape in &escapes {
        let _ = sub.batch_execute(escape).await;
        assert_eq!(
            seen("SELECT count(*) FROM agents WHERE subtenant_id IS DISTINCT FROM app_subtenant_id() OR subtenant_id IS NULL").await,
            Ok(0),
            "after {escape}"
        );
        assert_eq!(
            seen("SELECT count(*) FROM agents").await,
            Ok(1),
            "after {escape}"
        );
        let _ = sub.batch_execute("RESET ALL; RESET ROLE").await;
    }
    // A type of the session's own, which PostgreSQL finds before
    // pg_catalog's, made in the very transaction that looks.
    let mut shadowing = connect(&app, &slug, &a_key).await.unwrap();
    let tx = shadowing.transaction().await.unwrap();
    tx.batch_execute("CREATE DOMAIN pg_temp.text AS varchar(11)")
        .await
        .unwrap();
    let shadowed: i64 = tx
        .query_one("SELECT count(*) FROM agents", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        shadowed, 1,
        "a domain named text in pg_temp widened the scope"
    );
    tx.rollback().await.unwrap();
    let in_one = sub
        .batch_execute(&format!(
            "BEGIN; SET LOCAL app.subtenant_id = '{b}'; SET LOCAL ROLE {database}; \
             UPDATE agents SET name = 'taken' WHERE subtenant_id = '{b}' OR subtenant_id IS NULL; COMMIT"
        ))
        .await;
    assert!(
        in_one.is_ok(),
        "{in_one:?}: it changes nothing, but may run"
    );
    let authorization = sub
        .batch_execute(&format!("SET SESSION AUTHORIZATION {database}"))
        .await;
    assert_eq!(sqlstate(&authorization).as_deref(), Some("42501"));
    // Writing a row into another's scope is refused by the policy.
    let planted = sub
        .batch_execute(&format!(
            "INSERT INTO agents (id, subtenant_id, name, type, owner)
             VALUES (gen_random_uuid(), '{b}', 'planted', 'chat', 'wire')"
        ))
        .await;
    assert_eq!(sqlstate(&planted).as_deref(), Some("42501"));
    let moved = sub
        .batch_execute(&format!("UPDATE agents SET subtenant_id = '{b}'"))
        .await;
    assert_eq!(sqlstate(&moved).as_deref(), Some("42501"));
    sub.batch_execute("DELETE FROM agents WHERE name <> 'a''s'")
        .await
        .unwrap();
    // Its own rows it may change; nobody else's changed.
    sub.batch_execute("UPDATE agents SET name = 'a''s, renamed'")
        .await
        .unwrap();
    assert_eq!(agents_by_owner(&whole).await, before);
    let names: Vec<String> = whole
        .query("SELECT name FROM agents ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["a's, renamed", "b's", "the tenant's"]);
    let user: String = sub
        .query_one("SELECT session_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, format!("ai_care_sub_{}", a.replace('-', "")));
}

#[tokio::test]
async fn a_whole_tenant_key_may_name_a_subtenant_and_a_subtenant_key_may_not_name_its_sibling() {
    let app = spawn_app().await;
    let (root, slug, admin_key) = tenant_with_key(&app, "wire-named", "tenant_admin").await;
    let (a, a_key) = subtenant_with_key(&app, &root, "wire-named-a").await;
    let (_, b_key) = subtenant_with_key(&app, &root, "wire-named-b").await;
    let whole = connect(&app, &slug, &admin_key).await.unwrap();
    whole
        .batch_execute(&format!(
            "INSERT INTO agents (id, subtenant_id, name, type, owner) VALUES
               (gen_random_uuid(), '{a}', 'a''s', 'chat', 'wire'),
               (gen_random_uuid(), NULL, 'the tenant''s', 'chat', 'wire')"
        ))
        .await
        .unwrap();
    let named = connect(&app, &format!("{slug}.wire-named-a"), &admin_key)
        .await
        .unwrap();
    let row = named
        .query_one("SELECT count(*), min(name) FROM agents", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, String>(1)),
        (1, "a's".to_string())
    );
    // Its own subtenant by name is the same session; the sibling's is not.
    let own = connect(&app, &format!("{slug}.wire-named-a"), &a_key).await;
    assert!(own.is_ok(), "{:?}", own.err());
    let refused = refusal(&app, &format!("{slug}.wire-named-a"), &b_key).await;
    assert!(
        refused.starts_with("28000: this key is held to another subtenant"),
        "{refused}"
    );
    let refused = refusal(&app, &format!("{slug}.no-such-sub"), &admin_key).await;
    assert!(
        refused.starts_with("28000: the tenant has no subtenant \"no-such-sub\""),
        "{refused}"
    );
}

#[tokio::test]
async fn a_tenant_database_whose_policies_read_only_the_setting_refuses_subtenant_sessions() {
    let app = spawn_app().await;
    let (root, slug, _) = tenant_with_key(&app, "wire-old-schema", "tenant_admin").await;
    let (_, a_key) = subtenant_with_key(&app, &root, "wire-old-schema-a").await;
    let admin = app
        .server
        .connect(&tenant_database(&app, &root).await)
        .await;
    let v1 =
        "CREATE OR REPLACE FUNCTION public.app_subtenant_id() RETURNS uuid LANGUAGE sql STABLE \
              AS $$ SELECT nullif(current_setting('app.subtenant_id', true), '')::uuid $$";
    admin.batch_execute(v1).await.unwrap();
    let refused = refusal(&app, &slug, &a_key).await;
    assert!(
        refused.starts_with("28000: the tenant's database does not hold subtenant sessions"),
        "{refused}"
    );
    // V3's function, whose body each session parses again (with the types
    // it made itself), is refused too.
    let v3 = include_str!("../../tenant_template/migrations/V3__subtenant_logins.sql");
    admin.batch_execute(v3).await.unwrap();
    let refused = refusal(&app, &slug, &a_key).await;
    assert!(
        refused.starts_with("28000: ") && refused.ends_with("it needs tenant migration V6"),
        "{refused}"
    );
    // A login made while the schema held, whose session then ends after a
    // revert: the new session is checked, and serves no row.
    let v6 = include_str!("../../tenant_template/migrations/V6__subtenant_scope_parsed_once.sql");
    admin.batch_execute(v6).await.unwrap();
    let sub = connect(&app, &slug, &a_key).await.unwrap();
    sub.batch_execute("SELECT 1").await.unwrap();
    admin.batch_execute(v1).await.unwrap();
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
              WHERE datname = current_database() AND starts_with(usename::text, 'ai_care_sub_')",
        )
        .await
        .unwrap();
    // The client is told why, as at a login, and let go.
    let after = sub
        .query("SELECT count(*) FROM agents", &[])
        .await
        .expect_err("a session held by a setting served a row");
    let after = after.as_db_error().expect("the gateway's own message");
    assert_eq!(
        (after.code().code(), after.message()),
        ("28000", "the tenant's database does not hold subtenant sessions to their rows yet: it needs tenant migration V3")
    );
    assert!(sub.is_closed() || sub.simple_query("SELECT 1").await.is_err());
}

#[tokio::test]
async fn a_subtenant_client_goes_on_after_its_tenant_moves_away_and_back_to_a_server_that_dropped_its_login(
) {
    let app = crate::helpers::spawn_app_without_rate_limits().await;
    let (root, slug, _) = tenant_with_key(&app, "wire-sub-mover", "tenant_admin").await;
    let (_, a_key) = subtenant_with_key(&app, &root, "wire-sub-mover-a").await;
    let home = server_of(&app, &root).await;
    let extra = crate::cluster::start_extra();
    let away = register(&app, "pg-wire-sub-away", &extra, json!([])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sub = connect(&app, &slug, &a_key).await.unwrap();
    let insert = "INSERT INTO agents (id, subtenant_id, name, type, owner)
                  VALUES (gen_random_uuid(), app_subtenant_id(), 'a''s', 'chat', 'wire')";
    sub.batch_execute(insert).await.unwrap();
    for target in [&away, &home] {
        let op = move_tenant(&app, &root, target).await;
        assert_eq!(op["state"], "succeeded", "{op}");
        // Its next transaction, on the connection it has, on the new server
        // (where its login is made, or made again).
        let mut done = sub.batch_execute(insert).await;
        if done.is_err() {
            // The move ended the session serving it: one retry.
            done = sub.batch_execute(insert).await;
        }
        assert!(done.is_ok(), "on {target}: {done:?}");
    }
    let count: i64 = sub
        .query_one("SELECT count(*) FROM agents", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
}

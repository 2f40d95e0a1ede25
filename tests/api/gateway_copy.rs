//! COPY through the gateway: rows out, as applications export them, and a
//! COPY in, which PostgreSQL refuses on tables with row-level security
//! (every tenant table), leaves the client's connection ready for its next
//! statement.

use futures_util::StreamExt;

use crate::helpers::spawn_app;
use crate::kit::gateway::{connect, sqlstate, tenant_with_key};

async fn agents(db: &tokio_postgres::Client) -> i64 {
    db.query_one("SELECT count(*) FROM agents", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_application_copies_rows_out_and_goes_on_after_a_copy_in_the_server_refuses() {
    let app = spawn_app().await;
    let (_, slug, key) = tenant_with_key(&app, "wire-copy", "tenant_admin").await;
    let db = connect(&app, &slug, &key).await.unwrap();
    let before = agents(&db).await;

    for n in 0..3 {
        db.execute(
            "INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), $1, 'chat', 'wire')",
            &[&format!("copied-{n}")],
        )
        .await
        .unwrap();
    }
    // Out: the same rows.
    let out = db
        .copy_out(
            "COPY (SELECT name FROM agents WHERE name LIKE 'copied-%' ORDER BY name) TO STDOUT",
        )
        .await
        .unwrap();
    let chunks: Vec<_> = out.collect().await;
    let text: String = chunks
        .into_iter()
        .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(text, "copied-0\ncopied-1\ncopied-2\n");

    // Refused by the server, when it plans the COPY (a column that does not
    // exist) or runs it (row-level security): the client goes on.
    for (refused, code) in [
        ("COPY agents (id, nonsense) FROM STDIN", "42703"),
        ("COPY agents (id, name, type, owner) FROM STDIN", "0A000"),
        (
            "COPY audit_log (tenant_id, user_id, action, resource, result) FROM STDIN",
            "0A000",
        ),
    ] {
        // Not `copy_in`: tokio-postgres 0.7 sends a second Sync after a
        // COPY refused before copy mode, whose extra ReadyForQuery breaks
        // its own connection, gateway or not (rust-postgres PR #1337).
        let simple = db.batch_execute(refused).await;
        assert_eq!(sqlstate(&simple).as_deref(), Some(code), "{refused}");
        assert_eq!(agents(&db).await, before + 3, "after {refused}");
    }
}

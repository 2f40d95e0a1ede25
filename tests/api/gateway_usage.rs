//! What the gateway answers to besides its tenant's database: usage (each
//! transaction is a data-plane request of its root tenant, and a quota
//! breach makes a writer's transactions read-only) and the denial audit
//! (each refused login is counted like an HTTP 401 or 403).

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

use crate::helpers::{spawn_app_with, TestApp};
use crate::kit::gateway::{config, connect, mint_key, refusal, sqlstate, tenant_with_key};

/// A gateway client whose server notices are kept, in order.
async fn connect_hearing_notices(
    app: &TestApp,
    user: &str,
    key: &str,
) -> (tokio_postgres::Client, mpsc::UnboundedReceiver<String>) {
    let (client, mut connection) = config(app, user, key)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notice(notice) = message {
                let _ = tx.send(format!("{}: {}", notice.code().code(), notice.message()));
            }
        }
    });
    (client, rx)
}

/// The catalog's data-plane request count of `tenant`, every hour.
async fn data_requests(app: &TestApp, tenant: &str) -> i64 {
    app.catalog_db()
        .await
        .query_one(
            "SELECT coalesce(sum(requests_data), 0)::int8 FROM usage_hourly WHERE tenant_id = $1::text::uuid",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0)
}

const INSERT: &str =
    "INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'wire', 'chat', 'wire')";

#[tokio::test]
async fn gateway_transactions_are_metered_for_the_root_tenant_and_over_its_quota_a_writer_reads_but_cannot_write(
) {
    let app = spawn_app_with(|s| s.usage.flush_secs = 3600).await;
    let tenant = app
        .create_tenant(
            "wire-metered",
            json!({ "features": { "maxRequestsPerMonth": 5 } }),
        )
        .await;
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let key = mint_key(
        &app,
        &tenant_id,
        json!({ "name": "wire", "role": "tenant_admin" }),
    )
    .await;
    let (client, mut notices) = connect_hearing_notices(&app, "wire-metered", &key).await;
    // Five transactions: two statements on their own, a transaction of
    // three messages (BEGIN, INSERT, COMMIT), a statement prepared (its
    // own exchange) and executed.
    let mut client = client;
    client.batch_execute(INSERT).await.unwrap();
    client.batch_execute("SELECT 1").await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(INSERT).await.unwrap();
    tx.commit().await.unwrap();
    let count = client.prepare("SELECT count(*) FROM agents").await.unwrap();
    client.query_one(&count, &[]).await.unwrap();
    let usage = app.state().await.services().usage.clone();
    usage.flush().await;
    assert_eq!(data_requests(&app, &tenant_id).await, 5);

    // Five of five: over. The route hears of the breach within moments.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let attempt = client.batch_execute(INSERT).await;
        if attempt.is_err() {
            break attempt;
        }
        assert!(Instant::now() < deadline, "writes still accepted after 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sqlstate(&refused).as_deref(), Some("25006"), "{refused:?}");
    let warned = notices.recv().await.unwrap();
    assert!(
        warned.starts_with("01000: the tenant is over its requests_per_month quota (")
            && warned.contains("this transaction is read-only, and sees no audit entry, until"),
        "{warned}"
    );
    // Reads go on, on the same connection; turning the read-only default
    // off reaches the reader's missing privilege.
    let agents: i64 = client.query_one(&count, &[]).await.unwrap().get(0);
    assert_eq!(agents, 2);
    let escaping = client
        .batch_execute(&format!("BEGIN READ WRITE; {INSERT}; COMMIT"))
        .await;
    assert_eq!(
        sqlstate(&escaping).as_deref(),
        Some("42501"),
        "{escaping:?}"
    );
    client.batch_execute("ROLLBACK").await.ok();
    assert_eq!(
        client
            .query_one(&count, &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        2,
        "nothing written while over"
    );
    // The HTTP plane's counts and the wire's are one count: the breached
    // transactions were served, so they were counted too.
    usage.flush().await;
    assert!(data_requests(&app, &tenant_id).await > 5);
}

#[tokio::test]
async fn refused_gateway_logins_are_counted_for_the_audit_with_the_tenant_and_key_they_named_and_throttled_past_the_limit(
) {
    let app = spawn_app_with(|s| s.http.denials_per_minute = 4).await;
    let (tenant, slug, key) = tenant_with_key(&app, "wire-denied", "tenant_admin").await;
    let narrow = mint_key(
        &app,
        &tenant,
        json!({ "name": "agents only", "role": "tenant_admin", "permissions": [
            { "resource": "agents", "actions": ["read"], "scope": "tenant" },
        ] }),
    )
    .await;
    // Four refusals: within the minute's limit, each answered at once.
    for _ in 0..2 {
        refusal(&app, &slug, "tpk_0000_guessed").await;
    }
    refusal(&app, "no-such-tenant", &key).await;
    let forbidden = refusal(&app, &slug, &narrow).await;
    assert!(forbidden.starts_with("28000: "), "{forbidden}");
    // The fifth is past it: a second late, and counted as throttled.
    let started = Instant::now();
    refusal(&app, &slug, "tpk_0000_guessed").await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    // A genuine key is never refused for its address's denials.
    connect(&app, &slug, &key).await.expect("the tenant's key");

    let gateway: Vec<_> = app
        .denials()
        .await
        .into_iter()
        .filter(|(route, ..)| route == "gateway")
        .map(|(_, reason, tenant, count)| (reason, tenant, count))
        .collect();
    let named = |reason: &str, tenant: &str, count| (reason.to_string(), tenant.to_string(), count);
    assert_eq!(
        gateway,
        [
            named("forbidden", &tenant, 1),
            named("throttled", &tenant, 1),
            named("unauthenticated", "", 1),
            named("unauthenticated", &tenant, 2),
        ]
    );
    // The refusal after a proof names the key that proved it.
    let user: String = app
        .catalog_db()
        .await
        .query_one(
            "SELECT user_id FROM denials WHERE route = 'gateway' AND reason = 'forbidden'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(user.starts_with("apikey:"), "{user}");
}

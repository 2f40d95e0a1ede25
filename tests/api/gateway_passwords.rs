//! A client may change its own login's password: PostgreSQL lets a role do
//! that to itself. On a server that checks passwords (the TLS rig's, SCRAM
//! for every role but the superuser), the gateway's next session for that
//! login is refused; the gateway sets the password back and serves the
//! transaction. So the login's other clients are not locked out, and the
//! password the client chose stops opening PostgreSQL.

use tenant_plane::domain::DbName;
use tenant_plane::pg::PgConfig;

use crate::cluster;
use crate::helpers::{spawn_app_on, test_settings};
use crate::kit::gateway::{connect, tenant_database, tenant_with_key};
use crate::tls_rig::{error_chain, tls_server, TlsServer};

/// Logs in to the tenant's database directly, past the gateway.
async fn direct_login(tls: &TlsServer, user: &str, password: &str, db: &str) -> Result<(), String> {
    let url = format!(
        "postgres://{user}:{password}@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
        tls.port(),
        tls.ca_file.display()
    );
    match PgConfig::parse(&url).unwrap().connect().await {
        Ok(_) => Ok(()),
        Err(e) => Err(error_chain(&e)),
    }
}

#[tokio::test]
async fn a_client_that_changes_its_logins_password_locks_out_no_other_client_and_keeps_no_way_in() {
    let tls = tls_server();
    let (mut settings, _) = test_settings();
    let catalog_db = cluster::catalog_name("tls_passwords");
    settings.database_url = Some(
        tls.dsn(
            "localhost",
            &catalog_db,
            &format!("sslmode=verify-full&sslrootcert={}", tls.ca_file.display()),
        )
        .into(),
    );
    let app = spawn_app_on(settings, catalog_db, tls.extra.server.clone()).await;
    let (id, slug, key) = tenant_with_key(&app, "own-password", "tenant_admin").await;
    let database = tenant_database(&app, &id).await;
    let login = DbName::recognise(&database).unwrap().wire_writer();

    let first = connect(&app, &slug, &key).await.unwrap();
    first
        .batch_execute("ALTER ROLE CURRENT_USER PASSWORD 'chosen-by-a-client'")
        .await
        .unwrap();
    direct_login(&tls, &login, "chosen-by-a-client", &database)
        .await
        .expect("the rig checks passwords: the chosen one opens the server");
    // The first client holds a session, so the next client's needs a new
    // one, which the server refuses with the password the gateway knows.
    first.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let second = connect(&app, &slug, &key).await.unwrap();
    let served = second.simple_query("SELECT 1").await;
    assert!(served.is_ok(), "{served:?}");

    let refused = direct_login(&tls, &login, "chosen-by-a-client", &database)
        .await
        .expect_err("the chosen password still opens the server");
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    first.batch_execute("COMMIT").await.unwrap();
}

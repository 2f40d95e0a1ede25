//! The managed local PostgreSQL: first start initialises, a stop keeps the
//! data, and the next start finds it.

use secrecy::ExposeSecret;
use std::str::FromStr;
use tenant_plane::config::Settings;
use tenant_plane::embedded;

async fn connect(url: &secrecy::SecretString) -> tokio_postgres::Client {
    let config = tokio_postgres::Config::from_str(url.expose_secret()).unwrap();
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn the_embedded_cluster_starts_stops_and_starts_again_with_its_data_kept() {
    let data_dir = crate::kit::binary::open_folder();
    let settings = Settings {
        data_dir: data_dir.path().to_path_buf(),
        ..Settings::default()
    };

    let s = settings.clone();
    let started = tokio::task::spawn_blocking(move || embedded::start_cluster(&s))
        .await
        .unwrap()
        .unwrap();
    let (mut cluster, url) = (started.cluster, started.url);
    let postgres_url = cluster.dsn("postgres");
    let client = connect(&postgres_url).await;
    client
        .batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives a restart')")
        .await
        .unwrap();
    drop(client);
    let first_port = cluster.port();
    let pid_file = cluster.pgdata().join("postmaster.pid");
    assert!(pid_file.exists());
    tokio::task::spawn_blocking(move || {
        cluster.stop().unwrap();
        cluster
    })
    .await
    .unwrap();
    assert!(!pid_file.exists(), "a clean stop removes postmaster.pid");

    let s = settings.clone();
    let started = tokio::task::spawn_blocking(move || embedded::start_cluster(&s))
        .await
        .unwrap()
        .unwrap();
    let (cluster, url_again) = (started.cluster, started.url);
    let client = connect(&cluster.dsn("postgres")).await;
    let row = client.query_one("SELECT v FROM kept", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "survives a restart");
    // The password is generated once and kept; URLs differ only by port.
    assert_eq!(
        url.expose_secret().replace(&first_port.to_string(), ""),
        url_again
            .expose_secret()
            .replace(&cluster.port().to_string(), "")
    );
    // Password auth is on: a wrong password is refused.
    let wrong = format!(
        "host=127.0.0.1 port={} user=postgres password=wrong dbname=postgres",
        cluster.port()
    );
    assert!(tokio_postgres::connect(&wrong, tokio_postgres::NoTls)
        .await
        .is_err());
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

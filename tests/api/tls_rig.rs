//! A TLS-only PostgreSQL server for the TLS tests: a CA made at test time
//! (`kit::ca`), a server certificate for `localhost` only, `ssl = on`, and only
//! `hostssl` lines in `pg_hba.conf`.

use std::path::PathBuf;

use tenant_plane::pg::PgConfig;

use crate::cluster::{self, ExtraCluster};
pub use crate::kit::ca::TestCa;

/// A TLS-only server whose certificate names `localhost` (not 127.0.0.1),
/// signed by `ca`; and the CA's certificate in a file.
pub struct TlsServer {
    pub extra: ExtraCluster,
    pub ca: TestCa,
    pub ca_file: PathBuf,
    pub other_ca_file: PathBuf,
    _files: tempfile::TempDir,
}

/// Restarts the server with `ssl = on`, the given certificate and key,
/// and only `hostssl` lines in `pg_hba.conf`: a plain connection is
/// refused. The superuser comes in by trust (it has no password here);
/// every other role, tenant roles included, logs in with SCRAM.
fn require_tls(extra: &mut ExtraCluster, cert_pem: &str, key_pem: &str) {
    use std::os::unix::fs::PermissionsExt;
    extra.stop();
    let (pgdata, owner) = extra.pgdata_and_owner();
    let write = |name: &str, text: &str, mode: u32| {
        let path = pgdata.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        if let Some((uid, gid)) = owner {
            nix::unistd::chown(&path, Some(uid), Some(gid)).unwrap();
        }
    };
    write("server.crt", cert_pem, 0o644);
    write("server.key", key_pem, 0o600);
    write(
        "pg_hba.conf",
        concat!(
            "hostssl all postgres 127.0.0.1/32 trust\n",
            "hostssl all postgres ::1/128 trust\n",
            "hostssl all all 127.0.0.1/32 scram-sha-256\n",
            "hostssl all all ::1/128 scram-sha-256\n",
        ),
        0o600,
    );
    let conf = pgdata.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nssl = on\n");
    std::fs::write(&conf, text).unwrap();
    extra.restart();
}

pub fn tls_server() -> TlsServer {
    let ca = TestCa::new("tenant-plane test CA");
    let (cert, key) = ca.server_cert("localhost");
    let mut extra = cluster::start_extra();
    require_tls(&mut extra, &cert, &key);
    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let other_ca_file = files.path().join("other-ca.pem");
    std::fs::write(&other_ca_file, TestCa::new("another CA").pem).unwrap();
    TlsServer {
        extra,
        ca,
        ca_file,
        other_ca_file,
        _files: files,
    }
}

impl TlsServer {
    pub fn port(&self) -> u16 {
        self.extra.server.port()
    }

    /// A URL DSN to `db` as the superuser; `query` is the part after `?`.
    pub fn dsn(&self, host: &str, db: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/{db}?{query}", self.port())
    }

    pub async fn connect_error(&self, host: &str, query: &str) -> String {
        let config = PgConfig::parse(&self.dsn(host, "postgres", query)).unwrap();
        match config.connect().await {
            Ok(_) => panic!("connected with {query} to {host}"),
            Err(e) => error_chain(&e),
        }
    }

    /// A verify-full session, to look at the server from the inside.
    pub async fn inside(&self) -> tokio_postgres::Client {
        let query = format!("sslmode=verify-full&sslrootcert={}", self.ca_file.display());
        let config = PgConfig::parse(&self.dsn("localhost", "postgres", &query)).unwrap();
        let (client, connection) = config.connect().await.unwrap();
        tokio::spawn(connection);
        client
    }
}

pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

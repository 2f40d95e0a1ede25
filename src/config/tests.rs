#![allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error.

use figment::Jail;
use secrecy::ExposeSecret;

use super::{ConfigError, LogFormat, Settings};

fn load_in(jail: &Jail, file: Option<&str>) -> Result<Settings, ConfigError> {
    let _ = jail;
    Settings::load(file.map(std::path::Path::new))
}

#[test]
fn with_nothing_set_the_defaults_apply() {
    Jail::expect_with(|jail| {
        let s = load_in(jail, None).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(s.database_url.is_none() && s.jwt_secret.is_none());
        assert_eq!(s.http.max_body_bytes, 256 * 1024);
        Ok(())
    });
}

#[test]
fn the_environment_overrides_the_file_which_overrides_the_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tp.toml",
            "listen = \"127.0.0.1:9000\"\nlog_format = \"json\"\n[http]\nmax_body_bytes = 4096\nworkers = 3\n",
        )?;
        jail.set_env("TENANT_PLANE_HTTP_WORKERS", "5");
        jail.set_env(
            "TENANT_PLANE_DATABASE_URL",
            "postgres://u:pw@db.internal/catalog",
        );
        let s = load_in(jail, Some("tp.toml")).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.http.max_body_bytes, 4096);
        assert_eq!(s.http.workers, 5);
        assert_eq!(
            s.database_url.unwrap().expose_secret(),
            "postgres://u:pw@db.internal/catalog"
        );
        Ok(())
    });
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("TENANT_PLANE_EMBEDDED_PORT", "99999");
        let e = load_in(jail, None).unwrap_err();
        assert_eq!(e.setting, "embedded.port");
        assert_eq!(e.origin, "TENANT_PLANE_EMBEDDED_PORT");
        Ok(())
    });
}

#[test]
fn an_unknown_setting_in_the_file_is_refused() {
    Jail::expect_with(|jail| {
        jail.create_file("tp.toml", "[http]\nmax_body = 1\n")?;
        let e = load_in(jail, Some("tp.toml")).unwrap_err();
        assert_eq!(e.setting, "http.max_body");
        assert!(e.origin.ends_with("tp.toml"), "{e}");
        Ok(())
    });
}

#[test]
fn a_bad_database_url_is_refused_without_echoing_it() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "TENANT_PLANE_DATABASE_URL",
            "postgres://u:s3cr3t@host:notaport/db",
        );
        let e = load_in(jail, None).unwrap_err();
        assert_eq!(e.setting, "database_url");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        Ok(())
    });
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    Jail::expect_with(|jail| {
        jail.set_env("TENANT_PLANE_JWT_SECRET", "x".repeat(40) + "TOPSECRET");
        jail.set_env(
            "TENANT_PLANE_DATABASE_URL",
            "postgres://u:pw-TOPSECRET@h/db",
        );
        let s = load_in(jail, None).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("TOPSECRET"), "{debug}");
        Ok(())
    });
}

#[test]
fn test_harness_variables_are_not_settings() {
    Jail::expect_with(|jail| {
        jail.set_env("TENANT_PLANE_TEST_DATABASE_URL", "postgres://x@y/z");
        assert!(load_in(jail, None).is_ok());
        Ok(())
    });
}

#[test]
fn relative_paths_are_made_absolute_against_the_working_directory_once_at_load() {
    Jail::expect_with(|jail| {
        jail.set_env("TENANT_PLANE_MIGRATIONS_TENANT_DIR", "tenant_migrations");
        jail.set_env("TENANT_PLANE_EMBEDDED_BIN_DIR", "../pg/bin");
        let s = load_in(jail, None).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(s.data_dir, cwd.join(".tenant-plane"));
        assert_eq!(
            s.migrations.tenant_dir.as_deref(),
            Some(cwd.join("tenant_migrations").as_path())
        );
        assert_eq!(
            s.embedded.bin_dir.as_deref(),
            Some(cwd.join("../pg/bin").as_path())
        );
        assert!(s.paths_are_absolute());
        // The default fallback is absolute already and stays as it is.
        assert_eq!(
            s.embedded.fallback_dir,
            std::path::Path::new("/var/lib/tenant-plane")
        );
        Ok(())
    });
}

#[test]
fn a_relative_data_dir_from_the_file_is_taken_from_the_working_directory() {
    Jail::expect_with(|jail| {
        jail.create_file("tp.toml", "data_dir = \"state/tp\"\n")?;
        let s = load_in(jail, Some("tp.toml")).unwrap();
        assert_eq!(
            s.data_dir,
            std::env::current_dir().unwrap().join("state/tp")
        );
        Ok(())
    });
}

#[test]
fn settings_that_make_no_sense_are_refused_naming_the_setting_in_one_line() {
    let cases = [
        (
            "[reconciler]\nstale_after_secs = 0\n",
            "reconciler.stale_after_secs",
        ),
        (
            "[router]\nconnection_budget = 0\n",
            "router.connection_budget",
        ),
        ("[router]\nmax_pools = 0\n", "router.max_pools"),
        ("[router]\nmax_starting = 0\n", "router.max_starting"),
        (
            "[router]\nconnection_budget = 4\npool_size_enterprise = 10\n",
            "router.pool_size_enterprise",
        ),
        (
            "[router]\nconnection_budget = 4\npool_size_free = 5\n",
            "router.pool_size_free",
        ),
        ("[router]\npool_size_free = 0\n", "router.pool_size_free"),
        (
            "[router]\npool_size_standard = 1\nconnection_budget = 0\n",
            "router.connection_budget",
        ),
        (
            "[router]\nstatement_timeout_standard_ms = 0\n",
            "router.statement_timeout_standard_ms",
        ),
        (
            "[router]\nacquire_timeout_ms = 0\n",
            "router.acquire_timeout_ms",
        ),
        ("[retention]\naudit_days = 0\n", "retention.audit_days"),
        (
            "[http]\ndenials_per_minute = 0\n",
            "http.denials_per_minute",
        ),
        ("[http]\nmax_event_streams = 0\n", "http.max_event_streams"),
        ("[metrics]\ntoken = \"short\"\n", "metrics.token"),
        ("[catalog]\npool_size = 0\n", "catalog.pool_size"),
    ];
    for (toml, setting) in cases {
        Jail::expect_with(|jail| {
            jail.create_file("tp.toml", toml)?;
            let e = load_in(jail, Some("tp.toml")).unwrap_err();
            assert_eq!(e.setting, setting, "{toml}");
            let line = e.to_string();
            assert!(line.contains(setting) && !line.contains('\n'), "{line}");
            Ok(())
        });
    }
    // The defaults pass every check, and a small budget alone shrinks the
    // default pools to fit rather than refusing them.
    Jail::expect_with(|jail| {
        load_in(jail, None).unwrap();
        jail.create_file("small.toml", "[router]\nconnection_budget = 3\n")?;
        let s = load_in(jail, Some("small.toml")).unwrap();
        assert_eq!(s.router.pool_size(crate::domain::Tier::Enterprise), 3);
        assert_eq!(s.router.pool_size(crate::domain::Tier::Free), 2);
        Ok(())
    });
}

#[test]
fn the_master_key_can_come_from_a_file_outside_the_data_directory_but_not_from_both() {
    Jail::expect_with(|jail| {
        let key = "ab".repeat(32);
        jail.create_file("master.key", &format!("{key}\n"))?;
        jail.set_env("TENANT_PLANE_MASTER_KEY_FILE", "master.key");
        let s = load_in(jail, None).unwrap();
        assert_eq!(s.master_key.as_ref().unwrap().expose_secret(), key);
        assert!(s.master_key_file.as_ref().unwrap().is_absolute());
        jail.set_env("TENANT_PLANE_MASTER_KEY", &key);
        let e = load_in(jail, None).unwrap_err();
        assert_eq!(e.setting, "master_key_file");
        jail.clear_env();
        jail.create_file("short.key", "abcd")?;
        jail.set_env("TENANT_PLANE_MASTER_KEY_FILE", "short.key");
        let e = load_in(jail, None).unwrap_err();
        assert_eq!(e.setting, "master_key");
        assert!(!e.to_string().contains("abcd"), "{e}");
        Ok(())
    });
}

#[test]
fn a_catalog_url_with_verify_full_and_a_root_certificate_loads_in_both_libpq_forms() {
    Jail::expect_with(|jail| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        jail.create_file("ca.pem", &params.self_signed(&key).unwrap().pem())?;
        let ca = jail.directory().join("ca.pem");
        for url in [
            format!(
                "postgres://u@db.example/x?sslmode=verify-full&sslrootcert={}",
                ca.display()
            ),
            format!(
                "postgres://u@db.example/x?sslmode=verify-ca&sslrootcert={}",
                ca.display()
            ),
            format!(
                "host=db.example user=u dbname=x sslmode=verify-full sslrootcert='{}'",
                ca.display()
            ),
        ] {
            jail.set_env("TENANT_PLANE_DATABASE_URL", &url);
            load_in(jail, None).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        jail.set_env(
            "TENANT_PLANE_DATABASE_URL",
            "postgres://u@db/x?sslmode=sometimes",
        );
        let e = load_in(jail, None).unwrap_err();
        assert!(e.to_string().contains("sslmode"), "{e}");
        Ok(())
    });
}

#[test]
fn an_s3_ca_file_that_is_missing_or_holds_no_certificate_is_refused_and_names_the_setting() {
    Jail::expect_with(|jail| {
        jail.set_env("TENANT_PLANE_BACKUP_S3_CA_FILE", "/nonexistent/ca.pem");
        let missing = load_in(jail, None).unwrap_err().to_string();
        assert!(missing.contains("backup.s3_ca_file"), "{missing}");
        jail.create_file("ca.pem", "not a certificate")?;
        jail.set_env("TENANT_PLANE_BACKUP_S3_CA_FILE", "ca.pem");
        let empty = load_in(jail, None).unwrap_err().to_string();
        assert!(empty.contains("no PEM certificate"), "{empty}");
        jail.create_file(
            "ca.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )?;
        let s = load_in(jail, None).unwrap();
        assert!(s.backup.s3_ca_file.is_some());
        Ok(())
    });
}

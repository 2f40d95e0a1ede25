//! The copy programs as children: what they inherit, and what of their
//! failure leaves the module. A stand-in `pg_dump` (a shell script) writes
//! its environment where the dump would go and fails the way a real one
//! does, naming a host, a user and a path.

use std::os::unix::fs::PermissionsExt;

use super::{DumpError, DumpTools, FailureClass};

const FAKE_PG_DUMP: &str = r#"#!/bin/sh
# Arguments: --format=custom --no-owner --file OUT ...
env > "$4"
echo 'pg_dump: error: connection to server at "db7.internal.example" (10.1.2.3), port 5432 failed: FATAL:  password authentication failed for user "tp_admin_x"' >&2
echo 'pg_dump: detail: reading /var/lib/secret-path/file' >&2
exit 1
"#;

fn fake_tools(dir: &std::path::Path) -> DumpTools {
    let script = dir.join("pg_dump");
    std::fs::write(&script, FAKE_PG_DUMP).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    DumpTools {
        pg_dump: script.clone(),
        pg_restore: script,
    }
}

#[tokio::test]
async fn a_dump_program_gets_none_of_the_services_secrets_and_its_stderr_stays_in_the_log() {
    // Variables of the kind the service holds, in this process's environment
    // (not named TENANT_PLANE_*: the settings tests running beside this one
    // would read them as unknown settings).
    std::env::set_var("SERVICE_DUMP_TEST_MASTER_KEY", "marker-master-key");
    std::env::set_var("AWS_DUMP_TEST_SECRET_ACCESS_KEY", "marker-s3-key");
    let dir = tempfile::tempdir().unwrap();
    let tools = fake_tools(dir.path());
    let config = crate::pg::PgConfig::parse(
        "host=127.0.0.1 port=1 user=tp_admin_x password=pw-for-the-child dbname=tenant_x sslmode=disable",
    )
    .unwrap();
    let out = dir.path().join("env.txt");
    let err = tools.dump(&config, &out).await.unwrap_err();

    let env = std::fs::read_to_string(&out).unwrap();
    for line in env.lines() {
        assert!(
            !line.starts_with("TENANT_PLANE_") && !line.starts_with("AWS_"),
            "the child inherited {line}"
        );
    }
    assert!(!env.contains("marker-"), "{env}");
    // What it needs is there: its password, its settings, a PATH.
    assert!(env.contains("PGPASSWORD=pw-for-the-child"), "{env}");
    assert!(env.contains("PGAPPNAME=tenant-plane-dump"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");

    assert!(
        matches!(
            &err,
            DumpError::Failed { program, exit, class: Some(FailureClass::InvalidAuthorization) }
                if program == "pg_dump" && exit == "exit 1"
        ),
        "{err:?}"
    );
    let shown = err.to_string();
    assert_eq!(shown, "pg_dump failed (exit 1, invalid_authorization)");
    for leak in [
        "db7.internal",
        "10.1.2.3",
        "tp_admin_x",
        "/var/lib",
        "pg_dump:",
        "FATAL",
    ] {
        assert!(!shown.contains(leak), "{shown}");
    }
}

#[test]
fn failure_classes_are_recognised_from_the_programs_messages() {
    let cases = [
        ("pg_dump: error: connection to server at \"h\" (1.2.3.4), port 1 failed: Connection refused", Some(FailureClass::ConnectionFailure)),
        ("pg_dump: error: connection to server at \"h\", port 5432 failed: FATAL:  database \"x\" does not exist", Some(FailureClass::UndefinedObject)),
        ("pg_dump: error: query failed: ERROR:  permission denied for table agents", Some(FailureClass::InsufficientPrivilege)),
        ("pg_restore: error: could not write to output file: No space left on device", Some(FailureClass::DiskFull)),
        ("pg_dump: error: aborting because of server version mismatch", Some(FailureClass::VersionMismatch)),
        ("pg_restore: error: something new", None),
    ];
    for (stderr, class) in cases {
        assert_eq!(FailureClass::recognise(stderr), class, "{stderr}");
    }
}

//! The first run as a newcomer makes it: `serve` with the default, relative
//! data directory, started from a fresh folder that the `postgres` user may
//! not enter (a clone under `/root`, or in a `mktemp -d` folder, is mode
//! 700), and the CLI run from the same folder afterwards.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::kit::binary::open_folder;
use crate::kit::binary::{command, run, serve, terminate};

/// A folder as `mktemp -d` makes it: mode 700, owned by whoever runs the tests.
fn closed_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn running_as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// The PGDATA of a data directory: in place, or behind its `cluster` link.
fn pgdata_of(data_dir: &Path) -> std::path::PathBuf {
    let link = data_dir.join("cluster");
    if link.is_symlink() {
        link.join("postgres")
    } else {
        data_dir.join("postgres")
    }
}

async fn create_acme(base: &str, token: &str) {
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "name": "Acme", "slug": "acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn tenant_slugs(base: &str, token: &str) -> Vec<String> {
    let page: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1/tenants"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn serve_with_the_default_relative_data_dir_in_a_closed_folder_works_and_the_cli_finds_it() {
    let checkout = closed_folder();
    let fallback = open_folder();
    let in_checkout = || {
        let mut cmd = command();
        cmd.current_dir(checkout.path())
            .env("TENANT_PLANE_EMBEDDED_FALLBACK_DIR", fallback.path());
        cmd
    };

    let mut first = serve(&mut in_checkout()).await;
    let token = first.token.clone().expect("a first start prints a token");
    create_acme(&first.base, &token).await;
    let (code, stdout, stderr) = run(in_checkout().args(["tenant", "list"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("acme"), "{stdout}");
    terminate(&mut first.child).await;

    let data_dir = checkout.path().join(".tenant-plane");
    assert!(
        data_dir.join("secrets").is_dir(),
        "the data directory is where the README says"
    );
    let pgdata = pgdata_of(&data_dir);
    assert!(pgdata.join("PG_VERSION").is_file(), "{}", pgdata.display());
    assert!(
        !pgdata.join("postmaster.pid").exists(),
        "PostgreSQL stopped with the service"
    );
    if running_as_root() {
        // The postgres user cannot enter the closed folder: the cluster
        // lives in the fallback, linked from the data directory, which it names.
        let home = std::fs::canonicalize(data_dir.join("cluster")).unwrap();
        assert!(home.starts_with(std::fs::canonicalize(fallback.path()).unwrap()));
        let owner = std::fs::read_to_string(home.join("data-dir")).unwrap();
        assert_eq!(owner.trim(), data_dir.display().to_string());
        let mode = std::fs::metadata(checkout.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o700,
            "the folder's permissions were not touched"
        );
    }

    // The second start finds the same cluster and secret.
    let mut second = serve(&mut in_checkout()).await;
    assert_eq!(second.token, None, "only the first start prints a token");
    assert_eq!(tenant_slugs(&second.base, &token).await, ["acme"]);
    terminate(&mut second.child).await;
}

#[tokio::test]
async fn serve_and_the_cli_resolve_a_relative_data_dir_and_backup_path_from_a_subdirectory() {
    let checkout = closed_folder();
    let fallback = open_folder();
    let sub = checkout.path().join("deploy");
    std::fs::create_dir(&sub).unwrap();
    let in_sub = || {
        let mut cmd = command();
        cmd.current_dir(&sub)
            .env("TENANT_PLANE_DATA_DIR", "../state")
            .env("TENANT_PLANE_EMBEDDED_FALLBACK_DIR", fallback.path());
        cmd
    };

    let mut serving = serve(&mut in_sub()).await;
    let token = serving.token.clone().expect("a token");
    create_acme(&serving.base, &token).await;
    assert!(checkout.path().join("state/secrets").is_dir());

    let (code, stdout, stderr) = run(in_sub().args(["tenant", "list", "--json"])).await;
    assert_eq!(code, 0, "{stderr}");
    let page: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let id = page["tenants"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(page["tenants"][0]["slug"], "acme");

    // A relative --out is written where the command was run.
    let (code, _, stderr) =
        run(in_sub().args(["backup", "--tenant", &id, "--out", "acme.tpbackup"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(sub.join("acme.tpbackup").is_file());
    terminate(&mut serving.child).await;
    assert!(!pgdata_of(&checkout.path().join("state"))
        .join("postmaster.pid")
        .exists());
}

#[tokio::test]
async fn a_data_dir_the_postgres_user_cannot_reach_anywhere_stops_serve_with_one_line_naming_it() {
    if !running_as_root() {
        eprintln!("skipped: only a root process hands the cluster to the postgres user");
        return;
    }
    let checkout = closed_folder();
    // The fallback is inside a closed folder too.
    let closed_fallback = closed_folder();
    let (code, _, stderr) = run(command()
        .current_dir(checkout.path())
        .env("TENANT_PLANE_EMBEDDED_FALLBACK_DIR", closed_fallback.path())
        .arg("serve"))
    .await;
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&checkout.path().display().to_string())
            && lines[0].contains("TENANT_PLANE_DATA_DIR"),
        "{stderr}"
    );
}

//! The environment a PostgreSQL program is started with. Children start
//! from a cleared environment: the service's own (master key, JWT secret,
//! S3 keys, catalog URL) would otherwise be readable in the child's
//! `/proc/<pid>/environ` by its user, `postgres` included.

use std::ffi::OsString;

/// Variables a child keeps from this process: where programs are, the
/// home directory, the locale and the time zone. Callers add the `PG*`
/// variables they mean to set.
pub fn child_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| name.to_str().is_some_and(kept))
        .collect()
}

fn kept(name: &str) -> bool {
    matches!(
        name,
        "PATH" | "HOME" | "LANG" | "LANGUAGE" | "TZ" | "TMPDIR"
    ) || name.starts_with("LC_")
}

#[cfg(test)]
mod tests {
    use super::kept;

    #[test]
    fn a_child_keeps_the_path_and_locale_and_none_of_the_services_secrets() {
        for name in ["PATH", "HOME", "LANG", "LC_ALL", "LC_MESSAGES", "TZ"] {
            assert!(kept(name), "{name}");
        }
        for name in [
            "TENANT_PLANE_MASTER_KEY",
            "TENANT_PLANE_JWT_SECRET",
            "TENANT_PLANE_DATABASE_URL",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "PGPASSWORD",
            "DATABASE_URL",
        ] {
            assert!(!kept(name), "{name}");
        }
    }
}

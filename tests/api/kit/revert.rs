//! Revert resources: a V2 with a down migration that also counts its runs
//! (a row in `revert_log`, a table the down leaves in place), and what a
//! tenant database says about it.

use crate::helpers::TestApp;

/// V2 adds a column, and the table the down writes a row into.
pub const V2_UP: &str = "ALTER TABLE agents ADD COLUMN language text;
CREATE TABLE IF NOT EXISTS revert_log (at timestamptz NOT NULL DEFAULT now());";

/// V2's down: counts itself, then drops the column (destructive, line 2).
pub const V2_DOWN: &str = "INSERT INTO revert_log DEFAULT VALUES;
ALTER TABLE agents DROP COLUMN language;";

/// V3 adds another column; its down drops it.
pub const V3_UP: &str = "ALTER TABLE agents ADD COLUMN notes text;";
pub const V3_DOWN: &str = "ALTER TABLE agents DROP COLUMN notes;";

/// The files of V2 (and its down), for `migrations_dir`.
pub const V2: [(&str, &str); 2] = [
    ("V2__agent_language", V2_UP),
    ("V2__agent_language.down", V2_DOWN),
];

/// A tenant database's highest applied version, whether `agents.language`
/// is there, and how many times V2's down ran in it.
pub async fn tenant_state(app: &TestApp, db: &str) -> (i32, bool, i64) {
    let client = app.server.connect(db).await;
    let version: i32 = client
        .query_one("SELECT max(version) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    let column = client
        .query_opt(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'agents' AND column_name = 'language'",
            &[],
        )
        .await
        .unwrap()
        .is_some();
    let has_log: bool = client
        .query_one("SELECT to_regclass('revert_log') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    let downs = if has_log {
        client
            .query_one("SELECT count(*) FROM revert_log", &[])
            .await
            .unwrap()
            .get(0)
    } else {
        0
    };
    (version, column, downs)
}

/// The catalog's recorded schema version of a tenant.
pub async fn recorded_version(app: &TestApp, tenant: &str) -> i32 {
    let id: uuid::Uuid = tenant.parse().unwrap();
    app.catalog_db()
        .await
        .query_one("SELECT schema_version FROM tenants WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

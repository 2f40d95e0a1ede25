//! Which SQL may leave state in a session past its transaction: a `SET`, a
//! temporary table, a cursor held open, an advisory lock, `LISTEN`. A
//! session that ran any is reset before its next transaction; one that ran
//! only plain reads and writes is not, which spares every such transaction
//! the reset's round of seven statements.
//!
//! Rule: anything not recognised as plain leaves state. A statement is
//! plain when its first word is one of `PLAIN` (or `SET LOCAL`/`SET
//! TRANSACTION`) and its text names none of `MARKERS`. Pools are per tenant
//! and login role, so what a missed case could leave reaches only another
//! client of the same tenant and role, never another tenant.

/// First words of statements that leave nothing past their transaction.
const PLAIN: &[&str] = &[
    "select",
    "insert",
    "update",
    "delete",
    "merge",
    "with",
    "values",
    "table",
    "begin",
    "start",
    "commit",
    "end",
    "rollback",
    "abort",
    "savepoint",
    "release",
    "truncate",
    "lock",
    "copy",
    "notify",
    "show",
];

/// Text that makes even a plain statement leave state: session settings
/// set from a query, advisory locks (`pg_try_advisory_lock` too),
/// temporary tables made by `SELECT INTO`, connections `dblink` keeps, and
/// names spelled in Unicode escapes (`U&"…"`), which could hide any of
/// these.
const MARKERS: &[&str] = &["set_config", "advisory", "temp", "dblink", "u&"];

/// Whether running `sql` (one query string, perhaps several statements)
/// may leave state in the session after its transaction.
pub(super) fn leaves_state(sql: &str) -> bool {
    lowercase(sql, |lower| {
        MARKERS.iter().any(|m| lower.contains(m))
            || lower.split(';').any(|statement| !plain(statement))
    })
}

/// Whether a query may drop or make prepared statements by name
/// (`DEALLOCATE`, `DISCARD`, `PREPARE`), which the gateway's own may be.
/// Asked only of a query that leaves state: none is plain.
pub(super) fn forgets_statements(sql: &str) -> bool {
    lowercase(sql, |lower| {
        lower.contains("deallocate") || lower.contains("discard") || lower.contains("prepare")
    })
}

/// Runs `f` on `sql` in ASCII lower case. Every query the gateway relays
/// is read this way, so a short one is copied to the stack, not the heap.
fn lowercase<R>(sql: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut stack = [0u8; 1024];
    match stack.get_mut(..sql.len()) {
        Some(buf) => {
            buf.copy_from_slice(sql.as_bytes());
            buf.make_ascii_lowercase();
            // ASCII lower-casing leaves UTF-8 valid.
            f(std::str::from_utf8(buf).unwrap_or_default())
        }
        None => f(&sql.to_ascii_lowercase()),
    }
}

fn plain(statement: &str) -> bool {
    let mut words = words(statement);
    match words.next() {
        None => true,
        Some("set") => matches!(words.next(), Some("local" | "transaction")),
        Some(first) => PLAIN.contains(&first),
    }
}

/// The statement's words, past comments and opening parentheses.
fn words(statement: &str) -> impl Iterator<Item = &str> {
    let mut rest = statement;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = past_block_comment(after);
        } else {
            break;
        }
    }
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// What follows a block comment whose `/*` came just before `after`.
/// PostgreSQL's block comments nest: `/* /* */ SELECT */ LISTEN x` is one
/// comment, then `LISTEN`.
fn past_block_comment(after: &str) -> &str {
    let mut depth = 1;
    let mut rest = after;
    while depth > 0 {
        let Some(close) = rest.find("*/") else {
            return "";
        };
        match rest.find("/*") {
            Some(open) if open < close => {
                depth += 1;
                rest = &rest[open + 2..];
            }
            _ => {
                depth -= 1;
                rest = &rest[close + 2..];
            }
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::{forgets_statements, leaves_state};

    #[test]
    fn what_hides_behind_nested_comments_try_locks_or_unicode_escapes_leaves_state() {
        for sql in [
            "/* /* */ select */ LISTEN ch",
            "/* a /* b /* c */ */ select */ SET search_path = x",
            "SELECT pg_try_advisory_lock(42)",
            "SELECT U&\"set\\005fconfig\"('search_path', 'x', false)",
        ] {
            assert!(leaves_state(sql), "{sql}");
        }
        assert!(!leaves_state("/* /* nested */ still a comment */ SELECT 1"));
        assert!(forgets_statements("PREPARE tp_0 AS SELECT 2"));
    }

    #[test]
    fn plain_reads_and_writes_and_transaction_control_leave_nothing() {
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = 12;",
            "BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 3; END;",
            "INSERT INTO agents (id) VALUES ($1) RETURNING id",
            "  -- a comment\n/* another */ (SELECT 1) UNION (SELECT 2)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "BEGIN READ WRITE; SET LOCAL statement_timeout = 5; DELETE FROM calls; COMMIT",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "",
        ] {
            assert!(!leaves_state(sql), "{sql}");
        }
    }

    #[test]
    fn every_query_that_drops_prepared_statements_leaves_state_so_the_relay_asks_about_it() {
        // The relay asks `forgets_statements` only of queries that leave state.
        for sql in [
            "DEALLOCATE ALL",
            "deallocate prepare s1",
            "SELECT 1; Discard All",
            "/* note */ DISCARD PLANS",
        ] {
            assert!(leaves_state(sql), "{sql}");
            assert!(forgets_statements(sql), "{sql}");
        }
        assert!(!forgets_statements("SET search_path = other"));
    }

    #[test]
    fn a_query_longer_than_the_stack_copy_is_read_the_same() {
        let padding = " ".repeat(2000);
        assert!(!leaves_state(&format!("SELECT 1{padding}")));
        assert!(leaves_state(&format!(
            "SELECT 1{padding}; SET search_path = x"
        )));
        assert!(leaves_state(&format!(
            "{padding}SELECT PG_ADVISORY_LOCK(1)"
        )));
    }

    #[test]
    fn settings_temporary_objects_cursors_locks_and_listeners_leave_state() {
        for sql in [
            "SET search_path = other",
            "set session characteristics as transaction read only",
            "SELECT 1; RESET ALL",
            "SELECT set_config('search_path', 'x', false)",
            "SELECT pg_advisory_lock(1)",
            "CREATE TEMP TABLE t (x int)",
            "SELECT 1 INTO TEMPORARY t",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "LISTEN changes",
            "PREPARE p AS SELECT 1",
            "DISCARD ALL",
            "SET ROLE other",
            "SET SESSION AUTHORIZATION other",
            "CALL do_things()",
            "DO $$ BEGIN PERFORM 1; END $$",
            "SELECT dblink_connect('x')",
            "LOAD 'auto_explain'",
            "EXPLAIN ANALYZE SELECT 1",
        ] {
            assert!(leaves_state(sql), "{sql}");
        }
    }
}

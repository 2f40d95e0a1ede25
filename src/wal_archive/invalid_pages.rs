//! A selective restore (`--db-include`) leaves every other database's files
//! zeroed. WAL replayed after the restore is consistent may still refer to
//! their pages (a neighbour's VACUUM logs `Heap2/VISIBLE` without the heap
//! page's image), and PostgreSQL then stops with "WAL contains references
//! to invalid pages". pgBackRest's guide gives the way out: recover with
//! `ignore_invalid_pages = on`, then read the log to be sure that no page
//! reported invalid belongs to the database that was asked for.
//!
//! Rule: a restored database is used only when the scratch cluster's log
//! names no invalid page of it (`base/<its oid>/`) nor of the cluster's
//! shared catalogs (`global/`); otherwise the restore fails.

use std::path::Path;

use super::WalArchiveError;

/// The setting that lets a selective restore's recovery go on.
pub const IGNORE_INVALID_PAGES: &str = "-c ignore_invalid_pages=on";

/// The log's warnings of invalid pages that belong to the database with
/// `oid`, or to the shared catalogs.
pub fn of_database(log: &str, oid: u32) -> Vec<String> {
    let own = format!("base/{oid}/");
    log.lines()
        .filter(|line| line.contains("WARNING:"))
        .filter(|line| {
            line.contains("invalid page")
                || line.contains("is uninitialized")
                || (line.contains("of relation") && line.contains("does not exist"))
        })
        .filter(|line| line.contains(&own) || line.contains(" global/"))
        .map(|line| line.trim().to_string())
        .collect()
}

/// After a selective recovery: refuses `db` (whose oid the recovered
/// cluster gives, if it holds it) when the server's `log` names an invalid
/// page of it.
pub fn check(log: &Path, db: &str, oid: Option<u32>) -> Result<(), WalArchiveError> {
    let oid = oid.ok_or_else(|| {
        WalArchiveError::Recovery(format!("the recovered cluster holds no database {db}"))
    })?;
    let text = std::fs::read_to_string(log).map_err(WalArchiveError::io("cannot read", log))?;
    match of_database(&text, oid).first() {
        None => Ok(()),
        Some(line) => Err(WalArchiveError::Recovery(format!(
            "the WAL refers to pages of {db} that the restored files lack: {line}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-12-05 22:41:35.431 UTC [23604] LOG:  restored log file \"000000010000000000000008\" from archive
2026-12-05 22:41:35.454 UTC [23604] WARNING:  page 0 of relation base/16846/16862 is uninitialized
2026-12-05 22:41:35.454 UTC [23604] CONTEXT:  WAL redo at 0/837D738 for Heap2/VISIBLE: cutoff xid 779 flags 0x01
2026-12-05 22:41:35.454 UTC [23604] WARNING:  WAL contains references to invalid pages
";

    #[test]
    fn a_neighbours_invalid_pages_are_not_the_restored_databases() {
        assert!(of_database(LOG, 16384).is_empty());
        assert!(
            of_database(LOG, 1684).is_empty(),
            "a prefix of another oid is not it"
        );
    }

    #[test]
    fn the_restored_databases_own_invalid_pages_and_the_shared_catalogs_are_found() {
        assert_eq!(of_database(LOG, 16846).len(), 1);
        let shared = "x WARNING:  page 3 of relation global/1262 does not exist";
        assert_eq!(of_database(shared, 16384).len(), 1);
        let block = "x WARNING:  invalid page in block 7 of relation base/16384/2619";
        assert_eq!(of_database(block, 16384).len(), 1);
    }
}

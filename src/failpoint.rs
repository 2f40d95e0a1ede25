//! Named failpoints in the steps of create, purge, move, restore (from a
//! backup or to a time), drain, fleet
//! runs, backups and `doctor --fix`'s quarantine (before the tenants table is
//! held, and while it is).
//! They compile to nothing unless the `failpoints` feature is on (the test
//! suite turns it on). With it, `FAILPOINTS="move.after_switch=return(kill)"`
//! makes the process kill itself with SIGKILL when it reaches that step, and
//! `return(stop)` stops it with SIGSTOP (a test continues it with SIGCONT),
//! so tests crash or pause a real process exactly there.

/// Every failpoint, in the order its operation reaches them. The crash
/// tests go through this list; `failpoint!` names only these.
pub const NAMES: &[&str] = &[
    "create.after_pick",
    "create.after_insert",
    "create.after_clone",
    "create.before_finish",
    "purge.before_drop",
    "purge.after_drop",
    "move.before_copy",
    "move.after_copy",
    "move.after_switch",
    "move.after_retire",
    "restore.after_stage",
    "restore.before_swap",
    "restore.mid_swap",
    "restore.after_swap",
    "restore_time.after_wal",
    "restore_time.after_files",
    "restore_time.after_recovery",
    "restore_time.after_dump",
    "drain.between_moves",
    "fleet.between_items",
    "fleet_revert.between_items",
    "fleet_revert.after_tenant",
    "drift.between_tenants",
    "backup.before_upload",
    "doctor.before_quarantine",
    "doctor.holding_tenants",
];

/// Marks a step: `failpoint!("move.after_switch")`.
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::reach($name);
    };
}

/// Runs the failpoint's configured action, if any.
#[cfg(feature = "failpoints")]
pub fn reach(name: &'static str) {
    debug_assert!(NAMES.contains(&name), "unlisted failpoint {name}");
    fail::eval(name, |arg| act(name, arg.as_deref()));
}

#[cfg(feature = "failpoints")]
fn act(name: &str, arg: Option<&str>) {
    use nix::sys::signal::{raise, Signal};
    match arg {
        Some("kill") => {
            eprintln!("failpoint {name}: SIGKILL");
            let _ = raise(Signal::SIGKILL);
        }
        Some("stop") => {
            eprintln!("failpoint {name}: SIGSTOP");
            let _ = raise(Signal::SIGSTOP);
            eprintln!("failpoint {name}: continued");
        }
        _ => {}
    }
}

/// Reads `FAILPOINTS` once, at start-up; keep the value for the process's life.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

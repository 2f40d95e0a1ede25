//! A process's identity: its pid and the time it started, so a folder a
//! process names after itself can tell, after a kill, that its owner is gone
//! even when the pid was reused since.

use std::path::Path;

/// This process's `<pid>-<start>`.
pub fn tag() -> String {
    let pid = std::process::id();
    format!("{pid}-{}", start_of(pid).unwrap_or(0))
}

/// The pid and start time at the head of `text` (`<pid>-<start>…`), and
/// what follows them.
pub fn parse_tag(text: &str) -> Option<(u32, u64, &str)> {
    let (pid, rest) = text.split_once('-')?;
    let (start, rest) = rest.split_once('-').unwrap_or((rest, ""));
    Some((pid.parse().ok()?, start.parse().ok()?, rest))
}

/// Whether process `pid`, started at `start`, is still running.
pub fn alive(pid: u32, start: u64) -> bool {
    match start_of(pid) {
        Some(now) => start == 0 || now == start,
        // No /proc entry: gone, unless this system has no /proc at all.
        None if Path::new("/proc/self/stat").exists() => false,
        None => {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            !matches!(
                nix::sys::signal::kill(pid, None),
                Err(nix::errno::Errno::ESRCH)
            )
        }
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc`, field 22).
pub fn start_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

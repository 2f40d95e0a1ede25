//! The in-memory request counts of this replica, with their journal
//! (`journal.rs`): counting a request is one map update and one 24-byte
//! `write` under one lock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use uuid::Uuid;

use super::journal::{self, Plane, Segment, Tally, FOLDER_PREFIX};
use crate::domain::TenantId;

/// A closed segment and the counts it holds, to flush.
pub struct Closed {
    pub seq: i64,
    pub path: PathBuf,
    pub tally: Tally,
}

struct State {
    tally: Tally,
    segment: Segment,
}

/// This replica's meter; cheap to clone.
#[derive(Clone)]
pub struct Meter {
    pub writer: Uuid,
    dir: PathBuf,
    state: Arc<Mutex<State>>,
}

impl Meter {
    /// A meter writing its journal under `root` (made 0700).
    pub fn open(root: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let writer = Uuid::now_v7();
        let dir = root.join(format!("{FOLDER_PREFIX}{}-{writer}", crate::process::tag()));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let segment = Segment::create(&dir, 0)?;
        Ok(Self {
            writer,
            dir,
            state: Arc::new(Mutex::new(State {
                tally: Tally::default(),
                segment,
            })),
        })
    }

    /// Counts one request. A journal that cannot be written is said, and
    /// the count is kept in memory all the same.
    pub fn count(&self, tenant: TenantId, plane: Plane) {
        let hour = journal::hour_of(Utc::now());
        let mut state = self.state.lock().expect("the meter");
        state.tally.add(tenant, plane, hour);
        if let Err(e) = state.segment.append(&journal::encode(tenant, plane, hour)) {
            tracing::warn!(error = %e, "cannot append to the usage journal; counts since the last flush are in memory only");
        }
    }

    /// Closes the current segment and opens the next: what was counted in
    /// it, to flush. `None` when nothing was.
    pub fn close_segment(&self) -> std::io::Result<Option<Closed>> {
        let mut state = self.state.lock().expect("the meter");
        if state.tally.is_empty() {
            return Ok(None);
        }
        let next = Segment::create(&self.dir, state.segment.seq + 1)?;
        let old = std::mem::replace(&mut state.segment, next);
        let tally = std::mem::take(&mut state.tally);
        Ok(Some(Closed {
            seq: old.seq,
            path: old.path,
            tally,
        }))
    }

    /// Removes this writer's folder once nothing is left in it.
    pub fn remove_if_empty(&self) {
        let state = self.state.lock().expect("the meter");
        if state.tally.is_empty() {
            let _ = std::fs::remove_file(&state.segment.path);
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

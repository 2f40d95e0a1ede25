//! The in-memory request counts of this replica, with their journal
//! (`journal.rs`): counting a request is one map update and one 24-byte
//! copy into a mapped file, under one lock.

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
    /// Segments that filled up since the last flush, with their counts.
    full: Vec<Closed>,
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
                full: Vec::new(),
            })),
        })
    }

    /// Counts one request. A journal that cannot take it (a new segment
    /// that cannot be made) is said, and the count is kept in memory.
    pub fn count(&self, tenant: TenantId, plane: Plane) {
        let hour = journal::hour_of(Utc::now());
        let record = journal::encode(tenant, plane, hour);
        let mut state = self.state.lock().expect("the meter");
        if state.segment.append(&record).is_err() {
            if let Err(e) = self.rotate(&mut state) {
                tracing::warn!(error = %e, "cannot start a usage journal segment; counts since the last flush are in memory only");
            }
            let _ = state.segment.append(&record);
        }
        state.tally.add(tenant, plane, hour);
    }

    /// Closes the current segment (with its counts) and opens the next.
    fn rotate(&self, state: &mut State) -> std::io::Result<()> {
        let next = Segment::create(&self.dir, state.segment.seq + 1)?;
        let old = std::mem::replace(&mut state.segment, next);
        let tally = std::mem::take(&mut state.tally);
        state.full.push(Closed {
            seq: old.seq,
            path: old.path,
            tally,
        });
        Ok(())
    }

    /// Closes the current segment and opens the next: each closed segment
    /// and what was counted in it, to flush.
    pub fn close_segments(&self) -> std::io::Result<Vec<Closed>> {
        let mut state = self.state.lock().expect("the meter");
        if !state.tally.is_empty() {
            self.rotate(&mut state)?;
        }
        Ok(std::mem::take(&mut state.full))
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

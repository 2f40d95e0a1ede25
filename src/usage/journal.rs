//! The request journal: each replica counts requests in memory and also
//! copies one 24-byte record per request into a segment file of its own,
//! mapped into memory (no system call, no fsync). A `kill -9` of the process
//! loses none of them: the kernel holds the mapped pages. A flush starts a
//! new segment and adds the old one's counts to the catalog under
//! `(writer, seq)`, then deletes it; the catalog adds a segment once
//! (`catalog::usage`).
//!
//! Rules:
//! - A writer's folder is `usage-<pid>-<start>-<writer uuid>` under
//!   `<data_dir>/usage`; segments are `<seq>.seg`. The folder of a process
//!   that is gone is adopted at the next start on that data directory: its
//!   segments are flushed under the dead writer's id, then removed.
//! - A record's marker byte is stored after the rest of it, so a record
//!   cut short by a kill has none and ends the reading, as the unused,
//!   zeroed tail of a segment does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::catalog::RequestCounts;
use crate::domain::TenantId;

/// The start of every writer's folder name.
pub const FOLDER_PREFIX: &str = "usage-";
const RECORD: usize = 24;
/// Records a segment holds (a sparse file of 96 MiB): a flush interval's
/// requests at some 60,000 a second before the meter starts another.
const SEGMENT_RECORDS: usize = 4 * 1024 * 1024;
const MAGIC: u8 = b'U';

/// Which plane served a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    Data,
    Control,
}

/// Hours since the epoch, as a record stores them.
pub fn hour_of(at: DateTime<Utc>) -> i32 {
    (at.timestamp().div_euclid(3600)) as i32
}

fn hour_start(hour: i32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(hour) * 3600, 0).expect("an hour since the epoch")
}

/// One record's bytes.
pub fn encode(tenant: TenantId, plane: Plane, hour: i32) -> [u8; RECORD] {
    let mut out = [0u8; RECORD];
    out[0] = MAGIC;
    out[1] = match plane {
        Plane::Data => 0,
        Plane::Control => 1,
    };
    out[4..8].copy_from_slice(&hour.to_le_bytes());
    out[8..24].copy_from_slice(tenant.as_uuid().as_bytes());
    out
}

/// Counts per tenant and hour, as a segment or the memory holds them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally(pub HashMap<(TenantId, i32), [i64; 2]>);

impl Tally {
    pub fn add(&mut self, tenant: TenantId, plane: Plane, hour: i32) {
        let slot = self.0.entry((tenant, hour)).or_default();
        slot[plane as usize] += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The rows a flush adds.
    pub fn rows(&self) -> Vec<RequestCounts> {
        let mut rows: Vec<RequestCounts> = self
            .0
            .iter()
            .map(|(&(tenant, hour), &[data, control])| RequestCounts {
                tenant,
                hour: hour_start(hour),
                data,
                control,
            })
            .collect();
        rows.sort_by_key(|r| (r.tenant, r.hour));
        rows
    }
}

/// Reads a segment's records into a tally; a partial or foreign record
/// ends the reading.
pub fn read_segment(path: &Path) -> std::io::Result<Tally> {
    let bytes = std::fs::read(path)?;
    let mut tally = Tally::default();
    for record in bytes.chunks_exact(RECORD) {
        if record[0] != MAGIC || record[1] > 1 {
            break;
        }
        let plane = if record[1] == 0 {
            Plane::Data
        } else {
            Plane::Control
        };
        let hour = i32::from_le_bytes(record[4..8].try_into().expect("four bytes"));
        let tenant = TenantId::from(Uuid::from_bytes(
            record[8..24].try_into().expect("sixteen bytes"),
        ));
        tally.add(tenant, plane, hour);
    }
    Ok(tally)
}

/// A writer's open segment: a sparse file mapped into memory.
pub struct Segment {
    pub seq: i64,
    pub path: PathBuf,
    map: memmap2::MmapMut,
    used: usize,
}

/// The segment has no room for another record.
#[derive(Debug)]
pub struct Full;

impl Segment {
    pub fn create(dir: &Path, seq: i64) -> std::io::Result<Self> {
        let path = dir.join(format!("{seq}.seg"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        file.set_len((SEGMENT_RECORDS * RECORD) as u64)?;
        // SAFETY: the file is this writer's own, in its own 0700 folder; no
        // other process maps or truncates it while this one lives.
        let map = unsafe { memmap2::MmapMut::map_mut(&file)? };
        Ok(Self {
            seq,
            path,
            map,
            used: 0,
        })
    }

    /// Copies `record` in: its marker byte last, so a record cut short has none.
    pub fn append(&mut self, record: &[u8; RECORD]) -> Result<(), Full> {
        if self.used == SEGMENT_RECORDS {
            return Err(Full);
        }
        let at = self.used * RECORD;
        self.map[at + 1..at + RECORD].copy_from_slice(&record[1..]);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.map[at] = record[0];
        self.used += 1;
        Ok(())
    }
}

/// A dead writer's folder: its id and its segments, oldest first.
pub struct DeadWriter {
    pub writer: Uuid,
    pub dir: PathBuf,
    pub segments: Vec<(i64, PathBuf)>,
}

/// The writers under `root` whose process is gone.
pub fn dead_writers(root: &Path) -> Vec<DeadWriter> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dead = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, start, rest)) = name
            .to_str()
            .and_then(|n| n.strip_prefix(FOLDER_PREFIX))
            .and_then(crate::process::parse_tag)
        else {
            continue;
        };
        let Ok(writer) = rest.parse::<Uuid>() else {
            continue;
        };
        if crate::process::alive(pid, start) {
            continue;
        }
        let mut segments: Vec<(i64, PathBuf)> = std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let seq = e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok()?;
                Some((seq, e.path()))
            })
            .collect();
        segments.sort();
        dead.push(DeadWriter {
            writer,
            dir: entry.path(),
            segments,
        });
    }
    dead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_the_counts_written_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0).unwrap();
        let (a, b) = (TenantId::generate(), TenantId::generate());
        let hour = hour_of(Utc::now());
        for (tenant, plane) in [
            (a, Plane::Data),
            (a, Plane::Data),
            (a, Plane::Control),
            (b, Plane::Data),
        ] {
            segment.append(&encode(tenant, plane, hour)).unwrap();
        }
        // A record cut short by a kill: everything but its marker.
        let cut = segment.used * RECORD;
        segment.map[cut + 1..cut + RECORD].copy_from_slice(&encode(b, Plane::Data, hour)[1..]);
        segment.map.flush().unwrap();
        let tally = read_segment(&segment.path).unwrap();
        assert_eq!(tally.0[&(a, hour)], [2, 1]);
        assert_eq!(tally.0[&(b, hour)], [1, 0]);
        let rows = tally.rows();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.hour.timestamp() % 3600 == 0));
    }

    #[test]
    fn a_live_writers_folder_is_not_adopted_and_a_dead_ones_is() {
        let root = tempfile::tempdir().unwrap();
        let live = root.path().join(format!(
            "{FOLDER_PREFIX}{}-{}",
            crate::process::tag(),
            Uuid::now_v7()
        ));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = crate::process::start_of(pid).unwrap_or(1);
        child.wait().unwrap();
        let writer = Uuid::now_v7();
        let dead = root
            .path()
            .join(format!("{FOLDER_PREFIX}{pid}-{start}-{writer}"));
        for dir in [&live, &dead] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("3.seg"), []).unwrap();
            std::fs::write(dir.join("1.seg"), []).unwrap();
        }
        let found = dead_writers(root.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].writer, writer);
        let seqs: Vec<i64> = found[0].segments.iter().map(|s| s.0).collect();
        assert_eq!(seqs, [1, 3]);
    }
}

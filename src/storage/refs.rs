//! Blob reference counts. A blob is referenced once by each object version and each part
//! whose manifest names it: most blobs by exactly one record, a blob shared by copies by
//! several. The count changes in the same atomic step as the records; a blob whose last
//! reference goes becomes garbage for the collector, and a garbage blob is never referenced
//! again (the collector may be deleting it).
//!
//! Each store collects one step's changes in a [`RefChanges`], reads the current rows of
//! the blobs it names (locked against other steps), and writes what
//! [`RefChanges::resolve`] returns.

use std::collections::BTreeMap;

use super::{BlobId, BlobState, ObjectRecord, PartRecord, Resource, StorageError};
use crate::clock::Timestamp;

/// What the metadata store records about a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobRow {
    /// No record: an orphan of a crash, a write not yet committed, or reclaimed.
    Unknown,
    /// Referenced by this many records (at least one).
    Referenced(u32),
    /// Referenced by nothing since this time.
    Garbage(Timestamp),
}

impl BlobRow {
    pub fn state(self) -> BlobState {
        match self {
            BlobRow::Unknown => BlobState::Unknown,
            BlobRow::Referenced(_) => BlobState::Referenced,
            BlobRow::Garbage(t) => BlobState::Garbage(t),
        }
    }
}

/// How a record comes to refer to a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Written for it, or handed over by records the same step removes (a Complete's parts).
    Written,
    /// Shared with records that exist (a copy reusing their bytes): the blob must still be
    /// referenced when the step commits.
    Shared,
}

/// The most references a blob may have (PostgreSQL keeps counts as `integer`).
const MAX_REFS: i64 = i32::MAX as i64;

#[derive(Clone, Copy, Debug, Default)]
struct Change {
    delta: i64,
    acquired: bool,
    shared: bool,
}

/// The reference changes of one atomic step. Every occurrence counts: a manifest naming a
/// blob twice refers to it twice.
#[derive(Debug, Default)]
pub struct RefChanges {
    changes: BTreeMap<BlobId, Change>,
}

impl RefChanges {
    pub fn new() -> Self {
        Self::default()
    }

    /// One reference to each blob named, per time it is named.
    pub fn acquire<'a>(&mut self, blobs: impl IntoIterator<Item = &'a BlobId>, origin: Origin) {
        for b in blobs {
            let c = self.changes.entry(b.clone()).or_default();
            c.delta += 1;
            c.acquired = true;
            c.shared |= origin == Origin::Shared;
        }
    }

    /// One reference less to each blob named, per time it is named.
    pub fn release<'a>(&mut self, blobs: impl IntoIterator<Item = &'a BlobId>) {
        for b in blobs {
            self.changes.entry(b.clone()).or_default().delta -= 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The blobs whose rows the step needs, in ascending order (the order to lock them in).
    pub fn ids(&self) -> impl Iterator<Item = &BlobId> {
        self.changes.keys()
    }

    /// The rows to write, given the current rows of [`ids`](Self::ids) in that order: only
    /// rows that change. `NotFound(Blob)` when a blob gains a reference it may not: one that
    /// is garbage, a shared one the store does not know (reclaimed meanwhile), or one whose
    /// count would pass what every store can hold (a copy then copies bytes instead).
    pub fn resolve(&self, current: &[BlobRow], now: Timestamp) -> Result<Vec<(BlobId, BlobRow)>, StorageError> {
        if current.len() != self.changes.len() {
            return Err(StorageError::Io("blob rows do not match the changes".into()));
        }
        let mut out = Vec::new();
        for ((id, change), row) in self.changes.iter().zip(current) {
            let count = match *row {
                BlobRow::Garbage(_) if change.acquired => return Err(StorageError::NotFound(Resource::Blob)),
                BlobRow::Unknown if change.shared => return Err(StorageError::NotFound(Resource::Blob)),
                // Releases of a blob that is garbage already change nothing.
                BlobRow::Garbage(_) => continue,
                BlobRow::Unknown => 0,
                BlobRow::Referenced(n) => i64::from(n),
            };
            if change.delta == 0 {
                continue;
            }
            let next = count + change.delta;
            if next > MAX_REFS {
                return Err(StorageError::NotFound(Resource::Blob));
            }
            if next < 0 {
                tracing::warn!(blob = %id.0, count, delta = change.delta, "blob reference count would go below zero");
            }
            let row =
                if next <= 0 { BlobRow::Garbage(now) } else { BlobRow::Referenced(u32::try_from(next).unwrap_or(0)) };
            out.push((id.clone(), row));
        }
        Ok(out)
    }
}

/// The parts of an upload that a Complete leaves out of `object` (by part number: two
/// parts may share a blob).
pub fn unused_parts(parts: &[PartRecord], object: &ObjectRecord) -> Vec<PartRecord> {
    let used: std::collections::HashSet<u32> = object.parts.iter().map(|p| p.part_number).collect();
    parts.iter().filter(|p| !used.contains(&p.part_number)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> BlobId {
        BlobId(format!("{n:032x}"))
    }

    #[test]
    fn counts_follow_every_occurrence() {
        let (a, b, c) = (id(1), id(2), id(3));
        let mut ch = RefChanges::new();
        ch.acquire([&a, &a, &b], Origin::Written);
        ch.release([&b, &c]);
        let ids: Vec<&BlobId> = ch.ids().collect();
        assert_eq!(ids, [&a, &b, &c]);
        let now = Timestamp(7);
        let rows =
            ch.resolve(&[BlobRow::Unknown, BlobRow::Referenced(1), BlobRow::Referenced(3)], now).expect("resolves");
        // b: +1 -1 changes nothing and is not written.
        assert_eq!(rows, [(a, BlobRow::Referenced(2)), (c, BlobRow::Referenced(2))]);
    }

    #[test]
    fn the_last_release_makes_garbage_once() {
        let a = id(1);
        let mut ch = RefChanges::new();
        ch.release([&a]);
        let now = Timestamp(9);
        assert_eq!(ch.resolve(&[BlobRow::Referenced(1)], now).expect("ok"), [(a.clone(), BlobRow::Garbage(now))]);
        // Garbage already: nothing to write (its garbage record stays as it was).
        assert!(ch.resolve(&[BlobRow::Garbage(Timestamp(1))], now).expect("ok").is_empty());
        // An unknown blob released (an inconsistency) becomes garbage rather than a leak.
        assert_eq!(ch.resolve(&[BlobRow::Unknown], now).expect("ok"), [(a, BlobRow::Garbage(now))]);
    }

    #[test]
    fn garbage_is_never_referenced_again_and_shared_blobs_must_exist() {
        let a = id(1);
        let mut written = RefChanges::new();
        written.acquire([&a], Origin::Written);
        assert!(matches!(
            written.resolve(&[BlobRow::Garbage(Timestamp(1))], Timestamp(2)),
            Err(StorageError::NotFound(Resource::Blob))
        ));
        assert_eq!(
            written.resolve(&[BlobRow::Unknown], Timestamp(2)).expect("ok"),
            [(a.clone(), BlobRow::Referenced(1))]
        );
        let mut shared = RefChanges::new();
        shared.acquire([&a], Origin::Shared);
        assert!(matches!(
            shared.resolve(&[BlobRow::Unknown], Timestamp(2)),
            Err(StorageError::NotFound(Resource::Blob))
        ));
        assert_eq!(shared.resolve(&[BlobRow::Referenced(1)], Timestamp(2)).expect("ok"), [(a, BlobRow::Referenced(2))]);
        assert!(shared.resolve(&[], Timestamp(2)).is_err(), "rows must match");
        assert!(
            matches!(
                shared.resolve(&[BlobRow::Referenced(i32::MAX as u32)], Timestamp(2)),
                Err(StorageError::NotFound(Resource::Blob))
            ),
            "a count never passes what the stores hold"
        );
    }
}

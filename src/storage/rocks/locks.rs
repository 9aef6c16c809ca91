//! The locks that make each [`super::RocksMetadataStore`] method atomic against the others
//! that touch the same records, while methods that touch different records run at once.
//!
//! A method holds its locks from before its reads until its batch is written (unsynced:
//! the method then waits, without its locks, for a WAL sync covering it; see
//! [`super::durability`]). Writers of different keys therefore share syncs: group commit,
//! with each acknowledged write still synced before it returns.
//!
//! Locks are striped (a name hashes to one of a fixed set) and taken in one order — the
//! bucket's, then the names' in ascending stripe order, then, just before the batch is
//! written, the blobs' whose reference counts it changes, in ascending stripe order — so
//! two methods can never wait for each other in a cycle (a method holding blob locks takes
//! nothing more). A collision only makes two unrelated names wait for each other briefly.

use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::storage::BlobId;

const BUCKET_STRIPES: usize = 64;
const NAME_STRIPES: usize = 1024;
const BLOB_STRIPES: usize = 1024;

/// How a method holds its bucket's lock.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum BucketMode {
    /// Writes inside the bucket (objects, uploads, parts): many at once.
    Shared,
    /// Changes of the bucket itself (creation, deletion, versioning, settings): alone.
    Exclusive,
}

/// What a method locks, built up before taking it (as stripe numbers: a set outlives the
/// names it was built from).
#[derive(Default, Clone)]
pub(super) struct LockSet {
    bucket: Option<(usize, BucketMode)>,
    /// Ascending and without repeats: the order every method takes them in.
    names: Vec<usize>,
}

impl LockSet {
    pub(super) fn bucket(bucket: &str, mode: BucketMode) -> Self {
        LockSet { bucket: Some((stripe(bucket, BUCKET_STRIPES), mode)), names: Vec::new() }
    }

    pub(super) fn none() -> Self {
        LockSet::default()
    }

    /// Adds the lock of a name: `kind` keeps different kinds of names (an object key, an
    /// upload id, a blob id) apart.
    pub(super) fn name(mut self, kind: &str, parts: &[&str]) -> Self {
        let s = stripe((kind, parts), NAME_STRIPES);
        if let Err(at) = self.names.binary_search(&s) {
            self.names.insert(at, s);
        }
        self
    }

    /// The lock of `key` in `bucket`.
    pub(super) fn key(self, bucket: &str, key: &str) -> Self {
        self.name("key", &[bucket, key])
    }

    /// The lock of an upload.
    pub(super) fn upload(self, bucket: &str, upload_id: &str) -> Self {
        self.name("upload", &[bucket, upload_id])
    }
}

/// A lock taken without waiting (one whose holder panicked counts as free, as in
/// [`Locks::acquire`]); `None` if it is held.
fn free<G>(r: Result<G, std::sync::TryLockError<G>>) -> Option<G> {
    match r {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// The stripes of blobs' locks, ascending and without repeats (the order they are taken in).
fn blob_stripes<'b>(ids: impl IntoIterator<Item = &'b BlobId>) -> Vec<usize> {
    let mut stripes: Vec<usize> = ids.into_iter().map(|b| stripe(&b.0, BLOB_STRIPES)).collect();
    stripes.sort_unstable();
    stripes.dedup();
    stripes
}

fn stripe(value: impl Hash, stripes: usize) -> usize {
    let mut h = std::hash::DefaultHasher::new();
    value.hash(&mut h);
    (h.finish() % stripes as u64) as usize
}

/// The lock table of one store.
pub(super) struct Locks {
    buckets: Vec<RwLock<()>>,
    names: Vec<Mutex<()>>,
    blobs: Vec<Mutex<()>>,
    users: Mutex<()>,
}

/// Locks held until dropped.
#[must_use]
pub(super) struct Held<'a> {
    _bucket: Option<BucketGuard<'a>>,
    _names: Vec<MutexGuard<'a, ()>>,
}

enum BucketGuard<'a> {
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

impl Locks {
    pub(super) fn new() -> Locks {
        Locks {
            buckets: (0..BUCKET_STRIPES).map(|_| RwLock::new(())).collect(),
            names: (0..NAME_STRIPES).map(|_| Mutex::new(())).collect(),
            blobs: (0..BLOB_STRIPES).map(|_| Mutex::new(())).collect(),
            users: Mutex::new(()),
        }
    }

    /// Takes every lock of `set`, in the one order all methods use. A lock whose holder
    /// panicked is taken anyway: the holder's batch was either written whole or not at all.
    pub(super) fn acquire(&self, set: LockSet) -> Held<'_> {
        let bucket = set.bucket.map(|(stripe, mode)| {
            let lock = &self.buckets[stripe];
            match mode {
                BucketMode::Shared => BucketGuard::Shared(lock.read().unwrap_or_else(|p| p.into_inner())),
                BucketMode::Exclusive => BucketGuard::Exclusive(lock.write().unwrap_or_else(|p| p.into_inner())),
            }
        });
        let names = set.names.iter().map(|&i| self.names[i].lock().unwrap_or_else(|p| p.into_inner())).collect();
        Held { _bucket: bucket, _names: names }
    }

    /// [`Locks::acquire`] if every lock is free now; `None` (holding nothing) if one is not.
    pub(super) fn try_acquire(&self, set: &LockSet) -> Option<Held<'_>> {
        let bucket = match set.bucket {
            None => None,
            Some((stripe, BucketMode::Shared)) => Some(BucketGuard::Shared(free(self.buckets[stripe].try_read())?)),
            Some((stripe, BucketMode::Exclusive)) => {
                Some(BucketGuard::Exclusive(free(self.buckets[stripe].try_write())?))
            }
        };
        let names = set.names.iter().map(|&i| free(self.names[i].try_lock())).collect::<Option<_>>()?;
        Some(Held { _bucket: bucket, _names: names })
    }

    /// The locks of blobs' reference counts: the last locks a method takes.
    pub(super) fn blobs<'b>(&self, ids: impl IntoIterator<Item = &'b BlobId>) -> Vec<MutexGuard<'_, ()>> {
        blob_stripes(ids).into_iter().map(|i| self.blobs[i].lock().unwrap_or_else(|p| p.into_inner())).collect()
    }

    /// [`Locks::blobs`] if every one is free now; `None` (holding nothing) if one is not.
    pub(super) fn try_blobs<'b>(&self, ids: impl IntoIterator<Item = &'b BlobId>) -> Option<Vec<MutexGuard<'_, ()>>> {
        blob_stripes(ids).into_iter().map(|i| free(self.blobs[i].try_lock())).collect()
    }

    /// The lock of the user table (every user change reads all users).
    pub(super) fn users(&self) -> MutexGuard<'_, ()> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn names_in_any_order_never_deadlock_and_exclude_each_other() {
        let locks = Arc::new(Locks::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (locks, inside) = (Arc::clone(&locks), Arc::clone(&inside));
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        // Two names, given in opposite orders by odd and even threads.
                        let (a, b) = if t % 2 == 0 { ("x", "y") } else { ("y", "x") };
                        let set = LockSet::bucket("b", BucketMode::Shared).key("b", a).key("b", b);
                        let _held = locks.acquire(set);
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "iteration {i}");
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no thread panicked");
        }
    }

    #[test]
    fn an_exclusive_bucket_lock_waits_for_shared_holders() {
        let locks = Locks::new();
        let held = locks.acquire(LockSet::bucket("b", BucketMode::Shared).key("b", "k"));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let _x = locks.acquire(LockSet::bucket("b", BucketMode::Exclusive));
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "the exclusive lock waited");
            drop(held);
            waiter.join().expect("took the lock once released");
        });
        // Different keys of one bucket do not wait for each other (taken here by one thread,
        // which would never return if the second waited for the first).
        let (k1, k2) = (LockSet::none().key("b", "k1"), LockSet::none().key("b", "k2"));
        assert_ne!(k1.names, k2.names, "the two keys fall on different stripes");
        let _a = locks.acquire(LockSet::bucket("b", BucketMode::Shared).key("b", "k1"));
        let _b = locks.acquire(LockSet::none().key("b", "k2"));
        // Without waiting: free locks are taken, a held one makes the whole set wait.
        assert!(locks.try_acquire(&LockSet::bucket("b", BucketMode::Shared).key("b", "k3")).is_some());
        assert!(locks.try_acquire(&LockSet::none().key("b", "k3").key("b", "k1")).is_none());
        assert!(locks.try_acquire(&LockSet::bucket("b", BucketMode::Exclusive)).is_none());
    }
}

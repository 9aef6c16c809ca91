//! Group commit without a thread per waiting writer: batches are written to RocksDB
//! without a WAL sync, and a request is answered only once a sync covers its batch. One
//! thread per store makes the syncs, each for every write made before it started, so a sync
//! serves as many writers as are waiting, and a waiting writer holds a task, not a thread.
//!
//! A batch is visible to reads before it is durable; every acknowledged request waits for
//! durability, and a WAL sync covers every earlier write, so whatever an acknowledged write
//! read is durable with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::storage::StorageError;

/// How far the WAL is synced, and the writes the last failed sync was to cover.
#[derive(Clone, Copy, Debug, Default)]
struct Synced {
    upto: u64,
    failures: u64,
    failed_upto: u64,
}

pub(super) struct Durability {
    /// Writes made so far; a write's ticket is the count just after it.
    written: AtomicU64,
    /// The highest ticket a writer waits for, and whether the store is closing.
    wanted: Mutex<(u64, bool)>,
    wake: Condvar,
    synced: watch::Sender<Synced>,
}

thread_local! {
    /// The ticket of the last write this thread made, while a store method runs on it.
    static LAST_WRITE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Durability {
    pub(super) fn new() -> Arc<Durability> {
        Arc::new(Durability {
            written: AtomicU64::new(0),
            wanted: Mutex::new((0, false)),
            wake: Condvar::new(),
            synced: watch::Sender::new(Synced::default()),
        })
    }

    /// Records a write just made (unsynced) on this thread, and asks for a sync of it even if
    /// no one ends up waiting (its caller may be gone): no write stays unsynced for long.
    pub(super) fn wrote(&self) {
        let ticket = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        LAST_WRITE.with(|c| c.set(ticket));
        self.want(ticket);
    }

    /// A ticket covering every write made so far, for a method that wrote nothing but
    /// answers from what it read (which may be another method's unsynced write).
    pub(super) fn barrier(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    fn want(&self, ticket: u64) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        if ticket > wanted.0 {
            wanted.0 = ticket;
            drop(wanted);
            self.wake.notify_one();
        }
    }

    /// Records that a sync made outside the syncing thread, started after the write with
    /// ticket `upto` (a [`Durability::barrier`] taken before it), covered it and every
    /// earlier one.
    pub(super) fn synced(&self, upto: u64) {
        self.synced.send_modify(|s| s.upto = s.upto.max(upto));
    }

    /// Runs `f`, returning with its result the ticket of the last write it made (0: none).
    pub(super) fn recording<T>(f: impl FnOnce() -> T) -> (T, u64) {
        LAST_WRITE.with(|c| c.set(0));
        let value = f();
        (value, LAST_WRITE.with(|c| c.replace(0)))
    }

    /// Waits until a WAL sync covers the write with `ticket` (0: nothing to wait for).
    pub(super) async fn wait(&self, ticket: u64) -> Result<(), StorageError> {
        if ticket == 0 {
            return Ok(());
        }
        let mut rx = self.synced.subscribe();
        let before = *rx.borrow_and_update();
        if before.upto >= ticket {
            return Ok(());
        }
        self.want(ticket);
        // Fails only if a sync meant to cover this write failed after the wait began.
        let failed = |s: &Synced| s.failures > before.failures && s.failed_upto >= ticket;
        match rx.wait_for(|s| s.upto >= ticket || failed(s)).await {
            Ok(s) if s.upto >= ticket => Ok(()),
            _ => Err(StorageError::Io("the metadata write-ahead log could not be synced".into())),
        }
    }

    /// Stops the syncing thread (the store is closing).
    pub(super) fn stop(&self) {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.wake.notify_all();
    }

    /// Starts the thread that syncs `store`'s WAL, with `sync` (RocksDB's `FlushWAL(true)`),
    /// whenever a writer waits. It ends when the store is closed or gone.
    pub(super) fn spawn<S: Send + Sync + 'static>(
        self: &Arc<Self>,
        store: Weak<S>,
        sync: impl Fn(&S) -> Result<(), String> + Send + 'static,
    ) -> std::io::Result<()> {
        let this = Arc::clone(self);
        std::thread::Builder::new().name("s3d-wal-sync".into()).spawn(move || {
            let mut backoff = Duration::from_millis(50);
            loop {
                let target = {
                    let mut wanted = this.wanted.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        if wanted.1 || store.strong_count() == 0 {
                            return;
                        }
                        if wanted.0 > this.synced.borrow().upto {
                            break;
                        }
                        // The timeout only notices a store dropped without being stopped.
                        wanted = this
                            .wake
                            .wait_timeout(wanted, Duration::from_millis(200))
                            .map_or_else(|p| p.into_inner().0, |(g, _)| g);
                    }
                    // Every write counted here has returned from RocksDB: the sync covers it.
                    this.written.load(Ordering::SeqCst)
                };
                let Some(store) = store.upgrade() else {
                    return;
                };
                let result = sync(&store);
                drop(store);
                match result {
                    Ok(()) => {
                        this.synced.send_modify(|s| s.upto = s.upto.max(target));
                        backoff = Duration::from_millis(50);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "metadata write-ahead log sync failed");
                        this.synced.send_modify(|s| {
                            s.failures += 1;
                            s.failed_upto = target;
                        });
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn writers_wait_for_a_sync_that_covers_them() {
        struct Store {
            syncs: AtomicUsize,
            fail: std::sync::atomic::AtomicBool,
        }
        let store = Arc::new(Store { syncs: AtomicUsize::new(0), fail: Default::default() });
        let d = Durability::new();
        d.spawn(Arc::downgrade(&store), |s: &Store| {
            s.syncs.fetch_add(1, Ordering::SeqCst);
            if s.fail.load(Ordering::SeqCst) { Err("disk gone".into()) } else { Ok(()) }
        })
        .expect("thread");
        assert_eq!(Durability::recording(|| ()).1, 0, "no write, no ticket");
        d.wait(0).await.expect("nothing to wait for");
        let ((), t1) = Durability::recording(|| d.wrote());
        let ((), t2) = Durability::recording(|| d.wrote());
        assert_eq!((t1, t2), (1, 2));
        d.wait(t2).await.expect("synced");
        d.wait(t1).await.expect("covered by the same sync");
        let syncs = store.syncs.load(Ordering::SeqCst);
        assert!(syncs >= 1);
        store.fail.store(true, Ordering::SeqCst);
        let ((), t3) = Durability::recording(|| d.wrote());
        assert!(d.wait(t3).await.is_err(), "a failed sync fails its waiters");
        store.fail.store(false, Ordering::SeqCst);
        // A retry already under way may still fail once.
        let mut ok = false;
        for _ in 0..5 {
            ok = d.wait(t3).await.is_ok();
            if ok {
                break;
            }
        }
        assert!(ok, "a later sync succeeds");
        assert!(d.barrier() >= t3);
        d.stop();
    }
}

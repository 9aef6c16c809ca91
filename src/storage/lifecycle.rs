//! [`Storage`]: the two stores behind one facade that owns the blob lifecycle.
//!
//! - **Writes.** A blob is written first ([`Storage::write_blob`]) and becomes visible only
//!   when metadata referencing it commits. If that commit fails, the blob is recorded as
//!   garbage; a crash in between leaves an orphan for the sweep.
//! - **Supersession.** Whatever stops referencing a blob (an overwrite, a delete, an abort, a
//!   re-uploaded part) records it as garbage in the same metadata commit. Nothing in the
//!   request path deletes a blob.
//! - **Reads.** [`Storage::read`] streams an object's blobs. A read that outlives a third of
//!   the grace period takes a lease on its blobs in the metadata store, renewed while it runs,
//!   so that no node's collector reclaims them under it.
//! - **Reclamation.** The collector deletes garbage older than the grace period that is not
//!   leased, checking blob states in batches; the orphan sweep deletes blobs the metadata
//!   store has no record of, once they are older than the grace period. Both are idempotent,
//!   so several processes sharing one store may run them at once.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt, TryStreamExt};
use tokio::task::JoinHandle;

use super::{
    BlobId, BlobRef, BlobState, BlobStore, ByteStream, GarbageRecord, Lease, MetadataStore, ObjectRecord, PartRecord,
    PutOutcome, StorageError, WriteCondition,
};
use crate::clock::Timestamp;

/// How many garbage records or listed blobs are checked per metadata round trip.
const BATCH: usize = 1000;

/// When unreferenced data is reclaimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcConfig {
    /// Garbage and orphans younger than this are kept: longer than a request takes to get
    /// from reading metadata to holding its blobs (longer reads take leases).
    pub grace: Duration,
    /// How often the collector runs.
    pub interval: Duration,
    /// How often the orphan sweep (and the pruning of remembered completions) runs.
    pub sweep_interval: Duration,
    /// How long a completed upload answers a retried CompleteMultipartUpload.
    pub completed_retention: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace: Duration::from_secs(900),
            interval: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(3600),
            completed_retention: Duration::from_secs(86_400),
        }
    }
}

/// The metadata and blob stores, and the rules that keep them consistent.
pub struct Storage {
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    gc: GcConfig,
    inline_max: u64,
}

/// A piece of an object's bytes to read: a range of a blob (of the given size), or inline
/// bytes.
enum Segment {
    Blob(BlobId, Range<u64>, u64),
    Inline(bytes::Bytes),
}

/// Opens one segment of a read.
async fn open_segment(blobs: &Arc<dyn BlobStore>, segment: Segment) -> Result<ByteStream, StorageError> {
    match segment {
        Segment::Blob(id, r, size) => blobs.get(&id, (r != (0..size)).then_some(r)).await,
        Segment::Inline(bytes) => Ok(Box::pin(futures_util::stream::iter([Ok(bytes)]))),
    }
}

impl Storage {
    /// Objects of at most `inline_max` bytes may be kept in their metadata records.
    pub fn new(meta: Arc<dyn MetadataStore>, blobs: Arc<dyn BlobStore>, gc: GcConfig, inline_max: u64) -> Arc<Storage> {
        Arc::new(Storage { meta, blobs, gc, inline_max })
    }

    /// Whether an object of `len` bytes is kept inside its metadata record.
    pub fn inlines(&self, len: u64) -> bool {
        self.inline_max > 0 && len <= self.inline_max
    }

    /// The metadata store, for reads and for changes that write no new blob.
    pub fn meta(&self) -> &Arc<dyn MetadataStore> {
        &self.meta
    }

    pub fn gc_config(&self) -> GcConfig {
        self.gc
    }

    /// Writes a blob that nothing refers to yet; commit it with [`Storage::put_object`] or
    /// [`Storage::put_part`], or hand it to [`Storage::discard`].
    pub async fn write_blob(&self, body: ByteStream) -> Result<BlobRef, StorageError> {
        self.blobs.put(body).await
    }

    /// Marks blobs whose commit failed as garbage. Best effort: if even that fails, the
    /// orphan sweep finds them.
    pub async fn discard(&self, blobs: Vec<BlobId>) {
        if blobs.is_empty() {
            return;
        }
        if let Err(e) = self.meta.discard_blobs(&blobs).await {
            tracing::warn!(error = %e, count = blobs.len(), "could not record unused blobs; the orphan sweep will");
        }
    }

    /// Commits an object whose blobs were just written; they are discarded if it fails.
    pub async fn put_object(
        &self,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<PutOutcome, StorageError> {
        let blobs: Vec<BlobId> = object.blobs().cloned().collect();
        let result = self.meta.put_object(object, condition).await;
        if result.is_err() {
            self.discard(blobs).await;
        }
        result
    }

    /// Commits a part whose blob was just written; it is discarded if that fails.
    pub async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<Option<PartRecord>, StorageError> {
        let blob = part.blob.clone();
        let result = self.meta.put_part(bucket, key, upload_id, part).await;
        if result.is_err() {
            self.discard(vec![blob]).await;
        }
        result
    }

    /// Commits an object made of blobs existing records refer to (a copy sharing them);
    /// `NotFound(Blob)` when one was released meanwhile. Nothing is discarded on failure:
    /// the blobs are their other records'.
    pub async fn put_object_shared(
        &self,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<PutOutcome, StorageError> {
        self.meta.put_object_shared(object, condition).await
    }

    /// As [`put_object_shared`](Self::put_object_shared), for a part.
    pub async fn put_part_shared(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<Option<PartRecord>, StorageError> {
        self.meta.put_part_shared(bucket, key, upload_id, part).await
    }

    /// The bytes `range` of `object`, read part by part. The first blob is opened now, so
    /// that a missing blob is an error status rather than a truncated body; the rest stay
    /// readable for as long as the stream lives, whatever happens to the object meanwhile.
    pub async fn read(&self, object: &ObjectRecord, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let mut segments = Vec::new();
        let mut offset = 0u64;
        for p in &object.parts {
            let (start, end) = (offset, offset.saturating_add(p.size));
            offset = end;
            if end <= range.start || start >= range.end {
                continue;
            }
            let from = range.start.max(start) - start;
            let to = range.end.min(end) - start;
            segments.push(match &p.inline {
                Some(bytes) => {
                    let (from, to) = (from as usize, (to as usize).min(bytes.len()));
                    Segment::Inline(bytes.slice(from.min(to)..to))
                }
                None => Segment::Blob(p.blob.clone(), from..to, p.size),
            });
        }
        let leased: Vec<BlobId> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Blob(id, ..) => Some(id.clone()),
                Segment::Inline(_) => None,
            })
            .collect();
        let lease = self.lease(leased);
        let blobs = Arc::clone(&self.blobs);
        let mut iter = segments.into_iter();
        let first = match iter.next() {
            Some(segment) => Some(open_segment(&blobs, segment).await?),
            None => None,
        };
        let rest = futures_util::stream::iter(iter)
            .then(move |segment| {
                let blobs = Arc::clone(&blobs);
                async move { open_segment(&blobs, segment).await }
            })
            .map_err(|e: StorageError| std::io::Error::other(e.to_string()))
            .try_flatten();
        let stream = futures_util::stream::iter(first).flatten().chain(rest);
        Ok(Box::pin(Leased { inner: Box::pin(stream), _lease: lease }))
    }

    /// A lease on `blobs` that is written only if the read lasts (most reads finish long
    /// before the grace period and need none) and is removed when the guard drops.
    fn lease(&self, blobs: Vec<BlobId>) -> LeaseGuard {
        if blobs.is_empty() {
            return LeaseGuard { _stop: tokio::sync::oneshot::channel().0 };
        }
        let every = self.gc.grace / 3;
        let grace = self.gc.grace;
        let meta = Arc::clone(&self.meta);
        let id = BlobId::generate().map(|b| b.0).unwrap_or_else(|_| format!("{:x}", Timestamp::now().0));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut written = false;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = &mut stopped => break,
                }
                // Never cut off mid-write: a renewal landing after the removal below would
                // leave a lease behind.
                let lease = Lease { id: id.clone(), blobs: blobs.clone(), expires: Timestamp::now().plus(grace) };
                match meta.put_lease(&lease).await {
                    Ok(()) => written = true,
                    Err(e) => tracing::warn!(error = %e, "could not record a read lease"),
                }
            }
            if written && let Err(e) = meta.delete_lease(&id, None).await {
                tracing::debug!(error = %e, "could not remove a read lease; it expires by itself");
            }
        });
        LeaseGuard { _stop: stop }
    }

    /// Deletes garbage older than the grace period that no lease holds; returns how many.
    pub async fn collect_garbage(&self) -> Result<usize, StorageError> {
        let now = Timestamp::now();
        let before = now.minus(self.gc.grace);
        let mut after: Option<GarbageRecord> = None;
        let mut removed = 0;
        // Loaded once: a read old enough to matter (it started before garbage that is past
        // the grace period arose) wrote its lease before this run began.
        let leased = self.leased().await?;
        loop {
            let page = self.meta.garbage(before, after.as_ref(), BATCH).await?;
            let Some(last) = page.last().cloned() else { break };
            after = Some(last);
            let ids: Vec<BlobId> = page.iter().map(|r| r.blob.clone()).collect();
            let states = self.meta.blob_states(&ids).await?;
            let mut done = Vec::with_capacity(page.len());
            for (record, state) in page.into_iter().zip(states) {
                match state {
                    BlobState::Garbage(since) if since == record.since => {
                        if leased.contains(&record.blob) {
                            continue;
                        }
                        // One blob that cannot be deleted must not stop the rest: it keeps
                        // its record and is tried again next run.
                        if let Err(e) = self.blobs.delete(&record.blob).await {
                            tracing::warn!(blob = %record.blob.0, error = %e, "could not delete a garbage blob");
                            continue;
                        }
                        removed += 1;
                        done.push(record);
                    }
                    // Referenced again (its commit had gone through after all) or already
                    // reclaimed: only the index entry is left to drop.
                    _ => done.push(record),
                }
            }
            self.meta.forget_garbage(&done).await?;
        }
        let m = crate::metrics::metrics();
        m.gc_runs.inc();
        m.gc_reclaimed_blobs.inc_by(removed as u64);
        if removed > 0 {
            tracing::info!(removed, "collector reclaimed unreferenced blobs");
        }
        Ok(removed)
    }

    /// Blobs under a live lease. Expired leases (of readers that died) are removed, unless
    /// renewed meanwhile.
    async fn leased(&self) -> Result<HashSet<BlobId>, StorageError> {
        let now = Timestamp::now();
        let mut out = HashSet::new();
        for lease in self.meta.leases().await? {
            if lease.expires < now {
                self.meta.delete_lease(&lease.id, Some(lease.expires)).await?;
            } else {
                out.extend(lease.blobs);
            }
        }
        Ok(out)
    }

    /// Deletes blobs older than the grace period that the metadata store has no record of
    /// (a crash came between writing one and committing its metadata), and abandoned
    /// temporary files; returns how many blobs.
    pub async fn sweep_orphans(&self) -> Result<usize, StorageError> {
        let grace = self.gc.grace;
        let mut listing = self.blobs.list().try_filter(|(_, age)| std::future::ready(*age >= grace)).chunks(BATCH);
        let mut removed = 0;
        let leased = self.leased().await?;
        while let Some(batch) = listing.next().await {
            let batch: Vec<(BlobId, Duration)> = batch.into_iter().collect::<Result<_, _>>()?;
            let ids: Vec<BlobId> = batch.into_iter().map(|(id, _)| id).collect();
            let states = self.meta.blob_states(&ids).await?;
            for (id, state) in ids.into_iter().zip(states) {
                if state == BlobState::Unknown && !leased.contains(&id) {
                    match self.blobs.delete(&id).await {
                        Ok(()) => removed += 1,
                        Err(e) => tracing::warn!(blob = %id.0, error = %e, "could not delete an orphan blob"),
                    }
                }
            }
        }
        let temporaries = self.blobs.remove_stale_temporaries(grace).await?;
        crate::metrics::metrics().gc_orphans_removed.inc_by((removed + temporaries) as u64);
        if removed > 0 || temporaries > 0 {
            tracing::info!(removed, temporaries, "orphan sweep removed unreferenced blobs");
        }
        Ok(removed)
    }

    /// Forgets completions older than the retention period.
    pub async fn prune_completed(&self) -> Result<usize, StorageError> {
        self.meta.prune_completed(Timestamp::now().minus(self.gc.completed_retention)).await
    }

    /// Runs the collector every `interval` and the sweep (with pruning) every
    /// `sweep_interval`, starting with a sweep, until the handle is aborted.
    pub fn spawn_housekeeping(self: &Arc<Self>) -> JoinHandle<()> {
        let storage = Arc::clone(self);
        tokio::spawn(async move {
            let mut collect = tokio::time::interval(storage.gc.interval);
            let mut sweep = tokio::time::interval(storage.gc.sweep_interval);
            collect.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = collect.tick() => {
                        if let Err(e) = storage.collect_garbage().await {
                            tracing::warn!(error = %e, "garbage collection failed");
                        }
                    }
                    _ = sweep.tick() => {
                        if let Err(e) = storage.sweep_orphans().await {
                            tracing::warn!(error = %e, "orphan sweep failed");
                        }
                        match storage.prune_completed().await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(pruned = n, "forgot old completed uploads"),
                            Err(e) => tracing::warn!(error = %e, "pruning completed uploads failed"),
                        }
                    }
                }
            }
        })
    }
}

/// Keeps a read's lease alive; dropping it tells the lease task to stop renewing and to
/// remove the lease once any renewal in progress has landed.
struct LeaseGuard {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A stream that holds a lease for as long as it lives.
struct Leased {
    inner: ByteStream,
    _lease: LeaseGuard,
}

impl Stream for Leased {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::{MemoryBlobStore, MemoryMetadataStore};
    use crate::storage::{BucketRecord, ContentHeaders, Owner};

    fn storage(grace_ms: u64) -> Arc<Storage> {
        let gc = GcConfig { grace: Duration::from_millis(grace_ms), ..GcConfig::default() };
        Storage::new(Arc::new(MemoryMetadataStore::new()), Arc::new(MemoryBlobStore::new()), gc, 0)
    }

    fn body(bytes: &'static [u8]) -> ByteStream {
        Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from_static(bytes))]))
    }

    fn owner() -> Owner {
        Owner { id: "o".into(), display_name: "o".into() }
    }

    async fn with_bucket(s: &Storage) {
        let owner = Owner { id: "o".into(), display_name: "o".into() };
        let b = BucketRecord {
            name: "b".into(),
            owner,
            region: "us-east-1".into(),
            created: Timestamp(0),
            versioning: crate::storage::Versioning::Unversioned,
        };
        s.meta().create_bucket(b).await.expect("bucket");
    }

    async fn object_of(s: &Storage, key: &str, parts: &[&'static [u8]]) -> ObjectRecord {
        let mut records = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let blob = s.write_blob(body(p)).await.expect("blob");
            records.push(PartRecord {
                part_number: u32::try_from(i + 1).expect("small"),
                blob: blob.id,
                size: blob.len,
                md5: [0; 16],
                last_modified: Timestamp(0),
                checksums: vec![],
                inline: None,
            });
        }
        ObjectRecord {
            bucket: "b".into(),
            key: key.into(),
            version_id: crate::storage::VersionId::Null,
            version_key: crate::storage::VersionKey([0; 20]),
            delete_marker: false,
            size: records.iter().map(|p| p.size).sum(),
            etag: "e".into(),
            last_modified: Timestamp(0),
            owner: Owner { id: "o".into(), display_name: "o".into() },
            storage_class: crate::storage::StorageClass::Standard,
            headers: ContentHeaders::default(),
            user_metadata: vec![],
            tags: vec![],
            multipart: records.len() > 1,
            parts: records,
            checksum: None,
            acl: None,
        }
    }

    async fn exists(s: &Storage, id: &BlobId) -> bool {
        s.blobs.get(id, None).await.is_ok()
    }

    #[tokio::test]
    async fn garbage_is_reclaimed_only_after_the_grace_period() {
        let s = storage(300);
        with_bucket(&s).await;
        let first = object_of(&s, "k", &[b"one"]).await;
        let old = first.parts[0].blob.clone();
        s.put_object(first, &WriteCondition::None).await.expect("put");
        let second = object_of(&s, "k", &[b"two"]).await;
        let new = second.parts[0].blob.clone();
        s.put_object(second, &WriteCondition::None).await.expect("overwrite");
        assert_eq!(s.collect_garbage().await.expect("collect"), 0, "too young");
        assert!(exists(&s, &old).await);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(s.collect_garbage().await.expect("collect"), 1);
        assert!(!exists(&s, &old).await && exists(&s, &new).await);
        assert_eq!(s.meta().blob_states(std::slice::from_ref(&old)).await.expect("state"), [BlobState::Unknown]);
        assert!(s.meta().garbage(Timestamp(i64::MAX), None, 10).await.expect("garbage").is_empty());
        assert_eq!(s.collect_garbage().await.expect("collect"), 0);
    }

    #[tokio::test]
    async fn a_failed_commit_discards_its_blob() {
        let s = storage(100);
        let orphan = object_of(&s, "k", &[b"x"]).await;
        let id = orphan.parts[0].blob.clone();
        assert!(matches!(s.put_object(orphan, &WriteCondition::None).await, Err(StorageError::NotFound(_))));
        assert!(matches!(
            s.meta().blob_states(std::slice::from_ref(&id)).await.expect("state")[0],
            BlobState::Garbage(_)
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(s.collect_garbage().await.expect("collect"), 1);
        assert!(!exists(&s, &id).await);
    }

    /// A GET of a multipart object racing an overwrite and a delete once stopped after its
    /// first part: later parts were deleted before the reader reached them.
    #[tokio::test]
    async fn a_long_read_keeps_its_blobs_through_overwrite_delete_and_collection() {
        let s = storage(300);
        with_bucket(&s).await;
        let object = object_of(&s, "k", &[b"aaa", b"bbb", b"ccc"]).await;
        s.put_object(object.clone(), &WriteCondition::None).await.expect("put");
        let mut stream = s.read(&object, 0..9).await.expect("read");
        let first = stream.next().await.expect("chunk").expect("bytes");
        assert_eq!(&first[..], b"aaa");
        let replacement = object_of(&s, "k", &[b"new"]).await;
        s.put_object(replacement, &WriteCondition::None).await.expect("overwrite");
        s.meta().delete_object("b", "k", None, &owner()).await.expect("delete");
        // Past the grace period: without the reader's lease the old parts would go now.
        tokio::time::sleep(Duration::from_millis(450)).await;
        // Only the replacement (which nobody reads) goes.
        assert_eq!(s.collect_garbage().await.expect("collect"), 1);
        let mut rest = Vec::new();
        while let Some(chunk) = stream.next().await {
            rest.extend_from_slice(&chunk.expect("bytes"));
        }
        assert_eq!(rest, b"bbbccc");
        assert_eq!(s.meta().leases().await.expect("leases").len(), 1);
        drop(stream);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(s.meta().leases().await.expect("leases").is_empty(), "the lease goes with the reader");
        assert_eq!(s.collect_garbage().await.expect("collect"), 3, "every old part once nobody reads them");
        for p in &object.parts {
            assert!(!exists(&s, &p.blob).await);
        }
    }

    #[tokio::test]
    async fn an_expired_lease_of_a_dead_reader_does_not_pin_garbage() {
        let s = storage(100);
        with_bucket(&s).await;
        let object = object_of(&s, "k", &[b"x"]).await;
        let id = object.parts[0].blob.clone();
        s.put_object(object, &WriteCondition::None).await.expect("put");
        let dead = Lease { id: "dead".into(), blobs: vec![id.clone()], expires: Timestamp::now() };
        s.meta().put_lease(&dead).await.expect("lease");
        s.meta().delete_object("b", "k", None, &owner()).await.expect("delete");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(s.collect_garbage().await.expect("collect"), 1);
        assert!(s.meta().leases().await.expect("leases").is_empty());
    }

    #[tokio::test]
    async fn the_sweep_removes_only_old_blobs_the_metadata_does_not_know() {
        let s = storage(200);
        with_bucket(&s).await;
        let kept = object_of(&s, "k", &[b"kept"]).await;
        let kept_id = kept.parts[0].blob.clone();
        s.put_object(kept, &WriteCondition::None).await.expect("put");
        let gone = object_of(&s, "g", &[b"gone"]).await;
        let garbage_id = gone.parts[0].blob.clone();
        s.put_object(gone, &WriteCondition::None).await.expect("put");
        s.meta().delete_object("b", "g", None, &owner()).await.expect("delete");
        let orphan = s.write_blob(body(b"orphan")).await.expect("orphan").id;
        assert_eq!(s.sweep_orphans().await.expect("sweep"), 0, "everything is young");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let young = s.write_blob(body(b"in flight")).await.expect("young").id;
        assert_eq!(s.sweep_orphans().await.expect("sweep"), 1);
        assert!(!exists(&s, &orphan).await);
        assert!(exists(&s, &kept_id).await, "referenced");
        assert!(exists(&s, &garbage_id).await, "garbage is the collector's");
        assert!(exists(&s, &young).await, "may still be committed");
    }
}

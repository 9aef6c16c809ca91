//! [`RocksMetadataStore`]: metadata in an embedded RocksDB.
//!
//! Durability: with `sync` on (the default), no method returns before a WAL sync covers its
//! write batch (and, for a method that wrote nothing, every write it could have read), so an
//! acknowledged write survives `kill -9` and power loss; one thread per store makes the syncs
//! (see [`durability`]). Small writes whose locks are free run on the calling task; the
//! others, and long scans, on tokio's blocking pool. Point reads run on the calling task and
//! may see writes not yet synced (whose requests are not yet answered, and which a crash may
//! still lose: until its sync a write sits in RocksDB's WAL buffer). Read-check-write
//! sequences (create if absent, delete if empty, conditional writes) hold striped locks on
//! what they touch (see [`locks`]), which makes each trait method atomic with respect to the
//! others while writes to different keys commit together, sharing WAL syncs.
//!
//! Blob rows live in the `blobs` family (a reference count, or the time the blob became
//! garbage), with a time-ordered index of garbage in `garbage`; both change in the same
//! batch as the records that reference or stop referencing a blob (see [`Batch`]).

mod durability;
mod keys;
mod locks;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rocksdb::{
    ColumnFamily, DB, DBRawIterator, Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions,
};

use durability::Durability;
use locks::{BucketMode, LockSet, Locks};

use super::refs::{self, BlobRow, Origin, RefChanges};

use super::codec::{self, Record};
use super::users::{UserChange, Users};
use super::{
    BlobId, BlobState, BucketPage, BucketRecord, BucketSetting, BucketSettingKind, CompleteOutcome, CompletedUpload,
    DeleteOutcome, GarbageRecord, Lease, ListBucketsQuery, ListObjectsQuery, ListUploadsQuery, ListVersionsQuery,
    MetadataStore, ObjectPage, ObjectRecord, Owner, PartPage, PartRecord, PutOutcome, Resource, StorageError,
    UploadPage, UploadRecord, UserRecord, VersionEntry, VersionId, VersionKey, VersionPage, Versioning, WorkClaim,
    WriteCondition, marker_common_prefix,
};
use super::{Grouped, Pager, Step, listing_start};
use crate::clock::Timestamp;

/// The column families, one per record kind.
#[derive(Clone, Copy, Debug)]
enum Cf {
    /// bucket name → BucketRecord
    Buckets,
    /// keys::upload → UploadRecord
    Uploads,
    /// keys::upload_id → keys::upload
    UploadIds,
    /// keys::object → ObjectRecord: the latest version, when it is not a delete marker
    Objects,
    /// keys::version → ObjectRecord: every version and delete marker
    Versions,
    /// keys::object → VersionKey bytes of the key's `null` version
    Nulls,
    /// keys::setting → BucketSetting
    Settings,
    /// "format" → the layout version of the whole database
    Meta,
    /// claim name → WorkClaim
    Claims,
    /// keys::part → PartRecord
    Parts,
    /// keys::completed → CompletedUpload
    Completed,
    /// blob id → keys::blob_row: its reference count, or since when it is garbage
    Blobs,
    /// keys::garbage → empty: garbage in the order it arose
    Garbage,
    /// lease id → Lease
    Leases,
    /// user id → UserRecord
    Users,
}

impl Cf {
    const ALL: [Cf; 15] = [
        Cf::Buckets,
        Cf::Uploads,
        Cf::UploadIds,
        Cf::Objects,
        Cf::Versions,
        Cf::Nulls,
        Cf::Settings,
        Cf::Meta,
        Cf::Claims,
        Cf::Parts,
        Cf::Completed,
        Cf::Blobs,
        Cf::Garbage,
        Cf::Leases,
        Cf::Users,
    ];

    fn name(self) -> &'static str {
        match self {
            Cf::Buckets => "buckets",
            Cf::Uploads => "uploads",
            Cf::UploadIds => "upload_ids",
            Cf::Objects => "objects",
            Cf::Versions => "versions",
            Cf::Nulls => "nulls",
            Cf::Settings => "settings",
            Cf::Meta => "meta",
            Cf::Claims => "claims",
            Cf::Parts => "parts",
            Cf::Completed => "completed",
            Cf::Blobs => "blobs",
            Cf::Garbage => "garbage",
            Cf::Leases => "leases",
            Cf::Users => "users",
        }
    }
}

/// Table files RocksDB keeps open; the connection limit leaves room for them.
pub const MAX_OPEN_FILES: i32 = 512;

struct Inner {
    db: DB,
    /// Set once `db` has closed (fields drop in order): the store may be opened again.
    _closed: CloseFlag,
    sync: bool,
    locks: Locks,
    /// With `sync`: when writes are synced (see [`durability`]).
    durability: Arc<Durability>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.durability.stop();
    }
}

/// A method run on the caller's task ([`RocksMetadataStore::locked`]) must not wait: not
/// for a blob-count lock another method holds, nor for a RocksDB write slowdown. It gives up
/// instead, before writing anything (each such method writes one batch, last), and runs
/// again on a blocking thread.
mod inline {
    use std::cell::Cell;

    use crate::storage::StorageError;

    thread_local! {
        static ACTIVE: Cell<bool> = const { Cell::new(false) };
        static GAVE_UP: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn enter() {
        ACTIVE.with(|a| a.set(true));
        GAVE_UP.with(|g| g.set(false));
    }

    /// Ends the inline run; whether it gave up.
    pub(super) fn leave() -> bool {
        ACTIVE.with(|a| a.set(false));
        GAVE_UP.with(|g| g.replace(false))
    }

    pub(super) fn active() -> bool {
        ACTIVE.with(Cell::get)
    }

    /// Marks the run as given up; the error only unwinds the method.
    pub(super) fn gave_up() -> StorageError {
        GAVE_UP.with(|g| g.set(true));
        StorageError::Unavailable("the metadata call would wait".into())
    }
}

/// Sets its flag when dropped.
struct CloseFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CloseFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// One method's writes, with the reference changes they make to blobs: those are turned
/// into rows when the batch is committed, under the blobs' locks, so that steps sharing a
/// blob count it right whatever their order.
#[derive(Default)]
struct Batch {
    write: WriteBatch,
    refs: RefChanges,
}

impl std::ops::Deref for Batch {
    type Target = WriteBatch;
    fn deref(&self) -> &WriteBatch {
        &self.write
    }
}

impl std::ops::DerefMut for Batch {
    fn deref_mut(&mut self) -> &mut WriteBatch {
        &mut self.write
    }
}

fn io(e: rocksdb::Error) -> StorageError {
    StorageError::Io(e.into_string())
}

impl Inner {
    fn cf(&self, cf: Cf) -> Result<&ColumnFamily, StorageError> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| StorageError::Corrupt(format!("missing column family {}", cf.name())))
    }

    fn get<T: Record>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.db.get_pinned_cf(self.cf(cf)?, key).map_err(io)? {
            Some(v) => codec::decode(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Syncs the WAL here, and records that every write so far is durable.
    fn sync_wal(&self) -> Result<(), StorageError> {
        let upto = self.durability.barrier();
        self.db.flush_wal(true).map_err(io)?;
        self.durability.synced(upto);
        Ok(())
    }

    /// Writes `batch` without waiting for the WAL sync: with `sync`, the store method that
    /// wrote waits for a sync covering it before it returns (see [`durability`]), so an
    /// acknowledged request survives power loss. Turning `sync` off trades that for latency.
    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut opts = WriteOptions::default();
        // On a caller's task, a write RocksDB would slow down or stop is not waited for.
        opts.set_no_slowdown(inline::active());
        match self.db.write_opt(batch, &opts) {
            Ok(()) => {}
            Err(e) if inline::active() && e.kind() == rocksdb::ErrorKind::Incomplete => return Err(inline::gave_up()),
            Err(e) => return Err(io(e)),
        }
        if self.sync {
            self.durability.wrote();
        }
        Ok(())
    }

    /// Writes `batch` with its blobs' new rows; `NotFound(Blob)` (and nothing written) when
    /// it shares a blob that is no longer referenced.
    fn commit(&self, mut batch: Batch) -> Result<(), StorageError> {
        if batch.refs.is_empty() {
            return self.write(batch.write);
        }
        let _blobs = if inline::active() {
            self.locks.try_blobs(batch.refs.ids()).ok_or_else(inline::gave_up)?
        } else {
            self.locks.blobs(batch.refs.ids())
        };
        let current = self.blob_rows(batch.refs.ids())?;
        for (blob, row) in batch.refs.resolve(&current, Timestamp::now())? {
            self.stage_row(&mut batch.write, &blob, row)?;
        }
        self.write(batch.write)
    }

    fn blob_rows<'a>(&self, ids: impl IntoIterator<Item = &'a BlobId>) -> Result<Vec<BlobRow>, StorageError> {
        self.db
            .batched_multi_get_cf(self.cf(Cf::Blobs)?, ids.into_iter().map(|b| b.0.as_bytes()), false)
            .into_iter()
            .map(|r| match r.map_err(io)? {
                None => Ok(BlobRow::Unknown),
                Some(v) => keys::parse_blob_row(&v),
            })
            .collect()
    }

    /// Writes a blob's row, and indexes it when it becomes garbage.
    fn stage_row(&self, batch: &mut WriteBatch, blob: &BlobId, row: BlobRow) -> Result<(), StorageError> {
        batch.put_cf(self.cf(Cf::Blobs)?, blob.0.as_bytes(), keys::blob_row(row));
        if let BlobRow::Garbage(since) = row {
            batch.put_cf(self.cf(Cf::Garbage)?, keys::garbage(since, &blob.0), b"");
        }
        Ok(())
    }

    /// Whether any key of `cf` starts with `prefix`.
    fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool, StorageError> {
        let mut it = self.db.iterator_cf(self.cf(cf)?, IteratorMode::From(prefix, Direction::Forward));
        match it.next() {
            Some(Ok((k, _))) => Ok(k.starts_with(prefix)),
            Some(Err(e)) => Err(io(e)),
            None => Ok(false),
        }
    }

    /// Fills `pager` from a family keyed by object key (`Objects`, `Versions`, `Uploads`),
    /// from the raw key `start`: keys are read as they are, a common prefix is one seek past
    /// all of its keys (as are keys under `skip_under`, the common prefix a previous page
    /// ended with), and `item` makes each entry the page shows from its key and value (it is
    /// not called for the others); its first error ends the scan.
    fn scan_keys<T>(
        &self,
        cf: Cf,
        bucket: &str,
        start: &[u8],
        skip_under: Option<&str>,
        pager: &mut Pager<T>,
        mut item: impl FnMut(&str, &[u8]) -> Result<T, StorageError>,
    ) -> Result<(), StorageError> {
        let bucket_prefix = keys::bucket_prefix(bucket);
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek(start);
        while let Some(raw) = it.key() {
            if !raw.starts_with(&bucket_prefix) {
                break;
            }
            let key = keys::object_key_of(raw, bucket_prefix.len())
                .ok_or_else(|| StorageError::Corrupt(format!("{} index key", cf.name())))?;
            let step = match skip_under.filter(|s| key.starts_with(s)) {
                Some(s) => super::prefix_end(s.as_bytes()).map_or(Step::Stop, Step::SkipTo),
                None => {
                    let value = it.value().ok_or_else(|| StorageError::Corrupt(format!("{} value", cf.name())))?;
                    pager.offer_with(&key, || item(&key, value))?
                }
            };
            match step {
                Step::Next => it.next(),
                Step::SkipTo(k) => it.seek(keys::object_seek(bucket, &k)),
                Step::Stop => break,
            }
        }
        it.status().map_err(io)
    }

    /// One page of latest objects, from the object key bytes `start`.
    fn group_objects(
        &self,
        bucket: &str,
        start: &[u8],
        prefix: &str,
        delimiter: Option<&str>,
        max: usize,
    ) -> Result<Grouped<ObjectRecord>, StorageError> {
        let mut pager = Pager::new(prefix, delimiter, max);
        // Decoded from the iterator's own buffer (no copy), and only the records listed.
        self.scan_keys(Cf::Objects, bucket, &keys::object_seek(bucket, start), None, &mut pager, |_, v| {
            codec::decode::<ObjectRecord>(v)
        })?;
        Ok(pager.finish())
    }

    /// An iterator over a key's versions (delete markers included), newest first, that
    /// reads nothing past them.
    fn versions_of(&self, bucket: &str, key: &str) -> Result<(DBRawIterator<'_>, usize), StorageError> {
        let prefix = keys::object(bucket, key);
        let mut opts = ReadOptions::default();
        // An object key ends in 0x00 0x01 (see `keys::object`), so it always has an end.
        if let Some(end) = super::prefix_end(&prefix) {
            opts.set_iterate_upper_bound(end);
        }
        let mut it = self.db.raw_iterator_cf_opt(self.cf(Cf::Versions)?, opts);
        it.seek(&prefix);
        Ok((it, prefix.len()))
    }

    /// The newest `n` versions of a key (delete markers included), newest first.
    fn newest_versions(&self, bucket: &str, key: &str, n: usize) -> Result<Vec<ObjectRecord>, StorageError> {
        let (mut it, _) = self.versions_of(bucket, key)?;
        let mut found = Vec::new();
        while found.len() < n {
            let Some(v) = it.value() else { break };
            found.push(codec::decode::<ObjectRecord>(v)?);
            it.next();
        }
        it.status().map_err(io)?;
        Ok(found)
    }

    /// The version key of a key's newest version (delete markers included), read from the
    /// index key alone: no record is decoded.
    fn newest_key(&self, bucket: &str, key: &str) -> Result<Option<VersionKey>, StorageError> {
        let (it, skip) = self.versions_of(bucket, key)?;
        match it.key() {
            Some(raw) => raw
                .get(skip..)
                .and_then(|v| <[u8; 20]>::try_from(v).ok())
                .map(|v| Some(VersionKey(v)))
                .ok_or_else(|| StorageError::Corrupt("a version index key".into())),
            None => it.status().map(|()| None).map_err(io),
        }
    }

    /// Checks a write's condition against the key's current object. That is read from the
    /// listing index, which holds the latest version unless it is a delete marker (then no
    /// object, as for the condition); without a condition nothing is read.
    fn check_condition(&self, condition: &WriteCondition, bucket: &str, key: &str) -> Result<(), StorageError> {
        if *condition == WriteCondition::None {
            return Ok(());
        }
        condition.check(self.get::<ObjectRecord>(Cf::Objects, &keys::object(bucket, key))?.as_ref())
    }

    fn newest(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StorageError> {
        Ok(self.newest_versions(bucket, key, 1)?.into_iter().next())
    }

    fn find_version(&self, bucket: &str, key: &str, version: VersionId) -> Result<Option<VersionKey>, StorageError> {
        match version {
            // A pointer of the wrong length is corruption, not a missing null version: a
            // write taking it for absent would put a second null version beside the first.
            VersionId::Null => self
                .db
                .get_pinned_cf(self.cf(Cf::Nulls)?, keys::object(bucket, key))
                .map_err(io)?
                .map(|v| {
                    <[u8; 20]>::try_from(v.as_ref())
                        .map(VersionKey)
                        .map_err(|_| StorageError::Corrupt("a null version pointer".into()))
                })
                .transpose(),
            VersionId::Id(k) => Ok(self
                .db
                .get_pinned_cf(self.cf(Cf::Versions)?, keys::version(bucket, key, &k))
                .map_err(io)?
                .map(|_| k)),
        }
    }

    fn version(&self, bucket: &str, key: &str, vkey: &VersionKey) -> Result<Option<ObjectRecord>, StorageError> {
        self.get(Cf::Versions, &keys::version(bucket, key, vkey))
    }

    fn versioning(&self, bucket: &str) -> Result<Versioning, StorageError> {
        self.get::<BucketRecord>(Cf::Buckets, bucket.as_bytes())?
            .map(|b| b.versioning)
            .ok_or(StorageError::NotFound(Resource::Bucket))
    }

    /// Shows `latest` (the key's newest version after this batch) in `Objects`, unless it is
    /// a delete marker or there is none.
    fn stage_latest(
        &self,
        batch: &mut WriteBatch,
        bucket: &str,
        key: &str,
        latest: Option<&ObjectRecord>,
    ) -> Result<(), StorageError> {
        let k = keys::object(bucket, key);
        match latest.filter(|v| !v.delete_marker) {
            // The listing index keeps what a listing shows: reads go to the version's record,
            // so its parts, content headers and user metadata are left out, and listings
            // decode small records.
            Some(v) => batch.put_cf(self.cf(Cf::Objects)?, k, codec::encode(&v.listed())?),
            None => batch.delete_cf(self.cf(Cf::Objects)?, k),
        }
        Ok(())
    }

    /// Adds the writes of a new version to `batch`: a new id when versioning is enabled,
    /// else the `null` version replacing the previous one (returned; its blobs lose its
    /// references). Version times stay strictly increasing within a key.
    fn stage_version(
        &self,
        batch: &mut Batch,
        mut object: ObjectRecord,
        versioning: Versioning,
        origin: Origin,
    ) -> Result<(ObjectRecord, Option<ObjectRecord>), StorageError> {
        let (bucket, key) = (object.bucket.clone(), object.key.clone());
        let null_version = self.find_version(&bucket, &key, VersionId::Null)?;
        let floor = match versioning {
            // A bucket never versioned holds only null versions: at most one per key.
            Versioning::Unversioned => null_version,
            Versioning::Enabled | Versioning::Suspended => self.newest_key(&bucket, &key)?,
        }
        .map(|k| k.time());
        let time = match floor {
            Some(f) if f >= object.last_modified => Timestamp(f.0.saturating_add(1)),
            _ => object.last_modified,
        };
        let null = versioning != Versioning::Enabled;
        object.version_key = super::version::new_key(time, null)?;
        object.version_id = if null { VersionId::Null } else { VersionId::Id(object.version_key) };
        let replaced = match null_version.filter(|_| null) {
            Some(old) => {
                let r = self.version(&bucket, &key, &old)?;
                batch.delete_cf(self.cf(Cf::Versions)?, keys::version(&bucket, &key, &old));
                r
            }
            None => None,
        };
        batch.refs.acquire(object.blobs(), origin);
        if let Some(r) = &replaced {
            batch.refs.release(r.blobs());
        }
        if null {
            batch.put_cf(self.cf(Cf::Nulls)?, keys::object(&bucket, &key), object.version_key.0);
        }
        batch.put_cf(
            self.cf(Cf::Versions)?,
            keys::version(&bucket, &key, &object.version_key),
            codec::encode(&object)?,
        );
        self.stage_latest(batch, &bucket, &key, Some(&object))?;
        Ok((object, replaced))
    }

    /// Adds a delete without a version id to `batch`: the null version's removal in an
    /// unversioned bucket, else a delete marker.
    fn stage_delete_latest(
        &self,
        batch: &mut Batch,
        bucket: &str,
        key: &str,
        versioning: Versioning,
        owner: &Owner,
    ) -> Result<DeleteOutcome, StorageError> {
        if versioning == Versioning::Unversioned {
            let removed = match self.find_version(bucket, key, VersionId::Null)? {
                Some(k) => self.stage_version_removal(batch, bucket, key, &k)?,
                None => None,
            };
            return Ok(DeleteOutcome { removed, marker: None });
        }
        let marker = ObjectRecord::delete_marker(bucket, key, owner.clone(), Timestamp::now());
        let (marker, replaced) = self.stage_version(batch, marker, versioning, Origin::Written)?;
        Ok(DeleteOutcome { removed: replaced, marker: Some(marker) })
    }

    /// Adds a DeleteObject to `batch`: of `version`, or of the latest without one.
    fn stage_delete(
        &self,
        batch: &mut Batch,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        versioning: Versioning,
        owner: &Owner,
    ) -> Result<DeleteOutcome, StorageError> {
        Ok(match version {
            Some(v) => {
                let removed = match self.find_version(bucket, key, v)? {
                    Some(k) => self.stage_version_removal(batch, bucket, key, &k)?,
                    None => None,
                };
                DeleteOutcome { removed, marker: None }
            }
            None => self.stage_delete_latest(batch, bucket, key, versioning, owner)?,
        })
    }

    /// Adds the removal of a version to `batch` (its blobs become garbage; the next version
    /// becomes the latest if it was).
    fn stage_version_removal(
        &self,
        batch: &mut Batch,
        bucket: &str,
        key: &str,
        vkey: &VersionKey,
    ) -> Result<Option<ObjectRecord>, StorageError> {
        let Some(removed) = self.version(bucket, key, vkey)? else {
            return Ok(None);
        };
        batch.delete_cf(self.cf(Cf::Versions)?, keys::version(bucket, key, vkey));
        if removed.version_id.is_null() {
            batch.delete_cf(self.cf(Cf::Nulls)?, keys::object(bucket, key));
        }
        batch.refs.release(removed.blobs());
        let newest = self.newest_versions(bucket, key, 2)?;
        if newest.first().is_some_and(|v| v.version_key == *vkey) {
            self.stage_latest(batch, bucket, key, newest.get(1))?;
        }
        Ok(Some(removed))
    }

    /// Removes every upload of `bucket` with its parts, and its remembered completions.
    fn stage_bucket_uploads_removal(&self, batch: &mut Batch, bucket: &str) -> Result<(), StorageError> {
        let prefix = keys::bucket_prefix(bucket);
        let uploads: Vec<(Vec<u8>, UploadRecord)> = self
            .db
            .iterator_cf(self.cf(Cf::Uploads)?, IteratorMode::From(&prefix, Direction::Forward))
            .map(|item| item.map_err(io))
            .take_while(|item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .map(|item| item.and_then(|(k, v)| Ok((k.to_vec(), codec::decode::<UploadRecord>(&v)?))))
            .collect::<Result<_, _>>()?;
        for (pk, u) in uploads {
            let parts = self.stage_upload_removal(batch, &pk, bucket, &u.upload_id)?;
            batch.refs.release(parts.iter().map(|p| &p.blob));
        }
        let completed: Vec<Vec<u8>> = self
            .db
            .iterator_cf(self.cf(Cf::Completed)?, IteratorMode::From(&prefix, Direction::Forward))
            .map(|item| item.map_err(io))
            .take_while(|item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .map(|item| item.map(|(k, _)| k.to_vec()))
            .collect::<Result<_, _>>()?;
        for k in completed {
            batch.delete_cf(self.cf(Cf::Completed)?, k);
        }
        Ok(())
    }

    /// The parts of an upload, in part-number order, starting after `after`.
    fn parts(
        &self,
        bucket: &str,
        upload_id: &str,
        after: u32,
    ) -> Result<impl Iterator<Item = Result<PartRecord, StorageError>> + '_, StorageError> {
        let prefix = keys::part_prefix(bucket, upload_id);
        // Just past part `after`: the first part numbered above it.
        let from = keys::successor(keys::part(bucket, upload_id, after));
        Ok(self
            .db
            .iterator_cf(self.cf(Cf::Parts)?, IteratorMode::From(&from, Direction::Forward))
            .map(|item| item.map_err(io))
            .take_while(move |item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .map(|item| item.and_then(|(_, v)| codec::decode::<PartRecord>(&v))))
    }

    /// Removes an upload with all its parts in `batch`, returning the parts.
    fn stage_upload_removal(
        &self,
        batch: &mut WriteBatch,
        pk: &[u8],
        bucket: &str,
        upload_id: &str,
    ) -> Result<Vec<PartRecord>, StorageError> {
        let parts: Vec<PartRecord> = self.parts(bucket, upload_id, 0)?.collect::<Result<_, _>>()?;
        for p in &parts {
            batch.delete_cf(self.cf(Cf::Parts)?, keys::part(bucket, upload_id, p.part_number));
        }
        batch.delete_cf(self.cf(Cf::Uploads)?, pk);
        batch.delete_cf(self.cf(Cf::UploadIds)?, keys::upload_id(bucket, upload_id));
        Ok(parts)
    }

    fn users(&self) -> Result<Users, StorageError> {
        let users: Vec<UserRecord> = self
            .db
            .iterator_cf(self.cf(Cf::Users)?, IteratorMode::Start)
            .map(|item| item.map_err(io).and_then(|(_, v)| codec::decode::<UserRecord>(&v)))
            .collect::<Result<_, _>>()?;
        Ok(Users::new(users))
    }

    /// The upload key of `upload_id` and its record, provided it belongs to `key`.
    fn find_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(Vec<u8>, UploadRecord), StorageError> {
        let not_found = StorageError::NotFound(Resource::Upload);
        let pk = self
            .db
            .get_cf(self.cf(Cf::UploadIds)?, keys::upload_id(bucket, upload_id))
            .map_err(io)?
            .ok_or(StorageError::NotFound(Resource::Upload))?;
        let record: UploadRecord = self.get(Cf::Uploads, &pk)?.ok_or(not_found)?;
        if record.key != key {
            return Err(StorageError::NotFound(Resource::Upload));
        }
        Ok((pk, record))
    }
}

/// The layout `Meta["format"]` names: 2, objects as versions; 3, blob rows may count more
/// than one reference (copies share blobs), which a release that knows only 2 would
/// miscount, so such a release must not open it; 4, object and upload records may be in
/// record format 4 (with ACL grants), which a release that knows only 3 cannot read.
const FORMAT: u8 = 4;

impl Inner {
    /// Brings a database written by an older release to the current layout, once; refuses
    /// one written by a newer release.
    fn migrate(&self) -> Result<(), StorageError> {
        let meta = self.cf(Cf::Meta)?;
        match self.db.get_pinned_cf(meta, b"format").map_err(io)?.as_deref() {
            Some([f]) if *f == FORMAT => return Ok(()),
            Some([f]) if *f > FORMAT => {
                return Err(StorageError::Corrupt(format!(
                    "the metadata database has format {f}, newer than this s3d knows ({FORMAT}): upgrade s3d"
                )));
            }
            // Formats 2 → 3 → 4 change no record (old records stay readable): only the mark.
            Some([2 | 3]) => return self.write_format(),
            Some(other) => return Err(StorageError::Corrupt(format!("unknown metadata format mark {other:?}"))),
            None => {}
        }
        // Format 1 kept only the current objects: each becomes its key's `null` version.
        let mut batch = WriteBatch::default();
        let mut migrated = 0usize;
        for item in self.db.iterator_cf(self.cf(Cf::Objects)?, IteratorMode::Start) {
            let (k, v) = item.map_err(io)?;
            let o: ObjectRecord = codec::decode(&v)?;
            batch.put_cf(self.cf(Cf::Versions)?, keys::version(&o.bucket, &o.key, &o.version_key), codec::encode(&o)?);
            batch.put_cf(self.cf(Cf::Nulls)?, &k, o.version_key.0);
            batch.put_cf(self.cf(Cf::Objects)?, &k, codec::encode(&o)?);
            migrated += 1;
            if batch.len() >= 3000 {
                self.write(std::mem::take(&mut batch))?;
            }
        }
        self.write(batch)?;
        if migrated > 0 {
            tracing::info!(objects = migrated, "metadata migrated to versioned objects");
        }
        self.write_format()
    }

    fn write_format(&self) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(Cf::Meta)?, b"format", [FORMAT]);
        self.write(batch)
    }
}

/// Metadata in RocksDB under one directory.
#[derive(Clone)]
pub struct RocksMetadataStore {
    inner: Arc<Inner>,
}

impl RocksMetadataStore {
    /// Opens (creating if needed) the database in `path`. `sync` makes every write durable
    /// before it is acknowledged.
    pub fn open(path: &Path, sync: bool) -> Result<Self, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.set_keep_log_file_num(4);
        if sync {
            // Writes stay in RocksDB's WAL buffer until the syncing thread writes and syncs
            // it (`FlushWAL(true)`), once for every write waiting: one write call and one
            // sync per group instead of a write call per batch. No write is acknowledged
            // before that sync; an unacknowledged one may be lost to a crash, as before.
            opts.set_manual_wal_flush(true);
        }
        // Bounded, so that client connections cannot be starved of file descriptors by
        // table files (and the other way round).
        opts.set_max_open_files(MAX_OPEN_FILES);
        let db = DB::open_cf(&opts, path, Cf::ALL.map(Cf::name)).map_err(io)?;
        let closed = CloseFlag(Arc::new(std::sync::atomic::AtomicBool::new(false)));
        let inner = Inner { db, _closed: closed, sync, locks: Locks::new(), durability: Durability::new() };
        inner.migrate()?;
        let inner = Arc::new(inner);
        if sync {
            // The migration's writes are synced here, so the syncing thread has nothing to do
            // for them (and never holds a store that failed to start up).
            inner.sync_wal()?;
            let sync_wal = |i: &Inner| i.db.flush_wal(true).map_err(|e| e.to_string());
            inner.durability.spawn(Arc::downgrade(&inner), sync_wal).map_err(|e| StorageError::Io(e.to_string()))?;
        }
        Ok(RocksMetadataStore { inner })
    }

    async fn write_object(
        &self,
        object: ObjectRecord,
        condition: &WriteCondition,
        origin: Origin,
    ) -> Result<PutOutcome, StorageError> {
        let condition = condition.clone();
        let set = LockSet::bucket(&object.bucket, BucketMode::Shared).key(&object.bucket, &object.key);
        self.locked(set, move |db| {
            let versioning = db.versioning(&object.bucket)?;
            db.check_condition(&condition, &object.bucket, &object.key)?;
            let mut batch = Batch::default();
            let (stored, replaced) = db.stage_version(&mut batch, object, versioning, origin)?;
            db.commit(batch)?;
            Ok(PutOutcome { version_id: stored.version_id, replaced })
        })
        .await
    }

    async fn write_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
        origin: Origin,
    ) -> Result<Option<PartRecord>, StorageError> {
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        let set = LockSet::bucket(&bucket, BucketMode::Shared).upload(&bucket, &upload_id);
        self.locked(set, move |db| {
            db.find_upload(&bucket, &key, &upload_id)?;
            let pk = keys::part(&bucket, &upload_id, part.part_number);
            let old: Option<PartRecord> = db.get(Cf::Parts, &pk)?;
            let mut batch = Batch::default();
            batch.put_cf(db.cf(Cf::Parts)?, &pk, codec::encode(&part)?);
            batch.refs.acquire([&part.blob], origin);
            if let Some(old) = &old {
                batch.refs.release([&old.blob]);
            }
            db.commit(batch)?;
            Ok(old)
        })
        .await
    }

    /// Whether the database has closed: every handle is gone, and so is every piece of work
    /// it ran on a blocking thread (which may outlive a request that was cut off).
    pub fn closed_probe(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let closed = Arc::clone(&self.inner._closed.0);
        move || closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Reads every user, lets `f` decide the change, and commits it in one batch.
    async fn change_users<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Users) -> Result<(T, UserChange), StorageError> + Send + 'static,
    {
        self.blocking(move |db| {
            let _guard = db.locks.users();
            let (value, change) = f(&db.users()?)?;
            let mut batch = WriteBatch::default();
            for id in &change.remove {
                batch.delete_cf(db.cf(Cf::Users)?, id.as_bytes());
            }
            for u in &change.put {
                batch.put_cf(db.cf(Cf::Users)?, u.id.as_bytes(), codec::encode(u)?);
            }
            db.write(batch)?;
            Ok(value)
        })
        .await
    }

    /// Runs a point read on the calling task. RocksDB answers one from memory (memtable,
    /// block cache) or with a page read or two: cheaper than a trip through the blocking
    /// pool, which every request would otherwise pay several times.
    fn read_now<T>(&self, f: impl FnOnce(&Inner) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let started = std::time::Instant::now();
        let result = f(&self.inner);
        crate::metrics::metrics().metadata_call("rocksdb", started.elapsed(), &result);
        result
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        self.on_blocking_thread(f, true).await
    }

    /// [`RocksMetadataStore::blocking`] holding the locks of `set`, taken on the blocking
    /// thread: for a write that may wait for them or do slow work.
    async fn blocking_locked<T, F>(&self, set: LockSet, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        self.blocking(move |db| {
            let _held = db.locks.acquire(set);
            f(db)
        })
        .await
    }

    /// [`RocksMetadataStore::blocking`] for a method that only reads (a listing, a scan):
    /// its answer needs no sync.
    async fn scanning<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        self.on_blocking_thread(f, false).await
    }

    async fn on_blocking_thread<T, F>(&self, f: F, writes: bool) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let started = std::time::Instant::now();
        let ran = tokio::task::spawn_blocking(move || Durability::recording(|| f(&inner))).await;
        self.finish(started, ran, writes).await
    }

    /// Runs `f` holding the locks of `set`: on the calling task when they are free (it then
    /// neither waits nor does slow work: its reads and its unsynced write are quick), else
    /// on a blocking thread that waits for them. Either way the call returns once `f`'s
    /// write is durable.
    async fn locked<T, F>(&self, set: LockSet, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Clone + Send + 'static,
    {
        let started = std::time::Instant::now();
        let ran = match self.try_inline(&set, f) {
            Ok(ran) => Ok(ran),
            Err(f) => {
                let inner = Arc::clone(&self.inner);
                tokio::task::spawn_blocking(move || {
                    let _held = inner.locks.acquire(set);
                    Durability::recording(|| f(&inner))
                })
                .await
            }
        };
        self.finish(started, ran, true).await
    }

    /// Runs `f` here if the locks of `set` are free and nothing in it has to wait (see
    /// [`inline`]); gives it back, to run where it may wait, if not.
    #[allow(clippy::type_complexity)]
    fn try_inline<T, F>(&self, set: &LockSet, f: F) -> Result<(Result<T, StorageError>, u64), F>
    where
        F: FnOnce(&Inner) -> Result<T, StorageError> + Clone,
    {
        let Some(held) = self.inner.locks.try_acquire(set) else {
            return Err(f);
        };
        let attempt = f.clone();
        inline::enter();
        let ran = Durability::recording(|| {
            // A panic becomes an error, as it would on a blocking thread.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| attempt(&self.inner)))
                .unwrap_or_else(|_| Err(StorageError::Io("metadata call panicked".into())))
        });
        let gave_up = inline::leave();
        drop(held);
        if gave_up { Err(f) } else { Ok(ran) }
    }

    /// Waits until what a method wrote is durable, and records the call. A method that
    /// `writes` but wrote nothing this time (it found the upload gone, the bucket there, a
    /// condition failing) answers from what it read, so it waits for every write so far.
    async fn finish<T>(
        &self,
        started: std::time::Instant,
        ran: Result<(Result<T, StorageError>, u64), tokio::task::JoinError>,
        writes: bool,
    ) -> Result<T, StorageError> {
        let result = match ran {
            Ok((result, mut ticket)) => {
                if ticket == 0 && writes && self.inner.sync {
                    ticket = self.inner.durability.barrier();
                }
                match self.inner.durability.wait(ticket).await {
                    Ok(()) => result,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(StorageError::Io(format!("metadata task failed: {e}"))),
        };
        crate::metrics::metrics().metadata_call("rocksdb", started.elapsed(), &result);
        result
    }
}

#[async_trait]
impl MetadataStore for RocksMetadataStore {
    async fn health(&self) -> Result<(), StorageError> {
        self.read_now(|db| db.get::<BucketRecord>(Cf::Buckets, b"\0health").map(drop))
    }

    async fn create_bucket(&self, bucket: BucketRecord) -> Result<(), StorageError> {
        self.blocking_locked(LockSet::bucket(&bucket.name, BucketMode::Exclusive), move |db| {
            if let Some(existing) = db.get::<BucketRecord>(Cf::Buckets, bucket.name.as_bytes())? {
                return Err(StorageError::BucketExists { owner_id: existing.owner.id });
            }
            let mut batch = WriteBatch::default();
            batch.put_cf(db.cf(Cf::Buckets)?, bucket.name.as_bytes(), codec::encode(&bucket)?);
            db.write(batch)
        })
        .await
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, StorageError> {
        self.read_now(|db| db.get(Cf::Buckets, name.as_bytes()))
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), StorageError> {
        let name = name.to_owned();
        self.blocking_locked(LockSet::bucket(&name, BucketMode::Exclusive), move |db| {
            if db.get::<BucketRecord>(Cf::Buckets, name.as_bytes())?.is_none() {
                return Err(StorageError::NotFound(Resource::Bucket));
            }
            let prefix = keys::bucket_prefix(&name);
            if db.any_with_prefix(Cf::Versions, &prefix)? {
                return Err(StorageError::BucketNotEmpty);
            }
            let mut batch = Batch::default();
            db.stage_bucket_uploads_removal(&mut batch, &name)?;
            for kind in BucketSettingKind::ALL {
                batch.delete_cf(db.cf(Cf::Settings)?, keys::setting(&name, kind));
            }
            batch.delete_cf(db.cf(Cf::Buckets)?, name.as_bytes());
            db.commit(batch)
        })
        .await
    }

    async fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<(), StorageError> {
        let bucket = bucket.to_owned();
        self.blocking_locked(LockSet::bucket(&bucket, BucketMode::Exclusive), move |db| {
            let mut record: BucketRecord =
                db.get(Cf::Buckets, bucket.as_bytes())?.ok_or(StorageError::NotFound(Resource::Bucket))?;
            record.versioning = record.versioning.changed_to(versioning);
            let mut batch = WriteBatch::default();
            batch.put_cf(db.cf(Cf::Buckets)?, bucket.as_bytes(), codec::encode(&record)?);
            db.write(batch)
        })
        .await
    }

    async fn get_bucket_setting(
        &self,
        bucket: &str,
        kind: BucketSettingKind,
    ) -> Result<Option<BucketSetting>, StorageError> {
        self.read_now(|db| db.get(Cf::Settings, &keys::setting(bucket, kind)))
    }

    async fn put_bucket_setting(
        &self,
        bucket: &str,
        kind: BucketSettingKind,
        setting: Option<BucketSetting>,
    ) -> Result<(), StorageError> {
        let bucket = bucket.to_owned();
        self.blocking_locked(LockSet::bucket(&bucket, BucketMode::Exclusive), move |db| {
            db.versioning(&bucket)?;
            let mut batch = WriteBatch::default();
            let k = keys::setting(&bucket, kind);
            match setting {
                Some(v) => batch.put_cf(db.cf(Cf::Settings)?, k, codec::encode(&v)?),
                None => batch.delete_cf(db.cf(Cf::Settings)?, k),
            }
            db.write(batch)
        })
        .await
    }

    async fn list_buckets(&self, q: &ListBucketsQuery) -> Result<BucketPage, StorageError> {
        let q = q.clone();
        self.scanning(move |db| {
            let start = match &q.start_after {
                Some(after) => keys::successor(after.as_bytes().to_vec()),
                None => q.prefix.as_bytes().to_vec(),
            };
            let mut page = BucketPage::default();
            let it = db.db.iterator_cf(db.cf(Cf::Buckets)?, IteratorMode::From(&start, Direction::Forward));
            for item in it {
                let (k, v) = item.map_err(io)?;
                if !k.starts_with(q.prefix.as_bytes()) {
                    if k.as_ref() > q.prefix.as_bytes() {
                        break;
                    }
                    continue;
                }
                let b: BucketRecord = codec::decode(&v)?;
                if q.owner_id.as_ref().is_some_and(|id| *id != b.owner.id) {
                    continue;
                }
                if page.buckets.len() == q.max {
                    page.next_start_after = page.buckets.last().map(|b| b.name.clone());
                    break;
                }
                page.buckets.push(b);
            }
            Ok(page)
        })
        .await
    }

    async fn create_upload(&self, upload: UploadRecord) -> Result<(), StorageError> {
        let set = LockSet::bucket(&upload.bucket, BucketMode::Shared).upload(&upload.bucket, &upload.upload_id);
        self.locked(set, move |db| {
            if db.get::<BucketRecord>(Cf::Buckets, upload.bucket.as_bytes())?.is_none() {
                return Err(StorageError::NotFound(Resource::Bucket));
            }
            let id_key = keys::upload_id(&upload.bucket, &upload.upload_id);
            if db.db.get_pinned_cf(db.cf(Cf::UploadIds)?, &id_key).map_err(io)?.is_some() {
                return Err(StorageError::Conflict);
            }
            let pk = keys::upload(&upload.bucket, &upload.key, upload.initiated, &upload.upload_id);
            let mut batch = WriteBatch::default();
            batch.put_cf(db.cf(Cf::Uploads)?, &pk, codec::encode(&upload)?);
            batch.put_cf(db.cf(Cf::UploadIds)?, &id_key, &pk);
            db.write(batch)
        })
        .await
    }

    async fn get_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord, StorageError> {
        self.read_now(|db| db.find_upload(bucket, key, upload_id).map(|(_, u)| u))
    }

    async fn delete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(UploadRecord, Vec<PartRecord>), StorageError> {
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.blocking_locked(LockSet::bucket(&bucket, BucketMode::Shared).upload(&bucket, &upload_id), move |db| {
            let (pk, record) = db.find_upload(&bucket, &key, &upload_id)?;
            let mut batch = Batch::default();
            let parts = db.stage_upload_removal(&mut batch, &pk, &bucket, &upload_id)?;
            batch.refs.release(parts.iter().map(|p| &p.blob));
            db.commit(batch)?;
            Ok((record, parts))
        })
        .await
    }

    async fn list_uploads(&self, bucket: &str, q: &ListUploadsQuery) -> Result<UploadPage, StorageError> {
        let (bucket, q) = (bucket.to_owned(), q.clone());
        self.scanning(move |db| {
            let at_prefix = keys::upload_prefix(&bucket, &q.prefix);
            let start = match (&q.key_marker, &q.upload_id_marker) {
                (Some(k), _) if *k < q.prefix => at_prefix,
                (Some(k), Some(id)) => keys::successor(db.find_upload(&bucket, k, id)?.0),
                (Some(k), None) => keys::upload_after_key(&bucket, k),
                (None, _) => at_prefix,
            };
            let skip = q.key_marker.as_deref().and_then(|m| marker_common_prefix(m, &q.prefix, q.delimiter.as_deref()));
            let mut pager = Pager::new(&q.prefix, q.delimiter.as_deref(), q.max_uploads);
            db.scan_keys(Cf::Uploads, &bucket, &start, skip, &mut pager, |_, v| codec::decode(v))?;
            Ok(UploadPage::from_grouped(pager.finish()))
        })
        .await
    }

    async fn put_object(&self, object: ObjectRecord, condition: &WriteCondition) -> Result<PutOutcome, StorageError> {
        self.write_object(object, condition, Origin::Written).await
    }

    async fn put_object_shared(
        &self,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<PutOutcome, StorageError> {
        self.write_object(object, condition, Origin::Shared).await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
    ) -> Result<Option<ObjectRecord>, StorageError> {
        self.read_now(|db| match version {
            None => db.newest(bucket, key),
            Some(v) => match db.find_version(bucket, key, v)? {
                Some(k) => db.version(bucket, key, &k),
                None => Ok(None),
            },
        })
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        owner: &Owner,
    ) -> Result<DeleteOutcome, StorageError> {
        let (bucket, key, owner) = (bucket.to_owned(), key.to_owned(), owner.clone());
        let set = LockSet::bucket(&bucket, BucketMode::Shared).key(&bucket, &key);
        self.blocking_locked(set, move |db| {
            let versioning = db.versioning(&bucket)?;
            let mut batch = Batch::default();
            let outcome = db.stage_delete(&mut batch, &bucket, &key, version, versioning, &owner)?;
            db.commit(batch)?;
            Ok(outcome)
        })
        .await
    }

    async fn delete_objects(
        &self,
        bucket: &str,
        items: &[(String, Option<VersionId>)],
        owner: &Owner,
    ) -> Result<Vec<Result<DeleteOutcome, StorageError>>, StorageError> {
        let (bucket, items, owner) = (bucket.to_owned(), items.to_vec(), owner.clone());
        self.blocking(move |db| {
            let mut out = Vec::with_capacity(items.len());
            // One batch per run of distinct keys: a batch's reads do not see its own writes,
            // so a key named twice starts a new batch (one batch for any usual request).
            let mut rest = &items[..];
            while !rest.is_empty() {
                let mut seen = HashSet::new();
                let n = rest.iter().take_while(|(k, _)| seen.insert(k.as_str())).count();
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                let set =
                    chunk.iter().fold(LockSet::bucket(&bucket, BucketMode::Shared), |s, (k, _)| s.key(&bucket, k));
                let _guard = db.locks.acquire(set);
                let versioning = db.versioning(&bucket)?;
                let mut batch = Batch::default();
                let outcomes: Vec<_> = chunk
                    .iter()
                    .map(|(key, version)| db.stage_delete(&mut batch, &bucket, key, *version, versioning, &owner))
                    .collect();
                if outcomes.iter().all(Result::is_ok) {
                    // Earlier chunks are committed: a failure here is this chunk's alone.
                    match db.commit(batch) {
                        Ok(()) => out.extend(outcomes),
                        Err(e) => out.extend(chunk.iter().map(|_| Err(StorageError::Io(e.to_string())))),
                    }
                    continue;
                }
                // A failed entry may have staged part of its writes: commit each on its own.
                for (key, version) in chunk {
                    let mut batch = Batch::default();
                    let outcome = db
                        .stage_delete(&mut batch, &bucket, key, *version, versioning, &owner)
                        .and_then(|o| db.commit(batch).map(|()| o));
                    out.push(outcome);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn remove_noncurrent(
        &self,
        bucket: &str,
        key: &str,
        version: VersionKey,
    ) -> Result<Option<ObjectRecord>, StorageError> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking_locked(LockSet::bucket(&bucket, BucketMode::Shared).key(&bucket, &key), move |db| {
            db.versioning(&bucket)?;
            if db.newest_key(&bucket, &key)? == Some(version) {
                return Ok(None);
            }
            let mut batch = Batch::default();
            let removed = db.stage_version_removal(&mut batch, &bucket, &key, &version)?;
            db.commit(batch)?;
            Ok(removed)
        })
        .await
    }

    async fn expire_object(
        &self,
        bucket: &str,
        key: &str,
        expected: VersionKey,
        owner: &Owner,
    ) -> Result<DeleteOutcome, StorageError> {
        let (bucket, key, owner) = (bucket.to_owned(), key.to_owned(), owner.clone());
        self.blocking_locked(LockSet::bucket(&bucket, BucketMode::Shared).key(&bucket, &key), move |db| {
            let versioning = db.versioning(&bucket)?;
            if db.newest_key(&bucket, &key)? != Some(expected) {
                return Ok(DeleteOutcome::default());
            }
            let mut batch = Batch::default();
            let outcome = db.stage_delete_latest(&mut batch, &bucket, &key, versioning, &owner)?;
            db.commit(batch)?;
            Ok(outcome)
        })
        .await
    }

    async fn update_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        change: crate::storage::ObjectChange,
    ) -> Result<VersionId, StorageError> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let set = LockSet::bucket(&bucket, BucketMode::Shared).key(&bucket, &key);
        self.blocking_locked(set, move |db| {
            db.versioning(&bucket)?;
            let newest = db.newest(&bucket, &key)?;
            let mut target = match version {
                None => newest.clone().ok_or(StorageError::NotFound(Resource::Object))?,
                Some(v) => {
                    let k = db.find_version(&bucket, &key, v)?.ok_or(StorageError::NotFound(Resource::Version))?;
                    db.version(&bucket, &key, &k)?.ok_or(StorageError::NotFound(Resource::Version))?
                }
            };
            if target.delete_marker {
                return Err(StorageError::DeleteMarker);
            }
            change.apply(&mut target)?;
            let mut batch = WriteBatch::default();
            batch.put_cf(
                db.cf(Cf::Versions)?,
                keys::version(&bucket, &key, &target.version_key),
                codec::encode(&target)?,
            );
            if newest.is_some_and(|n| n.version_key == target.version_key) {
                db.stage_latest(&mut batch, &bucket, &key, Some(&target))?;
            }
            db.write(batch)?;
            Ok(target.version_id)
        })
        .await
    }

    async fn list_objects(&self, bucket: &str, q: &ListObjectsQuery) -> Result<ObjectPage, StorageError> {
        let (bucket, q) = (bucket.to_owned(), q.clone());
        self.scanning(move |db| {
            let grouped = match listing_start(&q.prefix, q.delimiter.as_deref(), q.start_after.as_deref()) {
                Some(start) => db.group_objects(&bucket, &start, &q.prefix, q.delimiter.as_deref(), q.max)?,
                None => Grouped { entries: Vec::new(), truncated: false },
            };
            Ok(ObjectPage::from_grouped(grouped))
        })
        .await
    }

    async fn list_versions(&self, bucket: &str, q: &ListVersionsQuery) -> Result<VersionPage, StorageError> {
        let (bucket, q) = (bucket.to_owned(), q.clone());
        self.scanning(move |db| {
            let mid_key = match (&q.key_marker, q.version_id_marker) {
                (Some(k), Some(v)) if *k >= q.prefix => {
                    let vk = db.find_version(&bucket, k, v)?.ok_or(StorageError::NotFound(Resource::Version))?;
                    Some((k.clone(), vk))
                }
                _ => None,
            };
            let start = match (&q.key_marker, &mid_key) {
                (_, Some((k, vk))) => keys::successor(keys::version(&bucket, k, vk)),
                (Some(k), None) if *k >= q.prefix => keys::upload_after_key(&bucket, k),
                _ => keys::object_prefix(&bucket, &q.prefix),
            };
            // The first version of each key is its latest, unless the page starts inside a key.
            let mut previous: Option<String> = mid_key.map(|(k, _)| k);
            let skip = q.key_marker.as_deref().and_then(|m| marker_common_prefix(m, &q.prefix, q.delimiter.as_deref()));
            let mut pager = Pager::new(&q.prefix, q.delimiter.as_deref(), q.max);
            db.scan_keys(Cf::Versions, &bucket, &start, skip, &mut pager, |key, v| {
                let is_latest = previous.as_deref() != Some(key);
                if is_latest {
                    previous = Some(key.to_owned());
                }
                Ok(VersionEntry { object: codec::decode(v)?, is_latest })
            })?;
            Ok(VersionPage::from_grouped(pager.finish()))
        })
        .await
    }

    async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<Option<PartRecord>, StorageError> {
        self.write_part(bucket, key, upload_id, part, Origin::Written).await
    }

    async fn put_part_shared(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<Option<PartRecord>, StorageError> {
        self.write_part(bucket, key, upload_id, part, Origin::Shared).await
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<PartPage, StorageError> {
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.scanning(move |db| {
            db.find_upload(&bucket, &key, &upload_id)?;
            let mut parts: Vec<PartRecord> =
                db.parts(&bucket, &upload_id, after)?.take(max.saturating_add(1)).collect::<Result<_, _>>()?;
            let is_truncated = parts.len() > max;
            parts.truncate(max);
            Ok(PartPage { parts, is_truncated })
        })
        .await
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<CompleteOutcome, StorageError> {
        let (upload_id, condition) = (upload_id.to_owned(), condition.clone());
        let set = LockSet::bucket(&object.bucket, BucketMode::Shared)
            .key(&object.bucket, &object.key)
            .upload(&object.bucket, &upload_id);
        // On a blocking thread: removing up to 10,000 parts is too long for the caller's task.
        self.blocking_locked(set, move |db| {
            let (pk, _) = db.find_upload(&object.bucket, &object.key, &upload_id)?;
            let versioning = db.versioning(&object.bucket)?;
            db.check_condition(&condition, &object.bucket, &object.key)?;
            let mut batch = Batch::default();
            let parts = db.stage_upload_removal(&mut batch, &pk, &object.bucket, &upload_id)?;
            // The manifest was built from an earlier read: each of its parts must still be
            // the upload's current part, or it could name a blob a re-upload superseded.
            let by_number: HashMap<u32, &BlobId> = parts.iter().map(|p| (p.part_number, &p.blob)).collect();
            if !object.parts.iter().all(|m| by_number.get(&m.part_number) == Some(&&m.blob)) {
                return Err(StorageError::PartsChanged);
            }
            let discarded = refs::unused_parts(&parts, &object);
            // The object takes over the references of the parts it uses.
            batch.refs.release(parts.iter().map(|p| &p.blob));
            let (stored, replaced) = db.stage_version(&mut batch, object, versioning, Origin::Written)?;
            let done = CompletedUpload::of(&stored, &upload_id);
            batch.put_cf(db.cf(Cf::Completed)?, keys::completed(&stored.bucket, &upload_id), codec::encode(&done)?);
            db.commit(batch)?;
            Ok(CompleteOutcome { version_id: stored.version_id, replaced, discarded })
        })
        .await
    }

    async fn get_completed(&self, bucket: &str, upload_id: &str) -> Result<Option<CompletedUpload>, StorageError> {
        self.read_now(|db| db.get(Cf::Completed, &keys::completed(bucket, upload_id)))
    }

    async fn prune_completed(&self, before: Timestamp) -> Result<usize, StorageError> {
        // No lock: a completion record is written once and never changes, so deleting an old
        // one cannot race another writer.
        self.blocking(move |db| {
            let mut batch = WriteBatch::default();
            let mut n = 0;
            for item in db.db.iterator_cf(db.cf(Cf::Completed)?, IteratorMode::Start) {
                let (k, v) = item.map_err(io)?;
                if codec::decode::<CompletedUpload>(&v)?.completed < before {
                    batch.delete_cf(db.cf(Cf::Completed)?, k);
                    n += 1;
                }
            }
            db.write(batch)?;
            Ok(n)
        })
        .await
    }

    async fn discard_blobs(&self, blobs: &[BlobId]) -> Result<(), StorageError> {
        let blobs = blobs.to_vec();
        self.blocking(move |db| {
            let _guard = db.locks.blobs(&blobs);
            let mut batch = WriteBatch::default();
            let now = Timestamp::now();
            for (b, row) in blobs.iter().zip(db.blob_rows(&blobs)?) {
                if row == BlobRow::Unknown {
                    db.stage_row(&mut batch, b, BlobRow::Garbage(now))?;
                }
            }
            db.write(batch)
        })
        .await
    }

    async fn blob_states(&self, blobs: &[BlobId]) -> Result<Vec<BlobState>, StorageError> {
        let blobs = blobs.to_vec();
        self.scanning(move |db| Ok(db.blob_rows(&blobs)?.into_iter().map(BlobRow::state).collect())).await
    }

    async fn garbage(
        &self,
        before: Timestamp,
        after: Option<&GarbageRecord>,
        max: usize,
    ) -> Result<Vec<GarbageRecord>, StorageError> {
        let start = after.map(|a| keys::successor(keys::garbage(a.since, &a.blob.0))).unwrap_or_default();
        self.scanning(move |db| {
            let mut out = Vec::new();
            for item in db.db.iterator_cf(db.cf(Cf::Garbage)?, IteratorMode::From(&start, Direction::Forward)) {
                let (k, _) = item.map_err(io)?;
                let (since, blob) =
                    keys::parse_garbage(&k).ok_or_else(|| StorageError::Corrupt("garbage index key".into()))?;
                if since >= before || out.len() == max {
                    break;
                }
                out.push(GarbageRecord { since, blob: BlobId(blob) });
            }
            Ok(out)
        })
        .await
    }

    async fn forget_garbage(&self, records: &[GarbageRecord]) -> Result<(), StorageError> {
        let records = records.to_vec();
        self.blocking(move |db| {
            let _guard = db.locks.blobs(records.iter().map(|r| &r.blob));
            let mut batch = WriteBatch::default();
            let rows = db.blob_rows(records.iter().map(|r| &r.blob))?;
            for (r, row) in records.iter().zip(rows) {
                if row == BlobRow::Garbage(r.since) {
                    batch.delete_cf(db.cf(Cf::Blobs)?, r.blob.0.as_bytes());
                }
                batch.delete_cf(db.cf(Cf::Garbage)?, keys::garbage(r.since, &r.blob.0));
            }
            db.write(batch)
        })
        .await
    }

    async fn claim_work(&self, name: &str, holder: &str, until: Timestamp) -> Result<bool, StorageError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.blocking_locked(LockSet::none().name("claim", &[&name]), move |db| {
            let now = Timestamp::now();
            let current: Option<WorkClaim> = db.get(Cf::Claims, name.as_bytes())?;
            if current.is_some_and(|c| c.holder != holder && c.until > now) {
                return Ok(false);
            }
            let mut batch = WriteBatch::default();
            batch.put_cf(db.cf(Cf::Claims)?, name.as_bytes(), codec::encode(&WorkClaim { holder, until })?);
            db.write(batch)?;
            Ok(true)
        })
        .await
    }

    async fn release_work(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.blocking_locked(LockSet::none().name("claim", &[&name]), move |db| {
            let current: Option<WorkClaim> = db.get(Cf::Claims, name.as_bytes())?;
            if current.is_some_and(|c| c.holder == holder) {
                let mut batch = WriteBatch::default();
                batch.delete_cf(db.cf(Cf::Claims)?, name.as_bytes());
                db.write(batch)?;
            }
            Ok(())
        })
        .await
    }

    async fn put_lease(&self, lease: &Lease) -> Result<(), StorageError> {
        let lease = lease.clone();
        self.blocking_locked(LockSet::none().name("lease", &[&lease.id]), move |db| {
            let mut batch = WriteBatch::default();
            batch.put_cf(db.cf(Cf::Leases)?, lease.id.as_bytes(), codec::encode(&lease)?);
            db.write(batch)
        })
        .await
    }

    async fn delete_lease(&self, id: &str, if_expires: Option<Timestamp>) -> Result<(), StorageError> {
        let id = id.to_owned();
        self.blocking_locked(LockSet::none().name("lease", &[&id]), move |db| {
            if let Some(t) = if_expires
                && db.get::<Lease>(Cf::Leases, id.as_bytes())?.is_none_or(|l| l.expires != t)
            {
                return Ok(());
            }
            let mut batch = WriteBatch::default();
            batch.delete_cf(db.cf(Cf::Leases)?, id.as_bytes());
            db.write(batch)
        })
        .await
    }

    async fn leases(&self) -> Result<Vec<Lease>, StorageError> {
        self.scanning(|db| {
            db.db
                .iterator_cf(db.cf(Cf::Leases)?, IteratorMode::Start)
                .map(|item| item.map_err(io).and_then(|(_, v)| codec::decode::<Lease>(&v)))
                .collect()
        })
        .await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StorageError> {
        self.scanning(|db| db.users().map(|u| u.0.into_values().collect())).await
    }

    async fn create_user(&self, user: UserRecord) -> Result<(), StorageError> {
        self.change_users(move |users| users.create(user).map(|c| ((), c))).await
    }

    async fn replace_user_key(&self, id: &str, access_key: &str, secret_key: &str) -> Result<UserRecord, StorageError> {
        let (id, access_key, secret_key) = (id.to_owned(), access_key.to_owned(), secret_key.to_owned());
        self.change_users(move |users| users.replace_key(&id, &access_key, &secret_key)).await
    }

    async fn delete_user(&self, access_key: &str) -> Result<UserRecord, StorageError> {
        let access_key = access_key.to_owned();
        self.change_users(move |users| users.delete(&access_key)).await
    }

    async fn seed_users(&self, wanted: Vec<UserRecord>) -> Result<(), StorageError> {
        self.change_users(move |users| users.seed(wanted).map(|c| ((), c))).await
    }

    async fn flush(&self) -> Result<(), StorageError> {
        self.scanning(Inner::sync_wal).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write whose locks are free runs on the caller's task; one that would wait for a
    /// blob-count lock gives up there and waits on a blocking thread instead, while the
    /// caller's runtime goes on serving other calls.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn an_inline_write_that_would_wait_moves_to_a_blocking_thread() {
        use crate::storage::conformance::{bucket, upload};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RocksMetadataStore::open(dir.path(), true).expect("open");
        store.create_bucket(bucket("b", "o")).await.expect("bucket");
        store.create_upload(upload("b", "k", "u", 2)).await.expect("upload");
        let part = |blob: &str| PartRecord {
            part_number: 1,
            blob: BlobId(blob.into()),
            size: 1,
            md5: [0; 16],
            last_modified: Timestamp(3),
            checksums: vec![],
            inline: None,
        };
        store.put_part("b", "k", "u", part("first")).await.expect("a free write");

        let held = store.inner.locks.blobs([&BlobId("second".into())]);
        let writer = tokio::spawn({
            let store = store.clone();
            async move { store.put_part("b", "k", "u", part("second")).await }
        });
        // Waited for on this thread, not the runtime's only worker (which a write waiting
        // inline would hold).
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!writer.is_finished(), "the write waits for the blob lock");
        let (tx, rx) = std::sync::mpsc::channel();
        tokio::spawn({
            let store = store.clone();
            async move { tx.send(store.get_bucket("b").await.map(|b| b.is_some())).ok() }
        });
        let served = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert!(matches!(served, Ok(Ok(true))), "the worker is free to serve other calls: {served:?}");
        drop(held);
        let replaced = writer.await.expect("joined").expect("written once the lock was free");
        assert_eq!(replaced.map(|p| p.blob.0), Some("first".to_string()));
    }

    /// A malformed null-version pointer fails reads and writes of its key instead of being
    /// taken for no null version (a write would then leave the old one behind, unreachable).
    #[tokio::test]
    async fn a_malformed_null_version_pointer_is_corruption() {
        use crate::storage::conformance::{bucket, object};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RocksMetadataStore::open(dir.path(), false).expect("open");
        store.create_bucket(bucket("b", "o")).await.expect("bucket");
        store.put_object(object("b", "k", &["first"]), &WriteCondition::None).await.expect("put");
        let nulls = store.inner.cf(Cf::Nulls).expect("family");
        store.inner.db.put_cf(nulls, keys::object("b", "k"), [1, 2, 3]).expect("corrupt");
        let corrupt = |r: Result<_, StorageError>| matches!(r, Err(StorageError::Corrupt(_)));
        assert!(corrupt(store.get_object("b", "k", Some(VersionId::Null)).await.map(|_| ())));
        assert!(corrupt(store.put_object(object("b", "k", &["second"]), &WriteCondition::None).await.map(|_| ())));
        let states = store.blob_states(&[BlobId("first".into()), BlobId("second".into())]).await.expect("states");
        assert_eq!(states, [BlobState::Referenced, BlobState::Unknown], "the refused write changed nothing");
    }

    fn set_format(path: &Path, mark: Option<u8>) {
        let store = RocksMetadataStore::open(path, false).expect("open");
        let meta = store.inner.cf(Cf::Meta).expect("meta family");
        match mark {
            Some(m) => store.inner.db.put_cf(meta, b"format", [m]).expect("put"),
            None => store.inner.db.delete_cf(meta, b"format").expect("delete"),
        }
    }

    fn format(path: &Path) -> Option<Vec<u8>> {
        let store = RocksMetadataStore::open(path, false).expect("open");
        let meta = store.inner.cf(Cf::Meta).expect("meta family");
        store.inner.db.get_cf(meta, b"format").expect("get")
    }

    #[test]
    fn formats_upgrade_forward_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(format(dir.path()), Some(vec![FORMAT]), "a new database has the current format");
        set_format(dir.path(), Some(2));
        assert_eq!(format(dir.path()), Some(vec![FORMAT]), "format 2 is marked current on open");
        set_format(dir.path(), None);
        assert_eq!(format(dir.path()), Some(vec![FORMAT]), "format 1 is migrated");
        set_format(dir.path(), Some(FORMAT + 1));
        let refused = RocksMetadataStore::open(dir.path(), false).err().expect("refused");
        assert!(refused.to_string().contains("newer than this s3d knows"), "{refused}");
    }
}

//! In-memory stores: the executable reference model the persistent ones are checked against,
//! and a fast backend for tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::refs::{BlobRow, Origin, RefChanges};
use super::users::{UserChange, Users};
use super::{
    BlobId, BlobListing, BlobRef, BlobState, BlobStore, BucketPage, BucketRecord, BucketSetting, BucketSettingKind,
    ByteStream, CompleteOutcome, CompletedUpload, DeleteOutcome, GarbageRecord, Lease, ListBucketsQuery,
    ListObjectsQuery, ListUploadsQuery, ListVersionsQuery, MetadataStore, ObjectPage, ObjectRecord, Owner, PartPage,
    PartRecord, PutOutcome, Resource, StorageError, UploadPage, UploadRecord, UserRecord, VersionEntry, VersionId,
    VersionKey, VersionPage, Versioning, WorkClaim, WriteCondition, group, marker_common_prefix,
};
use crate::clock::Timestamp;

/// Uploads sort by bucket, key, initiation time, then id.
type UploadKey = (String, String, Timestamp, String);

#[derive(Default)]
struct State {
    buckets: BTreeMap<String, BucketRecord>,
    uploads: BTreeMap<UploadKey, UploadRecord>,
    /// (bucket, upload id) → position in `uploads`.
    upload_ids: HashMap<(String, String), UploadKey>,
    /// (bucket, key) → the latest version, when it is not a delete marker.
    objects: BTreeMap<(String, String), ObjectRecord>,
    /// (bucket, key, version key) → every version, newest first within a key.
    versions: BTreeMap<(String, String, VersionKey), ObjectRecord>,
    /// (bucket, key) → the key of its `null` version.
    nulls: HashMap<(String, String), VersionKey>,
    settings: BTreeMap<(String, BucketSettingKind), BucketSetting>,
    claims: HashMap<String, WorkClaim>,
    /// (bucket, upload id, part number) → part.
    parts: BTreeMap<(String, String, u32), PartRecord>,
    completed: HashMap<(String, String), CompletedUpload>,
    /// Referenced (with its count) or garbage; absent means unknown.
    blobs: HashMap<BlobId, BlobRow>,
    /// Garbage in the order it arose.
    garbage: BTreeMap<(Timestamp, BlobId), ()>,
    leases: BTreeMap<String, Lease>,
    users: BTreeMap<String, UserRecord>,
}

#[derive(Default)]
pub struct MemoryMetadataStore {
    state: Mutex<State>,
}

impl MemoryMetadataStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn write_object(
        &self,
        object: ObjectRecord,
        condition: &WriteCondition,
        origin: Origin,
    ) -> Result<PutOutcome, StorageError> {
        let mut s = self.state();
        let versioning = s.versioning(&object.bucket)?;
        condition.check(s.newest(&object.bucket, &object.key))?;
        s.check_acquire(object.blobs(), origin)?;
        let (stored, replaced) = s.write_version(object, versioning, origin)?;
        Ok(PutOutcome { version_id: stored.version_id, replaced })
    }

    fn write_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
        origin: Origin,
    ) -> Result<Option<PartRecord>, StorageError> {
        let mut s = self.state();
        s.find_upload(bucket, key, upload_id)?;
        s.check_acquire([&part.blob], origin)?;
        s.reference([&part.blob], origin)?;
        let old = s.parts.insert((bucket.to_owned(), upload_id.to_owned(), part.part_number), part);
        if let Some(o) = &old {
            s.release([&o.blob]);
        }
        Ok(old)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: every method
        // validates before it mutates, so the state is usable even if poisoned.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn upload_key(u: &UploadRecord) -> UploadKey {
    (u.bucket.clone(), u.key.clone(), u.initiated, u.upload_id.clone())
}

impl State {
    fn row(&self, blob: &BlobId) -> BlobRow {
        self.blobs.get(blob).copied().unwrap_or(BlobRow::Unknown)
    }

    /// Applies reference changes at once (a method acquires before it releases, so that a
    /// blob it hands on never passes through garbage).
    fn change_refs(&mut self, changes: RefChanges) -> Result<(), StorageError> {
        let current: Vec<BlobRow> = changes.ids().map(|b| self.row(b)).collect();
        let now = Timestamp::now();
        for (blob, row) in changes.resolve(&current, now)? {
            if let BlobRow::Garbage(since) = row {
                self.garbage.insert((since, blob.clone()), ());
            }
            self.blobs.insert(blob, row);
        }
        Ok(())
    }

    fn reference<'a>(
        &mut self,
        blobs: impl IntoIterator<Item = &'a BlobId>,
        origin: Origin,
    ) -> Result<(), StorageError> {
        let mut changes = RefChanges::new();
        changes.acquire(blobs, origin);
        self.change_refs(changes)
    }

    fn release<'a>(&mut self, blobs: impl IntoIterator<Item = &'a BlobId>) {
        let mut changes = RefChanges::new();
        changes.release(blobs);
        // Releases alone never fail.
        let _ = self.change_refs(changes);
    }

    /// Whether `blobs` may gain references as `origin` says (what fails there fails here):
    /// checked before a method that references them changes anything.
    fn check_acquire<'a>(
        &self,
        blobs: impl IntoIterator<Item = &'a BlobId>,
        origin: Origin,
    ) -> Result<(), StorageError> {
        let mut changes = RefChanges::new();
        changes.acquire(blobs, origin);
        let current: Vec<BlobRow> = changes.ids().map(|b| self.row(b)).collect();
        changes.resolve(&current, Timestamp::now()).map(drop)
    }

    fn key_versions(&self, bucket: &str, key: &str) -> impl Iterator<Item = &ObjectRecord> {
        let from = (bucket.to_owned(), key.to_owned(), VersionKey([0; 20]));
        let to = (bucket.to_owned(), key.to_owned(), VersionKey([0xff; 20]));
        self.versions.range(from..=to).map(|(_, v)| v)
    }

    /// The latest version of a key, delete markers included.
    fn newest(&self, bucket: &str, key: &str) -> Option<&ObjectRecord> {
        self.key_versions(bucket, key).next()
    }

    /// Makes `objects` show the latest version of a key unless it is a delete marker.
    fn refresh_latest(&mut self, bucket: &str, key: &str) {
        let k = (bucket.to_owned(), key.to_owned());
        match self.newest(bucket, key).filter(|v| !v.delete_marker).cloned() {
            Some(v) => self.objects.insert(k, v),
            None => self.objects.remove(&k),
        };
    }

    fn find_version(&self, bucket: &str, key: &str, version: VersionId) -> Option<VersionKey> {
        match version {
            VersionId::Null => self.nulls.get(&(bucket.to_owned(), key.to_owned())).copied(),
            VersionId::Id(k) => self.versions.contains_key(&(bucket.to_owned(), key.to_owned(), k)).then_some(k),
        }
    }

    /// Removes a version for good; its blobs become garbage.
    fn remove_version(&mut self, bucket: &str, key: &str, vkey: VersionKey) -> Option<ObjectRecord> {
        let removed = self.versions.remove(&(bucket.to_owned(), key.to_owned(), vkey))?;
        if removed.version_id.is_null() {
            self.nulls.remove(&(bucket.to_owned(), key.to_owned()));
        }
        self.release(removed.blobs());
        self.refresh_latest(bucket, key);
        Some(removed)
    }

    /// Writes a new version of `object.key` as `versioning` says (a new id, or the `null`
    /// version replacing the previous one), newer than every version the key has.
    fn write_version(
        &mut self,
        mut object: ObjectRecord,
        versioning: Versioning,
        origin: Origin,
    ) -> Result<(ObjectRecord, Option<ObjectRecord>), StorageError> {
        let (bucket, key) = (object.bucket.clone(), object.key.clone());
        let floor = self.newest(&bucket, &key).map(|v| v.version_key.time());
        let time = match floor {
            Some(f) if f >= object.last_modified => Timestamp(f.0.saturating_add(1)),
            _ => object.last_modified,
        };
        let null = versioning != Versioning::Enabled;
        object.version_key = super::version::new_key(time, null)?;
        object.version_id = if null { VersionId::Null } else { VersionId::Id(object.version_key) };
        let k = (bucket.clone(), key.clone());
        let replaced = if null {
            self.nulls.remove(&k).and_then(|old| self.versions.remove(&(bucket.clone(), key.clone(), old)))
        } else {
            None
        };
        self.reference(object.blobs(), origin)?;
        if let Some(r) = &replaced {
            self.release(r.blobs());
        }
        if null {
            self.nulls.insert(k, object.version_key);
        }
        self.versions.insert((bucket.clone(), key.clone(), object.version_key), object.clone());
        self.refresh_latest(&bucket, &key);
        Ok((object, replaced))
    }

    /// A delete without a version id: removes the null version of an unversioned bucket, or
    /// writes a delete marker.
    fn delete_latest(
        &mut self,
        bucket: &str,
        key: &str,
        versioning: Versioning,
        owner: &Owner,
    ) -> Result<DeleteOutcome, StorageError> {
        if versioning == Versioning::Unversioned {
            let removed =
                self.find_version(bucket, key, VersionId::Null).and_then(|k| self.remove_version(bucket, key, k));
            return Ok(DeleteOutcome { removed, marker: None });
        }
        let marker = ObjectRecord::delete_marker(bucket, key, owner.clone(), Timestamp::now());
        let (marker, replaced) = self.write_version(marker, versioning, Origin::Written)?;
        Ok(DeleteOutcome { removed: replaced, marker: Some(marker) })
    }

    fn versioning(&self, bucket: &str) -> Result<Versioning, StorageError> {
        self.buckets.get(bucket).map(|b| b.versioning).ok_or(StorageError::NotFound(Resource::Bucket))
    }

    fn upload_parts(&self, bucket: &str, upload_id: &str) -> impl Iterator<Item = &PartRecord> {
        let from = (bucket.to_owned(), upload_id.to_owned(), 0);
        let to = (bucket.to_owned(), upload_id.to_owned(), u32::MAX);
        self.parts.range(from..=to).map(|(_, p)| p)
    }

    fn remove_upload(
        &mut self,
        bucket: &str,
        upload_id: &str,
        key: &UploadKey,
    ) -> (Option<UploadRecord>, Vec<PartRecord>) {
        self.upload_ids.remove(&(bucket.to_owned(), upload_id.to_owned()));
        let numbers: Vec<u32> = self.upload_parts(bucket, upload_id).map(|p| p.part_number).collect();
        let parts = numbers
            .into_iter()
            .filter_map(|n| self.parts.remove(&(bucket.to_owned(), upload_id.to_owned(), n)))
            .collect();
        (self.uploads.remove(key), parts)
    }

    fn find_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<&UploadKey, StorageError> {
        self.upload_ids
            .get(&(bucket.to_owned(), upload_id.to_owned()))
            .filter(|k| k.1 == key)
            .ok_or(StorageError::NotFound(Resource::Upload))
    }
}

#[async_trait]
impl MetadataStore for MemoryMetadataStore {
    async fn health(&self) -> Result<(), StorageError> {
        Ok(())
    }

    async fn create_bucket(&self, bucket: BucketRecord) -> Result<(), StorageError> {
        let mut s = self.state();
        if let Some(existing) = s.buckets.get(&bucket.name) {
            return Err(StorageError::BucketExists { owner_id: existing.owner.id.clone() });
        }
        s.buckets.insert(bucket.name.clone(), bucket);
        Ok(())
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, StorageError> {
        Ok(self.state().buckets.get(name).cloned())
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), StorageError> {
        let mut s = self.state();
        if !s.buckets.contains_key(name) {
            return Err(StorageError::NotFound(Resource::Bucket));
        }
        let has_versions = s
            .versions
            .range((name.to_owned(), String::new(), VersionKey([0; 20]))..)
            .next()
            .is_some_and(|(k, _)| k.0 == name);
        if has_versions {
            return Err(StorageError::BucketNotEmpty);
        }
        // Uploads in progress go with the bucket, as on AWS.
        let from = (name.to_owned(), String::new(), Timestamp(i64::MIN), String::new());
        let uploads: Vec<UploadKey> =
            s.uploads.range(from..).take_while(|(k, _)| k.0 == name).map(|(k, _)| k.clone()).collect();
        for k in uploads {
            let (_, parts) = s.remove_upload(name, &k.3, &k);
            s.release(parts.iter().map(|p| &p.blob));
        }
        s.completed.retain(|(bucket, _), _| bucket != name);
        s.settings.retain(|(bucket, _), _| bucket != name);
        s.buckets.remove(name);
        Ok(())
    }

    async fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<(), StorageError> {
        let mut s = self.state();
        let b = s.buckets.get_mut(bucket).ok_or(StorageError::NotFound(Resource::Bucket))?;
        b.versioning = b.versioning.changed_to(versioning);
        Ok(())
    }

    async fn get_bucket_setting(
        &self,
        bucket: &str,
        kind: BucketSettingKind,
    ) -> Result<Option<BucketSetting>, StorageError> {
        Ok(self.state().settings.get(&(bucket.to_owned(), kind)).cloned())
    }

    async fn put_bucket_setting(
        &self,
        bucket: &str,
        kind: BucketSettingKind,
        setting: Option<BucketSetting>,
    ) -> Result<(), StorageError> {
        let mut s = self.state();
        if !s.buckets.contains_key(bucket) {
            return Err(StorageError::NotFound(Resource::Bucket));
        }
        match setting {
            Some(v) => s.settings.insert((bucket.to_owned(), kind), v),
            None => s.settings.remove(&(bucket.to_owned(), kind)),
        };
        Ok(())
    }

    async fn list_buckets(&self, q: &ListBucketsQuery) -> Result<BucketPage, StorageError> {
        let s = self.state();
        let start = match &q.start_after {
            Some(after) => Bound::Excluded(after.clone()),
            None => Bound::Unbounded,
        };
        let mut page = BucketPage::default();
        for b in s
            .buckets
            .range((start, Bound::Unbounded))
            .map(|(_, b)| b)
            .filter(|b| q.owner_id.as_ref().is_none_or(|id| *id == b.owner.id) && b.name.starts_with(&q.prefix))
        {
            if page.buckets.len() == q.max {
                page.next_start_after = page.buckets.last().map(|b| b.name.clone());
                break;
            }
            page.buckets.push(b.clone());
        }
        Ok(page)
    }

    async fn create_upload(&self, upload: UploadRecord) -> Result<(), StorageError> {
        let mut s = self.state();
        if !s.buckets.contains_key(&upload.bucket) {
            return Err(StorageError::NotFound(Resource::Bucket));
        }
        let id = (upload.bucket.clone(), upload.upload_id.clone());
        if s.upload_ids.contains_key(&id) {
            return Err(StorageError::Conflict);
        }
        let key = upload_key(&upload);
        s.upload_ids.insert(id, key.clone());
        s.uploads.insert(key, upload);
        Ok(())
    }

    async fn get_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord, StorageError> {
        let s = self.state();
        let k = s.find_upload(bucket, key, upload_id)?;
        s.uploads.get(k).cloned().ok_or(StorageError::NotFound(Resource::Upload))
    }

    async fn delete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(UploadRecord, Vec<PartRecord>), StorageError> {
        let mut s = self.state();
        let k = s.find_upload(bucket, key, upload_id)?.clone();
        match s.remove_upload(bucket, upload_id, &k) {
            (Some(u), parts) => {
                s.release(parts.iter().map(|p| &p.blob));
                Ok((u, parts))
            }
            (None, _) => Err(StorageError::NotFound(Resource::Upload)),
        }
    }

    async fn list_uploads(&self, bucket: &str, q: &ListUploadsQuery) -> Result<UploadPage, StorageError> {
        let s = self.state();
        let at_prefix = (bucket.to_owned(), q.prefix.clone(), Timestamp(i64::MIN), String::new());
        let start = match (&q.key_marker, &q.upload_id_marker) {
            (Some(k), _) if *k < q.prefix => Bound::Included(at_prefix),
            (Some(k), Some(id)) => Bound::Excluded(s.find_upload(bucket, k, id)?.clone()),
            // Past every upload of the marker key.
            (Some(k), None) => {
                Bound::Excluded((bucket.to_owned(), k.clone(), Timestamp(i64::MAX), char::MAX.to_string()))
            }
            (None, _) => Bound::Included(at_prefix),
        };
        let items = s
            .uploads
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.0 == bucket)
            .map(|(_, u)| Ok::<_, StorageError>(u.clone()));
        let skip = q.key_marker.as_deref().and_then(|m| marker_common_prefix(m, &q.prefix, q.delimiter.as_deref()));
        let grouped = group(items, |u| u.key.as_str(), &q.prefix, q.delimiter.as_deref(), skip, q.max_uploads)?;
        Ok(UploadPage::from_grouped(grouped))
    }

    async fn put_object(&self, object: ObjectRecord, condition: &WriteCondition) -> Result<PutOutcome, StorageError> {
        self.write_object(object, condition, Origin::Written)
    }

    async fn put_object_shared(
        &self,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<PutOutcome, StorageError> {
        self.write_object(object, condition, Origin::Shared)
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
    ) -> Result<Option<ObjectRecord>, StorageError> {
        let s = self.state();
        Ok(match version {
            None => s.newest(bucket, key).cloned(),
            Some(v) => s
                .find_version(bucket, key, v)
                .and_then(|k| s.versions.get(&(bucket.to_owned(), key.to_owned(), k)).cloned()),
        })
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        owner: &Owner,
    ) -> Result<DeleteOutcome, StorageError> {
        let mut s = self.state();
        let versioning = s.versioning(bucket)?;
        match version {
            Some(v) => {
                let removed = s.find_version(bucket, key, v).and_then(|k| s.remove_version(bucket, key, k));
                Ok(DeleteOutcome { removed, marker: None })
            }
            None => s.delete_latest(bucket, key, versioning, owner),
        }
    }

    async fn remove_noncurrent(
        &self,
        bucket: &str,
        key: &str,
        version: VersionKey,
    ) -> Result<Option<ObjectRecord>, StorageError> {
        let mut s = self.state();
        s.versioning(bucket)?;
        if s.newest(bucket, key).map(|v| v.version_key) == Some(version) {
            return Ok(None);
        }
        Ok(s.remove_version(bucket, key, version))
    }

    async fn expire_object(
        &self,
        bucket: &str,
        key: &str,
        expected: VersionKey,
        owner: &Owner,
    ) -> Result<DeleteOutcome, StorageError> {
        let mut s = self.state();
        let versioning = s.versioning(bucket)?;
        if s.newest(bucket, key).map(|v| v.version_key) != Some(expected) {
            return Ok(DeleteOutcome::default());
        }
        s.delete_latest(bucket, key, versioning, owner)
    }

    async fn update_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        change: crate::storage::ObjectChange,
    ) -> Result<VersionId, StorageError> {
        let mut s = self.state();
        s.versioning(bucket)?;
        let vkey = match version {
            None => s.newest(bucket, key).map(|v| v.version_key).ok_or(StorageError::NotFound(Resource::Object))?,
            Some(v) => s.find_version(bucket, key, v).ok_or(StorageError::NotFound(Resource::Version))?,
        };
        let v = s
            .versions
            .get_mut(&(bucket.to_owned(), key.to_owned(), vkey))
            .ok_or(StorageError::NotFound(Resource::Version))?;
        if v.delete_marker {
            return Err(StorageError::DeleteMarker);
        }
        change.apply(v)?;
        let id = v.version_id;
        s.refresh_latest(bucket, key);
        Ok(id)
    }

    async fn list_objects(&self, bucket: &str, q: &ListObjectsQuery) -> Result<ObjectPage, StorageError> {
        let s = self.state();
        let start = match &q.start_after {
            Some(after) if *after >= q.prefix => Bound::Excluded((bucket.to_owned(), after.clone())),
            _ => Bound::Included((bucket.to_owned(), q.prefix.clone())),
        };
        let items = s
            .objects
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.0 == bucket)
            .map(|(_, o)| Ok::<_, StorageError>(o.clone()));
        let skip = q.start_after.as_deref().and_then(|m| marker_common_prefix(m, &q.prefix, q.delimiter.as_deref()));
        let grouped = group(items, |o| o.key.as_str(), &q.prefix, q.delimiter.as_deref(), skip, q.max)?;
        Ok(ObjectPage::from_grouped(grouped))
    }

    async fn list_versions(&self, bucket: &str, q: &ListVersionsQuery) -> Result<VersionPage, StorageError> {
        let s = self.state();
        let mid_key = match (&q.key_marker, q.version_id_marker) {
            (Some(k), Some(v)) if *k >= q.prefix => {
                Some((k.clone(), s.find_version(bucket, k, v).ok_or(StorageError::NotFound(Resource::Version))?))
            }
            _ => None,
        };
        let start = match (&q.key_marker, &mid_key) {
            (_, Some((k, vk))) => Bound::Excluded((bucket.to_owned(), k.clone(), *vk)),
            (Some(k), None) if *k >= q.prefix => {
                Bound::Excluded((bucket.to_owned(), k.clone(), VersionKey([0xff; 20])))
            }
            _ => Bound::Included((bucket.to_owned(), q.prefix.clone(), VersionKey([0; 20]))),
        };
        // The first version of each key is its latest, unless the page starts inside a key.
        let mut previous: Option<String> = mid_key.map(|(k, _)| k);
        let items = s.versions.range((start, Bound::Unbounded)).take_while(|(k, _)| k.0 == bucket).map(|(_, v)| {
            let is_latest = previous.as_deref() != Some(v.key.as_str());
            previous = Some(v.key.clone());
            Ok::<_, StorageError>(VersionEntry { object: v.clone(), is_latest })
        });
        let skip = q.key_marker.as_deref().and_then(|m| marker_common_prefix(m, &q.prefix, q.delimiter.as_deref()));
        let grouped = group(items, |v| v.object.key.as_str(), &q.prefix, q.delimiter.as_deref(), skip, q.max)?;
        Ok(VersionPage::from_grouped(grouped))
    }

    async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<Option<PartRecord>, StorageError> {
        self.write_part(bucket, key, upload_id, part, Origin::Written)
    }

    async fn put_part_shared(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<Option<PartRecord>, StorageError> {
        self.write_part(bucket, key, upload_id, part, Origin::Shared)
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<PartPage, StorageError> {
        let s = self.state();
        s.find_upload(bucket, key, upload_id)?;
        let mut parts: Vec<PartRecord> = s
            .upload_parts(bucket, upload_id)
            .filter(|p| p.part_number > after)
            .take(max.saturating_add(1))
            .cloned()
            .collect();
        let is_truncated = parts.len() > max;
        parts.truncate(max);
        Ok(PartPage { parts, is_truncated })
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<CompleteOutcome, StorageError> {
        let mut s = self.state();
        let (bucket, key) = (object.bucket.clone(), object.key.clone());
        let k = s.find_upload(&bucket, &key, upload_id)?.clone();
        let versioning = s.versioning(&bucket)?;
        condition.check(s.newest(&bucket, &key))?;
        let current = |m: &PartRecord| {
            s.parts.get(&(bucket.clone(), upload_id.to_owned(), m.part_number)).is_some_and(|p| p.blob == m.blob)
        };
        if !object.parts.iter().all(current) {
            return Err(StorageError::PartsChanged);
        }
        s.check_acquire(object.blobs(), Origin::Written)?;
        let (_, parts) = s.remove_upload(&bucket, upload_id, &k);
        let discarded = super::refs::unused_parts(&parts, &object);
        // The object takes over its parts' references before the parts let go of theirs.
        let (stored, replaced) = s.write_version(object, versioning, Origin::Written)?;
        s.release(parts.iter().map(|p| &p.blob));
        s.completed.insert((bucket, upload_id.to_owned()), CompletedUpload::of(&stored, upload_id));
        Ok(CompleteOutcome { version_id: stored.version_id, replaced, discarded })
    }

    async fn get_completed(&self, bucket: &str, upload_id: &str) -> Result<Option<CompletedUpload>, StorageError> {
        Ok(self.state().completed.get(&(bucket.to_owned(), upload_id.to_owned())).cloned())
    }

    async fn prune_completed(&self, before: Timestamp) -> Result<usize, StorageError> {
        let mut s = self.state();
        let n = s.completed.len();
        s.completed.retain(|_, c| c.completed >= before);
        Ok(n - s.completed.len())
    }

    async fn discard_blobs(&self, blobs: &[BlobId]) -> Result<(), StorageError> {
        let mut s = self.state();
        let unknown: Vec<BlobId> = blobs.iter().filter(|b| !s.blobs.contains_key(b)).cloned().collect();
        s.release(&unknown);
        Ok(())
    }

    async fn blob_states(&self, blobs: &[BlobId]) -> Result<Vec<BlobState>, StorageError> {
        let s = self.state();
        Ok(blobs.iter().map(|b| s.row(b).state()).collect())
    }

    async fn garbage(
        &self,
        before: Timestamp,
        after: Option<&GarbageRecord>,
        max: usize,
    ) -> Result<Vec<GarbageRecord>, StorageError> {
        let s = self.state();
        let start = match after {
            Some(a) => Bound::Excluded((a.since, a.blob.clone())),
            None => Bound::Unbounded,
        };
        Ok(s.garbage
            .range((start, Bound::Unbounded))
            .take_while(|((since, _), _)| *since < before)
            .take(max)
            .map(|((since, blob), _)| GarbageRecord { since: *since, blob: blob.clone() })
            .collect())
    }

    async fn forget_garbage(&self, records: &[GarbageRecord]) -> Result<(), StorageError> {
        let mut s = self.state();
        for r in records {
            if s.row(&r.blob) == BlobRow::Garbage(r.since) {
                s.blobs.remove(&r.blob);
            }
            s.garbage.remove(&(r.since, r.blob.clone()));
        }
        Ok(())
    }

    async fn claim_work(&self, name: &str, holder: &str, until: Timestamp) -> Result<bool, StorageError> {
        let mut s = self.state();
        let now = Timestamp::now();
        if s.claims.get(name).is_some_and(|c| c.holder != holder && c.until > now) {
            return Ok(false);
        }
        s.claims.insert(name.to_owned(), WorkClaim { holder: holder.to_owned(), until });
        Ok(true)
    }

    async fn release_work(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        let mut s = self.state();
        if s.claims.get(name).is_some_and(|c| c.holder == holder) {
            s.claims.remove(name);
        }
        Ok(())
    }

    async fn put_lease(&self, lease: &Lease) -> Result<(), StorageError> {
        self.state().leases.insert(lease.id.clone(), lease.clone());
        Ok(())
    }

    async fn delete_lease(&self, id: &str, if_expires: Option<Timestamp>) -> Result<(), StorageError> {
        let mut s = self.state();
        if if_expires.is_none_or(|t| s.leases.get(id).is_some_and(|l| l.expires == t)) {
            s.leases.remove(id);
        }
        Ok(())
    }

    async fn leases(&self) -> Result<Vec<Lease>, StorageError> {
        Ok(self.state().leases.values().cloned().collect())
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StorageError> {
        Ok(self.state().users.values().cloned().collect())
    }

    async fn create_user(&self, user: UserRecord) -> Result<(), StorageError> {
        let mut s = self.state();
        let change = Users(s.users.clone()).create(user)?;
        s.apply_users(change);
        Ok(())
    }

    async fn replace_user_key(&self, id: &str, access_key: &str, secret_key: &str) -> Result<UserRecord, StorageError> {
        let mut s = self.state();
        let (user, change) = Users(s.users.clone()).replace_key(id, access_key, secret_key)?;
        s.apply_users(change);
        Ok(user)
    }

    async fn delete_user(&self, access_key: &str) -> Result<UserRecord, StorageError> {
        let mut s = self.state();
        let (user, change) = Users(s.users.clone()).delete(access_key)?;
        s.apply_users(change);
        Ok(user)
    }

    async fn seed_users(&self, users: Vec<UserRecord>) -> Result<(), StorageError> {
        let mut s = self.state();
        let change = Users(s.users.clone()).seed(users)?;
        s.apply_users(change);
        Ok(())
    }

    async fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

impl State {
    fn apply_users(&mut self, change: UserChange) {
        for id in change.remove {
            self.users.remove(&id);
        }
        for u in change.put {
            self.users.insert(u.id.clone(), u);
        }
    }
}

/// Blobs in memory, for tests: each with the time it was written, so that ages are real.
#[derive(Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<HashMap<BlobId, (bytes::Bytes, std::time::Instant)>>,
}

impl MemoryBlobStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many blobs are stored.
    pub fn len(&self) -> usize {
        self.blobs().len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs().is_empty()
    }

    fn blobs(&self) -> MutexGuard<'_, HashMap<BlobId, (bytes::Bytes, std::time::Instant)>> {
        self.blobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, mut body: ByteStream) -> Result<BlobRef, StorageError> {
        use futures_util::StreamExt;
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk.map_err(StorageError::Input)?);
        }
        let id = BlobId::generate()?;
        let len = buf.len() as u64;
        self.blobs().insert(id.clone(), (buf.freeze(), std::time::Instant::now()));
        Ok(BlobRef { id, len })
    }

    async fn get(&self, id: &BlobId, range: Option<std::ops::Range<u64>>) -> Result<ByteStream, StorageError> {
        let data = self.blobs().get(id).map(|(b, _)| b.clone()).ok_or(StorageError::NotFound(Resource::Blob))?;
        let data = match range {
            Some(r) => {
                let end = usize::try_from(r.end).unwrap_or(usize::MAX).min(data.len());
                data.slice(usize::try_from(r.start).unwrap_or(usize::MAX).min(end)..end)
            }
            None => data,
        };
        Ok(Box::pin(futures_util::stream::iter([Ok(data)])))
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StorageError> {
        self.blobs().remove(id);
        Ok(())
    }

    fn list(&self) -> BlobListing {
        let all: Vec<Result<(BlobId, std::time::Duration), StorageError>> =
            self.blobs().iter().map(|(k, (_, t))| Ok((k.clone(), t.elapsed()))).collect();
        Box::pin(futures_util::stream::iter(all))
    }

    async fn remove_stale_temporaries(&self, _min_age: std::time::Duration) -> Result<usize, StorageError> {
        Ok(0)
    }
}

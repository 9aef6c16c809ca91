//! The metadata store: buckets, objects, multipart uploads and their parts, in S3 terms, and
//! the state of every blob they refer to.
//!
//! Versions: every object write creates a version, named by the store according to the
//! bucket's versioning state (read inside the same atomic step): a new id when versioning is
//! enabled, else the `null` version, replacing the key's previous `null` version. The latest
//! version of a key may be a delete marker; object listings show keys whose latest version
//! is not one.
//!
//! Blob lifecycle: every version and part that names a blob holds a reference to it (copies
//! may share a blob between several). A method that drops the last reference (an
//! overwrite, a delete, an abort, a re-uploaded part, a Complete that leaves parts out)
//! records the blob as garbage in the same atomic commit. Nothing is deleted here; the collector in [`super::Storage`] reclaims garbage
//! after a grace period, so that reads already under way finish.

use async_trait::async_trait;

use super::{
    BlobId, BlobState, BucketPage, BucketRecord, BucketSetting, BucketSettingKind, CompleteOutcome, CompletedUpload,
    DeleteOutcome, GarbageRecord, Lease, ListBucketsQuery, ListObjectsQuery, ListUploadsQuery, ListVersionsQuery,
    ObjectPage, ObjectRecord, PartPage, PartRecord, PutOutcome, StorageError, UploadPage, UploadRecord, UserRecord,
    VersionId, VersionKey, VersionPage, Versioning, WriteCondition,
};
use crate::clock::Timestamp;

/// Where bucket, object, upload and part records live. Each method is atomic on its own.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Succeeds when the store can serve requests.
    async fn health(&self) -> Result<(), StorageError>;

    /// Creates a bucket; `BucketExists` (with the current owner) when the name is taken.
    async fn create_bucket(&self, bucket: BucketRecord) -> Result<(), StorageError>;

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, StorageError>;

    /// Deletes a bucket that holds no object versions (delete markers included), with every
    /// multipart upload still in it (their parts become garbage) and its settings, as AWS
    /// does; `BucketNotEmpty` while versions remain.
    async fn delete_bucket(&self, name: &str) -> Result<(), StorageError>;

    /// Sets a bucket's versioning state, as [`Versioning::changed_to`] says (never back to
    /// `Unversioned`); `NotFound(Bucket)` when there is none.
    async fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<(), StorageError>;

    /// A bucket setting (tagging, lifecycle, …), if set.
    async fn get_bucket_setting(
        &self,
        bucket: &str,
        kind: BucketSettingKind,
    ) -> Result<Option<BucketSetting>, StorageError>;

    /// Sets (`Some`) or removes (`None`) a bucket setting; `NotFound(Bucket)` when there is
    /// no bucket.
    async fn put_bucket_setting(
        &self,
        bucket: &str,
        kind: BucketSettingKind,
        setting: Option<BucketSetting>,
    ) -> Result<(), StorageError>;

    /// The owner's buckets in name order.
    async fn list_buckets(&self, query: &ListBucketsQuery) -> Result<BucketPage, StorageError>;

    /// Writes a new version of an object if `condition` holds against the latest version;
    /// its `version_id` and `version_key` are assigned here. `PreconditionFailed` when the
    /// condition does not hold; `NotFound(Object)` for `IfMatch` without an object;
    /// `NotFound(Bucket)` when the bucket is gone.
    async fn put_object(&self, object: ObjectRecord, condition: &WriteCondition) -> Result<PutOutcome, StorageError>;

    /// As [`put_object`](Self::put_object), for an object made only of blobs that existing
    /// versions or parts refer to (a copy that reuses their bytes): each gains a reference.
    /// `NotFound(Blob)` when one is no longer referenced (what referred to it was removed
    /// meanwhile); nothing changes then.
    async fn put_object_shared(
        &self,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<PutOutcome, StorageError>;

    /// A version of an object: the latest (which may be a delete marker) without `version`.
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
    ) -> Result<Option<ObjectRecord>, StorageError>;

    /// Without `version`: in an unversioned bucket removes the object; in a versioned one
    /// writes a delete marker (`owner` owns it), in a suspended one a `null` marker replacing
    /// the `null` version. With `version`: removes that version for good (nothing when there
    /// is none). Removed versions' blobs become garbage.
    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        owner: &super::Owner,
    ) -> Result<DeleteOutcome, StorageError>;

    /// DeleteObjects: `delete_object` of each `(key, version)` in order, one result each.
    /// Stores that can commit them together (one synced write for the lot) do.
    async fn delete_objects(
        &self,
        bucket: &str,
        items: &[(String, Option<VersionId>)],
        owner: &super::Owner,
    ) -> Result<Vec<Result<DeleteOutcome, StorageError>>, StorageError> {
        let mut out = Vec::with_capacity(items.len());
        for (key, version) in items {
            out.push(self.delete_object(bucket, key, *version, owner).await);
        }
        Ok(out)
    }

    /// Lifecycle: removes `version` of `key` for good unless it is the key's latest (a
    /// delete of the newer versions may have made it so since the worker listed it); `None`
    /// when nothing was removed.
    async fn remove_noncurrent(
        &self,
        bucket: &str,
        key: &str,
        version: VersionKey,
    ) -> Result<Option<super::ObjectRecord>, StorageError>;

    /// As `delete_object` without a version, but only while the latest version is still
    /// `expected` (the lifecycle worker expires what it looked at, never a newer write).
    async fn expire_object(
        &self,
        bucket: &str,
        key: &str,
        expected: VersionKey,
        owner: &super::Owner,
    ) -> Result<DeleteOutcome, StorageError>;

    /// Changes the tags or the ACL of a version (the latest without `version`, which must
    /// not be a delete marker); returns the version changed. `NotFound(Object)`,
    /// `NotFound(Version)`, or `DeleteMarker`.
    async fn update_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        change: super::ObjectChange,
    ) -> Result<VersionId, StorageError>;

    /// Keys whose latest version is not a delete marker, in key order, grouped by delimiter.
    /// The records carry what a listing shows ([`ObjectRecord::listed`]); a store may leave
    /// out the rest.
    async fn list_objects(&self, bucket: &str, query: &ListObjectsQuery) -> Result<ObjectPage, StorageError>;

    /// Every version and delete marker, in key order and newest first within a key.
    /// `NotFound(Version)` when `version_id_marker` names no version of `key_marker`.
    async fn list_versions(&self, bucket: &str, query: &ListVersionsQuery) -> Result<VersionPage, StorageError>;

    /// Records a new upload; `NotFound(Bucket)` when the bucket is gone.
    async fn create_upload(&self, upload: UploadRecord) -> Result<(), StorageError>;

    /// The upload `upload_id` of `key`; `NotFound(Upload)` otherwise.
    async fn get_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord, StorageError>;

    /// Removes an upload with its parts and returns them (their blobs become garbage);
    /// `NotFound(Upload)` when there is none.
    async fn delete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(UploadRecord, Vec<PartRecord>), StorageError>;

    /// Uploads sorted by key, then initiation time; grouped by delimiter.
    /// `NotFound(Upload)` when `upload_id_marker` names no upload of `key_marker`.
    async fn list_uploads(&self, bucket: &str, query: &ListUploadsQuery) -> Result<UploadPage, StorageError>;

    /// Stores a part of a live upload, returning the part it replaced (its blob becomes garbage);
    /// `NotFound(Upload)` when the upload is gone (aborted or completed meanwhile).
    async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<Option<PartRecord>, StorageError>;

    /// As [`put_part`](Self::put_part), for a part whose blob existing versions or parts
    /// refer to (an UploadPartCopy of a whole part); `NotFound(Blob)` as for
    /// [`put_object_shared`](Self::put_object_shared).
    async fn put_part_shared(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<Option<PartRecord>, StorageError>;

    /// Parts with numbers above `after`, in order, at most `max`.
    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<PartPage, StorageError>;

    /// Atomically: checks the upload still exists, that every part of `object` is still the
    /// upload's current part of that number (`PartsChanged` when one was re-uploaded or is
    /// gone) and that `condition` holds; stores `object`, removes the upload with all its
    /// parts, and remembers the completion. Returns what was replaced and the parts not used
    /// by `object` (their blobs become garbage).
    async fn complete_upload(
        &self,
        upload_id: &str,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<CompleteOutcome, StorageError>;

    /// A completion remembered by [`complete_upload`](Self::complete_upload).
    async fn get_completed(&self, bucket: &str, upload_id: &str) -> Result<Option<CompletedUpload>, StorageError>;

    /// Forgets completions older than `before`.
    async fn prune_completed(&self, before: Timestamp) -> Result<usize, StorageError>;

    /// Records blobs that were written but never became referenced (their commit failed) as
    /// garbage. Blobs that are referenced after all are left alone.
    async fn discard_blobs(&self, blobs: &[BlobId]) -> Result<(), StorageError>;

    /// The state of each blob, in order: one call for a whole batch.
    async fn blob_states(&self, blobs: &[BlobId]) -> Result<Vec<BlobState>, StorageError>;

    /// Garbage recorded before `before`, oldest first, starting after `after`, at most `max`.
    async fn garbage(
        &self,
        before: Timestamp,
        after: Option<&GarbageRecord>,
        max: usize,
    ) -> Result<Vec<GarbageRecord>, StorageError>;

    /// Forgets garbage records whose blobs have been deleted (records that changed meanwhile
    /// are kept).
    async fn forget_garbage(&self, records: &[GarbageRecord]) -> Result<(), StorageError>;

    /// Takes (or renews) the claim `name` for `holder` until `until`; false while another
    /// holder's claim is live.
    async fn claim_work(&self, name: &str, holder: &str, until: Timestamp) -> Result<bool, StorageError>;

    /// Gives up a claim, if `holder` still has it.
    async fn release_work(&self, name: &str, holder: &str) -> Result<(), StorageError>;

    /// Records or renews a lease.
    async fn put_lease(&self, lease: &Lease) -> Result<(), StorageError>;

    /// Removes a lease; with `if_expires`, only if it still expires then (it was not renewed
    /// since it was read).
    async fn delete_lease(&self, id: &str, if_expires: Option<Timestamp>) -> Result<(), StorageError>;

    /// Every lease, expired ones included (the collector removes those).
    async fn leases(&self) -> Result<Vec<Lease>, StorageError>;

    /// Every user, in id order.
    async fn users(&self) -> Result<Vec<UserRecord>, StorageError>;

    /// Adds a user; `Conflict` when its id or access key is taken.
    async fn create_user(&self, user: UserRecord) -> Result<(), StorageError>;

    /// Gives user `id` a new access key and secret (the old key stops working); returns the
    /// updated user. `NotFound(User)`, or `Conflict` when the key is taken.
    async fn replace_user_key(&self, id: &str, access_key: &str, secret_key: &str) -> Result<UserRecord, StorageError>;

    /// Removes the user with this access key and returns it; `NotFound(User)` otherwise.
    async fn delete_user(&self, access_key: &str) -> Result<UserRecord, StorageError>;

    /// Makes the users seeded from the configuration exactly `users` (each `from_config`):
    /// adds or updates them by id and removes earlier seeded users no longer listed; users
    /// added at run time stay. `Conflict` when a listed access key belongs to another user.
    async fn seed_users(&self, users: Vec<UserRecord>) -> Result<(), StorageError>;

    /// Makes every write made so far durable: at shutdown, and before an answer built from
    /// what another request wrote (which may not be durable yet).
    async fn flush(&self) -> Result<(), StorageError>;
}

//! The metadata store: buckets, objects, multipart uploads and their parts, in S3 terms.

use async_trait::async_trait;

use super::{
    BlobId, BucketPage, BucketRecord, CompleteOutcome, CompletedUpload, ListBucketsQuery, ListObjectsQuery,
    ListUploadsQuery, ObjectPage, ObjectRecord, PartPage, PartRecord, StorageError, UploadPage, UploadRecord,
    WriteCondition,
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

    /// Deletes an empty bucket; `BucketNotEmpty` while it holds objects or uploads.
    async fn delete_bucket(&self, name: &str) -> Result<(), StorageError>;

    /// The owner's buckets in name order.
    async fn list_buckets(&self, query: &ListBucketsQuery) -> Result<BucketPage, StorageError>;

    /// Stores an object if `condition` holds, returning the object it replaced.
    /// `PreconditionFailed` when it does not; `NotFound(Object)` for `IfMatch` without an
    /// object; `NotFound(Bucket)` when the bucket is gone.
    async fn put_object(
        &self,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StorageError>;

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StorageError>;

    /// Removes an object and returns it (`None` when there was none).
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StorageError>;

    /// Objects in key order, grouped by delimiter.
    async fn list_objects(&self, bucket: &str, query: &ListObjectsQuery) -> Result<ObjectPage, StorageError>;

    /// Records a new upload; `NotFound(Bucket)` when the bucket is gone.
    async fn create_upload(&self, upload: UploadRecord) -> Result<(), StorageError>;

    /// The upload `upload_id` of `key`; `NotFound(Upload)` otherwise.
    async fn get_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord, StorageError>;

    /// Removes an upload with its parts and returns them; `NotFound(Upload)` when there is none.
    async fn delete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(UploadRecord, Vec<PartRecord>), StorageError>;

    /// Uploads sorted by key, then initiation time; grouped by delimiter.
    /// `NotFound(Upload)` when `upload_id_marker` names no upload of `key_marker`.
    async fn list_uploads(&self, bucket: &str, query: &ListUploadsQuery) -> Result<UploadPage, StorageError>;

    /// Stores a part of a live upload, returning the part it replaced;
    /// `NotFound(Upload)` when the upload is gone (aborted or completed meanwhile).
    async fn put_part(
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

    /// Atomically: checks the upload still exists and `condition` holds, stores `object`,
    /// removes the upload with all its parts, and remembers the completion. Returns what was
    /// replaced and the parts not used by `object`.
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

    /// Whether any object or part refers to the blob (the orphan sweep asks).
    async fn blob_in_use(&self, blob: &BlobId) -> Result<bool, StorageError>;

    /// Makes every acknowledged write durable; called at shutdown.
    async fn flush(&self) -> Result<(), StorageError>;
}

//! The metadata store: buckets and multipart uploads, in S3 terms.

use async_trait::async_trait;

use super::{
    BucketPage, BucketRecord, ListBucketsQuery, ListUploadsQuery, StorageError, UploadPage,
    UploadRecord,
};

/// Where bucket, object and upload records live. Each method is atomic on its own.
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

    /// Records a new upload; `NotFound(Bucket)` when the bucket is gone.
    async fn create_upload(&self, upload: UploadRecord) -> Result<(), StorageError>;

    /// The upload `upload_id` of `key`; `NotFound(Upload)` otherwise.
    async fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord, StorageError>;

    /// Removes an upload and returns it; `NotFound(Upload)` when there is none.
    async fn delete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord, StorageError>;

    /// Uploads sorted by key, then initiation time; grouped by delimiter.
    /// `NotFound(Upload)` when `upload_id_marker` names no upload of `key_marker`.
    async fn list_uploads(
        &self,
        bucket: &str,
        query: &ListUploadsQuery,
    ) -> Result<UploadPage, StorageError>;

    /// Makes every acknowledged write durable; called at shutdown.
    async fn flush(&self) -> Result<(), StorageError>;
}

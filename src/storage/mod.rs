//! Persistence behind small traits that speak S3's domain (buckets, uploads, pages), never KV
//! mechanics. No HTTP, XML or S3 error types here: callers map [`StorageError`] once.
//!
//! Every [`MetadataStore`] method is atomic on its own and async, so that an engine living in
//! another process (a networked transactional database shared by several s3d nodes) can
//! implement it without changing callers.

pub mod blob;
mod codec;
#[cfg(test)]
mod conformance;
pub mod cors;
pub mod expiry;
pub mod fs;
mod lifecycle;
mod listing;
pub mod memory;

mod metadata;
mod model;
pub mod postgres;
mod refs;
pub mod rocks;
mod rules;
mod users;
mod version;

use std::fmt;

pub use blob::{BlobId, BlobListing, BlobRef, BlobStore, ByteStream};
pub use cors::{CorsConfiguration, CorsRule};
pub use lifecycle::{GcConfig, Storage};
pub use listing::{Entry, Grouped, Pager, Step, common_prefix, group, listing_start, marker_common_prefix, prefix_end};
pub use metadata::MetadataStore;
pub use model::*;
pub use rules::{
    Expiration, LifecycleConfiguration, LifecycleFilter, LifecycleRule, NoncurrentExpiration, aws_day_boundary,
};
pub use version::{VersionId, VersionKey, Versioning};

/// What a storage error is about, so that S3 can keep NoSuchBucket, NoSuchKey and
/// NoSuchUpload apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Bucket,
    Object,
    Upload,
    Blob,
    /// A version id that names no version of the key.
    Version,
    /// A user (by id or access key).
    User,
}

#[derive(Debug)]
pub enum StorageError {
    NotFound(Resource),
    /// The bucket name is taken; `owner_id` tells whose it is.
    BucketExists {
        owner_id: String,
    },
    /// The bucket still holds objects or multipart uploads.
    BucketNotEmpty,
    /// A conditional write found the current state different from what it required.
    PreconditionFailed,
    /// A concurrent writer changed the state between check and commit.
    Conflict,
    /// A part of a Complete's manifest is no longer the upload's current part.
    PartsChanged,
    /// The operation does not apply to a delete marker.
    DeleteMarker,
    /// Stored bytes that cannot be decoded.
    Corrupt(String),
    /// The engine or the file system failed.
    Io(String),
    /// The store cannot be reached (a networked database that is down, failing over or
    /// overloaded); the request may be retried shortly.
    Unavailable(String),
    /// The store has been shut down.
    Closed,
    /// The input stream of a blob write failed; the write was abandoned.
    Input(std::io::Error),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::NotFound(r) => write!(f, "{r:?} not found"),
            StorageError::BucketExists { owner_id } => {
                write!(f, "bucket exists (owner {owner_id})")
            }
            StorageError::BucketNotEmpty => f.write_str("bucket not empty"),
            StorageError::PreconditionFailed => f.write_str("precondition failed"),
            StorageError::Conflict => f.write_str("conflicting concurrent write"),
            StorageError::PartsChanged => f.write_str("the upload's parts changed"),
            StorageError::DeleteMarker => f.write_str("the version is a delete marker"),
            StorageError::Corrupt(m) => write!(f, "corrupt record: {m}"),
            StorageError::Io(m) => write!(f, "storage I/O: {m}"),
            StorageError::Unavailable(m) => write!(f, "metadata store unavailable: {m}"),
            StorageError::Closed => f.write_str("store closed"),
            StorageError::Input(e) => write!(f, "input stream failed: {e}"),
        }
    }
}

impl std::error::Error for StorageError {}

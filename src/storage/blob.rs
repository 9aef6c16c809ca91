//! The blob store: object and part bytes, addressed by ids it chooses. Digests are the
//! caller's business; the store only keeps bytes durably and streams them back.

use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use super::StorageError;

/// A stream of bytes going into or out of the store. Errors on the way in abort the write;
/// the error is handed back as [`StorageError::Input`].
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>>;

/// Every stored blob with its age (time since it was last written or renamed into place),
/// produced as the store is walked rather than collected first.
pub type BlobListing =
    Pin<Box<dyn Stream<Item = Result<(BlobId, std::time::Duration), StorageError>> + Send + 'static>>;

/// Identifies one stored blob. File names derive from ids, never from object keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlobId(pub String);

impl BlobId {
    /// 128 random bits as 32 lower-case hex digits.
    pub fn generate() -> Result<BlobId, StorageError> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|e| StorageError::Io(format!("random source: {e}")))?;
        Ok(BlobId(hex::encode(b)))
    }

    /// Whether this looks like an id the store made (guards file-name use).
    pub fn is_well_formed(&self) -> bool {
        self.0.len() == 32 && self.0.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

/// What a finished write produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub id: BlobId,
    pub len: u64,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Writes the whole stream; durable (when the store is configured so) before it returns.
    /// A failed or dropped write leaves nothing behind.
    async fn put(&self, body: ByteStream) -> Result<BlobRef, StorageError>;

    /// Streams `range` (or everything) of a blob; `NotFound(Blob)` when it is gone.
    async fn get(&self, id: &BlobId, range: Option<Range<u64>>) -> Result<ByteStream, StorageError>;

    /// Removes a blob; removing a missing blob is not an error. Only the collector and the
    /// orphan sweep call this.
    async fn delete(&self, id: &BlobId) -> Result<(), StorageError>;

    /// Every stored blob, for the orphan sweep. Files that are not blobs are skipped.
    fn list(&self) -> BlobListing;

    /// Removes temporary files of writes abandoned at least `min_age` ago (by a crash of this
    /// or another process sharing the store); returns how many.
    async fn remove_stale_temporaries(&self, min_age: std::time::Duration) -> Result<usize, StorageError>;
}

//! Housekeeping: removes blobs no metadata refers to (left by a crash between a blob write
//! and its metadata commit, or by a failed delete) and forgets old completed uploads.

use std::sync::Arc;
use std::time::Duration;

use super::{BlobStore, MetadataStore, StorageError};
use crate::clock::Timestamp;

/// How often the periodic sweep runs.
const INTERVAL: Duration = Duration::from_secs(3600);
/// Blobs younger than this may belong to a write that has not committed yet.
const MIN_AGE: Duration = Duration::from_secs(3600);
/// How long a completed upload id still answers a retried Complete.
const COMPLETED_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Deletes unreferenced blobs older than `min_age`; returns how many.
pub async fn sweep(meta: &dyn MetadataStore, blobs: &dyn BlobStore, min_age: Duration) -> Result<usize, StorageError> {
    let mut removed = 0;
    for (id, age) in blobs.list().await? {
        if age >= min_age.as_secs() && !meta.blob_in_use(&id).await? {
            blobs.delete(&id).await?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "orphan sweep removed unreferenced blobs");
    }
    Ok(removed)
}

pub async fn run_periodically(meta: Arc<dyn MetadataStore>, blobs: Arc<dyn BlobStore>) {
    loop {
        tokio::time::sleep(INTERVAL).await;
        if let Err(e) = sweep(&*meta, &*blobs, MIN_AGE).await {
            tracing::warn!(error = %e, "orphan sweep failed");
        }
        let before = Timestamp(Timestamp::now().0 - COMPLETED_RETENTION.as_nanos() as i64);
        if let Err(e) = meta.prune_completed(before).await {
            tracing::warn!(error = %e, "pruning completed uploads failed");
        }
    }
}

//! In-memory stores: the executable reference model the persistent ones are checked against,
//! and a fast backend for tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    BucketPage, BucketRecord, ListBucketsQuery, ListUploadsQuery, MetadataStore, Resource,
    StorageError, UploadPage, UploadRecord, group, marker_common_prefix,
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
}

#[derive(Default)]
pub struct MemoryMetadataStore {
    state: Mutex<State>,
}

impl MemoryMetadataStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: every method
        // validates before it mutates, so the state is usable even if poisoned.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn upload_key(u: &UploadRecord) -> UploadKey {
    (
        u.bucket.clone(),
        u.key.clone(),
        u.initiated,
        u.upload_id.clone(),
    )
}

impl State {
    fn find_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<&UploadKey, StorageError> {
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
            return Err(StorageError::BucketExists {
                owner_id: existing.owner.id.clone(),
            });
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
        let from = (
            name.to_owned(),
            String::new(),
            Timestamp(i64::MIN),
            String::new(),
        );
        if s.uploads
            .range(from..)
            .next()
            .is_some_and(|(k, _)| k.0 == name)
        {
            return Err(StorageError::BucketNotEmpty);
        }
        s.buckets.remove(name);
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
            .filter(|b| b.owner.id == q.owner_id && b.name.starts_with(&q.prefix))
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

    async fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord, StorageError> {
        let s = self.state();
        let k = s.find_upload(bucket, key, upload_id)?;
        s.uploads
            .get(k)
            .cloned()
            .ok_or(StorageError::NotFound(Resource::Upload))
    }

    async fn delete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord, StorageError> {
        let mut s = self.state();
        let k = s.find_upload(bucket, key, upload_id)?.clone();
        s.upload_ids
            .remove(&(bucket.to_owned(), upload_id.to_owned()));
        s.uploads
            .remove(&k)
            .ok_or(StorageError::NotFound(Resource::Upload))
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        q: &ListUploadsQuery,
    ) -> Result<UploadPage, StorageError> {
        let s = self.state();
        let at_prefix = (
            bucket.to_owned(),
            q.prefix.clone(),
            Timestamp(i64::MIN),
            String::new(),
        );
        let start = match (&q.key_marker, &q.upload_id_marker) {
            (Some(k), _) if *k < q.prefix => Bound::Included(at_prefix),
            (Some(k), Some(id)) => Bound::Excluded(s.find_upload(bucket, k, id)?.clone()),
            // Past every upload of the marker key.
            (Some(k), None) => Bound::Excluded((
                bucket.to_owned(),
                k.clone(),
                Timestamp(i64::MAX),
                char::MAX.to_string(),
            )),
            (None, _) => Bound::Included(at_prefix),
        };
        let items = s
            .uploads
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.0 == bucket)
            .map(|(_, u)| Ok::<_, StorageError>(u.clone()));
        let skip = q
            .key_marker
            .as_deref()
            .and_then(|m| marker_common_prefix(m, &q.prefix, q.delimiter.as_deref()));
        let grouped = group(
            items,
            |u| u.key.as_str(),
            &q.prefix,
            q.delimiter.as_deref(),
            skip,
            q.max_uploads,
        )?;
        Ok(UploadPage::from_grouped(grouped))
    }

    async fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

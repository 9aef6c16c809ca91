//! [`RocksMetadataStore`]: metadata in an embedded RocksDB.
//!
//! Durability: with `sync` on (the default), every write batch is committed with a synced WAL
//! before the call returns, so an acknowledged write survives `kill -9` and power loss.
//! RocksDB calls block, so each method runs on tokio's blocking pool. Read-check-write
//! sequences (create if absent, delete if empty) hold one write lock, which makes each trait
//! method atomic with respect to the others.

mod codec;
mod keys;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use super::{
    BucketPage, BucketRecord, ListBucketsQuery, ListUploadsQuery, MetadataStore, Resource,
    StorageError, UploadPage, UploadRecord, group, marker_common_prefix,
};

/// The column families, one per record kind.
#[derive(Clone, Copy, Debug)]
enum Cf {
    /// bucket name → BucketRecord
    Buckets,
    /// keys::upload → UploadRecord
    Uploads,
    /// keys::upload_id → keys::upload
    UploadIds,
}

impl Cf {
    const ALL: [Cf; 3] = [Cf::Buckets, Cf::Uploads, Cf::UploadIds];

    fn name(self) -> &'static str {
        match self {
            Cf::Buckets => "buckets",
            Cf::Uploads => "uploads",
            Cf::UploadIds => "upload_ids",
        }
    }
}

struct Inner {
    db: DB,
    sync: bool,
    write_lock: Mutex<()>,
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

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        cf: Cf,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        match self.db.get_pinned_cf(self.cf(cf)?, key).map_err(io)? {
            Some(v) => codec::decode(&v).map(Some),
            None => Ok(None),
        }
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut opts = WriteOptions::default();
        // The WAL is fsynced before the write returns: an acknowledged request survives
        // power loss. Turning `sync` off trades that for latency.
        opts.set_sync(self.sync);
        self.db.write_opt(batch, &opts).map_err(io)
    }

    /// Whether any key of `cf` starts with `prefix`.
    fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool, StorageError> {
        let mut it = self
            .db
            .iterator_cf(self.cf(cf)?, IteratorMode::From(prefix, Direction::Forward));
        match it.next() {
            Some(Ok((k, _))) => Ok(k.starts_with(prefix)),
            Some(Err(e)) => Err(io(e)),
            None => Ok(false),
        }
    }

    /// The upload key of `upload_id` and its record, provided it belongs to `key`.
    fn find_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(Vec<u8>, UploadRecord), StorageError> {
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
        let db = DB::open_cf(&opts, path, Cf::ALL.map(Cf::name)).map_err(io)?;
        Ok(RocksMetadataStore {
            inner: Arc::new(Inner {
                db,
                sync,
                write_lock: Mutex::new(()),
            }),
        })
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StorageError::Io(format!("metadata task failed: {e}")))?
    }
}

#[async_trait]
impl MetadataStore for RocksMetadataStore {
    async fn health(&self) -> Result<(), StorageError> {
        self.blocking(|db| db.get::<BucketRecord>(Cf::Buckets, b"\0health").map(drop))
            .await
    }

    async fn create_bucket(&self, bucket: BucketRecord) -> Result<(), StorageError> {
        self.blocking(move |db| {
            let _guard = db.lock();
            if let Some(existing) = db.get::<BucketRecord>(Cf::Buckets, bucket.name.as_bytes())? {
                return Err(StorageError::BucketExists {
                    owner_id: existing.owner.id,
                });
            }
            let mut batch = WriteBatch::default();
            batch.put_cf(
                db.cf(Cf::Buckets)?,
                bucket.name.as_bytes(),
                codec::encode(&bucket)?,
            );
            db.write(batch)
        })
        .await
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, StorageError> {
        let name = name.to_owned();
        self.blocking(move |db| db.get(Cf::Buckets, name.as_bytes()))
            .await
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), StorageError> {
        let name = name.to_owned();
        self.blocking(move |db| {
            let _guard = db.lock();
            if db
                .get::<BucketRecord>(Cf::Buckets, name.as_bytes())?
                .is_none()
            {
                return Err(StorageError::NotFound(Resource::Bucket));
            }
            if db.any_with_prefix(Cf::Uploads, &keys::bucket_prefix(&name))? {
                return Err(StorageError::BucketNotEmpty);
            }
            let mut batch = WriteBatch::default();
            batch.delete_cf(db.cf(Cf::Buckets)?, name.as_bytes());
            db.write(batch)
        })
        .await
    }

    async fn list_buckets(&self, q: &ListBucketsQuery) -> Result<BucketPage, StorageError> {
        let q = q.clone();
        self.blocking(move |db| {
            let start = match &q.start_after {
                Some(after) => keys::successor(after.as_bytes().to_vec()),
                None => q.prefix.as_bytes().to_vec(),
            };
            let mut page = BucketPage::default();
            let it = db.db.iterator_cf(
                db.cf(Cf::Buckets)?,
                IteratorMode::From(&start, Direction::Forward),
            );
            for item in it {
                let (k, v) = item.map_err(io)?;
                if !k.starts_with(q.prefix.as_bytes()) {
                    if k.as_ref() > q.prefix.as_bytes() {
                        break;
                    }
                    continue;
                }
                let b: BucketRecord = codec::decode(&v)?;
                if b.owner.id != q.owner_id {
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
        self.blocking(move |db| {
            let _guard = db.lock();
            if db
                .get::<BucketRecord>(Cf::Buckets, upload.bucket.as_bytes())?
                .is_none()
            {
                return Err(StorageError::NotFound(Resource::Bucket));
            }
            let id_key = keys::upload_id(&upload.bucket, &upload.upload_id);
            if db
                .db
                .get_pinned_cf(db.cf(Cf::UploadIds)?, &id_key)
                .map_err(io)?
                .is_some()
            {
                return Err(StorageError::Conflict);
            }
            let pk = keys::upload(
                &upload.bucket,
                &upload.key,
                upload.initiated,
                &upload.upload_id,
            );
            let mut batch = WriteBatch::default();
            batch.put_cf(db.cf(Cf::Uploads)?, &pk, codec::encode(&upload)?);
            batch.put_cf(db.cf(Cf::UploadIds)?, &id_key, &pk);
            db.write(batch)
        })
        .await
    }

    async fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord, StorageError> {
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.blocking(move |db| db.find_upload(&bucket, &key, &upload_id).map(|(_, u)| u))
            .await
    }

    async fn delete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord, StorageError> {
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.blocking(move |db| {
            let _guard = db.lock();
            let (pk, record) = db.find_upload(&bucket, &key, &upload_id)?;
            let mut batch = WriteBatch::default();
            batch.delete_cf(db.cf(Cf::Uploads)?, &pk);
            batch.delete_cf(db.cf(Cf::UploadIds)?, keys::upload_id(&bucket, &upload_id));
            db.write(batch)?;
            Ok(record)
        })
        .await
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        q: &ListUploadsQuery,
    ) -> Result<UploadPage, StorageError> {
        let (bucket, q) = (bucket.to_owned(), q.clone());
        self.blocking(move |db| {
            let at_prefix = keys::upload_prefix(&bucket, &q.prefix);
            let start = match (&q.key_marker, &q.upload_id_marker) {
                (Some(k), _) if *k < q.prefix => at_prefix,
                (Some(k), Some(id)) => keys::successor(db.find_upload(&bucket, k, id)?.0),
                (Some(k), None) => keys::upload_after_key(&bucket, k),
                (None, _) => at_prefix,
            };
            let bucket_prefix = keys::bucket_prefix(&bucket);
            let items = db
                .db
                .iterator_cf(
                    db.cf(Cf::Uploads)?,
                    IteratorMode::From(&start, Direction::Forward),
                )
                .map(|item| item.map_err(io))
                .take_while(|item| {
                    item.as_ref()
                        .map_or(true, |(k, _)| k.starts_with(&bucket_prefix))
                })
                .map(|item| item.and_then(|(_, v)| codec::decode::<UploadRecord>(&v)));
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
        })
        .await
    }

    async fn flush(&self) -> Result<(), StorageError> {
        self.blocking(|db| db.db.flush_wal(true).map_err(io)).await
    }
}

//! [`PostgresMetadataStore`]: metadata in PostgreSQL, shared by any number of s3d nodes.
//!
//! Every trait method is one transaction (READ COMMITTED) made atomic against the others by
//! explicit locks, always taken in the same order so that they cannot deadlock:
//!
//! 1. a transaction-scoped advisory lock on the bucket: shared by everything that writes
//!    into a bucket, exclusive for DeleteBucket and a versioning change (advisory locks
//!    queue fairly and write nothing to the bucket's row, which row locks on one hot row
//!    would do for every write);
//! 2. a transaction-scoped advisory lock on (bucket, key) by everything that writes a
//!    version of that key (so writes to one key are serialised, as they are in RocksDB);
//! 3. the upload row `FOR UPDATE` by everything that changes an upload or its parts;
//! 4. last, the rows of the blobs whose reference counts it changes, `FOR UPDATE` in id
//!    order, all at once.
//!
//! A transaction that fails because of a serialisation failure or a deadlock, or because its
//! connection turned out to be dead before it committed, is retried on a fresh connection;
//! one whose COMMIT was sent but not answered is not (it may have committed), and the
//! request fails with [`StorageError::Unavailable`] instead. A database that cannot be
//! reached, is shutting down, is read-only (a standby after a failover) or does not answer
//! within [`OP_TIMEOUT`] makes operations fail with `Unavailable` (503 to clients) until it
//! is back: the pool reconnects by itself. A connection whose operation did not finish (it
//! timed out, or the connection failed) is closed rather than handed out again, and the
//! server gives up on a lock wait after [`LOCK_TIMEOUT`] and on an abandoned transaction
//! after [`IDLE_TIMEOUT`], so nothing a lost client left behind holds locks for long.
//!
//! Reads run without a transaction (no BEGIN and COMMIT round trips): one statement sees a
//! consistent state. Listings are index range scans that skip past a whole common prefix at
//! once, rather than reading every key under it.

mod schema;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, Transaction,
};
use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};

use super::codec::{self, Record};
use super::listing::{Pager, Step, listing_start};
use super::refs::{self, BlobRow, Origin, RefChanges};
use super::users::{UserChange, Users};
use super::{
    BlobId, BlobState, BucketPage, BucketRecord, BucketSetting, BucketSettingKind, CompleteOutcome, CompletedUpload,
    DeleteOutcome, GarbageRecord, Lease, ListBucketsQuery, ListObjectsQuery, ListUploadsQuery, ListVersionsQuery,
    MetadataStore, ObjectPage, ObjectRecord, Owner, PartPage, PartRecord, PutOutcome, Resource, StorageError,
    UploadPage, UploadRecord, UserRecord, VersionEntry, VersionId, VersionKey, VersionPage, Versioning, WriteCondition,
    prefix_end,
};
use crate::clock::Timestamp;

/// How long one metadata operation may take, waiting for a connection included, before the
/// database is declared unavailable for it.
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server waits for a lock (`lock_timeout`, unless the URL sets `options`).
const LOCK_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server keeps a transaction nobody continues (`idle_in_transaction_session_timeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting may take (unless the URL sets `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of a transaction that hit a retryable failure.
const ATTEMPTS: u32 = 5;
/// Rows fetched per query of a listing (few in tests, so that they cross many batches).
const BATCH: i64 = if cfg!(test) { 7 } else { 1000 };

/// Why a transaction did not complete.
enum Fail {
    /// A statement failed (the transaction was rolled back).
    Db(tokio_postgres::Error),
    /// COMMIT was sent and failed: the transaction may or may not have committed.
    Commit(tokio_postgres::Error),
    /// The operation's own answer (not found, precondition failed, …).
    Store(StorageError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Fail::Store(e)
    }
}

/// Whether the failure says the database is out of reach (rather than that the statement
/// was wrong).
fn unreachable(e: &tokio_postgres::Error) -> bool {
    if let Some(code) = e.code() {
        let c = code.code();
        // 08: connection exceptions; 57: operator intervention (shutdown, starting up,
        // statement timeout); 53300: too many connections; 25006: a read-only transaction,
        // which is what a standby answers after a failover; 55P03: a lock not granted
        // within `lock_timeout`; 25P03: the server ended an abandoned transaction.
        return c.starts_with("08") || c.starts_with("57") || ["53300", "25006", "55P03", "25P03"].contains(&c);
    }
    if e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
        return true;
    }
    let m = e.to_string();
    ["error connecting", "error communicating", "timeout waiting", "connection closed"].iter().any(|p| m.starts_with(p))
}

/// Whether running the transaction again may succeed: a serialisation failure or deadlock.
fn retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| matches!(c.code(), "40001" | "40P01"))
}

pub(crate) fn pg_error(e: tokio_postgres::Error) -> StorageError {
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    // A conflict that outlived its retries is the database being busy, not a fault.
    if unreachable(&e) || retryable(&e) { StorageError::Unavailable(text) } else { StorageError::Io(text) }
}

fn pool_error(e: PoolError) -> StorageError {
    match e {
        PoolError::Backend(e) => pg_error(e),
        PoolError::Closed => StorageError::Closed,
        other => StorageError::Unavailable(format!("connection pool: {other}")),
    }
}

fn decode<T: Record>(row: &Row, column: &str) -> Result<T, Fail> {
    let bytes: &[u8] = row.try_get(column)?;
    Ok(codec::decode(bytes)?)
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

async fn query(tx: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Fail> {
    let st = tx.prepare_cached(sql).await?;
    Ok(tx.query(&st, params).await?)
}

async fn query_opt(tx: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Option<Row>, Fail> {
    let st = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&st, params).await?)
}

async fn execute(tx: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64, Fail> {
    let st = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&st, params).await?)
}

/// A pooled connection that goes back to the pool only when the operation using it
/// finished on it: one dropped mid-statement (the operation timed out) may still be busy on
/// the server, and one that failed as unreachable is dead; both are closed instead.
struct Checkout {
    conn: Option<deadpool_postgres::Object>,
    reusable: bool,
}

impl Checkout {
    fn new(conn: deadpool_postgres::Object) -> Checkout {
        Checkout { conn: Some(conn), reusable: false }
    }
}

impl std::ops::Deref for Checkout {
    type Target = deadpool_postgres::Object;
    fn deref(&self) -> &Self::Target {
        self.conn.as_ref().expect("a checkout holds its connection until dropped")
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn.as_mut().expect("a checkout holds its connection until dropped")
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if !self.reusable
            && let Some(conn) = self.conn.take()
        {
            drop(deadpool_postgres::Object::take(conn));
        }
    }
}

/// Runs `$body` (an async block using `$client`, a pooled connection, yielding
/// `Result<_, Fail>`), retrying what may be retried on a fresh connection, within
/// [`OP_TIMEOUT`]; records the call in the metrics.
macro_rules! with_client {
    ($store:expr, |$client:ident| $body:expr) => {{
        let store = $store;
        let run = async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut pooled = Checkout::new(store.pool.get().await.map_err(pool_error)?);
                let outcome: Result<_, Fail> = {
                    let $client = &mut *pooled;
                    $body
                }
                .await;
                pooled.reusable = !matches!(&outcome, Err(Fail::Db(e) | Fail::Commit(e)) if unreachable(e));
                match outcome {
                    Ok(v) => break Ok(v),
                    Err(Fail::Store(e)) => break Err(e),
                    Err(Fail::Commit(e)) => break Err(pg_error(e)),
                    Err(Fail::Db(e)) if attempt < ATTEMPTS && (retryable(&e) || unreachable(&e)) => {
                        tracing::debug!(error = %e, attempt, "retrying a metadata operation");
                        drop(pooled);
                        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                    }
                    Err(Fail::Db(e)) => break Err(pg_error(e)),
                }
            }
        };
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(OP_TIMEOUT, run).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::Unavailable(format!("no answer within {OP_TIMEOUT:?}"))),
        };
        crate::metrics::metrics().metadata_call("postgres", started.elapsed(), &result);
        result
    }};
}

/// Runs `$body` (a block using `$tx`, whose `?` yields [`Fail`]) in a transaction.
macro_rules! transaction {
    ($store:expr, $isolation:expr, |$tx:ident| $body:block) => {
        with_client!($store, |client| async {
            let $tx = client.build_transaction().isolation_level($isolation).start().await?;
            let value = $body;
            $tx.commit().await.map_err(Fail::Commit)?;
            Ok::<_, Fail>(value)
        })
    };
    ($store:expr, |$tx:ident| $body:block) => {
        transaction!($store, IsolationLevel::ReadCommitted, |$tx| $body)
    };
}

/// Runs `$body` (a block using `$c`, a connection) without a transaction: for reads of one
/// statement, which see a consistent state on their own and need no BEGIN and COMMIT.
macro_rules! read {
    ($store:expr, |$c:ident| $body:block) => {
        with_client!($store, |client| async {
            let $c = &*client;
            Ok::<_, Fail>($body)
        })
    };
}

/// Metadata in a PostgreSQL database that several s3d nodes may share.
#[derive(Clone)]
pub struct PostgresMetadataStore {
    pool: Pool,
}

impl PostgresMetadataStore {
    /// Connects to `url` (keeping at most `pool_size` connections) and brings the schema up
    /// to date. Fails when the database cannot be reached.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StorageError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StorageError::Io(format!("not a PostgreSQL connection URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("s3d");
        }
        // A peer that vanished without closing the connection is noticed within a minute.
        config.keepalives(true).keepalives_idle(Duration::from_secs(15)).keepalives_interval(Duration::from_secs(5));
        config.keepalives_retries(3);
        if config.get_options().is_none() {
            config.options(format!(
                "-c lock_timeout={} -c idle_in_transaction_session_timeout={}",
                LOCK_TIMEOUT.as_millis(),
                IDLE_TIMEOUT.as_millis()
            ));
        }
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(OP_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT * 2))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StorageError::Io(format!("connection pool: {e}")))?;
        let mut client = pool.get().await.map_err(pool_error)?;
        schema::migrate(&mut client).await?;
        drop(client);
        Ok(PostgresMetadataStore { pool })
    }
}

// ---- Building blocks, each a few statements inside the caller's transaction ---------------

/// The advisory lock that serialises writes of one key: the first 8 bytes of a SHA-256 of
/// the bucket and key (a collision only serialises two unrelated keys).
fn key_lock(bucket: &str, key: &str) -> i64 {
    let mut h = Sha256::new();
    h.update(b"s3d-key\0");
    h.update(bucket.as_bytes());
    h.update(b"\0");
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The advisory lock of a bucket (see the module's lock order).
fn bucket_lock(bucket: &str) -> i64 {
    key_lock(bucket, "\0bucket")
}

/// Takes the bucket's lock exclusively, until commit.
async fn lock_bucket_exclusive(tx: &Transaction<'_>, bucket: &str) -> Result<(), Fail> {
    query(tx, "SELECT pg_advisory_xact_lock($1)", &[&bucket_lock(bucket)]).await.map(drop)
}

/// Takes the bucket's lock shared, and the lock of `key` in it when given, until commit;
/// then reads the bucket (in a statement of its own, so that it sees what a DeleteBucket
/// or a versioning change that held the lock committed).
async fn bucket_shared(tx: &Transaction<'_>, bucket: &str, key: Option<&str>) -> Result<Option<BucketRecord>, Fail> {
    match key {
        Some(key) => {
            let sql = "SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2)";
            query(tx, sql, &[&bucket_lock(bucket), &key_lock(bucket, key)]).await?
        }
        None => query(tx, "SELECT pg_advisory_xact_lock_shared($1)", &[&bucket_lock(bucket)]).await?,
    };
    match query_opt(tx, "SELECT record FROM buckets WHERE name = $1", &[&bucket]).await? {
        Some(row) => Ok(Some(decode(&row, "record")?)),
        None => Ok(None),
    }
}

async fn bucket_required(tx: &Transaction<'_>, bucket: &str, key: Option<&str>) -> Result<BucketRecord, Fail> {
    bucket_shared(tx, bucket, key).await?.ok_or(Fail::Store(StorageError::NotFound(Resource::Bucket)))
}

/// Blob ids as the `blobs` table keys them (their bytes), each once.
fn unique<'a>(blobs: impl IntoIterator<Item = &'a BlobId>) -> Vec<&'a [u8]> {
    let mut seen = HashSet::new();
    blobs.into_iter().map(|b| b.0.as_bytes()).filter(|b| seen.insert(*b)).collect()
}

/// The rows of `ids`, in that order.
async fn blob_rows(tx: &impl GenericClient, ids: &[&[u8]], lock: bool) -> Result<Vec<BlobRow>, Fail> {
    // Locked in id order, the one order every transaction locks blob rows in.
    let sql = if lock {
        "SELECT id, refs, garbage_at FROM blobs WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    } else {
        "SELECT id, refs, garbage_at FROM blobs WHERE id = ANY($1)"
    };
    let mut found = HashMap::new();
    for r in query(tx, sql, &[&ids]).await? {
        let id: Vec<u8> = r.try_get("id")?;
        let row = match r.try_get::<_, Option<i64>>("garbage_at")? {
            Some(since) => BlobRow::Garbage(Timestamp(since)),
            None => match u32::try_from(r.try_get::<_, i32>("refs")?) {
                Ok(n) if n > 0 => BlobRow::Referenced(n),
                _ => return Err(StorageError::Corrupt("a blob row counting no reference".into()).into()),
            },
        };
        found.insert(id, row);
    }
    Ok(ids.iter().map(|id| found.get(*id).copied().unwrap_or(BlobRow::Unknown)).collect())
}

/// Applies one transaction's reference changes to the blobs' rows, locked first (once per
/// transaction, in id order), so that the changes net out whatever their order.
async fn change_refs(tx: &Transaction<'_>, changes: &RefChanges) -> Result<(), Fail> {
    if changes.is_empty() {
        return Ok(());
    }
    let ids: Vec<&[u8]> = changes.ids().map(|b| b.0.as_bytes()).collect();
    let current = blob_rows(tx, &ids, true).await?;
    let next = changes.resolve(&current, Timestamp::now())?;
    if next.is_empty() {
        return Ok(());
    }
    let ids: Vec<&[u8]> = next.iter().map(|(b, _)| b.0.as_bytes()).collect();
    let refs: Vec<i32> = next
        .iter()
        .map(|(_, r)| if let BlobRow::Referenced(n) = r { i32::try_from(*n).unwrap_or(i32::MAX) } else { 0 })
        .collect();
    let since: Vec<Option<i64>> =
        next.iter().map(|(_, r)| if let BlobRow::Garbage(t) = r { Some(t.0) } else { None }).collect();
    let sql = "INSERT INTO blobs (id, refs, garbage_at) SELECT * FROM unnest($1::bytea[], $2::integer[], $3::bigint[]) \
               ON CONFLICT (id) DO UPDATE SET refs = excluded.refs, garbage_at = excluded.garbage_at";
    execute(tx, sql, &[&ids, &refs, &since]).await.map(drop)
}

async fn release<'a>(tx: &Transaction<'_>, blobs: impl IntoIterator<Item = &'a BlobId>) -> Result<(), Fail> {
    let mut changes = RefChanges::new();
    changes.release(blobs);
    change_refs(tx, &changes).await
}

/// The newest version of a key (a delete marker included).
async fn newest(tx: &impl GenericClient, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, Fail> {
    let sql = "SELECT record FROM versions WHERE bucket = $1 AND key = $2 ORDER BY version_key LIMIT 1";
    match query_opt(tx, sql, &[&bucket, &key.as_bytes()]).await? {
        Some(row) => Ok(Some(decode(&row, "record")?)),
        None => Ok(None),
    }
}

/// The version `version` names, if there is one.
async fn find_version(
    tx: &impl GenericClient,
    bucket: &str,
    key: &str,
    version: VersionId,
) -> Result<Option<ObjectRecord>, Fail> {
    let row = match version {
        VersionId::Null => {
            let sql = "SELECT record FROM versions WHERE bucket = $1 AND key = $2 AND is_null";
            query_opt(tx, sql, &[&bucket, &key.as_bytes()]).await?
        }
        VersionId::Id(k) => {
            let sql = "SELECT record FROM versions WHERE bucket = $1 AND key = $2 AND version_key = $3";
            query_opt(tx, sql, &[&bucket, &key.as_bytes(), &&k.0[..]]).await?
        }
    };
    match row {
        Some(row) => Ok(Some(decode(&row, "record")?)),
        None => Ok(None),
    }
}

/// Writes a new version of `object`'s key (whose newest version is `newest`): a new id when
/// versioning is enabled, else the `null` version replacing the previous one (returned; its
/// blobs lose its references, added to `refs`). Version times stay strictly increasing
/// within a key. The caller holds the key's lock.
async fn write_version(
    tx: &Transaction<'_>,
    mut object: ObjectRecord,
    versioning: Versioning,
    newest: Option<&ObjectRecord>,
    origin: Origin,
    refs: &mut RefChanges,
) -> Result<(ObjectRecord, Option<ObjectRecord>), Fail> {
    let (bucket, key) = (object.bucket.clone(), object.key.clone());
    let time = match newest.map(|v| v.version_key.time()) {
        Some(f) if f >= object.last_modified => Timestamp(f.0.saturating_add(1)),
        _ => object.last_modified,
    };
    let null = versioning != Versioning::Enabled;
    object.version_key = super::version::new_key(time, null)?;
    object.version_id = if null { VersionId::Null } else { VersionId::Id(object.version_key) };
    let replaced = if null {
        let sql = "DELETE FROM versions WHERE bucket = $1 AND key = $2 AND is_null RETURNING record";
        match query_opt(tx, sql, &[&bucket, &key.as_bytes()]).await? {
            Some(row) => Some(decode::<ObjectRecord>(&row, "record")?),
            None => None,
        }
    } else {
        None
    };
    refs.acquire(object.blobs(), origin);
    if let Some(r) = &replaced {
        refs.release(r.blobs());
    }
    let sql = "UPDATE versions SET is_latest = false WHERE bucket = $1 AND key = $2 AND is_latest";
    execute(tx, sql, &[&bucket, &key.as_bytes()]).await?;
    let sql = "INSERT INTO versions (bucket, key, version_key, is_null, is_latest, delete_marker, record) \
               VALUES ($1, $2, $3, $4, true, $5, $6)";
    let record = codec::encode(&object)?;
    execute(tx, sql, &[&bucket, &key.as_bytes(), &&object.version_key.0[..], &null, &object.delete_marker, &record])
        .await?;
    Ok((object, replaced))
}

/// Removes a version for good (its blobs lose its references, added to `refs`; the next
/// version becomes the latest if it was). The caller holds the key's lock.
async fn remove_version(
    tx: &Transaction<'_>,
    bucket: &str,
    key: &str,
    vkey: &VersionKey,
    refs: &mut RefChanges,
) -> Result<Option<ObjectRecord>, Fail> {
    let sql = "DELETE FROM versions WHERE bucket = $1 AND key = $2 AND version_key = $3 RETURNING is_latest, record";
    let Some(row) = query_opt(tx, sql, &[&bucket, &key.as_bytes(), &&vkey.0[..]]).await? else {
        return Ok(None);
    };
    let was_latest: bool = row.try_get("is_latest")?;
    let removed: ObjectRecord = decode(&row, "record")?;
    refs.release(removed.blobs());
    if was_latest {
        let sql = "UPDATE versions SET is_latest = true WHERE bucket = $1 AND key = $2 AND version_key = \
                   (SELECT version_key FROM versions WHERE bucket = $1 AND key = $2 ORDER BY version_key LIMIT 1)";
        execute(tx, sql, &[&bucket, &key.as_bytes()]).await?;
    }
    Ok(Some(removed))
}

/// A delete without a version id: the null version's removal in an unversioned bucket, else
/// a delete marker. The caller holds the key's lock.
async fn delete_latest(
    tx: &Transaction<'_>,
    bucket: &str,
    key: &str,
    versioning: Versioning,
    owner: &Owner,
    newest: Option<&ObjectRecord>,
    refs: &mut RefChanges,
) -> Result<DeleteOutcome, Fail> {
    if versioning == Versioning::Unversioned {
        let removed = match find_version(tx, bucket, key, VersionId::Null).await? {
            Some(v) => remove_version(tx, bucket, key, &v.version_key, refs).await?,
            None => None,
        };
        return Ok(DeleteOutcome { removed, marker: None });
    }
    let marker = ObjectRecord::delete_marker(bucket, key, owner.clone(), Timestamp::now());
    let (marker, replaced) = write_version(tx, marker, versioning, newest, Origin::Written, refs).await?;
    Ok(DeleteOutcome { removed: replaced, marker: Some(marker) })
}

/// The upload `upload_id` of `key`, locked `FOR UPDATE` until commit.
async fn lock_upload(tx: &Transaction<'_>, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord, Fail> {
    let sql = "SELECT record FROM uploads WHERE bucket = $1 AND upload_id = $2 FOR UPDATE";
    let row = query_opt(tx, sql, &[&bucket, &upload_id]).await?;
    let upload: UploadRecord = match row {
        Some(row) => decode(&row, "record")?,
        None => return Err(StorageError::NotFound(Resource::Upload).into()),
    };
    if upload.key != key {
        return Err(StorageError::NotFound(Resource::Upload).into());
    }
    Ok(upload)
}

/// Removes an upload with its parts, returning the parts in number order.
async fn remove_upload(tx: &Transaction<'_>, bucket: &str, upload_id: &str) -> Result<Vec<PartRecord>, Fail> {
    let sql = "DELETE FROM parts WHERE bucket = $1 AND upload_id = $2 RETURNING record";
    let mut parts: Vec<PartRecord> =
        query(tx, sql, &[&bucket, &upload_id]).await?.iter().map(|r| decode(r, "record")).collect::<Result<_, _>>()?;
    parts.sort_by_key(|p| p.part_number);
    execute(tx, "DELETE FROM uploads WHERE bucket = $1 AND upload_id = $2", &[&bucket, &upload_id]).await?;
    Ok(parts)
}

// ---- Listings -------------------------------------------------------------------------

/// Rows a listing fetches next: what its page still wants, at most [`BATCH`].
fn batch<T>(pager: &Pager<T>) -> i64 {
    i64::try_from(pager.wanted()).unwrap_or(i64::MAX).min(BATCH)
}

fn utf8(bytes: Vec<u8>) -> Result<String, Fail> {
    String::from_utf8(bytes).map_err(|_| Fail::Store(StorageError::Corrupt("an object key is not UTF-8".into())))
}

impl PostgresMetadataStore {
    async fn write_object(
        &self,
        object: ObjectRecord,
        condition: &WriteCondition,
        origin: Origin,
    ) -> Result<PutOutcome, StorageError> {
        transaction!(self, |tx| {
            let versioning = bucket_required(&tx, &object.bucket, Some(&object.key)).await?.versioning;
            let current = newest(&tx, &object.bucket, &object.key).await?;
            condition.check(current.as_ref())?;
            let mut refs = RefChanges::new();
            let (stored, replaced) =
                write_version(&tx, object.clone(), versioning, current.as_ref(), origin, &mut refs).await?;
            change_refs(&tx, &refs).await?;
            PutOutcome { version_id: stored.version_id, replaced }
        })
    }

    async fn write_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
        origin: Origin,
    ) -> Result<Option<PartRecord>, StorageError> {
        let record = codec::encode(&part)?;
        let number = i32::try_from(part.part_number).map_err(|_| StorageError::Corrupt("part number".into()))?;
        transaction!(self, |tx| {
            lock_upload(&tx, bucket, key, upload_id).await?;
            let sql = "SELECT record FROM parts WHERE bucket = $1 AND upload_id = $2 AND part_number = $3";
            let old: Option<PartRecord> = match query_opt(&tx, sql, &[&bucket, &upload_id, &number]).await? {
                Some(row) => Some(decode(&row, "record")?),
                None => None,
            };
            let sql = "INSERT INTO parts (bucket, upload_id, part_number, record) VALUES ($1, $2, $3, $4) \
                       ON CONFLICT (bucket, upload_id, part_number) DO UPDATE SET record = excluded.record";
            execute(&tx, sql, &[&bucket, &upload_id, &number, &record]).await?;
            let mut changes = RefChanges::new();
            changes.acquire([&part.blob], origin);
            if let Some(old) = &old {
                changes.release([&old.blob]);
            }
            change_refs(&tx, &changes).await?;
            old
        })
    }
}

#[async_trait]
impl MetadataStore for PostgresMetadataStore {
    async fn health(&self) -> Result<(), StorageError> {
        // A standby answers reads but refuses every write: not ready for a balancer.
        let standby = read!(self, |tx| {
            let row = query_opt(tx, "SELECT pg_is_in_recovery()", &[]).await?;
            row.map(|r| r.try_get::<_, bool>(0)).transpose()?.unwrap_or(false)
        })?;
        if standby {
            return Err(StorageError::Unavailable("the database is a read-only standby".into()));
        }
        Ok(())
    }

    async fn create_bucket(&self, bucket: BucketRecord) -> Result<(), StorageError> {
        let record = codec::encode(&bucket)?;
        transaction!(self, |tx| {
            let sql = "INSERT INTO buckets (name, owner_id, record) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
            if execute(&tx, sql, &[&bucket.name, &bucket.owner.id, &record]).await? == 0 {
                let sql = "SELECT owner_id FROM buckets WHERE name = $1";
                let owner_id: String = match query_opt(&tx, sql, &[&bucket.name]).await? {
                    Some(row) => row.try_get("owner_id")?,
                    // Deleted meanwhile: whoever deleted it owned it; try again is the honest
                    // answer, which the caller's retry gives.
                    None => return Err(StorageError::Conflict.into()),
                };
                return Err(StorageError::BucketExists { owner_id }.into());
            }
        })
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, StorageError> {
        read!(self, |tx| {
            match query_opt(tx, "SELECT record FROM buckets WHERE name = $1", &[&name]).await? {
                Some(row) => Some(decode::<BucketRecord>(&row, "record")?),
                None => None,
            }
        })
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            lock_bucket_exclusive(&tx, name).await?;
            if query_opt(&tx, "SELECT 1 FROM buckets WHERE name = $1 FOR UPDATE", &[&name]).await?.is_none() {
                return Err(StorageError::NotFound(Resource::Bucket).into());
            }
            if query_opt(&tx, "SELECT 1 FROM versions WHERE bucket = $1 LIMIT 1", &[&name]).await?.is_some() {
                return Err(StorageError::BucketNotEmpty.into());
            }
            // The uploads are locked before their parts are read, so that a part being
            // stored meanwhile is either seen here or refused there.
            query(&tx, "SELECT 1 FROM uploads WHERE bucket = $1 FOR UPDATE", &[&name]).await?;
            let parts = query(&tx, "DELETE FROM parts WHERE bucket = $1 RETURNING record", &[&name]).await?;
            let parts: Vec<PartRecord> = parts.iter().map(|r| decode(r, "record")).collect::<Result<_, _>>()?;
            release(&tx, parts.iter().map(|p| &p.blob)).await?;
            for sql in [
                "DELETE FROM uploads WHERE bucket = $1",
                "DELETE FROM completed WHERE bucket = $1",
                "DELETE FROM bucket_settings WHERE bucket = $1",
                "DELETE FROM buckets WHERE name = $1",
            ] {
                execute(&tx, sql, &[&name]).await?;
            }
        })
    }

    async fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            lock_bucket_exclusive(&tx, bucket).await?;
            let row = query_opt(&tx, "SELECT record FROM buckets WHERE name = $1 FOR UPDATE", &[&bucket]).await?;
            let mut record: BucketRecord = match row {
                Some(row) => decode(&row, "record")?,
                None => return Err(StorageError::NotFound(Resource::Bucket).into()),
            };
            record.versioning = record.versioning.changed_to(versioning);
            let encoded = codec::encode(&record)?;
            execute(&tx, "UPDATE buckets SET record = $2 WHERE name = $1", &[&bucket, &encoded]).await?;
        })
    }

    async fn get_bucket_setting(
        &self,
        bucket: &str,
        kind: BucketSettingKind,
    ) -> Result<Option<BucketSetting>, StorageError> {
        let k = setting_kind(kind);
        read!(self, |tx| {
            let sql = "SELECT record FROM bucket_settings WHERE bucket = $1 AND kind = $2";
            match query_opt(tx, sql, &[&bucket, &k]).await? {
                Some(row) => Some(decode::<BucketSetting>(&row, "record")?),
                None => None,
            }
        })
    }

    async fn put_bucket_setting(
        &self,
        bucket: &str,
        kind: BucketSettingKind,
        setting: Option<BucketSetting>,
    ) -> Result<(), StorageError> {
        let k = setting_kind(kind);
        let encoded = setting.as_ref().map(codec::encode).transpose()?;
        transaction!(self, |tx| {
            bucket_required(&tx, bucket, None).await?;
            match &encoded {
                Some(record) => {
                    let sql = "INSERT INTO bucket_settings (bucket, kind, record) VALUES ($1, $2, $3) \
                               ON CONFLICT (bucket, kind) DO UPDATE SET record = excluded.record";
                    execute(&tx, sql, &[&bucket, &k, record]).await?;
                }
                None => {
                    let sql = "DELETE FROM bucket_settings WHERE bucket = $1 AND kind = $2";
                    execute(&tx, sql, &[&bucket, &k]).await?;
                }
            }
        })
    }

    async fn list_buckets(&self, q: &ListBucketsQuery) -> Result<BucketPage, StorageError> {
        let limit = i64::try_from(q.max.saturating_add(1)).unwrap_or(i64::MAX);
        let after = q.start_after.clone().unwrap_or_default();
        read!(self, |tx| {
            let sql = "SELECT record FROM buckets WHERE name >= $1 AND name > $2 \
                       AND ($3::text IS NULL OR owner_id = $3) ORDER BY name LIMIT $4";
            let rows = query(tx, sql, &[&q.prefix, &after, &q.owner_id, &limit]).await?;
            let mut page = BucketPage::default();
            for row in rows {
                let b: BucketRecord = decode(&row, "record")?;
                if !b.name.starts_with(&q.prefix) {
                    break;
                }
                if page.buckets.len() == q.max {
                    page.next_start_after = page.buckets.last().map(|b| b.name.clone());
                    break;
                }
                page.buckets.push(b);
            }
            page
        })
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
        read!(self, |tx| {
            match version {
                None => newest(tx, bucket, key).await?,
                Some(v) => find_version(tx, bucket, key, v).await?,
            }
        })
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        owner: &Owner,
    ) -> Result<DeleteOutcome, StorageError> {
        transaction!(self, |tx| {
            let versioning = bucket_required(&tx, bucket, Some(key)).await?.versioning;
            let mut refs = RefChanges::new();
            let outcome = match version {
                Some(v) => {
                    let removed = match find_version(&tx, bucket, key, v).await? {
                        Some(found) => remove_version(&tx, bucket, key, &found.version_key, &mut refs).await?,
                        None => None,
                    };
                    DeleteOutcome { removed, marker: None }
                }
                None => {
                    let current = newest(&tx, bucket, key).await?;
                    delete_latest(&tx, bucket, key, versioning, owner, current.as_ref(), &mut refs).await?
                }
            };
            change_refs(&tx, &refs).await?;
            outcome
        })
    }

    async fn remove_noncurrent(
        &self,
        bucket: &str,
        key: &str,
        version: VersionKey,
    ) -> Result<Option<ObjectRecord>, StorageError> {
        transaction!(self, |tx| {
            bucket_required(&tx, bucket, Some(key)).await?;
            let mut refs = RefChanges::new();
            let removed = match newest(&tx, bucket, key).await? {
                Some(latest) if latest.version_key == version => None,
                _ => remove_version(&tx, bucket, key, &version, &mut refs).await?,
            };
            change_refs(&tx, &refs).await?;
            removed
        })
    }

    async fn expire_object(
        &self,
        bucket: &str,
        key: &str,
        expected: VersionKey,
        owner: &Owner,
    ) -> Result<DeleteOutcome, StorageError> {
        transaction!(self, |tx| {
            let versioning = bucket_required(&tx, bucket, Some(key)).await?.versioning;
            let current = newest(&tx, bucket, key).await?;
            if current.as_ref().map(|v| v.version_key) != Some(expected) {
                DeleteOutcome::default()
            } else {
                let mut refs = RefChanges::new();
                let outcome = delete_latest(&tx, bucket, key, versioning, owner, current.as_ref(), &mut refs).await?;
                change_refs(&tx, &refs).await?;
                outcome
            }
        })
    }

    async fn update_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        change: crate::storage::ObjectChange,
    ) -> Result<VersionId, StorageError> {
        transaction!(self, |tx| {
            bucket_required(&tx, bucket, Some(key)).await?;
            let mut target = match version {
                None => newest(&tx, bucket, key).await?.ok_or(StorageError::NotFound(Resource::Object))?,
                Some(v) => find_version(&tx, bucket, key, v).await?.ok_or(StorageError::NotFound(Resource::Version))?,
            };
            if target.delete_marker {
                return Err(StorageError::DeleteMarker.into());
            }
            change.clone().apply(&mut target)?;
            let record = codec::encode(&target)?;
            let sql = "UPDATE versions SET record = $4 WHERE bucket = $1 AND key = $2 AND version_key = $3";
            execute(&tx, sql, &[&bucket, &key.as_bytes(), &&target.version_key.0[..], &record]).await?;
            target.version_id
        })
    }

    async fn list_objects(&self, bucket: &str, q: &ListObjectsQuery) -> Result<ObjectPage, StorageError> {
        let upper = prefix_end(q.prefix.as_bytes());
        let start = listing_start(&q.prefix, q.delimiter.as_deref(), q.start_after.as_deref());
        read!(self, |tx| {
            let mut pager = Pager::new(&q.prefix, q.delimiter.as_deref(), q.max);
            let mut from = start.clone();
            while let Some(at) = from.take().filter(|_| q.max > 0) {
                let sql = "SELECT key, record FROM versions WHERE bucket = $1 AND key >= $2 \
                           AND ($3::bytea IS NULL OR key < $3) AND is_latest AND NOT delete_marker \
                           ORDER BY key LIMIT $4";
                let limit = batch(&pager);
                let rows = query(tx, sql, &[&bucket, &at, &upper, &limit]).await?;
                let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit;
                for row in rows {
                    let key = utf8(row.try_get("key")?)?;
                    let mut next = key.as_bytes().to_vec();
                    next.push(0);
                    match pager.offer(&key, row) {
                        Step::Next if full => from = Some(next),
                        Step::Next => {}
                        Step::SkipTo(k) => {
                            from = Some(k);
                            break;
                        }
                        Step::Stop => {
                            from = None;
                            break;
                        }
                    }
                }
            }
            ObjectPage::from_grouped(pager.try_map(|row| decode::<ObjectRecord>(&row, "record"))?)
        })
    }

    async fn list_versions(&self, bucket: &str, q: &ListVersionsQuery) -> Result<VersionPage, StorageError> {
        let upper = prefix_end(q.prefix.as_bytes());
        read!(self, |tx| {
            // The position is (key, version key): the page starts after it.
            let mut from: Option<(Vec<u8>, Vec<u8>)> = match (&q.key_marker, q.version_id_marker) {
                (Some(k), Some(v)) if *k >= q.prefix => {
                    let found = find_version(tx, bucket, k, v).await?;
                    let found = found.ok_or(StorageError::NotFound(Resource::Version))?;
                    Some((k.as_bytes().to_vec(), found.version_key.0.to_vec()))
                }
                _ => listing_start(&q.prefix, q.delimiter.as_deref(), q.key_marker.as_deref()).map(|k| (k, Vec::new())),
            };
            let mut pager = Pager::new(&q.prefix, q.delimiter.as_deref(), q.max);
            while let Some((key_at, version_at)) = from.take().filter(|_| q.max > 0) {
                let sql = "SELECT key, version_key, is_latest, record FROM versions \
                           WHERE bucket = $1 AND (bucket, key, version_key) > ($1, $2, $3) \
                           AND ($4::bytea IS NULL OR key < $4) ORDER BY key, version_key LIMIT $5";
                let limit = batch(&pager);
                let rows = query(tx, sql, &[&bucket, &key_at, &version_at, &upper, &limit]).await?;
                let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit;
                for row in rows {
                    let key = utf8(row.try_get("key")?)?;
                    let version_key: Vec<u8> = row.try_get("version_key")?;
                    match pager.offer(&key.clone(), row) {
                        Step::Next if full => from = Some((key.into_bytes(), version_key)),
                        Step::Next => {}
                        Step::SkipTo(k) => {
                            from = Some((k, Vec::new()));
                            break;
                        }
                        Step::Stop => {
                            from = None;
                            break;
                        }
                    }
                }
            }
            VersionPage::from_grouped(pager.try_map(|row| {
                Ok::<_, Fail>(VersionEntry {
                    object: decode::<ObjectRecord>(&row, "record")?,
                    is_latest: row.try_get("is_latest")?,
                })
            })?)
        })
    }

    async fn create_upload(&self, upload: UploadRecord) -> Result<(), StorageError> {
        let record = codec::encode(&upload)?;
        transaction!(self, |tx| {
            bucket_required(&tx, &upload.bucket, None).await?;
            let sql = "INSERT INTO uploads (bucket, upload_id, key, initiated, record) VALUES ($1, $2, $3, $4, $5) \
                       ON CONFLICT (bucket, upload_id) DO NOTHING";
            let params: Params<'_> =
                &[&upload.bucket, &upload.upload_id, &upload.key.as_bytes(), &upload.initiated.0, &record];
            if execute(&tx, sql, params).await? == 0 {
                return Err(StorageError::Conflict.into());
            }
        })
    }

    async fn get_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord, StorageError> {
        read!(self, |tx| {
            let sql = "SELECT record FROM uploads WHERE bucket = $1 AND upload_id = $2";
            let upload: UploadRecord = match query_opt(tx, sql, &[&bucket, &upload_id]).await? {
                Some(row) => decode(&row, "record")?,
                None => return Err(StorageError::NotFound(Resource::Upload).into()),
            };
            if upload.key != key {
                return Err(StorageError::NotFound(Resource::Upload).into());
            }
            upload
        })
    }

    async fn delete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(UploadRecord, Vec<PartRecord>), StorageError> {
        transaction!(self, |tx| {
            let upload = lock_upload(&tx, bucket, key, upload_id).await?;
            let parts = remove_upload(&tx, bucket, upload_id).await?;
            release(&tx, parts.iter().map(|p| &p.blob)).await?;
            (upload, parts)
        })
    }

    async fn list_uploads(&self, bucket: &str, q: &ListUploadsQuery) -> Result<UploadPage, StorageError> {
        let upper = prefix_end(q.prefix.as_bytes());
        read!(self, |tx| {
            // The position is (key, initiated, upload id): the page starts after it.
            let mut from: Option<(Vec<u8>, i64, String)> = match (&q.key_marker, &q.upload_id_marker) {
                (Some(k), Some(id)) if *k >= q.prefix => {
                    let sql = "SELECT key, initiated FROM uploads WHERE bucket = $1 AND upload_id = $2";
                    let row = query_opt(tx, sql, &[&bucket, id]).await?;
                    match row {
                        Some(row) if row.try_get::<_, &[u8]>("key")? == k.as_bytes() => {
                            Some((k.as_bytes().to_vec(), row.try_get("initiated")?, id.clone()))
                        }
                        _ => return Err(StorageError::NotFound(Resource::Upload).into()),
                    }
                }
                _ => listing_start(&q.prefix, q.delimiter.as_deref(), q.key_marker.as_deref())
                    .map(|k| (k, i64::MIN, String::new())),
            };
            let mut pager = Pager::new(&q.prefix, q.delimiter.as_deref(), q.max_uploads);
            while let Some((key_at, initiated_at, id_at)) = from.take().filter(|_| q.max_uploads > 0) {
                let sql = "SELECT key, initiated, upload_id, record FROM uploads \
                           WHERE bucket = $1 AND (bucket, key, initiated, upload_id) > ($1, $2, $3, $4) \
                           AND ($5::bytea IS NULL OR key < $5) ORDER BY key, initiated, upload_id LIMIT $6";
                let limit = batch(&pager);
                let rows = query(tx, sql, &[&bucket, &key_at, &initiated_at, &id_at, &upper, &limit]).await?;
                let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit;
                for row in rows {
                    let key = utf8(row.try_get("key")?)?;
                    let position = (key.as_bytes().to_vec(), row.try_get("initiated")?, row.try_get("upload_id")?);
                    match pager.offer(&key, row) {
                        Step::Next if full => from = Some(position),
                        Step::Next => {}
                        Step::SkipTo(k) => {
                            from = Some((k, i64::MIN, String::new()));
                            break;
                        }
                        Step::Stop => {
                            from = None;
                            break;
                        }
                    }
                }
            }
            UploadPage::from_grouped(pager.try_map(|row| decode::<UploadRecord>(&row, "record"))?)
        })
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
        let after = i32::try_from(after).unwrap_or(i32::MAX);
        let limit = i64::try_from(max.saturating_add(1)).unwrap_or(i64::MAX);
        read!(self, |tx| {
            let sql = "SELECT record FROM uploads WHERE bucket = $1 AND upload_id = $2";
            match query_opt(tx, sql, &[&bucket, &upload_id]).await? {
                Some(row) if decode::<UploadRecord>(&row, "record")?.key == key => {}
                _ => return Err(StorageError::NotFound(Resource::Upload).into()),
            }
            let sql = "SELECT record FROM parts WHERE bucket = $1 AND upload_id = $2 AND part_number > $3 \
                       ORDER BY part_number LIMIT $4";
            let rows = query(tx, sql, &[&bucket, &upload_id, &after, &limit]).await?;
            let mut parts: Vec<PartRecord> = rows.iter().map(|r| decode(r, "record")).collect::<Result<_, _>>()?;
            let is_truncated = parts.len() > max;
            parts.truncate(max);
            PartPage { parts, is_truncated }
        })
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        object: ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<CompleteOutcome, StorageError> {
        transaction!(self, |tx| {
            let bucket = bucket_shared(&tx, &object.bucket, Some(&object.key)).await?;
            lock_upload(&tx, &object.bucket, &object.key, upload_id).await?;
            let versioning = bucket.ok_or(StorageError::NotFound(Resource::Bucket))?.versioning;
            let current = newest(&tx, &object.bucket, &object.key).await?;
            condition.check(current.as_ref())?;
            let parts = remove_upload(&tx, &object.bucket, upload_id).await?;
            // The manifest was built from an earlier read: each of its parts must still be
            // the upload's current part, or it could name a blob a re-upload superseded.
            let by_number: HashMap<u32, &BlobId> = parts.iter().map(|p| (p.part_number, &p.blob)).collect();
            if !object.parts.iter().all(|m| by_number.get(&m.part_number) == Some(&&m.blob)) {
                return Err(StorageError::PartsChanged.into());
            }
            let discarded = refs::unused_parts(&parts, &object);
            // The object takes over its parts' references before the parts let go of theirs.
            let mut refs = RefChanges::new();
            let (stored, replaced) =
                write_version(&tx, object.clone(), versioning, current.as_ref(), Origin::Written, &mut refs).await?;
            refs.release(parts.iter().map(|p| &p.blob));
            change_refs(&tx, &refs).await?;
            let done = CompletedUpload::of(&stored, upload_id);
            let sql = "INSERT INTO completed (bucket, upload_id, completed, record) VALUES ($1, $2, $3, $4) \
                       ON CONFLICT (bucket, upload_id) DO UPDATE SET completed = excluded.completed, \
                       record = excluded.record";
            let record = codec::encode(&done)?;
            execute(&tx, sql, &[&stored.bucket, &upload_id, &done.completed.0, &record]).await?;
            CompleteOutcome { version_id: stored.version_id, replaced, discarded }
        })
    }

    async fn get_completed(&self, bucket: &str, upload_id: &str) -> Result<Option<CompletedUpload>, StorageError> {
        read!(self, |tx| {
            let sql = "SELECT record FROM completed WHERE bucket = $1 AND upload_id = $2";
            match query_opt(tx, sql, &[&bucket, &upload_id]).await? {
                Some(row) => Some(decode::<CompletedUpload>(&row, "record")?),
                None => None,
            }
        })
    }

    async fn prune_completed(&self, before: Timestamp) -> Result<usize, StorageError> {
        transaction!(self, |tx| {
            let n = execute(&tx, "DELETE FROM completed WHERE completed < $1", &[&before.0]).await?;
            usize::try_from(n).unwrap_or(usize::MAX)
        })
    }

    async fn discard_blobs(&self, blobs: &[BlobId]) -> Result<(), StorageError> {
        let ids = unique(blobs);
        transaction!(self, |tx| {
            // Only blobs the store does not know become garbage: referenced ones stay.
            let sql = "INSERT INTO blobs (id, refs, garbage_at) SELECT unnest($1::bytea[]), 0, $2 \
                       ON CONFLICT (id) DO NOTHING";
            execute(&tx, sql, &[&ids, &Timestamp::now().0]).await?;
        })
    }

    async fn blob_states(&self, blobs: &[BlobId]) -> Result<Vec<BlobState>, StorageError> {
        let ids: Vec<&[u8]> = blobs.iter().map(|b| b.0.as_bytes()).collect();
        let rows = read!(self, |tx| { blob_rows(tx, &ids, false).await? })?;
        Ok(rows.into_iter().map(BlobRow::state).collect())
    }

    async fn garbage(
        &self,
        before: Timestamp,
        after: Option<&GarbageRecord>,
        max: usize,
    ) -> Result<Vec<GarbageRecord>, StorageError> {
        let (since, id) = after.map_or((i64::MIN, Vec::new()), |a| (a.since.0, a.blob.0.as_bytes().to_vec()));
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        read!(self, |tx| {
            let sql = "SELECT garbage_at, id FROM blobs WHERE garbage_at IS NOT NULL \
                       AND garbage_at < $1 AND (garbage_at, id) > ($2, $3) ORDER BY garbage_at, id LIMIT $4";
            let rows = query(tx, sql, &[&before.0, &since, &id, &limit]).await?;
            rows.iter()
                .map(|r| {
                    let id = String::from_utf8(r.try_get("id")?)
                        .map_err(|_| StorageError::Corrupt("a blob id is not UTF-8".into()))?;
                    Ok(GarbageRecord { since: Timestamp(r.try_get("garbage_at")?), blob: BlobId(id) })
                })
                .collect::<Result<Vec<_>, Fail>>()?
        })
    }

    async fn forget_garbage(&self, records: &[GarbageRecord]) -> Result<(), StorageError> {
        let ids: Vec<&[u8]> = records.iter().map(|r| r.blob.0.as_bytes()).collect();
        let sinces: Vec<i64> = records.iter().map(|r| r.since.0).collect();
        transaction!(self, |tx| {
            // Rows locked in id order first, as every transaction locks them.
            query(&tx, "SELECT 1 FROM blobs WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&ids]).await?;
            // A record whose blob changed state meanwhile (garbage again, later) is kept.
            let sql = "DELETE FROM blobs b USING unnest($1::bytea[], $2::bigint[]) AS g(id, since) \
                       WHERE b.id = g.id AND b.garbage_at = g.since";
            execute(&tx, sql, &[&ids, &sinces]).await?;
        })
    }

    async fn claim_work(&self, name: &str, holder: &str, until: Timestamp) -> Result<bool, StorageError> {
        let now = Timestamp::now().0;
        transaction!(self, |tx| {
            let sql = "INSERT INTO claims (name, holder, until) VALUES ($1, $2, $3) \
                       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
                       WHERE claims.holder = excluded.holder OR claims.until <= $4";
            execute(&tx, sql, &[&name, &holder, &until.0, &now]).await? == 1
        })
    }

    async fn release_work(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            execute(&tx, "DELETE FROM claims WHERE name = $1 AND holder = $2", &[&name, &holder]).await?;
        })
    }

    async fn put_lease(&self, lease: &Lease) -> Result<(), StorageError> {
        let record = codec::encode(lease)?;
        transaction!(self, |tx| {
            let sql = "INSERT INTO leases (id, expires, record) VALUES ($1, $2, $3) \
                       ON CONFLICT (id) DO UPDATE SET expires = excluded.expires, record = excluded.record";
            execute(&tx, sql, &[&lease.id, &lease.expires.0, &record]).await?;
        })
    }

    async fn delete_lease(&self, id: &str, if_expires: Option<Timestamp>) -> Result<(), StorageError> {
        let expires = if_expires.map(|t| t.0);
        transaction!(self, |tx| {
            let sql = "DELETE FROM leases WHERE id = $1 AND ($2::bigint IS NULL OR expires = $2)";
            execute(&tx, sql, &[&id, &expires]).await?;
        })
    }

    async fn leases(&self) -> Result<Vec<Lease>, StorageError> {
        read!(self, |tx| {
            let rows = query(tx, "SELECT record FROM leases ORDER BY id", &[]).await?;
            rows.iter().map(|r| decode::<Lease>(r, "record")).collect::<Result<Vec<_>, _>>()?
        })
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StorageError> {
        read!(self, |tx| { all_users(tx).await?.0.into_values().collect::<Vec<_>>() })
    }

    async fn create_user(&self, user: UserRecord) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            let change = lock_users(&tx).await?.create(user.clone())?;
            apply_users(&tx, change).await?;
        })
    }

    async fn replace_user_key(&self, id: &str, access_key: &str, secret_key: &str) -> Result<UserRecord, StorageError> {
        transaction!(self, |tx| {
            let (user, change) = lock_users(&tx).await?.replace_key(id, access_key, secret_key)?;
            apply_users(&tx, change).await?;
            user
        })
    }

    async fn delete_user(&self, access_key: &str) -> Result<UserRecord, StorageError> {
        transaction!(self, |tx| {
            let (user, change) = lock_users(&tx).await?.delete(access_key)?;
            apply_users(&tx, change).await?;
            user
        })
    }

    async fn seed_users(&self, wanted: Vec<UserRecord>) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            let change = lock_users(&tx).await?.seed(wanted.clone())?;
            apply_users(&tx, change).await?;
        })
    }

    async fn flush(&self) -> Result<(), StorageError> {
        // Every acknowledged write was committed (durable by the database's own settings).
        Ok(())
    }
}

async fn all_users(tx: &impl GenericClient) -> Result<Users, Fail> {
    let rows = query(tx, "SELECT record FROM users ORDER BY id", &[]).await?;
    let users: Vec<UserRecord> = rows.iter().map(|r| decode(r, "record")).collect::<Result<_, _>>()?;
    Ok(Users::new(users))
}

/// Every user, with the table locked against other writers (nodes seeding at start-up, an
/// administrator) until commit; readers are not blocked.
async fn lock_users(tx: &Transaction<'_>) -> Result<Users, Fail> {
    tx.batch_execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE").await?;
    all_users(tx).await
}

async fn apply_users(tx: &Transaction<'_>, change: UserChange) -> Result<(), Fail> {
    for id in &change.remove {
        execute(tx, "DELETE FROM users WHERE id = $1", &[id]).await?;
    }
    for u in &change.put {
        let record = codec::encode(u)?;
        let sql = "INSERT INTO users (id, access_key, record) VALUES ($1, $2, $3) \
                   ON CONFLICT (id) DO UPDATE SET access_key = excluded.access_key, record = excluded.record";
        execute(tx, sql, &[&u.id, &u.access_key, &record]).await?;
    }
    Ok(())
}

fn setting_kind(kind: BucketSettingKind) -> i16 {
    match kind {
        BucketSettingKind::Tagging => 1,
        BucketSettingKind::Lifecycle => 2,
        BucketSettingKind::Cors => 3,
        BucketSettingKind::Policy => 4,
        BucketSettingKind::PublicAccessBlock => 5,
        BucketSettingKind::Acl => 6,
        BucketSettingKind::OwnershipControls => 7,
    }
}

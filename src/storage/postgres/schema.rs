//! The PostgreSQL schema and its migrations.
//!
//! Each migration runs once, in its own transaction, and is recorded in `schema_migrations`.
//! Nodes starting together take a session advisory lock first, so exactly one of them applies
//! what is missing and the others find it done. A database migrated by a newer s3d is
//! refused rather than misread.
//!
//! Object keys are `bytea` (their UTF-8 bytes): they compare in S3's byte order whatever the
//! database's collation, and may hold any character. Other names are `text COLLATE "C"`.
//! Records are the stores' versioned binary encoding ([`crate::storage::codec`]); the columns
//! beside them are what queries select and order by.

use tokio_postgres::Client;

use crate::storage::StorageError;

/// The advisory lock that serialises migrations (any constant; "s3d-migrate" in ASCII).
const MIGRATION_LOCK: i64 = 0x7333_642d_6d69_6772;

/// Every migration, in order. Never edit one that has shipped: add another.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4)];

const V1: &str = r#"
CREATE TABLE buckets (
    name text COLLATE "C" PRIMARY KEY,
    owner_id text COLLATE "C" NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE bucket_settings (
    bucket text COLLATE "C" NOT NULL,
    kind smallint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (bucket, kind)
);
-- Every version and delete marker; version_key sorts newest first within a key.
CREATE TABLE versions (
    bucket text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    version_key bytea NOT NULL,
    is_null boolean NOT NULL,
    is_latest boolean NOT NULL,
    delete_marker boolean NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (bucket, key, version_key)
);
CREATE UNIQUE INDEX versions_null ON versions (bucket, key) WHERE is_null;
-- What ListObjects shows: the latest version of each key, unless it is a delete marker.
CREATE UNIQUE INDEX versions_current ON versions (bucket, key) WHERE is_latest AND NOT delete_marker;
CREATE TABLE uploads (
    bucket text COLLATE "C" NOT NULL,
    upload_id text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    initiated bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (bucket, upload_id)
);
CREATE INDEX uploads_by_key ON uploads (bucket, key, initiated, upload_id);
CREATE TABLE parts (
    bucket text COLLATE "C" NOT NULL,
    upload_id text COLLATE "C" NOT NULL,
    part_number integer NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (bucket, upload_id, part_number)
);
CREATE TABLE completed (
    bucket text COLLATE "C" NOT NULL,
    upload_id text COLLATE "C" NOT NULL,
    completed bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (bucket, upload_id)
);
CREATE INDEX completed_age ON completed (completed);
-- A blob is referenced while garbage_since is NULL, garbage since then otherwise.
CREATE TABLE blobs (
    id bytea PRIMARY KEY,
    garbage_since bigint
);
CREATE INDEX blobs_garbage ON blobs (garbage_since, id) WHERE garbage_since IS NOT NULL;
CREATE TABLE claims (
    name text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    until bigint NOT NULL
);
CREATE TABLE leases (
    id text COLLATE "C" PRIMARY KEY,
    expires bigint NOT NULL,
    record bytea NOT NULL
);
"#;

/// Users and their access keys, which every node reads to authenticate requests.
const V2: &str = r#"
CREATE TABLE users (
    id text COLLATE "C" PRIMARY KEY,
    access_key text COLLATE "C" NOT NULL UNIQUE,
    record bytea NOT NULL
);
"#;

/// Reference counts: a blob may be shared by copies (every row so far had one reference).
/// The garbage column is renamed so that a node of an earlier release, which would count
/// references as one, fails instead of marking a shared blob garbage.
const V3: &str = r#"
ALTER TABLE blobs ADD COLUMN refs integer NOT NULL DEFAULT 1;
ALTER TABLE blobs RENAME COLUMN garbage_since TO garbage_at;
"#;

/// Object and upload records may now be in record format 4 (with ACL grants), which a node
/// of an earlier release cannot read: the version alone makes such a node refuse the
/// database.
const V4: &str = r#"
COMMENT ON TABLE versions IS 'object records in the record format 4 (ACL grants)';
"#;

fn io(e: tokio_postgres::Error) -> StorageError {
    super::pg_error(e)
}

/// Applies the migrations this database lacks.
pub async fn migrate(client: &mut Client) -> Result<(), StorageError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(io)?;
    let result = apply(client).await;
    // Released even when a migration failed; the session ends with the connection anyway.
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await.map_err(io);
    result.and(unlocked.map(drop))
}

async fn apply(client: &mut Client) -> Result<(), StorageError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied bigint NOT NULL)",
        )
        .await
        .map_err(io)?;
    let applied: Vec<i32> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(io)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if let Some(newer) = applied.iter().find(|v| **v > known) {
        return Err(StorageError::Corrupt(format!(
            "the metadata database has schema version {newer}, newer than this s3d knows ({known}): upgrade s3d"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        let tx = client.transaction().await.map_err(io)?;
        tx.batch_execute(sql).await.map_err(io)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)",
            &[version, &crate::clock::Timestamp::now().0],
        )
        .await
        .map_err(io)?;
        tx.commit().await.map_err(io)?;
        tracing::info!(version, "metadata schema migrated");
    }
    Ok(())
}

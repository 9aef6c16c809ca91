//! [`FsBlobStore`]: blobs as files under `<data_dir>/blobs/<2 hex>/<2 hex>/<id>`.
//!
//! A write goes to `tmp/<id>` first, with a guard that deletes it if the write fails or is
//! dropped; then the file is fsynced (its bytes are on disk), renamed into place, and the
//! directory fsynced (the name is on disk). Only then does the caller commit metadata that
//! points at it, so metadata never refers to a missing blob; a crash leaves at worst an
//! unreferenced blob, which the orphan sweep removes.

use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;

use super::blob::{BlobId, BlobRef, BlobStore, ByteStream};
use super::{Resource, StorageError};

/// Write buffer: large sequential writes keep syscalls and blocking-pool hops few.
const WRITE_BUFFER: usize = 1 << 20;
/// Read chunk size of GET streams.
const READ_CHUNK: usize = 256 * 1024;

pub struct FsBlobStore {
    root: PathBuf,
    fsync: bool,
}

fn io(context: &str, e: std::io::Error) -> StorageError {
    StorageError::Io(format!("{context}: {e}"))
}

/// Deletes a temporary file unless disarmed.
struct DeleteOnDrop(Option<PathBuf>);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// fsyncs a directory so that a rename or unlink in it is durable.
async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| StorageError::Io(format!("sync task: {e}")))?
        .map_err(|e| io("fsync directory", e))
}

impl FsBlobStore {
    /// Opens (creating) the store under `root`, clearing temporary files of earlier runs.
    pub async fn open(root: &Path, fsync: bool) -> Result<Self, StorageError> {
        let tmp = root.join("tmp");
        match tokio::fs::remove_dir_all(&tmp).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io("clear tmp", e)),
        }
        tokio::fs::create_dir_all(&tmp).await.map_err(|e| io("create blob dir", e))?;
        Ok(FsBlobStore { root: root.to_path_buf(), fsync })
    }

    fn path(&self, id: &BlobId) -> Result<PathBuf, StorageError> {
        if !id.is_well_formed() {
            return Err(StorageError::Corrupt(format!("malformed blob id {:?}", id.0)));
        }
        Ok(self.root.join(&id.0[0..2]).join(&id.0[2..4]).join(&id.0))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, mut body: ByteStream) -> Result<BlobRef, StorageError> {
        let id = BlobId::generate()?;
        let tmp_path = self.root.join("tmp").join(&id.0);
        let mut guard = DeleteOnDrop(Some(tmp_path.clone()));
        let file = tokio::fs::File::create(&tmp_path).await.map_err(|e| io("create blob", e))?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut len = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StorageError::Input)?;
            len += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|e| io("write blob", e))?;
        }
        out.flush().await.map_err(|e| io("flush blob", e))?;
        let file = out.into_inner();
        if self.fsync {
            // The bytes must be on disk before any metadata can point at them.
            file.sync_all().await.map_err(|e| io("fsync blob", e))?;
        }
        drop(file);
        let final_path = self.path(&id)?;
        let dir = final_path.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io("create fan-out dir", e))?;
        tokio::fs::rename(&tmp_path, &final_path).await.map_err(|e| io("rename blob", e))?;
        guard.0 = None;
        if self.fsync {
            // The new name must be durable too, or a crash could lose the file after the
            // metadata naming it was committed.
            sync_dir(&dir).await?;
        }
        Ok(BlobRef { id, len })
    }

    async fn get(&self, id: &BlobId, range: Option<Range<u64>>) -> Result<ByteStream, StorageError> {
        let path = self.path(id)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StorageError::NotFound(Resource::Blob));
            }
            Err(e) => return Err(io("open blob", e)),
        };
        let stream: ByteStream = match range {
            Some(r) => {
                file.seek(std::io::SeekFrom::Start(r.start)).await.map_err(|e| io("seek blob", e))?;
                Box::pin(ReaderStream::with_capacity(file.take(r.end.saturating_sub(r.start)), READ_CHUNK))
            }
            None => Box::pin(ReaderStream::with_capacity(file, READ_CHUNK)),
        };
        Ok(stream)
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.path(id)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("delete blob", e)),
        }
    }

    async fn list(&self) -> Result<Vec<(BlobId, u64)>, StorageError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let now = SystemTime::now();
            for l1 in std::fs::read_dir(&root).map_err(|e| io("list blobs", e))? {
                let l1 = l1.map_err(|e| io("list blobs", e))?;
                let name = l1.file_name();
                if name.len() != 2 || !l1.path().is_dir() {
                    continue;
                }
                for l2 in std::fs::read_dir(l1.path()).map_err(|e| io("list blobs", e))? {
                    let l2 = l2.map_err(|e| io("list blobs", e))?;
                    for f in std::fs::read_dir(l2.path()).map_err(|e| io("list blobs", e))? {
                        let f = f.map_err(|e| io("list blobs", e))?;
                        let id = BlobId(f.file_name().to_string_lossy().into_owned());
                        if !id.is_well_formed() {
                            continue;
                        }
                        let age = f
                            .metadata()
                            .and_then(|m| m.modified())
                            .ok()
                            .and_then(|m| now.duration_since(m).ok())
                            .map_or(0, |d| d.as_secs());
                        out.push((id, age));
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::Io(format!("list task: {e}")))?
    }
}

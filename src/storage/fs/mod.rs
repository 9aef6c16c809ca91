//! [`FsBlobStore`]: blobs as files under `<data_dir>/blobs/<2 hex>/<2 hex>/<id>`.
//!
//! A write goes to `tmp/<id>` first, with a guard that deletes it if the write fails or is
//! dropped; then the file is fsynced (its bytes are on disk), renamed into place, and the
//! directory fsynced (the name is on disk). Only then does the caller commit metadata that
//! points at it, so metadata never refers to a missing blob; a crash leaves at worst an
//! unreferenced blob, which the orphan sweep removes.
//!
//! Several processes may share one store: nothing here assumes it is the only writer (the
//! temporary files of a crashed writer are removed by age, never wholesale at start-up).

use std::collections::HashSet;
use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;

use super::blob::{BlobId, BlobListing, BlobRef, BlobStore, ByteStream};
use super::{Resource, StorageError};

/// Write buffer: large sequential writes keep syscalls and blocking-pool hops few.
const WRITE_BUFFER: usize = 1 << 20;
/// Read chunk size of GET streams.
const READ_CHUNK: usize = 256 * 1024;

pub struct FsBlobStore {
    root: PathBuf,
    fsync: bool,
    /// Fan-out directories known to exist durably (at most 65,536).
    known_dirs: Arc<Mutex<HashSet<PathBuf>>>,
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

impl FsBlobStore {
    /// Opens (creating) the store under `root`.
    pub async fn open(root: &Path, fsync: bool) -> Result<Self, StorageError> {
        tokio::fs::create_dir_all(root.join("tmp")).await.map_err(|e| io("create blob dir", e))?;
        Ok(FsBlobStore { root: root.to_path_buf(), fsync, known_dirs: Arc::default() })
    }

    fn path(&self, id: &BlobId) -> Result<PathBuf, StorageError> {
        if !id.is_well_formed() {
            return Err(StorageError::Corrupt(format!("malformed blob id {:?}", id.0)));
        }
        Ok(self.root.join(&id.0[0..2]).join(&id.0[2..4]).join(&id.0))
    }
}

/// Creates a fan-out directory (and its parent) if missing, unless `known` says it exists.
/// The first time a process uses a directory, its parents are fsynced, whoever created it
/// (another writer may not have synced them yet), or a crash could lose the directory with
/// the blobs in it.
fn ensure_dir(root: &Path, dir: &Path, fsync: bool, known: &Mutex<HashSet<PathBuf>>) -> std::io::Result<()> {
    if known.lock().unwrap_or_else(|p| p.into_inner()).contains(dir) {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut d = dir.to_path_buf();
    while d != root {
        match std::fs::metadata(&d) {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                missing.push(d.clone());
                if !d.pop() {
                    break;
                }
            }
            Err(e) => return Err(e),
        }
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    if fsync {
        let mut d = dir;
        while d != root
            && let Some(parent) = d.parent()
        {
            std::fs::File::open(parent)?.sync_all()?;
            d = parent;
        }
    }
    known.lock().unwrap_or_else(|p| p.into_inner()).insert(dir.to_path_buf());
    Ok(())
}

/// How long ago a file was last written or renamed (its status-change time; a rename into
/// place counts, so a blob whose metadata is about to be committed always looks young).
fn age(meta: &std::fs::Metadata, now: SystemTime) -> std::time::Duration {
    use std::os::unix::fs::MetadataExt;
    let changed = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(meta.ctime()).unwrap_or(0),
            u32::try_from(meta.ctime_nsec()).unwrap_or(0),
        );
    let modified = meta.modified().unwrap_or(changed);
    now.duration_since(changed.max(modified)).unwrap_or_default()
}

/// Walks `root/<2 hex>/<2 hex>/<blob>` and sends each blob with its age; anything else (stray
/// files, other directories) is skipped. Stops when the receiver goes away.
fn walk(root: &Path, tx: &tokio::sync::mpsc::Sender<Result<(BlobId, std::time::Duration), StorageError>>) {
    let is_fanout = |name: &std::ffi::OsStr| {
        name.len() == 2 && name.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let subdirs = |dir: &Path| -> Vec<PathBuf> {
        match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| is_fanout(&e.file_name()) && e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect(),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list a blob directory");
                Vec::new()
            }
        }
    };
    for l1 in subdirs(root) {
        for l2 in subdirs(&l1) {
            let Ok(entries) = std::fs::read_dir(&l2) else { continue };
            let now = SystemTime::now();
            for f in entries.filter_map(Result::ok) {
                let id = BlobId(f.file_name().to_string_lossy().into_owned());
                if !id.is_well_formed() || !f.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let Ok(meta) = f.metadata() else { continue };
                if tx.blocking_send(Ok((id, age(&meta, now)))).is_err() {
                    return;
                }
            }
        }
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, mut body: ByteStream) -> Result<BlobRef, StorageError> {
        let id = BlobId::generate()?;
        let tmp_path = self.root.join("tmp").join(&id.0);
        let mut guard = DeleteOnDrop(Some(tmp_path.clone()));
        // Locked while being written, so that a sweep (of this or another process sharing
        // the directory) never removes the temporary file of a slow but live upload.
        let path = tmp_path.clone();
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let f = std::fs::File::create(&path)?;
            f.try_lock().map_err(|e| match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => std::io::Error::other("a new temporary file is locked"),
            })?;
            Ok(f)
        })
        .await
        .map_err(|e| StorageError::Io(format!("create task: {e}")))?
        .map_err(|e| io("create blob", e))?;
        let file = tokio::fs::File::from_std(file);
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut len = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StorageError::Input)?;
            len += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|e| io("write blob", e))?;
        }
        out.flush().await.map_err(|e| io("flush blob", e))?;
        let file = out.into_inner().into_std().await;
        let final_path = self.path(&id)?;
        let dir = final_path.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        let (root, fsync, known) = (self.root.clone(), self.fsync, Arc::clone(&self.known_dirs));
        let tmp = tmp_path.clone();
        // The rest in one trip to a blocking thread.
        tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
            if fsync {
                // The bytes (and the length, which fdatasync covers) must be on disk before
                // any metadata can point at them.
                file.sync_data().map_err(|e| io("fsync blob", e))?;
            }
            drop(file);
            ensure_dir(&root, &dir, fsync, &known).map_err(|e| io("create fan-out dir", e))?;
            std::fs::rename(&tmp, &final_path).map_err(|e| io("rename blob", e))?;
            if fsync {
                // The new name must be durable too, or a crash could lose the file after the
                // metadata naming it was committed.
                std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| io("fsync directory", e))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StorageError::Io(format!("blob write task: {e}")))??;
        guard.0 = None;
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

    fn list(&self) -> BlobListing {
        let root = self.root.clone();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        tokio::task::spawn_blocking(move || walk(&root, &tx));
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }

    async fn remove_stale_temporaries(&self, min_age: std::time::Duration) -> Result<usize, StorageError> {
        let tmp = self.root.join("tmp");
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            let now = SystemTime::now();
            let entries = match std::fs::read_dir(&tmp) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(io("list tmp", e)),
            };
            for f in entries.filter_map(Result::ok) {
                let Ok(meta) = f.metadata() else { continue };
                if !meta.is_file() || age(&meta, now) < min_age {
                    continue;
                }
                // A writer holds the lock for as long as it writes: old but locked means slow.
                let Ok(file) = std::fs::File::open(f.path()) else { continue };
                if file.try_lock().is_ok() && std::fs::remove_file(f.path()).is_ok() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
        .map_err(|e| StorageError::Io(format!("tmp sweep task: {e}")))?
    }
}

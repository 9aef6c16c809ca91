//! The composition root: opens the stores, builds the S3 service and the router, serves, and
//! shuts down gracefully (stop accepting, finish in-flight requests, flush and close RocksDB).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, MetadataConfig};
use crate::directory::UserDirectory;
use crate::http::Listener;
use crate::http::tls::ReloadableAcceptor;
use crate::s3::{S3Config, S3Service};
use crate::storage::fs::FsBlobStore;
use crate::storage::postgres::PostgresMetadataStore;
use crate::storage::rocks::RocksMetadataStore;
use crate::storage::{BlobStore, MetadataStore, Storage};

#[derive(Debug)]
pub struct AppError(String);

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AppError {}

/// A started server.
pub struct Running {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// The HTTPS address, when `[tls]` is configured.
    pub tls_addr: Option<SocketAddr>,
    acceptor: Option<Arc<ReloadableAcceptor>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    housekeeping: JoinHandle<()>,
    lifecycle: JoinHandle<()>,
    users: JoinHandle<()>,
    /// The metadata store, to see it closed: gone once every task using it has ended.
    meta: std::sync::Weak<dyn MetadataStore>,
    /// Whether the store's engine has closed too (work it runs on blocking threads may
    /// outlive the last handle of a request that was cut off).
    engine_closed: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl Running {
    /// Re-reads the TLS certificate and key (what SIGHUP does).
    pub fn reload_tls(&self) -> Result<(), AppError> {
        match &self.acceptor {
            Some(a) => a.reload().map_err(AppError),
            None => Ok(()),
        }
    }

    /// Stops, then waits until the stores are closed, so that the same data directory can be
    /// opened again in this process (tests restart servers so), or 30 seconds at most: a
    /// client connection left open holds them until it ends.
    pub async fn stop_and_close(mut self) {
        let meta = self.meta.clone();
        let engine_closed = self.engine_closed.take();
        self.stop().await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while meta.strong_count() > 0 || engine_closed.as_ref().is_some_and(|closed| !closed()) {
            if tokio::time::Instant::now() > deadline {
                tracing::warn!("the metadata store is still in use after shutting down");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Stops accepting, lets in-flight requests finish and flushes the stores (which close
    /// when the last connection using them ends).
    pub async fn stop(self) {
        for task in [self.housekeeping, self.lifecycle, self.users] {
            task.abort();
            // An aborted task ends at its next await; what it started on a blocking thread
            // may still be running (`stop_and_close` waits for that).
            let _ = task.await;
        }
        let _ = self.shutdown.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "server task failed");
        }
    }
}

/// Opens the stores in `config.data_dir`, binds `config.listen` and starts serving.
pub async fn start(config: Config) -> Result<Running, AppError> {
    // A configuration error stops start-up before any data is touched.
    let acceptor = tls_acceptor(&config)?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| AppError(format!("cannot create data_dir {}: {e}", config.data_dir.display())))?;
    let mut engine_closed: Option<Box<dyn Fn() -> bool + Send + Sync>> = None;
    let meta: Arc<dyn MetadataStore> = match &config.metadata {
        MetadataConfig::Rocks { dir } => {
            let store = RocksMetadataStore::open(dir, config.fsync)
                .map_err(|e| AppError(format!("cannot open metadata store in {}: {e}", dir.display())))?;
            engine_closed = Some(Box::new(store.closed_probe()));
            Arc::new(store)
        }
        MetadataConfig::Postgres { url, pool_size } => Arc::new(
            PostgresMetadataStore::connect(url, *pool_size)
                .await
                .map_err(|e| AppError(format!("cannot use the PostgreSQL metadata store (metadata.url): {e}")))?,
        ),
    };
    let blob_dir = &config.blob_dir;
    let blobs: Arc<dyn BlobStore> = Arc::new(
        FsBlobStore::open(blob_dir, config.fsync)
            .await
            .map_err(|e| AppError(format!("cannot open blob store in {}: {e}", blob_dir.display())))?,
    );
    let mut running = serve(config, meta, blobs, acceptor).await?;
    running.engine_closed = engine_closed;
    Ok(running)
}

/// The certificates `[tls]` names, loaded (none without `[tls]`).
fn tls_acceptor(config: &Config) -> Result<Option<Arc<ReloadableAcceptor>>, AppError> {
    config
        .tls
        .as_ref()
        .map(|tls| ReloadableAcceptor::load(&tls.cert, &tls.key).map(Arc::new).map_err(AppError))
        .transpose()
}

/// Serves `config` on the given stores (the in-memory ones in tests).
pub async fn start_with_stores(
    config: Config,
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
) -> Result<Running, AppError> {
    let acceptor = tls_acceptor(&config)?;
    serve(config, meta, blobs, acceptor).await
}

async fn serve(
    config: Config,
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    tls_acceptor: Option<Arc<ReloadableAcceptor>>,
) -> Result<Running, AppError> {
    // Other processes may share the stores, so even at start-up only what is older than the
    // grace period is reclaimed; the first sweep runs at once, in the background.
    let storage = Storage::new(Arc::clone(&meta), blobs, config.gc, config.inline_max);
    let weak_meta = Arc::downgrade(&meta);
    let max_connections = connection_budget(config.limits.max_connections);
    let limits = crate::http::Limits { max_connections, ..config.limits };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| AppError(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener.local_addr().map_err(|e| AppError(format!("cannot read the bound address: {e}")))?;
    let mut listeners = vec![Listener { tcp: listener, tls: None }];
    let mut tls_addr = None;
    let mut acceptor = None;
    if let (Some(tls), Some(reloadable)) = (&config.tls, tls_acceptor) {
        let tcp = TcpListener::bind(tls.listen)
            .await
            .map_err(|e| AppError(format!("cannot listen on {} (tls.listen): {e}", tls.listen)))?;
        tls_addr = Some(tcp.local_addr().map_err(|e| AppError(format!("cannot read the bound address: {e}")))?);
        listeners.push(Listener { tcp, tls: Some(Arc::clone(&reloadable)) });
        acceptor = Some(reloadable);
    }

    let directory = UserDirectory::open(Arc::clone(&meta), &config.users)
        .await
        .map_err(|e| AppError(format!("cannot write the configured users to the metadata store (users): {e}")))?;
    let s3 = Arc::new(S3Service {
        config: S3Config {
            region: config.region.clone(),
            domains: config.domains.clone(),
            sigv2: config.sigv2,
            trusted_proxies: config.trusted_proxies.clone(),
        },
        credentials: Arc::clone(&directory) as Arc<dyn crate::auth::CredentialStore>,
        users: Arc::clone(&directory),
        meta: Arc::clone(&meta),
        storage: Arc::clone(&storage),
    });
    // Started only once nothing can fail any more, so a failed start leaves no task holding
    // the stores open.
    let housekeeping = storage.spawn_housekeeping();
    let lifecycle = crate::storage::expiry::LifecycleWorker::new(Arc::clone(&meta), config.lifecycle).spawn();
    let users = directory.spawn_refresh();
    let metrics = crate::http::MetricsEndpoint {
        registry: crate::metrics::registry(&config.metrics.node),
        token: config.metrics.token.clone(),
    };
    let router = crate::http::router(s3, limits, metrics);
    let (tx, rx) = oneshot::channel::<()>();
    let grace = config.shutdown_timeout;
    let task = tokio::spawn(async move {
        crate::http::serve(
            listeners,
            router,
            async {
                let _ = rx.await;
            },
            grace,
            limits,
        )
        .await;
        if let Err(e) = meta.flush().await {
            tracing::error!(error = %e, "flushing the metadata store failed");
        }
        tracing::info!("stopped");
    });
    tracing::info!(
        region = %config.region,
        data_dir = %config.data_dir.display(),
        metadata = ?config.metadata,
        blobs = %config.blob_dir.display(),
        fsync = config.fsync,
        "listening on {addr}"
    );
    if let Some(a) = tls_addr {
        tracing::info!("serving TLS at {a}");
    }
    warn_about_dev_credentials(&config);
    Ok(Running {
        addr,
        tls_addr,
        acceptor,
        shutdown: tx,
        task,
        housekeeping,
        lifecycle,
        users,
        meta: weak_meta,
        engine_closed: None,
    })
}

/// File descriptors each connection may need: its socket and a blob file.
const FDS_PER_CONNECTION: u64 = 2;
/// Descriptors kept for RocksDB's table files, logs, listeners and the rest.
const FDS_RESERVED: u64 = crate::storage::rocks::MAX_OPEN_FILES as u64 + 128;

/// Raises the open-files limit to its hard limit and returns how many connections fit in it
/// (at most `wanted`), so that a flood of idle sockets cannot starve blob and RocksDB opens.
fn connection_budget(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-files limit");
            return wanted;
        }
    };
    let fit = usize::try_from(limit.saturating_sub(FDS_RESERVED) / FDS_PER_CONNECTION).unwrap_or(usize::MAX).max(16);
    if fit < wanted {
        tracing::warn!(
            open_files = limit,
            max_connections = fit,
            configured = wanted,
            "the open-files limit is too low for limits.max_connections; serving fewer connections at once"
        );
        return fit;
    }
    wanted
}

/// The published development keys are for one machine: say so loudly when they are served
/// beyond loopback.
fn warn_about_dev_credentials(config: &Config) {
    let dev = config.users.iter().any(|u| u.access_key == crate::config::DEV_ACCESS_KEY);
    let exposed =
        !config.listen.ip().is_loopback() || config.tls.as_ref().is_some_and(|t| !t.listen.ip().is_loopback());
    if dev && exposed {
        tracing::warn!(
            "the published development credentials ({}) are configured and s3d listens beyond loopback: \
             anyone who can reach it can read and write every bucket; configure your own users",
            crate::config::DEV_ACCESS_KEY
        );
    }
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(config: Config) -> Result<(), AppError> {
    // Handlers go in before the server announces itself, so that a signal sent as soon as it
    // is listening is handled rather than killing the process.
    let signals = Signals::install();
    let running = start(config).await?;
    signals.wait(&running).await;
    running.stop().await;
    Ok(())
}

/// SIGTERM and SIGINT stop the server; SIGHUP reloads the TLS certificate.
struct Signals {
    #[cfg(unix)]
    unix: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(term), Ok(int), Ok(hup)) => Some([term, int, hup]),
                _ => {
                    tracing::warn!("cannot install signal handlers; falling back to Ctrl-C");
                    None
                }
            };
            Signals { unix }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn wait(self, running: &Running) {
        #[cfg(unix)]
        if let Some([mut term, mut int, mut hup]) = self.unix {
            loop {
                tokio::select! {
                    _ = term.recv() => return tracing::info!("SIGTERM received"),
                    _ = int.recv() => return tracing::info!("SIGINT received"),
                    _ = hup.recv() => match running.reload_tls() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!("SIGHUP: {e}; keeping the previous certificate"),
                    },
                }
            }
        }
        let _ = running;
        let _ = tokio::signal::ctrl_c().await;
    }
}

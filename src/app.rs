//! The composition root: opens the stores, builds the S3 service and the router, serves, and
//! shuts down gracefully (stop accepting, finish in-flight requests, flush and close RocksDB).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::StaticCredentials;
use crate::config::Config;
use crate::http::Listener;
use crate::http::tls::ReloadableAcceptor;
use crate::s3::{S3Config, S3Service};
use crate::storage::fs::FsBlobStore;
use crate::storage::rocks::RocksMetadataStore;
use crate::storage::{BlobStore, MetadataStore};

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
}

impl Running {
    /// Re-reads the TLS certificate and key (what SIGHUP does).
    pub fn reload_tls(&self) -> Result<(), AppError> {
        match &self.acceptor {
            Some(a) => a.reload().map_err(AppError),
            None => Ok(()),
        }
    }

    /// Stops accepting, lets in-flight requests finish, flushes and closes the stores.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "server task failed");
        }
    }
}

/// Opens the stores in `config.data_dir`, binds `config.listen` and starts serving.
pub async fn start(config: Config) -> Result<Running, AppError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| AppError(format!("cannot create data_dir {}: {e}", config.data_dir.display())))?;
    let meta_dir = config.data_dir.join("meta");
    let meta = RocksMetadataStore::open(&meta_dir, config.fsync)
        .map_err(|e| AppError(format!("cannot open metadata store in {}: {e}", meta_dir.display())))?;
    let meta: Arc<dyn MetadataStore> = Arc::new(meta);
    let blob_dir = config.data_dir.join("blobs");
    let blobs: Arc<dyn BlobStore> = Arc::new(
        FsBlobStore::open(&blob_dir, config.fsync)
            .await
            .map_err(|e| AppError(format!("cannot open blob store in {}: {e}", blob_dir.display())))?,
    );
    // Nothing is being written yet: every unreferenced blob is an orphan of a crash.
    crate::storage::sweep::sweep(&*meta, &*blobs, Duration::ZERO)
        .await
        .map_err(|e| AppError(format!("orphan sweep failed: {e}")))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| AppError(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener.local_addr().map_err(|e| AppError(format!("cannot read the bound address: {e}")))?;
    let mut listeners = vec![Listener { tcp: listener, tls: None }];
    let mut tls_addr = None;
    let mut acceptor = None;
    if let Some(tls) = &config.tls {
        let reloadable = Arc::new(ReloadableAcceptor::load(&tls.cert, &tls.key).map_err(AppError)?);
        let tcp = TcpListener::bind(tls.listen)
            .await
            .map_err(|e| AppError(format!("cannot listen on {} (tls.listen): {e}", tls.listen)))?;
        tls_addr = Some(tcp.local_addr().map_err(|e| AppError(format!("cannot read the bound address: {e}")))?);
        listeners.push(Listener { tcp, tls: Some(Arc::clone(&reloadable)) });
        acceptor = Some(reloadable);
    }

    let s3 = Arc::new(S3Service {
        config: S3Config { region: config.region.clone(), domains: config.domains.clone() },
        credentials: Arc::new(StaticCredentials::new(config.users.clone())),
        meta: Arc::clone(&meta),
        blobs: Arc::clone(&blobs),
    });
    let router = crate::http::router(s3);
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
        fsync = config.fsync,
        "listening on {addr}"
    );
    if let Some(a) = tls_addr {
        tracing::info!("serving TLS at {a}");
    }
    Ok(Running { addr, tls_addr, acceptor, shutdown: tx, task })
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

//! The accept loops: HTTP/1.1 (as AWS S3 speaks it) with keep-alive, `TCP_NODELAY`, bounded
//! header size, plain or TLS per listener, a cap on open connections, timeouts on every wait
//! a client controls, and a graceful shutdown that stops accepting and lets in-flight requests
//! finish.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::conn::{Activity, IdleIo, Tracked};
use super::tls::ReloadableAcceptor;

/// Bytes of request line and headers hyper buffers before refusing a request (431).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A TLS handshake that takes longer is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long s3d waits on a client, and how many clients it serves at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From accepting a connection (or the first byte of a later request) to the end of the
    /// request head.
    pub head_timeout: Duration,
    /// A kept-alive connection with no request in progress is closed after this long.
    pub keep_alive_idle: Duration,
    /// A request body that sends nothing for this long fails with `400 RequestTimeout`.
    pub body_idle: Duration,
    /// A client that reads nothing of a response for this long is disconnected.
    pub response_idle: Duration,
    /// Open connections. At the cap the connection idle the longest (no request in progress)
    /// is closed to make room; when every one is busy, accepting pauses until one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    /// AWS drops a connection that sends nothing for about 20 seconds; so does s3d.
    fn default() -> Self {
        Limits {
            head_timeout: Duration::from_secs(20),
            keep_alive_idle: Duration::from_secs(20),
            body_idle: Duration::from_secs(20),
            response_idle: Duration::from_secs(20),
            max_connections: 4096,
        }
    }
}

/// A bound socket, served plain or through TLS.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<Arc<ReloadableAcceptor>>,
}

/// Serves `router` on every listener until `shutdown` resolves, then waits up to `grace` for
/// open requests.
pub async fn serve(
    listeners: Vec<Listener>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    limits: Limits,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES)
        // The connection's own timers (IdleIo) bound the head, keep-alive and writes.
        .header_read_timeout(None);
    let graceful = Arc::new(GracefulShutdown::new());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(OpenConnections::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for l in listeners {
        let ctx = AcceptContext {
            router: router.clone(),
            builder: builder.clone(),
            graceful: Arc::clone(&graceful),
            slots: Arc::clone(&slots),
            open: Arc::clone(&open),
            limits,
        };
        loops.spawn(accept_loop(l, ctx, stop_rx.clone()));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while loops.join_next().await.is_some() {}
    tracing::info!("shutting down: no longer accepting connections");
    let Ok(graceful) = Arc::try_unwrap(graceful) else {
        return;
    };
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("shutdown timeout: closing remaining connections"),
    }
}

struct AcceptContext {
    router: Router,
    builder: http1::Builder,
    graceful: Arc<GracefulShutdown>,
    slots: Arc<Semaphore>,
    open: Arc<OpenConnections>,
    limits: Limits,
}

/// Every open connection's activity, so that at the cap the one idle the longest can be
/// closed to make room: sockets that send nothing (or a request now and then) cannot keep
/// everyone else out.
#[derive(Default)]
struct OpenConnections {
    next: AtomicU64,
    all: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl OpenConnections {
    fn all(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(self: &Arc<Self>, activity: Arc<Activity>) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.all().insert(id, activity);
        Registered { open: Arc::clone(self), id }
    }

    /// Closes the connection that has waited longest with no request in progress; whether
    /// there was one.
    fn evict_longest_idle(&self) -> bool {
        let all = self.all();
        let mut idle: Vec<(tokio::time::Instant, &Arc<Activity>)> =
            all.values().filter_map(|a| a.idle_since().map(|t| (t, a))).collect();
        idle.sort_by_key(|(t, _)| *t);
        idle.into_iter().any(|(_, a)| a.evict_if_idle())
    }
}

/// Removes a connection from [`OpenConnections`] when it ends.
struct Registered {
    open: Arc<OpenConnections>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.all().remove(&self.id);
    }
}

async fn accept_loop(listener: Listener, ctx: AcceptContext, mut stop: watch::Receiver<bool>) {
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        // A free slot first: at the cap, the connection idle the longest is closed to make
        // room; when every connection is busy, new ones wait in the kernel's backlog instead
        // of being accepted and starved of file descriptors.
        let permit = match Arc::clone(&ctx.slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let evicted = ctx.open.evict_longest_idle();
                if !evicted && last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(max = ctx.limits.max_connections, "connection limit reached; accepting paused");
                    last_warning = Some(tokio::time::Instant::now());
                }
                tokio::select! {
                    p = Arc::clone(&ctx.slots).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    // Requests end and connections fall idle: look again now and then.
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    _ = stop.changed() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let activity = Activity::new();
        let registered = ctx.open.register(Arc::clone(&activity));
        let io = IdleIo::new(stream, Arc::clone(&activity), ctx.limits);
        let acceptor = listener.tls.as_ref().map(|t| t.get());
        let info = super::conn::ConnInfo { peer: peer.ip(), secure: acceptor.is_some() };
        let service = Tracked::new(ctx.router.clone(), activity, info);
        let watcher = ctx.graceful.watcher();
        let builder = ctx.builder.clone();
        tokio::spawn(async move {
            let _slot = (permit, registered);
            let result = match acceptor {
                None => watcher.watch(builder.serve_connection(TokioIo::new(io), service)).await,
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    watcher.watch(builder.serve_connection(TokioIo::new(tls), service)).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

//! The accept loops: HTTP/1.1 (as AWS S3 speaks it) with keep-alive, `TCP_NODELAY`, bounded
//! header size, plain or TLS per listener, a cap on open connections, timeouts on every wait
//! a client controls, and a graceful shutdown that stops accepting and lets in-flight requests
//! finish.

use std::future::Future;
use std::sync::Arc;
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
    /// Open connections; at the cap, accepting pauses until one closes.
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for l in listeners {
        let ctx = AcceptContext {
            router: router.clone(),
            builder: builder.clone(),
            graceful: Arc::clone(&graceful),
            slots: Arc::clone(&slots),
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
    limits: Limits,
}

async fn accept_loop(listener: Listener, ctx: AcceptContext, mut stop: watch::Receiver<bool>) {
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        // A free slot first: at the cap, new connections wait in the kernel's backlog
        // instead of being accepted and starved of file descriptors.
        let permit = match Arc::clone(&ctx.slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(max = ctx.limits.max_connections, "connection limit reached; accepting paused");
                    last_warning = Some(tokio::time::Instant::now());
                }
                tokio::select! {
                    p = Arc::clone(&ctx.slots).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
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
        let io = IdleIo::new(stream, Arc::clone(&activity), ctx.limits);
        let service = Tracked::new(ctx.router.clone(), activity);
        let watcher = ctx.graceful.watcher();
        let builder = ctx.builder.clone();
        let acceptor = listener.tls.as_ref().map(|t| t.get());
        tokio::spawn(async move {
            let _permit = permit;
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

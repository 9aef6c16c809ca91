//! The accept loops: HTTP/1.1 with keep-alive, `TCP_NODELAY`, bounded header size, plain or
//! TLS per listener, and a graceful shutdown that stops accepting and lets in-flight requests
//! finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::tls::ReloadableAcceptor;

/// Bytes of request line and headers hyper buffers before refusing a request (431).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A TLS handshake that takes longer is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound socket, served plain or through TLS.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<Arc<ReloadableAcceptor>>,
}

/// Serves `router` on every listener until `shutdown` resolves, then waits up to `grace` for
/// open requests.
pub async fn serve(listeners: Vec<Listener>, router: Router, shutdown: impl Future<Output = ()>, grace: Duration) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES)
        .header_read_timeout(Duration::from_secs(60));
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for l in listeners {
        loops.spawn(accept_loop(l, router.clone(), builder.clone(), Arc::clone(&graceful), stop_rx.clone()));
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

async fn accept_loop(
    listener: Listener,
    router: Router,
    builder: auto::Builder<TokioExecutor>,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
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
        let watcher = graceful.watcher();
        let (router, builder) = (router.clone(), builder.clone());
        let acceptor = listener.tls.as_ref().map(|t| t.get());
        tokio::spawn(async move {
            let service = TowerToHyperService::new(router);
            let result = match acceptor {
                None => {
                    watcher
                        .watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned())
                        .await
                }
                Some(acceptor) => {
                    let Some(tls) = handshake(acceptor, stream, peer).await else {
                        return;
                    };
                    watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(tls), service).into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: std::net::SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

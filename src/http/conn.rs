//! Per-connection timers. hyper knows when it waits for a request head but not why, and a
//! request body or a slow handler must not be cut off by a timer meant for idle sockets; so
//! the connection tracks whether a request is in progress ([`Activity`], updated by
//! [`Tracked`] around every request and its response body) and its socket ([`IdleIo`]) fails
//! a read that waits too long while no request is in progress, and a write the client leaves
//! unread for too long.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::server::Limits;

#[derive(Debug)]
struct State {
    /// Requests whose response has not been fully sent.
    active: usize,
    /// When the connection last became idle (or was accepted).
    idle_since: Instant,
    /// When the head of the next request began to arrive.
    head_started: Option<Instant>,
    /// The read waiting for data: woken when a request ends (so that the idle timer starts)
    /// or when the connection is evicted.
    parked_read: Option<Waker>,
    /// Closed at the next wait between requests, to make room for another client.
    evicted: bool,
}

/// What a read waiting for data must do.
enum Wait {
    /// A request is in progress: wait as long as it takes.
    Unbounded,
    /// No request in progress: give up at this instant.
    Until(Instant),
    /// The connection was chosen to make room: give up now.
    Evicted,
}

/// Whether a connection has a request in progress, and since when it has been waiting.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
}

impl Activity {
    /// A newly accepted connection: its first request head is due within the head timeout.
    pub fn new() -> Arc<Activity> {
        let now = Instant::now();
        Arc::new(Activity {
            state: Mutex::new(State {
                active: 0,
                idle_since: now,
                head_started: Some(now),
                parked_read: None,
                evicted: false,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin(self: &Arc<Self>) -> RequestGuard {
        let mut s = self.state();
        s.active += 1;
        s.head_started = None;
        RequestGuard(Arc::clone(self))
    }

    fn saw_bytes(&self) {
        let mut s = self.state();
        if s.active == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
        }
    }

    /// How long a pending read may wait: without limit while a request is in progress (its
    /// body has its own idle timeout, and the handler may take as long as it needs), else
    /// until the head or keep-alive deadline. The read is woken when that changes.
    fn wait(&self, limits: &Limits, cx: &Context<'_>) -> Wait {
        let mut s = self.state();
        s.parked_read = Some(cx.waker().clone());
        if s.active > 0 {
            return Wait::Unbounded;
        }
        if s.evicted {
            return Wait::Evicted;
        }
        let deadline = match s.head_started {
            Some(started) => started.checked_add(limits.head_timeout),
            None => s.idle_since.checked_add(limits.keep_alive_idle),
        };
        deadline.map_or(Wait::Unbounded, Wait::Until)
    }

    /// Since when the connection has been waiting with no request in progress; `None` while
    /// one is in progress (or it is already being closed).
    pub fn idle_since(&self) -> Option<Instant> {
        let s = self.state();
        (s.active == 0 && !s.evicted).then_some(s.idle_since)
    }

    /// Closes the connection at once if it has no request in progress; whether it did.
    pub fn evict_if_idle(&self) -> bool {
        let mut s = self.state();
        if s.active > 0 || s.evicted {
            return false;
        }
        s.evicted = true;
        if let Some(w) = s.parked_read.take() {
            w.wake();
        }
        true
    }
}

/// Held from a request's arrival until its response body has been sent (or dropped).
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.active = s.active.saturating_sub(1);
        if s.active == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
            if let Some(w) = s.parked_read.take() {
                w.wake();
            }
        }
    }
}

/// Where a request came from: the peer's address and whether the connection is TLS (the
/// `aws:SourceIp` and `aws:SecureTransport` of bucket policies).
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub peer: std::net::IpAddr,
    pub secure: bool,
}

/// The router as a hyper service that marks each request in progress on its connection.
#[derive(Clone)]
pub struct Tracked {
    router: Router,
    activity: Arc<Activity>,
    info: ConnInfo,
}

impl Tracked {
    pub fn new(router: Router, activity: Arc<Activity>, info: ConnInfo) -> Self {
        Tracked { router, activity, info }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.info);
        let guard = self.activity.begin();
        let router = self.router.clone();
        Box::pin(async move {
            let resp = tower::ServiceExt::oneshot(router, req).await?;
            Ok(resp.map(|inner| Body::new(GuardedBody { inner, _guard: guard })))
        })
    }
}

/// A response body that keeps its request "in progress" until it has been sent.
struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A socket whose reads fail with `TimedOut` when no request is in progress and the head
/// (or, between requests, the first byte of the next one) is overdue, and whose writes fail
/// when the client has not taken any bytes for the response idle timeout.
pub struct IdleIo<T> {
    inner: T,
    activity: Arc<Activity>,
    limits: Limits,
    read_timer: Pin<Box<Sleep>>,
    read_armed: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
    write_blocked_since: Option<Instant>,
}

impl<T> IdleIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>, limits: Limits) -> Self {
        let now = Instant::now();
        crate::metrics::metrics().connections_open.inc();
        IdleIo {
            inner,
            activity,
            limits,
            read_timer: Box::pin(tokio::time::sleep_until(now)),
            read_armed: None,
            write_timer: Box::pin(tokio::time::sleep_until(now)),
            write_blocked_since: None,
        }
    }

    /// A pending write: fails once the client has left it unread for too long.
    fn write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let since = *self.write_blocked_since.get_or_insert_with(Instant::now);
        let Some(deadline) = since.checked_add(self.limits.response_idle) else {
            return Poll::Pending;
        };
        if self.write_timer.deadline() != deadline {
            self.write_timer.as_mut().reset(deadline);
        }
        match self.write_timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(timed_out("the client did not read the response")),
            Poll::Pending => Poll::Pending,
        }
    }

    fn write_progress<R>(&mut self, r: Poll<io::Result<R>>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.write_blocked_since = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.write_pending(cx).map(Err),
        }
    }
}

fn count_sent(r: &Poll<io::Result<usize>>) {
    if let Poll::Ready(Ok(n)) = r {
        crate::metrics::metrics().sent_bytes.inc_by(*n as u64);
    }
}

impl<T> Drop for IdleIo<T> {
    fn drop(&mut self) {
        crate::metrics::metrics().connections_open.dec();
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_armed = None;
                if buf.filled().len() > before {
                    this.activity.saw_bytes();
                    crate::metrics::metrics().received_bytes.inc_by((buf.filled().len() - before) as u64);
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let deadline = match this.activity.wait(&this.limits, cx) {
                    Wait::Unbounded => {
                        this.read_armed = None;
                        return Poll::Pending;
                    }
                    Wait::Evicted => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "closed to make room for another client",
                        )));
                    }
                    Wait::Until(deadline) => deadline,
                };
                if this.read_armed != Some(deadline) {
                    this.read_timer.as_mut().reset(deadline);
                    this.read_armed = Some(deadline);
                }
                match this.read_timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(timed_out("no request within the timeout"))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        count_sent(&r);
        self.write_progress(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        count_sent(&r);
        self.write_progress(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.write_progress(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.write_progress(r, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits() -> Limits {
        Limits {
            head_timeout: std::time::Duration::from_secs(5),
            keep_alive_idle: std::time::Duration::from_secs(3),
            body_idle: std::time::Duration::from_secs(5),
            response_idle: std::time::Duration::from_secs(7),
            max_connections: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_time_out_only_while_no_request_is_in_progress() {
        let (client, server) = tokio::io::duplex(64);
        let activity = Activity::new();
        let mut io = IdleIo::new(server, Arc::clone(&activity), limits());
        let mut buf = [0u8; 8];
        // Nothing sent: the first head is due 5 s after accepting.
        let start = Instant::now();
        let err = io.read(&mut buf).await.expect_err("times out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed().as_secs(), 5);

        // While a request is in progress, a read may wait forever (the body has its own timer).
        let guard = activity.begin();
        let waited = tokio::time::timeout(std::time::Duration::from_secs(60), io.read(&mut buf)).await;
        assert!(waited.is_err(), "still waiting after 60 s");
        // Once it is done, the next request's first byte is due within the keep-alive idle,
        // even for a read that was already waiting when the request ended.
        let start = Instant::now();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            io.read(&mut buf).await
        });
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        drop(guard);
        let err = reader.await.expect("joined").expect_err("times out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed().as_secs(), 4);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_trickled_byte_by_byte_is_bounded_by_the_head_timeout() {
        let (mut client, server) = tokio::io::duplex(64);
        let activity = Activity::new();
        drop(activity.begin()); // a first request came and went
        let mut io = IdleIo::new(server, activity, limits());
        let start = Instant::now();
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                if client.write_all(b"G").await.is_err() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
        let mut buf = [0u8; 1];
        let err = loop {
            match io.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // The first byte came at once; the head was then due 5 s later.
        assert!(start.elapsed().as_secs() <= 6, "{:?}", start.elapsed());
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn writes_the_client_does_not_read_time_out() {
        let (_client, server) = tokio::io::duplex(16);
        let activity = Activity::new();
        let _busy = activity.begin();
        let mut io = IdleIo::new(server, activity, limits());
        let start = Instant::now();
        let err = io.write_all(&[0u8; 1024]).await.expect_err("times out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed().as_secs(), 7);
    }
}

//! The HTTP front end, and the only module that names axum or hyper's server: turns HTTP
//! requests into [`S3Request`]s, adds the headers every response carries, serves
//! `/-/health`, and runs the accept loop with graceful shutdown.

mod conn;
mod server;
pub mod tls;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use futures_util::{Stream, TryStreamExt};
use http::{HeaderValue, Method, StatusCode};
use tracing::Instrument;

use crate::s3::{BodyStream, RequestIds, ResponseBody, S3Error, S3ErrorCode, S3Request, S3Response, S3Service};
pub use server::{Limits, Listener, serve};

/// Load-balancer health check; `-` cannot start a bucket name, so path style never collides.
pub const HEALTH_PATH: &str = "/-/health";

/// Prometheus metrics of this node.
pub const METRICS_PATH: &str = "/-/metrics";

/// What every request handler shares.
#[derive(Clone)]
struct AppState {
    s3: Arc<S3Service>,
    /// A request body that sends nothing for this long fails with `RequestTimeout`.
    body_idle: Duration,
    metrics: Arc<MetricsEndpoint>,
}

/// The `/-/metrics` endpoint: what it exposes, and the bearer token a scrape needs, if any.
pub struct MetricsEndpoint {
    pub registry: prometheus_client::registry::Registry,
    pub token: Option<String>,
}

pub fn router(s3: Arc<S3Service>, limits: Limits, metrics: MetricsEndpoint) -> Router {
    let state = AppState { s3, body_idle: limits.body_idle, metrics: Arc::new(metrics) };
    Router::new().fallback(handle).with_state(state)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // Request ids only need to be unique; if the OS source failed we fall back to the clock.
    if getrandom::fill(&mut b).is_err() {
        let t = crate::clock::Timestamp::now().0.to_be_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % t.len()] ^ (i as u8);
        }
    }
    b
}

fn new_ids() -> RequestIds {
    RequestIds {
        request_id: hex::encode_upper(random_bytes::<8>()),
        host_id: base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>()),
    }
}

async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let s3 = state.s3;
    let started = Instant::now();
    let ids = new_ids();
    let span = tracing::info_span!(
        "request",
        id = %ids.request_id,
        method = %req.method(),
        path = %req.uri().path(),
        op = tracing::field::Empty,
        user = tracing::field::Empty,
    );
    let head = req.method() == Method::HEAD;
    // An empty body announced with `Expect: 100-continue` is never read, so no 100 is sent.
    // botocore then takes the final answer as an early response, and the next request it
    // sends on that connection misparses its response and hangs: end the connection instead.
    let close_after =
        req.headers().get(http::header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
            && req.headers().get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0");
    let m = crate::metrics::metrics();
    m.requests_in_flight.inc();
    let resp = async {
        let resp = if is_health_check(&s3, &req) {
            let mut r = health(&s3).await;
            r.operation = "Health";
            r
        } else if is_metrics(&s3, &req) {
            let mut r = metrics(&state.metrics, &req);
            r.operation = "Metrics";
            r
        } else if is_admin(&s3, &req) {
            s3.handle_admin(to_s3_request(req, ids.clone(), state.body_idle)).await
        } else {
            s3.handle(to_s3_request(req, ids.clone(), state.body_idle)).await
        };
        tracing::info!(status = resp.status.as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "done");
        resp
    }
    .instrument(span)
    .await;
    m.requests_in_flight.dec();
    let labels = crate::metrics::RequestLabels { operation: resp.operation, status: resp.status.as_u16() };
    m.requests.get_or_create(&labels).inc();
    m.request_duration
        .get_or_create(&crate::metrics::OperationLabels { operation: resp.operation })
        .observe(started.elapsed().as_secs_f64());
    // A request whose body stalled or broke off leaves unread bytes behind: the connection
    // cannot carry another request.
    let body_failed =
        resp.error_code.is_some_and(|c| matches!(c, S3ErrorCode::RequestTimeout | S3ErrorCode::IncompleteBody));
    let mut out = into_http(resp, &ids, head);
    if close_after || body_failed {
        out.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    out
}

/// Whether the request addresses the service rather than a bucket in virtual-host style
/// (where `/-/…` would be an object key).
fn service_level(s3: &S3Service, req: &Request) -> bool {
    let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok());
    host.and_then(|h| s3.virtual_host_bucket(h)).is_none()
}

fn is_health_check(s3: &S3Service, req: &Request) -> bool {
    req.uri().path() == HEALTH_PATH
        && (req.method() == Method::GET || req.method() == Method::HEAD)
        && service_level(s3, req)
}

fn is_metrics(s3: &S3Service, req: &Request) -> bool {
    req.uri().path() == METRICS_PATH && req.method() == Method::GET && service_level(s3, req)
}

/// The Prometheus text exposition; with a token configured, only for `Authorization: Bearer
/// <token>` (compared in constant time).
fn metrics(endpoint: &MetricsEndpoint, req: &Request) -> S3Response {
    if let Some(token) = &endpoint.token {
        let presented = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let matches = presented.len() == token.len()
            && presented.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !matches {
            let mut r = S3Response::new(StatusCode::UNAUTHORIZED)
                .header("www-authenticate", "Bearer")
                .header("content-type", "text/plain");
            r.body = ResponseBody::Full("a bearer token is required\n".into());
            return r;
        }
    }
    let mut r = S3Response::new(StatusCode::OK).header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    r.body = ResponseBody::Full(crate::metrics::render(&endpoint.registry).into());
    r
}

fn is_admin(s3: &S3Service, req: &Request) -> bool {
    req.uri().path().starts_with(crate::s3::admin::PREFIX) && service_level(s3, req)
}

/// How long the health check waits for the metadata store: balancers time out in seconds.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// 200 "ok" while the metadata store answers; 503 otherwise, so that a balancer drains this
/// node while its database is out of reach.
async fn health(s3: &S3Service) -> S3Response {
    let (status, text) = match tokio::time::timeout(HEALTH_TIMEOUT, s3.meta.health()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable: the metadata store does not answer\n")
        }
        Err(_) => {
            tracing::warn!("health check timed out");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable: the metadata store does not answer\n")
        }
    };
    let mut r = S3Response::new(status).header("content-type", "text/plain");
    r.body = ResponseBody::Full(text.into());
    r
}

fn to_s3_request(req: Request, ids: RequestIds, body_idle: Duration) -> S3Request {
    let (parts, body) = req.into_parts();
    // A declared empty body is never polled: hyper answers `Expect: 100-continue` when the
    // body is first read, and a client must not be asked to send zero bytes.
    let empty = parts.headers.get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0");
    let body: BodyStream = if empty {
        crate::s3::body::empty_body()
    } else {
        let data = body.into_data_stream().map_err(|e| S3Error::new(S3ErrorCode::IncompleteBody).source(e));
        Box::pin(IdleBody::new(data, body_idle))
    };
    let conn = parts.extensions.get::<conn::ConnInfo>().copied();
    S3Request {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
        ids,
        peer: conn.map(|c| c.peer),
        secure: conn.is_some_and(|c| c.secure),
    }
}

fn into_http(resp: S3Response, ids: &RequestIds, head: bool) -> Response {
    let body = match resp.body {
        _ if head => Body::empty(),
        ResponseBody::Empty => Body::empty(),
        ResponseBody::Full(b) => Body::from(b),
        ResponseBody::Stream(s) => Body::from_stream(s),
    };
    let mut out = Response::new(body);
    *out.status_mut() = resp.status;
    *out.headers_mut() = resp.headers;
    let h = out.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ids.request_id) {
        h.insert("x-amz-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ids.host_id) {
        h.insert("x-amz-id-2", v);
    }
    h.insert(http::header::SERVER, HeaderValue::from_static("s3d"));
    if let Ok(v) = HeaderValue::from_str(&crate::clock::Timestamp::now().to_http_date()) {
        h.insert(http::header::DATE, v);
    }
    out
}

/// A request body that fails with `RequestTimeout` when the client sends nothing for `idle`
/// (counted from the first time the handler asks for data).
struct IdleBody<S> {
    inner: S,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl<S> IdleBody<S> {
    fn new(inner: S, idle: Duration) -> Self {
        IdleBody { inner, idle, timer: None, done: false }
    }
}

impl<S> Stream for IdleBody<S>
where
    S: Stream<Item = Result<bytes::Bytes, S3Error>> + Unpin,
{
    type Item = Result<bytes::Bytes, S3Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                this.timer = None;
                if item.is_none() {
                    this.done = true;
                }
                Poll::Ready(item)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.done = true;
                        Poll::Ready(Some(Err(S3Error::new(S3ErrorCode::RequestTimeout))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_with_request_timeout() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, S3Error>>(4);
        let inner = tokio_stream_from(rx);
        let mut body = IdleBody::new(inner, Duration::from_secs(20));
        tx.send(Ok(bytes::Bytes::from_static(b"a"))).await.expect("send");
        assert_eq!(body.next().await.and_then(Result::ok), Some(bytes::Bytes::from_static(b"a")));
        let started = tokio::time::Instant::now();
        let err = body.next().await.expect("an item").expect_err("times out");
        assert_eq!(err.code, S3ErrorCode::RequestTimeout);
        assert_eq!(started.elapsed().as_secs(), 20);
        assert!(body.next().await.is_none());
        drop(tx);
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> Pin<Box<dyn Stream<Item = T> + Send>> {
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}

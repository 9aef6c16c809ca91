//! The HTTP front end, and the only module that names axum or hyper's server: turns HTTP
//! requests into [`S3Request`]s, adds the headers every response carries, serves
//! `/-/health`, and runs the accept loop with graceful shutdown.

mod server;
pub mod tls;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use futures_util::TryStreamExt;
use http::{HeaderValue, Method, StatusCode};
use tracing::Instrument;

use crate::s3::{BodyStream, RequestIds, ResponseBody, S3Error, S3ErrorCode, S3Request, S3Response, S3Service};
pub use server::{Listener, serve};

/// Load-balancer health check; `-` cannot start a bucket name, so path style never collides.
pub const HEALTH_PATH: &str = "/-/health";

pub fn router(s3: Arc<S3Service>) -> Router {
    Router::new().fallback(handle).with_state(s3)
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

async fn handle(State(s3): State<Arc<S3Service>>, req: Request) -> Response {
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
    let resp = async {
        let resp = if is_health_check(&s3, &req) {
            health(&s3).await
        } else {
            s3.handle(to_s3_request(req, ids.clone())).await
        };
        tracing::info!(status = resp.status.as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "done");
        resp
    }
    .instrument(span)
    .await;
    let mut out = into_http(resp, &ids, head);
    if close_after {
        out.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    out
}

fn is_health_check(s3: &S3Service, req: &Request) -> bool {
    let vhost =
        req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).and_then(|h| s3.virtual_host_bucket(h));
    req.uri().path() == HEALTH_PATH && vhost.is_none() && (req.method() == Method::GET || req.method() == Method::HEAD)
}

async fn health(s3: &S3Service) -> S3Response {
    match s3.meta.health().await {
        Ok(()) => {
            let mut r = S3Response::new(StatusCode::OK).header("content-type", "text/plain");
            r.body = ResponseBody::Full("ok\n".into());
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            S3Response::new(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

fn to_s3_request(req: Request, ids: RequestIds) -> S3Request {
    let (parts, body) = req.into_parts();
    // A declared empty body is never polled: hyper answers `Expect: 100-continue` when the
    // body is first read, and a client must not be asked to send zero bytes.
    let empty = parts.headers.get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0");
    let body: BodyStream = if empty {
        crate::s3::body::empty_body()
    } else {
        Box::pin(body.into_data_stream().map_err(|e| S3Error::new(S3ErrorCode::IncompleteBody).source(e)))
    };
    S3Request { method: parts.method, uri: parts.uri, headers: parts.headers, body, ids }
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
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now())) {
        h.insert(http::header::DATE, v);
    }
    out
}

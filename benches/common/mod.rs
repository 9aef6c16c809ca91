//! Shared by the load benchmarks: a server configuration, a keep-alive client connection that
//! signs what it sends, and a bare hyper server that answers without doing any work, to
//! measure against with the same client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use s3d::auth::sigv4::signing::{sha256_hex, sign_headers_for};
use s3d::auth::{Identity, SecretKey, UserCredential};
use s3d::clock::Timestamp;
use s3d::config::{Config, LogFormat, MetadataConfig, MetricsConfig};

pub const AK: &str = "bench-access";
pub const SK: &str = "bench-secret";

/// A durable (fsync on, unless `S3D_BENCH_FSYNC=false` asks to see what durability costs)
/// server on 127.0.0.1:0 with one user.
pub fn config(dir: &Path, metadata: MetadataConfig, blob_dir: PathBuf) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_path_buf(),
        region: "us-east-1".into(),
        domains: vec![],
        fsync: std::env::var("S3D_BENCH_FSYNC").map_or(true, |v| v != "false"),
        log_format: LogFormat::Text,
        shutdown_timeout: Duration::from_secs(5),
        tls: None,
        limits: s3d::http::Limits::default(),
        gc: s3d::storage::GcConfig::default(),
        lifecycle: s3d::storage::expiry::LifecycleSettings::default(),
        metadata,
        blob_dir,
        inline_max: s3d::config::DEFAULT_INLINE_MAX,
        metrics: MetricsConfig::default(),
        sigv2: true,
        trusted_proxies: Vec::new(),
        users: vec![UserCredential {
            access_key: AK.into(),
            secret_key: SecretKey::new(SK),
            identity: Identity { id: "bench".into(), display_name: "bench".into() },
            admin: false,
        }],
    }
}

/// A single-node server on the embedded RocksDB in `dir`.
pub fn rocks_config(dir: &Path) -> Config {
    config(dir, MetadataConfig::Rocks { dir: dir.join("meta") }, dir.join("blobs"))
}

/// How a request's payload is signed.
#[derive(Clone, Copy)]
pub enum Payload {
    /// The SHA-256 of the body is signed (what clients do over plain HTTP).
    Signed,
    /// `UNSIGNED-PAYLOAD` (what clients do over HTTPS): the server hashes only for the ETag.
    Unsigned,
}

/// One keep-alive connection.
pub struct Conn {
    host: String,
    sender: SendRequest<Full<Bytes>>,
    /// Sent as [`SIZE_HEADER`] when not zero: how much a bare server's GET answers with.
    pub size_hint: u64,
}

/// What came back: the status, the first bytes of the body (enough for the XML elements the
/// benchmarks read, which come before any list of entries) and the body's full length.
pub struct Answer {
    pub status: http::StatusCode,
    pub etag: Option<String>,
    pub head: Bytes,
    pub len: u64,
}

const KEEP: usize = 16 << 10;

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(connection);
        Conn { host: addr.to_string(), sender, size_hint: 0 }
    }

    /// Sends a signed request and reads the answer as it streams in.
    pub async fn send(&mut self, method: &str, path: &str, query: &str, body: Bytes, payload: Payload) -> Answer {
        let hash = match payload {
            Payload::Signed => sha256_hex(&body),
            Payload::Unsigned => "UNSIGNED-PAYLOAD".to_owned(),
        };
        let signed = sign_headers_for(method, path, query, &self.host, &hash, AK, SK, "us-east-1", Timestamp::now());
        let target = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };
        let mut req = http::Request::builder().method(method).uri(target).header("host", &self.host);
        for (k, v) in signed {
            req = req.header(k, v);
        }
        if method == "PUT" || method == "POST" {
            req = req.header("content-length", body.len());
        }
        if self.size_hint > 0 {
            req = req.header(SIZE_HEADER, self.size_hint);
        }
        let req = req.body(Full::new(body)).expect("request");
        self.sender.ready().await.expect("connection ready");
        let resp = self.sender.send_request(req).await.expect("response");
        let status = resp.status();
        let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = resp.into_body();
        let (mut head, mut len) = (Vec::new(), 0u64);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("body").into_data() {
                len += data.len() as u64;
                if head.len() < KEEP {
                    head.extend_from_slice(&data[..data.len().min(KEEP - head.len())]);
                }
            }
        }
        Answer { status, etag, head: head.into(), len }
    }

    /// Like [`Conn::send`] with a signed payload; panics unless the answer is a success.
    pub async fn call(&mut self, method: &str, path: &str, query: &str, body: Bytes) -> Answer {
        self.expect(method, path, query, body, Payload::Signed).await
    }

    /// Like [`Conn::send`]; panics unless the answer is a success.
    pub async fn expect(&mut self, method: &str, path: &str, query: &str, body: Bytes, payload: Payload) -> Answer {
        let a = self.send(method, path, query, body, payload).await;
        assert!(a.status.is_success(), "{method} {path}?{query}: {} {}", a.status, String::from_utf8_lossy(&a.head));
        a
    }
}

/// The header that tells the bare server how many bytes a GET answers with (s3d ignores it).
pub const SIZE_HEADER: &str = "x-bench-size";

/// A bare hyper server: reads and drops request bodies, answers GET with `SIZE_HEADER` zero
/// bytes (1 MiB frames), `POST ?uploads` with an `UploadId`, everything else with an empty 200.
pub async fn bare_hyper() -> SocketAddr {
    const FRAME: u64 = 1 << 20;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| async move {
                    let size: u64 = req
                        .headers()
                        .get(SIZE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let get = req.method() == hyper::Method::GET;
                    let initiate = req.method() == hyper::Method::POST && req.uri().query() == Some("uploads");
                    let mut body = req.into_body();
                    while let Some(f) = body.frame().await {
                        f?;
                    }
                    type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;
                    let resp: hyper::Response<Body> = if get {
                        let stream = futures_util::stream::iter((0..size.div_ceil(FRAME)).map(move |i| {
                            let n = (size - i * FRAME).min(FRAME) as usize;
                            Ok::<_, hyper::Error>(hyper::body::Frame::data(Bytes::from(vec![0u8; n])))
                        }));
                        let mut r = hyper::Response::new(http_body_util::StreamBody::new(stream).boxed());
                        r.headers_mut().insert("content-length", size.into());
                        r
                    } else if initiate {
                        let xml =
                            "<InitiateMultipartUploadResult><UploadId>bare</UploadId></InitiateMultipartUploadResult>";
                        hyper::Response::new(Full::new(Bytes::from(xml)).map_err(|e| match e {}).boxed())
                    } else {
                        hyper::Response::new(Full::new(Bytes::new()).map_err(|e| match e {}).boxed())
                    };
                    Ok::<_, hyper::Error>(resp)
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    addr
}

/// Whether `cargo bench` runs this (with `--bench`) rather than `cargo test --all-targets`,
/// which runs every benchmark briefly as a smoke test.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A number from the environment, or `default`.
pub fn env_or(key: &str, default: f64) -> f64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

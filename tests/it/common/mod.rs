//! Test harness: a server on a loopback port with a fresh data directory, SDK clients in both
//! addressing styles, and a raw HTTP/1.1 client for hand-made requests.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns};
use s3d::app::Running;
use s3d::auth::{Identity, SecretKey, UserCredential};
use s3d::config::{Config, LogFormat};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const REGION: &str = "us-east-1";
/// Virtual-host base domain the test server is configured with.
pub const DOMAIN: &str = "s3.localhost";

#[derive(Clone, Copy, Debug)]
pub struct User {
    pub id: &'static str,
    pub name: &'static str,
    pub access_key: &'static str,
    pub secret_key: &'static str,
}

pub const ALICE: User = User {
    id: "alice-id",
    name: "alice",
    access_key: "AKALICE0000000000001",
    secret_key: "alice-secret-key/with+chars",
};
pub const BOB: User =
    User { id: "bob-id", name: "bob", access_key: "AKBOB000000000000002", secret_key: "bob-secret-key" };

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Path,
    VirtualHost,
}

pub fn test_config(data_dir: PathBuf) -> Config {
    Config {
        metadata: s3d::config::MetadataConfig::Rocks { dir: data_dir.join("meta") },
        blob_dir: data_dir.join("blobs"),
        inline_max: s3d::config::DEFAULT_INLINE_MAX,
        metrics: s3d::config::MetricsConfig::default(),
        sigv2: true,
        trusted_proxies: Vec::new(),
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        data_dir,
        region: REGION.into(),
        domains: vec![DOMAIN.into(), "s3.cn-north-1.jcloudcs.com".into()],
        fsync: true,
        log_format: LogFormat::Text,
        shutdown_timeout: Duration::from_secs(5),
        tls: None,
        limits: s3d::http::Limits::default(),
        gc: s3d::storage::GcConfig::default(),
        lifecycle: s3d::storage::expiry::LifecycleSettings::default(),
        users: [ALICE, BOB]
            .iter()
            .map(|u| UserCredential {
                access_key: u.access_key.into(),
                secret_key: SecretKey::new(u.secret_key),
                identity: Identity { id: u.id.into(), display_name: u.name.into() },
                admin: u.id == ALICE.id,
            })
            .collect(),
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    running: Option<Running>,
    pub dir: TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_in(tempfile::tempdir().expect("tempdir")).await
    }

    pub async fn start_in(dir: TempDir) -> TestServer {
        Self::start_with(test_config(dir.path().to_path_buf()), dir).await
    }

    /// A server whose configuration `f` adjusts (small timeouts, a short grace period).
    pub async fn start_configured(f: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path().to_path_buf());
        f(&mut config);
        Self::start_with(config, dir).await
    }

    /// A server on the in-memory stores (the reference the persistent ones are held to).
    pub async fn start_memory(
        f: impl FnOnce(&mut Config),
    ) -> (TestServer, std::sync::Arc<s3d::storage::memory::MemoryBlobStore>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path().to_path_buf());
        f(&mut config);
        let blobs = std::sync::Arc::new(s3d::storage::memory::MemoryBlobStore::new());
        let meta = std::sync::Arc::new(s3d::storage::memory::MemoryMetadataStore::new());
        let running = s3d::app::start_with_stores(config, meta, blobs.clone()).await.expect("server starts");
        (TestServer { addr: running.addr, running: Some(running), dir }, blobs)
    }

    pub async fn start_with(config: Config, dir: TempDir) -> TestServer {
        let running = s3d::app::start(config).await.expect("server starts");
        TestServer { addr: running.addr, running: Some(running), dir }
    }

    /// Stops gracefully and starts again on the same data (on a new port).
    pub async fn restart(mut self) -> TestServer {
        if let Some(r) = self.running.take() {
            r.stop_and_close().await;
        }
        Self::start_in(self.dir).await
    }

    /// Stops gracefully and starts again on the same data with an adjusted configuration.
    pub async fn restart_configured(mut self, f: impl FnOnce(&mut Config)) -> TestServer {
        if let Some(r) = self.running.take() {
            r.stop_and_close().await;
        }
        let mut config = test_config(self.dir.path().to_path_buf());
        f(&mut config);
        Self::start_with(config, self.dir).await
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn client(&self, user: User, style: Style) -> Client {
        sdk_client(self.port(), user, style)
    }

    /// The Host header for a bucket in `style`.
    pub fn host(&self, bucket: &str, style: Style) -> String {
        match style {
            Style::Path => format!("127.0.0.1:{}", self.port()),
            Style::VirtualHost => format!("{bucket}.{DOMAIN}:{}", self.port()),
        }
    }

    /// The request target for `bucket`/`key` (key already percent-encoded) in `style`.
    pub fn target(&self, bucket: &str, encoded_key: &str, style: Style) -> String {
        match style {
            Style::Path if encoded_key.is_empty() => format!("/{bucket}"),
            Style::Path => format!("/{bucket}/{encoded_key}"),
            Style::VirtualHost => format!("/{encoded_key}"),
        }
    }
}

/// A short grace period and frequent collection, so tests can watch blobs being reclaimed.
/// Metadata in a fresh database of the test PostgreSQL server.
pub async fn postgres_metadata() -> s3d::config::MetadataConfig {
    let url = s3d::testing::TestPostgres::shared().database().await;
    s3d::config::MetadataConfig::Postgres { url, pool_size: 8 }
}

pub fn fast_gc(c: &mut Config) {
    c.gc = s3d::storage::GcConfig {
        grace: Duration::from_millis(300),
        interval: Duration::from_millis(100),
        sweep_interval: Duration::from_millis(200),
        completed_retention: Duration::from_secs(86_400),
    };
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Finished blobs on disk (temporary files of writes in progress left out).
pub fn blob_count(server: &TestServer) -> usize {
    walk(&server.dir.path().join("blobs")).iter().filter(|p| !p.contains("/blobs/tmp/")).count()
}

/// Resolves every name to 127.0.0.1, so `<bucket>.s3.localhost` reaches the test server.
#[derive(Debug, Clone)]
struct Loopback;

impl ResolveDns for Loopback {
    fn resolve_dns<'a>(&'a self, _name: &'a str) -> DnsFuture<'a> {
        DnsFuture::ready(Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]))
    }
}

pub fn sdk_client(port: u16, user: User, style: Style) -> Client {
    sdk_client_with(port, user, style, None)
}

/// An SDK client; with `ca_pem` it speaks HTTPS and trusts only that CA.
pub fn sdk_client_with(port: u16, user: User, style: Style, ca_pem: Option<&[u8]>) -> Client {
    let scheme = if ca_pem.is_some() { "https" } else { "http" };
    let endpoint = match style {
        Style::Path => format!("{scheme}://localhost:{port}"),
        Style::VirtualHost => format!("{scheme}://{DOMAIN}:{port}"),
    };
    let mut builder = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
    if let Some(pem) = ca_pem {
        use aws_smithy_http_client::tls::{TlsContext, TrustStore};
        let context = TlsContext::builder()
            .with_trust_store(TrustStore::empty().with_pem_certificate(pem.to_vec()))
            .build()
            .expect("tls context");
        builder = builder.tls_context(context);
    }
    let http = builder.build_with_resolver(Loopback);
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(user.access_key, user.secret_key, None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(style == Style::Path)
        .http_client(http)
        .build();
    Client::from_conf(conf)
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an error body.
    pub fn code(&self) -> String {
        xml_value(&self.text(), "Code").unwrap_or_default()
    }

    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code().as_str()), (status, code), "body: {}", self.text());
        assert!(self.text().contains("<RequestId>"), "{}", self.text());
        assert_eq!(self.header("x-amz-request-id").map(str::len), Some(16));
    }
}

/// The text of the first `<tag>` element.
pub fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_owned())
}

/// The AWS signer's settings for S3: single URI encoding, no path normalisation.
fn s3_signing_settings() -> aws_sigv4::http_request::SigningSettings {
    use aws_sigv4::http_request::{PercentEncodingMode, SigningSettings, UriPathNormalizationMode};
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings
}

/// A request to sign and send byte for byte.
#[derive(Debug, Clone)]
pub struct Raw {
    pub method: String,
    pub target: String,
    pub host: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn new(method: &str, host: &str, target: &str) -> Raw {
        Raw { method: method.into(), target: target.into(), host: host.into(), headers: Vec::new(), body: Vec::new() }
    }

    pub fn header(mut self, name: &str, value: &str) -> Raw {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: &[u8]) -> Raw {
        self.body = body.to_vec();
        self
    }

    /// Signs with SigV4 (the AWS signer, S3 settings) at `time`, adding the
    /// `x-amz-content-sha256`, `x-amz-date` and Authorization headers.
    pub fn sign_at(mut self, user: User, region: &str, time: SystemTime) -> Raw {
        use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, sign};
        let identity = Credentials::new(user.access_key, user.secret_key, None, None, "test").into();
        let mut settings = s3_signing_settings();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let unsigned = self.headers.iter().any(|(k, v)| k == "x-amz-content-sha256" && v == "UNSIGNED-PAYLOAD");
        // The signer adds x-amz-content-sha256 itself.
        self.headers.retain(|(k, _)| k != "x-amz-content-sha256");
        let mut headers = self.headers.clone();
        headers.push(("host".into(), self.host.clone()));
        let url = format!("http://{}{}", self.host, self.target);
        let signable = SignableRequest::new(
            &self.method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            if unsigned { SignableBody::UnsignedPayload } else { SignableBody::Bytes(&self.body) },
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
        for (k, v) in instructions.headers() {
            self.headers.push((k.to_string(), v.to_string()));
        }
        self
    }

    /// Presigns (query-string SigV4, UNSIGNED-PAYLOAD) as of `time`, valid for `expires`.
    pub fn presign(mut self, user: User, time: SystemTime, expires: Duration) -> Raw {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, sign};
        let identity = Credentials::new(user.access_key, user.secret_key, None, None, "test").into();
        let mut settings = s3_signing_settings();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let headers = [("host".to_string(), self.host.clone())];
        let url = format!("http://{}{}", self.host, self.target);
        let signable = SignableRequest::new(
            &self.method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::UnsignedPayload,
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
        let mut target = self.target.clone();
        for (k, v) in instructions.params() {
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(&format!(
                "{}={}",
                s3d::auth::sigv4::canonical::uri_encode(k.as_bytes(), false),
                s3d::auth::sigv4::canonical::uri_encode(v.as_bytes(), false)
            ));
        }
        self.target = target;
        self
    }

    pub fn sign(self, user: User) -> Raw {
        self.sign_at(user, REGION, SystemTime::now())
    }

    /// The request line and headers as signed, ending with the blank line; no body, no
    /// added Content-Length (for tests that write the body themselves, or not at all).
    pub fn head(&self) -> String {
        let mut head = format!("{} {} HTTP/1.1\r\nhost: {}\r\n", self.method, self.target, self.host);
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head
    }

    /// Sends over a fresh connection and reads the whole response.
    pub async fn send(&self, addr: SocketAddr) -> RawResponse {
        let mut head = format!("{} {} HTTP/1.1\r\nhost: {}\r\n", self.method, self.target, self.host);
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        send_bytes(addr, &bytes, self.method == "HEAD").await
    }
}

/// Sends only the request head (no body bytes, whatever Content-Length says) and reads the
/// answer: how a client waiting on `Expect: 100-continue` sees an early error.
pub async fn send_head_only(addr: SocketAddr, raw: &Raw) -> RawResponse {
    let mut head = format!("{} {} HTTP/1.1\r\nhost: {}\r\n", raw.method, raw.target, raw.host);
    for (k, v) in &raw.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    send_bytes(addr, head.as_bytes(), false).await
}

/// Writes raw bytes, reads one response (bounded by a timeout so a hang fails the test).
pub async fn send_bytes(addr: SocketAddr, bytes: &[u8], head: bool) -> RawResponse {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(bytes).await.expect("write");
        read_response(&mut s, head).await
    };
    tokio::time::timeout(Duration::from_secs(20), fut).await.expect("response within 20 s")
}

pub async fn read_response(s: &mut TcpStream, head: bool) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before the response head: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head_text = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let want = if head || status == 204 || status == 304 || status == 100 { 0 } else { len };
    let mut body = buf[header_end..].to_vec();
    while body.len() < want {
        let n = s.read(&mut chunk).await.expect("read body");
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(want);
    RawResponse { status, headers, body }
}

/// Signs a request as STREAMING-UNSIGNED-PAYLOAD-TRAILER (the canonical request carries that
/// literal as the payload hash).
pub fn streaming_unsigned(raw: Raw) -> Raw {
    use s3d::auth::sigv4::{canonical, signing};
    let mut r = raw;
    r.headers.retain(|(k, _)| k != "authorization" && k != "x-amz-content-sha256" && k != "x-amz-date");
    let now = s3d::clock::Timestamp::now().to_amz_date();
    r.headers.push(("x-amz-content-sha256".into(), "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into()));
    r.headers.push(("x-amz-date".into(), now.clone()));
    let mut h = http::HeaderMap::new();
    h.insert("host", r.host.parse().expect("host"));
    for (k, v) in &r.headers {
        h.append(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
    }
    let mut signed: Vec<String> = h.keys().map(|k| k.as_str().to_owned()).collect();
    signed.sort();
    signed.dedup();
    let (path, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
    let creq = canonical::canonical_request(
        &r.method,
        &canonical::canonical_uri(path),
        &canonical::canonical_query(query, None),
        &canonical::canonical_headers(&h, &signed, &r.host),
        &signed,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    );
    let scope = format!("{}/{REGION}/s3/aws4_request", &now[..8]);
    let key = signing::signing_key(ALICE.secret_key, &now[..8], REGION, "s3");
    let sig = signing::sign(&key, &signing::string_to_sign(&now, &scope, &creq));
    r.headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={sig}",
            ALICE.access_key,
            signed.join(";")
        ),
    ));
    r
}

/// Runs a test body once per addressing style.
#[macro_export]
macro_rules! both_styles {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn path_style() {
                super::$name($crate::common::Style::Path).await;
            }
            #[tokio::test]
            async fn virtual_host() {
                super::$name($crate::common::Style::VirtualHost).await;
            }
        }
    };
}

/// The S3 error code of an SDK error.
pub fn sdk_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()).map(str::to_owned)
}

pub fn sdk_status<E, R: std::fmt::Debug>(
    err: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response<R>>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Uploads `ranges` (offset, length) of the file at `path` as parts 1, 2, … of an upload, the
/// SDK reading each slice from disk (file bodies go out as aws-chunked), and returns the parts
/// for CompleteMultipartUpload with the ETags and checksums UploadPart answered.
pub async fn upload_file_slices(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    path: &std::path::Path,
    ranges: &[(u64, u64)],
    algorithm: Option<aws_sdk_s3::types::ChecksumAlgorithm>,
) -> Vec<aws_sdk_s3::types::CompletedPart> {
    use aws_sdk_s3::primitives::{ByteStream, Length};
    let mut parts = Vec::new();
    for (i, (offset, len)) in ranges.iter().enumerate() {
        let n = i as i32 + 1;
        let body = ByteStream::read_from()
            .path(path)
            .offset(*offset)
            .length(Length::Exact(*len))
            .build()
            .await
            .expect("slice");
        let out = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(n)
            .set_checksum_algorithm(algorithm.clone())
            .body(body)
            .send()
            .await
            .expect("part");
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().expect("etag"))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
    }
    parts
}

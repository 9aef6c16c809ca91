//! Streams a 1 GiB object up and down through s3d on loopback and reports how much the
//! process's resident memory grew (it must stay flat: bodies are never buffered whole), and
//! the throughput as a ratio against a bare hyper server that moves the same bytes in the
//! same run. Run with `cargo bench --bench stream_memory` (size: S3D_BENCH_MIB, default 1024).

mod common;

use std::net::SocketAddr;
use std::time::Instant;

use common::{AK, SK};
use s3d::auth::sigv4::{canonical, signing};
use s3d::clock::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CHUNK: usize = 256 * 1024;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn signed_head(method: &str, path: &str, host: &str, len: Option<u64>) -> String {
    let now = Timestamp::now();
    let amz = now.to_amz_date();
    let mut h = http::HeaderMap::new();
    h.insert("host", host.parse().expect("host"));
    h.insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().expect("v"));
    h.insert("x-amz-date", amz.parse().expect("v"));
    let signed: Vec<String> = ["host", "x-amz-content-sha256", "x-amz-date"].map(String::from).to_vec();
    let creq = canonical::canonical_request(
        method,
        &canonical::canonical_uri(path),
        "",
        &canonical::canonical_headers(&h, &signed, host),
        &signed,
        "UNSIGNED-PAYLOAD",
    );
    let scope = format!("{}/us-east-1/s3/aws4_request", &amz[..8]);
    let sig = signing::sign(
        &signing::signing_key(SK, &amz[..8], "us-east-1", "s3"),
        &signing::string_to_sign(&amz, &scope, &creq),
    );
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: {amz}\r\n\
         authorization: AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}\r\n"
    );
    if let Some(n) = len {
        head.push_str(&format!("content-length: {n}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends `head` and `size` bytes of body, then reads the whole response; returns its body size.
async fn exchange(addr: SocketAddr, head: &str, size: u64) -> u64 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![0x5au8; CHUNK];
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        s.write_all(&chunk[..n]).await.expect("body");
        left -= n as u64;
    }
    let mut buf = vec![0u8; CHUNK];
    let mut head_buf = Vec::new();
    let (status, len, mut got) = loop {
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed early");
        head_buf.extend_from_slice(&buf[..n]);
        if let Some(i) = head_buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head_buf[..i]).to_ascii_lowercase();
            let status: u16 = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            let len: u64 =
                text.lines().find_map(|l| l.strip_prefix("content-length: ")?.trim().parse().ok()).unwrap_or(0);
            break (status, len, (head_buf.len() - i - 4) as u64);
        }
    };
    assert!(status == 200, "status {status}");
    while got < len {
        let n = s.read(&mut buf).await.expect("read body");
        assert!(n > 0, "body cut short");
        got += n as u64;
    }
    got
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this runs as a quick smoke
    // test on a small object.
    let full = std::env::args().any(|a| a == "--bench");
    let mib: u64 =
        std::env::var("S3D_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(if full { 1024 } else { 16 });
    let size = mib * 1024 * 1024;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = common::rocks_config(dir.path());
        let server = s3d::app::start(config).await.expect("start");
        let addr = server.addr;
        let host = addr.to_string();
        exchange(addr, &signed_head("PUT", "/bench", &host, Some(0)), 0).await;
        let baseline = rss_kib("VmRSS:");
        let t = Instant::now();
        exchange(addr, &signed_head("PUT", "/bench/big", &host, Some(size)), size).await;
        let s3d_up = t.elapsed();
        let t = Instant::now();
        let got = exchange(addr, &signed_head("GET", "/bench/big", &host, None), 0).await;
        let s3d_down = t.elapsed();
        assert_eq!(got, size);
        let peak = rss_kib("VmHWM:");
        server.stop().await;

        let bare = common::bare_hyper().await;
        let t = Instant::now();
        exchange(bare, &format!("PUT /x HTTP/1.1\r\nhost: b\r\ncontent-length: {size}\r\n\r\n"), size).await;
        let bare_up = t.elapsed();
        let t = Instant::now();
        exchange(bare, &format!("GET /x HTTP/1.1\r\nhost: b\r\n{}: {size}\r\n\r\n", common::SIZE_HEADER), 0).await;
        let bare_down = t.elapsed();

        let mibps = |d: std::time::Duration| mib as f64 / d.as_secs_f64();
        println!("stream_memory: {mib} MiB object, fsync on");
        println!(
            "  RSS before {} MiB, peak {} MiB, growth {} MiB",
            baseline / 1024,
            peak / 1024,
            peak.saturating_sub(baseline) / 1024
        );
        println!(
            "  PUT  s3d {:7.1} MiB/s   bare hyper {:7.1} MiB/s   ratio {:.2}",
            mibps(s3d_up),
            mibps(bare_up),
            mibps(s3d_up) / mibps(bare_up)
        );
        println!(
            "  GET  s3d {:7.1} MiB/s   bare hyper {:7.1} MiB/s   ratio {:.2}",
            mibps(s3d_down),
            mibps(bare_down),
            mibps(s3d_down) / mibps(bare_down)
        );
    });
}

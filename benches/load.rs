//! s3d against a bare hyper server, driven by the same client in the same run: each
//! operation's throughput on s3d as a share of what the same load gets from a server that
//! does no work at all. s3d runs as shipped: one node on the embedded RocksDB, fsync on
//! (every 200 is durable). Operations:
//!
//! - CreateMultipartUpload, 4 KiB PutObject and 4 KiB GetObject with 16 concurrent clients;
//! - 64 MiB PutObject with 4 streams and with 1 (the single stream also against the speed of
//!   MD5 on one core, which bounds it: the ETag is an MD5 of the body), 64 MiB GetObject;
//! - a 1 GiB multipart upload in 8 MiB parts, 4 in flight;
//! - listing 10,000 keys with ListObjectsV2 (10 pages of 1,000).
//!
//! The two servers take turns: each operation runs in [`Plan::rounds`] slices on s3d, each
//! followed by one on the bare server, so that both see the machine in the same state (on a
//! shared virtual machine, the bare server alone varied by ±30% between runs).
//!
//! `cargo bench --bench load` (S3D_BENCH_SECS per operation and server, default 5;
//! S3D_BENCH_CLIENTS, default 16; S3D_BENCH_ONLY to pick operations, see [`wanted`]).
//! `cargo test --all-targets` runs it briefly with small sizes as a smoke test.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Conn, Payload, bare_hyper, env_or, full_run, rocks_config};

/// Sizes and counts: the full run's, or a smoke test's.
struct Plan {
    secs: f64,
    /// Turns each server takes per operation.
    rounds: usize,
    clients: usize,
    small: usize,
    large: usize,
    multipart: usize,
    part: usize,
    list_keys: usize,
    get_keys: usize,
}

impl Plan {
    fn new() -> Plan {
        if full_run() {
            Plan {
                secs: env_or("S3D_BENCH_SECS", 5.0),
                rounds: env_or("S3D_BENCH_ROUNDS", 5.0).max(1.0) as usize,
                clients: env_or("S3D_BENCH_CLIENTS", 16.0) as usize,
                small: 4 << 10,
                large: 64 << 20,
                multipart: 1 << 30,
                part: 8 << 20,
                list_keys: 10_000,
                get_keys: 1_000,
            }
        } else {
            Plan {
                secs: 0.2,
                rounds: 1,
                clients: 2,
                small: 4 << 10,
                large: 1 << 20,
                multipart: 10 << 20,
                part: 5 << 20,
                list_keys: 30,
                get_keys: 10,
            }
        }
    }
}

/// Numbers `step` calls across every slice of a run, so that names made from them stay
/// fresh from one slice to the next.
static STEPS: AtomicU64 = AtomicU64::new(0);

/// Completed operations and bytes moved per second by `clients` clients, each on its own
/// connection, repeating `step(conn, client, n)` until `secs` have passed (`n` is new in
/// every call).
async fn rate<F, Fut>(addr: SocketAddr, clients: usize, secs: f64, size_hint: u64, step: F) -> (f64, f64)
where
    F: Fn(Conn, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (Conn, u64)> + Send,
{
    let (ops, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let step = Arc::new(step);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (ops, bytes, step) = (Arc::clone(&ops), Arc::clone(&bytes), Arc::clone(&step));
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            conn.size_hint = size_hint;
            while Instant::now() < deadline {
                let n = STEPS.fetch_add(1, Ordering::Relaxed) as usize;
                let (c2, moved) = step(conn, c, n).await;
                conn = c2;
                ops.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(moved, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let elapsed = started.elapsed().as_secs_f64();
    (ops.load(Ordering::Relaxed) as f64 / elapsed, bytes.load(Ordering::Relaxed) as f64 / elapsed)
}

/// `measure(addr, secs)` (a pair of rates) on s3d and on the bare server, taking turns in
/// `rounds` slices of `secs / rounds`: each server's rates over all its slices, each slice
/// weighted by how long it took (a slice ends when its last operation does, so slices of
/// long operations overrun by different amounts).
async fn turns<F, Fut>(
    s3d: SocketAddr,
    bare: SocketAddr,
    secs: f64,
    rounds: usize,
    measure: F,
) -> ((f64, f64), (f64, f64))
where
    F: Fn(SocketAddr, f64) -> Fut,
    Fut: std::future::Future<Output = (f64, f64)>,
{
    // Per server: rate × time summed for each of the pair, and the time.
    let mut sums = [[0.0; 3]; 2];
    let slice = secs / rounds as f64;
    for _ in 0..rounds {
        for (sum, addr) in sums.iter_mut().zip([s3d, bare]) {
            let started = Instant::now();
            let (x, y) = measure(addr, slice).await;
            let took = started.elapsed().as_secs_f64();
            sum[0] += x * took;
            sum[1] += y * took;
            sum[2] += took;
        }
    }
    let [a, b] = sums.map(|[x, y, t]| (x / t, y / t));
    (a, b)
}

/// `4 KiB`, `64 MiB`, `1 GiB`.
fn human(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b => format!("{} KiB", b >> 10),
    }
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text between `open` and `close` in a byte answer (no UTF-8 check of the whole page).
fn between_bytes(xml: &[u8], open: &str, close: &str) -> Option<String> {
    // Linear: candidates by their first byte, then compared (a window compare at every
    // position made the client, not the server, the cost of a listing).
    let find = |hay: &[u8], needle: &[u8]| {
        let first = *needle.first()?;
        let mut at = 0;
        while let Some(p) = hay.get(at..)?.iter().position(|&b| b == first) {
            if hay[at + p..].starts_with(needle) {
                return Some(at + p);
            }
            at += p + 1;
        }
        None
    };
    let start = find(xml, open.as_bytes())? + open.len();
    let len = find(&xml[start..], close.as_bytes())?;
    Some(String::from_utf8_lossy(&xml[start..start + len]).into_owned())
}

/// Whether `S3D_BENCH_ONLY` (comma-separated: initiate, put, get, put-large, get-large,
/// multipart, list) selects an operation; all run without it.
fn wanted(op: &str) -> bool {
    std::env::var("S3D_BENCH_ONLY").map_or(true, |v| v.split(',').any(|o| o.trim() == op))
}

/// Seconds one multipart upload of `total` bytes in `part`-byte parts takes, `inflight`
/// parts at a time.
async fn multipart(addr: SocketAddr, key: &str, total: usize, part: usize, inflight: usize) -> f64 {
    let started = Instant::now();
    let mut conn = Conn::open(addr).await;
    let a = conn.call("POST", key, "uploads", Bytes::new()).await;
    let upload_id = encode(&between_bytes(&a.head, "<UploadId>", "</UploadId>").expect("UploadId"));
    let parts = total.div_ceil(part);
    let next = Arc::new(AtomicU64::new(0));
    let body = Bytes::from(vec![b'm'; part]);
    let mut tasks = Vec::new();
    for _ in 0..inflight {
        let (next, body, key, upload_id) = (Arc::clone(&next), body.clone(), key.to_owned(), upload_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut etags = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= parts {
                    return etags;
                }
                let q = format!("partNumber={}&uploadId={upload_id}", n + 1);
                let a = conn.expect("PUT", &key, &q, body.clone(), Payload::Unsigned).await;
                etags.push((n + 1, a.etag.unwrap_or_else(|| "\"x\"".into())));
            }
        }));
    }
    let mut etags = Vec::new();
    for t in tasks {
        etags.extend(t.await.expect("part uploader"));
    }
    etags.sort();
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, etag) in etags {
        xml.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"));
    }
    xml.push_str("</CompleteMultipartUpload>");
    conn.call("POST", key, &format!("uploadId={upload_id}"), Bytes::from(xml)).await;
    started.elapsed().as_secs_f64()
}

/// MiB per second of MD5 on one core.
fn md5_speed(size: usize) -> f64 {
    use md5::Digest;
    let data = vec![b'x'; size];
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < 3 || started.elapsed() < Duration::from_millis(500) {
        std::hint::black_box(md5::Md5::digest(&data));
        rounds += 1;
    }
    (size * rounds) as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64()
}

struct Report {
    rows: Vec<(String, String, f64, f64)>,
}

impl Report {
    fn row(&mut self, name: &str, unit: &str, s3d: f64, bare: f64) {
        println!("{name:<40} {s3d:>12.1} {bare:>12.1} {unit:<6} {:>6.0}%", 100.0 * s3d / bare);
        self.rows.push((name.into(), unit.into(), s3d, bare));
    }
}

fn main() {
    let plan = Plan::new();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = s3d::app::start(rocks_config(dir.path())).await.expect("s3d");
        let bare = bare_hyper().await;
        let s3d = server.addr;
        let mut setup = Conn::open(s3d).await;
        setup.call("PUT", "/bench", "", Bytes::new()).await;
        let small = Bytes::from(vec![b's'; plan.small]);
        let large = Bytes::from(vec![b'l'; plan.large]);
        for k in 0..plan.get_keys {
            setup.call("PUT", &format!("/bench/small/{k}"), "", small.clone()).await;
        }
        setup.expect("PUT", "/bench/large", "", large.clone(), Payload::Unsigned).await;
        for k in 0..plan.list_keys {
            setup.call("PUT", &format!("/bench/list/{k:06}"), "", Bytes::new()).await;
        }
        let page = setup.call("GET", "/bench", "list-type=2&max-keys=1000&prefix=list%2F", Bytes::new()).await.len;

        let (secs, clients) = (plan.secs, plan.clients);
        let (small_len, large_len) = (plan.small as u64, plan.large as u64);
        let mib = |b: f64| b / (1 << 20) as f64;
        println!("load: s3d (RocksDB, fsync on) against a bare hyper server, same client, {secs} s per operation and server in {} turns", plan.rounds);
        println!("{:<40} {:>12} {:>12} {:<6} {:>7}", "operation", "s3d", "bare hyper", "unit", "share");
        let mut report = Report { rows: Vec::new() };
        let rounds = plan.rounds;
        // 64 MiB operations take a good part of a second each: in short slices, the wait for
        // the last ones (with fewer streams at work) would weigh too much.
        let long_rounds = rounds.min(2);
        let initiate = |addr, secs| {
            rate(addr, clients, secs, 0, |mut c: Conn, client, n| async move {
                c.call("POST", &format!("/bench/up/{client}-{n}"), "uploads", Bytes::new()).await;
                (c, 0)
            })
        };
        if wanted("initiate") {
            let ((a, _), (b, _)) = turns(s3d, bare, secs, rounds, initiate).await;
            report.row(&format!("CreateMultipartUpload, {clients} clients"), "ops/s", a, b);
        }

        let put_small = |addr, secs| {
            let body = small.clone();
            rate(addr, clients, secs, 0, move |mut c: Conn, client, n| {
                let body = body.clone();
                async move {
                    c.call("PUT", &format!("/bench/put/{client}-{n}"), "", body).await;
                    (c, small_len)
                }
            })
        };
        if wanted("put") {
            let ((a, _), (b, _)) = turns(s3d, bare, secs, rounds, put_small).await;
            report.row(&format!("PutObject {}, {clients} clients", human(plan.small)), "ops/s", a, b);
        }

        let keys = plan.get_keys;
        let get_small = |addr, secs| {
            rate(addr, clients, secs, small_len, move |mut c: Conn, client, n| async move {
                let a = c.call("GET", &format!("/bench/small/{}", (client * 7919 + n) % keys), "", Bytes::new()).await;
                (c, a.len)
            })
        };
        if wanted("get") {
            let ((a, _), (b, _)) = turns(s3d, bare, secs, rounds, get_small).await;
            report.row(&format!("GetObject {}, {clients} clients", human(plan.small)), "ops/s", a, b);
        }

        let put_large = |streams| {
            let large = large.clone();
            move |addr, secs| {
                let body = large.clone();
                rate(addr, streams, secs, 0, move |mut c: Conn, client, n| {
                    let body = body.clone();
                    async move {
                        c.expect("PUT", &format!("/bench/large-{client}-{}", n % 2), "", body, Payload::Unsigned).await;
                        (c, large_len)
                    }
                })
            }
        };
        let large_name = human(plan.large);
        if wanted("put-large") {
            let ((_, a), (_, b)) = turns(s3d, bare, secs, long_rounds, put_large(4)).await;
            report.row(&format!("PutObject {large_name}, 4 streams"), "MiB/s", mib(a), mib(b));
            let ((_, a), (_, b)) = turns(s3d, bare, secs, long_rounds, put_large(1)).await;
            report.row(&format!("PutObject {large_name}, 1 stream"), "MiB/s", mib(a), mib(b));
            let md5 = md5_speed(plan.large);
            report.row(&format!("PutObject {large_name}, 1 stream / MD5, 1 core"), "MiB/s", mib(a), md5);
        }

        let get_large = |addr, secs| {
            rate(addr, 4, secs, large_len, move |mut c: Conn, _, _| async move {
                let a = c.call("GET", "/bench/large", "", Bytes::new()).await;
                (c, a.len)
            })
        };
        if wanted("get-large") {
            let ((_, a), (_, b)) = turns(s3d, bare, secs, long_rounds, get_large).await;
            report.row(&format!("GetObject {large_name}, 4 streams"), "MiB/s", mib(a), mib(b));
        }

        let (total, part) = (plan.multipart, plan.part);
        if wanted("multipart") {
            // One upload is one measurement: the servers take turns upload by upload, and
            // each server's rate is its bytes over its time.
            let upload = |addr, _| async move {
                let took = multipart(addr, "/bench/multipart", total, part, 4).await;
                (total as f64 / took, 0.0)
            };
            let ((a, _), (b, _)) = turns(s3d, bare, 0.0, rounds.min(3), upload).await;
            let name = format!("multipart {}, {} parts, 4 in flight", human(total), human(part));
            report.row(&name, "MiB/s", mib(a), mib(b));
        }

        let pages = plan.list_keys.div_ceil(1000);
        let list = |addr, secs| {
            rate(addr, 4, secs, page, move |mut c: Conn, _, _| async move {
                let mut token: Option<String> = None;
                let mut moved = 0;
                for _ in 0..pages {
                    let q = match &token {
                        Some(t) => format!("continuation-token={}&list-type=2&max-keys=1000&prefix=list%2F", encode(t)),
                        None => "list-type=2&max-keys=1000&prefix=list%2F".to_owned(),
                    };
                    let a = c.call("GET", "/bench", &q, Bytes::new()).await;
                    moved += a.len;
                    token = between_bytes(&a.head, "<NextContinuationToken>", "</NextContinuationToken>");
                }
                (c, moved)
            })
        };
        if wanted("list") {
            let ((a, _), (b, _)) = turns(s3d, bare, secs, rounds, list).await;
            report.row(&format!("ListObjectsV2 of {} keys, 4 clients", plan.list_keys), "lists/s", a, b);
        }
        assert!(report.rows.iter().all(|(_, _, s, b)| *s > 0.0 && *b > 0.0), "every operation moved");
        server.stop().await;
    });
}

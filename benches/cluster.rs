//! One node on the embedded RocksDB against three nodes sharing PostgreSQL (and one blob
//! directory), measured in the same run: CreateMultipartUpload, 4 KiB PutObject, 4 KiB
//! GetObject and ListObjectsV2 (100 keys a page), each with the same number of concurrent
//! clients on keep-alive connections (spread round robin over the three nodes). Reports
//! operations per second and the ratio three-nodes / one-node. Both stores are durable
//! (fsync on; PostgreSQL with its default synchronous commit). All nodes and the database
//! share this machine, so the ratio shows the cost of a networked store rather than the
//! gain of more machines.
//!
//! `cargo bench --bench cluster` (S3D_BENCH_SECS per operation, default 5; S3D_BENCH_CLIENTS,
//! default 16). Built and run briefly by `cargo test --all-targets`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Conn, config, env_or, full_run};
use s3d::config::MetadataConfig;
use s3d::testing::TestPostgres;

const OBJECT: usize = 4096;

#[derive(Clone, Copy, Debug)]
enum Op {
    Initiate,
    Put,
    Get,
    List,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Initiate => "CreateMultipartUpload",
            Op::Put => "PutObject 4 KiB",
            Op::Get => "GetObject 4 KiB",
            Op::List => "ListObjectsV2 (100 keys)",
        }
    }
}

/// Operations per second of `op` by `clients` concurrent clients on `nodes` for `secs`.
async fn measure(nodes: &[SocketAddr], op: Op, clients: usize, secs: f64, keys: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let body = Bytes::from(vec![7u8; OBJECT]);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = nodes[c % nodes.len()];
        let (done, body) = (Arc::clone(&done), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut n = 0usize;
            while Instant::now() < deadline {
                match op {
                    Op::Initiate => conn.call("POST", &format!("/bench/up/{c}-{n}"), "uploads", Bytes::new()).await,
                    Op::Put => conn.call("PUT", &format!("/bench/put/{c}-{n}"), "", body.clone()).await,
                    Op::Get => {
                        conn.call("GET", &format!("/bench/obj/{}", (c * 7919 + n) % keys), "", Bytes::new()).await
                    }
                    Op::List => {
                        conn.call("GET", "/bench", "list-type=2&max-keys=100&prefix=obj%2F", Bytes::new()).await
                    }
                };
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let full = full_run();
    let secs = if full { env_or("S3D_BENCH_SECS", 5.0) } else { 0.3 };
    let clients = if full { env_or("S3D_BENCH_CLIENTS", 16.0) as usize } else { 2 };
    let keys = if full { 1000 } else { 20 };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let pg = TestPostgres::start_durable().expect("PostgreSQL (install the postgresql package)");
        let url = pg.database().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let single = s3d::app::start(config(
            &dir.path().join("single"),
            MetadataConfig::Rocks { dir: dir.path().join("single/meta") },
            dir.path().join("single/blobs"),
        ))
        .await
        .expect("single node");
        let mut cluster = Vec::new();
        for i in 0..3 {
            let metadata = MetadataConfig::Postgres { url: url.clone(), pool_size: 16 };
            let node = config(&dir.path().join(format!("n{i}")), metadata, dir.path().join("shared-blobs"));
            cluster.push(s3d::app::start(node).await.expect("cluster node"));
        }
        let single_addr = [single.addr];
        let cluster_addrs: Vec<SocketAddr> = cluster.iter().map(|r| r.addr).collect();
        for nodes in [&single_addr[..], &cluster_addrs[..]] {
            let mut conn = Conn::open(nodes[0]).await;
            conn.call("PUT", "/bench", "", Bytes::new()).await;
            for k in 0..keys {
                conn.call("PUT", &format!("/bench/obj/{k}"), "", Bytes::from(vec![1u8; OBJECT])).await;
            }
        }
        println!("{} clients, {secs} s per operation; fsync on for both stores", clients);
        println!("{:<26} {:>12} {:>16} {:>8}", "operation", "1 node ops/s", "3 nodes+pg ops/s", "ratio");
        for op in [Op::Initiate, Op::Put, Op::Get, Op::List] {
            let one = measure(&single_addr, op, clients, secs, keys).await;
            let three = measure(&cluster_addrs, op, clients, secs, keys).await;
            println!("{:<26} {:>12.0} {:>16.0} {:>8.2}", op.name(), one, three, three / one);
        }
        single.stop().await;
        for node in cluster {
            node.stop().await;
        }
        drop(pg);
    });
}

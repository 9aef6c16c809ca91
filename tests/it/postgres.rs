//! The PostgreSQL metadata store behind a running server: several nodes on one database,
//! the database going away and coming back, start-up without a database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use s3d::config::MetadataConfig;
use s3d::testing::TestPostgres;

use crate::common::*;

async fn put(server: &TestServer, key: &str, body: &[u8]) -> RawResponse {
    Raw::new("PUT", &server.host("bkt", Style::Path), &server.target("bkt", key, Style::Path))
        .body(body)
        .sign(ALICE)
        .send(server.addr)
        .await
}

async fn get(server: &TestServer, key: &str) -> RawResponse {
    Raw::new("GET", &server.host("bkt", Style::Path), &server.target("bkt", key, Style::Path))
        .sign(ALICE)
        .send(server.addr)
        .await
}

async fn health(server: &TestServer) -> u16 {
    send_bytes(server.addr, b"GET /-/health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n", false)
        .await
        .status
}

/// While the database is down every request is a prompt 503 `ServiceUnavailable` with
/// `Retry-After`, and the health check says so; once it is back the same server serves
/// again, with everything acknowledged before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_answers_503_until_it_returns() {
    let pg = Arc::new(TestPostgres::start().expect("own PostgreSQL server"));
    let url = pg.database().await;
    let server = TestServer::start_configured(|c| c.metadata = MetadataConfig::Postgres { url, pool_size: 4 }).await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    assert_eq!(put(&server, "before", b"kept").await.status, 200);
    assert_eq!(health(&server).await, 200);

    let paused = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || paused.pause()).await.expect("pause");
    for resp in [put(&server, "during", b"lost").await, get(&server, "before").await] {
        resp.assert_error(503, "ServiceUnavailable");
        assert_eq!(resp.header("retry-after"), Some("2"));
        assert!(!resp.text().contains("postgres"), "internal details stay in the logs: {}", resp.text());
    }
    assert_eq!(health(&server).await, 503);

    let resumed = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || resumed.resume()).await.expect("join").expect("resume");
    // The pool reconnects by itself: no restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    while put(&server, "after", b"back").await.status != 200 {
        assert!(Instant::now() < deadline, "the server did not recover within 30 s of the database");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(health(&server).await, 200);
    assert_eq!(get(&server, "before").await.body, b"kept");
    assert_eq!(get(&server, "after").await.body, b"back");
    get(&server, "during").await.assert_error(404, "NoSuchKey");
    server.stop().await;
}

/// A database that cannot be reached fails start-up, naming the setting.
#[tokio::test]
async fn start_up_without_a_database_names_the_setting() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path().to_path_buf());
    config.metadata =
        MetadataConfig::Postgres { url: format!("postgres://s3d:secret@127.0.0.1:{closed}/s3d"), pool_size: 2 };
    let err = s3d::app::start(config).await.err().expect("no database, no start").to_string();
    assert!(err.contains("metadata.url"), "{err}");
    assert!(!err.contains("secret"), "the password is never printed: {err}");
}

/// Two servers on one database and one blob directory are one store: a bucket, an object
/// and a multipart upload started on one are seen and finished on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_store() {
    let metadata = postgres_metadata().await;
    let blobs = tempfile::tempdir().expect("blob dir");
    let node = |m: MetadataConfig, b: std::path::PathBuf| {
        move |c: &mut s3d::config::Config| {
            c.metadata = m;
            c.blob_dir = b;
        }
    };
    let a = TestServer::start_configured(node(metadata.clone(), blobs.path().to_path_buf())).await;
    let b = TestServer::start_configured(node(metadata, blobs.path().to_path_buf())).await;
    let (sa, sb) = (a.client(ALICE, Style::Path), b.client(ALICE, Style::VirtualHost));
    sa.create_bucket().bucket("shared").send().await.expect("bucket on a");
    let err = b.client(BOB, Style::Path).create_bucket().bucket("shared").send().await.expect_err("taken, seen on b");
    assert_eq!(sdk_code(&err).as_deref(), Some("BucketAlreadyExists"));
    sa.put_object().bucket("shared").key("k").body(ByteStream::from_static(b"from a")).send().await.expect("put");
    let got = sb.get_object().bucket("shared").key("k").send().await.expect("get on b");
    assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), b"from a");

    let id = sa.create_multipart_upload().bucket("shared").key("mp").send().await.expect("create");
    let id = id.upload_id().expect("id").to_owned();
    let p1 = vec![1u8; 5 * 1024 * 1024];
    let e1 = sa
        .upload_part()
        .bucket("shared")
        .key("mp")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(p1.clone()))
        .send()
        .await
        .expect("part 1 on a");
    let e2 = sb
        .upload_part()
        .bucket("shared")
        .key("mp")
        .upload_id(&id)
        .part_number(2)
        .body(ByteStream::from_static(b"tail"))
        .send()
        .await
        .expect("part 2 on b");
    let parts = [(1, e1.e_tag().expect("etag")), (2, e2.e_tag().expect("etag"))]
        .map(|(n, e)| aws_sdk_s3::types::CompletedPart::builder().part_number(n).e_tag(e).build());
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts.to_vec())).build();
    sb.complete_multipart_upload()
        .bucket("shared")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .expect("complete on b");
    let whole = sa.get_object().bucket("shared").key("mp").send().await.expect("get on a");
    let bytes = whole.body.collect().await.expect("body").into_bytes();
    assert_eq!(bytes.len(), p1.len() + 4);
    assert_eq!(&bytes[p1.len()..], b"tail");
    let listed = sb.list_objects_v2().bucket("shared").send().await.expect("list on b");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["k", "mp"]);
    a.stop().await;
    b.stop().await;
}

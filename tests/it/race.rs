//! Races and housekeeping: a reader always gets the whole version it started on, a Complete
//! never commits a superseded part, and nothing unreferenced outlives the grace period.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const MIB: usize = 1024 * 1024;

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Waits until `f` holds, failing after 10 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Complete once built its manifest from a snapshot; a re-upload of the same part then
/// committed and deleted the old blob, and Complete committed an object pointing at it: the
/// client got 200 and every later GET a 500.
#[tokio::test]
async fn complete_racing_a_part_reupload_never_commits_a_superseded_part() {
    let server = TestServer::start_configured(fast_gc).await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    let mut completed = Vec::new();
    for round in 0..30u8 {
        let key = format!("race-{round}");
        let id = s3.create_multipart_upload().bucket("bkt").key(&key).send().await.expect("create");
        let id = id.upload_id().expect("id").to_owned();
        let first = data(64 * 1024, round);
        let part = |body: Vec<u8>| {
            s3.upload_part().bucket("bkt").key(&key).upload_id(&id).part_number(1).body(ByteStream::from(body)).send()
        };
        let etag = part(first.clone()).await.expect("part").e_tag().expect("etag").to_owned();
        let complete = s3
            .complete_multipart_upload()
            .bucket("bkt")
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(&etag).build())
                    .build(),
            )
            .send();
        let reupload = part(data(64 * 1024, round.wrapping_add(100)));
        let (done, _) = tokio::join!(complete, reupload);
        match done {
            Ok(_) => completed.push((key, first)),
            Err(e) => assert_eq!(sdk_code(&e).as_deref(), Some("InvalidPart"), "round {round}: {e:?}"),
        }
    }
    // Past the grace period, with the collector running: anything superseded is gone now.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for (key, bytes) in completed {
        let got = s3.get_object().bucket("bkt").key(&key).send().await.expect("a completed object reads back");
        assert_eq!(got.body.collect().await.expect("body").into_bytes(), bytes, "{key}");
    }
    server.stop().await;
}

/// A GET of a 15 MiB three-part object racing an overwrite and a delete once stopped after
/// 5 MiB with a 200 status: later parts were deleted before the reader reached them.
#[tokio::test]
async fn a_get_racing_overwrite_and_delete_reads_the_whole_version() {
    let server = TestServer::start_configured(fast_gc).await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    let parts: Vec<Vec<u8>> = (0..3).map(|i| data(5 * MIB, i)).collect();
    let id = s3.create_multipart_upload().bucket("bkt").key("big").send().await.expect("create");
    let id = id.upload_id().expect("id").to_owned();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket("bkt")
            .key("big")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .expect("part");
        done.push(CompletedPart::builder().part_number(n).e_tag(out.e_tag().expect("etag")).build());
    }
    s3.complete_multipart_upload()
        .bucket("bkt")
        .key("big")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .expect("complete");

    // A reader with a small receive window, so the server cannot run ahead into later parts.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 * 1024).expect("rcvbuf");
    let mut s = socket.connect(server.addr).await.expect("connect");
    let raw = Raw::new("GET", &server.host("bkt", Style::Path), "/bkt/big").header("connection", "close").sign(ALICE);
    let head = raw.head();
    s.write_all(head.as_bytes()).await.expect("request");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < MIB {
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let header_end = got.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got[..header_end]));

    s3.put_object().bucket("bkt").key("big").body(ByteStream::from_static(b"replacement")).send().await.expect("put");
    s3.delete_object().bucket("bkt").key("big").send().await.expect("delete");
    // Well past the grace period, with the collector running every 100 ms.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let rest = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match s.read(&mut buf).await.expect("read") {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(rest.is_ok(), "the body did not finish");
    let body = &got[header_end..];
    assert_eq!(body.len(), 15 * MIB, "the whole version");
    assert!(body == parts.concat().as_slice(), "the bytes of the version the GET started on");
    // Once nobody reads them, every blob of both versions goes.
    eventually("all blobs reclaimed", || blob_count(&server) == 0).await;
    server.stop().await;
}

/// The hourly orphan sweep was never started, a stray file in the blob directory stopped
/// start-up, and remembered Complete results were kept forever.
#[tokio::test]
async fn housekeeping_runs_in_the_background_and_tolerates_strays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = dir.path().join("blobs");
    std::fs::create_dir_all(blobs.join("ab").join("cd")).expect("dirs");
    std::fs::create_dir_all(blobs.join("tmp")).expect("tmp");
    std::fs::write(blobs.join("stray.txt"), b"not a blob").expect("stray");
    std::fs::write(blobs.join("ab").join("notes"), b"not a blob").expect("stray");
    let orphan = blobs.join("ab").join("cd").join("abcd0000000000000000000000000000");
    std::fs::write(&orphan, b"left by a crash").expect("orphan");
    let stale_tmp = blobs.join("tmp").join("0123456789abcdef0123456789abcdef");
    std::fs::write(&stale_tmp, b"half written").expect("tmp");

    let mut config = test_config(dir.path().to_path_buf());
    fast_gc(&mut config);
    config.gc.completed_retention = Duration::from_millis(500);
    let server = TestServer::start_with(config, dir).await;
    eventually("the orphan is swept", || !orphan.exists()).await;
    eventually("the abandoned temporary file is swept", || !stale_tmp.exists()).await;
    assert!(blobs.join("stray.txt").exists(), "files that are not blobs are left alone");

    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    let id = s3.create_multipart_upload().bucket("bkt").key("k").send().await.expect("create");
    let id = id.upload_id().expect("id").to_owned();
    let etag = s3
        .upload_part()
        .bucket("bkt")
        .key("k")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("part")
        .e_tag()
        .expect("etag")
        .to_owned();
    let complete = || {
        s3.complete_multipart_upload()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(&etag).build())
                    .build(),
            )
            .send()
    };
    let first = complete().await.expect("complete");
    let retried = complete().await.expect("a retry answers the same");
    assert_eq!(first.e_tag(), retried.e_tag());
    let expected = format!("\"{}-1\"", hex::encode(Md5::digest(Md5::digest(b"x"))));
    assert_eq!(first.e_tag(), Some(expected.as_str()));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let err = complete().await.expect_err("forgotten after the retention period");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchUpload"));
    server.stop().await;
}

//! Connections are bounded: every wait a client controls has a timer, and the number of open
//! connections has a cap. Each case once held a task, a socket or a temporary file forever.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

fn short_timeouts(c: &mut s3d::config::Config) {
    c.limits.head_timeout = Duration::from_secs(1);
    c.limits.keep_alive_idle = Duration::from_secs(1);
    c.limits.body_idle = Duration::from_secs(1);
    c.limits.response_idle = Duration::from_secs(1);
}

/// Reads until the server closes the connection (or errors it), returning what arrived and
/// how long it took; fails the test if that takes more than `within`.
async fn until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let fut = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, fut).await.expect("the server closed the connection in time");
    (got, start.elapsed())
}

/// A connection that sends nothing, or only part of an HTTP/2 preface, was held forever.
#[tokio::test]
async fn silent_and_half_preface_connections_are_closed() {
    let server = TestServer::start_configured(short_timeouts).await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let (got, took) = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(got.is_empty() && took >= Duration::from_millis(900), "{took:?}");

    let mut preface = TcpStream::connect(server.addr).await.expect("connect");
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    until_closed(&mut preface, Duration::from_secs(5)).await;

    // A request head trickled a byte at a time is cut off by the head timeout.
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    let start = Instant::now();
    for b in b"GET /-/health HTTP/1.1\r\nhost: x\r\n" {
        if slow.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if start.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let (got, _) = until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(start.elapsed() < Duration::from_secs(4), "the head was not cut off: {:?}", start.elapsed());
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
    server.stop().await;
}

#[tokio::test]
async fn kept_alive_connections_close_when_idle() {
    let server = TestServer::start_configured(short_timeouts).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"GET /-/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await.expect("write");
    let resp = read_response(&mut s, false).await;
    assert_eq!(resp.status, 200);
    // Within the idle time the connection serves another request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.write_all(b"GET /-/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await.expect("write");
    assert_eq!(read_response(&mut s, false).await.status, 200);
    let (got, took) = until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(got.is_empty() && took >= Duration::from_millis(900), "{took:?}");
    server.stop().await;
}

/// A body trickling to a stop once held a task and a temporary file indefinitely.
#[tokio::test]
async fn a_stalled_body_gets_request_timeout_and_leaves_nothing() {
    let server = TestServer::start_configured(short_timeouts).await;
    server.client(ALICE, Style::Path).create_bucket().bucket("bkt").send().await.expect("bucket");
    let host = server.host("bkt", Style::Path);
    let raw = Raw::new("PUT", &host, "/bkt/stalled")
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header("content-length", "1000")
        .sign(ALICE);
    let head = raw.head();
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(&[b'x'; 100]).await.expect("some body");
    let start = Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(10), read_response(&mut s, false)).await.expect("answered");
    resp.assert_error(400, "RequestTimeout");
    assert!(resp.text().contains("not read from or written to within the timeout period"));
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(start.elapsed() >= Duration::from_millis(900));
    let tmp = walk(&server.dir.path().join("blobs").join("tmp"));
    assert!(tmp.is_empty(), "{tmp:?}");
    assert_eq!(blob_count(&server), 0);
    server.stop().await;
}

/// At the cap, the connection idle the longest makes room (sockets that send nothing cannot
/// lock everyone out); when every connection is busy, accepting pauses until one frees.
#[tokio::test]
async fn at_the_cap_idle_connections_make_room_and_busy_ones_pause_accepting() {
    let server = TestServer::start_configured(|c| {
        c.limits.max_connections = 2;
        c.limits.head_timeout = Duration::from_secs(30);
        c.limits.keep_alive_idle = Duration::from_secs(30);
        c.limits.body_idle = Duration::from_secs(30);
    })
    .await;
    server.client(ALICE, Style::Path).create_bucket().bucket("bkt").send().await.expect("bucket");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = b"GET /-/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";

    // Two silent sockets fill the table; a third client is served at once, in place of the
    // one idle the longest.
    let mut idle1 = TcpStream::connect(server.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _idle2 = TcpStream::connect(server.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    third.write_all(health).await.expect("write");
    let resp = tokio::time::timeout(Duration::from_secs(5), read_response(&mut third, false)).await.expect("served");
    assert_eq!(resp.status, 200);
    let (got, _) = until_closed(&mut idle1, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "the longest-idle connection was closed to make room");
    drop(third);

    // Two uploads in progress (bodies half sent) fill the table: nobody is evicted, the next
    // client waits until an upload ends.
    let host = server.host("bkt", Style::Path);
    let mut uploads = Vec::new();
    for key in ["a", "b"] {
        let raw = Raw::new("PUT", &host, &format!("/bkt/{key}"))
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header("content-length", "10")
            .sign(ALICE);
        let head = raw.head();
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        s.write_all(head.as_bytes()).await.expect("head");
        s.write_all(b"12345").await.expect("half the body");
        uploads.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut waiting = TcpStream::connect(server.addr).await.expect("the kernel queues it");
    waiting.write_all(health).await.expect("write");
    let early = tokio::time::timeout(Duration::from_millis(800), read_response(&mut waiting, false)).await;
    assert!(early.is_err(), "served beyond the cap while every connection was busy");
    let mut first = uploads.remove(0);
    first.write_all(b"67890").await.expect("rest of the body");
    assert_eq!(read_response(&mut first, false).await.status, 200);
    let resp = tokio::time::timeout(Duration::from_secs(5), read_response(&mut waiting, false)).await.expect("served");
    assert_eq!(resp.status, 200);
    server.stop().await;
}

/// A client that stops reading a response is disconnected instead of pinning the server.
#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let server = TestServer::start_configured(short_timeouts).await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    let size = 48 * 1024 * 1024;
    s3.put_object().bucket("bkt").key("big").body(ByteStream::from(vec![7u8; size])).send().await.expect("put");
    let host = server.host("bkt", Style::Path);
    let raw = Raw::new("GET", &host, "/bkt/big").sign(ALICE);
    let head = raw.head();
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("head");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (got, _) = until_closed(&mut s, Duration::from_secs(20)).await;
    assert!(got.len() < size, "the whole object was sent to a client that did not read");
    // The server is fine.
    let again = s3.get_object().bucket("bkt").key("big").send().await.expect("get");
    assert_eq!(again.body.collect().await.expect("body").into_bytes().len(), size);
    server.stop().await;
}

use tokio::io::AsyncWriteExt;

use crate::common::*;

async fn server_with_bucket() -> TestServer {
    let server = TestServer::start().await;
    server.client(ALICE, Style::Path).create_bucket().bucket("bkt").send().await.expect("bucket");
    server
}

#[tokio::test]
async fn oversized_headers_get_an_answer() {
    let server = server_with_bucket().await;
    let host = server.host("bkt", Style::Path);
    let resp = Raw::new("POST", &host, "/bkt/k?uploads")
        .header("x-custom-filler", &"f".repeat(16 * 1024))
        .sign(ALICE)
        .send(server.addr)
        .await;
    resp.assert_error(400, "RequestHeaderSectionTooLarge");

    // Far beyond any limit: the connection is answered (431) rather than left hanging.
    let huge = format!("GET /bkt HTTP/1.1\r\nhost: {host}\r\nx-filler: {}\r\n\r\n", "h".repeat(200 * 1024));
    let resp = send_bytes(server.addr, huge.as_bytes(), false).await;
    assert_eq!(resp.status, 431);
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_key_is_invalid_uri() {
    let server = server_with_bucket().await;
    let resp =
        Raw::new("POST", &server.host("bkt", Style::Path), "/bkt/%FF%FE?uploads").sign(ALICE).send(server.addr).await;
    resp.assert_error(400, "InvalidURI");
    server.stop().await;
}

#[tokio::test]
async fn head_errors_have_no_body_and_other_methods_are_refused() {
    let server = server_with_bucket().await;
    let resp = Raw::new("HEAD", &server.host("", Style::Path), "/missing-bucket").sign(ALICE).send(server.addr).await;
    assert_eq!(resp.status, 404);
    assert!(resp.body.is_empty());
    let resp = Raw::new("PATCH", &server.host("", Style::Path), "/bkt/k").sign(ALICE).send(server.addr).await;
    resp.assert_error(405, "MethodNotAllowed");
    server.stop().await;
}

#[tokio::test]
async fn every_response_carries_the_common_headers() {
    let server = server_with_bucket().await;
    let ok = Raw::new("GET", &server.host("bkt", Style::Path), "/bkt?uploads").sign(ALICE).send(server.addr).await;
    let err = Raw::new("GET", &server.host("", Style::Path), "/nobucket?uploads").sign(ALICE).send(server.addr).await;
    err.assert_error(404, "NoSuchBucket");
    assert!(err.text().contains("<Resource>/nobucket</Resource>"), "{}", err.text());
    for r in [&ok, &err] {
        assert_eq!(r.header("server"), Some("s3d"));
        assert!(r.header("x-amz-id-2").is_some_and(|v| !v.is_empty()));
        let date = r.header("date").expect("date");
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
    }
    assert_ne!(ok.header("x-amz-request-id"), err.header("x-amz-request-id"));
    assert_eq!(xml_value(&err.text(), "RequestId").as_deref(), err.header("x-amz-request-id"));
    server.stop().await;
}

#[tokio::test]
async fn connections_are_kept_alive() {
    let server = server_with_bucket().await;
    let mut s = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    for _ in 0..3 {
        let raw = Raw::new("GET", &server.host("bkt", Style::Path), "/bkt?uploads").sign(ALICE);
        let mut head = format!("GET {} HTTP/1.1\r\nhost: {}\r\n", raw.target, raw.host);
        for (k, v) in &raw.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.expect("write");
        let resp = read_response(&mut s, false).await;
        assert_eq!(resp.status, 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn garbage_is_answered_not_hung() {
    let server = TestServer::start().await;
    for junk in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET /\x01\x02 HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
    ] {
        let resp = send_bytes(server.addr, junk, false).await;
        assert_eq!(resp.status, 400, "{:?}", String::from_utf8_lossy(junk));
    }
    server.stop().await;
}

/// botocore sends empty uploads with `Expect: 100-continue`; the server never reads the
/// (empty) body, so it ends the connection after answering rather than leaving botocore to
/// misparse its next response on that connection (the next request then hung for 60 s).
#[tokio::test]
async fn empty_body_with_expect_continue_ends_the_connection() {
    use tokio::io::AsyncReadExt;
    let server = server_with_bucket().await;
    let raw =
        Raw::new("PUT", &server.host("bkt", Style::Path), "/bkt/empty").header("expect", "100-continue").sign(ALICE);
    let mut head = format!("PUT {} HTTP/1.1\r\nhost: {}\r\ncontent-length: 0\r\n", raw.target, raw.host);
    for (k, v) in &raw.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut s = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write");
    let resp = read_response(&mut s, false).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("connection"), Some("close"));
    let mut rest = Vec::new();
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("closed")
        .expect("read");
    assert_eq!(n, 0, "no 100 Continue or other bytes: {:?}", String::from_utf8_lossy(&rest));
    server.stop().await;
}

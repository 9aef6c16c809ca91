//! Hostile input, each case a reproduction of a way s3d was once broken: side doors in
//! authentication, inputs that panicked or wrapped, and unbounded request bodies.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;

use crate::common::*;

async fn server_with_object(key: &str, body: &[u8]) -> TestServer {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    s3.create_bucket().bucket("other-bucket").send().await.expect("bucket");
    s3.put_object().bucket("other-bucket").key(key).body(ByteStream::from(body.to_vec())).send().await.expect("put");
    server
}

/// A presigned PUT URL once became a CopyObject when its holder added `x-amz-copy-source`.
#[tokio::test]
async fn presigned_put_refuses_unsigned_copy_source_and_metadata() {
    let server = server_with_object("secret", b"top secret").await;
    let host = server.host("bkt", Style::Path);
    let url = Raw::new("PUT", &host, "/bkt/stolen").presign(ALICE, SystemTime::now(), Duration::from_secs(60));

    let resp = url.clone().header("x-amz-copy-source", "/other-bucket/secret").send(server.addr).await;
    resp.assert_error(403, "AccessDenied");
    assert!(resp.text().contains("<Message>There were headers present in the request which were not signed</Message>"));
    assert!(resp.text().contains("<HeadersNotSigned>x-amz-copy-source</HeadersNotSigned>"), "{}", resp.text());

    let resp = url
        .clone()
        .header("x-amz-meta-owner", "mallory")
        .header("x-amz-storage-class", "REDUCED_REDUNDANCY")
        .body(b"data")
        .send(server.addr)
        .await;
    resp.assert_error(403, "AccessDenied");
    assert!(
        resp.text().contains("<HeadersNotSigned>x-amz-meta-owner, x-amz-storage-class</HeadersNotSigned>"),
        "{}",
        resp.text()
    );

    let s3 = server.client(ALICE, Style::Path);
    let err = s3.head_object().bucket("bkt").key("stolen").send().await.expect_err("nothing was written");
    assert_eq!(sdk_status(&err), Some(404));

    // The URL itself still works for what it was signed for.
    let ok = url.body(b"data").send(server.addr).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    server.stop().await;
}

/// Header signatures whose SignedHeaders leave out an `x-amz-*` header are refused too.
#[tokio::test]
async fn header_signature_refuses_unsigned_amz_headers() {
    let server = server_with_object("secret", b"top secret").await;
    let host = server.host("bkt", Style::Path);
    let mut req = Raw::new("PUT", &host, "/bkt/k").body(b"data").sign(ALICE);
    req.headers.push(("x-amz-meta-sneaky".into(), "1".into()));
    req.headers.push(("X-Amz-Tagging".into(), "a=b".into()));
    let resp = req.send(server.addr).await;
    resp.assert_error(403, "AccessDenied");
    assert!(resp.text().contains("<HeadersNotSigned>x-amz-meta-sneaky, x-amz-tagging</HeadersNotSigned>"));
    // Signed, the same headers are fine.
    let resp = Raw::new("PUT", &host, "/bkt/k")
        .header("x-amz-meta-sneaky", "1")
        .body(b"data")
        .sign(ALICE)
        .send(server.addr)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    server.stop().await;
}

/// `x-amz-date: 19691231T000000Z` once panicked a worker in the date formatter (no response).
#[tokio::test]
async fn request_dates_before_1970_get_an_answer() {
    let server = TestServer::start().await;
    let host = server.host("bkt", Style::Path);
    for (date, code, status) in [
        ("19691231T000000Z", "RequestTimeTooSkewed", 403),
        ("17000101T000000Z", "RequestTimeTooSkewed", 403),
        ("00010101T000000Z", "RequestTimeTooSkewed", 403),
        ("99991231T235959Z", "RequestTimeTooSkewed", 403),
        ("+2013052T000000Z", "AccessDenied", 403),
    ] {
        let resp = Raw::new("GET", &host, "/bkt")
            .header("x-amz-date", date)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header(
                "authorization",
                &format!(
                    "AWS4-HMAC-SHA256 Credential={}/{}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                    ALICE.access_key,
                    &date[..8]
                ),
            )
            .send(server.addr)
            .await;
        resp.assert_error(status, code);
        if code == "RequestTimeTooSkewed" {
            // As AWS: the request time echoed as sent, the server time to the second.
            assert!(resp.text().contains(&format!("<RequestTime>{date}</RequestTime>")), "{}", resp.text());
            assert!(resp.text().contains("<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"));
            let server_time = xml_value(&resp.text(), "ServerTime").expect("ServerTime");
            assert!(server_time.len() == 20 && server_time.ends_with('Z'), "{server_time}");
        }
    }
    // Presigned dates at the ends of the range, and the longest expiry.
    for date in ["19691231T000000Z", "00010101T000000Z", "99991231T235959Z"] {
        let target = format!(
            "/bkt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}%2F{}%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date={date}&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
            ALICE.access_key,
            &date[..8]
        );
        let resp = Raw::new("GET", &host, &target).send(server.addr).await;
        assert!(resp.status == 403 || resp.status == 400, "{date}: {}", resp.text());
    }
    server.stop().await;
}

/// A range ending past 2^64 - 1 once answered `bytes 5-18446744073709551615/10` and no body.
#[tokio::test]
async fn huge_range_ends_are_clamped() {
    let server = server_with_object("ten", b"0123456789").await;
    let host = server.host("other-bucket", Style::Path);
    for end in ["18446744073709551615", "18446744073709551616", "99999999999999999999999999999"] {
        let resp = Raw::new("GET", &host, "/other-bucket/ten")
            .header("range", &format!("bytes=5-{end}"))
            .sign(ALICE)
            .send(server.addr)
            .await;
        assert_eq!(resp.status, 206, "{}", resp.text());
        assert_eq!(resp.header("content-range"), Some("bytes 5-9/10"));
        assert_eq!(resp.body, b"56789");
    }
    // An empty object: a tail read gets the (empty) object, as AWS accepts it; a range from
    // a position is unsatisfiable.
    let s3 = server.client(ALICE, Style::Path);
    s3.put_object().bucket("other-bucket").key("empty").body(ByteStream::from_static(b"")).send().await.expect("put");
    let tail =
        Raw::new("GET", &host, "/other-bucket/empty").header("range", "bytes=-1").sign(ALICE).send(server.addr).await;
    assert_eq!((tail.status, tail.header("content-length")), (200, Some("0")), "{}", tail.text());
    Raw::new("GET", &host, "/other-bucket/empty")
        .header("range", "bytes=0-")
        .sign(ALICE)
        .send(server.addr)
        .await
        .assert_error(416, "InvalidRange");
    server.stop().await;
}

/// Chunk sizes near 2^64 once wrapped the decoded-length check (release) or panicked (debug).
#[tokio::test]
async fn overflowing_chunk_sizes_are_refused() {
    let server = server_with_object("x", b"x").await;
    let host = server.host("bkt", Style::Path);
    for size in ["ffffffffffffffff", "fffffffffffffffff", "8000000000000000"] {
        let body = format!("1\r\na\r\n{size}\r\nbbbb\r\n0\r\n\r\n");
        let req = Raw::new("PUT", &host, "/bkt/chunked")
            .header("content-encoding", "aws-chunked")
            .header("x-amz-decoded-content-length", "5")
            .body(body.as_bytes());
        let resp = streaming_unsigned(req).send(server.addr).await;
        resp.assert_error(400, "IncompleteBody");
    }
    server.stop().await;
}

/// 4 MiB of `<Part></Part>` once deserialised into ~300,000 entries before any limit applied.
#[tokio::test]
async fn complete_bodies_are_bounded_by_element_count() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    let up = s3.create_multipart_upload().bucket("bkt").key("k").send().await.expect("create");
    let id = up.upload_id().expect("id");
    let host = server.host("bkt", Style::Path);
    let body = format!("<CompleteMultipartUpload>{}</CompleteMultipartUpload>", "<Part></Part>".repeat(300_000));
    let resp = Raw::new("POST", &host, &format!("/bkt/k?uploadId={id}"))
        .body(body.as_bytes())
        .sign(ALICE)
        .send(server.addr)
        .await;
    resp.assert_error(400, "MalformedXML");
    let parts: String =
        (1..=10_001).map(|n| format!("<Part><PartNumber>{n}</PartNumber><ETag>\"00\"</ETag></Part>")).collect();
    let body = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
    let resp = Raw::new("POST", &host, &format!("/bkt/k?uploadId={id}"))
        .body(body.as_bytes())
        .sign(ALICE)
        .send(server.addr)
        .await;
    resp.assert_error(400, "MalformedXML");
    // The upload is untouched.
    s3.list_parts().bucket("bkt").key("k").upload_id(id).send().await.expect("upload still there");

    let objects: String = (0..1001).map(|n| format!("<Object><Key>k{n}</Key></Object>")).collect();
    let body = format!("<Delete>{objects}</Delete>");
    let md5 = {
        use base64::Engine;
        use md5::Digest;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()))
    };
    let resp = Raw::new("POST", &host, "/bkt?delete")
        .header("content-md5", &md5)
        .body(body.as_bytes())
        .sign(ALICE)
        .send(server.addr)
        .await;
    resp.assert_error(400, "MalformedXML");
    server.stop().await;
}

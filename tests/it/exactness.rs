//! Small differences from AWS that clients notice, each pinned by a test.

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use sha2::Digest;

use crate::common::*;

async fn bucket(server: &TestServer) -> aws_sdk_s3::Client {
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    s3
}

/// `max-keys=0` lists nothing, and is not truncated.
#[tokio::test]
async fn max_keys_zero_lists_nothing_untruncated() {
    let server = TestServer::start().await;
    let s3 = bucket(&server).await;
    s3.put_object().bucket("bkt").key("a").body(ByteStream::from_static(b"x")).send().await.expect("put");
    let v2 = s3.list_objects_v2().bucket("bkt").max_keys(0).send().await.expect("list");
    assert_eq!((v2.key_count(), v2.is_truncated()), (Some(0), Some(false)));
    let v1 = s3.list_objects().bucket("bkt").max_keys(0).send().await.expect("list");
    assert_eq!((v1.contents().len(), v1.is_truncated()), (0, Some(false)));
    server.stop().await;
}

/// Bucket names with `.-` or `-.` are invalid, as on AWS.
#[tokio::test]
async fn bucket_names_with_dot_dash_are_invalid() {
    let server = TestServer::start().await;
    for name in ["my.-bucket", "my-.bucket"] {
        let resp =
            Raw::new("PUT", &server.host("", Style::Path), &format!("/{name}")).sign(ALICE).send(server.addr).await;
        resp.assert_error(400, "InvalidBucketName");
    }
    server.stop().await;
}

/// `x-amz-copy-source-range` past the source's end is AWS's `InvalidArgument` naming the size
/// (not the `InvalidRange` 416 of a GET).
#[tokio::test]
async fn copy_source_ranges_past_the_end_are_invalid_arguments() {
    let server = TestServer::start().await;
    let s3 = bucket(&server).await;
    s3.put_object().bucket("bkt").key("src").body(ByteStream::from_static(b"0123456789")).send().await.expect("put");
    let up = s3.create_multipart_upload().bucket("bkt").key("dst").send().await.expect("create");
    let err = s3
        .upload_part_copy()
        .bucket("bkt")
        .key("dst")
        .upload_id(up.upload_id().expect("id"))
        .part_number(1)
        .copy_source("bkt/src")
        .copy_source_range("bytes=5-100")
        .send()
        .await
        .expect_err("past the end");
    assert_eq!((sdk_code(&err).as_deref(), sdk_status(&err)), (Some("InvalidArgument"), Some(400)));
    let message = err.as_service_error().and_then(|e| e.meta().message()).unwrap_or_default().to_owned();
    assert_eq!(message, "Range specified is not valid for source object of size: 10");
    server.stop().await;
}

/// A wrong SHA256 or CRC64NVME checksum is `BadDigest`; the object is not stored.
#[tokio::test]
async fn wrong_checksums_are_bad_digests() {
    let server = TestServer::start().await;
    let s3 = bucket(&server).await;
    let host = server.host("bkt", Style::Path);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let wrong_sha = b64(&sha2::Sha256::digest(b"other"));
    for (header, value) in [("x-amz-checksum-sha256", wrong_sha.as_str()), ("x-amz-checksum-crc64nvme", "AAAAAAAAAAA=")]
    {
        let resp =
            Raw::new("PUT", &host, "/bkt/k").header(header, value).body(b"hello").sign(ALICE).send(server.addr).await;
        resp.assert_error(400, "BadDigest");
    }
    let err = s3.head_object().bucket("bkt").key("k").send().await.expect_err("not stored");
    assert_eq!(sdk_status(&err), Some(404));
    server.stop().await;
}

/// A multipart upload created with SHA256 refuses a Complete whose part checksums differ.
#[tokio::test]
async fn complete_checks_echoed_sha256_part_checksums() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
    let server = TestServer::start().await;
    let s3 = bucket(&server).await;
    let up = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id");
    let part = s3
        .upload_part()
        .bucket("bkt")
        .key("k")
        .upload_id(id)
        .part_number(1)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .expect("part");
    let right = part.checksum_sha256().expect("sha256").to_owned();
    let wrong = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b"not the part"));
    let complete = |sha: String| {
        s3.complete_multipart_upload()
            .bucket("bkt")
            .key("k")
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag(part.e_tag().expect("etag"))
                            .checksum_sha256(sha)
                            .build(),
                    )
                    .build(),
            )
            .send()
    };
    let err = complete(wrong).await.expect_err("mismatch");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidPart"));
    let done = complete(right).await.expect("complete");
    assert!(done.checksum_sha256().is_some_and(|c| c.ends_with("-1")));
    server.stop().await;
}

/// An expired presigned PUT is refused before anything is stored.
#[tokio::test]
async fn expired_presigned_puts_are_access_denied() {
    let server = TestServer::start().await;
    let s3 = bucket(&server).await;
    let url = Raw::new("PUT", &server.host("bkt", Style::Path), "/bkt/late").presign(
        ALICE,
        std::time::SystemTime::now() - std::time::Duration::from_secs(3600),
        std::time::Duration::from_secs(60),
    );
    let resp = url.body(b"data").send(server.addr).await;
    resp.assert_error(403, "AccessDenied");
    assert!(resp.text().contains("Request has expired"));
    assert_eq!(sdk_status(&s3.head_object().bucket("bkt").key("late").send().await.expect_err("absent")), Some(404));
    server.stop().await;
}

/// ListBuckets pages with max-buckets and continuation tokens, as AWS.
#[tokio::test]
async fn list_buckets_pages() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    for name in ["bucket-a", "bucket-b", "bucket-c"] {
        s3.create_bucket().bucket(name).send().await.expect("bucket");
    }
    let p1 = s3.list_buckets().max_buckets(2).send().await.expect("page 1");
    assert_eq!(p1.buckets().iter().filter_map(|b| b.name()).collect::<Vec<_>>(), ["bucket-a", "bucket-b"]);
    let token = p1.continuation_token().expect("a token").to_owned();
    let p2 = s3.list_buckets().max_buckets(2).continuation_token(token).send().await.expect("page 2");
    assert_eq!(p2.buckets().iter().filter_map(|b| b.name()).collect::<Vec<_>>(), ["bucket-c"]);
    assert_eq!(p2.continuation_token(), None);
    let all = s3.list_buckets().send().await.expect("all");
    assert_eq!((all.buckets().len(), all.continuation_token()), (3, None));
    let err = s3.list_buckets().max_buckets(0).send().await.expect_err("zero");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidArgument"));
    server.stop().await;
}

/// Metadata values outside ASCII come back byte for byte (as sent by latin-1 clients such
/// as boto3, or UTF-8 ones).
#[tokio::test]
async fn non_ascii_metadata_round_trips_byte_for_byte() {
    let server = TestServer::start().await;
    bucket(&server).await;
    let host = server.host("bkt", Style::Path);
    // Raw header bytes: latin-1 "café" (as Python's http.client sends it) and UTF-8 "日本".
    let resp = send_with_raw_headers(
        &server,
        &host,
        &[("x-amz-meta-latin", b"caf\xe9"), ("x-amz-meta-utf8", "日本".as_bytes())],
    )
    .await;
    assert_eq!(resp.0, 200, "{}", String::from_utf8_lossy(&resp.1));
    let (status, head) = head_raw(&server, &host).await;
    assert_eq!(status, 200);
    assert!(head.windows(b"x-amz-meta-latin: caf\xe9\r\n".len()).any(|w| w == b"x-amz-meta-latin: caf\xe9\r\n"));
    assert!(head.windows("x-amz-meta-utf8: 日本\r\n".len()).any(|w| w == "x-amz-meta-utf8: 日本\r\n".as_bytes()));
    server.stop().await;
}

/// A signed PUT whose metadata header values are raw bytes (not necessarily UTF-8).
async fn send_with_raw_headers(server: &TestServer, host: &str, meta: &[(&str, &[u8])]) -> (u16, Vec<u8>) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let identity =
        aws_credential_types::Credentials::new(ALICE.access_key, ALICE.secret_key, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .expect("params")
        .into();
    // The signer takes header values as text: UTF-8 as it is, other bytes read as latin-1
    // (as botocore signs what http.client then sends as latin-1).
    let as_text: Vec<(String, String)> = meta
        .iter()
        .map(|(k, v)| {
            let text =
                std::str::from_utf8(v).map(str::to_owned).unwrap_or_else(|_| v.iter().map(|&b| b as char).collect());
            (k.to_string(), text)
        })
        .collect();
    let mut headers: Vec<(&str, &str)> = as_text.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    headers.push(("host", host));
    let url = format!("http://{host}/bkt/meta");
    let signable = SignableRequest::new("PUT", url, headers.into_iter(), SignableBody::Bytes(b"x")).expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut out =
        format!("PUT /bkt/meta HTTP/1.1\r\nhost: {host}\r\ncontent-length: 1\r\nconnection: close\r\n").into_bytes();
    for (k, v) in instructions.headers() {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    for (k, v) in meta {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\nx");
    let mut s = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(&out).await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap_or(0);
    (status, resp)
}

async fn head_raw(server: &TestServer, host: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let raw = Raw::new("HEAD", host, "/bkt/meta").header("connection", "close").sign(ALICE);
    let mut s = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(raw.head().as_bytes()).await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap_or(0);
    (status, resp)
}

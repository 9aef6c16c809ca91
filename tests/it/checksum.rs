use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart};
use base64::Engine;

use crate::common::*;

const MIB: usize = 1024 * 1024;

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

fn crc32_b64(bytes: &[u8]) -> String {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
    d.update(bytes);
    base64::engine::general_purpose::STANDARD.encode((d.finalize() as u32).to_be_bytes())
}

async fn setup() -> (TestServer, aws_sdk_s3::Client) {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    (server, s3)
}

async fn get_checked(
    s3: &aws_sdk_s3::Client,
    key: &str,
) -> (aws_sdk_s3::operation::get_object::GetObjectOutput, Vec<u8>) {
    let mut out =
        s3.get_object().bucket("bkt").key(key).checksum_mode(ChecksumMode::Enabled).send().await.expect("get");
    // Reading the body makes the SDK validate it against the returned checksum.
    let body = std::mem::replace(&mut out.body, ByteStream::from_static(b""));
    let bytes = body.collect().await.expect("body validates").into_bytes().to_vec();
    (out, bytes)
}

#[tokio::test]
async fn every_algorithm_round_trips_and_validates() {
    let (server, s3) = setup().await;
    let body = data(200_000, 1);
    for a in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ] {
        let key = format!("k-{}", a.as_str());
        let put = s3
            .put_object()
            .bucket("bkt")
            .key(&key)
            .checksum_algorithm(a.clone())
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .expect("put");
        let (got, bytes) = get_checked(&s3, &key).await;
        assert_eq!(bytes, body);
        let sent = [
            put.checksum_crc32(),
            put.checksum_crc32_c(),
            put.checksum_crc64_nvme(),
            put.checksum_sha1(),
            put.checksum_sha256(),
        ];
        let back = [
            got.checksum_crc32(),
            got.checksum_crc32_c(),
            got.checksum_crc64_nvme(),
            got.checksum_sha1(),
            got.checksum_sha256(),
        ];
        assert_eq!(sent.iter().filter(|s| s.is_some()).count(), 1, "{a:?}: one checksum echoed");
        assert_eq!(sent, back, "{a:?}");
        assert_eq!(got.checksum_type(), Some(&ChecksumType::FullObject));
    }
    // Not on range responses.
    let ranged = s3
        .get_object()
        .bucket("bkt")
        .key("k-CRC32")
        .range("bytes=0-9")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("range");
    assert_eq!(ranged.checksum_crc32(), None);
    // Not without checksum mode.
    let plain = s3.head_object().bucket("bkt").key("k-CRC32").send().await.expect("head");
    assert_eq!(plain.checksum_crc32(), None);
    // Listings name each object's algorithm and type, as AWS does.
    let listed = s3.list_objects_v2().bucket("bkt").send().await.expect("list");
    let algorithms: Vec<(&str, Vec<ChecksumAlgorithm>, Option<&ChecksumType>)> = listed
        .contents()
        .iter()
        .map(|o| (o.key().unwrap_or_default(), o.checksum_algorithm().to_vec(), o.checksum_type()))
        .collect();
    assert_eq!(algorithms.len(), 5);
    for (key, a, t) in algorithms {
        assert_eq!(format!("k-{}", a.first().map(|a| a.as_str()).unwrap_or("?")), key);
        assert_eq!(t, Some(&ChecksumType::FullObject), "{key}");
    }
    server.stop().await;
}

#[tokio::test]
async fn wrong_or_conflicting_checksums_are_refused() {
    let (server, s3) = setup().await;
    let host = server.host("bkt", Style::Path);
    let put = |headers: &[(&str, &str)]| {
        let mut r = Raw::new("PUT", &host, "/bkt/k").body(b"hello");
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.sign(ALICE)
    };
    put(&[("x-amz-checksum-crc32", &crc32_b64(b"jello"))]).send(server.addr).await.assert_error(400, "BadDigest");
    put(&[("x-amz-checksum-crc32", &crc32_b64(b"hello")), ("x-amz-checksum-sha1", "2jmj7l5rSw0yVb/vlWAYkK/YBwk=")])
        .send(server.addr)
        .await
        .assert_error(400, "InvalidRequest");
    put(&[("x-amz-checksum-crc32", "bogus")]).send(server.addr).await.assert_error(400, "InvalidRequest");
    assert_eq!(s3.list_objects_v2().bucket("bkt").send().await.expect("list").key_count(), Some(0));
    let ok = put(&[("x-amz-checksum-crc32", &crc32_b64(b"hello"))]).send(server.addr).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-amz-checksum-crc32"), Some(crc32_b64(b"hello").as_str()));
    // Without any checksum, s3d computes CRC64NVME as AWS does.
    let none = Raw::new("PUT", &host, "/bkt/n").body(b"hello").sign(ALICE).send(server.addr).await;
    assert!(none.header("x-amz-checksum-crc64nvme").is_some());
    let (got, _) = get_checked(&s3, "n").await;
    assert_eq!(got.checksum_crc64_nvme(), none.header("x-amz-checksum-crc64nvme"));
    server.stop().await;
}

/// Over plain HTTP the Rust SDK sends file bodies as STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER:
/// signed 64 KiB chunks and a signed CRC32 trailer.
#[tokio::test]
async fn sdk_file_bodies_use_signed_aws_chunked() {
    let (server, s3) = setup().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.bin");
    let body = data(3 * MIB + 17, 5);
    std::fs::write(&path, &body).expect("write");
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("file")
        .content_encoding("gzip")
        .body(ByteStream::from_path(&path).await.expect("file body"))
        .send()
        .await
        .expect("signed streaming put");
    assert_eq!(put.checksum_crc32(), Some(crc32_b64(&body).as_str()));
    let (got, bytes) = get_checked(&s3, "file").await;
    assert_eq!(bytes.len(), body.len());
    assert!(bytes == body, "stored bytes are exactly the decoded payload");
    assert_eq!(got.content_encoding(), Some("gzip"), "aws-chunked is not stored");
    assert_eq!(got.content_length(), Some(body.len() as i64));

    // A multipart upload whose parts are file slices (signed streaming too).
    let up = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id");
    let big = data(6 * MIB, 9);
    std::fs::write(&path, &big).expect("write");
    let parts = upload_file_slices(
        &s3,
        "bkt",
        "mp",
        id,
        &path,
        &[(0, 5 * MIB as u64), (5 * MIB as u64, MIB as u64)],
        Some(ChecksumAlgorithm::Crc32),
    )
    .await;
    let done = s3
        .complete_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .expect("complete");
    assert!(done.checksum_crc32().is_some_and(|c| c.ends_with("-2")), "{:?}", done.checksum_crc32());
    assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));
    let (_, bytes) = get_checked(&s3, "mp").await;
    assert!(bytes == big);
    server.stop().await;
}

/// With no algorithm chosen, part CRC64NVMEs are combined into the object's; with
/// FULL_OBJECT CRC32C likewise. The SDK validates the whole body against it on GET.
#[tokio::test]
async fn full_object_checksums_are_combined_from_parts() {
    let (server, s3) = setup().await;
    for (key, algorithm) in
        [("default", None), ("crc32c", Some(ChecksumAlgorithm::Crc32C)), ("crc64", Some(ChecksumAlgorithm::Crc64Nvme))]
    {
        let mut create = s3.create_multipart_upload().bucket("bkt").key(key);
        if let Some(a) = &algorithm {
            create = create.checksum_algorithm(a.clone()).checksum_type(ChecksumType::FullObject);
        }
        let id = create.send().await.expect("create").upload_id().expect("id").to_owned();
        let chunks = [data(5 * MIB, 1), data(5 * MIB, 2), data(1234, 3)];
        let mut parts = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let mut req = s3
                .upload_part()
                .bucket("bkt")
                .key(key)
                .upload_id(&id)
                .part_number(i as i32 + 1)
                .body(ByteStream::from(c.clone()));
            if let Some(a) = &algorithm {
                req = req.checksum_algorithm(a.clone());
            }
            let out = req.send().await.expect("part");
            parts.push(CompletedPart::builder().part_number(i as i32 + 1).e_tag(out.e_tag().expect("etag")).build());
        }
        let done = s3
            .complete_multipart_upload()
            .bucket("bkt")
            .key(key)
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .expect("complete");
        assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject), "{key}");
        let (got, bytes) = get_checked(&s3, key).await;
        assert_eq!(bytes.len(), 10 * MIB + 1234);
        assert_eq!(got.checksum_type(), Some(&ChecksumType::FullObject));
        assert!(got.checksum_crc64_nvme().is_some() || got.checksum_crc32_c().is_some(), "{key}");
    }
    server.stop().await;
}

/// boto3 and aws-cli over HTTPS: STREAMING-UNSIGNED-PAYLOAD-TRAILER, 1 MiB aws chunks that do
/// not line up with the HTTP chunks, CRC32 in the trailer.
#[tokio::test]
async fn unsigned_trailer_bodies() {
    let (server, s3) = setup().await;
    let host = server.host("bkt", Style::Path);
    let payload = data(2 * MIB + 5, 7);
    let framed = |trailer: &str| {
        let mut b = Vec::new();
        for c in payload.chunks(MIB) {
            b.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            b.extend_from_slice(c);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{trailer}\r\n\r\n").as_bytes());
        b
    };
    let request = |key: &str, body: Vec<u8>| {
        Raw::new("PUT", &host, &format!("/bkt/{key}"))
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header("content-encoding", "aws-chunked")
            .header("x-amz-decoded-content-length", &payload.len().to_string())
            .header("x-amz-trailer", "x-amz-checksum-crc32")
            .header("x-amz-sdk-checksum-algorithm", "CRC32")
            .body(&body)
    };
    let good = streaming_unsigned(request("good", framed(&crc32_b64(&payload))));
    let resp = good.send(server.addr).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let (got, bytes) = get_checked(&s3, "good").await;
    assert!(bytes == payload);
    assert_eq!(got.content_encoding(), None, "aws-chunked alone leaves no Content-Encoding");
    let bad = streaming_unsigned(request("bad", framed(&crc32_b64(b"other"))));
    bad.send(server.addr).await.assert_error(400, "BadDigest");
    let mut short = framed(&crc32_b64(&payload));
    short.truncate(MIB / 2);
    let cut = streaming_unsigned(request("cut", short));
    cut.send(server.addr).await.assert_error(400, "IncompleteBody");
    let keys = s3.list_objects_v2().bucket("bkt").send().await.expect("list");
    assert_eq!(keys.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["good"]);
    server.stop().await;
}

#[tokio::test]
async fn sha512_md5_xxhash_checksums_and_presigned_hoisting() {
    use sha2::Digest;
    let (server, _s3) = setup().await;
    let host = server.host("bkt", Style::Path);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let sha512 = b64(&sha2::Sha512::digest(b"hello"));
    let md5 = b64(&md5::Md5::digest(b"hello"));
    let xxh64 = b64(&xxhash_rust::xxh64::xxh64(b"hello", 0).to_be_bytes());
    let xxh3 = b64(&xxhash_rust::xxh3::xxh3_64(b"hello").to_be_bytes());
    let xxh128 = b64(&xxhash_rust::xxh3::xxh3_128(b"hello").to_be_bytes());
    for (header, value, key) in [
        ("x-amz-checksum-sha512", &sha512, "s512"),
        ("x-amz-checksum-md5", &md5, "smd5"),
        ("x-amz-checksum-xxhash64", &xxh64, "x64"),
        ("x-amz-checksum-xxhash3", &xxh3, "x3"),
        ("x-amz-checksum-xxhash128", &xxh128, "x128"),
    ] {
        let put = Raw::new("PUT", &host, &format!("/bkt/{key}"))
            .header(header, value)
            .body(b"hello")
            .sign(ALICE)
            .send(server.addr)
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        assert_eq!(put.header(header), Some(value.as_str()));
        let get = Raw::new("GET", &host, &format!("/bkt/{key}"))
            .header("x-amz-checksum-mode", "ENABLED")
            .sign(ALICE)
            .send(server.addr)
            .await;
        assert_eq!(get.header(header), Some(value.as_str()));
        let bad = Raw::new("PUT", &host, &format!("/bkt/{key}"))
            .header(header, value)
            .body(b"jello")
            .sign(ALICE)
            .send(server.addr)
            .await;
        bad.assert_error(400, "BadDigest");
    }
    // SDKs hoist x-amz-checksum-* into the signed query of presigned PUT URLs.
    let crc = crc32_b64(b"hello");
    let target = format!(
        "/bkt/hoisted?x-amz-checksum-crc32={}&x-amz-sdk-checksum-algorithm=CRC32",
        percent_encoding::utf8_percent_encode(&crc, percent_encoding::NON_ALPHANUMERIC)
    );
    let url = Raw::new("PUT", &host, &target).presign(
        ALICE,
        std::time::SystemTime::now(),
        std::time::Duration::from_secs(60),
    );
    let ok = url.clone().body(b"hello").send(server.addr).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.header("x-amz-checksum-crc32"), Some(crc.as_str()));
    url.body(b"jello").send(server.addr).await.assert_error(400, "BadDigest");
    server.stop().await;
}

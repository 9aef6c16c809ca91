use std::time::{Duration, SystemTime};

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, StorageClass};
use base64::Engine;
use md5::{Digest, Md5};

use crate::both_styles;
use crate::common::*;

async fn setup(style: Style) -> (TestServer, aws_sdk_s3::Client) {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, style);
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("create bucket");
    (server, s3)
}

async fn upload_count(s3: &aws_sdk_s3::Client) -> usize {
    s3.list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .expect("list")
        .uploads()
        .len()
}

async fn create_with_every_header(style: Style) {
    let (server, s3) = setup(style).await;
    let before = SystemTime::now() - Duration::from_secs(2);
    let out = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("dir/movie file+1%.m2ts")
        .storage_class(StorageClass::ReducedRedundancy)
        .content_type("video/mp2t")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"m.m2ts\"")
        .content_encoding("identity")
        .content_language("en")
        .metadata("color", "blue")
        .metadata("shot-by", "me")
        .website_redirect_location("/elsewhere")
        .tagging("project=s3d&year=2026")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .expect("create");
    assert_eq!(out.bucket(), Some("bkt"));
    assert_eq!(out.key(), Some("dir/movie file+1%.m2ts"));
    let id = out.upload_id().expect("upload id");
    assert!(id.len() >= 22, "at least 128 bits: {id}");
    assert_eq!(out.checksum_algorithm(), Some(&ChecksumAlgorithm::Crc32));
    assert_eq!(out.checksum_type(), Some(&ChecksumType::Composite));

    let list = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .expect("list");
    assert_eq!(list.uploads().len(), 1);
    let u = &list.uploads()[0];
    assert_eq!(u.key(), Some("dir/movie file+1%.m2ts"));
    assert_eq!(u.upload_id(), Some(id));
    assert_eq!(
        u.storage_class(),
        Some(&aws_sdk_s3::types::StorageClass::ReducedRedundancy)
    );
    assert_eq!(u.initiator().and_then(|i| i.id()), Some(ALICE.id));
    assert_eq!(
        u.initiator().and_then(|i| i.display_name()),
        Some(ALICE.name)
    );
    assert_eq!(u.owner().and_then(|o| o.id()), Some(ALICE.id));
    assert_eq!(u.checksum_algorithm(), Some(&ChecksumAlgorithm::Crc32));
    let initiated = SystemTime::try_from(*u.initiated().expect("initiated")).expect("time");
    assert!(initiated >= before && initiated <= SystemTime::now() + Duration::from_secs(2));
    assert_eq!(list.is_truncated(), Some(false));
    assert_eq!(list.max_uploads(), Some(1000));

    // Two uploads of one key are distinct.
    let again = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("dir/movie file+1%.m2ts")
        .send()
        .await
        .expect("create");
    assert_ne!(again.upload_id(), Some(id));
    assert_eq!(again.checksum_algorithm(), None);
    assert_eq!(upload_count(&s3).await, 2);
    server.stop().await;
}
both_styles!(create_with_every_header);

/// The seed's example, byte for byte: `POST /example-object?uploads` virtual-host style with
/// a `Date` header instead of `x-amz-date`.
#[tokio::test]
async fn seed_example_with_date_header() {
    use s3d::auth::sigv4::{canonical, signing};
    let server = TestServer::start().await;
    let host = "oss-example.s3.cn-north-1.jcloudcs.com";
    server
        .client(ALICE, Style::Path)
        .create_bucket()
        .bucket("oss-example")
        .send()
        .await
        .expect("bucket");

    let now = s3d::clock::Timestamp::now();
    let date = now.to_http_date();
    let amz = now.to_amz_date();
    let empty = signing::sha256_hex(b"");
    let mut h = http::HeaderMap::new();
    h.insert("host", host.parse().expect("host"));
    h.insert("date", date.parse().expect("date"));
    h.insert("x-amz-content-sha256", empty.parse().expect("hash"));
    let signed: Vec<String> = ["date", "host", "x-amz-content-sha256"]
        .map(String::from)
        .to_vec();
    let creq = canonical::canonical_request(
        "POST",
        "/example-object",
        &canonical::canonical_query("uploads", None),
        &canonical::canonical_headers(&h, &signed, host),
        &signed,
        &empty,
    );
    let scope = format!("{}/{REGION}/s3/aws4_request", &amz[..8]);
    let key = signing::signing_key(ALICE.secret_key, &amz[..8], REGION, "s3");
    let sig = signing::sign(&key, &signing::string_to_sign(&amz, &scope, &creq));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=date;host;x-amz-content-sha256, Signature={sig}",
        ALICE.access_key
    );
    let resp = Raw::new("POST", host, "/example-object?uploads")
        .header("date", &date)
        .header("x-amz-content-sha256", &empty)
        .header("authorization", &auth)
        .send(server.addr)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/xml"));
    assert_eq!(resp.header("server"), Some("s3d"));
    assert_eq!(
        resp.header("content-length"),
        Some(resp.body.len().to_string().as_str())
    );
    let body = resp.text();
    let id = xml_value(&body, "UploadId").expect("upload id");
    assert_eq!(
        body,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Bucket>oss-example</Bucket><Key>example-object</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>"
        )
    );
    server.stop().await;
}

#[allow(clippy::type_complexity)]
async fn invalid_headers_change_nothing(style: Style) {
    let (server, s3) = setup(style).await;
    let host = server.host("bkt", style);
    let target = format!("{}?uploads", server.target("bkt", "k", style));
    let cases: &[(&[(&str, &str)], u16, &str)] = &[
        (
            &[("x-amz-storage-class", "GLACIER_IR")],
            400,
            "InvalidStorageClass",
        ),
        (
            &[("x-amz-storage-class", "standard")],
            400,
            "InvalidStorageClass",
        ),
        (
            &[("x-amz-meta-big", &"x".repeat(2100))],
            400,
            "MetadataTooLarge",
        ),
        (
            &[("x-amz-website-redirect-location", "ftp://nope")],
            400,
            "InvalidRedirectLocation",
        ),
        (&[("x-amz-tagging", "a=1&a=2")], 400, "InvalidTag"),
        (&[("x-amz-tagging", "aws:x=1")], 400, "InvalidTag"),
        (&[("x-amz-tagging", "a=%ZZ")], 400, "InvalidArgument"),
        (
            &[("x-amz-acl", "public-read")],
            400,
            "AccessControlListNotSupported",
        ),
        (
            &[("x-amz-grant-read", "id=someone")],
            400,
            "AccessControlListNotSupported",
        ),
        (
            &[("x-amz-checksum-type", "COMPOSITE")],
            400,
            "InvalidRequest",
        ),
        (
            &[
                ("x-amz-checksum-algorithm", "CRC64NVME"),
                ("x-amz-checksum-type", "COMPOSITE"),
            ],
            400,
            "InvalidRequest",
        ),
        (
            &[
                ("x-amz-checksum-algorithm", "SHA1"),
                ("x-amz-checksum-type", "FULL_OBJECT"),
            ],
            400,
            "InvalidRequest",
        ),
        (
            &[("x-amz-checksum-algorithm", "MD4")],
            400,
            "InvalidRequest",
        ),
        (
            &[("x-amz-object-lock-mode", "GOVERNANCE")],
            400,
            "InvalidRequest",
        ),
        (&[("content-md5", "not-base64!")], 400, "InvalidDigest"),
        (
            &[("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")],
            400,
            "BadDigest",
        ),
        (
            &[("x-amz-server-side-encryption", "aws:kms")],
            501,
            "NotImplemented",
        ),
    ];
    for (headers, status, code) in cases {
        let mut raw = Raw::new("POST", &host, &target);
        for (k, v) in *headers {
            raw = raw.header(k, v);
        }
        raw.sign(ALICE)
            .send(server.addr)
            .await
            .assert_error(*status, code);
    }
    assert_eq!(upload_count(&s3).await, 0, "no upload after an error");

    // Accepted forms: owner-only canned ACLs (rclone sends private), a correct Content-MD5.
    let empty_md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b""));
    for (k, v) in [
        ("x-amz-acl", "private"),
        ("x-amz-acl", "bucket-owner-full-control"),
        ("content-md5", empty_md5.as_str()),
        ("x-amz-storage-class", "STANDARD"),
    ] {
        let resp = Raw::new("POST", &host, &target)
            .header(k, v)
            .sign(ALICE)
            .send(server.addr)
            .await;
        assert_eq!(resp.status, 200, "{k}: {v}: {}", resp.text());
    }
    assert_eq!(upload_count(&s3).await, 4);
    server.stop().await;
}
both_styles!(invalid_headers_change_nothing);

async fn missing_bucket_and_expect_continue(style: Style) {
    let (server, _s3) = setup(style).await;
    let err = server
        .client(ALICE, style)
        .create_multipart_upload()
        .bucket("nobucket")
        .key("k")
        .send()
        .await
        .expect_err("no bucket");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchBucket"));
    assert_eq!(sdk_status(&err), Some(404));

    // With Expect: 100-continue the error comes before any body byte is sent.
    let raw = Raw::new(
        "POST",
        &server.host("nobucket", style),
        &format!("{}?uploads", server.target("nobucket", "k", style)),
    )
    .header("expect", "100-continue")
    .header("content-length", "10")
    .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
    .sign(ALICE);
    let mut head = format!("POST {} HTTP/1.1\r\nhost: {}\r\n", raw.target, raw.host);
    for (k, v) in &raw.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let resp = send_bytes(server.addr, head.as_bytes(), false).await;
    resp.assert_error(404, "NoSuchBucket");
    server.stop().await;
}
both_styles!(missing_bucket_and_expect_continue);

#[tokio::test]
async fn keys_are_exact() {
    let (server, s3) = setup(Style::Path).await;
    let keys = [
        "a b",
        "a+b",
        "100%",
        "ünïcødé/ключ/鍵",
        "sp ace/+plus/%25",
        "x".repeat(1024).leak() as &str,
        "trailing/",
    ];
    for k in keys {
        s3.create_multipart_upload()
            .bucket("bkt")
            .key(k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{k}: {e:?}"));
    }
    let list = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .expect("list");
    let mut got: Vec<&str> = list.uploads().iter().filter_map(|u| u.key()).collect();
    let mut want = keys.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    let too_long = "y".repeat(1025);
    let err = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key(&too_long)
        .send()
        .await
        .expect_err("too long");
    assert_eq!(sdk_code(&err).as_deref(), Some("KeyTooLongError"));

    // encoding-type=url: keys come percent-encoded (the Rust SDK leaves them so).
    let enc = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .expect("list");
    assert_eq!(
        enc.encoding_type(),
        Some(&aws_sdk_s3::types::EncodingType::Url)
    );
    let mut got: Vec<String> = enc
        .uploads()
        .iter()
        .filter_map(|u| u.key())
        .map(|k| {
            assert!(!k.contains(' ') && !k.contains('+'), "{k}");
            percent_encoding::percent_decode_str(k)
                .decode_utf8()
                .expect("utf-8")
                .into_owned()
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    server.stop().await;
}

#[tokio::test]
async fn list_uploads_pages_prefixes_and_markers() {
    let (server, s3) = setup(Style::Path).await;
    let mut ids = Vec::new();
    for k in ["a", "a", "b/1", "b/2", "c"] {
        let out = s3
            .create_multipart_upload()
            .bucket("bkt")
            .key(k)
            .send()
            .await
            .expect("create");
        ids.push(out.upload_id().expect("id").to_owned());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let page = |p: &aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput| {
        p.uploads()
            .iter()
            .map(|u| {
                (
                    u.key().unwrap_or("").to_owned(),
                    u.upload_id().unwrap_or("").to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let p1 = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .max_uploads(2)
        .send()
        .await
        .expect("p1");
    assert_eq!(
        page(&p1),
        [("a".into(), ids[0].clone()), ("a".into(), ids[1].clone())],
        "same key: initiation order"
    );
    assert_eq!(p1.is_truncated(), Some(true));
    assert_eq!(p1.next_key_marker(), Some("a"));
    assert_eq!(p1.next_upload_id_marker(), Some(ids[1].as_str()));
    let p2 = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .max_uploads(2)
        .key_marker("a")
        .upload_id_marker(&ids[0])
        .send()
        .await
        .expect("p2");
    assert_eq!(
        page(&p2),
        [("a".into(), ids[1].clone()), ("b/1".into(), ids[2].clone())]
    );

    let grouped = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .delimiter("/")
        .send()
        .await
        .expect("grouped");
    assert_eq!(page(&grouped).len(), 3);
    let prefixes: Vec<_> = grouped
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["b/"]);
    assert_eq!(grouped.delimiter(), Some("/"));

    let under_b = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .prefix("b/")
        .send()
        .await
        .expect("prefix");
    assert_eq!(
        page(&under_b)
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["b/1", "b/2"]
    );
    assert_eq!(under_b.prefix(), Some("b/"));

    let err = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .max_uploads(-1)
        .send()
        .await
        .expect_err("negative");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidArgument"));
    let err = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .key_marker("a")
        .upload_id_marker("bogus")
        .send()
        .await
        .expect_err("bad marker");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidArgument"));
    // Without a key-marker the upload-id-marker is ignored.
    let ignored = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .upload_id_marker("bogus")
        .send()
        .await
        .expect("ignored");
    assert_eq!(ignored.uploads().len(), 5);
    let capped = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .max_uploads(5000)
        .send()
        .await
        .expect("capped");
    assert_eq!(capped.max_uploads(), Some(1000));
    server.stop().await;
}

async fn abort_upload(style: Style) {
    let (server, s3) = setup(style).await;
    let out = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect("create");
    let id = out.upload_id().expect("id");
    let err = s3
        .abort_multipart_upload()
        .bucket("bkt")
        .key("other")
        .upload_id(id)
        .send()
        .await
        .expect_err("wrong key");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchUpload"));
    assert_eq!(upload_count(&s3).await, 1);
    s3.abort_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id(id)
        .send()
        .await
        .expect("abort");
    assert_eq!(upload_count(&s3).await, 0);
    let err = s3
        .abort_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id(id)
        .send()
        .await
        .expect_err("already aborted");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchUpload"));
    assert_eq!(sdk_status(&err), Some(404));
    let resp = Raw::new(
        "DELETE",
        &server.host("bkt", style),
        &format!("{}?uploadId=", server.target("bkt", "k", style)),
    )
    .sign(ALICE)
    .send(server.addr)
    .await;
    resp.assert_error(404, "NoSuchUpload");
    server.stop().await;
}
both_styles!(abort_upload);

#[tokio::test]
async fn uploads_survive_restart() {
    let (server, s3) = setup(Style::Path).await;
    let out = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("keep/me")
        .storage_class(StorageClass::ReducedRedundancy)
        .send()
        .await
        .expect("create");
    let server = server.restart().await;
    let s3 = server.client(ALICE, Style::VirtualHost);
    let list = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .expect("list");
    assert_eq!(list.uploads().len(), 1);
    assert_eq!(list.uploads()[0].upload_id(), out.upload_id());
    assert_eq!(
        list.uploads()[0].storage_class(),
        Some(&StorageClass::ReducedRedundancy)
    );
    s3.abort_multipart_upload()
        .bucket("bkt")
        .key("keep/me")
        .upload_id(out.upload_id().expect("id"))
        .send()
        .await
        .expect("abort after restart");
    server.stop().await;
}

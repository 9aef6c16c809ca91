use std::time::{Duration, SystemTime};

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, StorageClass};
use base64::Engine;
use md5::{Digest, Md5};

use crate::both_styles;
use crate::common::*;

async fn setup(style: Style) -> (TestServer, aws_sdk_s3::Client) {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, style);
    s3.create_bucket().bucket("bkt").send().await.expect("create bucket");
    (server, s3)
}

async fn upload_count(s3: &aws_sdk_s3::Client) -> usize {
    s3.list_multipart_uploads().bucket("bkt").send().await.expect("list").uploads().len()
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

    let list = s3.list_multipart_uploads().bucket("bkt").send().await.expect("list");
    assert_eq!(list.uploads().len(), 1);
    let u = &list.uploads()[0];
    assert_eq!(u.key(), Some("dir/movie file+1%.m2ts"));
    assert_eq!(u.upload_id(), Some(id));
    assert_eq!(u.storage_class(), Some(&aws_sdk_s3::types::StorageClass::ReducedRedundancy));
    assert_eq!(u.initiator().and_then(|i| i.id()), Some(ALICE.id));
    assert_eq!(u.initiator().and_then(|i| i.display_name()), Some(ALICE.name));
    assert_eq!(u.owner().and_then(|o| o.id()), Some(ALICE.id));
    assert_eq!(u.checksum_algorithm(), Some(&ChecksumAlgorithm::Crc32));
    let initiated = SystemTime::try_from(*u.initiated().expect("initiated")).expect("time");
    assert!(initiated >= before && initiated <= SystemTime::now() + Duration::from_secs(2));
    assert_eq!(list.is_truncated(), Some(false));
    assert_eq!(list.max_uploads(), Some(1000));

    // Two uploads of one key are distinct.
    let again = s3.create_multipart_upload().bucket("bkt").key("dir/movie file+1%.m2ts").send().await.expect("create");
    assert_ne!(again.upload_id(), Some(id));
    assert_eq!(again.checksum_algorithm(), None);
    assert_eq!(upload_count(&s3).await, 2);
    server.stop().await;
}
both_styles!(create_with_every_header);

/// The CreateMultipartUpload specification's example, byte for byte: `POST /example-object?uploads` virtual-host style with
/// a `Date` header instead of `x-amz-date`.
#[tokio::test]
async fn specification_example_with_date_header() {
    use s3d::auth::sigv4::{canonical, signing};
    let server = TestServer::start().await;
    let host = "oss-example.s3.cn-north-1.jcloudcs.com";
    server.client(ALICE, Style::Path).create_bucket().bucket("oss-example").send().await.expect("bucket");

    let now = s3d::clock::Timestamp::now();
    let date = now.to_http_date();
    let amz = now.to_amz_date();
    let empty = signing::sha256_hex(b"");
    let mut h = http::HeaderMap::new();
    h.insert("host", host.parse().expect("host"));
    h.insert("date", date.parse().expect("date"));
    h.insert("x-amz-content-sha256", empty.parse().expect("hash"));
    let signed: Vec<String> = ["date", "host", "x-amz-content-sha256"].map(String::from).to_vec();
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
    assert_eq!(resp.header("content-length"), Some(resp.body.len().to_string().as_str()));
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
        (&[("x-amz-storage-class", "GLACIER_IR")], 400, "InvalidStorageClass"),
        (&[("x-amz-storage-class", "standard")], 400, "InvalidStorageClass"),
        (&[("x-amz-meta-big", &"x".repeat(2100))], 400, "MetadataTooLarge"),
        (&[("x-amz-website-redirect-location", "ftp://nope")], 400, "InvalidRedirectLocation"),
        (&[("x-amz-tagging", "a=1&a=2")], 400, "InvalidTag"),
        (&[("x-amz-tagging", "aws:x=1")], 400, "InvalidTag"),
        (&[("x-amz-tagging", "a=%ZZ")], 400, "InvalidArgument"),
        (&[("x-amz-acl", "public-read")], 400, "AccessControlListNotSupported"),
        (&[("x-amz-grant-read", "id=someone")], 400, "AccessControlListNotSupported"),
        (&[("x-amz-checksum-type", "COMPOSITE")], 400, "InvalidRequest"),
        (&[("x-amz-checksum-algorithm", "CRC64NVME"), ("x-amz-checksum-type", "COMPOSITE")], 400, "InvalidRequest"),
        (&[("x-amz-checksum-algorithm", "SHA1"), ("x-amz-checksum-type", "FULL_OBJECT")], 400, "InvalidRequest"),
        (&[("x-amz-checksum-algorithm", "MD4")], 400, "InvalidRequest"),
        (&[("x-amz-object-lock-mode", "GOVERNANCE")], 400, "InvalidRequest"),
        (&[("content-md5", "not-base64!")], 400, "InvalidDigest"),
        (&[("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")], 400, "BadDigest"),
        (&[("x-amz-server-side-encryption", "aws:kms")], 501, "NotImplemented"),
    ];
    for (headers, status, code) in cases {
        let mut raw = Raw::new("POST", &host, &target);
        for (k, v) in *headers {
            raw = raw.header(k, v);
        }
        raw.sign(ALICE).send(server.addr).await.assert_error(*status, code);
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
        let resp = Raw::new("POST", &host, &target).header(k, v).sign(ALICE).send(server.addr).await;
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
    send_head_only(server.addr, &raw).await.assert_error(404, "NoSuchBucket");
    // UploadPart to an unknown upload, and a part over 5 GiB, are refused before the body.
    let part = |target: String, len: &str| {
        Raw::new("PUT", &server.host("bkt", style), &target)
            .header("expect", "100-continue")
            .header("content-length", len)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .sign(ALICE)
    };
    let target = format!("{}?partNumber=1&uploadId=unknown", server.target("bkt", "k", style));
    send_head_only(server.addr, &part(target, "10")).await.assert_error(404, "NoSuchUpload");
    let put = server.target("bkt", "k", style);
    send_head_only(server.addr, &part(put, "5368709121")).await.assert_error(400, "EntityTooLarge");
    server.stop().await;
}
both_styles!(missing_bucket_and_expect_continue);

#[tokio::test]
async fn keys_are_exact() {
    let (server, s3) = setup(Style::Path).await;
    let keys =
        ["a b", "a+b", "100%", "ünïcødé/ключ/鍵", "sp ace/+plus/%25", "x".repeat(1024).leak() as &str, "trailing/"];
    for k in keys {
        s3.create_multipart_upload().bucket("bkt").key(k).send().await.unwrap_or_else(|e| panic!("{k}: {e:?}"));
    }
    let list = s3.list_multipart_uploads().bucket("bkt").send().await.expect("list");
    let mut got: Vec<&str> = list.uploads().iter().filter_map(|u| u.key()).collect();
    let mut want = keys.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    let too_long = "y".repeat(1025);
    let err = s3.create_multipart_upload().bucket("bkt").key(&too_long).send().await.expect_err("too long");
    assert_eq!(sdk_code(&err).as_deref(), Some("KeyTooLongError"));

    // encoding-type=url: keys come percent-encoded (the Rust SDK leaves them so).
    let enc = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .expect("list");
    assert_eq!(enc.encoding_type(), Some(&aws_sdk_s3::types::EncodingType::Url));
    let mut got: Vec<String> = enc
        .uploads()
        .iter()
        .filter_map(|u| u.key())
        .map(|k| {
            assert!(!k.contains(' ') && !k.contains('+'), "{k}");
            percent_encoding::percent_decode_str(k).decode_utf8().expect("utf-8").into_owned()
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
        let out = s3.create_multipart_upload().bucket("bkt").key(k).send().await.expect("create");
        ids.push(out.upload_id().expect("id").to_owned());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let page = |p: &aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput| {
        p.uploads()
            .iter()
            .map(|u| (u.key().unwrap_or("").to_owned(), u.upload_id().unwrap_or("").to_owned()))
            .collect::<Vec<_>>()
    };
    let p1 = s3.list_multipart_uploads().bucket("bkt").max_uploads(2).send().await.expect("p1");
    assert_eq!(page(&p1), [("a".into(), ids[0].clone()), ("a".into(), ids[1].clone())], "same key: initiation order");
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
    assert_eq!(page(&p2), [("a".into(), ids[1].clone()), ("b/1".into(), ids[2].clone())]);

    let grouped = s3.list_multipart_uploads().bucket("bkt").delimiter("/").send().await.expect("grouped");
    assert_eq!(page(&grouped).len(), 3);
    let prefixes: Vec<_> = grouped.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(prefixes, ["b/"]);
    assert_eq!(grouped.delimiter(), Some("/"));

    let under_b = s3.list_multipart_uploads().bucket("bkt").prefix("b/").send().await.expect("prefix");
    assert_eq!(page(&under_b).iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["b/1", "b/2"]);
    assert_eq!(under_b.prefix(), Some("b/"));

    let err = s3.list_multipart_uploads().bucket("bkt").max_uploads(-1).send().await.expect_err("negative");
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
    let ignored = s3.list_multipart_uploads().bucket("bkt").upload_id_marker("bogus").send().await.expect("ignored");
    assert_eq!(ignored.uploads().len(), 5);
    let capped = s3.list_multipart_uploads().bucket("bkt").max_uploads(5000).send().await.expect("capped");
    assert_eq!(capped.max_uploads(), Some(1000));
    server.stop().await;
}

async fn abort_upload(style: Style) {
    let (server, s3) = setup(style).await;
    let out = s3.create_multipart_upload().bucket("bkt").key("k").send().await.expect("create");
    let id = out.upload_id().expect("id");
    let err = s3.abort_multipart_upload().bucket("bkt").key("other").upload_id(id).send().await.expect_err("wrong key");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchUpload"));
    assert_eq!(upload_count(&s3).await, 1);
    s3.abort_multipart_upload().bucket("bkt").key("k").upload_id(id).send().await.expect("abort");
    assert_eq!(upload_count(&s3).await, 0);
    let err =
        s3.abort_multipart_upload().bucket("bkt").key("k").upload_id(id).send().await.expect_err("already aborted");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchUpload"));
    assert_eq!(sdk_status(&err), Some(404));
    let resp =
        Raw::new("DELETE", &server.host("bkt", style), &format!("{}?uploadId=", server.target("bkt", "k", style)))
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
    let list = s3.list_multipart_uploads().bucket("bkt").send().await.expect("list");
    assert_eq!(list.uploads().len(), 1);
    assert_eq!(list.uploads()[0].upload_id(), out.upload_id());
    assert_eq!(list.uploads()[0].storage_class(), Some(&StorageClass::ReducedRedundancy));
    s3.abort_multipart_upload()
        .bucket("bkt")
        .key("keep/me")
        .upload_id(out.upload_id().expect("id"))
        .send()
        .await
        .expect("abort after restart");
    server.stop().await;
}

mod lifecycle {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    use md5::{Digest, Md5};

    use crate::both_styles;
    use crate::common::*;

    const MIB: usize = 1024 * 1024;

    fn data(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
    }

    /// Waits for the collector to bring the blob count to `n` (superseded blobs are kept for
    /// the grace period, then reclaimed in the background).
    async fn reclaimed_to(server: &TestServer, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while blob_count(server) != n {
            assert!(std::time::Instant::now() < deadline, "{} blobs, expected {n}", blob_count(server));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn upload_parts(s3: &aws_sdk_s3::Client, key: &str, parts: &[Vec<u8>]) -> (String, Vec<CompletedPart>) {
        let id = s3
            .create_multipart_upload()
            .bucket("bkt")
            .key(key)
            .send()
            .await
            .expect("create")
            .upload_id()
            .expect("id")
            .to_owned();
        let mut done = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let n = i as i32 + 1;
            let out = s3
                .upload_part()
                .bucket("bkt")
                .key(key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(p.clone()))
                .send()
                .await
                .expect("part");
            assert_eq!(out.e_tag(), Some(format!("\"{}\"", hex::encode(Md5::digest(p))).as_str()));
            done.push(CompletedPart::builder().part_number(n).e_tag(out.e_tag().expect("etag")).build());
        }
        (id, done)
    }

    fn multipart_etag(parts: &[Vec<u8>]) -> String {
        let mut h = Md5::new();
        for p in parts {
            h.update(Md5::digest(p));
        }
        format!("\"{}-{}\"", hex::encode(h.finalize()), parts.len())
    }

    async fn complete_and_read(style: Style) {
        let server = TestServer::start_configured(fast_gc).await;
        let s3 = server.client(ALICE, style);
        s3.create_bucket().bucket("bkt").send().await.expect("bucket");
        let parts = vec![data(5 * MIB, 1), data(5 * MIB, 2), data(1000, 3)];
        let (id, done) = upload_parts(&s3, "big/file", &parts).await;

        let page =
            s3.list_parts().bucket("bkt").key("big/file").upload_id(&id).max_parts(2).send().await.expect("parts");
        assert_eq!(page.parts().iter().filter_map(|p| p.part_number()).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(page.is_truncated(), Some(true));
        assert_eq!(page.next_part_number_marker(), Some("2"));
        assert_eq!(page.parts()[0].size(), Some(5 * MIB as i64));
        assert_eq!(page.initiator().and_then(|i| i.id()), Some(ALICE.id));
        let rest = s3
            .list_parts()
            .bucket("bkt")
            .key("big/file")
            .upload_id(&id)
            .part_number_marker("2")
            .send()
            .await
            .expect("parts");
        assert_eq!(rest.parts().iter().filter_map(|p| p.part_number()).collect::<Vec<_>>(), [3]);
        assert_eq!(rest.is_truncated(), Some(false));

        let completed = s3
            .complete_multipart_upload()
            .bucket("bkt")
            .key("big/file")
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done.clone())).build())
            .send()
            .await
            .expect("complete");
        let etag = multipart_etag(&parts);
        assert_eq!(completed.e_tag(), Some(etag.as_str()));
        assert_eq!(completed.key(), Some("big/file"));
        assert!(completed.location().is_some_and(|l| l.ends_with("big/file")));

        // Readable at once; bytes are exactly the parts; no byte was copied (3 blobs).
        let whole = s3.get_object().bucket("bkt").key("big/file").send().await.expect("get");
        assert_eq!(whole.e_tag(), Some(etag.as_str()));
        let bytes = whole.body.collect().await.expect("body").into_bytes();
        assert_eq!(bytes.len(), 10 * MIB + 1000);
        assert!(
            bytes[..5 * MIB] == parts[0][..]
                && bytes[5 * MIB..10 * MIB] == parts[1][..]
                && bytes[10 * MIB..] == parts[2][..]
        );
        assert_eq!(blob_count(&server), 3);

        let across = s3
            .get_object()
            .bucket("bkt")
            .key("big/file")
            .range(format!("bytes={}-{}", 5 * MIB - 10, 5 * MIB + 9))
            .send()
            .await
            .expect("range");
        let across = across.body.collect().await.expect("body").into_bytes();
        assert_eq!(&across[..10], &parts[0][5 * MIB - 10..]);
        assert_eq!(&across[10..], &parts[1][..10]);

        let p2 = s3.get_object().bucket("bkt").key("big/file").part_number(3).send().await.expect("part 3");
        assert_eq!(p2.parts_count(), Some(3));
        assert_eq!(
            p2.content_range(),
            Some(format!("bytes {}-{}/{}", 10 * MIB, 10 * MIB + 999, 10 * MIB + 1000).as_str())
        );
        assert_eq!(p2.body.collect().await.expect("body").into_bytes().as_ref(), &parts[2][..]);
        let head = s3.head_object().bucket("bkt").key("big/file").part_number(1).send().await.expect("head part");
        assert_eq!(head.content_length(), Some(5 * MIB as i64));
        let err = s3.get_object().bucket("bkt").key("big/file").part_number(4).send().await.expect_err("no part 4");
        assert_eq!(sdk_code(&err).as_deref(), Some("InvalidPartNumber"));

        // The upload is gone; a retried Complete answers the same.
        let listed = s3.list_multipart_uploads().bucket("bkt").send().await.expect("list");
        assert!(listed.uploads().is_empty());
        let again = s3
            .complete_multipart_upload()
            .bucket("bkt")
            .key("big/file")
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
            .send()
            .await
            .expect("retry after success");
        assert_eq!(again.e_tag(), Some(etag.as_str()));

        // A multipart object copies like any other.
        s3.copy_object().bucket("bkt").key("copy").copy_source("bkt/big/file").send().await.expect("copy");
        let copy = s3.get_object().bucket("bkt").key("copy").send().await.expect("get copy");
        assert_eq!(copy.body.collect().await.expect("body").into_bytes(), bytes);
        server.stop().await;
    }
    both_styles!(complete_and_read);

    #[tokio::test]
    async fn failed_completes_change_nothing() {
        let server = TestServer::start_configured(fast_gc).await;
        let s3 = server.client(ALICE, Style::Path);
        s3.create_bucket().bucket("bkt").send().await.expect("bucket");
        let parts = vec![data(1000, 1), data(5 * MIB, 2), data(10, 3)];
        let (id, done) = upload_parts(&s3, "k", &parts).await;
        let host = server.host("bkt", Style::Path);
        let complete =
            |xml: String| Raw::new("POST", &host, &format!("/bkt/k?uploadId={id}")).body(xml.as_bytes()).sign(ALICE);
        let part = |n: i32, etag: &str| format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>");
        let e = |i: usize| done[i].e_tag().expect("etag").to_owned();
        let doc = |inner: String| {
            format!(
                "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{inner}</CompleteMultipartUpload>"
            )
        };
        let cases = [
            (doc(String::new()), 400, "MalformedXML"),
            (doc(part(2, &e(1)) + &part(1, &e(0))), 400, "InvalidPartOrder"),
            (doc(part(1, &e(0)) + &part(1, &e(0))), 400, "InvalidPartOrder"),
            (doc(part(4, &e(0))), 400, "InvalidPart"),
            (doc(part(2, "\"0123456789abcdef0123456789abcdef\"")), 400, "InvalidPart"),
            (doc(part(1, &e(0)) + &part(2, &e(1))), 400, "EntityTooSmall"),
            (doc(part(0, &e(0))), 400, "InvalidArgument"),
            ("<not-xml".to_string(), 400, "MalformedXML"),
        ];
        for (xml, status, code) in cases {
            complete(xml).send(server.addr).await.assert_error(status, code);
        }
        let resp = Raw::new("POST", &host, &format!("/bkt/k?uploadId={id}"))
            .header("x-amz-mp-object-size", "12")
            .body(doc(part(2, &e(1)) + &part(3, &e(2))).as_bytes())
            .sign(ALICE)
            .send(server.addr)
            .await;
        resp.assert_error(400, "InvalidRequest");
        let err = s3
            .complete_multipart_upload()
            .bucket("bkt")
            .key("k")
            .upload_id("nope")
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done.clone())).build())
            .send()
            .await
            .expect_err("no upload");
        assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchUpload"));

        // All parts are still there, and completing with a gap works (part 1 unused).
        let listed = s3.list_parts().bucket("bkt").key("k").upload_id(&id).send().await.expect("parts");
        assert_eq!(listed.parts().len(), 3);
        assert_eq!(blob_count(&server), 3);
        let resp = Raw::new("POST", &host, &format!("/bkt/k?uploadId={id}"))
            .header("x-amz-mp-object-size", &(5 * MIB + 10).to_string())
            .body(doc(part(2, &e(1).replace('"', "&quot;")) + &part(3, e(2).trim_matches('"'))).as_bytes())
            .sign(ALICE)
            .send(server.addr)
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert!(resp.text().contains("<CompleteMultipartUploadResult xmlns="));
        reclaimed_to(&server, 2).await; // the unused part
        let head = s3.head_object().bucket("bkt").key("k").send().await.expect("head");
        assert_eq!(head.content_length(), Some(5 * MIB as i64 + 10));
        server.stop().await;
    }

    #[tokio::test]
    async fn parts_replace_abort_reclaims_and_conditions() {
        let server = TestServer::start_configured(fast_gc).await;
        let s3 = server.client(ALICE, Style::Path);
        s3.create_bucket().bucket("bkt").send().await.expect("bucket");
        let id = s3
            .create_multipart_upload()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .expect("create")
            .upload_id()
            .expect("id")
            .to_owned();
        for bad in [0, 10_001] {
            let err = s3
                .upload_part()
                .bucket("bkt")
                .key("k")
                .upload_id(&id)
                .part_number(bad)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
                .expect_err("bad number");
            assert_eq!(sdk_code(&err).as_deref(), Some("InvalidArgument"), "{bad}");
        }
        let err = s3
            .upload_part()
            .bucket("bkt")
            .key("k")
            .upload_id("nope")
            .part_number(1)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err("no upload");
        assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchUpload"));
        s3.upload_part()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"first"))
            .send()
            .await
            .expect("part");
        let second = s3
            .upload_part()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"second"))
            .send()
            .await
            .expect("replace");
        let parts = s3.list_parts().bucket("bkt").key("k").upload_id(&id).send().await.expect("list");
        assert_eq!(parts.parts().len(), 1);
        assert_eq!(parts.parts()[0].e_tag(), second.e_tag());
        reclaimed_to(&server, 1).await; // the replaced part

        // UploadPartCopy with a range.
        s3.put_object().bucket("bkt").key("src").body(ByteStream::from(data(100, 9))).send().await.expect("src");
        let copied = s3
            .upload_part_copy()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .part_number(2)
            .copy_source("bkt/src")
            .copy_source_range("bytes=10-19")
            .send()
            .await
            .expect("part copy");
        let etag = copied.copy_part_result().and_then(|r| r.e_tag()).expect("etag").to_owned();
        assert_eq!(etag, format!("\"{}\"", hex::encode(Md5::digest(&data(100, 9)[10..20]))));
        let err = s3
            .upload_part_copy()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .part_number(3)
            .copy_source("bkt/src")
            .copy_source_range("bytes=50-100")
            .send()
            .await
            .expect_err("range past end");
        assert_eq!(sdk_code(&err).as_deref(), Some("InvalidArgument"));

        s3.abort_multipart_upload().bucket("bkt").key("k").upload_id(&id).send().await.expect("abort");
        // Only the parts had blobs: the 100-byte source object is kept inline in its record.
        reclaimed_to(&server, 0).await;
        let err = s3
            .upload_part()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"late"))
            .send()
            .await
            .expect_err("aborted");
        assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchUpload"));
        reclaimed_to(&server, 0).await; // the late part's blob was discarded

        // Conditional Complete, on one-part uploads of "src" (which exists) and "new" (which does not).
        let cu = |etag: &str| {
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build()
        };
        let one_part = |key: &'static str| {
            let s3 = s3.clone();
            async move {
                let id = s3.create_multipart_upload().bucket("bkt").key(key).send().await.expect("create");
                let id = id.upload_id().expect("id").to_owned();
                let part = s3
                    .upload_part()
                    .bucket("bkt")
                    .key(key)
                    .upload_id(&id)
                    .part_number(1)
                    .body(ByteStream::from_static(b"p"))
                    .send()
                    .await
                    .expect("part");
                (id, part.e_tag().expect("etag").to_owned())
            }
        };
        let (id, etag) = one_part("src").await;
        let err = s3
            .complete_multipart_upload()
            .bucket("bkt")
            .key("src")
            .upload_id(&id)
            .if_none_match("*")
            .multipart_upload(cu(&etag))
            .send()
            .await
            .expect_err("exists");
        assert_eq!(sdk_status(&err), Some(412));
        let (id2, etag2) = one_part("new").await;
        let err = s3
            .complete_multipart_upload()
            .bucket("bkt")
            .key("new")
            .upload_id(&id2)
            .if_match("\"abc\"")
            .multipart_upload(cu(&etag2))
            .send()
            .await
            .expect_err("no object");
        assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchKey"));
        s3.complete_multipart_upload()
            .bucket("bkt")
            .key("new")
            .upload_id(&id2)
            .if_none_match("*")
            .multipart_upload(cu(&etag2))
            .send()
            .await
            .expect("absent: completes");
        server.stop().await;
    }
}

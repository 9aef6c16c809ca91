use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use md5::{Digest, Md5};

use crate::both_styles;
use crate::common::*;

async fn setup(style: Style) -> (TestServer, aws_sdk_s3::Client) {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, style);
    s3.create_bucket().bucket("bkt").send().await.expect("create bucket");
    (server, s3)
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

async fn get_bytes(s3: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    let out = s3.get_object().bucket("bkt").key(key).send().await.expect("get");
    out.body.collect().await.expect("body").into_bytes().to_vec()
}

async fn put_get_head_delete(style: Style) {
    let (server, s3) = setup(style).await;
    let body = data(100_000);
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("dir/a b+c%.bin")
        .body(ByteStream::from(body.clone()))
        .content_type("application/x-test")
        .cache_control("no-cache")
        .content_disposition("inline")
        .content_language("de")
        .metadata("color", "blue")
        .tagging("a=1")
        .send()
        .await
        .expect("put");
    let etag = format!("\"{}\"", hex::encode(Md5::digest(&body)));
    assert_eq!(put.e_tag(), Some(etag.as_str()));
    assert_eq!(put.version_id(), None, "unversioned buckets send no version id");

    let got = s3.get_object().bucket("bkt").key("dir/a b+c%.bin").send().await.expect("get");
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.cache_control(), Some("no-cache"));
    assert_eq!(got.content_disposition(), Some("inline"));
    assert_eq!(got.content_language(), Some("de"));
    assert_eq!(got.content_length(), Some(100_000));
    assert_eq!(got.accept_ranges(), Some("bytes"));
    assert_eq!(got.tag_count(), Some(1));
    assert_eq!(got.metadata().and_then(|m| m.get("color")).map(String::as_str), Some("blue"));
    assert!(got.last_modified().is_some());
    assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), &body[..]);

    let head = s3.head_object().bucket("bkt").key("dir/a b+c%.bin").send().await.expect("head");
    assert_eq!(head.content_length(), Some(100_000));
    assert_eq!(head.e_tag(), Some(etag.as_str()));

    // Overwrite, then delete (twice: 204 both times).
    s3.put_object()
        .bucket("bkt")
        .key("dir/a b+c%.bin")
        .body(ByteStream::from_static(b"new"))
        .send()
        .await
        .expect("overwrite");
    assert_eq!(get_bytes(&s3, "dir/a b+c%.bin").await, b"new");
    s3.delete_object().bucket("bkt").key("dir/a b+c%.bin").send().await.expect("delete");
    s3.delete_object().bucket("bkt").key("dir/a b+c%.bin").send().await.expect("delete absent");
    let err = s3.get_object().bucket("bkt").key("dir/a b+c%.bin").send().await.expect_err("gone");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchKey"));
    let err = s3.head_object().bucket("bkt").key("dir/a b+c%.bin").send().await.expect_err("gone");
    assert_eq!(sdk_status(&err), Some(404));

    // Empty objects.
    s3.put_object().bucket("bkt").key("empty").body(ByteStream::from_static(b"")).send().await.expect("empty");
    let got = s3.get_object().bucket("bkt").key("empty").send().await.expect("get empty");
    assert_eq!(got.e_tag(), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
    assert_eq!(got.content_length(), Some(0));
    server.stop().await;
}
both_styles!(put_get_head_delete);

#[tokio::test]
async fn put_rejects_bad_digests_and_keeps_nothing() {
    let (server, s3) = setup(Style::Path).await;
    let host = server.host("bkt", Style::Path);
    Raw::new("PUT", &host, "/bkt/k")
        .header("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")
        .body(b"hello")
        .sign(ALICE)
        .send(server.addr)
        .await
        .assert_error(400, "BadDigest");
    Raw::new("PUT", &host, "/bkt/k")
        .header("content-md5", "nope")
        .body(b"hello")
        .sign(ALICE)
        .send(server.addr)
        .await
        .assert_error(400, "InvalidDigest");
    let mut tampered = Raw::new("PUT", &host, "/bkt/k").body(b"hello").sign(ALICE);
    tampered.body = b"jello".to_vec();
    tampered.send(server.addr).await.assert_error(400, "XAmzContentSHA256Mismatch");
    Raw::new("PUT", &host, "/bkt/k")
        .header("content-length", "6000000000")
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .sign(ALICE)
        .send(server.addr)
        .await
        .assert_error(400, "EntityTooLarge");
    let list = s3.list_objects_v2().bucket("bkt").send().await.expect("list");
    assert_eq!(list.key_count(), Some(0));
    // No blob was left behind either.
    let blobs = walk(&server.dir.path().join("blobs"));
    assert!(blobs.iter().all(|p| p.contains("/blobs/tmp/")), "{blobs:?}");
    server.stop().await;
}

#[tokio::test]
async fn ranges_and_conditionals() {
    let (server, s3) = setup(Style::Path).await;
    let body = data(1000);
    let put = s3.put_object().bucket("bkt").key("r").body(ByteStream::from(body.clone())).send().await.expect("put");
    let etag = put.e_tag().expect("etag").to_owned();
    for (range, want) in
        [("bytes=0-9", 0..10), ("bytes=990-", 990..1000), ("bytes=-5", 995..1000), ("bytes=500-5000", 500..1000)]
    {
        let got = s3.get_object().bucket("bkt").key("r").range(range).send().await.expect(range);
        assert_eq!(got.content_range(), Some(format!("bytes {}-{}/1000", want.start, want.end - 1).as_str()));
        assert_eq!(got.content_length(), Some((want.end - want.start) as i64));
        assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), &body[want]);
    }
    let host = server.host("bkt", Style::Path);
    let resp = Raw::new("GET", &host, "/bkt/r").header("range", "bytes=1000-").sign(ALICE).send(server.addr).await;
    resp.assert_error(416, "InvalidRange");
    assert_eq!(resp.header("content-range"), Some("bytes */1000"));
    let resp = Raw::new("GET", &host, "/bkt/r").header("range", "bytes=0-1").sign(ALICE).send(server.addr).await;
    assert_eq!(resp.status, 206);

    let cond = |h: &str, v: &str| Raw::new("GET", &host, "/bkt/r").header(h, v).sign(ALICE);
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    for (h, v, status) in [
        ("if-match", etag.as_str(), 200),
        ("if-match", "\"nope\"", 412),
        ("if-none-match", etag.as_str(), 304),
        ("if-none-match", "\"nope\"", 200),
        ("if-modified-since", future, 304),
        ("if-modified-since", past, 200),
        ("if-unmodified-since", past, 412),
        ("if-unmodified-since", future, 200),
    ] {
        let resp = cond(h, v).send(server.addr).await;
        assert_eq!(resp.status, status, "{h}: {v}");
        if status == 304 {
            assert!(resp.body.is_empty());
            assert_eq!(resp.header("etag"), Some(etag.as_str()));
        }
    }
    // RFC 7232 precedence: If-Match wins over If-Unmodified-Since; If-None-Match over If-Modified-Since.
    let both =
        Raw::new("GET", &host, "/bkt/r").header("if-match", &etag).header("if-unmodified-since", past).sign(ALICE);
    assert_eq!(both.send(server.addr).await.status, 200);
    let both = Raw::new("GET", &host, "/bkt/r")
        .header("if-none-match", "\"x\"")
        .header("if-modified-since", future)
        .sign(ALICE);
    assert_eq!(both.send(server.addr).await.status, 200);

    let over = s3
        .get_object()
        .bucket("bkt")
        .key("r")
        .response_content_type("text/plain")
        .response_content_disposition("attachment")
        .send()
        .await
        .expect("overrides");
    assert_eq!(over.content_type(), Some("text/plain"));
    assert_eq!(over.content_disposition(), Some("attachment"));
    let v = s3.get_object().bucket("bkt").key("r").version_id("null").send().await.expect("versionId=null");
    assert_eq!(v.content_length(), Some(1000));

    // Conditional writes.
    let err = s3
        .put_object()
        .bucket("bkt")
        .key("r")
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("exists");
    assert_eq!(sdk_status(&err), Some(412));
    s3.put_object()
        .bucket("bkt")
        .key("fresh")
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("absent");
    let err = s3
        .put_object()
        .bucket("bkt")
        .key("r")
        .if_match("\"nope\"")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("mismatch");
    assert_eq!(sdk_status(&err), Some(412));
    s3.put_object()
        .bucket("bkt")
        .key("r")
        .if_match(&etag)
        .body(ByteStream::from_static(b"y"))
        .send()
        .await
        .expect("match");
    assert_eq!(get_bytes(&s3, "r").await, b"y");
    server.stop().await;
}

async fn listing(style: Style) {
    let (server, s3) = setup(style).await;
    for k in ["a/1", "a/2", "b", "c/x/1", "c/y", "d", "ü/ñ", "sp ace"] {
        s3.put_object().bucket("bkt").key(k).body(ByteStream::from_static(b"z")).send().await.expect("put");
    }
    let v2 = s3.list_objects_v2().bucket("bkt").delimiter("/").send().await.expect("v2");
    let keys: Vec<_> = v2.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["b", "d", "sp ace"]);
    let prefixes: Vec<_> = v2.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(prefixes, ["a/", "c/", "ü/"]);
    assert_eq!(v2.key_count(), Some(6));
    assert!(v2.contents()[0].owner().is_none(), "no owner without fetch-owner");

    // Paging with continuation tokens visits every key once, in UTF-8 byte order.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("bkt")
            .max_keys(3)
            .fetch_owner(true)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("page");
        assert!(page.contents().iter().all(|o| o.owner().and_then(|o| o.id()) == Some(ALICE.id)));
        seen.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["a/1", "a/2", "b", "c/x/1", "c/y", "d", "sp ace", "ü/ñ"]);
    let after = s3.list_objects_v2().bucket("bkt").start_after("c/y").send().await.expect("start-after");
    assert_eq!(after.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["d", "sp ace", "ü/ñ"]);

    // v1: NextMarker only with a delimiter.
    let v1 = s3.list_objects().bucket("bkt").max_keys(2).send().await.expect("v1");
    assert_eq!(v1.is_truncated(), Some(true));
    assert_eq!(v1.next_marker(), None);
    let v1 = s3.list_objects().bucket("bkt").max_keys(2).delimiter("/").send().await.expect("v1");
    assert_eq!(v1.next_marker(), Some("b"));
    let v1 = s3.list_objects().bucket("bkt").marker("c/").prefix("c/").send().await.expect("v1 marker");
    assert_eq!(v1.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["c/x/1", "c/y"]);

    let versions = s3.list_object_versions().bucket("bkt").prefix("a/").send().await.expect("versions");
    assert_eq!(versions.versions().len(), 2);
    assert!(versions.versions().iter().all(|v| v.version_id() == Some("null") && v.is_latest() == Some(true)));

    let err = s3.list_objects_v2().bucket("bkt").max_keys(-1).send().await.expect_err("negative");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidArgument"));
    server.stop().await;
}
both_styles!(listing);

#[tokio::test]
async fn delete_objects_and_copy() {
    let (server, s3) = setup(Style::Path).await;
    for k in ["x1", "x2", "x3"] {
        s3.put_object()
            .bucket("bkt")
            .key(k)
            .body(ByteStream::from_static(b"data"))
            .metadata("m", k)
            .send()
            .await
            .expect("put");
    }
    let ids = ["x1", "x2", "missing"].map(|k| ObjectIdentifier::builder().key(k).build().expect("id"));
    let out = s3
        .delete_objects()
        .bucket("bkt")
        .delete(Delete::builder().set_objects(Some(ids.to_vec())).build().expect("delete"))
        .send()
        .await
        .expect("delete objects");
    let mut deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(deleted, ["missing", "x1", "x2"]);
    assert!(out.errors().is_empty());
    let quiet = s3
        .delete_objects()
        .bucket("bkt")
        .delete(
            Delete::builder()
                .quiet(true)
                .objects(ObjectIdentifier::builder().key("x3").build().expect("id"))
                .build()
                .expect("delete"),
        )
        .send()
        .await
        .expect("quiet");
    assert!(quiet.deleted().is_empty());
    assert_eq!(s3.list_objects_v2().bucket("bkt").send().await.expect("list").key_count(), Some(0));
    let empty = Raw::new("POST", &server.host("bkt", Style::Path), "/bkt?delete")
        .body(b"<Delete></Delete>")
        .sign(ALICE)
        .send(server.addr)
        .await;
    empty.assert_error(400, "MalformedXML");

    // CopyObject: COPY keeps metadata, REPLACE replaces it; self-copy without change is refused.
    s3.put_object()
        .bucket("bkt")
        .key("src key+1")
        .body(ByteStream::from(data(70_000)))
        .content_type("text/x")
        .metadata("m", "src")
        .send()
        .await
        .expect("put");
    let copied = s3.copy_object().bucket("bkt").key("dst").copy_source("bkt/src%20key%2B1").send().await.expect("copy");
    assert!(copied.copy_object_result().and_then(|r| r.e_tag()).is_some());
    let got = s3.get_object().bucket("bkt").key("dst").send().await.expect("get");
    assert_eq!(got.content_type(), Some("text/x"));
    assert_eq!(got.metadata().and_then(|m| m.get("m")).map(String::as_str), Some("src"));
    assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), &data(70_000)[..]);
    let err = s3.copy_object().bucket("bkt").key("dst").copy_source("bkt/dst").send().await.expect_err("self");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidRequest"));
    s3.copy_object()
        .bucket("bkt")
        .key("dst")
        .copy_source("bkt/dst")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("m", "new")
        .send()
        .await
        .expect("self-copy with new metadata");
    let head = s3.head_object().bucket("bkt").key("dst").send().await.expect("head");
    assert_eq!(head.metadata().and_then(|m| m.get("m")).map(String::as_str), Some("new"));
    let err = s3.copy_object().bucket("bkt").key("d2").copy_source("bkt/nothing").send().await.expect_err("no source");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchKey"));
    let err = s3
        .copy_object()
        .bucket("bkt")
        .key("d2")
        .copy_source("bkt/dst")
        .copy_source_if_match("\"nope\"")
        .send()
        .await
        .expect_err("condition");
    assert_eq!(sdk_status(&err), Some(412));
    let err = s3.copy_object().bucket("bkt").key("d2").copy_source("nobucket/x").send().await.expect_err("no bucket");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchBucket"));
    server.stop().await;
}

#[tokio::test]
async fn delete_objects_verifies_whichever_digest_is_sent() {
    let (server, s3) = setup(Style::Path).await;
    s3.put_object().bucket("bkt").key("a").body(ByteStream::from_static(b"x")).send().await.expect("put");
    let host = server.host("bkt", Style::Path);
    let doc = b"<Delete><Object><Key>a</Key></Object></Delete>";
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
    d.update(b"something else");
    let wrong = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, (d.finalize() as u32).to_be_bytes());
    Raw::new("POST", &host, "/bkt?delete")
        .header("x-amz-checksum-crc32", &wrong)
        .body(doc)
        .sign(ALICE)
        .send(server.addr)
        .await
        .assert_error(400, "BadDigest");
    Raw::new("POST", &host, "/bkt?delete")
        .header("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")
        .body(doc)
        .sign(ALICE)
        .send(server.addr)
        .await
        .assert_error(400, "BadDigest");
    assert_eq!(s3.list_objects_v2().bucket("bkt").send().await.expect("list").key_count(), Some(1), "nothing deleted");
    // Neither header: accepted (x-amz-content-sha256 still covers the body).
    let ok = Raw::new("POST", &host, "/bkt?delete").body(doc).sign(ALICE).send(server.addr).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(s3.list_objects_v2().bucket("bkt").send().await.expect("list").key_count(), Some(0));
    server.stop().await;
}

/// Small objects are kept inside their metadata records (no blob file): every read path —
/// whole, ranges, `partNumber`, copies, UploadPartCopy — serves them like any other, and
/// `[blobs] inline_max = 0` keeps every object in a file.
#[tokio::test]
async fn small_objects_are_kept_inline_and_read_like_any_other() {
    let (server, s3) = setup(Style::Path).await;
    let small = (0..1000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
    s3.put_object().bucket("bkt").key("small").body(small.clone().into()).send().await.expect("put");
    assert_eq!(blob_count(&server), 0, "a 1,000-byte object is kept inline");
    assert_eq!(get_bytes(&s3, "small").await, small);
    let range = s3.get_object().bucket("bkt").key("small").range("bytes=10-19").send().await.expect("range");
    assert_eq!(range.content_range(), Some("bytes 10-19/1000"));
    assert_eq!(range.body.collect().await.expect("body").into_bytes(), small[10..20]);
    let suffix = s3.get_object().bucket("bkt").key("small").range("bytes=-5").send().await.expect("suffix");
    assert_eq!(suffix.body.collect().await.expect("body").into_bytes(), small[995..]);
    let part = s3.get_object().bucket("bkt").key("small").part_number(1).send().await.expect("part 1");
    assert_eq!(part.content_length(), Some(1000));
    let head = s3.head_object().bucket("bkt").key("small").send().await.expect("head");
    assert_eq!(head.e_tag(), Some(format!("\"{}\"", hex::encode(Md5::digest(&small))).as_str()));

    // A copy of an inline object is inline too; a part copied from it is a blob (parts never
    // are inline), and the completed object reads back.
    s3.copy_object().bucket("bkt").key("copy").copy_source("bkt/small").send().await.expect("copy");
    assert_eq!(get_bytes(&s3, "copy").await, small);
    assert_eq!(blob_count(&server), 0);
    let up = s3.create_multipart_upload().bucket("bkt").key("mp").send().await.expect("create");
    let id = up.upload_id().expect("id");
    let copied = s3
        .upload_part_copy()
        .bucket("bkt")
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .copy_source("bkt/small")
        .copy_source_range("bytes=100-199")
        .send()
        .await
        .expect("part copy");
    assert_eq!(blob_count(&server), 1);
    let etag = copied.copy_part_result().and_then(|r| r.e_tag()).expect("etag").to_owned();
    let parts = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(aws_sdk_s3::types::CompletedPart::builder().part_number(1).e_tag(etag).build())
        .build();
    s3.complete_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .upload_id(id)
        .multipart_upload(parts)
        .send()
        .await
        .expect("complete");
    assert_eq!(get_bytes(&s3, "mp").await, small[100..200]);

    // Past the limit, an object gets its file; deleting the inline ones leaves it alone.
    let big = vec![7u8; 64 * 1024 + 1];
    s3.put_object().bucket("bkt").key("big").body(big.clone().into()).send().await.expect("put big");
    assert_eq!(blob_count(&server), 2);
    s3.delete_object().bucket("bkt").key("small").send().await.expect("delete");
    s3.delete_object().bucket("bkt").key("copy").send().await.expect("delete");
    assert_eq!(get_bytes(&s3, "big").await, big);
    server.stop().await;

    let server = TestServer::start_configured(|c| c.inline_max = 0).await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    s3.put_object().bucket("bkt").key("tiny").body(b"tiny".to_vec().into()).send().await.expect("put");
    assert_eq!(blob_count(&server), 1, "inline_max = 0 keeps every object in a file");
    assert_eq!(get_bytes(&s3, "tiny").await, b"tiny");
    server.stop().await;
}

/// Waits (at most 10 s) until `server` has `n` blob files.
async fn blobs_become(server: &TestServer, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while blob_count(server) != n {
        assert!(std::time::Instant::now() < deadline, "{} blobs, expected {n}", blob_count(server));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A copy of an object kept in a file shares the file instead of copying its bytes, and so
/// does a part copied from a whole part; the file stays while any object or part refers to
/// it, through the collector's runs, and is reclaimed once the last reference goes.
#[tokio::test]
async fn copies_share_the_source_file_until_the_last_reference_goes() {
    let server = TestServer::start_configured(fast_gc).await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    let body = data(5 * 1024 * 1024 + 7);
    let etag = format!("\"{}\"", hex::encode(Md5::digest(&body)));
    s3.put_object().bucket("bkt").key("src").body(body.clone().into()).send().await.expect("put");
    assert_eq!(blob_count(&server), 1);

    let copied = s3.copy_object().bucket("bkt").key("dst").copy_source("bkt/src").send().await.expect("copy");
    assert_eq!(copied.copy_object_result().and_then(|r| r.e_tag()), Some(etag.as_str()));
    assert_eq!(blob_count(&server), 1, "the copy shares the source's file");
    let replaced = s3
        .copy_object()
        .bucket("bkt")
        .key("dst")
        .copy_source("bkt/dst")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("colour", "blue")
        .send()
        .await
        .expect("copy onto itself");
    assert_eq!(replaced.copy_object_result().and_then(|r| r.e_tag()), Some(etag.as_str()));
    let head = s3.head_object().bucket("bkt").key("dst").send().await.expect("head");
    assert_eq!(head.metadata().and_then(|m| m.get("colour")).map(String::as_str), Some("blue"));
    assert_eq!(blob_count(&server), 1);

    // Part 1 copies the whole source (shared); part 2 a range of it (bytes copied).
    let up = s3.create_multipart_upload().bucket("bkt").key("mp").send().await.expect("create");
    let id = up.upload_id().expect("id");
    let copy_part = |n: i32, range: Option<&str>| {
        s3.upload_part_copy()
            .bucket("bkt")
            .key("mp")
            .upload_id(id)
            .part_number(n)
            .copy_source("bkt/src")
            .set_copy_source_range(range.map(str::to_owned))
            .send()
    };
    let whole = copy_part(1, None).await.expect("whole part copy");
    assert_eq!(whole.copy_part_result().and_then(|r| r.e_tag()), Some(etag.as_str()));
    let ranged = copy_part(2, Some("bytes=0-99")).await.expect("ranged part copy");
    assert_eq!(blob_count(&server), 2, "only the ranged copy wrote a file");
    let part = |n: i32, r: Option<&aws_sdk_s3::types::CopyPartResult>| {
        aws_sdk_s3::types::CompletedPart::builder()
            .part_number(n)
            .e_tag(r.and_then(|r| r.e_tag()).expect("etag"))
            .build()
    };
    let parts = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(part(1, whole.copy_part_result()))
        .parts(part(2, ranged.copy_part_result()))
        .build();
    let upload = s3.complete_multipart_upload().bucket("bkt").key("mp").upload_id(id).multipart_upload(parts);
    upload.send().await.expect("complete");
    let expected: Vec<u8> = body.iter().chain(&body[..100]).copied().collect();
    assert_eq!(get_bytes(&s3, "mp").await, expected);

    // The source and the copy go; the completed object still refers to the file, through
    // several runs of the collector (300 ms grace, every 100 ms).
    for key in ["src", "dst"] {
        s3.delete_object().bucket("bkt").key(key).send().await.expect("delete");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(blob_count(&server), 2);
    assert_eq!(get_bytes(&s3, "mp").await, expected);
    s3.delete_object().bucket("bkt").key("mp").send().await.expect("delete");
    blobs_become(&server, 0).await;
    server.stop().await;
}

/// UploadPartCopy into an upload created with a checksum algorithm gives the part that
/// checksum (reported in CopyPartResult), whether it shares the source's file or copies
/// bytes, so that Complete builds the object's checksum from the parts.
#[tokio::test]
async fn copied_parts_carry_the_uploads_checksum() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::VirtualHost);
    s3.create_bucket().bucket("bkt").send().await.expect("bucket");
    let body = data(5 * 1024 * 1024);
    let put = s3.put_object().bucket("bkt").key("crc32").body(body.clone().into());
    put.checksum_algorithm(ChecksumAlgorithm::Crc32).send().await.expect("put with CRC32");
    let put = s3.put_object().bucket("bkt").key("sha").body(body.clone().into());
    put.checksum_algorithm(ChecksumAlgorithm::Sha256).send().await.expect("put with SHA-256");
    assert_eq!(blob_count(&server), 2);

    let up = s3.create_multipart_upload().bucket("bkt").key("mp").checksum_algorithm(ChecksumAlgorithm::Crc32);
    let id = up.send().await.expect("create").upload_id().expect("id").to_owned();
    let mut completed = Vec::new();
    // Shared (the source has a CRC32), copied (it has none), copied (a range).
    for (n, source, range) in [(1, "bkt/crc32", None), (2, "bkt/sha", None), (3, "bkt/crc32", Some("bytes=0-9"))] {
        let copied = s3
            .upload_part_copy()
            .bucket("bkt")
            .key("mp")
            .upload_id(&id)
            .part_number(n)
            .copy_source(source)
            .set_copy_source_range(range.map(str::to_owned))
            .send()
            .await
            .expect("part copy");
        let result = copied.copy_part_result().expect("result");
        let crc = result.checksum_crc32().expect("the upload's checksum").to_owned();
        let part = CompletedPart::builder().part_number(n).e_tag(result.e_tag().expect("etag")).checksum_crc32(crc);
        completed.push(part.build());
    }
    assert_eq!(blob_count(&server), 4, "part 1 shares a file; parts 2 and 3 have their own");
    assert_eq!(completed[0].checksum_crc32(), completed[1].checksum_crc32(), "same bytes, same CRC32");
    let manifest = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
    let done = s3.complete_multipart_upload().bucket("bkt").key("mp").upload_id(&id).multipart_upload(manifest);
    let done = done.send().await.expect("complete");
    assert!(done.checksum_crc32().is_some_and(|c| c.ends_with("-3")), "{:?}", done.checksum_crc32());
    let expected: Vec<u8> = body.iter().chain(&body).chain(&body[..10]).copied().collect();
    assert_eq!(get_bytes(&s3, "mp").await, expected);
    server.stop().await;
}

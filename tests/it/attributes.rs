//! Object and bucket tagging, and GetObjectAttributes, through the AWS SDK.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectAttributes, Tag, Tagging};

use crate::both_styles;
use crate::common::*;

fn tags(pairs: &[(&str, &str)]) -> Tagging {
    let set: Vec<Tag> = pairs.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build().expect("tag")).collect();
    Tagging::builder().set_tag_set(Some(set)).build().expect("tagging")
}

async fn object_and_bucket_tagging(style: Style) {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, style);
    s3.create_bucket().bucket("tags").send().await.expect("bucket");
    s3.put_object()
        .bucket("tags")
        .key("k")
        .tagging("project=s3d&team=storage%20core")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("put");
    let got = s3.get_object_tagging().bucket("tags").key("k").send().await.expect("get tags");
    let pairs: Vec<(&str, &str)> = got.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, [("project", "s3d"), ("team", "storage core")]);
    let head = s3.head_object().bucket("tags").key("k").send().await.expect("head");
    assert_eq!(head.tag_count(), Some(2));
    let get = s3.get_object().bucket("tags").key("k").send().await.expect("get");
    assert_eq!(get.tag_count(), Some(2));

    s3.put_object_tagging().bucket("tags").key("k").tagging(tags(&[("a", "1")])).send().await.expect("put tags");
    let got = s3.get_object_tagging().bucket("tags").key("k").send().await.expect("get tags");
    assert_eq!(got.tag_set().len(), 1);
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let eleven: Vec<(&str, &str)> = eleven.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let err = s3.put_object_tagging().bucket("tags").key("k").tagging(tags(&eleven)).send().await.expect_err("11");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidTag"));
    let err = s3.put_object_tagging().bucket("tags").key("none").tagging(tags(&[("a", "1")])).send().await;
    assert_eq!(sdk_code(&err.expect_err("no key")).as_deref(), Some("NoSuchKey"));
    s3.delete_object_tagging().bucket("tags").key("k").send().await.expect("delete tags");
    assert!(s3.get_object_tagging().bucket("tags").key("k").send().await.expect("get").tag_set().is_empty());

    // Buckets: up to 50 tags; none set is NoSuchTagSet.
    let err = s3.get_bucket_tagging().bucket("tags").send().await.expect_err("none");
    assert_eq!((sdk_code(&err).as_deref(), sdk_status(&err)), (Some("NoSuchTagSet"), Some(404)));
    s3.put_bucket_tagging().bucket("tags").tagging(tags(&eleven)).send().await.expect("11 on a bucket");
    assert_eq!(s3.get_bucket_tagging().bucket("tags").send().await.expect("get").tag_set().len(), 11);
    s3.delete_bucket_tagging().bucket("tags").send().await.expect("delete");
    let err = s3.get_bucket_tagging().bucket("tags").send().await.expect_err("deleted");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchTagSet"));
    server.stop().await;
}
both_styles!(object_and_bucket_tagging);

#[tokio::test]
async fn object_attributes_of_plain_and_multipart_objects() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("attrs").send().await.expect("bucket");
    s3.put_object().bucket("attrs").key("plain").body(ByteStream::from_static(b"hello")).send().await.expect("put");
    let a = s3
        .get_object_attributes()
        .bucket("attrs")
        .key("plain")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::StorageClass)
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .expect("attributes");
    assert_eq!(a.e_tag(), Some("5d41402abc4b2a76b9719d911017c592"), "unquoted, as AWS writes it");
    assert_eq!(a.object_size(), Some(5));
    assert_eq!(a.storage_class().map(|c| c.as_str()), Some("STANDARD"));
    let checksum = a.checksum().expect("checksum");
    assert!(checksum.checksum_crc32().is_some(), "the SDK sent CRC32: {checksum:?}");
    assert_eq!(checksum.checksum_type().map(|t| t.as_str()), Some("FULL_OBJECT"));
    assert!(a.object_parts().is_none());

    // Three parts with CRC32 checksums.
    let mib = 1024 * 1024;
    let up = s3
        .create_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id");
    let mut done = Vec::new();
    for (n, size) in [(1, 5 * mib), (2, 5 * mib), (3, 1000)] {
        let out = s3
            .upload_part()
            .bucket("attrs")
            .key("multi")
            .upload_id(id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(vec![n as u8; size]))
            .send()
            .await
            .expect("part");
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().expect("etag"))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
    }
    let complete = s3
        .complete_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .expect("complete");
    let page = |marker: Option<i32>| {
        s3.get_object_attributes()
            .bucket("attrs")
            .key("multi")
            .object_attributes(ObjectAttributes::ObjectParts)
            .object_attributes(ObjectAttributes::Etag)
            .max_parts(2)
            .set_part_number_marker(marker.map(|m| m.to_string()))
            .send()
    };
    let first = page(None).await.expect("attributes");
    assert_eq!(first.e_tag(), complete.e_tag().map(|e| e.trim_matches('"')));
    let parts = first.object_parts().expect("parts");
    assert_eq!((parts.total_parts_count(), parts.is_truncated()), (Some(3), Some(true)));
    assert_eq!(parts.parts().iter().map(|p| p.part_number()).collect::<Vec<_>>(), [Some(1), Some(2)]);
    assert!(parts.parts().iter().all(|p| p.checksum_crc32().is_some()));
    assert_eq!(parts.next_part_number_marker(), Some("2"));
    let second = page(Some(2)).await.expect("attributes");
    let parts = second.object_parts().expect("parts");
    assert_eq!(parts.is_truncated(), Some(false));
    assert_eq!(parts.parts().iter().map(|p| (p.part_number(), p.size())).collect::<Vec<_>>(), [(Some(3), Some(1000))]);

    let err = s3
        .get_object_attributes()
        .bucket("attrs")
        .key("missing")
        .object_attributes(ObjectAttributes::Etag)
        .send()
        .await
        .expect_err("missing");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchKey"));
    server.stop().await;
}

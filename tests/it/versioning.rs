//! Versioning through the AWS SDK: versions, delete markers, the null version, listings and
//! every operation that takes a version id.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Delete, MfaDelete, ObjectIdentifier, VersioningConfiguration};

use crate::both_styles;
use crate::common::*;

async fn versioned(s3: &Client, bucket: &str) {
    s3.create_bucket().bucket(bucket).send().await.expect("bucket");
    let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(bucket).versioning_configuration(conf).send().await.expect("enable");
}

async fn body(s3: &Client, bucket: &str, key: &str, version: Option<&str>) -> Vec<u8> {
    let out = s3.get_object().bucket(bucket).key(key).set_version_id(version.map(str::to_owned)).send().await;
    out.expect("get").body.collect().await.expect("body").into_bytes().to_vec()
}

async fn versions_and_markers(style: Style) {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, style);
    s3.create_bucket().bucket("vers").send().await.expect("bucket");
    let state = s3.get_bucket_versioning().bucket("vers").send().await.expect("get");
    assert_eq!(state.status(), None, "a new bucket is unversioned");
    // An unversioned bucket reports no versions.
    let put = s3.put_object().bucket("vers").key("k").body(ByteStream::from_static(b"zero")).send().await.expect("put");
    assert_eq!(put.version_id(), None);
    let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket("vers").versioning_configuration(conf).send().await.expect("enable");
    let state = s3.get_bucket_versioning().bucket("vers").send().await.expect("get");
    assert_eq!(state.status(), Some(&BucketVersioningStatus::Enabled));

    let mut ids = Vec::new();
    for body in [&b"one"[..], b"two", b"three"] {
        let out =
            s3.put_object().bucket("vers").key("k").body(ByteStream::from_static(body)).send().await.expect("put");
        let id = out.version_id().expect("a version id").to_owned();
        assert!(id.len() >= 20 && id != "null", "{id}");
        ids.push(id);
    }
    assert_eq!(body(&s3, "vers", "k", None).await, b"three");
    assert_eq!(body(&s3, "vers", "k", Some(&ids[0])).await, b"one");
    assert_eq!(body(&s3, "vers", "k", Some("null")).await, b"zero", "the version from before versioning");
    let head = s3.head_object().bucket("vers").key("k").version_id(&ids[1]).send().await.expect("head");
    assert_eq!((head.version_id(), head.content_length()), (Some(ids[1].as_str()), Some(3)));

    // A delete adds a marker; the key is gone for GET and HEAD, the versions stay.
    let del = s3.delete_object().bucket("vers").key("k").send().await.expect("delete");
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del.version_id().expect("marker id").to_owned();
    let err = s3.get_object().bucket("vers").key("k").send().await.expect_err("marker");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchKey"));
    let raw = err.raw_response().expect("raw");
    assert_eq!(raw.headers().get("x-amz-delete-marker"), Some("true"));
    assert_eq!(raw.headers().get("x-amz-version-id"), Some(marker.as_str()));
    let err = s3.get_object().bucket("vers").key("k").version_id(&marker).send().await.expect_err("405");
    assert_eq!((sdk_code(&err).as_deref(), sdk_status(&err)), (Some("MethodNotAllowed"), Some(405)));
    assert_eq!(body(&s3, "vers", "k", Some(&ids[2])).await, b"three");
    let listed = s3.list_objects_v2().bucket("vers").send().await.expect("list");
    assert_eq!(listed.key_count(), Some(0));

    // Listing: newest first, IsLatest on the marker.
    let v = s3.list_object_versions().bucket("vers").send().await.expect("versions");
    let ids_listed: Vec<&str> = v.versions().iter().filter_map(|x| x.version_id()).collect();
    assert_eq!(ids_listed, [ids[2].as_str(), &ids[1], &ids[0], "null"]);
    assert!(v.versions().iter().all(|x| x.is_latest() == Some(false)));
    assert_eq!(v.delete_markers().len(), 1);
    assert_eq!(v.delete_markers()[0].version_id(), Some(marker.as_str()));
    assert_eq!(v.delete_markers()[0].is_latest(), Some(true));
    // Paging two at a time, inside the key.
    let p1 = s3.list_object_versions().bucket("vers").max_keys(2).send().await.expect("page");
    assert_eq!(p1.is_truncated(), Some(true));
    assert_eq!(p1.next_key_marker(), Some("k"));
    assert_eq!(p1.next_version_id_marker(), Some(ids[2].as_str()));
    let p2 = s3
        .list_object_versions()
        .bucket("vers")
        .max_keys(2)
        .key_marker("k")
        .version_id_marker(&ids[2])
        .send()
        .await
        .expect("page 2");
    assert_eq!(p2.versions().iter().filter_map(|x| x.version_id()).collect::<Vec<_>>(), [ids[1].as_str(), &ids[0]]);
    let bad = s3.list_object_versions().bucket("vers").key_marker("k").version_id_marker("bogus").send().await;
    assert_eq!(sdk_code(&bad.expect_err("bad marker")).as_deref(), Some("InvalidArgument"));

    // Removing the marker by id brings the object back; removing a version deletes it for good.
    let del = s3.delete_object().bucket("vers").key("k").version_id(&marker).send().await.expect("delete marker");
    assert_eq!((del.delete_marker(), del.version_id()), (Some(true), Some(marker.as_str())));
    assert_eq!(body(&s3, "vers", "k", None).await, b"three");
    s3.delete_object().bucket("vers").key("k").version_id(&ids[2]).send().await.expect("delete v3");
    assert_eq!(body(&s3, "vers", "k", None).await, b"two");
    let err = s3.get_object().bucket("vers").key("k").version_id(&ids[2]).send().await.expect_err("gone");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchVersion"));
    let err = s3.get_object().bucket("vers").key("k").version_id("not-a-version").send().await.expect_err("bad");
    assert_eq!((sdk_code(&err).as_deref(), sdk_status(&err)), (Some("InvalidArgument"), Some(400)));
    server.stop().await;
}
both_styles!(versions_and_markers);

#[tokio::test]
async fn delete_objects_copy_and_suspension() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    versioned(&s3, "multi").await;
    let a1 = s3.put_object().bucket("multi").key("a").body(ByteStream::from_static(b"a1")).send().await.expect("put");
    let a2 = s3.put_object().bucket("multi").key("a").body(ByteStream::from_static(b"a2")).send().await.expect("put");
    s3.put_object().bucket("multi").key("b").body(ByteStream::from_static(b"b1")).send().await.expect("put");

    // CopyObject of an older version.
    let copy = s3
        .copy_object()
        .bucket("multi")
        .key("c")
        .copy_source(format!("multi/a?versionId={}", a1.version_id().expect("id")))
        .send()
        .await
        .expect("copy");
    assert_eq!(copy.copy_source_version_id(), a1.version_id());
    assert!(copy.version_id().is_some());
    assert_eq!(body(&s3, "multi", "c", None).await, b"a1");

    // DeleteObjects: a marker for b, a permanent delete of a2.
    let delete = Delete::builder()
        .objects(ObjectIdentifier::builder().key("b").build().expect("id"))
        .objects(ObjectIdentifier::builder().key("a").version_id(a2.version_id().expect("id")).build().expect("id"))
        .build()
        .expect("delete");
    let out = s3.delete_objects().bucket("multi").delete(delete).send().await.expect("delete objects");
    let b = out.deleted().iter().find(|d| d.key() == Some("b")).expect("b");
    assert_eq!(b.delete_marker(), Some(true));
    assert!(b.delete_marker_version_id().is_some());
    let a = out.deleted().iter().find(|d| d.key() == Some("a")).expect("a");
    assert_eq!((a.version_id(), a.delete_marker()), (a2.version_id(), None));
    assert_eq!(body(&s3, "multi", "a", None).await, b"a1");

    // Conditional writes see a delete marker as no object.
    s3.put_object()
        .bucket("multi")
        .key("b")
        .if_none_match("*")
        .body(ByteStream::from_static(b"b2"))
        .send()
        .await
        .expect("b is absent");

    // Suspended: writes are the null version, replaced in place; earlier versions stay.
    let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build();
    s3.put_bucket_versioning().bucket("multi").versioning_configuration(conf).send().await.expect("suspend");
    for body_bytes in [&b"n1"[..], b"n2"] {
        let out = s3
            .put_object()
            .bucket("multi")
            .key("a")
            .body(ByteStream::from_static(body_bytes))
            .send()
            .await
            .expect("put");
        assert_eq!(out.version_id(), Some("null"));
    }
    let v = s3.list_object_versions().bucket("multi").prefix("a").send().await.expect("versions");
    let listed: Vec<&str> = v.versions().iter().filter_map(|x| x.version_id()).collect();
    assert_eq!(listed, ["null", a1.version_id().expect("id")]);
    assert_eq!(body(&s3, "multi", "a", Some("null")).await, b"n2");

    // MFA delete cannot be turned on.
    let conf = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Enabled)
        .mfa_delete(MfaDelete::Enabled)
        .build();
    let err = s3.put_bucket_versioning().bucket("multi").versioning_configuration(conf).send().await.expect_err("mfa");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidRequest"));

    // Versions keep a bucket from being deleted, markers included.
    let err = s3.delete_bucket().bucket("multi").send().await.expect_err("versions remain");
    assert_eq!(sdk_code(&err).as_deref(), Some("BucketNotEmpty"));
    server.stop().await;
}

/// Versions survive a restart, and multipart completions are versions too.
#[tokio::test]
async fn versions_survive_restart_and_multipart_completes_are_versions() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    versioned(&s3, "keep").await;
    let first =
        s3.put_object().bucket("keep").key("k").body(ByteStream::from_static(b"first")).send().await.expect("put");
    let up = s3.create_multipart_upload().bucket("keep").key("k").send().await.expect("create");
    let id = up.upload_id().expect("id");
    let part = s3
        .upload_part()
        .bucket("keep")
        .key("k")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"second"))
        .send()
        .await
        .expect("part");
    let done = s3
        .complete_multipart_upload()
        .bucket("keep")
        .key("k")
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().expect("etag"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete");
    let second = done.version_id().expect("a version").to_owned();
    assert_ne!(Some(second.as_str()), first.version_id());
    let server = server.restart().await;
    let s3 = server.client(ALICE, Style::VirtualHost);
    assert_eq!(body(&s3, "keep", "k", None).await, b"second");
    assert_eq!(body(&s3, "keep", "k", first.version_id()).await, b"first");
    let state = s3.get_bucket_versioning().bucket("keep").send().await.expect("get");
    assert_eq!(state.status(), Some(&BucketVersioningStatus::Enabled));
    server.stop().await;
}

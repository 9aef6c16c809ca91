use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

use crate::both_styles;
use crate::common::*;

async fn bucket_lifecycle(style: Style) {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, style);
    s3.create_bucket().bucket("photos").send().await.expect("create");

    let head = s3.head_bucket().bucket("photos").send().await.expect("head");
    assert_eq!(head.bucket_region(), Some(REGION));

    let loc = s3.get_bucket_location().bucket("photos").send().await.expect("location");
    // us-east-1 is an empty constraint on the wire.
    assert_eq!(loc.location_constraint().map(|c| c.as_str()).unwrap_or(""), "");

    let list = s3.list_buckets().send().await.expect("list");
    let names: Vec<_> = list.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["photos"]);
    assert_eq!(list.owner().and_then(|o| o.id()), Some(ALICE.id));
    assert_eq!(list.owner().and_then(|o| o.display_name()), Some(ALICE.name));
    assert!(list.buckets()[0].creation_date().is_some());

    // Re-creating your own bucket in us-east-1 succeeds, as on AWS.
    s3.create_bucket().bucket("photos").send().await.expect("legacy re-create");

    s3.delete_bucket().bucket("photos").send().await.expect("delete");
    let err = s3.head_bucket().bucket("photos").send().await.expect_err("gone");
    assert_eq!(sdk_status(&err), Some(404));
    let err = s3.get_bucket_location().bucket("photos").send().await.expect_err("gone");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchBucket"));
    server.stop().await;
}
both_styles!(bucket_lifecycle);

async fn other_users_bucket(style: Style) {
    let server = TestServer::start().await;
    let alice = server.client(ALICE, style);
    let bob = server.client(BOB, style);
    alice.create_bucket().bucket("alices").send().await.expect("create");

    let err = bob.create_bucket().bucket("alices").send().await.expect_err("taken");
    assert_eq!(sdk_code(&err).as_deref(), Some("BucketAlreadyExists"));
    assert_eq!(sdk_status(&err), Some(409));

    let err = bob.get_bucket_location().bucket("alices").send().await.expect_err("not bob's");
    assert_eq!(sdk_code(&err).as_deref(), Some("AccessDenied"));
    assert_eq!(sdk_status(&err), Some(403));
    let err = bob.head_bucket().bucket("alices").send().await.expect_err("not bob's");
    assert_eq!(sdk_status(&err), Some(403));
    let err = bob.delete_bucket().bucket("alices").send().await.expect_err("not bob's");
    assert_eq!(sdk_code(&err).as_deref(), Some("AccessDenied"));
    let err = bob.create_multipart_upload().bucket("alices").key("k").send().await.expect_err("not bob's");
    assert_eq!(sdk_code(&err).as_deref(), Some("AccessDenied"));

    // Bob sees none of Alice's buckets, and Alice's bucket is untouched.
    assert!(bob.list_buckets().send().await.expect("list").buckets().is_empty());
    alice.head_bucket().bucket("alices").send().await.expect("still there");
    let err = alice
        .head_bucket()
        .bucket("alices")
        .expected_bucket_owner("someone-else")
        .send()
        .await
        .expect_err("wrong expected owner");
    assert_eq!(sdk_status(&err), Some(403));
    server.stop().await;
}
both_styles!(other_users_bucket);

#[tokio::test]
async fn location_constraints() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    let with =
        |c: &str| CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(c)).build();

    let err = s3
        .create_bucket()
        .bucket("west")
        .create_bucket_configuration(with("eu-west-1"))
        .send()
        .await
        .expect_err("wrong region");
    assert_eq!(sdk_code(&err).as_deref(), Some("IllegalLocationConstraintException"));
    assert_eq!(sdk_status(&err), Some(400));
    let err = s3
        .create_bucket()
        .bucket("west")
        .create_bucket_configuration(with("us-east-1"))
        .send()
        .await
        .expect_err("explicit us-east-1");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidLocationConstraint"));
    assert!(s3.list_buckets().send().await.expect("list").buckets().is_empty(), "no bucket after errors");
    server.stop().await;
}

#[tokio::test]
async fn invalid_bucket_names_are_rejected() {
    let server = TestServer::start().await;
    for name in ["ab", "Upper", "under_score", "-dash", "a..b", "192.168.0.1", "xn--punycode"] {
        let resp =
            Raw::new("PUT", &server.host("", Style::Path), &format!("/{name}")).sign(ALICE).send(server.addr).await;
        resp.assert_error(400, "InvalidBucketName");
    }
    let list = server.client(ALICE, Style::Path).list_buckets().send().await.expect("list");
    assert!(list.buckets().is_empty());
    server.stop().await;
}

/// DeleteBucket once answered BucketNotEmpty while only multipart uploads remained. AWS
/// deletes the bucket and its uploads with it; objects still block it.
#[tokio::test]
async fn delete_bucket_takes_its_uploads_but_not_its_objects() {
    let server = TestServer::start_configured(fast_gc).await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("busy").send().await.expect("create");
    let up = s3.create_multipart_upload().bucket("busy").key("k").send().await.expect("upload");
    let id = up.upload_id().expect("id");
    s3.upload_part()
        .bucket("busy")
        .key("k")
        .upload_id(id)
        .part_number(1)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"part"))
        .send()
        .await
        .expect("part");
    s3.put_object()
        .bucket("busy")
        .key("o")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"o"))
        .send()
        .await
        .expect("put");
    let err = s3.delete_bucket().bucket("busy").send().await.expect_err("an object remains");
    assert_eq!(sdk_code(&err).as_deref(), Some("BucketNotEmpty"));
    assert_eq!(sdk_status(&err), Some(409));
    s3.delete_object().bucket("busy").key("o").send().await.expect("delete");
    s3.delete_bucket().bucket("busy").send().await.expect("only uploads left");
    let err = s3.head_bucket().bucket("busy").send().await.expect_err("gone");
    assert_eq!(sdk_status(&err), Some(404));
    // The upload went with it, and so do the part's and the object's bytes.
    s3.create_bucket().bucket("busy").send().await.expect("create again");
    let uploads = s3.list_multipart_uploads().bucket("busy").send().await.expect("list");
    assert!(uploads.uploads().is_empty());
    let err = s3.list_parts().bucket("busy").key("k").upload_id(id).send().await.expect_err("no upload");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchUpload"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while blob_count(&server) > 0 {
        assert!(std::time::Instant::now() < deadline, "blobs were not reclaimed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn list_buckets_paginates() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    for b in ["b-1", "b-2", "b-3", "c-1", "c-2"] {
        s3.create_bucket().bucket(b).send().await.expect("create");
    }
    server.client(BOB, Style::Path).create_bucket().bucket("b-bob").send().await.expect("create");

    let p1 = s3.list_buckets().max_buckets(2).send().await.expect("page 1");
    let names = |o: &aws_sdk_s3::operation::list_buckets::ListBucketsOutput| {
        o.buckets().iter().filter_map(|b| b.name().map(str::to_owned)).collect::<Vec<_>>()
    };
    assert_eq!(names(&p1), ["b-1", "b-2"]);
    let token = p1.continuation_token().expect("more pages").to_owned();
    let p2 = s3.list_buckets().max_buckets(2).continuation_token(&token).send().await.expect("page 2");
    assert_eq!(names(&p2), ["b-3", "c-1"]);
    let p3 = s3
        .list_buckets()
        .max_buckets(2)
        .continuation_token(p2.continuation_token().expect("more"))
        .send()
        .await
        .expect("page 3");
    assert_eq!(names(&p3), ["c-2"]);
    assert_eq!(p3.continuation_token(), None);

    let c = s3.list_buckets().prefix("c-").send().await.expect("prefix");
    assert_eq!(names(&c), ["c-1", "c-2"]);
    assert_eq!(c.prefix(), Some("c-"));

    let err = s3.list_buckets().max_buckets(0).send().await.expect_err("zero");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidArgument"));
    let err = s3.list_buckets().continuation_token("***").send().await.expect_err("bad token");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidArgument"));
    server.stop().await;
}

#[tokio::test]
async fn unimplemented_operations_name_themselves() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("bkt1").send().await.expect("create");
    let err = s3.get_bucket_website().bucket("bkt1").send().await.expect_err("not implemented");
    assert_eq!(sdk_code(&err).as_deref(), Some("NotImplemented"));
    assert_eq!(sdk_status(&err), Some(501));
    assert!(
        err.as_service_error()
            .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::message(e))
            .is_some_and(|m| m.contains("GetBucketWebsite"))
    );
    server.stop().await;
}

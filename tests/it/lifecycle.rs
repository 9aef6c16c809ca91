//! Lifecycle configuration through the AWS SDK: validation, the headers that announce
//! expiration and abort dates, and the worker acting (with one-second "days").

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionExpiration,
    Tag, VersioningConfiguration,
};

use crate::common::*;

fn rule(id: &str, prefix: &str) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
}

async fn put_rules(s3: &Client, bucket: &str, rules: Vec<LifecycleRule>) {
    let conf = BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().expect("configuration");
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(conf)
        .send()
        .await
        .expect("put rules");
}

/// Waits until `f` is true, failing after 15 s.
async fn eventually<F, Fut>(what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !f().await {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn rules_are_stored_validated_and_announced() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("rules").send().await.expect("bucket");
    let err = s3.get_bucket_lifecycle_configuration().bucket("rules").send().await.expect_err("none yet");
    assert_eq!((sdk_code(&err).as_deref(), sdk_status(&err)), (Some("NoSuchLifecycleConfiguration"), Some(404)));

    let tagged = LifecycleRule::builder()
        .id("tagged-logs")
        .status(ExpirationStatus::Enabled)
        .filter(
            LifecycleRuleFilter::builder()
                .and(
                    LifecycleRuleAndOperator::builder()
                        .prefix("logs/")
                        .tags(Tag::builder().key("class").value("debug").build().expect("tag"))
                        .object_size_greater_than(10)
                        .build(),
                )
                .build(),
        )
        .expiration(LifecycleExpiration::builder().days(30).build())
        .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(7).build())
        .build()
        .expect("rule");
    let uploads = rule("uploads", "big/")
        .abort_incomplete_multipart_upload(AbortIncompleteMultipartUpload::builder().days_after_initiation(3).build())
        .build()
        .expect("rule");
    let everything =
        rule("everything", "").expiration(LifecycleExpiration::builder().days(365).build()).build().expect("rule");
    put_rules(&s3, "rules", vec![tagged, uploads, everything]).await;
    let got = s3.get_bucket_lifecycle_configuration().bucket("rules").send().await.expect("get");
    let ids: Vec<&str> = got.rules().iter().filter_map(|r| r.id()).collect();
    assert_eq!(ids, ["tagged-logs", "uploads", "everything"]);
    let and = got.rules()[0].filter().and_then(|f| f.and()).expect("and");
    assert_eq!((and.prefix(), and.object_size_greater_than(), and.tags().len()), (Some("logs/"), Some(10), 1));
    assert_eq!(got.rules()[0].expiration().and_then(|e| e.days()), Some(30));
    assert_eq!(got.rules()[1].abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()), Some(3));

    // PUT, GET and HEAD announce the expiry of a matching object: midnight UTC after the days.
    let put = s3.put_object().bucket("rules").key("a").body(ByteStream::from_static(b"x")).send().await.expect("put");
    let expiration = put.expiration().expect("x-amz-expiration");
    assert!(expiration.starts_with("expiry-date=\"") && expiration.contains("00:00:00 GMT\""), "{expiration}");
    assert!(expiration.ends_with("rule-id=\"everything\""), "{expiration}");
    let head = s3.head_object().bucket("rules").key("a").send().await.expect("head");
    assert_eq!(head.expiration(), Some(expiration));
    // An upload under big/ announces when it will be aborted, in every step.
    let up = s3.create_multipart_upload().bucket("rules").key("big/file").send().await.expect("create");
    let abort_date = up.abort_date().expect("abort date");
    assert_eq!(up.abort_rule_id(), Some("uploads"));
    let (secs, midnight) = (abort_date.secs(), abort_date.secs() % 86_400 == 0);
    assert!(midnight, "{secs}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!(secs > now + 3 * 86_400 - 86_400 && secs <= now + 4 * 86_400, "{secs} vs {now}");
    let part = s3
        .upload_part()
        .bucket("rules")
        .key("big/file")
        .upload_id(up.upload_id().expect("id"))
        .part_number(1)
        .body(ByteStream::from_static(b"p"))
        .send()
        .await
        .expect("part");
    assert!(part.e_tag().is_some());
    // The SDK does not surface UploadPart's abort headers; they are on the wire.
    let raw = Raw::new(
        "PUT",
        &server.host("rules", Style::Path),
        &format!("/rules/big/file?partNumber=2&uploadId={}", up.upload_id().expect("id")),
    )
    .body(b"p2")
    .sign(ALICE)
    .send(server.addr)
    .await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("x-amz-abort-rule-id"), Some("uploads"));
    assert!(raw.header("x-amz-abort-date").is_some_and(|d| d.ends_with("00:00:00 GMT")));
    let parts = s3.list_parts().bucket("rules").key("big/file").upload_id(up.upload_id().expect("id")).send().await;
    assert_eq!(parts.expect("list parts").abort_rule_id(), Some("uploads"));

    // AWS's validation.
    let bad = rule("zero", "").expiration(LifecycleExpiration::builder().days(0).build()).build().expect("rule");
    let conf = BucketLifecycleConfiguration::builder().rules(bad).build().expect("configuration");
    let err = s3.put_bucket_lifecycle_configuration().bucket("rules").lifecycle_configuration(conf).send().await;
    assert_eq!(sdk_code(&err.expect_err("days 0")).as_deref(), Some("InvalidArgument"));
    let no_action = rule("none", "").build().expect("rule");
    let conf = BucketLifecycleConfiguration::builder().rules(no_action).build().expect("configuration");
    let err = s3.put_bucket_lifecycle_configuration().bucket("rules").lifecycle_configuration(conf).send().await;
    assert_eq!(sdk_code(&err.expect_err("no action")).as_deref(), Some("InvalidRequest"));

    s3.delete_bucket_lifecycle().bucket("rules").send().await.expect("delete");
    let err = s3.get_bucket_lifecycle_configuration().bucket("rules").send().await.expect_err("deleted");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchLifecycleConfiguration"));
    let put = s3.put_object().bucket("rules").key("b").body(ByteStream::from_static(b"x")).send().await.expect("put");
    assert_eq!(put.expiration(), None);
    server.stop().await;
}

fn fast(c: &mut s3d::config::Config) {
    fast_gc(c);
    c.lifecycle =
        s3d::storage::expiry::LifecycleSettings { day: Duration::from_secs(1), interval: Duration::from_millis(250) };
}

/// With one-second days the worker's actions can be watched: expired objects go (or get a
/// delete marker in a versioned bucket), noncurrent versions go, stale uploads are aborted
/// and their parts reclaimed.
#[tokio::test]
async fn the_worker_applies_the_rules() {
    let server = TestServer::start_configured(fast).await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("plain").send().await.expect("bucket");
    s3.put_object().bucket("plain").key("tmp/a").body(ByteStream::from_static(b"a")).send().await.expect("put");
    s3.put_object().bucket("plain").key("keep/b").body(ByteStream::from_static(b"b")).send().await.expect("put");
    let up = s3.create_multipart_upload().bucket("plain").key("tmp/upload").send().await.expect("create");
    s3.upload_part()
        .bucket("plain")
        .key("tmp/upload")
        .upload_id(up.upload_id().expect("id"))
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .expect("part");
    let expire = rule("expire-tmp", "tmp/")
        .expiration(LifecycleExpiration::builder().days(1).build())
        .abort_incomplete_multipart_upload(AbortIncompleteMultipartUpload::builder().days_after_initiation(1).build())
        .build()
        .expect("rule");
    put_rules(&s3, "plain", vec![expire]).await;
    eventually("tmp/a expired and the upload aborted", || async {
        let listed = s3.list_objects_v2().bucket("plain").send().await.expect("list");
        let uploads = s3.list_multipart_uploads().bucket("plain").send().await.expect("uploads");
        listed.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>() == ["keep/b"]
            && uploads.uploads().is_empty()
    })
    .await;
    // The part's bytes and the object's go after the grace period.
    eventually("blobs reclaimed", || async { blob_count(&server) == 1 }).await;

    // Versioned: expiry writes a marker, and noncurrent versions then go.
    s3.create_bucket().bucket("versioned").send().await.expect("bucket");
    let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket("versioned").versioning_configuration(conf).send().await.expect("enable");
    s3.put_object().bucket("versioned").key("k").body(ByteStream::from_static(b"v1")).send().await.expect("put");
    let all = rule("all", "")
        .expiration(LifecycleExpiration::builder().days(1).build())
        .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(1).build())
        .build()
        .expect("rule");
    put_rules(&s3, "versioned", vec![all]).await;
    eventually("a delete marker, then the noncurrent version gone", || async {
        let v = s3.list_object_versions().bucket("versioned").send().await.expect("versions");
        v.versions().is_empty() && v.delete_markers().len() == 1
    })
    .await;
    let err = s3.get_object().bucket("versioned").key("k").send().await.expect_err("expired");
    assert_eq!(sdk_code(&err).as_deref(), Some("NoSuchKey"));
    server.stop().await;
}

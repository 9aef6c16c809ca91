//! Object and bucket tagging:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectTagging.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectTagging.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjectTagging.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketTagging.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketTagging.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketTagging.html>

use http::StatusCode;
use serde::Deserialize;

use super::data;
use super::object::get::visible_version;
use super::{bucket_setting, read_document, store_bucket_setting};
use crate::s3::headers::{TagLimit, validate_tags};
use crate::s3::xml::{ElementLimits, XmlWriter, from_xml};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};
use crate::storage::{BucketSetting, BucketSettingKind, ObjectChange};

#[derive(Deserialize)]
struct Tagging {
    #[serde(rename = "TagSet")]
    tag_set: TagSet,
}

#[derive(Deserialize)]
struct TagSet {
    #[serde(rename = "Tag", default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: String,
}

/// A `<Tagging><TagSet>` document, validated for `limit`.
fn parse(doc: &[u8], limit: TagLimit) -> Result<Vec<(String, String)>, S3Error> {
    // The element bound only stops floods; the tag limits are checked by count below.
    let t: Tagging = from_xml(doc, ElementLimits::list("Tag", 1000, 2))?;
    validate_tags(t.tag_set.tags.into_iter().map(|t| (t.key, t.value)).collect(), limit)
}

/// The tags of an object in a `<Tagging>` document (a POST form's `tagging` field).
pub fn parse_object_tags(doc: &[u8]) -> Result<Vec<(String, String)>, S3Error> {
    parse(doc, TagLimit::Object)
}

fn render(tags: &[(String, String)]) -> bytes::Bytes {
    let mut w = XmlWriter::new("Tagging");
    w.start("TagSet");
    for (k, v) in tags {
        w.start("Tag").elem("Key", k).elem("Value", v).end();
    }
    w.finish()
}

const MAX_BODY: usize = 64 * 1024;

pub async fn put_object(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let (bucket, key) = (cx.bucket()?, cx.key()?);
    let version = data::version_param(cx)?;
    let headers = req.headers.clone();
    let tags = parse(&read_document(cx, req, MAX_BODY).await?, TagLimit::Object)?;
    // Checked here, with the tags the body sets (a policy may name the tags it allows).
    let facts = crate::s3::RequestFacts { tags: Some(&tags), ..cx.facts(&headers) };
    cx.s3.authorize(cx.auth, bucket, crate::s3::OpName::PutObjectTagging, Some(key), &facts).await?;
    let id = cx
        .s3
        .meta
        .update_object(&bucket.name, key, version, ObjectChange::Tags(tags))
        .await
        .map_err(|e| not_found(e, key))?;
    Ok(data::version_header(S3Response::new(StatusCode::OK), bucket, id))
}

pub async fn get_object(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let (bucket, key) = (cx.bucket()?, cx.key()?);
    let version = data::version_param(cx)?;
    let object = visible_version(cx.s3.meta.get_object(&bucket.name, key, version).await?, key, version, "GET")?;
    Ok(data::version_header(S3Response::xml(render(&object.tags)), bucket, object.version_id))
}

pub async fn delete_object(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let (bucket, key) = (cx.bucket()?, cx.key()?);
    let version = data::version_param(cx)?;
    let id = cx
        .s3
        .meta
        .update_object(&bucket.name, key, version, ObjectChange::Tags(Vec::new()))
        .await
        .map_err(|e| not_found(e, key))?;
    Ok(data::version_header(S3Response::new(StatusCode::NO_CONTENT), bucket, id))
}

fn not_found(e: crate::storage::StorageError, key: &str) -> S3Error {
    let err = S3Error::from(e);
    match err.code {
        S3ErrorCode::NoSuchKey | S3ErrorCode::NoSuchVersion => err.field("Key", key),
        _ => err,
    }
}

pub async fn put_bucket(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let tags = parse(&read_document(cx, req, MAX_BODY).await?, TagLimit::Bucket)?;
    let setting = Some(BucketSetting::Tagging(tags));
    store_bucket_setting(cx, BucketSettingKind::Tagging, setting, StatusCode::NO_CONTENT).await
}

pub async fn get_bucket(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    match bucket_setting(cx, BucketSettingKind::Tagging, S3ErrorCode::NoSuchTagSet).await? {
        BucketSetting::Tagging(tags) => Ok(S3Response::xml(render(&tags))),
        _ => Err(S3Error::internal("a setting of another kind")),
    }
}

pub async fn delete_bucket(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    store_bucket_setting(cx, BucketSettingKind::Tagging, None, StatusCode::NO_CONTENT).await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::s3::xml::fuzzing::{arbitrary_document, config};

    #[test]
    fn tag_sets_as_sdks_send_them() {
        let doc = b"<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet><Tag><Key>a b</Key><Value></Value></Tag><Tag><Key>k</Key><Value>v/1</Value></Tag></TagSet></Tagging>";
        assert_eq!(
            parse(doc, TagLimit::Object).expect("ok"),
            vec![("a b".to_string(), String::new()), ("k".to_string(), "v/1".to_string())]
        );
        let code = |doc: &str, limit| parse(doc.as_bytes(), limit).expect_err(doc).code;
        let tags = |n: usize| {
            let t: String = (0..n).map(|i| format!("<Tag><Key>k{i}</Key><Value>v</Value></Tag>")).collect();
            format!("<Tagging><TagSet>{t}</TagSet></Tagging>")
        };
        assert_eq!(code(&tags(11), TagLimit::Object), S3ErrorCode::InvalidTag);
        assert!(parse(tags(11).as_bytes(), TagLimit::Bucket).is_ok());
        assert_eq!(code(&tags(51), TagLimit::Bucket), S3ErrorCode::InvalidTag);
        let dup = "<Tagging><TagSet><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key><Value>2</Value></Tag></TagSet></Tagging>";
        assert_eq!(code(dup, TagLimit::Object), S3ErrorCode::InvalidTag);
        assert_eq!(code("<Tagging></Tagging>", TagLimit::Object), S3ErrorCode::MalformedXML);
        assert_eq!(
            code("<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>", TagLimit::Object),
            S3ErrorCode::MalformedXML
        );
        let system = "<Tagging><TagSet><Tag><Key>aws:x</Key><Value>1</Value></Tag></TagSet></Tagging>";
        assert_eq!(code(system, TagLimit::Object), S3ErrorCode::InvalidTag);
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn fuzz_tagging_bodies(doc in arbitrary_document(&["Tagging", "TagSet", "Tag", "Key", "Value"])) {
            if let Err(e) = parse(doc.as_bytes(), TagLimit::Object) {
                prop_assert!(matches!(e.code, S3ErrorCode::MalformedXML | S3ErrorCode::InvalidTag), "{:?}", e.code);
            }
        }
    }
}

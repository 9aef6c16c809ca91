//! PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy, GetBucketPolicyStatus:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketPolicy.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketPolicy.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketPolicyStatus.html>
//!
//! The policy is validated when it is set and kept as the document it was set with, which
//! every node reads from the metadata store; [`crate::s3::policy`] evaluates it.

use http::StatusCode;

use crate::s3::ops::{bucket_setting, read_document, store_bucket_setting};
use crate::s3::policy::{MAX_POLICY_BYTES, Policy};
use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};
use crate::storage::{BucketSetting, BucketSettingKind};

pub async fn put(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let doc = read_document(cx, req, MAX_POLICY_BYTES + 1).await?;
    let policy = Policy::parse(&doc, &bucket.name)?;
    let blocked = super::public_access::of(cx.s3, &bucket.name).await?.is_some_and(|b| b.block_public_policy);
    if blocked && policy.is_public() {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Public policies are blocked by the BlockPublicPolicy block public access setting.",
        ));
    }
    let text = String::from_utf8(doc.to_vec()).map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::MalformedPolicy,
            "Policies must be valid JSON and the first byte must be '{'",
        )
    })?;
    let setting = Some(BucketSetting::Policy(text));
    store_bucket_setting(cx, BucketSettingKind::Policy, setting, StatusCode::NO_CONTENT).await
}

async fn stored(cx: &Ctx<'_>) -> Result<String, S3Error> {
    match bucket_setting(cx, BucketSettingKind::Policy, S3ErrorCode::NoSuchBucketPolicy).await? {
        BucketSetting::Policy(text) => Ok(text),
        _ => Err(S3Error::internal("a setting of another kind")),
    }
}

pub async fn get(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let mut resp = S3Response::new(StatusCode::OK).header("content-type", "application/json");
    resp.body = crate::s3::ResponseBody::Full(stored(cx).await?.into());
    Ok(resp)
}

pub async fn delete(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    store_bucket_setting(cx, BucketSettingKind::Policy, None, StatusCode::NO_CONTENT).await
}

pub async fn status(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let policy = Policy::parse(stored(cx).await?.as_bytes(), &bucket.name)?;
    let mut w = XmlWriter::new("PolicyStatus");
    w.elem("IsPublic", if policy.is_public() { "true" } else { "false" });
    Ok(S3Response::xml(w.finish()))
}

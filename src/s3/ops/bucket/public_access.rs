//! PutPublicAccessBlock, GetPublicAccessBlock, DeletePublicAccessBlock:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutPublicAccessBlock.html>
//!
//! A new bucket gets all four switches on, as AWS creates buckets (one made before s3d had
//! the setting has none). `BlockPublicPolicy` refuses a policy that grants everyone access;
//! `RestrictPublicBuckets` makes such a policy grant nothing to anonymous callers;
//! `BlockPublicAcls` refuses ACLs that grant everyone (or every signed request) anything, and
//! `IgnorePublicAcls` makes such grants count for nothing (see [`crate::s3::acl`]).

use http::StatusCode;
use serde::Deserialize;

use crate::s3::ops::{read_document, store_bucket_setting};
use crate::s3::xml::{ElementLimits, XmlWriter, from_xml};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response, S3Service};
use crate::storage::{BucketSetting, BucketSettingKind, PublicAccessBlock};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BlockXml {
    block_public_acls: Option<String>,
    ignore_public_acls: Option<String>,
    block_public_policy: Option<String>,
    restrict_public_buckets: Option<String>,
}

fn flag(v: Option<String>) -> Result<bool, S3Error> {
    match v.as_deref().map(str::trim) {
        None => Ok(false),
        Some(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Some(f) if f.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
}

fn parse(doc: &[u8]) -> Result<PublicAccessBlock, S3Error> {
    let x: BlockXml = from_xml(doc, ElementLimits { total: 8, repeated: None, depth: 3 })?;
    Ok(PublicAccessBlock {
        block_public_acls: flag(x.block_public_acls)?,
        ignore_public_acls: flag(x.ignore_public_acls)?,
        block_public_policy: flag(x.block_public_policy)?,
        restrict_public_buckets: flag(x.restrict_public_buckets)?,
    })
}

/// The bucket's public access block, if it has one.
pub async fn of(s3: &S3Service, bucket: &str) -> Result<Option<PublicAccessBlock>, S3Error> {
    Ok(match s3.meta.get_bucket_setting(bucket, BucketSettingKind::PublicAccessBlock).await? {
        Some(BucketSetting::PublicAccessBlock(b)) => Some(b),
        _ => None,
    })
}

pub async fn put(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let block = parse(&read_document(cx, req, 4096).await?)?;
    let setting = Some(BucketSetting::PublicAccessBlock(block));
    store_bucket_setting(cx, BucketSettingKind::PublicAccessBlock, setting, StatusCode::OK).await
}

pub async fn get(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let Some(b) = of(cx.s3, &bucket.name).await? else {
        return Err(S3Error::new(S3ErrorCode::NoSuchPublicAccessBlockConfiguration).field("BucketName", &bucket.name));
    };
    let truth = |v: bool| if v { "true" } else { "false" };
    let mut w = XmlWriter::new("PublicAccessBlockConfiguration");
    w.elem("BlockPublicAcls", truth(b.block_public_acls))
        .elem("IgnorePublicAcls", truth(b.ignore_public_acls))
        .elem("BlockPublicPolicy", truth(b.block_public_policy))
        .elem("RestrictPublicBuckets", truth(b.restrict_public_buckets));
    Ok(S3Response::xml(w.finish()))
}

pub async fn delete(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    store_bucket_setting(cx, BucketSettingKind::PublicAccessBlock, None, StatusCode::NO_CONTENT).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_parse_as_aws_sends_them() {
        let doc = b"<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
            <BlockPublicAcls>true</BlockPublicAcls><BlockPublicPolicy>TRUE</BlockPublicPolicy>\
            </PublicAccessBlockConfiguration>";
        let b = parse(doc).expect("valid");
        assert!(b.block_public_acls && b.block_public_policy && !b.ignore_public_acls && !b.restrict_public_buckets);
        let bad =
            b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>";
        assert_eq!(parse(bad).expect_err("bad").code, S3ErrorCode::MalformedXML);
    }

    proptest::proptest! {
        #![proptest_config(crate::s3::xml::fuzzing::config())]

        #[test]
        fn fuzz_public_access_block_bodies(doc in crate::s3::xml::fuzzing::arbitrary_document(&[
            "PublicAccessBlockConfiguration", "BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
            "RestrictPublicBuckets",
        ])) {
            if let Err(e) = parse(doc.as_bytes()) {
                proptest::prop_assert!(e.status().is_client_error(), "{:?}", e.code);
            }
        }
    }
}

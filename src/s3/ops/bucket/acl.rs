//! Object ownership and bucket ACLs:
//! - Put/Get/DeleteBucketOwnershipControls:
//!   <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketOwnershipControls.html>
//! - Put/GetBucketAcl: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketAcl.html>
//!
//! New buckets get `BucketOwnerEnforced` (ACLs disabled, every object the bucket owner's),
//! as AWS creates them, and so do buckets made before s3d had ACLs; a bucket whose ownership
//! controls were deleted behaves as `ObjectWriter`.

use http::StatusCode;
use serde::Deserialize;

use crate::s3::acl::{self, HeaderAcl};
use crate::s3::ops::{read_document, store_bucket_setting};
use crate::s3::xml::{ElementLimits, XmlWriter, from_xml};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};
use crate::storage::{BucketSetting, BucketSettingKind, ObjectOwnership};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ControlsXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleXml {
    object_ownership: Option<String>,
}

/// An `<OwnershipControls>` document: exactly one rule naming one of the three settings.
fn parse(doc: &[u8]) -> Result<ObjectOwnership, S3Error> {
    let x: ControlsXml = from_xml(doc, ElementLimits { total: 8, repeated: Some(("Rule", 2)), depth: 3 })?;
    match x.rules.as_slice() {
        [RuleXml { object_ownership: Some(o) }] => {
            ObjectOwnership::parse(o.trim()).ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))
        }
        _ => Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
}

pub async fn put_ownership(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let ownership = parse(&read_document(cx, req, 4096).await?)?;
    if ownership == ObjectOwnership::BucketOwnerEnforced
        && !acl::owner_only(&acl::bucket_grants(cx.s3, bucket).await?, &bucket.owner.id)
    {
        return Err(S3Error::new(S3ErrorCode::InvalidBucketAclWithObjectOwnership));
    }
    let setting = Some(BucketSetting::OwnershipControls(Some(ownership)));
    store_bucket_setting(cx, BucketSettingKind::OwnershipControls, setting, StatusCode::OK).await
}

pub async fn get_ownership(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let Some(o) = acl::ownership(cx.s3, &bucket.name).await? else {
        return Err(S3Error::new(S3ErrorCode::OwnershipControlsNotFoundError).field("BucketName", &bucket.name));
    };
    let mut w = XmlWriter::new("OwnershipControls");
    w.start("Rule").elem("ObjectOwnership", o.as_str()).end();
    Ok(S3Response::xml(w.finish()))
}

/// Leaves the bucket without ownership controls: it then behaves as `ObjectWriter`.
pub async fn delete_ownership(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let none = Some(BucketSetting::OwnershipControls(None));
    store_bucket_setting(cx, BucketSettingKind::OwnershipControls, none, StatusCode::NO_CONTENT).await
}

pub async fn get(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let grants = if acl::disabled(cx.s3, &bucket.name).await? {
        acl::private(&bucket.owner.id)
    } else {
        acl::bucket_grants(cx.s3, bucket).await?
    };
    Ok(S3Response::xml(acl::render(&bucket.owner, &grants, &cx.s3.users)))
}

pub async fn put(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let grants = acl::requested(cx, req).await?.grants(&bucket.owner.id, &bucket.owner.id);
    if acl::disabled(cx.s3, &bucket.name).await? {
        // A bucket with ACLs disabled takes only an ACL that changes nothing.
        if !acl::owner_only(&grants, &bucket.owner.id) {
            return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported));
        }
        return Ok(S3Response::new(StatusCode::OK));
    }
    if acl::is_public(&grants) && acl::blocks_public_acls(cx.s3, &bucket.name).await? {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    store_bucket_setting(cx, BucketSettingKind::Acl, Some(BucketSetting::Acl(grants)), StatusCode::OK).await
}

/// CreateBucket's `x-amz-object-ownership` and ACL headers: the ownership the bucket gets
/// (`BucketOwnerEnforced` unless it names another) and the ACL it starts with, if any.
pub fn for_new_bucket(
    cx: &Ctx<'_>,
    h: &http::HeaderMap,
) -> Result<(ObjectOwnership, Option<Vec<crate::storage::Grant>>), S3Error> {
    let ownership = match crate::s3::headers::text(h, "x-amz-object-ownership")? {
        None => ObjectOwnership::BucketOwnerEnforced,
        Some(o) => ObjectOwnership::parse(o.trim()).ok_or_else(|| {
            S3Error::invalid_argument("Invalid x-amz-object-ownership header", "x-amz-object-ownership", &o)
        })?,
    };
    let owner = &cx.auth.identity.id;
    let grants = HeaderAcl::from_headers(h, &cx.s3.users)?.map(|a| a.grants(owner, owner));
    match &grants {
        Some(g) if ownership == ObjectOwnership::BucketOwnerEnforced && !acl::owner_only(g, owner) => {
            Err(S3Error::new(S3ErrorCode::InvalidBucketAclWithObjectOwnership))
        }
        // New buckets block public access, so a public ACL cannot be set on one.
        Some(g) if acl::is_public(g) => Err(S3Error::new(S3ErrorCode::InvalidBucketAclWithBlockPublicAccessError)),
        _ => Ok((ownership, grants.filter(|g| !acl::owner_only(g, owner)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(crate::s3::xml::fuzzing::config())]

        #[test]
        fn fuzz_ownership_documents(doc in crate::s3::xml::fuzzing::arbitrary_document(&[
            "OwnershipControls", "Rule", "ObjectOwnership",
        ])) {
            if let Err(e) = parse(doc.as_bytes()) {
                proptest::prop_assert_eq!(e.code, S3ErrorCode::MalformedXML);
            }
        }
    }

    #[test]
    fn ownership_documents() {
        let doc = |o: &str| {
            format!("<OwnershipControls><Rule><ObjectOwnership>{o}</ObjectOwnership></Rule></OwnershipControls>")
        };
        assert_eq!(parse(doc("ObjectWriter").as_bytes()).expect("ok"), ObjectOwnership::ObjectWriter);
        assert_eq!(parse(doc("BucketOwnerPreferred").as_bytes()).expect("ok"), ObjectOwnership::BucketOwnerPreferred);
        for bad in [
            doc("Nobody"),
            "<OwnershipControls></OwnershipControls>".to_owned(),
            "<OwnershipControls><Rule></Rule></OwnershipControls>".to_owned(),
            "<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>".to_owned(),
        ] {
            assert_eq!(parse(bad.as_bytes()).expect_err(&bad).code, S3ErrorCode::MalformedXML);
        }
    }
}

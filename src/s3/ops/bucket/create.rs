//! CreateBucket: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html>

use http::StatusCode;
use serde::Deserialize;

use crate::clock::Timestamp;
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response, body, headers, xml};
use crate::storage::{
    BucketRecord, BucketSetting, BucketSettingKind, ObjectOwnership, PublicAccessBlock, StorageError, Versioning,
};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBucketConfiguration {
    location_constraint: Option<String>,
}

/// The region us-east-1 is the only one where re-creating your own bucket succeeds, and
/// where a LocationConstraint naming it is refused.
const LEGACY_REGION: &str = "us-east-1";

fn check_headers(h: &http::HeaderMap) -> Result<(), S3Error> {
    if headers::text(h, "x-amz-bucket-object-lock-enabled")?.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Object Lock is not implemented by this server",
        ));
    }
    Ok(())
}

fn check_location(constraint: Option<&str>, region: &str) -> Result<(), S3Error> {
    let Some(c) = constraint.filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    let well_formed = c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !well_formed || (c == LEGACY_REGION && region == LEGACY_REGION) {
        return Err(S3Error::new(S3ErrorCode::InvalidLocationConstraint).field("LocationConstraint", c));
    }
    if c != region {
        return Err(S3Error::with_message(
            S3ErrorCode::IllegalLocationConstraintException,
            format!(
                "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
            ),
        ));
    }
    Ok(())
}

/// The optional `<CreateBucketConfiguration>` body.
fn parse_configuration(doc: &[u8]) -> Result<CreateBucketConfiguration, S3Error> {
    if doc.iter().all(u8::is_ascii_whitespace) {
        return Ok(CreateBucketConfiguration::default());
    }
    xml::from_xml(doc, xml::ElementLimits::SMALL)
}

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let name = cx.bucket_name()?;
    check_headers(&req.headers)?;
    let (ownership, grants) = super::acl::for_new_bucket(cx, &req.headers)?;
    let md5 = headers::content_md5(&req.headers)?;
    let doc = body::read_small(req.body, cx.auth.payload, md5, 64 * 1024).await?;
    let config = parse_configuration(&doc)?;
    let region = &cx.s3.config.region;
    check_location(config.location_constraint.as_deref(), region)?;

    let record = BucketRecord {
        name: name.to_owned(),
        owner: cx.owner(),
        region: region.clone(),
        created: Timestamp::now(),
        versioning: Versioning::Unversioned,
    };
    match cx.s3.meta.create_bucket(record).await {
        Ok(()) => {
            // New buckets block public access, as AWS creates them (buckets made before s3d
            // had the setting keep none).
            let block = Some(BucketSetting::PublicAccessBlock(PublicAccessBlock::DEFAULT));
            cx.s3.meta.put_bucket_setting(name, BucketSettingKind::PublicAccessBlock, block).await?;
            // A bucket without the setting has ACLs disabled, so a crash before the writes
            // below leaves no bucket more open than asked.
            if ownership != ObjectOwnership::BucketOwnerEnforced {
                let controls = Some(BucketSetting::OwnershipControls(Some(ownership)));
                cx.s3.meta.put_bucket_setting(name, BucketSettingKind::OwnershipControls, controls).await?;
            }
            if let Some(g) = grants {
                cx.s3.meta.put_bucket_setting(name, BucketSettingKind::Acl, Some(BucketSetting::Acl(g))).await?;
            }
        }
        Err(StorageError::BucketExists { owner_id }) if owner_id == cx.auth.identity.id => {
            if region != LEGACY_REGION {
                return Err(S3Error::new(S3ErrorCode::BucketAlreadyOwnedByYou).field("BucketName", name));
            }
        }
        Err(StorageError::BucketExists { .. }) => {
            return Err(S3Error::new(S3ErrorCode::BucketAlreadyExists).field("BucketName", name));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(S3Response::new(StatusCode::OK).header("location", format!("/{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::s3::xml::fuzzing::{arbitrary_document, config};

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn fuzz_create_bucket_configurations(
            doc in arbitrary_document(&["CreateBucketConfiguration", "LocationConstraint", "Location", "Bucket"])
        ) {
            if let Err(e) = parse_configuration(doc.as_bytes()) {
                prop_assert_eq!(e.code, S3ErrorCode::MalformedXML);
            }
        }
    }

    #[test]
    fn location_constraint_rules() {
        assert!(check_location(None, "us-east-1").is_ok());
        assert!(check_location(Some(""), "eu-west-1").is_ok());
        assert!(check_location(Some("eu-west-1"), "eu-west-1").is_ok());
        assert_eq!(
            check_location(Some("us-east-1"), "us-east-1").expect_err("legacy").code,
            S3ErrorCode::InvalidLocationConstraint
        );
        assert_eq!(
            check_location(Some("eu-west-1"), "us-east-1").expect_err("other").code,
            S3ErrorCode::IllegalLocationConstraintException
        );
        assert_eq!(
            check_location(Some("Mars!"), "us-east-1").expect_err("bad").code,
            S3ErrorCode::InvalidLocationConstraint
        );
    }
}

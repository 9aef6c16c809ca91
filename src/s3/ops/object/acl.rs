//! GetObjectAcl, PutObjectAcl:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectAcl.html>
//!
//! An object's ACL is its owner's full control until set; in a bucket whose ACLs are
//! disabled it stays so (an ACL that would change it is refused).

use http::StatusCode;

use crate::s3::acl;
use crate::s3::ops::data;
use crate::s3::ops::object::get::visible_version;
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};
use crate::storage::{ObjectChange, ObjectOwnership, ObjectRecord};

/// The addressed version (`versionId`, or the latest), if the caller may act on it.
async fn addressed(cx: &Ctx<'_>, method: &str) -> Result<ObjectRecord, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let version = data::version_param(cx)?;
    let object = visible_version(cx.s3.meta.get_object(&bucket.name, key, version).await?, key, version, method)?;
    cx.check_object_grant(&object)?;
    Ok(object)
}

pub async fn get(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let object = addressed(cx, "GET").await?;
    let grants = object.acl.clone().unwrap_or_else(|| acl::private(&object.owner.id));
    let resp = S3Response::xml(acl::render(&object.owner, &grants, &cx.s3.users));
    Ok(data::version_header(resp, cx.bucket()?, object.version_id))
}

pub async fn put(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let object = addressed(cx, "PUT").await?;
    let grants = acl::requested(cx, req, &object.owner.id, &bucket.owner.id).await?;
    let enforced = acl::ownership(cx.s3, &bucket.name).await? == Some(ObjectOwnership::BucketOwnerEnforced);
    if enforced {
        if !acl::owner_only(&grants, &bucket.owner.id) {
            return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported));
        }
    } else {
        if acl::is_public(&grants) && acl::blocks_public_acls(cx.s3, &bucket.name).await? {
            return Err(S3Error::new(S3ErrorCode::AccessDenied));
        }
        let change = ObjectChange::Acl(Some(grants));
        cx.s3.meta.update_object(&bucket.name, &object.key, Some(object.version_id), change).await?;
    }
    Ok(data::version_header(S3Response::new(StatusCode::OK), bucket, object.version_id))
}

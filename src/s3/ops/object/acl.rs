//! GetObjectAcl, PutObjectAcl:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectAcl.html>
//!
//! An object's ACL is its owner's full control until set. In a bucket whose ACLs are
//! disabled every object reads as the bucket owner's, with its full control, and an ACL that
//! would change that is refused.

use http::StatusCode;

use crate::s3::acl;
use crate::s3::ops::data;
use crate::s3::ops::object::get::{hide_absence, visible_version};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};
use crate::storage::{ObjectChange, ObjectRecord, StorageError};

/// The addressed version (`versionId`, or the latest), if the caller may act on it; whether
/// it exists is told only to callers who may list the bucket.
async fn addressed(cx: &Ctx<'_>, h: &http::HeaderMap, method: &str) -> Result<ObjectRecord, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let version = data::version_param(cx)?;
    let found = cx.s3.meta.get_object(&bucket.name, key, version).await?;
    let object = match visible_version(found, key, version, method) {
        Ok(o) => o,
        Err(e) => return Err(hide_absence(cx, h, e).await),
    };
    cx.check_object_grant(&object)?;
    Ok(object)
}

pub async fn get(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let object = addressed(cx, &req.headers, "GET").await?;
    let (owner, grants) = if acl::disabled(cx.s3, &bucket.name).await? {
        (bucket.owner.clone(), acl::private(&bucket.owner.id))
    } else {
        (object.owner.clone(), object.acl.clone().unwrap_or_else(|| acl::private(&object.owner.id)))
    };
    let resp = S3Response::xml(acl::render(&owner, &grants, &cx.s3.users));
    Ok(data::version_header(resp, bucket, object.version_id))
}

pub async fn put(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let h = req.headers.clone();
    let requested = acl::requested(cx, req).await?;
    // The version is judged, and changed only if it is still the one judged (an overwrite
    // of a `null` version meanwhile makes a new one, judged again).
    for _ in 0..3 {
        let object = addressed(cx, &h, "PUT").await?;
        if acl::disabled(cx.s3, &bucket.name).await? {
            if !acl::owner_only(&requested.grants(&bucket.owner.id, &bucket.owner.id), &bucket.owner.id) {
                return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported));
            }
            return Ok(data::version_header(S3Response::new(StatusCode::OK), bucket, object.version_id));
        }
        let grants = requested.grants(&object.owner.id, &bucket.owner.id);
        if acl::is_public(&grants) && acl::blocks_public_acls(cx.s3, &bucket.name).await? {
            return Err(S3Error::new(S3ErrorCode::AccessDenied));
        }
        let change = ObjectChange::Acl { grants: Some(grants), of: object.version_key };
        match cx.s3.meta.update_object(&bucket.name, &object.key, Some(object.version_id), change).await {
            Ok(id) => return Ok(data::version_header(S3Response::new(StatusCode::OK), bucket, id)),
            Err(StorageError::PreconditionFailed | StorageError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(S3Error::new(S3ErrorCode::ConditionalRequestConflict))
}

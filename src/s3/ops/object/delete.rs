//! DeleteObject: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObject.html>

use http::StatusCode;

use crate::s3::ops::data;
use crate::s3::{Ctx, S3Error, S3Request, S3Response};
use crate::storage::DeleteOutcome;

/// 204 whether or not the object existed. In a versioned bucket a delete without a version
/// id writes a delete marker; with one it removes that version for good.
pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let version = data::version_param(cx)?;
    let outcome = cx.s3.meta.delete_object(&bucket.name, key, version, &cx.owner()).await?;
    Ok(deleted_headers(S3Response::new(StatusCode::NO_CONTENT), &outcome, version))
}

/// `x-amz-version-id` and `x-amz-delete-marker` as AWS reports a delete: the marker written,
/// or the version named (and whether it was a marker).
pub fn deleted_headers(
    resp: S3Response,
    outcome: &DeleteOutcome,
    requested: Option<crate::storage::VersionId>,
) -> S3Response {
    match (&outcome.marker, requested) {
        (Some(m), _) => resp.header("x-amz-delete-marker", "true").header("x-amz-version-id", m.version_id.to_text()),
        (None, Some(v)) => {
            let resp = resp.header("x-amz-version-id", v.to_text());
            if outcome.removed.as_ref().is_some_and(|r| r.delete_marker) {
                resp.header("x-amz-delete-marker", "true")
            } else {
                resp
            }
        }
        (None, None) => resp,
    }
}

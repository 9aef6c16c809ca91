//! DeleteObject: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObject.html>

use http::StatusCode;

use crate::s3::ops::data;
use crate::s3::{Ctx, S3Error, S3Request, S3Response};

/// 204 whether or not the object existed, as on an unversioned AWS bucket.
pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    data::check_version_id(cx)?;
    cx.s3.meta.delete_object(&bucket.name, key).await?;
    Ok(S3Response::new(StatusCode::NO_CONTENT))
}

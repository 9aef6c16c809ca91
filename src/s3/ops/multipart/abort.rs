//! AbortMultipartUpload: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_AbortMultipartUpload.html>
//!
//! Every part becomes garbage for the collector. A part still being uploaded when the abort
//! lands finds its upload gone at commit time and its blob is discarded the same way.

use http::StatusCode;

use super::upload_id;
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};

pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let id = upload_id(cx);
    if id.is_empty() {
        return Err(S3Error::new(S3ErrorCode::NoSuchUpload).field("UploadId", id));
    }
    cx.s3.meta.delete_upload(&bucket.name, key, id).await.map_err(|e| S3Error::from(e).field("UploadId", id))?;
    Ok(S3Response::new(StatusCode::NO_CONTENT))
}

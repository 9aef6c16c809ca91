//! AbortMultipartUpload: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_AbortMultipartUpload.html>

use http::StatusCode;

use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};

pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let upload_id = cx.query.get("uploadId").unwrap_or_default();
    if upload_id.is_empty() {
        return Err(S3Error::new(S3ErrorCode::NoSuchUpload).field("UploadId", upload_id));
    }
    cx.s3
        .meta
        .delete_upload(&bucket.name, key, upload_id)
        .await
        .map_err(|e| S3Error::from(e).field("UploadId", upload_id))?;
    Ok(S3Response::new(StatusCode::NO_CONTENT))
}

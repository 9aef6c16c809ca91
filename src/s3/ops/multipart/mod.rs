//! The multipart upload lifecycle.

pub mod abort;
pub mod complete;
pub mod create;
pub mod list_parts;
pub mod list_uploads;
pub mod upload_part;

use crate::s3::{Ctx, S3Error, S3ErrorCode};
use crate::storage::UploadRecord;

/// The `uploadId` query parameter of the request.
pub fn upload_id<'a>(cx: &'a Ctx<'_>) -> &'a str {
    cx.query.get("uploadId").unwrap_or_default()
}

/// The upload the request names, which must exist for the request's key.
pub async fn live_upload(cx: &Ctx<'_>) -> Result<UploadRecord, S3Error> {
    let id = upload_id(cx);
    if id.is_empty() {
        return Err(S3Error::new(S3ErrorCode::NoSuchUpload).field("UploadId", id));
    }
    cx.s3.meta.get_upload(&cx.bucket()?.name, cx.key()?, id).await.map_err(|e| S3Error::from(e).field("UploadId", id))
}

//! DeleteBucket: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html>

use http::StatusCode;

use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};
use crate::storage::StorageError;

pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let name = cx.bucket_name()?;
    cx.s3.meta.delete_bucket(name).await.map_err(|e| match e {
        StorageError::BucketNotEmpty => S3Error::new(S3ErrorCode::BucketNotEmpty).field("BucketName", name),
        e => e.into(),
    })?;
    Ok(S3Response::new(StatusCode::NO_CONTENT))
}

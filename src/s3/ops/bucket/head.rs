//! HeadBucket: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html>

use http::StatusCode;

use crate::s3::{Ctx, S3Error, S3Request, S3Response};

pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    Ok(S3Response::new(StatusCode::OK)
        .header("x-amz-bucket-region", &bucket.region)
        .header("x-amz-access-point-alias", "false"))
}

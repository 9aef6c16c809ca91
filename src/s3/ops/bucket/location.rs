//! GetBucketLocation: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html>

use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3Request, S3Response};

pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let mut w = XmlWriter::new("LocationConstraint");
    // us-east-1 is reported as an empty constraint, as AWS does.
    if bucket.region != "us-east-1" {
        w.text(&bucket.region);
    }
    Ok(S3Response::xml(w.finish()))
}

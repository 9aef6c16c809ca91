//! PutObject: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html>

use http::StatusCode;

use crate::s3::ops::data::{self, MAX_PUT_SIZE};
use crate::s3::{Ctx, S3Error, S3Request, S3Response, checksum, headers};
use crate::storage::WriteCondition;

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let h = &req.headers;
    // Everything is checked from the headers before the body is read.
    let attributes = headers::object_attributes(h)?;
    let condition = data::write_condition(h)?;
    let checksum = checksum::request_checksum_with(h, Some(cx.query))?;
    let declared = data::declared_length(cx, h, MAX_PUT_SIZE)?;
    let ownership = crate::s3::acl::new_object(cx, h).await?;
    // Fail fast on a condition that already fails; it is checked again at commit.
    if condition != WriteCondition::None {
        let current = cx.s3.meta.get_object(&bucket.name, key, None).await?;
        condition.check(current.as_ref()).map_err(data::condition_error)?;
    }

    let keep = data::Keep::object(&cx.s3.storage, declared);
    let stored = data::store_body(cx, req.body, h, declared, MAX_PUT_SIZE, &checksum, keep).await?;
    let (algorithm, sum) = stored.checksum();
    let object = data::single_part_object(&bucket.name, key, ownership, stored.part(1), attributes);
    let resp = S3Response::new(StatusCode::OK)
        .header("etag", data::quoted(&object.etag))
        .header(algorithm.header_name(), sum)
        .header("x-amz-checksum-type", "FULL_OBJECT");
    let resp = data::expiration_header(resp, data::lifecycle_rules(cx).await?.as_ref(), &object);
    let outcome = cx.s3.storage.put_object(object, &condition).await.map_err(data::condition_error)?;
    Ok(data::version_header(resp, bucket, outcome.version_id))
}

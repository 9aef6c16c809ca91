//! PutObject: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html>

use http::StatusCode;

use crate::clock::Timestamp;
use crate::s3::ops::data::{self, MAX_PUT_SIZE};
use crate::s3::{Ctx, S3Error, S3Request, S3Response, checksum, headers};
use crate::storage::{ObjectRecord, PartRecord, WriteCondition};

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let h = &req.headers;
    // Everything is checked from the headers before the body is read.
    let headers::ObjectAttributes { storage_class, content, user_metadata, tags } = headers::object_attributes(h)?;
    let condition = data::write_condition(h)?;
    let checksum = checksum::request_checksum_with(h, Some(cx.query))?;
    let declared = data::declared_length(cx, h, MAX_PUT_SIZE)?;
    // Fail fast on a condition that already fails; it is checked again at commit.
    if condition != WriteCondition::None {
        let current = cx.s3.meta.get_object(&bucket.name, key).await?;
        condition.check(current.as_ref()).map_err(data::condition_error)?;
    }

    let stored = data::store_body(cx, req.body, h, declared, MAX_PUT_SIZE, &checksum).await?;
    let (algorithm, sum) = stored.checksum();
    let checksums = stored.records();
    let data::Stored { blob, digest } = stored;
    let now = Timestamp::now();
    let object = ObjectRecord {
        bucket: bucket.name.clone(),
        key: key.to_owned(),
        size: digest.len,
        etag: hex::encode(digest.md5),
        last_modified: now,
        owner: cx.owner(),
        storage_class: storage_class.as_str().to_owned(),
        headers: content,
        user_metadata,
        tags,
        parts: vec![PartRecord {
            part_number: 1,
            blob: blob.id.clone(),
            size: digest.len,
            md5: digest.md5,
            last_modified: now,
            checksums,
        }],
        multipart: false,
        checksum: Some((algorithm.as_str().to_owned(), "FULL_OBJECT".to_owned(), sum.clone())),
    };
    let etag = object.etag.clone();
    cx.s3.storage.put_object(object, &condition).await.map_err(data::condition_error)?;
    Ok(S3Response::new(StatusCode::OK)
        .header("etag", data::quoted(&etag))
        .header(algorithm.header_name(), sum)
        .header("x-amz-checksum-type", "FULL_OBJECT"))
}

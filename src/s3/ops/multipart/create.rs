//! CreateMultipartUpload: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html>
//!
//! Everything the completed object will carry (content headers, user metadata, tags, storage
//! class, checksum settings) is validated and stored with the upload before the 200.

use crate::clock::Timestamp;
use crate::s3::ops::data;
use crate::s3::types::new_upload_id;
use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3Request, S3Response, body, headers};
use crate::storage::UploadRecord;

/// A CreateMultipartUpload body is empty; anything larger than this is refused unread.
const MAX_BODY: usize = 64 * 1024;

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let h = &req.headers;

    // Parse and validate every header before the body is touched, so that with
    // `Expect: 100-continue` a bad request is answered without the client sending anything.
    let headers::ObjectAttributes { storage_class, content, user_metadata, tags } = headers::object_attributes(h)?;
    let checksum = headers::checksum_settings(h)?;
    let (owner, acl) = crate::s3::acl::new_object(cx, h).await?;
    let md5 = headers::content_md5(h)?;
    body::read_small(req.body, cx.auth.payload, md5, MAX_BODY).await?;

    let upload = UploadRecord {
        bucket: bucket.name.clone(),
        key: key.to_owned(),
        upload_id: new_upload_id()?,
        owner,
        initiator: cx.caller(),
        initiated: Timestamp::now(),
        storage_class,
        headers: content,
        user_metadata,
        tags,
        checksum_algorithm: checksum.map(|(a, _)| a),
        checksum_type: checksum.map(|(_, t)| t),
        acl,
    };
    cx.s3.meta.create_upload(upload.clone()).await?;

    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.elem("Bucket", &upload.bucket).elem("Key", &upload.key).elem("UploadId", &upload.upload_id);
    let mut resp = data::abort_headers(S3Response::xml(w.finish()), data::lifecycle_rules(cx).await?.as_ref(), &upload);
    if let Some((algorithm, kind)) = checksum {
        resp = resp.header("x-amz-checksum-algorithm", algorithm.as_str()).header("x-amz-checksum-type", kind.as_str());
    }
    Ok(resp)
}

//! One module per S3 operation: parse the request, execute against storage, render the
//! response. [`call`] is the registry that maps an [`OpName`] to its module.

mod bucket;
pub mod data;
mod keepalive;
mod multipart;
mod object;
mod tagging;

use super::{Ctx, OpName, S3Error, S3ErrorCode, S3Request, S3Response};

/// Who may call an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Any authenticated user (ListBuckets, CreateBucket).
    AnyUser,
    /// The owner of the addressed bucket, which must exist.
    BucketOwner,
    /// Recognised, but not offered by this server.
    NotImplemented,
}

pub fn access(op: OpName) -> Access {
    use OpName::*;
    match op {
        ListBuckets | CreateBucket => Access::AnyUser,
        HeadBucket
        | DeleteBucket
        | GetBucketLocation
        | ListObjects
        | ListObjectsV2
        | ListObjectVersions
        | PutBucketVersioning
        | GetBucketVersioning
        | PutBucketLifecycleConfiguration
        | GetBucketLifecycleConfiguration
        | DeleteBucketLifecycle
        | PutBucketTagging
        | GetBucketTagging
        | DeleteBucketTagging
        | PutObjectTagging
        | GetObjectTagging
        | DeleteObjectTagging
        | GetObjectAttributes
        | PutObject
        | GetObject
        | HeadObject
        | DeleteObject
        | DeleteObjects
        | CopyObject
        | CreateMultipartUpload
        | ListMultipartUploads
        | AbortMultipartUpload
        | UploadPart
        | UploadPartCopy
        | ListParts
        | CompleteMultipartUpload => Access::BucketOwner,
        _ => Access::NotImplemented,
    }
}

pub fn not_implemented(op: OpName) -> S3Error {
    S3Error::with_message(S3ErrorCode::NotImplemented, format!("{op} is not implemented by this server"))
}

pub async fn call(op: OpName, cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    use OpName::*;
    match op {
        ListBuckets => bucket::list::call(cx, req).await,
        CreateBucket => bucket::create::call(cx, req).await,
        HeadBucket => bucket::head::call(cx, req).await,
        DeleteBucket => bucket::delete::call(cx, req).await,
        GetBucketLocation => bucket::location::call(cx, req).await,
        PutBucketVersioning => bucket::versioning::put(cx, req).await,
        GetBucketVersioning => bucket::versioning::get(cx, req).await,
        PutBucketLifecycleConfiguration => bucket::lifecycle::put(cx, req).await,
        GetBucketLifecycleConfiguration => bucket::lifecycle::get(cx, req).await,
        DeleteBucketLifecycle => bucket::lifecycle::delete(cx, req).await,
        PutBucketTagging => tagging::put_bucket(cx, req).await,
        GetBucketTagging => tagging::get_bucket(cx, req).await,
        DeleteBucketTagging => tagging::delete_bucket(cx, req).await,
        PutObjectTagging => tagging::put_object(cx, req).await,
        GetObjectTagging => tagging::get_object(cx, req).await,
        DeleteObjectTagging => tagging::delete_object(cx, req).await,
        GetObjectAttributes => object::attributes::call(cx, req).await,
        CreateMultipartUpload => multipart::create::call(cx, req).await,
        ListMultipartUploads => multipart::list_uploads::call(cx, req).await,
        AbortMultipartUpload => multipart::abort::call(cx, req).await,
        UploadPart => multipart::upload_part::call(cx, req).await,
        UploadPartCopy => multipart::upload_part::call_copy(cx, req).await,
        ListParts => multipart::list_parts::call(cx, req).await,
        CompleteMultipartUpload => multipart::complete::call(cx, req).await,
        PutObject => object::put::call(cx, req).await,
        GetObject => object::get::call(cx, req, false).await,
        HeadObject => object::get::call(cx, req, true).await,
        DeleteObject => object::delete::call(cx, req).await,
        DeleteObjects => object::delete_many::call(cx, req).await,
        CopyObject => object::copy::call(cx, req).await,
        ListObjects => object::list::call(cx, req, object::list::Flavor::V1).await,
        ListObjectsV2 => object::list::call(cx, req, object::list::Flavor::V2).await,
        ListObjectVersions => object::list::call(cx, req, object::list::Flavor::Versions).await,
        _ => Err(not_implemented(op)),
    }
}

/// Parses an optional non-negative integer query parameter capped at `max`
/// (`max-uploads`, `max-keys`, …); negative or non-numeric → `InvalidArgument`.
pub fn max_param(cx: &Ctx<'_>, name: &str, default: usize, max: usize) -> Result<usize, S3Error> {
    match cx.query.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=i64::from(i32::MAX)).contains(n))
            .map(|n| (n as usize).min(max))
            .ok_or_else(|| {
                S3Error::invalid_argument(
                    format!("Argument {name} must be an integer between 0 and 2147483647"),
                    name,
                    v,
                )
            }),
    }
}

/// A small XML request body (a configuration, a list of keys), verified against
/// Content-MD5 or an `x-amz-checksum-*` header, whichever the client sent (current SDKs send
/// a checksum, older ones Content-MD5).
pub async fn read_document(cx: &Ctx<'_>, req: S3Request, limit: usize) -> Result<bytes::Bytes, S3Error> {
    let md5 = super::headers::content_md5(&req.headers)?;
    let checksum = super::checksum::request_checksum(&req.headers)?;
    super::body::read_small_with(req.body, cx.auth.payload, md5, limit, Some(&checksum)).await
}

/// `encoding-type`: absent or `url`.
pub fn url_encoding(cx: &Ctx<'_>) -> Result<bool, S3Error> {
    match cx.query.get("encoding-type") {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("url") => Ok(true),
        Some(v) => Err(S3Error::invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", v)),
    }
}

/// Encodes a key for `encoding-type=url` responses.
pub fn encode_key(key: &str, url: bool) -> String {
    if url { crate::auth::sigv4::canonical::uri_encode(key.as_bytes(), true) } else { key.to_owned() }
}

//! One module per S3 operation: parse the request, execute against storage, render the
//! response. The [`registry!`] maps every [`OpName`] to its access rule and module.

pub mod bucket;
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
    /// The owner of the addressed bucket (which must exist), or whoever its policy allows.
    BucketOwner,
    /// Anyone: the operation finds the caller in the body (POST Object's form, whose policy
    /// is signed), then checks the bucket's access itself. The bucket must exist.
    Form,
    /// Recognised, but not offered by this server.
    NotImplemented,
}

/// The registry: every operation name the router knows, with who may call it and what
/// answers it. Both matches it generates are exhaustive, so a name added to the router
/// without a line here is a compile error, not a silent `NotImplemented`.
macro_rules! registry {
    (
        implemented { $( $op:ident: $access:ident => |$cx:ident, $req:ident| $call:expr; )* }
        not_implemented { $( $absent:ident ),* $(,)? }
    ) => {
        pub fn access(op: OpName) -> Access {
            match op {
                $( OpName::$op => Access::$access, )*
                $( OpName::$absent )|* => Access::NotImplemented,
            }
        }

        pub async fn call(op: OpName, cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
            match op {
                $( OpName::$op => { let ($cx, $req) = (cx, req); $call.await } )*
                $( OpName::$absent )|* => Err(not_implemented(op)),
            }
        }
    };
}

registry! {
    implemented {
        ListBuckets: AnyUser => |cx, req| bucket::list::call(cx, req);
        CreateBucket: AnyUser => |cx, req| bucket::create::call(cx, req);
        HeadBucket: BucketOwner => |cx, req| bucket::head::call(cx, req);
        DeleteBucket: BucketOwner => |cx, req| bucket::delete::call(cx, req);
        GetBucketLocation: BucketOwner => |cx, req| bucket::location::call(cx, req);
        PutBucketVersioning: BucketOwner => |cx, req| bucket::versioning::put(cx, req);
        GetBucketVersioning: BucketOwner => |cx, req| bucket::versioning::get(cx, req);
        PutBucketLifecycleConfiguration: BucketOwner => |cx, req| bucket::lifecycle::put(cx, req);
        GetBucketLifecycleConfiguration: BucketOwner => |cx, req| bucket::lifecycle::get(cx, req);
        PutBucketCors: BucketOwner => |cx, req| bucket::cors::put(cx, req);
        GetBucketCors: BucketOwner => |cx, req| bucket::cors::get(cx, req);
        DeleteBucketCors: BucketOwner => |cx, req| bucket::cors::delete(cx, req);
        PutBucketPolicy: BucketOwner => |cx, req| bucket::policy::put(cx, req);
        GetBucketPolicy: BucketOwner => |cx, req| bucket::policy::get(cx, req);
        DeleteBucketPolicy: BucketOwner => |cx, req| bucket::policy::delete(cx, req);
        GetBucketPolicyStatus: BucketOwner => |cx, req| bucket::policy::status(cx, req);
        PutPublicAccessBlock: BucketOwner => |cx, req| bucket::public_access::put(cx, req);
        GetPublicAccessBlock: BucketOwner => |cx, req| bucket::public_access::get(cx, req);
        DeletePublicAccessBlock: BucketOwner => |cx, req| bucket::public_access::delete(cx, req);
        DeleteBucketLifecycle: BucketOwner => |cx, req| bucket::lifecycle::delete(cx, req);
        PutBucketTagging: BucketOwner => |cx, req| tagging::put_bucket(cx, req);
        GetBucketTagging: BucketOwner => |cx, req| tagging::get_bucket(cx, req);
        DeleteBucketTagging: BucketOwner => |cx, req| tagging::delete_bucket(cx, req);
        PutObjectTagging: BucketOwner => |cx, req| tagging::put_object(cx, req);
        GetObjectTagging: BucketOwner => |cx, req| tagging::get_object(cx, req);
        DeleteObjectTagging: BucketOwner => |cx, req| tagging::delete_object(cx, req);
        GetObjectAttributes: BucketOwner => |cx, req| object::attributes::call(cx, req);
        CreateMultipartUpload: BucketOwner => |cx, req| multipart::create::call(cx, req);
        ListMultipartUploads: BucketOwner => |cx, req| multipart::list_uploads::call(cx, req);
        AbortMultipartUpload: BucketOwner => |cx, req| multipart::abort::call(cx, req);
        UploadPart: BucketOwner => |cx, req| multipart::upload_part::call(cx, req);
        UploadPartCopy: BucketOwner => |cx, req| multipart::upload_part::call_copy(cx, req);
        ListParts: BucketOwner => |cx, req| multipart::list_parts::call(cx, req);
        CompleteMultipartUpload: BucketOwner => |cx, req| multipart::complete::call(cx, req);
        PutObject: BucketOwner => |cx, req| object::put::call(cx, req);
        GetObjectAcl: BucketOwner => |cx, req| object::acl::get(cx, req);
        PutObjectAcl: BucketOwner => |cx, req| object::acl::put(cx, req);
        GetBucketAcl: BucketOwner => |cx, req| bucket::acl::get(cx, req);
        PutBucketAcl: BucketOwner => |cx, req| bucket::acl::put(cx, req);
        PutBucketOwnershipControls: BucketOwner => |cx, req| bucket::acl::put_ownership(cx, req);
        GetBucketOwnershipControls: BucketOwner => |cx, req| bucket::acl::get_ownership(cx, req);
        DeleteBucketOwnershipControls: BucketOwner => |cx, req| bucket::acl::delete_ownership(cx, req);
        PostObject: Form => |cx, req| object::post::call(cx, req);
        GetObject: BucketOwner => |cx, req| object::get::call(cx, req, false);
        HeadObject: BucketOwner => |cx, req| object::get::call(cx, req, true);
        DeleteObject: BucketOwner => |cx, req| object::delete::call(cx, req);
        DeleteObjects: BucketOwner => |cx, req| object::delete_many::call(cx, req);
        CopyObject: BucketOwner => |cx, req| object::copy::call(cx, req);
        ListObjects: BucketOwner => |cx, req| object::list::call(cx, req, object::list::Flavor::V1);
        ListObjectsV2: BucketOwner => |cx, req| object::list::call(cx, req, object::list::Flavor::V2);
        ListObjectVersions: BucketOwner => |cx, req| object::list::call(cx, req, object::list::Flavor::Versions);
    }
    not_implemented {
            DeleteBucketAnalyticsConfiguration, DeleteBucketEncryption,
            DeleteBucketIntelligentTieringConfiguration, DeleteBucketInventoryConfiguration,
            DeleteBucketMetricsConfiguration,
            DeleteBucketReplication, DeleteBucketWebsite,
            GetBucketAccelerateConfiguration, GetBucketAnalyticsConfiguration,
            GetBucketEncryption, GetBucketIntelligentTieringConfiguration,
            GetBucketInventoryConfiguration, GetBucketLogging, GetBucketMetricsConfiguration,
            GetBucketNotificationConfiguration, GetBucketReplication, GetBucketRequestPayment, GetBucketWebsite,
            GetObjectLegalHold, GetObjectLockConfiguration, GetObjectRetention,
            GetObjectTorrent, PutBucketAccelerateConfiguration,
            PutBucketAnalyticsConfiguration, PutBucketEncryption,
            PutBucketIntelligentTieringConfiguration, PutBucketInventoryConfiguration,
            PutBucketLogging, PutBucketMetricsConfiguration, PutBucketNotificationConfiguration,
            PutBucketReplication,
            PutBucketRequestPayment, PutBucketWebsite, PutObjectLegalHold,
            PutObjectLockConfiguration, PutObjectRetention, RestoreObject,
            SelectObjectContent,
            // Answered before authentication (browsers send preflights without credentials):
            // see `S3::dispatch`.
            OptionsObject,
    }
}

/// Sets (`Some`) or removes (`None`) a setting of the addressed bucket, answering `status`.
pub async fn store_bucket_setting(
    cx: &Ctx<'_>,
    kind: crate::storage::BucketSettingKind,
    setting: Option<crate::storage::BucketSetting>,
    status: http::StatusCode,
) -> Result<S3Response, S3Error> {
    cx.s3.meta.put_bucket_setting(&cx.bucket()?.name, kind, setting).await?;
    Ok(S3Response::new(status))
}

/// The addressed bucket's setting of `kind`, or the `missing` error (`NoSuch…`) naming it.
pub async fn bucket_setting(
    cx: &Ctx<'_>,
    kind: crate::storage::BucketSettingKind,
    missing: S3ErrorCode,
) -> Result<crate::storage::BucketSetting, S3Error> {
    let bucket = cx.bucket()?;
    match cx.s3.meta.get_bucket_setting(&bucket.name, kind).await? {
        Some(s) if s.kind() == kind => Ok(s),
        _ => Err(S3Error::new(missing).field("BucketName", &bucket.name)),
    }
}

pub fn not_implemented(op: OpName) -> S3Error {
    S3Error::with_message(S3ErrorCode::NotImplemented, format!("{op} is not implemented by this server"))
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

/// Encodes a key for `encoding-type=url` responses (borrowed as it is without).
pub fn encode_key(key: &str, url: bool) -> std::borrow::Cow<'_, str> {
    if url { crate::auth::sigv4::canonical::uri_encode(key.as_bytes(), true).into() } else { key.into() }
}

/// A listing's `<CommonPrefixes>`, URL-encoded if asked.
pub fn common_prefixes(w: &mut crate::s3::xml::XmlWriter, prefixes: &[String], url: bool) {
    for p in prefixes {
        w.start("CommonPrefixes").elem("Prefix", &encode_key(p, url)).end();
    }
}

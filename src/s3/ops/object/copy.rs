//! CopyObject: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html>
//! (and the source handling UploadPartCopy shares).

use std::sync::Arc;

use futures_util::TryStreamExt;
use http::HeaderMap;
use percent_encoding::percent_decode_str;

use crate::auth::PayloadHash;
use crate::clock::Timestamp;
use crate::s3::body::BodyStream;
use crate::s3::body::VerifiedBody;
use crate::s3::checksum::RequestChecksum;
use crate::s3::headers::ObjectAttributes;
use crate::s3::ops::data::{self, MAX_PUT_SIZE};
use crate::s3::ops::keepalive::{self, Done};
use crate::s3::ops::object::get::ByteRange;
use crate::s3::ops::object::get::visible_version;
use crate::s3::types::ChecksumAlgorithm;
use crate::s3::types::{parse_version_id, validate_bucket_name, validate_key};
use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response, headers};
use crate::storage::{ObjectRecord, PartRecord, Resource, Storage, StorageError, Versioning};

/// The object version named by `x-amz-copy-source`, whose bucket the caller must own, and
/// the headers a copy reports about it.
pub async fn source_object(
    cx: &Ctx<'_>,
    h: &HeaderMap,
) -> Result<(ObjectRecord, Vec<(&'static str, String)>), S3Error> {
    let raw = headers::text(h, "x-amz-copy-source")?.unwrap_or_default();
    let invalid = || S3Error::invalid_argument("Invalid copy source encoding", "x-amz-copy-source", &raw);
    let (path, version) = match raw.split_once("?versionId=") {
        Some((p, v)) => (p, Some(v)),
        None => (raw.as_str(), None),
    };
    let decoded = percent_decode_str(path).decode_utf8().map_err(|_| invalid())?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = decoded.split_once('/').ok_or_else(invalid)?;
    if key.is_empty() || key == "." || key == ".." {
        return Err(invalid());
    }
    validate_bucket_name(bucket)?;
    validate_key(key)?;
    let raw_version = version;
    let version = version.map(|v| parse_version_id(v, "x-amz-copy-source")).transpose()?;
    let record = cx
        .s3
        .meta
        .get_bucket(bucket)
        .await?
        .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchBucket).field("BucketName", bucket))?;
    // Reading the source needs what a GET of it needs.
    let facts = crate::s3::RequestFacts { version: raw_version, ..cx.facts(h) };
    let access = cx.s3.bucket_access(cx.auth, &record).await?;
    let admission = access.judge(crate::s3::OpName::GetObject, Some(key), &facts)?;
    if let Some(expected) = headers::text(h, "x-amz-source-expected-bucket-owner")?
        && expected != record.owner.id
    {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    let found = cx.s3.meta.get_object(bucket, key, version).await?;
    // A caller only an object's ACL could admit learns nothing of versions it may not read.
    let by_object_acl = matches!(admission, crate::s3::Admission::IfObjectGrants(..));
    if by_object_acl && found.as_ref().is_none_or(|o| o.delete_marker) {
        let e = visible_version(found, key, version, "GET")
            .err()
            .unwrap_or_else(|| S3Error::new(S3ErrorCode::AccessDenied));
        return Err(crate::s3::ops::object::get::hide_absence_in(cx, &record, h, e).await);
    }
    if version.is_some() && found.as_ref().is_some_and(|o| o.delete_marker) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The source of a copy request may not specifically refer to a delete marker by version id.",
        ));
    }
    let object = visible_version(found, key, version, "GET")?;
    if let crate::s3::Admission::IfObjectGrants(wanted, ignore_public) = admission {
        crate::s3::acl::check_object(cx.auth, &object, wanted, ignore_public)?;
    }
    check_source_conditions(h, &object)?;
    let reported = if record.versioning == Versioning::Unversioned {
        Vec::new()
    } else {
        vec![("x-amz-copy-source-version-id", object.version_id.to_text())]
    };
    Ok((object, reported))
}

/// `x-amz-copy-source-if-*`, with S3's precedence: a matching ETag wins over a failing
/// unmodified-since, and a non-matching ETag over a passing modified-since.
fn check_source_conditions(h: &HeaderMap, o: &ObjectRecord) -> Result<(), S3Error> {
    let failed = || S3Error::new(S3ErrorCode::PreconditionFailed).field("Condition", "x-amz-copy-source-If-*");
    let modified = o.last_modified.unix_seconds();
    let date = |name| -> Result<Option<i64>, S3Error> {
        Ok(headers::text(h, name)?.and_then(|v| Timestamp::parse_http_date(&v)).map(|t| t.unix_seconds()))
    };
    let if_match = headers::text(h, "x-amz-copy-source-if-match")?;
    if let Some(m) = &if_match {
        if !data::etag_list_matches(m, &o.etag) {
            return Err(failed());
        }
    } else if date("x-amz-copy-source-if-unmodified-since")?.is_some_and(|t| modified > t) {
        return Err(failed());
    }
    let if_none = headers::text(h, "x-amz-copy-source-if-none-match")?;
    if let Some(m) = &if_none {
        if data::etag_list_matches(m, &o.etag) {
            return Err(failed());
        }
    } else if date("x-amz-copy-source-if-modified-since")?.is_some_and(|t| modified <= t) {
        return Err(failed());
    }
    Ok(())
}

/// Parses `x-amz-copy-source-range: bytes=a-b` against the source size.
pub fn source_range(h: &HeaderMap, size: u64) -> Result<Option<std::ops::Range<u64>>, S3Error> {
    let Some(v) = headers::text(h, "x-amz-copy-source-range")? else {
        return Ok(None);
    };
    let invalid = |m: String| S3Error::invalid_argument(m, "x-amz-copy-source-range", &v);
    match ByteRange::parse(&v) {
        Some(ByteRange::From(start, Some(end))) if end < size => Ok(Some(start..end + 1)),
        Some(ByteRange::From(..)) => Err(invalid(format!("Range specified is not valid for source object of size: {size}"))),
        _ => Err(invalid(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
                .to_owned(),
        )),
    }
}

/// The part of `source` that is exactly `range`, as a copy's one-part manifest entry sharing
/// its blob, when that part is kept in a blob with the checksums a copy records: `algorithm`'s
/// and CRC64NVME (as [`copy_bytes`] computes them).
pub fn shareable_part(
    source: &ObjectRecord,
    range: &std::ops::Range<u64>,
    algorithm: ChecksumAlgorithm,
) -> Option<PartRecord> {
    let mut offset = 0u64;
    for p in &source.parts {
        if offset > range.start {
            break;
        }
        if offset == range.start && offset.checked_add(p.size) == Some(range.end) {
            let mut checksums = Vec::new();
            for a in [algorithm, ChecksumAlgorithm::Crc64Nvme] {
                if !checksums.iter().any(|(have, _)| *have == a) {
                    checksums.push((a, p.checksum(a)?.to_owned()));
                }
            }
            return Some(PartRecord {
                part_number: 1,
                blob: p.stored_blob()?.clone(),
                size: p.size,
                md5: p.md5,
                last_modified: Timestamp::now(),
                checksums,
                inline: None,
            });
        }
        offset = offset.saturating_add(p.size);
    }
    None
}

/// Makes the copy of `range` of `source` and has `commit` store it (as a shared part when
/// its second argument says so), mapping its errors with `error`: without copying a byte
/// when the range is one whole part of the source kept in a blob, whose blob the copy then
/// shares; else by copying the bytes. If the source's blob is released between the read of
/// the source and the commit, its bytes (kept through the grace period) are copied after all.
pub async fn copy_part<T, Fut>(
    storage: &Arc<Storage>,
    source: ObjectRecord,
    range: std::ops::Range<u64>,
    algorithm: ChecksumAlgorithm,
    keep: data::Keep,
    commit: impl Fn(PartRecord, bool) -> Fut,
    error: impl Fn(StorageError) -> S3Error,
) -> Result<(PartRecord, T), S3Error>
where
    Fut: std::future::Future<Output = Result<T, StorageError>>,
{
    if keep == data::Keep::InBlob
        && let Some(part) = shareable_part(&source, &range, algorithm)
    {
        match commit(part.clone(), true).await {
            Err(StorageError::NotFound(Resource::Blob)) => {
                tracing::debug!("the source of a copy was released meanwhile; copying its bytes");
            }
            result => return result.map(|t| (part, t)).map_err(error),
        }
    }
    let part = copy_bytes(Arc::clone(storage), source, range, algorithm, keep).await?;
    let t = commit(part.clone(), false).await.map_err(error)?;
    Ok((part, t))
}

/// Streams `range` of `source` into a new (not yet referenced) blob, or into memory for an
/// inline record, returning it as a one-part manifest entry with its `algorithm` checksum
/// (and CRC64NVME). Owns what it needs, so that it can run detached.
pub async fn copy_bytes(
    storage: Arc<Storage>,
    source: ObjectRecord,
    range: std::ops::Range<u64>,
    algorithm: ChecksumAlgorithm,
    keep: data::Keep,
) -> Result<PartRecord, S3Error> {
    let len = range.end - range.start;
    let stream: BodyStream = Box::pin(storage.read(&source, range).await?.map_err(S3Error::internal));
    // The source bytes are trusted: no client digest to verify, the server's checksum computed.
    let verified = VerifiedBody::new(stream, PayloadHash::Unsigned, None)
        .with_checksum(&RequestChecksum::computed(algorithm), None)
        .offloaded(Some(len));
    let stored = data::store_verified(&storage, verified, keep).await?;
    Ok(stored.part(1))
}

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let h = &req.headers;
    headers::check_unsupported_object_features(h)?;
    let (owner, acl) = crate::s3::acl::new_object(cx, h).await?;
    let replace_metadata = match headers::text(h, "x-amz-metadata-directive")?.as_deref() {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(v) => return Err(S3Error::invalid_argument("Unknown metadata directive.", "x-amz-metadata-directive", v)),
    };
    let replace_tags = match headers::text(h, "x-amz-tagging-directive")?.as_deref() {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(v) => return Err(S3Error::invalid_argument("Unknown tagging directive.", "x-amz-tagging-directive", v)),
    };
    let storage_class = headers::text(h, "x-amz-storage-class")?;
    let storage_class = storage_class.as_deref().map(crate::s3::types::StorageClass::parse).transpose()?;
    let redirect = headers::text(h, "x-amz-website-redirect-location")?;
    let (source, mut reported) = source_object(cx, h).await?;
    if source.size > MAX_PUT_SIZE {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
        ));
    }
    let same = source.bucket == bucket.name && source.key == key;
    if same && !replace_metadata && storage_class.is_none() && redirect.is_none() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let (content, user_metadata) = if replace_metadata {
        (headers::content_headers(h)?, headers::user_metadata(h)?)
    } else {
        let mut c = source.headers.clone();
        if redirect.is_some() {
            c.website_redirect_location = redirect;
        }
        (c, source.user_metadata.clone())
    };
    let tags = if replace_tags { headers::tagging(h)? } else { source.tags.clone() };
    let condition = data::write_condition(h)?;

    let storage = Arc::clone(&cx.s3.storage);
    let (bucket_name, key_name) = (bucket.name.clone(), key.to_owned());
    let storage_class = storage_class.unwrap_or(source.storage_class);
    let versioned = bucket.versioning != Versioning::Unversioned;
    let work = async move {
        let size = source.size;
        let keep = data::Keep::object(&storage, Some(size));
        let attributes = ObjectAttributes { storage_class, content, user_metadata, tags };
        let commit = |part: PartRecord, shared: bool| {
            let object = data::single_part_object(
                &bucket_name,
                &key_name,
                (owner.clone(), acl.clone()),
                part,
                attributes.clone(),
            );
            let (storage, condition) = (Arc::clone(&storage), &condition);
            async move {
                if shared {
                    storage.put_object_shared(object, condition).await
                } else {
                    storage.put_object(object, condition).await
                }
            }
        };
        let crc64 = ChecksumAlgorithm::Crc64Nvme;
        let (part, outcome) = copy_part(&storage, source, 0..size, crc64, keep, commit, data::condition_error).await?;
        let (etag, modified) = (hex::encode(part.md5), part.last_modified);
        let mut w = XmlWriter::new("CopyObjectResult");
        w.elem("LastModified", &modified.to_xml()).elem("ETag", &data::quoted(&etag));
        if versioned {
            reported.push(("x-amz-version-id", outcome.version_id.to_text()));
        }
        Ok(Done { doc: w.finish(), headers: reported })
    };
    keepalive::respond(work, req.ids.clone(), format!("/{}/{key}", bucket.name)).await
}

//! Moving object bytes: request bodies into blobs (verified as they stream), object
//! manifests out as one byte stream over any range, and the conditions and headers that go
//! with them.

use std::ops::Range;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::HeaderMap;

use crate::auth::PayloadHash;
use crate::auth::sigv4::chunked::{ChunkedDecoder, ChunkedError};
use crate::clock::Timestamp;
use crate::s3::body::{BodyDigest, BodyStream, VerifiedBody};
use crate::s3::checksum::RequestChecksum;
use crate::s3::headers::ObjectAttributes;
use crate::s3::types::ChecksumAlgorithm;
use crate::s3::types::{VersionId, parse_version_id};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Response, headers};
use crate::storage::{
    BlobId, BucketRecord, BucketSetting, BucketSettingKind, ChecksumType, LifecycleConfiguration, ObjectChecksum,
    ObjectRecord, PartRecord, Storage, StorageClass, StorageError, UploadRecord, VersionKey, Versioning,
    WriteCondition,
};

/// Largest object a single PUT may carry, and largest part.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The body length the object will have, checked before any body byte is read (so that with
/// `Expect: 100-continue` a doomed upload is refused without being sent). For `aws-chunked`
/// bodies that is `x-amz-decoded-content-length`.
pub fn declared_length(cx: &Ctx<'_>, h: &HeaderMap, limit: u64) -> Result<Option<u64>, S3Error> {
    let number = |name: &str| -> Result<Option<u64>, S3Error> {
        match headers::text(h, name)? {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| S3Error::invalid_argument(format!("Invalid {name}"), name, &v)),
        }
    };
    let chunked_te =
        h.get(http::header::TRANSFER_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let length = if let PayloadHash::Streaming(_) = cx.auth.payload {
        Some(number("x-amz-decoded-content-length")?.ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::MissingContentLength,
                "You must provide the x-amz-decoded-content-length header.",
            )
        })?)
    } else {
        match number("content-length")? {
            Some(n) => Some(n),
            None if chunked_te => None,
            None => return Err(S3Error::new(S3ErrorCode::MissingContentLength)),
        }
    };
    if let Some(n) = length
        && n > limit
    {
        return Err(S3Error::new(S3ErrorCode::EntityTooLarge)
            .field("ProposedSize", n.to_string())
            .field("MaxSizeAllowed", limit.to_string()));
    }
    Ok(length)
}

/// Maps a failure of the `aws-chunked` decoder to the S3 error AWS answers.
fn chunked_error(e: ChunkedError) -> S3Error {
    match e {
        ChunkedError::SignatureMismatch => S3Error::with_message(
            S3ErrorCode::SignatureDoesNotMatch,
            "The chunk signature we calculated does not match the signature you provided.",
        ),
        ChunkedError::MalformedTrailer(m) => S3Error::new(S3ErrorCode::MalformedTrailerError).source(m),
        ChunkedError::Incomplete => S3Error::new(S3ErrorCode::IncompleteBody),
        ChunkedError::Malformed(m) => {
            S3Error::with_message(S3ErrorCode::IncompleteBody, "The request body is not valid aws-chunked framing.")
                .source(m)
        }
        ChunkedError::Inner(inner) => match inner.downcast::<S3Error>() {
            Ok(e) => *e,
            Err(other) => S3Error::new(S3ErrorCode::IncompleteBody).source(other),
        },
    }
}

/// A stored body: its blob (or its bytes, kept inline), and its MD5, length and flexible
/// checksums (the requested one first).
pub struct Stored {
    pub blob: BlobId,
    pub inline: Option<Bytes>,
    pub digest: BodyDigest,
}

impl Stored {
    /// The checksum the request asked for.
    pub fn checksum(&self) -> (ChecksumAlgorithm, String) {
        self.digest.checksums.first().cloned().unwrap_or((ChecksumAlgorithm::Crc64Nvme, String::new()))
    }

    /// The checksums as stored with a part.
    pub fn records(&self) -> Vec<(ChecksumAlgorithm, String)> {
        self.digest.checksums.clone()
    }

    /// The record of a one-part object (or a part) made of this body, written now.
    pub fn part(&self, part_number: u32) -> PartRecord {
        PartRecord {
            part_number,
            blob: self.blob.clone(),
            size: self.digest.len,
            md5: self.digest.md5,
            last_modified: Timestamp::now(),
            checksums: self.records(),
            inline: self.inline.clone(),
        }
    }
}

/// Where a verified body goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Into a blob of its own.
    InBlob,
    /// Into memory, to be kept in the metadata record, as long as it stays within the
    /// store's inline limit (the length was declared within it; a body that turns out
    /// longer goes to a blob after all).
    Inline,
}

impl Keep {
    /// For an object (never a part) of `len` bytes, when known.
    pub fn object(storage: &Storage, len: Option<u64>) -> Keep {
        if len.is_some_and(|n| storage.inlines(n)) { Keep::Inline } else { Keep::InBlob }
    }
}

/// Streams a verified body into a new (not yet referenced) blob, or keeps it in memory for
/// its record. Nothing is kept if verification fails.
pub async fn store_verified(storage: &Storage, body: VerifiedBody, keep: Keep) -> Result<Stored, S3Error> {
    let digest = body.digest();
    let (blob, inline) = match keep {
        Keep::InBlob => (Some(storage.write_blob(Box::pin(body.map_err(std::io::Error::other))).await?.id), None),
        Keep::Inline => match collect_small(storage, body).await? {
            Small::Bytes(b) => (None, Some(b)),
            Small::Spilled(blob) => (Some(blob), None),
        },
    };
    match digest.get() {
        Some(d) => Ok(Stored { blob: blob.unwrap_or_else(|| BlobId(String::new())), inline, digest: d.clone() }),
        None => {
            storage.discard(blob.into_iter().collect()).await;
            Err(S3Error::internal("body ended without a digest"))
        }
    }
}

enum Small {
    Bytes(Bytes),
    Spilled(BlobId),
}

/// Reads a body declared small into memory; one that grows past the inline limit is
/// written to a blob instead (what was read first, then the rest).
async fn collect_small(storage: &Storage, mut body: VerifiedBody) -> Result<Small, S3Error> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if !storage.inlines((buf.len() + chunk.len()) as u64) {
            let head = futures_util::stream::iter([Ok(buf.freeze()), Ok(chunk)]);
            let all = head.chain(body).map_err(std::io::Error::other);
            return Ok(Small::Spilled(storage.write_blob(Box::pin(all)).await?.id));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Small::Bytes(buf.freeze()))
}

/// Streams a request body into a new blob: `aws-chunked` framing decoded and its signatures
/// verified, `x-amz-content-sha256`, `Content-MD5` and the flexible checksum checked on the
/// way. `declared` is what [`declared_length`] returned for the request.
pub async fn store_body(
    cx: &Ctx<'_>,
    body: BodyStream,
    h: &HeaderMap,
    declared: Option<u64>,
    limit: u64,
    checksum: &RequestChecksum,
    keep: Keep,
) -> Result<Stored, S3Error> {
    let (body, trailers): (BodyStream, _) = match cx.auth.payload {
        PayloadHash::Streaming(mode) => {
            let decoder = ChunkedDecoder::new(body, mode, Some(cx.auth.signing.clone()), declared.unwrap_or(0));
            let trailers = decoder.trailers();
            (Box::pin(decoder.map_err(chunked_error)), Some(trailers))
        }
        _ => (body, None),
    };
    let content_md5 = headers::content_md5(h)?;
    let verified = VerifiedBody::with_limit(body, cx.auth.payload, content_md5, limit)
        .with_checksum(checksum, trailers)
        .offloaded(declared);
    store_verified(&cx.s3.storage, verified, keep).await
}

/// The bytes `range` of an object, readable to the end whatever happens to the object
/// meanwhile.
pub async fn object_stream(cx: &Ctx<'_>, object: &ObjectRecord, range: Range<u64>) -> Result<BodyStream, S3Error> {
    let stream = cx.s3.storage.read(object, range).await?;
    Ok(Box::pin(stream.map_err(S3Error::internal)))
}

/// `If-None-Match: *` and `If-Match: <etag>` of a conditional write.
pub fn write_condition(h: &HeaderMap) -> Result<WriteCondition, S3Error> {
    let if_none = headers::text(h, "if-none-match")?;
    let if_match = headers::text(h, "if-match")?;
    match (if_none, if_match) {
        (None, None) => Ok(WriteCondition::None),
        (Some(v), None) if v.trim() == "*" => Ok(WriteCondition::IfAbsent),
        (None, Some(v)) => Ok(WriteCondition::IfMatch(unquote(&v).to_owned())),
        (Some(_), None) => {
            Err(S3Error::with_message(S3ErrorCode::NotImplemented, "If-None-Match only supports the value *")
                .header("x-amz-not-implemented", "If-None-Match"))
        }
        (Some(_), Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "If-None-Match and If-Match cannot be combined on a write",
        )),
    }
}

/// Maps a failed conditional write.
pub fn condition_error(e: StorageError) -> S3Error {
    match e {
        StorageError::PreconditionFailed => {
            S3Error::new(S3ErrorCode::PreconditionFailed).field("Condition", "If-Match/If-None-Match")
        }
        e => e.into(),
    }
}

/// An ETag without its quotes (clients send `"…"`, `&quot;…&quot;` decoded, or bare).
pub fn unquote(etag: &str) -> &str {
    let t = etag.trim();
    t.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(t)
}

/// Whether an `If-Match`/`If-None-Match` list matches `etag` (`*` matches anything).
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|candidate| {
        let c = unquote(candidate);
        c == "*" || c.strip_prefix("W/").map(unquote).unwrap_or(c) == etag
    })
}

pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// The headers every GET/HEAD of an object carries.
pub fn object_headers(mut resp: S3Response, o: &ObjectRecord) -> S3Response {
    let h = &o.headers;
    resp = resp
        .header("etag", quoted(&o.etag))
        .header("last-modified", o.last_modified.to_http_date())
        .header("accept-ranges", "bytes")
        .header("content-type", h.content_type.as_deref().unwrap_or("binary/octet-stream"));
    for (name, value) in [
        ("cache-control", &h.cache_control),
        ("content-disposition", &h.content_disposition),
        ("content-encoding", &h.content_encoding),
        ("content-language", &h.content_language),
        ("expires", &h.expires),
        ("x-amz-website-redirect-location", &h.website_redirect_location),
    ] {
        if let Some(v) = value {
            resp = resp.header(name, v);
        }
    }
    for (k, v) in &o.user_metadata {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()),
            http::HeaderValue::from_bytes(&headers::raw_header_value(v)),
        ) {
            resp.headers.append(name, value);
        }
    }
    if o.storage_class != StorageClass::Standard {
        resp = resp.header("x-amz-storage-class", o.storage_class.as_str());
    }
    if !o.tags.is_empty() {
        resp = resp.header("x-amz-tagging-count", o.tags.len().to_string());
    }
    resp
}

/// The `versionId` query parameter, if any.
pub fn version_param(cx: &Ctx<'_>) -> Result<Option<VersionId>, S3Error> {
    cx.query.get("versionId").map(|v| parse_version_id(v, "versionId")).transpose()
}

/// `x-amz-version-id`, which buckets that have ever had versioning enabled carry on every
/// object response (`null` for the null version).
pub fn version_header(resp: S3Response, bucket: &BucketRecord, version: VersionId) -> S3Response {
    if bucket.versioning == Versioning::Unversioned { resp } else { resp.header("x-amz-version-id", version.to_text()) }
}

/// The bucket's lifecycle rules, if it has any.
pub async fn lifecycle_rules(cx: &Ctx<'_>) -> Result<Option<LifecycleConfiguration>, S3Error> {
    let bucket = cx.bucket()?;
    Ok(match cx.s3.meta.get_bucket_setting(&bucket.name, BucketSettingKind::Lifecycle).await? {
        Some(BucketSetting::Lifecycle(c)) => Some(c),
        _ => None,
    })
}

/// `x-amz-expiration` for an object a rule expires: when (midnight UTC after the rule's
/// days, AWS's calendar) and which rule.
pub fn expiration_header(
    resp: S3Response,
    rules: Option<&LifecycleConfiguration>,
    object: &ObjectRecord,
) -> S3Response {
    match rules.and_then(|r| r.expiration_of(object)) {
        Some((rule, at)) => {
            resp.header("x-amz-expiration", format!("expiry-date=\"{}\", rule-id=\"{}\"", at.to_http_date(), rule.id))
        }
        None => resp,
    }
}

/// `x-amz-abort-date` and `x-amz-abort-rule-id` for an upload a rule aborts.
pub fn abort_headers(resp: S3Response, rules: Option<&LifecycleConfiguration>, upload: &UploadRecord) -> S3Response {
    match rules.and_then(|r| r.abort_of(upload)) {
        Some((rule, at)) => resp.header("x-amz-abort-date", at.to_http_date()).header("x-amz-abort-rule-id", &rule.id),
        None => resp,
    }
}

/// A new one-part object made of `part`, with its owner and ACL (the store assigns its
/// version).
pub fn single_part_object(
    bucket: &str,
    key: &str,
    (owner, acl): (crate::storage::Owner, Option<Vec<crate::storage::Grant>>),
    part: PartRecord,
    attributes: ObjectAttributes,
) -> ObjectRecord {
    let ObjectAttributes { storage_class, content, user_metadata, tags } = attributes;
    let checksum = part.checksums.first().map(|(algorithm, value)| ObjectChecksum {
        algorithm: *algorithm,
        kind: ChecksumType::FullObject,
        value: value.clone(),
    });
    ObjectRecord {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: VersionId::Null,
        version_key: VersionKey([0; 20]),
        delete_marker: false,
        size: part.size,
        etag: hex::encode(part.md5),
        last_modified: part.last_modified,
        owner,
        storage_class,
        headers: content,
        user_metadata,
        tags,
        parts: vec![part],
        multipart: false,
        checksum,
        acl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching() {
        assert!(etag_list_matches("\"abc\"", "abc"));
        assert!(etag_list_matches("abc", "abc"));
        assert!(etag_list_matches("\"x\", \"abc\"", "abc"));
        assert!(etag_list_matches("*", "abc"));
        assert!(etag_list_matches("W/\"abc\"", "abc"));
        assert!(!etag_list_matches("\"abd\"", "abc"));
        assert_eq!(unquote(" \"a-2\" "), "a-2");
    }
}

//! GetObject and HeadObject:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html>

use std::ops::Range;

use http::StatusCode;

use crate::clock::Timestamp;
use crate::s3::ops::data;
use crate::s3::types::VersionId;
use crate::s3::{Ctx, ResponseBody, S3Error, S3ErrorCode, S3Request, S3Response, headers};
use crate::storage::{BucketRecord, ObjectRecord};

/// A parsed `Range: bytes=…` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b` or `a-`
    From(u64, Option<u64>),
    /// `-n`: the last n bytes
    Suffix(u64),
}

impl ByteRange {
    /// `None` for anything that is not a single byte range: such headers are ignored, as
    /// RFC 7233 allows and S3 does.
    pub fn parse(value: &str) -> Option<ByteRange> {
        let spec = value.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        if a.is_empty() {
            return position(b).map(ByteRange::Suffix);
        }
        let start = position(a)?;
        let end = if b.is_empty() { None } else { Some(position(b)?) };
        if end.is_some_and(|e| e < start) {
            return None;
        }
        Some(ByteRange::From(start, end))
    }

    /// The byte positions within an object of `size`; `None` when unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            ByteRange::From(start, _) if start >= size => None,
            // A last position past the end means the end, as RFC 7233 and S3 have it.
            ByteRange::From(start, end) => Some(start..end.map_or(size, |e| e.saturating_add(1).min(size))),
            // Nothing to take the last bytes of: unsatisfiable, like any range of an empty object.
            ByteRange::Suffix(_) if size == 0 => None,
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => Some(size.saturating_sub(n)..size),
        }
    }
}

/// A byte position: decimal digits, where a number too large for 64 bits means "past any
/// end" rather than an unparseable header.
fn position(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

/// The version a GET or HEAD (or a copy) may read: a delete marker is a 404 `NoSuchKey` as
/// the latest version and a 405 `MethodNotAllowed` by id, both saying it is a marker.
/// `e`, an error that tells whether a key or version exists in `bucket`, for callers who
/// may list it (its versions, when the request names one); `AccessDenied` for the others.
pub async fn hide_absence_in(cx: &Ctx<'_>, bucket: &BucketRecord, h: &http::HeaderMap, e: S3Error) -> S3Error {
    let list = if cx.query.get("versionId").is_some() {
        crate::s3::OpName::ListObjectVersions
    } else {
        crate::s3::OpName::ListObjects
    };
    // Listing is judged on its own: none of this request's parameters count.
    let no_query = crate::s3::query::Query::default();
    let facts = crate::s3::RequestFacts { query: &no_query, version: None, ..cx.facts(h) };
    match cx.s3.authorize(cx.auth, bucket, list, None, &facts).await {
        Ok(()) => e,
        Err(_) => S3Error::new(S3ErrorCode::AccessDenied),
    }
}

/// [`hide_absence_in`] the addressed bucket.
pub async fn hide_absence(cx: &Ctx<'_>, h: &http::HeaderMap, e: S3Error) -> S3Error {
    match cx.bucket() {
        Ok(bucket) => hide_absence_in(cx, bucket, h, e).await,
        Err(internal) => internal,
    }
}

pub fn visible_version(
    found: Option<ObjectRecord>,
    key: &str,
    version: Option<VersionId>,
    method: &str,
) -> Result<ObjectRecord, S3Error> {
    match (found, version) {
        (None, None) => Err(S3Error::new(S3ErrorCode::NoSuchKey).field("Key", key)),
        (None, Some(v)) => {
            Err(S3Error::new(S3ErrorCode::NoSuchVersion).field("Key", key).field("VersionId", v.to_text()))
        }
        (Some(o), None) if o.delete_marker => Err(S3Error::new(S3ErrorCode::NoSuchKey)
            .field("Key", key)
            .header("x-amz-delete-marker", "true")
            .header("x-amz-version-id", o.version_id.to_text())),
        (Some(o), Some(_)) if o.delete_marker => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)
            .field("Method", method)
            .field("ResourceType", "DeleteMarker")
            .header("x-amz-delete-marker", "true")
            .header("x-amz-version-id", o.version_id.to_text())
            .header("last-modified", o.last_modified.to_http_date())
            .header("allow", "DELETE")),
        (Some(o), _) => Ok(o),
    }
}

/// RFC 7232 precedence: If-Match, else If-Unmodified-Since (412); then If-None-Match, else
/// If-Modified-Since (304).
fn check_conditions(h: &http::HeaderMap, o: &ObjectRecord) -> Result<Option<StatusCode>, S3Error> {
    let modified = o.last_modified.unix_seconds();
    if let Some(m) = headers::text(h, "if-match")? {
        if !data::etag_list_matches(&m, &o.etag) {
            return Ok(Some(StatusCode::PRECONDITION_FAILED));
        }
    } else if let Some(t) = headers::text(h, "if-unmodified-since")?.and_then(|v| Timestamp::parse_http_date(&v))
        && modified > t.unix_seconds()
    {
        return Ok(Some(StatusCode::PRECONDITION_FAILED));
    }
    if let Some(m) = headers::text(h, "if-none-match")? {
        if data::etag_list_matches(&m, &o.etag) {
            return Ok(Some(StatusCode::NOT_MODIFIED));
        }
    } else if let Some(t) = headers::text(h, "if-modified-since")?.and_then(|v| Timestamp::parse_http_date(&v))
        && modified <= t.unix_seconds()
    {
        return Ok(Some(StatusCode::NOT_MODIFIED));
    }
    Ok(None)
}

/// The byte range of part `n` (1-based) of an object.
fn part_range(o: &ObjectRecord, n: usize) -> Option<Range<u64>> {
    let start: u64 = o.parts.iter().take(n - 1).map(|p| p.size).sum();
    o.parts.get(n - 1).map(|p| start..start + p.size)
}

/// The `response-*` parameters and the headers they set.
const RESPONSE_OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

pub async fn call(cx: &Ctx<'_>, req: S3Request, head: bool) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let version = data::version_param(cx)?;
    let part_number = match cx.query.get("partNumber") {
        None => None,
        Some(v) => Some(v.parse::<usize>().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
            S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber", v)
        })?),
    };
    let range_header = headers::text(&req.headers, "range")?;
    if part_number.is_some() && range_header.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    if cx.auth.anonymous && RESPONSE_OVERRIDES.iter().any(|(p, _)| cx.query.get(p).is_some()) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Request specific response headers cannot be used for anonymous GET requests.",
        ));
    }
    let found = cx.s3.meta.get_object(&bucket.name, key, version).await?;
    let object = match visible_version(found, key, version, "GET") {
        // Whether a key exists is for those who may list the bucket: the others get 403; so
        // are versions and delete markers for callers only an object's ACL could admit.
        Err(e) if e.code == S3ErrorCode::NoSuchKey || cx.object_grant.is_some() => {
            return Err(hide_absence(cx, &req.headers, e).await);
        }
        other => other?,
    };
    cx.check_object_grant(&object)?;

    if let Some(status) = check_conditions(&req.headers, &object)? {
        if status == StatusCode::PRECONDITION_FAILED {
            return Err(S3Error::new(S3ErrorCode::PreconditionFailed).field("Condition", "If-Match"));
        }
        let resp = S3Response::new(status)
            .header("etag", data::quoted(&object.etag))
            .header("last-modified", object.last_modified.to_http_date());
        return Ok(data::version_header(resp, bucket, object.version_id));
    }

    let size = object.size;
    let (status, range) = match (part_number, range_header.as_deref().and_then(ByteRange::parse)) {
        (Some(n), _) if object.multipart => {
            let r = part_range(&object, n).ok_or_else(|| {
                S3Error::with_message(S3ErrorCode::InvalidPartNumber, "The requested partnumber is not satisfiable")
                    .field("PartNumberRequested", n.to_string())
                    .field("ActualPartCount", object.parts.len().to_string())
            })?;
            (StatusCode::PARTIAL_CONTENT, r)
        }
        (Some(1), _) => (StatusCode::OK, 0..size),
        (Some(n), _) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidPartNumber,
                "The requested partnumber is not satisfiable",
            )
            .field("PartNumberRequested", n.to_string())
            .field("ActualPartCount", "1"));
        }
        // AWS answers a tail read of an empty object with the (empty) object.
        (None, Some(ByteRange::Suffix(n))) if size == 0 && n > 0 => (StatusCode::OK, 0..0),
        (None, Some(r)) => match r.resolve(size) {
            Some(r) => (StatusCode::PARTIAL_CONTENT, r),
            None => {
                return Err(S3Error::new(S3ErrorCode::InvalidRange)
                    .field("RangeRequested", range_header.unwrap_or_default())
                    .field("ActualObjectSize", size.to_string())
                    .header("content-range", format!("bytes */{size}")));
            }
        },
        (None, None) => (StatusCode::OK, 0..size),
    };

    let mut resp = data::object_headers(S3Response::new(status), &object)
        .header("content-length", (range.end - range.start).to_string());
    resp = data::version_header(resp, bucket, object.version_id);
    if version.is_none() {
        resp = data::expiration_header(resp, data::lifecycle_rules(cx).await?.as_ref(), &object);
    }
    if status == StatusCode::PARTIAL_CONTENT && size > 0 {
        resp = resp.header("content-range", format!("bytes {}-{}/{size}", range.start, range.end - 1));
    }
    // Checksums describe the whole object: sent on request, never for part of it.
    if status == StatusCode::OK
        && headers::text(&req.headers, "x-amz-checksum-mode")?.is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
        && let Some(c) = &object.checksum
    {
        resp = resp.header(c.algorithm.header_name(), &c.value).header("x-amz-checksum-type", c.kind.as_str());
    }
    if part_number.is_some() && object.multipart {
        resp = resp.header("x-amz-mp-parts-count", object.parts.len().to_string());
    }
    for (param, header) in RESPONSE_OVERRIDES {
        if let Some(v) = cx.query.get(param)
            && let Ok(value) = http::HeaderValue::from_str(v)
        {
            resp.headers.insert(header, value);
        }
    }
    if !head && range.end > range.start {
        resp.body = ResponseBody::Stream(data::object_stream(cx, &object, range).await?);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str, size| ByteRange::parse(s).and_then(|r| r.resolve(size));
        assert_eq!(r("bytes=0-9", 100), Some(0..10));
        assert_eq!(r("bytes=90-200", 100), Some(90..100));
        assert_eq!(r("bytes=95-", 100), Some(95..100));
        assert_eq!(r("bytes=-10", 100), Some(90..100));
        assert_eq!(r("bytes=-500", 100), Some(0..100));
        assert_eq!(r("bytes=100-", 100), None);
        assert_eq!(r("bytes=-0", 100), None);
        assert_eq!(r("bytes=0-0", 0), None);
        assert_eq!(r("bytes=-1", 0), None);
        assert_eq!(ByteRange::parse("bytes=5-1"), None);
        assert_eq!(ByteRange::parse("bytes=0-1,3-4"), None);
        assert_eq!(ByteRange::parse("items=0-1"), None);
        assert_eq!(ByteRange::parse("bytes=+1-2"), None);
        // Ends past the object are clamped, however large (this once wrapped to 0).
        assert_eq!(r("bytes=5-18446744073709551615", 10), Some(5..10));
        assert_eq!(r("bytes=5-99999999999999999999999999", 10), Some(5..10));
        assert_eq!(r("bytes=99999999999999999999999999-", 10), None);
        assert_eq!(r("bytes=-99999999999999999999999999", 10), Some(0..10));
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;
        use crate::s3::xml::fuzzing::config;

        proptest! {
            #![proptest_config(config())]

            /// Any Range header: ignored, unsatisfiable, or a non-empty range inside the object.
            #[test]
            fn fuzz_range_headers(
                value in prop_oneof![
                    "bytes=[0-9]{0,25}-[0-9]{0,25}",
                    "bytes= ?-?[0-9]{0,22}-?[0-9]{0,22}(,[0-9-]{0,6})?",
                    "\\PC{0,40}",
                ],
                size in prop_oneof![Just(0u64), Just(1), 0u64..100_000, Just(u64::MAX)],
            ) {
                if let Some(r) = ByteRange::parse(&value).and_then(|r| r.resolve(size)) {
                    prop_assert!(r.start < r.end && r.end <= size, "{value} on {size}: {r:?}");
                }
            }

            /// Well-formed first-last ranges resolve as RFC 7233 says, ends clamped.
            #[test]
            fn fuzz_range_semantics(start in any::<u64>(), len in any::<u64>(), size in 0u64..1_000_000) {
                let end = start.saturating_add(len);
                let resolved = ByteRange::parse(&format!("bytes={start}-{end}")).and_then(|r| r.resolve(size));
                if start >= size {
                    prop_assert_eq!(resolved, None);
                } else {
                    prop_assert_eq!(resolved, Some(start..end.saturating_add(1).min(size)));
                }
            }
        }
    }
}

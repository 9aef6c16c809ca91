//! Typed parsers for the request headers operations share; each returns the S3 error AWS
//! gives for a bad value.

use base64::Engine;
use http::HeaderMap;
use percent_encoding::percent_decode;

use super::error::{S3Error, S3ErrorCode};
use super::types::{ChecksumAlgorithm, ChecksumType, StorageClass};
use crate::storage::ContentHeaders;

/// Most bytes of user metadata (`x-amz-meta-*` names and values) AWS allows.
pub const MAX_USER_METADATA: usize = 2048;
/// Most bytes of request headers AWS allows.
pub const MAX_HEADER_SECTION: usize = 8 * 1024;
pub const META_PREFIX: &str = "x-amz-meta-";

/// A header as UTF-8 text; repeated headers are joined with `,`.
pub fn text(headers: &HeaderMap, name: &str) -> Result<Option<String>, S3Error> {
    let mut out: Option<String> = None;
    for v in headers.get_all(name) {
        let s = std::str::from_utf8(v.as_bytes())
            .map_err(|_| S3Error::invalid_argument(format!("Header {name} is not valid UTF-8"), name, ""))?;
        match &mut out {
            Some(o) => {
                o.push(',');
                o.push_str(s.trim());
            }
            None => out = Some(s.trim().to_owned()),
        }
    }
    Ok(out)
}

/// Rejects requests whose headers exceed what AWS accepts.
pub fn check_header_section(headers: &HeaderMap) -> Result<(), S3Error> {
    let size: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if size > MAX_HEADER_SECTION {
        return Err(S3Error::new(S3ErrorCode::RequestHeaderSectionTooLarge)
            .field("MaxSizeAllowed", MAX_HEADER_SECTION.to_string()));
    }
    Ok(())
}

/// `Content-MD5`: base64 of 16 bytes, else `InvalidDigest`.
pub fn content_md5(headers: &HeaderMap) -> Result<Option<[u8; 16]>, S3Error> {
    let Some(v) = headers.get("content-md5") else {
        return Ok(None);
    };
    let invalid =
        || S3Error::new(S3ErrorCode::InvalidDigest).field("Content-MD5", String::from_utf8_lossy(v.as_bytes()));
    let decoded = base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).map_err(|_| invalid())?;
    <[u8; 16]>::try_from(decoded.as_slice()).map(Some).map_err(|_| invalid())
}

/// `x-amz-storage-class`, defaulting to STANDARD.
pub fn storage_class(headers: &HeaderMap) -> Result<StorageClass, S3Error> {
    match text(headers, "x-amz-storage-class")? {
        Some(s) => StorageClass::parse(&s),
        None => Ok(StorageClass::Standard),
    }
}

/// The standard content headers stored with an object; Content-Type defaults to
/// `binary/octet-stream` and the website redirect is validated.
pub fn content_headers(headers: &HeaderMap) -> Result<ContentHeaders, S3Error> {
    let redirect = text(headers, "x-amz-website-redirect-location")?;
    if let Some(r) = &redirect {
        let valid_prefix = ["/", "http://", "https://"].iter().any(|p| r.starts_with(p));
        if !valid_prefix || r.len() > 2048 {
            return Err(S3Error::new(S3ErrorCode::InvalidRedirectLocation));
        }
    }
    Ok(ContentHeaders {
        cache_control: text(headers, "cache-control")?,
        content_disposition: text(headers, "content-disposition")?,
        content_encoding: text(headers, "content-encoding")?.and_then(|v| strip_aws_chunked(&v)),
        content_language: text(headers, "content-language")?,
        content_type: Some(text(headers, "content-type")?.unwrap_or_else(|| "binary/octet-stream".to_owned())),
        expires: text(headers, "expires")?,
        website_redirect_location: redirect,
    })
}

/// Content-Encoding without the `aws-chunked` transfer framing, which is not part of the
/// object: `gzip, aws-chunked` and `gzip,aws-chunked` become `gzip`; `aws-chunked` alone, none.
pub fn strip_aws_chunked(value: &str) -> Option<String> {
    let kept: Vec<&str> =
        value.split(',').map(str::trim).filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked")).collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// `x-amz-meta-*` pairs (names lower-case, without the prefix), at most 2 KB in all.
pub fn user_metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, S3Error> {
    let mut out: Vec<(String, String)> = Vec::new();
    for name in headers.keys() {
        let Some(meta) = name.as_str().strip_prefix(META_PREFIX) else {
            continue;
        };
        if out.iter().any(|(k, _)| k == meta) {
            continue;
        }
        out.push((meta.to_owned(), raw_text(headers, name.as_str())));
    }
    let size: usize = out.iter().map(|(k, v)| k.len() + v.chars().count()).sum();
    if size > MAX_USER_METADATA {
        return Err(S3Error::new(S3ErrorCode::MetadataTooLarge)
            .field("Size", size.to_string())
            .field("MaxSizeAllowed", MAX_USER_METADATA.to_string()));
    }
    Ok(out)
}

fn invalid_tag(message: &'static str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, message)
}

/// Decodes one `application/x-www-form-urlencoded` component strictly.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                return None;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let plus_as_space = s.replace('+', " ");
    String::from_utf8(percent_decode(plus_as_space.as_bytes()).collect()).ok()
}

fn valid_tag_text(s: &str) -> bool {
    s.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "+-=._:/@".contains(c))
}

/// A header's bytes as characters, one per byte (latin-1), trimmed, repeated values joined
/// by `,`: metadata values are kept byte for byte, whatever encoding the client used (UTF-8
/// from most SDKs, latin-1 from Python's http.client), and sent back the same way
/// ([`raw_header_value`]).
fn raw_text(headers: &HeaderMap, name: &str) -> String {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| v.as_bytes().iter().map(|&b| char::from(b)).collect::<String>().trim().to_owned())
        .collect();
    values.join(",")
}

/// The bytes of a value kept by [`raw_text`] (values stored by older releases as UTF-8
/// text, with characters beyond latin-1, go out as UTF-8).
pub fn raw_header_value(value: &str) -> Vec<u8> {
    if value.chars().all(|c| u32::from(c) <= 0xFF) {
        value.chars().map(|c| u32::from(c) as u8).collect()
    } else {
        value.as_bytes().to_vec()
    }
}

/// `x-amz-tagging`: URL-encoded `key=value&…`, at most 10 tags, AWS's length and character rules.
pub fn tagging(headers: &HeaderMap) -> Result<Vec<(String, String)>, S3Error> {
    let Some(raw) = text(headers, "x-amz-tagging")? else {
        return Ok(Vec::new());
    };
    let mut tags: Vec<(String, String)> = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (form_decode(k), form_decode(v)) else {
            return Err(S3Error::invalid_argument(
                "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
                "x-amz-tagging",
                &raw,
            ));
        };
        tags.push((k, v));
    }
    validate_tags(tags, TagLimit::Object)
}

/// How many tags a resource may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagLimit {
    /// 10 tags on an object.
    Object,
    /// 50 tags on a bucket.
    Bucket,
}

/// AWS's rules for a tag set: keys of 1–128 characters not starting with `aws:`, values of
/// up to 256, letters, digits, spaces and `+-=._:/@` only, no key twice, and at most 10 tags
/// on an object or 50 on a bucket.
pub fn validate_tags(tags: Vec<(String, String)>, limit: TagLimit) -> Result<Vec<(String, String)>, S3Error> {
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(invalid_tag("The TagValue you have provided is too long, max 256"));
        }
        if k.starts_with("aws:") {
            return Err(invalid_tag("Your TagKey cannot be prefixed with aws:"));
        }
        if !valid_tag_text(k) || !valid_tag_text(v) {
            return Err(invalid_tag("The TagKey or TagValue you have provided contains invalid characters"));
        }
        if tags[..i].iter().any(|(existing, _)| existing == k) {
            return Err(invalid_tag("Cannot provide multiple Tags with the same key"));
        }
    }
    match limit {
        TagLimit::Object if tags.len() > 10 => Err(invalid_tag("Object tags cannot be greater than 10")),
        TagLimit::Bucket if tags.len() > 50 => Err(invalid_tag("Bucket tag count cannot be greater than 50")),
        _ => Ok(tags),
    }
}

/// `x-amz-checksum-algorithm` and `x-amz-checksum-type` of CreateMultipartUpload, with AWS's
/// allowed pairs; the type defaults per algorithm.
pub fn checksum_settings(headers: &HeaderMap) -> Result<Option<(ChecksumAlgorithm, ChecksumType)>, S3Error> {
    let algorithm = text(headers, "x-amz-checksum-algorithm")?;
    let kind = text(headers, "x-amz-checksum-type")?;
    let invalid = |m: String| S3Error::with_message(S3ErrorCode::InvalidRequest, m);
    let Some(algorithm) = algorithm else {
        return match kind {
            Some(_) => Err(invalid(
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.".into(),
            )),
            None => Ok(None),
        };
    };
    let a = ChecksumAlgorithm::parse(&algorithm).ok_or_else(|| {
        invalid(
            "Checksum algorithm provided is unsupported. Please try again with any of the valid \
             types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3, XXHASH128]"
                .into(),
        )
    })?;
    let t = match kind {
        Some(k) => {
            ChecksumType::parse(&k).ok_or_else(|| invalid("Value for x-amz-checksum-type header is invalid.".into()))?
        }
        None => a.default_type(),
    };
    if !a.allows(t) {
        return Err(invalid(format!(
            "The {} checksum type cannot be used with the {} checksum algorithm.",
            t.as_str(),
            a.as_str().to_ascii_lowercase()
        )));
    }
    Ok(Some((a, t)))
}

/// What a new object (or an upload that becomes one) carries from its request headers.
#[derive(Clone)]
pub struct ObjectAttributes {
    pub storage_class: StorageClass,
    pub content: ContentHeaders,
    pub user_metadata: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// Validates everything PutObject and CreateMultipartUpload share: unsupported features,
/// storage class, content headers, user metadata and tagging (ACL headers are
/// [`crate::s3::acl::new_object`]'s).
pub fn object_attributes(h: &HeaderMap) -> Result<ObjectAttributes, S3Error> {
    check_unsupported_object_features(h)?;
    Ok(ObjectAttributes {
        storage_class: storage_class(h)?,
        content: content_headers(h)?,
        user_metadata: user_metadata(h)?,
        tags: tagging(h)?,
    })
}

/// Server-side encryption is not offered; object lock needs a lock-enabled bucket, which s3d
/// does not create.
pub fn check_unsupported_object_features(headers: &HeaderMap) -> Result<(), S3Error> {
    if headers.keys().any(|k| k.as_str().starts_with("x-amz-server-side-encryption")) {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Server-side encryption is not implemented by this server",
        ));
    }
    if headers.keys().any(|k| k.as_str().starts_with("x-amz-object-lock-")) {
        return Err(S3Error::with_message(S3ErrorCode::InvalidRequest, "Bucket is missing Object Lock Configuration"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        m
    }

    #[test]
    fn content_md5_must_be_16_bytes_of_base64() {
        assert_eq!(
            content_md5(&h(&[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")])).expect("ok"),
            Some([0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e])
        );
        for bad in ["not base64!", "AAAA", ""] {
            assert_eq!(content_md5(&h(&[("content-md5", bad)])).expect_err(bad).code, S3ErrorCode::InvalidDigest);
        }
        assert_eq!(content_md5(&h(&[])).expect("absent"), None);
    }

    #[test]
    fn metadata_is_collected_and_capped() {
        let m = user_metadata(&h(&[("x-amz-meta-color", "blue"), ("x-amz-meta-Size", "2"), ("content-type", "x")]))
            .expect("ok");
        assert_eq!(m, vec![("color".into(), "blue".into()), ("size".into(), "2".into())]);
        let big = "v".repeat(2045);
        assert!(user_metadata(&h(&[("x-amz-meta-abc", &big)])).is_ok());
        let bigger = "v".repeat(2046);
        assert_eq!(
            user_metadata(&h(&[("x-amz-meta-abc", &bigger)])).expect_err("big").code,
            S3ErrorCode::MetadataTooLarge
        );
    }

    #[test]
    fn tagging_rules() {
        assert_eq!(
            tagging(&h(&[("x-amz-tagging", "a=1&b%20c=x+y&empty=")])).expect("ok"),
            vec![("a".into(), "1".into()), ("b c".into(), "x y".into()), ("empty".into(), "".into())]
        );
        assert_eq!(tagging(&h(&[("x-amz-tagging", "a=%zz")])).expect_err("enc").code, S3ErrorCode::InvalidArgument);
        for bad in ["a=1&a=2", "aws:x=1", "k=v*", &format!("{}=1", "k".repeat(129)), &format!("k={}", "v".repeat(257))]
        {
            assert_eq!(tagging(&h(&[("x-amz-tagging", bad)])).expect_err(bad).code, S3ErrorCode::InvalidTag, "{bad}");
        }
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert_eq!(tagging(&h(&[("x-amz-tagging", &eleven.join("&"))])).expect_err("11").code, S3ErrorCode::InvalidTag);
    }

    #[test]
    fn checksum_settings_follow_aws_pairs() {
        use ChecksumAlgorithm as A;
        use ChecksumType as T;
        let c = |pairs: &[(&str, &str)]| checksum_settings(&h(pairs));
        assert_eq!(c(&[]).expect("none"), None);
        assert_eq!(c(&[("x-amz-checksum-algorithm", "CRC32")]).expect("ok"), Some((A::Crc32, T::Composite)));
        assert_eq!(c(&[("x-amz-checksum-algorithm", "CRC64NVME")]).expect("ok"), Some((A::Crc64Nvme, T::FullObject)));
        assert_eq!(
            c(&[("x-amz-checksum-algorithm", "CRC32C"), ("x-amz-checksum-type", "FULL_OBJECT")]).expect("ok"),
            Some((A::Crc32c, T::FullObject))
        );
        for bad in [
            vec![("x-amz-checksum-type", "COMPOSITE")],
            vec![("x-amz-checksum-algorithm", "MD4")],
            vec![("x-amz-checksum-algorithm", "CRC64NVME"), ("x-amz-checksum-type", "COMPOSITE")],
            vec![("x-amz-checksum-algorithm", "SHA256"), ("x-amz-checksum-type", "FULL_OBJECT")],
            vec![("x-amz-checksum-algorithm", "CRC32"), ("x-amz-checksum-type", "PARTIAL")],
        ] {
            assert_eq!(c(&bad).expect_err("invalid").code, S3ErrorCode::InvalidRequest, "{bad:?}");
        }
    }

    #[test]
    fn aws_chunked_is_not_a_stored_encoding() {
        assert_eq!(strip_aws_chunked("aws-chunked"), None);
        assert_eq!(strip_aws_chunked("gzip, aws-chunked").as_deref(), Some("gzip"));
        assert_eq!(strip_aws_chunked("gzip,aws-chunked").as_deref(), Some("gzip"));
        assert_eq!(strip_aws_chunked("aws-chunked,gzip").as_deref(), Some("gzip"));
        assert_eq!(strip_aws_chunked("br").as_deref(), Some("br"));
    }

    #[test]
    fn redirect_location_is_validated() {
        assert!(content_headers(&h(&[("x-amz-website-redirect-location", "/other")])).is_ok());
        assert!(content_headers(&h(&[("x-amz-website-redirect-location", "https://example.com/")])).is_ok());
        assert_eq!(
            content_headers(&h(&[("x-amz-website-redirect-location", "ftp://x")])).expect_err("bad").code,
            S3ErrorCode::InvalidRedirectLocation
        );
        assert_eq!(content_headers(&h(&[])).expect("ok").content_type.as_deref(), Some("binary/octet-stream"));
    }
}

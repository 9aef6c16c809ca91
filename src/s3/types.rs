//! Validation of the names and enumerations S3 requests carry.

use base64::Engine;

use super::error::{S3Error, S3ErrorCode};

/// Longest object key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// S3's general-purpose bucket naming rules.
pub fn validate_bucket_name(name: &str) -> Result<(), S3Error> {
    let invalid = || S3Error::new(S3ErrorCode::InvalidBucketName).field("BucketName", name);
    let bytes = name.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return Err(invalid());
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.iter().all(|&b| allowed(b))
        || !alnum(bytes[0])
        || !alnum(bytes[bytes.len() - 1])
        || name.contains("..")
        || name.contains(".-")
        || name.contains("-.")
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || ["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p))
        || ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|s| name.ends_with(s))
    {
        return Err(invalid());
    }
    Ok(())
}

/// Keys are any UTF-8 (already guaranteed by the caller) up to 1024 bytes.
pub fn validate_key(key: &str) -> Result<(), S3Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::new(S3ErrorCode::KeyTooLongError)
            .field("Size", key.len().to_string())
            .field("MaxSizeAllowed", MAX_KEY_BYTES.to_string()));
    }
    Ok(())
}

/// A fresh multipart upload id: 192 random bits, base64url without padding (32 characters),
/// starting with a letter or digit: an id starting with `-` reads as an option to command
/// lines such as `aws s3api … --upload-id ID`.
pub fn new_upload_id() -> Result<String, S3Error> {
    loop {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| S3Error::internal(format!("random source: {e}")))?;
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(id);
        }
    }
}

pub use crate::storage::{ChecksumAlgorithm, ChecksumType, StorageClass, VersionId};

impl StorageClass {
    /// `x-amz-storage-class`: the classes s3d accepts, else `InvalidStorageClass`.
    pub fn parse(s: &str) -> Result<Self, S3Error> {
        StorageClass::from_name(s)
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidStorageClass).field("StorageClassRequested", s))
    }
}

/// A `versionId` a client sent: `null` or an id this server made, else `InvalidArgument`
/// (AWS's answer to a malformed id).
pub fn parse_version_id(text: &str, argument: &str) -> Result<VersionId, S3Error> {
    VersionId::parse(text).ok_or_else(|| S3Error::invalid_argument("Invalid version id specified", argument, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket", "my.bucket.name", "a1b2c3", &"a".repeat(63), "192.168.5.4x"] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "my_bucket",
            "-abc",
            "abc-",
            ".abc",
            "abc.",
            "a..b",
            "192.168.5.4",
            "xn--abc",
            "sthree-abc",
            "amzn-s3-demo-x",
            "abc-s3alias",
            "abc--ol-s3",
            "abc.mrap",
            "abc--x-s3",
            "abc--table-s3",
            "ab c",
            "-",
        ] {
            assert_eq!(validate_bucket_name(bad).expect_err(bad).code, S3ErrorCode::InvalidBucketName, "{bad}");
        }
    }

    #[test]
    fn upload_ids_are_long_url_safe_and_distinct() {
        let a = new_upload_id().expect("random");
        let b = new_upload_id().expect("random");
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        // Never read as a command-line option (1 in 32 would start with `-` or `_` otherwise).
        for _ in 0..2000 {
            assert!(new_upload_id().expect("random").starts_with(|c: char| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn checksum_pairs_follow_aws() {
        use ChecksumAlgorithm as A;
        use ChecksumType as T;
        assert!(A::Crc32.allows(T::Composite) && A::Crc32.allows(T::FullObject));
        assert!(!A::Crc64Nvme.allows(T::Composite));
        assert!(!A::Sha256.allows(T::FullObject));
        assert_eq!(A::parse("crc32c"), Some(A::Crc32c));
        assert_eq!(A::parse("MD4"), None);
        assert_eq!(A::Crc64Nvme.default_type(), T::FullObject);
    }
}

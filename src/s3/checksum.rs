//! Flexible checksums: which one a request asks for (an `x-amz-checksum-*` header, a trailer
//! named by `x-amz-trailer`, `x-amz-sdk-checksum-algorithm`, or none, which means CRC64NVME as
//! on AWS), computing them as bytes stream, and combining part checksums for multipart
//! objects. The CRCs come from `crc-fast` (hardware-accelerated, with CRC combination), the
//! xxHashes from `xxhash-rust`, the digests from RustCrypto.

use base64::Engine;
use crc_fast::CrcAlgorithm;
use http::HeaderMap;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::error::{S3Error, S3ErrorCode};
use super::headers;
use super::types::ChecksumAlgorithm;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl ChecksumAlgorithm {
    /// `x-amz-checksum-crc32`, … — the header (and trailer, and response header) name.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
            ChecksumAlgorithm::Sha512 => "x-amz-checksum-sha512",
            ChecksumAlgorithm::Md5 => "x-amz-checksum-md5",
            ChecksumAlgorithm::Xxhash64 => "x-amz-checksum-xxhash64",
            ChecksumAlgorithm::Xxhash3 => "x-amz-checksum-xxhash3",
            ChecksumAlgorithm::Xxhash128 => "x-amz-checksum-xxhash128",
        }
    }

    /// `ChecksumCRC32`, … — the XML element name.
    pub fn xml_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "ChecksumCRC32",
            ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
            ChecksumAlgorithm::Crc64Nvme => "ChecksumCRC64NVME",
            ChecksumAlgorithm::Sha1 => "ChecksumSHA1",
            ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
            ChecksumAlgorithm::Sha512 => "ChecksumSHA512",
            ChecksumAlgorithm::Md5 => "ChecksumMD5",
            ChecksumAlgorithm::Xxhash64 => "ChecksumXXHASH64",
            ChecksumAlgorithm::Xxhash3 => "ChecksumXXHASH3",
            ChecksumAlgorithm::Xxhash128 => "ChecksumXXHASH128",
        }
    }

    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme | ChecksumAlgorithm::Xxhash64 | ChecksumAlgorithm::Xxhash3 => 8,
            ChecksumAlgorithm::Xxhash128 => 16,
            ChecksumAlgorithm::Md5 => 16,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
            ChecksumAlgorithm::Sha512 => 64,
        }
    }

    fn crc(self) -> Option<CrcAlgorithm> {
        match self {
            ChecksumAlgorithm::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => Some(CrcAlgorithm::Crc64Nvme),
            _ => None,
        }
    }
}

/// A running checksum.
pub enum Checksummer {
    Crc(ChecksumAlgorithm, crc_fast::Digest),
    Sha1(Sha1),
    Sha256(Sha256),
    Sha512(Sha512),
    Md5(Md5),
    Xxh64(Box<xxhash_rust::xxh64::Xxh64>),
    /// XXH3, keeping its 64- or 128-bit result.
    Xxh3(Box<xxhash_rust::xxh3::Xxh3>, bool),
}

impl Checksummer {
    pub fn new(a: ChecksumAlgorithm) -> Self {
        match (a, a.crc()) {
            (_, Some(crc)) => Checksummer::Crc(a, crc_fast::Digest::new(crc)),
            (ChecksumAlgorithm::Sha1, None) => Checksummer::Sha1(Sha1::new()),
            (ChecksumAlgorithm::Sha512, None) => Checksummer::Sha512(Sha512::new()),
            (ChecksumAlgorithm::Md5, None) => Checksummer::Md5(Md5::new()),
            (ChecksumAlgorithm::Xxhash64, None) => Checksummer::Xxh64(Box::new(xxhash_rust::xxh64::Xxh64::new(0))),
            (ChecksumAlgorithm::Xxhash3, None) => Checksummer::Xxh3(Box::new(xxhash_rust::xxh3::Xxh3::new()), false),
            (ChecksumAlgorithm::Xxhash128, None) => Checksummer::Xxh3(Box::new(xxhash_rust::xxh3::Xxh3::new()), true),
            _ => Checksummer::Sha256(Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Checksummer::Crc(_, d) => d.update(data),
            Checksummer::Sha1(h) => h.update(data),
            Checksummer::Sha256(h) => h.update(data),
            Checksummer::Sha512(h) => h.update(data),
            Checksummer::Md5(h) => h.update(data),
            Checksummer::Xxh64(h) => h.update(data),
            Checksummer::Xxh3(h, _) => h.update(data),
        }
    }

    /// The digest as S3 writes it: big-endian bytes, base64.
    pub fn finalize(self) -> String {
        match self {
            Checksummer::Crc(a, d) => B64.encode(crc_bytes(a, d.finalize())),
            Checksummer::Sha1(h) => B64.encode(h.finalize()),
            Checksummer::Sha256(h) => B64.encode(h.finalize()),
            Checksummer::Sha512(h) => B64.encode(h.finalize()),
            Checksummer::Md5(h) => B64.encode(h.finalize()),
            // Hash values are written big-endian, as the CRCs are.
            Checksummer::Xxh64(h) => B64.encode(h.digest().to_be_bytes()),
            Checksummer::Xxh3(h, false) => B64.encode(h.digest().to_be_bytes()),
            Checksummer::Xxh3(h, true) => B64.encode(h.digest128().to_be_bytes()),
        }
    }
}

fn crc_bytes(a: ChecksumAlgorithm, v: u64) -> Vec<u8> {
    match a.digest_len() {
        4 => (v as u32).to_be_bytes().to_vec(),
        _ => v.to_be_bytes().to_vec(),
    }
}

/// Where the client's value for the checksum comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// In a request header (already validated base64).
    Header(String),
    /// In the `aws-chunked` trailer named by `x-amz-trailer`.
    Trailer,
    /// Nowhere: the server computes it.
    None,
}

/// The checksum a request body carries or asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub expected: Expected,
    /// Whether the client named an algorithm at all (header, trailer or SDK hint).
    pub explicit: bool,
}

impl RequestChecksum {
    /// What the server computes when the client names no checksum: CRC64NVME, as AWS does.
    pub fn server_default() -> Self {
        Self::computed(ChecksumAlgorithm::Crc64Nvme)
    }

    /// A checksum of `algorithm` the server computes (of bytes it copies).
    pub fn computed(algorithm: ChecksumAlgorithm) -> Self {
        RequestChecksum { algorithm, expected: Expected::None, explicit: false }
    }
}

fn invalid(m: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, m.into())
}

/// Validates a base64 checksum value for `a`.
pub fn check_value(a: ChecksumAlgorithm, value: &str) -> Result<(), S3Error> {
    match B64.decode(value.trim()) {
        Ok(raw) if raw.len() == a.digest_len() => Ok(()),
        _ => Err(invalid(format!("Value for {} header is invalid.", a.header_name()))),
    }
}

/// What the request's checksum headers ask for. CRC64NVME when they ask for nothing.
pub fn request_checksum(h: &HeaderMap) -> Result<RequestChecksum, S3Error> {
    request_checksum_with(h, None)
}

/// As [`request_checksum`], also reading `x-amz-checksum-*` values that SDKs hoist into the
/// signed query of a presigned URL.
pub fn request_checksum_with(h: &HeaderMap, query: Option<&super::query::Query>) -> Result<RequestChecksum, S3Error> {
    let mut found: Vec<(ChecksumAlgorithm, String)> = Vec::new();
    for a in ChecksumAlgorithm::ALL {
        let value = match headers::text(h, a.header_name())? {
            Some(v) => Some(v),
            None => query.and_then(|q| q.get(a.header_name())).map(str::to_owned),
        };
        if let Some(v) = value {
            found.push((a, v));
        }
    }
    let trailer = headers::text(h, "x-amz-trailer")?;
    let multiple = "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.";
    if found.len() > 1 || (!found.is_empty() && trailer.is_some()) {
        return Err(invalid(multiple));
    }
    if let Some((a, v)) = found.pop() {
        check_value(a, &v)?;
        return Ok(RequestChecksum { algorithm: a, expected: Expected::Header(v.trim().to_owned()), explicit: true });
    }
    if let Some(t) = trailer {
        let a = ChecksumAlgorithm::from_header_name(&t)
            .ok_or_else(|| invalid(format!("The value specified in the x-amz-trailer header is not supported: {t}")))?;
        return Ok(RequestChecksum { algorithm: a, expected: Expected::Trailer, explicit: true });
    }
    if let Some(s) = headers::text(h, "x-amz-sdk-checksum-algorithm")? {
        let a = ChecksumAlgorithm::parse(&s)
            .ok_or_else(|| invalid(format!("Checksum algorithm provided is unsupported: {s}")))?;
        return Ok(RequestChecksum { algorithm: a, expected: Expected::None, explicit: true });
    }
    Ok(RequestChecksum::server_default())
}

/// A COMPOSITE multipart checksum: the checksum of the concatenated raw part checksums, `-N`.
pub fn composite(a: ChecksumAlgorithm, parts: &[&str]) -> Option<String> {
    let mut c = Checksummer::new(a);
    for p in parts {
        c.update(&B64.decode(p).ok()?);
    }
    Some(format!("{}-{}", c.finalize(), parts.len()))
}

/// A FULL_OBJECT CRC of a multipart object, combined from the part CRCs and sizes without
/// reading any data.
pub fn combine_crc(a: ChecksumAlgorithm, parts: &[(&str, u64)]) -> Option<String> {
    let crc = a.crc()?;
    let mut acc: Option<u64> = None;
    for (value, len) in parts {
        let raw = B64.decode(value).ok()?;
        let v = match raw.len() {
            4 => u64::from(u32::from_be_bytes(raw.try_into().ok()?)),
            8 => u64::from_be_bytes(raw.try_into().ok()?),
            _ => return None,
        };
        acc = Some(match acc {
            None => v,
            Some(prev) => crc_fast::checksum_combine(crc, prev, v, *len),
        });
    }
    Some(B64.encode(crc_bytes(a, acc?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut c = Checksummer::new(a);
        c.update(data);
        c.finalize()
    }

    #[test]
    fn known_values() {
        // Check values of the catalogued CRCs over "123456789".
        let b = |s: &str| hex::encode(B64.decode(s).expect("b64"));
        assert_eq!(b(&sum(ChecksumAlgorithm::Crc32, b"123456789")), "cbf43926");
        assert_eq!(b(&sum(ChecksumAlgorithm::Crc32c, b"123456789")), "e3069283");
        assert_eq!(b(&sum(ChecksumAlgorithm::Crc64Nvme, b"123456789")), "ae8b14860a799888");
        assert_eq!(sum(ChecksumAlgorithm::Sha256, b""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(sum(ChecksumAlgorithm::Sha1, b""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(sum(ChecksumAlgorithm::Md5, b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        // xxHash reference values for the empty input.
        assert_eq!(b(&sum(ChecksumAlgorithm::Xxhash64, b"")), "ef46db3751d8e999");
        assert_eq!(b(&sum(ChecksumAlgorithm::Xxhash3, b"")), "2d06800538d394c2");
        assert_eq!(b(&sum(ChecksumAlgorithm::Xxhash128, b"")), "99aa06d3014798d86001c324468d497f");
        assert!(
            sum(ChecksumAlgorithm::Sha512, b"").starts_with(
                "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
            )
        );
        // The CRC32 of no bytes, as clients send for an empty body.
        assert_eq!(sum(ChecksumAlgorithm::Crc32, b""), "AAAAAA==");
    }

    #[test]
    fn combined_crcs_equal_the_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for a in [ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Crc64Nvme] {
            let (p1, p2, p3) = (&data[..4000], &data[4000..9000], &data[9000..]);
            let parts = [(sum(a, p1), 4000u64), (sum(a, p2), 5000), (sum(a, p3), 1000)];
            let refs: Vec<(&str, u64)> = parts.iter().map(|(s, l)| (s.as_str(), *l)).collect();
            assert_eq!(combine_crc(a, &refs), Some(sum(a, &data)), "{a:?}");
        }
        assert_eq!(combine_crc(ChecksumAlgorithm::Sha256, &[("x", 1)]), None);
    }

    #[test]
    fn composite_checksums() {
        let p1 = sum(ChecksumAlgorithm::Sha256, b"a");
        let p2 = sum(ChecksumAlgorithm::Sha256, b"b");
        let mut raw = B64.decode(&p1).expect("b64");
        raw.extend(B64.decode(&p2).expect("b64"));
        assert_eq!(
            composite(ChecksumAlgorithm::Sha256, &[&p1, &p2]),
            Some(format!("{}-2", sum(ChecksumAlgorithm::Sha256, &raw)))
        );
    }

    #[test]
    fn request_checksum_rules() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
            }
            m
        };
        let crc = sum(ChecksumAlgorithm::Crc32, b"x");
        let r = request_checksum(&h(&[("x-amz-checksum-crc32", &crc)])).expect("ok");
        assert_eq!((r.algorithm, r.expected), (ChecksumAlgorithm::Crc32, Expected::Header(crc.clone())));
        let r = request_checksum(&h(&[("x-amz-trailer", "x-amz-checksum-crc32c")])).expect("ok");
        assert_eq!((r.algorithm, r.expected), (ChecksumAlgorithm::Crc32c, Expected::Trailer));
        let r = request_checksum(&h(&[("x-amz-sdk-checksum-algorithm", "SHA1")])).expect("ok");
        assert_eq!((r.algorithm, r.expected.clone(), r.explicit), (ChecksumAlgorithm::Sha1, Expected::None, true));
        let r = request_checksum(&h(&[])).expect("ok");
        assert_eq!((r.algorithm, r.explicit), (ChecksumAlgorithm::Crc64Nvme, false));
        for bad in [
            vec![("x-amz-checksum-crc32", crc.as_str()), ("x-amz-checksum-sha1", "2jmj7l5rSw0yVb/vlWAYkK/YBwk=")],
            vec![("x-amz-checksum-crc32", crc.as_str()), ("x-amz-trailer", "x-amz-checksum-crc32")],
            vec![("x-amz-checksum-crc32", "not-base64")],
            vec![("x-amz-checksum-crc32", "AAAAAAAA")],
            vec![("x-amz-trailer", "x-amz-checksum-md4")],
        ] {
            assert_eq!(request_checksum(&h(&bad)).expect_err("invalid").code, S3ErrorCode::InvalidRequest, "{bad:?}");
        }
    }
}

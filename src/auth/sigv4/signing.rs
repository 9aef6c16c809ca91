//! Signing-key derivation, the string to sign, and constant-time signature comparison.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // `new_from_slice` accepts keys of any length for HMAC, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// [`signing_key`], remembered: a key depends only on the secret and the scope, which stay
/// the same for a day, so most requests skip the four HMACs. The cache is dropped whole
/// when it grows past a bound (many users, or a new day).
pub fn cached_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Scope = (String, String, String, String);
    static CACHE: OnceLock<Mutex<HashMap<Scope, [u8; 32]>>> = OnceLock::new();
    const MAX: usize = 4096;
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let scope = (secret.to_owned(), date.to_owned(), region.to_owned(), service.to_owned());
    if let Some(key) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&scope) {
        return *key;
    }
    let key = signing_key(secret, date, region, service);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= MAX {
        map.clear();
    }
    map.insert(scope, key);
    key
}

/// `AWS4-HMAC-SHA256\n<timestamp>\n<scope>\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &str) -> String {
    format!("AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// The headers that sign a request in the header form (`host`, `x-amz-content-sha256` of
/// `body` and `x-amz-date` signed), as s3d's own client (`s3d user …`) sends them: returns
/// `x-amz-date`, `x-amz-content-sha256` and `authorization`. `path` and `query` are as sent
/// (percent-encoded).
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    method: &str,
    path: &str,
    query: &str,
    host: &str,
    body: &[u8],
    access_key: &str,
    secret: &str,
    region: &str,
    now: crate::clock::Timestamp,
) -> Vec<(&'static str, String)> {
    sign_headers_for(method, path, query, host, &sha256_hex(body), access_key, secret, region, now)
}

/// Like [`sign_headers`] with the payload hash given: a body's SHA-256 in hex, or
/// `UNSIGNED-PAYLOAD`.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers_for(
    method: &str,
    path: &str,
    query: &str,
    host: &str,
    payload: &str,
    access_key: &str,
    secret: &str,
    region: &str,
    now: crate::clock::Timestamp,
) -> Vec<(&'static str, String)> {
    use super::canonical::{canonical_query, canonical_request, canonical_uri};
    let amz_date = now.to_amz_date();
    let date = amz_date.get(..8).unwrap_or_default();
    let signed = ["host".to_owned(), "x-amz-content-sha256".to_owned(), "x-amz-date".to_owned()];
    let headers = format!("host:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n");
    let creq =
        canonical_request(method, &canonical_uri(path), &canonical_query(query, None), &headers, &signed, payload);
    let scope = format!("{date}/{region}/s3/aws4_request");
    let signature = sign(&signing_key(secret, date, region, "s3"), &string_to_sign(&amz_date, &scope, &creq));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={}, Signature={signature}",
        signed.join(";")
    );
    vec![("x-amz-date", amz_date), ("x-amz-content-sha256", payload.to_owned()), ("authorization", authorization)]
}

/// Hex signature of `string_to_sign` under `key`.
pub fn sign(key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(key, string_to_sign.as_bytes()))
}

/// Whether `provided` (hex, as sent) is the signature of `string_to_sign`, compared in
/// constant time so that timing reveals nothing about the expected value.
pub fn verify(key: &[u8; 32], string_to_sign: &str, provided: &str) -> bool {
    let Ok(provided) = hex::decode(provided) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&provided).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signing key of the AWS SigV4 documentation's example.
    #[test]
    fn derives_documented_signing_key() {
        let k = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
        assert_eq!(hex::encode(k), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
        // The cache gives the same key, and a different secret or scope a different one.
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        for _ in 0..2 {
            assert_eq!(cached_signing_key(secret, "20120215", "us-east-1", "iam"), k);
        }
        assert_ne!(cached_signing_key("other", "20120215", "us-east-1", "iam"), k);
        assert_ne!(cached_signing_key(secret, "20120216", "us-east-1", "iam"), k);
    }

    #[test]
    fn verify_rejects_wrong_and_malformed_signatures() {
        let k = [7u8; 32];
        let sig = sign(&k, "abc");
        assert!(verify(&k, "abc", &sig));
        assert!(!verify(&k, "abd", &sig));
        assert!(!verify(&k, "abc", "zz"));
        assert!(!verify(&k, "abc", &sig[..62]));
    }
}

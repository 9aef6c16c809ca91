//! AWS Signature Version 2 (HMAC-SHA1) for S3: the header form `Authorization: AWS
//! <key>:<signature>` and the query form of presigned URLs (`AWSAccessKeyId`, `Expires`,
//! `Signature`), which aws-cli v1 and boto3 still produce by default for presigned URLs.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>
//!
//! The string to sign is the method, `Content-MD5`, `Content-Type`, the date (the `Date`
//! header; empty when `x-amz-date` is sent; `Expires` in a presigned URL), every `x-amz-*`
//! header (lower-case names, sorted, repeated values joined by commas), and the resource: the
//! path with the bucket (also when the bucket is in the host name) and the sub-resources of
//! the query string that S3 signs, sorted, with their decoded values.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::sigv4::{Authenticated, MAX_SKEW, PayloadHash, RequestParts, SigningContext, canonical};
use super::{AuthError, CredentialStore};
use crate::clock::Timestamp;

/// Query parameters that are part of the resource signed (the rest are not), in the order
/// they sort in.
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Whether Signature Version 2 signs the query parameter `name` (the sub-resources, and
/// `list-type`, which only picks the listing's format).
pub fn signs_parameter(name: &str) -> bool {
    SUB_RESOURCES.contains(&name) || name == "list-type"
}

/// Presigned URLs carry the `x-amz-*`, `Content-Type` and `Content-MD5` headers their signer
/// signed as query parameters (botocore moves them there): they count as those headers, for
/// the signature and the operation alike. A header also sent as a header keeps the value
/// sent, which the signature then has to cover.
pub fn promote_query_headers(query: &str, headers: &mut http::HeaderMap) {
    for (k, v) in canonical::query_pairs(query) {
        let name = String::from_utf8_lossy(&k).to_ascii_lowercase();
        if !(name.starts_with("x-amz-") || name == "content-type" || name == "content-md5") {
            continue;
        }
        let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_bytes(&v))
        else {
            continue;
        };
        if !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }
}

/// Which form of Signature Version 2 a request uses, if any.
pub enum Form<'a> {
    /// `Authorization: AWS <key>:<signature>`; the part after `AWS `.
    Header(&'a str),
    /// `AWSAccessKeyId`, `Signature` and `Expires` in the query string.
    Query,
}

/// Recognises a Signature Version 2 request.
pub fn form<'a>(authorization: Option<&'a str>, query: &str) -> Option<Form<'a>> {
    if let Some(v) = authorization {
        return v.strip_prefix("AWS ").map(Form::Header);
    }
    canonical::query_pairs(query).any(|(k, _)| k == b"AWSAccessKeyId").then_some(Form::Query)
}

/// The HMAC-SHA1 of `string_to_sign`, in base64.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    B64.encode(mac(secret, string_to_sign).finalize().into_bytes())
}

fn mac(secret: &str, string_to_sign: &str) -> Hmac<Sha1> {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac
}

/// Whether `provided` (base64) is the signature of `string_to_sign`, compared in constant
/// time.
pub fn verify(secret: &str, string_to_sign: &str, provided: &str) -> bool {
    match B64.decode(provided.trim()) {
        Ok(raw) => mac(secret, string_to_sign).verify_slice(&raw).is_ok(),
        Err(_) => false,
    }
}

fn header<'h>(req: &'h RequestParts<'_>, name: &str) -> Option<&'h str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The string to sign of `req`, with `date` in the date line.
pub fn string_to_sign(req: &RequestParts<'_>, date: &str) -> Result<String, AuthError> {
    string_to_sign_with(req, date, false)
}

/// Whether the request names a bucket and no key in path style (`/bucket`), which clients
/// sign either as it is or as `/bucket/` (botocore).
fn bucket_only_path(req: &RequestParts<'_>) -> bool {
    req.host_bucket.is_none() && req.path.len() > 1 && !req.path[1..].contains('/')
}

fn string_to_sign_with(req: &RequestParts<'_>, date: &str, bucket_slash: bool) -> Result<String, AuthError> {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&single(req, "content-md5")?);
    out.push('\n');
    out.push_str(&single(req, "content-type")?);
    out.push('\n');
    out.push_str(date);
    out.push('\n');
    let mut amz: Vec<(&str, String)> = Vec::new();
    for name in req.headers.keys().filter(|n| n.as_str().starts_with("x-amz-")) {
        let values: Vec<String> = req.headers.get_all(name).iter().map(|v| text(v.as_bytes())).collect();
        amz.push((name.as_str(), values.join(",")));
    }
    amz.sort();
    for (name, value) in amz {
        out.push_str(name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    if let Some(bucket) = req.host_bucket {
        out.push('/');
        out.push_str(bucket);
    }
    out.push_str(req.path);
    if bucket_slash {
        out.push('/');
    }
    // Sub-resources by name (a stable sort: repeated ones keep their order); a parameter
    // without `=` signs as its name alone.
    let mut subs: Vec<(String, Option<String>)> = Vec::new();
    for pair in req.query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        let name = percent_encoding::percent_decode_str(k).decode_utf8_lossy();
        if SUB_RESOURCES.contains(&name.as_ref()) {
            let value = v.map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned());
            subs.push((name.into_owned(), value));
        }
    }
    subs.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (k, v)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    Ok(out)
}

/// Header bytes as text, as the operations read them: UTF-8, or latin-1 when not (what
/// Python clients send for text they signed), trimmed.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.trim().to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect::<String>().trim().to_owned(),
    }
}

/// A header that signs as one line: its value, or empty; sent twice, refused (one signed
/// value must not stand for another stored beside it).
fn single(req: &RequestParts<'_>, name: &str) -> Result<String, AuthError> {
    let mut values = req.headers.get_all(name).iter();
    let first = values.next().map(|v| text(v.as_bytes())).unwrap_or_default();
    if values.next().is_some() {
        return Err(AuthError::InvalidArgument {
            message: format!("The {name} header may be sent only once."),
            name: name.to_owned(),
            value: first,
        });
    }
    Ok(first)
}

/// Payload handling: none signed, unless the client also sent a SHA-256 of the body.
fn payload(req: &RequestParts<'_>) -> Result<PayloadHash, AuthError> {
    let Some(value) = header(req, "x-amz-content-sha256").map(str::trim) else {
        return Ok(PayloadHash::Unsigned);
    };
    match PayloadHash::parse(value) {
        Some(p @ (PayloadHash::Unsigned | PayloadHash::Sha256(_))) => Ok(p),
        _ => Err(AuthError::InvalidArgument {
            message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value with \
                      Signature Version 2."
                .into(),
            name: "x-amz-content-sha256".into(),
            value: value.to_owned(),
        }),
    }
}

fn check(
    req: &RequestParts<'_>,
    credentials: &dyn CredentialStore,
    access_key: &str,
    signature: &str,
    date: &str,
    presigned: bool,
) -> Result<Authenticated, AuthError> {
    let payload = payload(req)?;
    let user = credentials
        .lookup(access_key)
        .ok_or_else(|| AuthError::InvalidAccessKeyId { access_key: access_key.to_owned() })?;
    let string_to_sign = string_to_sign(req, date)?;
    let secret = user.secret_key.expose();
    let verified = verify(secret, &string_to_sign, signature)
        || (bucket_only_path(req) && verify(secret, &string_to_sign_with(req, date, true)?, signature));
    if !verified {
        return Err(AuthError::SignatureDoesNotMatch {
            access_key: access_key.to_owned(),
            string_to_sign,
            canonical_request: String::new(),
            signature_provided: signature.to_owned(),
        });
    }
    // Nothing chains from a Signature Version 2 signature (no aws-chunked bodies).
    let signing = SigningContext::none();
    Ok(Authenticated {
        identity: user.identity.clone(),
        access_key: user.access_key.clone(),
        payload,
        signing,
        presigned,
        signature_v2: true,
        anonymous: false,
        form: false,
    })
}

/// The header form; `value` is what follows `AWS ` in the Authorization header.
pub fn header_auth(
    req: &RequestParts<'_>,
    value: &str,
    credentials: &dyn CredentialStore,
    now: Timestamp,
) -> Result<Authenticated, AuthError> {
    let (access_key, signature) = value.trim().rsplit_once(':').ok_or_else(|| AuthError::InvalidArgument {
        message: "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature".into(),
        name: "Authorization".into(),
        value: format!("AWS {value}"),
    })?;
    let no_date = || AuthError::AccessDenied("AWS authentication requires a valid Date or x-amz-date header".into());
    // x-amz-date wins over Date (which then signs as an empty line).
    let (time, sent, date_line) = match header(req, "x-amz-date") {
        Some(v) => {
            let v = v.trim();
            let t = Timestamp::parse_sigv2_date(v).or_else(|| Timestamp::parse_amz_date(v));
            (t.ok_or_else(no_date)?, v, "")
        }
        None => {
            let v = header(req, "date").ok_or_else(no_date)?.trim();
            (Timestamp::parse_sigv2_date(v).ok_or_else(no_date)?, v, v)
        }
    };
    if time.abs_diff(now) > MAX_SKEW {
        return Err(AuthError::RequestTimeTooSkewed { request_time: sent.to_owned(), server_time: now });
    }
    check(req, credentials, access_key, signature, date_line, false)
}

/// The query form of a presigned URL.
pub fn query_auth(
    req: &RequestParts<'_>,
    credentials: &dyn CredentialStore,
    now: Timestamp,
) -> Result<Authenticated, AuthError> {
    let mut access_key = None;
    let mut signature = None;
    let mut expires = None;
    for (k, v) in canonical::query_pairs(req.query) {
        let v = String::from_utf8_lossy(&v).into_owned();
        match k.as_slice() {
            b"AWSAccessKeyId" => access_key = Some(v),
            b"Signature" => signature = Some(v),
            b"Expires" => expires = Some(v),
            _ => {}
        }
    }
    let (Some(access_key), Some(signature), Some(expires)) = (access_key, signature, expires) else {
        return Err(AuthError::AccessDenied(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters".into(),
        ));
    };
    let at: i64 = expires
        .trim()
        .parse()
        .map_err(|_| AuthError::AccessDenied("Invalid date (should be seconds since epoch)".into()))?;
    if now.unix_seconds() > at {
        let expires = Timestamp(at.saturating_mul(1_000_000_000));
        return Err(AuthError::Expired { expires, x_amz_expires: None, server_time: now });
    }
    check(req, credentials, &access_key, &signature, expires.trim(), true)
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::auth::{Identity, SecretKey, StaticCredentials, UserCredential};

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn creds() -> StaticCredentials {
        StaticCredentials::new(vec![UserCredential {
            access_key: AK.into(),
            secret_key: SecretKey::new(SK),
            identity: Identity { id: "u".into(), display_name: "u".into() },
            admin: false,
        }])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn parts<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        h: &'a HeaderMap,
        bucket: Option<&'a str>,
    ) -> RequestParts<'a> {
        RequestParts { method, path, query, headers: h, authority: "", host_bucket: bucket }
    }

    /// Signatures computed independently (HMAC-SHA1 of the string to sign, base64), the
    /// first two being AWS's documented examples.
    #[test]
    fn strings_to_sign_and_signatures() {
        let date = "Tue, 27 Mar 2007 19:36:42 +0000";
        let h = headers(&[("date", date)]);
        let get = parts("GET", "/photos/puppy.jpg", "", &h, Some("awsexamplebucket1"));
        let sts = string_to_sign(&get, date).expect("sts");
        assert_eq!(sts, format!("GET\n\n\n{date}\n/awsexamplebucket1/photos/puppy.jpg"));
        assert_eq!(sign(SK, &sts), "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");

        let h = headers(&[("content-type", "image/jpeg"), ("date", "Tue, 27 Mar 2007 21:15:45 +0000")]);
        let put = parts("PUT", "/awsexamplebucket1/photos/puppy.jpg", "", &h, None);
        assert_eq!(
            sign(SK, &string_to_sign(&put, "Tue, 27 Mar 2007 21:15:45 +0000").expect("sts")),
            "iqRzw+ileNPu1fhspnRs8nOjjIA="
        );

        // x-amz-* headers lower-cased, sorted, repeated values joined; Content-MD5 signed.
        let h = headers(&[
            ("content-md5", "4gJE4saaMU4BqNR0kLY+lw=="),
            ("content-type", "application/x-download"),
            ("X-Amz-Meta-ReviewedBy", "joe@example.com"),
            ("X-Amz-Meta-ReviewedBy", "jane@example.com"),
            ("X-Amz-Meta-FileChecksum", "0x02661779"),
            ("X-Amz-Meta-ChecksumAlgorithm", "crc32"),
            ("x-amz-acl", "public-read"),
        ]);
        let put = parts("PUT", "/db-backup.dat.gz", "", &h, Some("static.example.com"));
        let sts = string_to_sign(&put, "Tue, 27 Mar 2007 21:06:08 +0000").expect("sts");
        assert!(sts.contains("x-amz-meta-reviewedby:joe@example.com,jane@example.com\n"), "{sts}");
        assert_eq!(sign(SK, &sts), "jtBQa0Aq+DkULFI8qrpwIjGEx0E=");

        // Sub-resources sorted with their values; other parameters left out; a bare name
        // signs as itself.
        let h = HeaderMap::new();
        let post = parts("POST", "/b/k", "uploadId=abc&x-id=UploadPart&partNumber=2", &h, None);
        assert_eq!(
            sign(SK, &string_to_sign(&post, "Tue, 27 Mar 2007 21:15:45 +0000").expect("sts")),
            "eN2x5wTMbtg9C9wfnWWMWvAHlfQ="
        );
        let uploads = parts("GET", "/", "uploads", &h, Some("awsexamplebucket1"));
        assert!(string_to_sign(&uploads, "").expect("sts").ends_with("/awsexamplebucket1/?uploads"));
        let listed = parts("GET", "/", "uploads=&prefix=a", &h, Some("b"));
        assert!(string_to_sign(&listed, "").expect("sts").ends_with("/b/?uploads="));
    }

    #[test]
    fn what_is_signed_is_what_the_operations_read() {
        let date = "Tue, 27 Mar 2007 19:36:42 +0000";
        // One Content-Type only: a second could be stored beside the signed one.
        let h = headers(&[("content-type", "text/plain"), ("content-type", "text/html")]);
        let twice = parts("PUT", "/b/k", "", &h, None);
        assert!(matches!(string_to_sign(&twice, date), Err(AuthError::InvalidArgument { .. })));
        // Bytes that are not ASCII sign as the text they are (latin-1 when not UTF-8).
        let mut h = HeaderMap::new();
        h.insert("x-amz-meta-word", HeaderValue::from_bytes(b"caf\xe9").expect("latin-1"));
        h.insert("content-type", HeaderValue::from_bytes("text/plain; x=\u{e9}".as_bytes()).expect("utf-8"));
        let sts = string_to_sign(&parts("PUT", "/b/k", "", &h, None), date).expect("sts");
        assert!(sts.contains("x-amz-meta-word:caf\u{e9}\n") && sts.contains("text/plain; x=\u{e9}\n"), "{sts}");
        // Sub-resource names are decoded; each keeps whether it had a value.
        let none = HeaderMap::new();
        let sts = string_to_sign(&parts("PUT", "/b/k", "%70artNumber=2&uploadId=u", &none, None), "").expect("sts");
        assert!(sts.ends_with("/b/k?partNumber=2&uploadId=u"), "{sts}");
        let sts = string_to_sign(&parts("GET", "/b", "uploads&uploads=x", &none, None), "").expect("sts");
        assert!(sts.ends_with("/b?uploads&uploads=x"), "{sts}");
        // Query parameters a presigned URL carries for headers count as those headers.
        let mut h = headers(&[("x-amz-meta-a", "sent")]);
        promote_query_headers("x-amz-meta-a=query&X-Amz-Meta-B=b&Content-Type=text%2Fplain&other=1", &mut h);
        assert_eq!(h.get("x-amz-meta-a").map(|v| v.as_bytes()), Some(&b"sent"[..]), "a header sent wins");
        assert_eq!(h.get("x-amz-meta-b").map(|v| v.as_bytes()), Some(&b"b"[..]));
        assert_eq!(h.get("content-type").map(|v| v.as_bytes()), Some(&b"text/plain"[..]));
        assert!(h.get("other").is_none());
        assert!(signs_parameter("uploadId") && signs_parameter("list-type") && !signs_parameter("retention"));
    }

    #[test]
    fn header_form_verifies_dates_keys_and_signatures() {
        let now = Timestamp::parse_sigv2_date("Tue, 27 Mar 2007 19:40:00 +0000").expect("date");
        let date = "Tue, 27 Mar 2007 19:36:42 +0000";
        let h = headers(&[("date", date)]);
        let get = parts("GET", "/photos/puppy.jpg", "", &h, Some("awsexamplebucket1"));
        let ok = header_auth(&get, &format!("{AK}:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="), &creds(), now).expect("verifies");
        assert_eq!((ok.identity.id.as_str(), ok.payload, ok.presigned), ("u", PayloadHash::Unsigned, false));
        let wrong = header_auth(&get, &format!("{AK}:qgk2+6Sv9/oM7G3qLEjTH1a1l1h="), &creds(), now);
        assert!(matches!(wrong, Err(AuthError::SignatureDoesNotMatch { .. })));
        let unknown = header_auth(&get, "NOPE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=", &creds(), now);
        assert!(matches!(unknown, Err(AuthError::InvalidAccessKeyId { .. })));
        assert!(matches!(header_auth(&get, "no-colon", &creds(), now), Err(AuthError::InvalidArgument { .. })));
        let late = now.plus(std::time::Duration::from_secs(3600));
        let skewed = header_auth(&get, &format!("{AK}:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="), &creds(), late);
        assert!(matches!(skewed, Err(AuthError::RequestTimeTooSkewed { .. })));
        let none = HeaderMap::new();
        let undated = parts("GET", "/photos/puppy.jpg", "", &none, Some("awsexamplebucket1"));
        assert!(matches!(header_auth(&undated, &format!("{AK}:x"), &creds(), now), Err(AuthError::AccessDenied(_))));
        // With x-amz-date, the date line is empty and the header is signed among x-amz-*.
        let h = headers(&[("x-amz-date", date), ("date", "Thu, 01 Jan 1970 00:00:00 GMT")]);
        let amz = parts("GET", "/", "uploads", &h, Some("awsexamplebucket1"));
        header_auth(&amz, &format!("{AK}:EBXFj73hWeKPFIWoR6y3gcTXGok="), &creds(), now).expect("x-amz-date form");
        // A bucket named in the path verifies signed as `/bucket` or `/bucket/`.
        let h = headers(&[("date", date)]);
        let bucket = parts("PUT", "/dbg", "", &h, None);
        header_auth(&bucket, &format!("{AK}:wdL8QhU/vHJNE+7mHruYZpUd0+0="), &creds(), now).expect("/dbg/ form");
        let object = parts("PUT", "/dbg/k", "", &h, None);
        let other = header_auth(&object, &format!("{AK}:wdL8QhU/vHJNE+7mHruYZpUd0+0="), &creds(), now);
        assert!(matches!(other, Err(AuthError::SignatureDoesNotMatch { .. })), "only for a bucket alone");
    }

    #[test]
    fn query_form_verifies_and_expires() {
        let h = HeaderMap::new();
        let q = format!("AWSAccessKeyId={AK}&Expires=1175139620&Signature=1No4mq5ETf02z8aet9voy6gui6E%3D");
        let get = parts("GET", "/photos/puppy.jpg", &q, &h, Some("awsexamplebucket1"));
        let before = Timestamp::parse_sigv2_date("Tue, 27 Mar 2007 19:36:42 +0000").expect("date");
        let ok = query_auth(&get, &creds(), before).expect("verifies");
        assert!(ok.presigned);
        let after = before.plus(std::time::Duration::from_secs(3 * 86_400));
        assert!(matches!(query_auth(&get, &creds(), after), Err(AuthError::Expired { x_amz_expires: None, .. })));
        // Response overrides are signed: changing one breaks the signature.
        let q = format!("{q}&response-content-type=text/plain");
        let get = parts("GET", "/photos/puppy.jpg", &q, &h, Some("awsexamplebucket1"));
        assert!(matches!(query_auth(&get, &creds(), before), Err(AuthError::SignatureDoesNotMatch { .. })));
        let q = "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=ho7iYEac0qcZ%2BPWj73n%2FlEkEce8%3D&response-content-type=text/plain";
        let get = parts("GET", "/photos/puppy.jpg", q, &h, Some("awsexamplebucket1"));
        query_auth(&get, &creds(), before).expect("the override as signed");
        let missing = parts("GET", "/photos/puppy.jpg", "AWSAccessKeyId=AK&Expires=1", &h, None);
        assert!(matches!(query_auth(&missing, &creds(), before), Err(AuthError::AccessDenied(_))));
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        fn query() -> impl Strategy<Value = String> {
            let param = prop_oneof![
                Just(format!("AWSAccessKeyId={AK}")),
                "Expires=-?[0-9]{0,25}",
                "Signature=[A-Za-z0-9+/=%]{0,40}",
                "(uploads|uploadId|partNumber|versionId|acl|response-content-type)(=[^&]{0,10})?",
                "%[0-9A-Fa-f]?[^&]{0,6}",
                "[a-z-]{0,10}(=[^&]{0,10})?",
            ];
            proptest::collection::vec(param, 0..6).prop_map(|p| p.join("&"))
        }

        proptest! {
            #![proptest_config(crate::s3::xml::fuzzing::config())]

            /// Header and query forms with hostile dates, headers and parameters: an answer
            /// (through the one entry point that picks the signature version), never a panic.
            #[test]
            fn fuzz_signature_version_2(
                authorization in proptest::option::of(prop_oneof![
                    "AWS [A-Za-z0-9]{0,20}:[A-Za-z0-9+/=]{0,30}".boxed(),
                    Just(format!("AWS {AK}:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=")).boxed(),
                    "AWS \\PC{0,40}".boxed(),
                ]),
                query in query(),
                date in proptest::option::of("\\PC{0,40}"),
                amz_date in proptest::option::of("\\PC{0,40}"),
                extra in proptest::collection::vec(("x-amz-[a-z-]{1,12}|content-type|content-md5", proptest::collection::vec(any::<u8>(), 0..20)), 0..4),
                path in "/[^?#]{0,30}",
                sigv2 in any::<bool>(),
            ) {
                let mut h = HeaderMap::new();
                if let Some(a) = authorization.and_then(|a| HeaderValue::from_str(&a).ok()) {
                    h.insert("authorization", a);
                }
                for (name, value) in [("date", date), ("x-amz-date", amz_date)] {
                    if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                        h.insert(name, v);
                    }
                }
                for (k, v) in &extra {
                    if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_bytes(v)) {
                        h.append(k, v);
                    }
                }
                let req = parts("GET", &path, &query, &h, Some("bkt"));
                let now = Timestamp::parse_sigv2_date("Tue, 27 Mar 2007 19:40:00 +0000").expect("date");
                let _ = crate::auth::authenticate(&req, &creds(), "us-east-1", now, sigv2);
                let mut promoted = h.clone();
                promote_query_headers(&query, &mut promoted);
            }
        }
    }
}

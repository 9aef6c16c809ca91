//! The worked examples of the AWS S3 SigV4 documentation, verified end to end, plus the
//! variations real clients produce.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::auth::{SecretKey, StaticCredentials, UserCredential};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SCOPE: &str = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";

fn creds() -> StaticCredentials {
    StaticCredentials::new([UserCredential {
        access_key: ACCESS_KEY.into(),
        secret_key: SecretKey::new(SECRET_KEY),
        identity: Identity { id: "example-user".into(), display_name: "example".into() },
        admin: false,
    }])
}

fn now() -> Timestamp {
    Timestamp::parse_amz_date("20130524T000000Z").expect("valid date")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
    }
    h
}

fn auth(method: &str, path: &str, query: &str, h: &HeaderMap) -> Result<Authenticated, AuthError> {
    authenticate(
        &RequestParts {
            method,
            path,
            query,
            headers: h,
            authority: "examplebucket.s3.amazonaws.com",
            host_bucket: None,
        },
        &creds(),
        "us-east-1",
        now(),
    )
}

fn authorization(signed_headers: &str, signature: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders={signed_headers},Signature={signature}")
}

/// "Example: GET Object" of the S3 SigV4 header-auth documentation.
fn get_object_headers() -> HeaderMap {
    headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", "20130524T000000Z"),
        (
            "authorization",
            &authorization(
                "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ),
    ])
}

#[test]
fn aws_example_get_object() {
    let a = auth("GET", "/test.txt", "", &get_object_headers()).expect("verifies");
    assert_eq!(a.identity.id, "example-user");
    assert_eq!(
        a.payload,
        PayloadHash::Sha256([
            0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae,
            0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55
        ])
    );
    assert!(!a.presigned);
}

/// s3d's own signer produces what the verifier accepts; a wrong secret does not verify.
#[test]
fn own_signer_round_trips() {
    let body = br#"{"id":"app"}"#;
    let host = "examplebucket.s3.amazonaws.com";
    let signed = signing::sign_headers(
        "POST",
        "/-/admin/users",
        "rotate-key&id=a%20b",
        host,
        body,
        ACCESS_KEY,
        SECRET_KEY,
        "us-east-1",
        now(),
    );
    let mut pairs = vec![("host", host)];
    pairs.extend(signed.iter().map(|(k, v)| (*k, v.as_str())));
    let a = auth("POST", "/-/admin/users", "rotate-key&id=a%20b", &headers(&pairs)).expect("verifies");
    assert_eq!(a.identity.id, "example-user");
    assert_eq!(a.payload, PayloadHash::Sha256(<sha2::Sha256 as sha2::Digest>::digest(body).into()));
    let wrong =
        signing::sign_headers("POST", "/-/admin/users", "", host, body, ACCESS_KEY, "other", "us-east-1", now());
    let mut pairs = vec![("host", host)];
    pairs.extend(wrong.iter().map(|(k, v)| (*k, v.as_str())));
    assert!(matches!(
        auth("POST", "/-/admin/users", "", &headers(&pairs)),
        Err(AuthError::SignatureDoesNotMatch { .. })
    ));
}

#[test]
fn aws_example_put_object_with_date_and_dollar_in_key() {
    let h = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"),
        (
            "authorization",
            &authorization(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            ),
        ),
    ]);
    auth("PUT", "/test%24file.text", "", &h).expect("verifies");
}

#[test]
fn aws_example_get_bucket_lifecycle() {
    let h = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        (
            "authorization",
            &authorization(
                "host;x-amz-content-sha256;x-amz-date",
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
            ),
        ),
    ]);
    auth("GET", "/", "lifecycle", &h).expect("verifies");
}

#[test]
fn aws_example_list_objects() {
    let h = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        (
            "authorization",
            &authorization(
                "host;x-amz-content-sha256;x-amz-date",
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
            ),
        ),
    ]);
    auth("GET", "/", "max-keys=2&prefix=J", &h).expect("verifies");
    // The same parameters in another order sign the same.
    auth("GET", "/", "prefix=J&max-keys=2", &h).expect("verifies");
}

/// "Example: presigned URL" of the S3 query-auth documentation, checked at its signing time.
#[test]
fn aws_example_presigned_get() {
    let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    let a = auth("GET", "/test.txt", query, &h).expect("verifies");
    assert!(a.presigned);
    assert_eq!(a.payload, PayloadHash::Unsigned);
    // A day and a second later it has expired.
    let later = Timestamp(now().0 + 86_401 * 1_000_000_000);
    let err = authenticate(
        &RequestParts { method: "GET", path: "/test.txt", query, headers: &h, authority: "", host_bucket: None },
        &creds(),
        "us-east-1",
        later,
    )
    .expect_err("expired");
    assert!(matches!(err, AuthError::Expired { x_amz_expires: Some(_), .. }), "{err:?}");
}

#[test]
fn wrong_signature_reports_canonical_request_and_string_to_sign() {
    let mut h = get_object_headers();
    h.insert("range", HeaderValue::from_static("bytes=0-10"));
    match auth("GET", "/test.txt", "", &h) {
        Err(AuthError::SignatureDoesNotMatch { canonical_request, string_to_sign, access_key, .. }) => {
            assert_eq!(access_key, ACCESS_KEY);
            assert!(canonical_request.contains("\nrange:bytes=0-10\n"), "{canonical_request}");
            assert!(
                string_to_sign.starts_with("AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n")
            );
        }
        other => panic!("expected SignatureDoesNotMatch, got {other:?}"),
    }
}

#[test]
fn error_cases_have_distinct_codes() {
    // Unknown access key.
    let mut h = get_object_headers();
    let a = h["authorization"].to_str().expect("ascii").replace(ACCESS_KEY, "AKIDUNKNOWN");
    h.insert("authorization", HeaderValue::from_str(&a).expect("value"));
    assert!(matches!(auth("GET", "/test.txt", "", &h), Err(AuthError::InvalidAccessKeyId { .. })));

    // Wrong region: malformed, with the expected region.
    let mut h = get_object_headers();
    let a = h["authorization"].to_str().expect("ascii").replace("us-east-1", "eu-west-1");
    h.insert("authorization", HeaderValue::from_str(&a).expect("value"));
    assert_eq!(
        auth("GET", "/test.txt", "", &h).expect_err("wrong region"),
        AuthError::AuthorizationHeaderMalformed {
            message: "The authorization header is malformed; the region 'eu-west-1' is wrong; \
                      expecting 'us-east-1'"
                .into(),
            region: Some("us-east-1".into()),
        }
    );

    // Skewed clock.
    let mut h = get_object_headers();
    h.insert("x-amz-date", HeaderValue::from_static("20130524T001600Z"));
    assert!(matches!(auth("GET", "/test.txt", "", &h), Err(AuthError::RequestTimeTooSkewed { .. })));

    // Scope date that is not the request date.
    let mut h = get_object_headers();
    h.insert("x-amz-date", HeaderValue::from_static("20130523T235959Z"));
    assert!(matches!(
        auth("GET", "/test.txt", "", &h),
        Err(AuthError::AuthorizationHeaderMalformed { region: None, .. })
    ));

    // No x-amz-content-sha256, or a bad one.
    let mut h = get_object_headers();
    h.remove("x-amz-content-sha256");
    assert!(matches!(auth("GET", "/test.txt", "", &h), Err(AuthError::InvalidRequest(_))));
    h.insert("x-amz-content-sha256", HeaderValue::from_static("abc"));
    assert!(matches!(auth("GET", "/test.txt", "", &h), Err(AuthError::InvalidArgument { .. })));

    // No date at all.
    let mut h = get_object_headers();
    h.remove("x-amz-date");
    assert!(matches!(auth("GET", "/test.txt", "", &h), Err(AuthError::AccessDenied(_))));

    // Anonymous.
    let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
    assert_eq!(
        auth("GET", "/test.txt", "", &h).expect_err("anonymous"),
        AuthError::AccessDenied("Access Denied".into())
    );
}

#[test]
fn payload_hash_forms() {
    assert_eq!(PayloadHash::parse("UNSIGNED-PAYLOAD"), Some(PayloadHash::Unsigned));
    assert_eq!(
        PayloadHash::parse("STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        Some(PayloadHash::Streaming(StreamingMode::UnsignedPayloadTrailer))
    );
    assert_eq!(
        PayloadHash::parse("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        Some(PayloadHash::Streaming(StreamingMode::SignedPayload))
    );
    assert!(PayloadHash::parse(EMPTY_SHA256).is_some());
    assert!(PayloadHash::parse(&EMPTY_SHA256.replace('e', "g")).is_none());
    assert!(PayloadHash::parse("").is_none());
}

/// A signed request (a presigned URL above all) must not carry extra `x-amz-*` headers the
/// signer never saw: they once turned a presigned PUT into a CopyObject.
#[test]
fn unsigned_amz_headers_are_refused_in_both_forms() {
    let mut h = get_object_headers();
    h.insert("x-amz-copy-source", HeaderValue::from_static("/other-bucket/secret"));
    h.insert("x-amz-meta-a", HeaderValue::from_static("1"));
    assert_eq!(
        auth("GET", "/test.txt", "", &h).expect_err("unsigned"),
        AuthError::HeadersNotSigned(vec!["x-amz-copy-source".into(), "x-amz-meta-a".into()])
    );
    // Headers outside the x-amz- namespace, and x-amzn-trace-id, need no signature.
    let mut h = get_object_headers();
    h.insert("x-amzn-trace-id", HeaderValue::from_static("Root=1"));
    h.insert("user-agent", HeaderValue::from_static("test"));
    auth("GET", "/test.txt", "", &h).expect("verifies");

    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    let h = headers(&[("host", "examplebucket.s3.amazonaws.com"), ("x-amz-copy-source", "/other-bucket/secret")]);
    assert_eq!(
        auth("GET", "/test.txt", query, &h).expect_err("unsigned"),
        AuthError::HeadersNotSigned(vec!["x-amz-copy-source".into()])
    );
    // x-amz-content-sha256 is the payload line of the canonical request: signed either way.
    let h = headers(&[("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]);
    auth("GET", "/test.txt", query, &h).expect("verifies");
}

/// Dates a client controls never panic, whatever their year.
#[test]
fn extreme_request_dates_are_refused_not_panicked_on() {
    for date in ["19691231T000000Z", "00010101T000000Z", "99991231T235959Z", "16000101T000000Z"] {
        let mut h = get_object_headers();
        h.insert("x-amz-date", HeaderValue::from_str(date).expect("value"));
        let err = auth("GET", "/test.txt", "", &h).expect_err(date);
        assert!(
            matches!(err, AuthError::AccessDenied(_) | AuthError::AuthorizationHeaderMalformed { .. }),
            "{date}: {err:?}"
        );
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F{}%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date={date}&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
            &date[..8]
        );
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let err = auth("GET", "/test.txt", &query, &h).expect_err(date);
        assert!(
            matches!(
                err,
                AuthError::AccessDenied(_)
                    | AuthError::Expired { .. }
                    | AuthError::AuthorizationQueryParametersError(_)
            ),
            "{date}: {err:?}"
        );
    }
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;
    use crate::s3::xml::fuzzing::config;

    /// Date-like values: valid, off by a field, signed, short, arbitrary.
    fn date() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("20130524T000000Z".to_string()),
            "[0-9]{8}T[0-9]{6}Z",
            "[+-]?[0-9]{4,9}T[0-9]{6}Z",
            "\\PC{0,20}",
        ]
    }

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(format!("Credential={SCOPE}")),
            "Credential=[A-Za-z0-9/_-]{0,60}",
            "SignedHeaders=[a-z0-9;-]{0,40}",
            Just("SignedHeaders=host;x-amz-content-sha256;x-amz-date".to_string()),
            "Signature=[0-9a-f]{0,70}",
            "[A-Za-z]{0,10}=?[^,]{0,20}",
        ]
    }

    fn authorization() -> impl Strategy<Value = String> {
        prop_oneof![
            (proptest::collection::vec(component(), 0..5), prop_oneof![Just(", "), Just(","), Just(" ")])
                .prop_map(|(parts, sep)| format!("AWS4-HMAC-SHA256 {}", parts.join(sep))),
            "AWS [A-Za-z0-9]{0,20}:[A-Za-z0-9+/=]{0,30}",
            "\\PC{0,120}",
        ]
    }

    fn query() -> impl Strategy<Value = String> {
        let param = prop_oneof![
            Just("X-Amz-Algorithm=AWS4-HMAC-SHA256".to_string()),
            Just("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request".to_string()),
            date().prop_map(|d| format!("X-Amz-Date={d}")),
            "X-Amz-Expires=-?[0-9]{0,25}",
            "X-Amz-SignedHeaders=[a-z;%0-9]{0,30}",
            "X-Amz-Signature=[0-9a-f]{0,64}",
            "[a-z-]{0,10}(=[^&]{0,10})?",
            "%[0-9A-Fa-f]?[^&]{0,6}",
        ];
        proptest::collection::vec(param, 0..8).prop_map(|p| p.join("&"))
    }

    proptest! {
        #![proptest_config(config())]

        /// Whatever a client writes in Authorization: a typed request or an auth error.
        #[test]
        fn fuzz_authorization_header(value in authorization()) {
            let _ = authorization::parse_authorization_header(&value);
        }

        /// Whole requests, header or query form, with hostile dates, scopes, expiries and
        /// headers: an answer, never a panic; and never success with an unsigned x-amz-*.
        #[test]
        fn fuzz_authenticate(
            method in prop_oneof![Just("GET".to_string()), Just("PUT".to_string()), "[A-Z]{0,8}"],
            path in "/[^?#]{0,30}",
            query in query(),
            auth_header in proptest::option::of(authorization()),
            amz_date in proptest::option::of(date()),
            http_date in proptest::option::of("\\PC{0,32}"),
            sha in proptest::option::of(prop_oneof![Just(EMPTY_SHA256.to_string()), Just("UNSIGNED-PAYLOAD".to_string()), "[A-Z0-9-]{0,70}"]),
            extra in proptest::option::of(("x-amz-[a-z-]{1,12}", "[ -~]{0,20}")),
        ) {
            let mut pairs: Vec<(String, String)> = vec![("host".into(), "examplebucket.s3.amazonaws.com".into())];
            if let Some(a) = auth_header { pairs.push(("authorization".into(), a)); }
            if let Some(d) = amz_date { pairs.push(("x-amz-date".into(), d)); }
            if let Some(d) = http_date { pairs.push(("date".into(), d)); }
            if let Some(s) = sha { pairs.push(("x-amz-content-sha256".into(), s)); }
            if let Some((k, v)) = &extra { pairs.push((k.clone(), v.clone())); }
            let mut h = HeaderMap::new();
            for (k, v) in &pairs {
                if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                    h.append(k, v);
                }
            }
            if let Ok(a) = auth(&method, &path, &query, &h) {
                prop_assert!(a.identity.id == "example-user");
            }
        }

        /// Query strings of any shape canonicalise without panicking.
        #[test]
        fn fuzz_canonical_query(raw in "\\PC{0,80}") {
            let _ = canonical::canonical_query(&raw, Some("X-Amz-Signature"));
            let _ = canonical::query_pairs(&raw).count();
            let _ = canonical::canonical_uri(&raw);
        }
    }
}

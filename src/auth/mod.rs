//! Who is calling: AWS Signature Version 4 (and Version 2, unless turned off), in the
//! Authorization header or in a presigned URL.
//!
//! Pure functions plus one trait ([`CredentialStore`]); nothing here knows about storage or
//! S3 operations. [`authenticate`] checks the headers only, so it runs before any body byte
//! is read (which is what makes `Expect: 100-continue` answerable with an error).

mod credentials;
mod error;
pub mod sigv2;
pub mod sigv4;

pub use credentials::{CredentialStore, Identity, SecretKey, StaticCredentials, UserCredential};
pub use error::AuthError;
pub use sigv4::{Authenticated, PayloadHash, RequestParts, SigningContext, StreamingMode};

use crate::clock::Timestamp;

/// The authentication parameters a query string carries, found in one pass.
#[derive(Default)]
struct QueryAuth {
    algorithm: bool,
    v4_signature: bool,
    access_key_id: bool,
    v2_signature: bool,
}

impl QueryAuth {
    fn of(query: &str) -> QueryAuth {
        let mut q = QueryAuth::default();
        for (k, _) in sigv4::canonical::query_pairs(query) {
            match k.as_slice() {
                b"X-Amz-Algorithm" => q.algorithm = true,
                b"X-Amz-Signature" => q.v4_signature = true,
                b"AWSAccessKeyId" => q.access_key_id = true,
                b"Signature" => q.v2_signature = true,
                _ => {}
            }
        }
        q
    }

    fn any(&self) -> bool {
        self.algorithm || self.v4_signature || self.access_key_id || self.v2_signature
    }
}

/// Verifies the request's signature from its headers alone: Signature Version 4, or
/// Version 2 when `sigv2` allows it (else refused as AWS refuses it where it is retired).
/// A request that carries no signature at all is anonymous: only a bucket policy can let it
/// in.
pub fn authenticate(
    req: &RequestParts<'_>,
    credentials: &dyn CredentialStore,
    region: &str,
    now: Timestamp,
    sigv2: bool,
) -> Result<Authenticated, AuthError> {
    let in_query = QueryAuth::of(req.query);
    let has_header = req.headers.contains_key(http::header::AUTHORIZATION);
    if !has_header && !in_query.any() {
        return Authenticated::anonymous(req.headers);
    }
    let authorization = req.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let form = match authorization {
        Some(v) => v.strip_prefix("AWS ").map(sigv2::Form::Header),
        None => in_query.access_key_id.then_some(sigv2::Form::Query),
    };
    let Some(form) = form else {
        return sigv4::authenticate(req, credentials, region, now);
    };
    if !sigv2 {
        return Err(AuthError::InvalidRequest(
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.".into(),
        ));
    }
    let mixed = match form {
        sigv2::Form::Header(_) => in_query.algorithm || in_query.access_key_id,
        sigv2::Form::Query => in_query.algorithm,
    };
    if mixed {
        return Err(AuthError::InvalidArgument {
            message:
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string \
                      parameter or the Authorization header should be specified"
                    .into(),
            name: "Authorization".into(),
            value: String::new(),
        });
    }
    match form {
        sigv2::Form::Header(value) => sigv2::header_auth(req, value, credentials, now),
        sigv2::Form::Query => sigv2::query_auth(req, credentials, now),
    }
}

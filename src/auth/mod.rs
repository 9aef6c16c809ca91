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

/// Verifies the request's signature from its headers alone: Signature Version 4, or
/// Version 2 when `sigv2` allows it (else refused as AWS refuses it where it is retired).
pub fn authenticate(
    req: &RequestParts<'_>,
    credentials: &dyn CredentialStore,
    region: &str,
    now: Timestamp,
    sigv2: bool,
) -> Result<Authenticated, AuthError> {
    let authorization = req.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(form) = sigv2::form(authorization, req.query) else {
        return sigv4::authenticate(req, credentials, region, now);
    };
    if !sigv2 {
        return Err(AuthError::InvalidRequest(
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.".into(),
        ));
    }
    let in_query = |name: &[u8]| sigv4::canonical::query_pairs(req.query).any(|(k, _)| k == name);
    let mixed = match form {
        sigv2::Form::Header(_) => in_query(b"X-Amz-Algorithm") || in_query(b"AWSAccessKeyId"),
        sigv2::Form::Query => in_query(b"X-Amz-Algorithm"),
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

//! AWS Signature Version 4 for S3.
//!
//! - Header form: <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>
//! - Query form (presigned URLs): <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>
//! - Streaming payloads: <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html>

pub mod authorization;
pub mod canonical;
pub mod chunked;
pub mod signing;

use std::time::Duration;

use http::HeaderMap;

use crate::auth::{AuthError, CredentialStore, Identity};
use crate::clock::Timestamp;
use authorization::{CredentialScope, SignedRequest};

/// How far the request time may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The parts of a request that SigV4 covers, as they arrived on the wire.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// Raw (still percent-encoded) path.
    pub path: &'a str,
    /// Raw query string, without the `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The request's authority, used when there is no `host` header (HTTP/2).
    pub authority: &'a str,
    /// The bucket named by the host (virtual-host style), which Signature Version 2 signs
    /// as part of the resource.
    pub host_bucket: Option<&'a str>,
}

/// The `aws-chunked` body framings S3 accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamingMode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`
    SignedPayload,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`
    SignedPayloadTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`
    UnsignedPayloadTrailer,
}

/// What `x-amz-content-sha256` promises about the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadHash {
    Unsigned,
    /// The body's SHA-256; to be checked as the body streams.
    Sha256([u8; 32]),
    Streaming(StreamingMode),
}

impl PayloadHash {
    /// Parses an `x-amz-content-sha256` value.
    pub fn parse(value: &str) -> Option<PayloadHash> {
        Some(match value {
            "UNSIGNED-PAYLOAD" => PayloadHash::Unsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadHash::Streaming(StreamingMode::SignedPayload),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => PayloadHash::Streaming(StreamingMode::SignedPayloadTrailer),
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadHash::Streaming(StreamingMode::UnsignedPayloadTrailer),
            hex_digest if hex_digest.len() == 64 => {
                let mut out = [0u8; 32];
                hex::decode_to_slice(hex_digest, &mut out).ok()?;
                PayloadHash::Sha256(out)
            }
            _ => return None,
        })
    }
}

/// What later stages need to verify `aws-chunked` chunk signatures, which chain from the
/// request's own signature.
#[derive(Clone)]
pub struct SigningContext {
    pub key: [u8; 32],
    /// `x-amz-date` in ISO 8601 basic form.
    pub timestamp: String,
    /// `<date>/<region>/s3/aws4_request`.
    pub scope: String,
    /// The request signature, the seed of the chunk-signature chain.
    pub seed_signature: String,
}

impl SigningContext {
    /// For requests no chunk signature can chain from (unsigned, Version 2, forms).
    pub fn none() -> Self {
        SigningContext { key: [0; 32], timestamp: String::new(), scope: String::new(), seed_signature: String::new() }
    }
}

impl std::fmt::Debug for SigningContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningContext")
            .field("timestamp", &self.timestamp)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A request whose signature verified.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    pub access_key: String,
    pub payload: PayloadHash,
    pub signing: SigningContext,
    /// Signed in the query string (a presigned URL) rather than the Authorization header.
    pub presigned: bool,
    /// Signed with Signature Version 2, which leaves most of the query string unsigned.
    pub signature_v2: bool,
    /// Not signed at all: a request only a bucket policy can allow.
    pub anonymous: bool,
    /// Signed by the policy of an HTML form (POST Object), not by the request.
    pub form: bool,
}

impl Authenticated {
    /// An unsigned request. Its body is taken as sent, checked against a SHA-256 sent in
    /// `x-amz-content-sha256`, or decoded from unsigned `aws-chunked` framing; a body that
    /// claims chunk signatures cannot be anonymous.
    pub fn anonymous(headers: &HeaderMap) -> Result<Authenticated, AuthError> {
        let payload = match header_str(headers, "x-amz-content-sha256").map(str::trim) {
            None => PayloadHash::Unsigned,
            Some(v) => match PayloadHash::parse(v) {
                Some(p @ (PayloadHash::Unsigned | PayloadHash::Sha256(_))) => p,
                Some(p @ PayloadHash::Streaming(StreamingMode::UnsignedPayloadTrailer)) => p,
                Some(PayloadHash::Streaming(_)) => {
                    return Err(AuthError::AccessDenied("A signed streaming payload needs a signed request".into()));
                }
                None => {
                    return Err(AuthError::InvalidArgument {
                        message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER \
                                  or a valid sha256 value."
                            .into(),
                        name: "x-amz-content-sha256".into(),
                        value: v.to_owned(),
                    });
                }
            },
        };
        Ok(Authenticated {
            identity: Identity { id: String::new(), display_name: String::new() },
            access_key: String::new(),
            payload,
            signing: SigningContext::none(),
            presigned: false,
            signature_v2: false,
            anonymous: true,
            form: false,
        })
    }
}

/// Verifies the request's SigV4 signature (header or query form) from its headers alone.
pub fn authenticate(
    req: &RequestParts<'_>,
    credentials: &dyn CredentialStore,
    region: &str,
    now: Timestamp,
) -> Result<Authenticated, AuthError> {
    let header = req.headers.get(http::header::AUTHORIZATION);
    let presigned = canonical::query_pairs(req.query).any(|(k, _)| k == b"X-Amz-Algorithm");
    match (header, presigned) {
        (Some(_), true) => Err(AuthError::InvalidArgument {
            message: "Only one auth mechanism allowed; only the X-Amz-Algorithm query \
                      parameter, Signature query string parameter or the Authorization \
                      header should be specified"
                .into(),
            name: "Authorization".into(),
            value: String::new(),
        }),
        (Some(value), false) => {
            let value = value.to_str().map_err(|_| AuthError::AuthorizationHeaderMalformed {
                message: "The authorization header is malformed; it is not valid ASCII.".into(),
                region: None,
            })?;
            header_auth(req, value, credentials, region, now)
        }
        (None, true) => query_auth(req, credentials, region, now),
        (None, false) => Err(AuthError::AccessDenied("Access Denied".into())),
    }
}

/// Checks the credential scope against this server; `err` builds the error of the form in use.
pub(crate) fn check_scope(
    scope: &CredentialScope,
    region: &str,
    err: impl Fn(String, Option<String>) -> AuthError,
) -> Result<(), AuthError> {
    if scope.region != region {
        return Err(err(
            format!("the region '{}' is wrong; expecting '{region}'", scope.region),
            Some(region.to_owned()),
        ));
    }
    if scope.service != "s3" {
        return Err(err(format!("incorrect service '{}'. This endpoint belongs to 's3'.", scope.service), None));
    }
    if scope.terminal != "aws4_request" {
        return Err(err(format!("incorrect terminal '{}'. This endpoint uses 'aws4_request'.", scope.terminal), None));
    }
    Ok(())
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn header_auth(
    req: &RequestParts<'_>,
    authorization: &str,
    credentials: &dyn CredentialStore,
    region: &str,
    now: Timestamp,
) -> Result<Authenticated, AuthError> {
    let signed = authorization::parse_authorization_header(authorization)?;
    let malformed = |detail: String, region: Option<String>| AuthError::AuthorizationHeaderMalformed {
        message: format!("The authorization header is malformed; {detail}"),
        region,
    };
    check_scope(&signed.scope, region, malformed)?;

    // The request time: x-amz-date, or Date when x-amz-date is absent.
    let no_date = || AuthError::AccessDenied("AWS authentication requires a valid Date or x-amz-date header".into());
    // The string to sign carries x-amz-date as sent (its shape is checked by the parse).
    let (time, timestamp, sent) = match header_str(req.headers, "x-amz-date") {
        Some(v) => {
            let v = v.trim();
            (Timestamp::parse_amz_date(v).ok_or_else(no_date)?, v.to_owned(), v.to_owned())
        }
        None => {
            let v = header_str(req.headers, "date").ok_or_else(no_date)?;
            let t = Timestamp::parse_http_date(v).ok_or_else(no_date)?;
            (t, t.to_amz_date(), v.trim().to_owned())
        }
    };
    if signed.scope.date != timestamp[..8] {
        return Err(malformed("Invalid credential date. Date is not the same as X-Amz-Date.".into(), None));
    }
    if time.abs_diff(now) > MAX_SKEW {
        return Err(AuthError::RequestTimeTooSkewed { request_time: sent, server_time: now });
    }

    let Some(content_sha256) = header_str(req.headers, "x-amz-content-sha256") else {
        return Err(AuthError::InvalidRequest("Missing required header for this request: x-amz-content-sha256".into()));
    };
    let content_sha256 = content_sha256.trim();
    let payload = PayloadHash::parse(content_sha256).ok_or_else(|| AuthError::InvalidArgument {
        message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
                  STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER \
                  or a valid sha256 value."
            .into(),
        name: "x-amz-content-sha256".into(),
        value: content_sha256.to_owned(),
    })?;

    let canonical_query = canonical::canonical_query(req.query, None);
    let (identity, access_key, signing) =
        verify_signature(req, &signed, credentials, timestamp, &canonical_query, content_sha256)?;
    require_signed_amz_headers(req.headers, &signed.signed_headers)?;
    Ok(Authenticated {
        identity,
        access_key,
        payload,
        signing,
        presigned: false,
        signature_v2: false,
        anonymous: false,
        form: false,
    })
}

/// Every `x-amz-*` header must be covered by the signature, or whoever holds a signed request
/// (a presigned URL above all) could add `x-amz-copy-source`, metadata, tagging or storage
/// class the signer never meant. `x-amz-content-sha256` is exempt, as on AWS: in header
/// auth its value is the payload line of the canonical request, so it is signed either way;
/// on a presigned URL it can only select a payload hash the body must then match.
fn require_signed_amz_headers(headers: &HeaderMap, signed: &[String]) -> Result<(), AuthError> {
    let mut unsigned: Vec<String> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-") && *name != "x-amz-content-sha256")
        .filter(|name| !signed.iter().any(|s| s == name))
        .map(str::to_owned)
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    unsigned.sort();
    unsigned.dedup();
    Err(AuthError::HeadersNotSigned(unsigned))
}

fn query_auth(
    req: &RequestParts<'_>,
    credentials: &dyn CredentialStore,
    region: &str,
    now: Timestamp,
) -> Result<Authenticated, AuthError> {
    let pairs: Vec<(String, String)> = canonical::query_pairs(req.query)
        .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let params = authorization::parse_presigned_query(&pairs)?;
    let query_error = |detail: String, _region: Option<String>| {
        AuthError::AuthorizationQueryParametersError(format!("Error parsing the X-Amz-Credential parameter; {detail}"))
    };
    check_scope(&params.signed.scope, region, query_error)?;
    let time = Timestamp::parse_amz_date(&params.date).ok_or_else(|| {
        AuthError::AuthorizationQueryParametersError(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".into(),
        )
    })?;
    if params.signed.scope.date != params.date[..8] {
        return Err(AuthError::AuthorizationQueryParametersError(
            "Invalid credential date. Date is not the same as X-Amz-Date.".into(),
        ));
    }
    if time > now.plus(MAX_SKEW) {
        return Err(AuthError::AccessDenied("Request is not valid yet".into()));
    }
    let expires = time.plus(Duration::from_secs(params.expires_secs));
    if now > expires {
        return Err(AuthError::Expired { expires, x_amz_expires: Some(params.expires_secs), server_time: now });
    }
    // Presigned URLs sign no body unless the client also sent x-amz-content-sha256.
    let content_sha256 = header_str(req.headers, "x-amz-content-sha256").map(str::trim).unwrap_or("UNSIGNED-PAYLOAD");
    let payload = match PayloadHash::parse(content_sha256) {
        Some(p @ (PayloadHash::Unsigned | PayloadHash::Sha256(_))) => p,
        _ => {
            return Err(AuthError::InvalidArgument {
                message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value \
                          on a presigned request."
                    .into(),
                name: "x-amz-content-sha256".into(),
                value: content_sha256.to_owned(),
            });
        }
    };
    let canonical_query = canonical::canonical_query(req.query, Some("X-Amz-Signature"));
    let (identity, access_key, signing) =
        verify_signature(req, &params.signed, credentials, params.date.clone(), &canonical_query, content_sha256)?;
    require_signed_amz_headers(req.headers, &params.signed.signed_headers)?;
    Ok(Authenticated {
        identity,
        access_key,
        payload,
        signing,
        presigned: true,
        signature_v2: false,
        anonymous: false,
        form: false,
    })
}

/// Looks up the access key and checks the signature over the canonical request.
fn verify_signature(
    req: &RequestParts<'_>,
    signed: &SignedRequest,
    credentials: &dyn CredentialStore,
    timestamp: String,
    canonical_query: &str,
    payload_hash: &str,
) -> Result<(Identity, String, SigningContext), AuthError> {
    let scope = &signed.scope;
    let user = credentials
        .lookup(&scope.access_key)
        .ok_or_else(|| AuthError::InvalidAccessKeyId { access_key: scope.access_key.clone() })?;
    let canonical_request = canonical::canonical_request(
        req.method,
        &canonical::canonical_uri(req.path),
        canonical_query,
        &canonical::canonical_headers(req.headers, &signed.signed_headers, req.authority),
        &signed.signed_headers,
        payload_hash,
    );
    let scope_string = scope.scope_string();
    let string_to_sign = signing::string_to_sign(&timestamp, &scope_string, &canonical_request);
    let key = signing::cached_signing_key(user.secret_key.expose(), &scope.date, &scope.region, &scope.service);
    if !signing::verify(&key, &string_to_sign, &signed.signature) {
        return Err(AuthError::SignatureDoesNotMatch {
            access_key: scope.access_key.clone(),
            string_to_sign,
            canonical_request,
            signature_provided: signed.signature.clone(),
        });
    }
    Ok((
        user.identity.clone(),
        user.access_key.clone(),
        SigningContext { key, timestamp, scope: scope_string, seed_signature: signed.signature.to_ascii_lowercase() },
    ))
}

#[cfg(test)]
mod tests;

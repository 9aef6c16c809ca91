//! Why a request failed authentication. Each variant becomes the S3 error code it is named after.

use crate::clock::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No credentials at all, or no usable date.
    AccessDenied(String),
    /// A presigned URL past its expiry: when it expired (and its `X-Amz-Expires`, for SigV4).
    Expired { expires: Timestamp, x_amz_expires: Option<u64>, server_time: Timestamp },
    /// The access key id is unknown.
    InvalidAccessKeyId { access_key: String },
    /// The signature does not verify; carries what AWS shows to help the client debug.
    SignatureDoesNotMatch {
        access_key: String,
        string_to_sign: String,
        canonical_request: String,
        signature_provided: String,
    },
    /// The request time is more than 15 minutes away from the server's clock.
    /// `request_time` is the date header as the client sent it (AWS echoes it).
    RequestTimeTooSkewed { request_time: String, server_time: Timestamp },
    /// The Authorization header cannot be parsed, or names a wrong region, service or date.
    AuthorizationHeaderMalformed {
        message: String,
        /// The region the server expects, when the scope named another.
        region: Option<String>,
    },
    /// A presigned URL's `X-Amz-*` parameters are missing or invalid.
    AuthorizationQueryParametersError(String),
    /// Request-level problems found while authenticating (unsupported mechanism, missing
    /// `x-amz-content-sha256`, both header and query auth).
    InvalidRequest(String),
    /// `x-amz-*` headers were sent that the signature does not cover (names, lower-case).
    HeadersNotSigned(Vec<String>),
    /// A header value that cannot be what it claims (a malformed `x-amz-content-sha256`).
    InvalidArgument { message: String, name: String, value: String },
}

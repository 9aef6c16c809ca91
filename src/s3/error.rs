//! S3 errors: [`S3ErrorCode`] names each AWS error code exactly, and its HTTP status lives in
//! one table; [`S3Error`] carries the code, a message, optional extra XML fields and the
//! internal cause (logged, never sent).

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

use crate::auth::AuthError;
use crate::storage::{Resource, StorageError};

macro_rules! s3_error_codes {
    ($( $code:ident => $status:literal, $message:literal; )*) => {
        /// AWS S3 error codes, each named exactly as AWS spells it on the wire.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum S3ErrorCode { $( $code, )* }

        impl S3ErrorCode {
            /// Every code, for tests and documentation.
            pub const ALL: &'static [S3ErrorCode] = &[$( S3ErrorCode::$code, )*];

            pub fn as_str(self) -> &'static str {
                match self { $( S3ErrorCode::$code => stringify!($code), )* }
            }

            /// The HTTP status AWS answers this code with.
            pub fn status(self) -> StatusCode {
                let code: u16 = match self { $( S3ErrorCode::$code => $status, )* };
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }

            /// AWS's default message for this code.
            pub fn default_message(self) -> &'static str {
                match self { $( S3ErrorCode::$code => $message, )* }
            }
        }
    };
}

s3_error_codes! {
    AccessControlListNotSupported => 400, "The bucket does not allow ACLs";
    AccessDenied => 403, "Access Denied";
    AccessForbidden => 403, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
    AuthorizationHeaderMalformed => 400, "The authorization header is malformed.";
    AuthorizationQueryParametersError => 400, "Error parsing the query-string authentication parameters.";
    BadDigest => 400, "The Content-MD5 you specified did not match what we received.";
    BadRequest => 400, "Insufficient information. Origin request header needed.";
    BucketAlreadyExists => 409, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.";
    BucketAlreadyOwnedByYou => 409, "Your previous request to create the named bucket succeeded and you already own it.";
    BucketNotEmpty => 409, "The bucket you tried to delete is not empty";
    ConditionalRequestConflict => 409, "A conflicting operation occurred. If using PutObject you can retry the request. If using multipart upload you should initiate another CreateMultipartUpload request and re-upload each part.";
    EntityAlreadyExists => 409, "A user with this id or access key already exists.";
    EntityTooLarge => 400, "Your proposed upload exceeds the maximum allowed size";
    EntityTooSmall => 400, "Your proposed upload is smaller than the minimum allowed object size.";
    IllegalLocationConstraintException => 400, "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.";
    IncompleteBody => 400, "You did not provide the number of bytes specified by the Content-Length HTTP header.";
    InternalError => 500, "We encountered an internal error. Please try again.";
    InvalidAccessKeyId => 403, "The AWS Access Key Id you provided does not exist in our records.";
    InvalidArgument => 400, "Invalid Argument";
    InvalidBucketAclWithBlockPublicAccessError => 400, "Bucket cannot have public ACLs set with BlockPublicAccess enabled";
    InvalidBucketAclWithObjectOwnership => 400, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting";
    InvalidBucketName => 400, "The specified bucket is not valid.";
    InvalidDigest => 400, "The Content-MD5 you specified is not valid.";
    InvalidLocationConstraint => 400, "The specified location-constraint is not valid";
    InvalidPolicyDocument => 400, "The content of the form does not meet the conditions specified in the policy document.";
    InvalidPart => 400, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.";
    InvalidPartOrder => 400, "The list of parts was not in ascending order. Parts must be ordered by part number.";
    InvalidPartNumber => 416, "The requested partnumber is not satisfiable";
    InvalidRange => 416, "The requested range is not satisfiable";
    InvalidRedirectLocation => 400, "The website redirect location must have a prefix of 'http://' or 'https://' or '/'.";
    InvalidRequest => 400, "Invalid Request";
    InvalidStorageClass => 400, "The storage class you specified is not valid";
    InvalidTag => 400, "The tag provided was not a valid tag.";
    InvalidURI => 400, "Couldn't parse the specified URI.";
    KeyTooLongError => 400, "Your key is too long";
    MalformedACLError => 400, "The XML you provided was not well-formed or did not validate against our published schema";
    MalformedPolicy => 400, "Policies must be valid JSON and the first byte must be '{'";
    MalformedPOSTRequest => 400, "The body of your POST request is not well-formed multipart/form-data.";
    MalformedXML => 400, "The XML you provided was not well-formed or did not validate against our published schema";
    MalformedTrailerError => 400, "The request contained trailing data that was not well-formed or did not conform to our published schema.";
    MaxMessageLengthExceeded => 400, "Your request was too big.";
    MaxPostPreDataLengthExceeded => 400, "Your POST request fields preceding the upload file were too large.";
    MetadataTooLarge => 400, "Your metadata headers exceed the maximum allowed metadata size";
    MissingSecurityHeader => 400, "Your request was missing a required header";
    MethodNotAllowed => 405, "The specified method is not allowed against this resource.";
    MissingContentLength => 411, "You must provide the Content-Length HTTP header.";
    NoSuchBucket => 404, "The specified bucket does not exist";
    NoSuchBucketPolicy => 404, "The bucket policy does not exist";
    NoSuchCORSConfiguration => 404, "The CORS configuration does not exist";
    NoSuchEntity => 404, "The user does not exist.";
    NoSuchKey => 404, "The specified key does not exist.";
    NoSuchVersion => 404, "The specified version does not exist.";
    NoSuchLifecycleConfiguration => 404, "The lifecycle configuration does not exist";
    NoSuchPublicAccessBlockConfiguration => 404, "The public access block configuration was not found";
    NoSuchTagSet => 404, "The TagSet does not exist";
    NoSuchUpload => 404, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.";
    NotImplemented => 501, "A header you provided implies functionality that is not implemented";
    OwnershipControlsNotFoundError => 404, "The bucket ownership controls were not found";
    PreconditionFailed => 412, "At least one of the pre-conditions you specified did not hold";
    RequestHeaderSectionTooLarge => 400, "Your request header section exceeds the maximum allowed size.";
    RequestTimeout => 400, "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.";
    RequestTimeTooSkewed => 403, "The difference between the request time and the current time is too large.";
    ServiceUnavailable => 503, "Service is unable to handle request.";
    SignatureDoesNotMatch => 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
    UnexpectedContent => 400, "This request does not support content";
    UnresolvableGrantByEmailAddress => 400, "The e-mail address you provided does not match any account on record.";
    XAmzContentSHA256Mismatch => 400, "The provided 'x-amz-content-sha256' header does not match what was computed.";
}

impl fmt::Display for S3ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An S3 error response in the making.
#[derive(Debug)]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: Cow<'static, str>,
    /// Extra child elements of `<Error>` (e.g. `<Region>`, `<ArgumentName>`), in order.
    pub fields: Vec<(&'static str, String)>,
    /// Extra response headers (e.g. `x-amz-bucket-region`).
    pub headers: Vec<(&'static str, String)>,
    /// The internal cause, for logs only.
    pub source: Option<Source>,
}

impl S3Error {
    pub fn new(code: S3ErrorCode) -> Self {
        S3Error {
            code,
            message: Cow::Borrowed(code.default_message()),
            fields: Vec::new(),
            headers: Vec::new(),
            source: None,
        }
    }

    pub fn with_message(code: S3ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        S3Error { message: message.into(), ..S3Error::new(code) }
    }

    pub fn field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// `InternalError` hiding `source` from the client.
    pub fn internal(source: impl Into<Source>) -> Self {
        S3Error::new(S3ErrorCode::InternalError).source(source)
    }

    /// `InvalidArgument` with AWS's `ArgumentName`/`ArgumentValue` fields.
    pub fn invalid_argument(message: impl Into<Cow<'static, str>>, name: &str, value: &str) -> Self {
        S3Error::with_message(S3ErrorCode::InvalidArgument, message)
            .field("ArgumentName", name)
            .field("ArgumentValue", value)
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(s) = &self.source {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

impl std::error::Error for S3Error {}

impl From<S3ErrorCode> for S3Error {
    fn from(code: S3ErrorCode) -> Self {
        S3Error::new(code)
    }
}

impl From<AuthError> for S3Error {
    fn from(e: AuthError) -> Self {
        use S3ErrorCode as C;
        match e {
            AuthError::AccessDenied(m) => S3Error::with_message(C::AccessDenied, m),
            AuthError::Expired { expires, x_amz_expires, server_time } => {
                let e = S3Error::with_message(C::AccessDenied, "Request has expired");
                let e = match x_amz_expires {
                    Some(secs) => e.field("X-Amz-Expires", secs.to_string()),
                    None => e,
                };
                e.field("Expires", expires.to_iso8601_seconds()).field("ServerTime", server_time.to_iso8601_seconds())
            }
            AuthError::InvalidAccessKeyId { access_key } => {
                S3Error::new(C::InvalidAccessKeyId).field("AWSAccessKeyId", access_key)
            }
            AuthError::SignatureDoesNotMatch { access_key, string_to_sign, canonical_request, signature_provided } => {
                let e = S3Error::new(C::SignatureDoesNotMatch)
                    .field("AWSAccessKeyId", access_key)
                    .field("StringToSign", string_to_sign.clone())
                    .field("SignatureProvided", signature_provided)
                    .field("StringToSignBytes", spaced_hex(string_to_sign.as_bytes()));
                // Signature Version 2 has no canonical request.
                if canonical_request.is_empty() {
                    e
                } else {
                    e.field("CanonicalRequest", canonical_request.clone())
                        .field("CanonicalRequestBytes", spaced_hex(canonical_request.as_bytes()))
                }
            }
            AuthError::RequestTimeTooSkewed { request_time, server_time } => S3Error::new(C::RequestTimeTooSkewed)
                .field("RequestTime", request_time)
                .field("ServerTime", server_time.to_iso8601_seconds())
                .field("MaxAllowedSkewMilliseconds", "900000"),
            AuthError::AuthorizationHeaderMalformed { message, region } => {
                let e = S3Error::with_message(C::AuthorizationHeaderMalformed, message);
                match region {
                    Some(r) => e.field("Region", r),
                    None => e,
                }
            }
            AuthError::AuthorizationQueryParametersError(m) => {
                S3Error::with_message(C::AuthorizationQueryParametersError, m)
            }
            AuthError::InvalidRequest(m) => S3Error::with_message(C::InvalidRequest, m),
            AuthError::HeadersNotSigned(names) => S3Error::with_message(
                C::AccessDenied,
                "There were headers present in the request which were not signed",
            )
            .field("HeadersNotSigned", names.join(", ")),
            AuthError::InvalidArgument { message, name, value } => S3Error::invalid_argument(message, &name, &value),
        }
    }
}

/// `41 57 53 34` — how AWS shows the bytes of the string to sign.
fn spaced_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What a 503 `ServiceUnavailable` asks clients to wait before retrying.
const RETRY_AFTER_SECS: u32 = 2;

impl From<StorageError> for S3Error {
    fn from(e: StorageError) -> Self {
        use S3ErrorCode as C;
        match e {
            StorageError::NotFound(Resource::Bucket) => S3Error::new(C::NoSuchBucket),
            StorageError::NotFound(Resource::Object) => S3Error::new(C::NoSuchKey),
            StorageError::NotFound(Resource::Upload) => S3Error::new(C::NoSuchUpload),
            StorageError::NotFound(Resource::Version) => S3Error::new(C::NoSuchVersion),
            StorageError::DeleteMarker => S3Error::new(C::MethodNotAllowed).field("ResourceType", "DeleteMarker"),
            // The request body failed while being stored: the S3 error travels inside.
            StorageError::Input(e) => match e.into_inner().map(|inner| inner.downcast::<S3Error>()) {
                Some(Ok(s3)) => *s3,
                Some(Err(other)) => S3Error::new(C::IncompleteBody).source(other),
                None => S3Error::new(C::IncompleteBody),
            },
            StorageError::BucketNotEmpty => S3Error::new(C::BucketNotEmpty),
            StorageError::PreconditionFailed => S3Error::new(C::PreconditionFailed),
            StorageError::Conflict | StorageError::PartsChanged => S3Error::new(C::ConditionalRequestConflict),
            // The metadata database is out of reach: clients retry 503s (SDKs back off), and
            // the balancer's health check drains this node meanwhile.
            e @ StorageError::Unavailable(_) => {
                S3Error::new(C::ServiceUnavailable).header("retry-after", RETRY_AFTER_SECS.to_string()).source(e)
            }
            // The caller decides whose bucket it is; by itself this is an internal mix-up.
            e @ (StorageError::NotFound(Resource::Blob | Resource::User)
            | StorageError::BucketExists { .. }
            | StorageError::Corrupt(_)
            | StorageError::Io(_)
            | StorageError::Closed) => S3Error::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_aws() {
        use S3ErrorCode as C;
        for (code, status) in [
            (C::NoSuchBucket, 404),
            (C::NoSuchUpload, 404),
            (C::AccessDenied, 403),
            (C::SignatureDoesNotMatch, 403),
            (C::InvalidAccessKeyId, 403),
            (C::RequestTimeTooSkewed, 403),
            (C::AuthorizationHeaderMalformed, 400),
            (C::BucketAlreadyExists, 409),
            (C::BucketAlreadyOwnedByYou, 409),
            (C::BucketNotEmpty, 409),
            (C::InvalidRange, 416),
            (C::MissingContentLength, 411),
            (C::NotImplemented, 501),
            (C::PreconditionFailed, 412),
            (C::InternalError, 500),
        ] {
            assert_eq!(code.status().as_u16(), status, "{code}");
        }
        for c in S3ErrorCode::ALL {
            assert!(c.status().as_u16() >= 400, "{c}");
            assert!(!c.default_message().is_empty(), "{c}");
        }
    }

    #[test]
    fn internal_errors_keep_their_cause_out_of_the_message() {
        let e = S3Error::internal("disk on fire at /var/lib/s3d");
        assert_eq!(e.code, S3ErrorCode::InternalError);
        assert!(!e.message.contains("disk"));
    }
}

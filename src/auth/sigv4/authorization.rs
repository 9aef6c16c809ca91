//! Parses the SigV4 `Authorization` header and the presigned-URL `X-Amz-*` query parameters
//! into a typed [`SignedRequest`].

use crate::auth::AuthError;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// `<access key>/<date>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminal: String,
}

impl CredentialScope {
    pub fn parse(s: &str) -> Option<Self> {
        // The access key itself never contains '/', so split from the left is unambiguous.
        let mut it = s.split('/');
        let scope = CredentialScope {
            access_key: it.next()?.to_owned(),
            date: it.next()?.to_owned(),
            region: it.next()?.to_owned(),
            service: it.next()?.to_owned(),
            terminal: it.next()?.to_owned(),
        };
        if it.next().is_some() || scope.access_key.is_empty() || scope.date.is_empty() {
            return None;
        }
        Some(scope)
    }

    /// `<date>/<region>/<service>/aws4_request`, the scope line of the string to sign.
    pub fn scope_string(&self) -> String {
        format!("{}/{}/{}/{}", self.date, self.region, self.service, self.terminal)
    }
}

/// What the client claims it signed, and the signature it computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub scope: CredentialScope,
    /// Lower-case header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// Hex signature as sent.
    pub signature: String,
}

fn malformed(detail: &str) -> AuthError {
    AuthError::AuthorizationHeaderMalformed {
        message: format!("The authorization header is malformed; {detail}"),
        region: None,
    }
}

const CREDENTIAL_SHAPE: &str = "the Credential is mal-formed; expecting \
     \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".";

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
///
/// The parts may be separated by `,` or `, ` (s3cmd writes no space) and come in any order.
pub fn parse_authorization_header(value: &str) -> Result<SignedRequest, AuthError> {
    let value = value.trim();
    let rest = match value.split_once(' ') {
        Some((ALGORITHM, rest)) => rest,
        Some(("AWS", _)) => {
            return Err(AuthError::InvalidRequest(
                "The authorization mechanism you have provided is not supported. \
                 Please use AWS4-HMAC-SHA256."
                    .into(),
            ));
        }
        _ => {
            return Err(malformed("the authorization mechanism is not supported; expecting AWS4-HMAC-SHA256."));
        }
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, v)) = part.split_once('=') else {
            return Err(malformed(&format!("the component '{part}' is not of the form name=value.")));
        };
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(malformed(&format!("unknown component '{other}'.")));
            }
        };
        if slot.replace(v.trim()).is_some() {
            return Err(malformed(&format!("the component '{}' appears twice.", name.trim())));
        }
    }
    let credential = credential.ok_or_else(|| malformed("missing Credential."))?;
    let signed_headers = signed_headers.ok_or_else(|| malformed("missing SignedHeaders."))?;
    let signature = signature.ok_or_else(|| malformed("missing Signature."))?;
    build(credential, signed_headers, signature, malformed)
}

fn build(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    err: fn(&str) -> AuthError,
) -> Result<SignedRequest, AuthError> {
    let scope = CredentialScope::parse(credential).ok_or_else(|| err(CREDENTIAL_SHAPE))?;
    let signed_headers: Vec<String> = signed_headers.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(err("the SignedHeaders list is empty or has an empty name."));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(err("the SignedHeaders must include host."));
    }
    Ok(SignedRequest { scope, signed_headers, signature: signature.to_owned() })
}

/// The `X-Amz-*` parameters of a presigned URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedParams {
    pub signed: SignedRequest,
    pub date: String,
    pub expires_secs: u64,
}

/// Longest validity AWS allows for a presigned URL: seven days.
pub const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

fn query_error(detail: &str) -> AuthError {
    AuthError::AuthorizationQueryParametersError(detail.to_owned())
}

/// Parses the presigned-URL parameters from already percent-decoded query pairs.
pub fn parse_presigned_query(pairs: &[(String, String)]) -> Result<PresignedParams, AuthError> {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let missing = "Query-string authentication version 4 requires the X-Amz-Algorithm, \
                   X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and \
                   X-Amz-Expires parameters.";
    let algorithm = get("X-Amz-Algorithm").ok_or_else(|| query_error(missing))?;
    if algorithm != ALGORITHM {
        return Err(query_error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""));
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date), Some(expires)) = (
        get("X-Amz-Credential"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Signature"),
        get("X-Amz-Date"),
        get("X-Amz-Expires"),
    ) else {
        return Err(query_error(missing));
    };
    let expires_secs: u64 = match expires.parse::<i64>() {
        Ok(n) if n < 0 => return Err(query_error("X-Amz-Expires must be non-negative")),
        Ok(n) => n.unsigned_abs(),
        Err(_) => return Err(query_error("X-Amz-Expires should be a number")),
    };
    if expires_secs > MAX_PRESIGNED_EXPIRES {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less \
             than 604800 seconds",
        ));
    }
    let signed = build(credential, signed_headers, signature, |d| {
        query_error(&format!("Error parsing the X-Amz-Credential parameter; {d}"))
    })?;
    Ok(PresignedParams { signed, date: date.to_owned(), expires_secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024";

    #[test]
    fn parses_botocore_style() {
        let h = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature={SIG}"
        );
        let r = parse_authorization_header(&h).expect("parses");
        assert_eq!(r.scope.access_key, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(r.scope.scope_string(), "20130524/us-east-1/s3/aws4_request");
        assert_eq!(r.signed_headers, ["host", "range", "x-amz-content-sha256", "x-amz-date"]);
        assert_eq!(r.signature, SIG);
    }

    #[test]
    fn parses_s3cmd_style_without_spaces_and_any_order() {
        let h = format!(
            "AWS4-HMAC-SHA256 Signature={SIG},Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-date"
        );
        let r = parse_authorization_header(&h).expect("parses");
        assert_eq!(r.scope.access_key, "AK");
        assert_eq!(r.signed_headers, ["host", "x-amz-date"]);
    }

    #[test]
    fn rejects_malformed_headers() {
        for h in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, Credential=x, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, Bogus=1, SignedHeaders=host, Signature=00",
            "Bearer abc",
        ] {
            assert!(
                matches!(parse_authorization_header(h), Err(AuthError::AuthorizationHeaderMalformed { .. })),
                "{h}"
            );
        }
        assert!(matches!(parse_authorization_header("AWS AKID:signature"), Err(AuthError::InvalidRequest(_))));
    }

    #[test]
    fn presigned_expiry_is_bounded() {
        let mut pairs: Vec<(String, String)> = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", "AK/20130524/us-east-1/s3/aws4_request"),
            ("X-Amz-Date", "20130524T000000Z"),
            ("X-Amz-Expires", "604800"),
            ("X-Amz-SignedHeaders", "host"),
            ("X-Amz-Signature", SIG),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(parse_presigned_query(&pairs).expect("valid").expires_secs, 604_800);
        pairs[3].1 = "604801".into();
        assert!(matches!(parse_presigned_query(&pairs), Err(AuthError::AuthorizationQueryParametersError(_))));
        pairs.remove(3);
        assert!(parse_presigned_query(&pairs).is_err());
    }
}

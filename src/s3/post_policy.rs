//! Browser uploads (POST Object): the form's fields, the policy document it carries, who
//! signed that policy (Signature Version 4, or 2), and whether the form keeps to it.
//!
//! - <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html>
//! - <https://docs.aws.amazon.com/AmazonS3/latest/userguide/HTTPPOSTForms.html>
//!
//! Pure functions: the operation (`ops::object::post`) reads the form and streams the file.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use crate::auth::sigv4::authorization::{ALGORITHM, CredentialScope};
use crate::auth::{Authenticated, CredentialStore, PayloadHash, SigningContext, sigv2, sigv4};
use crate::clock::Timestamp;

use super::error::{S3Error, S3ErrorCode};

/// The form fields before the file, names lower-cased (AWS reads them case-insensitively);
/// a name sent twice has its values joined with commas, as on AWS.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Adds a field.
    pub fn push(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(value);
            }
            None => self.0.push((name, value.to_owned())),
        }
    }

    /// Replaces (or adds) a field's value.
    pub fn set(&mut self, name: &str, value: String) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value));
    }

    /// The value of the field `name` (lower-case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// A field the form must have: AWS's error names it.
    pub fn required(&self, name: &str) -> Result<&str, S3Error> {
        self.get(name).ok_or_else(|| missing_field(name))
    }
}

/// AWS's error for a missing field (which may also be one sent after the file).
pub fn missing_field(name: &str) -> S3Error {
    S3Error::invalid_argument(
        format!(
            "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
        ),
        name,
        "",
    )
}

/// One condition of a policy. Field names are as the policy writes them, without the `$`
/// (they match fields whatever their case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Eq { field: String, value: String },
    StartsWith { field: String, prefix: String },
    LengthRange { min: u64, max: u64 },
}

/// A decoded policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostPolicy {
    pub expiration: Timestamp,
    pub conditions: Vec<Condition>,
}

fn invalid_policy(detail: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidPolicyDocument, format!("Invalid Policy: {detail}"))
}

fn policy_failed(detail: impl std::fmt::Display) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, format!("Invalid according to Policy: {detail}"))
}

impl PostPolicy {
    /// Decodes the `policy` field: base64 of a UTF-8 JSON document with `expiration` and
    /// `conditions`.
    pub fn decode(field: &str) -> Result<PostPolicy, S3Error> {
        let raw = B64.decode(field.trim()).map_err(|_| invalid_policy("Invalid Base64 Encoding."))?;
        let doc: Value = serde_json::from_slice(&raw).map_err(|_| invalid_policy("Invalid JSON."))?;
        let doc = doc.as_object().ok_or_else(|| invalid_policy("Invalid JSON."))?;
        let expiration = match doc.get("expiration") {
            None => return Err(invalid_policy("Policy missing expiration.")),
            Some(Value::String(s)) => Timestamp::parse_rfc3339(s)
                .ok_or_else(|| invalid_policy(&format!("Invalid 'expiration' value: '{s}'")))?,
            Some(_) => return Err(invalid_policy("Invalid 'expiration' value.")),
        };
        let conditions = match doc.get("conditions") {
            None => return Err(invalid_policy("Policy missing conditions.")),
            Some(Value::Array(items)) => items.iter().map(condition).collect::<Result<Vec<_>, _>>()?.concat(),
            Some(_) => return Err(invalid_policy("Invalid 'conditions' value.")),
        };
        if let Some(other) = doc.keys().find(|k| *k != "expiration" && *k != "conditions") {
            return Err(invalid_policy(&format!("Unexpected field '{other}'.")));
        }
        Ok(PostPolicy { expiration, conditions })
    }

    /// Whether `fields` (with the addressed `bucket`) keep to the policy now: not expired,
    /// every condition met, and every field but the exempt ones named by a condition. The
    /// file's length is checked as it streams ([`PostPolicy::length_range`]).
    pub fn check(&self, fields: &Fields, bucket: &str, now: Timestamp) -> Result<(), S3Error> {
        if now > self.expiration {
            return Err(policy_failed("Policy expired."));
        }
        let value = |field: &str| -> String {
            let field = field.to_ascii_lowercase();
            if field == "bucket" { bucket.to_owned() } else { fields.get(&field).unwrap_or("").to_owned() }
        };
        for c in &self.conditions {
            let holds = match c {
                Condition::Eq { field, value: want } => value(field) == *want,
                // Content-Type may list several types, each of which must match.
                Condition::StartsWith { field, prefix } if field.eq_ignore_ascii_case("content-type") => {
                    value(field).split(',').all(|t| t.trim_start().starts_with(prefix.as_str()))
                }
                Condition::StartsWith { field, prefix } => value(field).starts_with(prefix.as_str()),
                Condition::LengthRange { .. } => true,
            };
            if !holds {
                return Err(policy_failed(format_args!("Policy Condition failed: {}", c.describe())));
            }
        }
        // The bucket counts as a field: a policy must name it.
        let extra: Vec<&str> = std::iter::once("bucket")
            .chain(fields.iter().map(|(name, _)| name))
            .filter(|name| !exempt(name))
            .filter(|name| !self.conditions.iter().any(|c| c.field().is_some_and(|f| f.eq_ignore_ascii_case(name))))
            .collect();
        if !extra.is_empty() {
            return Err(policy_failed(format_args!("Extra input fields: {}", extra.join(", "))));
        }
        Ok(())
    }

    /// The file lengths every `content-length-range` condition allows, as (min, max).
    pub fn length_range(&self) -> (u64, u64) {
        self.conditions.iter().fold((0, u64::MAX), |(lo, hi), c| match c {
            Condition::LengthRange { min, max } => (lo.max(*min), hi.min(*max)),
            _ => (lo, hi),
        })
    }
}

/// Fields that need no condition: the signature, the policy itself, the file, `x-ignore-*`.
fn exempt(name: &str) -> bool {
    matches!(name, "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid" | "file")
        || name.starts_with("x-ignore-")
}

impl Condition {
    fn field(&self) -> Option<&str> {
        match self {
            Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => Some(field),
            Condition::LengthRange { .. } => None,
        }
    }

    /// As AWS shows a failed condition: `["eq", "$key", "a"]`.
    fn describe(&self) -> String {
        let q = |s: &str| Value::String(s.to_owned()).to_string();
        match self {
            Condition::Eq { field, value } => format!("[\"eq\", {}, {}]", q(&format!("${field}")), q(value)),
            Condition::StartsWith { field, prefix } => {
                format!("[\"starts-with\", {}, {}]", q(&format!("${field}")), q(prefix))
            }
            Condition::LengthRange { min, max } => format!("[\"content-length-range\", {min}, {max}]"),
        }
    }
}

/// One element of `conditions`: `{"field": "value", …}` (each an exact match),
/// `["eq" | "starts-with", "$field", "value"]` or `["content-length-range", min, max]`.
fn condition(item: &Value) -> Result<Vec<Condition>, S3Error> {
    let bad = || invalid_policy(&format!("Invalid Policy condition: {item}"));
    match item {
        Value::Object(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| {
                let value = scalar(v).ok_or_else(bad)?;
                Ok(Condition::Eq { field: k.trim_start_matches('$').to_owned(), value })
            })
            .collect(),
        Value::Array(parts) if parts.len() == 3 => {
            let op = parts[0].as_str().ok_or_else(bad)?.to_ascii_lowercase();
            if op == "content-length-range" {
                let bound = |v: &Value| match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                let (min, max) = (bound(&parts[1]).ok_or_else(bad)?, bound(&parts[2]).ok_or_else(bad)?);
                return Ok(vec![Condition::LengthRange { min, max }]);
            }
            let name = parts[1].as_str().and_then(|n| n.strip_prefix('$')).ok_or_else(bad)?;
            let field = name.to_owned();
            let value = scalar(&parts[2]).ok_or_else(bad)?;
            match op.as_str() {
                "eq" => Ok(vec![Condition::Eq { field, value }]),
                "starts-with" => Ok(vec![Condition::StartsWith { field, prefix: value }]),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// A condition's value: a string, or a number written as one.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Who signed the form's policy, checked against the credentials: Signature Version 4
/// (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature`) or, when
/// `sigv2` allows it, Version 2 (`AWSAccessKeyId`, `signature`). The signature covers the
/// base64 policy as sent.
pub fn authenticate(
    fields: &Fields,
    credentials: &dyn CredentialStore,
    region: &str,
    sigv2_allowed: bool,
) -> Result<Authenticated, S3Error> {
    let policy = fields.required("policy")?;
    let signer = |identity, access_key, v2| Authenticated {
        identity,
        access_key,
        payload: PayloadHash::Unsigned,
        signing: SigningContext::none(),
        presigned: false,
        signature_v2: v2,
        anonymous: false,
        form: true,
    };
    let mismatch = |access_key: &str| {
        S3Error::new(S3ErrorCode::SignatureDoesNotMatch)
            .field("AWSAccessKeyId", access_key)
            .field("StringToSign", policy)
    };
    if fields.get("awsaccesskeyid").is_some() && fields.get("x-amz-credential").is_none() {
        if !sigv2_allowed {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
            ));
        }
        let access_key = fields.required("awsaccesskeyid")?;
        let signature = fields.required("signature")?;
        let user = credentials.lookup(access_key).ok_or_else(|| unknown_key(access_key))?;
        if !sigv2::verify(user.secret_key.expose(), policy, signature) {
            return Err(mismatch(access_key));
        }
        return Ok(signer(user.identity.clone(), user.access_key.clone(), true));
    }
    let algorithm = fields.required("x-amz-algorithm")?;
    if algorithm != ALGORITHM {
        return Err(S3Error::invalid_argument(
            "Only AWS4-HMAC-SHA256 is supported for the x-amz-algorithm field.",
            "x-amz-algorithm",
            algorithm,
        ));
    }
    let credential = fields.required("x-amz-credential")?;
    let date = fields.required("x-amz-date")?;
    let signature = fields.required("x-amz-signature")?;
    let bad_credential = |detail: String| {
        S3Error::invalid_argument(format!("Invalid credential: {detail}"), "x-amz-credential", credential)
    };
    let scope = CredentialScope::parse(credential)
        .ok_or_else(|| bad_credential("expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".".into()))?;
    // The region, service and terminal are checked as for a signed request.
    let wrong_scope = |detail: String, _region: Option<String>| crate::auth::AuthError::InvalidArgument {
        message: format!("Invalid credential: {detail}"),
        name: "x-amz-credential".into(),
        value: credential.to_owned(),
    };
    sigv4::check_scope(&scope, region, wrong_scope)?;
    if Timestamp::parse_amz_date(date).is_none() || !date.starts_with(&scope.date) {
        return Err(S3Error::invalid_argument(
            "x-amz-date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\" and on the credential's date",
            "x-amz-date",
            date,
        ));
    }
    let user = credentials.lookup(&scope.access_key).ok_or_else(|| unknown_key(&scope.access_key))?;
    let key = sigv4::signing::cached_signing_key(user.secret_key.expose(), &scope.date, &scope.region, "s3");
    if !sigv4::signing::verify(&key, policy, signature.trim()) {
        return Err(mismatch(&scope.access_key));
    }
    Ok(signer(user.identity.clone(), user.access_key.clone(), false))
}

fn unknown_key(access_key: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidAccessKeyId).field("AWSAccessKeyId", access_key)
}

/// Whether the form carries any signing field (then it must be a complete, valid signature;
/// a form without any is anonymous).
pub fn signed(fields: &Fields) -> bool {
    ["policy", "x-amz-signature", "x-amz-credential", "awsaccesskeyid", "signature"]
        .iter()
        .any(|n| fields.get(n).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Identity, SecretKey, StaticCredentials, UserCredential};

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        let mut f = Fields::default();
        for (k, v) in pairs {
            f.push(k, v);
        }
        f
    }

    fn policy(json: &str) -> PostPolicy {
        PostPolicy::decode(&B64.encode(json)).expect("policy")
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("time")
    }

    #[test]
    fn decodes_the_condition_forms() {
        let p = policy(
            r#"{"expiration":"2030-01-01T00:00:00.000Z","conditions":[{"bucket":"b"},["starts-with","$key","user/"],
            {"acl":"public-read","success_action_status":201},["eq","$Content-Type","image/png"],
            ["content-length-range",1,"1048576"]]}"#,
        );
        assert_eq!(p.expiration, at("2030-01-01T00:00:00Z"));
        assert_eq!(
            p.conditions,
            vec![
                Condition::Eq { field: "bucket".into(), value: "b".into() },
                Condition::StartsWith { field: "key".into(), prefix: "user/".into() },
                Condition::Eq { field: "acl".into(), value: "public-read".into() },
                Condition::Eq { field: "success_action_status".into(), value: "201".into() },
                Condition::Eq { field: "Content-Type".into(), value: "image/png".into() },
                Condition::LengthRange { min: 1, max: 1_048_576 },
            ]
        );
        assert_eq!(p.length_range(), (1, 1_048_576));
    }

    #[test]
    fn malformed_documents_are_invalid_policy_documents() {
        for doc in [
            "not base64!",
            &B64.encode("{"),
            &B64.encode("[]"),
            &B64.encode(r#"{"conditions":[]}"#),
            &B64.encode(r#"{"expiration":"2030-01-01T00:00:00Z"}"#),
            &B64.encode(r#"{"expiration":"tomorrow","conditions":[]}"#),
            &B64.encode(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["eq","key","x"]]}"#),
            &B64.encode(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["matches","$key","x"]]}"#),
            &B64.encode(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",-1,5]]}"#),
            &B64.encode(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{}]}"#),
            &B64.encode(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{"key":["a"]}]}"#),
        ] {
            let e = PostPolicy::decode(doc).expect_err(doc);
            assert_eq!(e.code, S3ErrorCode::InvalidPolicyDocument, "{doc}");
            assert!(e.message.starts_with("Invalid Policy: "), "{}", e.message);
        }
    }

    #[test]
    fn conditions_expiry_and_extra_fields() {
        let p = policy(
            r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{"bucket":"b"},["starts-with","$key","user/"],
            ["starts-with","$Content-Type","image/"],["eq","$x-amz-meta-tag",""]]}"#,
        );
        let now = at("2029-01-01T00:00:00Z");
        let ok = fields(&[("Key", "user/a.png"), ("Content-Type", "image/png, image/gif"), ("x-ignore-me", "1")]);
        p.check(&ok, "b", now).expect("within the policy");
        let failed = |f: &Fields, bucket: &str| p.check(f, bucket, now).expect_err("refused").message.into_owned();
        assert_eq!(failed(&ok, "c"), r#"Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "b"]"#);
        let f = fields(&[("key", "other/a.png"), ("content-type", "image/png")]);
        assert_eq!(
            failed(&f, "b"),
            r#"Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "user/"]"#
        );
        let f = fields(&[("key", "user/a"), ("content-type", "image/png,text/html")]);
        assert!(failed(&f, "b").contains(r#"["starts-with", "$Content-Type", "image/"]"#));
        let f = fields(&[("key", "user/a"), ("content-type", "image/png"), ("acl", "public-read"), ("tagging", "x")]);
        assert_eq!(failed(&f, "b"), "Invalid according to Policy: Extra input fields: acl, tagging");
        let no_bucket = policy(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["starts-with","$key",""]]}"#);
        let e = no_bucket.check(&fields(&[("key", "k")]), "b", now).expect_err("bucket not named");
        assert_eq!(e.message, "Invalid according to Policy: Extra input fields: bucket");
        let late = at("2030-01-01T00:00:01Z");
        assert_eq!(
            p.check(&ok, "b", late).expect_err("expired").message,
            "Invalid according to Policy: Policy expired."
        );
        assert_eq!(p.check(&ok, "b", late).expect_err("expired").code, S3ErrorCode::AccessDenied);
    }

    #[test]
    fn a_field_sent_twice_has_its_values_joined() {
        let f = fields(&[("Tag", "Ninja"), ("tag", "Stallman")]);
        assert_eq!(f.get("tag"), Some("Ninja,Stallman"));
    }

    fn store() -> StaticCredentials {
        StaticCredentials::new([UserCredential {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: SecretKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            identity: Identity { id: "u".into(), display_name: "user".into() },
            admin: false,
        }])
    }

    /// AWS's published example of a Signature Version 4 POST policy and its signature.
    #[test]
    fn aws_sigv4_example_verifies() {
        let f = fields(&[
            ("policy", AWS_EXAMPLE_POLICY),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"),
            ("x-amz-date", "20151229T000000Z"),
            ("x-amz-signature", AWS_EXAMPLE_SIGNATURE),
        ]);
        let who = authenticate(&f, &store(), "us-east-1", true).expect("verifies");
        assert_eq!((who.identity.id.as_str(), who.form, who.signature_v2), ("u", true, false));
        let mut wrong = f.clone();
        wrong.set("x-amz-signature", AWS_EXAMPLE_SIGNATURE.replace('8', "9"));
        assert_eq!(
            authenticate(&wrong, &store(), "us-east-1", true).expect_err("").code,
            S3ErrorCode::SignatureDoesNotMatch
        );
        assert_eq!(authenticate(&f, &store(), "eu-west-1", true).expect_err("").code, S3ErrorCode::InvalidArgument);
        let p = PostPolicy::decode(AWS_EXAMPLE_POLICY).expect("decodes");
        assert_eq!(p.length_range(), (0, u64::MAX));
    }

    #[test]
    fn sigv2_forms_verify_and_can_be_refused() {
        let policy = B64.encode(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[]}"#);
        let sig = sigv2::sign("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &policy);
        let f = fields(&[("policy", &policy), ("AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE"), ("signature", &sig)]);
        let who = authenticate(&f, &store(), "us-east-1", true).expect("verifies");
        assert!(who.signature_v2 && who.form);
        assert_eq!(authenticate(&f, &store(), "us-east-1", false).expect_err("").code, S3ErrorCode::InvalidRequest);
        let f = fields(&[("policy", &policy), ("AWSAccessKeyId", "nobody"), ("signature", &sig)]);
        assert_eq!(authenticate(&f, &store(), "us-east-1", true).expect_err("").code, S3ErrorCode::InvalidAccessKeyId);
        let f = fields(&[("policy", &policy), ("AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE")]);
        let e = authenticate(&f, &store(), "us-east-1", true).expect_err("no signature");
        assert_eq!((e.code, e.fields[0].1.as_str()), (S3ErrorCode::InvalidArgument, "signature"));
    }

    /// AWS's example form, judged at a time its policy allows.
    #[test]
    fn aws_example_form_keeps_to_its_policy() {
        let p = PostPolicy::decode(AWS_EXAMPLE_POLICY).expect("decodes");
        let f = fields(&[
            ("key", "user/user1/photo.jpg"),
            ("acl", "public-read"),
            ("success_action_redirect", "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"),
            ("Content-Type", "image/jpeg"),
            ("x-amz-meta-uuid", "14365123651274"),
            ("x-amz-server-side-encryption", "AES256"),
            ("X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"),
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Date", "20151229T000000Z"),
            ("x-amz-meta-tag", ""),
            ("Policy", AWS_EXAMPLE_POLICY),
            ("X-Amz-Signature", AWS_EXAMPLE_SIGNATURE),
        ]);
        p.check(&f, "sigv4examplebucket", at("2015-12-29T00:00:00Z")).expect("within the policy");
        let e = p.check(&f, "sigv4examplebucket", at("2015-12-30T12:00:01Z")).expect_err("expired");
        assert_eq!(e.message, "Invalid according to Policy: Policy expired.");
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(crate::s3::xml::fuzzing::config())]

        /// Any policy text, valid JSON or not, decodes or is refused as a client error, and a
        /// decoded one judges any fields without panicking.
        #[test]
        fn fuzz_post_policies(
            doc in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::prelude::Just(r#"{"bucket":"b"}"#.to_owned()),
                        "\\[\"(eq|starts-with|content-length-range|x)\", ?(\"\\$?[a-zA-Z-]{0,8}\"|-?[0-9]{1,20}|1e9|null), ?(\"[a-z/]{0,6}\"|-?[0-9]{1,20}|2.5|\\[\\])\\]",
                        "\\{\"[$a-zA-Z-]{0,8}\": ?(\"[a-z]{0,4}\"|[0-9]{1,3}|\\{\\}|true)\\}",
                    ],
                    0..6,
                ).prop_map(|c| format!(r#"{{"expiration":"2030-01-01T00:00:00Z","conditions":[{}]}}"#, c.join(","))),
            ],
            pairs in proptest::collection::vec(("[a-zA-Z$-]{0,8}", "\\PC{0,8}"), 0..6),
        ) {
            match PostPolicy::decode(&B64.encode(&doc)) {
                Ok(p) => {
                    let mut f = Fields::default();
                    for (k, v) in &pairs {
                        f.push(k, v);
                    }
                    if let Err(e) = p.check(&f, "b", at("2029-01-01T00:00:00Z")) {
                        proptest::prop_assert_eq!(e.code, S3ErrorCode::AccessDenied);
                    }
                    let _ = p.length_range();
                }
                Err(e) => proptest::prop_assert_eq!(e.code, S3ErrorCode::InvalidPolicyDocument),
            }
        }
    }

    const AWS_EXAMPLE_POLICY: &str = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
    const AWS_EXAMPLE_SIGNATURE: &str = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";
}

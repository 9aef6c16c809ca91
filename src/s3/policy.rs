//! Bucket policies: AWS's JSON access policy language as S3 applies it to buckets, parsed and
//! validated as AWS does (`MalformedPolicy`), and evaluated for each request: an explicit
//! Deny wins; otherwise the bucket owner, or a statement that allows, grants; otherwise the
//! request is denied.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-policies.html>,
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html>

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::{S3Error, S3ErrorCode};
use crate::clock::Timestamp;

/// The largest policy document S3 accepts.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
    /// Version 2012-10-17 substitutes policy variables; 2008-10-17 takes them literally.
    variables: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Clone, Debug, PartialEq)]
struct Statement {
    effect: Effect,
    /// `Principal` (true) or `NotPrincipal` (false).
    principal: (bool, Principals),
    /// `Action` (true) or `NotAction` (false), lower-case patterns.
    action: (bool, Vec<String>),
    /// `Resource` (true) or `NotResource` (false).
    resource: (bool, Vec<String>),
    conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Principals {
    anyone: bool,
    /// User ids: canonical ids, and the names of `arn:aws:iam::…:user/NAME` (a user's id is
    /// its unique name; display names are not unique, so they never name a principal).
    ids: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Qualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringNotEquals", Op::StringNotEquals),
    ("StringEqualsIgnoreCase", Op::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Op::StringNotEqualsIgnoreCase),
    ("StringLike", Op::StringLike),
    ("StringNotLike", Op::StringNotLike),
    ("NumericEquals", Op::NumericEquals),
    ("NumericNotEquals", Op::NumericNotEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("DateEquals", Op::DateEquals),
    ("DateNotEquals", Op::DateNotEquals),
    ("DateLessThan", Op::DateLessThan),
    ("DateLessThanEquals", Op::DateLessThanEquals),
    ("DateGreaterThan", Op::DateGreaterThan),
    ("DateGreaterThanEquals", Op::DateGreaterThanEquals),
    ("Bool", Op::Bool),
    ("IpAddress", Op::IpAddress),
    ("NotIpAddress", Op::NotIpAddress),
    ("ArnEquals", Op::ArnEquals),
    ("ArnLike", Op::ArnLike),
    ("ArnNotEquals", Op::ArnNotEquals),
    ("ArnNotLike", Op::ArnNotLike),
    ("Null", Op::Null),
];

impl Op {
    /// Operators that hold when no value matches.
    fn negated(self) -> bool {
        matches!(
            self,
            Op::StringNotEquals
                | Op::StringNotEqualsIgnoreCase
                | Op::StringNotLike
                | Op::NumericNotEquals
                | Op::DateNotEquals
                | Op::NotIpAddress
                | Op::ArnNotEquals
                | Op::ArnNotLike
        )
    }

    /// The positive form of a negated operator.
    fn positive(self) -> Op {
        match self {
            Op::StringNotEquals => Op::StringEquals,
            Op::StringNotEqualsIgnoreCase => Op::StringEqualsIgnoreCase,
            Op::StringNotLike => Op::StringLike,
            Op::NumericNotEquals => Op::NumericEquals,
            Op::DateNotEquals => Op::DateEquals,
            Op::NotIpAddress => Op::IpAddress,
            Op::ArnNotEquals => Op::ArnEquals,
            Op::ArnNotLike => Op::ArnLike,
            other => other,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Condition {
    op: Op,
    qualifier: Qualifier,
    if_exists: bool,
    /// Lower-case: condition keys compare without case.
    key: String,
    values: Vec<String>,
}

/// Who is asking, and what: what a statement is matched against.
pub struct RequestContext<'a> {
    /// `None` for an anonymous request.
    pub user: Option<(&'a str, &'a str)>,
    /// `s3:GetObject`, …
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    /// Condition keys (lower-case) and their values.
    pub keys: &'a HashMap<String, Vec<String>>,
}

/// What a policy says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// An explicit Deny: nothing overrides it.
    Deny,
    /// No statement applies.
    Silent,
}

fn malformed(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedPolicy, message.into())
}

/// The condition keys s3d fills (a key it never fills would make a Deny never apply).
fn supported_key(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "aws:sourceip",
        "aws:securetransport",
        "aws:currenttime",
        "aws:epochtime",
        "aws:username",
        "aws:userid",
        "aws:principaltype",
        "s3:prefix",
        "s3:delimiter",
        "s3:max-keys",
        "s3:versionid",
        "s3:x-amz-acl",
        "s3:requestobjecttagkeys",
        "s3:authtype",
        "s3:signatureversion",
    ];
    KEYS.contains(&key) || key.strip_prefix("s3:requestobjecttag/").is_some_and(|k| !k.is_empty())
}

/// The policy variables s3d substitutes: `${aws:username}`, `${aws:userid}` and `${$}`.
const VARIABLES: &[&str] = &["${aws:username}", "${aws:userid}", "${$}"];

fn check_variables(s: &str) -> Result<(), S3Error> {
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        match VARIABLES.iter().find(|v| rest[at..].starts_with(**v)) {
            Some(v) => rest = &rest[at + v.len()..],
            None => return Err(malformed(format!("Policy has an unsupported variable in {s}"))),
        }
    }
    Ok(())
}

/// `s` with the policy variables of `user` substituted; `None` when one has no value (an
/// anonymous caller has no user name).
fn expand(s: &str, user: Option<(&str, &str)>) -> Option<String> {
    if !s.contains("${") {
        return Some(s.to_owned());
    }
    // A user's id is its unique name.
    let (id, name) = match user {
        Some((id, _)) => (Some(id), Some(id)),
        None => (None, None),
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (value, len) = if tail.starts_with("${aws:username}") {
            (name?, "${aws:username}".len())
        } else if tail.starts_with("${aws:userid}") {
            (id?, "${aws:userid}".len())
        } else if tail.starts_with("${$}") {
            ("$", 4)
        } else {
            return None;
        };
        out.push_str(value);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Some(out)
}

/// A string or an array of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, S3Error> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(|| malformed(format!("Policy has invalid {what}"))))
            .collect(),
        _ => Err(malformed(format!("Policy has invalid {what}"))),
    }
}

/// `*` stands for any run of characters, `?` for any one.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn principals(v: &Value) -> Result<Principals, S3Error> {
    let invalid = || malformed("Invalid principal in policy");
    let mut out = Principals::default();
    match v {
        Value::String(s) if s == "*" => out.anyone = true,
        Value::Object(map) if !map.is_empty() => {
            for (kind, ids) in map {
                for id in strings(ids, "principal").map_err(|_| invalid())? {
                    match kind.as_str() {
                        "AWS" if id == "*" => out.anyone = true,
                        "AWS" => match id.strip_prefix("arn:aws:iam::") {
                            Some(rest) => match rest.split_once(':') {
                                Some((_, user)) if user.starts_with("user/") => {
                                    out.ids.push(user["user/".len()..].rsplit('/').next().unwrap_or("").to_owned());
                                }
                                Some((account, "root")) if !account.is_empty() => out.ids.push(account.to_owned()),
                                _ => return Err(invalid()),
                            },
                            None if !id.is_empty() && !id.contains(':') => out.ids.push(id),
                            None => return Err(invalid()),
                        },
                        "CanonicalUser" if !id.is_empty() => out.ids.push(id),
                        _ => return Err(invalid()),
                    }
                }
            }
        }
        _ => return Err(invalid()),
    }
    Ok(out)
}

fn conditions(v: &Value) -> Result<Vec<Condition>, S3Error> {
    let Value::Object(ops) = v else {
        return Err(malformed("Policy has an invalid condition block"));
    };
    let mut out = Vec::new();
    for (name, block) in ops {
        let (qualifier, rest) = match name.split_once(':') {
            Some(("ForAnyValue", rest)) => (Qualifier::ForAnyValue, rest),
            Some(("ForAllValues", rest)) => (Qualifier::ForAllValues, rest),
            Some(_) => return Err(malformed(format!("Invalid Condition type : {name}"))),
            None => (Qualifier::Single, name.as_str()),
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) if base != "Null" => (base, true),
            _ => (rest, false),
        };
        let op = OPS
            .iter()
            .find(|(n, _)| *n == base)
            .map(|(_, op)| *op)
            .ok_or_else(|| malformed(format!("Invalid Condition type : {name}")))?;
        let Value::Object(keys) = block else {
            return Err(malformed("Policy has an invalid condition block"));
        };
        for (key, values) in keys {
            let values = match values {
                Value::Bool(b) => vec![b.to_string()],
                Value::Number(n) => vec![n.to_string()],
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => Ok(s.clone()),
                        Value::Bool(b) => Ok(b.to_string()),
                        Value::Number(n) => Ok(n.to_string()),
                        _ => Err(malformed("Policy has an invalid condition value")),
                    })
                    .collect::<Result<_, _>>()?,
                other => strings(other, "condition value")?,
            };
            let key = key.to_ascii_lowercase();
            if !supported_key(&key) {
                return Err(malformed(format!("Policy has an invalid condition key: {key}")));
            }
            for v in &values {
                check_variables(v)?;
            }
            let condition = Condition { op, qualifier, if_exists, key, values };
            condition.check_values()?;
            out.push(condition);
        }
    }
    Ok(out)
}

impl Condition {
    /// Values each operator can compare with.
    fn check_values(&self) -> Result<(), S3Error> {
        let ok = self.values.iter().all(|v| match self.op.positive() {
            Op::NumericEquals
            | Op::NumericLessThan
            | Op::NumericLessThanEquals
            | Op::NumericGreaterThan
            | Op::NumericGreaterThanEquals => v.trim().parse::<f64>().is_ok(),
            Op::DateEquals
            | Op::DateLessThan
            | Op::DateLessThanEquals
            | Op::DateGreaterThan
            | Op::DateGreaterThanEquals => parse_date(v).is_some(),
            Op::IpAddress => parse_cidr(v).is_some(),
            Op::Bool | Op::Null => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
            _ => true,
        });
        if ok { Ok(()) } else { Err(malformed(format!("Invalid value for condition {}", self.key))) }
    }

    /// Whether one request value satisfies the positive operator against some policy value.
    fn one(&self, op: Op, actual: &str) -> bool {
        let num = |s: &str| s.trim().parse::<f64>().ok();
        self.values.iter().any(|want| match op {
            Op::StringEquals | Op::ArnEquals => actual == want,
            Op::StringEqualsIgnoreCase => actual.eq_ignore_ascii_case(want),
            Op::StringLike | Op::ArnLike => wildcard(want, actual),
            Op::NumericEquals => num(actual).zip(num(want)).is_some_and(|(a, w)| a == w),
            Op::NumericLessThan => num(actual).zip(num(want)).is_some_and(|(a, w)| a < w),
            Op::NumericLessThanEquals => num(actual).zip(num(want)).is_some_and(|(a, w)| a <= w),
            Op::NumericGreaterThan => num(actual).zip(num(want)).is_some_and(|(a, w)| a > w),
            Op::NumericGreaterThanEquals => num(actual).zip(num(want)).is_some_and(|(a, w)| a >= w),
            Op::DateEquals => parse_date(actual).zip(parse_date(want)).is_some_and(|(a, w)| a == w),
            Op::DateLessThan => parse_date(actual).zip(parse_date(want)).is_some_and(|(a, w)| a < w),
            Op::DateLessThanEquals => parse_date(actual).zip(parse_date(want)).is_some_and(|(a, w)| a <= w),
            Op::DateGreaterThan => parse_date(actual).zip(parse_date(want)).is_some_and(|(a, w)| a > w),
            Op::DateGreaterThanEquals => parse_date(actual).zip(parse_date(want)).is_some_and(|(a, w)| a >= w),
            Op::Bool => actual.eq_ignore_ascii_case(want),
            Op::IpAddress => actual.parse::<IpAddr>().ok().zip(parse_cidr(want)).is_some_and(|(a, c)| in_cidr(a, c)),
            _ => false,
        })
    }

    fn holds(&self, keys: &HashMap<String, Vec<String>>) -> bool {
        let present = keys.get(&self.key).filter(|v| !v.is_empty());
        if self.op == Op::Null {
            let wants_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return wants_absent == present.is_none();
        }
        let Some(actual) = present else {
            // A missing key matches no value: a negated operator then holds, as does a
            // condition that allows its absence (`…IfExists`, `ForAllValues:`).
            return match self.qualifier {
                Qualifier::ForAllValues => true,
                Qualifier::ForAnyValue => false,
                Qualifier::Single => self.if_exists || self.op.negated(),
            };
        };
        let (positive, negated) = (self.op.positive(), self.op.negated());
        match self.qualifier {
            Qualifier::ForAllValues => actual.iter().all(|a| self.one(positive, a) != negated),
            Qualifier::ForAnyValue => actual.iter().any(|a| self.one(positive, a) != negated),
            Qualifier::Single if negated => !actual.iter().any(|a| self.one(positive, a)),
            Qualifier::Single => actual.iter().any(|a| self.one(positive, a)),
        }
    }
}

/// An ISO 8601 date or time, or seconds since the epoch.
fn parse_date(s: &str) -> Option<i64> {
    use time::format_description::well_known::Iso8601;
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp());
    }
    time::Date::parse(s, &Iso8601::DEFAULT).ok().map(|d| d.midnight().assume_utc().unix_timestamp())
}

/// `a.b.c.d/n`, an IPv6 network, or one address.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match s.trim().split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<u8>().ok()?),
        None => {
            let a = s.trim().parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

pub fn in_cidr(addr: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    let to_bits = |a: IpAddr| -> (u128, u8) {
        match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (u128::from(u32::from(v4)) << 96, 32),
                None => (u128::from(v6), 128),
            },
        }
    };
    let ((a, a_len), (n, n_len)) = (to_bits(addr), to_bits(net));
    if a_len != n_len {
        return false;
    }
    // Both forms sit in the top bits: the network is the top `bits` of them.
    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
    a & mask == n & mask
}

impl Policy {
    /// Parses and validates a policy for `bucket` as AWS does.
    pub fn parse(doc: &[u8], bucket: &str) -> Result<Policy, S3Error> {
        if doc.len() > MAX_POLICY_BYTES {
            return Err(malformed("Policies must be less than 20 KB"));
        }
        let value: Value = serde_json::from_slice(doc)
            .map_err(|_| malformed("Policies must be valid JSON and the first byte must be '{'"))?;
        let Value::Object(top) = value else {
            return Err(malformed("Policies must be valid JSON and the first byte must be '{'"));
        };
        for key in top.keys() {
            if !["Version", "Id", "Statement"].contains(&key.as_str()) {
                return Err(malformed(format!("Unknown field {key}")));
            }
        }
        if let Some(v) = top.get("Version")
            && !matches!(v.as_str(), Some("2008-10-17" | "2012-10-17"))
        {
            return Err(malformed("The policy must contain a valid version string"));
        }
        let statements = match top.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items.iter().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err(malformed("Policy has an invalid Statement")),
            None => return Err(malformed("Missing required field Statement")),
        };
        let statements = statements.into_iter().map(|s| statement(s, bucket)).collect::<Result<Vec<_>, _>>()?;
        let variables = top.get("Version").and_then(Value::as_str) == Some("2012-10-17");
        Ok(Policy { statements, variables })
    }

    /// Whether a statement allows everyone, whoever and wherever they are (no conditions):
    /// what makes a bucket public.
    pub fn is_public(&self) -> bool {
        // `NotPrincipal` in an Allow names everyone but a few: public too.
        self.statements
            .iter()
            .any(|s| s.effect == Effect::Allow && s.conditions.is_empty() && (!s.principal.0 || s.principal.1.anyone))
    }

    pub fn evaluate(&self, cx: &RequestContext<'_>) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if s.applies(cx, self.variables) {
                match s.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed { Decision::Allow } else { Decision::Silent }
    }
}

fn statement(v: &Value, bucket: &str) -> Result<Statement, S3Error> {
    let Value::Object(map) = v else {
        return Err(malformed("Policy has an invalid Statement"));
    };
    const FIELDS: &[&str] =
        &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];
    if let Some(k) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(malformed(format!("Unknown field {k}")));
    }
    let effect = match map.get("Effect").map(|e| e.as_str()) {
        Some(Some("Allow")) => Effect::Allow,
        Some(Some("Deny")) => Effect::Deny,
        Some(other) => return Err(malformed(format!("Invalid effect: {}", other.unwrap_or("")))),
        None => return Err(malformed("Missing required field Effect")),
    };
    let principal =
        one_of(map, "Principal", "NotPrincipal")?.ok_or_else(|| malformed("Missing required field Principal"))?;
    let principal = (principal.0, principals(principal.1)?);
    let action = one_of(map, "Action", "NotAction")?.ok_or_else(|| malformed("Missing required field Action"))?;
    let actions = strings(action.1, "action")?;
    if !actions.iter().all(|a| a == "*" || (a.len() > 3 && a.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("s3:")))) {
        return Err(malformed("Policy has invalid action"));
    }
    let resource =
        one_of(map, "Resource", "NotResource")?.ok_or_else(|| malformed("Missing required field Resource"))?;
    let resources = strings(resource.1, "resource")?;
    for r in &resources {
        check_variables(r)?;
        let named = r.strip_prefix("arn:aws:s3:::").map(|rest| rest.split('/').next().unwrap_or(""));
        match named {
            _ if r == "*" => {}
            Some(b) if wildcard(b, bucket) => {}
            _ => return Err(malformed("Policy has invalid resource")),
        }
    }
    let conditions = match map.get("Condition") {
        Some(c) => conditions(c)?,
        None => Vec::new(),
    };
    Ok(Statement {
        effect,
        principal,
        action: (action.0, actions.into_iter().map(|a| a.to_ascii_lowercase()).collect()),
        resource: (resource.0, resources),
        conditions,
    })
}

/// The element named `yes` (true) or `no` (false), never both.
fn one_of<'a>(map: &'a Map<String, Value>, yes: &str, no: &str) -> Result<Option<(bool, &'a Value)>, S3Error> {
    match (map.get(yes), map.get(no)) {
        (Some(_), Some(_)) => Err(malformed(format!("Statement cannot have both {yes} and {no}"))),
        (Some(v), None) => Ok(Some((true, v))),
        (None, Some(v)) => Ok(Some((false, v))),
        (None, None) => Ok(None),
    }
}

impl Statement {
    fn applies(&self, cx: &RequestContext<'_>, variables: bool) -> bool {
        let p = &self.principal.1;
        let names_user = p.anyone || cx.user.is_some_and(|(id, _)| p.ids.iter().any(|i| i == id));
        let action = cx.action.to_ascii_lowercase();
        let acts = self.action.1.iter().any(|a| wildcard(a, &action));
        let pattern = |r: &String| if variables { expand(r, cx.user) } else { Some(r.clone()) };
        let on = self.resource.1.iter().any(|r| pattern(r).is_some_and(|r| wildcard(&r, cx.resource)));
        names_user == self.principal.0
            && acts == self.action.0
            && on == self.resource.0
            && self.conditions.iter().all(|c| {
                if variables && c.values.iter().any(|v| v.contains("${")) {
                    let values: Option<Vec<String>> = c.values.iter().map(|v| expand(v, cx.user)).collect();
                    values.is_some_and(|values| Condition { values, ..c.clone() }.holds(cx.keys))
                } else {
                    c.holds(cx.keys)
                }
            })
    }
}

/// The policy action an operation needs (`s3:GetObject`, …), and whether it acts on an
/// object (its resource is `bucket/key`) rather than on the bucket. `versioned` is whether
/// the request names a version (`versionId`), which some operations ask for separately.
pub fn action(op: super::OpName, versioned: bool) -> Option<(&'static str, bool)> {
    use super::OpName::*;
    Some(match op {
        GetObject | HeadObject if versioned => ("s3:GetObjectVersion", true),
        GetObject | HeadObject => ("s3:GetObject", true),
        GetObjectAttributes if versioned => ("s3:GetObjectVersionAttributes", true),
        GetObjectAttributes => ("s3:GetObjectAttributes", true),
        PutObject | CopyObject | CreateMultipartUpload | UploadPart | UploadPartCopy | CompleteMultipartUpload => {
            ("s3:PutObject", true)
        }
        DeleteObject if versioned => ("s3:DeleteObjectVersion", true),
        DeleteObject => ("s3:DeleteObject", true),
        AbortMultipartUpload => ("s3:AbortMultipartUpload", true),
        ListParts => ("s3:ListMultipartUploadParts", true),
        GetObjectTagging if versioned => ("s3:GetObjectVersionTagging", true),
        GetObjectTagging => ("s3:GetObjectTagging", true),
        PutObjectTagging if versioned => ("s3:PutObjectVersionTagging", true),
        PutObjectTagging => ("s3:PutObjectTagging", true),
        DeleteObjectTagging if versioned => ("s3:DeleteObjectVersionTagging", true),
        DeleteObjectTagging => ("s3:DeleteObjectTagging", true),
        ListObjects | ListObjectsV2 | HeadBucket => ("s3:ListBucket", false),
        ListObjectVersions => ("s3:ListBucketVersions", false),
        ListMultipartUploads => ("s3:ListBucketMultipartUploads", false),
        DeleteObjects => ("s3:DeleteObject", false),
        DeleteBucket => ("s3:DeleteBucket", false),
        GetBucketLocation => ("s3:GetBucketLocation", false),
        PutBucketVersioning => ("s3:PutBucketVersioning", false),
        GetBucketVersioning => ("s3:GetBucketVersioning", false),
        PutBucketLifecycleConfiguration | DeleteBucketLifecycle => ("s3:PutLifecycleConfiguration", false),
        GetBucketLifecycleConfiguration => ("s3:GetLifecycleConfiguration", false),
        PutBucketTagging | DeleteBucketTagging => ("s3:PutBucketTagging", false),
        GetBucketTagging => ("s3:GetBucketTagging", false),
        PutBucketCors | DeleteBucketCors => ("s3:PutBucketCORS", false),
        GetBucketCors => ("s3:GetBucketCORS", false),
        PutBucketPolicy => ("s3:PutBucketPolicy", false),
        GetBucketPolicy => ("s3:GetBucketPolicy", false),
        DeleteBucketPolicy => ("s3:DeleteBucketPolicy", false),
        GetBucketPolicyStatus => ("s3:GetBucketPolicyStatus", false),
        PutPublicAccessBlock | DeletePublicAccessBlock => ("s3:PutBucketPublicAccessBlock", false),
        GetPublicAccessBlock => ("s3:GetBucketPublicAccessBlock", false),
        GetObjectAcl if versioned => ("s3:GetObjectVersionAcl", true),
        GetObjectAcl => ("s3:GetObjectAcl", true),
        PutObjectAcl if versioned => ("s3:PutObjectVersionAcl", true),
        PutObjectAcl => ("s3:PutObjectAcl", true),
        GetBucketAcl => ("s3:GetBucketAcl", false),
        PutBucketAcl => ("s3:PutBucketAcl", false),
        PutBucketOwnershipControls | DeleteBucketOwnershipControls => ("s3:PutBucketOwnershipControls", false),
        GetBucketOwnershipControls => ("s3:GetBucketOwnershipControls", false),
        _ => return None,
    })
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not one (each proxy appends who called it).
pub fn client_address(peer: Option<IpAddr>, forwarded: Option<&str>, trusted: &[(IpAddr, u8)]) -> Option<IpAddr> {
    let is_trusted = |a: IpAddr| trusted.iter().any(|n| in_cidr(a, *n));
    let peer = peer?;
    if !is_trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<IpAddr> = match forwarded {
        Some(list) => match list.split(',').map(|a| a.trim().parse::<IpAddr>()).collect::<Result<_, _>>() {
            Ok(hops) => hops,
            // A header that cannot be read names nobody: the proxy itself is the client.
            Err(_) => return Some(peer),
        },
        None => return Some(peer),
    };
    Some(hops.iter().rev().copied().find(|a| !is_trusted(*a)).or(hops.first().copied()).unwrap_or(peer))
}

/// The request's condition keys that do not depend on the operation.
pub fn base_keys(user: Option<(&str, &str)>, source: Option<IpAddr>, secure: bool) -> HashMap<String, Vec<String>> {
    let now = Timestamp::now();
    let mut keys = HashMap::new();
    keys.insert("aws:currenttime".to_owned(), vec![now.to_iso8601_seconds()]);
    keys.insert("aws:epochtime".to_owned(), vec![now.unix_seconds().to_string()]);
    keys.insert("aws:securetransport".to_owned(), vec![secure.to_string()]);
    if let Some(ip) = source {
        keys.insert("aws:sourceip".to_owned(), vec![ip.to_string()]);
    }
    match user {
        Some((id, _)) => {
            // A user's id is its unique name.
            keys.insert("aws:userid".to_owned(), vec![id.to_owned()]);
            keys.insert("aws:username".to_owned(), vec![id.to_owned()]);
            keys.insert("aws:principaltype".to_owned(), vec!["User".to_owned()]);
        }
        None => {
            keys.insert("aws:principaltype".to_owned(), vec!["Anonymous".to_owned()]);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(doc: &str) -> Policy {
        Policy::parse(doc.as_bytes(), "bkt").expect("valid policy")
    }

    fn refused(doc: &str) -> String {
        let e = Policy::parse(doc.as_bytes(), "bkt").expect_err("malformed");
        assert_eq!(e.code, S3ErrorCode::MalformedPolicy);
        e.message.into_owned()
    }

    fn decide(
        p: &Policy,
        user: Option<(&str, &str)>,
        action: &str,
        resource: &str,
        keys: &[(&str, &[&str])],
    ) -> Decision {
        let keys: HashMap<String, Vec<String>> =
            keys.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect();
        p.evaluate(&RequestContext { user, action, resource, keys: &keys })
    }

    const READ: &str = "arn:aws:s3:::bkt/photos/a.jpg";

    /// AWS's documented example: public read of every object.
    #[test]
    fn public_read() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*",
                "Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":["arn:aws:s3:::bkt/*"]}]}"#,
        );
        assert!(p.is_public());
        assert_eq!(decide(&p, None, "s3:GetObject", READ, &[]), Decision::Allow);
        assert_eq!(decide(&p, None, "s3:PutObject", READ, &[]), Decision::Silent);
        assert_eq!(decide(&p, None, "s3:ListBucket", "arn:aws:s3:::bkt", &[]), Decision::Silent);
    }

    #[test]
    fn users_by_arn_or_id_and_explicit_deny_wins() {
        let p = policy(
            r#"{"Statement":[
                {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/reader"]},"Action":"s3:Get*","Resource":"arn:aws:s3:::bkt/*"},
                {"Effect":"Allow","Principal":{"CanonicalUser":"id-2"},"Action":"s3:*","Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"]},
                {"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::bkt/locked/*"}]}"#,
        );
        assert!(!p.is_public());
        let reader = Some(("reader", "Reader Display"));
        assert_eq!(decide(&p, reader, "s3:GetObject", READ, &[]), Decision::Allow);
        assert_eq!(decide(&p, reader, "S3:GETOBJECT", READ, &[]), Decision::Allow, "actions compare without case");
        assert_eq!(decide(&p, reader, "s3:PutObject", READ, &[]), Decision::Silent);
        let writer = Some(("id-2", "writer"));
        assert_eq!(decide(&p, writer, "s3:PutObject", READ, &[]), Decision::Allow);
        assert_eq!(decide(&p, writer, "s3:DeleteObject", "arn:aws:s3:::bkt/locked/x", &[]), Decision::Deny);
        assert_eq!(decide(&p, None, "s3:GetObject", READ, &[]), Decision::Silent);
    }

    /// Home folders: `${aws:username}` in resources and condition values (version 2012).
    #[test]
    fn policy_variables() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*",
                "Resource":"arn:aws:s3:::bkt/home/${aws:username}/*"},
               {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt",
                "Condition":{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}}]}"#,
        );
        let alice = Some(("alice", "Alice A."));
        assert_eq!(decide(&p, alice, "s3:GetObject", "arn:aws:s3:::bkt/home/alice/x", &[]), Decision::Allow);
        assert_eq!(decide(&p, alice, "s3:GetObject", "arn:aws:s3:::bkt/home/bob/x", &[]), Decision::Silent);
        assert_eq!(decide(&p, None, "s3:GetObject", "arn:aws:s3:::bkt/home/${aws:username}/x", &[]), Decision::Silent);
        let list = |prefix: &str| decide(&p, alice, "s3:ListBucket", "arn:aws:s3:::bkt", &[("s3:prefix", &[prefix])]);
        assert_eq!(list("home/alice/docs"), Decision::Allow);
        assert_eq!(list("home/bob/"), Decision::Silent);
    }

    #[test]
    fn not_elements_invert() {
        let p = policy(
            r#"{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::1:user/admin"},
                "NotAction":"s3:Get*","NotResource":"arn:aws:s3:::bkt/public/*"}]}"#,
        );
        assert!(!p.is_public(), "a Deny makes nothing public");
        let allow_most = policy(
            r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}]}"#,
        );
        assert!(allow_most.is_public(), "an Allow to everyone but a few is public");
        let other = Some(("other", "Other"));
        assert_eq!(decide(&p, other, "s3:PutObject", "arn:aws:s3:::bkt/private/x", &[]), Decision::Deny);
        assert_eq!(decide(&p, other, "s3:GetObject", "arn:aws:s3:::bkt/private/x", &[]), Decision::Silent);
        assert_eq!(decide(&p, other, "s3:PutObject", "arn:aws:s3:::bkt/public/x", &[]), Decision::Silent);
        assert_eq!(decide(&p, Some(("admin", "Admin")), "s3:PutObject", "arn:aws:s3:::bkt/x", &[]), Decision::Silent);
        assert_eq!(
            decide(&p, Some(("not-admin", "admin")), "s3:PutObject", "arn:aws:s3:::bkt/x", &[]),
            Decision::Deny,
            "a display name never names a principal"
        );
    }

    /// Condition operators over the keys S3 defines, from AWS's documented examples.
    #[test]
    fn conditions() {
        let allow = |cond: &str| {
            policy(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::bkt*","Condition":{cond}}}]}}"#
            ))
        };
        let d = |p: &Policy, keys: &[(&str, &[&str])]| decide(p, None, "s3:ListBucket", "arn:aws:s3:::bkt", keys);
        let ip = allow(r#"{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:db8::/32"]}}"#);
        assert_eq!(d(&ip, &[("aws:sourceip", &["192.0.2.7"])]), Decision::Allow);
        assert_eq!(d(&ip, &[("aws:sourceip", &["2001:db8::1"])]), Decision::Allow);
        assert_eq!(d(&ip, &[("aws:sourceip", &["198.51.100.1"])]), Decision::Silent);
        assert_eq!(d(&ip, &[]), Decision::Silent, "a missing key matches nothing");
        let not_ip = allow(r#"{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#);
        assert_eq!(d(&not_ip, &[("aws:sourceip", &["198.51.100.1"])]), Decision::Allow);
        let tls = allow(r#"{"Bool":{"aws:SecureTransport":"true"}}"#);
        assert_eq!(d(&tls, &[("aws:securetransport", &["false"])]), Decision::Silent);
        assert_eq!(d(&tls, &[("aws:securetransport", &["true"])]), Decision::Allow);
        let prefix = allow(r#"{"StringLike":{"s3:prefix":["home/${aws:username}/*","public/*"]}}"#);
        assert_eq!(d(&prefix, &[("s3:prefix", &["public/x"])]), Decision::Allow);
        let equals = allow(r#"{"StringEquals":{"s3:prefix":["","docs/"],"s3:delimiter":"/"}}"#);
        assert_eq!(d(&equals, &[("s3:prefix", &["docs/"]), ("s3:delimiter", &["/"])]), Decision::Allow);
        assert_eq!(d(&equals, &[("s3:prefix", &["docs/"])]), Decision::Silent, "every key must hold");
        let max = allow(r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#);
        assert_eq!(d(&max, &[("s3:max-keys", &["10"])]), Decision::Allow);
        assert_eq!(d(&max, &[("s3:max-keys", &["11"])]), Decision::Silent);
        let maybe = allow(r#"{"NumericLessThanEqualsIfExists":{"s3:max-keys":"10"}}"#);
        assert_eq!(d(&maybe, &[]), Decision::Allow, "IfExists holds when the key is missing");
        let until = allow(r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#);
        assert_eq!(d(&until, &[("aws:currenttime", &["2026-11-30T00:00:00Z"])]), Decision::Allow);
        assert_eq!(d(&until, &[("aws:currenttime", &["2031-01-01T00:00:00Z"])]), Decision::Silent);
        let null = allow(r#"{"Null":{"s3:x-amz-acl":"true"}}"#);
        assert_eq!(d(&null, &[]), Decision::Allow);
        assert_eq!(d(&null, &[("s3:x-amz-acl", &["private"])]), Decision::Silent);
        let tags = allow(r#"{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["team","env"]}}"#);
        assert_eq!(d(&tags, &[("s3:requestobjecttagkeys", &["team"])]), Decision::Allow);
        assert_eq!(d(&tags, &[("s3:requestobjecttagkeys", &["team", "cost"])]), Decision::Silent);
        let any = allow(r#"{"ForAnyValue:StringEquals":{"s3:RequestObjectTagKeys":["secret"]}}"#);
        assert_eq!(d(&any, &[("s3:requestobjecttagkeys", &["team", "secret"])]), Decision::Allow);
        let not_eq = allow(r#"{"StringNotEquals":{"s3:x-amz-acl":["public-read","public-read-write"]}}"#);
        assert_eq!(d(&not_eq, &[("s3:x-amz-acl", &["private"])]), Decision::Allow);
        assert_eq!(d(&not_eq, &[("s3:x-amz-acl", &["public-read"])]), Decision::Silent);
        let ci = allow(r#"{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}"#);
        assert_eq!(d(&ci, &[("aws:username", &["alice"])]), Decision::Allow);
        // A negated operator holds when the key is missing (so a Deny on it applies).
        assert_eq!(d(&not_eq, &[]), Decision::Allow);
        assert_eq!(d(&not_ip, &[]), Decision::Allow);
        assert_eq!(d(&any, &[]), Decision::Silent, "ForAnyValue over nothing");
    }

    #[test]
    fn malformed_policies_get_aws_messages() {
        assert!(refused("not json").contains("valid JSON"));
        assert!(refused("[]").contains("valid JSON"));
        assert!(refused(r#"{"Version":"2012-10-17"}"#).contains("Missing required field Statement"));
        assert!(refused(r#"{"Version":"2099-01-01","Statement":[]}"#).contains("valid version"));
        let base = |extra: &str| {
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"{extra}}}]}}"#
            )
        };
        policy(&base(""));
        assert!(refused(&base(r#","Extra":1"#)).contains("Unknown field Extra"));
        assert!(refused(&base(r#","Condition":{"StringSorta":{"a":"b"}}"#)).contains("Invalid Condition type"));
        assert!(refused(&base(r#","Condition":{"IpAddress":{"aws:SourceIp":"not-an-ip"}}"#)).contains("Invalid value"));
        let stmt = |s: &str| format!(r#"{{"Statement":[{s}]}}"#);
        assert!(
            refused(&stmt(r#"{"Principal":"*","Action":"s3:*","Resource":"*"}"#))
                .contains("Missing required field Effect")
        );
        assert!(
            refused(&stmt(r#"{"Effect":"Maybe","Principal":"*","Action":"s3:*","Resource":"*"}"#))
                .contains("Invalid effect")
        );
        assert!(
            refused(&stmt(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#))
                .contains("Missing required field Principal")
        );
        assert!(
            refused(&stmt(r#"{"Effect":"Allow","Principal":{"Bob":"x"},"Action":"s3:*","Resource":"*"}"#))
                .contains("Invalid principal")
        );
        assert!(
            refused(&stmt(r#"{"Effect":"Allow","Principal":"*","Action":"ec2:Run","Resource":"*"}"#))
                .contains("invalid action")
        );
        assert!(
            refused(&stmt(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::other/*"}"#))
                .contains("invalid resource")
        );
        assert!(
            refused(&stmt(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*"}"#))
                .contains("Missing required field Resource")
        );
        assert!(refused(&"x".repeat(MAX_POLICY_BYTES + 1)).contains("20 KB"));
        // Keys s3d never fills, and variables it does not know, are refused rather than
        // silently never matching; so is an action whose first bytes are not characters.
        assert!(refused(&base(r#","Condition":{"StringEquals":{"aws:Referer":"x"}}"#)).contains("condition key"));
        assert!(
            refused(&base(r#","Condition":{"StringEquals":{"s3:prefix":"${aws:Something}"}}"#)).contains("variable")
        );
        assert!(
            refused(&stmt(r#"{"Effect":"Allow","Principal":"*","Action":"s3\u20acx","Resource":"*"}"#))
                .contains("invalid action")
        );
    }

    #[test]
    fn client_addresses_behind_trusted_proxies() {
        let trusted = [parse_cidr("10.0.0.0/8").expect("cidr")];
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let client = |peer, fwd| client_address(Some(ip(peer)), fwd, &trusted);
        assert_eq!(client("192.0.2.1", Some("198.51.100.7")), Some(ip("192.0.2.1")), "untrusted peers are the client");
        assert_eq!(client("10.0.0.2", Some("198.51.100.7")), Some(ip("198.51.100.7")));
        assert_eq!(client("10.0.0.2", Some("203.0.113.9, 198.51.100.7, 10.0.0.5")), Some(ip("198.51.100.7")));
        assert_eq!(client("10.0.0.2", Some("10.0.0.9, 10.0.0.5")), Some(ip("10.0.0.9")));
        assert_eq!(client("10.0.0.2", Some("not an address")), Some(ip("10.0.0.2")));
        assert_eq!(client("10.0.0.2", None), Some(ip("10.0.0.2")));
        assert_eq!(client_address(Some(ip("10.0.0.2")), Some("198.51.100.7"), &[]), Some(ip("10.0.0.2")));
    }

    #[test]
    fn wildcards_and_networks() {
        assert!(wildcard("arn:aws:s3:::bkt/*", "arn:aws:s3:::bkt/a/b"));
        assert!(wildcard("s3:get?bject", "s3:getobject"));
        assert!(!wildcard("arn:aws:s3:::bkt/*", "arn:aws:s3:::bkt"));
        assert!(wildcard("*a*b*", "xaxxbx") && !wildcard("*a*b", "xaxxbx"));
        let cidr = |s| parse_cidr(s).expect("cidr");
        assert!(in_cidr("10.1.2.3".parse().expect("ip"), cidr("10.0.0.0/8")));
        assert!(!in_cidr("11.1.2.3".parse().expect("ip"), cidr("10.0.0.0/8")));
        assert!(in_cidr("::ffff:10.1.2.3".parse().expect("ip"), cidr("10.0.0.0/8")), "v4-mapped");
        assert!(in_cidr("1.2.3.4".parse().expect("ip"), cidr("0.0.0.0/0")));
        assert!(parse_cidr("10.0.0.0/33").is_none());
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        /// JSON built from the policy language's own words, nested, with wrong types.
        fn value() -> impl Strategy<Value = Value> {
            let word = proptest::sample::select(vec![
                "Version",
                "2012-10-17",
                "2008-10-17",
                "Statement",
                "Sid",
                "Effect",
                "Allow",
                "Deny",
                "Principal",
                "NotPrincipal",
                "AWS",
                "CanonicalUser",
                "*",
                "Action",
                "NotAction",
                "s3:GetObject",
                "s3:*",
                "s3\u{e9}x",
                "Resource",
                "NotResource",
                "arn:aws:s3:::bkt/*",
                "arn:aws:s3:::bkt",
                "arn:aws:iam::1:user/a",
                "Condition",
                "StringLike",
                "ForAllValues:StringEquals",
                "NumericLessThanIfExists",
                "IpAddress",
                "Null",
                "aws:SourceIp",
                "s3:prefix",
                "10.0.0.0/8",
                "${aws:username}",
                "${",
                "",
            ]);
            let leaf = prop_oneof![
                word.clone().prop_map(|w| Value::String(w.to_owned())),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| Value::Number(n.into())),
                Just(Value::Null),
                "\\PC{0,12}".prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 48, 6, move |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::vec((word.clone(), inner), 0..5)
                        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(crate::s3::xml::fuzzing::config())]

            /// Any document parses or is refused with MalformedPolicy, never a panic; what
            /// parses evaluates for any request.
            #[test]
            fn fuzz_policy_documents(
                doc in prop_oneof![value().prop_map(|v| v.to_string().into_bytes()), proptest::collection::vec(any::<u8>(), 0..64)],
                action in "s3:[A-Za-z*?]{0,12}",
                resource in "arn:aws:s3:::bkt(/[\\PC]{0,10})?",
                anonymous in any::<bool>(),
                ip in "\\PC{0,16}",
            ) {
                match Policy::parse(&doc, "bkt") {
                    Err(e) => prop_assert_eq!(e.code, S3ErrorCode::MalformedPolicy),
                    Ok(p) => {
                        let user = (!anonymous).then_some(("alice", "Alice"));
                        let mut keys = base_keys(user, None, false);
                        keys.insert("aws:sourceip".into(), vec![ip.clone()]);
                        let _ = p.evaluate(&RequestContext { user, action: &action, resource: &resource, keys: &keys });
                        let _ = p.is_public();
                    }
                }
            }

            /// Whatever a client puts in X-Forwarded-For: an address, never a panic.
            #[test]
            fn fuzz_forwarded_for(forwarded in "\\PC{0,60}", peer in any::<[u8; 4]>()) {
                let trusted = [parse_cidr("0.0.0.0/0").expect("cidr")];
                let got = client_address(Some(IpAddr::from(peer)), Some(&forwarded), &trusted);
                prop_assert!(got.is_some());
            }
        }
    }
}

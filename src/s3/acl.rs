//! Access control lists, which count in buckets whose object ownership enables them
//! (anything but `BucketOwnerEnforced`): canned ACLs and `x-amz-grant-*` headers, the
//! `AccessControlPolicy` document, what grants allow, and who owns a new object.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html>

use bytes::Bytes;
use http::HeaderMap;
use serde::Deserialize;

use super::xml::{ElementLimits, XmlWriter, from_xml};
use super::{Ctx, S3Error, S3ErrorCode, S3Service, headers};
use crate::directory::UserDirectory;
use crate::storage::{
    BucketRecord, BucketSetting, BucketSettingKind, Grant, Grantee, ObjectOwnership, ObjectRecord, Owner, Permission,
};

pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// AWS's canned ACLs.
pub const CANNED: [&str; 8] = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
];

/// The canned ACLs a bucket whose ACLs are disabled still accepts: they grant nothing
/// beyond its owner's own access.
pub const OWNER_ONLY: [&str; 2] = ["private", "bucket-owner-full-control"];

/// At most this many grants in one ACL, as on AWS.
const MAX_GRANTS: usize = 100;

/// The grant headers and the permission each gives.
const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-full-control", Permission::FullControl),
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
];

/// The ACL a request's headers ask for: a canned ACL (`x-amz-acl`) or explicit grants
/// (`x-amz-grant-*`), never both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderAcl {
    Canned(&'static str),
    Grants(Vec<Grant>),
}

impl HeaderAcl {
    /// Reads the ACL headers, if any: grantees are checked against the users.
    pub fn from_headers(h: &HeaderMap, users: &UserDirectory) -> Result<Option<HeaderAcl>, S3Error> {
        Self::read(h, &|id| users.display_name(id).is_some())
    }

    /// [`HeaderAcl::from_headers`], with `known` telling which user ids exist.
    fn read(h: &HeaderMap, known: &dyn Fn(&str) -> bool) -> Result<Option<HeaderAcl>, S3Error> {
        let canned = headers::text(h, "x-amz-acl")?;
        match (canned, has_grant_headers(h)) {
            (Some(_), true) => Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Specifying both Canned ACLs and Header Grants is not allowed",
            )),
            (Some(name), false) => match CANNED.iter().find(|c| **c == name.trim()) {
                Some(c) => Ok(Some(HeaderAcl::Canned(c))),
                None => Err(S3Error::invalid_argument("Invalid canned ACL", "x-amz-acl", &name)),
            },
            (None, true) => {
                let mut grants = Vec::new();
                for (name, permission) in GRANT_HEADERS {
                    for value in h.get_all(name) {
                        let value = value
                            .to_str()
                            .map_err(|_| S3Error::invalid_argument("Invalid grant header value", name, ""))?;
                        for grantee in grantees(name, value, known)? {
                            grants.push(Grant { grantee, permission });
                        }
                    }
                }
                if grants.len() > MAX_GRANTS {
                    return Err(S3Error::new(S3ErrorCode::MalformedACLError));
                }
                Ok(Some(HeaderAcl::Grants(grants)))
            }
            (None, false) => Ok(None),
        }
    }

    /// Whether a bucket with ACLs disabled accepts it.
    pub fn owner_only(&self) -> bool {
        matches!(self, HeaderAcl::Canned(c) if OWNER_ONLY.contains(c))
    }

    /// The grants of a resource owned by `owner` in a bucket owned by `bucket_owner`: a
    /// canned ACL's, or the explicit grants as they are (which may leave out the owner).
    pub fn grants(&self, owner: &str, bucket_owner: &str) -> Vec<Grant> {
        match self {
            HeaderAcl::Grants(g) => g.clone(),
            HeaderAcl::Canned(name) => canned(name, owner, bucket_owner),
        }
    }
}

fn grant(grantee: Grantee, permission: Permission) -> Grant {
    Grant { grantee, permission }
}

/// What a resource's ACL is until set: its owner's full control.
pub fn private(owner: &str) -> Vec<Grant> {
    vec![grant(Grantee::User(owner.to_owned()), Permission::FullControl)]
}

/// The grants of the canned ACL `name`.
pub fn canned(name: &str, owner: &str, bucket_owner: &str) -> Vec<Grant> {
    let mut g = private(owner);
    match name {
        "public-read" => g.push(grant(Grantee::AllUsers, Permission::Read)),
        "public-read-write" => {
            g.push(grant(Grantee::AllUsers, Permission::Read));
            g.push(grant(Grantee::AllUsers, Permission::Write));
        }
        "authenticated-read" => g.push(grant(Grantee::AuthenticatedUsers, Permission::Read)),
        "bucket-owner-read" if bucket_owner != owner => {
            g.push(grant(Grantee::User(bucket_owner.to_owned()), Permission::Read));
        }
        "bucket-owner-full-control" if bucket_owner != owner => {
            g.push(grant(Grantee::User(bucket_owner.to_owned()), Permission::FullControl));
        }
        "log-delivery-write" => {
            g.push(grant(Grantee::LogDelivery, Permission::Write));
            g.push(grant(Grantee::LogDelivery, Permission::ReadAcp));
        }
        // private, aws-exec-read (its grant is to a service s3d does not have), and the
        // bucket-owner ACLs of a bucket's own owner.
        _ => {}
    }
    g
}

/// The grantees of one `x-amz-grant-*` header: `id="…"`, `uri="…"` or `emailAddress="…"`,
/// comma-separated.
fn grantees(header: &str, value: &str, known: &dyn Fn(&str) -> bool) -> Result<Vec<Grantee>, S3Error> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (kind, v) = item
            .split_once('=')
            .ok_or_else(|| S3Error::invalid_argument("Invalid grant header value", header, value))?;
        let v = v.trim().trim_matches('"');
        out.push(match kind.trim().to_ascii_lowercase().as_str() {
            "id" => user(v, known)?,
            "uri" => group(v)?,
            "emailaddress" => return Err(unresolvable(v)),
            _ => return Err(S3Error::invalid_argument("Invalid grant header value", header, value)),
        });
    }
    Ok(out)
}

fn user(id: &str, known: &dyn Fn(&str) -> bool) -> Result<Grantee, S3Error> {
    if known(id) {
        Ok(Grantee::User(id.to_owned()))
    } else {
        Err(S3Error::invalid_argument("Invalid id", "CanonicalUser/ID", id))
    }
}

fn group(uri: &str) -> Result<Grantee, S3Error> {
    match uri {
        ALL_USERS => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS => Ok(Grantee::AuthenticatedUsers),
        LOG_DELIVERY => Ok(Grantee::LogDelivery),
        _ => Err(S3Error::invalid_argument("Invalid group uri", "Group/URI", uri)),
    }
}

/// No s3d user has an e-mail address, so no grant by address resolves.
fn unresolvable(address: &str) -> S3Error {
    S3Error::new(S3ErrorCode::UnresolvableGrantByEmailAddress).field("EmailAddress", address)
}

/// Whether any grant is to everyone or to every signed request (AWS counts both public).
pub fn is_public(grants: &[Grant]) -> bool {
    grants.iter().any(|g| matches!(g.grantee, Grantee::AllUsers | Grantee::AuthenticatedUsers))
}

/// Whether `grants` give `caller` (`None`: anonymous) `wanted`; public grants count unless
/// `ignore_public` (the public access block's `IgnorePublicAcls`).
pub fn allows(grants: &[Grant], caller: Option<&str>, wanted: Permission, ignore_public: bool) -> bool {
    grants.iter().any(|g| {
        g.permission.allows(wanted)
            && match &g.grantee {
                Grantee::User(id) => caller == Some(id.as_str()),
                Grantee::AllUsers => !ignore_public,
                Grantee::AuthenticatedUsers => !ignore_public && caller.is_some(),
                Grantee::LogDelivery => false,
            }
    })
}

/// Whether `object`'s ACL gives the caller `wanted` (its owner always has full control).
pub fn check_object(
    auth: &crate::auth::Authenticated,
    object: &ObjectRecord,
    wanted: Permission,
    ignore_public: bool,
) -> Result<(), S3Error> {
    let caller = (!auth.anonymous).then_some(auth.identity.id.as_str());
    let owns = caller == Some(object.owner.id.as_str());
    let granted = match &object.acl {
        Some(grants) => allows(grants, caller, wanted, ignore_public),
        None => false,
    };
    if owns || granted { Ok(()) } else { Err(S3Error::new(S3ErrorCode::AccessDenied)) }
}

/// The `AccessControlPolicy` document of a resource owned by `owner`.
pub fn render(owner: &Owner, grants: &[Grant], users: &UserDirectory) -> Bytes {
    const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
    let mut w = XmlWriter::new("AccessControlPolicy");
    w.start("Owner").elem("ID", &owner.id).elem("DisplayName", &owner.display_name).end();
    w.start("AccessControlList");
    for g in grants {
        w.start("Grant");
        match &g.grantee {
            Grantee::User(id) => {
                w.start_with("Grantee", &[("xmlns:xsi", XSI), ("xsi:type", "CanonicalUser")]).elem("ID", id);
                let name = if *id == owner.id { Some(owner.display_name.clone()) } else { users.display_name(id) };
                w.opt("DisplayName", name.as_deref());
            }
            group => {
                let uri = match group {
                    Grantee::AllUsers => ALL_USERS,
                    Grantee::AuthenticatedUsers => AUTHENTICATED_USERS,
                    _ => LOG_DELIVERY,
                };
                w.start_with("Grantee", &[("xmlns:xsi", XSI), ("xsi:type", "Group")]).elem("URI", uri);
            }
        }
        w.end().elem("Permission", g.permission.as_str()).end();
    }
    w.end();
    w.finish()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyXml {
    access_control_list: Option<ListXml>,
}

#[derive(Deserialize)]
struct ListXml {
    #[serde(rename = "Grant", default)]
    grants: Vec<GrantXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GrantXml {
    grantee: Option<GranteeXml>,
    permission: Option<String>,
}

#[derive(Deserialize)]
struct GranteeXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "URI")]
    uri: Option<String>,
    #[serde(rename = "EmailAddress")]
    email: Option<String>,
}

/// The grants of an `AccessControlPolicy` body (PutBucketAcl, PutObjectAcl). Each grantee is
/// a user by `ID`, a group by `URI`, or an `EmailAddress` (which resolves to no s3d user).
pub fn parse(doc: &[u8], users: &UserDirectory) -> Result<Vec<Grant>, S3Error> {
    parse_with(doc, &|id| users.display_name(id).is_some())
}

fn parse_with(doc: &[u8], known: &dyn Fn(&str) -> bool) -> Result<Vec<Grant>, S3Error> {
    let limits = ElementLimits { total: 16 + 6 * MAX_GRANTS, repeated: Some(("Grant", MAX_GRANTS)), depth: 5 };
    let malformed = || S3Error::new(S3ErrorCode::MalformedACLError);
    let doc: PolicyXml = from_xml(doc, limits).map_err(|e| malformed().source(e))?;
    let mut grants = Vec::new();
    for g in doc.access_control_list.map(|l| l.grants).unwrap_or_default() {
        let permission = g.permission.as_deref().map(str::trim).and_then(Permission::parse).ok_or_else(malformed)?;
        let grantee = match g.grantee.ok_or_else(malformed)? {
            GranteeXml { id: Some(id), uri: None, email: None } => user(id.trim(), known)?,
            GranteeXml { id: None, uri: Some(uri), email: None } => group(uri.trim())?,
            GranteeXml { id: None, uri: None, email: Some(address) } => return Err(unresolvable(address.trim())),
            _ => return Err(malformed()),
        };
        grants.push(grant(grantee, permission));
    }
    Ok(grants)
}

/// The bucket's ownership controls: `None` once they were deleted (the bucket then behaves
/// as `ObjectWriter`, as on AWS); `BucketOwnerEnforced` until set.
pub async fn ownership(s3: &S3Service, bucket: &str) -> Result<Option<ObjectOwnership>, S3Error> {
    Ok(match s3.meta.get_bucket_setting(bucket, BucketSettingKind::OwnershipControls).await? {
        Some(BucketSetting::OwnershipControls(o)) => o,
        _ => Some(ObjectOwnership::BucketOwnerEnforced),
    })
}

/// Whether the bucket has ACLs disabled (`BucketOwnerEnforced`).
pub async fn disabled(s3: &S3Service, bucket: &str) -> Result<bool, S3Error> {
    Ok(ownership(s3, bucket).await? == Some(ObjectOwnership::BucketOwnerEnforced))
}

/// Whether a request carries ACL grant headers (`x-amz-grant-*`).
pub fn has_grant_headers(h: &HeaderMap) -> bool {
    h.keys().any(|k| k.as_str().starts_with("x-amz-grant-"))
}

/// The bucket's ACL grants (its owner's full control until set).
pub async fn bucket_grants(s3: &S3Service, bucket: &BucketRecord) -> Result<Vec<Grant>, S3Error> {
    Ok(match s3.meta.get_bucket_setting(&bucket.name, BucketSettingKind::Acl).await? {
        Some(BucketSetting::Acl(g)) => g,
        _ => private(&bucket.owner.id),
    })
}

/// Whether the bucket's public access block refuses public ACLs.
pub async fn blocks_public_acls(s3: &S3Service, bucket: &str) -> Result<bool, S3Error> {
    Ok(super::ops::bucket::public_access::of(s3, bucket).await?.is_some_and(|b| b.block_public_acls))
}

/// The ACL a PutBucketAcl or PutObjectAcl sets: from the ACL headers, or else from the
/// `AccessControlPolicy` body (not both). The body is read whole (64 KiB at most).
pub async fn requested(cx: &Ctx<'_>, req: super::S3Request) -> Result<HeaderAcl, S3Error> {
    let from_headers = HeaderAcl::from_headers(&req.headers, &cx.s3.users)?;
    let doc = super::ops::read_document(cx, req, 64 * 1024).await?;
    let blank = doc.iter().all(u8::is_ascii_whitespace);
    match from_headers {
        Some(_) if !blank => Err(S3Error::new(S3ErrorCode::UnexpectedContent)),
        Some(acl) => Ok(acl),
        None if blank => Err(S3Error::new(S3ErrorCode::MissingSecurityHeader).field("MissingHeaderName", "x-amz-acl")),
        None => Ok(HeaderAcl::Grants(parse(&doc, &cx.s3.users)?)),
    }
}

/// Whether `grants` give nobody anything beyond what the bucket's owner has anyway (what a
/// bucket whose ACLs are disabled accepts).
pub fn owner_only(grants: &[Grant], bucket_owner: &str) -> bool {
    grants
        .iter()
        .all(|g| g.grantee == Grantee::User(bucket_owner.to_owned()) && g.permission == Permission::FullControl)
}

/// Who owns an object the request writes, and its ACL (`None`: its owner's full control),
/// from the bucket's object ownership and the request's ACL headers:
/// - `BucketOwnerEnforced`: the bucket's owner; only owner-only canned ACLs are accepted.
/// - `BucketOwnerPreferred`: the bucket's owner if the request says
///   `bucket-owner-full-control`, else the writer.
/// - `ObjectWriter` (and a bucket without the setting): the writer.
///
/// An anonymous writer's objects belong to the bucket's owner. A public ACL is refused where
/// the public access block blocks them.
pub async fn new_object(cx: &Ctx<'_>, h: &HeaderMap) -> Result<(Owner, Option<Vec<Grant>>), S3Error> {
    let bucket = cx.bucket()?;
    let canned = headers::text(h, "x-amz-acl")?;
    let has_grants = has_grant_headers(h);
    let writer_is_owner = !cx.auth.anonymous && cx.auth.identity.id == bucket.owner.id;
    if canned.is_none() && !has_grants && writer_is_owner {
        return Ok((bucket.owner.clone(), None));
    }
    let ownership = ownership(cx.s3, &bucket.name).await?.unwrap_or(ObjectOwnership::ObjectWriter);
    if ownership == ObjectOwnership::BucketOwnerEnforced {
        // Answered as a bucket with ACLs disabled answers, before any grantee is looked at.
        if let Some(c) = canned.as_deref().map(str::trim) {
            if !CANNED.contains(&c) {
                return Err(S3Error::invalid_argument("Invalid canned ACL", "x-amz-acl", c));
            }
            if !OWNER_ONLY.contains(&c) {
                return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported));
            }
        }
        if has_grants {
            return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported));
        }
        return Ok((bucket.owner.clone(), None));
    }
    let requested = HeaderAcl::from_headers(h, &cx.s3.users)?;
    let preferred = ownership == ObjectOwnership::BucketOwnerPreferred
        && requested == Some(HeaderAcl::Canned("bucket-owner-full-control"));
    let owner = if preferred || cx.auth.anonymous { bucket.owner.clone() } else { cx.caller() };
    let Some(requested) = requested else {
        return Ok((owner, None));
    };
    let grants = requested.grants(&owner.id, &bucket.owner.id);
    if is_public(&grants) && blocks_public_acls(cx.s3, &bucket.name).await? {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    Ok((owner, Some(grants)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_expand_as_on_aws() {
        let g = |grantee: Grantee, permission| Grant { grantee, permission };
        let me = || Grantee::User("me".into());
        assert_eq!(canned("private", "me", "b"), vec![g(me(), Permission::FullControl)]);
        assert_eq!(
            canned("public-read-write", "me", "b"),
            vec![
                g(me(), Permission::FullControl),
                g(Grantee::AllUsers, Permission::Read),
                g(Grantee::AllUsers, Permission::Write)
            ]
        );
        assert_eq!(
            canned("bucket-owner-full-control", "me", "b")[1],
            g(Grantee::User("b".into()), Permission::FullControl)
        );
        assert_eq!(canned("bucket-owner-read", "me", "me").len(), 1);
        assert!(is_public(&canned("authenticated-read", "me", "b")));
        assert!(!is_public(&canned("log-delivery-write", "me", "b")));
    }

    #[test]
    fn grant_headers_and_documents() {
        let known = |id: &str| id == "u1" || id == "u2";
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.append(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
            }
            m
        };
        let read = |pairs: &[(&str, &str)]| HeaderAcl::read(&h(pairs), &known);
        let got = read(&[
            ("x-amz-grant-read", r#"id="u1", uri="http://acs.amazonaws.com/groups/global/AllUsers""#),
            ("x-amz-grant-write-acp", "id=u2"),
        ]);
        assert_eq!(
            got.expect("valid"),
            Some(HeaderAcl::Grants(vec![
                grant(Grantee::User("u1".into()), Permission::Read),
                grant(Grantee::AllUsers, Permission::Read),
                grant(Grantee::User("u2".into()), Permission::WriteAcp),
            ]))
        );
        assert_eq!(read(&[("x-amz-acl", "public-read")]).expect("canned"), Some(HeaderAcl::Canned("public-read")));
        assert_eq!(read(&[]).expect("none"), None);
        let code = |pairs: &[(&str, &str)]| read(pairs).expect_err("refused").code;
        assert_eq!(code(&[("x-amz-acl", "public")]), S3ErrorCode::InvalidArgument);
        assert_eq!(code(&[("x-amz-grant-read", "id=u3")]), S3ErrorCode::InvalidArgument);
        assert_eq!(code(&[("x-amz-grant-read", "uri=http://example.com/group")]), S3ErrorCode::InvalidArgument);
        assert_eq!(code(&[("x-amz-grant-read", "emailAddress=a@b.c")]), S3ErrorCode::UnresolvableGrantByEmailAddress);
        assert_eq!(code(&[("x-amz-grant-read", "u1")]), S3ErrorCode::InvalidArgument);
        assert_eq!(code(&[("x-amz-acl", "private"), ("x-amz-grant-read", "id=u1")]), S3ErrorCode::InvalidRequest);

        let doc = r#"<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>u1</ID></Owner>
            <AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">
            <ID>u2</ID><DisplayName>two</DisplayName></Grantee><Permission>READ_ACP</Permission></Grant>
            <Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">
            <URI>http://acs.amazonaws.com/groups/global/AuthenticatedUsers</URI></Grantee><Permission>READ</Permission></Grant>
            </AccessControlList></AccessControlPolicy>"#;
        assert_eq!(
            parse_with(doc.as_bytes(), &known).expect("parses"),
            vec![
                grant(Grantee::User("u2".into()), Permission::ReadAcp),
                grant(Grantee::AuthenticatedUsers, Permission::Read)
            ]
        );
        for bad in [
            doc.replace("READ_ACP", "READ_ALL"),
            doc.replace("<ID>u2</ID>", ""),
            doc.replace("<ID>u2</ID>", "<ID>u2</ID><URI>x</URI>"),
            "<AccessControlPolicy><AccessControlList><Grant>".to_owned(),
        ] {
            assert_eq!(
                parse_with(bad.as_bytes(), &known).expect_err(&bad).code,
                S3ErrorCode::MalformedACLError,
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::s3::xml::fuzzing::config())]

        #[test]
        fn fuzz_acl_documents(doc in crate::s3::xml::fuzzing::arbitrary_document(&[
            "AccessControlPolicy", "Owner", "ID", "DisplayName", "AccessControlList", "Grant", "Grantee", "URI",
            "EmailAddress", "Permission",
        ])) {
            if let Err(e) = parse_with(doc.as_bytes(), &|id| id == "u1") {
                proptest::prop_assert!(e.status().is_client_error(), "{:?}", e.code);
            }
        }

        #[test]
        fn fuzz_grant_headers(value in "[ -~]{0,40}", name in proptest::sample::select(GRANT_HEADERS.iter().map(|(n, _)| *n).collect::<Vec<_>>())) {
            let mut m = HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                m.insert(name, v);
            }
            if let Err(e) = HeaderAcl::read(&m, &|id| id == "u1") {
                proptest::prop_assert!(e.status().is_client_error(), "{:?}", e.code);
            }
        }
    }

    #[test]
    fn grants_allow_their_grantees() {
        let grants = canned("authenticated-read", "me", "b");
        assert!(allows(&grants, Some("me"), Permission::WriteAcp, false), "full control");
        assert!(allows(&grants, Some("other"), Permission::Read, false));
        assert!(!allows(&grants, None, Permission::Read, false), "anonymous is not authenticated");
        assert!(!allows(&grants, Some("other"), Permission::Read, true), "public grants ignored");
        assert!(!allows(&grants, Some("other"), Permission::Write, false));
        let public = canned("public-read", "me", "b");
        assert!(allows(&public, None, Permission::Read, false));
        assert!(!allows(&public, None, Permission::ReadAcp, false));
    }
}

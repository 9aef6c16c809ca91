//! S3 semantics: addressing, routing, authentication and authorization, one module per
//! operation, wire types and errors. Knows neither axum nor RocksDB.

pub mod acl;
pub mod address;
pub mod admin;
pub mod body;
pub mod checksum;
pub mod error;
pub mod headers;
pub mod ops;
pub mod policy;
pub mod post_policy;
pub mod query;
pub mod route;
pub mod types;
pub mod xml;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::auth::{self, Authenticated, CredentialStore};
use crate::clock::Timestamp;
use crate::storage::{BucketRecord, BucketSetting, BucketSettingKind, MetadataStore, Permission, Storage};
pub use body::BodyStream;
pub use error::{S3Error, S3ErrorCode};
use query::Query;
pub use route::OpName;
use xml::XmlWriter;

/// Settings of the S3 layer.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// The region this server is; SigV4 scopes must name it.
    pub region: String,
    /// Base domains for virtual-host addressing: `<bucket>.<domain>`.
    pub domains: Vec<String>,
    /// Accept Signature Version 2.
    pub sigv2: bool,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<(std::net::IpAddr, u8)>,
}

/// The identifiers of one request, shown in headers and error bodies.
#[derive(Clone, Debug)]
pub struct RequestIds {
    /// `x-amz-request-id`
    pub request_id: String,
    /// `x-amz-id-2`
    pub host_id: String,
}

/// An incoming request, with its body still unread.
pub struct S3Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: BodyStream,
    pub ids: RequestIds,
    /// The client's address, when known.
    pub peer: Option<std::net::IpAddr>,
    /// Whether the request came over TLS.
    pub secure: bool,
}

pub enum ResponseBody {
    Empty,
    Full(Bytes),
    Stream(BodyStream),
}

pub struct S3Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ResponseBody,
    /// The error this response reports, if it is one.
    pub error_code: Option<S3ErrorCode>,
    /// What the request was, for metrics: the S3 operation, or `Health`, `Admin`, `Metrics`;
    /// `Unknown` when it could not be classified.
    pub operation: &'static str,
}

impl S3Response {
    pub fn new(status: StatusCode) -> Self {
        S3Response {
            status,
            headers: HeaderMap::new(),
            body: ResponseBody::Empty,
            error_code: None,
            operation: "Unknown",
        }
    }

    /// 200 with an XML document.
    pub fn xml(doc: Bytes) -> Self {
        let mut r = S3Response::new(StatusCode::OK);
        r.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        r.body = ResponseBody::Full(doc);
        r
    }

    /// Adds a header; values that cannot be sent in HTTP (control characters) are dropped.
    pub fn header(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        if let Ok(v) = HeaderValue::from_bytes(value.as_ref().as_bytes()) {
            self.headers.append(HeaderName::from_static(name), v);
        }
        self
    }
}

/// The S3 service: stores, credentials and settings, shared by every request.
pub struct S3Service {
    pub config: S3Config,
    pub credentials: Arc<dyn CredentialStore>,
    /// The users behind `credentials`, for the admin endpoint.
    pub users: Arc<crate::directory::UserDirectory>,
    /// Reads, and changes that write no blob.
    pub meta: Arc<dyn MetadataStore>,
    /// Blob writes and reads; it alone deletes blobs.
    pub storage: Arc<Storage>,
}

/// What an operation gets besides the request: who is calling, what is addressed, and the
/// bucket record when the operation works on an existing bucket.
pub struct Ctx<'a> {
    pub s3: &'a S3Service,
    pub auth: &'a Authenticated,
    pub query: &'a Query,
    pub bucket_name: Option<&'a str>,
    pub key: Option<&'a str>,
    pub bucket: Option<BucketRecord>,
    /// The client's address, when known, and whether it came over TLS.
    pub peer: Option<std::net::IpAddr>,
    pub secure: bool,
    /// Set when the caller is let in only if the addressed object's ACL grants this
    /// permission (with whether public grants are ignored): the operation checks it once it
    /// has the object ([`Ctx::check_object_grant`]).
    pub object_grant: Option<(Permission, bool)>,
}

/// Whether a caller is let in, and on what terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Granted,
    /// Only if the object's ACL grants this (or the caller owns the object); public grants
    /// count unless the flag says they are ignored.
    IfObjectGrants(Permission, bool),
}

/// Who may do what in one bucket: its owner, or whoever its policy allows; an explicit Deny
/// in the policy refuses even the owner, except the policy operations themselves (so that the
/// owner can always repair the policy), which only the owner may use.
pub struct BucketAccess<'a> {
    auth: &'a Authenticated,
    record: &'a BucketRecord,
    policy: Option<policy::Policy>,
    /// A public policy grants nothing to anonymous callers (`RestrictPublicBuckets`).
    restricted: bool,
    /// The bucket's ACL, when ACLs count for this caller (they are enabled in the bucket,
    /// and the caller is not its owner), and whether its public grants are ignored.
    acl: Option<(Vec<crate::storage::Grant>, bool)>,
}

impl BucketAccess<'_> {
    pub fn is_owner(&self) -> bool {
        !self.auth.anonymous && self.record.owner.id == self.auth.identity.id
    }

    pub fn has_policy(&self) -> bool {
        self.policy.is_some()
    }

    /// A write that sets an ACL granting more than the bucket owner's own access needs
    /// `s3:PutObjectAcl` too (so a policy can forbid it). A writer the bucket's ACL admits
    /// owns what it writes, so it may give it an ACL.
    pub fn check_acl_headers(&self, key: Option<&str>, facts: &RequestFacts<'_>) -> Result<(), S3Error> {
        let canned = facts.headers.get("x-amz-acl").and_then(|v| v.to_str().ok()).map(str::trim);
        let grants = acl::has_grant_headers(facts.headers);
        // Where ACLs are disabled the operation refuses such ACLs itself, as AWS does.
        let acls_disabled = self.acl.is_none() && !self.is_owner();
        if acls_disabled || (!grants && canned.is_none_or(|c| acl::OWNER_ONLY.contains(&c))) {
            return Ok(());
        }
        self.judge(OpName::PutObjectAcl, key, facts).map(drop)
    }

    /// Whether ACLs may admit this caller (the bucket enables them).
    pub fn acls_count(&self) -> bool {
        self.acl.is_some()
    }

    /// [`BucketAccess::judge`], for operations that do not look at an object's ACL.
    pub fn check(&self, op: OpName, key: Option<&str>, facts: &RequestFacts<'_>) -> Result<(), S3Error> {
        match self.judge(op, key, facts)? {
            Admission::Granted => Ok(()),
            Admission::IfObjectGrants(..) => Err(S3Error::new(S3ErrorCode::AccessDenied)),
        }
    }

    /// Whether the caller may do `op` (on `key`): the policy's explicit Deny refuses, then
    /// its Allow or the bucket's ownership admits, then the bucket's ACL; an object
    /// operation may be left to the object's ACL.
    pub fn judge(&self, op: OpName, key: Option<&str>, facts: &RequestFacts<'_>) -> Result<Admission, S3Error> {
        let owner = self.is_owner();
        let denied = || S3Error::new(S3ErrorCode::AccessDenied);
        let policy_op = matches!(
            op,
            OpName::PutBucketPolicy
                | OpName::GetBucketPolicy
                | OpName::DeleteBucketPolicy
                | OpName::PutPublicAccessBlock
                | OpName::DeletePublicAccessBlock
        );
        let (Some(doc), Some((action, on_object))) = (&self.policy, policy::action(op, facts.version.is_some())) else {
            return if owner { Ok(Admission::Granted) } else { self.by_acl(op) };
        };
        let name = &self.record.name;
        let resource = match (on_object, key) {
            (true, Some(k)) => format!("arn:aws:s3:::{name}/{k}"),
            _ => format!("arn:aws:s3:::{name}"),
        };
        let auth = self.auth;
        let user = (!auth.anonymous).then_some((auth.identity.id.as_str(), auth.identity.display_name.as_str()));
        let keys = condition_keys(op, auth, user, facts);
        let cx = policy::RequestContext { user, action, resource: &resource, keys: &keys };
        let restricted = self.restricted && auth.anonymous;
        match doc.evaluate(&cx) {
            policy::Decision::Deny if owner && policy_op => Ok(Admission::Granted),
            policy::Decision::Deny => Err(denied()),
            // Only the bucket's owner manages its policy, whatever the policy says.
            policy::Decision::Allow if policy_op && !owner => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
            policy::Decision::Allow if restricted => self.by_acl(op),
            policy::Decision::Allow => Ok(Admission::Granted),
            policy::Decision::Silent if owner => Ok(Admission::Granted),
            policy::Decision::Silent => self.by_acl(op),
        }
    }

    /// What the bucket's ACL lets a caller who is not its owner do: bucket operations by the
    /// bucket's grants, object reads and ACL operations by the object's (judged later).
    fn by_acl(&self, op: OpName) -> Result<Admission, S3Error> {
        use crate::storage::Permission as P;
        let denied = Err(S3Error::new(S3ErrorCode::AccessDenied));
        let Some((grants, ignore_public)) = &self.acl else {
            return denied;
        };
        let on_bucket = match op {
            OpName::ListObjects
            | OpName::ListObjectsV2
            | OpName::ListObjectVersions
            | OpName::ListMultipartUploads
            | OpName::HeadBucket => P::Read,
            OpName::PutObject
            | OpName::CopyObject
            | OpName::DeleteObject
            | OpName::DeleteObjects
            | OpName::CreateMultipartUpload
            | OpName::UploadPart
            | OpName::UploadPartCopy
            | OpName::CompleteMultipartUpload
            | OpName::AbortMultipartUpload
            | OpName::ListParts => P::Write,
            OpName::GetBucketAcl => P::ReadAcp,
            OpName::PutBucketAcl => P::WriteAcp,
            OpName::GetObject | OpName::HeadObject => return Ok(Admission::IfObjectGrants(P::Read, *ignore_public)),
            OpName::GetObjectAcl => return Ok(Admission::IfObjectGrants(P::ReadAcp, *ignore_public)),
            OpName::PutObjectAcl => return Ok(Admission::IfObjectGrants(P::WriteAcp, *ignore_public)),
            _ => return denied,
        };
        let caller = (!self.auth.anonymous).then_some(self.auth.identity.id.as_str());
        if acl::allows(grants, caller, on_bucket, *ignore_public) { Ok(Admission::Granted) } else { denied }
    }
}

/// The condition keys of a request, each only for the operations S3 gives it to.
fn condition_keys(
    op: OpName,
    auth: &Authenticated,
    user: Option<(&str, &str)>,
    facts: &RequestFacts<'_>,
) -> std::collections::HashMap<String, Vec<String>> {
    let mut keys = policy::base_keys(user, facts.peer, facts.secure);
    let mut put = |k: &str, v: Vec<String>| {
        keys.insert(k.to_owned(), v);
    };
    if matches!(op, OpName::ListObjects | OpName::ListObjectsV2 | OpName::ListObjectVersions) {
        for (name, param) in [("s3:prefix", "prefix"), ("s3:delimiter", "delimiter"), ("s3:max-keys", "max-keys")] {
            if let Some(v) = facts.query.get(param) {
                put(name, vec![v.to_owned()]);
            }
        }
    }
    if let Some(v) = facts.version {
        put("s3:versionid", vec![v.to_owned()]);
    }
    let writes = matches!(op, OpName::PutObject | OpName::CopyObject | OpName::CreateMultipartUpload);
    if writes && let Some(acl) = facts.headers.get("x-amz-acl").and_then(|v| v.to_str().ok()) {
        put("s3:x-amz-acl", vec![acl.trim().to_owned()]);
    }
    let tags = match facts.tags {
        Some(t) => Some(t.to_vec()),
        // A write's tags (also for the PutObjectTagging permission it needs) are its header's.
        None if writes || op == OpName::PutObjectTagging => headers::tagging(facts.headers).ok(),
        None => None,
    };
    if let Some(tags) = tags.filter(|t| !t.is_empty()) {
        put("s3:requestobjecttagkeys", tags.iter().map(|(k, _)| k.clone()).collect());
        for (k, v) in tags {
            put(&format!("s3:requestobjecttag/{}", k.to_ascii_lowercase()), vec![v]);
        }
    }
    if !auth.anonymous {
        let kind = match (auth.form, auth.presigned) {
            (true, _) => "POST",
            (false, true) => "REST-QUERY-STRING",
            (false, false) => "REST-HEADER",
        };
        put("s3:authtype", vec![kind.to_owned()]);
        put("s3:signatureversion", vec![if auth.signature_v2 { "AWS" } else { "AWS4-HMAC-SHA256" }.to_owned()]);
    }
    keys
}

/// What a policy's conditions may look at besides the caller.
pub struct RequestFacts<'a> {
    pub query: &'a Query,
    pub headers: &'a http::HeaderMap,
    pub peer: Option<std::net::IpAddr>,
    pub secure: bool,
    /// The version the request names (`versionId`, or a DeleteObjects entry's), if any.
    pub version: Option<&'a str>,
    /// The tags a request sets in its body (PutObjectTagging), when known.
    pub tags: Option<&'a [(String, String)]>,
}

impl Ctx<'_> {
    pub fn bucket_name(&self) -> Result<&str, S3Error> {
        self.bucket_name.ok_or_else(|| S3Error::internal("operation routed without a bucket"))
    }

    pub fn bucket(&self) -> Result<&BucketRecord, S3Error> {
        self.bucket.as_ref().ok_or_else(|| S3Error::internal("operation routed without a bucket record"))
    }

    pub fn key(&self) -> Result<&str, S3Error> {
        self.key.ok_or_else(|| S3Error::internal("operation routed without a key"))
    }

    /// The caller as a stored owner.
    /// Who owns what this request creates: in a bucket, its owner (AWS's default object
    /// ownership, BucketOwnerEnforced, whoever a policy let write); else the caller.
    pub fn owner(&self) -> crate::storage::Owner {
        match &self.bucket {
            Some(b) => b.owner.clone(),
            None => self.caller(),
        }
    }

    /// What a policy may look at in this request, with `headers` (the request's): its query,
    /// its `versionId`, where it came from. Callers adjust what differs (version, tags).
    pub fn facts<'h>(&'h self, headers: &'h HeaderMap) -> RequestFacts<'h> {
        RequestFacts {
            query: self.query,
            headers,
            peer: self.peer,
            secure: self.secure,
            version: self.query.get("versionId"),
            tags: None,
        }
    }

    /// Whether the caller may do to `object` what it was let in for: always, unless it was
    /// let in only if the object's ACL grants it, which its owner always may.
    pub fn check_object_grant(&self, object: &crate::storage::ObjectRecord) -> Result<(), S3Error> {
        match self.object_grant {
            None => Ok(()),
            Some((wanted, ignore_public)) => acl::check_object(self.auth, object, wanted, ignore_public),
        }
    }

    /// The caller, as an upload's initiator (an anonymous caller has an empty id).
    pub fn caller(&self) -> crate::storage::Owner {
        crate::storage::Owner {
            id: self.auth.identity.id.clone(),
            display_name: self.auth.identity.display_name.clone(),
        }
    }
}

impl S3Service {
    /// The bucket a Host header addresses in virtual-host style, if any.
    pub fn virtual_host_bucket(&self, host: &str) -> Option<String> {
        address::virtual_host_bucket(host, &self.config.domains)
    }

    /// Answers one request. Never fails: errors become S3 error responses.
    pub async fn handle(&self, req: S3Request) -> S3Response {
        let head = req.method == Method::HEAD;
        let resource = req.uri.path().to_owned();
        let ids = req.ids.clone();
        let origin = req.headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let method = req.method.clone();
        let mut op = None;
        let mut bucket = None;
        let result = self.dispatch(req, &mut op, &mut bucket).await;
        let mut resp = answer(result, &resource, &ids, head);
        // A cross-origin request gets its bucket's CORS headers, answer or error alike (a
        // preflight has set its own).
        if let (Some(origin), Some(bucket)) = (origin, bucket)
            && op != Some(OpName::OptionsObject)
        {
            resp = ops::bucket::cors::decorate(self, &origin, method.as_str(), &bucket, resp).await;
        }
        resp.operation = op.map_or("Unknown", OpName::as_str);
        resp
    }

    /// Answers a request to the admin endpoint (`/-/admin/…`).
    pub async fn handle_admin(&self, req: S3Request) -> S3Response {
        let resource = req.uri.path().to_owned();
        let ids = req.ids.clone();
        let mut resp = answer(admin::call(self, req).await, &resource, &ids, false);
        resp.operation = "Admin";
        resp
    }

    /// The Host (or absolute-form authority) a request was sent to.
    pub fn authority(req: &S3Request) -> String {
        req.headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or("")
            .to_owned()
    }

    /// Whether the caller may do `op` (on `key`) in the bucket `record`: see [`BucketAccess`].
    pub async fn authorize(
        &self,
        auth: &auth::Authenticated,
        record: &BucketRecord,
        op: OpName,
        key: Option<&str>,
        facts: &RequestFacts<'_>,
    ) -> Result<(), S3Error> {
        self.bucket_access(auth, record).await?.check(op, key, facts)
    }

    /// The caller's standing in the bucket `record` (its policy read once), to check one
    /// operation or many (each key of a DeleteObjects).
    pub async fn bucket_access<'a>(
        &self,
        auth: &'a auth::Authenticated,
        record: &'a BucketRecord,
    ) -> Result<BucketAccess<'a>, S3Error> {
        let policy = match self.meta.get_bucket_setting(&record.name, BucketSettingKind::Policy).await? {
            Some(BucketSetting::Policy(text)) => match policy::Policy::parse(text.as_bytes(), &record.name) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(bucket = %record.name, error = %e, "a stored bucket policy does not parse; ignored");
                    None
                }
            },
            _ => None,
        };
        let restricted = match &policy {
            Some(p) if p.is_public() => {
                ops::bucket::public_access::of(self, &record.name).await?.is_some_and(|b| b.restrict_public_buckets)
            }
            _ => false,
        };
        // ACLs matter only to callers other than the bucket's owner, and only in buckets that
        // enable them; the owner's requests read nothing more.
        let is_owner = !auth.anonymous && record.owner.id == auth.identity.id;
        let acl = if is_owner || acl::disabled(self, &record.name).await? {
            None
        } else {
            let block = ops::bucket::public_access::of(self, &record.name).await?;
            Some((acl::bucket_grants(self, record).await?, block.is_some_and(|b| b.ignore_public_acls)))
        };
        Ok(BucketAccess { auth, record, policy, restricted, acl })
    }

    /// Verifies the request's signature against the user directory.
    /// `host_bucket` is the bucket the host names (virtual-host style), if any.
    fn authenticate(
        &self,
        req: &S3Request,
        authority: &str,
        host_bucket: Option<&str>,
    ) -> Result<auth::Authenticated, S3Error> {
        let parts = auth::RequestParts {
            method: req.method.as_str(),
            path: req.uri.path(),
            query: req.uri.query().unwrap_or(""),
            headers: &req.headers,
            authority,
            host_bucket,
        };
        let now = Timestamp::now();
        let sigv2 = self.config.sigv2;
        let authenticated = auth::authenticate(&parts, &*self.credentials, &self.config.region, now, sigv2)?;
        tracing::Span::current().record("user", authenticated.identity.id.as_str());
        Ok(authenticated)
    }

    /// The addressed bucket's record, or `NoSuchBucket`.
    async fn addressed_bucket(&self, addr: &address::Address) -> Result<BucketRecord, S3Error> {
        let name = addr.bucket.as_deref().ok_or_else(|| S3Error::internal("bucket route without bucket"))?;
        self.meta
            .get_bucket(name)
            .await?
            .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchBucket).field("BucketName", name))
    }

    /// Answers one request; `classified` and `addressed` learn its operation and bucket as
    /// soon as they are known.
    async fn dispatch(
        &self,
        req: S3Request,
        classified: &mut Option<OpName>,
        addressed: &mut Option<String>,
    ) -> Result<S3Response, S3Error> {
        headers::check_header_section(&req.headers)?;
        let mut req = req;
        let authorization = req.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if self.config.sigv2
            && matches!(auth::sigv2::form(authorization, req.uri.query().unwrap_or("")), Some(auth::sigv2::Form::Query))
        {
            let query = req.uri.query().unwrap_or("").to_owned();
            auth::sigv2::promote_query_headers(&query, &mut req.headers);
        }
        let authority = Self::authority(&req);
        let addr = address::resolve(Some(&authority), req.uri.path(), &self.config.domains)?;
        addressed.clone_from(&addr.bucket);
        let query = Query::parse(req.uri.query().unwrap_or(""));
        let op = route::classify(&req.method, &addr, &query, &req.headers)?;
        tracing::Span::current().record("op", op.as_str());
        *classified = Some(op);
        if op == OpName::OptionsObject {
            let bucket =
                addr.bucket.as_deref().ok_or_else(|| S3Error::internal("preflight routed without a bucket"))?;
            return ops::bucket::cors::preflight(self, &req.headers, bucket, addr.key.is_some()).await;
        }
        let host_bucket = addr.bucket.as_deref().filter(|_| addr.virtual_host);
        // Who is calling from where: the peer, or the client a trusted proxy names.
        let forwarded: Vec<&str> =
            req.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
        let client = policy::client_address(req.peer, forwarded.as_deref(), &self.config.trusted_proxies);
        let authenticated = self.authenticate(&req, &authority, host_bucket)?;
        if authenticated.signature_v2 {
            // An operation picked by a parameter Signature Version 2 leaves unsigned could
            // otherwise be swapped for another under the same signature.
            let needed = route::ROUTES.iter().filter(|r| r.op == op).flat_map(|r| r.query.iter());
            if let Some(name) =
                needed.map(|q| q.split('=').next().unwrap_or(q)).find(|n| !auth::sigv2::signs_parameter(n))
            {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!("Signature Version 2 does not sign the {name} parameter; please use AWS4-HMAC-SHA256."),
                ));
            }
        }

        let mut object_grant = None;
        let bucket = match ops::access(op) {
            ops::Access::NotImplemented => return Err(ops::not_implemented(op)),
            ops::Access::AnyUser if authenticated.anonymous => return Err(S3Error::new(S3ErrorCode::AccessDenied)),
            ops::Access::AnyUser => None,
            ops::Access::Form => Some(self.addressed_bucket(&addr).await?),
            ops::Access::BucketOwner => {
                let record = self.addressed_bucket(&addr).await?;
                let facts = RequestFacts {
                    query: &query,
                    headers: &req.headers,
                    peer: client,
                    secure: req.secure,
                    version: query.get("versionId"),
                    tags: None,
                };
                // DeleteObjects is checked key by key, and PutObjectTagging with the tags of its
                // body, by the operations themselves.
                let access = self.bucket_access(&authenticated, &record).await?;
                if matches!(op, OpName::DeleteObjects | OpName::PutObjectTagging) {
                    // Checked by the operation (per key, or with the body's tags); a caller no
                    // policy could let in is refused before the body is read.
                    if !access.is_owner() && !access.has_policy() && !access.acls_count() {
                        return Err(S3Error::new(S3ErrorCode::AccessDenied));
                    }
                } else {
                    if let Admission::IfObjectGrants(p, ignore_public) =
                        access.judge(op, addr.key.as_deref(), &facts)?
                    {
                        object_grant = Some((p, ignore_public));
                    }
                    // What some operations also do needs its own permission.
                    let also = match op {
                        OpName::PutObject | OpName::CopyObject | OpName::CreateMultipartUpload
                            if req.headers.contains_key("x-amz-tagging") =>
                        {
                            Some(OpName::PutObjectTagging)
                        }
                        OpName::GetObjectAttributes => Some(OpName::GetObject),
                        _ => None,
                    };
                    if let Some(also) = also {
                        access.check(also, addr.key.as_deref(), &facts)?;
                    }
                    if matches!(op, OpName::PutObject | OpName::CopyObject | OpName::CreateMultipartUpload) {
                        access.check_acl_headers(addr.key.as_deref(), &facts)?;
                    }
                }
                // Only after the access check, so that no one else can probe who owns it.
                if let Some(expected) = headers::text(&req.headers, "x-amz-expected-bucket-owner")?
                    && expected != record.owner.id
                {
                    return Err(S3Error::new(S3ErrorCode::AccessDenied));
                }
                Some(record)
            }
        };
        let cx = Ctx {
            s3: self,
            auth: &authenticated,
            query: &query,
            bucket_name: addr.bucket.as_deref(),
            key: addr.key.as_deref(),
            bucket,
            peer: client,
            secure: req.secure,
            object_grant,
        };
        ops::call(op, &cx, req).await
    }
}

/// The response, or the error's, logged by severity.
fn answer(result: Result<S3Response, S3Error>, resource: &str, ids: &RequestIds, head: bool) -> S3Response {
    match result {
        Ok(resp) => resp,
        Err(err) => {
            if err.status().is_server_error() {
                tracing::error!(code = %err.code, error = %err, "request failed");
            } else {
                tracing::info!(code = %err.code, message = %err.message, "request rejected");
            }
            error_response(&err, resource, ids, head)
        }
    }
}

/// `<Error><Code/><Message/><Resource/>…<RequestId/><HostId/></Error>`; HEAD responses carry
/// the status and headers only.
pub fn error_response(err: &S3Error, resource: &str, ids: &RequestIds, head: bool) -> S3Response {
    let mut resp = S3Response::new(err.status());
    resp.error_code = Some(err.code);
    for (name, value) in &err.headers {
        resp = resp.header(name, value);
    }
    if head {
        return resp;
    }
    let mut resp = resp;
    resp.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    resp.body = ResponseBody::Full(error_document(err, resource, ids));
    resp
}

/// The `<Error>` document of an error.
pub fn error_document(err: &S3Error, resource: &str, ids: &RequestIds) -> Bytes {
    let mut w = XmlWriter::with_root("Error", None);
    w.elem("Code", err.code.as_str()).elem("Message", &err.message).elem("Resource", resource);
    for (name, value) in &err.fields {
        w.elem(name, value);
    }
    w.elem("RequestId", &ids.request_id).elem("HostId", &ids.host_id);
    w.finish()
}

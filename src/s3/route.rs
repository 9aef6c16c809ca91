//! Classifies a request into one S3 operation by method, addressing level, query
//! subresources and headers. [`ROUTES`] is ordered most specific first; a test proves no
//! route is shadowed by an earlier one.

use http::{HeaderMap, Method};

use super::address::Address;
use super::error::{S3Error, S3ErrorCode};
use super::query::Query;

macro_rules! op_names {
    ($( $name:ident ),* $(,)?) => {
        /// Every S3 operation s3d can recognise, named exactly as in the AWS API reference.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum OpName { $( $name, )* }

        impl OpName {
            pub fn as_str(self) -> &'static str {
                match self { $( OpName::$name => stringify!($name), )* }
            }
        }
    };
}

op_names! {
    AbortMultipartUpload, CompleteMultipartUpload, CopyObject, CreateBucket,
    CreateMultipartUpload, DeleteBucket, DeleteBucketAnalyticsConfiguration, DeleteBucketCors,
    DeleteBucketEncryption, DeleteBucketIntelligentTieringConfiguration,
    DeleteBucketInventoryConfiguration, DeleteBucketLifecycle, DeleteBucketMetricsConfiguration,
    DeleteBucketOwnershipControls, DeleteBucketPolicy, DeleteBucketReplication,
    DeleteBucketTagging, DeleteBucketWebsite, DeleteObject, DeleteObjectTagging, DeleteObjects,
    DeletePublicAccessBlock, GetBucketAccelerateConfiguration, GetBucketAcl,
    GetBucketAnalyticsConfiguration, GetBucketCors, GetBucketEncryption,
    GetBucketIntelligentTieringConfiguration, GetBucketInventoryConfiguration,
    GetBucketLifecycleConfiguration, GetBucketLocation, GetBucketLogging,
    GetBucketMetricsConfiguration, GetBucketNotificationConfiguration,
    GetBucketOwnershipControls, GetBucketPolicy, GetBucketPolicyStatus, GetBucketReplication,
    GetBucketRequestPayment, GetBucketTagging, GetBucketVersioning, GetBucketWebsite, GetObject,
    GetObjectAcl, GetObjectAttributes, GetObjectLegalHold, GetObjectLockConfiguration,
    GetObjectRetention, GetObjectTagging, GetObjectTorrent, GetPublicAccessBlock, HeadBucket,
    HeadObject, ListBuckets, ListMultipartUploads, ListObjectVersions, ListObjects,
    ListObjectsV2, ListParts, OptionsObject, PostObject, PutBucketAccelerateConfiguration, PutBucketAcl,
    PutBucketAnalyticsConfiguration, PutBucketCors, PutBucketEncryption,
    PutBucketIntelligentTieringConfiguration, PutBucketInventoryConfiguration,
    PutBucketLifecycleConfiguration, PutBucketLogging, PutBucketMetricsConfiguration,
    PutBucketNotificationConfiguration, PutBucketOwnershipControls, PutBucketPolicy,
    PutBucketReplication, PutBucketRequestPayment, PutBucketTagging, PutBucketVersioning,
    PutBucketWebsite, PutObject, PutObjectAcl, PutObjectLegalHold, PutObjectLockConfiguration,
    PutObjectRetention, PutObjectTagging, PutPublicAccessBlock, RestoreObject,
    SelectObjectContent, UploadPart, UploadPartCopy,
}

impl std::fmt::Display for OpName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Service,
    Bucket,
    Object,
}

impl Level {
    pub fn of(addr: &Address) -> Level {
        match (&addr.bucket, &addr.key) {
            (None, _) => Level::Service,
            (Some(_), None) => Level::Bucket,
            (Some(_), Some(_)) => Level::Object,
        }
    }
}

/// One routing rule: every listed query parameter (`name` present, or `name=value`) and the
/// header, if any, must be on the request.
#[derive(Debug)]
pub struct Route {
    pub op: OpName,
    pub method: Method,
    pub level: Level,
    pub query: &'static [&'static str],
    pub header: Option<&'static str>,
}

const fn r(op: OpName, method: Method, level: Level, query: &'static [&'static str]) -> Route {
    Route { op, method, level, query, header: None }
}

const fn rh(op: OpName, method: Method, level: Level, query: &'static [&'static str], header: &'static str) -> Route {
    Route { op, method, level, query, header: Some(header) }
}

use Level::{Bucket as B, Object as O, Service as S};
use OpName::*;

/// Most specific first: a route must come before any route whose conditions are a subset.
pub static ROUTES: &[Route] = &[
    r(ListBuckets, Method::GET, S, &[]),
    // CORS preflights, of objects and of buckets.
    r(OptionsObject, Method::OPTIONS, O, &[]),
    r(OptionsObject, Method::OPTIONS, B, &[]),
    // Bucket subresources.
    r(PutBucketAccelerateConfiguration, Method::PUT, B, &["accelerate"]),
    r(PutBucketAcl, Method::PUT, B, &["acl"]),
    r(PutBucketAnalyticsConfiguration, Method::PUT, B, &["analytics"]),
    r(PutBucketCors, Method::PUT, B, &["cors"]),
    r(PutBucketEncryption, Method::PUT, B, &["encryption"]),
    r(PutBucketIntelligentTieringConfiguration, Method::PUT, B, &["intelligent-tiering"]),
    r(PutBucketInventoryConfiguration, Method::PUT, B, &["inventory"]),
    r(PutBucketLifecycleConfiguration, Method::PUT, B, &["lifecycle"]),
    r(PutBucketLogging, Method::PUT, B, &["logging"]),
    r(PutBucketMetricsConfiguration, Method::PUT, B, &["metrics"]),
    r(PutBucketNotificationConfiguration, Method::PUT, B, &["notification"]),
    r(PutObjectLockConfiguration, Method::PUT, B, &["object-lock"]),
    r(PutBucketOwnershipControls, Method::PUT, B, &["ownershipControls"]),
    r(PutBucketPolicy, Method::PUT, B, &["policy"]),
    r(PutPublicAccessBlock, Method::PUT, B, &["publicAccessBlock"]),
    r(PutBucketReplication, Method::PUT, B, &["replication"]),
    r(PutBucketRequestPayment, Method::PUT, B, &["requestPayment"]),
    r(PutBucketTagging, Method::PUT, B, &["tagging"]),
    r(PutBucketVersioning, Method::PUT, B, &["versioning"]),
    r(PutBucketWebsite, Method::PUT, B, &["website"]),
    r(CreateBucket, Method::PUT, B, &[]),
    r(GetBucketAccelerateConfiguration, Method::GET, B, &["accelerate"]),
    r(GetBucketAcl, Method::GET, B, &["acl"]),
    r(GetBucketAnalyticsConfiguration, Method::GET, B, &["analytics"]),
    r(GetBucketCors, Method::GET, B, &["cors"]),
    r(GetBucketEncryption, Method::GET, B, &["encryption"]),
    r(GetBucketIntelligentTieringConfiguration, Method::GET, B, &["intelligent-tiering"]),
    r(GetBucketInventoryConfiguration, Method::GET, B, &["inventory"]),
    r(GetBucketLifecycleConfiguration, Method::GET, B, &["lifecycle"]),
    r(GetBucketLocation, Method::GET, B, &["location"]),
    r(GetBucketLogging, Method::GET, B, &["logging"]),
    r(GetBucketMetricsConfiguration, Method::GET, B, &["metrics"]),
    r(GetBucketNotificationConfiguration, Method::GET, B, &["notification"]),
    r(GetObjectLockConfiguration, Method::GET, B, &["object-lock"]),
    r(GetBucketOwnershipControls, Method::GET, B, &["ownershipControls"]),
    r(GetBucketPolicy, Method::GET, B, &["policy"]),
    r(GetBucketPolicyStatus, Method::GET, B, &["policyStatus"]),
    r(GetPublicAccessBlock, Method::GET, B, &["publicAccessBlock"]),
    r(GetBucketReplication, Method::GET, B, &["replication"]),
    r(GetBucketRequestPayment, Method::GET, B, &["requestPayment"]),
    r(GetBucketTagging, Method::GET, B, &["tagging"]),
    r(GetBucketVersioning, Method::GET, B, &["versioning"]),
    r(GetBucketWebsite, Method::GET, B, &["website"]),
    r(ListMultipartUploads, Method::GET, B, &["uploads"]),
    r(ListObjectVersions, Method::GET, B, &["versions"]),
    r(ListObjectsV2, Method::GET, B, &["list-type=2"]),
    r(ListObjects, Method::GET, B, &[]),
    r(HeadBucket, Method::HEAD, B, &[]),
    r(DeleteBucketAnalyticsConfiguration, Method::DELETE, B, &["analytics"]),
    r(DeleteBucketCors, Method::DELETE, B, &["cors"]),
    r(DeleteBucketEncryption, Method::DELETE, B, &["encryption"]),
    r(DeleteBucketIntelligentTieringConfiguration, Method::DELETE, B, &["intelligent-tiering"]),
    r(DeleteBucketInventoryConfiguration, Method::DELETE, B, &["inventory"]),
    r(DeleteBucketLifecycle, Method::DELETE, B, &["lifecycle"]),
    r(DeleteBucketMetricsConfiguration, Method::DELETE, B, &["metrics"]),
    r(DeleteBucketOwnershipControls, Method::DELETE, B, &["ownershipControls"]),
    r(DeleteBucketPolicy, Method::DELETE, B, &["policy"]),
    r(DeletePublicAccessBlock, Method::DELETE, B, &["publicAccessBlock"]),
    r(DeleteBucketReplication, Method::DELETE, B, &["replication"]),
    r(DeleteBucketTagging, Method::DELETE, B, &["tagging"]),
    r(DeleteBucketWebsite, Method::DELETE, B, &["website"]),
    r(DeleteBucket, Method::DELETE, B, &[]),
    r(DeleteObjects, Method::POST, B, &["delete"]),
    r(PostObject, Method::POST, B, &[]),
    // Objects.
    rh(UploadPartCopy, Method::PUT, O, &["partNumber", "uploadId"], "x-amz-copy-source"),
    r(UploadPart, Method::PUT, O, &["partNumber", "uploadId"]),
    r(PutObjectAcl, Method::PUT, O, &["acl"]),
    r(PutObjectLegalHold, Method::PUT, O, &["legal-hold"]),
    r(PutObjectRetention, Method::PUT, O, &["retention"]),
    r(PutObjectTagging, Method::PUT, O, &["tagging"]),
    rh(CopyObject, Method::PUT, O, &[], "x-amz-copy-source"),
    r(PutObject, Method::PUT, O, &[]),
    r(ListParts, Method::GET, O, &["uploadId"]),
    r(GetObjectAcl, Method::GET, O, &["acl"]),
    r(GetObjectAttributes, Method::GET, O, &["attributes"]),
    r(GetObjectLegalHold, Method::GET, O, &["legal-hold"]),
    r(GetObjectRetention, Method::GET, O, &["retention"]),
    r(GetObjectTagging, Method::GET, O, &["tagging"]),
    r(GetObjectTorrent, Method::GET, O, &["torrent"]),
    r(GetObject, Method::GET, O, &[]),
    r(HeadObject, Method::HEAD, O, &[]),
    r(AbortMultipartUpload, Method::DELETE, O, &["uploadId"]),
    r(DeleteObjectTagging, Method::DELETE, O, &["tagging"]),
    r(DeleteObject, Method::DELETE, O, &[]),
    r(CreateMultipartUpload, Method::POST, O, &["uploads"]),
    r(CompleteMultipartUpload, Method::POST, O, &["uploadId"]),
    r(RestoreObject, Method::POST, O, &["restore"]),
    r(SelectObjectContent, Method::POST, O, &["select"]),
];

fn matches(route: &Route, method: &Method, level: Level, query: &Query, headers: &HeaderMap) -> bool {
    route.method == *method
        && route.level == level
        && route.query.iter().all(|cond| match cond.split_once('=') {
            Some((name, value)) => query.get(name) == Some(value),
            None => query.has(cond),
        })
        && route.header.is_none_or(|h| headers.contains_key(h))
}

/// The operation a request asks for; `MethodNotAllowed` when none fits.
pub fn classify(method: &Method, addr: &Address, query: &Query, headers: &HeaderMap) -> Result<OpName, S3Error> {
    let level = Level::of(addr);
    ROUTES.iter().find(|r| matches(r, method, level, query, headers)).map(|r| r.op).ok_or_else(|| {
        S3Error::new(S3ErrorCode::MethodNotAllowed).field("Method", method.as_str()).field(
            "ResourceType",
            match level {
                Level::Service => "SERVICE",
                Level::Bucket => "BUCKET",
                Level::Object => "OBJECT",
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::address::resolve;

    /// Route `j` is shadowed if an earlier route `i` matches whenever `j` does.
    #[test]
    fn no_route_is_shadowed() {
        for (j, later) in ROUTES.iter().enumerate() {
            for earlier in &ROUTES[..j] {
                let same_place = earlier.method == later.method && earlier.level == later.level;
                let subset = earlier.query.iter().all(|q| later.query.contains(q))
                    && earlier.header.is_none_or(|h| later.header == Some(h));
                assert!(!(same_place && subset), "{:?} shadows {:?}", earlier.op, later.op);
            }
        }
    }

    fn op(method: Method, host: &str, target: &str, headers: &[(&str, &str)]) -> OpName {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let domains = vec!["s3.amazonaws.com".to_string()];
        let addr = resolve(Some(host), path, &domains).expect("address");
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        classify(&method, &addr, &Query::parse(query), &h).expect("classified")
    }

    /// Example request lines from the AWS API reference, in both addressing styles.
    #[test]
    #[allow(clippy::type_complexity)]
    fn aws_documentation_examples_classify_in_both_styles() {
        let vh = "examplebucket.s3.amazonaws.com";
        let cases: &[(Method, &str, &[(&str, &str)], OpName)] = &[
            (Method::POST, "/example-object?uploads", &[], CreateMultipartUpload),
            (Method::POST, "/example-object?uploads=", &[], CreateMultipartUpload),
            (
                Method::PUT,
                "/my-movie.m2ts?partNumber=1&uploadId=VCVsb2FkIElEIGZvciBlbZZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZR",
                &[],
                UploadPart,
            ),
            (
                Method::PUT,
                "/newobject?partNumber=2&uploadId=VCVsb2Fk",
                &[("x-amz-copy-source", "/source-bucket/sourceobject")],
                UploadPartCopy,
            ),
            (
                Method::POST,
                "/example-object?uploadId=AAAsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA",
                &[],
                CompleteMultipartUpload,
            ),
            (
                Method::DELETE,
                "/example-object?uploadId=VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZ",
                &[],
                AbortMultipartUpload,
            ),
            (
                Method::GET,
                "/example-object?uploadId=XXBsb2FkIElEIGZvciBlbHZpbmcncyVcdS1tb3ZpZS5tMnRzEEEwbG9hZA&max-parts=2&part-number-marker=1",
                &[],
                ListParts,
            ),
            (Method::GET, "/?uploads&max-uploads=3", &[], ListMultipartUploads),
            (Method::GET, "/?uploads&delimiter=/&prefix=photos/2006/", &[], ListMultipartUploads),
            (Method::GET, "/?list-type=2&prefix=E&start-after=ExampleGuide.pdf", &[], ListObjectsV2),
            (Method::GET, "/?prefix=N&marker=Ned&max-keys=40", &[], ListObjects),
            (Method::GET, "/?location", &[], GetBucketLocation),
            (Method::GET, "/?versions", &[], ListObjectVersions),
            (Method::POST, "/?delete", &[], DeleteObjects),
            (Method::PUT, "/", &[], CreateBucket),
            (Method::HEAD, "/", &[], HeadBucket),
            (Method::DELETE, "/", &[], DeleteBucket),
            (Method::PUT, "/my-image.jpg", &[], PutObject),
            (Method::PUT, "/my-second-image.jpg", &[("x-amz-copy-source", "/bucket/my-image.jpg")], CopyObject),
            (Method::GET, "/my-image.jpg", &[], GetObject),
            (Method::GET, "/my-image.jpg?versionId=null&partNumber=1", &[], GetObject),
            (Method::HEAD, "/my-image.jpg", &[], HeadObject),
            (Method::DELETE, "/my-second-image.jpg", &[], DeleteObject),
            (Method::GET, "/example-object?tagging", &[], GetObjectTagging),
            (Method::PUT, "/?versioning", &[], PutBucketVersioning),
        ];
        for (method, target, headers, expected) in cases {
            assert_eq!(op(method.clone(), vh, target, headers), *expected, "virtual-host {method} {target}");
            let path_style = format!("/examplebucket{target}");
            assert_eq!(
                op(method.clone(), "127.0.0.1:9000", &path_style, headers),
                *expected,
                "path-style {method} {path_style}"
            );
        }
        assert_eq!(op(Method::GET, "s3.amazonaws.com", "/", &[]), ListBuckets);
        // Rust SDK's extra x-id parameter changes nothing.
        assert_eq!(op(Method::PUT, vh, "/k?x-id=PutObject", &[]), PutObject);
    }

    #[test]
    fn unknown_method_is_not_allowed() {
        let addr = resolve(Some("h"), "/bkt/k", &[]).expect("address");
        let err = classify(&Method::PATCH, &addr, &Query::parse(""), &HeaderMap::new()).expect_err("no route");
        assert_eq!(err.code, S3ErrorCode::MethodNotAllowed);
        let addr = resolve(Some("h"), "/", &[]).expect("address");
        assert!(classify(&Method::PUT, &addr, &Query::parse(""), &HeaderMap::new()).is_err());
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;
        use crate::s3::address::resolve;
        use crate::s3::xml::fuzzing::config;

        proptest! {
            #![proptest_config(config())]

            /// Any host, path, query and method: one operation or a 4xx, never a panic; and
            /// what classifies in one addressing style classifies the same in the other.
            #[test]
            fn fuzz_routing(
                method in prop_oneof![Just("GET".to_string()), Just("PUT".to_string()), Just("POST".to_string()), Just("DELETE".to_string()), Just("HEAD".to_string()), "[A-Z]{1,8}"],
                host in prop_oneof![
                    Just("127.0.0.1:9000".to_string()),
                    "[a-z0-9.-]{0,20}\\.s3\\.amazonaws\\.com(:[0-9]{1,6})?",
                    "\\PC{0,30}",
                ],
                path in prop_oneof!["/[a-z0-9.-]{0,12}(/[^?#]{0,20})?", "\\PC{0,40}"],
                query in "([a-zA-Z-]{0,12}(=[^&]{0,8})?&?){0,4}",
                copy_source in any::<bool>(),
            ) {
                let domains = vec!["s3.amazonaws.com".to_string()];
                let Ok(method) = Method::from_bytes(method.as_bytes()) else { return Ok(()) };
                let mut headers = HeaderMap::new();
                if copy_source {
                    headers.insert("x-amz-copy-source", http::HeaderValue::from_static("/b/k"));
                }
                if let Ok(addr) = resolve(Some(&host), &path, &domains) {
                    let q = Query::parse(&query);
                    let op = classify(&method, &addr, &q, &headers);
                    if let (Ok(op), Some(bucket)) = (&op, &addr.bucket) {
                        // The same request in virtual-host style.
                        let key_path = addr.key.as_deref().map_or(String::new(), |k| {
                            crate::auth::sigv4::canonical::uri_encode(k.as_bytes(), true)
                        });
                        if let Ok(vh) = resolve(Some(&format!("{bucket}.s3.amazonaws.com")), &format!("/{key_path}"), &domains) {
                            prop_assert_eq!(classify(&method, &vh, &q, &headers).ok(), Some(*op));
                        }
                    }
                }
            }
        }
    }
}

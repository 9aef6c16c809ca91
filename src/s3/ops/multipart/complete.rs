//! CompleteMultipartUpload: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html>
//!
//! Everything is validated before anything changes; a failed Complete leaves the upload and
//! its parts intact. The parts become the object by one metadata commit (no byte is copied),
//! so the object is readable the moment the 200 is sent. A retried Complete after success
//! gets the same answer. When completing takes long, the 200 starts early and whitespace
//! keeps the connection alive; an error then arrives inside the 200 body, as on AWS.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use serde::Deserialize;

use super::upload_id;
use crate::auth::sigv4::canonical::uri_encode;
use crate::clock::Timestamp;
use crate::s3::checksum;
use crate::s3::ops::data;
use crate::s3::ops::keepalive::{self, Done};
use crate::s3::types::{ChecksumAlgorithm, ChecksumType, VersionId};
use crate::s3::xml::{ElementLimits, XmlWriter, from_xml};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response, body, headers};
use crate::storage::{
    CompletedUpload, MetadataStore, ObjectChecksum, ObjectRecord, PartRecord, Resource, StorageError, UploadRecord,
    VersionKey, Versioning, WriteCondition,
};

/// Smallest size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Most parts an upload may have.
pub const MAX_PARTS: usize = 10_000;
/// 10,000 parts with long ETags and checksums fit comfortably.
const MAX_BODY: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
struct CompleteXml {
    /// Each part's children by element name: `PartNumber`, `ETag` and any `Checksum*`.
    #[serde(rename = "Part", default)]
    parts: Vec<BTreeMap<String, String>>,
}

/// One part named in the request: number, unquoted ETag, and the checksums it echoes.
#[derive(Debug, PartialEq, Eq)]
struct Requested {
    number: u32,
    etag: String,
    checksums: Vec<(ChecksumAlgorithm, String)>,
}

/// The requested parts, checked for shape and order.
fn requested_parts(doc: &[u8]) -> Result<Vec<Requested>, S3Error> {
    // A part has PartNumber, ETag and up to ten checksums.
    let xml: CompleteXml = from_xml(doc, ElementLimits::list("Part", MAX_PARTS, 12))?;
    if xml.parts.is_empty() {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        ));
    }
    let mut out: Vec<Requested> = Vec::with_capacity(xml.parts.len());
    for mut p in xml.parts {
        // Every algorithm's element, from the one list of algorithms.
        let checksums: Vec<(ChecksumAlgorithm, String)> = ChecksumAlgorithm::ALL
            .into_iter()
            .filter_map(|a| p.remove(a.xml_name()).map(|v| (a, v.trim().to_owned())))
            .collect();
        let (Some(n), Some(etag)) = (p.remove("PartNumber"), p.remove("ETag")) else {
            return Err(S3Error::new(S3ErrorCode::MalformedXML));
        };
        let n: i64 = n.trim().parse().map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
        if n < 1 {
            return Err(S3Error::invalid_argument("PartNumber must be >= 1", "PartNumber", &n.to_string()));
        }
        let n = u32::try_from(n).ok().filter(|n| *n <= 10_000).ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
                "PartNumber",
                &n.to_string(),
            )
        })?;
        if out.last().is_some_and(|prev| prev.number >= n) {
            return Err(S3Error::new(S3ErrorCode::InvalidPartOrder));
        }
        out.push(Requested { number: n, etag: data::unquote(&etag).to_ascii_lowercase(), checksums });
    }
    Ok(out)
}

fn result_document(location: &str, bucket: &str, key: &str, etag: &str, checksum: Option<&ObjectChecksum>) -> Bytes {
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    w.elem("Location", location).elem("Bucket", bucket).elem("Key", key).elem("ETag", &data::quoted(etag));
    if let Some(c) = checksum {
        w.elem(c.algorithm.xml_name(), &c.value).elem("ChecksumType", c.kind.as_str());
    }
    w.finish()
}

/// The answer to a completion (or a retry of one): the document, and the version written.
fn result(location: &str, done: &CompletedUpload, versioned: bool) -> Done {
    let doc = result_document(location, &done.bucket, &done.key, &done.etag, done.checksum.as_ref());
    let headers = if versioned { vec![("x-amz-version-id", done.version_id.to_text())] } else { Vec::new() };
    Done { doc, headers }
}

/// The object checksum of a multipart upload: COMPOSITE or FULL_OBJECT as the upload was
/// created, or (with no algorithm chosen) the CRC64NVME combined from the computed part CRCs.
fn object_checksum(upload: &UploadRecord, parts: &[PartRecord]) -> Result<Option<ObjectChecksum>, S3Error> {
    let (algorithm, kind) = match upload.checksum_algorithm {
        Some(a) => (a, upload.checksum_type.unwrap_or_else(|| a.default_type())),
        None => (ChecksumAlgorithm::Crc64Nvme, ChecksumType::FullObject),
    };
    let sums: Option<Vec<(&str, u64)>> = parts.iter().map(|p| p.checksum(algorithm).map(|v| (v, p.size))).collect();
    let Some(sums) = sums else {
        return match upload.checksum_algorithm {
            // Every part of an upload with an algorithm carries it (UploadPart enforces that).
            Some(_) => {
                Err(S3Error::with_message(S3ErrorCode::InvalidRequest, "A part is missing the upload's checksum"))
            }
            None => Ok(None),
        };
    };
    let value = if kind == ChecksumType::Composite {
        checksum::composite(algorithm, &sums.iter().map(|(v, _)| *v).collect::<Vec<_>>())
    } else {
        checksum::combine_crc(algorithm, &sums)
    };
    Ok(value.map(|value| ObjectChecksum { algorithm, kind, value }))
}

/// Everything the completion needs, owned, so it can outlive the request handler.
struct Job {
    meta: Arc<dyn MetadataStore>,
    upload: UploadRecord,
    requested: Vec<Requested>,
    expected_size: Option<u64>,
    condition: WriteCondition,
    location: String,
    /// Whether the bucket has ever been versioned (then the version is reported).
    versioned: bool,
}

/// How often Complete rebuilds its manifest when parts are re-uploaded while it runs.
const ATTEMPTS: usize = 5;

impl Job {
    async fn run(self) -> Result<Done, S3Error> {
        for _ in 0..ATTEMPTS {
            if let Some(doc) = self.attempt().await? {
                return Ok(doc);
            }
        }
        Err(S3Error::new(S3ErrorCode::ConditionalRequestConflict).source("parts kept changing during completion"))
    }

    /// Validates the requested parts against the current ones and commits the manifest;
    /// `None` when a part changed between the two (a re-upload of the same part number), so
    /// that the manifest is built again from what is current.
    async fn attempt(&self) -> Result<Option<Done>, S3Error> {
        let u = &self.upload;
        let id = u.upload_id.as_str();
        let stored = self.meta.list_parts(&u.bucket, &u.key, id, 0, 10_000).await?;
        let mut manifest = Vec::with_capacity(self.requested.len());
        let mut md5s = Md5::new();
        for (i, r) in self.requested.iter().enumerate() {
            let (n, etag) = (&r.number, &r.etag);
            let invalid = || {
                S3Error::new(S3ErrorCode::InvalidPart)
                    .field("UploadId", id)
                    .field("PartNumber", n.to_string())
                    .field("ETag", etag.clone())
            };
            // Listed in part-number order.
            let part = stored
                .parts
                .binary_search_by_key(n, |p| p.part_number)
                .ok()
                .and_then(|i| stored.parts.get(i))
                .ok_or_else(invalid)?;
            if hex::encode(part.md5) != *etag {
                return Err(invalid());
            }
            // Checksums echoed from UploadPart must be the part's.
            for (a, v) in &r.checksums {
                if part.checksum(*a).is_some_and(|stored| stored != v) {
                    return Err(invalid());
                }
            }
            if i + 1 < self.requested.len() && part.size < MIN_PART_SIZE {
                return Err(S3Error::new(S3ErrorCode::EntityTooSmall)
                    .field("ProposedSize", part.size.to_string())
                    .field("MinSizeAllowed", MIN_PART_SIZE.to_string())
                    .field("PartNumber", n.to_string())
                    .field("ETag", etag.clone()));
            }
            md5s.update(part.md5);
            manifest.push(part.clone());
        }
        let size: u64 = manifest.iter().map(|p| p.size).sum();
        if let Some(expected) = self.expected_size
            && expected != size
        {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "The provided 'x-amz-mp-object-size' header value {expected} does not match what was computed: {size}"
                ),
            ));
        }
        // A condition that fails already is a 412 (or 404); one that fails only at commit
        // means a concurrent writer won: 409.
        let current = self.meta.get_object(&u.bucket, &u.key, None).await?;
        self.condition.check(current.as_ref()).map_err(|e| match e {
            StorageError::NotFound(Resource::Object) => {
                S3Error::new(S3ErrorCode::NoSuchKey).field("Key", u.key.clone())
            }
            e => data::condition_error(e),
        })?;
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), manifest.len());
        let object_checksum = object_checksum(u, &manifest)?;
        let object = ObjectRecord {
            bucket: u.bucket.clone(),
            key: u.key.clone(),
            version_id: VersionId::Null,
            version_key: VersionKey([0; 20]),
            delete_marker: false,
            size,
            etag,
            last_modified: Timestamp::now(),
            owner: u.owner.clone(),
            storage_class: u.storage_class,
            headers: u.headers.clone(),
            user_metadata: u.user_metadata.clone(),
            tags: u.tags.clone(),
            parts: manifest,
            multipart: true,
            checksum: object_checksum,
            acl: u.acl.clone(),
        };
        let done = match self.meta.complete_upload(id, object.clone(), &self.condition).await {
            Ok(outcome) => CompletedUpload::of(&ObjectRecord { version_id: outcome.version_id, ..object }, id),
            Err(StorageError::PartsChanged) => return Ok(None),
            Err(StorageError::NotFound(Resource::Upload)) => {
                // Completed (or aborted) concurrently: a completion of this key answers alike.
                match self.meta.get_completed(&u.bucket, id).await? {
                    Some(done) if done.key == u.key => done,
                    _ => return Err(S3Error::new(S3ErrorCode::NoSuchUpload).field("UploadId", id)),
                }
            }
            Err(StorageError::PreconditionFailed | StorageError::NotFound(Resource::Object)) => {
                return Err(S3Error::new(S3ErrorCode::ConditionalRequestConflict));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Some(result(&self.location, &done, self.versioned)))
    }
}

fn location(cx: &Ctx<'_>, req: &S3Request, bucket: &str, key: &str) -> String {
    let host = req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let key = uri_encode(key.as_bytes(), true);
    if cx.s3.virtual_host_bucket(host).is_some() {
        format!("http://{host}/{key}")
    } else {
        format!("http://{host}/{bucket}/{key}")
    }
}

fn completed_answer(cx: &Ctx<'_>, req: &S3Request, done: &CompletedUpload, versioned: bool) -> S3Response {
    let Done { doc, headers } = result(&location(cx, req, &done.bucket, &done.key), done, versioned);
    let mut resp = S3Response::xml(doc);
    for (name, value) in headers {
        resp = resp.header(name, value);
    }
    resp
}

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let versioned = bucket.versioning != Versioning::Unversioned;
    let key = cx.key()?;
    let id = upload_id(cx);
    if id.is_empty() {
        return Err(S3Error::new(S3ErrorCode::NoSuchUpload).field("UploadId", id));
    }
    let condition = match (headers::text(&req.headers, "if-none-match")?, headers::text(&req.headers, "if-match")?) {
        (Some(_), Some(_)) => {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "If-None-Match and If-Match cannot be combined",
            ));
        }
        _ => data::write_condition(&req.headers)?,
    };
    let expected_size = match headers::text(&req.headers, "x-amz-mp-object-size")? {
        None => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("Value for x-amz-mp-object-size header is invalid: {v}"),
            )
        })?),
    };
    let upload = match cx.s3.meta.get_upload(&bucket.name, key, id).await {
        Ok(u) => u,
        Err(StorageError::NotFound(Resource::Upload)) => {
            return match cx.s3.meta.get_completed(&bucket.name, id).await? {
                Some(done) if done.key == key => {
                    // The completion read may be another request's, not yet durable.
                    cx.s3.meta.flush().await?;
                    Ok(completed_answer(cx, &req, &done, versioned))
                }
                _ => Err(S3Error::new(S3ErrorCode::NoSuchUpload).field("UploadId", id)),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let md5 = headers::content_md5(&req.headers)?;
    let loc = location(cx, &req, &bucket.name, key);
    let ids = req.ids.clone();
    let doc = body::read_small(req.body, cx.auth.payload, md5, MAX_BODY).await?;
    let requested = requested_parts(&doc)?;

    let job =
        Job { meta: Arc::clone(&cx.s3.meta), upload, requested, expected_size, condition, location: loc, versioned };
    // Run detached: once started, a completion finishes even if the client goes away.
    keepalive::respond(job.run(), ids, format!("/{}/{}", bucket.name, key)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::s3::xml::fuzzing::{arbitrary_document, config};

    proptest! {
        #![proptest_config(config())]

        /// Any body gives a part list or one of the documented 4xx codes.
        #[test]
        fn fuzz_complete_multipart_upload_bodies(doc in arbitrary_document(&[
            "CompleteMultipartUpload", "Part", "PartNumber", "ETag", "ChecksumCRC32", "ChecksumSHA256",
            "ChecksumXXHASH128",
        ])) {
            match requested_parts(doc.as_bytes()) {
                Ok(parts) => {
                    prop_assert!(!parts.is_empty() && parts.len() <= MAX_PARTS);
                    prop_assert!(parts.windows(2).all(|w| w[0].number < w[1].number));
                    prop_assert!(parts.iter().all(|p| (1..=10_000).contains(&p.number)));
                }
                Err(e) => prop_assert!(matches!(
                    e.code,
                    S3ErrorCode::MalformedXML | S3ErrorCode::InvalidArgument | S3ErrorCode::InvalidPartOrder
                ), "{:?}", e.code),
            }
        }

        /// Well-formed lists of any length and order parse exactly.
        #[test]
        fn fuzz_complete_part_lists(numbers in proptest::collection::vec(1u32..=10_000, 1..40)) {
            let doc: String = numbers.iter().map(|n| format!("<Part><ETag>\"{n:x}\"</ETag><PartNumber>{n}</PartNumber></Part>")).collect();
            let doc = format!("<CompleteMultipartUpload>{doc}</CompleteMultipartUpload>");
            let ascending = numbers.windows(2).all(|w| w[0] < w[1]);
            match requested_parts(doc.as_bytes()) {
                Ok(parts) => {
                    prop_assert!(ascending);
                    prop_assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), numbers.clone());
                }
                Err(e) => {
                    prop_assert!(!ascending);
                    prop_assert_eq!(e.code, S3ErrorCode::InvalidPartOrder);
                }
            }
        }
    }

    #[test]
    fn parses_what_real_clients_send() {
        // botocore: quoted ETags, namespace, checksums per part.
        let boto = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"AB"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part><Part><ETag>"cd"</ETag><PartNumber>3</PartNumber></Part></CompleteMultipartUpload>"#;
        let parts = requested_parts(boto).expect("ok");
        assert_eq!(parts.iter().map(|r| (r.number, r.etag.as_str())).collect::<Vec<_>>(), [(1, "ab"), (3, "cd")]);
        assert_eq!(parts[0].checksums, vec![(ChecksumAlgorithm::Crc32, "AAAAAA==".to_string())]);
        // Every algorithm's element is read, not only the first five.
        for a in ChecksumAlgorithm::ALL {
            let doc = format!(
                "<CompleteMultipartUpload><Part><ETag>ab</ETag><{n}>v</{n}><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
                n = a.xml_name()
            );
            assert_eq!(requested_parts(doc.as_bytes()).expect("ok")[0].checksums, vec![(a, "v".to_string())], "{a:?}");
        }
        // s3cmd: no namespace, unquoted ETags, PartNumber first.
        let s3cmd = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>ab</ETag></Part></CompleteMultipartUpload>";
        assert_eq!(requested_parts(s3cmd).expect("ok")[0].etag, "ab");
        // Rust SDK and rclone: entity-escaped quotes.
        for q in ["&quot;", "&#34;"] {
            let doc = format!(
                "<CompleteMultipartUpload><Part><ETag>{q}ab{q}</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>"
            );
            let parts = requested_parts(doc.as_bytes()).expect("ok");
            assert_eq!((parts[0].number, parts[0].etag.as_str()), (2, "ab"));
        }
    }

    #[test]
    fn rejects_bad_lists() {
        let code = |doc: &str| requested_parts(doc.as_bytes()).expect_err(doc).code;
        assert_eq!(code("<CompleteMultipartUpload></CompleteMultipartUpload>"), S3ErrorCode::MalformedXML);
        assert_eq!(
            code("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(code("not xml"), S3ErrorCode::MalformedXML);
        assert_eq!(
            code(
                "<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>"
            ),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(
                "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>"
            ),
            S3ErrorCode::InvalidPartOrder
        );
        assert_eq!(
            code(
                "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>2</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>"
            ),
            S3ErrorCode::InvalidPartOrder
        );
    }
}

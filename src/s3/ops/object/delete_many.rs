//! DeleteObjects: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html>
//!
//! Accepted with Content-MD5, with an `x-amz-checksum-*` header (current SDKs), or neither.

use serde::Deserialize;

use crate::s3::types::{VersionId, validate_key};
use crate::s3::xml::{ElementLimits, XmlWriter, from_xml};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};

const MAX_KEYS: usize = 1000;
/// 1000 keys of 1024 bytes plus markup.
const MAX_BODY: usize = 2 * 1024 * 1024;

#[derive(Deserialize)]
struct Delete {
    #[serde(rename = "Quiet", default)]
    quiet: Option<String>,
    #[serde(rename = "Object", default)]
    objects: Vec<ObjectId>,
}

#[derive(Deserialize)]
struct ObjectId {
    #[serde(rename = "Key")]
    key: Option<String>,
    #[serde(rename = "VersionId", default)]
    version_id: Option<String>,
}

/// The `<Delete>` document: 1 to 1,000 objects.
fn parse(doc: &[u8]) -> Result<Delete, S3Error> {
    let delete: Delete = from_xml(doc, ElementLimits::list("Object", MAX_KEYS, 4))?;
    if delete.objects.is_empty() || delete.objects.len() > MAX_KEYS {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    Ok(delete)
}

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let headers = req.headers.clone();
    let doc = crate::s3::ops::read_document(cx, req, MAX_BODY).await?;
    let delete = parse(&doc)?;
    // Each key is checked as a DeleteObject of it (of its version, when one is named).
    let access = cx.s3.bucket_access(cx.auth, bucket).await?;
    let may_delete = |key: &str, version: Option<&str>| {
        let facts = crate::s3::RequestFacts { version, ..cx.facts(&headers) };
        access.check(crate::s3::OpName::DeleteObject, Some(key), &facts)
    };
    let quiet = delete.quiet.as_deref().is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));

    // Entries that name a valid key and version are deleted together (one commit where the
    // store can); the others answer their error in place.
    let mut checked = Vec::with_capacity(delete.objects.len());
    for o in &delete.objects {
        let Some(key) = o.key.as_deref() else {
            return Err(S3Error::new(S3ErrorCode::MalformedXML));
        };
        let version = match o.version_id.as_deref() {
            None => Ok(None),
            Some(v) => VersionId::parse(v).map(Some).ok_or_else(|| {
                S3Error::with_message(S3ErrorCode::NoSuchVersion, "The specified version does not exist.")
            }),
        };
        let allowed =
            |v: Option<VersionId>| may_delete(key, o.version_id.as_deref().filter(|_| v.is_some())).map(|()| v);
        checked.push(validate_key(key).and(version).and_then(allowed));
    }
    let items: Vec<(String, Option<VersionId>)> =
        delete.objects.iter().zip(&checked).filter_map(|(o, c)| Some((o.key.clone()?, *c.as_ref().ok()?))).collect();
    let mut outcomes = match cx.s3.meta.delete_objects(&bucket.name, &items, &cx.owner()).await {
        Ok(outcomes) => outcomes.into_iter().map(|r| r.map_err(S3Error::from)).collect::<Vec<_>>(),
        Err(e) => {
            let e = S3Error::from(e);
            tracing::error!(error = %e, "delete failed");
            items.iter().map(|_| Err(S3Error::with_message(e.code, e.message.clone()))).collect()
        }
    }
    .into_iter();

    let mut w = XmlWriter::new("DeleteResult");
    for (o, check) in delete.objects.iter().zip(checked) {
        let key = o.key.as_deref().unwrap_or_default();
        let result = match check {
            Err(e) => Err(e),
            Ok(_) => outcomes.next().unwrap_or_else(|| Err(S3Error::new(S3ErrorCode::InternalError))),
        };
        match result {
            Ok(_) if quiet => {}
            Ok(outcome) => {
                w.start("Deleted").elem("Key", key).opt("VersionId", o.version_id.as_deref());
                if let Some(marker) = &outcome.marker {
                    w.elem("DeleteMarker", "true").elem("DeleteMarkerVersionId", &marker.version_id.to_text());
                } else if let Some(removed) = outcome.removed.as_ref().filter(|r| r.delete_marker) {
                    w.elem("DeleteMarker", "true").elem("DeleteMarkerVersionId", &removed.version_id.to_text());
                }
                w.end();
            }
            Err(e) => {
                if e.status().is_server_error() {
                    tracing::error!(key, error = %e, "delete failed");
                }
                w.start("Error")
                    .elem("Key", key)
                    .opt("VersionId", o.version_id.as_deref())
                    .elem("Code", e.code.as_str())
                    .elem("Message", &e.message)
                    .end();
            }
        }
    }
    Ok(S3Response::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::s3::xml::fuzzing::{arbitrary_document, config};

    #[test]
    fn parses_sdk_documents() {
        let d = parse(b"<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key><VersionId>null</VersionId></Object><Quiet>true</Quiet></Delete>").expect("parses");
        assert_eq!(d.objects.len(), 2);
        assert_eq!(d.objects[0].key.as_deref(), Some("a&b"));
        assert_eq!(d.quiet.as_deref(), Some("true"));
        assert_eq!(parse(b"<Delete></Delete>").err().map(|e| e.code), Some(S3ErrorCode::MalformedXML));
    }

    proptest! {
        #![proptest_config(config())]

        /// Any body, well-formed or not, is a document or MalformedXML: never a panic.
        #[test]
        fn fuzz_delete_objects_bodies(doc in arbitrary_document(&["Delete", "Object", "Key", "VersionId", "Quiet"])) {
            if let Err(e) = parse(doc.as_bytes()) {
                prop_assert_eq!(e.code, S3ErrorCode::MalformedXML);
            }
        }
    }
}

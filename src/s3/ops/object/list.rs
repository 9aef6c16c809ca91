//! ListObjects (v1), ListObjectsV2 and ListObjectVersions:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjects.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html>

use base64::Engine;

use crate::s3::ops::{common_prefixes, encode_key, max_param, url_encoding};
use crate::s3::types::VersionId;
use crate::s3::xml::{XmlWriter, escape_into};
use crate::s3::{Ctx, S3Error, S3Request, S3Response};
use crate::storage::{
    ListObjectsQuery, ListVersionsQuery, ObjectPage, ObjectRecord, Resource, StorageError, VersionEntry,
};

const TOKEN: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    V1,
    V2,
    Versions,
}

struct Params<'a> {
    prefix: &'a str,
    delimiter: Option<&'a str>,
    max: usize,
    url: bool,
}

fn params<'a>(cx: &'a Ctx<'_>) -> Result<Params<'a>, S3Error> {
    Ok(Params {
        prefix: cx.query.get("prefix").unwrap_or(""),
        delimiter: cx.query.get("delimiter").filter(|d| !d.is_empty()),
        max: max_param(cx, "max-keys", 1000, 1000)?,
        url: url_encoding(cx)?,
    })
}

async fn page(cx: &Ctx<'_>, p: &Params<'_>, start_after: Option<String>) -> Result<ObjectPage, S3Error> {
    Ok(cx
        .s3
        .meta
        .list_objects(
            &cx.bucket()?.name,
            &ListObjectsQuery {
                prefix: p.prefix.to_owned(),
                delimiter: p.delimiter.map(str::to_owned),
                start_after,
                max: p.max,
            },
        )
        .await?)
}

/// About what one listed entry takes in XML, to size a page's document at once.
const ENTRY_BYTES: usize = 320;

fn owner(w: &mut XmlWriter, o: &ObjectRecord) {
    w.start("Owner").elem("ID", &o.owner.id).elem("DisplayName", &o.owner.display_name).end();
}

/// `<LastModified>`, written straight into the document (a page holds up to 1,000).
fn last_modified(w: &mut XmlWriter, o: &ObjectRecord) {
    w.elem_with("LastModified", |out| o.last_modified.write_xml(out));
}

/// `<ETag>` and `<Size>`, written straight into the document.
fn etag_size(w: &mut XmlWriter, o: &ObjectRecord) {
    w.elem_with("ETag", |out| {
        out.push_str("&quot;");
        escape_into(out, &o.etag);
        out.push_str("&quot;");
    })
    .elem_with("Size", |out| {
        use std::fmt::Write;
        let _ = write!(out, "{}", o.size);
    });
}

/// One `<Contents>` element.
fn entry(w: &mut XmlWriter, o: &ObjectRecord, url: bool, with_owner: bool) {
    w.start("Contents").elem("Key", &encode_key(&o.key, url));
    last_modified(w, o);
    etag_size(w, o);
    if let Some(c) = &o.checksum {
        w.elem("ChecksumAlgorithm", c.algorithm.as_str()).elem("ChecksumType", c.kind.as_str());
    }
    if with_owner {
        owner(w, o);
    }
    w.elem("StorageClass", o.storage_class.as_str()).end();
}

/// One `<Version>` or `<DeleteMarker>` element, in AWS's element order.
fn version_entry(w: &mut XmlWriter, v: &VersionEntry, url: bool) {
    let o = &v.object;
    w.start(if o.delete_marker { "DeleteMarker" } else { "Version" })
        .elem("Key", &encode_key(&o.key, url))
        .elem("VersionId", &o.version_id.to_text())
        .elem("IsLatest", if v.is_latest { "true" } else { "false" });
    last_modified(w, o);
    if !o.delete_marker {
        etag_size(w, o);
        if let Some(c) = &o.checksum {
            w.elem("ChecksumAlgorithm", c.algorithm.as_str()).elem("ChecksumType", c.kind.as_str());
        }
        w.elem("StorageClass", o.storage_class.as_str());
    }
    owner(w, o);
    w.end();
}

pub async fn call(cx: &Ctx<'_>, _req: S3Request, flavor: Flavor) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let p = params(cx)?;
    let enc = |s: &str| encode_key(s, p.url).into_owned();
    let truth = |b: bool| if b { "true" } else { "false" };
    let w = match flavor {
        Flavor::V1 => {
            let marker = cx.query.get("marker").unwrap_or("");
            let page = page(cx, &p, Some(marker.to_owned()).filter(|m| !m.is_empty())).await?;
            let mut w = XmlWriter::new("ListBucketResult");
            w.reserve(page.objects.len() * ENTRY_BYTES);
            w.elem("Name", &bucket.name).elem("Prefix", &enc(p.prefix)).elem("Marker", &enc(marker));
            // v1 names the next marker only when a delimiter is used; clients otherwise
            // continue from the last key.
            if page.is_truncated && p.delimiter.is_some() {
                w.opt("NextMarker", page.last.as_deref().map(enc).as_deref());
            }
            w.elem("MaxKeys", &p.max.to_string());
            w.opt("Delimiter", p.delimiter.map(enc).as_deref());
            w.elem("IsTruncated", truth(page.is_truncated));
            for o in &page.objects {
                entry(&mut w, o, p.url, true);
            }
            common_prefixes(&mut w, &page.common_prefixes, p.url);
            w
        }
        Flavor::V2 => {
            let token = cx.query.get("continuation-token");
            let start_after = cx.query.get("start-after").filter(|s| !s.is_empty());
            let from = match token {
                Some(t) => Some(TOKEN.decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
                    S3Error::invalid_argument("The continuation token provided is incorrect", "continuation-token", t)
                })?),
                None => start_after.map(str::to_owned),
            };
            let fetch_owner = cx.query.get("fetch-owner") == Some("true");
            let page = page(cx, &p, from).await?;
            let mut w = XmlWriter::new("ListBucketResult");
            w.reserve(page.objects.len() * ENTRY_BYTES);
            w.elem("Name", &bucket.name).elem("Prefix", &enc(p.prefix));
            w.opt("Delimiter", p.delimiter.map(enc).as_deref());
            w.elem("MaxKeys", &p.max.to_string())
                .elem("KeyCount", &(page.objects.len() + page.common_prefixes.len()).to_string())
                .elem("IsTruncated", truth(page.is_truncated));
            w.opt("ContinuationToken", token);
            if page.is_truncated {
                w.opt("NextContinuationToken", page.last.as_ref().map(|l| TOKEN.encode(l)).as_deref());
            }
            w.opt("StartAfter", start_after.map(enc).as_deref());
            for o in &page.objects {
                entry(&mut w, o, p.url, fetch_owner);
            }
            common_prefixes(&mut w, &page.common_prefixes, p.url);
            w
        }
        Flavor::Versions => {
            let key_marker = cx.query.get("key-marker").unwrap_or("");
            let id_marker = cx.query.get("version-id-marker").unwrap_or("");
            let invalid_marker =
                || S3Error::invalid_argument("Invalid version id specified", "version-id-marker", id_marker);
            let version_id_marker = match id_marker {
                "" => None,
                _ if key_marker.is_empty() => {
                    return Err(S3Error::invalid_argument(
                        "A version-id marker cannot be specified without a key marker.",
                        "version-id-marker",
                        id_marker,
                    ));
                }
                v => Some(VersionId::parse(v).ok_or_else(invalid_marker)?),
            };
            let query = ListVersionsQuery {
                prefix: p.prefix.to_owned(),
                delimiter: p.delimiter.map(str::to_owned),
                key_marker: Some(key_marker.to_owned()).filter(|m| !m.is_empty()),
                version_id_marker,
                max: p.max,
            };
            let page = match cx.s3.meta.list_versions(&bucket.name, &query).await {
                Err(StorageError::NotFound(Resource::Version)) => return Err(invalid_marker()),
                other => other?,
            };
            let mut w = XmlWriter::new("ListVersionsResult");
            w.reserve(page.versions.len() * ENTRY_BYTES);
            w.elem("Name", &bucket.name)
                .elem("Prefix", &enc(p.prefix))
                .elem("KeyMarker", &enc(key_marker))
                .elem("VersionIdMarker", id_marker);
            if page.is_truncated {
                w.opt("NextKeyMarker", page.next_key_marker.as_deref().map(enc).as_deref());
                w.opt("NextVersionIdMarker", page.next_version_id_marker.map(VersionId::to_text).as_deref());
            }
            w.elem("MaxKeys", &p.max.to_string());
            w.opt("Delimiter", p.delimiter.map(enc).as_deref());
            w.elem("IsTruncated", truth(page.is_truncated));
            for v in &page.versions {
                version_entry(&mut w, v, p.url);
            }
            common_prefixes(&mut w, &page.common_prefixes, p.url);
            w
        }
    };
    let mut w = w;
    if p.url {
        w.elem("EncodingType", "url");
    }
    Ok(S3Response::xml(w.finish()))
}

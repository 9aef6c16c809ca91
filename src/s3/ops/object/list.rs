//! ListObjects (v1), ListObjectsV2 and ListObjectVersions (each object once, version
//! `null`, as on an unversioned bucket):
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjects.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html>

use base64::Engine;

use crate::s3::ops::{data, encode_key, max_param, url_encoding};
use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3Request, S3Response};
use crate::storage::{ListObjectsQuery, ObjectPage, ObjectRecord};

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

fn owner(w: &mut XmlWriter, o: &ObjectRecord) {
    w.start("Owner").elem("ID", &o.owner.id).elem("DisplayName", &o.owner.display_name).end();
}

/// One `<Contents>` (or `<Version>`) element.
fn entry(w: &mut XmlWriter, o: &ObjectRecord, key: &str, with_owner: bool, version: bool) {
    w.start(if version { "Version" } else { "Contents" }).elem("Key", key);
    if version {
        w.elem("VersionId", "null").elem("IsLatest", "true");
    }
    w.elem("LastModified", &o.last_modified.to_xml())
        .elem("ETag", &data::quoted(&o.etag))
        .elem("Size", &o.size.to_string());
    if with_owner {
        owner(w, o);
    }
    w.elem("StorageClass", &o.storage_class).end();
}

fn common_prefixes(w: &mut XmlWriter, page: &ObjectPage, url: bool) {
    for cp in &page.common_prefixes {
        w.start("CommonPrefixes").elem("Prefix", &encode_key(cp, url)).end();
    }
}

pub async fn call(cx: &Ctx<'_>, _req: S3Request, flavor: Flavor) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let p = params(cx)?;
    let enc = |s: &str| encode_key(s, p.url);
    let truth = |b: bool| if b { "true" } else { "false" };
    let w = match flavor {
        Flavor::V1 => {
            let marker = cx.query.get("marker").unwrap_or("");
            let page = page(cx, &p, Some(marker.to_owned()).filter(|m| !m.is_empty())).await?;
            let mut w = XmlWriter::new("ListBucketResult");
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
                entry(&mut w, o, &enc(&o.key), true, false);
            }
            common_prefixes(&mut w, &page, p.url);
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
                entry(&mut w, o, &enc(&o.key), fetch_owner, false);
            }
            common_prefixes(&mut w, &page, p.url);
            w
        }
        Flavor::Versions => {
            let key_marker = cx.query.get("key-marker").unwrap_or("");
            let page = page(cx, &p, Some(key_marker.to_owned()).filter(|m| !m.is_empty())).await?;
            let mut w = XmlWriter::new("ListVersionsResult");
            w.elem("Name", &bucket.name)
                .elem("Prefix", &enc(p.prefix))
                .elem("KeyMarker", &enc(key_marker))
                .elem("VersionIdMarker", cx.query.get("version-id-marker").unwrap_or(""));
            if page.is_truncated {
                w.opt("NextKeyMarker", page.last.as_deref().map(enc).as_deref());
                w.elem("NextVersionIdMarker", "null");
            }
            w.elem("MaxKeys", &p.max.to_string());
            w.opt("Delimiter", p.delimiter.map(enc).as_deref());
            w.elem("IsTruncated", truth(page.is_truncated));
            for o in &page.objects {
                entry(&mut w, o, &enc(&o.key), true, true);
            }
            common_prefixes(&mut w, &page, p.url);
            w
        }
    };
    let mut w = w;
    if p.url {
        w.elem("EncodingType", "url");
    }
    Ok(S3Response::xml(w.finish()))
}

//! GetObjectAttributes: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectAttributes.html>
//!
//! The attributes named in `x-amz-object-attributes`, without the object's bytes: the ETag
//! (unquoted, as AWS writes it here), the checksum, the parts of a multipart object (paged by
//! `x-amz-max-parts` and `x-amz-part-number-marker`), the storage class and the size.

use crate::s3::ops::data;
use crate::s3::ops::object::get::visible_version;
use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3Request, S3Response, headers};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Attribute {
    ETag,
    Checksum,
    ObjectParts,
    StorageClass,
    ObjectSize,
}

fn attributes(h: &http::HeaderMap) -> Result<Vec<Attribute>, S3Error> {
    let invalid =
        |v: &str| S3Error::invalid_argument("Invalid attribute name specified.", "x-amz-object-attributes", v);
    let mut out = Vec::new();
    for value in h.get_all("x-amz-object-attributes") {
        let value = value.to_str().map_err(|_| invalid(""))?;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            out.push(match name {
                "ETag" => Attribute::ETag,
                "Checksum" => Attribute::Checksum,
                "ObjectParts" => Attribute::ObjectParts,
                "StorageClass" => Attribute::StorageClass,
                "ObjectSize" => Attribute::ObjectSize,
                other => return Err(invalid(other)),
            });
        }
    }
    if out.is_empty() {
        return Err(S3Error::invalid_argument(
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
            "x-amz-object-attributes",
            "",
        ));
    }
    Ok(out)
}

/// A header holding a non-negative integer, like the `max-parts` query parameter.
fn number(h: &http::HeaderMap, name: &str, default: usize) -> Result<usize, S3Error> {
    match headers::text(h, name)? {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map(|n| n as usize)
            .map_err(|_| S3Error::invalid_argument(format!("Invalid value for {name}: {v}"), name, &v)),
    }
}

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let (bucket, key) = (cx.bucket()?, cx.key()?);
    let version = data::version_param(cx)?;
    let wanted = attributes(&req.headers)?;
    let max_parts = number(&req.headers, "x-amz-max-parts", 1000)?.min(1000);
    let marker = number(&req.headers, "x-amz-part-number-marker", 0)?;
    let o = visible_version(cx.s3.meta.get_object(&bucket.name, key, version).await?, key, version, "GET")?;

    let mut w = XmlWriter::new("GetObjectAttributesResponse");
    if wanted.contains(&Attribute::ETag) {
        w.elem("ETag", &o.etag);
    }
    if wanted.contains(&Attribute::Checksum)
        && let Some(c) = &o.checksum
    {
        w.start("Checksum").elem(c.algorithm.xml_name(), &c.value).elem("ChecksumType", c.kind.as_str()).end();
    }
    if wanted.contains(&Attribute::ObjectParts) && o.multipart {
        let after: Vec<_> = o.parts.iter().filter(|p| p.part_number as usize > marker).collect();
        let page = &after[..after.len().min(max_parts)];
        let truncated = after.len() > page.len();
        w.start("ObjectParts")
            .elem("PartsCount", &o.parts.len().to_string())
            .elem("PartNumberMarker", &marker.to_string());
        if let Some(last) = page.last() {
            w.elem("NextPartNumberMarker", &last.part_number.to_string());
        }
        w.elem("MaxParts", &max_parts.to_string()).elem("IsTruncated", if truncated { "true" } else { "false" });
        let algorithm = o.checksum.as_ref().map(|c| c.algorithm);
        for p in page {
            w.start("Part").elem("PartNumber", &p.part_number.to_string()).elem("Size", &p.size.to_string());
            if let Some(a) = algorithm
                && let Some(v) = p.checksum(a)
            {
                w.elem(a.xml_name(), v);
            }
            w.end();
        }
        w.end();
    }
    if wanted.contains(&Attribute::StorageClass) {
        w.elem("StorageClass", o.storage_class.as_str());
    }
    if wanted.contains(&Attribute::ObjectSize) {
        w.elem("ObjectSize", &o.size.to_string());
    }
    let resp = S3Response::xml(w.finish()).header("last-modified", o.last_modified.to_http_date());
    Ok(data::version_header(resp, bucket, o.version_id))
}

//! ListParts: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListParts.html>

use super::{live_upload, upload_id};
use crate::s3::ops::{data, max_param};
use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3Request, S3Response};

pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let key = cx.key()?;
    let max_parts = max_param(cx, "max-parts", 1000, 1000)?;
    let marker = match cx.query.get("part-number-marker") {
        None | Some("") => 0,
        Some(v) => v.parse::<u32>().map_err(|_| {
            S3Error::invalid_argument(
                "Argument part-number-marker must be an integer between 0 and 2147483647",
                "part-number-marker",
                v,
            )
        })?,
    };
    let upload = live_upload(cx).await?;
    let id = upload_id(cx);
    let page = cx
        .s3
        .meta
        .list_parts(&bucket.name, key, id, marker, max_parts)
        .await
        .map_err(|e| S3Error::from(e).field("UploadId", id))?;

    let mut w = XmlWriter::new("ListPartsResult");
    w.elem("Bucket", &bucket.name).elem("Key", key).elem("UploadId", id).elem("PartNumberMarker", &marker.to_string());
    if let Some(last) = page.parts.last() {
        w.elem("NextPartNumberMarker", &last.part_number.to_string());
    }
    w.elem("MaxParts", &max_parts.to_string()).elem("IsTruncated", if page.is_truncated { "true" } else { "false" });
    for p in &page.parts {
        w.start("Part")
            .elem("PartNumber", &p.part_number.to_string())
            .elem("LastModified", &p.last_modified.to_xml())
            .elem("ETag", &data::quoted(&hex::encode(p.md5)))
            .elem("Size", &p.size.to_string());
        // Part checksums of the algorithm the upload was created with, as AWS lists them.
        if let Some(a) = upload.checksum_algorithm
            && let Some(value) = p.checksum(a)
        {
            w.elem(a.xml_name(), value);
        }
        w.end();
    }
    w.start("Initiator").elem("ID", &upload.initiator.id).elem("DisplayName", &upload.initiator.display_name).end();
    w.start("Owner").elem("ID", &upload.owner.id).elem("DisplayName", &upload.owner.display_name).end();
    w.elem("StorageClass", upload.storage_class.as_str())
        .opt("ChecksumAlgorithm", upload.checksum_algorithm.map(|a| a.as_str()))
        .opt("ChecksumType", upload.checksum_type.map(|t| t.as_str()));
    Ok(data::abort_headers(S3Response::xml(w.finish()), data::lifecycle_rules(cx).await?.as_ref(), &upload))
}

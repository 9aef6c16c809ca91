//! ListMultipartUploads: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListMultipartUploads.html>

use crate::s3::ops::{common_prefixes, encode_key, max_param, url_encoding};
use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3Request, S3Response};
use crate::storage::{ListUploadsQuery, Resource, StorageError};

pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let url = url_encoding(cx)?;
    let max_uploads = max_param(cx, "max-uploads", 1000, 1000)?;
    let prefix = cx.query.get("prefix").unwrap_or("");
    let delimiter = cx.query.get("delimiter").filter(|d| !d.is_empty());
    let key_marker = cx.query.get("key-marker").filter(|m| !m.is_empty());
    // upload-id-marker means nothing without key-marker.
    let upload_id_marker = key_marker.and(cx.query.get("upload-id-marker").filter(|m| !m.is_empty()));

    let query = ListUploadsQuery {
        prefix: prefix.to_owned(),
        delimiter: delimiter.map(str::to_owned),
        key_marker: key_marker.map(str::to_owned),
        upload_id_marker: upload_id_marker.map(str::to_owned),
        max_uploads,
    };
    let page = cx.s3.meta.list_uploads(&bucket.name, &query).await.map_err(|e| match e {
        StorageError::NotFound(Resource::Upload) => S3Error::invalid_argument(
            "Invalid uploadId marker",
            "upload-id-marker",
            upload_id_marker.unwrap_or_default(),
        ),
        e => e.into(),
    })?;

    let enc = |s: &str| encode_key(s, url).into_owned();
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.elem("Bucket", &bucket.name)
        .elem("KeyMarker", &enc(key_marker.unwrap_or("")))
        .elem("UploadIdMarker", upload_id_marker.unwrap_or(""));
    if page.is_truncated {
        w.elem("NextKeyMarker", &enc(page.next_key_marker.as_deref().unwrap_or("")))
            .elem("NextUploadIdMarker", page.next_upload_id_marker.as_deref().unwrap_or(""));
    }
    w.elem("Prefix", &enc(prefix));
    if let Some(d) = delimiter {
        w.elem("Delimiter", &enc(d));
    }
    w.elem("MaxUploads", &max_uploads.to_string())
        .elem("IsTruncated", if page.is_truncated { "true" } else { "false" });
    for u in &page.uploads {
        w.start("Upload").elem("Key", &enc(&u.key)).elem("UploadId", &u.upload_id);
        w.start("Initiator").elem("ID", &u.initiator.id).elem("DisplayName", &u.initiator.display_name).end();
        w.start("Owner").elem("ID", &u.owner.id).elem("DisplayName", &u.owner.display_name).end();
        w.elem("StorageClass", u.storage_class.as_str())
            .elem("Initiated", &u.initiated.to_xml())
            .opt("ChecksumAlgorithm", u.checksum_algorithm.map(|a| a.as_str()))
            .opt("ChecksumType", u.checksum_type.map(|t| t.as_str()))
            .end();
    }
    common_prefixes(&mut w, &page.common_prefixes, url);
    if url {
        w.elem("EncodingType", "url");
    }
    Ok(S3Response::xml(w.finish()))
}

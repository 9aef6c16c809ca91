//! UploadPart and UploadPartCopy:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPartCopy.html>

use std::sync::Arc;

use http::StatusCode;

use super::live_upload;
use crate::s3::ops::data::{self, MAX_PUT_SIZE};
use crate::s3::ops::keepalive::{self, Done};
use crate::s3::ops::object::copy;
use crate::s3::types::{ChecksumAlgorithm, ChecksumType};
use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response, checksum};
use crate::storage::{PartRecord, Resource, Storage, StorageError};

fn part_number(cx: &Ctx<'_>) -> Result<u32, S3Error> {
    let v = cx.query.get("partNumber").unwrap_or_default();
    v.parse::<u32>().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
        S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber", v)
    })
}

/// Commits a stored part; if the upload vanished meanwhile (aborted or completed), the blob
/// is discarded and the request fails with NoSuchUpload.
async fn commit(storage: &Storage, bucket: &str, key: &str, id: &str, part: PartRecord) -> Result<(), S3Error> {
    storage.put_part(bucket, key, id, part).await.map(drop).map_err(|e| part_error(e, id))
}

fn part_error(e: StorageError, upload_id: &str) -> S3Error {
    match e {
        e @ StorageError::NotFound(Resource::Upload) => S3Error::from(e).field("UploadId", upload_id),
        e => e.into(),
    }
}

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let number = part_number(cx)?;
    let declared = data::declared_length(cx, &req.headers, MAX_PUT_SIZE)?;
    // The upload must exist before the client is asked for the body.
    let upload = live_upload(cx).await?;
    let mut checksum = checksum::request_checksum_with(&req.headers, Some(cx.query))?;
    let required = upload.checksum_algorithm;
    if let Some(a) = required {
        let mismatch = |actual: &str| {
            S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {actual}",
                    a.as_str().to_ascii_lowercase()
                ),
            )
        };
        if checksum.explicit && checksum.algorithm != a {
            return Err(mismatch(&checksum.algorithm.as_str().to_ascii_lowercase()));
        }
        if !checksum.explicit {
            // A FULL_OBJECT checksum can be computed here; a COMPOSITE one must come from the client.
            if upload.checksum_type == Some(ChecksumType::Composite) {
                return Err(mismatch("null"));
            }
            checksum.algorithm = a;
        }
    }
    let stored =
        data::store_body(cx, req.body, &req.headers, declared, MAX_PUT_SIZE, &checksum, data::Keep::InBlob).await?;
    let (algorithm, sum) = stored.checksum();
    let md5 = stored.digest.md5;
    commit(&cx.s3.storage, &cx.bucket()?.name, cx.key()?, super::upload_id(cx), stored.part(number)).await?;
    let resp = S3Response::new(StatusCode::OK).header("etag", data::quoted(&hex::encode(md5)));
    let resp = data::abort_headers(resp, data::lifecycle_rules(cx).await?.as_ref(), &upload);
    Ok(if checksum.explicit || required.is_some() { resp.header(algorithm.header_name(), sum) } else { resp })
}

pub async fn call_copy(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let number = part_number(cx)?;
    // A part of an upload with a checksum algorithm carries that checksum (and reports it),
    // so that Complete can build the object's.
    let upload_algorithm = live_upload(cx).await?.checksum_algorithm;
    let algorithm = upload_algorithm.unwrap_or(ChecksumAlgorithm::Crc64Nvme);
    let (source, reported) = copy::source_object(cx, &req.headers).await?;
    let range = copy::source_range(&req.headers, source.size)?.unwrap_or(0..source.size);
    if range.end - range.start > MAX_PUT_SIZE {
        return Err(crate::s3::S3Error::new(crate::s3::S3ErrorCode::EntityTooLarge));
    }
    let storage = Arc::clone(&cx.s3.storage);
    let (bucket, key, id) = (cx.bucket()?.name.clone(), cx.key()?.to_owned(), super::upload_id(cx).to_owned());
    let resource = format!("/{bucket}/{key}");
    let work = async move {
        let commit = |mut part: PartRecord, shared: bool| {
            part.part_number = number;
            let (storage, bucket, key, id) = (Arc::clone(&storage), &bucket, &key, &id);
            async move {
                if shared {
                    storage.put_part_shared(bucket, key, id, part).await
                } else {
                    storage.put_part(bucket, key, id, part).await
                }
            }
        };
        let keep = data::Keep::InBlob;
        let (part, _) =
            copy::copy_part(&storage, source, range, algorithm, keep, commit, |e| part_error(e, &id)).await?;
        let (etag, modified) = (hex::encode(part.md5), part.last_modified);
        let mut w = XmlWriter::new("CopyPartResult");
        w.elem("LastModified", &modified.to_xml()).elem("ETag", &data::quoted(&etag));
        if let Some(value) = upload_algorithm.and_then(|a| part.checksum(a)) {
            w.elem(algorithm.xml_name(), value);
        }
        Ok(Done { doc: w.finish(), headers: reported })
    };
    keepalive::respond(work, req.ids.clone(), resource).await
}

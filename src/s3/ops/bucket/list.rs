//! ListBuckets: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html>

use base64::Engine;

use crate::s3::xml::XmlWriter;
use crate::s3::{Ctx, S3Error, S3Request, S3Response};
use crate::storage::ListBucketsQuery;

const MAX_BUCKETS: usize = 10_000;
const TOKEN: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub async fn call(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let max = match cx.query.get("max-buckets") {
        None => MAX_BUCKETS,
        Some(v) => v.parse::<usize>().ok().filter(|n| (1..=MAX_BUCKETS).contains(n)).ok_or_else(|| {
            S3Error::invalid_argument("Argument max-buckets must be an integer between 1 and 10000", "max-buckets", v)
        })?,
    };
    let start_after = match cx.query.get("continuation-token") {
        None => None,
        Some(token) => Some(TOKEN.decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
            S3Error::invalid_argument("The continuation token provided is incorrect", "continuation-token", token)
        })?),
    };
    let prefix = cx.query.get("prefix").unwrap_or("");
    let region_filter = cx.query.get("bucket-region");
    let page = cx
        .s3
        .meta
        .list_buckets(&ListBucketsQuery {
            owner_id: Some(cx.auth.identity.id.clone()),
            prefix: prefix.to_owned(),
            start_after,
            max,
        })
        .await?;

    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    w.start("Buckets");
    for b in page.buckets.iter().filter(|b| region_filter.is_none_or(|r| r == b.region)) {
        w.start("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", &b.created.to_xml())
            .elem("BucketRegion", &b.region)
            .end();
    }
    w.end();
    w.start("Owner").elem("ID", &cx.auth.identity.id).elem("DisplayName", &cx.auth.identity.display_name).end();
    if let Some(next) = &page.next_start_after {
        w.elem("ContinuationToken", &TOKEN.encode(next));
    }
    if cx.query.has("prefix") {
        w.elem("Prefix", prefix);
    }
    Ok(S3Response::xml(w.finish()))
}

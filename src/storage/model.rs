//! Domain records the stores keep. Plain data: validation happens before they get here.

use serde::{Deserialize, Serialize};

use super::{Entry, Grouped};
use crate::clock::Timestamp;

/// A user as S3 shows it in `<Owner>` and `<Initiator>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub owner: Owner,
    pub region: String,
    pub created: Timestamp,
}

/// The standard HTTP headers stored with an object (or an upload that will become one).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentHeaders {
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_type: Option<String>,
    pub expires: Option<String>,
    pub website_redirect_location: Option<String>,
}

/// A multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub owner: Owner,
    pub initiator: Owner,
    pub initiated: Timestamp,
    pub storage_class: String,
    pub headers: ContentHeaders,
    /// `x-amz-meta-*` pairs, names lower-case without the prefix, in request order.
    pub user_metadata: Vec<(String, String)>,
    /// Object tags from `x-amz-tagging`, in request order.
    pub tags: Vec<(String, String)>,
    /// `x-amz-checksum-algorithm`, upper-case (`CRC32`, …).
    pub checksum_algorithm: Option<String>,
    /// `COMPOSITE` or `FULL_OBJECT`.
    pub checksum_type: Option<String>,
}

/// ListBuckets parameters. `start_after` is the `next_start_after` of a previous page.
#[derive(Clone, Debug, Default)]
pub struct ListBucketsQuery {
    /// Only buckets of this owner.
    pub owner_id: String,
    pub prefix: String,
    pub start_after: Option<String>,
    pub max: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketPage {
    pub buckets: Vec<BucketRecord>,
    /// Where the next page starts, when this one was truncated.
    pub next_start_after: Option<String>,
}

/// ListMultipartUploads parameters, already validated.
#[derive(Clone, Debug, Default)]
pub struct ListUploadsQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    /// Only meaningful with `key_marker`; must name an upload of that key.
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadPage {
    pub uploads: Vec<UploadRecord>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The key (or common prefix) and upload id the page ended with.
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

impl UploadPage {
    pub fn from_grouped(grouped: Grouped<UploadRecord>) -> Self {
        let mut page = UploadPage {
            is_truncated: grouped.truncated,
            ..UploadPage::default()
        };
        for e in grouped.entries {
            match e {
                Entry::Item(u) => {
                    page.next_key_marker = Some(u.key.clone());
                    page.next_upload_id_marker = Some(u.upload_id.clone());
                    page.uploads.push(u);
                }
                Entry::CommonPrefix(p) => {
                    page.next_key_marker = Some(p.clone());
                    page.next_upload_id_marker = None;
                    page.common_prefixes.push(p);
                }
            }
        }
        page
    }
}

//! Domain records the stores keep. Plain data: validation happens before they get here.

use serde::{Deserialize, Serialize};

use super::{BlobId, Entry, Grouped};
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
        let mut page = UploadPage { is_truncated: grouped.truncated, ..UploadPage::default() };
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

/// One stored part: of an upload in progress, or of a finished object's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub part_number: u32,
    pub blob: BlobId,
    pub size: u64,
    /// MD5 of the part's bytes: its ETag, and an input of the multipart ETag.
    pub md5: [u8; 16],
    pub last_modified: Timestamp,
    /// Flexible checksums of the part (`CRC32` → base64 value), as sent or computed.
    pub checksums: Vec<(String, String)>,
}

/// A stored object. Its bytes are the concatenation of `parts` (one for a single PUT): a
/// completed multipart upload becomes an object without copying a byte.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Without quotes: hex MD5, or hex MD5 of the part MD5s with `-N`.
    pub etag: String,
    pub last_modified: Timestamp,
    pub owner: Owner,
    pub storage_class: String,
    pub headers: ContentHeaders,
    pub user_metadata: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub parts: Vec<PartRecord>,
    /// Whether the object came from a multipart upload (then `?partNumber=N` addresses parts).
    pub multipart: bool,
    /// Whole-object flexible checksum: (algorithm, type, base64 value).
    pub checksum: Option<(String, String, String)>,
}

impl ObjectRecord {
    pub fn blobs(&self) -> impl Iterator<Item = &BlobId> {
        self.parts.iter().map(|p| &p.blob)
    }
}

/// A condition a write must meet at commit time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WriteCondition {
    #[default]
    None,
    /// `If-None-Match: *`: no current object.
    IfAbsent,
    /// `If-Match: <etag>`: the current object has this ETag (unquoted).
    IfMatch(String),
}

impl WriteCondition {
    /// Checks the condition against the current object.
    pub fn check(&self, current: Option<&ObjectRecord>) -> Result<(), super::StorageError> {
        use super::{Resource, StorageError};
        match (self, current) {
            (WriteCondition::None, _) => Ok(()),
            (WriteCondition::IfAbsent, None) => Ok(()),
            (WriteCondition::IfAbsent, Some(_)) => Err(StorageError::PreconditionFailed),
            (WriteCondition::IfMatch(_), None) => Err(StorageError::NotFound(Resource::Object)),
            (WriteCondition::IfMatch(etag), Some(o)) if *etag == o.etag => Ok(()),
            (WriteCondition::IfMatch(_), Some(_)) => Err(StorageError::PreconditionFailed),
        }
    }
}

/// ListObjects parameters; `start_after` is exclusive (marker, start-after or the decoded
/// continuation token).
#[derive(Clone, Debug, Default)]
pub struct ListObjectsQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub start_after: Option<String>,
    pub max: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectPage {
    pub objects: Vec<ObjectRecord>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix of the page.
    pub last: Option<String>,
}

impl ObjectPage {
    pub fn from_grouped(grouped: Grouped<ObjectRecord>) -> Self {
        let mut page = ObjectPage { is_truncated: grouped.truncated, ..ObjectPage::default() };
        for e in grouped.entries {
            match e {
                Entry::Item(o) => {
                    page.last = Some(o.key.clone());
                    page.objects.push(o);
                }
                Entry::CommonPrefix(p) => {
                    page.last = Some(p.clone());
                    page.common_prefixes.push(p);
                }
            }
        }
        page
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartPage {
    pub parts: Vec<PartRecord>,
    pub is_truncated: bool,
}

/// What a successful CompleteMultipartUpload superseded (its blobs are garbage now).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompleteOutcome {
    /// The object the new one replaced.
    pub replaced: Option<ObjectRecord>,
    /// Parts uploaded but not named in the request.
    pub discarded: Vec<PartRecord>,
}

/// What the metadata store knows about a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobState {
    /// An object or a part refers to it: it must not be deleted.
    Referenced,
    /// Nothing refers to it any more, since this time; the collector reclaims it after the
    /// grace period.
    Garbage(Timestamp),
    /// The store has no record of it: an orphan of a crash, or a write not yet committed.
    Unknown,
}

/// A blob that stopped being referenced at `since`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GarbageRecord {
    pub since: Timestamp,
    pub blob: BlobId,
}

/// Blobs a long-running read (a GET, the source of a copy) is still reading, until `expires`
/// unless renewed. Every node's collector honours every node's leases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub blobs: Vec<BlobId>,
    pub expires: Timestamp,
}

/// Remembers a completed upload so that a retried Complete gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub etag: String,
    pub size: u64,
    pub checksum: Option<(String, String, String)>,
    pub completed: Timestamp,
}

impl CompletedUpload {
    /// The completion of `upload_id` that produced `object`.
    pub fn of(object: &ObjectRecord, upload_id: &str) -> Self {
        CompletedUpload {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            upload_id: upload_id.to_owned(),
            etag: object.etag.clone(),
            size: object.size,
            checksum: object.checksum.clone(),
            completed: object.last_modified,
        }
    }
}

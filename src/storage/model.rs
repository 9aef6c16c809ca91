//! Domain records the stores keep. Plain data: validation happens before they get here.

use serde::{Deserialize, Serialize};

use super::{BlobId, Entry, Grouped, VersionId, VersionKey, Versioning};
use crate::clock::Timestamp;

/// Storage classes s3d stores objects in (all on the same disks: the class is recorded and
/// reported, as clients expect).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageClass {
    #[default]
    Standard,
    ReducedRedundancy,
}

impl StorageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [StorageClass::Standard, StorageClass::ReducedRedundancy].into_iter().find(|c| c.as_str() == s)
    }
}

/// Flexible-checksum algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
    Sha512,
    Md5,
    Xxhash64,
    Xxhash3,
    Xxhash128,
}

/// How a multipart object's checksum is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumType {
    Composite,
    FullObject,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 10] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha512,
        ChecksumAlgorithm::Md5,
        ChecksumAlgorithm::Xxhash64,
        ChecksumAlgorithm::Xxhash3,
        ChecksumAlgorithm::Xxhash128,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
            ChecksumAlgorithm::Sha512 => "SHA512",
            ChecksumAlgorithm::Md5 => "MD5",
            ChecksumAlgorithm::Xxhash64 => "XXHASH64",
            ChecksumAlgorithm::Xxhash3 => "XXHASH3",
            ChecksumAlgorithm::Xxhash128 => "XXHASH128",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// The checksum types AWS allows with this algorithm.
    pub fn allows(self, t: ChecksumType) -> bool {
        match self {
            ChecksumAlgorithm::Crc64Nvme => t == ChecksumType::FullObject,
            // Digests cannot be combined: whole-object values of multipart objects are composite.
            ChecksumAlgorithm::Sha1
            | ChecksumAlgorithm::Sha256
            | ChecksumAlgorithm::Sha512
            | ChecksumAlgorithm::Md5
            | ChecksumAlgorithm::Xxhash64
            | ChecksumAlgorithm::Xxhash3
            | ChecksumAlgorithm::Xxhash128 => t == ChecksumType::Composite,
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => true,
        }
    }

    /// The type used when the client names only the algorithm.
    pub fn default_type(self) -> ChecksumType {
        match self {
            ChecksumAlgorithm::Crc64Nvme => ChecksumType::FullObject,
            _ => ChecksumType::Composite,
        }
    }
}

impl ChecksumType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumType::Composite => "COMPOSITE",
            ChecksumType::FullObject => "FULL_OBJECT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ChecksumType::Composite, ChecksumType::FullObject].into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// Which bucket setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BucketSettingKind {
    Tagging,
    Lifecycle,
    Cors,
    Policy,
    PublicAccessBlock,
    Acl,
    OwnershipControls,
}

impl BucketSettingKind {
    pub const ALL: [BucketSettingKind; 7] = [
        BucketSettingKind::Tagging,
        BucketSettingKind::Lifecycle,
        BucketSettingKind::Cors,
        BucketSettingKind::Policy,
        BucketSettingKind::PublicAccessBlock,
        BucketSettingKind::Acl,
        BucketSettingKind::OwnershipControls,
    ];
}

/// What an ACL grant allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    FullControl,
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

impl Permission {
    pub const ALL: [Permission; 5] =
        [Permission::FullControl, Permission::Read, Permission::Write, Permission::ReadAcp, Permission::WriteAcp];

    /// As AWS writes it: `FULL_CONTROL`, `READ`, `WRITE`, `READ_ACP`, `WRITE_ACP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FullControl => "FULL_CONTROL",
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a grant of `self` allows `wanted`.
    pub fn allows(self, wanted: Permission) -> bool {
        self == Permission::FullControl || self == wanted
    }
}

/// Who an ACL grant is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Grantee {
    /// A user, by id (the canonical user id).
    User(String),
    /// Everyone, anonymous callers included.
    AllUsers,
    /// Every signed request.
    AuthenticatedUsers,
    /// S3's log delivery group (it grants no s3d user anything).
    LogDelivery,
}

/// One grant of an access control list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// Who owns a bucket's new objects, and whether ACLs count (AWS's object ownership).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectOwnership {
    /// ACLs are disabled; the bucket's owner owns every object (AWS's default for new buckets).
    BucketOwnerEnforced,
    /// The bucket's owner owns objects written with the `bucket-owner-full-control` ACL.
    BucketOwnerPreferred,
    /// The writer owns what it writes (a bucket without ownership controls behaves so).
    ObjectWriter,
}

impl ObjectOwnership {
    pub const ALL: [ObjectOwnership; 3] =
        [ObjectOwnership::BucketOwnerEnforced, ObjectOwnership::BucketOwnerPreferred, ObjectOwnership::ObjectWriter];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectOwnership::BucketOwnerEnforced => "BucketOwnerEnforced",
            ObjectOwnership::BucketOwnerPreferred => "BucketOwnerPreferred",
            ObjectOwnership::ObjectWriter => "ObjectWriter",
        }
    }

    pub fn parse(s: &str) -> Option<ObjectOwnership> {
        ObjectOwnership::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A bucket's public access block: AWS's four switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// What a bucket has until it is changed: everything blocked, as AWS sets new buckets.
    pub const DEFAULT: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
}

/// A bucket setting other than its versioning state (which every write reads, so it lives in
/// the bucket record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BucketSetting {
    Tagging(Vec<(String, String)>),
    Lifecycle(super::LifecycleConfiguration),
    Cors(super::CorsConfiguration),
    /// A bucket policy, as the JSON document it was set with.
    Policy(String),
    /// The public access block (new buckets get [`PublicAccessBlock::DEFAULT`]).
    PublicAccessBlock(PublicAccessBlock),
    /// The bucket's ACL grants (without one: its owner's full control).
    Acl(Vec<Grant>),
    /// The object ownership; `None`: the bucket has no ownership controls (they were
    /// deleted), so it behaves as `ObjectWriter`. A bucket without this setting has ACLs
    /// disabled (`BucketOwnerEnforced`), as AWS creates buckets and as s3d buckets were before
    /// ACLs existed.
    OwnershipControls(Option<ObjectOwnership>),
}

impl BucketSetting {
    pub fn kind(&self) -> BucketSettingKind {
        match self {
            BucketSetting::Tagging(_) => BucketSettingKind::Tagging,
            BucketSetting::Lifecycle(_) => BucketSettingKind::Lifecycle,
            BucketSetting::Cors(_) => BucketSettingKind::Cors,
            BucketSetting::Policy(_) => BucketSettingKind::Policy,
            BucketSetting::PublicAccessBlock(_) => BucketSettingKind::PublicAccessBlock,
            BucketSetting::Acl(_) => BucketSettingKind::Acl,
            BucketSetting::OwnershipControls(_) => BucketSettingKind::OwnershipControls,
        }
    }
}

/// A claim on a piece of background work (a bucket's lifecycle run), so that when several
/// processes share a store one acts at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkClaim {
    pub holder: String,
    pub until: Timestamp,
}

/// A whole object's flexible checksum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub kind: ChecksumType,
    /// Base64, with `-N` for composite values of N parts.
    pub value: String,
}

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
    pub versioning: Versioning,
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
    pub storage_class: StorageClass,
    pub headers: ContentHeaders,
    /// `x-amz-meta-*` pairs, names lower-case without the prefix, in request order.
    pub user_metadata: Vec<(String, String)>,
    /// Object tags from `x-amz-tagging`, in request order.
    pub tags: Vec<(String, String)>,
    /// `x-amz-checksum-algorithm`.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub checksum_type: Option<ChecksumType>,
    /// The ACL the object gets (from the initiating request's ACL headers).
    pub acl: Option<Vec<Grant>>,
}

/// ListBuckets parameters. `start_after` is the `next_start_after` of a previous page.
#[derive(Clone, Debug, Default)]
pub struct ListBucketsQuery {
    /// Only buckets of this owner (all buckets without one: the lifecycle worker's view).
    pub owner_id: Option<String>,
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
    /// Flexible checksums of the part (base64 values), as sent or computed.
    pub checksums: Vec<(ChecksumAlgorithm, String)>,
    /// The bytes themselves, for a small object kept inside its metadata record (one synced
    /// commit, no file); then `blob` names no blob. Parts of uploads are never inline.
    pub inline: Option<bytes::Bytes>,
}

impl PartRecord {
    pub fn checksum(&self, algorithm: ChecksumAlgorithm) -> Option<&str> {
        self.checksums.iter().find(|(a, _)| *a == algorithm).map(|(_, v)| v.as_str())
    }

    /// The blob holding the bytes, unless they are inline.
    pub fn stored_blob(&self) -> Option<&BlobId> {
        self.inline.is_none().then_some(&self.blob)
    }
}

/// One version of an object: its bytes are the concatenation of `parts` (one for a single
/// PUT: a completed multipart upload becomes an object without copying a byte), or, for a
/// delete marker, nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    /// How clients name this version; the store assigns it when the version is written.
    pub version_id: VersionId,
    /// Where the version sorts among the key's versions (newest first).
    pub version_key: VersionKey,
    pub delete_marker: bool,
    pub size: u64,
    /// Without quotes: hex MD5, or hex MD5 of the part MD5s with `-N`.
    pub etag: String,
    pub last_modified: Timestamp,
    pub owner: Owner,
    pub storage_class: StorageClass,
    pub headers: ContentHeaders,
    pub user_metadata: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub parts: Vec<PartRecord>,
    /// Whether the object came from a multipart upload (then `?partNumber=N` addresses parts).
    pub multipart: bool,
    pub checksum: Option<ObjectChecksum>,
    /// The version's ACL grants; `None`: its owner's full control (and in buckets whose ACLs
    /// are disabled, always that).
    pub acl: Option<Vec<Grant>>,
}

impl ObjectRecord {
    /// The blobs holding the object's bytes (none for an inline object or a marker).
    pub fn blobs(&self) -> impl Iterator<Item = &BlobId> {
        self.parts.iter().filter_map(PartRecord::stored_blob)
    }

    /// What a listing of objects shows of this version: everything but its parts, content
    /// headers and user metadata.
    pub fn listed(&self) -> ObjectRecord {
        ObjectRecord {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version_id: self.version_id,
            version_key: self.version_key,
            delete_marker: self.delete_marker,
            size: self.size,
            etag: self.etag.clone(),
            last_modified: self.last_modified,
            owner: self.owner.clone(),
            storage_class: self.storage_class,
            headers: ContentHeaders::default(),
            user_metadata: Vec::new(),
            tags: self.tags.clone(),
            parts: Vec::new(),
            multipart: self.multipart,
            checksum: self.checksum.clone(),
            acl: None,
        }
    }

    /// A delete marker for `key`, owned by `owner`; the store gives it its version.
    pub fn delete_marker(bucket: &str, key: &str, owner: Owner, now: Timestamp) -> ObjectRecord {
        ObjectRecord {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: VersionId::Null,
            version_key: VersionKey([0; 20]),
            delete_marker: true,
            size: 0,
            etag: String::new(),
            last_modified: now,
            owner,
            storage_class: StorageClass::Standard,
            headers: ContentHeaders::default(),
            user_metadata: Vec::new(),
            tags: Vec::new(),
            parts: Vec::new(),
            multipart: false,
            checksum: None,
            acl: None,
        }
    }
}

/// A change to an existing version that leaves its bytes alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectChange {
    Tags(Vec<(String, String)>),
    /// New grants (`None`: back to its owner's full control) for the version `of`, which
    /// the caller was judged against: if another version took its place (an overwrite of
    /// a `null` version), the change fails with `PreconditionFailed`.
    Acl {
        grants: Option<Vec<Grant>>,
        of: VersionKey,
    },
}

impl ObjectChange {
    /// Applies the change to `o`, the version it addresses now.
    pub fn apply(self, o: &mut ObjectRecord) -> Result<(), super::StorageError> {
        match self {
            ObjectChange::Tags(t) => o.tags = t,
            ObjectChange::Acl { of, .. } if of != o.version_key => return Err(super::StorageError::PreconditionFailed),
            ObjectChange::Acl { grants, .. } => o.acl = grants,
        }
        Ok(())
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
    /// Checks the condition against the latest version (a delete marker counts as no object).
    pub fn check(&self, current: Option<&ObjectRecord>) -> Result<(), super::StorageError> {
        use super::{Resource, StorageError};
        match (self, current.filter(|o| !o.delete_marker)) {
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
        let mut page = ObjectPage {
            is_truncated: grouped.truncated,
            objects: Vec::with_capacity(grouped.entries.len()),
            ..ObjectPage::default()
        };
        page.last = grouped.entries.last().map(|e| match e {
            Entry::Item(o) => o.key.clone(),
            Entry::CommonPrefix(p) => p.clone(),
        });
        for e in grouped.entries {
            match e {
                Entry::Item(o) => page.objects.push(o),
                Entry::CommonPrefix(p) => page.common_prefixes.push(p),
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

/// What a write of a version did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutOutcome {
    /// The version written.
    pub version_id: VersionId,
    /// A version it replaced outright (the `null` version of an unversioned or suspended
    /// bucket); its blobs are garbage now. In a versioning-enabled bucket, nothing is.
    pub replaced: Option<ObjectRecord>,
}

/// What a DeleteObject did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// A version removed for good (its blobs are garbage now).
    pub removed: Option<ObjectRecord>,
    /// A delete marker written (in a versioning-enabled or suspended bucket, without a version id).
    pub marker: Option<ObjectRecord>,
}

/// What a successful CompleteMultipartUpload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleteOutcome {
    pub version_id: VersionId,
    /// The version the new one replaced outright, as for [`PutOutcome::replaced`].
    pub replaced: Option<ObjectRecord>,
    /// Parts uploaded but not named in the request; their blobs are garbage now.
    pub discarded: Vec<PartRecord>,
}

/// ListObjectVersions parameters. With `key_marker`, the page starts after that key's
/// version `version_id_marker` (after all its versions without one).
#[derive(Clone, Debug, Default)]
pub struct ListVersionsQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub version_id_marker: Option<VersionId>,
    pub max: usize,
}

/// One line of a version listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    pub object: ObjectRecord,
    pub is_latest: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionPage {
    pub versions: Vec<VersionEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// Where the next page starts: the last key (or common prefix) and, after a version,
    /// its id.
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<VersionId>,
}

impl VersionPage {
    pub fn from_grouped(grouped: Grouped<VersionEntry>) -> Self {
        let mut page = VersionPage { is_truncated: grouped.truncated, ..VersionPage::default() };
        for e in grouped.entries {
            match e {
                Entry::Item(v) => {
                    page.next_key_marker = Some(v.object.key.clone());
                    page.next_version_id_marker = Some(v.object.version_id);
                    page.versions.push(v);
                }
                Entry::CommonPrefix(p) => {
                    page.next_key_marker = Some(p.clone());
                    page.next_version_id_marker = None;
                    page.common_prefixes.push(p);
                }
            }
        }
        page
    }
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

/// A user and its access key, as every node authenticates it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The canonical id (`<Owner><ID>`).
    pub id: String,
    /// The display name.
    pub name: String,
    pub access_key: String,
    /// SigV4 needs the secret itself to check signatures: the store keeps it as given.
    pub secret_key: String,
    /// May manage users through the admin endpoint.
    pub admin: bool,
    /// Seeded from `[[users]]`: removed from the store when the configuration no longer
    /// lists it (users added at run time stay).
    pub from_config: bool,
    pub created: Timestamp,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("admin", &self.admin)
            .field("from_config", &self.from_config)
            .finish()
    }
}

/// Remembers a completed upload so that a retried Complete gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub etag: String,
    pub size: u64,
    pub checksum: Option<ObjectChecksum>,
    pub completed: Timestamp,
    pub version_id: VersionId,
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
            version_id: object.version_id,
        }
    }
}

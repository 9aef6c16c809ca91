//! One behavioural suite run against every [`MetadataStore`], plus close-and-reopen for the
//! persistent ones.

use super::*;
use crate::clock::Timestamp;
use crate::storage::memory::MemoryMetadataStore;
use crate::storage::postgres::PostgresMetadataStore;
use crate::storage::rocks::RocksMetadataStore;
use crate::testing::TestPostgres;

fn owner(id: &str) -> Owner {
    Owner { id: id.into(), display_name: format!("{id}-name") }
}

pub(super) fn bucket(name: &str, owner_id: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        owner: owner(owner_id),
        region: "us-east-1".into(),
        created: Timestamp(1_000),
        versioning: Versioning::Unversioned,
    }
}

pub(super) fn upload(bucket: &str, key: &str, id: &str, initiated: i64) -> UploadRecord {
    UploadRecord {
        bucket: bucket.into(),
        key: key.into(),
        upload_id: id.into(),
        owner: owner("alice"),
        initiator: owner("alice"),
        initiated: Timestamp(initiated),
        storage_class: StorageClass::Standard,
        headers: ContentHeaders { content_type: Some("text/plain".into()), ..ContentHeaders::default() },
        user_metadata: vec![("color".into(), "blue".into())],
        tags: vec![],
        checksum_algorithm: Some(ChecksumAlgorithm::Crc32),
        checksum_type: Some(ChecksumType::Composite),
        acl: None,
    }
}

fn list_q(
    prefix: &str,
    delimiter: Option<&str>,
    key_marker: Option<&str>,
    id_marker: Option<&str>,
    max: usize,
) -> ListUploadsQuery {
    ListUploadsQuery {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        key_marker: key_marker.map(Into::into),
        upload_id_marker: id_marker.map(Into::into),
        max_uploads: max,
    }
}

fn ids(page: &UploadPage) -> Vec<&str> {
    page.uploads.iter().map(|u| u.upload_id.as_str()).collect()
}

async fn buckets(store: &dyn MetadataStore) {
    store.health().await.expect("healthy");
    store.create_bucket(bucket("b1", "alice")).await.expect("create");
    assert!(matches!(
        store.create_bucket(bucket("b1", "bob")).await,
        Err(StorageError::BucketExists { owner_id }) if owner_id == "alice"
    ));
    assert_eq!(store.get_bucket("b1").await.expect("get"), Some(bucket("b1", "alice")));
    assert_eq!(store.get_bucket("nope").await.expect("get"), None);
    for name in ["b2", "c1", "c2"] {
        store.create_bucket(bucket(name, "alice")).await.expect("create");
    }
    store.create_bucket(bucket("b3", "bob")).await.expect("create");

    let q = |prefix: &str, after: Option<&str>, max| ListBucketsQuery {
        owner_id: Some("alice".into()),
        prefix: prefix.into(),
        start_after: after.map(Into::into),
        max,
    };
    let names = |p: &BucketPage| p.buckets.iter().map(|b| b.name.clone()).collect::<Vec<_>>();
    let all = store.list_buckets(&q("", None, 100)).await.expect("list");
    assert_eq!(names(&all), ["b1", "b2", "c1", "c2"]);
    let everyone = ListBucketsQuery { owner_id: None, prefix: "b".into(), start_after: None, max: 100 };
    assert_eq!(names(&store.list_buckets(&everyone).await.expect("list")), ["b1", "b2", "b3"]);
    assert_eq!(all.next_start_after, None);
    let p1 = store.list_buckets(&q("", None, 3)).await.expect("list");
    assert_eq!(names(&p1), ["b1", "b2", "c1"]);
    assert_eq!(p1.next_start_after.as_deref(), Some("c1"));
    let p2 = store.list_buckets(&q("", Some("c1"), 3)).await.expect("list");
    assert_eq!(names(&p2), ["c2"]);
    assert_eq!(p2.next_start_after, None);
    assert_eq!(names(&store.list_buckets(&q("c", None, 100)).await.expect("list")), ["c1", "c2"]);
    assert_eq!(names(&store.list_buckets(&q("b", Some("b1"), 100)).await.expect("list")), ["b2"]);

    store.delete_bucket("c2").await.expect("delete");
    assert!(matches!(store.delete_bucket("c2").await, Err(StorageError::NotFound(Resource::Bucket))));
    assert_eq!(store.get_bucket("c2").await.expect("get"), None);
}

async fn uploads(store: &dyn MetadataStore) {
    store.create_bucket(bucket("ub", "alice")).await.expect("create");
    store.create_bucket(bucket("ua", "alice")).await.expect("create");
    store.create_bucket(bucket("uc", "alice")).await.expect("create");
    assert!(matches!(
        store.create_upload(upload("missing", "k", "id0", 1)).await,
        Err(StorageError::NotFound(Resource::Bucket))
    ));
    // Deliberately created out of order: listing sorts by key, then initiation time.
    for (key, id, t) in [
        ("b/2", "id5", 50),
        ("a", "id2", 20),
        ("a", "id1", 10),
        ("b/1", "id4", 40),
        ("c", "id6", 60),
        ("a\0z", "id3", 30),
        ("", "id0", 5),
    ] {
        store.create_upload(upload("ub", key, id, t)).await.expect("create upload");
    }
    // Neighbouring buckets must not leak into listings.
    store.create_upload(upload("ua", "a", "other1", 1)).await.expect("create upload");
    store.create_upload(upload("uc", "", "other2", 1)).await.expect("create upload");
    assert!(matches!(store.create_upload(upload("ub", "x", "id1", 1)).await, Err(StorageError::Conflict)));

    let u = store.get_upload("ub", "a", "id2").await.expect("get");
    assert_eq!(u, upload("ub", "a", "id2", 20));
    assert!(matches!(store.get_upload("ub", "b/1", "id2").await, Err(StorageError::NotFound(Resource::Upload))));
    assert!(matches!(store.get_upload("ua", "a", "id2").await, Err(StorageError::NotFound(Resource::Upload))));

    let all = store.list_uploads("ub", &list_q("", None, None, None, 1000)).await.expect("list");
    assert_eq!(ids(&all), ["id0", "id1", "id2", "id3", "id4", "id5", "id6"]);
    assert!(!all.is_truncated);

    let grouped = store.list_uploads("ub", &list_q("", Some("/"), None, None, 1000)).await.expect("list");
    assert_eq!(ids(&grouped), ["id0", "id1", "id2", "id3", "id6"]);
    assert_eq!(grouped.common_prefixes, ["b/"]);

    let prefixed = store.list_uploads("ub", &list_q("b/", Some("/"), None, None, 1000)).await.expect("list");
    assert_eq!(ids(&prefixed), ["id4", "id5"]);

    // Paging by max-uploads with markers.
    let p1 = store.list_uploads("ub", &list_q("", None, None, None, 2)).await.expect("list");
    assert_eq!(ids(&p1), ["id0", "id1"]);
    assert!(p1.is_truncated);
    assert_eq!((p1.next_key_marker.as_deref(), p1.next_upload_id_marker.as_deref()), (Some("a"), Some("id1")));
    let p2 = store.list_uploads("ub", &list_q("", None, Some("a"), Some("id1"), 2)).await.expect("list");
    assert_eq!(ids(&p2), ["id2", "id3"]);
    let after_key = store.list_uploads("ub", &list_q("", None, Some("a"), None, 1000)).await.expect("list");
    assert_eq!(ids(&after_key), ["id3", "id4", "id5", "id6"]);
    // A page that ended on a common prefix continues after it.
    let cp = store.list_uploads("ub", &list_q("", Some("/"), Some("b/"), None, 1000)).await.expect("list");
    assert_eq!(ids(&cp), ["id6"]);
    assert!(cp.common_prefixes.is_empty());
    let cp_page = store.list_uploads("ub", &list_q("", Some("/"), Some("a\0z"), None, 1)).await.expect("list");
    assert_eq!(cp_page.common_prefixes, ["b/"]);
    assert!(cp_page.is_truncated);
    assert_eq!((cp_page.next_key_marker.as_deref(), cp_page.next_upload_id_marker.as_deref()), (Some("b/"), None));
    // An upload-id-marker that names no upload of the key-marker is an error.
    assert!(matches!(
        store.list_uploads("ub", &list_q("", None, Some("a"), Some("id4"), 10)).await,
        Err(StorageError::NotFound(Resource::Upload))
    ));
    // A key-marker before the prefix starts at the prefix.
    let before = store.list_uploads("ub", &list_q("c", None, Some("a"), None, 10)).await.expect("list");
    assert_eq!(ids(&before), ["id6"]);

    // Deleting needs the right key; afterwards the upload is gone from everything.
    assert!(matches!(store.delete_upload("ub", "c", "id2").await, Err(StorageError::NotFound(Resource::Upload))));
    assert_eq!(store.delete_upload("ub", "a", "id2").await.expect("delete").0.upload_id, "id2");
    assert!(matches!(store.delete_upload("ub", "a", "id2").await, Err(StorageError::NotFound(Resource::Upload))));
    assert!(matches!(store.get_upload("ub", "a", "id2").await, Err(StorageError::NotFound(Resource::Upload))));
    let rest = store.list_uploads("ub", &list_q("", None, None, None, 1000)).await.expect("list");
    assert_eq!(ids(&rest), ["id0", "id1", "id3", "id4", "id5", "id6"]);
    for (k, id) in [("", "id0"), ("a", "id1"), ("a\0z", "id3"), ("b/1", "id4"), ("b/2", "id5"), ("c", "id6")] {
        store.delete_upload("ub", k, id).await.expect("delete");
    }
    store.delete_bucket("ub").await.expect("empty bucket deletes");
}

fn part(n: u32, blob: &str) -> PartRecord {
    PartRecord {
        part_number: n,
        blob: BlobId(blob.into()),
        size: u64::from(n) * 10,
        md5: [n as u8; 16],
        last_modified: Timestamp(n.into()),
        checksums: vec![(ChecksumAlgorithm::Crc32, "AAAAAA==".into())],
        inline: None,
    }
}

pub(super) fn object(bucket: &str, key: &str, blobs: &[&str]) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        version_id: VersionId::Null,
        version_key: VersionKey([0; 20]),
        delete_marker: false,
        size: 10,
        etag: format!("etag-{key}"),
        last_modified: Timestamp(5),
        owner: owner("alice"),
        storage_class: StorageClass::Standard,
        headers: ContentHeaders::default(),
        user_metadata: vec![],
        tags: vec![],
        parts: blobs.iter().enumerate().map(|(i, b)| part(i as u32 + 1, b)).collect(),
        multipart: blobs.len() > 1,
        checksum: None,
        acl: None,
    }
}

/// A stored version equals `expected` but for the version the store gave it.
fn same(stored: Option<ObjectRecord>, expected: &ObjectRecord) {
    let stored = stored.expect("a version");
    let unversioned = ObjectRecord { version_id: VersionId::Null, version_key: VersionKey([0; 20]), ..stored };
    assert_eq!(&unversioned, expected);
}

async fn state(store: &dyn MetadataStore, blob: &str) -> BlobState {
    store.blob_states(&[BlobId(blob.into())]).await.expect("blob_states")[0]
}

async fn in_use(store: &dyn MetadataStore, blob: &str) -> bool {
    state(store, blob).await == BlobState::Referenced
}

async fn is_garbage(store: &dyn MetadataStore, blob: &str) -> bool {
    matches!(state(store, blob).await, BlobState::Garbage(_))
}

async fn objects(store: &dyn MetadataStore) {
    store.create_bucket(bucket("ob", "alice")).await.expect("create");
    store.create_bucket(bucket("oc", "alice")).await.expect("create");
    assert!(matches!(
        store.put_object(object("missing", "k", &["b0"]), &WriteCondition::None).await,
        Err(StorageError::NotFound(Resource::Bucket))
    ));
    for k in ["b/1", "a", "b/2", "c", "a\0z", ""] {
        let out = store.put_object(object("ob", k, &[&format!("blob-{k}")]), &WriteCondition::None).await.expect("put");
        assert_eq!(out, PutOutcome { version_id: VersionId::Null, replaced: None });
    }
    store.put_object(object("oc", "a", &["other"]), &WriteCondition::None).await.expect("put");
    // A null version replacing another is dated after it, whatever the clock says.
    store.put_object(at(object("oc", "t", &["t1"]), 50), &WriteCondition::None).await.expect("put");
    store.put_object(at(object("oc", "t", &["t2"]), 40), &WriteCondition::None).await.expect("put");
    let t = store.get_object("oc", "t", None).await.expect("get").expect("t");
    assert_eq!((t.parts[0].blob.0.as_str(), t.version_key.time()), ("t2", Timestamp(51)));
    same(store.get_object("ob", "a", None).await.expect("get"), &object("ob", "a", &["blob-a"]));
    assert!(in_use(store, "blob-a").await);

    // Conditional writes.
    assert!(matches!(
        store.put_object(object("ob", "a", &["x"]), &WriteCondition::IfAbsent).await,
        Err(StorageError::PreconditionFailed)
    ));
    assert!(matches!(
        store.put_object(object("ob", "zz", &["x"]), &WriteCondition::IfMatch("etag-zz".into())).await,
        Err(StorageError::NotFound(Resource::Object))
    ));
    assert!(matches!(
        store.put_object(object("ob", "a", &["x"]), &WriteCondition::IfMatch("nope".into())).await,
        Err(StorageError::PreconditionFailed)
    ));
    assert_eq!(state(store, "x").await, BlobState::Unknown, "a refused write leaves no record");
    let replaced = store
        .put_object(object("ob", "a", &["blob-a2"]), &WriteCondition::IfMatch("etag-a".into()))
        .await
        .expect("if-match");
    assert_eq!(replaced.replaced.map(|o| o.parts[0].blob.0.clone()), Some("blob-a".to_string()));
    assert!(is_garbage(store, "blob-a").await && in_use(store, "blob-a2").await);

    let keys = |p: &ObjectPage| p.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>();
    let q = |prefix: &str, delim: Option<&str>, after: Option<&str>, max| ListObjectsQuery {
        prefix: prefix.into(),
        delimiter: delim.map(Into::into),
        start_after: after.map(Into::into),
        max,
    };
    let all = store.list_objects("ob", &q("", None, None, 1000)).await.expect("list");
    assert_eq!(keys(&all), ["", "a", "a\0z", "b/1", "b/2", "c"]);
    let grouped = store.list_objects("ob", &q("", Some("/"), None, 1000)).await.expect("list");
    assert_eq!(keys(&grouped), ["", "a", "a\0z", "c"]);
    assert_eq!(grouped.common_prefixes, ["b/"]);
    let p1 = store.list_objects("ob", &q("", Some("/"), None, 4)).await.expect("list");
    assert!(p1.is_truncated);
    assert_eq!(p1.last.as_deref(), Some("b/"));
    let p2 = store.list_objects("ob", &q("", Some("/"), Some("b/"), 4)).await.expect("list");
    assert_eq!(keys(&p2), ["c"]);
    assert!(!p2.is_truncated);
    assert_eq!(keys(&store.list_objects("ob", &q("b/", None, Some("b/1"), 10)).await.expect("list")), ["b/2"]);
    assert_eq!(keys(&store.list_objects("ob", &q("b", None, Some("a"), 10)).await.expect("list")), ["b/1", "b/2"]);

    assert!(matches!(store.delete_bucket("ob").await, Err(StorageError::BucketNotEmpty)));
    let gone = store.delete_object("ob", "c", None, &owner("alice")).await.expect("delete");
    assert_eq!(gone.removed.map(|o| o.key), Some("c".to_string()));
    assert_eq!(gone.marker, None, "an unversioned bucket writes no delete markers");
    assert_eq!(store.delete_object("ob", "c", None, &owner("alice")).await.expect("again"), DeleteOutcome::default());
    assert!(is_garbage(store, "blob-c").await);
    for k in ["b/1", "a", "b/2", "a\0z", ""] {
        store.delete_object("ob", k, None, &owner("alice")).await.expect("delete");
    }
    store.delete_bucket("ob").await.expect("empty");
}

async fn parts_and_completion(store: &dyn MetadataStore) {
    store.create_bucket(bucket("mp", "alice")).await.expect("create");
    store.create_upload(upload("mp", "obj", "up1", 1)).await.expect("upload");
    assert!(matches!(
        store.put_part("mp", "obj", "nope", part(1, "p1")).await,
        Err(StorageError::NotFound(Resource::Upload))
    ));
    assert!(matches!(
        store.put_part("mp", "other", "up1", part(1, "p1")).await,
        Err(StorageError::NotFound(Resource::Upload))
    ));
    for (n, b) in [(3, "p3"), (1, "p1-old"), (2, "p2"), (5, "p5")] {
        assert_eq!(store.put_part("mp", "obj", "up1", part(n, b)).await.expect("part"), None);
    }
    let replaced = store.put_part("mp", "obj", "up1", part(1, "p1")).await.expect("re-upload");
    assert_eq!(replaced.map(|p| p.blob.0), Some("p1-old".to_string()));
    assert!(is_garbage(store, "p1-old").await && in_use(store, "p1").await);
    // Re-uploading the same blob (a retried commit) keeps it referenced.
    store.put_part("mp", "obj", "up1", part(1, "p1")).await.expect("same part again");
    assert!(in_use(store, "p1").await);

    let nums = |p: &PartPage| p.parts.iter().map(|p| p.part_number).collect::<Vec<_>>();
    let all = store.list_parts("mp", "obj", "up1", 0, 1000).await.expect("parts");
    assert_eq!(nums(&all), [1, 2, 3, 5]);
    assert_eq!(all.parts[0], part(1, "p1"));
    let page = store.list_parts("mp", "obj", "up1", 1, 2).await.expect("parts");
    assert_eq!((nums(&page), page.is_truncated), (vec![2, 3], true));
    let page = store.list_parts("mp", "obj", "up1", 3, 2).await.expect("parts");
    assert_eq!((nums(&page), page.is_truncated), (vec![5], false));
    assert!(matches!(
        store.list_parts("mp", "obj", "nope", 0, 10).await,
        Err(StorageError::NotFound(Resource::Upload))
    ));

    // Complete with parts 1, 3 and 5: part 2 is discarded, the rest become the object.
    let mut obj = object("mp", "obj", &[]);
    obj.parts = vec![part(1, "p1"), part(3, "p3"), part(5, "p5")];
    obj.multipart = true;
    // A manifest naming a part that has since been re-uploaded (or never was) is refused
    // inside the commit, and nothing changes.
    let mut stale = obj.clone();
    stale.parts[1] = part(3, "p3-superseded");
    assert!(matches!(
        store.complete_upload("up1", stale, &WriteCondition::None).await,
        Err(StorageError::PartsChanged)
    ));
    let mut missing = obj.clone();
    missing.parts.push(part(7, "p7"));
    assert!(matches!(
        store.complete_upload("up1", missing, &WriteCondition::None).await,
        Err(StorageError::PartsChanged)
    ));
    assert!(matches!(
        store.complete_upload("up1", obj.clone(), &WriteCondition::IfMatch("x".into())).await,
        Err(StorageError::NotFound(Resource::Object))
    ));
    assert_eq!(nums(&store.list_parts("mp", "obj", "up1", 0, 10).await.expect("intact")), [1, 2, 3, 5]);
    let outcome = store.complete_upload("up1", obj.clone(), &WriteCondition::IfAbsent).await.expect("complete");
    assert_eq!(outcome.replaced, None);
    assert_eq!(outcome.discarded.iter().map(|p| p.blob.0.as_str()).collect::<Vec<_>>(), ["p2"]);
    same(store.get_object("mp", "obj", None).await.expect("get"), &obj);
    assert!(in_use(store, "p1").await && in_use(store, "p5").await && is_garbage(store, "p2").await);
    assert!(matches!(store.get_upload("mp", "obj", "up1").await, Err(StorageError::NotFound(Resource::Upload))));
    assert!(matches!(
        store.complete_upload("up1", obj.clone(), &WriteCondition::None).await,
        Err(StorageError::NotFound(Resource::Upload))
    ));
    let done = store.get_completed("mp", "up1").await.expect("completed").expect("remembered");
    assert_eq!((done.key.as_str(), done.etag.as_str()), ("obj", obj.etag.as_str()));
    assert_eq!(store.get_completed("mp", "nope").await.expect("completed"), None);
    assert_eq!(store.prune_completed(Timestamp(1)).await.expect("prune"), 0);
    assert_eq!(store.prune_completed(Timestamp(i64::MAX)).await.expect("prune"), 1);
    assert_eq!(store.get_completed("mp", "up1").await.expect("completed"), None);

    // Aborting returns every part for reclamation.
    store.create_upload(upload("mp", "obj", "up2", 2)).await.expect("upload");
    store.put_part("mp", "obj", "up2", part(1, "q1")).await.expect("part");
    store.put_part("mp", "obj", "up2", part(2, "q2")).await.expect("part");
    let (_, parts) = store.delete_upload("mp", "obj", "up2").await.expect("abort");
    assert_eq!(parts.len(), 2);
    assert!(is_garbage(store, "q1").await && is_garbage(store, "q2").await);
    assert!(matches!(
        store.put_part("mp", "obj", "up2", part(3, "q3")).await,
        Err(StorageError::NotFound(Resource::Upload))
    ));
}

fn at(o: ObjectRecord, t: i64) -> ObjectRecord {
    ObjectRecord { last_modified: Timestamp(t), ..o }
}

/// Versions: ids, delete markers, the null version, permanent deletes, listing and paging.
async fn versions(store: &dyn MetadataStore) {
    let alice = owner("alice");
    store.create_bucket(bucket("vb", "alice")).await.expect("create");
    // Unversioned: one null version, replaced in place.
    store.put_object(at(object("vb", "k", &["v0"]), 10), &WriteCondition::None).await.expect("put");
    store.set_versioning("vb", Versioning::Enabled).await.expect("enable");
    assert_eq!(store.get_bucket("vb").await.expect("get").expect("bucket").versioning, Versioning::Enabled);
    assert!(matches!(
        store.set_versioning("nope", Versioning::Enabled).await,
        Err(StorageError::NotFound(Resource::Bucket))
    ));
    // Enabled: new ids, nothing replaced; the clock going backwards does not reorder them.
    let v1 = store.put_object(at(object("vb", "k", &["v1"]), 20), &WriteCondition::None).await.expect("put");
    let v2 = store.put_object(at(object("vb", "k", &["v2"]), 5), &WriteCondition::None).await.expect("put");
    assert!(matches!(v1.version_id, VersionId::Id(_)) && v1.replaced.is_none());
    assert_ne!(v1.version_id, v2.version_id);
    assert!(in_use(store, "v0").await && in_use(store, "v1").await && in_use(store, "v2").await);
    let latest = store.get_object("vb", "k", None).await.expect("get").expect("latest");
    assert_eq!((latest.version_id, latest.parts[0].blob.0.as_str()), (v2.version_id, "v2"));
    let old = store.get_object("vb", "k", Some(v1.version_id)).await.expect("get").expect("by id");
    assert_eq!(old.parts[0].blob.0, "v1");
    let null = store.get_object("vb", "k", Some(VersionId::Null)).await.expect("get").expect("null");
    assert_eq!(null.parts[0].blob.0, "v0");
    let ghost = VersionId::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAE").expect("well-formed");
    assert_eq!(store.get_object("vb", "k", Some(ghost)).await.expect("get"), None);

    // A delete without a version writes a marker: the key disappears from listings, its
    // versions stay.
    let d = store.delete_object("vb", "k", None, &alice).await.expect("delete");
    let marker = d.marker.expect("a marker");
    assert!(marker.delete_marker && d.removed.is_none());
    assert!(store.get_object("vb", "k", None).await.expect("get").expect("latest").delete_marker);
    let q = ListObjectsQuery { max: 100, ..ListObjectsQuery::default() };
    assert!(store.list_objects("vb", &q).await.expect("list").objects.is_empty());
    assert!(matches!(
        store.update_object("vb", "k", None, ObjectChange::Tags(vec![])).await,
        Err(StorageError::DeleteMarker)
    ));
    // Conditional writes see the marker as no object.
    store.put_object(at(object("vb", "k", &["v3"]), 30), &WriteCondition::IfAbsent).await.expect("if absent");
    assert!(matches!(
        store.put_object(object("vb", "k", &["x"]), &WriteCondition::IfAbsent).await,
        Err(StorageError::PreconditionFailed)
    ));
    // Tags change one version in place.
    let tagged =
        store.update_object("vb", "k", Some(v1.version_id), ObjectChange::Tags(vec![("t".into(), "1".into())])).await;
    assert_eq!(tagged.expect("tags"), v1.version_id);
    assert_eq!(store.get_object("vb", "k", Some(v1.version_id)).await.expect("get").expect("v1").tags.len(), 1);
    // So does an ACL, which the latest version carries too when it is the one changed.
    let grants = vec![Grant { grantee: Grantee::AllUsers, permission: Permission::Read }];
    let latest = store.get_object("vb", "k", None).await.expect("get").expect("latest");
    let acl = |of| ObjectChange::Acl { grants: Some(grants.clone()), of };
    assert!(matches!(
        store.update_object("vb", "k", None, acl(VersionKey([7; 20]))).await,
        Err(StorageError::PreconditionFailed)
    ));
    store.update_object("vb", "k", None, acl(latest.version_key)).await.expect("acl");
    assert_eq!(store.get_object("vb", "k", None).await.expect("get").expect("latest").acl, Some(grants.clone()));
    let v = store.get_object("vb", "k", Some(latest.version_id)).await.expect("get").expect("by id");
    assert_eq!(v.acl, Some(grants));
    assert_eq!(store.get_object("vb", "k", Some(v1.version_id)).await.expect("get").expect("v1").acl, None);
    assert!(matches!(
        store.update_object("vb", "k", Some(ghost), ObjectChange::Tags(vec![])).await,
        Err(StorageError::NotFound(Resource::Version))
    ));
    assert!(matches!(
        store.update_object("vb", "none", None, ObjectChange::Tags(vec![])).await,
        Err(StorageError::NotFound(Resource::Object))
    ));

    // Listing: newest first within a key, markers included, IsLatest once per key; paging
    // by key and version id, also inside a key.
    store.put_object(at(object("vb", "j", &["j1"]), 40), &WriteCondition::None).await.expect("put");
    let list = |key_marker: Option<&str>, vm: Option<VersionId>, max| ListVersionsQuery {
        prefix: String::new(),
        delimiter: None,
        key_marker: key_marker.map(Into::into),
        version_id_marker: vm,
        max,
    };
    let row = |v: &VersionEntry| (v.object.key.clone(), v.object.delete_marker, v.is_latest);
    let all = store.list_versions("vb", &list(None, None, 100)).await.expect("versions");
    assert_eq!(
        all.versions.iter().map(row).collect::<Vec<_>>(),
        [
            ("j".to_string(), false, true),
            ("k".to_string(), false, true),
            ("k".to_string(), true, false),
            ("k".to_string(), false, false),
            ("k".to_string(), false, false),
            ("k".to_string(), false, false),
        ]
    );
    assert_eq!(all.versions[5].object.version_id, VersionId::Null);
    assert!(
        all.versions
            .windows(2)
            .all(|w| w[0].object.key < w[1].object.key
                || w[0].object.version_key.time() > w[1].object.version_key.time())
    );
    let p1 = store.list_versions("vb", &list(None, None, 3)).await.expect("page");
    assert!(p1.is_truncated);
    assert_eq!(p1.next_key_marker.as_deref(), Some("k"));
    let p2 = store
        .list_versions("vb", &list(p1.next_key_marker.as_deref(), p1.next_version_id_marker, 3))
        .await
        .expect("page");
    assert_eq!(p2.versions.iter().map(row).collect::<Vec<_>>(), all.versions[3..].iter().map(row).collect::<Vec<_>>());
    assert!(!p2.is_truncated && p2.versions.iter().all(|v| !v.is_latest));
    let after_k = store.list_versions("vb", &list(Some("k"), None, 10)).await.expect("after k");
    assert!(after_k.versions.is_empty());
    let null_marker = store.list_versions("vb", &list(Some("k"), Some(VersionId::Null), 10)).await.expect("null");
    assert!(null_marker.versions.is_empty(), "the null version is the oldest");
    assert!(matches!(
        store.list_versions("vb", &list(Some("k"), Some(ghost), 10)).await,
        Err(StorageError::NotFound(Resource::Version))
    ));

    // Permanent deletes: a version goes with its blobs; removing the latest makes the next
    // one current, and removing the marker brings the object back.
    let gone = store.delete_object("vb", "k", Some(v1.version_id), &alice).await.expect("delete v1");
    assert_eq!(gone.removed.map(|r| r.version_id), Some(v1.version_id));
    assert!(is_garbage(store, "v1").await);
    assert_eq!(
        store.delete_object("vb", "k", Some(v1.version_id), &alice).await.expect("again"),
        DeleteOutcome::default()
    );
    let newest = store.get_object("vb", "k", None).await.expect("get").expect("v3");
    store.delete_object("vb", "k", Some(newest.version_id), &alice).await.expect("delete v3");
    assert!(store.get_object("vb", "k", None).await.expect("get").expect("marker").delete_marker);
    assert!(store.list_objects("vb", &q).await.expect("list").objects.iter().all(|o| o.key != "k"));
    let removed = store.delete_object("vb", "k", Some(marker.version_id), &alice).await.expect("delete marker");
    assert!(removed.removed.expect("the marker").delete_marker);
    let back = store.get_object("vb", "k", None).await.expect("get").expect("v2 is current again");
    assert_eq!(back.version_id, v2.version_id);
    assert_eq!(store.list_objects("vb", &q).await.expect("list").objects.len(), 2);

    // Suspended: writes replace the null version (its blobs become garbage); versioned ones stay.
    store.set_versioning("vb", Versioning::Suspended).await.expect("suspend");
    let s1 = store.put_object(at(object("vb", "k", &["s1"]), 50), &WriteCondition::None).await.expect("put");
    assert_eq!(s1.version_id, VersionId::Null);
    assert_eq!(s1.replaced.map(|r| r.parts[0].blob.0.clone()), Some("v0".to_string()));
    assert!(is_garbage(store, "v0").await && in_use(store, "v2").await);
    let d = store.delete_object("vb", "k", None, &alice).await.expect("suspended delete");
    let null_marker = d.marker.expect("a null marker");
    assert_eq!(null_marker.version_id, VersionId::Null);
    assert_eq!(d.removed.map(|r| r.parts[0].blob.0.clone()), Some("s1".to_string()));
    assert!(is_garbage(store, "s1").await);
    let versions = store.list_versions("vb", &list(Some("j"), None, 10)).await.expect("versions");
    assert_eq!(versions.versions.len(), 2, "the null marker and v2");

    // A bucket with versions (markers included) is not empty.
    store.delete_object("vb", "j", None, &alice).await.expect("marker for j");
    store.delete_object("vb", "k", Some(v2.version_id), &alice).await.expect("delete v2");
    assert!(matches!(store.delete_bucket("vb").await, Err(StorageError::BucketNotEmpty)));
    let rest = store.list_versions("vb", &list(None, None, 100)).await.expect("versions");
    for v in rest.versions {
        store.delete_object("vb", &v.object.key, Some(v.object.version_id), &alice).await.expect("delete");
    }
    store.delete_bucket("vb").await.expect("empty now");
}

/// What the lifecycle worker needs: expiring exactly the version it looked at, and claims
/// so that one process at a time works on a bucket.
async fn lifecycle_support(store: &dyn MetadataStore) {
    let alice = owner("alice");
    store.create_bucket(bucket("lc", "alice")).await.expect("create");
    store.put_object(object("lc", "k", &["lc1"]), &WriteCondition::None).await.expect("put");
    let seen = store.get_object("lc", "k", None).await.expect("get").expect("k").version_key;
    store.put_object(object("lc", "k", &["lc2"]), &WriteCondition::None).await.expect("overwrite");
    let out = store.expire_object("lc", "k", seen, &alice).await.expect("expire");
    assert_eq!(out, DeleteOutcome::default(), "a newer write is never expired");
    let current = store.get_object("lc", "k", None).await.expect("get").expect("k").version_key;
    let out = store.expire_object("lc", "k", current, &alice).await.expect("expire");
    assert_eq!(out.removed.map(|r| r.parts[0].blob.0.clone()), Some("lc2".to_string()));
    assert_eq!(store.get_object("lc", "k", None).await.expect("get"), None);
    store.set_versioning("lc", Versioning::Enabled).await.expect("enable");
    store.put_object(object("lc", "v", &["lc3"]), &WriteCondition::None).await.expect("put");
    let current = store.get_object("lc", "v", None).await.expect("get").expect("v").version_key;
    let out = store.expire_object("lc", "v", current, &alice).await.expect("expire");
    assert!(out.marker.is_some_and(|m| m.delete_marker && m.owner == alice) && out.removed.is_none());
    assert!(in_use(store, "lc3").await, "the expired version stays as a noncurrent one");

    let future = Timestamp::now().plus(std::time::Duration::from_secs(60));
    assert!(store.claim_work("lc", "node-a", future).await.expect("claim"));
    assert!(!store.claim_work("lc", "node-b", future).await.expect("claim"));
    assert!(store.claim_work("lc", "node-a", future).await.expect("renew"));
    store.release_work("lc", "node-b").await.expect("not the holder");
    assert!(!store.claim_work("lc", "node-b", future).await.expect("claim"));
    store.release_work("lc", "node-a").await.expect("release");
    assert!(store.claim_work("lc", "node-b", future).await.expect("claim"));
    assert!(store.claim_work("old", "node-a", Timestamp(1)).await.expect("claim"));
    assert!(store.claim_work("old", "node-b", future).await.expect("an expired claim is free"));
}

/// DeleteBucket takes in-progress uploads with it (their parts become garbage), as on AWS,
/// but refuses while an object remains.
async fn bucket_deletion_takes_uploads(store: &dyn MetadataStore) {
    store.create_bucket(bucket("dbu", "alice")).await.expect("create");
    store.create_bucket(bucket("dbu-neighbour", "alice")).await.expect("create");
    store.create_upload(upload("dbu", "a", "dbu-1", 1)).await.expect("upload");
    store.create_upload(upload("dbu", "b/c", "dbu-2", 2)).await.expect("upload");
    store.create_upload(upload("dbu-neighbour", "a", "dbu-3", 3)).await.expect("upload");
    store.put_part("dbu", "a", "dbu-1", part(1, "dbu-p1")).await.expect("part");
    store.put_part("dbu", "b/c", "dbu-2", part(2, "dbu-p2")).await.expect("part");
    store.put_part("dbu-neighbour", "a", "dbu-3", part(1, "dbu-p3")).await.expect("part");
    store.put_object(object("dbu", "o", &["dbu-o"]), &WriteCondition::None).await.expect("object");
    // Every kind of setting is kept, and goes with the bucket.
    let cors = CorsConfiguration {
        rules: vec![CorsRule {
            allowed_methods: vec!["GET".into()],
            allowed_origins: vec!["*".into()],
            ..CorsRule::default()
        }],
    };
    let settings = [
        BucketSetting::Tagging(vec![("k".into(), "v".into())]),
        BucketSetting::Lifecycle(LifecycleConfiguration::default()),
        BucketSetting::Cors(cors),
    ];
    for s in &settings {
        store.put_bucket_setting("dbu", s.kind(), Some(s.clone())).await.expect("setting");
    }
    for s in &settings {
        assert_eq!(store.get_bucket_setting("dbu", s.kind()).await.expect("get").as_ref(), Some(s));
    }
    assert!(matches!(store.delete_bucket("dbu").await, Err(StorageError::BucketNotEmpty)));
    assert!(in_use(store, "dbu-p1").await, "a refused delete changes nothing");
    store.delete_object("dbu", "o", None, &owner("alice")).await.expect("delete object");
    store.delete_bucket("dbu").await.expect("only uploads left");
    assert_eq!(store.get_bucket("dbu").await.expect("get"), None);
    assert!(is_garbage(store, "dbu-p1").await && is_garbage(store, "dbu-p2").await);
    assert!(matches!(store.get_upload("dbu", "a", "dbu-1").await, Err(StorageError::NotFound(Resource::Upload))));
    assert!(in_use(store, "dbu-p3").await, "the neighbouring bucket keeps its upload");
    // A bucket made again under the same name starts empty.
    store.create_bucket(bucket("dbu", "alice")).await.expect("again");
    for kind in BucketSettingKind::ALL {
        assert_eq!(store.get_bucket_setting("dbu", kind).await.expect("get"), None, "{kind:?}");
    }
    let page = store.list_uploads("dbu", &list_q("", None, None, None, 10)).await.expect("list");
    assert!(page.uploads.is_empty());
    assert!(matches!(
        store.put_part("dbu", "a", "dbu-1", part(3, "late")).await,
        Err(StorageError::NotFound(Resource::Upload))
    ));
    store.delete_bucket("dbu").await.expect("empty");
}

/// Garbage is listed oldest first and in pages; forgetting needs the same record; failed
/// commits' blobs are discarded unless referenced; leases round-trip.
async fn garbage_and_leases(store: &dyn MetadataStore) {
    let unknown = [BlobId("never-committed".into()), BlobId("p1".into())];
    store.discard_blobs(&unknown).await.expect("discard");
    assert!(is_garbage(store, "never-committed").await);
    assert!(in_use(store, "p1").await, "a referenced blob is never discarded");

    let all = store.garbage(Timestamp(i64::MAX), None, usize::MAX).await.expect("garbage");
    assert!(all.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    for b in ["blob-a", "blob-c", "p1-old", "p2", "q1", "q2", "never-committed", "dbu-p1"] {
        assert!(all.iter().any(|r| r.blob.0 == b), "{b} listed");
    }
    assert!(!all.iter().any(|r| r.blob.0 == "p1"));
    let first = store.garbage(Timestamp(i64::MAX), None, 2).await.expect("page");
    assert_eq!(first, all[..2]);
    let second = store.garbage(Timestamp(i64::MAX), Some(&first[1]), 2).await.expect("page");
    assert_eq!(second, all[2..4]);
    assert!(store.garbage(Timestamp(i64::MIN), None, 10).await.expect("none that old").is_empty());

    let target = all.iter().find(|r| r.blob.0 == "never-committed").expect("listed").clone();
    let wrong_time = GarbageRecord { since: Timestamp(target.since.0 - 1), blob: target.blob.clone() };
    store.forget_garbage(&[wrong_time]).await.expect("forget");
    assert!(is_garbage(store, "never-committed").await, "a different record leaves the blob's state");
    store.forget_garbage(&[target]).await.expect("forget");
    assert_eq!(state(store, "never-committed").await, BlobState::Unknown);
    let after = store.garbage(Timestamp(i64::MAX), None, usize::MAX).await.expect("garbage");
    assert_eq!(after.len(), all.len() - 1);

    let lease = Lease { id: "lease-1".into(), blobs: vec![BlobId("p1".into())], expires: Timestamp(77) };
    store.put_lease(&lease).await.expect("lease");
    let renewed = Lease { expires: Timestamp(99), ..lease.clone() };
    store.put_lease(&renewed).await.expect("renew");
    assert_eq!(store.leases().await.expect("leases"), vec![renewed]);
    store.delete_lease("lease-1", Some(Timestamp(77))).await.expect("conditional delete");
    assert_eq!(store.leases().await.expect("leases").len(), 1, "renewed since: kept");
    store.delete_lease("lease-1", None).await.expect("delete");
    store.delete_lease("lease-1", None).await.expect("deleting again is fine");
    assert!(store.leases().await.expect("leases").is_empty());
    store.put_lease(&Lease { id: "lease-2".into(), ..lease }).await.expect("lease");
}

/// What the suite leaves behind, checked before and after a reopen.
async fn survivors(store: &dyn MetadataStore) {
    let q = ListBucketsQuery { owner_id: Some("alice".into()), prefix: String::new(), start_after: None, max: 100 };
    let names: Vec<String> = store.list_buckets(&q).await.expect("list").buckets.into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["b1", "b2", "c1", "dbu-neighbour", "del", "inl", "lc", "lst", "mp", "oc", "sh", "ua", "uc"]);
    let small = store.get_object("inl", "small", None).await.expect("get").expect("inline object");
    assert_eq!(small.parts[0].inline.as_deref(), Some(&b"\x00tiny\xff"[..]));
    let obj = store.get_object("mp", "obj", None).await.expect("get").expect("completed object");
    assert_eq!(obj.parts.iter().map(|p| p.blob.0.as_str()).collect::<Vec<_>>(), ["p1", "p3", "p5"]);
    assert!(in_use(store, "p1").await && in_use(store, "p5").await && in_use(store, "dbu-p3").await);
    assert!(is_garbage(store, "p2").await && is_garbage(store, "blob-a").await && is_garbage(store, "q1").await);
    assert_eq!(state(store, "never-committed").await, BlobState::Unknown);
    // Reference counts are stored: a blob two versions share stays until both go (the copy
    // is deleted on the first check, the original is still there on the second).
    if let Some(copy) = store.get_object("sh", "kept", None).await.expect("get") {
        store.delete_object("sh", "kept", Some(copy.version_id), &owner("alice")).await.expect("delete");
    }
    assert!(store.get_object("sh", "orig", None).await.expect("get").is_some());
    assert!(in_use(store, "sh-k1").await, "the original still refers to it");
    let parts = store.list_parts("dbu-neighbour", "a", "dbu-3", 0, 10).await.expect("parts");
    assert_eq!(parts.parts, vec![part(1, "dbu-p3")]);
    let uploads = store.list_uploads("ub", &list_q("", None, None, None, 100)).await.expect("list");
    assert!(uploads.uploads.is_empty());
    assert_eq!(store.leases().await.expect("leases").len(), 1);
    let garbage = store.garbage(Timestamp(i64::MAX), None, usize::MAX).await.expect("garbage");
    assert!(garbage.iter().any(|r| r.blob.0 == "p2"));
    let users = store.users().await.expect("users");
    assert_eq!(users.iter().map(|u| u.secret_key.as_str()).collect::<Vec<_>>(), ["AK1/secret+", "new-secret"]);
}

fn user(id: &str, key: &str, from_config: bool) -> UserRecord {
    UserRecord {
        id: id.into(),
        name: format!("{id}-name"),
        access_key: key.into(),
        secret_key: format!("{key}/secret+"),
        admin: id.starts_with("admin"),
        from_config,
        created: Timestamp(7),
    }
}

async fn user_directory(store: &dyn MetadataStore) {
    store.seed_users(vec![user("admin", "AK1", true), user("cfg", "AK2", true)]).await.expect("seed");
    store.create_user(user("rt", "AK3", false)).await.expect("create");
    assert!(matches!(store.create_user(user("rt", "AK9", false)).await, Err(StorageError::Conflict)));
    assert!(matches!(store.create_user(user("other", "AK1", false)).await, Err(StorageError::Conflict)));
    let ids = |users: Vec<UserRecord>| users.into_iter().map(|u| (u.id, u.access_key)).collect::<Vec<_>>();
    assert_eq!(
        ids(store.users().await.expect("users")),
        [("admin".into(), "AK1".into()), ("cfg".into(), "AK2".into()), ("rt".into(), "AK3".into())]
    );
    let rotated = store.replace_user_key("rt", "AK4", "new-secret").await.expect("rotate");
    assert_eq!(
        (rotated.access_key.as_str(), rotated.secret_key.as_str(), rotated.created),
        ("AK4", "new-secret", Timestamp(7))
    );
    assert!(matches!(store.replace_user_key("rt", "AK1", "x").await, Err(StorageError::Conflict)));
    assert!(matches!(store.replace_user_key("nobody", "AK8", "x").await, Err(StorageError::NotFound(Resource::User))));
    assert!(matches!(store.delete_user("AK3").await, Err(StorageError::NotFound(Resource::User))));
    store.create_user(user("gone", "AK5", false)).await.expect("create");
    assert_eq!(store.delete_user("AK5").await.expect("delete").id, "gone");
    // Seeding again drops seeded users no longer configured, keeps the run-time ones.
    store.seed_users(vec![user("admin", "AK1", true)]).await.expect("reseed");
    assert_eq!(ids(store.users().await.expect("users")), [("admin".into(), "AK1".into()), ("rt".into(), "AK4".into())]);
}

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// Fills bucket `lst` with versions, delete markers and uploads of keys that stress byte
/// order (non-ASCII, NUL, delimiters) and of more keys under one prefix than a store reads
/// at once.
async fn fill_listing_bucket(store: &dyn MetadataStore) {
    store.create_bucket(bucket("lst", "alice")).await.expect("create");
    store.set_versioning("lst", Versioning::Enabled).await.expect("versioning");
    let alphabet = ["a", "b", "/", "-", "\0", "\u{e9}", "\u{10ffff}", "~", "\u{7f}"];
    let mut rng = Rng(0x5eed);
    let mut keys: Vec<String> =
        (0..300).map(|_| (0..1 + rng.below(5)).map(|_| alphabet[rng.below(alphabet.len())]).collect()).collect();
    keys.extend((0..1100).map(|i| format!("big/{:04}{}", i, if i % 3 == 0 { "/x" } else { "" })));
    for (i, key) in keys.iter().enumerate() {
        store.put_object(object("lst", key, &[&format!("l{i}")]), &WriteCondition::None).await.expect("put");
        match i % 7 {
            0 => drop(store.delete_object("lst", key, None, &owner("alice")).await.expect("marker")),
            1 => drop(
                store.put_object(object("lst", key, &[&format!("l{i}b")]), &WriteCondition::None).await.expect("put"),
            ),
            2 => store.create_upload(upload("lst", key, &format!("u{i}"), (i % 4) as i64)).await.expect("upload"),
            _ => {}
        }
    }
}

type Shape = (Vec<String>, bool);

/// Every page of ListObjects, ListObjectVersions and ListMultipartUploads for one query, as
/// comparable lines (version ids, which each store draws at random, left out).
async fn pages(store: &dyn MetadataStore, prefix: &str, delimiter: Option<&str>, max: usize) -> Vec<Shape> {
    let d = delimiter.map(str::to_owned);
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let q = ListObjectsQuery { prefix: prefix.into(), delimiter: d.clone(), start_after: after.clone(), max };
        let p = store.list_objects("lst", &q).await.expect("list objects");
        let mut lines: Vec<String> = p.objects.iter().map(|o| format!("o {:?} {}", o.key, o.etag)).collect();
        lines.extend(p.common_prefixes.iter().map(|c| format!("p {c:?}")));
        out.push((lines, p.is_truncated));
        if !p.is_truncated {
            break;
        }
        after = p.last.clone();
    }
    let (mut key_marker, mut version_id_marker) = (None, None);
    loop {
        let q = ListVersionsQuery { prefix: prefix.into(), delimiter: d.clone(), key_marker, version_id_marker, max };
        let p = store.list_versions("lst", &q).await.expect("list versions");
        let mut lines: Vec<String> = p
            .versions
            .iter()
            .map(|v| format!("v {:?} {} {} {}", v.object.key, v.object.etag, v.is_latest, v.object.delete_marker))
            .collect();
        lines.extend(p.common_prefixes.iter().map(|c| format!("p {c:?}")));
        out.push((lines, p.is_truncated));
        if !p.is_truncated {
            break;
        }
        (key_marker, version_id_marker) = (p.next_key_marker, p.next_version_id_marker);
    }
    let (mut key_marker, mut upload_id_marker) = (None, None);
    loop {
        let q = ListUploadsQuery {
            prefix: prefix.into(),
            delimiter: d.clone(),
            key_marker,
            upload_id_marker,
            max_uploads: max,
        };
        let p = store.list_uploads("lst", &q).await.expect("list uploads");
        let mut lines: Vec<String> = p.uploads.iter().map(|u| format!("u {:?} {}", u.key, u.upload_id)).collect();
        lines.extend(p.common_prefixes.iter().map(|c| format!("p {c:?}")));
        out.push((lines, p.is_truncated));
        if !p.is_truncated {
            break;
        }
        (key_marker, upload_id_marker) = (p.next_key_marker, p.next_upload_id_marker);
    }
    out
}

/// Pages through every listing the way clients do and compares each page with what the
/// reference (in-memory) store answers.
async fn listings_match_the_reference(store: &dyn MetadataStore) {
    let reference = MemoryMetadataStore::new();
    fill_listing_bucket(&reference).await;
    fill_listing_bucket(store).await;
    for prefix in ["", "a", "b/", "big/", "big/00", "\0", "\u{e9}", "~"] {
        for delimiter in [None, Some("/"), Some("a"), Some("\u{e9}")] {
            let small = !prefix.is_empty() && !prefix.starts_with("big");
            let maxes: &[usize] = if small { &[0, 1, 2, 1000] } else { &[0, 97, 1000] };
            for &max in maxes {
                let expected = pages(&reference, prefix, delimiter, max).await;
                let got = pages(store, prefix, delimiter, max).await;
                assert!(got == expected, "prefix {prefix:?} delimiter {delimiter:?} max {max}");
            }
        }
    }
}

/// An object kept inline: its bytes come back from the record (also after a reopen); no
/// blob is referenced or becomes garbage when it is replaced or removed.
async fn inline_objects(store: &dyn MetadataStore) {
    store.create_bucket(bucket("inl", "alice")).await.expect("create");
    let mut small = object("inl", "small", &[""]);
    small.parts[0].inline = Some(bytes::Bytes::from_static(b"\x00tiny\xff"));
    small.parts[0].size = 6;
    small.size = 6;
    store.put_object(small.clone(), &WriteCondition::None).await.expect("put inline");
    same(store.get_object("inl", "small", None).await.expect("get"), &small);
    assert_eq!(state(store, "").await, BlobState::Unknown, "no blob named");
    // Replaced by a blob-backed version, and back: only the real blob's state changes.
    store.put_object(object("inl", "small", &["ib"]), &WriteCondition::None).await.expect("put blob");
    store.put_object(small.clone(), &WriteCondition::None).await.expect("put inline again");
    assert!(is_garbage(store, "ib").await);
    assert_eq!(state(store, "").await, BlobState::Unknown);
    let q = ListObjectsQuery { max: 10, ..ListObjectsQuery::default() };
    let listed = store.list_objects("inl", &q).await.expect("list").objects;
    assert_eq!(listed.iter().map(|o| (o.key.as_str(), o.size)).collect::<Vec<_>>(), [("small", 6)]);
}

/// DeleteObjects: each entry as its own DeleteObject would do, in order, also when a key
/// comes twice (the second sees the first) and in a versioned bucket.
async fn batch_deletes(store: &dyn MetadataStore) {
    let alice = owner("alice");
    store.create_bucket(bucket("del", "alice")).await.expect("create");
    for (k, blob) in [("a", "da"), ("b", "db"), ("c", "dc")] {
        store.put_object(object("del", k, &[blob]), &WriteCondition::None).await.expect("put");
    }
    let items = vec![
        ("a".to_string(), None),
        ("missing".to_string(), None),
        ("b".to_string(), Some(VersionId::Null)),
        ("a".to_string(), None),
    ];
    let out = store.delete_objects("del", &items, &alice).await.expect("delete objects");
    let removed: Vec<Option<&str>> = out
        .iter()
        .map(|r| r.as_ref().expect("each entry").removed.as_ref().map(|o| o.parts[0].blob.0.as_str()))
        .collect();
    assert_eq!(removed, [Some("da"), None, Some("db"), None]);
    assert!(is_garbage(store, "da").await && is_garbage(store, "db").await && in_use(store, "dc").await);
    let q = ListObjectsQuery { max: 10, ..ListObjectsQuery::default() };
    let left: Vec<String> =
        store.list_objects("del", &q).await.expect("list").objects.into_iter().map(|o| o.key).collect();
    assert_eq!(left, ["c"]);

    // Versioned: markers for entries without a version; a version id removes that version.
    store.set_versioning("del", Versioning::Enabled).await.expect("enable");
    let v = store.put_object(object("del", "c", &["dc2"]), &WriteCondition::None).await.expect("put");
    let items = vec![("c".to_string(), None), ("c".to_string(), Some(v.version_id))];
    let out = store.delete_objects("del", &items, &alice).await.expect("delete objects");
    let first = out[0].as_ref().expect("marker");
    assert!(first.marker.as_ref().is_some_and(|m| m.delete_marker) && first.removed.is_none());
    assert_eq!(out[1].as_ref().expect("version").removed.as_ref().map(|o| o.version_id), Some(v.version_id));
    assert!(is_garbage(store, "dc2").await && in_use(store, "dc").await);
    assert!(store.get_object("del", "c", None).await.expect("get").expect("latest").delete_marker);

    // Lifecycle's removal of a noncurrent version leaves a version that has become the latest.
    let old = store.put_object(object("del", "n", &["n1"]), &WriteCondition::None).await.expect("put");
    let new = store.put_object(object("del", "n", &["n2"]), &WriteCondition::None).await.expect("put");
    let key_of = |id: VersionId| match id {
        VersionId::Id(k) => k,
        VersionId::Null => panic!("a versioned bucket gives ids"),
    };
    store.delete_object("del", "n", Some(new.version_id), &alice).await.expect("delete newest");
    assert_eq!(store.remove_noncurrent("del", "n", key_of(old.version_id)).await.expect("latest kept"), None);
    assert!(in_use(store, "n1").await);
    let newer = store.put_object(object("del", "n", &["n3"]), &WriteCondition::None).await.expect("put");
    let removed = store.remove_noncurrent("del", "n", key_of(old.version_id)).await.expect("noncurrent");
    assert_eq!(removed.map(|r| r.version_id), Some(old.version_id));
    assert!(is_garbage(store, "n1").await);
    assert_eq!(store.get_object("del", "n", None).await.expect("get").map(|o| o.version_id), Some(newer.version_id));
    assert!(matches!(
        store.delete_objects("nope", &[("k".to_string(), None)], &alice).await.map(|v| v.into_iter().next()),
        Err(StorageError::NotFound(Resource::Bucket)) | Ok(Some(Err(StorageError::NotFound(Resource::Bucket))))
    ));
}

/// Copies share blobs: each version and part naming a blob holds one reference; the blob
/// becomes garbage with its last, and one no longer referenced cannot be shared.
async fn shared_blobs(store: &dyn MetadataStore) {
    let alice = owner("alice");
    let none = &WriteCondition::None;
    store.create_bucket(bucket("sh", "alice")).await.expect("create");
    store.put_object(object("sh", "src", &["sh-s1"]), none).await.expect("put");
    store.put_object_shared(object("sh", "copy", &["sh-s1"]), none).await.expect("share");
    // A copy onto itself replaces the null version: one reference for one record.
    store.put_object_shared(object("sh", "copy", &["sh-s1"]), none).await.expect("copy in place");
    store.delete_object("sh", "src", None, &alice).await.expect("delete");
    assert!(in_use(store, "sh-s1").await, "the copy still refers to it");

    // Two parts copied from the same blob, and one written; Complete uses parts 1 and 3.
    store.create_upload(upload("sh", "mp", "u1", 1)).await.expect("upload");
    store.put_part_shared("sh", "mp", "u1", part(1, "sh-s1")).await.expect("part 1");
    store.put_part_shared("sh", "mp", "u1", part(2, "sh-s1")).await.expect("part 2");
    store.put_part("sh", "mp", "u1", part(3, "sh-w3")).await.expect("part 3");
    let mut obj = object("sh", "mp", &[]);
    obj.parts = vec![part(1, "sh-s1"), part(3, "sh-w3")];
    obj.multipart = true;
    let outcome = store.complete_upload("u1", obj, none).await.expect("complete");
    assert_eq!(outcome.discarded.iter().map(|p| p.part_number).collect::<Vec<_>>(), [2]);
    store.delete_object("sh", "copy", None, &alice).await.expect("delete the copy");
    assert!(in_use(store, "sh-s1").await, "the completed object still refers to it");
    store.delete_object("sh", "mp", None, &alice).await.expect("delete the object");
    assert!(is_garbage(store, "sh-s1").await && is_garbage(store, "sh-w3").await);

    // Garbage or unknown blobs cannot be shared, and nothing changes.
    store.create_upload(upload("sh", "mp2", "u2", 2)).await.expect("upload");
    for blob in ["sh-s1", "never-written"] {
        assert!(matches!(
            store.put_object_shared(object("sh", "late", &[blob]), none).await,
            Err(StorageError::NotFound(Resource::Blob))
        ));
        assert!(matches!(
            store.put_part_shared("sh", "mp2", "u2", part(1, blob)).await,
            Err(StorageError::NotFound(Resource::Blob))
        ));
    }
    assert_eq!(store.get_object("sh", "late", None).await.expect("get"), None);
    assert!(store.list_parts("sh", "mp2", "u2", 0, 10).await.expect("parts").parts.is_empty());
    assert_eq!(state(store, "never-written").await, BlobState::Unknown);
    store.delete_upload("sh", "mp2", "u2").await.expect("abort");

    // Versioned: a copy in place is a second version sharing the blob.
    store.set_versioning("sh", Versioning::Enabled).await.expect("enable");
    let a = store.put_object(object("sh", "v", &["sh-v1"]), none).await.expect("put");
    let b = store.put_object_shared(object("sh", "v", &["sh-v1"]), none).await.expect("copy in place");
    store.delete_object("sh", "v", Some(a.version_id), &alice).await.expect("delete a");
    assert!(in_use(store, "sh-v1").await);
    store.delete_object("sh", "v", Some(b.version_id), &alice).await.expect("delete b");
    assert!(is_garbage(store, "sh-v1").await);

    // One DeleteObjects commit removing both records of a blob makes it garbage.
    let d1 = store.put_object(object("sh", "d1", &["sh-x1"]), none).await.expect("put");
    let d2 = store.put_object_shared(object("sh", "d2", &["sh-x1"]), none).await.expect("share");
    let items = vec![("d1".to_string(), Some(d1.version_id)), ("d2".to_string(), Some(d2.version_id))];
    for r in store.delete_objects("sh", &items, &alice).await.expect("delete objects") {
        assert!(r.expect("deleted").removed.is_some());
    }
    assert!(is_garbage(store, "sh-x1").await);
    // For `survivors`: a shared blob, to be checked after a reopen.
    store.put_object(object("sh", "orig", &["sh-k1"]), none).await.expect("put");
    store.put_object_shared(object("sh", "kept", &["sh-k1"]), none).await.expect("share");
}

async fn run_all(store: &dyn MetadataStore) {
    buckets(store).await;
    uploads(store).await;
    objects(store).await;
    parts_and_completion(store).await;
    versions(store).await;
    batch_deletes(store).await;
    shared_blobs(store).await;
    inline_objects(store).await;
    lifecycle_support(store).await;
    bucket_deletion_takes_uploads(store).await;
    garbage_and_leases(store).await;
    listings_match_the_reference(store).await;
    user_directory(store).await;
    survivors(store).await;
    store.flush().await.expect("flush");
}

#[tokio::test]
async fn memory_store_conforms() {
    run_all(&MemoryMetadataStore::new()).await;
}

#[tokio::test]
async fn rocks_store_conforms_and_keeps_everything_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = RocksMetadataStore::open(dir.path(), true).expect("open");
        run_all(&store).await;
    }
    let store = RocksMetadataStore::open(dir.path(), true).expect("reopen");
    survivors(&store).await;
}

#[tokio::test]
async fn postgres_store_conforms_and_keeps_everything_across_reconnect() {
    let url = TestPostgres::shared().database().await;
    {
        let store = PostgresMetadataStore::connect(&url, 4).await.expect("connect");
        run_all(&store).await;
    }
    // A second connection (a restarted or another node) sees the same; migrating again is a no-op.
    let store = PostgresMetadataStore::connect(&url, 4).await.expect("reconnect");
    survivors(&store).await;
}

#[tokio::test]
async fn rocks_store_keeps_everything_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = RocksMetadataStore::open(dir.path(), true).expect("open");
        store.create_bucket(bucket("keep", "alice")).await.expect("create");
        store.create_upload(upload("keep", "k/1", "u1", 7)).await.expect("upload");
        store.create_upload(upload("keep", "k/2", "u2", 8)).await.expect("upload");
        store.delete_upload("keep", "k/2", "u2").await.expect("delete");
    }
    let store = RocksMetadataStore::open(dir.path(), true).expect("reopen");
    assert_eq!(store.get_bucket("keep").await.expect("get"), Some(bucket("keep", "alice")));
    assert_eq!(store.get_upload("keep", "k/1", "u1").await.expect("get"), upload("keep", "k/1", "u1", 7));
    let page = store.list_uploads("keep", &list_q("", None, None, None, 10)).await.expect("list");
    assert_eq!(ids(&page), ["u1"]);
    assert!(matches!(store.get_upload("keep", "k/2", "u2").await, Err(StorageError::NotFound(Resource::Upload))));
}

// ---- Blob stores -------------------------------------------------------------------------

fn chunks(parts: &[&'static [u8]]) -> ByteStream {
    let items: Vec<Result<bytes::Bytes, std::io::Error>> =
        parts.iter().map(|p| Ok(bytes::Bytes::from_static(p))).collect();
    Box::pin(futures_util::stream::iter(items))
}

async fn read_all(mut s: ByteStream) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

async fn blob_ids(store: &dyn BlobStore) -> Vec<BlobId> {
    use futures_util::TryStreamExt;
    let listed: Vec<(BlobId, std::time::Duration)> = store.list().try_collect().await.expect("list");
    let mut v: Vec<BlobId> = listed.into_iter().map(|(id, _)| id).collect();
    v.sort();
    v
}

async fn blobs_conform(store: &dyn BlobStore) {
    let a = store.put(chunks(&[b"hello ", b"", b"world"])).await.expect("put");
    assert_eq!(a.len, 11);
    assert!(a.id.is_well_formed());
    assert_eq!(read_all(store.get(&a.id, None).await.expect("get")).await, b"hello world");
    assert_eq!(read_all(store.get(&a.id, Some(3..8)).await.expect("range")).await, b"lo wo");
    assert_eq!(read_all(store.get(&a.id, Some(6..11)).await.expect("tail")).await, b"world");
    let empty = store.put(chunks(&[])).await.expect("empty");
    assert_eq!(empty.len, 0);
    assert_eq!(read_all(store.get(&empty.id, None).await.expect("get")).await, b"");
    assert_ne!(a.id, empty.id);
    let mut both = vec![a.id.clone(), empty.id.clone()];
    both.sort();
    assert_eq!(blob_ids(store).await, both);

    // A failing input stream leaves nothing behind.
    let failing: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(bytes::Bytes::from_static(b"partial")),
        Err(std::io::Error::other("client went away")),
    ]));
    assert!(matches!(store.put(failing).await, Err(StorageError::Input(_))));
    assert_eq!(blob_ids(store).await, both);

    // Long bodies (written while they arrive, in many chunks), whole and failing late.
    let piece = |i: usize| bytes::Bytes::from(vec![(i % 251) as u8; 64 * 1024 + i]);
    let long: Vec<bytes::Bytes> = (0..200).map(piece).collect();
    let expected: Vec<u8> = long.iter().flat_map(|c| c.iter().copied()).collect();
    let stream: ByteStream = Box::pin(futures_util::stream::iter(long.clone().into_iter().map(Ok)));
    let big = store.put(stream).await.expect("long put");
    assert_eq!(big.len, expected.len() as u64);
    assert_eq!(read_all(store.get(&big.id, None).await.expect("get")).await, expected);
    let from = 10 * 1024 * 1024 + 5;
    let tail = read_all(store.get(&big.id, Some(from as u64..expected.len() as u64)).await.expect("range")).await;
    assert_eq!(tail, expected[from..]);
    let failing_late: ByteStream = Box::pin(futures_util::stream::iter(
        long.into_iter().map(Ok).chain([Err(std::io::Error::other("client went away"))]),
    ));
    assert!(matches!(store.put(failing_late).await, Err(StorageError::Input(_))));
    store.delete(&big.id).await.expect("delete");
    assert_eq!(blob_ids(store).await, both);

    store.delete(&a.id).await.expect("delete");
    assert!(matches!(store.get(&a.id, None).await, Err(StorageError::NotFound(Resource::Blob))));
    store.delete(&a.id).await.expect("deleting a missing blob is fine");
    assert_eq!(blob_ids(store).await, vec![empty.id.clone()]);
}

#[tokio::test]
async fn memory_blob_store_conforms() {
    blobs_conform(&crate::storage::memory::MemoryBlobStore::new()).await;
}

#[tokio::test]
async fn fs_blob_store_conforms_and_keeps_blobs_across_reopen() {
    use crate::storage::fs::FsBlobStore;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlobStore::open(dir.path(), true).await.expect("open");
    blobs_conform(&store).await;
    let temporaries = std::fs::read_dir(dir.path().join("tmp")).expect("tmp").count();
    assert_eq!(temporaries, 0, "failed writes leave no temporary file");
    // A body longer than several writeback windows, in uneven chunks, reads back whole.
    let long: Vec<u8> = (0..(3 << 20) + 12_345).map(|i: u32| (i % 251) as u8).collect();
    let pieces: Vec<bytes::Bytes> = long.chunks(65_537).map(bytes::Bytes::copy_from_slice).collect();
    let stream: ByteStream = Box::pin(futures_util::stream::iter(pieces.into_iter().map(Ok)));
    let blob = store.put(stream).await.expect("put long");
    assert_eq!(blob.len, long.len() as u64);
    assert!(read_all(store.get(&blob.id, None).await.expect("get long")).await == long, "long blob bytes");
    let kept = store.put(chunks(&[b"durable"])).await.expect("put");
    drop(store);
    // A temporary file left by a crash survives opening (another process sharing the store
    // may be writing it) and is removed by age; stray files anywhere are ignored.
    let tmp_file = dir.path().join("tmp").join("0123456789abcdef0123456789abcdef");
    std::fs::write(&tmp_file, b"half").expect("write");
    std::fs::write(dir.path().join("stray.txt"), b"x").expect("write");
    std::fs::create_dir_all(dir.path().join("zz").join("yy")).expect("dir");
    std::fs::write(dir.path().join(&kept.id.0[..2]).join("README"), b"x").expect("write");
    std::fs::write(dir.path().join(&kept.id.0[..2]).join(&kept.id.0[2..4]).join("not-a-blob"), b"x").expect("write");
    let store = FsBlobStore::open(dir.path(), true).await.expect("reopen");
    assert_eq!(read_all(store.get(&kept.id, None).await.expect("get")).await, b"durable");
    assert!(tmp_file.exists());
    assert!(blob_ids(&store).await.contains(&kept.id), "stray files do not stop the listing");
    assert_eq!(store.remove_stale_temporaries(std::time::Duration::from_secs(3600)).await.expect("young"), 0);
    assert!(tmp_file.exists());
    // A temporary file whose writer is still at work (it holds the lock) is never removed,
    // however old; an abandoned one is.
    let busy = dir.path().join("tmp").join("fedcba9876543210fedcba9876543210");
    let writer = std::fs::File::create(&busy).expect("create");
    writer.lock().expect("lock");
    assert_eq!(store.remove_stale_temporaries(std::time::Duration::ZERO).await.expect("sweep"), 1);
    assert!(!tmp_file.exists());
    assert!(busy.exists(), "a live write keeps its file");
    drop(writer);
    assert_eq!(store.remove_stale_temporaries(std::time::Duration::ZERO).await.expect("sweep"), 1);
    assert!(!busy.exists());
}

//! The lifecycle worker: applies each bucket's lifecycle rules in the background.
//!
//! - Expiration (`Days`, `Date`) of current versions: removed in an unversioned bucket, a
//!   delete marker written in a versioned one, as AWS does; only the version that was looked
//!   at is ever expired (never a newer write).
//! - `ExpiredObjectDeleteMarker`: a delete marker with no versions behind it is removed.
//! - `NoncurrentVersionExpiration`: versions noncurrent for `NoncurrentDays` are removed for
//!   good, keeping `NewerNoncurrentVersions` of them.
//! - `AbortIncompleteMultipartUpload`: uploads older than `DaysAfterInitiation` are aborted.
//!
//! A run goes over every bucket that has rules; a process works on a bucket only under a
//! claim in the metadata store, so several processes sharing a store never work on one
//! bucket at once. Every action is decided from the current state and is idempotent, so a
//! run cut short by a restart is simply resumed by the next one.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{
    BucketRecord, BucketSetting, BucketSettingKind, Expiration, LifecycleConfiguration, ListBucketsQuery,
    ListObjectsQuery, ListUploadsQuery, ListVersionsQuery, MetadataStore, ObjectRecord, Resource, StorageError,
    Versioning,
};
use crate::clock::Timestamp;

/// Entries per listing page.
const PAGE: usize = 1000;

/// How the worker keeps time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// How long a rule's "day" is for the worker (86,400 s; shorter to watch rules act). The
    /// dates clients are shown stay AWS's calendar.
    pub day: Duration,
    /// How often the worker runs.
    pub interval: Duration,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings { day: Duration::from_secs(86_400), interval: Duration::from_secs(3600) }
    }
}

/// When a rule of `days` days acts on something that began at `from`: the start of the
/// worker day after `days` whole days, like AWS's midnight UTC.
pub fn due(from: Timestamp, days: u32, day: Duration) -> Timestamp {
    let day = i64::try_from(day.as_nanos()).unwrap_or(i64::MAX).max(1);
    let start = from.0.div_euclid(day).saturating_add(i64::from(days)).saturating_add(1);
    Timestamp(start.saturating_mul(day))
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub expired: usize,
    pub markers_removed: usize,
    pub noncurrent_removed: usize,
    pub uploads_aborted: usize,
}

impl RunStats {
    fn add(&mut self, other: RunStats) {
        self.expired += other.expired;
        self.markers_removed += other.markers_removed;
        self.noncurrent_removed += other.noncurrent_removed;
        self.uploads_aborted += other.uploads_aborted;
    }
}

/// The worker of one process.
pub struct LifecycleWorker {
    meta: Arc<dyn MetadataStore>,
    settings: LifecycleSettings,
    /// Who this process is in claims.
    holder: String,
}

impl LifecycleWorker {
    pub fn new(meta: Arc<dyn MetadataStore>, settings: LifecycleSettings) -> Self {
        let holder = super::BlobId::generate().map(|b| b.0).unwrap_or_else(|_| format!("{:x}", Timestamp::now().0));
        LifecycleWorker { meta, settings, holder }
    }

    /// Runs every `interval` until aborted.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.settings.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let result = self.run_once().await;
                let m = crate::metrics::metrics();
                m.lifecycle_runs.inc();
                if let Ok(s) = &result {
                    for (action, n) in [
                        ("expire", s.expired),
                        ("remove_delete_marker", s.markers_removed),
                        ("remove_noncurrent", s.noncurrent_removed),
                        ("abort_upload", s.uploads_aborted),
                    ] {
                        m.lifecycle_actions.get_or_create(&crate::metrics::ActionLabels { action }).inc_by(n as u64);
                    }
                }
                match result {
                    Ok(s) if s == RunStats::default() => {}
                    Ok(s) => tracing::info!(
                        expired = s.expired,
                        markers_removed = s.markers_removed,
                        noncurrent_removed = s.noncurrent_removed,
                        uploads_aborted = s.uploads_aborted,
                        "lifecycle rules applied"
                    ),
                    Err(e) => tracing::warn!(error = %e, "lifecycle run failed"),
                }
            }
        })
    }

    /// One pass over every bucket with rules.
    pub async fn run_once(&self) -> Result<RunStats, StorageError> {
        let mut stats = RunStats::default();
        let mut start_after = None;
        loop {
            let q = ListBucketsQuery { owner_id: None, prefix: String::new(), start_after, max: PAGE };
            let page = self.meta.list_buckets(&q).await?;
            for bucket in &page.buckets {
                match self.meta.get_bucket_setting(&bucket.name, BucketSettingKind::Lifecycle).await {
                    Ok(Some(BucketSetting::Lifecycle(config))) => stats.add(self.bucket(bucket, &config).await?),
                    Ok(_) | Err(StorageError::NotFound(Resource::Bucket)) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.next_start_after {
                Some(next) => start_after = Some(next),
                None => return Ok(stats),
            }
        }
    }

    /// Applies a bucket's rules under a claim (skipped while another process holds it).
    async fn bucket(&self, bucket: &BucketRecord, config: &LifecycleConfiguration) -> Result<RunStats, StorageError> {
        let claim = format!("lifecycle/{}", bucket.name);
        // Long enough for a large bucket; renewed page by page.
        let hold = || Timestamp::now().plus(self.settings.interval.max(Duration::from_secs(600)));
        if !self.meta.claim_work(&claim, &self.holder, hold()).await? {
            return Ok(RunStats::default());
        }
        let result = self.apply(bucket, config, &claim, hold).await;
        self.meta.release_work(&claim, &self.holder).await?;
        match result {
            // The bucket went away during the run: nothing left to do.
            Err(StorageError::NotFound(Resource::Bucket)) => Ok(RunStats::default()),
            other => other,
        }
    }

    async fn apply(
        &self,
        bucket: &BucketRecord,
        config: &LifecycleConfiguration,
        claim: &str,
        hold: impl Fn() -> Timestamp,
    ) -> Result<RunStats, StorageError> {
        let mut stats = RunStats::default();
        let rules: Vec<_> = config.rules.iter().filter(|r| r.enabled).collect();
        let day = self.settings.day;
        let renew = || async { self.meta.claim_work(claim, &self.holder, hold()).await };

        // Current versions.
        if rules.iter().any(|r| matches!(r.expiration, Some(Expiration::Days(_) | Expiration::Date(_)))) {
            let mut start_after = None;
            loop {
                let q = ListObjectsQuery { prefix: String::new(), delimiter: None, start_after, max: PAGE };
                let page = self.meta.list_objects(&bucket.name, &q).await?;
                let now = Timestamp::now();
                for o in &page.objects {
                    let expired = rules.iter().any(|r| {
                        r.filter.matches(&o.key, o.size, &o.tags)
                            && match r.expiration {
                                Some(Expiration::Days(d)) => due(o.last_modified, d, day) <= now,
                                Some(Expiration::Date(t)) => t <= now,
                                _ => false,
                            }
                    });
                    if expired {
                        let out = self.meta.expire_object(&bucket.name, &o.key, o.version_key, &bucket.owner).await?;
                        if out.removed.is_some() || out.marker.is_some() {
                            stats.expired += 1;
                        }
                    }
                }
                if !page.is_truncated || !renew().await? {
                    break;
                }
                start_after = page.last;
            }
        }

        // Noncurrent versions and lone delete markers.
        let noncurrent = rules.iter().any(|r| r.noncurrent_expiration.is_some())
            || rules.iter().any(|r| r.expiration == Some(Expiration::ExpiredObjectDeleteMarker));
        if noncurrent && bucket.versioning != Versioning::Unversioned {
            stats.add(self.versions(bucket, &rules, &renew).await?);
        }

        // Incomplete multipart uploads.
        if rules.iter().any(|r| r.abort_incomplete_after_days.is_some()) {
            let (mut key_marker, mut upload_id_marker) = (None, None);
            loop {
                let q = ListUploadsQuery {
                    prefix: String::new(),
                    delimiter: None,
                    key_marker: key_marker.clone(),
                    upload_id_marker: upload_id_marker.clone(),
                    max_uploads: PAGE,
                };
                let page = match self.meta.list_uploads(&bucket.name, &q).await {
                    // The marker upload was completed or aborted meanwhile: start over.
                    Err(StorageError::NotFound(Resource::Upload)) if key_marker.is_some() => {
                        key_marker = None;
                        upload_id_marker = None;
                        continue;
                    }
                    other => other?,
                };
                let now = Timestamp::now();
                for u in &page.uploads {
                    let abort = rules.iter().any(|r| {
                        u.key.starts_with(&r.filter.prefix)
                            && r.abort_incomplete_after_days.is_some_and(|d| due(u.initiated, d, day) <= now)
                    });
                    if abort {
                        match self.meta.delete_upload(&bucket.name, &u.key, &u.upload_id).await {
                            Ok(_) => stats.uploads_aborted += 1,
                            Err(StorageError::NotFound(Resource::Upload)) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                if !page.is_truncated || !renew().await? {
                    break;
                }
                key_marker = page.next_key_marker;
                upload_id_marker = page.next_upload_id_marker;
            }
        }
        Ok(stats)
    }

    /// Walks every version, newest first within a key: each noncurrent version became so
    /// when the next newer one was written.
    async fn versions<F, Fut>(
        &self,
        bucket: &BucketRecord,
        rules: &[&super::LifecycleRule],
        renew: &F,
    ) -> Result<RunStats, StorageError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool, StorageError>>,
    {
        let mut stats = RunStats::default();
        let day = self.settings.day;
        // The key being walked: its newer version's time, how many noncurrent versions came
        // so far, and a latest delete marker that may turn out to stand alone.
        let mut key: Option<String> = None;
        let mut newer: Timestamp = Timestamp(0);
        let mut index: u32 = 0;
        let mut lone_marker: Option<ObjectRecord> = None;
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let q = ListVersionsQuery {
                prefix: String::new(),
                delimiter: None,
                key_marker: key_marker.clone(),
                version_id_marker: version_marker,
                max: PAGE,
            };
            let page = match self.meta.list_versions(&bucket.name, &q).await {
                // The marker version was removed meanwhile: continue after its key.
                Err(StorageError::NotFound(Resource::Version)) => {
                    version_marker = None;
                    continue;
                }
                other => other?,
            };
            let now = Timestamp::now();
            for entry in &page.versions {
                let o = &entry.object;
                if key.as_deref() != Some(o.key.as_str()) {
                    if let Some(m) = lone_marker.take() {
                        stats.markers_removed += self.remove_lone_marker(bucket, rules, &m).await?;
                    }
                    key = Some(o.key.clone());
                    index = 0;
                    if entry.is_latest {
                        newer = o.version_key.time();
                        lone_marker = o.delete_marker.then(|| o.clone());
                        continue;
                    }
                }
                // A noncurrent version (or marker).
                lone_marker = None;
                let since = newer;
                newer = o.version_key.time();
                let remove = rules.iter().any(|r| {
                    r.filter.matches(&o.key, o.size, &o.tags)
                        && r.noncurrent_expiration.as_ref().is_some_and(|n| {
                            index >= n.newer_noncurrent_versions.unwrap_or(0) && due(since, n.days, day) <= now
                        })
                });
                index = index.saturating_add(1);
                if remove && self.meta.remove_noncurrent(&bucket.name, &o.key, o.version_key).await?.is_some() {
                    stats.noncurrent_removed += 1;
                }
            }
            if !page.is_truncated || !renew().await? {
                break;
            }
            key_marker = page.next_key_marker;
            version_marker = page.next_version_id_marker;
        }
        if let Some(m) = lone_marker.take() {
            stats.markers_removed += self.remove_lone_marker(bucket, rules, &m).await?;
        }
        Ok(stats)
    }

    /// Removes a delete marker that is its key's only version, when a rule says so.
    async fn remove_lone_marker(
        &self,
        bucket: &BucketRecord,
        rules: &[&super::LifecycleRule],
        marker: &ObjectRecord,
    ) -> Result<usize, StorageError> {
        let applies = rules.iter().any(|r| {
            r.expiration == Some(Expiration::ExpiredObjectDeleteMarker) && marker.key.starts_with(&r.filter.prefix)
        });
        if !applies {
            return Ok(0);
        }
        // Still alone and still the latest? Anything written since keeps it.
        let latest = self.meta.get_object(&bucket.name, &marker.key, None).await?;
        if latest.as_ref().map(|l| l.version_key) != Some(marker.version_key) {
            return Ok(0);
        }
        let q = ListVersionsQuery {
            prefix: marker.key.clone(),
            delimiter: None,
            key_marker: Some(marker.key.clone()),
            version_id_marker: Some(marker.version_id),
            max: 1,
        };
        let behind = self.meta.list_versions(&bucket.name, &q).await?;
        if behind.versions.first().is_some_and(|v| v.object.key == marker.key) {
            return Ok(0);
        }
        let out = self.meta.delete_object(&bucket.name, &marker.key, Some(marker.version_id), &bucket.owner).await?;
        Ok(usize::from(out.removed.is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryMetadataStore;
    use crate::storage::{
        ContentHeaders, LifecycleFilter, LifecycleRule, NoncurrentExpiration, Owner, PartRecord, StorageClass,
        UploadRecord, VersionId, VersionKey, WriteCondition,
    };

    fn owner() -> Owner {
        Owner { id: "o".into(), display_name: "o".into() }
    }

    fn object(key: &str, blob: &str, at: Timestamp) -> ObjectRecord {
        ObjectRecord {
            bucket: "b".into(),
            key: key.into(),
            version_id: VersionId::Null,
            version_key: VersionKey([0; 20]),
            delete_marker: false,
            size: 1,
            etag: "e".into(),
            last_modified: at,
            owner: owner(),
            storage_class: StorageClass::Standard,
            headers: ContentHeaders::default(),
            user_metadata: vec![],
            tags: vec![],
            parts: vec![PartRecord {
                part_number: 1,
                blob: crate::storage::BlobId(blob.into()),
                size: 1,
                md5: [0; 16],
                last_modified: at,
                checksums: vec![],
                inline: None,
            }],
            multipart: false,
            checksum: None,
            acl: None,
        }
    }

    fn rule(id: &str, prefix: &str) -> LifecycleRule {
        LifecycleRule {
            id: id.into(),
            enabled: true,
            filter: LifecycleFilter { prefix: prefix.into(), ..LifecycleFilter::default() },
            expiration: None,
            noncurrent_expiration: None,
            abort_incomplete_after_days: None,
        }
    }

    async fn store(versioning: Versioning, rules: Vec<LifecycleRule>) -> Arc<MemoryMetadataStore> {
        let meta = Arc::new(MemoryMetadataStore::new());
        let b =
            BucketRecord { name: "b".into(), owner: owner(), region: "r".into(), created: Timestamp(0), versioning };
        meta.create_bucket(b).await.expect("bucket");
        let setting = BucketSetting::Lifecycle(LifecycleConfiguration { rules });
        meta.put_bucket_setting("b", BucketSettingKind::Lifecycle, Some(setting)).await.expect("rules");
        meta
    }

    const DAY: Duration = Duration::from_secs(10);

    fn days_ago(n: i64) -> Timestamp {
        Timestamp(Timestamp::now().0 - n * 10_000_000_000)
    }

    fn worker(meta: &Arc<MemoryMetadataStore>) -> LifecycleWorker {
        LifecycleWorker::new(meta.clone(), LifecycleSettings { day: DAY, interval: Duration::from_secs(1) })
    }

    #[test]
    fn due_is_the_start_of_the_day_after_whole_days() {
        let day = Duration::from_secs(86_400);
        let t = Timestamp(1_795_946_400 * 1_000_000_000); // 2026-11-29T10:00Z
        assert_eq!(due(t, 1, day).to_xml(), "2026-12-01T00:00:00.000Z");
        assert_eq!(due(t, 1, day), crate::storage::aws_day_boundary(t, 1));
        assert_eq!(due(Timestamp(25_000_000_000), 2, DAY), Timestamp(50_000_000_000));
    }

    #[tokio::test]
    async fn expiration_removes_in_unversioned_buckets_and_marks_in_versioned_ones() {
        let mut r = rule("exp", "logs/");
        r.expiration = Some(Expiration::Days(2));
        let meta = store(Versioning::Unversioned, vec![r.clone()]).await;
        meta.put_object(object("logs/old", "b1", days_ago(5)), &WriteCondition::None).await.expect("put");
        meta.put_object(object("logs/new", "b2", Timestamp::now()), &WriteCondition::None).await.expect("put");
        meta.put_object(object("data/old", "b3", days_ago(5)), &WriteCondition::None).await.expect("put");
        let stats = worker(&meta).run_once().await.expect("run");
        assert_eq!(stats.expired, 1);
        assert_eq!(meta.get_object("b", "logs/old", None).await.expect("get"), None);
        assert!(meta.get_object("b", "logs/new", None).await.expect("get").is_some());
        assert!(meta.get_object("b", "data/old", None).await.expect("get").is_some());

        let meta = store(Versioning::Enabled, vec![r]).await;
        meta.put_object(object("logs/old", "b1", days_ago(5)), &WriteCondition::None).await.expect("put");
        assert_eq!(worker(&meta).run_once().await.expect("run").expired, 1);
        let latest = meta.get_object("b", "logs/old", None).await.expect("get").expect("marker");
        assert!(latest.delete_marker && latest.owner == owner());
        assert_eq!(worker(&meta).run_once().await.expect("again").expired, 0, "a marker is not expired again");
    }

    #[tokio::test]
    async fn noncurrent_versions_go_after_their_days_keeping_the_newest() {
        let mut r = rule("nc", "");
        r.noncurrent_expiration = Some(NoncurrentExpiration { days: 1, newer_noncurrent_versions: Some(1) });
        let meta = store(Versioning::Enabled, vec![r]).await;
        for (blob, age) in [("v1", 9), ("v2", 8), ("v3", 7), ("v4", 0)] {
            meta.put_object(object("k", blob, days_ago(age)), &WriteCondition::None).await.expect("put");
        }
        // v3 became noncurrent 0 days ago (when v4 came); v2 7 days ago, v1 8 days ago. One
        // newer noncurrent version (v3) is kept whatever its age; v2 is old but the second
        // noncurrent, so it goes; v1 too.
        let stats = worker(&meta).run_once().await.expect("run");
        assert_eq!(stats.noncurrent_removed, 2);
        let q = ListVersionsQuery { max: 100, ..ListVersionsQuery::default() };
        let left: Vec<String> = meta
            .list_versions("b", &q)
            .await
            .expect("versions")
            .versions
            .into_iter()
            .map(|v| v.object.parts[0].blob.0.clone())
            .collect();
        assert_eq!(left, ["v4", "v3"]);
    }

    #[tokio::test]
    async fn lone_delete_markers_are_removed_and_uploads_aborted() {
        let mut r = rule("clean", "");
        r.expiration = Some(Expiration::ExpiredObjectDeleteMarker);
        r.abort_incomplete_after_days = Some(1);
        let meta = store(Versioning::Enabled, vec![r]).await;
        meta.put_object(object("alone", "a1", days_ago(3)), &WriteCondition::None).await.expect("put");
        meta.put_object(object("kept", "k1", days_ago(3)), &WriteCondition::None).await.expect("put");
        meta.delete_object("b", "alone", None, &owner()).await.expect("marker");
        meta.delete_object("b", "kept", None, &owner()).await.expect("marker");
        // Without noncurrent rules the version behind "alone" stays: its marker is not alone.
        let q = ListVersionsQuery { max: 100, ..ListVersionsQuery::default() };
        let first = meta.list_versions("b", &q).await.expect("versions").versions;
        let a1 = first.iter().find(|v| v.object.key == "alone" && !v.object.delete_marker).expect("a1");
        meta.delete_object("b", "alone", Some(a1.object.version_id), &owner()).await.expect("remove a1");
        let upload = |id: &str, at| UploadRecord {
            bucket: "b".into(),
            key: "u".into(),
            upload_id: id.into(),
            owner: owner(),
            initiator: owner(),
            initiated: at,
            storage_class: StorageClass::Standard,
            headers: ContentHeaders::default(),
            user_metadata: vec![],
            tags: vec![],
            checksum_algorithm: None,
            checksum_type: None,
            acl: None,
        };
        meta.create_upload(upload("old", days_ago(3))).await.expect("upload");
        meta.create_upload(upload("new", Timestamp::now())).await.expect("upload");
        let stats = worker(&meta).run_once().await.expect("run");
        assert_eq!((stats.markers_removed, stats.uploads_aborted), (1, 1));
        let left = meta.list_versions("b", &q).await.expect("versions").versions;
        assert!(left.iter().all(|v| v.object.key == "kept"), "{left:?}");
        assert!(meta.get_upload("b", "u", "new").await.is_ok());
        assert!(meta.get_upload("b", "u", "old").await.is_err());
    }

    #[tokio::test]
    async fn one_process_at_a_time_works_on_a_bucket() {
        let mut r = rule("exp", "");
        r.expiration = Some(Expiration::Days(1));
        let meta = store(Versioning::Unversioned, vec![r]).await;
        meta.put_object(object("k", "b1", days_ago(5)), &WriteCondition::None).await.expect("put");
        let far = Timestamp::now().plus(Duration::from_secs(3600));
        assert!(meta.claim_work("lifecycle/b", "another-node", far).await.expect("claim"));
        assert_eq!(worker(&meta).run_once().await.expect("run"), RunStats::default());
        meta.release_work("lifecycle/b", "another-node").await.expect("release");
        assert_eq!(worker(&meta).run_once().await.expect("run").expired, 1);
    }
}

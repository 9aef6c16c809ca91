//! Lifecycle rules as a bucket keeps them, and what they say about one object or upload.
//! Parsing and validating the XML is the S3 layer's business; applying the rules is the
//! lifecycle worker's.

use serde::{Deserialize, Serialize};

use super::{ObjectRecord, UploadRecord};
use crate::clock::Timestamp;

/// A bucket's lifecycle configuration: up to 1,000 rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfiguration {
    pub rules: Vec<LifecycleRule>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    pub filter: LifecycleFilter,
    pub expiration: Option<Expiration>,
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    /// `AbortIncompleteMultipartUpload`'s `DaysAfterInitiation`.
    pub abort_incomplete_after_days: Option<u32>,
}

/// Which objects a rule applies to: all conditions must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleFilter {
    pub prefix: String,
    pub tags: Vec<(String, String)>,
    pub size_greater_than: Option<u64>,
    pub size_less_than: Option<u64>,
}

/// What happens to current versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiration {
    /// N days after the object was written.
    Days(u32),
    /// At midnight UTC of a date.
    Date(Timestamp),
    /// A delete marker with no versions left behind it is removed.
    ExpiredObjectDeleteMarker,
}

/// What happens to versions that are no longer current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    /// N days after the version stopped being current.
    pub days: u32,
    /// This many newer noncurrent versions are kept whatever their age.
    pub newer_noncurrent_versions: Option<u32>,
}

const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// Midnight UTC after `days` whole days from `from`: when AWS says a rule acts, and what
/// `x-amz-expiration` and `x-amz-abort-date` show.
pub fn aws_day_boundary(from: Timestamp, days: u32) -> Timestamp {
    let start = from.0.div_euclid(DAY_NANOS).saturating_add(i64::from(days)).saturating_add(1);
    Timestamp(start.saturating_mul(DAY_NANOS))
}

impl LifecycleFilter {
    /// Whether the filter selects a key of this size with these tags.
    pub fn matches(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        key.starts_with(&self.prefix)
            && self.tags.iter().all(|t| tags.contains(t))
            && self.size_greater_than.is_none_or(|n| size > n)
            && self.size_less_than.is_none_or(|n| size < n)
    }
}

impl LifecycleConfiguration {
    /// The enabled rule that expires `object` first, and when (AWS's calendar), for
    /// `x-amz-expiration`.
    pub fn expiration_of(&self, object: &ObjectRecord) -> Option<(&LifecycleRule, Timestamp)> {
        self.rules
            .iter()
            .filter(|r| r.enabled && r.filter.matches(&object.key, object.size, &object.tags))
            .filter_map(|r| match &r.expiration {
                Some(Expiration::Days(d)) => Some((r, aws_day_boundary(object.last_modified, *d))),
                Some(Expiration::Date(t)) => Some((r, *t)),
                _ => None,
            })
            .min_by_key(|(_, t)| *t)
    }

    /// The enabled rule that aborts `upload` first, and when, for `x-amz-abort-date`.
    pub fn abort_of(&self, upload: &UploadRecord) -> Option<(&LifecycleRule, Timestamp)> {
        self.rules
            .iter()
            // Uploads have no size yet, and tags are not considered for them (AWS refuses
            // tag filters on abort rules).
            .filter(|r| r.enabled && upload.key.starts_with(&r.filter.prefix))
            .filter_map(|r| r.abort_incomplete_after_days.map(|d| (r, aws_day_boundary(upload.initiated, d))))
            .min_by_key(|(_, t)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_boundaries_are_midnight_utc_after_whole_days() {
        // 2026-11-29T10:00:00Z + 1 day → 2026-12-01T00:00:00Z (AWS rounds up to midnight).
        let t = Timestamp(1_795_946_400 * 1_000_000_000);
        assert_eq!(aws_day_boundary(t, 1).to_xml(), "2026-12-01T00:00:00.000Z");
        assert_eq!(aws_day_boundary(t, 0).to_xml(), "2026-11-30T00:00:00.000Z");
        assert_eq!(aws_day_boundary(Timestamp(i64::MAX), 5), Timestamp(i64::MAX), "saturates");
    }

    #[test]
    fn filters_need_every_condition() {
        let f = LifecycleFilter {
            prefix: "logs/".into(),
            tags: vec![("k".into(), "v".into())],
            size_greater_than: Some(10),
            size_less_than: Some(100),
        };
        let tags = vec![("k".to_string(), "v".to_string()), ("x".to_string(), "y".to_string())];
        assert!(f.matches("logs/a", 50, &tags));
        assert!(!f.matches("data/a", 50, &tags));
        assert!(!f.matches("logs/a", 10, &tags));
        assert!(!f.matches("logs/a", 100, &tags));
        assert!(!f.matches("logs/a", 50, &tags[1..]));
        assert!(LifecycleFilter::default().matches("anything", 0, &[]));
    }
}

//! Object versions: how they are named to clients and ordered in the store.
//!
//! Every stored version (the `null` version of an unversioned or suspended bucket included)
//! has a [`VersionKey`]: 8 bytes of its write time, inverted so that the newest sorts first,
//! then 12 random bytes (zero for the `null` version, of which a key has at most one). A
//! versioned write's id is its key in URL-safe base64: unguessable (96 random bits), and
//! ordered without an index. Within a key, the store keeps version times strictly
//! increasing, whatever the wall clock does.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

const ID: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Where a version sorts among the versions of its key, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VersionKey(pub [u8; 20]);

impl VersionKey {
    /// A key for a version written at `time`: random unless it is the `null` version.
    pub fn new(time: Timestamp, null: bool) -> Result<VersionKey, getrandom::Error> {
        let mut b = [0u8; 20];
        b[..8].copy_from_slice(&(!(time.0 as u64 ^ (1 << 63))).to_be_bytes());
        if !null {
            getrandom::fill(&mut b[8..])?;
        }
        Ok(VersionKey(b))
    }

    /// The write time the key was made for.
    pub fn time(&self) -> Timestamp {
        let mut t = [0u8; 8];
        t.copy_from_slice(&self.0[..8]);
        Timestamp((!u64::from_be_bytes(t) ^ (1 << 63)) as i64)
    }
}

/// A key for a version written at `time`, for the stores.
pub(crate) fn new_key(time: Timestamp, null: bool) -> Result<VersionKey, super::StorageError> {
    VersionKey::new(time, null).map_err(|e| super::StorageError::Io(format!("random source: {e}")))
}

/// How clients name a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VersionId {
    /// The `null` version: what unversioned and suspended buckets write.
    Null,
    /// A version a versioning-enabled bucket wrote.
    Id(VersionKey),
}

impl VersionId {
    /// `null`, or the id in URL-safe base64 (27 characters).
    pub fn to_text(self) -> String {
        match self {
            VersionId::Null => "null".to_owned(),
            VersionId::Id(k) => ID.encode(k.0),
        }
    }

    /// Parses what a client sent; `None` when it cannot be an id this store made.
    pub fn parse(text: &str) -> Option<VersionId> {
        if text == "null" {
            return Some(VersionId::Null);
        }
        let bytes = ID.decode(text).ok()?;
        let key: [u8; 20] = bytes.try_into().ok()?;
        // A null version's key has no random part; as an id it names nothing.
        if key[8..].iter().all(|b| *b == 0) {
            return None;
        }
        Some(VersionId::Id(VersionKey(key)))
    }

    pub fn is_null(self) -> bool {
        self == VersionId::Null
    }
}

/// A bucket's versioning state. A bucket never returns to `Unversioned` once versioning has
/// been enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

impl Versioning {
    /// The state after a change to `next`. A bucket never returns to `Unversioned` (the
    /// stores rely on it: such a bucket holds only null versions), so asking for it once
    /// versioning has been set suspends versioning instead.
    pub fn changed_to(self, next: Versioning) -> Versioning {
        match (self, next) {
            (Versioning::Enabled | Versioning::Suspended, Versioning::Unversioned) => Versioning::Suspended,
            (_, next) => next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_never_returns_to_unversioned() {
        use Versioning::*;
        assert_eq!(Unversioned.changed_to(Unversioned), Unversioned);
        assert_eq!(Unversioned.changed_to(Enabled), Enabled);
        assert_eq!(Unversioned.changed_to(Suspended), Suspended);
        assert_eq!(Enabled.changed_to(Suspended), Suspended);
        assert_eq!(Suspended.changed_to(Enabled), Enabled);
        assert_eq!(Enabled.changed_to(Unversioned), Suspended);
        assert_eq!(Suspended.changed_to(Unversioned), Suspended);
    }

    #[test]
    fn keys_sort_newest_first_and_keep_their_time() {
        let old = VersionKey::new(Timestamp(1_000), false).expect("random");
        let new = VersionKey::new(Timestamp(2_000), false).expect("random");
        let negative = VersionKey::new(Timestamp(-5), true).expect("null");
        assert!(new < old && old < negative);
        assert_eq!(old.time(), Timestamp(1_000));
        assert_eq!(negative.time(), Timestamp(-5));
        assert_eq!(VersionKey::new(Timestamp(i64::MAX), true).expect("null").time(), Timestamp(i64::MAX));
        assert_eq!(VersionKey::new(Timestamp(i64::MIN), true).expect("null").time(), Timestamp(i64::MIN));
    }

    #[test]
    fn ids_round_trip_and_refuse_what_the_store_did_not_make() {
        let k = VersionKey::new(Timestamp(7), false).expect("random");
        let text = VersionId::Id(k).to_text();
        assert_eq!(text.len(), 27);
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(VersionId::parse(&text), Some(VersionId::Id(k)));
        assert_eq!(VersionId::parse("null"), Some(VersionId::Null));
        assert_eq!(VersionId::Null.to_text(), "null");
        let null_key = VersionKey::new(Timestamp(7), true).expect("null");
        assert_eq!(VersionId::parse(&ID.encode(null_key.0)), None);
        for bad in ["", "Null", "abc", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", &"A".repeat(28)] {
            assert_eq!(VersionId::parse(bad), None, "{bad}");
        }
    }
}

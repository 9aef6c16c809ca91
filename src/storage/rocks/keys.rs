//! Order-preserving key encodings. Every key starts with the bucket name and a 0x00 byte
//! (bucket names never contain 0x00); object keys are escaped so that byte order of the
//! encoding equals UTF-8 byte order of the keys, whatever bytes they contain.

use crate::clock::Timestamp;
use crate::storage::refs::BlobRow;
use crate::storage::{BucketSettingKind, StorageError, VersionKey};

/// Escapes 0x00 as 0x00 0xFF; `terminate` appends 0x00 0x01, which sorts before any
/// continuation, so `a` < `a\0` < `ab`.
fn push_escaped(out: &mut Vec<u8>, s: &[u8], terminate: bool) {
    for &b in s {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    if terminate {
        out.extend_from_slice(&[0x00, 0x01]);
    }
}

/// The object key inside an `Objects` or `Versions` key (`bucket 0x00 esc(key) 0x00 0x01 …`)
/// that starts after `skip` bytes (the bucket's prefix); `None` if it is not one.
pub fn object_key_of(raw: &[u8], skip: usize) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len().saturating_sub(skip));
    let mut i = skip;
    while let Some(&b) = raw.get(i) {
        if b == 0 {
            match raw.get(i + 1) {
                Some(0xFF) => out.push(0),
                Some(0x01) => return String::from_utf8(out).ok(),
                _ => return None,
            }
            i += 2;
            continue;
        }
        out.push(b);
        i += 1;
    }
    None
}

/// Where an `Objects` or `Versions` scan of `bucket` seeks to reach the first key at or after
/// the object key bytes `at` (which need not be UTF-8: listings seek past a common prefix to
/// [`crate::storage::prefix_end`] of it).
pub fn object_seek(bucket: &str, at: &[u8]) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    push_escaped(&mut k, at, false);
    k
}

/// `bucket 0x00`: the start of everything in a bucket.
pub fn bucket_prefix(bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1);
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k
}

/// Timestamps as big-endian with the sign bit flipped, so that byte order is time order.
fn push_timestamp(out: &mut Vec<u8>, t: Timestamp) {
    out.extend_from_slice(&((t.0 as u64) ^ (1 << 63)).to_be_bytes());
}

/// Uploads: `bucket 0x00 esc(key) 0x00 0x01 initiated upload_id`.
pub fn upload(bucket: &str, key: &str, initiated: Timestamp, upload_id: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    push_escaped(&mut k, key.as_bytes(), true);
    push_timestamp(&mut k, initiated);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// The first upload key whose object key starts with `prefix`.
pub fn upload_prefix(bucket: &str, prefix: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    push_escaped(&mut k, prefix.as_bytes(), false);
    k
}

/// Just past every upload of `key`.
pub fn upload_after_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    push_escaped(&mut k, key.as_bytes(), false);
    k.extend_from_slice(&[0x00, 0x02]);
    k
}

/// Upload-id index: `bucket 0x00 upload_id` → upload key.
pub fn upload_id(bucket: &str, upload_id: &str) -> Vec<u8> {
    upload_id_key(bucket, upload_id)
}

/// Objects: `bucket 0x00 esc(key) 0x00 0x01`.
pub fn object(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    push_escaped(&mut k, key.as_bytes(), true);
    k
}

/// Versions: `bucket 0x00 esc(key) 0x00 0x01 version_key`, newest first within a key.
pub fn version(bucket: &str, key: &str, version: &VersionKey) -> Vec<u8> {
    let mut k = object(bucket, key);
    k.extend_from_slice(&version.0);
    k
}

/// Bucket settings: `bucket 0x00 kind`.
pub fn setting(bucket: &str, kind: BucketSettingKind) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    k.push(match kind {
        BucketSettingKind::Tagging => 1,
        BucketSettingKind::Lifecycle => 2,
        BucketSettingKind::Cors => 3,
        BucketSettingKind::Policy => 4,
        BucketSettingKind::PublicAccessBlock => 5,
        BucketSettingKind::Acl => 6,
        BucketSettingKind::OwnershipControls => 7,
    });
    k
}

/// The first object key that starts with `prefix` (same encoding as uploads).
pub fn object_prefix(bucket: &str, prefix: &str) -> Vec<u8> {
    upload_prefix(bucket, prefix)
}

/// Parts: `bucket 0x00 upload_id 0x00 part_number(be)`.
pub fn part(bucket: &str, upload_id: &str, part_number: u32) -> Vec<u8> {
    let mut k = part_prefix(bucket, upload_id);
    k.extend_from_slice(&part_number.to_be_bytes());
    k
}

pub fn part_prefix(bucket: &str, upload_id: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    k.extend_from_slice(upload_id.as_bytes());
    k.push(0);
    k
}

/// Completed uploads: `bucket 0x00 upload_id`.
pub fn completed(bucket: &str, upload_id: &str) -> Vec<u8> {
    upload_id_key(bucket, upload_id)
}

fn upload_id_key(bucket: &str, upload_id: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// Garbage index: `since(be) blob_id`, so that a scan meets the oldest garbage first.
pub fn garbage(since: Timestamp, blob: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + blob.len());
    push_timestamp(&mut k, since);
    k.extend_from_slice(blob.as_bytes());
    k
}

/// The time and blob id of a garbage-index key.
pub fn parse_garbage(key: &[u8]) -> Option<(Timestamp, String)> {
    let (ts, id) = key.split_at_checked(8)?;
    let raw = u64::from_be_bytes(ts.try_into().ok()?) ^ (1 << 63);
    Some((Timestamp(raw as i64), String::from_utf8(id.to_vec()).ok()?))
}

/// A blob's row as stored: empty while referenced once (what every release before shared
/// blobs wrote), the count as 4 big-endian bytes while referenced more often, and the time
/// it became garbage as 8 bytes.
pub fn blob_row(row: BlobRow) -> Vec<u8> {
    match row {
        BlobRow::Referenced(n) if n > 1 => n.to_be_bytes().to_vec(),
        BlobRow::Referenced(_) => Vec::new(),
        // Never written: an unknown blob has no row.
        BlobRow::Unknown => {
            debug_assert!(false, "an unknown blob has no row to write");
            Vec::new()
        }
        BlobRow::Garbage(since) => {
            let mut k = Vec::with_capacity(8);
            push_timestamp(&mut k, since);
            k
        }
    }
}

/// Decodes a blob's row (see [`blob_row`]).
pub fn parse_blob_row(value: &[u8]) -> Result<BlobRow, StorageError> {
    match value.len() {
        0 => Ok(BlobRow::Referenced(1)),
        4 => match u32::from_be_bytes(value.try_into().unwrap_or_default()) {
            0 => Err(StorageError::Corrupt("a blob row counting no reference".into())),
            n => Ok(BlobRow::Referenced(n)),
        },
        8 => {
            let raw: [u8; 8] = value.try_into().unwrap_or_default();
            Ok(BlobRow::Garbage(Timestamp((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)))
        }
        n => Err(StorageError::Corrupt(format!("a blob row of {n} bytes"))),
    }
}

/// The smallest key strictly greater than `key`.
pub fn successor(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_read_back_from_index_keys() {
        for key in ["", "a/b", "nul\0inside\0", "\u{10ffff}~", "\0"] {
            let raw = object("bkt", key);
            assert_eq!(object_key_of(&raw, bucket_prefix("bkt").len()).as_deref(), Some(key));
            // Seeking to a key's own bytes finds it; seeking past its prefix passes everything
            // under the prefix and nothing after it.
            assert!(object_seek("bkt", key.as_bytes()) <= raw);
            let past = object_seek("bkt", &crate::storage::prefix_end(key.as_bytes()).unwrap_or_default());
            if !key.is_empty() {
                assert!(raw < past && object("bkt", &format!("{key}zzz")) < past);
                assert!(object("bkt", &format!("{key}\u{10ffff}")) < past);
            }
        }
        assert_eq!(object_key_of(b"bkt\0unterminated", 4), None);
        assert_eq!(object_key_of(b"bkt\0bad\0\x07", 4), None);
    }

    #[test]
    fn upload_keys_sort_like_object_keys_then_time() {
        let t = |n| Timestamp(n);
        let mut keys = vec![
            upload("b", "ab", t(1), "x"),
            upload("b", "a\0", t(1), "x"),
            upload("b", "a", t(5), "x"),
            upload("b", "a", t(-5), "x"),
            upload("b", "a/", t(0), "x"),
            upload("b", "", t(0), "x"),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                upload("b", "", t(0), "x"),
                upload("b", "a", t(-5), "x"),
                upload("b", "a", t(5), "x"),
                upload("b", "a\0", t(1), "x"),
                upload("b", "a/", t(0), "x"),
                upload("b", "ab", t(1), "x"),
            ]
        );
    }

    #[test]
    fn object_keys_sort_like_keys() {
        let mut keys =
            vec![object("b", "ab"), object("b", "a\0"), object("b", "a"), object("b", "a/"), object("b", "")];
        keys.sort();
        assert_eq!(
            keys,
            vec![object("b", ""), object("b", "a"), object("b", "a\0"), object("b", "a/"), object("b", "ab")]
        );
        assert!(successor(object("b", "a")) < object("b", "a\0"));
        assert!(object_prefix("b", "a") <= object("b", "a"));
        assert!(part("b", "u", 2) < part("b", "u", 10));
        assert!(part("b", "u", u32::MAX).starts_with(&part_prefix("b", "u")));
    }

    #[test]
    fn garbage_keys_sort_by_time_and_round_trip() {
        let a = garbage(Timestamp(-5), "ffff");
        let b = garbage(Timestamp(3), "0000");
        assert!(a < b);
        assert_eq!(parse_garbage(&b), Some((Timestamp(3), "0000".to_string())));
        for row in [BlobRow::Garbage(Timestamp(-7)), BlobRow::Referenced(1), BlobRow::Referenced(70_000)] {
            assert_eq!(parse_blob_row(&blob_row(row)).expect("decodes"), row);
        }
        assert_eq!(blob_row(BlobRow::Referenced(1)), b"", "as releases before shared blobs wrote it");
        assert!(parse_blob_row(b"abc").is_err());
    }

    #[test]
    fn seek_positions_bracket_a_key() {
        let k = upload("b", "a", Timestamp(i64::MAX), "zzz");
        assert!(upload_prefix("b", "a") <= k);
        assert!(upload_after_key("b", "a") > k);
        assert!(upload_after_key("b", "a") < upload("b", "a\0", Timestamp(i64::MIN), ""));
        assert!(successor(k.clone()) > k);
    }
}

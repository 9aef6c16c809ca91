//! Versioned record values: one format byte, then the record in postcard. A new format gets a
//! new version byte and a decoder arm, so data written by older releases stays readable.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::storage::StorageError;

const V1: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    let mut out = vec![V1];
    postcard::to_io(value, &mut out).map_err(|e| StorageError::Corrupt(format!("encode: {e}")))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    match bytes.split_first() {
        Some((&V1, rest)) => postcard::from_bytes(rest).map_err(|e| StorageError::Corrupt(format!("decode: {e}"))),
        Some((v, _)) => Err(StorageError::Corrupt(format!("unknown record version {v}"))),
        None => Err(StorageError::Corrupt("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::storage::{BucketRecord, Owner};

    #[test]
    fn round_trips_and_rejects_unknown_versions() {
        let b = BucketRecord {
            name: "b".into(),
            owner: Owner { id: "u".into(), display_name: "U".into() },
            region: "us-east-1".into(),
            created: Timestamp(42),
        };
        let bytes = encode(&b).expect("encodes");
        assert_eq!(bytes[0], 1);
        assert_eq!(decode::<BucketRecord>(&bytes).expect("decodes"), b);
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(matches!(decode::<BucketRecord>(&future), Err(StorageError::Corrupt(_))));
        assert!(decode::<BucketRecord>(&[]).is_err());
    }
}

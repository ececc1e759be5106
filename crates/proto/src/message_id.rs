//! Message ids: 16 bytes in UUID layout. New messages get time-ordered UUIDv7 ids; imported
//! history gets deterministic UUIDv8 ids with the same 48-bit millisecond prefix, so a re-import
//! yields the same ids and everything sorts by time either way.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tandem_crypto::CryptoRng;
use uuid::{Builder, Uuid, Variant};

use crate::{Error, Result};

/// Largest timestamp a message id can carry (48 bits of ms: the year 10889).
pub const MAX_TIMESTAMP_MS: i64 = (1 << 48) - 1;

const DERIVED_LABEL: &[u8] = b"tandem/v1 message-id\0";

/// A message id (UUIDv7 or UUIDv8, RFC 9562 variant; checked on construction).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "[u8; 16]", into = "[u8; 16]")]
pub struct MessageId([u8; 16]);

fn check_timestamp(ms: i64) -> Result<u64> {
    if (0..=MAX_TIMESTAMP_MS).contains(&ms) {
        u64::try_from(ms).map_err(|_| Error::TimestampOutOfRange { ms })
    } else {
        Err(Error::TimestampOutOfRange { ms })
    }
}

impl MessageId {
    /// A new time-ordered id (UUIDv7): 48 bits of `now_ms`, 74 random bits.
    pub fn new_v7(now_ms: i64, rng: &mut impl CryptoRng) -> Result<Self> {
        let ms = check_timestamp(now_ms)?;
        let mut random = [0u8; 10];
        rng.fill_bytes(&mut random);
        Ok(Self(
            Builder::from_unix_timestamp_millis(ms, &random)
                .into_uuid()
                .into_bytes(),
        ))
    }

    /// A deterministic id for imported history (UUIDv8): 48 bits of `ts_ms` like v7, then 74
    /// bits of SHA-256("tandem/v1 message-id\0" || u64be(len(namespace)) || namespace || key).
    /// The same inputs always give the same id.
    pub fn derived(ts_ms: i64, namespace: &[u8], key: &[u8]) -> Result<Self> {
        let ms = check_timestamp(ts_ms)?;
        let len = u64::try_from(namespace.len()).unwrap_or(u64::MAX);
        let digest = Sha256::new()
            .chain_update(DERIVED_LABEL)
            .chain_update(len.to_be_bytes())
            .chain_update(namespace)
            .chain_update(key)
            .finalize();
        let mut bytes = [0u8; 16];
        let (time, rest) = bytes.split_at_mut(6);
        for (dst, src) in time.iter_mut().zip(ms.to_be_bytes().iter().skip(2)) {
            *dst = *src;
        }
        for (dst, src) in rest.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        Ok(Self(
            Builder::from_custom_bytes(bytes).into_uuid().into_bytes(),
        ))
    }

    /// Checks and wraps 16 bytes: version 7 or 8, RFC 9562 variant.
    pub fn from_bytes(bytes: [u8; 16]) -> Result<Self> {
        let uuid = Uuid::from_bytes(bytes);
        if uuid.get_variant() != Variant::RFC4122 {
            return Err(Error::BadMessageId {
                reason: "not the RFC 9562 variant",
            });
        }
        match uuid.get_version_num() {
            7 | 8 => Ok(Self(bytes)),
            _ => Err(Error::BadMessageId {
                reason: "neither UUIDv7 nor UUIDv8",
            }),
        }
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The 48-bit millisecond timestamp both layouts start with.
    pub fn timestamp_ms(&self) -> i64 {
        self.0
            .iter()
            .take(6)
            .fold(0i64, |acc, b| (acc << 8) | i64::from(*b))
    }

    /// Whether the id was derived (UUIDv8, imported history) rather than drawn (UUIDv7).
    pub fn is_derived(&self) -> bool {
        Uuid::from_bytes(self.0).get_version_num() == 8
    }
}

impl TryFrom<[u8; 16]> for MessageId {
    type Error = Error;
    fn try_from(bytes: [u8; 16]) -> Result<Self> {
        Self::from_bytes(bytes)
    }
}

impl From<MessageId> for [u8; 16] {
    fn from(id: MessageId) -> Self {
        id.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Uuid::from_bytes(self.0).hyphenated(), f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

impl FromStr for MessageId {
    type Err = Error;

    /// Parses the hyphenated form only (36 characters).
    fn from_str(s: &str) -> Result<Self> {
        if s.len() != 36 {
            return Err(Error::BadMessageId {
                reason: "not a 36-character hyphenated UUID",
            });
        }
        let uuid = Uuid::try_parse(s).map_err(|_| Error::BadMessageId {
            reason: "not a hyphenated UUID",
        })?;
        Self::from_bytes(uuid.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_crypto::rng::{ChaCha20Rng, SeedableRng};

    #[test]
    fn v7_ids_carry_their_time_and_sort_by_it() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let a = MessageId::new_v7(1_700_000_000_000, &mut rng).unwrap();
        let b = MessageId::new_v7(1_700_000_000_001, &mut rng).unwrap();
        assert_eq!(a.timestamp_ms(), 1_700_000_000_000);
        assert!(a < b);
        assert!(!a.is_derived());
        assert_eq!(Uuid::from_bytes(*a.as_bytes()).get_version_num(), 7);
    }

    #[test]
    fn derived_ids_repeat_and_depend_on_every_input() {
        let id = MessageId::derived(1_600_000_000_000, b"whatsapp", b"chat.txt:42").unwrap();
        assert_eq!(
            id,
            MessageId::derived(1_600_000_000_000, b"whatsapp", b"chat.txt:42").unwrap()
        );
        assert!(id.is_derived());
        assert_eq!(id.timestamp_ms(), 1_600_000_000_000);
        for other in [
            MessageId::derived(1_600_000_000_001, b"whatsapp", b"chat.txt:42"),
            MessageId::derived(1_600_000_000_000, b"telegram", b"chat.txt:42"),
            MessageId::derived(1_600_000_000_000, b"whatsapp", b"chat.txt:43"),
            // The namespace is length-prefixed: moving bytes across the boundary changes the id.
            MessageId::derived(1_600_000_000_000, b"whatsappc", b"hat.txt:42"),
        ] {
            assert_ne!(other.unwrap(), id);
        }
    }

    #[test]
    fn text_form_is_a_hyphenated_uuid_and_parses_back() {
        let id = MessageId::derived(1_600_000_000_000, b"ns", b"k").unwrap();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.parse::<MessageId>().unwrap(), id);
        assert!(text.replace('-', "").parse::<MessageId>().is_err());
        assert!(format!("{{{text}}}").parse::<MessageId>().is_err());
        // A v4 UUID is not a message id.
        assert!(
            "9b2c4e6a-1f3d-4a5b-8c7d-0e1f2a3b4c5d"
                .parse::<MessageId>()
                .is_err()
        );
    }

    #[test]
    fn timestamps_outside_48_bits_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        assert!(MessageId::new_v7(-1, &mut rng).is_err());
        assert!(MessageId::new_v7(MAX_TIMESTAMP_MS + 1, &mut rng).is_err());
        let last = MessageId::new_v7(MAX_TIMESTAMP_MS, &mut rng).unwrap();
        assert_eq!(last.timestamp_ms(), MAX_TIMESTAMP_MS);
    }

    #[test]
    fn bytes_of_other_versions_or_variants_are_refused() {
        let id = MessageId::derived(5, b"n", b"k").unwrap();
        let mut v4 = *id.as_bytes();
        v4[6] = (v4[6] & 0x0f) | 0x40;
        assert!(MessageId::from_bytes(v4).is_err());
        let mut wrong_variant = *id.as_bytes();
        wrong_variant[8] &= 0x3f;
        assert!(MessageId::from_bytes(wrong_variant).is_err());
    }
}

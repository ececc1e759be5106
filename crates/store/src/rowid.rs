//! Time-ordered row ids for `messages`: the millisecond timestamp in the high bits and 20 bits
//! of a hash of the message id below, so that rowid order (the order of the FTS5 index) is
//! time order and "newest hits first" needs no sort.

use crate::types::MessageId;

/// Bits of the timestamp kept (2^43 ms is about 278 years after 1970).
const TS_BITS: u32 = 43;
/// Bits taken from the id's hash.
const HASH_BITS: u32 = 20;
/// Largest timestamp kept (one below 2^43 - 1, so that probing upwards from the largest
/// preferred row id never overflows an i64).
pub(crate) const MAX_TS: i64 = (1 << TS_BITS) - 2;
/// How many consecutive row ids an insert tries before giving up.
pub(crate) const MAX_PROBES: i64 = 1 << HASH_BITS;

/// The preferred row id of a message: `(clamp(ts, 0, MAX_TS) << 20) | (hash(id) & 0xFFFFF)`.
pub(crate) fn preferred(ts: i64, id: &MessageId) -> i64 {
    let ts = ts.clamp(0, MAX_TS);
    let low = i64::try_from(fnv1a64(id.as_bytes()) & ((1 << HASH_BITS) - 1)).unwrap_or(0);
    (ts << HASH_BITS) | low
}

/// The timestamp part of a row id.
#[cfg(test)]
pub(crate) fn ts_of(rowid: i64) -> i64 {
    rowid >> HASH_BITS
}

/// 64-bit FNV-1a: small, stable across Rust versions and platforms (unlike `DefaultHasher`).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rowids_sort_like_timestamps() {
        let a = MessageId::from([0xff; 16]);
        let b = MessageId::from([0x00; 16]);
        assert!(preferred(1_000, &a) < preferred(1_001, &b));
        assert_eq!(ts_of(preferred(1_700_000_000_000, &a)), 1_700_000_000_000);
    }

    #[test]
    fn out_of_range_timestamps_are_clamped() {
        let id = MessageId::from([7; 16]);
        assert_eq!(ts_of(preferred(-5, &id)), 0);
        assert_eq!(ts_of(preferred(i64::MAX, &id)), MAX_TS);
        assert!(preferred(i64::MAX, &id) > 0);
        assert!(
            preferred(i64::MAX, &id) + MAX_PROBES > 0,
            "probing never overflows"
        );
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    proptest! {
        #[test]
        fn order_of_timestamps_is_kept(t1 in 0..MAX_TS, t2 in 0..MAX_TS, a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            let (ra, rb) = (preferred(t1, &MessageId::from(a)), preferred(t2, &MessageId::from(b)));
            if t1 < t2 { prop_assert!(ra < rb); }
            prop_assert_eq!(ts_of(ra), t1);
        }
    }
}

//! Strict, versioned postcard blobs: one leading format byte, then the postcard encoding of the
//! value, nothing after it. Used for certificates, device lists and session state.

use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, Result};

/// Encodes `value` as `[version] || postcard(value)`.
pub(crate) fn encode<T: Serialize>(what: &'static str, version: u8, value: &T) -> Result<Vec<u8>> {
    let out = vec![version];
    postcard::to_extend(value, out).map_err(|e| Error::Encode {
        what,
        reason: e.to_string(),
    })
}

/// Encodes `value` with postcard alone (the canonical bytes that signatures cover).
pub(crate) fn canonical<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::Encode {
        what,
        reason: e.to_string(),
    })
}

/// Decodes a blob written by [`encode`]: refuses an oversized input, another version, a
/// malformed body and trailing bytes, each with its own error.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    version: u8,
    max_len: usize,
    bytes: &[u8],
) -> Result<T> {
    if bytes.len() > max_len {
        return Err(Error::Size {
            what,
            len: bytes.len(),
            max: max_len,
        });
    }
    let Some((&found, body)) = bytes.split_first() else {
        return Err(Error::Decode {
            what,
            reason: "empty input".into(),
        });
    };
    if found != version {
        return Err(Error::UnsupportedFormat {
            what,
            found,
            supported: version,
        });
    }
    let (value, rest) = postcard::take_from_bytes::<T>(body).map_err(|e| Error::Decode {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(Error::Decode {
            what,
            reason: format!("{} trailing bytes", rest.len()),
        });
    }
    Ok(value)
}

/// Serde support for 64-byte signatures (serde derives stop at 32-element arrays): written as a
/// postcard byte string of exactly 64 bytes.
pub(crate) mod sig64 {
    use serde::{Deserializer, Serializer, de};
    use std::fmt;

    pub(crate) fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(sig)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = [u8; 64];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; 64], E> {
                <[u8; 64]>::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Lowercase hex, for ids in error messages and `Debug`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

//! The bridge's static keys: X25519 key pairs that name the phone's bridge endpoint and each
//! linked desktop in the Noise handshake, and the bridge address a pairing offer carries.
//!
//! The bridge keys are separate from the device keys of `tandem-crypto` (which seal envelopes
//! with HPKE): one X25519 key is never used in two protocols. The phone's bridge public key
//! travels in the pairing offer beside the bridge URL; the desktop's goes back in its answer
//! and lands in the phone's list of authorised desktops.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};
use tandem_crypto::CryptoRng;
use x25519_dalek::{PublicKey as XPublicKey, StaticSecret as XStaticSecret};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Length of a key, secret or public.
pub const KEY_LEN: usize = 32;
/// Longest bridge address accepted, in bytes.
pub const MAX_ADDRESS_LEN: usize = 256;

/// A static X25519 private key. Boxed, zeroized on drop; its `Debug` shows only the public key.
pub struct StaticSecret(Box<Zeroizing<[u8; KEY_LEN]>>);

impl StaticSecret {
    /// A fresh random key from the caller's generator.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        rng.fill_bytes(bytes.as_mut_slice());
        Self(bytes)
    }

    /// Wraps stored secret bytes (as [`Self::to_bytes`] gave them).
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Box::new(Zeroizing::new(bytes)))
    }

    /// The secret bytes, for the encrypted store. Zeroized on drop.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(**self.0)
    }

    /// The public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        let secret = XStaticSecret::from(**self.0);
        PublicKey(XPublicKey::from(&secret).to_bytes())
    }

    /// The bytes handed to snow (which keeps its own zeroized copy).
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for StaticSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticSecret")
            .field("public", &self.public_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A static X25519 public key. Text form: base64url without padding (43 characters).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "[u8; KEY_LEN]", into = "[u8; KEY_LEN]")]
pub struct PublicKey([u8; KEY_LEN]);

impl TryFrom<[u8; KEY_LEN]> for PublicKey {
    type Error = Error;

    fn try_from(bytes: [u8; KEY_LEN]) -> Result<Self> {
        Self::from_bytes(bytes)
    }
}

impl From<PublicKey> for [u8; KEY_LEN] {
    fn from(key: PublicKey) -> Self {
        key.0
    }
}

impl PublicKey {
    /// Checks and wraps 32 bytes: a key of small order is refused.
    ///
    /// # Errors
    /// [`Error::WeakKey`].
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Result<Self> {
        let key = Self(bytes);
        key.check("the public key")?;
        Ok(key)
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Refuses a key of small order: an exchange with it gives the all-zero result, whatever
    /// the secret. A clamped scalar (a multiple of 8) maps exactly such points to zero.
    pub(crate) fn check(&self, what: &'static str) -> Result<()> {
        let probe = XStaticSecret::from([0x55u8; KEY_LEN]);
        if probe
            .diffie_hellman(&XPublicKey::from(self.0))
            .was_contributory()
        {
            Ok(())
        } else {
            Err(Error::WeakKey { what })
        }
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64URL_NOPAD.encode(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::Malformed {
            what: "bridge public key",
            reason,
        };
        let bytes = BASE64URL_NOPAD
            .decode(text.trim().as_bytes())
            .map_err(|_| bad("not base64url without padding".into()))?;
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| bad(format!("{} bytes instead of 32", b.len())))?;
        Self::from_bytes(bytes)
    }
}

/// Checks a bridge address as a pairing offer carries it: a `ws://` or `wss://` URL with a
/// host, at most [`MAX_ADDRESS_LEN`] bytes, no whitespace or control characters.
///
/// # Errors
/// [`Error::BadAddress`] with the reason.
pub fn check_address(address: &str) -> Result<()> {
    let bad = |reason| Error::BadAddress {
        excerpt: address.chars().take(40).collect(),
        reason,
    };
    if address.len() > MAX_ADDRESS_LEN {
        return Err(bad("longer than 256 bytes"));
    }
    let rest = address
        .strip_prefix("ws://")
        .or_else(|| address.strip_prefix("wss://"))
        .ok_or_else(|| bad("must start with ws:// or wss://"))?;
    if rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("contains whitespace or control characters"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tandem_crypto::rng::{ChaCha20Rng, SeedableRng};

    use super::*;

    #[test]
    fn a_key_round_trips_through_its_bytes_and_its_text() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let secret = StaticSecret::generate(&mut rng);
        let again = StaticSecret::from_bytes(*secret.to_bytes());
        assert_eq!(secret.public_key(), again.public_key());
        let text = secret.public_key().to_string();
        assert_eq!(text.len(), 43);
        assert_eq!(text.parse::<PublicKey>().unwrap(), secret.public_key());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = StaticSecret::from_bytes([0x42; 32]);
        let shown = format!("{secret:?}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains(&secret.public_key().to_string()));
        assert!(!shown.contains("42, 42"));
        assert!(!shown.contains(&BASE64URL_NOPAD.encode(&[0x42; 32])));
    }

    #[test]
    fn small_order_keys_are_refused() {
        assert_eq!(
            PublicKey::from_bytes([0; 32]),
            Err(Error::WeakKey {
                what: "the public key"
            })
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(PublicKey::from_bytes(one).is_err());
        assert!(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                .parse::<PublicKey>()
                .is_err()
        );
        assert!("not a key".parse::<PublicKey>().is_err());
        assert!("AAAA".parse::<PublicKey>().is_err());
    }

    #[test]
    fn bridge_addresses_are_websocket_urls() {
        check_address("ws://192.168.1.20:7070/bridge").unwrap();
        check_address("wss://phone.example:443").unwrap();
        for bad in [
            "http://phone",
            "ws://",
            "ws://:80",
            "ws://a b",
            "mqtt://x",
            &format!("ws://{}", "a".repeat(300)),
        ] {
            assert!(
                matches!(check_address(bad), Err(Error::BadAddress { .. })),
                "{bad}"
            );
        }
    }
}

//! Accounts: the Ed25519 account key created on the primary, its public half, and the account id
//! derived from it (so nobody can claim an id without holding the key).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::excerpt;
use crate::rng::CryptoRng;
use crate::{Error, Result};

/// Length of an [`AccountId`] in bytes.
pub const ACCOUNT_ID_LEN: usize = 16;

/// Length of an [`AccountId`]'s text form (lowercase base32, no padding).
pub const ACCOUNT_ID_TEXT_LEN: usize = 26;

/// Domain label hashed in front of the account public key to derive the account id.
const ACCOUNT_ID_LABEL: &[u8] = b"tandem/v1 account";

/// The account's signing key (Ed25519). Lives on the primary; signs device certificates and
/// device lists. Boxed, zeroized on drop, and its `Debug` prints only the account id.
pub struct AccountKey(Box<SigningKey>);

impl AccountKey {
    /// Creates a new random account key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        Self(Box::new(SigningKey::generate(rng)))
    }

    /// Restores an account key from its 32 secret bytes (as written by [`Self::to_secret_bytes`]).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        Self(Box::new(SigningKey::from_bytes(bytes)))
    }

    /// The 32 secret bytes, for the (encrypted) store. Zeroized when dropped.
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    pub fn public_key(&self) -> AccountPublicKey {
        AccountPublicKey(self.0.verifying_key())
    }

    /// The account id derived from the public key.
    pub fn account_id(&self) -> AccountId {
        self.public_key().account_id()
    }

    /// Signs `domain || message`. Domains are fixed labels that end in a NUL byte, so no
    /// signature made for one purpose verifies for another.
    pub(crate) fn sign(&self, domain: &[u8], message: &[u8]) -> [u8; 64] {
        let mut signed = Vec::with_capacity(domain.len() + message.len());
        signed.extend_from_slice(domain);
        signed.extend_from_slice(message);
        self.0.sign(&signed).to_bytes()
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("account", &self.account_id())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The account's public key: a valid, non-weak Ed25519 point (checked on construction).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "[u8; 32]", into = "[u8; 32]")]
pub struct AccountPublicKey(VerifyingKey);

impl AccountPublicKey {
    /// Parses 32 bytes; refuses bytes that are not a point and small-order (weak) points.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| Error::InvalidKey {
            what: "account public key",
            reason: "not an Ed25519 point",
        })?;
        if key.is_weak() {
            return Err(Error::InvalidKey {
                what: "account public key",
                reason: "small-order (weak) Ed25519 point",
            });
        }
        Ok(Self(key))
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The account id: the first 16 bytes of SHA-256("tandem/v1 account" || key).
    pub fn account_id(&self) -> AccountId {
        let digest = Sha256::new()
            .chain_update(ACCOUNT_ID_LABEL)
            .chain_update(self.0.as_bytes())
            .finalize();
        let mut id = [0u8; ACCOUNT_ID_LEN];
        for (dst, src) in id.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        AccountId(id)
    }

    /// Verifies a signature made by [`AccountKey::sign`] over `domain || message` (strict
    /// verification: no malleable or weak-key signatures).
    pub(crate) fn verify(&self, domain: &[u8], message: &[u8], signature: &[u8; 64]) -> bool {
        verify_strict(&self.0, domain, message, signature)
    }

    /// Base32 text of the key (lowercase, no padding, 52 characters), as in contact links.
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD
            .encode(self.0.as_bytes())
            .to_ascii_lowercase()
    }

    /// Parses [`Self::to_base32`]'s text (lowercase only, canonical).
    pub fn from_base32(text: &str) -> Result<Self> {
        let bytes = decode_base32_lower(text, 32).ok_or(Error::InvalidKey {
            what: "account public key",
            reason: "not 52 lowercase base32 characters",
        })?;
        let arr = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Error::InvalidKey {
            what: "account public key",
            reason: "not 32 bytes",
        })?;
        Self::from_bytes(&arr)
    }
}

impl TryFrom<[u8; 32]> for AccountPublicKey {
    type Error = Error;
    fn try_from(bytes: [u8; 32]) -> Result<Self> {
        Self::from_bytes(&bytes)
    }
}

impl From<AccountPublicKey> for [u8; 32] {
    fn from(key: AccountPublicKey) -> Self {
        key.to_bytes()
    }
}

impl fmt::Debug for AccountPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountPublicKey({})", self.to_base32())
    }
}

/// An account's id: 16 bytes derived from its public key. Text form: 26 lowercase base32
/// characters, safe in MQTT topics and file names.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountId([u8; ACCOUNT_ID_LEN]);

impl AccountId {
    /// Wraps raw bytes (as read from an envelope header). Any 16 bytes are a well-formed id;
    /// whether a key stands behind it is checked where a key is presented.
    pub fn from_bytes(bytes: [u8; ACCOUNT_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; ACCOUNT_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &data_encoding::BASE32_NOPAD
                .encode(&self.0)
                .to_ascii_lowercase(),
        )
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({self})")
    }
}

impl FromStr for AccountId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidAccountId {
            input: excerpt(s),
            reason,
        };
        if s.len() != ACCOUNT_ID_TEXT_LEN {
            return Err(invalid("not 26 characters"));
        }
        let bytes = decode_base32_lower(s, ACCOUNT_ID_LEN)
            .ok_or_else(|| invalid("not lowercase base32 (a-z, 2-7) in canonical form"))?;
        let arr = <[u8; ACCOUNT_ID_LEN]>::try_from(bytes.as_slice())
            .map_err(|_| invalid("not 16 bytes"))?;
        Ok(Self(arr))
    }
}

/// Decodes lowercase, unpadded, canonical base32 of exactly `len` bytes.
fn decode_base32_lower(text: &str, len: usize) -> Option<Vec<u8>> {
    if !text
        .bytes()
        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    {
        return None;
    }
    // BASE32_NOPAD_NOCASE also refuses non-zero trailing bits, so every id has one text form.
    let bytes = data_encoding::BASE32_NOPAD_NOCASE
        .decode(text.as_bytes())
        .ok()?;
    (bytes.len() == len).then_some(bytes)
}

/// Strict Ed25519 verification of `domain || message`.
pub(crate) fn verify_strict(
    key: &VerifyingKey,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> bool {
    let mut signed = Vec::with_capacity(domain.len() + message.len());
    signed.extend_from_slice(domain);
    signed.extend_from_slice(message);
    key.verify_strict(&signed, &Signature::from_bytes(signature))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{ChaCha20Rng, SeedableRng};

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::from_seed([1; 32])
    }

    #[test]
    fn an_account_id_is_26_lowercase_base32_chars_and_parses_back() {
        let key = AccountKey::generate(&mut rng());
        let id = key.account_id();
        let text = id.to_string();
        assert_eq!(text.len(), ACCOUNT_ID_TEXT_LEN);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(text.parse::<AccountId>().unwrap(), id);
    }

    #[test]
    fn account_id_text_is_strict() {
        let id = AccountKey::generate(&mut rng()).account_id().to_string();
        assert!(id.to_ascii_uppercase().parse::<AccountId>().is_err());
        assert!(id[..25].parse::<AccountId>().is_err());
        assert!(format!("{id}a").parse::<AccountId>().is_err());
        // The last character carries 2 padding bits; a non-zero value is not canonical.
        let mut chars: Vec<char> = id.chars().collect();
        let last = chars.last_mut().unwrap();
        let base32 = "abcdefghijklmnopqrstuvwxyz234567";
        let pos = base32.find(*last).unwrap();
        *last = base32.chars().nth(pos ^ 1).unwrap();
        let tweaked: String = chars.into_iter().collect();
        assert!(tweaked.parse::<AccountId>().is_err());
    }

    #[test]
    fn the_account_id_depends_on_the_key_and_the_label() {
        let a = AccountKey::generate(&mut rng());
        let b = AccountKey::generate(&mut ChaCha20Rng::from_seed([2; 32]));
        assert_ne!(a.account_id(), b.account_id());
        let plain = Sha256::digest(a.public_key().to_bytes());
        assert_ne!(&plain[..16], a.account_id().as_bytes());
    }

    #[test]
    fn secret_bytes_restore_the_same_key_and_debug_hides_them() {
        let key = AccountKey::generate(&mut rng());
        let again = AccountKey::from_secret_bytes(&key.to_secret_bytes());
        assert_eq!(again.public_key(), key.public_key());
        let debug = format!("{key:?}");
        assert!(debug.contains("<redacted>"));
        let secret_hex = crate::codec::hex(&*key.to_secret_bytes());
        assert!(!debug.contains(&secret_hex));
    }

    #[test]
    fn public_keys_round_trip_through_base32_and_weak_points_are_refused() {
        let key = AccountKey::generate(&mut rng()).public_key();
        assert_eq!(
            AccountPublicKey::from_base32(&key.to_base32()).unwrap(),
            key
        );
        // The identity point (1, 0...) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            AccountPublicKey::from_bytes(&identity),
            Err(Error::InvalidKey { .. })
        ));
    }

    #[test]
    fn signatures_are_bound_to_their_domain() {
        let key = AccountKey::generate(&mut rng());
        let sig = key.sign(b"tandem/v1 a\0", b"hello");
        assert!(key.public_key().verify(b"tandem/v1 a\0", b"hello", &sig));
        assert!(!key.public_key().verify(b"tandem/v1 b\0", b"hello", &sig));
        assert!(!key.public_key().verify(b"tandem/v1 a\0", b"hellp", &sig));
    }
}

//! The symmetric-key ratchet (Signal's "KDF chain"): from chain key `n`, HMAC-SHA256 with two
//! distinct one-byte constants gives message-key seed `n` (0x01) and chain key `n + 1` (0x02).
//! A seed is expanded by HKDF-SHA256 into a ChaCha20-Poly1305 key and nonce used for exactly one
//! message. Old chain keys are overwritten and zeroized, so a captured state cannot recompute
//! earlier message keys.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Error, Result};

const MESSAGE_KEY_CONSTANT: u8 = 0x01;
const CHAIN_KEY_CONSTANT: u8 = 0x02;
const MESSAGE_KEY_INFO: &[u8] = b"tandem/v1 message key";

/// A chain key: 32 secret bytes, zeroized on drop, never printed.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey([u8; 32]);

impl ChainKey {
    /// Wraps the 32-byte root exported by HPKE (chain key 0).
    pub(crate) fn from_root(root: [u8; 32]) -> Self {
        Self(root)
    }

    /// One ratchet step: (message-key seed for this position, chain key of the next position).
    pub(crate) fn step(&self) -> (MessageKeySeed, ChainKey) {
        // HMAC pads a 32-byte key with zeros to the 64-byte block, so this block-sized key is the
        // same HMAC key, and it avoids a fallible constructor.
        let mut block = Zeroizing::new([0u8; 64]);
        for (dst, src) in block.iter_mut().zip(self.0.iter()) {
            *dst = *src;
        }
        let keyed =
            <Hmac<Sha256> as KeyInit>::new(&hmac::digest::Key::<Hmac<Sha256>>::from(*block));
        let mut for_message = keyed.clone();
        for_message.update(&[MESSAGE_KEY_CONSTANT]);
        let mut for_chain = keyed;
        for_chain.update(&[CHAIN_KEY_CONSTANT]);
        (
            MessageKeySeed(for_message.finalize().into_bytes().into()),
            ChainKey(for_chain.finalize().into_bytes().into()),
        )
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

/// The 32-byte seed of one message key (what the receiver keeps for skipped messages).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeySeed([u8; 32]);

impl MessageKeySeed {
    /// Expands the seed into the key and nonce of its one message.
    pub(crate) fn expand(&self) -> Result<MessageKey> {
        let mut okm = Zeroizing::new([0u8; 44]);
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(MESSAGE_KEY_INFO, okm.as_mut_slice())
            .map_err(|_| Error::KeyDerivation {
                what: "message key",
            })?;
        let (key, nonce) = okm.split_at(32);
        let mut message_key = MessageKey {
            key: [0u8; 32],
            nonce: [0u8; 12],
        };
        message_key.key.copy_from_slice(key);
        message_key.nonce.copy_from_slice(nonce);
        Ok(message_key)
    }
}

impl fmt::Debug for MessageKeySeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKeySeed(<redacted>)")
    }
}

/// The key and nonce for exactly one message. Sealing consumes it, so it cannot seal twice.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MessageKey {
    key: [u8; 32],
    nonce: [u8; 12],
}

impl MessageKey {
    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.key))
    }

    /// Seals `plaintext` with ChaCha20-Poly1305, authenticating `aad` (the envelope header).
    /// Returns the ciphertext with its 16-byte tag appended.
    pub fn seal(self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.cipher()
            .encrypt(
                &Nonce::from(self.nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::Seal {
                reason: "the plaintext is too long for ChaCha20-Poly1305",
            })
    }

    /// Opens `ciphertext` (with tag) sealed under this key with `aad`. Borrowing, so a failed
    /// attempt (a forgery) does not burn the key of the genuine message.
    pub(crate) fn open(&self, aad: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.cipher()
            .decrypt(
                &Nonce::from(self.nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::BadTag)
    }
}

impl fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_gives_a_distinct_message_key_and_chain_key() {
        let ck0 = ChainKey::from_root([9; 32]);
        let (mk0, ck1) = ck0.step();
        let (mk1, ck2) = ck1.step();
        let all = [&mk0.0, &mk1.0, &ck0.0, &ck1.0, &ck2.0];
        for (i, a) in all.iter().enumerate() {
            for b in all.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn the_chain_is_deterministic_and_matches_plain_hmac() {
        let root = [3u8; 32];
        let (mk, next) = ChainKey::from_root(root).step();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&root).unwrap();
        mac.update(&[0x01]);
        assert_eq!(mk.0.as_slice(), mac.finalize().into_bytes().as_slice());
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&root).unwrap();
        mac.update(&[0x02]);
        assert_eq!(next.0.as_slice(), mac.finalize().into_bytes().as_slice());
    }

    #[test]
    fn a_message_key_opens_what_it_sealed_and_only_with_the_same_aad() {
        let (seed, _) = ChainKey::from_root([5; 32]).step();
        let sealed = seed.expand().unwrap().seal(b"header", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + 16);
        let key = seed.expand().unwrap();
        assert_eq!(key.open(b"header", &sealed).unwrap().as_slice(), b"hello");
        assert_eq!(key.open(b"headeR", &sealed), Err(Error::BadTag));
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert_eq!(key.open(b"header", &flipped), Err(Error::BadTag));
        assert_eq!(key.open(b"header", &sealed[..10]), Err(Error::BadTag));
    }

    #[test]
    fn debug_output_hides_the_keys() {
        let ck = ChainKey::from_root([0xab; 32]);
        let (seed, _) = ck.step();
        let text = format!("{ck:?} {seed:?} {:?}", seed.expand().unwrap());
        assert!(!text.contains("ab"), "{text}");
        assert!(!text.contains("171"), "{text}");
    }
}

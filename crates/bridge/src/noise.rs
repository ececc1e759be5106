//! The Noise parameters of the bridge and the glue to `snow`: the pattern, the prologue, the
//! size limits, and a resolver whose randomness comes from the caller's generator (so a test
//! with a seeded generator gets the same ephemeral keys every run, and the library never
//! reaches for a global RNG).

use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use snow::{Builder, HandshakeState};
use tandem_crypto::CryptoRng;
use tandem_crypto::rng::{ChaCha20Rng, Rng as _, SeedableRng as _};
use zeroize::Zeroizing;

use crate::keys::{PublicKey, StaticSecret};
use crate::{Error, Result};

/// The Noise protocol name: IK (the desktop knows the phone's static key from the QR offer and
/// sends its own encrypted in message 1), X25519, ChaCha20-Poly1305, SHA-256.
pub const NOISE_PATTERN: &str = "Noise_IK_25519_ChaChaPoly_SHA256";
/// The prologue both sides mix into the handshake hash: a handshake of another protocol or
/// version cannot be mistaken for this one.
pub const PROLOGUE: &[u8] = b"tandem-bridge/1";
/// Largest Noise message, handshake or transport: the Noise limit. One WebSocket binary message
/// carries exactly one Noise message.
pub const MAX_FRAME_LEN: usize = 65_535;
/// The AEAD tag every encrypted Noise payload carries.
pub const TAG_LEN: usize = 16;
/// Smallest message 1: the ephemeral key (32), the encrypted static key (32 + 16), the tag of
/// the (possibly empty) payload.
pub const MIN_MESSAGE1_LEN: usize = 32 + 32 + TAG_LEN + TAG_LEN;
/// Smallest message 2: the ephemeral key and the tag of the payload.
pub const MIN_MESSAGE2_LEN: usize = 32 + TAG_LEN;

/// snow's randomness, seeded from the caller's generator.
struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// snow's default primitives, with [`SeededRandom`] as the generator.
struct Resolver {
    seed: Zeroizing<[u8; 32]>,
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(*self.seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

fn builder<'a>(rng: &mut impl CryptoRng) -> Result<Builder<'a>> {
    let params = NOISE_PATTERN.parse().map_err(|e| Error::noise(&e))?;
    let mut seed = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(seed.as_mut_slice());
    Ok(Builder::with_resolver(params, Box::new(Resolver { seed })))
}

/// The desktop's side: knows the phone's key.
pub(crate) fn initiator(
    local: &StaticSecret,
    phone: &PublicKey,
    rng: &mut impl CryptoRng,
) -> Result<HandshakeState> {
    builder(rng)?
        .local_private_key(local.expose())
        .and_then(|b| b.remote_public_key(phone.as_bytes()))
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(Builder::build_initiator)
        .map_err(|e| Error::noise(&e))
}

/// The phone's side: learns the desktop's key from message 1.
pub(crate) fn responder(local: &StaticSecret, rng: &mut impl CryptoRng) -> Result<HandshakeState> {
    builder(rng)?
        .local_private_key(local.expose())
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(Builder::build_responder)
        .map_err(|e| Error::noise(&e))
}

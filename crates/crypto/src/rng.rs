//! Randomness. The protocol logic never reaches for a global generator: every function that
//! needs randomness takes `rng: &mut impl CryptoRng` (rand_core 0.10, the version the pinned
//! `hpke`, `x25519-dalek` and `ed25519-dalek` use), so tests and simulations can pass a seeded
//! [`ChaCha20Rng`] and get the same bytes every run. Callers that want real randomness use
//! [`OsRng`], a ChaCha20 generator seeded from the operating system.

use std::convert::Infallible;
use std::fmt;

pub use chacha20::ChaCha20Rng;
pub use rand_core::{CryptoRng, Rng, SeedableRng, TryCryptoRng, TryRng};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// A cryptographically secure generator seeded from the operating system (`getrandom`).
///
/// Creating one can fail (the OS source is unavailable) and reports it as
/// [`Error::OsRandom`]; drawing from it afterwards cannot fail, which is what the
/// `CryptoRng` trait requires. It does not reseed: create one per batch of operations, as
/// cheap as one `getrandom` call.
pub struct OsRng(ChaCha20Rng);

impl OsRng {
    /// Seeds a new generator with 32 bytes from the operating system.
    pub fn new() -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|e| Error::OsRandom {
            reason: e.to_string(),
        })?;
        Ok(Self(ChaCha20Rng::from_seed(*seed)))
    }
}

impl fmt::Debug for OsRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OsRng { .. }")
    }
}

impl TryRng for OsRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.0.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.try_fill_bytes(dst)
    }
}

impl TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_os_rngs_draw_different_bytes() {
        let mut a = OsRng::new().unwrap();
        let mut b = OsRng::new().unwrap();
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        assert_ne!(x, y);
        assert_ne!(x, [0u8; 32]);
        assert_eq!(format!("{a:?}"), "OsRng { .. }");
    }

    #[test]
    fn a_seeded_rng_repeats_itself() {
        let mut a = ChaCha20Rng::from_seed([7; 32]);
        let mut b = ChaCha20Rng::from_seed([7; 32]);
        assert_eq!(a.next_u64(), b.next_u64());
    }
}

//! Secret values the store handles: the database key and secret blobs read back from it
//! (identity keys, session state). Both are zeroized on drop and never printed.

use std::fmt;

use zeroize::Zeroize;

/// The raw 32-byte SQLCipher key of a store. Boxed so it is never copied around by moves,
/// zeroized on drop, and its `Debug` prints nothing of it.
pub struct StoreKey(Box<[u8; 32]>);

impl StoreKey {
    /// Length of a key in bytes.
    pub const LEN: usize = 32;

    /// Wraps raw key bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut key = Self(Box::new([0; 32]));
        key.0.copy_from_slice(&bytes);
        let mut bytes = bytes;
        bytes.zeroize();
        key
    }

    /// A fresh random key from the operating system.
    ///
    /// # Errors
    /// When the system random source fails.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = Self(Box::new([0; 32]));
        getrandom::fill(key.0.as_mut_slice())?;
        Ok(key)
    }

    /// The raw key bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 64 lowercase hex digits, zeroized when dropped.
    pub(crate) fn to_hex(&self) -> SecretString {
        SecretString(data_encoding::HEXLOWER.encode(self.0.as_slice()))
    }

    /// Parses 64 hex digits (either case).
    pub(crate) fn from_hex(hex: &[u8]) -> Option<Self> {
        if hex.len() != 2 * Self::LEN {
            return None;
        }
        let mut key = Self(Box::new([0; 32]));
        match data_encoding::HEXLOWER_PERMISSIVE.decode_mut(hex, key.0.as_mut_slice()) {
            Ok(n) if n == Self::LEN => Some(key),
            _ => None,
        }
    }
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

/// A string holding secret text (the hex key in a `PRAGMA key`), zeroized on drop.
pub(crate) struct SecretString(pub(crate) String);

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Secret bytes read from the store (identity keys, session state): zeroized on drop, and
/// `Debug` prints only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps bytes.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

//! Broker logins: the per-account broker secret and the per-device MQTT passwords derived
//! from it.
//!
//! A broker deployed for Tandem (`docs/broker/README.md`) authenticates every device: the
//! username is the device's broker name (`{account}-{index}`, [`crate::DeviceId::broker_name`]),
//! the password is
//! `hex(HMAC-SHA256(key = broker secret, msg = "tandem broker password v1\0" || username))`,
//! 64 lowercase hex characters. The primary holds the account's [`BrokerSecret`], so it can
//! print the passwords of the account's first devices for the operator's password file and
//! hand a newly linked device its own password; the broker never sees the secret, and one
//! device's password says nothing about another's.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::rng::CryptoRng;
use crate::{AccountId, DeviceId};

/// Length of a [`BrokerSecret`] in bytes.
pub const BROKER_SECRET_LEN: usize = 32;

/// Length of a [`device_password`] in characters (hex of a SHA-256 output).
pub const PASSWORD_LEN: usize = 64;

/// The domain separation prefix of the password derivation (version 1).
const PASSWORD_DOMAIN: &[u8] = b"tandem broker password v1\0";

/// An account's broker secret: 32 random bytes held by the primary. Boxed, zeroized on drop,
/// and its `Debug` prints nothing of it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BrokerSecret(Box<[u8; BROKER_SECRET_LEN]>);

impl BrokerSecret {
    /// A fresh random secret.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = Box::new([0u8; BROKER_SECRET_LEN]);
        rng.fill_bytes(bytes.as_mut_slice());
        Self(bytes)
    }

    /// Restores a secret from [`Self::to_bytes`].
    #[must_use]
    pub fn from_bytes(bytes: &[u8; BROKER_SECRET_LEN]) -> Self {
        Self(Box::new(*bytes))
    }

    /// The 32 secret bytes, for the encrypted store. Zeroized on drop.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; BROKER_SECRET_LEN]> {
        Zeroizing::new(*self.0)
    }
}

impl fmt::Debug for BrokerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BrokerSecret(<redacted>)")
    }
}

/// A device's broker password: 64 lowercase hex characters. Zeroized on drop, compared in
/// constant time, and its `Debug` prints nothing of it.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// The password text, for the MQTT CONNECT or the broker's password file.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The password as a zeroizing string (to hand on without an unprotected copy).
    #[must_use]
    pub fn into_zeroizing(self) -> Zeroizing<String> {
        self.0
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Password {}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The broker password of the device whose broker username (its
/// [`DeviceId::broker_name`](crate::DeviceId::broker_name), `{account}-{index}`) is `device_id`:
/// lowercase hex of HMAC-SHA256(key = `secret`, msg = `"tandem broker password v1\0"` ||
/// `device_id`).
#[must_use]
pub fn device_password(secret: &BrokerSecret, device_id: &str) -> Password {
    // HMAC pads a 32-byte key with zeros to its 64-byte block, so this block-sized key is
    // the same HMAC key, and it avoids a fallible constructor.
    let mut block = Zeroizing::new([0u8; 64]);
    for (dst, src) in block.iter_mut().zip(secret.0.iter()) {
        *dst = *src;
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&hmac::digest::Key::<Hmac<Sha256>>::from(*block));
    mac.update(PASSWORD_DOMAIN);
    mac.update(device_id.as_bytes());
    let tag = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
    // Reserved up front, so appending never reallocates (and leaves no unzeroized copy).
    let mut text = Zeroizing::new(String::with_capacity(PASSWORD_LEN));
    data_encoding::HEXLOWER.encode_append(tag.as_slice(), &mut text);
    Password(text)
}

/// The logins of an account's first `devices` devices (indices `0..devices`, the primary
/// first): what the operator puts in the broker's password file when registering the
/// account (`tandem-phone broker-passwords --devices N`).
pub fn account_passwords(
    secret: &BrokerSecret,
    account: AccountId,
    devices: u32,
) -> impl Iterator<Item = (DeviceId, Password)> + '_ {
    (0..devices).map(move |index| {
        let device = DeviceId::new(account, index);
        let password = device_password(secret, &device.broker_name());
        (device, password)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{ChaCha20Rng, SeedableRng};

    fn counting_secret() -> BrokerSecret {
        let mut bytes = [0u8; BROKER_SECRET_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::try_from(i).unwrap();
        }
        BrokerSecret::from_bytes(&bytes)
    }

    #[test]
    fn the_password_is_hmac_sha256_hex_of_the_domain_and_device_id() {
        // Computed independently: Python's hmac.new(bytes(range(32)),
        // b"tandem broker password v1\0" + device_id, hashlib.sha256).hexdigest().
        let secret = counting_secret();
        assert_eq!(
            device_password(&secret, "abcdefghijklmnop.0").expose(),
            "3e215d148707cb55d7bd922b487ea6a511b68955c519ecbf8e12de983a55556b"
        );
        assert_eq!(
            device_password(&secret, "abcdefghijklmnop.1").expose(),
            "07a5f0ce6243c3a7cb007ab5eef126dbf3e6c539bce429b32ac4f3ef8aef3b0f"
        );
    }

    #[test]
    fn passwords_differ_per_device_and_per_account_secret() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let one = BrokerSecret::random(&mut rng);
        let other = BrokerSecret::random(&mut rng);
        assert_ne!(*one.to_bytes(), *other.to_bytes());
        let account = AccountId::from_bytes([7; 16]);
        let mut seen: Vec<Password> = account_passwords(&one, account, 8)
            .map(|(_, p)| p)
            .collect();
        seen.extend(account_passwords(&other, account, 8).map(|(_, p)| p));
        for (i, a) in seen.iter().enumerate() {
            assert_eq!(a.expose().len(), PASSWORD_LEN);
            assert!(
                a.expose()
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            );
            for b in seen.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
        // The same inputs always give the same password.
        assert_eq!(
            device_password(&one, "x.3"),
            device_password(&BrokerSecret::from_bytes(&one.to_bytes()), "x.3")
        );
    }

    #[test]
    fn account_passwords_are_those_of_device_ids_0_to_n() {
        let secret = counting_secret();
        let account = AccountId::from_bytes([1; 16]);
        let logins: Vec<(DeviceId, Password)> = account_passwords(&secret, account, 3).collect();
        assert_eq!(logins.len(), 3);
        for (index, (device, password)) in (0u32..).zip(&logins) {
            assert_eq!(device.to_string(), format!("{account}.{index}"));
            assert_eq!(*password, device_password(&secret, &device.broker_name()));
        }
        assert!(logins.first().unwrap().0.is_primary());
    }

    #[test]
    fn debug_prints_no_secret() {
        let secret = counting_secret();
        let password = device_password(&secret, "a.0");
        assert_eq!(format!("{secret:?}"), "BrokerSecret(<redacted>)");
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        let text = password.clone().into_zeroizing();
        assert_eq!(text.as_str(), password.expose());
    }
}

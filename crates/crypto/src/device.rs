//! Devices: every device (the primary included) holds an X25519 key for encryption and an
//! Ed25519 key for signing. A device is named by its account and an index; the primary is 0.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey as XPublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::excerpt;
use crate::rng::CryptoRng;
use crate::{AccountId, Error, Result};

/// The index of the primary device (the phone that owns the account).
pub const PRIMARY_INDEX: u32 = 0;

/// Length of [`DeviceKeys::to_secret_bytes`].
pub const DEVICE_SECRET_LEN: usize = 64;

struct DeviceSecrets {
    x25519: StaticSecret,
    ed25519: SigningKey,
}

/// A device's secret keys: X25519 (encryption) and Ed25519 (signing). Boxed, zeroized on drop
/// (both dalek types zeroize themselves), and the `Debug` shows only the public keys.
pub struct DeviceKeys(Box<DeviceSecrets>);

impl DeviceKeys {
    /// Creates fresh random device keys.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let x25519 = StaticSecret::random_from_rng(rng);
        let ed25519 = SigningKey::generate(rng);
        Self(Box::new(DeviceSecrets { x25519, ed25519 }))
    }

    /// Restores keys from [`Self::to_secret_bytes`]: the X25519 secret then the Ed25519 secret.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self> {
        let invalid = Error::InvalidKey {
            what: "device secret keys",
            reason: "not 64 bytes",
        };
        let arr: &[u8; DEVICE_SECRET_LEN] = bytes.try_into().map_err(|_| invalid)?;
        let (x, ed) = arr.split_at(32);
        let mut x_arr = Zeroizing::new([0u8; 32]);
        let mut ed_arr = Zeroizing::new([0u8; 32]);
        x_arr.copy_from_slice(x);
        ed_arr.copy_from_slice(ed);
        Ok(Self(Box::new(DeviceSecrets {
            x25519: StaticSecret::from(*x_arr),
            ed25519: SigningKey::from_bytes(&ed_arr),
        })))
    }

    /// The 64 secret bytes (X25519 then Ed25519), for the encrypted store. Zeroized on drop.
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(DEVICE_SECRET_LEN));
        out.extend_from_slice(self.0.x25519.as_bytes());
        out.extend_from_slice(self.0.ed25519.as_bytes());
        out
    }

    /// The public keys.
    pub fn public_keys(&self) -> DevicePublicKeys {
        DevicePublicKeys {
            x25519: XPublicKey::from(&self.0.x25519).to_bytes(),
            ed25519: self.0.ed25519.verifying_key().to_bytes(),
        }
    }

    /// The X25519 secret, for HPKE setup inside this crate.
    pub(crate) fn x25519_secret(&self) -> &StaticSecret {
        &self.0.x25519
    }

    /// Signs `domain || message` with the device's Ed25519 key.
    pub(crate) fn sign(&self, domain: &[u8], message: &[u8]) -> [u8; 64] {
        let mut signed = Vec::with_capacity(domain.len() + message.len());
        signed.extend_from_slice(domain);
        signed.extend_from_slice(message);
        self.0.ed25519.sign(&signed).to_bytes()
    }
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("public", &self.public_keys())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A device's public keys, as certified in the device list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DevicePublicKeys {
    /// X25519 public key (encryption; HPKE recipient and sender-authentication key).
    pub x25519: [u8; 32],
    /// Ed25519 public key (the device's counter-signature on its certificate).
    pub ed25519: [u8; 32],
}

impl fmt::Debug for DevicePublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevicePublicKeys")
            .field("x25519", &crate::codec::hex(&self.x25519))
            .field("ed25519", &crate::codec::hex(&self.ed25519))
            .finish()
    }
}

impl DevicePublicKeys {
    /// Checks that both keys can be used before anything is sealed to or verified with them:
    /// the X25519 key is not of small order, the Ed25519 key is a valid, non-weak point.
    ///
    /// # Errors
    /// `("dh", reason)` or `("sig", reason)`, naming the key as a pairing link does.
    pub fn check(&self) -> std::result::Result<(), (&'static str, &'static str)> {
        check_x25519_contributory(&self.x25519, &"the device")
            .map_err(|_| ("dh", "is not a usable X25519 public key (small order)"))?;
        match ed25519_dalek::VerifyingKey::from_bytes(&self.ed25519) {
            Ok(key) if !key.is_weak() => Ok(()),
            _ => Err(("sig", "is not a usable Ed25519 public key")),
        }
    }
}

/// Refuses an X25519 public key of small order: every exchange with it would give the all-zero
/// (non-contributory) result. Multiplying by a clamped scalar (a multiple of 8 below the group
/// order) gives the identity exactly for such points.
pub(crate) fn check_x25519_contributory(public: &[u8; 32], whose: &dyn fmt::Display) -> Result<()> {
    let probe = StaticSecret::from([0x55u8; 32]);
    if probe
        .diffie_hellman(&XPublicKey::from(*public))
        .was_contributory()
    {
        Ok(())
    } else {
        Err(Error::NonContributory {
            what: whose.to_string(),
        })
    }
}

/// A device's id: its account and its index in the account's device list (`"{account}.{index}"`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeviceId {
    /// The account the device belongs to.
    pub account: AccountId,
    /// The device's index; [`PRIMARY_INDEX`] (0) is the primary.
    pub index: u32,
}

/// Length of [`DeviceId::to_bytes`].
pub const DEVICE_ID_LEN: usize = 20;

impl DeviceId {
    /// The device `index` of `account`.
    pub fn new(account: AccountId, index: u32) -> Self {
        Self { account, index }
    }

    /// The primary device of `account`.
    pub fn primary(account: AccountId) -> Self {
        Self::new(account, PRIMARY_INDEX)
    }

    /// Whether this is the primary device.
    pub fn is_primary(&self) -> bool {
        self.index == PRIMARY_INDEX
    }

    /// The device's name on the broker, `"{account}-{index}"`: its MQTT client id, its broker
    /// username and the segment of its topics. Not [`Display`](fmt::Display)'s dotted form:
    /// NATS' MQTT interface maps topic levels onto NATS subjects, where a `.` separates tokens,
    /// and refuses topics holding one. An account id is lowercase base32, so the name holds
    /// only letters, digits and one `-`, valid in every broker's client ids and ACL patterns.
    pub fn broker_name(&self) -> String {
        format!("{}-{}", self.account, self.index)
    }

    /// Fixed 20-byte form: the account id, then the index as big-endian u32.
    pub fn to_bytes(&self) -> [u8; DEVICE_ID_LEN] {
        let mut out = [0u8; DEVICE_ID_LEN];
        let (account, index) = out.split_at_mut(16);
        account.copy_from_slice(self.account.as_bytes());
        index.copy_from_slice(&self.index.to_be_bytes());
        out
    }

    /// Parses [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8; DEVICE_ID_LEN]) -> Self {
        let (account, index) = bytes.split_at(16);
        let mut a = [0u8; 16];
        a.copy_from_slice(account);
        let mut i = [0u8; 4];
        i.copy_from_slice(index);
        Self::new(AccountId::from_bytes(a), u32::from_be_bytes(i))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.account, self.index)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidDeviceId {
            input: excerpt(s),
            reason,
        };
        let (account, index) = s
            .split_once('.')
            .ok_or_else(|| invalid("no '.' between account and index"))?;
        let account: AccountId = account
            .parse()
            .map_err(|_| invalid("the account part is not an account id"))?;
        let canonical = !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
            && (index == "0" || !index.starts_with('0'));
        if !canonical {
            return Err(invalid(
                "the index is not a decimal number without leading zeros",
            ));
        }
        let index: u32 = index
            .parse()
            .map_err(|_| invalid("the index does not fit in 32 bits"))?;
        Ok(Self::new(account, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountKey;
    use crate::rng::{ChaCha20Rng, SeedableRng};

    #[test]
    fn device_ids_print_and_parse_back() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let account = AccountKey::generate(&mut rng).account_id();
        for index in [0, 1, 42, u32::MAX] {
            let id = DeviceId::new(account, index);
            let text = id.to_string();
            assert_eq!(text, format!("{account}.{index}"));
            assert_eq!(text.parse::<DeviceId>().unwrap(), id);
            assert_eq!(DeviceId::from_bytes(&id.to_bytes()), id);
        }
        assert!(DeviceId::primary(account).is_primary());
    }

    #[test]
    fn a_devices_broker_name_has_no_dot_and_names_it_alone() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let account = AccountKey::generate(&mut rng).account_id();
        let names: Vec<String> = [0, 1, 10, u32::MAX]
            .into_iter()
            .map(|index| DeviceId::new(account, index).broker_name())
            .collect();
        assert_eq!(names[1], format!("{account}-1"));
        for name in &names {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
            assert_eq!(name.matches('-').count(), 1, "{name}");
        }
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique, names);
    }

    #[test]
    fn device_id_text_is_strict() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let account = AccountKey::generate(&mut rng).account_id();
        for bad in ["", "00", "01", "+1", "-1", "1.2", "4294967296", " 1", "1 "] {
            let text = format!("{account}.{bad}");
            assert!(
                text.parse::<DeviceId>().is_err(),
                "{text:?} should be refused"
            );
        }
        assert!("nodot".parse::<DeviceId>().is_err());
        assert!(format!("{account}1").parse::<DeviceId>().is_err());
    }

    #[test]
    fn device_keys_round_trip_and_debug_shows_no_secret() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let keys = DeviceKeys::generate(&mut rng);
        let again = DeviceKeys::from_secret_bytes(&keys.to_secret_bytes()).unwrap();
        assert_eq!(again.public_keys(), keys.public_keys());
        let debug = format!("{keys:?}");
        assert!(debug.contains("<redacted>"));
        let secret = keys.to_secret_bytes();
        assert!(!debug.contains(&crate::codec::hex(&secret[..32])));
        assert!(!debug.contains(&crate::codec::hex(&secret[32..])));
        assert!(DeviceKeys::from_secret_bytes(&[0u8; 63]).is_err());
    }

    #[test]
    fn small_order_x25519_keys_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let good = DeviceKeys::generate(&mut rng).public_keys().x25519;
        assert!(check_x25519_contributory(&good, &"good").is_ok());
        // The point 0 and the point 1 have small order.
        let mut one = [0u8; 32];
        one[0] = 1;
        for bad in [[0u8; 32], one] {
            assert!(matches!(
                check_x25519_contributory(&bad, &"bad"),
                Err(Error::NonContributory { .. })
            ));
        }
    }
}

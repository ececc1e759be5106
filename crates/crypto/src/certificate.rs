//! Device certificates: the account key vouches for a device's keys and description, and the
//! device counter-signs the account key and the same body (WhatsApp's "ADV" account and device
//! signatures). Issuing is a two-step typestate: the primary produces an
//! [`AccountSignedCertificate`], which only the device holding the named keys can turn into a
//! complete [`DeviceCertificate`].

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::account::verify_strict;
use crate::codec;
use crate::device::check_x25519_contributory;
use crate::{
    AccountId, AccountKey, AccountPublicKey, DeviceId, DeviceKeys, DevicePublicKeys, Error, Result,
};

/// Longest device name, in bytes of UTF-8.
pub const MAX_DEVICE_NAME_LEN: usize = 64;
/// Longest platform text, in bytes of UTF-8.
pub const MAX_PLATFORM_LEN: usize = 32;
/// Longest encoded certificate, in bytes.
pub const MAX_CERTIFICATE_LEN: usize = 1024;

const ACCOUNT_SIG_DOMAIN: &[u8] = b"tandem/v1 device-certificate account-signature\0";
const DEVICE_SIG_DOMAIN: &[u8] = b"tandem/v1 device-certificate device-signature\0";
const CERT_FORMAT: u8 = 1;

/// What a device presents to be certified: its index in the account, keys, and description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDescription {
    /// Index in the account's device list (0 = primary).
    pub index: u32,
    /// The device's public keys.
    pub keys: DevicePublicKeys,
    /// Human-readable name ("Alice's laptop"); 1..=64 bytes, no control characters.
    pub name: String,
    /// Platform ("linux", "android"...); 1..=32 bytes, no control characters.
    pub platform: String,
    /// When the device was linked (ms since the Unix epoch).
    pub linked_at_ms: i64,
}

/// The signed body: the account (id and key) and the device description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CertificateBody {
    account: AccountId,
    account_key: AccountPublicKey,
    device: DeviceDescription,
}

impl CertificateBody {
    fn device_id(&self) -> DeviceId {
        DeviceId::new(self.account, self.device.index)
    }

    /// Checks the fields that need no signature: bounds, and that the id derives from the key.
    fn check_fields(&self) -> Result<()> {
        let device = self.device_id();
        if self.account_key.account_id() != self.account {
            return Err(Error::CertificateAccountMismatch { device });
        }
        check_text(&self.device.name, MAX_DEVICE_NAME_LEN).map_err(|reason| {
            Error::CertificateField {
                device,
                field: "name",
                reason,
            }
        })?;
        check_text(&self.device.platform, MAX_PLATFORM_LEN).map_err(|reason| {
            Error::CertificateField {
                device,
                field: "platform",
                reason,
            }
        })?;
        check_x25519_contributory(&self.device.keys.x25519, &device)?;
        Ok(())
    }

    fn canonical(&self) -> Result<Vec<u8>> {
        codec::canonical("device certificate body", self)
    }
}

fn check_text(text: &str, max: usize) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("empty");
    }
    if text.len() > max {
        return Err("too long");
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

/// A certificate signed by the account key, waiting for the device's counter-signature.
/// It travels from the primary to the new device in the pairing offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSignedCertificate {
    body: CertificateBody,
    #[serde(with = "codec::sig64")]
    account_signature: [u8; 64],
}

impl AccountKey {
    /// Signs a certificate for `device` (step one of two; the device counter-signs).
    pub fn certify(&self, device: DeviceDescription) -> Result<AccountSignedCertificate> {
        let body = CertificateBody {
            account: self.account_id(),
            account_key: self.public_key(),
            device,
        };
        body.check_fields()?;
        let account_signature = self.sign(ACCOUNT_SIG_DOMAIN, &body.canonical()?);
        Ok(AccountSignedCertificate {
            body,
            account_signature,
        })
    }
}

impl AccountSignedCertificate {
    /// The device this certificate is for.
    pub fn device_id(&self) -> DeviceId {
        self.body.device_id()
    }

    /// The device description the account signed.
    pub fn description(&self) -> &DeviceDescription {
        &self.body.device
    }

    /// The account key that signed.
    pub fn account_key(&self) -> &AccountPublicKey {
        &self.body.account_key
    }

    /// Checks the fields and the account signature (what a device does before counter-signing).
    pub fn verify_account_signature(&self) -> Result<()> {
        self.body.check_fields()?;
        if self.body.account_key.verify(
            ACCOUNT_SIG_DOMAIN,
            &self.body.canonical()?,
            &self.account_signature,
        ) {
            Ok(())
        } else {
            Err(Error::CertificateAccountSignature {
                device: self.device_id(),
            })
        }
    }

    /// Step two: the device checks the account signature, checks the certificate names its own
    /// keys, and counter-signs.
    pub fn countersign(self, device: &DeviceKeys) -> Result<DeviceCertificate> {
        self.verify_account_signature()?;
        if device.public_keys() != self.body.device.keys {
            return Err(Error::CertificateKeysMismatch {
                device: self.device_id(),
            });
        }
        let device_signature = device.sign(DEVICE_SIG_DOMAIN, &self.body.canonical()?);
        Ok(DeviceCertificate {
            body: self.body,
            account_signature: self.account_signature,
            device_signature,
        })
    }

    /// Encodes for the wire (format byte then postcard).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        codec::encode("account-signed certificate", CERT_FORMAT, self)
    }

    /// Decodes [`Self::to_bytes`]; the result is unverified until
    /// [`Self::verify_account_signature`] or [`Self::countersign`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::decode(
            "account-signed certificate",
            CERT_FORMAT,
            MAX_CERTIFICATE_LEN,
            bytes,
        )
    }
}

/// A complete device certificate: account signature and device counter-signature. Decoded
/// certificates are unverified until [`Self::verify`] (device lists verify all of theirs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCertificate {
    body: CertificateBody,
    #[serde(with = "codec::sig64")]
    account_signature: [u8; 64],
    #[serde(with = "codec::sig64")]
    device_signature: [u8; 64],
}

impl DeviceCertificate {
    /// Both steps at once, for a device whose keys sit beside the account key (the primary).
    pub fn issue(
        account: &AccountKey,
        device: &DeviceKeys,
        description: DeviceDescription,
    ) -> Result<Self> {
        account.certify(description)?.countersign(device)
    }

    /// Checks the fields, that the account id derives from the account key, the account
    /// signature, and the device counter-signature.
    pub fn verify(&self) -> Result<()> {
        let device = self.device_id();
        self.body.check_fields()?;
        let canonical = self.body.canonical()?;
        if !self
            .body
            .account_key
            .verify(ACCOUNT_SIG_DOMAIN, &canonical, &self.account_signature)
        {
            return Err(Error::CertificateAccountSignature { device });
        }
        let device_key = VerifyingKey::from_bytes(&self.body.device.keys.ed25519)
            .map_err(|_| Error::CertificateDeviceSignature { device })?;
        if device_key.is_weak()
            || !verify_strict(
                &device_key,
                DEVICE_SIG_DOMAIN,
                &canonical,
                &self.device_signature,
            )
        {
            return Err(Error::CertificateDeviceSignature { device });
        }
        Ok(())
    }

    /// The device this certificate names.
    pub fn device_id(&self) -> DeviceId {
        self.body.device_id()
    }

    /// The account the device belongs to.
    pub fn account_id(&self) -> AccountId {
        self.body.account
    }

    /// The account key that signed.
    pub fn account_key(&self) -> &AccountPublicKey {
        &self.body.account_key
    }

    /// The device's public keys.
    pub fn keys(&self) -> &DevicePublicKeys {
        &self.body.device.keys
    }

    /// The whole signed description.
    pub fn description(&self) -> &DeviceDescription {
        &self.body.device
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.body.device.name
    }

    /// The device's platform.
    pub fn platform(&self) -> &str {
        &self.body.device.platform
    }

    /// When the device was linked (ms since the Unix epoch).
    pub fn linked_at_ms(&self) -> i64 {
        self.body.device.linked_at_ms
    }

    /// Encodes for the wire (format byte then postcard).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        codec::encode("device certificate", CERT_FORMAT, self)
    }

    /// Decodes [`Self::to_bytes`]; call [`Self::verify`] before trusting it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::decode(
            "device certificate",
            CERT_FORMAT,
            MAX_CERTIFICATE_LEN,
            bytes,
        )
    }

    #[cfg(test)]
    pub(crate) fn signatures_mut(&mut self) -> (&mut [u8; 64], &mut [u8; 64]) {
        (&mut self.account_signature, &mut self.device_signature)
    }

    #[cfg(test)]
    pub(crate) fn description_mut(&mut self) -> &mut DeviceDescription {
        &mut self.body.device
    }
}

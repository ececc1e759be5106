//! Device lists: the account-signed, versioned list of the account's current device
//! certificates, published retained at `dev/{account}.0/devices` (the primary's topic).
//! Versions only grow; a receiver takes a candidate list only through [`accept`], which says
//! precisely why it refused one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::{
    AccountId, AccountKey, AccountPublicKey, DeviceCertificate, DeviceId, DevicePublicKeys, Error,
    Result,
};

/// Most devices one account may have (primary included).
pub const MAX_DEVICES: usize = 32;
/// Longest encoded signed device list, in bytes (fits a retained MQTT message easily).
pub const MAX_DEVICE_LIST_LEN: usize = 48 * 1024;

const LIST_SIG_DOMAIN: &[u8] = b"tandem/v1 device-list\0";
const LIST_FORMAT: u8 = 1;

/// The signed content of a list, as on the wire. Private: outside code only ever holds a checked
/// [`DeviceList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ListBody {
    account_key: AccountPublicKey,
    version: u64,
    issued_at_ms: i64,
    certs: Vec<DeviceCertificate>,
}

impl ListBody {
    fn account_id(&self) -> AccountId {
        self.account_key.account_id()
    }

    /// 1..=32 certificates, each valid, each of this account, with distinct indices.
    fn check(&self) -> Result<()> {
        let account = self.account_id();
        let invalid = |reason| Error::DeviceListInvalid { account, reason };
        if self.certs.is_empty() {
            return Err(invalid("it has no devices"));
        }
        if self.certs.len() > MAX_DEVICES {
            return Err(invalid("it has more than 32 devices"));
        }
        let mut seen = BTreeSet::new();
        for cert in &self.certs {
            if cert.account_key() != &self.account_key || cert.account_id() != account {
                return Err(Error::DeviceListForeignCertificate {
                    account,
                    device: cert.device_id(),
                });
            }
            if !seen.insert(cert.device_id().index) {
                return Err(invalid("two certificates share one device index"));
            }
            cert.verify()?;
        }
        Ok(())
    }

    fn canonical(&self) -> Result<Vec<u8>> {
        codec::canonical("device list", self)
    }
}

/// An account's device list. It can only be built by [`DeviceList::new`] (on the primary) or
/// obtained from [`SignedDeviceList::verify`], so it always holds valid certificates of this
/// account with distinct indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList(ListBody);

impl DeviceList {
    /// Builds and checks a list (on the primary): 1..=32 certificates, each valid, each of this
    /// account, with distinct indices. Certificates are kept sorted by index.
    pub fn new(
        account_key: AccountPublicKey,
        version: u64,
        issued_at_ms: i64,
        mut certs: Vec<DeviceCertificate>,
    ) -> Result<Self> {
        certs.sort_by_key(|c| c.device_id().index);
        let body = ListBody {
            account_key,
            version,
            issued_at_ms,
            certs,
        };
        body.check()?;
        Ok(Self(body))
    }

    /// The next version of this list with `certs` (for the primary after a link or unlink).
    pub fn successor(&self, issued_at_ms: i64, certs: Vec<DeviceCertificate>) -> Result<Self> {
        let version = self
            .0
            .version
            .checked_add(1)
            .ok_or(Error::DeviceListInvalid {
                account: self.account_id(),
                reason: "the version cannot grow any further",
            })?;
        Self::new(self.0.account_key, version, issued_at_ms, certs)
    }

    /// The account this list belongs to.
    pub fn account_id(&self) -> AccountId {
        self.0.account_id()
    }

    /// The account's public key.
    pub fn account_key(&self) -> &AccountPublicKey {
        &self.0.account_key
    }

    /// The version (grows by at least one with every change).
    pub fn version(&self) -> u64 {
        self.0.version
    }

    /// When the primary issued this version (ms since the Unix epoch).
    pub fn issued_at_ms(&self) -> i64 {
        self.0.issued_at_ms
    }

    /// The certificates, sorted by device index.
    pub fn certificates(&self) -> &[DeviceCertificate] {
        &self.0.certs
    }

    /// The certificate of the device with `index`, if it is in the list.
    pub fn device(&self, index: u32) -> Option<&DeviceCertificate> {
        self.0.certs.iter().find(|c| c.device_id().index == index)
    }

    /// The ids of all devices in the list, by index.
    pub fn device_ids(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.0.certs.iter().map(DeviceCertificate::device_id)
    }

    /// Whether `device` is in the list with exactly `keys`.
    pub fn contains(&self, device: &DeviceId, keys: &DevicePublicKeys) -> bool {
        device.account == self.account_id()
            && self
                .device(device.index)
                .is_some_and(|cert| cert.keys() == keys)
    }

    /// Signs the list with the account key (which must be this list's).
    pub fn sign(&self, key: &AccountKey) -> Result<SignedDeviceList> {
        if key.public_key() != self.0.account_key {
            return Err(Error::DeviceListSignerMismatch {
                key: key.account_id(),
                list: self.account_id(),
            });
        }
        let signature = key.sign(LIST_SIG_DOMAIN, &self.0.canonical()?);
        Ok(SignedDeviceList {
            body: self.0.clone(),
            signature,
        })
    }
}

/// A device list with the account's signature: what is published and stored. Its content is
/// reachable only through [`Self::verify`] (or [`accept`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDeviceList {
    body: ListBody,
    #[serde(with = "codec::sig64")]
    signature: [u8; 64],
}

impl SignedDeviceList {
    /// Checks that the list belongs to `expected_account`, that the account key signed it, and
    /// that every certificate is valid and of this account. Returns the verified list.
    pub fn verify(&self, expected_account: &AccountId) -> Result<DeviceList> {
        let found = self.body.account_id();
        if &found != expected_account {
            return Err(Error::DeviceListWrongAccount {
                expected: *expected_account,
                found,
            });
        }
        if !self
            .body
            .account_key
            .verify(LIST_SIG_DOMAIN, &self.body.canonical()?, &self.signature)
        {
            return Err(Error::DeviceListSignature {
                account: found,
                version: self.body.version,
            });
        }
        self.body.check()?;
        Ok(DeviceList(self.body.clone()))
    }

    /// The account the list claims to belong to (unverified; for routing and logs).
    pub fn claimed_account(&self) -> AccountId {
        self.body.account_id()
    }

    /// The version the list claims (unverified; for logs).
    pub fn claimed_version(&self) -> u64 {
        self.body.version
    }

    /// Encodes for the retained MQTT topic (format byte then postcard).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        codec::encode("signed device list", LIST_FORMAT, self)
    }

    /// Decodes [`Self::to_bytes`]. Strict: size, format version, trailing bytes. The result is
    /// unverified.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::decode(
            "signed device list",
            LIST_FORMAT,
            MAX_DEVICE_LIST_LEN,
            bytes,
        )
    }

    #[cfg(test)]
    pub(crate) fn certificates_mut(&mut self) -> &mut Vec<DeviceCertificate> {
        &mut self.body.certs
    }

    #[cfg(test)]
    pub(crate) fn signature_mut(&mut self) -> &mut [u8; 64] {
        &mut self.signature
    }
}

/// A newly accepted device list and how it differs from the previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The verified new list.
    pub list: DeviceList,
    /// Devices that were not in the previous list.
    pub added: Vec<DeviceId>,
    /// Devices of the previous list that are gone (drop their sessions).
    pub removed: Vec<DeviceId>,
    /// Devices still listed but with other keys (re-linked; drop their sessions).
    pub rekeyed: Vec<DeviceId>,
}

/// Decides whether `candidate` replaces `current` as the device list of `expected_account`.
///
/// Refuses, each with its own error: a list of another account
/// ([`Error::DeviceListWrongAccount`]), a bad signature ([`Error::DeviceListSignature`]), an
/// invalid certificate or one of another account ([`Error::DeviceListForeignCertificate`]), an
/// older version ([`Error::DeviceListOlder`]), and the current version again
/// ([`Error::DeviceListReplayed`] if identical, [`Error::DeviceListConflict`] if not).
pub fn accept(
    expected_account: &AccountId,
    current: Option<&DeviceList>,
    candidate: &SignedDeviceList,
) -> Result<Accepted> {
    if let Some(current) = current {
        let found = current.account_id();
        if &found != expected_account {
            return Err(Error::DeviceListWrongAccount {
                expected: *expected_account,
                found,
            });
        }
    }
    let list = candidate.verify(expected_account)?;
    let Some(current) = current else {
        return Ok(Accepted {
            added: list.device_ids().collect(),
            list,
            removed: Vec::new(),
            rekeyed: Vec::new(),
        });
    };
    let account = list.account_id();
    if list.version() < current.version() {
        return Err(Error::DeviceListOlder {
            account,
            current: current.version(),
            candidate: list.version(),
        });
    }
    if list.version() == current.version() {
        return Err(if &list == current {
            Error::DeviceListReplayed {
                account,
                version: list.version(),
            }
        } else {
            Error::DeviceListConflict {
                account,
                version: list.version(),
            }
        });
    }
    let added = list
        .device_ids()
        .filter(|id| current.device(id.index).is_none())
        .collect();
    let removed = current
        .device_ids()
        .filter(|id| list.device(id.index).is_none())
        .collect();
    let rekeyed = list
        .certificates()
        .iter()
        .filter(|c| {
            current
                .device(c.device_id().index)
                .is_some_and(|old| old.keys() != c.keys())
        })
        .map(DeviceCertificate::device_id)
        .collect();
    Ok(Accepted {
        list,
        added,
        removed,
        rekeyed,
    })
}

#[cfg(test)]
#[path = "device_list_tests.rs"]
mod tests;

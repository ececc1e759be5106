//! Test people: an account with a phone (and optionally more devices), seeded so every run is
//! the same.

use crate::rng::{ChaCha20Rng, SeedableRng};
use crate::{
    AccountKey, DeviceCertificate, DeviceDescription, DeviceId, DeviceKeys, DeviceList,
    SignedDeviceList,
};

/// One device of a test person.
pub(crate) struct Device {
    pub(crate) id: DeviceId,
    pub(crate) keys: DeviceKeys,
    pub(crate) cert: DeviceCertificate,
}

/// A test person: an account key and its devices (index 0 is the phone).
pub(crate) struct Person {
    pub(crate) account: AccountKey,
    pub(crate) devices: Vec<Device>,
    pub(crate) rng: ChaCha20Rng,
}

impl Person {
    /// A person with a phone, all keys drawn from `seed`.
    pub(crate) fn with_phone(seed: u8) -> Self {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let account = AccountKey::generate(&mut rng);
        let mut person = Self {
            account,
            devices: Vec::new(),
            rng,
        };
        person.link("phone", "android");
        person
    }

    /// Links one more device (next index) and returns its index.
    pub(crate) fn link(&mut self, name: &str, platform: &str) -> u32 {
        let index = u32::try_from(self.devices.len()).unwrap();
        let keys = DeviceKeys::generate(&mut self.rng);
        let description = DeviceDescription {
            index,
            keys: keys.public_keys(),
            name: name.into(),
            platform: platform.into(),
            linked_at_ms: 1_700_000_000_000 + i64::from(index),
        };
        let cert = DeviceCertificate::issue(&self.account, &keys, description).unwrap();
        self.devices.push(Device {
            id: DeviceId::new(self.account.account_id(), index),
            keys,
            cert,
        });
        index
    }

    /// The device with `index`.
    pub(crate) fn device(&self, index: u32) -> &Device {
        &self.devices[usize::try_from(index).unwrap()]
    }

    /// The list of all current devices with `version`, signed.
    pub(crate) fn signed_list(&self, version: u64) -> SignedDeviceList {
        self.list(version).sign(&self.account).unwrap()
    }

    /// The list of all current devices with `version`.
    pub(crate) fn list(&self, version: u64) -> DeviceList {
        let certs = self.devices.iter().map(|d| d.cert.clone()).collect();
        DeviceList::new(self.account.public_key(), version, 1_700_000_000_000, certs).unwrap()
    }
}

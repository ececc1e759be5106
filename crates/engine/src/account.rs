//! Creating the account on the primary: the account key, the primary's device keys and
//! certificate, and the first signed device list, stored in one durable transaction.

use serde::Serialize;
use tandem_crypto::{
    AccountKey, DeviceCertificate, DeviceDescription, DeviceId, DeviceKeys, DeviceList, OsRng,
    PRIMARY_INDEX,
};
use tandem_store::{Account, Device, identity};

use crate::{Engine, Error, Result, now_ms};

/// What `init` made: `{"account","device"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountCreated {
    /// The new account's id.
    pub account: String,
    /// The primary device's id (`account.0`).
    pub device: String,
}

/// Longest device name a certificate takes, in bytes.
const MAX_DEVICE_NAME: usize = 64;

impl Engine {
    /// Creates the account on this device, which becomes its primary. Refuses when the
    /// device already has an account, so nothing is ever overwritten.
    pub fn init_primary(&self, name: &str, broker: Option<&str>) -> Result<AccountCreated> {
        let name = name.trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(Error::BadInput(
                "the account name must be non-empty text".into(),
            ));
        }
        if let Some(url) = broker {
            tandem_net::BrokerList::parse(url).map_err(|e| Error::BadInput(e.to_string()))?;
        }
        let store = self.store();
        if let Some(existing) = store.identity(identity::ACCOUNT_KEY)? {
            let account = account_key_from(existing.expose())?.account_id();
            return Err(Error::AlreadyInitialised {
                account: account.to_string(),
            });
        }

        let mut rng = OsRng::new().map_err(|e| Error::Random(e.to_string()))?;
        let account_key = AccountKey::generate(&mut rng);
        let broker_secret = tandem_crypto::BrokerSecret::random(&mut rng);
        let device_keys = DeviceKeys::generate(&mut rng);
        let account_id = account_key.account_id();
        let now = now_ms();
        let description = DeviceDescription {
            index: PRIMARY_INDEX,
            keys: device_keys.public_keys(),
            name: device_name(name),
            platform: "tandem-phone".into(),
            linked_at_ms: now,
        };
        let certificate = DeviceCertificate::issue(&account_key, &device_keys, description)?;
        let list = DeviceList::new(account_key.public_key(), 1, now, vec![certificate.clone()])?
            .sign(&account_key)?;
        let certificate_bytes = certificate.to_bytes()?;
        let list_bytes = list.to_bytes()?;
        let keys = device_keys.public_keys();

        store.write_durable(|w| -> Result<()> {
            w.put_identity(
                identity::ACCOUNT_KEY,
                account_key.to_secret_bytes().as_slice(),
            )?;
            w.put_identity(
                identity::DEVICE_KEYS,
                device_keys.to_secret_bytes().as_slice(),
            )?;
            w.put_identity(identity::DEVICE_CERTIFICATE, &certificate_bytes)?;
            w.put_identity(identity::ROLE, b"phone")?;
            w.put_identity(identity::MODE, b"primary")?;
            w.put_identity(identity::ACCOUNT_NAME, name.as_bytes())?;
            w.put_identity(identity::DEVICE_NAME, certificate.name().as_bytes())?;
            if let Some(url) = broker {
                w.put_identity(identity::BROKER_URL, url.as_bytes())?;
            }
            w.put_identity(identity::BROKER_SECRET, broker_secret.to_bytes().as_slice())?;
            w.upsert_account(&Account {
                id: account_id.as_bytes().to_vec(),
                public_key: account_key.public_key().to_bytes().to_vec(),
                display_name: name.to_owned(),
            })?;
            w.upsert_device(&Device {
                account: account_id.as_bytes().to_vec(),
                index: PRIMARY_INDEX,
                encryption_key: keys.x25519.to_vec(),
                signing_key: keys.ed25519.to_vec(),
                name: certificate.name().to_owned(),
                platform: certificate.platform().to_owned(),
                linked_at: now,
                certificate: certificate_bytes.clone(),
            })?;
            w.put_device_list(account_id.as_bytes(), 1, &list_bytes)?;
            Ok(())
        })?;
        Ok(AccountCreated {
            account: account_id.to_string(),
            device: DeviceId::primary(account_id).to_string(),
        })
    }
}

/// "NAME's phone", cut on a character boundary to what a certificate holds.
fn device_name(account_name: &str) -> String {
    let mut name = format!("{account_name}'s phone");
    while name.len() > MAX_DEVICE_NAME {
        name.pop();
    }
    name
}

/// Reads a stored account key.
pub(crate) fn account_key_from(bytes: &[u8]) -> Result<AccountKey> {
    let bytes: &[u8; 32] = bytes.try_into().map_err(|_| Error::Corrupt {
        what: "account key",
        reason: format!("{} bytes instead of 32", bytes.len()),
    })?;
    Ok(AccountKey::from_secret_bytes(bytes))
}

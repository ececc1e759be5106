//! Who this device is, read from the store: its account, keys, device id and the account's
//! current device list; and the two things every connection does with them: seal a body for
//! one of the account's devices, and open an envelope that arrived in the inbox.

use tandem_crypto::{
    Accepted, AccountId, AccountKey, DeviceCertificate, DeviceId, DeviceKeys, DeviceList, OsRng,
    PairwiseSession, RekeyPolicy, SignedDeviceList, accept,
};
use tandem_proto::{Body, Envelope, Flags, MessageId, Opened, SealParams};
use tandem_store::{Device, DurableWriter, identity};

use crate::account::account_key_from;
use crate::contacts::Directory;
use crate::replay::StoreReplayGuard;
use crate::{Engine, Error, Result, now_ms};

/// This device's identity.
pub(crate) struct Identity {
    pub(crate) account: AccountId,
    /// The account key, on the primary only.
    pub(crate) account_key: Option<AccountKey>,
    pub(crate) keys: DeviceKeys,
    pub(crate) device: DeviceId,
    pub(crate) list: DeviceList,
    pub(crate) account_name: String,
    pub(crate) broker: Option<String>,
    /// How this device logs in to the broker and which CA it trusts.
    pub(crate) login: BrokerLogin,
}

/// This device's broker login: credentials when the broker checks them, the CA to trust for
/// `mqtts://`.
#[derive(Default)]
pub(crate) struct BrokerLogin {
    pub(crate) credentials: Option<tandem_net::Credentials>,
    pub(crate) ca_pem: Option<Vec<u8>>,
}

impl BrokerLogin {
    /// The client settings of a connection with this login.
    pub(crate) fn settings(&self) -> tandem_net::ClientSettings {
        tandem_net::ClientSettings {
            credentials: self.credentials.clone(),
            tls: self.ca_pem.clone().map(tandem_net::TlsTrust::from_ca_pem),
            ..tandem_net::ClientSettings::default()
        }
    }
}

impl Identity {
    /// This device's own connection to `url` (client id = the device's broker name; `persistent`: the broker
    /// keeps the session) with its login and a Last Will saying it went offline.
    pub(crate) fn connection(
        &self,
        url: &str,
        persistent: bool,
    ) -> Result<crate::mqtt::Connection> {
        let mut settings = self.login.settings();
        settings.clean_session = !persistent;
        settings.last_will = Some(crate::live::last_will(&self.device));
        crate::mqtt::Connection::with_settings(url, &self.device.broker_name(), settings)
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("device", &self.device)
            .field("list_version", &self.list.version())
            .finish_non_exhaustive()
    }
}

fn text(value: Option<tandem_store::SecretBytes>) -> Option<String> {
    value.map(|v| String::from_utf8_lossy(v.expose()).into_owned())
}

impl Engine {
    /// This device's identity; [`Error::NotLinked`] when it has none.
    pub(crate) fn identity(&self) -> Result<Identity> {
        let store = self.store();
        let Some(keys) = store.identity(identity::DEVICE_KEYS)? else {
            return Err(if store.identity(identity::ACCOUNT_KEY)?.is_some() {
                Error::Corrupt {
                    what: "device keys",
                    reason: "missing".into(),
                }
            } else if store.identity(identity::BRIDGE_SECRET)?.is_some() {
                Error::BadInput(
                    "this desktop is linked in bridge mode: it is no device of the account and \
                     has no broker session of its own; it reaches the phone over the bridge"
                        .into(),
                )
            } else {
                Error::NotLinked
            });
        };
        let keys = DeviceKeys::from_secret_bytes(keys.expose())?;
        let (account_key, device) = if let Some(key) = store.identity(identity::ACCOUNT_KEY)? {
            let key = account_key_from(key.expose())?;
            let device = DeviceId::primary(key.account_id());
            (Some(key), device)
        } else if let Some(cert) = store.identity(identity::DEVICE_CERTIFICATE)? {
            (
                None,
                DeviceCertificate::from_bytes(cert.expose())?.device_id(),
            )
        } else {
            return Err(Error::NotLinked);
        };
        let account = device.account;
        let stored = store
            .device_list(account.as_bytes())?
            .ok_or(Error::Corrupt {
                what: "device list",
                reason: "missing".into(),
            })?;
        let list = SignedDeviceList::from_bytes(&stored.signed)?.verify(&account)?;
        let login = self.broker_login(&device)?;
        Ok(Identity {
            account,
            account_key,
            keys,
            device,
            list,
            account_name: text(store.identity(identity::ACCOUNT_NAME)?).unwrap_or_default(),
            broker: text(store.identity(identity::BROKER_URL)?),
            login,
        })
    }

    /// This device's broker login, from the store: the username and password it was given
    /// (a companion) or derives from the account's broker secret (the primary).
    fn broker_login(&self, device: &DeviceId) -> Result<BrokerLogin> {
        let store = self.store();
        let ca_pem = store
            .identity(identity::BROKER_CA)?
            .map(|v| v.expose().to_vec());
        let username = text(store.identity(identity::BROKER_USERNAME)?);
        let credentials = match (username, store.identity(identity::BROKER_PASSWORD)?) {
            (Some(user), Some(password)) => Some(tandem_net::Credentials::new(
                user,
                tandem_net::Password::from(String::from_utf8_lossy(password.expose()).into_owned()),
            )),
            // The primary derives its password; its username is always its broker name (the
            // stored one only says that it logs in, and may predate the dot-free names).
            (Some(_), None) => match store.identity(identity::BROKER_SECRET)? {
                Some(secret) => {
                    let bytes =
                        <[u8; 32]>::try_from(secret.expose()).map_err(|_| Error::Corrupt {
                            what: "broker secret",
                            reason: "not 32 bytes".into(),
                        })?;
                    let secret = tandem_crypto::BrokerSecret::from_bytes(&bytes);
                    let user = device.broker_name();
                    let password = tandem_crypto::device_password(&secret, &user);
                    Some(tandem_net::Credentials::new(
                        user,
                        tandem_net::Password::from(password.into_zeroizing()),
                    ))
                }
                None => None,
            },
            _ => None,
        };
        Ok(BrokerLogin {
            credentials,
            ca_pem,
        })
    }

    /// Seals `body` for `to`, one of this account's devices, advancing (and durably storing)
    /// the pairwise session first.
    pub(crate) fn seal_to(&self, id: &Identity, to: DeviceId, body: &Body) -> Result<Vec<u8>> {
        self.seal_with_list(id, &id.list, to, body)
    }

    /// [`Engine::seal_to`] with the recipient's keys taken from `list` (a list newer or older
    /// than the identity's, around a link or an unlink).
    pub(crate) fn seal_with_list(
        &self,
        id: &Identity,
        list: &DeviceList,
        to: DeviceId,
        body: &Body,
    ) -> Result<Vec<u8>> {
        self.store()
            .write_durable(|w| seal_in(w, id, list, to, std::slice::from_ref(body)))
            .map(|mut sealed| sealed.pop().unwrap_or_default())
    }
}

/// Seals `bodies` for `to` (keys from `list`) inside the caller's durable transaction: the
/// advanced pairwise session is stored with whatever else the transaction commits, so a
/// message and its acknowledgement cost one disk flush, not two.
pub(crate) fn seal_in(
    w: &mut DurableWriter<'_>,
    id: &Identity,
    list: &DeviceList,
    to: DeviceId,
    bodies: &[Body],
) -> Result<Vec<Vec<u8>>> {
    let cert = list.device(to.index).ok_or_else(|| {
        Error::BadInput(format!("device {to} is not in the account's device list"))
    })?;
    let mut rng = OsRng::new().map_err(|e| Error::Random(e.to_string()))?;
    let mut session = match w.session(to.account.as_bytes(), to.index)? {
        Some(bytes) => PairwiseSession::from_bytes(bytes.expose())?,
        None => PairwiseSession::new(id.device, to),
    };
    let now = now_ms();
    let mut sealed = Vec::with_capacity(bodies.len());
    for body in bodies {
        let outbound = session.outbound(
            &id.keys,
            cert.keys(),
            now,
            &RekeyPolicy::default(),
            &mut rng,
        )?;
        let params = SealParams {
            message_id: MessageId::new_v7(now, &mut rng)?,
            timestamp_ms: now,
            flags: Flags::NONE,
        };
        sealed.push(tandem_proto::seal_envelope(outbound, &params, body)?);
    }
    let state = session.to_bytes()?;
    w.put_session(to.account.as_bytes(), to.index, &state)?;
    Ok(sealed)
}

/// Seals one `body` for `to` (keys from `list`) as message `message_id` sent at `ts`, inside
/// the caller's durable transaction (the advanced session commits with it).
pub(crate) fn seal_message(
    w: &mut DurableWriter<'_>,
    id: &Identity,
    list: &DeviceList,
    to: DeviceId,
    body: &Body,
    message_id: MessageId,
    ts: i64,
) -> Result<Vec<u8>> {
    let mut sessions = Sessions::default();
    let sealed = sessions.seal(w, id, list, to, body, message_id, ts)?;
    sessions.store(w)?;
    Ok(sealed)
}

/// Pairwise sessions loaded once and stored once for a batch of seals (a fan-out seals many
/// messages to the same devices in one transaction).
#[derive(Default)]
pub(crate) struct Sessions {
    open: std::collections::HashMap<DeviceId, PairwiseSession>,
}

impl Sessions {
    /// Seals `body` for `to` as message `message_id` sent at `ts`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn seal(
        &mut self,
        w: &DurableWriter<'_>,
        id: &Identity,
        list: &DeviceList,
        to: DeviceId,
        body: &Body,
        message_id: MessageId,
        ts: i64,
    ) -> Result<Vec<u8>> {
        let cert = list.device(to.index).ok_or_else(|| {
            Error::BadInput(format!("device {to} is not in its account's device list"))
        })?;
        let session = match self.open.entry(to) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(match w.session(to.account.as_bytes(), to.index)? {
                    Some(bytes) => PairwiseSession::from_bytes(bytes.expose())?,
                    None => PairwiseSession::new(id.device, to),
                })
            }
        };
        let mut rng = OsRng::new().map_err(|e| Error::Random(e.to_string()))?;
        let outbound = session.outbound(
            &id.keys,
            cert.keys(),
            now_ms(),
            &RekeyPolicy::default(),
            &mut rng,
        )?;
        let params = SealParams {
            message_id,
            timestamp_ms: ts.max(0),
            flags: Flags::NONE,
        };
        Ok(tandem_proto::seal_envelope(outbound, &params, body)?)
    }

    /// Stores every advanced session.
    pub(crate) fn store(self, w: &mut DurableWriter<'_>) -> Result<()> {
        for (to, session) in self.open {
            let state = session.to_bytes()?;
            w.put_session(to.account.as_bytes(), to.index, &state)?;
        }
        Ok(())
    }
}

/// Opens an envelope from one of this account's devices inside a durable transaction: the
/// session state and the message id are stored with whatever the caller stores next.
///
/// Returns `Ok(None)` (after logging why) for anything that must be dropped: malformed, not for
/// this device, not from this account, replayed, forged.
pub(crate) fn open_from_own_device(
    w: &mut DurableWriter<'_>,
    id: &Identity,
    payload: &[u8],
) -> Result<Option<Opened>> {
    open_inbox(w, id, None, payload)
}

/// Opens an envelope from any device of this account or of an account in `dir` (contacts and
/// group members), inside a durable transaction, as [`open_from_own_device`] does. Envelopes
/// from accounts whose list this device does not hold are dropped.
pub(crate) fn open_inbox(
    w: &mut DurableWriter<'_>,
    id: &Identity,
    dir: Option<&Directory>,
    payload: &[u8],
) -> Result<Option<Opened>> {
    let envelope = match Envelope::decode(payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "dropping a malformed envelope");
            return Ok(None);
        }
    };
    let sender = envelope.header().sender;
    let sender_list = if sender.account == id.account {
        &id.list
    } else {
        match dir.and_then(|d| d.get(&sender.account)) {
            Some(list) => list,
            None => {
                tracing::warn!(%sender, "dropping an envelope from an account this device does not know");
                return Ok(None);
            }
        }
    };
    let mut session = match w.session(sender.account.as_bytes(), sender.index)? {
        Some(bytes) => PairwiseSession::from_bytes(bytes.expose())?,
        None => PairwiseSession::new(id.device, sender),
    };
    let now = now_ms();
    let opened = {
        let mut guard = StoreReplayGuard::new(w, now);
        let opened = tandem_proto::open_envelope(
            &envelope,
            &id.keys,
            &mut session,
            sender_list,
            &mut guard,
            now,
        );
        if let Some(failure) = guard.take_failure() {
            return Err(failure.into());
        }
        opened
    };
    let state = session.to_bytes()?;
    w.put_session(sender.account.as_bytes(), sender.index, &state)?;
    match opened {
        Ok(opened) => Ok(Some(opened)),
        // QoS 1 delivers at least once: a repeat is expected after a restart, not an attack.
        Err(
            e @ (tandem_proto::Error::CounterReplay { .. } | tandem_proto::Error::Replay { .. }),
        ) => {
            tracing::debug!(%sender, error = %e, "dropping a repeated envelope");
            Ok(None)
        }
        Err(e) => {
            tracing::warn!(%sender, error = %e, "dropping an envelope");
            Ok(None)
        }
    }
}

/// Stores a newly accepted device list of this device's own account: the list, and the devices
/// table in step with it.
pub(crate) fn store_own_list(
    w: &mut DurableWriter<'_>,
    accepted: &Accepted,
    signed: &SignedDeviceList,
) -> Result<()> {
    let list = &accepted.list;
    let account = list.account_id();
    for removed in &accepted.removed {
        w.remove_device(account.as_bytes(), removed.index)?;
        w.delete_session(account.as_bytes(), removed.index)?;
    }
    for rekeyed in &accepted.rekeyed {
        w.delete_session(account.as_bytes(), rekeyed.index)?;
    }
    for cert in list.certificates() {
        upsert_certificate(w, cert)?;
    }
    w.put_device_list(account.as_bytes(), list.version(), &signed.to_bytes()?)?;
    Ok(())
}

/// Writes one certified device into the devices table.
pub(crate) fn upsert_certificate(
    w: &mut DurableWriter<'_>,
    cert: &DeviceCertificate,
) -> Result<()> {
    let keys = cert.keys();
    w.upsert_device(&Device {
        account: cert.account_id().as_bytes().to_vec(),
        index: cert.device_id().index,
        encryption_key: keys.x25519.to_vec(),
        signing_key: keys.ed25519.to_vec(),
        name: cert.name().to_owned(),
        platform: cert.platform().to_owned(),
        linked_at: cert.linked_at_ms(),
        certificate: cert.to_bytes()?,
    })?;
    Ok(())
}

/// Decides on a device list received for this device's own account.
pub(crate) fn accept_own_list(id: &Identity, bytes: &[u8]) -> Result<(Accepted, SignedDeviceList)> {
    let signed = SignedDeviceList::from_bytes(bytes)?;
    let accepted = accept(&id.account, Some(&id.list), &signed)?;
    Ok((accepted, signed))
}

/// The brokers a stored broker setting names, each as its URL (a list of cluster nodes gives
/// several; a setting that does not parse is kept whole).
pub(crate) fn broker_entries(setting: &str) -> Vec<String> {
    tandem_net::BrokerList::parse(setting).map_or_else(
        |_| vec![setting.to_owned()],
        |list| list.urls().iter().map(ToString::to_string).collect(),
    )
}

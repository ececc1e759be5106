//! The companion's side: linking by QR code ([`Engine::link`]; in bridge mode
//! [`Engine::link_bridge`]) and receiving the history sync ([`Engine::sync`]), each one loop
//! over one MQTT connection feeding the sans-I/O machines of `tandem_proto::pairing` and
//! `tandem_proto::sync`.
//!
//! Crash safety: a chunk is imported, the progress and the running digest recorded, the
//! pairwise session and the envelope id remembered, all in one durable transaction; only then
//! is the MQTT publish acknowledged and the chunk acknowledged to the phone. A process killed at
//! any point gets the unacknowledged envelope again from its persistent session (or the phone
//! resends it after a `Resume`), and a chunk already imported is only acknowledged again.

use std::time::Duration;

use tandem_crypto::{DeviceCertificate, DeviceKeys, OsRng, SignedDeviceList, accept};
use tandem_proto::pairing::{
    BrokerAccess, DesktopEvent, DesktopPairing, LinkedBridge, LinkedDevice, Offer, Output,
    QrSchedule,
};
use tandem_proto::sync::{CHAIN_START, ChunkDecision, SyncMessage, chain, receive_decision};
use tandem_proto::{Body, OpenedBody};
use tandem_store::{Account, Contact, SyncPhase, SyncRole, SyncState, identity};
use tokio::time::Instant;

use crate::identity::{
    Identity, accept_own_list, open_from_own_device, open_inbox, seal_in, store_own_list,
};
use crate::live::{Messenger, Wake};
use crate::messaging::{self, Effect};
use crate::mqtt::{Connection, Incoming, topics};
use crate::views::{BridgeLinkReport, Event};
use crate::{Engine, Error, Result, history, now_ms};

/// Identity entry holding a link answered but not yet confirmed by the phone.
const PENDING_LINK: &str = "pending_link";
/// How long `sync` waits for the phone's confirmation of a pending link (its retained list).
const PENDING_WAIT: Duration = Duration::from_secs(10);

/// A link this device answered, kept until the phone confirms it. Holds the device's secret
/// keys (the store is encrypted; the entry is written under `synchronous=FULL` like the keys).
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingLink {
    keys: Vec<u8>,
    certificate: Vec<u8>,
    offer: Offer,
    name: String,
    broker: String,
}

impl Drop for PendingLink {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.keys.zeroize();
    }
}

/// How long the device waits for a chunk before asking the phone to resume.
const RESUME_AFTER: Duration = Duration::from_secs(3);
/// With nothing to sync: how long after the last message the catch-up connection ends.
const CATCH_UP_QUIET: Duration = Duration::from_millis(700);

/// When a companion's session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// Once the history sync is complete (or, when it already was, after a short catch-up);
    /// giving up after the timeout.
    Synced(Option<Duration>),
    /// Once everything queued to send has been acknowledged by the broker.
    Drained,
    /// Never (until the caller drops the future).
    Forever,
}

/// How a desktop links.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// The broker (`mqtt://host:port`) the phone and the desktop meet on.
    pub broker: String,
    /// This device's name, as the phone shows it.
    pub name: String,
    /// This device's platform.
    pub platform: String,
    /// When codes rotate and expire.
    pub schedule: QrSchedule,
    /// How long the history sync may take after linking (`None`: no limit).
    pub sync_timeout: Option<Duration>,
}

/// What a finished sync holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// Chunks.
    pub chunks: u32,
    /// Messages.
    pub messages: u64,
}

/// Converts a deadline in ms since the epoch into a timer instant.
pub(crate) fn instant_at(ms: i64) -> Instant {
    let wait = ms.saturating_sub(now_ms()).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}

fn rng() -> Result<OsRng> {
    OsRng::new().map_err(|e| Error::Random(e.to_string()))
}

pub(crate) fn progress(state: &SyncState) -> Event {
    Event::Progress {
        chunks_done: state.chunks_done,
        chunks_total: state.chunks_total,
        messages_done: state.messages_done,
        messages_total: state.messages_total,
    }
}

/// What one inbox message asks the loop to do once its transaction committed.
pub(crate) enum Step {
    Nothing,
    /// The account's own list changed (and still holds this device).
    OwnList,
    /// A messaging body was applied.
    Effects(Vec<Effect>),
    /// A chunk was stored (or was already): acknowledge it.
    Ack {
        index: u32,
        digest: [u8; 32],
        count: u64,
        progress: Option<Event>,
    },
    /// The acknowledgement, sealed in the transaction that stored the chunk.
    SealedAck {
        envelope: Vec<u8>,
        progress: Option<Event>,
    },
    Complete(SyncReport),
    Failed(String),
    Unlinked,
}

impl Engine {
    /// Logging out, before the data is erased ([`Engine::erase`]): tells the phone that this
    /// device leaves (a sealed `Unlink` naming itself, which the phone answers by unlinking it,
    /// so nobody keeps sealing messages to it), clears its retained presence, and drops its
    /// session on the broker (it connects once more as itself with a clean session). Returns
    /// whether the broker took all of it within `timeout`: `false` when it is unreachable (and
    /// on a bridge-mode desktop, which has no session), in which case the phone still lists the
    /// device until it is unlinked there.
    ///
    /// # Errors
    /// [`Error::SessionRunning`] while a session runs for this home; [`Error::NotLinked`];
    /// [`Error::BadInput`] on the primary (it owns the account); store errors.
    pub async fn leave(&self, timeout: Duration) -> Result<bool> {
        if crate::control::session_running(self.home()).await {
            return Err(Error::SessionRunning { action: "log out" });
        }
        if self.bridge_link()?.is_some() {
            // A bridge desktop has no session to tell the phone through: the phone keeps it
            // authorised until it is unlinked there.
            return Ok(false);
        }
        let id = self.identity()?;
        if id.account_key.is_some() {
            return Err(Error::BadInput(
                "this is the primary device: it owns the account and cannot log out".into(),
            ));
        }
        let Some(url) = id.broker.clone() else {
            return Ok(false);
        };
        let primary = tandem_crypto::DeviceId::primary(id.account);
        let envelope = self.seal_to(&id, primary, &Body::Unlink { device: id.device })?;
        let mut conn = id.connection(&url, false)?;
        conn.publish(&topics::inbox(&primary), envelope, false)?;
        conn.publish(&topics::presence(&id.device), Vec::new(), true)?;
        let give_up = Instant::now() + timeout;
        let mut acked = 0;
        while acked < 2 {
            match conn.next(Some(give_up)).await {
                Ok(Incoming::PubAck(_)) => acked += 1,
                Ok(Incoming::Publish(p)) => conn.ack(&p)?,
                Ok(Incoming::Connected | Incoming::SubAck) => {}
                Ok(Incoming::Timeout | Incoming::Down(_)) | Err(Error::Broker { .. }) => {
                    conn.disconnect().await;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        conn.disconnect().await;
        Ok(true)
    }

    /// Links this (fresh) device to an account: shows rotating codes through `on`
    /// ([`Event::Code`]), answers the phone's offer, stores the identity, then receives the
    /// whole history ([`Engine::sync`]).
    ///
    /// # Errors
    /// [`Error::AlreadyLinked`] on a device that has an identity; [`Error::Pairing`] when the
    /// codes expire or a side refuses; [`Error::Broker`] when the broker cannot be reached; the
    /// errors of [`Engine::sync`].
    pub async fn link(
        &self,
        options: &LinkOptions,
        on: &mut dyn FnMut(&Event),
    ) -> Result<SyncReport> {
        self.refuse_if_linked()?;
        let mut rng = rng()?;
        let keys = DeviceKeys::generate(&mut rng);
        let (machine, first) = DesktopPairing::start(
            keys,
            &options.name,
            &options.platform,
            &options.broker,
            options.schedule,
            now_ms(),
            &mut rng,
        )?;
        let (machine, linked) = self.pair(machine, first, options, &mut rng, on).await?;
        let Linked::Device(linked) = linked else {
            return Err(Error::Corrupt {
                what: "pairing",
                reason: "a multi-device pairing ended in a bridge link".into(),
            });
        };
        self.save_link(machine.keys(), &linked, &options.name, &options.broker)?;
        on(&Event::Linked {
            account: linked.account().to_string(),
            device: linked.device().to_string(),
        });
        self.sync(options.sync_timeout, on).await
    }

    /// Links this (fresh) desktop in bridge mode (DESIGN 8): makes its bridge key, shows
    /// rotating bridge-mode codes through `on` ([`Event::Code`]), answers the phone's offer
    /// with its bridge key, and once the phone has authorised it stores the account, the
    /// phone's bridge URL and key and its own bridge secret. The broker is used only for the
    /// rendezvous; the desktop becomes no device of the account and holds no broker login.
    /// [`Event::Linked`] names the account and, as `device`, this desktop's bridge key (the id
    /// the phone lists it under).
    ///
    /// # Errors
    /// As [`Engine::link`] (without the sync's).
    pub async fn link_bridge(
        &self,
        options: &LinkOptions,
        on: &mut dyn FnMut(&Event),
    ) -> Result<BridgeLinkReport> {
        self.refuse_if_linked()?;
        let mut rng = rng()?;
        let secret = tandem_bridge::StaticSecret::generate(&mut rng);
        let own_key = secret.public_key();
        let pairing_keys = DeviceKeys::generate(&mut rng);
        let (machine, first) = DesktopPairing::start_bridge(
            pairing_keys,
            *own_key.as_bytes(),
            &options.name,
            &options.platform,
            &options.broker,
            options.schedule,
            now_ms(),
            &mut rng,
        )?;
        let (_, linked) = self.pair(machine, first, options, &mut rng, on).await?;
        let Linked::Bridge(linked) = linked else {
            return Err(Error::Corrupt {
                what: "pairing",
                reason: "a bridge pairing ended in a device link".into(),
            });
        };
        let report = self.save_bridge_link(&secret, &linked, &options.name)?;
        on(&Event::Linked {
            account: report.account.clone(),
            device: report.desktop_key.clone(),
        });
        Ok(report)
    }

    /// On a desktop linked in bridge mode: the account, the phone's bridge URL and key, and
    /// this desktop's bridge key, as stored. `None` on any other device.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when a stored key is damaged; store errors.
    pub fn bridge_link(&self) -> Result<Option<BridgeLinkReport>> {
        let store = self.store();
        let text = |name: &str| -> Result<Option<String>> {
            Ok(store
                .identity(name)?
                .map(|v| String::from_utf8_lossy(v.expose()).into_owned()))
        };
        if text(identity::MODE)?.as_deref() != Some("bridge") {
            return Ok(None);
        }
        let corrupt = |what: &'static str| Error::Corrupt {
            what,
            reason: "missing or not 32 bytes".into(),
        };
        let key = |name: &str, what: &'static str| -> Result<[u8; 32]> {
            store
                .identity(name)?
                .and_then(|v| <[u8; 32]>::try_from(v.expose()).ok())
                .ok_or_else(|| corrupt(what))
        };
        let account = tandem_crypto::AccountPublicKey::from_bytes(&key(
            identity::ACCOUNT_PUBLIC_KEY,
            "account public key",
        )?)?
        .account_id();
        let phone_key = tandem_bridge::PublicKey::from_bytes(key(
            identity::BRIDGE_PHONE_KEY,
            "phone bridge key",
        )?)
        .map_err(|_| corrupt("phone bridge key"))?;
        let own = self
            .bridge_secret()?
            .ok_or_else(|| corrupt("bridge secret"))?;
        Ok(Some(BridgeLinkReport {
            account: account.to_string(),
            account_name: text(identity::ACCOUNT_NAME)?.unwrap_or_default(),
            bridge_url: text(identity::BRIDGE_URL)?.ok_or_else(|| corrupt("bridge URL"))?,
            phone_key: phone_key.to_string(),
            desktop_key: own.public_key().to_string(),
        }))
    }

    /// Refuses to link a device that already has an identity (either mode).
    fn refuse_if_linked(&self) -> Result<()> {
        let store = self.store();
        if store.identity(identity::DEVICE_KEYS)?.is_some()
            || store.identity(identity::ACCOUNT_KEY)?.is_some()
            || store.identity(identity::BRIDGE_SECRET)?.is_some()
        {
            let account = self.status()?.account.unwrap_or_default();
            return Err(Error::AlreadyLinked { account });
        }
        Ok(())
    }

    /// Drives a desktop pairing machine over a throwaway connection to the code's broker
    /// until it links or fails. In multi-device mode an answered offer is kept as a pending
    /// link until the phone confirms.
    async fn pair(
        &self,
        mut machine: DesktopPairing,
        first: Vec<Output<DesktopEvent>>,
        options: &LinkOptions,
        rng: &mut OsRng,
        on: &mut dyn FnMut(&Event),
    ) -> Result<(DesktopPairing, Linked)> {
        let mut suffix = [0u8; 8];
        rand_fill(rng, &mut suffix);
        let client_id = format!("tandem-pair-{}", hex(&suffix));
        let mut settings = tandem_net::ClientSettings {
            clean_session: true,
            ..tandem_net::ClientSettings::default()
        };
        if let Some(ca) = self.store().identity(identity::BROKER_CA)? {
            settings.tls = Some(tandem_net::TlsTrust::from_ca_pem(ca.expose().to_vec()));
        }
        let mut conn = Connection::with_settings(&options.broker, &client_id, settings)?;
        let mut outputs = first;
        // A code is shown only once the broker has taken its subscription: a phone that scans
        // at once must find the desktop listening.
        let mut unshown = Vec::new();
        let mut pending_saved = false;
        let linked = loop {
            let applied = apply_desktop(&mut conn, outputs, &mut unshown, on);
            if !pending_saved && let Some((certificate, offer)) = machine.answered() {
                self.save_pending(machine.keys(), certificate, offer, options)?;
                pending_saved = true;
            }
            let applied = match applied {
                Err(e) if pending_saved => {
                    self.forget_pending()?;
                    return Err(e);
                }
                other => other?,
            };
            if let Some(done) = applied {
                break done;
            }
            if conn.subscriptions_settled() {
                for event in unshown.drain(..) {
                    on(&event);
                }
            }
            let deadline = machine.next_deadline().map(instant_at);
            outputs = match conn.next(deadline).await? {
                Incoming::Publish(p) => {
                    let out = machine.handle(&p.topic, &p.payload, now_ms(), rng);
                    conn.ack(&p)?;
                    out
                }
                Incoming::Timeout => machine.poll(now_ms(), rng),
                Incoming::Connected
                | Incoming::PubAck(_)
                | Incoming::SubAck
                | Incoming::Down(_) => Vec::new(),
            };
        };
        conn.disconnect().await;
        Ok((machine, linked))
    }

    /// Stores what a bridge link gave, in one durable transaction: mode, this desktop's bridge
    /// secret, the phone's bridge URL and key, the account (key and name) and its contacts.
    fn save_bridge_link(
        &self,
        secret: &tandem_bridge::StaticSecret,
        linked: &LinkedBridge,
        name: &str,
    ) -> Result<BridgeLinkReport> {
        let offer = &linked.offer;
        let own_key = secret.public_key();
        if linked.bridge_key != *own_key.as_bytes() {
            return Err(Error::Corrupt {
                what: "bridge link",
                reason: "the phone confirmed another bridge key".into(),
            });
        }
        let phone_key = tandem_bridge::PublicKey::from_bytes(offer.bridge_key)
            .map_err(|e| Error::BadInput(format!("the phone's bridge key: {e}")))?;
        tandem_bridge::keys::check_address(&offer.bridge_url)
            .map_err(|e| Error::BadInput(e.to_string()))?;
        let account = offer.account();
        let now = now_ms();
        self.store().write_durable(|w| -> Result<()> {
            w.put_identity(identity::ROLE, b"desktop")?;
            w.put_identity(identity::MODE, b"bridge")?;
            w.put_identity(identity::BRIDGE_SECRET, secret.to_bytes().as_slice())?;
            w.put_identity(identity::BRIDGE_URL, offer.bridge_url.as_bytes())?;
            w.put_identity(identity::BRIDGE_PHONE_KEY, phone_key.as_bytes())?;
            w.put_identity(identity::ACCOUNT_PUBLIC_KEY, &offer.account_key.to_bytes())?;
            w.put_identity(identity::ACCOUNT_NAME, offer.account_name.as_bytes())?;
            w.put_identity(identity::DEVICE_NAME, name.as_bytes())?;
            w.upsert_account(&Account {
                id: account.as_bytes().to_vec(),
                public_key: offer.account_key.to_bytes().to_vec(),
                display_name: offer.account_name.clone(),
            })?;
            save_contacts(w, &offer.contacts, now)?;
            Ok(())
        })?;
        Ok(BridgeLinkReport {
            account: account.to_string(),
            account_name: offer.account_name.clone(),
            bridge_url: offer.bridge_url.clone(),
            phone_key: phone_key.to_string(),
            desktop_key: own_key.to_string(),
        })
    }

    /// Stores an answered link that the phone has not confirmed yet (see [`PendingLink`]).
    fn save_pending(
        &self,
        keys: &DeviceKeys,
        certificate: &DeviceCertificate,
        offer: &Offer,
        options: &LinkOptions,
    ) -> Result<()> {
        let pending = PendingLink {
            keys: keys.to_secret_bytes().to_vec(),
            certificate: certificate.to_bytes()?,
            offer: offer.clone(),
            name: options.name.clone(),
            broker: options.broker.clone(),
        };
        let bytes =
            tandem_crypto::Zeroizing::new(postcard::to_allocvec(&pending).map_err(|e| {
                Error::Corrupt {
                    what: "pending link",
                    reason: e.to_string(),
                }
            })?);
        drop(pending);
        self.store().write_durable(|w| -> Result<()> {
            w.put_identity(PENDING_LINK, &bytes)?;
            Ok(())
        })
    }

    fn forget_pending(&self) -> Result<()> {
        self.store().write_durable(|w| -> Result<()> {
            w.delete_identity(PENDING_LINK)?;
            Ok(())
        })
    }

    /// Finishes a link whose confirmation this device missed (it stopped between its answer
    /// and the phone's confirmation): the phone published the new device list, retained,
    /// before confirming. Without such a list in time the pending link is dropped.
    async fn finish_pending(&self, on: &mut dyn FnMut(&Event)) -> Result<()> {
        let Some(bytes) = self.store().identity(PENDING_LINK)? else {
            return Ok(());
        };
        let pending: PendingLink =
            postcard::from_bytes(bytes.expose()).map_err(|e| Error::Corrupt {
                what: "pending link",
                reason: e.to_string(),
            })?;
        let keys = DeviceKeys::from_secret_bytes(&pending.keys)?;
        let certificate = DeviceCertificate::from_bytes(&pending.certificate)?;
        let account = certificate.account_id();
        let current = SignedDeviceList::from_bytes(&pending.offer.device_list)?.verify(&account)?;
        let mut settings = access_settings(pending.offer.access.as_ref());
        settings.clean_session = false;
        // The device's broker is the one the offer names (the code's broker may be a pairing
        // broker that lets devices do nothing else).
        let broker = offer_broker(&pending.offer, &pending.broker);
        let mut conn =
            Connection::with_settings(&broker, &certificate.device_id().broker_name(), settings)?;
        conn.subscribe(&topics::devices(&account))?;
        conn.subscribe(&topics::inbox(&certificate.device_id()))?;
        let give_up = Instant::now() + PENDING_WAIT;
        let confirmed = loop {
            match conn.next(Some(give_up)).await? {
                Incoming::Timeout => break None,
                Incoming::Publish(p) if p.topic == topics::devices(&account) => {
                    // Not acknowledged: the sync loop sees the list again.
                    let Ok(signed) = SignedDeviceList::from_bytes(&p.payload) else {
                        continue;
                    };
                    if let Ok(accepted) = accept(&account, Some(&current), &signed)
                        && accepted.list.device(certificate.device_id().index) == Some(&certificate)
                    {
                        break Some(signed);
                    }
                }
                _ => {}
            }
        };
        conn.disconnect().await;
        match confirmed {
            Some(device_list) => {
                let linked = LinkedDevice {
                    certificate,
                    device_list,
                    offer: pending.offer.clone(),
                };
                self.save_link(&keys, &linked, &pending.name, &pending.broker)?;
                on(&Event::Linked {
                    account: linked.account().to_string(),
                    device: linked.device().to_string(),
                });
                Ok(())
            }
            None => {
                self.forget_pending()?;
                Err(Error::LinkUnconfirmed)
            }
        }
    }

    /// Trusts the certificate authority in `pem` (PEM text) for `mqtts://` brokers: the
    /// pairing broker of a coming link, or the broker of this device when the phone's offer
    /// names none.
    ///
    /// # Errors
    /// [`Error::BadInput`] when `pem` holds no certificate.
    pub fn trust_broker_ca(&self, pem: &[u8]) -> Result<()> {
        if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::BadInput(
                "the CA file holds no PEM certificate".into(),
            ));
        }
        self.store()
            .write_durable(|w| w.put_identity(identity::BROKER_CA, pem))?;
        Ok(())
    }

    /// Stores what linking gave: keys, certificate, the account and its device list, contacts,
    /// and the sync to come, in one durable transaction.
    fn save_link(
        &self,
        keys: &DeviceKeys,
        linked: &LinkedDevice,
        name: &str,
        fallback_broker: &str,
    ) -> Result<()> {
        let account = linked.account();
        let accepted = accept(&account, None, &linked.device_list)?;
        let offer = &linked.offer;
        let broker = offer_broker(offer, fallback_broker);
        let certificate = linked.certificate.to_bytes()?;
        let now = now_ms();
        self.store().write_durable(|w| -> Result<()> {
            w.put_identity(identity::DEVICE_KEYS, keys.to_secret_bytes().as_slice())?;
            w.put_identity(identity::DEVICE_CERTIFICATE, &certificate)?;
            w.put_identity(identity::ROLE, b"desktop")?;
            w.put_identity(identity::MODE, b"multi")?;
            w.put_identity(identity::BROKER_URL, broker.as_bytes())?;
            if let Some(access) = &offer.access {
                if !access.username.is_empty() {
                    w.put_identity(identity::BROKER_USERNAME, access.username.as_bytes())?;
                    w.put_identity(identity::BROKER_PASSWORD, access.password.as_bytes())?;
                }
                if let Some(ca) = &access.ca_pem {
                    w.put_identity(identity::BROKER_CA, ca)?;
                }
            }
            w.put_identity(identity::ACCOUNT_NAME, offer.account_name.as_bytes())?;
            w.put_identity(identity::DEVICE_NAME, name.as_bytes())?;
            w.delete_identity(PENDING_LINK)?;
            w.upsert_account(&Account {
                id: account.as_bytes().to_vec(),
                public_key: accepted.list.account_key().to_bytes().to_vec(),
                display_name: offer.account_name.clone(),
            })?;
            store_own_list(w, &accepted, &linked.device_list)?;
            save_contacts(w, &offer.contacts, now)?;
            w.put_sync_state(&SyncState {
                sync_id: offer.sync.sync_id.to_vec(),
                role: SyncRole::Receiver,
                phase: SyncPhase::Running,
                chunks_done: 0,
                chunks_total: offer.sync.chunks,
                messages_done: 0,
                messages_total: offer.sync.messages,
                last_acked: None,
                digest: CHAIN_START.to_vec(),
                plan: Vec::new(),
                updated_at: now,
            })?;
            Ok(())
        })
    }

    /// The newest history sync this device receives, if any.
    pub(crate) fn receiving(&self) -> Result<Option<SyncState>> {
        Ok(self
            .store()
            .sync_states()?
            .into_iter()
            .filter(|s| s.role == SyncRole::Receiver)
            .max_by_key(|s| s.updated_at))
    }

    /// Connects and receives the rest of the history sync; returns once it is complete and
    /// verified (at once when nothing is pending). Asks the phone to resume on every connection
    /// and whenever chunks stop coming. Messages that arrive meanwhile are stored too.
    ///
    /// # Errors
    /// [`Error::NotLinked`]; [`Error::Unlinked`] when the phone removed this device (its keys
    /// are already deleted: call [`Engine::erase`]); [`Error::SyncTimeout`] after `timeout`;
    /// [`Error::SyncFailed`] when the final counts or digest do not match; store and broker
    /// errors.
    pub async fn sync(
        &self,
        timeout: Option<Duration>,
        on: &mut dyn FnMut(&Event),
    ) -> Result<SyncReport> {
        if crate::control::session_running(self.home()).await {
            return Err(Error::SessionRunning { action: "sync" });
        }
        if self.is_bridge()? {
            return self.bridge_sync(timeout, on).await;
        }
        self.companion_session(Until::Synced(timeout), None, on)
            .await
    }

    /// The companion's session: connects as this device and stays connected, receiving the
    /// history sync if one is running, messages, receipts and presence, and sending the
    /// outbox, until `until`.
    pub(crate) async fn companion_session(
        &self,
        until: Until,
        requests: Option<tokio::sync::mpsc::Receiver<crate::control::Pending>>,
        on: &mut dyn FnMut(&Event),
    ) -> Result<SyncReport> {
        self.finish_pending(on).await?;
        let mut id = self.identity()?;
        if id.account_key.is_some() {
            return Err(Error::BadInput(
                "this is the primary device: it sends history, it does not sync it".into(),
            ));
        }
        let state = self.receiving()?;
        let none = SyncReport {
            chunks: 0,
            messages: 0,
        };
        if state.is_none() && matches!(until, Until::Synced(_)) {
            on(&Event::Synced {
                chunks: 0,
                messages: 0,
            });
            return Ok(none);
        }
        // A finished sync still connects once to catch up: an unlink or a new device list
        // may be waiting for this device.
        let mut finished = match state.as_ref().map(|s| s.phase.clone()) {
            None => Some(none),
            Some(SyncPhase::Complete) => state.as_ref().map(|s| SyncReport {
                chunks: s.chunks_total,
                messages: s.messages_done,
            }),
            Some(SyncPhase::Running) => None,
            Some(_) => {
                return Err(Error::SyncFailed(
                    "the history sync was stopped; unlink and link this device again".into(),
                ));
            }
        };
        let sync_id: [u8; 16] = match &state {
            Some(s) => s
                .sync_id
                .as_slice()
                .try_into()
                .map_err(|_| Error::Corrupt {
                    what: "sync state",
                    reason: "sync id is not 16 bytes".into(),
                })?,
            None => [0; 16],
        };
        if let (None, Some(state)) = (&finished, &state) {
            on(&progress(state));
        }
        let mut conn = device_connection(&id)?;
        if until == Until::Forever {
            conn.set_patient();
        }
        conn.subscribe(&topics::devices(&id.account))?;
        let mut messenger = Messenger::new(self, &id, requests)?;
        messenger.watch(self, &id, &mut conn)?;
        let give_up = match until {
            Until::Synced(Some(t)) => Some(Instant::now() + t),
            _ => None,
        };
        let mut quiet_since = Instant::now();
        let mut connected = false;
        loop {
            let resume_at = quiet_since
                + match (finished.is_some(), until) {
                    (false, _) => RESUME_AFTER,
                    (true, Until::Forever) => Duration::from_secs(3600),
                    (true, _) => CATCH_UP_QUIET,
                };
            let deadline = give_up.map_or(resume_at, |g| g.min(resume_at));
            let (incoming, kept) = match messenger.next(&mut conn, Some(deadline)).await? {
                Wake::Mqtt(incoming) => (incoming, None),
                Wake::Kept(row, publish) => (Incoming::Publish(publish), Some(row)),
                Wake::Request(pending) => {
                    if messenger.handle(self, &id, &mut conn, pending, on)? {
                        id = self.identity()?;
                        messenger.dir.set(id.list.clone());
                    }
                    continue;
                }
            };
            match incoming {
                Incoming::Connected => {
                    connected = true;
                    if finished.is_none() {
                        self.send_resume(&mut conn, &id, sync_id)?;
                    }
                    messenger.on_connected(self, &id, &mut conn, on)?;
                    quiet_since = Instant::now();
                }
                Incoming::SubAck => {}
                Incoming::PubAck(tag) => messenger.on_puback(self, &id, &mut conn, tag, on)?,
                Incoming::Down(reason) => on(&Event::Offline { reason }),
                Incoming::Timeout if connected && finished.is_some() => {
                    let report = finished.unwrap_or(none);
                    let done = match until {
                        Until::Synced(_) => true,
                        Until::Drained => messenger.drained(self)?,
                        Until::Forever => false,
                    };
                    if done {
                        Messenger::goodbye(&id, &mut conn);
                        conn.disconnect().await;
                        if matches!(until, Until::Synced(_)) {
                            on(&Event::Synced {
                                chunks: report.chunks,
                                messages: report.messages,
                            });
                        }
                        return Ok(report);
                    }
                    quiet_since = Instant::now();
                }
                Incoming::Timeout => {
                    if give_up.is_some_and(|g| Instant::now() >= g) {
                        let state = self.receiving()?;
                        return Err(Error::SyncTimeout {
                            done: state.as_ref().map_or(0, |s| s.messages_done),
                            total: state.as_ref().map_or(0, |s| s.messages_total),
                        });
                    }
                    if finished.is_none() {
                        on(&Event::Waiting {
                            reason: "no history from the phone for a while; asking it to resume"
                                .into(),
                        });
                        self.send_resume(&mut conn, &id, sync_id)?;
                    }
                    quiet_since = Instant::now();
                }
                Incoming::Publish(p) => {
                    if kept.is_none()
                        && p.topic == topics::inbox(&id.device)
                        && messenger.keep(self, &id, &p.payload)?
                    {
                        conn.ack(&p)?;
                        continue;
                    }
                    let step = if p.topic == topics::devices(&id.account) {
                        self.on_own_list(&mut id, &p.payload)?
                    } else if p.topic == topics::inbox(&id.device) {
                        self.on_inbox(&id, &messenger, sync_id, &p.payload)?
                    } else {
                        messenger.on_topic(self, &id, &mut conn, &p, on)?;
                        Step::Nothing
                    };
                    match kept {
                        Some(row) => Messenger::handled(self, row)?,
                        None => conn.ack(&p)?,
                    }
                    if finished.is_some() {
                        quiet_since = Instant::now();
                    }
                    match step {
                        Step::Nothing => {}
                        Step::OwnList => messenger.dir.set(id.list.clone()),
                        Step::Effects(effects) => {
                            let contact = effects.iter().any(Effect::adds_accounts);
                            self.emit(effects, on);
                            if contact {
                                messenger.watch(self, &id, &mut conn)?;
                            }
                            messenger.flush(self, &id, &mut conn)?;
                        }
                        Step::SealedAck { envelope, progress } => {
                            quiet_since = Instant::now();
                            let primary = tandem_crypto::DeviceId::primary(id.account);
                            conn.publish(&topics::inbox(&primary), envelope, false)?;
                            if let Some(event) = progress {
                                on(&event);
                            }
                        }
                        Step::Ack { .. } => {}
                        Step::Complete(report) => {
                            on(&Event::Synced {
                                chunks: report.chunks,
                                messages: report.messages,
                            });
                            if matches!(until, Until::Synced(_)) {
                                Messenger::goodbye(&id, &mut conn);
                                conn.disconnect().await;
                                return Ok(report);
                            }
                            finished = Some(report);
                            quiet_since = Instant::now();
                        }
                        Step::Failed(reason) => {
                            conn.disconnect().await;
                            return Err(Error::SyncFailed(reason));
                        }
                        Step::Unlinked => {
                            conn.disconnect().await;
                            return Err(Error::Unlinked);
                        }
                    }
                }
            }
        }
    }

    fn send_sync(&self, conn: &mut Connection, id: &Identity, message: &SyncMessage) -> Result<()> {
        let primary = tandem_crypto::DeviceId::primary(id.account);
        let body = Body::HistoryChunk {
            bytes: message.encode()?,
        };
        let envelope = self.seal_to(id, primary, &body)?;
        conn.publish(&topics::inbox(&primary), envelope, false)
    }

    fn send_resume(&self, conn: &mut Connection, id: &Identity, sync_id: [u8; 16]) -> Result<()> {
        let next = self.receiving()?.map_or(0, |s| s.chunks_done);
        self.send_sync(conn, id, &SyncMessage::Resume { sync_id, next })
    }

    /// A device list arrived on the account's retained topic.
    fn on_own_list(&self, id: &mut Identity, payload: &[u8]) -> Result<Step> {
        if payload.is_empty() {
            return Ok(Step::Nothing);
        }
        match accept_own_list(id, payload) {
            Ok((accepted, signed)) => {
                let gone = !accepted.list.contains(&id.device, &id.keys.public_keys());
                self.store().write_durable(|w| -> Result<()> {
                    store_own_list(w, &accepted, &signed)?;
                    if gone {
                        forget_identity(w)?;
                    }
                    Ok(())
                })?;
                id.list = accepted.list;
                Ok(if gone { Step::Unlinked } else { Step::OwnList })
            }
            Err(Error::Crypto(tandem_crypto::Error::DeviceListReplayed { .. })) => {
                Ok(Step::Nothing)
            }
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a device list");
                Ok(Step::Nothing)
            }
        }
    }

    /// An envelope arrived in the inbox: opened, acted on and committed in one transaction.
    fn on_inbox(
        &self,
        id: &Identity,
        messenger: &Messenger,
        sync_id: [u8; 16],
        payload: &[u8],
    ) -> Result<Step> {
        let store = self.store();
        store.write_durable(|w| -> Result<Step> {
            let Some(opened) = open_inbox(w, id, Some(&messenger.dir), payload)? else {
                return Ok(Step::Nothing);
            };
            let from_primary =
                opened.header.sender.is_primary() && opened.header.sender.account == id.account;
            let body = match opened.body {
                OpenedBody::Known(body) => body,
                OpenedBody::Unsupported { kind, .. } => {
                    tracing::warn!(kind, "ignoring a message kind this version does not know");
                    return Ok(Step::Nothing);
                }
            };
            if let Some(effects) = messaging::apply(w, store, id, &opened.header, &body)? {
                return Ok(Step::Effects(effects));
            }
            match body {
                Body::HistoryChunk { bytes } if from_primary => {
                    let message = match SyncMessage::decode(&bytes) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(error = %e, "dropping a history message");
                            return Ok(Step::Nothing);
                        }
                    };
                    match receive(w, sync_id, message)? {
                        Step::Ack {
                            index,
                            digest,
                            count,
                            progress,
                        } => {
                            let ack = SyncMessage::Ack {
                                sync_id,
                                index,
                                digest,
                                count,
                            };
                            let body = Body::HistoryChunk {
                                bytes: ack.encode()?,
                            };
                            let primary = tandem_crypto::DeviceId::primary(id.account);
                            let envelope = seal_in(w, id, &id.list, primary, &[body])?
                                .pop()
                                .unwrap_or_default();
                            Ok(Step::SealedAck { envelope, progress })
                        }
                        other => Ok(other),
                    }
                }
                Body::Unlink { device } if from_primary && device == id.device => {
                    forget_identity(w)?;
                    Ok(Step::Unlinked)
                }
                Body::DeviceListNotice { list } if from_primary => {
                    match accept_own_list(id, &list) {
                        Ok((accepted, signed)) => {
                            store_own_list(w, &accepted, &signed)?;
                            if accepted.list.contains(&id.device, &id.keys.public_keys()) {
                                Ok(Step::Nothing)
                            } else {
                                forget_identity(w)?;
                                Ok(Step::Unlinked)
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring a device list notice");
                            Ok(Step::Nothing)
                        }
                    }
                }
                other => {
                    tracing::debug!(kind = ?other.kind(), "ignoring a message during sync");
                    Ok(Step::Nothing)
                }
            }
        })
    }
}

/// What [`Engine::fetch_older`] brought: `{"chat","fetched","more"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FetchReport {
    /// The chat's name.
    pub chat: String,
    /// Messages that were new to this device.
    pub fetched: u64,
    /// Whether the phone holds older ones still.
    pub more: bool,
}

/// Why an inbox message was not for the page fetch (its transaction is rolled back and the
/// message left for the sync loop).
#[derive(Debug)]
enum PageOutcome {
    Page { fetched: u64, more: bool },
    NotMine,
}

impl Engine {
    /// Fetches up to `pages` pages of 50 messages of `chat` older than the oldest this device
    /// holds, from the phone (which must be online and answer each page within `wait`).
    ///
    /// # Errors
    /// [`Error::NotLinked`]; a chat that is not found; [`Error::PhoneOffline`] when the phone
    /// does not answer; broker and store errors.
    pub async fn fetch_older(&self, chat: &str, pages: u32, wait: Duration) -> Result<FetchReport> {
        if crate::control::session_running(self.home()).await {
            return Err(Error::SessionRunning {
                action: "fetch older messages",
            });
        }
        if self.is_bridge()? {
            return self.bridge_fetch_older(chat, pages, wait).await;
        }
        let id = self.identity()?;
        if id.account_key.is_some() {
            return Err(Error::BadInput(
                "this is the primary device: it holds the whole history already".into(),
            ));
        }
        let summary = self.store().chat_by_id_or_name(chat)?;
        let mut conn = device_connection(&id)?;
        let mut rng = rng()?;
        let mut report = FetchReport {
            chat: summary.name.clone(),
            fetched: 0,
            more: true,
        };
        let mut asked = 0;
        let mut waiting: Option<u64> = None;
        let mut deadline = Instant::now() + wait;
        while asked < pages || waiting.is_some() {
            if waiting.is_none() {
                if !report.more {
                    break;
                }
                let oldest = self
                    .store()
                    .page(
                        summary.id,
                        tandem_store::Cursor::After {
                            ts: i64::MIN,
                            id: tandem_store::MessageId(uuid::Uuid::nil()),
                        },
                        1,
                    )?
                    .first()
                    .map(|m| (m.ts, *m.id.as_bytes()));
                let mut request = [0u8; 8];
                rand_fill(&mut rng, &mut request);
                let request_id = u64::from_le_bytes(request);
                self.send_sync(
                    &mut conn,
                    &id,
                    &SyncMessage::PageRequest {
                        request_id,
                        chat: *summary.id.as_bytes(),
                        before: oldest,
                        limit: tandem_proto::sync::PAGE_MESSAGES,
                    },
                )?;
                waiting = Some(request_id);
                asked += 1;
                deadline = Instant::now() + wait;
            }
            match conn.next(Some(deadline)).await? {
                Incoming::Timeout => {
                    conn.disconnect().await;
                    return Err(Error::PhoneOffline {
                        seconds: wait.as_secs(),
                    });
                }
                Incoming::Connected
                | Incoming::PubAck(_)
                | Incoming::SubAck
                | Incoming::Down(_) => {}
                Incoming::Publish(p) => {
                    if p.topic != topics::inbox(&id.device) {
                        continue;
                    }
                    let expected = waiting.unwrap_or_default();
                    match self.on_page(&id, expected, &p.payload) {
                        Ok(PageOutcome::Page { fetched, more }) => {
                            conn.ack(&p)?;
                            report.fetched += fetched;
                            report.more = more;
                            waiting = None;
                        }
                        // Left unacknowledged: the broker redelivers it to the sync loop.
                        Ok(PageOutcome::NotMine) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        conn.disconnect().await;
        Ok(report)
    }

    /// Opens an inbox message; commits only when it is the awaited page.
    fn on_page(&self, id: &Identity, request: u64, payload: &[u8]) -> Result<PageOutcome> {
        let outcome = self.store().write_durable(|w| -> Result<PageOutcome> {
            let Some(opened) = open_from_own_device(w, id, payload)? else {
                return Err(Error::Skip);
            };
            let OpenedBody::Known(Body::HistoryChunk { bytes }) = opened.body else {
                return Err(Error::Skip);
            };
            match SyncMessage::decode(&bytes) {
                Ok(SyncMessage::Page {
                    request_id,
                    chat,
                    messages,
                    more,
                }) if request_id == request && opened.header.sender.is_primary() => {
                    let chats: Vec<_> = chat.into_iter().collect();
                    let fetched = history::import(w, &chats, &messages)? as u64;
                    Ok(PageOutcome::Page { fetched, more })
                }
                _ => Err(Error::Skip),
            }
        });
        match outcome {
            Err(Error::Skip) => Ok(PageOutcome::NotMine),
            other => other,
        }
    }
}

/// One history-sync message for this device, inside the inbox transaction.
pub(crate) fn receive(
    w: &mut tandem_store::DurableWriter<'_>,
    sync_id: [u8; 16],
    message: SyncMessage,
) -> Result<Step> {
    let Some(mut state) = w.sync_state(&sync_id)? else {
        return Ok(Step::Nothing);
    };
    match message {
        SyncMessage::Chunk(chunk) if chunk.sync_id == sync_id => {
            if let Err(e) = chunk.verify() {
                tracing::warn!(error = %e, "dropping a history chunk");
                return Ok(Step::Nothing);
            }
            if chunk.total != state.chunks_total {
                tracing::warn!(index = chunk.index, "dropping a chunk of another plan size");
                return Ok(Step::Nothing);
            }
            match receive_decision(state.chunks_done, chunk.index) {
                ChunkDecision::Import => {
                    history::import(w, &chunk.chats, &chunk.messages)?;
                    let digest: [u8; 32] =
                        state.digest.as_slice().try_into().unwrap_or(CHAIN_START);
                    state.digest = chain(&digest, chunk.index, &chunk.digest).to_vec();
                    state.chunks_done += 1;
                    state.messages_done += chunk.count();
                    state.last_acked = Some(chunk.index);
                    state.updated_at = now_ms();
                    w.put_sync_state(&state)?;
                    Ok(Step::Ack {
                        index: chunk.index,
                        digest: chunk.digest,
                        count: chunk.count(),
                        progress: Some(progress(&state)),
                    })
                }
                ChunkDecision::AckAgain => Ok(Step::Ack {
                    index: chunk.index,
                    digest: chunk.digest,
                    count: chunk.count(),
                    progress: None,
                }),
                ChunkDecision::Drop => Ok(Step::Nothing),
            }
        }
        SyncMessage::Complete {
            sync_id: done_id,
            chunks,
            messages,
            digest,
        } if done_id == sync_id => {
            if state.phase == SyncPhase::Complete {
                return Ok(Step::Complete(SyncReport {
                    chunks: state.chunks_done,
                    messages: state.messages_done,
                }));
            }
            if state.chunks_done < chunks {
                // Chunks are still on their way (or were dropped): keep going.
                return Ok(Step::Nothing);
            }
            let failure = if state.chunks_done != chunks || state.chunks_total != chunks {
                Some(format!(
                    "the phone sent {chunks} chunks, this device holds {} of a plan of {}",
                    state.chunks_done, state.chunks_total
                ))
            } else if state.messages_done != messages {
                Some(format!(
                    "the phone sent {messages} messages, this device received {}",
                    state.messages_done
                ))
            } else if state.digest.as_slice() != digest.as_slice() {
                Some("the digest over the received history does not match the phone's".into())
            } else {
                None
            };
            state.phase = if failure.is_some() {
                SyncPhase::Failed
            } else {
                SyncPhase::Complete
            };
            state.updated_at = now_ms();
            w.put_sync_state(&state)?;
            Ok(match failure {
                Some(reason) => Step::Failed(reason),
                None => Step::Complete(SyncReport { chunks, messages }),
            })
        }
        SyncMessage::Unknown { sync_id: unknown } if unknown == sync_id => {
            state.phase = SyncPhase::Failed;
            state.updated_at = now_ms();
            w.put_sync_state(&state)?;
            Ok(Step::Failed(
                "the phone no longer has this history sync".into(),
            ))
        }
        _ => Ok(Step::Nothing),
    }
}

/// Deletes this device's keys and sessions (an unlinked device can neither read nor send).
fn forget_identity(w: &mut tandem_store::DurableWriter<'_>) -> Result<()> {
    for name in [
        identity::DEVICE_KEYS,
        identity::DEVICE_CERTIFICATE,
        identity::MODE,
    ] {
        w.delete_identity(name)?;
    }
    Ok(())
}

/// This device's own connection (client id = its broker name, persistent session) with its inbox.
fn device_connection(id: &Identity) -> Result<Connection> {
    let broker = id.broker.as_deref().ok_or(Error::Corrupt {
        what: "broker address",
        reason: "missing".into(),
    })?;
    let mut conn = id.connection(broker, true)?;
    conn.subscribe(&topics::inbox(&id.device))?;
    Ok(conn)
}

/// The usable brokers an offer names, as a list the connection fails over along (the nodes of
/// a cluster), else `fallback` (the code's broker).
fn offer_broker(offer: &Offer, fallback: &str) -> String {
    tandem_net::BrokerList::from_urls(offer.brokers.iter().filter_map(|b| b.parse().ok()))
        .map_or_else(|| fallback.to_owned(), |list| list.to_string())
}

/// The client settings of the login an offer gave (none: no login, the system's CAs).
fn access_settings(access: Option<&BrokerAccess>) -> tandem_net::ClientSettings {
    let mut settings = tandem_net::ClientSettings::default();
    if let Some(access) = access {
        if !access.username.is_empty() {
            settings.credentials = Some(tandem_net::Credentials::new(
                access.username.clone(),
                tandem_net::Password::new(access.password.clone()),
            ));
        }
        settings.tls = access.ca_pem.clone().map(tandem_net::TlsTrust::from_ca_pem);
    }
    settings
}

/// Runs a desktop machine's outputs; returns the linked device once it is linked.
/// The contacts an offer hands over, stored with their accounts.
fn save_contacts(
    w: &mut tandem_store::DurableWriter<'_>,
    contacts: &[tandem_proto::pairing::OfferContact],
    now: i64,
) -> Result<()> {
    for contact in contacts {
        let id = contact.account_key.account_id();
        w.upsert_account(&Account {
            id: id.as_bytes().to_vec(),
            public_key: contact.account_key.to_bytes().to_vec(),
            display_name: contact.name.clone(),
        })?;
        w.upsert_contact(&Contact {
            account: id.as_bytes().to_vec(),
            name: contact.name.clone(),
            added_at: now,
        })?;
    }
    Ok(())
}

/// How a desktop pairing ended well.
enum Linked {
    Device(Box<LinkedDevice>),
    Bridge(Box<LinkedBridge>),
}

fn apply_desktop(
    conn: &mut Connection,
    outputs: Vec<Output<DesktopEvent>>,
    unshown: &mut Vec<Event>,
    on: &mut dyn FnMut(&Event),
) -> Result<Option<Linked>> {
    let mut linked = None;
    for output in outputs {
        match output {
            Output::Subscribe(topic) => conn.subscribe(&topic)?,
            Output::Unsubscribe(topic) => conn.unsubscribe(&topic)?,
            Output::Publish { topic, payload } => conn.publish(&topic, payload, false)?,
            Output::Event(DesktopEvent::Code { link, index }) => {
                // A rotation replaces a code that was never shown.
                unshown.clear();
                unshown.push(Event::Code {
                    link: link.to_string(),
                    index,
                    expires_at: link.expires_at_ms,
                });
            }
            Output::Event(DesktopEvent::OfferRefused(reason)) => {
                tracing::warn!(%reason, "refused a pairing offer");
                on(&Event::Refused {
                    reason: reason.to_string(),
                });
            }
            Output::Event(DesktopEvent::Answered { device, .. }) => {
                tracing::info!(%device, "answered the phone's offer");
            }
            Output::Event(DesktopEvent::BridgeAnswered { account, .. }) => {
                tracing::info!(%account, "answered the phone's bridge offer");
            }
            Output::Event(DesktopEvent::Linked(device)) => linked = Some(Linked::Device(device)),
            Output::Event(DesktopEvent::BridgeLinked(bridge)) => {
                linked = Some(Linked::Bridge(bridge));
            }
            Output::Event(DesktopEvent::Failed(e)) => return Err(Error::Pairing(e)),
        }
    }
    Ok(linked)
}

pub(crate) fn rand_fill(rng: &mut OsRng, bytes: &mut [u8]) {
    use tandem_crypto::rng::Rng;
    rng.fill_bytes(bytes);
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

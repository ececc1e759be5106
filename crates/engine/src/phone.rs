//! The primary's side: scanning a desktop's code and linking it ([`Engine::scan`]; a
//! bridge-mode desktop with [`Engine::scan_bridge`], which authorises its bridge key), serving
//! history syncs and pages to linked devices ([`Engine::serve`]), listing and unlinking
//! devices and bridge desktops. One loop over one MQTT connection (client id = the primary's device id, persistent
//! session), feeding `tandem_proto`'s machines.
//!
//! Progress is stored durably when an acknowledgement arrives, in the same transaction as the
//! session state and the envelope id; the MQTT publish is acknowledged after that commit. A
//! phone that restarts reloads its plans and resends from its last acknowledged chunk.

use std::collections::HashMap;
use std::time::Duration;

use tandem_crypto::{
    AccountPublicKey, DeviceCertificate, DeviceId, OsRng, SignedDeviceList, accept,
};
use tandem_proto::link::LinkMode;
use tandem_proto::link::PairingLink;
use tandem_proto::pairing::{
    BridgeOfferContents, BrokerAccess, OfferContact, OfferContents, Output, PhoneEvent,
    PhonePairing,
};
use tandem_proto::sync::{AckOutcome, CHAIN_START, SenderWindow, SyncId, SyncMessage};
use tandem_proto::{Body, OpenedBody};
use tandem_store::{BridgeDesktop, DurableWriter, SyncPhase, SyncRole, SyncState, identity};
use tokio::time::Instant;

use crate::control::{Publication, Reply, Request, session_running};
use crate::desktop::{SyncReport, hex, instant_at, rand_fill};
use crate::history::{self, Plan, PlanBound};
use crate::identity::{Identity, open_inbox, seal_in, store_own_list, upsert_certificate};
use crate::live::{Messenger, Wake};
use crate::messaging::{self, Effect};
use crate::mqtt::{Connection, Incoming, topics};
use crate::views::{DeviceView, Event, UnlinkReport};
use crate::{Engine, Error, Result, now_ms};

/// Identity entry holding the next device index to hand out (indices are never reused).
const NEXT_DEVICE_INDEX: &str = "next_device_index";
/// How long `unlink` waits for the broker to take its messages.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// With [`ServeUntil::Drained`]: how long the inbox must stay quiet before the loop checks
/// whether everything was sent.
const DRAIN_QUIET: Duration = Duration::from_millis(300);

fn rng() -> Result<OsRng> {
    OsRng::new().map_err(|e| Error::Random(e.to_string()))
}

/// One history sync this phone sends.
struct Outgoing {
    peer: DeviceId,
    plan: Plan,
    window: SenderWindow,
    /// Digests of the chunks built by this process (index → digest).
    built: HashMap<u32, [u8; 32]>,
}

/// When [`Engine::serve`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeUntil {
    /// Never (until the caller drops the future, e.g. on a signal).
    Stopped,
    /// Once the sync with this id is complete.
    SyncComplete(SyncId),
    /// Once everything queued to send has been acknowledged by the broker (and what waited
    /// in the inbox was handled).
    Drained,
}

impl Engine {
    /// Parses a pairing link (what a QR code holds).
    ///
    /// # Errors
    /// [`Error::Link`] naming the bad field.
    pub fn parse_link(text: &str) -> Result<PairingLink> {
        let link: PairingLink = text.parse()?;
        tandem_net::BrokerList::parse(&link.broker).map_err(|e| {
            Error::Link(tandem_proto::link::LinkError::Field {
                field: "broker",
                reason: e.to_string(),
            })
        })?;
        Ok(link)
    }

    pub(crate) fn primary(&self) -> Result<Identity> {
        match self.identity() {
            Ok(id) if id.account_key.is_some() => Ok(id),
            Ok(_) => Err(Error::BadInput(
                "this is a linked device; only the primary (the phone) manages devices".into(),
            )),
            Err(Error::NotLinked) => Err(Error::NoAccount),
            Err(e) => Err(e),
        }
    }

    /// The account's devices, the primary first, then (on the primary) the desktops
    /// authorised on its bridge (`kind` `"bridge"`, oldest first).
    ///
    /// # Errors
    /// [`Error::NoAccount`] on a device without an account; store errors.
    pub fn devices(&self) -> Result<Vec<DeviceView>> {
        let id = self.identity().map_err(|e| match e {
            Error::NotLinked => Error::NoAccount,
            other => other,
        })?;
        let mut views: Vec<DeviceView> = id
            .list
            .certificates()
            .iter()
            .map(|c| DeviceView {
                id: c.device_id().to_string(),
                kind: "device",
                name: c.name().to_owned(),
                platform: c.platform().to_owned(),
                linked_at: c.linked_at_ms(),
                primary: c.device_id().is_primary(),
            })
            .collect();
        if id.account_key.is_some() {
            views.extend(self.store().bridge_desktops()?.iter().map(bridge_view));
        }
        Ok(views)
    }

    /// Sets the bridge URL (`ws://HOST:PORT` or `wss://...`) that bridge-mode desktops dial,
    /// as the phone's bridge offers carry it, and makes the phone's bridge key if it has none
    /// (stored beside the device keys, in the encrypted store). Returns the phone's bridge
    /// public key.
    ///
    /// # Errors
    /// [`Error::NoAccount`]; [`Error::BadInput`] for a URL that is not a bridge address.
    pub fn set_bridge_url(&self, url: &str) -> Result<tandem_bridge::PublicKey> {
        self.primary()?;
        tandem_bridge::keys::check_address(url).map_err(|e| Error::BadInput(e.to_string()))?;
        let secret = self.bridge_secret_or_new()?;
        self.store()
            .write_durable(|w| w.put_identity(identity::BRIDGE_URL, url.as_bytes()))?;
        Ok(secret.public_key())
    }

    /// This phone's bridge secret key, made (and stored durably) on first use.
    fn bridge_secret_or_new(&self) -> Result<tandem_bridge::StaticSecret> {
        if let Some(secret) = self.bridge_secret()? {
            return Ok(secret);
        }
        let secret = tandem_bridge::StaticSecret::generate(&mut rng()?);
        self.store().write_durable(|w| {
            w.put_identity(identity::BRIDGE_SECRET, secret.to_bytes().as_slice())
        })?;
        Ok(secret)
    }

    /// This device's stored bridge secret key, if it has one (the phone's endpoint key, or a
    /// bridge-mode desktop's own key).
    pub(crate) fn bridge_secret(&self) -> Result<Option<tandem_bridge::StaticSecret>> {
        let Some(stored) = self.store().identity(identity::BRIDGE_SECRET)? else {
            return Ok(None);
        };
        let bytes =
            zeroize::Zeroizing::new(<[u8; 32]>::try_from(stored.expose()).map_err(|_| {
                Error::Corrupt {
                    what: "bridge secret",
                    reason: "not 32 bytes".into(),
                }
            })?);
        Ok(Some(tandem_bridge::StaticSecret::from_bytes(*bytes)))
    }

    /// The phone's bridge: the URL desktops dial and its bridge public key, once a URL is set.
    ///
    /// # Errors
    /// [`Error::NoAccount`]; store errors.
    pub fn bridge_endpoint(&self) -> Result<Option<(String, tandem_bridge::PublicKey)>> {
        self.primary()?;
        let url = self
            .store()
            .identity(identity::BRIDGE_URL)?
            .map(|v| String::from_utf8_lossy(v.expose()).into_owned());
        match (url, self.bridge_secret()?) {
            (Some(url), Some(secret)) => Ok(Some((url, secret.public_key()))),
            _ => Ok(None),
        }
    }

    /// Links the bridge-mode desktop whose code is `link`: shows its name and platform through
    /// `on` ([`Event::Device`]), asks `confirm`, offers the account, the contacts and this
    /// phone's bridge URL and key, and once the desktop confirms its bridge key authorises it
    /// (stored durably before the phone confirms). The account's device list does not change.
    /// Reports [`Event::DeviceLinked`] with the desktop's bridge key as its id.
    ///
    /// # Errors
    /// [`Error::NoAccount`]; [`Error::BadInput`] for a multi-device code or when no bridge
    /// URL is set ([`Engine::set_bridge_url`]); [`Error::Cancelled`]; [`Error::Pairing`] for
    /// an expired code or a refusal; broker and store errors.
    pub async fn scan_bridge(
        &self,
        link: PairingLink,
        confirm: &mut dyn FnMut(&str, &str) -> bool,
        on: &mut dyn FnMut(&Event),
    ) -> Result<DeviceView> {
        let id = self.primary()?;
        if link.mode() != LinkMode::Bridge {
            return Err(Error::BadInput(
                "this code is for a multi-device link, not bridge mode".into(),
            ));
        }
        check_not_expired(&link)?;
        let Some((bridge_url, phone_key)) = self.bridge_endpoint()? else {
            return Err(Error::BadInput(
                "this phone has no bridge URL yet: set one with `tandem-phone run --bridge-url ws://HOST:PORT` (or init --bridge-url)".into(),
            ));
        };
        on(&Event::Device {
            name: link.name.clone(),
            platform: link.platform.clone(),
        });
        if !confirm(&link.name, &link.platform) {
            return Err(Error::Cancelled);
        }
        let account_key = id.account_key.as_ref().ok_or(Error::NoAccount)?;
        let current = SignedDeviceList::from_bytes(
            &self
                .store()
                .device_list(id.account.as_bytes())?
                .ok_or(Error::NoAccount)?
                .signed,
        )?;
        let contents = BridgeOfferContents {
            account_name: id.account_name.clone(),
            bridge_url,
            bridge_key: *phone_key.as_bytes(),
            contacts: self.offer_contacts()?,
        };
        let mut rng = rng()?;
        let (mut machine, first) = PhonePairing::start_bridge(
            link,
            account_key,
            &id.keys,
            &current,
            contents,
            now_ms(),
            &mut rng,
        )?;
        let mut pairing = self.pairing_connection(&id, &machine.link().broker, &mut rng)?;
        let mut outputs = first;
        loop {
            let mut linked = None;
            for output in std::mem::take(&mut outputs) {
                match output {
                    Output::Subscribe(topic) => pairing.subscribe(&topic)?,
                    Output::Unsubscribe(topic) => pairing.unsubscribe(&topic)?,
                    Output::Publish { topic, payload } => {
                        pairing.publish(&topic, payload, false)?;
                    }
                    Output::Event(PhoneEvent::Failed(e)) => return Err(Error::Pairing(e)),
                    Output::Event(PhoneEvent::Linked { .. }) => {
                        return Err(Error::Corrupt {
                            what: "pairing",
                            reason: "a bridge pairing ended in a device link".into(),
                        });
                    }
                    Output::Event(PhoneEvent::BridgeLinked(desktop)) => {
                        let stored = BridgeDesktop {
                            public_key: desktop.bridge_key.to_vec(),
                            name: desktop.name,
                            platform: desktop.platform,
                            linked_at: desktop.linked_at_ms,
                        };
                        self.store()
                            .write_durable(|w| w.put_bridge_desktop(&stored))?;
                        let view = bridge_view(&stored);
                        on(&Event::DeviceLinked {
                            device: view.id.clone(),
                            name: view.name.clone(),
                            platform: view.platform.clone(),
                        });
                        linked = Some(view);
                    }
                }
            }
            if let Some(view) = linked {
                // Disconnecting waits for the broker to take the confirmation.
                pairing.disconnect().await;
                return Ok(view);
            }
            let deadline = machine.next_deadline().map(instant_at);
            outputs = match pairing.next(deadline).await? {
                Incoming::Publish(p) => {
                    let out = machine.handle(
                        &p.topic,
                        &p.payload,
                        account_key,
                        &id.keys,
                        now_ms(),
                        &mut rng,
                    );
                    pairing.ack(&p)?;
                    out
                }
                Incoming::Timeout => machine.poll(now_ms()),
                Incoming::Connected
                | Incoming::PubAck(_)
                | Incoming::SubAck
                | Incoming::Down(_) => Vec::new(),
            };
        }
    }

    /// The bridge desktop `text` names: its whole key as `devices` lists it, or a prefix of
    /// at least 8 characters that only one authorised desktop's key starts with.
    fn bridge_desktop_key(&self, text: &str) -> Result<Option<tandem_bridge::PublicKey>> {
        let text = text.trim();
        if text.len() < 8 {
            return Ok(None);
        }
        let matching: Vec<DeviceView> = self
            .store()
            .bridge_desktops()?
            .iter()
            .map(bridge_view)
            .filter(|v| v.id.starts_with(text))
            .collect();
        match matching.as_slice() {
            [] => Ok(None),
            [one] => one
                .id
                .parse::<tandem_bridge::PublicKey>()
                .map(Some)
                .map_err(|e| Error::Corrupt {
                    what: "bridge desktop",
                    reason: e.to_string(),
                }),
            _ => Err(Error::BadInput(format!(
                "{text} names {} bridge desktops; give more of the key",
                matching.len()
            ))),
        }
    }

    /// A throwaway client on a code's broker (a pairing listener lets anonymous clients use
    /// pair/ topics only), trusting this phone's CA.
    fn pairing_connection(
        &self,
        id: &Identity,
        broker: &str,
        rng: &mut OsRng,
    ) -> Result<Connection> {
        let mut suffix = [0u8; 8];
        rand_fill(rng, &mut suffix);
        let settings = tandem_net::ClientSettings {
            clean_session: true,
            tls: id
                .login
                .ca_pem
                .clone()
                .map(tandem_net::TlsTrust::from_ca_pem),
            ..tandem_net::ClientSettings::default()
        };
        Connection::with_settings(broker, &format!("tandem-scan-{}", hex(&suffix)), settings)
    }

    /// Links the device whose code is `link`: shows its name and platform through `on`
    /// ([`Event::Device`]), asks `confirm`, offers, and once the desktop accepts stores it,
    /// publishes the new device list and serves its history sync until it is complete.
    ///
    /// # Errors
    /// [`Error::NoAccount`]; [`Error::Cancelled`] when `confirm` says no; [`Error::Pairing`]
    /// for an expired code or a refusal; broker and store errors.
    pub async fn scan(
        &self,
        link: PairingLink,
        bound: PlanBound,
        confirm: &mut dyn FnMut(&str, &str) -> bool,
        on: &mut dyn FnMut(&Event),
    ) -> Result<SyncReport> {
        let id = self.primary()?;
        if link.mode() == LinkMode::Bridge {
            return Err(Error::BadInput(
                "this code is for bridge mode: link it with scan_bridge".into(),
            ));
        }
        check_not_expired(&link)?;
        on(&Event::Device {
            name: link.name.clone(),
            platform: link.platform.clone(),
        });
        if !confirm(&link.name, &link.platform) {
            return Err(Error::Cancelled);
        }
        let store = self.store();
        let index = self.next_device_index(&id)?;
        let plan = history::build_plan(store, index, bound)?;
        let mut rng = rng()?;
        let mut sync_id = [0u8; 16];
        rand_fill(&mut rng, &mut sync_id);
        // The new device uses this phone's broker (the code's one if none is set: a phone
        // that pairs and serves on one broker) and logs in as the phone says.
        let device_broker = id.broker.clone().unwrap_or_else(|| link.broker.clone());
        let contents = OfferContents {
            account_name: id.account_name.clone(),
            index,
            // Each broker of the list (the nodes of a cluster) for the device to fail over.
            brokers: crate::identity::broker_entries(&device_broker),
            access: self.offer_access(&id, DeviceId::new(id.account, index))?,
            sync: plan.summary(sync_id),
            contacts: self.offer_contacts()?,
        };
        let account_key = id.account_key.as_ref().ok_or(Error::NoAccount)?;
        let current = SignedDeviceList::from_bytes(
            &store
                .device_list(id.account.as_bytes())?
                .ok_or(Error::NoAccount)?
                .signed,
        )?;
        let (mut machine, first) = PhonePairing::start(
            link,
            account_key,
            &id.keys,
            &current,
            contents,
            now_ms(),
            &mut rng,
        )?;
        // Pairing happens on a throwaway client on the code's broker; the device list, the
        // notices and the history that follows go over this phone's own session.
        let mut pairing = self.pairing_connection(&id, &machine.link().broker, &mut rng)?;
        // While `tandem-phone run` holds this device's session, it publishes what the link
        // changes and sends the history; a second connection as this device would take its
        // session away.
        let mut conn = if session_running(self.home()).await {
            None
        } else {
            let mut conn = id.connection(&device_broker, true)?;
            conn.subscribe(&topics::inbox(&id.device))?;
            Some(conn)
        };
        let mut outputs = first;
        loop {
            let mut linked = None;
            for output in std::mem::take(&mut outputs) {
                match output {
                    Output::Subscribe(topic) => pairing.subscribe(&topic)?,
                    Output::Unsubscribe(topic) => pairing.unsubscribe(&topic)?,
                    Output::Publish { topic, payload } => {
                        pairing.publish(&topic, payload, false)?;
                    }
                    Output::Event(PhoneEvent::Failed(e)) => return Err(Error::Pairing(e)),
                    Output::Event(PhoneEvent::BridgeLinked(_)) => {
                        return Err(Error::Corrupt {
                            what: "pairing",
                            reason: "a device pairing ended in a bridge link".into(),
                        });
                    }
                    Output::Event(PhoneEvent::Linked {
                        certificate,
                        device_list,
                    }) => {
                        self.save_linked_device(
                            &id,
                            &certificate,
                            &device_list,
                            &plan,
                            sync_id,
                            &device_broker,
                        )?;
                        let items =
                            self.list_publications(&id, &device_list, certificate.device_id())?;
                        match conn.as_mut() {
                            Some(conn) => {
                                for item in items {
                                    conn.publish(&item.topic, item.payload, item.retain)?;
                                }
                            }
                            None => self.hand_to_session(items).await?,
                        }
                        on(&Event::DeviceLinked {
                            device: certificate.device_id().to_string(),
                            name: certificate.name().to_owned(),
                            platform: certificate.platform().to_owned(),
                        });
                        linked = Some(());
                    }
                }
            }
            if linked.is_some() {
                pairing.disconnect().await;
                break;
            }
            let deadline = machine.next_deadline().map(instant_at);
            tokio::select! {
                incoming = pairing.next(deadline) => {
                    outputs = match incoming? {
                        Incoming::Publish(p) => {
                            let out = if p.topic == machine.link().pairing_ref.topic() {
                                machine.handle(
                                    &p.topic,
                                    &p.payload,
                                    account_key,
                                    &id.keys,
                                    now_ms(),
                                    &mut rng,
                                )
                            } else {
                                Vec::new()
                            };
                            pairing.ack(&p)?;
                            out
                        }
                        Incoming::Timeout => machine.poll(now_ms()),
                        Incoming::Connected
                        | Incoming::PubAck(_)
                        | Incoming::SubAck
                        | Incoming::Down(_) => Vec::new(),
                    };
                }
                incoming = next_or_never(conn.as_mut()) => {
                    // Messages for this device meanwhile: kept, handled once linked.
                    if let (Incoming::Publish(p), Some(conn)) = (incoming?, conn.as_mut()) {
                        if p.topic == topics::inbox(&id.device) {
                            self.store()
                                .write(|w| w.add_backlog(None, &p.payload, now_ms()))?;
                        }
                        conn.ack(&p)?;
                    }
                }
            }
        }
        match conn {
            Some(conn) => {
                self.serve_on(conn, ServeUntil::SyncComplete(sync_id), None, on)
                    .await
            }
            None => {
                on(&Event::Waiting {
                    reason: "the running session (tandem-phone run) sends the history".into(),
                });
                Ok(SyncReport {
                    chunks: plan.total(),
                    messages: 0,
                })
            }
        }
    }

    /// What the offer tells a new device about logging in to the broker: its username and
    /// password when this phone logs in with one, and the CA this phone trusts.
    fn offer_access(&self, id: &Identity, device: DeviceId) -> Result<Option<BrokerAccess>> {
        let ca_pem = id.login.ca_pem.clone();
        if id.login.credentials.is_none() {
            return Ok(ca_pem.map(|ca_pem| BrokerAccess {
                username: String::new(),
                password: String::new(),
                ca_pem: Some(ca_pem),
            }));
        }
        let secret = self.broker_secret()?;
        let username = device.broker_name();
        let password = tandem_crypto::device_password(&secret, &username);
        Ok(Some(BrokerAccess {
            username,
            password: password.expose().to_owned(),
            ca_pem,
        }))
    }

    fn broker_secret(&self) -> Result<tandem_crypto::BrokerSecret> {
        let stored = self
            .store()
            .identity(identity::BROKER_SECRET)?
            .ok_or(Error::Corrupt {
                what: "broker secret",
                reason: "missing (run `tandem-phone broker` to configure the broker)".into(),
            })?;
        let bytes = <[u8; 32]>::try_from(stored.expose()).map_err(|_| Error::Corrupt {
            what: "broker secret",
            reason: "not 32 bytes".into(),
        })?;
        Ok(tandem_crypto::BrokerSecret::from_bytes(&bytes))
    }

    /// Sets how this account's devices reach the broker: its URL, the CA its TLS certificate
    /// chains to, and whether devices log in with their per-device passwords (see
    /// `docs/broker/`). Creates the account's broker secret if it has none. New links carry
    /// the result; this phone uses it from its next connection.
    ///
    /// # Errors
    /// [`Error::NoAccount`]; [`Error::BadInput`] for a URL that does not parse.
    pub fn configure_broker(
        &self,
        url: Option<&str>,
        ca_pem: Option<&[u8]>,
        login: bool,
    ) -> Result<()> {
        let id = self.primary()?;
        if let Some(url) = url {
            tandem_net::BrokerList::parse(url).map_err(|e| Error::BadInput(e.to_string()))?;
        }
        if let Some(pem) = ca_pem
            && !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----")
        {
            return Err(Error::BadInput(
                "the CA file holds no PEM certificate".into(),
            ));
        }
        let fresh = tandem_crypto::BrokerSecret::random(&mut rng()?);
        self.store().write_durable(|w| -> Result<()> {
            if let Some(url) = url {
                w.put_identity(identity::BROKER_URL, url.as_bytes())?;
            }
            if let Some(pem) = ca_pem {
                w.put_identity(identity::BROKER_CA, pem)?;
            }
            if login {
                w.put_identity(
                    identity::BROKER_USERNAME,
                    id.device.broker_name().as_bytes(),
                )?;
            } else {
                w.delete_identity(identity::BROKER_USERNAME)?;
            }
            if self.store().identity(identity::BROKER_SECRET)?.is_none() {
                w.put_identity(identity::BROKER_SECRET, fresh.to_bytes().as_slice())?;
            }
            Ok(())
        })
    }

    /// The broker logins of this account's first `devices` device ids, as
    /// `(username, password)`: what the broker's operator registers (`docs/broker/`).
    ///
    /// # Errors
    /// [`Error::NoAccount`]; [`Error::Corrupt`] when no broker secret was made yet.
    pub fn broker_passwords(&self, devices: u32) -> Result<Vec<(String, String)>> {
        let id = self.primary()?;
        let secret = self.broker_secret()?;
        Ok(
            tandem_crypto::broker_auth::account_passwords(&secret, id.account, devices)
                .map(|(device, password)| (device.broker_name(), password.expose().to_owned()))
                .collect(),
        )
    }

    fn next_device_index(&self, id: &Identity) -> Result<u32> {
        let stored = self
            .store()
            .identity(NEXT_DEVICE_INDEX)?
            .and_then(|v| std::str::from_utf8(v.expose()).ok()?.parse::<u32>().ok())
            .unwrap_or(1);
        let listed = id
            .list
            .device_ids()
            .map(|d| d.index.saturating_add(1))
            .max()
            .unwrap_or(1);
        Ok(stored.max(listed).max(1))
    }

    fn offer_contacts(&self) -> Result<Vec<OfferContact>> {
        let store = self.store();
        let mut out = Vec::new();
        for contact in store.contacts()? {
            let Some(account) = store.account(&contact.account)? else {
                continue;
            };
            let Ok(bytes) = <[u8; 32]>::try_from(account.public_key.as_slice()) else {
                continue;
            };
            if let Ok(account_key) = AccountPublicKey::from_bytes(&bytes) {
                out.push(OfferContact {
                    account_key,
                    name: contact.name,
                });
            }
        }
        Ok(out)
    }

    /// Stores a newly linked device, the new list and the sync plan for it.
    fn save_linked_device(
        &self,
        id: &Identity,
        certificate: &DeviceCertificate,
        device_list: &SignedDeviceList,
        plan: &Plan,
        sync_id: SyncId,
        broker: &str,
    ) -> Result<()> {
        let accepted = accept(&id.account, Some(&id.list), device_list)?;
        let next = certificate.device_id().index.saturating_add(1).to_string();
        let plan_bytes = plan.to_bytes()?;
        let has_broker = self.store().identity(identity::BROKER_URL)?.is_some();
        self.store().write_durable(|w| -> Result<()> {
            store_own_list(w, &accepted, device_list)?;
            upsert_certificate(w, certificate)?;
            w.put_identity(NEXT_DEVICE_INDEX, next.as_bytes())?;
            if !has_broker {
                w.put_identity(identity::BROKER_URL, broker.as_bytes())?;
            }
            w.put_sync_state(&SyncState {
                sync_id: sync_id.to_vec(),
                role: SyncRole::Sender,
                phase: SyncPhase::Running,
                chunks_done: 0,
                chunks_total: plan.total(),
                messages_done: 0,
                messages_total: plan.messages(),
                last_acked: None,
                digest: CHAIN_START.to_vec(),
                plan: plan_bytes,
                updated_at: now_ms(),
            })?;
            Ok(())
        })
    }

    /// Tells every other device of the account about a new list (not `except`, nor this one).
    /// What a new device list is published as: retained at the account's topic, and a notice
    /// to every other device of the account (not `except`, not this phone).
    fn list_publications(
        &self,
        id: &Identity,
        list: &SignedDeviceList,
        except: DeviceId,
    ) -> Result<Vec<Publication>> {
        let verified = list.verify(&id.account)?;
        let body = Body::DeviceListNotice {
            list: list.to_bytes()?,
        };
        let mut out = vec![Publication {
            topic: topics::devices(&id.account),
            payload: list.to_bytes()?,
            retain: true,
        }];
        for device in verified.device_ids() {
            if device == except || device == id.device {
                continue;
            }
            out.push(Publication {
                topic: topics::inbox(&device),
                payload: self.seal_with_list(id, &verified, device, &body)?,
                retain: false,
            });
        }
        Ok(out)
    }

    /// Hands `items` to the running session (rereading its identity), as `scan` and `unlink`
    /// do while `tandem-phone run` holds this device's session.
    async fn hand_to_session(&self, items: Vec<Publication>) -> Result<()> {
        match Engine::hand_over(
            self.home(),
            &Request::Publish {
                items,
                reload: true,
            },
        )
        .await?
        {
            Some(Reply::Ok(_)) => Ok(()),
            Some(Reply::Error { message, .. }) => Err(Error::BadInput(format!(
                "the running session refused: {message}"
            ))),
            None => Err(Error::BadInput(
                "the running session stopped; run the command again".into(),
            )),
        }
    }

    /// Serves linked devices: resumes their history syncs and answers page requests, until
    /// the caller drops the future.
    ///
    /// # Errors
    /// [`Error::NoAccount`]; broker and store errors.
    pub async fn serve(
        &self,
        broker: Option<&str>,
        until: ServeUntil,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        self.serve_with(broker, until, None, on).await
    }

    /// [`Engine::serve`], also doing the work other processes hand over.
    pub(crate) async fn serve_with(
        &self,
        broker: Option<&str>,
        until: ServeUntil,
        requests: Option<tokio::sync::mpsc::Receiver<crate::control::Pending>>,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        let id = self.primary()?;
        let url = broker
            .map(str::to_owned)
            .or_else(|| id.broker.clone())
            .ok_or_else(|| {
                Error::BadInput(
                    "no broker known: pass --broker URL (or link a device first)".into(),
                )
            })?;
        let mut conn = id.connection(&url, true)?;
        conn.subscribe(&topics::inbox(&id.device))?;
        if until == ServeUntil::Stopped {
            conn.set_patient();
        }
        self.serve_on(conn, until, requests, on).await.map(|_| ())
    }

    fn outgoing_syncs(&self) -> Result<HashMap<SyncId, Outgoing>> {
        let id = self.primary()?;
        let mut out = HashMap::new();
        for state in self.store().sync_states()? {
            if state.role != SyncRole::Sender
                || !matches!(state.phase, SyncPhase::Running | SyncPhase::Complete)
            {
                continue;
            }
            let Ok(sync_id) = SyncId::try_from(state.sync_id.as_slice()) else {
                continue;
            };
            let plan = Plan::from_bytes(&state.plan)?;
            let chain = <[u8; 32]>::try_from(state.digest.as_slice()).unwrap_or(CHAIN_START);
            out.insert(
                sync_id,
                Outgoing {
                    peer: DeviceId::new(id.account, plan.peer),
                    window: SenderWindow::new(
                        plan.total(),
                        state.chunks_done,
                        state.messages_done,
                        chain,
                    ),
                    plan,
                    built: HashMap::new(),
                },
            );
        }
        Ok(out)
    }

    async fn serve_on(
        &self,
        mut conn: Connection,
        until: ServeUntil,
        requests: Option<tokio::sync::mpsc::Receiver<crate::control::Pending>>,
        on: &mut dyn FnMut(&Event),
    ) -> Result<SyncReport> {
        let mut id = self.primary()?;
        let mut syncs = self.outgoing_syncs()?;
        let mut messenger = Messenger::new(self, &id, requests)?;
        let mut announced = false;
        let mut quiet_since = Instant::now();
        // Other processes (a scan, an unlink) change the list: follow the retained copy.
        conn.subscribe(&topics::devices(&id.account))?;
        messenger.watch(self, &id, &mut conn)?;
        // The account's list, retained again: a broker that restarted (or a publish lost with a
        // crash) would otherwise leave devices without it.
        if let Some(list) = self.store().device_list(id.account.as_bytes())? {
            conn.publish(&topics::devices(&id.account), list.signed, true)?;
        }
        // Send what is pending at once: the device may be waiting already.
        for (sync_id, sync) in &mut syncs {
            self.pump(&mut conn, &id, *sync_id, sync)?;
        }
        loop {
            let deadline = (until == ServeUntil::Drained).then(|| quiet_since + DRAIN_QUIET);
            let (incoming, kept) = match messenger.next(&mut conn, deadline).await? {
                Wake::Mqtt(incoming) => (incoming, None),
                Wake::Kept(row, publish) => (Incoming::Publish(publish), Some(row)),
                Wake::Request(pending) => {
                    if messenger.handle(self, &id, &mut conn, pending, on)? {
                        let before = id.list.version();
                        id = self.primary()?;
                        own_list_changed(&id, before, on);
                        messenger.dir.set(id.list.clone());
                        syncs = self.outgoing_syncs()?;
                        for (sync_id, sync) in &mut syncs {
                            self.pump(&mut conn, &id, *sync_id, sync)?;
                        }
                    }
                    continue;
                }
            };
            match incoming {
                Incoming::Connected | Incoming::SubAck => {
                    if matches!(incoming, Incoming::Connected) {
                        messenger.on_connected(self, &id, &mut conn, on)?;
                    }
                    if !announced && conn.subscriptions_settled() {
                        announced = true;
                        on(&Event::Serving {
                            device: id.device.to_string(),
                            broker: conn.url(),
                        });
                    }
                }
                Incoming::PubAck(tag) => messenger.on_puback(self, &id, &mut conn, tag, on)?,
                Incoming::Down(reason) => on(&Event::Offline { reason }),
                Incoming::Timeout => {
                    if until == ServeUntil::Drained && messenger.drained(self)? {
                        Messenger::goodbye(&id, &mut conn);
                        conn.disconnect().await;
                        return Ok(SyncReport {
                            chunks: 0,
                            messages: 0,
                        });
                    }
                    quiet_since = Instant::now();
                }
                Incoming::Publish(p) => {
                    quiet_since = Instant::now();
                    if p.topic == topics::devices(&id.account) {
                        conn.ack(&p)?;
                        if let Ok(signed) = SignedDeviceList::from_bytes(&p.payload)
                            && let Ok(list) = signed.verify(&id.account)
                            && list.version() > id.list.version()
                        {
                            let before = id.list.version();
                            id = self.primary()?;
                            own_list_changed(&id, before, on);
                            messenger.dir.set(id.list.clone());
                            syncs = self.outgoing_syncs()?;
                            for (sync_id, sync) in &mut syncs {
                                self.pump(&mut conn, &id, *sync_id, sync)?;
                            }
                        }
                        continue;
                    }
                    if p.topic != topics::inbox(&id.device) {
                        messenger.on_topic(self, &id, &mut conn, &p, on)?;
                        conn.ack(&p)?;
                        continue;
                    }
                    if kept.is_none() && messenger.keep(self, &id, &p.payload)? {
                        conn.ack(&p)?;
                        continue;
                    }
                    let reply = self.on_phone_inbox(&id, &messenger, &mut syncs, &p.payload)?;
                    match kept {
                        Some(row) => Messenger::handled(self, row)?,
                        None => conn.ack(&p)?,
                    }
                    match reply {
                        PhoneStep::Nothing => {}
                        PhoneStep::Effects(effects) => {
                            let contact = effects.iter().any(Effect::adds_accounts);
                            self.emit(effects, on);
                            if contact {
                                messenger.watch(self, &id, &mut conn)?;
                            }
                            messenger.flush(self, &id, &mut conn)?;
                        }
                        PhoneStep::Pump(sync_id) => {
                            if let Some(sync) = syncs.get_mut(&sync_id) {
                                self.pump(&mut conn, &id, sync_id, sync)?;
                            }
                        }
                        PhoneStep::Progress(sync_id, next) => {
                            let Some(sync) = syncs.get_mut(&sync_id) else {
                                continue;
                            };
                            for envelope in next {
                                conn.publish(&topics::inbox(&sync.peer), envelope, false)?;
                            }
                            on(&Event::Progress {
                                chunks_done: sync.window.acked,
                                chunks_total: sync.window.total,
                                messages_done: sync.window.acked_messages,
                                messages_total: sync.plan.messages(),
                            });
                            if sync.window.is_complete() {
                                let report = SyncReport {
                                    chunks: sync.window.total,
                                    messages: sync.window.acked_messages,
                                };
                                on(&Event::Synced {
                                    chunks: report.chunks,
                                    messages: report.messages,
                                });
                                if until == ServeUntil::SyncComplete(sync_id) {
                                    Messenger::goodbye(&id, &mut conn);
                                    conn.disconnect().await;
                                    return Ok(report);
                                }
                            }
                        }
                        PhoneStep::Reply(to, message) => {
                            let body = Body::HistoryChunk {
                                bytes: message.encode()?,
                            };
                            let envelope = self.seal_to(&id, to, &body)?;
                            conn.publish(&topics::inbox(&to), envelope, false)?;
                        }
                        PhoneStep::Leave(device) => {
                            if id.list.device(device.index).is_none() {
                                continue;
                            }
                            let (report, items) = self.prepare_unlink(&id, device)?;
                            for item in items {
                                conn.publish(&item.topic, item.payload, item.retain)?;
                            }
                            id = self.primary()?;
                            messenger.dir.set(id.list.clone());
                            syncs = self.outgoing_syncs()?;
                            on(&Event::Devices {
                                account: id.account.to_string(),
                                version: report.version,
                                devices: id.list.certificates().len(),
                            });
                        }
                    }
                }
            }
        }
    }

    /// Sends the chunks the window allows (or `Complete` once all are acknowledged).
    fn pump(
        &self,
        conn: &mut Connection,
        id: &Identity,
        sync_id: SyncId,
        sync: &mut Outgoing,
    ) -> Result<()> {
        let envelopes = self
            .store()
            .write_durable(|w| self.pump_in(w, id, sync_id, sync))?;
        for envelope in envelopes {
            conn.publish(&topics::inbox(&sync.peer), envelope, false)?;
        }
        Ok(())
    }

    /// The chunks the window allows (or `Complete` once all are acknowledged), sealed inside
    /// the caller's transaction (one disk flush for the whole window).
    fn pump_in(
        &self,
        w: &mut DurableWriter<'_>,
        id: &Identity,
        sync_id: SyncId,
        sync: &mut Outgoing,
    ) -> Result<Vec<Vec<u8>>> {
        if id.list.device(sync.peer.index).is_none() {
            return Ok(Vec::new());
        }
        let mut bodies = Vec::new();
        if sync.window.is_complete() {
            let complete = SyncMessage::Complete {
                sync_id,
                chunks: sync.window.total,
                messages: sync.window.acked_messages,
                digest: sync.window.chain,
            };
            bodies.push(Body::HistoryChunk {
                bytes: complete.encode()?,
            });
        } else {
            for index in sync.window.take_sendable() {
                let chunk = sync.plan.chunk(self.store(), sync_id, index)?;
                sync.built.insert(index, chunk.digest);
                bodies.push(Body::HistoryChunk {
                    bytes: SyncMessage::Chunk(Box::new(chunk)).encode()?,
                });
            }
        }
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        seal_in(w, id, &id.list, sync.peer, &bodies)
    }

    fn on_phone_inbox(
        &self,
        id: &Identity,
        messenger: &Messenger,
        syncs: &mut HashMap<SyncId, Outgoing>,
        payload: &[u8],
    ) -> Result<PhoneStep> {
        let store = self.store();
        store.write_durable(|w| -> Result<PhoneStep> {
            let Some(opened) = open_inbox(w, id, Some(&messenger.dir), payload)? else {
                return Ok(PhoneStep::Nothing);
            };
            let from = opened.header.sender;
            let OpenedBody::Known(body) = opened.body else {
                return Ok(PhoneStep::Nothing);
            };
            if let Some(effects) = messaging::apply(w, store, id, &opened.header, &body)? {
                return Ok(PhoneStep::Effects(effects));
            }
            if let Body::Unlink { device } = body {
                // A linked device logging out asks to be removed; only for itself.
                let leaving = from.account == id.account && device == from && !from.is_primary();
                return Ok(if leaving {
                    PhoneStep::Leave(from)
                } else {
                    PhoneStep::Nothing
                });
            }
            let Body::HistoryChunk { bytes } = body else {
                return Ok(PhoneStep::Nothing);
            };
            if from.account != id.account {
                return Ok(PhoneStep::Nothing);
            }
            let message = match SyncMessage::decode(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%from, error = %e, "dropping a history message");
                    return Ok(PhoneStep::Nothing);
                }
            };
            match message {
                SyncMessage::Resume { sync_id, .. } => match syncs.get_mut(&sync_id) {
                    Some(sync) if sync.peer == from => {
                        sync.window.on_resume();
                        Ok(PhoneStep::Pump(sync_id))
                    }
                    _ => Ok(PhoneStep::Reply(from, SyncMessage::Unknown { sync_id })),
                },
                SyncMessage::Ack {
                    sync_id,
                    index,
                    digest: _,
                    count,
                } => {
                    let Some(sync) = syncs.get_mut(&sync_id) else {
                        return Ok(PhoneStep::Nothing);
                    };
                    if sync.peer != from {
                        return Ok(PhoneStep::Nothing);
                    }
                    // The running digest uses this side's own digest of the chunk.
                    let own = match sync.built.get(&index) {
                        Some(d) => *d,
                        None => sync.plan.chunk(store, sync_id, index)?.digest,
                    };
                    match sync.window.on_ack(index, &own, count) {
                        AckOutcome::Stale => Ok(PhoneStep::Nothing),
                        outcome => {
                            let mut state = w.sync_state(&sync_id)?.ok_or(Error::Corrupt {
                                what: "sync state",
                                reason: "missing".into(),
                            })?;
                            state.chunks_done = sync.window.acked;
                            state.messages_done = sync.window.acked_messages;
                            state.digest = sync.window.chain.to_vec();
                            state.last_acked = Some(index);
                            if outcome == AckOutcome::Complete {
                                state.phase = SyncPhase::Complete;
                            }
                            state.updated_at = now_ms();
                            w.put_sync_state(&state)?;
                            let next = self.pump_in(w, id, sync_id, sync)?;
                            Ok(PhoneStep::Progress(sync_id, next))
                        }
                    }
                }
                SyncMessage::PageRequest {
                    request_id,
                    chat,
                    before,
                    limit,
                } => {
                    let (chat, messages, more) = history::page(store, chat, before, limit)?;
                    Ok(PhoneStep::Reply(
                        from,
                        SyncMessage::Page {
                            request_id,
                            chat,
                            messages,
                            more,
                        },
                    ))
                }
                _ => Ok(PhoneStep::Nothing),
            }
        })
    }

    /// The unlink of `target`, stored: the new signed list is this device's, its syncs to
    /// `target` are cancelled; returns what must be published (the retained list, the notices
    /// to the other devices, the `Unlink` to `target`).
    fn prepare_unlink(
        &self,
        id: &Identity,
        target: DeviceId,
    ) -> Result<(UnlinkReport, Vec<Publication>)> {
        check_unlink_target(id, target)?;
        let account_key = id.account_key.as_ref().ok_or(Error::NoAccount)?;
        let certs = id
            .list
            .certificates()
            .iter()
            .filter(|c| c.device_id() != target)
            .cloned()
            .collect();
        let signed = id
            .list
            .successor(now_ms().max(id.list.issued_at_ms()), certs)?
            .sign(account_key)?;
        let accepted = accept(&id.account, Some(&id.list), &signed)?;
        let version = accepted.list.version();
        // Seal the notice to the unlinked device while its session and certificate are known.
        let unlink_envelope = self.seal_to(id, target, &Body::Unlink { device: target })?;
        let store = self.store();
        let cancelled: Vec<SyncState> = store
            .sync_states()?
            .into_iter()
            .filter(|s| s.role == SyncRole::Sender && s.phase == SyncPhase::Running)
            .filter(|s| Plan::from_bytes(&s.plan).is_ok_and(|p| p.peer == target.index))
            .collect();
        store.write_durable(|w| -> Result<()> {
            store_own_list(w, &accepted, &signed)?;
            for mut state in cancelled {
                state.phase = SyncPhase::Cancelled;
                state.updated_at = now_ms();
                w.put_sync_state(&state)?;
            }
            Ok(())
        })?;
        let mut items = self.list_publications(id, &signed, target)?;
        items.push(Publication {
            topic: topics::inbox(&target),
            payload: unlink_envelope,
            retain: false,
        });
        Ok((
            UnlinkReport {
                unlinked: target.to_string(),
                kind: "device",
                version,
            },
            items,
        ))
    }

    /// Removes `device` from the account: a new signed list (stored, then published retained),
    /// an `Unlink` to the device, a notice to the others. Its syncs are cancelled.
    ///
    /// # Errors
    /// [`Error::BadInput`] for an unknown device or the primary; broker and store errors.
    pub async fn unlink(&self, device: &str, broker: Option<&str>) -> Result<UnlinkReport> {
        let id = self.primary()?;
        if let Some(key) = self.bridge_desktop_key(device)? {
            // A bridge desktop is no device of the account: revoking its key is local.
            self.store()
                .write_durable(|w| w.delete_bridge_desktop(key.as_bytes()))?;
            return Ok(UnlinkReport {
                unlinked: key.to_string(),
                kind: "bridge",
                version: id.list.version(),
            });
        }
        let target: DeviceId = device.parse().map_err(|e: tandem_crypto::Error| {
            Error::BadInput(format!(
                "{e}; nor is it the key of a linked bridge desktop (see `tandem-phone devices`)"
            ))
        })?;
        check_unlink_target(&id, target)?;
        let url = broker
            .map(str::to_owned)
            .or_else(|| id.broker.clone())
            .ok_or_else(|| Error::BadInput("no broker known: pass --broker URL".into()))?;
        let (report, items) = self.prepare_unlink(&id, target)?;
        if session_running(self.home()).await {
            self.hand_to_session(items).await?;
            return Ok(report);
        }
        // A broker that checks logins only lets this phone write its device list as itself;
        // elsewhere a throwaway client.
        let mut conn = if id.login.credentials.is_some() {
            id.connection(&url, true)?
        } else {
            let mut suffix = [0u8; 8];
            rand_fill(&mut rng()?, &mut suffix);
            let client_id = format!("tandem-phone-{}", hex(&suffix));
            Connection::new(&url, &client_id, false)?
        };
        let sent = items.len();
        for item in items {
            conn.publish(&item.topic, item.payload, item.retain)?;
        }
        let give_up = Instant::now() + PUBLISH_TIMEOUT;
        let mut acked = 0;
        while acked < sent {
            match conn.next(Some(give_up)).await? {
                Incoming::PubAck(_) => acked += 1,
                Incoming::Timeout => {
                    return Err(Error::Broker {
                        url,
                        reason: "the broker did not take the unlink in time (the device list is updated here; run unlink again to resend)".into(),
                    });
                }
                Incoming::Publish(p) => conn.ack(&p)?,
                Incoming::Connected | Incoming::SubAck | Incoming::Down(_) => {}
            }
        }
        conn.disconnect().await;
        Ok(report)
    }
}

/// A bridge desktop as `devices` lists it.
/// Reports this account's device list when another process (a scan, an unlink) changed it.
fn own_list_changed(id: &Identity, before: u64, on: &mut dyn FnMut(&Event)) {
    if id.list.version() != before {
        on(&Event::Devices {
            account: id.account.to_string(),
            version: id.list.version(),
            devices: id.list.certificates().len(),
        });
    }
}

fn bridge_view(desktop: &BridgeDesktop) -> DeviceView {
    DeviceView {
        id: data_encoding::BASE64URL_NOPAD.encode(&desktop.public_key),
        kind: "bridge",
        name: desktop.name.clone(),
        platform: desktop.platform.clone(),
        linked_at: desktop.linked_at,
        primary: false,
    }
}

/// Refuses a code whose `exp` has passed, before going online.
fn check_not_expired(link: &PairingLink) -> Result<()> {
    let now = now_ms();
    if now >= link.expires_at_ms {
        return Err(Error::Pairing(
            tandem_proto::pairing::PairingError::ScannedExpired {
                ago_s: (now - link.expires_at_ms) / 1000,
            },
        ));
    }
    Ok(())
}

/// Refuses to unlink the primary or a device that is not in the account's list.
fn check_unlink_target(id: &Identity, target: DeviceId) -> Result<()> {
    if target.account != id.account || id.list.device(target.index).is_none() {
        return Err(Error::BadInput(format!(
            "{target} is not a device of this account (see `tandem-phone devices`)"
        )));
    }
    if target.is_primary() {
        return Err(Error::BadInput(
            "the primary device cannot unlink itself".into(),
        ));
    }
    Ok(())
}

/// The next event of `conn`, or never when there is none.
async fn next_or_never(conn: Option<&mut Connection>) -> Result<Incoming> {
    match conn {
        Some(conn) => conn.next(None).await,
        None => std::future::pending().await,
    }
}

/// What the serve loop does after an inbox transaction.
enum PhoneStep {
    Nothing,
    /// A messaging body was applied.
    Effects(Vec<Effect>),
    Pump(SyncId),
    /// An acknowledgement was recorded; the next chunks (or `Complete`), sealed with it.
    Progress(SyncId, Vec<Vec<u8>>),
    Reply(DeviceId, SyncMessage),
    /// A linked device logged out and asked to be unlinked.
    Leave(DeviceId),
}

//! Linking a new device (DESIGN 5), both sides as sans-I/O state machines: bytes and `now_ms`
//! in, [`Output`]s (subscribe, publish, show a code, events) out. The engine drives them over
//! one MQTT connection each.
//!
//! # Messages on `tandem/v1/pair/{ref}`
//!
//! Each is the postcard encoding of [`Wire`]:
//!
//! 1. **Offer** (phone → desktop): the phone's X25519 key in clear, then an HPKE Auth one-shot
//!    seal to the desktop's key (from the code) of `postcard(Offer) || HMAC-SHA256(secret,
//!    domain || ref || phone key || postcard(Offer))`. The HMAC proves the phone saw the code;
//!    HPKE Auth proves which device key sent it. The offer carries the account-signed
//!    certificate for the new device, the current signed device list, the brokers, the
//!    history-sync plan and the contacts.
//! 2. **Answer** (desktop → phone): sealed to the phone's key, the certificate counter-signed
//!    by the desktop's device key.
//! 3. **Done** (phone → desktop): sealed to the desktop's key, the new signed device list that
//!    holds the desktop. The desktop accepts it only as a successor of the offer's list.
//! 4. **Reject** (either way): sealed to the other side, a [`RejectReason`]; the side that
//!    receives it stops with that reason.
//!
//! A desktop that refuses an offer (wrong secret, expired code, forged list...) says why to the
//! sender and keeps waiting: a stranger cannot abort somebody else's pairing.
//!
//! # Bridge mode
//!
//! A code of a bridge-mode desktop ([`LinkKeys::Bridge`]) runs the same four messages through
//! the same machines ([`DesktopPairing::start_bridge`], [`PhonePairing::start_bridge`]), with
//! other contents: the offer is a [`BridgeOffer`] (the account's key, name and unchanged device
//! list, the phone's bridge URL and bridge key, the contacts; no certificate, no new list, no
//! broker login), the answer confirms the desktop's bridge key, and Done confirms that the
//! phone authorised it. The seal, the MAC, the replay and expiry checks and every refusal are
//! the same code.

use std::collections::BTreeSet;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tandem_crypto::{
    AccountId, AccountKey, AccountPublicKey, AccountSignedCertificate, CryptoRng,
    DeviceCertificate, DeviceDescription, DeviceId, DeviceKeys, DeviceList, SignedDeviceList,
    accept, oneshot,
};

use crate::link::{LinkKeys, LinkSecret, PairingLink, PairingRef, check_x25519};
use crate::sync::SyncPlanSummary;

/// How long the phone waits for the desktop's answer, and the desktop for the phone's
/// confirmation after answering.
pub const REPLY_TIMEOUT_MS: i64 = 30_000;
/// How far apart the two clocks may be.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60_000;
/// Largest pairing message accepted.
pub const MAX_PAIRING_MESSAGE_LEN: usize = 128 * 1024;

const OFFER_INFO: &[u8] = b"tandem/v1 pairing offer";
const ANSWER_INFO: &[u8] = b"tandem/v1 pairing answer";
const DONE_INFO: &[u8] = b"tandem/v1 pairing done";
const REJECT_INFO: &[u8] = b"tandem/v1 pairing reject";
const OFFER_MAC_DOMAIN: &[u8] = b"tandem/v1 pairing offer mac\0";
const MAC_LEN: usize = 32;

/// When the desktop's codes rotate (WhatsApp's rhythm by default: the first code lives 60 s,
/// every later one 20 s, about 160 s in all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrSchedule {
    /// Life of the first code (ms).
    pub first_ms: i64,
    /// Life of every later code (ms).
    pub every_ms: i64,
    /// Life of all codes together (ms).
    pub total_ms: i64,
}

impl Default for QrSchedule {
    fn default() -> Self {
        Self {
            first_ms: 60_000,
            every_ms: 20_000,
            total_ms: 160_000,
        }
    }
}

/// Why one side refused the other's message. Sent (sealed) to the other side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The code had expired when the offer arrived.
    Expired,
    /// The offer was not made with this code's link secret.
    WrongSecret,
    /// The offer was seen before, or predates the code.
    Replayed,
    /// Another phone's offer is already being answered.
    Busy,
    /// The user declined.
    Cancelled,
    /// The offer is malformed or inconsistent.
    BadOffer(String),
    /// The answer is malformed or its signature is bad.
    BadAnswer(String),
    /// A device list did not verify or is not newer.
    BadDeviceList(String),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Expired => f.write_str("the QR code had expired"),
            RejectReason::WrongSecret => {
                f.write_str("the offer was not made with this QR code's secret")
            }
            RejectReason::Replayed => f.write_str("the offer was replayed"),
            RejectReason::Busy => f.write_str("another phone is already linking this device"),
            RejectReason::Cancelled => f.write_str("the user cancelled"),
            RejectReason::BadOffer(why) => write!(f, "bad offer: {why}"),
            RejectReason::BadAnswer(why) => write!(f, "bad answer: {why}"),
            RejectReason::BadDeviceList(why) => write!(f, "bad device list: {why}"),
        }
    }
}

/// How a pairing ended without a link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// The desktop's last code expired with no link.
    #[error("QR code expired, try again")]
    CodeExpired,
    /// The phone scanned a code that had already expired.
    #[error("this QR code expired {ago_s} s ago; show a new code on the desktop and scan again")]
    ScannedExpired {
        /// How long ago, in seconds.
        ago_s: i64,
    },
    /// The other side refused, saying why.
    #[error("the {by} refused the link: {reason}")]
    Refused {
        /// "desktop" or "phone".
        by: &'static str,
        /// Its reason.
        reason: RejectReason,
    },
    /// This side refused the other's reply (and told it why).
    #[error("refused the {from}'s reply: {reason}")]
    RefusedReply {
        /// "desktop" or "phone".
        from: &'static str,
        /// Why.
        reason: RejectReason,
    },
    /// The other side did not answer in time.
    #[error("no reply from the {from} within {} s", REPLY_TIMEOUT_MS / 1000)]
    NoReply {
        /// "desktop" or "phone".
        from: &'static str,
    },
    /// Building or sealing a message failed.
    #[error("pairing failed: {0}")]
    Local(String),
}

/// The wire format of every message on a pairing topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    /// Phone → desktop.
    Offer {
        /// The phone's X25519 key (HPKE Auth sender).
        from: [u8; 32],
        /// The sealed offer and MAC.
        sealed: Vec<u8>,
    },
    /// Desktop → phone.
    Answer {
        /// The sealed answer.
        sealed: Vec<u8>,
    },
    /// Phone → desktop.
    Done {
        /// The sealed confirmation.
        sealed: Vec<u8>,
    },
    /// Either way.
    Reject {
        /// The sender's X25519 key.
        from: [u8; 32],
        /// The sealed reason.
        sealed: Vec<u8>,
    },
}

impl Wire {
    /// Encodes for the wire.
    fn encode(&self) -> Result<Vec<u8>, PairingError> {
        postcard::to_allocvec(self).map_err(|e| PairingError::Local(e.to_string()))
    }

    /// Decodes, strictly (no trailing bytes, bounded size).
    ///
    /// # Errors
    /// A reason when the bytes are not a pairing message.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_PAIRING_MESSAGE_LEN {
            return Err(format!("{} bytes is too large", bytes.len()));
        }
        strict(bytes)
    }
}

fn strict<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| e.to_string())?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(format!("{} trailing bytes", rest.len()))
    }
}

/// A contact handed to the new device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferContact {
    /// The contact's account key.
    pub account_key: AccountPublicKey,
    /// The name the user gave them.
    pub name: String,
}

/// What the phone offers the new device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Random; each offer is answered once.
    pub offer_id: [u8; 16],
    /// When it was made (phone clock, ms).
    pub created_at_ms: i64,
    /// The code it answers.
    pub pairing_ref: PairingRef,
    /// The account's display name.
    pub account_name: String,
    /// The new device's certificate, signed by the account key.
    pub certificate: AccountSignedCertificate,
    /// The account's current signed device list (`SignedDeviceList::to_bytes`).
    pub device_list: Vec<u8>,
    /// Brokers to use, in order of preference.
    pub brokers: Vec<String>,
    /// How the new device logs in to them, when they check.
    pub access: Option<BrokerAccess>,
    /// The history sync that follows.
    pub sync: SyncPlanSummary,
    /// The account's contacts.
    pub contacts: Vec<OfferContact>,
}

/// The new device's broker login and the certificate authority to trust (see
/// `docs/broker/`). The password is wiped when dropped and never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerAccess {
    /// The username (the new device's id).
    pub username: String,
    /// Its password.
    pub password: String,
    /// The PEM of the certificate authority the brokers' TLS certificates chain to (`None`:
    /// the system's).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for BrokerAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerAccess")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

impl Drop for BrokerAccess {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.password.zeroize();
    }
}

/// Longest bridge URL an offer may carry, in bytes.
pub const MAX_BRIDGE_URL_LEN: usize = 256;

/// What the phone offers a bridge-mode desktop. It is not a device of the account: no
/// certificate, no change of the device list, no broker login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeOffer {
    /// Random; each offer is answered once.
    pub offer_id: [u8; 16],
    /// When it was made (phone clock, ms).
    pub created_at_ms: i64,
    /// The code it answers.
    pub pairing_ref: PairingRef,
    /// The account's display name.
    pub account_name: String,
    /// The account's public key (the account id derives from it).
    pub account_key: AccountPublicKey,
    /// The account's current signed device list, unchanged: it shows that the sender is the
    /// account's primary.
    pub device_list: Vec<u8>,
    /// Where the desktop dials the phone's bridge (`ws://host:port` or `wss://...`).
    pub bridge_url: String,
    /// The phone's bridge public key (X25519, the Noise static key of its endpoint).
    pub bridge_key: [u8; 32],
    /// The account's contacts.
    pub contacts: Vec<OfferContact>,
}

impl BridgeOffer {
    /// The account id.
    #[must_use]
    pub fn account(&self) -> AccountId {
        self.account_key.account_id()
    }
}

/// Checks a bridge URL as an offer carries it: `ws://` or `wss://`, a host, at most
/// [`MAX_BRIDGE_URL_LEN`] bytes, no whitespace or control characters (the rule of
/// `tandem_bridge::keys::check_address`).
///
/// # Errors
/// The reason, for a refusal.
pub fn check_bridge_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_BRIDGE_URL_LEN {
        return Err(format!(
            "the bridge URL is longer than {MAX_BRIDGE_URL_LEN} bytes"
        ));
    }
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or("the bridge URL must start with ws:// or wss://")?;
    if rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the bridge URL contains whitespace or control characters".into());
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("the bridge URL has no host".into());
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Answer {
    offer_id: [u8; 16],
    certificate: DeviceCertificate,
}

/// A bridge desktop's answer: it accepts the offer and confirms its bridge key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BridgeAnswer {
    offer_id: [u8; 16],
    bridge_key: [u8; 32],
}

/// The phone's confirmation to a bridge desktop: this key is authorised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BridgeDone {
    offer_id: [u8; 16],
    bridge_key: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Done {
    offer_id: [u8; 16],
    device_list: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Reject {
    offer_id: Option<[u8; 16]>,
    reason: RejectReason,
}

/// What a machine asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<E> {
    /// Subscribe to a topic (QoS 1).
    Subscribe(String),
    /// Unsubscribe from a topic.
    Unsubscribe(String),
    /// Publish at QoS 1 (not retained).
    Publish {
        /// The topic.
        topic: String,
        /// The payload.
        payload: Vec<u8>,
    },
    /// Something the user should know.
    Event(E),
}

fn info(base: &[u8], pairing_ref: &PairingRef) -> Vec<u8> {
    let mut info = base.to_vec();
    info.extend_from_slice(&pairing_ref.0);
    info
}

fn offer_mac(secret: &LinkSecret, pairing_ref: &PairingRef, from: &[u8; 32]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose())
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    mac.update(OFFER_MAC_DOMAIN);
    mac.update(&pairing_ref.0);
    mac.update(from);
    mac
}

fn seal_reject(
    keys: &DeviceKeys,
    to: &[u8; 32],
    pairing_ref: &PairingRef,
    offer_id: Option<[u8; 16]>,
    reason: RejectReason,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, PairingError> {
    let body = postcard::to_allocvec(&Reject { offer_id, reason })
        .map_err(|e| PairingError::Local(e.to_string()))?;
    let sealed = oneshot::seal(
        keys,
        to,
        &info(REJECT_INFO, pairing_ref),
        &pairing_ref.0,
        &body,
        rng,
    )
    .map_err(|e| PairingError::Local(e.to_string()))?;
    Wire::Reject {
        from: keys.public_keys().x25519,
        sealed,
    }
    .encode()
}

fn open_reject(
    keys: &DeviceKeys,
    from: &[u8; 32],
    pairing_ref: &PairingRef,
    sealed: &[u8],
) -> Option<RejectReason> {
    let plain = oneshot::open(
        keys,
        from,
        &info(REJECT_INFO, pairing_ref),
        &pairing_ref.0,
        sealed,
    )
    .ok()?;
    strict::<Reject>(&plain).ok().map(|r| r.reason)
}

/// Verifies `device_list` as the account's signed list and that `from` is its primary's key:
/// only the account's primary makes offers. Returns the verified list.
fn check_sender(
    account: &AccountId,
    device_list: &[u8],
    from: &[u8; 32],
) -> Result<DeviceList, RejectReason> {
    let signed = SignedDeviceList::from_bytes(device_list)
        .map_err(|e| RejectReason::BadDeviceList(e.to_string()))?;
    let current = accept(account, None, &signed)
        .map_err(|e| RejectReason::BadDeviceList(e.to_string()))?
        .list;
    let primary = current
        .device(tandem_crypto::PRIMARY_INDEX)
        .ok_or_else(|| RejectReason::BadDeviceList("it has no primary device".into()))?;
    if &primary.keys().x25519 != from {
        return Err(RejectReason::BadOffer(
            "it was not sent by the account's primary device".into(),
        ));
    }
    Ok(current)
}

// ------------------------------------------------------------------------------------------
// The desktop

/// What the desktop's machine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesktopEvent {
    /// Show this code (replacing the previous one).
    Code {
        /// The link to encode.
        link: PairingLink,
        /// 0 for the first code, then 1, 2...
        index: u32,
    },
    /// An offer was refused (the machine keeps waiting).
    OfferRefused(RejectReason),
    /// An offer was accepted and answered; waiting for the phone to confirm.
    Answered {
        /// The new device id.
        device: DeviceId,
        /// The phone's account name.
        account_name: String,
    },
    /// Linked.
    Linked(Box<LinkedDevice>),
    /// Bridge mode: an offer was accepted and answered; waiting for the phone to confirm.
    BridgeAnswered {
        /// The account.
        account: AccountId,
        /// The phone's account name.
        account_name: String,
    },
    /// Bridge mode: linked (the phone authorised this desktop's bridge key).
    BridgeLinked(Box<LinkedBridge>),
    /// Ended without a link.
    Failed(PairingError),
}

/// Everything a bridge-mode desktop learns by linking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedBridge {
    /// The offer (account, bridge URL and key, contacts), verified.
    pub offer: BridgeOffer,
    /// This desktop's bridge key, as the phone authorised it.
    pub bridge_key: [u8; 32],
}

impl LinkedBridge {
    /// The account id.
    #[must_use]
    pub fn account(&self) -> AccountId {
        self.offer.account()
    }
}

/// Everything the desktop learns by linking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedDevice {
    /// This device's counter-signed certificate.
    pub certificate: DeviceCertificate,
    /// The account's new device list (verified, holds this device).
    pub device_list: SignedDeviceList,
    /// The offer (account name, brokers, sync plan, contacts).
    pub offer: Offer,
}

impl LinkedDevice {
    /// This device's id.
    #[must_use]
    pub fn device(&self) -> DeviceId {
        self.certificate.device_id()
    }

    /// The account id.
    #[must_use]
    pub fn account(&self) -> AccountId {
        self.certificate.account_id()
    }
}

/// A desktop output.
pub type DesktopOutput = Output<DesktopEvent>;

#[derive(Debug)]
struct Code {
    pairing_ref: PairingRef,
    secret: LinkSecret,
    issued_at: i64,
    /// Offers are accepted until then (the next code's rotation).
    valid_until: i64,
    subscribed: bool,
}

/// An offer the desktop accepted and answered, by mode.
#[derive(Debug)]
enum AnsweredOffer {
    Device {
        offer: Box<Offer>,
        certificate: Box<DeviceCertificate>,
        current: Box<DeviceList>,
    },
    Bridge {
        offer: Box<BridgeOffer>,
    },
}

impl AnsweredOffer {
    fn offer_id(&self) -> [u8; 16] {
        match self {
            Self::Device { offer, .. } => offer.offer_id,
            Self::Bridge { offer } => offer.offer_id,
        }
    }
}

/// An authenticated offer, decoded as the desktop's mode expects.
enum ReceivedOffer {
    Device(Box<Offer>),
    Bridge(Box<BridgeOffer>),
}

impl ReceivedOffer {
    fn id_time_ref(&self) -> ([u8; 16], i64, PairingRef) {
        match self {
            Self::Device(o) => (o.offer_id, o.created_at_ms, o.pairing_ref),
            Self::Bridge(o) => (o.offer_id, o.created_at_ms, o.pairing_ref),
        }
    }
}

#[derive(Debug)]
enum DesktopState {
    Waiting,
    Answered {
        pairing_ref: PairingRef,
        phone: [u8; 32],
        offer_wire: Vec<u8>,
        answer_wire: Vec<u8>,
        answered: AnsweredOffer,
        deadline: i64,
    },
    Ended,
}

/// The desktop's side of pairing.
#[derive(Debug)]
pub struct DesktopPairing {
    /// The keys the pairing messages are sealed with: the new device's keys in multi-device
    /// mode, one-off keys in bridge mode.
    keys: DeviceKeys,
    /// Bridge mode: this desktop's bridge public key.
    bridge: Option<[u8; 32]>,
    name: String,
    platform: String,
    broker: String,
    schedule: QrSchedule,
    started_at: i64,
    codes: Vec<Code>,
    seen_offers: BTreeSet<[u8; 16]>,
    state: DesktopState,
}

impl DesktopPairing {
    /// Starts showing codes for a device with `keys`, `name` and `platform`, meeting on
    /// `broker`. Returns the machine and its first outputs (subscribe, first code).
    ///
    /// # Errors
    /// [`PairingError::Local`] when the name, platform or broker cannot go into a link.
    pub fn start(
        keys: DeviceKeys,
        name: &str,
        platform: &str,
        broker: &str,
        schedule: QrSchedule,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<DesktopOutput>), PairingError> {
        Self::begin(keys, None, name, platform, broker, schedule, now_ms, rng)
    }

    /// Starts showing bridge-mode codes for a desktop whose bridge public key is
    /// `bridge_key`; `pairing_keys` are fresh keys used only to seal this pairing's messages
    /// (their X25519 key is the code's `dh`). Returns the machine and its first outputs.
    ///
    /// # Errors
    /// [`PairingError::Local`] when the name, platform or broker cannot go into a link, or
    /// the bridge key is unusable.
    #[allow(clippy::too_many_arguments)]
    pub fn start_bridge(
        pairing_keys: DeviceKeys,
        bridge_key: [u8; 32],
        name: &str,
        platform: &str,
        broker: &str,
        schedule: QrSchedule,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<DesktopOutput>), PairingError> {
        Self::begin(
            pairing_keys,
            Some(bridge_key),
            name,
            platform,
            broker,
            schedule,
            now_ms,
            rng,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn begin(
        keys: DeviceKeys,
        bridge: Option<[u8; 32]>,
        name: &str,
        platform: &str,
        broker: &str,
        schedule: QrSchedule,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<DesktopOutput>), PairingError> {
        if schedule.first_ms <= 0 || schedule.every_ms <= 0 || schedule.total_ms <= 0 {
            return Err(PairingError::Local(
                "the code schedule must be positive".into(),
            ));
        }
        let mut machine = Self {
            keys,
            bridge,
            name: name.to_owned(),
            platform: platform.to_owned(),
            broker: broker.to_owned(),
            schedule,
            started_at: now_ms,
            codes: Vec::new(),
            seen_offers: BTreeSet::new(),
            state: DesktopState::Waiting,
        };
        let mut out = Vec::new();
        machine.issue_code(now_ms, rng, &mut out)?;
        Ok((machine, out))
    }

    /// The device keys being linked (in bridge mode: the one-off pairing keys).
    #[must_use]
    pub fn keys(&self) -> &DeviceKeys {
        &self.keys
    }

    /// The keys this machine's codes carry.
    fn link_keys(&self) -> LinkKeys {
        match self.bridge {
            None => LinkKeys::Device(self.keys.public_keys()),
            Some(bridge) => LinkKeys::Bridge {
                dh: self.keys.public_keys().x25519,
                bridge,
            },
        }
    }

    /// Once an offer is answered and until the phone confirms: this device's counter-signed
    /// certificate and the offer. A device that stops in between can finish the link from the
    /// account's retained device list, which the phone publishes before it confirms.
    #[must_use]
    pub fn answered(&self) -> Option<(&DeviceCertificate, &Offer)> {
        match &self.state {
            DesktopState::Answered {
                answered:
                    AnsweredOffer::Device {
                        certificate, offer, ..
                    },
                ..
            } => Some((certificate, offer)),
            _ => None,
        }
    }

    fn end(&self) -> i64 {
        self.started_at.saturating_add(self.schedule.total_ms)
    }

    /// When code `k` is replaced by code `k + 1`.
    fn rotation(&self, k: usize) -> i64 {
        let k = i64::try_from(k).unwrap_or(i64::MAX);
        let at = self
            .started_at
            .saturating_add(self.schedule.first_ms)
            .saturating_add(self.schedule.every_ms.saturating_mul(k));
        at.min(self.end())
    }

    /// Issues the next code. A code already past its validity at `now_ms` (a machine polled
    /// late) is recorded but neither subscribed nor shown.
    fn issue_code(
        &mut self,
        now_ms: i64,
        rng: &mut impl CryptoRng,
        out: &mut Vec<DesktopOutput>,
    ) -> Result<(), PairingError> {
        let k = self.codes.len();
        let issued_at = if k == 0 {
            self.started_at
        } else {
            self.rotation(k - 1)
        };
        let valid_until = self.rotation(k + 1);
        let live = now_ms < valid_until;
        let code = Code {
            pairing_ref: PairingRef::random(rng),
            secret: LinkSecret::random(rng),
            issued_at,
            valid_until,
            subscribed: live,
        };
        let link = PairingLink {
            pairing_ref: code.pairing_ref,
            keys: self.link_keys(),
            secret: code.secret.clone(),
            expires_at_ms: code.valid_until,
            broker: self.broker.clone(),
            name: self.name.clone(),
            platform: self.platform.clone(),
        };
        link.validate()
            .map_err(|e| PairingError::Local(e.to_string()))?;
        link.keys.check().map_err(|(name, reason)| {
            PairingError::Local(format!("the code's {name} key {reason}"))
        })?;
        if live {
            out.push(Output::Subscribe(code.pairing_ref.topic()));
            out.push(Output::Event(DesktopEvent::Code {
                link,
                index: u32::try_from(k).unwrap_or(u32::MAX),
            }));
        }
        self.codes.push(code);
        Ok(())
    }

    /// The next time [`Self::poll`] has something to do.
    #[must_use]
    pub fn next_deadline(&self) -> Option<i64> {
        match &self.state {
            DesktopState::Ended => None,
            DesktopState::Answered { deadline, .. } => Some(*deadline),
            DesktopState::Waiting => {
                let rotate = self.rotation(self.codes.len().saturating_sub(1));
                let grace = self
                    .codes
                    .iter()
                    .filter(|c| c.subscribed)
                    .map(|c| c.valid_until)
                    .min();
                Some(grace.map_or(rotate, |g| g.min(rotate)))
            }
        }
    }

    /// Rotates codes, retires expired ones, and ends the pairing when time is up.
    pub fn poll(&mut self, now_ms: i64, rng: &mut impl CryptoRng) -> Vec<DesktopOutput> {
        let mut out = Vec::new();
        match &self.state {
            DesktopState::Ended => return out,
            DesktopState::Answered { deadline, .. } => {
                if now_ms >= *deadline {
                    self.state = DesktopState::Ended;
                    out.push(Output::Event(DesktopEvent::Failed(PairingError::NoReply {
                        from: "phone",
                    })));
                }
                return out;
            }
            DesktopState::Waiting => {}
        }
        for code in &mut self.codes {
            if code.subscribed && now_ms >= code.valid_until {
                code.subscribed = false;
                out.push(Output::Unsubscribe(code.pairing_ref.topic()));
            }
        }
        if now_ms >= self.end() {
            self.state = DesktopState::Ended;
            out.push(Output::Event(DesktopEvent::Failed(
                PairingError::CodeExpired,
            )));
            return out;
        }
        while now_ms >= self.rotation(self.codes.len().saturating_sub(1)) {
            if let Err(e) = self.issue_code(now_ms, rng, &mut out) {
                self.state = DesktopState::Ended;
                out.push(Output::Event(DesktopEvent::Failed(e)));
                break;
            }
        }
        out
    }

    /// Handles a message that arrived on `topic`.
    pub fn handle(
        &mut self,
        topic: &str,
        payload: &[u8],
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Vec<DesktopOutput> {
        let Some(index) = self
            .codes
            .iter()
            .position(|c| c.pairing_ref.topic() == topic)
        else {
            return Vec::new();
        };
        let Ok(wire) = Wire::decode(payload) else {
            return Vec::new();
        };
        match wire {
            Wire::Offer { from, sealed } => {
                self.on_offer(index, from, &sealed, payload, now_ms, rng)
            }
            Wire::Done { sealed } => self.on_done(index, &sealed, rng),
            Wire::Reject { from, sealed } => self.on_reject(index, &from, &sealed),
            Wire::Answer { .. } => Vec::new(),
        }
    }

    fn refuse(
        &self,
        pairing_ref: &PairingRef,
        to: &[u8; 32],
        offer_id: Option<[u8; 16]>,
        reason: RejectReason,
        rng: &mut impl CryptoRng,
    ) -> Vec<DesktopOutput> {
        let mut out = Vec::new();
        if let Ok(payload) = seal_reject(&self.keys, to, pairing_ref, offer_id, reason.clone(), rng)
        {
            out.push(Output::Publish {
                topic: pairing_ref.topic(),
                payload,
            });
        }
        out.push(Output::Event(DesktopEvent::OfferRefused(reason)));
        out
    }

    fn on_offer(
        &mut self,
        index: usize,
        from: [u8; 32],
        sealed: &[u8],
        wire: &[u8],
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Vec<DesktopOutput> {
        let Some(code) = self.codes.get(index) else {
            return Vec::new();
        };
        let pairing_ref = code.pairing_ref;
        if from == self.keys.public_keys().x25519 {
            return Vec::new();
        }
        match &self.state {
            DesktopState::Ended => {
                let reason = if now_ms >= code.valid_until.min(self.end()) {
                    RejectReason::Expired
                } else {
                    RejectReason::Replayed
                };
                return self.refuse(&pairing_ref, &from, None, reason, rng);
            }
            DesktopState::Answered {
                offer_wire,
                answer_wire,
                pairing_ref: answered_ref,
                ..
            } => {
                // The same offer again (QoS 1 may deliver twice): the same answer again.
                if offer_wire.as_slice() == wire {
                    return vec![Output::Publish {
                        topic: answered_ref.topic(),
                        payload: answer_wire.clone(),
                    }];
                }
                return self.refuse(&pairing_ref, &from, None, RejectReason::Busy, rng);
            }
            DesktopState::Waiting => {}
        }
        if now_ms >= code.valid_until || now_ms >= self.end() {
            return self.refuse(&pairing_ref, &from, None, RejectReason::Expired, rng);
        }
        let plain = match oneshot::open(
            &self.keys,
            &from,
            &info(OFFER_INFO, &pairing_ref),
            &pairing_ref.0,
            sealed,
        ) {
            Ok(plain) => plain,
            Err(_) => {
                let reason =
                    RejectReason::BadOffer("it does not open with this device's key".into());
                return self.refuse(&pairing_ref, &from, None, reason, rng);
            }
        };
        let Some((body, tag)) = plain.split_at_checked(plain.len().saturating_sub(MAC_LEN)) else {
            return self.refuse(&pairing_ref, &from, None, RejectReason::WrongSecret, rng);
        };
        let mut mac = offer_mac(&code.secret, &pairing_ref, &from);
        mac.update(body);
        if mac.verify_slice(tag).is_err() {
            return self.refuse(&pairing_ref, &from, None, RejectReason::WrongSecret, rng);
        }
        let decoded = match self.bridge {
            None => strict::<Offer>(body).map(|o| ReceivedOffer::Device(Box::new(o))),
            Some(_) => strict::<BridgeOffer>(body).map(|o| ReceivedOffer::Bridge(Box::new(o))),
        };
        let received = match decoded {
            Ok(offer) => offer,
            Err(e) => {
                return self.refuse(&pairing_ref, &from, None, RejectReason::BadOffer(e), rng);
            }
        };
        let (id, created_at_ms, offer_ref) = received.id_time_ref();
        let offer_id = Some(id);
        if offer_ref != pairing_ref
            || self.seen_offers.contains(&id)
            || created_at_ms < code.issued_at.saturating_sub(MAX_CLOCK_SKEW_MS)
            || created_at_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS)
        {
            return self.refuse(&pairing_ref, &from, offer_id, RejectReason::Replayed, rng);
        }
        self.seen_offers.insert(id);
        let accepted = match received {
            ReceivedOffer::Device(offer) => self.accept_device_offer(offer, &from),
            ReceivedOffer::Bridge(offer) => self.accept_bridge_offer(offer, &from),
        };
        let (answered, body, event) = match accepted {
            Ok(accepted) => accepted,
            Err(reason) => return self.refuse(&pairing_ref, &from, offer_id, reason, rng),
        };
        let answer_wire = match oneshot::seal(
            &self.keys,
            &from,
            &info(ANSWER_INFO, &pairing_ref),
            &pairing_ref.0,
            &body,
            rng,
        )
        .map_err(|e| e.to_string())
        .and_then(|sealed| Wire::Answer { sealed }.encode().map_err(|e| e.to_string()))
        {
            Ok(w) => w,
            Err(e) => {
                self.state = DesktopState::Ended;
                return vec![Output::Event(DesktopEvent::Failed(PairingError::Local(e)))];
            }
        };
        self.state = DesktopState::Answered {
            pairing_ref,
            phone: from,
            offer_wire: wire.to_vec(),
            answer_wire: answer_wire.clone(),
            answered,
            deadline: now_ms.saturating_add(REPLY_TIMEOUT_MS),
        };
        vec![
            Output::Publish {
                topic: pairing_ref.topic(),
                payload: answer_wire,
            },
            Output::Event(event),
        ]
    }

    /// Checks a multi-device offer and makes the answer: the counter-signed certificate.
    fn accept_device_offer(
        &self,
        offer: Box<Offer>,
        from: &[u8; 32],
    ) -> Result<(AnsweredOffer, Vec<u8>, DesktopEvent), RejectReason> {
        let current = self.check_offer(&offer, from)?;
        let certificate = offer
            .certificate
            .clone()
            .countersign(&self.keys)
            .map_err(|e| RejectReason::BadOffer(e.to_string()))?;
        let body = postcard::to_allocvec(&Answer {
            offer_id: offer.offer_id,
            certificate: certificate.clone(),
        })
        .map_err(|e| RejectReason::BadOffer(e.to_string()))?;
        let event = DesktopEvent::Answered {
            device: certificate.device_id(),
            account_name: offer.account_name.clone(),
        };
        let answered = AnsweredOffer::Device {
            offer,
            certificate: Box::new(certificate),
            current: Box::new(current),
        };
        Ok((answered, body, event))
    }

    /// Checks a bridge offer and makes the answer: this desktop's bridge key.
    fn accept_bridge_offer(
        &self,
        offer: Box<BridgeOffer>,
        from: &[u8; 32],
    ) -> Result<(AnsweredOffer, Vec<u8>, DesktopEvent), RejectReason> {
        let bridge_key = self
            .bridge
            .ok_or_else(|| RejectReason::BadOffer("this desktop is not in bridge mode".into()))?;
        check_sender(&offer.account_key.account_id(), &offer.device_list, from)?;
        check_bridge_url(&offer.bridge_url).map_err(RejectReason::BadOffer)?;
        check_x25519("bridge key", &offer.bridge_key).map_err(|(name, reason)| {
            RejectReason::BadOffer(format!("the phone's {name} {reason}"))
        })?;
        if offer.bridge_key == bridge_key {
            return Err(RejectReason::BadOffer(
                "the phone's bridge key is this desktop's".into(),
            ));
        }
        let body = postcard::to_allocvec(&BridgeAnswer {
            offer_id: offer.offer_id,
            bridge_key,
        })
        .map_err(|e| RejectReason::BadOffer(e.to_string()))?;
        let event = DesktopEvent::BridgeAnswered {
            account: offer.account(),
            account_name: offer.account_name.clone(),
        };
        Ok((AnsweredOffer::Bridge { offer }, body, event))
    }

    /// Every check of an authenticated offer; returns the verified current device list.
    fn check_offer(&self, offer: &Offer, from: &[u8; 32]) -> Result<DeviceList, RejectReason> {
        let cert = &offer.certificate;
        cert.verify_account_signature()
            .map_err(|e| RejectReason::BadOffer(format!("certificate: {e}")))?;
        let account = cert.account_key().account_id();
        let current = check_sender(&account, &offer.device_list, from)?;
        let description = cert.description();
        if description.keys != self.keys.public_keys()
            || description.name != self.name
            || description.platform != self.platform
        {
            return Err(RejectReason::BadOffer(
                "its certificate is not for this device".into(),
            ));
        }
        if description.index == tandem_crypto::PRIMARY_INDEX
            || current.device(description.index).is_some()
        {
            return Err(RejectReason::BadOffer(format!(
                "device index {} is already in use",
                description.index
            )));
        }
        Ok(current)
    }

    fn on_done(
        &mut self,
        index: usize,
        sealed: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Vec<DesktopOutput> {
        let DesktopState::Answered {
            pairing_ref,
            phone,
            answered,
            ..
        } = &self.state
        else {
            return Vec::new();
        };
        if self.codes.get(index).map(|c| c.pairing_ref) != Some(*pairing_ref) {
            return Vec::new();
        }
        let Ok(plain) = oneshot::open(
            &self.keys,
            phone,
            &info(DONE_INFO, pairing_ref),
            &pairing_ref.0,
            sealed,
        ) else {
            return Vec::new();
        };
        let checked = match answered {
            AnsweredOffer::Device {
                offer,
                certificate,
                current,
            } => check_device_done(&plain, offer, certificate, current),
            AnsweredOffer::Bridge { offer } => self.check_bridge_done(&plain, offer),
        };
        match checked {
            Ok(event) => {
                self.state = DesktopState::Ended;
                vec![Output::Event(event)]
            }
            Err(reason) => {
                let offer_id = Some(answered.offer_id());
                let (pairing_ref, phone) = (*pairing_ref, *phone);
                let mut out = Vec::new();
                if let Ok(payload) = seal_reject(
                    &self.keys,
                    &phone,
                    &pairing_ref,
                    offer_id,
                    reason.clone(),
                    rng,
                ) {
                    out.push(Output::Publish {
                        topic: pairing_ref.topic(),
                        payload,
                    });
                }
                self.state = DesktopState::Ended;
                out.push(Output::Event(DesktopEvent::Failed(
                    PairingError::RefusedReply {
                        from: "phone",
                        reason,
                    },
                )));
                out
            }
        }
    }

    /// A bridge confirmation: for this offer, naming this desktop's bridge key.
    fn check_bridge_done(
        &self,
        plain: &[u8],
        offer: &BridgeOffer,
    ) -> Result<DesktopEvent, RejectReason> {
        let done = strict::<BridgeDone>(plain).map_err(RejectReason::BadAnswer)?;
        if done.offer_id != offer.offer_id {
            return Err(RejectReason::Replayed);
        }
        if Some(done.bridge_key) != self.bridge {
            return Err(RejectReason::BadAnswer(
                "the phone authorised another bridge key".into(),
            ));
        }
        Ok(DesktopEvent::BridgeLinked(Box::new(LinkedBridge {
            offer: offer.clone(),
            bridge_key: done.bridge_key,
        })))
    }

    fn on_reject(&mut self, index: usize, from: &[u8; 32], sealed: &[u8]) -> Vec<DesktopOutput> {
        let DesktopState::Answered {
            pairing_ref, phone, ..
        } = &self.state
        else {
            return Vec::new();
        };
        if from != phone || self.codes.get(index).map(|c| c.pairing_ref) != Some(*pairing_ref) {
            return Vec::new();
        }
        let Some(reason) = open_reject(&self.keys, phone, pairing_ref, sealed) else {
            return Vec::new();
        };
        self.state = DesktopState::Ended;
        vec![Output::Event(DesktopEvent::Failed(PairingError::Refused {
            by: "phone",
            reason,
        }))]
    }
}

/// A multi-device confirmation: a successor of the offer's list that holds the certificate.
fn check_device_done(
    plain: &[u8],
    offer: &Offer,
    certificate: &DeviceCertificate,
    current: &DeviceList,
) -> Result<DesktopEvent, RejectReason> {
    let done = strict::<Done>(plain).map_err(RejectReason::BadDeviceList)?;
    if done.offer_id != offer.offer_id {
        return Err(RejectReason::Replayed);
    }
    let signed = SignedDeviceList::from_bytes(&done.device_list)
        .map_err(|e| RejectReason::BadDeviceList(e.to_string()))?;
    let accepted = accept(&current.account_id(), Some(current), &signed)
        .map_err(|e| RejectReason::BadDeviceList(e.to_string()))?;
    let device = certificate.device_id();
    if accepted.list.device(device.index) != Some(certificate) {
        return Err(RejectReason::BadDeviceList(
            "the new list does not hold this device".into(),
        ));
    }
    Ok(DesktopEvent::Linked(Box::new(LinkedDevice {
        certificate: certificate.clone(),
        device_list: signed,
        offer: offer.clone(),
    })))
}

// ------------------------------------------------------------------------------------------
// The phone

/// What the phone's machine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEvent {
    /// The desktop accepted: store the new device and list durably, then publish what follows.
    Linked {
        /// The new device's complete certificate.
        certificate: Box<DeviceCertificate>,
        /// The new signed device list (holding it).
        device_list: Box<SignedDeviceList>,
    },
    /// Bridge mode: the desktop confirmed its bridge key: store it as an authorised bridge
    /// desktop durably, then publish what follows (the confirmation).
    BridgeLinked(BridgeDesktop),
    /// Ended without a link.
    Failed(PairingError),
}

/// A desktop the phone authorises on its bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeDesktop {
    /// Its bridge public key (X25519).
    pub bridge_key: [u8; 32],
    /// Its name, from the code.
    pub name: String,
    /// Its platform, from the code.
    pub platform: String,
    /// When it was linked (phone clock, ms).
    pub linked_at_ms: i64,
}

/// What the phone offers a bridge-mode desktop besides its account's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeOfferContents {
    /// The account's display name.
    pub account_name: String,
    /// Where desktops dial the phone's bridge (`ws://host:port`).
    pub bridge_url: String,
    /// The phone's bridge public key.
    pub bridge_key: [u8; 32],
    /// The contacts.
    pub contacts: Vec<OfferContact>,
}

/// The offer a phone sent, by mode.
#[derive(Debug)]
enum SentOffer {
    Device(Box<Offer>),
    Bridge(Box<BridgeOffer>),
}

impl SentOffer {
    fn offer_id(&self) -> [u8; 16] {
        match self {
            Self::Device(o) => o.offer_id,
            Self::Bridge(o) => o.offer_id,
        }
    }
}

/// A phone output.
pub type PhoneOutput = Output<PhoneEvent>;

/// What the phone offers besides the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferContents {
    /// The account's display name.
    pub account_name: String,
    /// Index the new device gets.
    pub index: u32,
    /// Brokers to use.
    pub brokers: Vec<String>,
    /// The new device's broker login, when the brokers check.
    pub access: Option<BrokerAccess>,
    /// The history sync plan.
    pub sync: SyncPlanSummary,
    /// The contacts.
    pub contacts: Vec<OfferContact>,
}

/// The phone's side of pairing one scanned code.
#[derive(Debug)]
pub struct PhonePairing {
    link: PairingLink,
    offer: SentOffer,
    current: DeviceList,
    deadline: i64,
    ended: bool,
}

impl PhonePairing {
    /// Builds and seals the offer for the device of `link`. Returns the machine and its first
    /// outputs (subscribe to the code's topic, publish the offer).
    ///
    /// # Errors
    /// [`PairingError::ScannedExpired`] for a stale code; [`PairingError::Local`] when the
    /// certificate or the list cannot be made.
    pub fn start(
        link: PairingLink,
        account: &AccountKey,
        phone: &DeviceKeys,
        current: &SignedDeviceList,
        contents: OfferContents,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<PhoneOutput>), PairingError> {
        check_fresh(&link, now_ms)?;
        let LinkKeys::Device(keys) = link.keys else {
            return Err(PairingError::Local(
                "this is a bridge-mode code: link it in bridge mode".into(),
            ));
        };
        let local = |e: tandem_crypto::Error| PairingError::Local(e.to_string());
        let current_list = current.verify(&account.account_id()).map_err(local)?;
        let certificate = account
            .certify(DeviceDescription {
                index: contents.index,
                keys,
                name: link.name.clone(),
                platform: link.platform.clone(),
                linked_at_ms: now_ms,
            })
            .map_err(local)?;
        let offer = Offer {
            offer_id: random_id(rng),
            created_at_ms: now_ms,
            pairing_ref: link.pairing_ref,
            account_name: contents.account_name,
            certificate,
            device_list: current.to_bytes().map_err(local)?,
            brokers: contents.brokers,
            access: contents.access,
            sync: contents.sync,
            contacts: contents.contacts,
        };
        let plain =
            postcard::to_allocvec(&offer).map_err(|e| PairingError::Local(e.to_string()))?;
        Self::send_offer(
            link,
            phone,
            SentOffer::Device(Box::new(offer)),
            plain,
            current_list,
            now_ms,
            rng,
        )
    }

    /// Builds and seals the offer for the bridge-mode desktop of `link`: the account's key,
    /// name and current list (unchanged), the phone's bridge URL and key, the contacts. Returns
    /// the machine and its first outputs.
    ///
    /// # Errors
    /// [`PairingError::ScannedExpired`] for a stale code; [`PairingError::Local`] for a
    /// multi-device code, a bad bridge URL or key, or a list that does not verify.
    pub fn start_bridge(
        link: PairingLink,
        account: &AccountKey,
        phone: &DeviceKeys,
        current: &SignedDeviceList,
        contents: BridgeOfferContents,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<PhoneOutput>), PairingError> {
        check_fresh(&link, now_ms)?;
        if link.keys.bridge().is_none() {
            return Err(PairingError::Local(
                "this is a multi-device code: link it as a device".into(),
            ));
        }
        check_bridge_url(&contents.bridge_url).map_err(PairingError::Local)?;
        check_x25519("bridge key", &contents.bridge_key).map_err(|(name, reason)| {
            PairingError::Local(format!("the phone's {name} {reason}"))
        })?;
        let local = |e: tandem_crypto::Error| PairingError::Local(e.to_string());
        let current_list = current.verify(&account.account_id()).map_err(local)?;
        let offer = BridgeOffer {
            offer_id: random_id(rng),
            created_at_ms: now_ms,
            pairing_ref: link.pairing_ref,
            account_name: contents.account_name,
            account_key: account.public_key(),
            device_list: current.to_bytes().map_err(local)?,
            bridge_url: contents.bridge_url,
            bridge_key: contents.bridge_key,
            contacts: contents.contacts,
        };
        let plain =
            postcard::to_allocvec(&offer).map_err(|e| PairingError::Local(e.to_string()))?;
        Self::send_offer(
            link,
            phone,
            SentOffer::Bridge(Box::new(offer)),
            plain,
            current_list,
            now_ms,
            rng,
        )
    }

    /// Seals `plain` (the encoded offer) with its MAC to the code's `dh` key.
    fn send_offer(
        link: PairingLink,
        phone: &DeviceKeys,
        offer: SentOffer,
        mut plain: Vec<u8>,
        current: DeviceList,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<PhoneOutput>), PairingError> {
        let from = phone.public_keys().x25519;
        let mut mac = offer_mac(&link.secret, &link.pairing_ref, &from);
        mac.update(&plain);
        plain.extend_from_slice(&mac.finalize().into_bytes());
        let sealed = oneshot::seal(
            phone,
            link.keys.dh(),
            &info(OFFER_INFO, &link.pairing_ref),
            &link.pairing_ref.0,
            &plain,
            rng,
        )
        .map_err(|e| PairingError::Local(e.to_string()))?;
        let payload = Wire::Offer { from, sealed }.encode()?;
        let topic = link.pairing_ref.topic();
        let machine = Self {
            link,
            offer,
            current,
            deadline: now_ms.saturating_add(REPLY_TIMEOUT_MS),
            ended: false,
        };
        Ok((
            machine,
            vec![
                Output::Subscribe(topic.clone()),
                Output::Publish { topic, payload },
            ],
        ))
    }

    /// The link being answered.
    #[must_use]
    pub fn link(&self) -> &PairingLink {
        &self.link
    }

    /// The offer sent, in multi-device mode.
    #[must_use]
    pub fn offer(&self) -> Option<&Offer> {
        match &self.offer {
            SentOffer::Device(offer) => Some(offer),
            SentOffer::Bridge(_) => None,
        }
    }

    /// The offer sent, in bridge mode.
    #[must_use]
    pub fn bridge_offer(&self) -> Option<&BridgeOffer> {
        match &self.offer {
            SentOffer::Device(_) => None,
            SentOffer::Bridge(offer) => Some(offer),
        }
    }

    /// When [`Self::poll`] gives up waiting.
    #[must_use]
    pub fn next_deadline(&self) -> Option<i64> {
        (!self.ended).then_some(self.deadline)
    }

    /// Gives up once the desktop has not answered in time.
    pub fn poll(&mut self, now_ms: i64) -> Vec<PhoneOutput> {
        if self.ended || now_ms < self.deadline {
            return Vec::new();
        }
        self.ended = true;
        vec![Output::Event(PhoneEvent::Failed(PairingError::NoReply {
            from: "desktop",
        }))]
    }

    /// Handles a message on the code's topic.
    pub fn handle(
        &mut self,
        topic: &str,
        payload: &[u8],
        account: &AccountKey,
        phone: &DeviceKeys,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Vec<PhoneOutput> {
        let pairing_ref = self.link.pairing_ref;
        if self.ended || topic != pairing_ref.topic() {
            return Vec::new();
        }
        let desktop = *self.link.keys.dh();
        match Wire::decode(payload) {
            Ok(Wire::Answer { sealed }) => {
                let Ok(plain) = oneshot::open(
                    phone,
                    &desktop,
                    &info(ANSWER_INFO, &pairing_ref),
                    &pairing_ref.0,
                    &sealed,
                ) else {
                    return Vec::new();
                };
                let checked = match &self.offer {
                    SentOffer::Device(offer) => self.check_answer(offer, &plain, account, now_ms),
                    SentOffer::Bridge(offer) => self.check_bridge_answer(offer, &plain, now_ms),
                };
                match checked {
                    Ok((event, done)) => {
                        let payload = done
                            .and_then(|body| {
                                oneshot::seal(
                                    phone,
                                    &desktop,
                                    &info(DONE_INFO, &pairing_ref),
                                    &pairing_ref.0,
                                    &body,
                                    rng,
                                )
                                .map_err(|e| e.to_string())
                            })
                            .and_then(|sealed| {
                                Wire::Done { sealed }.encode().map_err(|e| e.to_string())
                            });
                        match payload {
                            Ok(payload) => {
                                self.ended = true;
                                vec![
                                    Output::Event(event),
                                    Output::Publish {
                                        topic: pairing_ref.topic(),
                                        payload,
                                    },
                                ]
                            }
                            Err(e) => self.fail(PairingError::Local(e)),
                        }
                    }
                    Err(reason) => {
                        let mut out = Vec::new();
                        if let Ok(payload) = seal_reject(
                            phone,
                            &desktop,
                            &pairing_ref,
                            Some(self.offer.offer_id()),
                            reason.clone(),
                            rng,
                        ) {
                            out.push(Output::Publish {
                                topic: pairing_ref.topic(),
                                payload,
                            });
                        }
                        out.extend(self.fail(PairingError::RefusedReply {
                            from: "desktop",
                            reason,
                        }));
                        out
                    }
                }
            }
            Ok(Wire::Reject { from, sealed }) if from == desktop => {
                match open_reject(phone, &desktop, &pairing_ref, &sealed) {
                    Some(reason) => self.fail(PairingError::Refused {
                        by: "desktop",
                        reason,
                    }),
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    fn fail(&mut self, error: PairingError) -> Vec<PhoneOutput> {
        self.ended = true;
        vec![Output::Event(PhoneEvent::Failed(error))]
    }

    /// Checks a multi-device answer; returns the event (the new device and list) and the
    /// encoded Done.
    fn check_answer(
        &self,
        offer: &Offer,
        plain: &[u8],
        account: &AccountKey,
        now_ms: i64,
    ) -> Result<(PhoneEvent, Result<Vec<u8>, String>), RejectReason> {
        let answer: Answer = strict(plain).map_err(RejectReason::BadAnswer)?;
        if answer.offer_id != offer.offer_id {
            return Err(RejectReason::Replayed);
        }
        let certificate = answer.certificate;
        certificate
            .verify()
            .map_err(|e| RejectReason::BadAnswer(e.to_string()))?;
        if certificate.description() != offer.certificate.description()
            || certificate.account_key() != offer.certificate.account_key()
        {
            return Err(RejectReason::BadAnswer(
                "the certificate is not the one offered".into(),
            ));
        }
        let mut certs = self.current.certificates().to_vec();
        certs.push(certificate.clone());
        let list = self
            .current
            .successor(now_ms.max(self.current.issued_at_ms()), certs)
            .and_then(|l| l.sign(account))
            .map_err(|e| RejectReason::BadAnswer(e.to_string()))?;
        let done = list
            .to_bytes()
            .map_err(|e| e.to_string())
            .and_then(|device_list| {
                postcard::to_allocvec(&Done {
                    offer_id: offer.offer_id,
                    device_list,
                })
                .map_err(|e| e.to_string())
            });
        let event = PhoneEvent::Linked {
            certificate: Box::new(certificate),
            device_list: Box::new(list),
        };
        Ok((event, done))
    }

    /// Checks a bridge answer: for this offer, confirming the bridge key of the code.
    fn check_bridge_answer(
        &self,
        offer: &BridgeOffer,
        plain: &[u8],
        now_ms: i64,
    ) -> Result<(PhoneEvent, Result<Vec<u8>, String>), RejectReason> {
        let answer: BridgeAnswer = strict(plain).map_err(RejectReason::BadAnswer)?;
        if answer.offer_id != offer.offer_id {
            return Err(RejectReason::Replayed);
        }
        if Some(&answer.bridge_key) != self.link.keys.bridge() {
            return Err(RejectReason::BadAnswer(
                "the bridge key is not the one in the QR code".into(),
            ));
        }
        let done = postcard::to_allocvec(&BridgeDone {
            offer_id: offer.offer_id,
            bridge_key: answer.bridge_key,
        })
        .map_err(|e| e.to_string());
        let event = PhoneEvent::BridgeLinked(BridgeDesktop {
            bridge_key: answer.bridge_key,
            name: self.link.name.clone(),
            platform: self.link.platform.clone(),
            linked_at_ms: now_ms,
        });
        Ok((event, done))
    }
}

/// Refuses a code whose `exp` has passed (before going online).
fn check_fresh(link: &PairingLink, now_ms: i64) -> Result<(), PairingError> {
    if now_ms >= link.expires_at_ms {
        return Err(PairingError::ScannedExpired {
            ago_s: (now_ms - link.expires_at_ms) / 1000,
        });
    }
    Ok(())
}

fn random_id(rng: &mut impl CryptoRng) -> [u8; 16] {
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    id
}

#[cfg(test)]
#[path = "pairing_tests.rs"]
mod tests;

//! Pairwise sessions between two devices: set up once with HPKE (RFC 9180) in Auth mode, then
//! symmetric per message with a hash ratchet.
//!
//! * Setup: the sender runs `SetupAuthS` (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//!   ChaCha20-Poly1305) from its device X25519 key to the recipient device's X25519 key, with
//!   `info` = label || sender id || recipient id || session id, and exports a 32-byte root that
//!   becomes chain key 0. The 32-byte `enc` and the 16-byte session id ride in every envelope's
//!   [`SessionHeader`], so the recipient can set up its side from any message of the session.
//! * Per message: see [`ratchet`](self) — message key `n` and chain key `n + 1` from chain key
//!   `n`, ChaCha20-Poly1305 with the envelope header as associated data.
//! * The receiver keeps a bounded map of skipped message keys for out-of-order delivery and
//!   refuses a counter already consumed.
//! * [`RekeyPolicy`]: an outbound session is replaced after a number of messages or an age.
//!
//! The security properties (and their limits) are written down in `docs/envelope.md`.

mod inbound;
mod outbound;
mod pairwise;
mod ratchet;

use std::fmt;

use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use inbound::{InboundSession, MAX_SKIP, MAX_SKIPPED_KEYS};
pub use outbound::OutboundSession;
pub use pairwise::{MAX_INBOUND_SESSIONS, MAX_PAIRWISE_STATE_LEN, PairwiseSession};
pub use ratchet::MessageKey;

use crate::codec::hex;
use crate::rng::CryptoRng;
use crate::{DeviceId, DeviceKeys, DevicePublicKeys, Error, Result};
use ratchet::ChainKey;

pub(crate) type Kem = hpke::kem::X25519HkdfSha256;
pub(crate) type Kdf = hpke::kdf::HkdfSha256;
pub(crate) type HpkeAead = hpke::aead::ChaCha20Poly1305;

const SESSION_INFO_LABEL: &[u8] = b"tandem/v1 pairwise session\0";
const ROOT_EXPORT_LABEL: &[u8] = b"tandem/v1 chain key 0";

/// Length of a [`SessionId`].
pub const SESSION_ID_LEN: usize = 16;
/// Length of an HPKE `enc` (an X25519 public key).
pub const ENC_LEN: usize = 32;

/// A session's random 16-byte id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub [u8; SESSION_ID_LEN]);

impl SessionId {
    /// Draws a random id.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut id = [0u8; SESSION_ID_LEN];
        rng.fill_bytes(&mut id);
        Self(id)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// What every sealed message carries about its session: which session, which message of it, and
/// the HPKE `enc` that lets the recipient set the session up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionHeader {
    /// The session.
    pub session_id: SessionId,
    /// The message's position in the session's chain (0, 1, 2...).
    pub counter: u32,
    /// The HPKE encapsulated key of the session.
    pub enc: [u8; ENC_LEN],
}

/// When an outbound session is replaced by a fresh one, bounding what a leaked chain key
/// exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyPolicy {
    /// Messages per session.
    pub max_messages: u32,
    /// Age of a session, in ms.
    pub max_age_ms: i64,
}

impl RekeyPolicy {
    /// 10 000 messages.
    pub const DEFAULT_MAX_MESSAGES: u32 = 10_000;
    /// 7 days.
    pub const DEFAULT_MAX_AGE_MS: i64 = 7 * 24 * 60 * 60 * 1000;
}

impl Default for RekeyPolicy {
    fn default() -> Self {
        Self {
            max_messages: Self::DEFAULT_MAX_MESSAGES,
            max_age_ms: Self::DEFAULT_MAX_AGE_MS,
        }
    }
}

fn hpke_error(step: &'static str) -> impl Fn(hpke::HpkeError) -> Error {
    move |e| Error::Hpke {
        step,
        reason: e.to_string(),
    }
}

/// Maps an HPKE setup error. For DHKEM(X25519), encapsulation and decapsulation fail only when
/// an X25519 exchange gives the all-zero result (RFC 9180 section 7.1.4 requires the check):
/// one of the keys, or `enc`, has small order.
pub(crate) fn setup_error(whose: impl Fn() -> String) -> impl Fn(hpke::HpkeError) -> Error {
    move |e| match e {
        hpke::HpkeError::EncapError | hpke::HpkeError::DecapError => {
            Error::NonContributory { what: whose() }
        }
        other => Error::Hpke {
            step: "setup",
            reason: other.to_string(),
        },
    }
}

/// `info` = label || sender id (20) || recipient id (20) || session id (16).
fn session_info(sender: &DeviceId, recipient: &DeviceId, session_id: &SessionId) -> Vec<u8> {
    let mut info = Vec::with_capacity(SESSION_INFO_LABEL.len() + 56);
    info.extend_from_slice(SESSION_INFO_LABEL);
    info.extend_from_slice(&sender.to_bytes());
    info.extend_from_slice(&recipient.to_bytes());
    info.extend_from_slice(&session_id.0);
    info
}

fn hpke_private_key(keys: &DeviceKeys) -> Result<<Kem as hpke::Kem>::PrivateKey> {
    <Kem as hpke::Kem>::PrivateKey::from_bytes(keys.x25519_secret().as_bytes())
        .map_err(hpke_error("key import"))
}

fn hpke_public_key(bytes: &[u8; 32]) -> Result<<Kem as hpke::Kem>::PublicKey> {
    <Kem as hpke::Kem>::PublicKey::from_bytes(bytes).map_err(hpke_error("key import"))
}

/// Sender side of the setup: returns `enc` and chain key 0.
fn setup_sender(
    local: &DeviceId,
    local_keys: &DeviceKeys,
    remote: &DeviceId,
    remote_keys: &DevicePublicKeys,
    session_id: &SessionId,
    rng: &mut impl CryptoRng,
) -> Result<([u8; ENC_LEN], ChainKey)> {
    let sk = hpke_private_key(local_keys)?;
    let pk = Kem::sk_to_pk(&sk);
    let pk_recipient = hpke_public_key(&remote_keys.x25519)?;
    let info = session_info(local, remote, session_id);
    let (enc, context) = hpke::setup_sender_with_rng::<HpkeAead, Kdf, Kem>(
        &OpModeS::Auth((sk, pk)),
        &pk_recipient,
        &info,
        rng,
    )
    .map_err(setup_error(|| format!("device {remote}")))?;
    let mut root = Zeroizing::new([0u8; 32]);
    context
        .export(ROOT_EXPORT_LABEL, root.as_mut_slice())
        .map_err(hpke_error("export"))?;
    let enc = <[u8; ENC_LEN]>::try_from(enc.to_bytes().as_slice()).map_err(|_| Error::Hpke {
        step: "setup",
        reason: "enc is not 32 bytes".into(),
    })?;
    Ok((enc, ChainKey::from_root(*root)))
}

/// Recipient side of the setup: chain key 0 from `enc`, authenticated against the sender's key.
fn setup_receiver(
    local: &DeviceId,
    local_keys: &DeviceKeys,
    remote: &DeviceId,
    remote_keys: &DevicePublicKeys,
    header: &SessionHeader,
) -> Result<ChainKey> {
    let sk = hpke_private_key(local_keys)?;
    let pk_sender = hpke_public_key(&remote_keys.x25519)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&header.enc)
        .map_err(hpke_error("enc import"))?;
    let info = session_info(remote, local, &header.session_id);
    let context =
        hpke::setup_receiver::<HpkeAead, Kdf, Kem>(&OpModeR::Auth(pk_sender), &sk, &enc, &info)
            .map_err(setup_error(|| {
                format!(
                    "device {remote} or the enc of session {}",
                    header.session_id
                )
            }))?;
    let mut root = Zeroizing::new([0u8; 32]);
    context
        .export(ROOT_EXPORT_LABEL, root.as_mut_slice())
        .map_err(hpke_error("export"))?;
    Ok(ChainKey::from_root(*root))
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

//! `tandem-crypto`: identities, device certificates and lists, contact links, pairwise
//! sessions and sealing for Tandem. Sans-I/O: no clock (callers pass `now_ms`), no global RNG
//! (callers pass `&mut impl CryptoRng`; [`OsRng`] is the OS-seeded one), no storage.
//!
//! What each module owns:
//! - [`account`] owns the account key, its public key, and the account id derived from it.
//! - [`broker_auth`] owns the account's broker secret and the per-device broker passwords.
//! - [`device`] owns device keys, device public keys and device ids.
//! - [`certificate`] owns device certificates (account signature + device counter-signature).
//! - [`device_list`] owns signed, versioned device lists and the rule for accepting a new one.
//! - [`contact_link`] owns `tandem://contact?...` links.
//! - [`session`] owns the HPKE-Auth-established pairwise sessions with a hash ratchet.
//! - [`oneshot`] owns one-shot HPKE Auth sealing for messages outside sessions.
//! - [`rng`] owns randomness.

pub mod account;
pub mod broker_auth;
pub mod certificate;
mod codec;
pub mod contact_link;
pub mod device;
pub mod device_list;
mod error;
pub mod oneshot;
pub mod rng;
pub mod session;

pub use account::{AccountId, AccountKey, AccountPublicKey};
pub use broker_auth::{BrokerSecret, device_password};
pub use certificate::{AccountSignedCertificate, DeviceCertificate, DeviceDescription};
pub use contact_link::ContactLink;
pub use device::{DeviceId, DeviceKeys, DevicePublicKeys, PRIMARY_INDEX};
pub use device_list::{Accepted, DeviceList, SignedDeviceList, accept};
pub use error::{ContactLinkError, Error, Result};
pub use rng::{CryptoRng, OsRng};
pub use session::{
    InboundSession, MessageKey, OutboundSession, PairwiseSession, RekeyPolicy, SessionHeader,
    SessionId,
};
pub use zeroize::Zeroizing;

#[cfg(test)]
mod testkit;

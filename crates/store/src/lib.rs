//! Tandem's local store: one SQLite file, encrypted at rest with SQLCipher, that holds
//! everything a device keeps: its identity and sessions, known accounts, devices and device
//! lists, contacts, chats and messages (time-ordered, keyset-paged, searchable through FTS5),
//! the outbox, history-sync progress and replay-detection ids. The same store serves the phone
//! and the desktop.
//!
//! - [`Store::open_in_home`] opens `<home>/tandem.db` with its key from the OS keychain (or a
//!   0600 key file where none runs), [`Store::open`] with a key you hold.
//! - Writes happen in closures over one transaction: [`Store::write`] (messages, chats, outbox)
//!   and [`Store::write_durable`] (key material and protocol state, `synchronous=FULL`).
//! - Reads are methods on [`Store`]: [`Store::chats`], [`Store::page`], [`Store::search`]...
//!
//! The store knows nothing of the other Tandem crates: ids are UUIDs or raw bytes and keys are
//! opaque blobs.

mod error;
mod key;
mod messaging;
mod queries;
mod rowid;
mod search;
mod secret;
mod store;
mod types;
mod writer;

pub use error::{ChatCandidate, Error, OpenError, Result};
pub use key::{
    KEY_FILE, KEYCHAIN_SERVICE, KEYCHAIN_TIMEOUT, KEYRING_ENV, KeySource, KeychainUse,
    keychain_user,
};
pub use messaging::{FanoutItem, NewFanout, Reaction};
pub use queries::PREVIEW_CHARS;
pub use secret::{SecretBytes, StoreKey};
pub use store::{DB_FILE, Store, schema_version};
pub use types::{
    Account, BridgeChange, BridgeDesktop, ChatId, ChatKind, ChatSummary, Contact, Counts, Cursor,
    Device, Member, Message, MessageId, MessageKey, MessageKind, MessageStatus, NewChat,
    NewMessage, NewOutboxItem, OutboxId, OutboxItem, Preview, SearchHit, Sender, StoredDeviceList,
    SyncPhase, SyncRole, SyncState,
};
pub use writer::{DurableWriter, Writer};

/// Well-known names of identity values (see [`DurableWriter::put_identity`]).
pub mod identity {
    /// The account's secret identity key.
    pub const ACCOUNT_KEY: &str = "account_key";
    /// This device's secret keys.
    pub const DEVICE_KEYS: &str = "device_keys";
    /// This device's certificate.
    pub const DEVICE_CERTIFICATE: &str = "device_certificate";
    /// "phone" or "desktop".
    pub const ROLE: &str = "role";
    /// "multi-device" or "bridge".
    pub const MODE: &str = "mode";
    /// The broker URL(s).
    pub const BROKER_URL: &str = "broker_url";
    /// The account's display name.
    pub const ACCOUNT_NAME: &str = "account_name";
    /// This device's name.
    pub const DEVICE_NAME: &str = "device_name";
    /// The username this device logs in to the broker with (absent: no login).
    pub const BROKER_USERNAME: &str = "broker_username";
    /// The password that goes with it.
    pub const BROKER_PASSWORD: &str = "broker_password";
    /// The PEM of the certificate authority the broker's TLS certificate chains to.
    pub const BROKER_CA: &str = "broker_ca";
    /// On the primary: the account's broker secret, from which every device's broker
    /// password is derived.
    pub const BROKER_SECRET: &str = "broker_secret";
    /// This device's bridge secret key (X25519, 32 bytes; the Noise static key of the bridge):
    /// the phone's endpoint key, or a bridge-mode desktop's own key.
    pub const BRIDGE_SECRET: &str = "bridge_secret";
    /// On the phone: the bridge URL desktops dial (`ws://host:port`). On a bridge-mode
    /// desktop: the phone's bridge URL.
    pub const BRIDGE_URL: &str = "bridge_url";
    /// On a bridge-mode desktop: the phone's bridge public key (32 bytes).
    pub const BRIDGE_PHONE_KEY: &str = "bridge_phone_key";
    /// On a bridge-mode desktop (which holds no certificate): the account's public key.
    pub const ACCOUNT_PUBLIC_KEY: &str = "account_public_key";
}

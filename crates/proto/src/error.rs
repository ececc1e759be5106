//! The one error type of `tandem-proto`. Every reason an envelope is refused has its own
//! variant, so the engine can log it precisely (and count them) before dropping the envelope.

use tandem_crypto::{AccountId, DeviceId};

use crate::MessageId;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `tandem-proto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than the format needs.
    #[error("envelope too short: {got} bytes, at least {needed} needed")]
    TooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },

    /// The first two bytes are not the envelope magic `TD`.
    #[error("not a Tandem envelope (magic {found:02x?})")]
    BadMagic {
        /// The two bytes found.
        found: [u8; 2],
    },

    /// A format version this build does not read (a newer client sent it).
    #[error("envelope format version {found} is not supported (this build reads 1)")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },

    /// The envelope, or its declared ciphertext, is larger than allowed.
    #[error("envelope too large: {len} bytes, at most {max} allowed")]
    Oversized {
        /// The size given or declared.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// Bytes after the declared ciphertext.
    #[error("{count} bytes after the end of the envelope")]
    TrailingBytes {
        /// How many.
        count: usize,
    },

    /// Kind 0 is reserved and never valid.
    #[error("envelope kind 0 is reserved")]
    ReservedKind,

    /// A flag bit this build does not know is set in the critical range (bits 4-7).
    #[error("unknown critical flags {flags:#04x}")]
    UnknownCriticalFlags {
        /// The unknown critical bits.
        flags: u8,
    },

    /// The message id is not a UUIDv7 or UUIDv8 with the RFC 9562 variant.
    #[error("invalid message id: {reason}")]
    BadMessageId {
        /// Why.
        reason: &'static str,
    },

    /// The ciphertext is shorter than its authentication tag.
    #[error("ciphertext of {len} bytes is shorter than the 16-byte tag")]
    CiphertextTooShort {
        /// The declared length.
        len: usize,
    },

    /// A timestamp outside 0..2^48 ms (UUIDv7 range).
    #[error("timestamp {ms} ms is outside the representable range")]
    TimestampOutOfRange {
        /// The timestamp given.
        ms: i64,
    },

    /// The body opened but does not decode as its kind says.
    #[error("body of kind {kind} is malformed: {reason}")]
    MalformedBody {
        /// The header's kind.
        kind: u8,
        /// The decoder's reason.
        reason: String,
    },

    /// A body too large to seal into one envelope.
    #[error("body of {len} bytes exceeds the limit of {max}")]
    BodyTooLarge {
        /// The encoded body's size.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The envelope is addressed to another device than the local one.
    #[error("envelope for {recipient} arrived at {local}")]
    WrongRecipient {
        /// The header's recipient.
        recipient: DeviceId,
        /// The local device.
        local: DeviceId,
    },

    /// The pairwise state given is not the one with the envelope's sender.
    #[error("envelope from {sender} opened with the session state of {session_remote}")]
    WrongSession {
        /// The header's sender.
        sender: DeviceId,
        /// The remote device of the state given.
        session_remote: DeviceId,
    },

    /// The sender's account is not the account of the device list given (unknown sender).
    #[error("sender {sender} is unknown: the device list given is of account {list_account}")]
    UnknownSender {
        /// The header's sender.
        sender: DeviceId,
        /// The account of the list given.
        list_account: AccountId,
    },

    /// The sender device is not in its account's current device list.
    #[error("sender {device} is not in version {version} of its account's device list")]
    NotInDeviceList {
        /// The sender device.
        device: DeviceId,
        /// The list version consulted.
        version: u64,
    },

    /// The session was set up with another X25519 key than the sender's key in the list.
    #[error("sender {device}: session key differs from its key in the device list")]
    KeyMismatch {
        /// The sender device.
        device: DeviceId,
    },

    /// The envelope does not authenticate: tampered header or body, or a forgery.
    #[error("envelope from {sender} does not authenticate (bad tag)")]
    BadTag {
        /// The claimed sender.
        sender: DeviceId,
    },

    /// The session counter was already consumed (the same envelope again).
    #[error("envelope from {sender} reuses session counter {counter}")]
    CounterReplay {
        /// The sender.
        sender: DeviceId,
        /// The counter.
        counter: u32,
    },

    /// The message id was already received (a duplicate or replay).
    #[error("message {id} was already received")]
    Replay {
        /// The message id.
        id: MessageId,
    },

    /// A session-level failure not covered above (counter too far ahead, bad enc, HPKE...).
    #[error(transparent)]
    Crypto(#[from] tandem_crypto::Error),

    /// A body could not be encoded.
    #[error("cannot encode body: {reason}")]
    Encode {
        /// Why.
        reason: String,
    },
}

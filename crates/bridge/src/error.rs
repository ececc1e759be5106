//! The one error type of `tandem-bridge`. Every reason a handshake, a frame or a message is
//! refused has its own variant, so the driver can log it precisely (and count it) before it
//! closes the WebSocket. No variant carries key material.

use crate::keys::PublicKey;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `tandem-bridge`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A WebSocket message larger than one Noise message; refused before decryption.
    #[error("frame of {len} bytes refused: at most {max} bytes allowed")]
    FrameTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A handshake message shorter than its pattern needs.
    #[error("handshake message {message} too short: {len} bytes, at least {min} needed")]
    HandshakeTooShort {
        /// 1 (desktop → phone) or 2 (phone → desktop).
        message: u8,
        /// Its size.
        len: usize,
        /// The minimum.
        min: usize,
    },

    /// Message 1 does not decrypt with this phone's static key: the desktop expects another
    /// phone key, or the bytes were altered.
    #[error(
        "handshake refused: message 1 is not for this phone's key (the desktop holds another \
         phone key, or the message was altered)"
    )]
    NotForThisPhone,

    /// Message 2 does not decrypt: the responder does not hold the phone key this desktop was
    /// linked with (or the message was altered).
    #[error(
        "handshake refused: the responder did not prove the expected phone key {expected} \
         (another device answered, or the message was altered)"
    )]
    PhoneNotAuthenticated {
        /// The phone key the desktop expected.
        expected: PublicKey,
    },

    /// The desktop's static key is not in the phone's list of authorised desktops.
    #[error("handshake refused: desktop key {key} is not authorised on this phone")]
    UnauthorisedDesktop {
        /// The desktop's key.
        key: PublicKey,
    },

    /// A public key of small order (every exchange with it gives zero), or otherwise unusable.
    #[error("{what} is not a usable X25519 public key (small order)")]
    WeakKey {
        /// Which key.
        what: &'static str,
    },

    /// The two clocks are further apart than the replay window allows.
    #[error(
        "handshake refused: the desktop's clock ({theirs_ms} ms) is {skew_ms} ms away from the \
         phone's ({ours_ms} ms), at most {max_ms} ms allowed"
    )]
    ClockSkew {
        /// The desktop's clock.
        theirs_ms: i64,
        /// The phone's clock.
        ours_ms: i64,
        /// The difference.
        skew_ms: u64,
        /// The window.
        max_ms: i64,
    },

    /// A message 1 whose ephemeral key or connection nonce was already seen in the window.
    #[error("handshake refused: message 1 replayed (its {what} was seen before)")]
    ReplayedHandshake {
        /// "ephemeral key" or "connection nonce".
        what: &'static str,
    },

    /// The replay cache is full of live entries: too many handshakes in one window.
    #[error("handshake refused: {capacity} handshakes already in the replay window, try later")]
    ReplayCacheFull {
        /// The cache's capacity.
        capacity: usize,
    },

    /// No protocol version both sides speak.
    #[error("no common protocol version: the desktop offers {offered:?}, this build speaks 1")]
    NoCommonVersion {
        /// What the desktop offered.
        offered: Vec<u8>,
    },

    /// The phone chose a version the desktop did not offer.
    #[error("the phone chose protocol version {chosen}, which this desktop did not offer")]
    VersionNotOffered {
        /// The version chosen.
        chosen: u8,
    },

    /// A message's version byte names a version this build does not read.
    #[error("{what}: version {found} is not supported (this build reads version 1)")]
    UnsupportedVersion {
        /// What was decoded.
        what: &'static str,
        /// The version found.
        found: u8,
    },

    /// A variant tag this build does not know (a newer peer sent it).
    #[error("{what}: unknown variant ({reason})")]
    UnknownVariant {
        /// What was decoded.
        what: &'static str,
        /// The decoder's reason.
        reason: String,
    },

    /// Bytes that do not decode, or a field outside its limits.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// What was decoded.
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// Bytes after the end of a decoded value.
    #[error("{what}: {count} bytes after the end")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many.
        count: usize,
    },

    /// An application message larger than allowed (before or after reassembly).
    #[error("message of {len} bytes refused: at most {max} bytes allowed")]
    MessageTooLarge {
        /// Its size (or the size reached so far).
        len: usize,
        /// The limit.
        max: usize,
    },

    /// More fragments than a message of the largest size needs.
    #[error("message refused: more than {max} fragments")]
    TooManyFragments {
        /// The limit.
        max: usize,
    },

    /// A transport frame does not decrypt: dropped, reordered, replayed or altered. The
    /// channel is closed.
    #[error(
        "transport frame {index} does not decrypt (dropped, reordered, replayed or altered \
         frame); channel closed"
    )]
    FrameDecrypt {
        /// The frame's position on the channel (0-based).
        index: u64,
    },

    /// A frame arrived after the channel was closed.
    #[error("frame received after the channel was closed")]
    FrameAfterClose,

    /// Something was to be sent on a closed channel.
    #[error("the channel is closed")]
    Closed,

    /// A message that this side never accepts (a desktop receiving a request...).
    #[error("unexpected message: {what}")]
    Unexpected {
        /// What arrived.
        what: &'static str,
    },

    /// An event skipped sequence numbers: the desktop must reconnect with its cursor.
    #[error("event {got} arrived after {last}: events are missing, reconnect to resume")]
    EventGap {
        /// The last event stored.
        last: u64,
        /// The event received.
        got: u64,
    },

    /// The desktop acknowledged an event the phone never sent it.
    #[error("the desktop acknowledged event {acked} but only {sent} were sent")]
    AckBeyondSent {
        /// The acknowledged sequence number.
        acked: u64,
        /// The last one sent on this connection.
        sent: u64,
    },

    /// An event kind that does not go where it was put (an ephemeral one in the log, a
    /// durable one without a sequence number...).
    #[error("event refused: {reason}")]
    WrongEventKind {
        /// Why.
        reason: &'static str,
    },

    /// The event log's storage failed.
    #[error("event log: {reason}")]
    EventLog {
        /// The storage's reason.
        reason: String,
    },

    /// A value could not be encoded.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// A Noise failure not covered above (state misuse, exhausted nonces).
    #[error("noise: {reason}")]
    Noise {
        /// snow's reason.
        reason: String,
    },

    /// A bridge address that is not a `ws://` or `wss://` URL.
    #[error("bridge address {excerpt:?}: {reason}")]
    BadAddress {
        /// The start of what was given.
        excerpt: String,
        /// Why.
        reason: &'static str,
    },
}

impl Error {
    /// A short stable name of the variant, for counters and close reasons.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::FrameTooLarge { .. } => "frame_too_large",
            Error::HandshakeTooShort { .. } => "handshake_too_short",
            Error::NotForThisPhone => "not_for_this_phone",
            Error::PhoneNotAuthenticated { .. } => "phone_not_authenticated",
            Error::UnauthorisedDesktop { .. } => "unauthorised_desktop",
            Error::WeakKey { .. } => "weak_key",
            Error::ClockSkew { .. } => "clock_skew",
            Error::ReplayedHandshake { .. } => "replayed_handshake",
            Error::ReplayCacheFull { .. } => "replay_cache_full",
            Error::NoCommonVersion { .. } => "no_common_version",
            Error::VersionNotOffered { .. } => "version_not_offered",
            Error::UnsupportedVersion { .. } => "unsupported_version",
            Error::UnknownVariant { .. } => "unknown_variant",
            Error::Malformed { .. } => "malformed",
            Error::TrailingBytes { .. } => "trailing_bytes",
            Error::MessageTooLarge { .. } => "message_too_large",
            Error::TooManyFragments { .. } => "too_many_fragments",
            Error::FrameDecrypt { .. } => "frame_decrypt",
            Error::FrameAfterClose => "frame_after_close",
            Error::Closed => "closed",
            Error::Unexpected { .. } => "unexpected",
            Error::EventGap { .. } => "event_gap",
            Error::AckBeyondSent { .. } => "ack_beyond_sent",
            Error::WrongEventKind { .. } => "wrong_event_kind",
            Error::EventLog { .. } => "event_log",
            Error::Encode { .. } => "encode",
            Error::Noise { .. } => "noise",
            Error::BadAddress { .. } => "bad_address",
        }
    }

    pub(crate) fn noise(e: &snow::Error) -> Self {
        Error::Noise {
            reason: e.to_string(),
        }
    }
}

//! `tandem-proto`: Tandem's wire format. Sans-I/O: bytes in, bytes out, `now_ms` as a
//! parameter.
//!
//! What each module owns:
//! - [`header`] owns the fixed 125-byte envelope header, its flags and kinds, and the strict
//!   envelope decoder ([`Envelope::decode`]).
//! - [`body`] owns the message bodies and their postcard encoding.
//! - [`envelope`] owns sealing a body for one device and opening a received envelope.
//! - [`message_id`] owns message ids (UUIDv7, and derived UUIDv8 for imported history).
//! - [`replay`] owns replay detection by message id.
//! - [`link`] owns pairing links (what a desktop's QR code holds).
//! - [`pairing`] owns the pairing state machines of the desktop and the phone.
//! - [`sync`] owns the history-sync messages, chunk digests and the sender's flow control.
//!
//! The byte layout is specified in `docs/envelope.md`.

pub mod body;
pub mod envelope;
mod error;
pub mod header;
pub mod link;
pub mod message_id;
pub mod pairing;
pub mod replay;
pub mod sync;

pub use body::{Body, ChatId, ChatRef, GroupMember, LocalChat, ReceiptKind};
pub use envelope::{Opened, OpenedBody, SealParams, open_envelope, seal_envelope};
pub use error::{Error, Result};
pub use header::{Envelope, EnvelopeHeader, Flags, Kind};
pub use message_id::MessageId;
pub use replay::{MemoryReplayGuard, Replay, ReplayGuard};

#[cfg(test)]
mod testkit;

//! `tandem-bridge`: bridge mode (DESIGN 8), where a desktop holds no session of its own and
//! talks to the phone over a WebSocket. Sans-I/O and deterministic: byte slices in, frames and
//! typed events out, the time (`now_ms`, Unix ms) and the randomness (`&mut impl CryptoRng`)
//! passed in. Each WebSocket binary message is exactly one frame these types take or return;
//! the driver loops (phone server, desktop client) only move frames.
//!
//! What each module owns:
//! - [`keys`] owns the static X25519 keys of the bridge and the bridge address check.
//! - [`noise`] owns the Noise parameters (`Noise_IK_25519_ChaChaPoly_SHA256`, the prologue,
//!   the size limits) and the glue to `snow`.
//! - [`handshake`] owns the handshake payloads ([`Hello`], [`Welcome`]) and the phone's
//!   [`ReplayCache`].
//! - [`channel`] owns transport frames, fragmentation and the Open → Closed state.
//! - [`message`] owns the protocol messages and their one strict decoder.
//! - [`log`] owns catch-up: the phone's [`EventLog`], the desktop's [`EventCursor`], pruning.
//! - [`desktop`] owns the desktop's handshake and session.
//! - [`phone`] owns the phone's endpoint and its sessions.
//!
//! The protocol is specified in `docs/bridge.md`.

pub mod channel;
pub mod desktop;
mod error;
pub mod handshake;
pub mod keys;
pub mod log;
pub mod message;
pub mod noise;
pub mod phone;

pub use channel::ChannelState;
pub use desktop::{DesktopHandshake, DesktopIncoming, DesktopSession};
pub use error::{Error, Result};
pub use handshake::{CatchUp, Hello, ReplayCache, SyncResumeState, Welcome};
pub use keys::{PublicKey, StaticSecret};
pub use log::{EventCursor, EventLog, LoggedEvent, MemoryEventLog, Pruned, Sighting};
pub use message::{
    CloseReason, DeviceChangeKind, Event, EventBody, Failure, FailureKind, Message, Page, Reply,
    Request, RequestBody, Response,
};
pub use phone::{Accepted, PhoneEndpoint, PhoneIncoming, PhoneSession};

#[cfg(test)]
mod testkit;

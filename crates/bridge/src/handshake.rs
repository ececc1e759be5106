//! The handshake payloads and the phone's replay cache.
//!
//! Message 1 (desktop → phone) carries a [`Hello`], encrypted under the Noise IK keys (it is
//! readable only with the phone's static key and was made with the desktop's). Message 2
//! (phone → desktop) carries a [`Welcome`]. Both are a version byte then postcard, decoded
//! strictly.
//!
//! Message 1 of IK can be replayed by anyone who recorded it (its keys do not depend on
//! anything the phone chose). The phone therefore refuses a message 1 whose clock is more than
//! [`REPLAY_WINDOW_MS`] away from its own, and one whose ephemeral key or connection nonce it
//! saw inside that window ([`ReplayCache`]). A replay can still not do anything: the replayer
//! cannot read message 2 or any later frame (they need the desktop's ephemeral and static
//! private keys), and the phone records nothing from a connection before the desktop's first
//! transport message proves it holds those keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tandem_proto::sync::SyncId;

use crate::message::PROTOCOL_VERSION;
use crate::{Error, Result};

/// How far apart the desktop's and the phone's clocks may be, and how long the phone remembers
/// a message 1 (±5 minutes).
pub const REPLAY_WINDOW_MS: i64 = 5 * 60_000;
/// Most message 1 remembered at once: beyond that, handshakes are refused until entries age
/// out of the window.
pub const REPLAY_CACHE_CAPACITY: usize = 4096;
/// Most versions a desktop may offer.
pub const MAX_OFFERED_VERSIONS: usize = 16;

/// Where the desktop's history sync stands, sent in message 1 so the phone resumes it at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResumeState {
    /// The sync.
    pub sync_id: SyncId,
    /// The first chunk the desktop still needs (it holds `0..next`).
    pub next: u32,
}

/// The payload of message 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol versions the desktop speaks (1 to 16 of them).
    pub versions: Vec<u8>,
    /// The desktop's clock (ms since the Unix epoch).
    pub clock_ms: i64,
    /// 16 random bytes naming this connection attempt.
    pub nonce: [u8; 16],
    /// The last event sequence number the desktop stored (0 for none).
    pub cursor: u64,
    /// The desktop's history sync, if one is unfinished.
    pub sync: Option<SyncResumeState>,
}

/// How the phone will bring the desktop up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatchUp {
    /// Events `cursor+1..=head` follow, in order, before live ones.
    Replay,
    /// The events after the desktop's cursor are no longer kept (or the phone's log is behind
    /// the cursor): the desktop must sync history again. Events from `next_seq` on follow.
    Resync {
        /// The first event that will follow.
        next_seq: u64,
    },
}

/// The payload of message 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The version chosen from the desktop's list.
    pub version: u8,
    /// The phone's clock (ms since the Unix epoch).
    pub clock_ms: i64,
    /// The phone's newest event sequence number.
    pub head_seq: u64,
    /// What the desktop gets next.
    pub catch_up: CatchUp,
}

fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    postcard::to_extend(value, vec![PROTOCOL_VERSION]).map_err(|e| Error::Encode {
        what,
        reason: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    crate::message::decode_payload(bytes, what, |_| None)
}

impl Hello {
    /// Version byte then postcard.
    ///
    /// # Errors
    /// [`Error::Encode`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode(self, "handshake hello")
    }

    /// Decodes strictly: version 1, 1 to 16 versions offered, no trailing bytes.
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`], [`Error::Malformed`], [`Error::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let hello: Hello = decode(bytes, "handshake hello")?;
        if hello.versions.is_empty() || hello.versions.len() > MAX_OFFERED_VERSIONS {
            return Err(Error::Malformed {
                what: "handshake hello",
                reason: format!("{} versions offered, 1 to 16 allowed", hello.versions.len()),
            });
        }
        Ok(hello)
    }
}

impl Welcome {
    /// Version byte then postcard.
    ///
    /// # Errors
    /// [`Error::Encode`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode(self, "handshake welcome")
    }

    /// Decodes strictly.
    ///
    /// # Errors
    /// As [`Hello::decode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode(bytes, "handshake welcome")
    }
}

/// The phone's memory of recent message 1s: their ephemeral keys and connection nonces, each
/// kept until its clock leaves the window. In memory, per process: a message 1 older than the
/// window is refused by its clock alone, so a restarted phone is exposed only to replays of the
/// last few minutes, which gain nothing (see the module docs).
#[derive(Debug, Clone)]
pub struct ReplayCache {
    window_ms: i64,
    capacity: usize,
    ephemerals: BTreeMap<[u8; 32], i64>,
    nonces: BTreeMap<[u8; 16], i64>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(REPLAY_WINDOW_MS, REPLAY_CACHE_CAPACITY)
    }
}

impl ReplayCache {
    /// A cache for a window of `window_ms` holding at most `capacity` (at least 1) entries.
    #[must_use]
    pub fn new(window_ms: i64, capacity: usize) -> Self {
        Self {
            window_ms: window_ms.max(0),
            capacity: capacity.max(1),
            ephemerals: BTreeMap::new(),
            nonces: BTreeMap::new(),
        }
    }

    /// The window (ms).
    #[must_use]
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ephemerals.len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ephemerals.is_empty()
    }

    fn forget_expired(&mut self, now_ms: i64) {
        self.ephemerals.retain(|_, expires| *expires >= now_ms);
        self.nonces.retain(|_, expires| *expires >= now_ms);
    }

    /// Refuses an ephemeral key seen inside the window (checked before decrypting).
    ///
    /// # Errors
    /// [`Error::ReplayedHandshake`].
    pub fn check_ephemeral(&self, ephemeral: &[u8; 32], now_ms: i64) -> Result<()> {
        match self.ephemerals.get(ephemeral) {
            Some(expires) if *expires >= now_ms => Err(Error::ReplayedHandshake {
                what: "ephemeral key",
            }),
            _ => Ok(()),
        }
    }

    /// Checks the clock against `now_ms`, refuses a known ephemeral key or nonce, then
    /// remembers both until the clock leaves the window.
    ///
    /// # Errors
    /// [`Error::ClockSkew`], [`Error::ReplayedHandshake`], [`Error::ReplayCacheFull`].
    pub fn check_and_remember(
        &mut self,
        ephemeral: &[u8; 32],
        nonce: &[u8; 16],
        clock_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        let skew = clock_ms.abs_diff(now_ms);
        if skew > self.window_ms.unsigned_abs() {
            return Err(Error::ClockSkew {
                theirs_ms: clock_ms,
                ours_ms: now_ms,
                skew_ms: skew,
                max_ms: self.window_ms,
            });
        }
        self.forget_expired(now_ms);
        self.check_ephemeral(ephemeral, now_ms)?;
        if self.nonces.contains_key(nonce) {
            return Err(Error::ReplayedHandshake {
                what: "connection nonce",
            });
        }
        if self.ephemerals.len() >= self.capacity || self.nonces.len() >= self.capacity {
            return Err(Error::ReplayCacheFull {
                capacity: self.capacity,
            });
        }
        let expires = clock_ms.saturating_add(self.window_ms);
        self.ephemerals.insert(*ephemeral, expires);
        self.nonces.insert(*nonce, expires);
        Ok(())
    }
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;

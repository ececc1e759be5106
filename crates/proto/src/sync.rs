//! History sync (DESIGN 6), sans-I/O: the messages the phone and the new device exchange
//! inside [`crate::Body::HistoryChunk`] bodies, their compressed encoding, the chunk digests and
//! the running digest, and the sender's flow control.
//!
//! # Messages
//!
//! Every [`SyncMessage`] travels as `zstd(postcard(SyncMessage))` inside one sealed
//! `HistoryChunk` envelope. A chunk holds up to [`CHUNK_MESSAGES`] messages (and stays under
//! [`CHUNK_RAW_BUDGET`] bytes before compression, far below the envelope limit), plus the
//! chats they belong to.
//!
//! - `Chunk` (phone → device): sync id, index, total, the chats and messages, their count and
//!   time range, and `digest = SHA-256(postcard(messages))`.
//! - `Ack` (device → phone): the chunk was imported (in one transaction with the progress).
//! - `Resume` (device → phone): "I have chunks `0..next`; send the rest". Sent on every
//!   (re)connection and when chunks stop coming.
//! - `Complete` (phone → device): every chunk was acknowledged; totals and the running digest
//!   over all chunk digests, which the device compares with its own.
//! - `PageRequest` / `Page`: up to 50 older messages of one chat, on demand.
//!
//! The running digest is `d(0) = 0^32`, `d(i+1) = SHA-256(d(i) || index_le32 || digest(i))`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most messages in one chunk.
pub const CHUNK_MESSAGES: usize = 1000;
/// Most bytes of message text (and names) in one chunk before compression.
pub const CHUNK_RAW_BUDGET: usize = 160 * 1024;
/// Largest decompressed sync message accepted (a decompression bomb stops here).
pub const MAX_DECOMPRESSED_LEN: usize = 8 * 1024 * 1024;
/// Messages in one on-demand page.
pub const PAGE_MESSAGES: u16 = 50;
/// zstd level for chunks.
pub const ZSTD_LEVEL: i32 = 3;
/// Chunks the phone sends ahead of the last acknowledgement.
pub const SEND_WINDOW: u32 = 4;

/// A sync id: 16 random bytes.
pub type SyncId = [u8; 16];

/// What a sync will carry, told to the new device in the pairing offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPlanSummary {
    /// The sync's id.
    pub sync_id: SyncId,
    /// Chunks in the plan.
    pub chunks: u32,
    /// Messages in the plan.
    pub messages: u64,
    /// Chats in the plan.
    pub chats: u32,
}

/// A chat as history sync carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedChat {
    /// Chat id.
    pub id: [u8; 16],
    /// "direct", "group"...
    pub kind: String,
    /// Display name.
    pub name: String,
    /// The other account of a direct chat.
    pub peer_account: Option<Vec<u8>>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Muted.
    pub muted: bool,
    /// Pinned.
    pub pinned: bool,
    /// Archived.
    pub archived: bool,
    /// Unread count.
    pub unread: u64,
    /// Members: account (if known) and name.
    pub members: Vec<(Option<Vec<u8>>, String)>,
}

/// A message as history sync carries it: every stored field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedMessage {
    /// Message id.
    pub id: [u8; 16],
    /// Chat id.
    pub chat: [u8; 16],
    /// Sender account, when known.
    pub sender_account: Option<Vec<u8>>,
    /// Sender device index, when known.
    pub sender_device: Option<u32>,
    /// Sender display name.
    pub sender_name: String,
    /// Written by this account.
    pub from_me: bool,
    /// Sender timestamp (ms).
    pub ts: i64,
    /// "text", "media", "system"...
    pub kind: String,
    /// Text.
    pub text: String,
    /// Attached file name.
    pub media_name: Option<String>,
    /// Quoted message.
    pub reply_to: Option<[u8; 16]>,
    /// Last edit (ms).
    pub edited_at: Option<i64>,
    /// Deleted for everyone.
    pub deleted: bool,
    /// Delivery status code (0..=3).
    pub status: u8,
}

impl SyncedMessage {
    /// Bytes this message adds to a chunk before compression (an estimate for planning).
    #[must_use]
    pub fn raw_len(&self) -> usize {
        64 + self.text.len()
            + self.sender_name.len()
            + self.kind.len()
            + self.media_name.as_ref().map_or(0, String::len)
    }
}

/// One chunk of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// The sync.
    pub sync_id: SyncId,
    /// 0-based index.
    pub index: u32,
    /// Chunks in the sync.
    pub total: u32,
    /// The chats of the messages (created or updated before the messages go in).
    pub chats: Vec<SyncedChat>,
    /// The messages.
    pub messages: Vec<SyncedMessage>,
    /// Oldest message time (ms).
    pub oldest_ts: i64,
    /// Newest message time (ms).
    pub newest_ts: i64,
    /// [`digest`] of `messages`.
    pub digest: [u8; 32],
}

impl Chunk {
    /// Builds a chunk, computing its time range and digest.
    #[must_use]
    pub fn new(
        sync_id: SyncId,
        index: u32,
        total: u32,
        chats: Vec<SyncedChat>,
        messages: Vec<SyncedMessage>,
    ) -> Self {
        let oldest_ts = messages.iter().map(|m| m.ts).min().unwrap_or(0);
        let newest_ts = messages.iter().map(|m| m.ts).max().unwrap_or(0);
        let digest = digest(&messages);
        Self {
            sync_id,
            index,
            total,
            chats,
            messages,
            oldest_ts,
            newest_ts,
            digest,
        }
    }

    /// Checks what a receiver must: the digest, the count against the plan, the time range,
    /// and that every message's chat is in the chunk.
    ///
    /// # Errors
    /// A reason naming the first inconsistency.
    pub fn verify(&self) -> Result<(), SyncError> {
        let bad = |reason: String| SyncError::BadChunk {
            index: self.index,
            reason,
        };
        if self.index >= self.total {
            return Err(bad(format!("index beyond the total {}", self.total)));
        }
        if digest(&self.messages) != self.digest {
            return Err(bad("its digest does not match its messages".into()));
        }
        let oldest = self.messages.iter().map(|m| m.ts).min().unwrap_or(0);
        let newest = self.messages.iter().map(|m| m.ts).max().unwrap_or(0);
        if oldest != self.oldest_ts || newest != self.newest_ts {
            return Err(bad("its time range does not match its messages".into()));
        }
        if let Some(m) = self
            .messages
            .iter()
            .find(|m| !self.chats.iter().any(|c| c.id == m.chat))
        {
            return Err(bad(format!(
                "a message's chat {} is not in the chunk",
                hex(&m.chat)
            )));
        }
        if self.messages.iter().any(|m| m.status > 3) {
            return Err(bad("a message has an unknown status".into()));
        }
        Ok(())
    }

    /// Messages in the chunk.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.messages.len() as u64
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every history-sync message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// Phone → device: a chunk.
    Chunk(Box<Chunk>),
    /// Device → phone: chunk `index` is stored.
    Ack {
        /// The sync.
        sync_id: SyncId,
        /// The chunk.
        index: u32,
        /// Its digest, as imported.
        digest: [u8; 32],
        /// Its message count.
        count: u64,
    },
    /// Device → phone: send chunks from `next` on (it holds `0..next`).
    Resume {
        /// The sync.
        sync_id: SyncId,
        /// The first chunk still missing.
        next: u32,
    },
    /// Phone → device: every chunk is acknowledged.
    Complete {
        /// The sync.
        sync_id: SyncId,
        /// Chunks sent.
        chunks: u32,
        /// Messages sent.
        messages: u64,
        /// The running digest over all chunks.
        digest: [u8; 32],
    },
    /// Phone → device: no such sync (it was cancelled or belongs to another device).
    Unknown {
        /// The sync asked for.
        sync_id: SyncId,
    },
    /// Device → phone: older messages of a chat.
    PageRequest {
        /// Matches the answer to the request.
        request_id: u64,
        /// The chat.
        chat: [u8; 16],
        /// Messages strictly older than this (ts, id); `None` for the newest.
        before: Option<(i64, [u8; 16])>,
        /// At most this many (capped at [`PAGE_MESSAGES`]).
        limit: u16,
    },
    /// Phone → device: a page.
    Page {
        /// The request answered.
        request_id: u64,
        /// The chat (with its members), when the phone has it.
        chat: Option<SyncedChat>,
        /// The messages, newest first.
        messages: Vec<SyncedMessage>,
        /// Whether older ones remain.
        more: bool,
    },
}

/// What can go wrong in history sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The bytes are not a sync message.
    #[error("malformed sync message: {0}")]
    Malformed(String),
    /// A chunk is inconsistent.
    #[error("chunk {index} refused: {reason}")]
    BadChunk {
        /// The chunk.
        index: u32,
        /// Why.
        reason: String,
    },
    /// Encoding failed.
    #[error("could not encode a sync message: {0}")]
    Encode(String),
    /// The completed sync does not match what the phone sent.
    #[error("sync verification failed: {0}")]
    Verification(String),
}

impl SyncMessage {
    /// `zstd(postcard(self))`.
    ///
    /// # Errors
    /// [`SyncError::Encode`].
    pub fn encode(&self) -> Result<Vec<u8>, SyncError> {
        let plain = postcard::to_allocvec(self).map_err(|e| SyncError::Encode(e.to_string()))?;
        zstd::bulk::compress(&plain, ZSTD_LEVEL).map_err(|e| SyncError::Encode(e.to_string()))
    }

    /// Decodes strictly: at most [`MAX_DECOMPRESSED_LEN`] bytes once decompressed, no trailing
    /// bytes.
    ///
    /// # Errors
    /// [`SyncError::Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        use std::io::Read as _;
        let decoder = zstd::stream::read::Decoder::new(bytes)
            .map_err(|e| SyncError::Malformed(format!("zstd: {e}")))?;
        let mut plain = Vec::new();
        decoder
            .take(MAX_DECOMPRESSED_LEN as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| SyncError::Malformed(format!("zstd: {e}")))?;
        if plain.len() > MAX_DECOMPRESSED_LEN {
            return Err(SyncError::Malformed(format!(
                "zstd: more than {MAX_DECOMPRESSED_LEN} bytes once decompressed"
            )));
        }
        let (value, rest) = postcard::take_from_bytes::<SyncMessage>(&plain)
            .map_err(|e| SyncError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(SyncError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        Ok(value)
    }
}

/// The digest of a chunk's messages: SHA-256 of their postcard encoding.
#[must_use]
pub fn digest(messages: &[SyncedMessage]) -> [u8; 32] {
    let bytes = postcard::to_allocvec(messages).unwrap_or_default();
    Sha256::digest(bytes).into()
}

/// One step of the running digest.
#[must_use]
pub fn chain(previous: &[u8; 32], index: u32, chunk_digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(index.to_le_bytes());
    h.update(chunk_digest);
    h.finalize().into()
}

/// The running digest before any chunk.
pub const CHAIN_START: [u8; 32] = [0; 32];

/// What the receiving device does with a chunk, given it holds chunks `0..done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkDecision {
    /// The next one: import it, then acknowledge.
    Import,
    /// Already imported (a resend): acknowledge again, import nothing.
    AckAgain,
    /// Beyond a gap (the phone will resend after a `Resume`): drop it.
    Drop,
}

/// Decides for chunk `index` when `0..done` are held.
#[must_use]
pub fn receive_decision(done: u32, index: u32) -> ChunkDecision {
    match index.cmp(&done) {
        std::cmp::Ordering::Equal => ChunkDecision::Import,
        std::cmp::Ordering::Less => ChunkDecision::AckAgain,
        std::cmp::Ordering::Greater => ChunkDecision::Drop,
    }
}

/// The phone's flow control for one sync: at most [`SEND_WINDOW`] chunks beyond the last
/// acknowledgement, acknowledgements taken in order, the running digest kept as they come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderWindow {
    /// Chunks in the sync.
    pub total: u32,
    /// Chunks acknowledged (`0..acked`).
    pub acked: u32,
    /// Messages in acknowledged chunks.
    pub acked_messages: u64,
    /// Running digest over acknowledged chunks.
    pub chain: [u8; 32],
    /// Next chunk to send.
    pub next: u32,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Progress; more to come.
    Progress,
    /// That was the last chunk.
    Complete,
    /// Old news (a duplicate or out of order): nothing changed.
    Stale,
}

impl SenderWindow {
    /// A window that resumes after `acked` acknowledged chunks.
    #[must_use]
    pub fn new(total: u32, acked: u32, acked_messages: u64, chain: [u8; 32]) -> Self {
        Self {
            total,
            acked,
            acked_messages,
            chain,
            next: acked,
        }
    }

    /// The chunks to send now (and marks them sent).
    pub fn take_sendable(&mut self) -> std::ops::Range<u32> {
        let limit = self.acked.saturating_add(SEND_WINDOW).min(self.total);
        let from = self.next.max(self.acked);
        let range = from..limit.max(from);
        self.next = range.end;
        range
    }

    /// Takes an acknowledgement.
    pub fn on_ack(&mut self, index: u32, digest: &[u8; 32], count: u64) -> AckOutcome {
        if index != self.acked || self.acked >= self.total {
            return AckOutcome::Stale;
        }
        self.chain = chain(&self.chain, index, digest);
        self.acked += 1;
        self.acked_messages = self.acked_messages.saturating_add(count);
        if self.acked >= self.total {
            AckOutcome::Complete
        } else {
            AckOutcome::Progress
        }
    }

    /// The device asks to resume. Sending starts again from the last acknowledgement this
    /// side took, not from the device's `next`: if acknowledgements were lost on the way (the
    /// device stopped between its commit and its `Ack`), the resent chunks are acknowledged
    /// again and the running digest stays complete.
    pub fn on_resume(&mut self) {
        self.next = self.acked;
    }

    /// Whether every chunk is acknowledged.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.acked >= self.total
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;

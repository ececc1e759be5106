//! The receiving half of a session, with the bounded window of skipped message keys.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::ratchet::{ChainKey, MessageKeySeed};
use super::{ENC_LEN, SessionHeader, SessionId, setup_receiver};
use crate::{DeviceId, DeviceKeys, DevicePublicKeys, Error, Result};

/// How far ahead of the next expected counter a message may be (keys derived and kept for
/// every position in between).
pub const MAX_SKIP: u32 = 2000;
/// Most skipped message keys one inbound session keeps; the oldest go first.
pub const MAX_SKIPPED_KEYS: usize = 2000;

/// A session for receiving from one remote device. Opening is transactional: a message that
/// does not authenticate changes nothing, so forgeries cannot burn the keys of real messages.
#[derive(Serialize, Deserialize)]
pub struct InboundSession {
    id: SessionId,
    enc: [u8; ENC_LEN],
    local: DeviceId,
    remote: DeviceId,
    remote_x25519: [u8; 32],
    chain: ChainKey,
    next_counter: u32,
    skipped: BTreeMap<u32, MessageKeySeed>,
    created_at_ms: i64,
    last_used_ms: i64,
}

impl InboundSession {
    /// Sets up the receiving side from a message's session header (HPKE Auth: `enc` must have
    /// been made with `remote_keys.x25519`, or the first message will not open).
    pub fn accept(
        local: DeviceId,
        local_keys: &DeviceKeys,
        remote: DeviceId,
        remote_keys: &DevicePublicKeys,
        header: &SessionHeader,
        now_ms: i64,
    ) -> Result<Self> {
        let chain = setup_receiver(&local, local_keys, &remote, remote_keys, header)?;
        Ok(Self {
            id: header.session_id,
            enc: header.enc,
            local,
            remote,
            remote_x25519: remote_keys.x25519,
            chain,
            next_counter: 0,
            skipped: BTreeMap::new(),
            created_at_ms: now_ms,
            last_used_ms: now_ms,
        })
    }

    /// Opens one message. `aad` is the envelope header exactly as received.
    ///
    /// Errors: [`Error::SessionMismatch`] (header of another session), [`Error::Replay`]
    /// (counter already consumed or dropped from the window), [`Error::TooFarAhead`],
    /// [`Error::BadTag`].
    pub fn open(
        &mut self,
        header: &SessionHeader,
        aad: &[u8],
        ciphertext: &[u8],
        now_ms: i64,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if header.session_id != self.id {
            return Err(self.mismatch("another session id"));
        }
        if header.enc != self.enc {
            return Err(self.mismatch("another HPKE enc"));
        }
        let counter = header.counter;
        if counter < self.next_counter {
            let seed = self.skipped.get(&counter).ok_or_else(|| Error::Replay {
                session: self.id.to_string(),
                counter,
            })?;
            let plaintext = seed.expand()?.open(aad, ciphertext)?;
            self.skipped.remove(&counter);
            self.last_used_ms = now_ms;
            return Ok(plaintext);
        }
        let ahead = counter - self.next_counter;
        if ahead > MAX_SKIP {
            return Err(Error::TooFarAhead {
                counter,
                next: self.next_counter,
                max_skip: MAX_SKIP,
            });
        }
        let after = counter
            .checked_add(1)
            .ok_or_else(|| Error::SessionExhausted {
                session: self.id.to_string(),
            })?;
        // Walk a copy of the chain; commit only if the message authenticates.
        let mut chain = self.chain.clone();
        let mut passed = Vec::with_capacity(usize::try_from(ahead).unwrap_or(0));
        for position in self.next_counter..counter {
            let (seed, next) = chain.step();
            passed.push((position, seed));
            chain = next;
        }
        let (seed, next) = chain.step();
        let plaintext = seed.expand()?.open(aad, ciphertext)?;
        self.chain = next;
        self.next_counter = after;
        self.skipped.extend(passed);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_first();
        }
        self.last_used_ms = now_ms;
        Ok(plaintext)
    }

    fn mismatch(&self, reason: &'static str) -> Error {
        Error::SessionMismatch {
            session: self.id.to_string(),
            reason,
        }
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The receiving (local) device.
    pub fn local(&self) -> DeviceId {
        self.local
    }

    /// The sending (remote) device.
    pub fn remote(&self) -> DeviceId {
        self.remote
    }

    /// The remote X25519 key the session was authenticated with.
    pub fn remote_x25519(&self) -> &[u8; 32] {
        &self.remote_x25519
    }

    /// The next counter expected in order.
    pub fn next_counter(&self) -> u32 {
        self.next_counter
    }

    /// How many skipped message keys are kept.
    pub fn skipped_keys(&self) -> usize {
        self.skipped.len()
    }

    /// When the session was set up here (ms since the Unix epoch).
    pub fn created_at_ms(&self) -> i64 {
        self.created_at_ms
    }

    /// When a message last opened in this session (ms since the Unix epoch).
    pub fn last_used_ms(&self) -> i64 {
        self.last_used_ms
    }
}

impl fmt::Debug for InboundSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSession")
            .field("id", &self.id)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("next_counter", &self.next_counter)
            .field("skipped_keys", &self.skipped.len())
            .field("last_used_ms", &self.last_used_ms)
            .finish_non_exhaustive()
    }
}

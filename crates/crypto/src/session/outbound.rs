//! The sending half of a session.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ratchet::{ChainKey, MessageKey};
use super::{ENC_LEN, RekeyPolicy, SessionHeader, SessionId, setup_sender};
use crate::rng::CryptoRng;
use crate::{DeviceId, DeviceKeys, DevicePublicKeys, Error, Result};

/// A session for sending from a local device to one remote device. The chain key is zeroized
/// when it is replaced or dropped; `Debug` prints no secret.
#[derive(Serialize, Deserialize)]
pub struct OutboundSession {
    id: SessionId,
    enc: [u8; ENC_LEN],
    local: DeviceId,
    remote: DeviceId,
    remote_x25519: [u8; 32],
    chain: ChainKey,
    next_counter: u32,
    created_at_ms: i64,
}

impl OutboundSession {
    /// Sets up a new session: HPKE Auth from `local_keys` to `remote_keys.x25519`.
    pub fn new(
        local: DeviceId,
        local_keys: &DeviceKeys,
        remote: DeviceId,
        remote_keys: &DevicePublicKeys,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<Self> {
        let id = SessionId::random(rng);
        let (enc, chain) = setup_sender(&local, local_keys, &remote, remote_keys, &id, rng)?;
        Ok(Self {
            id,
            enc,
            local,
            remote,
            remote_x25519: remote_keys.x25519,
            chain,
            next_counter: 0,
            created_at_ms: now_ms,
        })
    }

    /// Takes the next message position: returns the header to put on the wire and the key that
    /// seals that one message. The chain moves on at once; the old chain key is erased.
    pub fn next_key(&mut self) -> Result<(SessionHeader, MessageKey)> {
        let counter = self.next_counter;
        let following = counter
            .checked_add(1)
            .ok_or_else(|| Error::SessionExhausted {
                session: self.id.to_string(),
            })?;
        let (seed, chain) = self.chain.step();
        self.chain = chain;
        self.next_counter = following;
        let header = SessionHeader {
            session_id: self.id,
            counter,
            enc: self.enc,
        };
        Ok((header, seed.expand()?))
    }

    /// Whether `policy` says this session should be replaced before sealing again.
    pub fn is_due_for_rekey(&self, now_ms: i64, policy: &RekeyPolicy) -> bool {
        self.next_counter >= policy.max_messages
            || now_ms.saturating_sub(self.created_at_ms) >= policy.max_age_ms
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The sending device.
    pub fn local(&self) -> DeviceId {
        self.local
    }

    /// The receiving device.
    pub fn remote(&self) -> DeviceId {
        self.remote
    }

    /// The remote X25519 key the session was set up to.
    pub fn remote_x25519(&self) -> &[u8; 32] {
        &self.remote_x25519
    }

    /// The counter the next message will carry (= messages sealed so far).
    pub fn next_counter(&self) -> u32 {
        self.next_counter
    }

    /// When the session was set up (ms since the Unix epoch).
    pub fn created_at_ms(&self) -> i64 {
        self.created_at_ms
    }
}

impl fmt::Debug for OutboundSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundSession")
            .field("id", &self.id)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("next_counter", &self.next_counter)
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

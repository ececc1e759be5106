//! All session state between one local device and one remote device: the current outbound
//! session and the few most recently used inbound sessions. This is the unit the store keeps
//! (one blob per remote device, encrypted at rest).

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{InboundSession, MAX_SKIPPED_KEYS, OutboundSession, RekeyPolicy, SessionHeader};
use crate::codec;
use crate::rng::CryptoRng;
use crate::{DeviceId, DeviceKeys, DevicePublicKeys, Error, Result};

/// Most inbound sessions kept per remote device (older ones are dropped, least recently used
/// first), so messages of the previous session still open after the sender rekeys.
pub const MAX_INBOUND_SESSIONS: usize = 4;
/// Longest serialized pairwise state accepted.
pub const MAX_PAIRWISE_STATE_LEN: usize = 1 << 20;

const STATE_FORMAT: u8 = 1;
const STATE_WHAT: &str = "pairwise session state";

/// Session state between `local` and `remote`. Serializes to bytes for the store
/// ([`Self::to_bytes`]); secrets zeroize on drop; `Debug` prints no secret.
#[derive(Serialize, Deserialize)]
pub struct PairwiseSession {
    local: DeviceId,
    remote: DeviceId,
    outbound: Option<OutboundSession>,
    inbound: Vec<InboundSession>,
}

impl PairwiseSession {
    /// Empty state between `local` and `remote`.
    pub fn new(local: DeviceId, remote: DeviceId) -> Self {
        Self {
            local,
            remote,
            outbound: None,
            inbound: Vec::new(),
        }
    }

    /// The local device.
    pub fn local(&self) -> DeviceId {
        self.local
    }

    /// The remote device.
    pub fn remote(&self) -> DeviceId {
        self.remote
    }

    /// The outbound session to seal the next message with. Keeps the current one unless it is
    /// due for rekeying under `policy` or was set up to another remote key than `remote_keys`
    /// (the remote was re-linked); otherwise sets up a fresh one, which replaces (and erases)
    /// the old one.
    pub fn outbound(
        &mut self,
        local_keys: &DeviceKeys,
        remote_keys: &DevicePublicKeys,
        now_ms: i64,
        policy: &RekeyPolicy,
        rng: &mut impl CryptoRng,
    ) -> Result<&mut OutboundSession> {
        let session = match self.outbound.take() {
            Some(current)
                if current.remote_x25519() == &remote_keys.x25519
                    && !current.is_due_for_rekey(now_ms, policy) =>
            {
                current
            }
            _ => OutboundSession::new(
                self.local,
                local_keys,
                self.remote,
                remote_keys,
                now_ms,
                rng,
            )?,
        };
        Ok(self.outbound.insert(session))
    }

    /// The current outbound session, if any.
    pub fn current_outbound(&self) -> Option<&OutboundSession> {
        self.outbound.as_ref()
    }

    /// The inbound sessions kept, most recently set up last.
    pub fn inbound_sessions(&self) -> &[InboundSession] {
        &self.inbound
    }

    /// Opens a message from the remote device. `remote_keys` are the remote's keys in the
    /// current device list: a known session set up with another X25519 key is refused
    /// ([`Error::KeyMismatch`]); an unknown session is set up from the header's `enc` (HPKE Auth
    /// against `remote_keys`) and kept only if the message opens.
    pub fn open(
        &mut self,
        local_keys: &DeviceKeys,
        remote_keys: &DevicePublicKeys,
        header: &SessionHeader,
        aad: &[u8],
        ciphertext: &[u8],
        now_ms: i64,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(session) = self
            .inbound
            .iter_mut()
            .find(|s| s.id() == header.session_id)
        {
            if session.remote_x25519() != &remote_keys.x25519 {
                return Err(Error::KeyMismatch {
                    device: self.remote,
                });
            }
            return session.open(header, aad, ciphertext, now_ms);
        }
        let mut fresh = InboundSession::accept(
            self.local,
            local_keys,
            self.remote,
            remote_keys,
            header,
            now_ms,
        )?;
        let plaintext = fresh.open(header, aad, ciphertext, now_ms)?;
        self.inbound.push(fresh);
        while self.inbound.len() > MAX_INBOUND_SESSIONS {
            let oldest = self
                .inbound
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last_used_ms())
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                self.inbound.remove(i);
            }
        }
        Ok(plaintext)
    }

    /// Forgets every session (after the remote was unlinked or re-linked).
    pub fn reset(&mut self) {
        self.outbound = None;
        self.inbound.clear();
    }

    /// Serializes the state for the store (format byte then postcard). Zeroized on drop.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let skipped: usize = self.inbound.iter().map(InboundSession::skipped_keys).sum();
        // Reserve enough up front so growing the buffer leaves no copies of secrets behind.
        let mut out = Zeroizing::new(Vec::with_capacity(
            512 + 256 * self.inbound.len() + 40 * skipped,
        ));
        out.push(STATE_FORMAT);
        postcard::to_extend(self, Sink(&mut out)).map_err(|e| Error::Encode {
            what: STATE_WHAT,
            reason: e.to_string(),
        })?;
        Ok(out)
    }

    /// Restores [`Self::to_bytes`], checking the invariants (bounds, every session between the
    /// same two devices, no session twice).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let state: Self = codec::decode(STATE_WHAT, STATE_FORMAT, MAX_PAIRWISE_STATE_LEN, bytes)?;
        let invalid = |reason: &str| Error::Decode {
            what: STATE_WHAT,
            reason: reason.to_owned(),
        };
        if state.inbound.len() > MAX_INBOUND_SESSIONS {
            return Err(invalid("too many inbound sessions"));
        }
        let pair_ok =
            |local: DeviceId, remote: DeviceId| local == state.local && remote == state.remote;
        if let Some(out) = &state.outbound
            && !pair_ok(out.local(), out.remote())
        {
            return Err(invalid("the outbound session belongs to other devices"));
        }
        for (i, session) in state.inbound.iter().enumerate() {
            if !pair_ok(session.local(), session.remote()) {
                return Err(invalid("an inbound session belongs to other devices"));
            }
            if session.skipped_keys() > MAX_SKIPPED_KEYS {
                return Err(invalid("an inbound session keeps too many skipped keys"));
            }
            if state
                .inbound
                .iter()
                .skip(i + 1)
                .any(|other| other.id() == session.id())
            {
                return Err(invalid("an inbound session appears twice"));
            }
        }
        Ok(state)
    }
}

/// Appends to a buffer the caller owns (and zeroizes), whatever happens during encoding.
struct Sink<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Sink<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl fmt::Debug for PairwiseSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairwiseSession")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("outbound", &self.outbound)
            .field("inbound", &self.inbound)
            .finish()
    }
}

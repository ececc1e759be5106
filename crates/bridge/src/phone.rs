//! The phone's end: one [`PhoneEndpoint`] (the bridge key, the authorised desktops, the replay
//! cache) accepts any number of connections, each a [`PhoneSession`].
//!
//! ```text
//! let accepted = endpoint.accept(&message1, &log, now, rng)?;   // refused: log, close socket
//! let mut session = accepted.session;                          // message 2 is queued
//! session.pump_events(&log, READ_BATCH)?;                      // catch-up, then after every publish
//! // drain session.poll_transmit() to the socket; feed every binary message to session.receive()
//! ```
//!
//! Several desktops connect at once, each with its own session; the driver keys them by
//! [`PhoneSession::desktop`]. When the same desktop connects again, the driver closes the older
//! session with [`CloseReason::Replaced`] once the newer one is confirmed
//! ([`PhoneSession::is_confirmed`]: the desktop's first transport frame arrived, which a replay
//! of message 1 can never produce).

use std::collections::BTreeSet;

use tandem_crypto::CryptoRng;

use crate::channel::{Channel, ChannelState};
use crate::handshake::{CatchUp, Hello, ReplayCache, Welcome};
use crate::keys::{PublicKey, StaticSecret};
use crate::log::{EventLog, Pruned, READ_BATCH, prune};
use crate::message::{
    CloseReason, Event, EventBody, Failure, Message, Reply, Request, Response, SUPPORTED_VERSIONS,
};
use crate::noise::{self, MAX_FRAME_LEN, MIN_MESSAGE1_LEN};
use crate::{Error, Result};

/// The phone's bridge endpoint.
#[derive(Debug)]
pub struct PhoneEndpoint {
    secret: StaticSecret,
    authorised: BTreeSet<PublicKey>,
    replay: ReplayCache,
}

/// A connection the phone accepted: the session (message 2 queued first) and what the desktop
/// said in message 1.
#[derive(Debug)]
pub struct Accepted {
    /// The session.
    pub session: PhoneSession,
    /// Message 1's payload (the desktop's cursor and history-sync state).
    pub hello: Hello,
    /// Message 2's payload, as sent.
    pub welcome: Welcome,
}

impl PhoneEndpoint {
    /// An endpoint with the phone's bridge key, no authorised desktop yet, and the default
    /// replay cache.
    #[must_use]
    pub fn new(secret: StaticSecret) -> Self {
        Self {
            secret,
            authorised: BTreeSet::new(),
            replay: ReplayCache::default(),
        }
    }

    /// Uses another replay cache (a shorter window in tests).
    #[must_use]
    pub fn with_replay_cache(mut self, cache: ReplayCache) -> Self {
        self.replay = cache;
        self
    }

    /// The phone's bridge public key (what the pairing offer carries).
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// Authorises a linked desktop's key.
    ///
    /// # Errors
    /// [`Error::WeakKey`].
    pub fn authorise(&mut self, desktop: PublicKey) -> Result<()> {
        desktop.check("the desktop's bridge key")?;
        self.authorised.insert(desktop);
        Ok(())
    }

    /// Withdraws a desktop's authorisation (unlink); returns whether it was authorised. Its
    /// open sessions are the driver's to close ([`CloseReason::Unlinked`]).
    pub fn revoke(&mut self, desktop: &PublicKey) -> bool {
        self.authorised.remove(desktop)
    }

    /// Whether `desktop` is authorised.
    #[must_use]
    pub fn is_authorised(&self, desktop: &PublicKey) -> bool {
        self.authorised.contains(desktop)
    }

    /// The authorised desktops.
    pub fn authorised(&self) -> impl Iterator<Item = &PublicKey> {
        self.authorised.iter()
    }

    /// Applies the pruning rule ([`prune`]) with this endpoint's authorised desktops.
    ///
    /// # Errors
    /// [`Error::EventLog`].
    pub fn prune(&self, log: &mut impl EventLog, max_kept: u64) -> Result<Pruned> {
        prune(log, self.authorised.iter(), max_kept)
    }

    /// Takes message 1 of a new connection. Checks, in order: the size (before any
    /// decryption), the ephemeral key against the replay cache, that it decrypts with this
    /// phone's key, that the desktop's key is authorised, the payload, the clock window and the
    /// connection nonce, and a common version. Then it answers (message 2, queued in the
    /// session) with the catch-up the log allows. A refusal is logged and leaves no trace but
    /// the nothing-stored refusal itself.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`], [`Error::HandshakeTooShort`], [`Error::ReplayedHandshake`],
    /// [`Error::NotForThisPhone`], [`Error::UnauthorisedDesktop`], [`Error::WeakKey`],
    /// decoding errors, [`Error::ClockSkew`], [`Error::ReplayCacheFull`],
    /// [`Error::NoCommonVersion`], [`Error::EventLog`].
    pub fn accept(
        &mut self,
        message1: &[u8],
        log: &impl EventLog,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<Accepted> {
        let result = self.try_accept(message1, log, now_ms, rng);
        match &result {
            Ok(accepted) => tracing::info!(
                desktop = %accepted.session.desktop,
                cursor = accepted.hello.cursor,
                catch_up = ?accepted.welcome.catch_up,
                "bridge: desktop connected"
            ),
            Err(error) => {
                tracing::warn!(kind = error.kind(), %error, "bridge: handshake refused");
            }
        }
        result
    }

    fn try_accept(
        &mut self,
        message1: &[u8],
        log: &impl EventLog,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<Accepted> {
        if message1.len() > MAX_FRAME_LEN {
            return Err(Error::FrameTooLarge {
                len: message1.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let ephemeral: [u8; 32] = message1
            .get(..32)
            .and_then(|e| e.try_into().ok())
            .filter(|_| message1.len() >= MIN_MESSAGE1_LEN)
            .ok_or(Error::HandshakeTooShort {
                message: 1,
                len: message1.len(),
                min: MIN_MESSAGE1_LEN,
            })?;
        self.replay.check_ephemeral(&ephemeral, now_ms)?;

        let mut state = noise::responder(&self.secret, rng)?;
        let mut payload = vec![0u8; message1.len()];
        let len = state
            .read_message(message1, &mut payload)
            .map_err(|_| Error::NotForThisPhone)?;
        payload.truncate(len);
        let desktop_bytes: [u8; 32] = state
            .get_remote_static()
            .and_then(|k| k.try_into().ok())
            .ok_or(Error::NotForThisPhone)?;
        let desktop = PublicKey::from_bytes(desktop_bytes).map_err(|_| Error::WeakKey {
            what: "the desktop's bridge key",
        })?;
        if !self.authorised.contains(&desktop) {
            return Err(Error::UnauthorisedDesktop { key: desktop });
        }
        let hello = Hello::decode(&payload)?;
        self.replay
            .check_and_remember(&ephemeral, &hello.nonce, hello.clock_ms, now_ms)?;
        let version = SUPPORTED_VERSIONS
            .iter()
            .rev()
            .find(|v| hello.versions.contains(v))
            .copied()
            .ok_or_else(|| Error::NoCommonVersion {
                offered: hello.versions.clone(),
            })?;

        let head = log.head()?;
        let first_kept = log.first_kept()?;
        let catch_up = if hello.cursor > head {
            CatchUp::Resync {
                next_seq: head.saturating_add(1),
            }
        } else if hello.cursor.saturating_add(1) < first_kept {
            CatchUp::Resync {
                next_seq: first_kept,
            }
        } else {
            CatchUp::Replay
        };
        let sent_seq = match catch_up {
            CatchUp::Replay => hello.cursor,
            CatchUp::Resync { next_seq } => next_seq.saturating_sub(1),
        };
        let welcome = Welcome {
            version,
            clock_ms: now_ms,
            head_seq: head,
            catch_up,
        };
        let mut message2 = vec![0u8; MAX_FRAME_LEN];
        let len = state
            .write_message(&welcome.encode()?, &mut message2)
            .map_err(|e| Error::noise(&e))?;
        message2.truncate(len);
        let transport = state.into_transport_mode().map_err(|e| Error::noise(&e))?;
        let mut channel = Channel::new(transport);
        channel.queue_raw(message2);
        Ok(Accepted {
            session: PhoneSession {
                channel,
                desktop,
                sent_seq,
                version,
                confirmed: false,
            },
            hello,
            welcome,
        })
    }
}

/// What a desktop sent, as the phone takes it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneIncoming {
    /// A request: do it and [`PhoneSession::respond`].
    Request(Request),
    /// The desktop stored events up to `up_to` (already recorded in the log).
    Acked {
        /// The highest sequence number stored.
        up_to: u64,
    },
    /// The answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// The desktop closed the channel.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// One desktop's open channel on the phone.
#[derive(Debug)]
pub struct PhoneSession {
    channel: Channel,
    desktop: PublicKey,
    sent_seq: u64,
    version: u8,
    confirmed: bool,
}

impl PhoneSession {
    #[cfg(test)]
    pub(crate) fn channel_mut(&mut self) -> &mut Channel {
        &mut self.channel
    }

    /// The desktop's key.
    #[must_use]
    pub fn desktop(&self) -> &PublicKey {
        &self.desktop
    }

    /// The protocol version in use.
    #[must_use]
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The last logged event queued on this connection.
    #[must_use]
    pub fn sent_seq(&self) -> u64 {
        self.sent_seq
    }

    /// Whether the desktop sent a valid transport frame: it holds the session keys, so this
    /// is a live connection and not a replayed message 1.
    #[must_use]
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// Open or closed (and why).
    #[must_use]
    pub fn state(&self) -> &ChannelState {
        self.channel.state()
    }

    /// Whether the channel is open.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.channel.is_open()
    }

    /// Answers request `id`.
    ///
    /// # Errors
    /// [`Error::Closed`]; [`Error::Malformed`] for a field outside its limits.
    pub fn respond(&mut self, id: u32, result: std::result::Result<Reply, Failure>) -> Result<()> {
        self.channel
            .send(&Message::Response(Response { id, result }))
    }

    /// Queues up to `max` (at most [`READ_BATCH`]) logged events after the last one queued on
    /// this connection; returns how many. Call it after accepting (the catch-up) and after
    /// every publish, until it returns 0: replayed and live events are one ordered stream.
    ///
    /// # Errors
    /// [`Error::Closed`]; [`Error::EventLog`]; [`Error::EventGap`] when the log no longer holds
    /// the next event for this connection (pruned under it): the session is closed with
    /// [`CloseReason::ResumeNeeded`], and the desktop's next connection resyncs.
    pub fn pump_events(&mut self, log: &impl EventLog, max: usize) -> Result<usize> {
        if !self.channel.is_open() {
            return Err(Error::Closed);
        }
        let events = log.read_after(self.sent_seq, max.min(READ_BATCH))?;
        let mut count = 0;
        for event in events {
            let expected = self.sent_seq.saturating_add(1);
            if event.seq != expected {
                self.channel.close(CloseReason::ResumeNeeded);
                return Err(Error::EventGap {
                    last: self.sent_seq,
                    got: event.seq,
                });
            }
            self.channel.send(&Message::Event(Event {
                seq: event.seq,
                body: event.body,
            }))?;
            self.sent_seq = event.seq;
            count += 1;
        }
        Ok(count)
    }

    /// Sends an unlogged event (typing, presence, history sync) now.
    ///
    /// # Errors
    /// [`Error::WrongEventKind`] for a body that must be logged (publish it instead);
    /// [`Error::Closed`]; [`Error::Malformed`].
    pub fn push_unlogged(&mut self, body: EventBody) -> Result<()> {
        if body.is_logged() {
            return Err(Error::WrongEventKind {
                reason: "this event must be published to the log, not pushed",
            });
        }
        self.channel.send(&Message::Event(Event { seq: 0, body }))
    }

    /// Asks the desktop whether it is there.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn ping(&mut self, nonce: u64) -> Result<()> {
        self.channel.send(&Message::Ping { nonce })
    }

    /// Closes the channel, telling the desktop why.
    pub fn close(&mut self, reason: CloseReason) {
        self.channel.close(reason);
    }

    /// The next frame to send (one WebSocket binary message), if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.channel.poll_transmit()
    }

    /// Frames waiting to be sent.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.channel.queued()
    }

    /// Takes one frame from the desktop. `Ok(None)` when it was a fragment or a ping
    /// (answered). Acknowledgements are recorded in `log` here. On an error the channel is
    /// closed (with a `Close` queued that says why, if it was open).
    ///
    /// # Errors
    /// Every [`Error`] of the channel and the message decoder, [`Error::Unexpected`] for a
    /// message a desktop never sends, [`Error::AckBeyondSent`], [`Error::EventLog`].
    pub fn receive(
        &mut self,
        frame: &[u8],
        log: &mut impl EventLog,
    ) -> Result<Option<PhoneIncoming>> {
        let result = self.take(frame, log);
        if let Err(error) = &result {
            tracing::warn!(kind = error.kind(), %error, desktop = %self.desktop, "bridge: channel closed on error");
            if !matches!(error, Error::FrameAfterClose) {
                self.channel.fail(error);
            }
        }
        result
    }

    fn take(&mut self, frame: &[u8], log: &mut impl EventLog) -> Result<Option<PhoneIncoming>> {
        let Some(message) = self.channel.receive(frame)? else {
            self.confirmed = true;
            return Ok(None);
        };
        self.confirmed = true;
        match message {
            Message::Request(request) => Ok(Some(PhoneIncoming::Request(request))),
            Message::Ack { up_to } => {
                if up_to > self.sent_seq {
                    return Err(Error::AckBeyondSent {
                        acked: up_to,
                        sent: self.sent_seq,
                    });
                }
                log.record_ack(&self.desktop, up_to)?;
                Ok(Some(PhoneIncoming::Acked { up_to }))
            }
            Message::Ping { nonce } => {
                self.channel.send(&Message::Pong { nonce })?;
                Ok(None)
            }
            Message::Pong { nonce } => Ok(Some(PhoneIncoming::Pong { nonce })),
            Message::Close { reason } => {
                tracing::info!(desktop = %self.desktop, %reason, "bridge: the desktop closed the channel");
                Ok(Some(PhoneIncoming::Closed { reason }))
            }
            Message::Response(_) => Err(Error::Unexpected {
                what: "a response from a desktop",
            }),
            Message::Event(_) => Err(Error::Unexpected {
                what: "an event from a desktop",
            }),
        }
    }
}

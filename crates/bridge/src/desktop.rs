//! The desktop's end: the initiator of the handshake and its session.
//!
//! ```text
//! let (handshake, message1) = DesktopHandshake::start(&my_key, &phone_key, cursor, sync, now, rng)?;
//! // send message1, read one binary message back
//! let (mut session, welcome) = handshake.finish(&message2)?;
//! // drain session.poll_transmit() to the socket; feed every binary message to session.receive()
//! ```

use snow::HandshakeState;
use tandem_crypto::CryptoRng;

use crate::channel::{Channel, ChannelState};
use crate::handshake::{CatchUp, Hello, SyncResumeState, Welcome};
use crate::keys::{PublicKey, StaticSecret};
use crate::log::{EventCursor, Sighting};
use crate::message::{
    CloseReason, EventBody, Message, Request, RequestBody, Response, SUPPORTED_VERSIONS,
};
use crate::noise::{self, MAX_FRAME_LEN, MIN_MESSAGE2_LEN};
use crate::{Error, Result};

/// A desktop's handshake in progress: message 1 is sent, message 2 is awaited.
pub struct DesktopHandshake {
    state: HandshakeState,
    phone: PublicKey,
    cursor: u64,
}

impl std::fmt::Debug for DesktopHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopHandshake")
            .field("phone", &self.phone)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl DesktopHandshake {
    /// Starts a connection to the phone whose bridge key is `phone` (from the pairing offer):
    /// returns the handshake and message 1 to send. `cursor` is the last event sequence number
    /// the desktop stored (0 for none); `sync` its unfinished history sync, if any.
    ///
    /// # Errors
    /// [`Error::WeakKey`] for an unusable phone key; [`Error::Noise`], [`Error::Encode`].
    pub fn start(
        secret: &StaticSecret,
        phone: &PublicKey,
        cursor: u64,
        sync: Option<SyncResumeState>,
        now_ms: i64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<u8>)> {
        phone.check("the phone's bridge key")?;
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let hello = Hello {
            versions: SUPPORTED_VERSIONS.to_vec(),
            clock_ms: now_ms,
            nonce,
            cursor,
            sync,
        };
        let payload = hello.encode()?;
        let mut state = noise::initiator(secret, phone, rng)?;
        let mut message = vec![0u8; MAX_FRAME_LEN];
        let len = state
            .write_message(&payload, &mut message)
            .map_err(|e| Error::noise(&e))?;
        message.truncate(len);
        Ok((
            Self {
                state,
                phone: *phone,
                cursor,
            },
            message,
        ))
    }

    /// Reads message 2: checks the phone proved its key and chose a version offered, applies
    /// the catch-up it announces, and opens the session. The session's first frame (queued)
    /// acknowledges the cursor, which proves to the phone that this connection is live.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`], [`Error::HandshakeTooShort`],
    /// [`Error::PhoneNotAuthenticated`], [`Error::VersionNotOffered`], decoding errors.
    pub fn finish(mut self, message2: &[u8]) -> Result<(DesktopSession, Welcome)> {
        let result = self.read_welcome(message2);
        if let Err(error) = &result {
            tracing::warn!(kind = error.kind(), %error, phone = %self.phone, "bridge: handshake failed");
        }
        let welcome = result?;
        let transport = self
            .state
            .into_transport_mode()
            .map_err(|e| Error::noise(&e))?;
        let mut cursor = EventCursor::new(self.cursor);
        if let CatchUp::Resync { next_seq } = welcome.catch_up {
            cursor.restart_before(next_seq);
        }
        let mut session = DesktopSession {
            channel: Channel::new(transport),
            phone: self.phone,
            cursor,
            next_id: 1,
            version: welcome.version,
        };
        session.channel.send(&Message::Ack {
            up_to: cursor.last(),
        })?;
        tracing::info!(phone = %self.phone, head = welcome.head_seq, catch_up = ?welcome.catch_up, "bridge: connected");
        Ok((session, welcome))
    }

    fn read_welcome(&mut self, message2: &[u8]) -> Result<Welcome> {
        if message2.len() > MAX_FRAME_LEN {
            return Err(Error::FrameTooLarge {
                len: message2.len(),
                max: MAX_FRAME_LEN,
            });
        }
        if message2.len() < MIN_MESSAGE2_LEN {
            return Err(Error::HandshakeTooShort {
                message: 2,
                len: message2.len(),
                min: MIN_MESSAGE2_LEN,
            });
        }
        let mut payload = vec![0u8; message2.len()];
        let len = self
            .state
            .read_message(message2, &mut payload)
            .map_err(|_| Error::PhoneNotAuthenticated {
                expected: self.phone,
            })?;
        payload.truncate(len);
        if self.state.get_remote_static() != Some(self.phone.as_bytes().as_slice()) {
            return Err(Error::PhoneNotAuthenticated {
                expected: self.phone,
            });
        }
        let welcome = Welcome::decode(&payload)?;
        if !SUPPORTED_VERSIONS.contains(&welcome.version) {
            return Err(Error::VersionNotOffered {
                chosen: welcome.version,
            });
        }
        Ok(welcome)
    }
}

/// What the phone sent, as the desktop takes it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesktopIncoming {
    /// The answer to a request.
    Response(Response),
    /// A new logged event: store it, then [`DesktopSession::ack`] it.
    Event {
        /// Its sequence number (the cursor is now here).
        seq: u64,
        /// What happened.
        body: EventBody,
    },
    /// An event at or below the cursor, sent again after a reconnect: already stored.
    AlreadySeen {
        /// Its sequence number.
        seq: u64,
    },
    /// Typing, presence or a history-sync message (not logged, never replayed).
    Unlogged(EventBody),
    /// The answer to a ping: the phone is reachable.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// The phone closed the channel.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// The desktop's open channel to the phone.
#[derive(Debug)]
pub struct DesktopSession {
    channel: Channel,
    phone: PublicKey,
    cursor: EventCursor,
    next_id: u32,
    version: u8,
}

impl DesktopSession {
    #[cfg(test)]
    pub(crate) fn channel_mut(&mut self) -> &mut Channel {
        &mut self.channel
    }

    /// The phone's key.
    #[must_use]
    pub fn phone(&self) -> &PublicKey {
        &self.phone
    }

    /// The protocol version in use.
    #[must_use]
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The last event sequence number taken in (to store with the events, as the next
    /// connection's cursor).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.cursor.last()
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

    /// Sends a request; returns its id (the response carries it).
    ///
    /// # Errors
    /// [`Error::Closed`]; [`Error::Malformed`] for a field outside its limits.
    pub fn request(&mut self, body: RequestBody) -> Result<u32> {
        let id = self.next_id;
        self.channel.send(&Message::Request(Request { id, body }))?;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        Ok(id)
    }

    /// Tells the phone that events up to `up_to` are stored durably (call after the commit).
    ///
    /// # Errors
    /// [`Error::AckBeyondSent`] beyond the cursor; [`Error::Closed`].
    pub fn ack(&mut self, up_to: u64) -> Result<()> {
        if up_to > self.cursor.last() {
            return Err(Error::AckBeyondSent {
                acked: up_to,
                sent: self.cursor.last(),
            });
        }
        self.channel.send(&Message::Ack { up_to })
    }

    /// Asks the phone whether it is there.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn ping(&mut self, nonce: u64) -> Result<()> {
        self.channel.send(&Message::Ping { nonce })
    }

    /// Closes the channel, telling the phone why.
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

    /// Takes one frame from the phone. `Ok(None)` when it was a fragment or a ping (answered).
    /// On an error the channel is closed (with a `Close` queued that says why, if the channel
    /// was open; [`Error::EventGap`] closes with [`CloseReason::ResumeNeeded`]): drain
    /// [`Self::poll_transmit`], close the socket, and reconnect with [`Self::last_seq`].
    ///
    /// # Errors
    /// Every [`Error`] of the channel and the message decoder, [`Error::Unexpected`] for a
    /// message the phone never sends, [`Error::EventGap`].
    pub fn receive(&mut self, frame: &[u8]) -> Result<Option<DesktopIncoming>> {
        let result = self.take(frame);
        if let Err(error) = &result {
            tracing::warn!(kind = error.kind(), %error, phone = %self.phone, "bridge: channel closed on error");
            match error {
                Error::FrameAfterClose => {}
                Error::EventGap { .. } => self.channel.close(CloseReason::ResumeNeeded),
                other => self.channel.fail(other),
            }
        }
        result
    }

    fn take(&mut self, frame: &[u8]) -> Result<Option<DesktopIncoming>> {
        let Some(message) = self.channel.receive(frame)? else {
            return Ok(None);
        };
        match message {
            Message::Response(response) => Ok(Some(DesktopIncoming::Response(response))),
            Message::Event(event) if event.seq == 0 => {
                Ok(Some(DesktopIncoming::Unlogged(event.body)))
            }
            Message::Event(event) => match self.cursor.observe(event.seq)? {
                Sighting::New => Ok(Some(DesktopIncoming::Event {
                    seq: event.seq,
                    body: event.body,
                })),
                Sighting::AlreadySeen => Ok(Some(DesktopIncoming::AlreadySeen { seq: event.seq })),
            },
            Message::Ping { nonce } => {
                self.channel.send(&Message::Pong { nonce })?;
                Ok(None)
            }
            Message::Pong { nonce } => Ok(Some(DesktopIncoming::Pong { nonce })),
            Message::Close { reason } => {
                tracing::info!(phone = %self.phone, %reason, "bridge: the phone closed the channel");
                Ok(Some(DesktopIncoming::Closed { reason }))
            }
            Message::Request(_) => Err(Error::Unexpected {
                what: "a request from the phone",
            }),
            Message::Ack { .. } => Err(Error::Unexpected {
                what: "an acknowledgement from the phone",
            }),
        }
    }
}

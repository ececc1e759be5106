//! The open channel after the handshake: Noise transport frames, fragmentation, and the
//! Open → Closed state. Shared by both ends; [`crate::desktop`] and [`crate::phone`] put their
//! own rules on top.
//!
//! Every frame (one WebSocket binary message) is one Noise transport message of at most
//! [`MAX_FRAME_LEN`] bytes. Its plaintext is one flag byte, `0` for the last fragment of a
//! message and `1` when more follow, then up to [`MAX_FRAGMENT_LEN`] bytes of the encoded
//! [`Message`]. The receiver appends fragments until the last one and refuses a message that
//! grows beyond [`MAX_MESSAGE_LEN`] or [`MAX_FRAGMENTS`] fragments.
//!
//! Noise counts the frames on each direction (the nonce): a frame that was dropped, reordered,
//! replayed or altered does not decrypt, and the channel closes. WebSocket over TCP delivers in
//! order, so that is an attack or a bug, never a network hiccup.

use std::collections::VecDeque;

use snow::TransportState;

use crate::message::{CloseReason, MAX_MESSAGE_LEN, Message};
use crate::noise::{MAX_FRAME_LEN, TAG_LEN};
use crate::{Error, Result};

/// Most message bytes in one frame: the frame limit less the tag and the flag byte.
pub const MAX_FRAGMENT_LEN: usize = MAX_FRAME_LEN - TAG_LEN - 1;
/// Most fragments of one message: as many as the largest message needs.
pub const MAX_FRAGMENTS: usize = MAX_MESSAGE_LEN.div_ceil(MAX_FRAGMENT_LEN);

const LAST: u8 = 0;
const MORE: u8 = 1;

/// Where a channel stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    /// Frames flow both ways.
    Open,
    /// Ended: by a `Close` sent or received, or by an error. Nothing more is accepted.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

pub(crate) struct Channel {
    transport: TransportState,
    state: ChannelState,
    partial: Vec<u8>,
    fragments: usize,
    frames_in: u64,
    outbox: VecDeque<Vec<u8>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("state", &self.state)
            .field("frames_in", &self.frames_in)
            .field("queued", &self.outbox.len())
            .finish_non_exhaustive()
    }
}

impl Channel {
    pub(crate) fn new(transport: TransportState) -> Self {
        Self {
            transport,
            state: ChannelState::Open,
            partial: Vec::new(),
            fragments: 0,
            frames_in: 0,
            outbox: VecDeque::new(),
        }
    }

    pub(crate) fn state(&self) -> &ChannelState {
        &self.state
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state == ChannelState::Open
    }

    /// Queues a frame already made (message 2 of the handshake).
    pub(crate) fn queue_raw(&mut self, frame: Vec<u8>) {
        self.outbox.push_back(frame);
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    pub(crate) fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// Encodes, fragments and encrypts `message` into the outbox. A `Close` closes the channel.
    pub(crate) fn send(&mut self, message: &Message) -> Result<()> {
        if !self.is_open() {
            return Err(Error::Closed);
        }
        let bytes = message.encode()?;
        let mut chunks = bytes.chunks(MAX_FRAGMENT_LEN).peekable();
        let mut frames = Vec::new();
        let mut plain = Vec::with_capacity(MAX_FRAGMENT_LEN + 1);
        while let Some(chunk) = chunks.next() {
            plain.clear();
            plain.push(if chunks.peek().is_some() { MORE } else { LAST });
            plain.extend_from_slice(chunk);
            let mut frame = vec![0u8; plain.len() + TAG_LEN];
            let len = self
                .transport
                .write_message(&plain, &mut frame)
                .map_err(|e| Error::noise(&e))?;
            frame.truncate(len);
            frames.push(frame);
        }
        self.outbox.extend(frames);
        if let Message::Close { reason } = message {
            self.state = ChannelState::Closed {
                reason: reason.clone(),
            };
        }
        Ok(())
    }

    /// Takes one frame: `Some(message)` when it completes one. A `Close` received closes the
    /// channel. Errors do not close it here: the caller decides with [`Self::fail`].
    pub(crate) fn receive(&mut self, frame: &[u8]) -> Result<Option<Message>> {
        if !self.is_open() {
            return Err(Error::FrameAfterClose);
        }
        if frame.len() > MAX_FRAME_LEN {
            return Err(Error::FrameTooLarge {
                len: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let index = self.frames_in;
        self.frames_in = self.frames_in.saturating_add(1);
        let mut plain = vec![0u8; frame.len()];
        let len = self
            .transport
            .read_message(frame, &mut plain)
            .map_err(|_| Error::FrameDecrypt { index })?;
        plain.truncate(len);
        let (flag, data) = plain.split_first().ok_or(Error::Malformed {
            what: "frame",
            reason: "no fragment flag".into(),
        })?;
        if *flag != LAST && *flag != MORE {
            return Err(Error::Malformed {
                what: "frame",
                reason: format!("fragment flag {flag}"),
            });
        }
        self.fragments = self.fragments.saturating_add(1);
        if self.fragments > MAX_FRAGMENTS {
            return Err(Error::TooManyFragments { max: MAX_FRAGMENTS });
        }
        let total = self.partial.len().saturating_add(data.len());
        if total > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLarge {
                len: total,
                max: MAX_MESSAGE_LEN,
            });
        }
        if *flag == MORE {
            self.partial.extend_from_slice(data);
            return Ok(None);
        }
        let bytes = if self.partial.is_empty() {
            plain.split_off(1)
        } else {
            let mut whole = std::mem::take(&mut self.partial);
            whole.extend_from_slice(data);
            whole
        };
        self.fragments = 0;
        let message = Message::decode(&bytes)?;
        if let Message::Close { reason } = &message {
            self.state = ChannelState::Closed {
                reason: reason.clone(),
            };
        }
        Ok(Some(message))
    }

    /// Ends the channel after `error`: tells the other side why (when the channel was still
    /// open; the sending direction works whatever broke on the receiving one), then closes.
    pub(crate) fn fail(&mut self, error: &Error) {
        if self.is_open() {
            let reason = CloseReason::protocol_error(error);
            if self
                .send(&Message::Close {
                    reason: reason.clone(),
                })
                .is_err()
            {
                self.state = ChannelState::Closed { reason };
            }
        }
        self.partial = Vec::new();
    }

    /// Encrypts any plaintext as one frame (tests forge fragments with it).
    #[cfg(test)]
    pub(crate) fn send_raw_plain(&mut self, plain: &[u8]) -> Result<()> {
        let mut frame = vec![0u8; plain.len() + TAG_LEN];
        let len = self
            .transport
            .write_message(plain, &mut frame)
            .map_err(|e| Error::noise(&e))?;
        frame.truncate(len);
        self.outbox.push_back(frame);
        Ok(())
    }

    /// Closes with `reason`, telling the other side. Closing a closed channel does nothing.
    pub(crate) fn close(&mut self, reason: CloseReason) {
        if self.is_open()
            && self
                .send(&Message::Close {
                    reason: reason.clone(),
                })
                .is_err()
        {
            self.state = ChannelState::Closed { reason };
        }
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;

//! Sealing a body into an envelope for one recipient device, and opening a received envelope
//! with every check the design asks for, each failure with its own error.

use tandem_crypto::{DeviceKeys, DeviceList, OutboundSession, PairwiseSession};

use crate::header::{Envelope, EnvelopeHeader, Flags, TAG_LEN};
use crate::replay::ReplayGuard;
use crate::{Body, Error, Kind, MessageId, Result};

/// The header fields the caller chooses; the rest come from the session and the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealParams {
    /// The message id (the same for every recipient device of one message).
    pub message_id: MessageId,
    /// The sender's timestamp (ms since the Unix epoch, not negative).
    pub timestamp_ms: i64,
    /// Flags.
    pub flags: Flags,
}

/// Seals `body` for the remote device of `session` and returns the envelope bytes (header then
/// ciphertext). Sender and recipient come from the session; the counter advances by one. A body
/// that is too large is refused before the session moves.
pub fn seal_envelope(
    session: &mut OutboundSession,
    params: &SealParams,
    body: &Body,
) -> Result<Vec<u8>> {
    if params.timestamp_ms < 0 {
        return Err(Error::TimestampOutOfRange {
            ms: params.timestamp_ms,
        });
    }
    let plaintext = body.encode()?;
    let ciphertext_len =
        u32::try_from(plaintext.len() + TAG_LEN).map_err(|_| Error::BodyTooLarge {
            len: plaintext.len(),
            max: crate::header::MAX_BODY_LEN,
        })?;
    let (session_header, key) = session.next_key()?;
    let header = EnvelopeHeader {
        kind: body.kind().byte(),
        flags: params.flags,
        message_id: params.message_id,
        sender: session.local(),
        recipient: session.remote(),
        timestamp_ms: params.timestamp_ms,
        session: session_header,
        ciphertext_len,
    };
    let mut out = header.encode();
    let ciphertext = key.seal(&out, &plaintext)?;
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// What an envelope held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenedBody {
    /// A body of a kind this version knows.
    Known(Body),
    /// A kind from a newer version: authenticated, but not understood. Store it as an
    /// "unsupported message" row (with the plaintext, to decode after an upgrade).
    Unsupported {
        /// The kind byte.
        kind: u8,
        /// The opened plaintext.
        plaintext: Vec<u8>,
    },
}

/// An envelope that opened and passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The header (sender, message id, timestamp...).
    pub header: EnvelopeHeader,
    /// The body.
    pub body: OpenedBody,
}

/// Opens a decoded envelope addressed to the local device.
///
/// * `local_keys`: the local device's keys.
/// * `session`: the pairwise state with the envelope's sender (`PairwiseSession::new` if there
///   is none yet). Unchanged unless the envelope authenticates; once it does, its counter is
///   consumed even if a later check (body, message id) refuses it. Persist it after the call.
/// * `sender_list`: the current verified device list of the sender's account.
/// * `replay`: remembers message ids.
///
/// Checks in order, each with its own error: addressed to the local device
/// ([`Error::WrongRecipient`]), state of this sender ([`Error::WrongSession`]), the list is the
/// sender account's ([`Error::UnknownSender`]), the sender device is in it
/// ([`Error::NotInDeviceList`]), its session key matches the list ([`Error::KeyMismatch`]), the
/// body authenticates with the whole header as associated data ([`Error::BadTag`]), the counter
/// is fresh ([`Error::CounterReplay`]), the body decodes ([`Error::MalformedBody`]), and the
/// message id is new ([`Error::Replay`]).
pub fn open_envelope(
    envelope: &Envelope<'_>,
    local_keys: &DeviceKeys,
    session: &mut PairwiseSession,
    sender_list: &DeviceList,
    replay: &mut impl ReplayGuard,
    now_ms: i64,
) -> Result<Opened> {
    let header = *envelope.header();
    let sender = header.sender;
    if header.recipient != session.local() {
        return Err(Error::WrongRecipient {
            recipient: header.recipient,
            local: session.local(),
        });
    }
    if sender != session.remote() {
        return Err(Error::WrongSession {
            sender,
            session_remote: session.remote(),
        });
    }
    if sender.account != sender_list.account_id() {
        return Err(Error::UnknownSender {
            sender,
            list_account: sender_list.account_id(),
        });
    }
    let cert = sender_list
        .device(sender.index)
        .ok_or(Error::NotInDeviceList {
            device: sender,
            version: sender_list.version(),
        })?;
    let plaintext = session
        .open(
            local_keys,
            cert.keys(),
            &header.session,
            envelope.header_bytes(),
            envelope.ciphertext(),
            now_ms,
        )
        .map_err(|e| match e {
            tandem_crypto::Error::BadTag => Error::BadTag { sender },
            tandem_crypto::Error::KeyMismatch { .. } => Error::KeyMismatch { device: sender },
            tandem_crypto::Error::Replay { counter, .. } => {
                Error::CounterReplay { sender, counter }
            }
            other => Error::Crypto(other),
        })?;
    let body = match Kind::from_byte(header.kind) {
        Some(kind) => OpenedBody::Known(Body::decode(kind, &plaintext)?),
        None => OpenedBody::Unsupported {
            kind: header.kind,
            plaintext: plaintext.to_vec(),
        },
    };
    replay
        .check_and_remember(&header.message_id)
        .map_err(|r| Error::Replay { id: r.id })?;
    Ok(Opened { header, body })
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;

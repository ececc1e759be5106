//! The fixed binary envelope header (125 bytes, big-endian) and its strict decoder. The whole
//! header is the AEAD's associated data, so no byte of it can change without the body failing
//! to open. `docs/envelope.md` is the written specification of this layout.

use std::fmt;

use tandem_crypto::session::{ENC_LEN, SESSION_ID_LEN};
use tandem_crypto::{DeviceId, SessionHeader, SessionId};

use crate::{Error, MessageId, Result};

/// The two magic bytes every envelope starts with: ASCII `TD`.
pub const MAGIC: [u8; 2] = *b"TD";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Length of the v1 header (everything before the ciphertext).
pub const HEADER_LEN: usize = 125;
/// Length of the ChaCha20-Poly1305 tag at the end of the ciphertext.
pub const TAG_LEN: usize = 16;
/// Largest envelope accepted or produced (256 KiB), header included.
pub const MAX_ENVELOPE_LEN: usize = 256 * 1024;
/// Largest ciphertext (tag included).
pub const MAX_CIPHERTEXT_LEN: usize = MAX_ENVELOPE_LEN - HEADER_LEN;
/// Largest encoded body that fits one envelope.
pub const MAX_BODY_LEN: usize = MAX_CIPHERTEXT_LEN - TAG_LEN;

/// Header flags (one byte). Bits 0-3 are hints a reader may ignore when it does not know them;
/// bits 4-7 are critical: a reader that does not know a set critical bit refuses the envelope.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// Bit 0: do not notify the user (self-sync copies, edits, history, state changes).
    pub const SILENT: Flags = Flags(0x01);
    /// The critical range: bits 4-7.
    pub const CRITICAL_MASK: u8 = 0xf0;
    /// Critical bits this version knows (none yet).
    pub const KNOWN_CRITICAL: u8 = 0x00;

    /// Flags from raw bits (unknown ignorable bits are kept: they are authenticated).
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    pub const fn with(self, other: Flags) -> Self {
        Self(self.0 | other.0)
    }

    /// Critical bits set that this version does not know.
    pub const fn unknown_critical(self) -> u8 {
        self.0 & Self::CRITICAL_MASK & !Self::KNOWN_CRITICAL
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({:#04x})", self.0)
    }
}

/// The body kinds of format version 1, with their header kind bytes. Kinds 14-255 are
/// unassigned: envelopes carrying them still decode and open (see `OpenedBody::Unsupported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A text message.
    Text = 1,
    /// A text message quoting another.
    Reply = 2,
    /// A reaction to a message (or its removal).
    Reaction = 3,
    /// A new text for an earlier message.
    Edit = 4,
    /// Delete-for-everyone.
    Delete = 5,
    /// Delivered / read receipts.
    Receipt = 6,
    /// Typing indicator (never stored).
    Typing = 7,
    /// A chunk of history sync (opaque here).
    HistoryChunk = 8,
    /// A new signed device list of the sender's account.
    DeviceListNotice = 9,
    /// The primary unlinks a device.
    Unlink = 10,
    /// A contact shared as a contact link.
    ContactCard = 11,
    /// Mute / pin / archive / read marker of a chat (between own devices).
    ChatState = 12,
    /// A group's name and members (a new version of them).
    GroupInfo = 13,
}

impl Kind {
    /// Every kind of version 1.
    pub const ALL: [Kind; 13] = [
        Kind::Text,
        Kind::Reply,
        Kind::Reaction,
        Kind::Edit,
        Kind::Delete,
        Kind::Receipt,
        Kind::Typing,
        Kind::HistoryChunk,
        Kind::DeviceListNotice,
        Kind::Unlink,
        Kind::ContactCard,
        Kind::ChatState,
        Kind::GroupInfo,
    ];

    /// The kind with header byte `byte`, if this version knows it.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.byte() == byte)
    }

    /// The header byte.
    pub const fn byte(self) -> u8 {
        self as u8
    }
}

/// The decoded envelope header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// The body kind byte (may be one this version does not know; see [`Kind::from_byte`]).
    pub kind: u8,
    /// Flags.
    pub flags: Flags,
    /// The message id (UUIDv7, or UUIDv8 for imported history).
    pub message_id: MessageId,
    /// The sending device.
    pub sender: DeviceId,
    /// The receiving device.
    pub recipient: DeviceId,
    /// The sender's timestamp (ms since the Unix epoch, 0..=i64::MAX).
    pub timestamp_ms: i64,
    /// Session id, counter and HPKE enc.
    pub session: SessionHeader,
    /// Length of the ciphertext that follows (tag included).
    pub ciphertext_len: u32,
}

impl EnvelopeHeader {
    /// The kind, if this version knows it.
    pub fn known_kind(&self) -> Option<Kind> {
        Kind::from_byte(self.kind)
    }

    /// The 125 header bytes.
    pub fn encode(&self) -> Vec<u8> {
        let body = usize::try_from(self.ciphertext_len).unwrap_or(0);
        let mut out = Vec::with_capacity(HEADER_LEN.saturating_add(body));
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.push(self.kind);
        out.push(self.flags.bits());
        out.extend_from_slice(self.message_id.as_bytes());
        out.extend_from_slice(&self.sender.to_bytes());
        out.extend_from_slice(&self.recipient.to_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.session.session_id.0);
        out.extend_from_slice(&self.session.counter.to_be_bytes());
        out.extend_from_slice(&self.session.enc);
        out.extend_from_slice(&self.ciphertext_len.to_be_bytes());
        out
    }
}

/// Reads fixed-size fields off the front of a slice.
struct Reader<'a> {
    rest: &'a [u8],
    total: usize,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(Error::TooShort {
            needed: HEADER_LEN,
            got: self.total,
        })?;
        self.rest = rest;
        Ok(*head)
    }

    fn byte(&mut self) -> Result<u8> {
        let [b] = self.take::<1>()?;
        Ok(b)
    }

    fn rest(self) -> &'a [u8] {
        self.rest
    }
}

/// A decoded envelope: the header, the exact header bytes (the AEAD's associated data), and the
/// ciphertext. Borrows the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    header: EnvelopeHeader,
    aad: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Decodes strictly. Refuses, in this order: fewer than 3 bytes ([`Error::TooShort`]), a
    /// wrong magic ([`Error::BadMagic`]), another format version
    /// ([`Error::UnsupportedVersion`]), more than [`MAX_ENVELOPE_LEN`] bytes
    /// ([`Error::Oversized`]), a short header, kind 0, unknown critical flags, a bad message id,
    /// a timestamp above `i64::MAX`, a declared ciphertext that is too long or shorter than the
    /// tag, a truncated ciphertext, and trailing bytes.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        let got = bytes.len();
        let short = |needed| Error::TooShort { needed, got };
        let (magic, rest) = bytes.split_first_chunk::<2>().ok_or(short(3))?;
        let version = *rest.first().ok_or(short(3))?;
        if *magic != MAGIC {
            return Err(Error::BadMagic { found: *magic });
        }
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion { found: version });
        }
        if got > MAX_ENVELOPE_LEN {
            return Err(Error::Oversized {
                len: got,
                max: MAX_ENVELOPE_LEN,
            });
        }
        let (aad, _) = bytes
            .split_at_checked(HEADER_LEN)
            .ok_or(short(HEADER_LEN))?;
        let mut r = Reader {
            rest: bytes,
            total: got,
        };
        let _magic_and_version = r.take::<3>()?;
        let kind = r.byte()?;
        if kind == 0 {
            return Err(Error::ReservedKind);
        }
        let flags = Flags::from_bits(r.byte()?);
        if flags.unknown_critical() != 0 {
            return Err(Error::UnknownCriticalFlags {
                flags: flags.unknown_critical(),
            });
        }
        let message_id = MessageId::from_bytes(r.take::<16>()?)?;
        let sender = DeviceId::from_bytes(&r.take::<20>()?);
        let recipient = DeviceId::from_bytes(&r.take::<20>()?);
        let raw_ts = u64::from_be_bytes(r.take::<8>()?);
        let timestamp_ms =
            i64::try_from(raw_ts).map_err(|_| Error::TimestampOutOfRange { ms: i64::MAX })?;
        let session_id = SessionId(r.take::<SESSION_ID_LEN>()?);
        let counter = u32::from_be_bytes(r.take::<4>()?);
        let enc = r.take::<ENC_LEN>()?;
        let ciphertext_len = u32::from_be_bytes(r.take::<4>()?);
        let declared = usize::try_from(ciphertext_len).unwrap_or(usize::MAX);
        if declared > MAX_CIPHERTEXT_LEN {
            return Err(Error::Oversized {
                len: declared.saturating_add(HEADER_LEN),
                max: MAX_ENVELOPE_LEN,
            });
        }
        if declared < TAG_LEN {
            return Err(Error::CiphertextTooShort { len: declared });
        }
        let (ciphertext, trailing) = r
            .rest()
            .split_at_checked(declared)
            .ok_or(short(HEADER_LEN + declared))?;
        if !trailing.is_empty() {
            return Err(Error::TrailingBytes {
                count: trailing.len(),
            });
        }
        Ok(Self {
            header: EnvelopeHeader {
                kind,
                flags,
                message_id,
                sender,
                recipient,
                timestamp_ms,
                session: SessionHeader {
                    session_id,
                    counter,
                    enc,
                },
                ciphertext_len,
            },
            aad,
            ciphertext,
        })
    }

    /// The header.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// The exact header bytes (the associated data).
    pub fn header_bytes(&self) -> &'a [u8] {
        self.aad
    }

    /// The ciphertext (tag included).
    pub fn ciphertext(&self) -> &'a [u8] {
        self.ciphertext
    }
}

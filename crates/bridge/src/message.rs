//! The bridge protocol messages (inside the Noise transport) and their one strict decoder.
//!
//! A message on the wire is one version byte (the version the handshake chose, `1`) followed by
//! the postcard encoding of [`Message`]. History-sync messages inside requests and events are
//! carried as `zstd(postcard(SyncMessage))` bytes, exactly as multi-device mode carries them in
//! a `HistoryChunk` body, and decoded with [`SyncMessage::decode`] (decompression capped).
//!
//! [`Message::decode`] is the only way in: it refuses an unknown version, an unknown variant,
//! trailing bytes, a message over [`MAX_MESSAGE_LEN`], and any field outside its limits
//! ([`Message::validate`]), each with its own [`Error`] variant.

use serde::{Deserialize, Serialize};
use tandem_crypto::{AccountId, DeviceId};
use tandem_proto::body::{MAX_EMOJI_LEN, MAX_NAME_LEN, MAX_TEXT_LEN};
use tandem_proto::sync::{PAGE_MESSAGES, SyncMessage, SyncedChat, SyncedMessage};
use tandem_proto::{ChatId, MessageId, ReceiptKind};

use crate::{Error, Result};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// The versions this build offers in a handshake, oldest first.
pub const SUPPORTED_VERSIONS: &[u8] = &[PROTOCOL_VERSION];
/// Largest encoded message (after reassembly of its fragments).
pub const MAX_MESSAGE_LEN: usize = 8 * 1024 * 1024;
/// Longest search query, in bytes of UTF-8.
pub const MAX_QUERY_LEN: usize = 1024;
/// Most results one search returns.
pub const MAX_SEARCH_RESULTS: u16 = 200;
/// Most messages in one page of a response.
pub const MAX_PAGE_LEN: usize = MAX_SEARCH_RESULTS as usize;
/// Longest free text of a failure or a close reason, in bytes.
pub const MAX_REASON_LEN: usize = 1024;
/// Longest platform name of a device change, in bytes.
pub const MAX_PLATFORM_LEN: usize = 64;

/// Every message on an open channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Desktop → phone: do something, answer with a [`Response`] of the same id.
    Request(Request),
    /// Phone → desktop: the answer to a request.
    Response(Response),
    /// Phone → desktop: something happened.
    Event(Event),
    /// Desktop → phone: events `1..=up_to` are stored durably; the phone may forget them once
    /// every authorised desktop says so.
    Ack {
        /// The highest sequence number stored.
        up_to: u64,
    },
    /// Either way: are you there? Answered by a [`Message::Pong`] with the same nonce.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
    },
    /// Either way: the answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Either way: the last message of the channel.
    Close {
        /// Why.
        reason: CloseReason,
    },
}

/// A request from the desktop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the desktop, unique on the connection; the response carries it back.
    pub id: u32,
    /// What to do.
    pub body: RequestBody,
}

/// What a desktop can ask the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestBody {
    /// Send a text message. `message` is the new message's id, chosen by the desktop, so that a
    /// request retried after a reconnect is recognised and not sent twice: the phone answers a
    /// known id with the message as stored.
    Send {
        /// The chat.
        chat: ChatId,
        /// The new message's id (UUIDv7).
        message: MessageId,
        /// The text (at most 64 KiB).
        text: String,
        /// The quoted message, if any.
        reply_to: Option<MessageId>,
    },
    /// React to a message; an empty emoji removes this account's reaction.
    React {
        /// The chat.
        chat: ChatId,
        /// The message.
        message: MessageId,
        /// The emoji (at most 64 bytes; empty = remove).
        emoji: String,
    },
    /// Give a message of this account a new text.
    Edit {
        /// The chat.
        chat: ChatId,
        /// The message.
        message: MessageId,
        /// The new text.
        text: String,
    },
    /// Delete a message of this account for everyone.
    Delete {
        /// The chat.
        chat: ChatId,
        /// The message.
        message: MessageId,
    },
    /// Everything in the chat up to and including `up_to` has been read.
    MarkRead {
        /// The chat.
        chat: ChatId,
        /// The newest message read.
        up_to: MessageId,
    },
    /// Older messages of a chat from the phone's history, newest first.
    PageOlder {
        /// The chat.
        chat: ChatId,
        /// Messages strictly older than this `(ts, id)`; `None` for the newest.
        before: Option<(i64, MessageId)>,
        /// At most this many (1..=50).
        limit: u16,
    },
    /// Search the phone's history, newest first.
    Search {
        /// The text searched for (1..=1024 bytes).
        query: String,
        /// Only in this chat, if given.
        chat: Option<ChatId>,
        /// At most this many results (1..=200).
        limit: u16,
    },
    /// The user is typing in a chat (or stopped).
    Typing {
        /// The chat.
        chat: ChatId,
        /// Whether typing is on.
        on: bool,
    },
    /// A history-sync message from the desktop: `Ack` or `Resume` only.
    Sync(#[serde(with = "sync_bytes")] SyncMessage),
}

/// The phone's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u32,
    /// What came of it.
    pub result: std::result::Result<Reply, Failure>,
}

/// What a request that succeeded gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Done; nothing to return (react, edit, delete, mark read, typing, sync).
    Done,
    /// The message as stored (send).
    Message(SyncedMessage),
    /// A page of messages (page older, search).
    Page(Page),
}

/// A page of messages, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// The chats the messages belong to, for those the desktop may not hold yet.
    pub chats: Vec<SyncedChat>,
    /// The messages (at most 200).
    pub messages: Vec<SyncedMessage>,
    /// Whether more remain beyond the last one.
    pub more: bool,
}

/// Why a request failed: a kind the desktop can act on and a message it can show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// For the user (at most 1024 bytes).
    pub message: String,
}

/// The kinds of [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The chat or message is not known to the phone.
    NotFound,
    /// The request is not allowed (editing another sender's message...).
    Invalid,
    /// This phone does not do that.
    Unsupported,
    /// The phone cannot reach its broker now; try again later.
    Unavailable,
    /// Something failed on the phone.
    Internal,
}

/// A pushed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event's place in the phone's log (from 1); 0 for an unlogged event
    /// ([`EventBody::is_logged`] is false).
    pub seq: u64,
    /// What happened.
    pub body: EventBody,
}

/// What the phone tells its desktops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventBody {
    /// A new message (received, or sent from the phone or another desktop).
    Message {
        /// The message as stored.
        message: SyncedMessage,
        /// Its chat, when the chat is new or changed.
        chat: Option<SyncedChat>,
    },
    /// A message got a new text.
    Edited {
        /// The chat.
        chat: ChatId,
        /// The message.
        message: MessageId,
        /// The new text.
        text: String,
        /// When (ms).
        edited_at: i64,
    },
    /// A message was deleted for everyone.
    Deleted {
        /// The chat.
        chat: ChatId,
        /// The message.
        message: MessageId,
    },
    /// A reaction was set (or removed: empty emoji).
    Reaction {
        /// The chat.
        chat: ChatId,
        /// The message.
        message: MessageId,
        /// Who reacted; `None` for this account.
        by: Option<AccountId>,
        /// The emoji (empty = removed).
        emoji: String,
    },
    /// A message was delivered to or read by a recipient.
    Receipt {
        /// The chat.
        chat: ChatId,
        /// The message.
        message: MessageId,
        /// Delivered or read.
        kind: ReceiptKind,
        /// By whom; `None` for this account's own devices.
        by: Option<AccountId>,
    },
    /// This account read a chat up to a message (on the phone or another desktop).
    ChatRead {
        /// The chat.
        chat: ChatId,
        /// The newest message read.
        up_to: MessageId,
    },
    /// A device of this account was linked or unlinked.
    DeviceChange {
        /// The device.
        device: DeviceId,
        /// Its name.
        name: String,
        /// Its platform.
        platform: String,
        /// Linked or unlinked.
        change: DeviceChangeKind,
        /// When (ms).
        at: i64,
    },
    /// Somebody is typing (unlogged).
    Typing {
        /// The chat.
        chat: ChatId,
        /// Who.
        who: AccountId,
        /// Whether typing is on.
        on: bool,
    },
    /// A contact came online or went offline (unlogged).
    Presence {
        /// The contact.
        account: AccountId,
        /// Whether it is online.
        online: bool,
        /// When it was last seen (ms), if known.
        last_seen: Option<i64>,
    },
    /// A history-sync message from the phone (unlogged: history sync resumes by itself):
    /// `Chunk`, `Complete`, `Unknown` or `Page`.
    Sync(#[serde(with = "sync_bytes")] SyncMessage),
}

/// Linked or unlinked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChangeKind {
    /// A device joined the account.
    Linked,
    /// A device left the account.
    Unlinked,
}

/// Why a channel was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// The user or the app ended it.
    Normal,
    /// The phone's bridge is stopping.
    ShuttingDown,
    /// A newer connection of the same desktop took over.
    Replaced,
    /// The desktop was unlinked (its key is no longer authorised).
    Unlinked,
    /// The desktop saw a gap in the events: it reconnects with its cursor.
    ResumeNeeded,
    /// The other side broke the protocol.
    ProtocolError {
        /// [`Error::kind`] of the error.
        kind: String,
        /// The error's message (at most 1024 bytes).
        detail: String,
    },
}

impl CloseReason {
    /// The close reason for a protocol error (text cut to the limit).
    #[must_use]
    pub fn protocol_error(error: &Error) -> Self {
        CloseReason::ProtocolError {
            kind: error.kind().to_owned(),
            detail: truncate(&error.to_string(), MAX_REASON_LEN),
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Normal => f.write_str("closed"),
            CloseReason::ShuttingDown => f.write_str("the phone's bridge is stopping"),
            CloseReason::Replaced => f.write_str("a newer connection of this desktop took over"),
            CloseReason::Unlinked => f.write_str("this desktop was unlinked"),
            CloseReason::ResumeNeeded => f.write_str("events were missed; reconnecting"),
            CloseReason::ProtocolError { kind, detail } => {
                write!(f, "protocol error ({kind}): {detail}")
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    text.get(..end).unwrap_or_default().to_owned()
}

impl EventBody {
    /// Whether the event goes into the phone's log and gets a sequence number. Typing,
    /// presence and history-sync messages do not: they are sent once, to connected desktops.
    #[must_use]
    pub fn is_logged(&self) -> bool {
        !matches!(
            self,
            EventBody::Typing { .. } | EventBody::Presence { .. } | EventBody::Sync(_)
        )
    }

    /// Encodes the body alone (for an event log's storage): the version byte, then postcard.
    ///
    /// # Errors
    /// [`Error::Encode`], or [`Error::Malformed`] for a field outside its limits.
    pub fn encode(&self) -> Result<Vec<u8>> {
        validate_event_body(self)?;
        encode_versioned(self, "event body")
    }

    /// Decodes [`Self::encode`] strictly.
    ///
    /// # Errors
    /// As [`Message::decode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let body: EventBody = decode_versioned(bytes, "event body", Shape::EventBody)?;
        validate_event_body(&body)?;
        Ok(body)
    }
}

impl Message {
    /// A short name of the variant, for logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Message::Request(_) => "request",
            Message::Response(_) => "response",
            Message::Event(_) => "event",
            Message::Ack { .. } => "ack",
            Message::Ping { .. } => "ping",
            Message::Pong { .. } => "pong",
            Message::Close { .. } => "close",
        }
    }

    /// Checks every field against its limit (what [`Message::decode`] enforces on arrival and
    /// [`Message::encode`] before sending).
    ///
    /// # Errors
    /// [`Error::Malformed`] naming the field.
    pub fn validate(&self) -> Result<()> {
        match self {
            Message::Request(request) => validate_request(&request.body),
            Message::Response(response) => match &response.result {
                Ok(Reply::Done) => Ok(()),
                Ok(Reply::Message(message)) => check_message(message),
                Ok(Reply::Page(page)) => {
                    if page.messages.len() > MAX_PAGE_LEN {
                        return Err(bad(format!(
                            "a page holds {} messages, at most {MAX_PAGE_LEN}",
                            page.messages.len()
                        )));
                    }
                    if page.chats.len() > MAX_PAGE_LEN {
                        return Err(bad("a page holds more chats than messages allow".into()));
                    }
                    page.messages.iter().try_for_each(check_message)?;
                    page.chats.iter().try_for_each(check_chat)
                }
                Err(failure) => check_len("failure message", &failure.message, MAX_REASON_LEN),
            },
            Message::Event(event) => {
                validate_event_body(&event.body)?;
                match (event.body.is_logged(), event.seq) {
                    (true, 0) => Err(bad("a logged event has sequence number 0".into())),
                    (false, seq) if seq != 0 => Err(bad(format!(
                        "an unlogged event carries sequence number {seq}"
                    ))),
                    _ => Ok(()),
                }
            }
            Message::Close {
                reason: CloseReason::ProtocolError { kind, detail },
            } => {
                check_len("close kind", kind, 64)?;
                check_len("close detail", detail, MAX_REASON_LEN)
            }
            Message::Ack { .. }
            | Message::Ping { .. }
            | Message::Pong { .. }
            | Message::Close { .. } => Ok(()),
        }
    }

    /// The bytes on the channel: the version byte, then postcard. Checks the limits first.
    ///
    /// # Errors
    /// [`Error::Malformed`] for a field outside its limits, [`Error::MessageTooLarge`],
    /// [`Error::Encode`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        encode_versioned(self, "message")
    }

    /// Decodes strictly, in this order: empty or larger than [`MAX_MESSAGE_LEN`]; a version
    /// other than 1 ([`Error::UnsupportedVersion`]); an unknown variant
    /// ([`Error::UnknownVariant`]); other malformed bytes ([`Error::Malformed`]); bytes after
    /// the end ([`Error::TrailingBytes`]); a field outside its limits ([`Error::Malformed`]).
    ///
    /// # Errors
    /// As above. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let message: Message = decode_versioned(bytes, "message", Shape::Message)?;
        message.validate()?;
        Ok(message)
    }
}

fn encode_versioned<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    let out = postcard::to_extend(value, vec![PROTOCOL_VERSION]).map_err(|e| Error::Encode {
        what,
        reason: e.to_string(),
    })?;
    if out.len() > MAX_MESSAGE_LEN {
        return Err(Error::MessageTooLarge {
            len: out.len(),
            max: MAX_MESSAGE_LEN,
        });
    }
    Ok(out)
}

fn decode_versioned<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    shape: Shape,
) -> Result<T> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(Error::MessageTooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE_LEN,
        });
    }
    decode_payload(bytes, what, |rest| unknown_variant(rest, shape))
}

/// The strict decoding every bridge payload goes through: the version byte, then exactly one
/// postcard value and nothing after it. When postcard fails, `unknown` may name an enum variant
/// of a newer peer in the payload (an [`Error::UnknownVariant`] instead of
/// [`Error::Malformed`]).
pub(crate) fn decode_payload<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    unknown: impl FnOnce(&[u8]) -> Option<String>,
) -> Result<T> {
    let (version, rest) = bytes.split_first().ok_or(Error::Malformed {
        what,
        reason: "empty".into(),
    })?;
    if *version != PROTOCOL_VERSION {
        return Err(Error::UnsupportedVersion {
            what,
            found: *version,
        });
    }
    let (value, trailing) =
        postcard::take_from_bytes::<T>(rest).map_err(|e| match unknown(rest) {
            Some(reason) => Error::UnknownVariant { what, reason },
            None => Error::Malformed {
                what,
                reason: e.to_string(),
            },
        })?;
    if !trailing.is_empty() {
        return Err(Error::TrailingBytes {
            what,
            count: trailing.len(),
        });
    }
    Ok(value)
}

/// Variants of each enum a newer peer may extend (checked against the encoder in the tests).
pub(crate) const MESSAGE_VARIANTS: u64 = 7;
pub(crate) const REQUEST_VARIANTS: u64 = 9;
pub(crate) const REPLY_VARIANTS: u64 = 3;
pub(crate) const FAILURE_VARIANTS: u64 = 5;
pub(crate) const EVENT_VARIANTS: u64 = 10;
pub(crate) const CLOSE_VARIANTS: u64 = 6;

/// Where the decoder starts: a whole message or an event body alone.
#[derive(Clone, Copy)]
enum Shape {
    Message,
    EventBody,
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let (byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// After postcard refused the bytes: walks the variant tags that lead to an extensible enum
/// and says which tag is beyond what this build knows, if one is (postcard itself reports an
/// unknown variant of a derived enum as a generic error).
fn unknown_variant(bytes: &[u8], shape: Shape) -> Option<String> {
    let mut rest = bytes;
    let beyond = |what: &str, tag: u64, known: u64| {
        (tag >= known).then(|| format!("{what} variant {tag}, this build knows 0..{known}"))
    };
    let event_tag = |rest: &mut &[u8]| {
        let tag = take_varint(rest)?;
        beyond("event", tag, EVENT_VARIANTS)
    };
    if let Shape::EventBody = shape {
        return event_tag(&mut rest);
    }
    let tag = take_varint(&mut rest)?;
    if let Some(reason) = beyond("message", tag, MESSAGE_VARIANTS) {
        return Some(reason);
    }
    match tag {
        0 => {
            take_varint(&mut rest)?;
            beyond("request", take_varint(&mut rest)?, REQUEST_VARIANTS)
        }
        1 => {
            take_varint(&mut rest)?;
            match take_varint(&mut rest)? {
                0 => beyond("reply", take_varint(&mut rest)?, REPLY_VARIANTS),
                1 => beyond("failure kind", take_varint(&mut rest)?, FAILURE_VARIANTS),
                _ => None,
            }
        }
        2 => {
            take_varint(&mut rest)?;
            event_tag(&mut rest)
        }
        6 => beyond("close reason", take_varint(&mut rest)?, CLOSE_VARIANTS),
        _ => None,
    }
}

fn bad(reason: String) -> Error {
    Error::Malformed {
        what: "message",
        reason,
    }
}

fn check_len(field: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(bad(format!(
            "{field} is {} bytes long, at most {max} allowed",
            text.len()
        )));
    }
    Ok(())
}

fn check_message(message: &SyncedMessage) -> Result<()> {
    check_len("message text", &message.text, MAX_TEXT_LEN)?;
    check_len("sender name", &message.sender_name, MAX_NAME_LEN)?;
    check_len("message kind", &message.kind, 32)?;
    if let Some(name) = &message.media_name {
        check_len("media name", name, MAX_NAME_LEN * 2)?;
    }
    if message.status > 3 {
        return Err(bad(format!("unknown message status {}", message.status)));
    }
    Ok(())
}

fn check_chat(chat: &SyncedChat) -> Result<()> {
    check_len("chat name", &chat.name, MAX_NAME_LEN)?;
    check_len("chat kind", &chat.kind, 32)?;
    if chat.members.len() > tandem_proto::body::MAX_GROUP_MEMBERS {
        return Err(bad(format!("a chat lists {} members", chat.members.len())));
    }
    chat.members
        .iter()
        .try_for_each(|(_, name)| check_len("member name", name, MAX_NAME_LEN))
}

fn validate_request(body: &RequestBody) -> Result<()> {
    match body {
        RequestBody::Send { text, .. } | RequestBody::Edit { text, .. } => {
            check_len("text", text, MAX_TEXT_LEN)
        }
        RequestBody::React { emoji, .. } => check_len("emoji", emoji, MAX_EMOJI_LEN),
        RequestBody::PageOlder { limit, .. } => {
            if (1..=PAGE_MESSAGES).contains(limit) {
                Ok(())
            } else {
                Err(bad(format!(
                    "a page asks for {limit} messages, 1 to {PAGE_MESSAGES} allowed"
                )))
            }
        }
        RequestBody::Search { query, limit, .. } => {
            if query.trim().is_empty() {
                return Err(bad("the search query is empty".into()));
            }
            check_len("search query", query, MAX_QUERY_LEN)?;
            if (1..=MAX_SEARCH_RESULTS).contains(limit) {
                Ok(())
            } else {
                Err(bad(format!(
                    "a search asks for {limit} results, 1 to {MAX_SEARCH_RESULTS} allowed"
                )))
            }
        }
        RequestBody::Sync(sync) => match sync {
            SyncMessage::Ack { .. } | SyncMessage::Resume { .. } => Ok(()),
            _ => Err(bad("a desktop's sync request is an Ack or a Resume".into())),
        },
        RequestBody::Delete { .. } | RequestBody::MarkRead { .. } | RequestBody::Typing { .. } => {
            Ok(())
        }
    }
}

fn validate_event_body(body: &EventBody) -> Result<()> {
    match body {
        EventBody::Message { message, chat } => {
            check_message(message)?;
            if let Some(chat) = chat {
                check_chat(chat)?;
                if chat.id != message.chat {
                    return Err(bad("a message event carries another chat".into()));
                }
            }
            Ok(())
        }
        EventBody::Edited { text, .. } => check_len("text", text, MAX_TEXT_LEN),
        EventBody::Reaction { emoji, .. } => check_len("emoji", emoji, MAX_EMOJI_LEN),
        EventBody::DeviceChange { name, platform, .. } => {
            check_len("device name", name, MAX_NAME_LEN)?;
            check_len("device platform", platform, MAX_PLATFORM_LEN)
        }
        EventBody::Sync(sync) => match sync {
            SyncMessage::Chunk(chunk) => chunk.verify().map_err(|e| bad(e.to_string())),
            SyncMessage::Page { messages, chat, .. } => {
                if messages.len() > MAX_PAGE_LEN {
                    return Err(bad("a sync page holds too many messages".into()));
                }
                messages.iter().try_for_each(check_message)?;
                chat.as_ref().map_or(Ok(()), check_chat)
            }
            SyncMessage::Complete { .. } | SyncMessage::Unknown { .. } => Ok(()),
            SyncMessage::Ack { .. }
            | SyncMessage::Resume { .. }
            | SyncMessage::PageRequest { .. } => Err(bad(
                "a phone's sync event is a Chunk, Complete, Unknown or Page".into(),
            )),
        },
        EventBody::Deleted { .. }
        | EventBody::Receipt { .. }
        | EventBody::ChatRead { .. }
        | EventBody::Typing { .. }
        | EventBody::Presence { .. } => Ok(()),
    }
}

/// Carries a [`SyncMessage`] as `zstd(postcard(..))` bytes, decoded with its own strict decoder.
mod sync_bytes {
    use serde::de::{Error as _, Visitor};
    use serde::ser::Error as _;
    use serde::{Deserializer, Serializer};
    use tandem_proto::sync::SyncMessage;

    pub(super) fn serialize<S: Serializer>(
        message: &SyncMessage,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let bytes = message.encode().map_err(S::Error::custom)?;
        serializer.serialize_bytes(&bytes)
    }

    struct BytesVisitor;

    impl Visitor<'_> for BytesVisitor {
        type Value = SyncMessage;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the bytes of a history-sync message")
        }

        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<SyncMessage, E> {
            SyncMessage::decode(bytes).map_err(E::custom)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SyncMessage, D::Error> {
        deserializer
            .deserialize_bytes(BytesVisitor)
            .map_err(|e: D::Error| D::Error::custom(format!("history sync: {e}")))
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;

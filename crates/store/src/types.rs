//! The values the store takes and returns: ids, chats, members, messages, outbox items, sync
//! progress, devices. Each knows how it is written to and read from SQLite.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The 16 bytes of the id.
            #[must_use]
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<[u8; 16]> for $name {
            fn from(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
        }

        /// Printed as 32 lowercase hex digits.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.simple(), f)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Blob(self.0.as_bytes())))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let blob = value.as_blob()?;
                let bytes: [u8; 16] = blob.try_into().map_err(|_| FromSqlError::InvalidBlobSize {
                    expected_size: 16,
                    blob_size: blob.len(),
                })?;
                Ok(Self(Uuid::from_bytes(bytes)))
            }
        }
    };
}

uuid_id!(
    /// A chat's id (16 bytes).
    ChatId
);
uuid_id!(
    /// A message's (or envelope's) id (16 bytes, time-ordered in practice: UUID v7 layout).
    MessageId
);

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A value written by a newer build that this one does not know; kept as is.
            Other(String),
        }

        impl $name {
            /// The text stored in the database.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(s) => s,
                }
            }

            /// Parses the stored text; unknown values become [`Self::Other`].
            #[must_use]
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value.as_str().map(Self::parse)
            }
        }
    };
}

text_enum!(
    /// What a chat is.
    ChatKind {
        /// A one-to-one chat with another account.
        Direct = "direct",
        /// A group chat.
        Group = "group",
    }
);

text_enum!(
    /// What a message is. New kinds may appear; older builds read them as [`MessageKind::Other`].
    MessageKind {
        /// A text message.
        Text = "text",
        /// A system line ("Alice added Bob", "Messages are end-to-end encrypted").
        System = "system",
        /// A media message (its file name in `media_name`, a caption in `text`).
        Media = "media",
        /// A message that was deleted before the store saw it.
        Deleted = "deleted",
        /// A message of a kind this build's protocol does not understand.
        Unsupported = "unsupported",
    }
);

/// Delivery state of a message; it only ever moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageStatus {
    /// Written locally, not yet handed to the broker.
    Sending,
    /// Accepted by the broker (or received, for incoming messages).
    Sent,
    /// Stored by a recipient device.
    Delivered,
    /// Shown to a recipient.
    Read,
}

impl MessageStatus {
    /// The number stored in the database (0..=3, in order).
    #[must_use]
    pub fn code(self) -> i64 {
        match self {
            Self::Sending => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
        }
    }

    /// The status for a stored number.
    #[must_use]
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Sending),
            1 => Some(Self::Sent),
            2 => Some(Self::Delivered),
            3 => Some(Self::Read),
            _ => None,
        }
    }

    /// The lowercase name ("sending", "sent", "delivered", "read").
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for MessageStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.code()))
    }
}

impl FromSql for MessageStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let code = value.as_i64()?;
        Self::from_code(code).ok_or(FromSqlError::OutOfRange(code))
    }
}

/// Who wrote a message. Messages from Tandem devices carry the account and device; imported
/// messages often only have the author's display name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Sender {
    /// The author's account id, when known.
    pub account: Option<Vec<u8>>,
    /// The device index within that account, when known.
    pub device: Option<u32>,
    /// The author's display name as the message carried it ("" when unknown).
    pub name: String,
}

impl Sender {
    /// A sender known only by display name (imports).
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            account: None,
            device: None,
            name: name.into(),
        }
    }

    /// A sender known by account and device.
    #[must_use]
    pub fn device(account: Vec<u8>, device: u32, name: impl Into<String>) -> Self {
        Self {
            account: Some(account),
            device: Some(device),
            name: name.into(),
        }
    }
}

/// A member of a chat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Member {
    /// The member's account id, when known (None for imported authors).
    pub account: Option<Vec<u8>>,
    /// The member's display name.
    pub name: String,
}

/// A chat to create or update (see [`crate::Writer::upsert_chat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChat {
    /// The chat's id.
    pub id: ChatId,
    /// Direct or group.
    pub kind: ChatKind,
    /// Display name.
    pub name: String,
    /// The other account of a direct chat.
    pub peer_account: Option<Vec<u8>>,
    /// Creation time (ms since the Unix epoch).
    pub created_at: i64,
    /// All members, in display order (replaces the stored list).
    pub members: Vec<Member>,
}

/// A message to insert. Messages are unique by id: inserting an id twice is a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The message's id.
    pub id: MessageId,
    /// The chat it belongs to (must exist).
    pub chat: ChatId,
    /// Who wrote it.
    pub sender: Sender,
    /// Whether this account wrote it (from any of its devices).
    pub from_me: bool,
    /// Sender timestamp (ms since the Unix epoch); chats are ordered by (ts, id).
    pub ts: i64,
    /// What it is.
    pub kind: MessageKind,
    /// Its text, or a media caption ("" when none).
    pub text: String,
    /// The attached file's name, for media.
    pub media_name: Option<String>,
    /// The message it replies to.
    pub reply_to: Option<MessageId>,
    /// When it was last edited (ms), if ever.
    pub edited_at: Option<i64>,
    /// Whether it was deleted for everyone.
    pub deleted: bool,
    /// Delivery state.
    pub status: MessageStatus,
}

impl NewMessage {
    /// A plain text message with status [`MessageStatus::Sent`] and nothing else set.
    #[must_use]
    pub fn text(
        id: MessageId,
        chat: ChatId,
        sender: Sender,
        ts: i64,
        text: impl Into<String>,
    ) -> Self {
        Self {
            id,
            chat,
            sender,
            from_me: false,
            ts,
            kind: MessageKind::Text,
            text: text.into(),
            media_name: None,
            reply_to: None,
            edited_at: None,
            deleted: false,
            status: MessageStatus::Sent,
        }
    }
}

/// A stored message, as the CLI and the app show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The chat it belongs to.
    pub chat: ChatId,
    /// Who wrote it.
    pub sender: Sender,
    /// Whether this account wrote it.
    pub from_me: bool,
    /// Sender timestamp (ms since the Unix epoch).
    pub ts: i64,
    /// What it is.
    pub kind: MessageKind,
    /// Its text ("" once deleted).
    pub text: String,
    /// The attached file's name, for media.
    pub media_name: Option<String>,
    /// The message it replies to.
    pub reply_to: Option<MessageId>,
    /// When it was last edited (ms), if ever.
    pub edited_at: Option<i64>,
    /// Whether it was deleted for everyone.
    pub deleted: bool,
    /// Delivery state.
    pub status: MessageStatus,
}

impl Message {
    /// The cursor for the page of messages older than this one.
    #[must_use]
    pub fn before(&self) -> Cursor {
        Cursor::Before {
            ts: self.ts,
            id: self.id,
        }
    }

    /// The cursor for the page of messages newer than this one.
    #[must_use]
    pub fn after(&self) -> Cursor {
        Cursor::After {
            ts: self.ts,
            id: self.id,
        }
    }
}

impl From<NewMessage> for Message {
    fn from(m: NewMessage) -> Self {
        Self {
            id: m.id,
            chat: m.chat,
            sender: m.sender,
            from_me: m.from_me,
            ts: m.ts,
            kind: m.kind,
            text: m.text,
            media_name: m.media_name,
            reply_to: m.reply_to,
            edited_at: m.edited_at,
            deleted: m.deleted,
            status: m.status,
        }
    }
}

impl From<Message> for NewMessage {
    /// A stored message as one to insert elsewhere (another store, the same fields).
    fn from(m: Message) -> Self {
        Self {
            id: m.id,
            chat: m.chat,
            sender: m.sender,
            from_me: m.from_me,
            ts: m.ts,
            kind: m.kind,
            text: m.text,
            media_name: m.media_name,
            reply_to: m.reply_to,
            edited_at: m.edited_at,
            deleted: m.deleted,
            status: m.status,
        }
    }
}

/// Where a page of a chat starts. Pages are keyset-paged on (ts, id): constant time anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The newest messages of the chat.
    Newest,
    /// Messages strictly older than (ts, id).
    Before {
        /// Timestamp of the message the page ends before.
        ts: i64,
        /// Its id (breaks ties on ts).
        id: MessageId,
    },
    /// Messages strictly newer than (ts, id).
    After {
        /// Timestamp of the message the page starts after.
        ts: i64,
        /// Its id (breaks ties on ts).
        id: MessageId,
    },
}

/// The last message of a chat, as the chat list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The message's id.
    pub id: MessageId,
    /// Who wrote it.
    pub sender: Sender,
    /// Whether this account wrote it.
    pub from_me: bool,
    /// What it is.
    pub kind: MessageKind,
    /// The start of its text (at most [`crate::PREVIEW_CHARS`] characters).
    pub text: String,
    /// The attached file's name, for media.
    pub media_name: Option<String>,
    /// Whether it was deleted for everyone.
    pub deleted: bool,
    /// Delivery state.
    pub status: MessageStatus,
}

/// One row of the chat list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    /// The chat's id.
    pub id: ChatId,
    /// Direct or group.
    pub kind: ChatKind,
    /// Display name.
    pub name: String,
    /// The other account of a direct chat.
    pub peer_account: Option<Vec<u8>>,
    /// Creation time (ms).
    pub created_at: i64,
    /// How many messages the store holds for it.
    pub message_count: u64,
    /// Timestamp of its newest message (0 when empty).
    pub last_ts: i64,
    /// Unread messages.
    pub unread: u64,
    /// Notifications muted.
    pub muted: bool,
    /// Pinned to the top of the list.
    pub pinned: bool,
    /// Archived (hidden from the main list).
    pub archived: bool,
    /// Its newest message.
    pub last_message: Option<Preview>,
}

/// A search result: the message and the name of its chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// The matching message.
    pub message: Message,
    /// The name of its chat.
    pub chat_name: String,
}

/// How much the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Number of chats.
    pub chats: u64,
    /// Number of messages.
    pub messages: u64,
}

/// Id of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutboxId(pub i64);

/// An envelope to send later, enqueued in the same transaction as what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxItem {
    /// The id of the envelope (the message id, for a message).
    pub message_id: MessageId,
    /// The recipient device's account.
    pub recipient_account: Vec<u8>,
    /// The recipient device's index.
    pub recipient_device: u32,
    /// What to seal and send (opaque to the store).
    pub payload: Vec<u8>,
    /// When it was enqueued (ms); also its first attempt time.
    pub created_at: i64,
}

/// An envelope waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// The row's id (to mark it done or retry it).
    pub id: OutboxId,
    /// The id of the envelope.
    pub message_id: MessageId,
    /// The recipient device's account.
    pub recipient_account: Vec<u8>,
    /// The recipient device's index.
    pub recipient_device: u32,
    /// What to seal and send.
    pub payload: Vec<u8>,
    /// When it was enqueued (ms).
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not to be tried before this time (ms).
    pub next_attempt_at: i64,
}

text_enum!(
    /// Which side of a history sync this device is.
    SyncRole {
        /// This device sends history (the primary).
        Sender = "sender",
        /// This device receives history (a companion).
        Receiver = "receiver",
    }
);

text_enum!(
    /// Where a history sync stands.
    SyncPhase {
        /// Chunks are flowing.
        Running = "running",
        /// All chunks acknowledged and verified.
        Complete = "complete",
        /// Given up (the reason is the engine's to log).
        Failed = "failed",
        /// Stopped by the user or an unlink.
        Cancelled = "cancelled",
    }
);

/// Progress of one history sync, written under `synchronous=FULL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// The sync's id.
    pub sync_id: Vec<u8>,
    /// Which side this device is.
    pub role: SyncRole,
    /// Where it stands.
    pub phase: SyncPhase,
    /// Chunks acknowledged.
    pub chunks_done: u32,
    /// Chunks in the plan.
    pub chunks_total: u32,
    /// Messages in acknowledged chunks.
    pub messages_done: u64,
    /// Messages in the plan.
    pub messages_total: u64,
    /// Index of the last acknowledged chunk, if any.
    pub last_acked: Option<u32>,
    /// Running digest over the synced messages (the engine's format).
    pub digest: Vec<u8>,
    /// The encoded sync plan (the engine's format).
    pub plan: Vec<u8>,
    /// Last change (ms).
    pub updated_at: i64,
}

/// A known account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account id.
    pub id: Vec<u8>,
    /// The account's public identity key.
    pub public_key: Vec<u8>,
    /// Its display name.
    pub display_name: String,
}

/// A contact: an account the user added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The account id.
    pub account: Vec<u8>,
    /// The name the user gave it.
    pub name: String,
    /// When it was added (ms).
    pub added_at: i64,
}

/// A change bridge desktops have yet to hear of, recorded by the phone's store in the same
/// transaction as the change (see [`crate::Store::bridge_changes`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BridgeChange {
    /// A message was added.
    NewMessage(MessageId),
    /// A stored message changed: its text (edit) or its deletion.
    Message(MessageId),
    /// A message's delivery status moved on.
    Status(MessageId),
    /// `account` reacted to `message` (or took its reaction back).
    Reaction {
        /// The message.
        message: MessageId,
        /// Who reacted.
        account: Vec<u8>,
    },
    /// This account read `chat` here, up to `up_to`.
    ChatRead {
        /// The chat.
        chat: ChatId,
        /// The newest message marked read.
        up_to: MessageId,
    },
}

/// A desktop authorised on the phone's bridge (not a device of the account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeDesktop {
    /// Its bridge public key (X25519, 32 bytes).
    pub public_key: Vec<u8>,
    /// Its name.
    pub name: String,
    /// Its platform.
    pub platform: String,
    /// When it was linked (ms).
    pub linked_at: i64,
}

/// A device of an account, as certified by the account key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The account it belongs to.
    pub account: Vec<u8>,
    /// Its index within the account.
    pub index: u32,
    /// Its X25519 public key.
    pub encryption_key: Vec<u8>,
    /// Its Ed25519 public key.
    pub signing_key: Vec<u8>,
    /// Its name ("Laptop").
    pub name: String,
    /// Its platform ("linux", "android").
    pub platform: String,
    /// When it was linked (ms).
    pub linked_at: i64,
    /// The signed certificate (the crypto crate's format).
    pub certificate: Vec<u8>,
}

/// The newest signed device list of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeviceList {
    /// The account.
    pub account: Vec<u8>,
    /// The list's version (only grows).
    pub version: u64,
    /// The signed list (the crypto crate's format).
    pub signed: Vec<u8>,
}

/// Where a message sits in its chat, and roughly how many bytes it holds (text, sender name,
/// file name): what a history-sync plan needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageKey {
    /// Sender timestamp (ms).
    pub ts: i64,
    /// The message's id.
    pub id: MessageId,
    /// Bytes of text, sender name and file name.
    pub bytes: u32,
}

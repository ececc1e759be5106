//! What the engine hands to its callers (the CLIs' `--json` output and the desktop app): plain
//! serializable views with stable field names. Ids are strings (hyphenated UUIDs), times Unix ms.

use serde::Serialize;

/// One chat in the chat list: `{"id","name","kind","messages","last_ts","unread","muted",
/// "pinned","last"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatView {
    /// The chat id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `"direct"` or `"group"`.
    pub kind: &'static str,
    /// How many messages the local store holds for it.
    pub messages: u64,
    /// Time of the newest message, if any.
    pub last_ts: Option<i64>,
    /// Messages not read yet.
    pub unread: u64,
    /// Notifications muted.
    pub muted: bool,
    /// Pinned to the top of the list.
    pub pinned: bool,
    /// The newest message, as the chat list previews it.
    pub last: Option<LastMessage>,
}

/// The newest message of a chat, for the chat list: `{"sender","from_me","kind","text","ts"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastMessage {
    /// Who wrote it (a display name), `null` for system messages without an author.
    pub sender: Option<String>,
    /// Whether this account wrote it.
    pub from_me: bool,
    /// As in [`MessageView::kind`].
    pub kind: String,
    /// The start of its text (for media without a caption: the file name).
    pub text: String,
    /// Its time (ms).
    pub ts: i64,
}

/// This device as the settings screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct About {
    /// The account's display name (its owner's), once there is an account.
    pub account_name: Option<String>,
    /// This device's id.
    pub device: Option<String>,
    /// This device's name.
    pub device_name: Option<String>,
    /// As in [`Status::mode`].
    pub mode: &'static str,
    /// The broker this device connects to.
    pub broker: Option<String>,
    /// When this device was linked (ms).
    pub linked_at: Option<i64>,
}

/// One message: `{"id","chat","sender","from_me","ts","kind","text","status","reply_to",
/// "reactions","edited","deleted"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageView {
    /// The message id.
    pub id: String,
    /// The chat id.
    pub chat: String,
    /// Who wrote it (a display name); `null` for system messages without an author.
    pub sender: Option<String>,
    /// Whether this account wrote it.
    pub from_me: bool,
    /// Sender time, Unix milliseconds.
    pub ts: i64,
    /// `"text"`, `"system"`, `"media"`, `"deleted"` or `"unsupported"`.
    pub kind: String,
    /// The text (for media: the caption, or the file name when there is no caption).
    pub text: String,
    /// For this account's own messages: `"pending"` (not yet handed to the broker), `"sent"`,
    /// `"delivered"` (stored on a recipient device) or `"read"`; `null` for others' messages.
    pub status: Option<&'static str>,
    /// The id of the message this one replies to.
    pub reply_to: Option<String>,
    /// Reactions, oldest first.
    pub reactions: Vec<ReactionView>,
    /// Whether it was edited.
    pub edited: bool,
    /// Whether it was deleted for everyone.
    pub deleted: bool,
}

/// One reaction: `{"emoji","from","from_me"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReactionView {
    /// The emoji.
    pub emoji: String,
    /// Who reacted (a display name).
    pub from: String,
    /// Whether this account reacted.
    pub from_me: bool,
}

/// A stored message as shown (reactions filled in by the caller).
pub(crate) fn message_view(m: &tandem_store::Message) -> MessageView {
    use tandem_store::{MessageKind, MessageStatus};
    let text = match (&m.kind, m.text.is_empty(), &m.media_name) {
        (MessageKind::Media, true, Some(name)) => name.clone(),
        _ => m.text.clone(),
    };
    MessageView {
        id: m.id.0.hyphenated().to_string(),
        chat: m.chat.0.hyphenated().to_string(),
        sender: (!m.sender.name.is_empty()).then(|| m.sender.name.clone()),
        from_me: m.from_me,
        ts: m.ts,
        kind: if m.deleted {
            "deleted".to_owned()
        } else {
            m.kind.as_str().to_owned()
        },
        text,
        status: m.from_me.then_some(match m.status {
            MessageStatus::Sending => "pending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
        }),
        reply_to: m.reply_to.map(|r| r.0.hyphenated().to_string()),
        reactions: Vec::new(),
        edited: m.edited_at.is_some(),
        deleted: m.deleted,
    }
}

/// One search hit: a [`MessageView`] plus the chat's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHitView {
    /// The message.
    #[serde(flatten)]
    pub message: MessageView,
    /// The name of the chat it is in.
    pub chat_name: String,
}

/// Progress of the history sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncView {
    /// `"none"` (nothing to sync), `"running"` or `"complete"`.
    pub state: &'static str,
    /// Messages synced so far.
    pub done: u64,
    /// Messages the sync will bring in all.
    pub total: u64,
    /// Chunks synced so far.
    pub chunks_done: u32,
    /// Chunks in the sync.
    pub chunks_total: u32,
}

/// `status`: `{"account","device","linked","mode","chats","messages","sync":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The account id, once there is one on this device.
    pub account: Option<String>,
    /// This device's id (`account.index`), once it has one.
    pub device: Option<String>,
    /// Whether this device belongs to an account (the primary always does once initialised).
    pub linked: bool,
    /// `"primary"`, `"multi"` (a linked device with its own broker session), `"bridge"`, or
    /// `"unlinked"`.
    pub mode: &'static str,
    /// In bridge mode: the phone's bridge URL this desktop dials (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge_url: Option<String>,
    /// In bridge mode, from [`crate::Engine::status_live`]: whether a connection to the phone
    /// is open now (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_reachable: Option<bool>,
    /// The brokers this device's session connects to, in the order it tries them (several:
    /// the nodes of a cluster, failed over along); absent on a bridge-mode desktop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<String>,
    /// From [`crate::Engine::status_live`]: the broker the running session is connected to now
    /// (`null` when no session runs or it is between brokers); absent on a bridge-mode desktop
    /// and from [`crate::Engine::status`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<Option<String>>,
    /// Chats in the local store.
    pub chats: u64,
    /// Messages in the local store.
    pub messages: u64,
    /// History sync progress.
    pub sync: SyncView,
}

/// What importing one file did: `{"file","format","chat","messages","added"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The file as given.
    pub file: String,
    /// `"whatsapp-android"`, `"whatsapp-ios"` or `"telegram"`.
    pub format: &'static str,
    /// The chat's name (for a whole-account Telegram export: the chat names joined with ", ").
    pub chat: String,
    /// Records found in the file (one message each).
    pub messages: u64,
    /// Messages that were new to the store (0 on a re-import).
    pub added: u64,
}

/// What `generate` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerateReport {
    /// Chats created or extended.
    pub chats: u64,
    /// Messages generated.
    pub messages: u64,
    /// Messages that were new to the store.
    pub added: u64,
}

/// What linking, syncing and serving report as they go (one JSON line each with `--json`,
/// tagged by `"event"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Desktop: show this pairing code (replacing the previous one).
    Code {
        /// The link the QR code holds.
        link: String,
        /// 0 for the first code, then 1, 2...
        index: u32,
        /// When the phone stops accepting it (ms).
        expires_at: i64,
    },
    /// Desktop: an offer was refused; still waiting for a valid scan.
    Refused {
        /// Why.
        reason: String,
    },
    /// Desktop: linked to an account.
    Linked {
        /// The account id.
        account: String,
        /// This device's new id.
        device: String,
    },
    /// Phone: a code asks to link this device.
    Device {
        /// Its name.
        name: String,
        /// Its platform.
        platform: String,
    },
    /// Phone: the device is linked.
    #[serde(rename = "linked")]
    DeviceLinked {
        /// Its id.
        device: String,
        /// Its name.
        name: String,
        /// Its platform.
        platform: String,
    },
    /// Both: history sync progress.
    Progress {
        /// Chunks acknowledged.
        chunks_done: u32,
        /// Chunks in the sync.
        chunks_total: u32,
        /// Messages in acknowledged chunks.
        messages_done: u64,
        /// Messages in the sync.
        messages_total: u64,
    },
    /// Both: the sync is complete (and, on the device, verified).
    Synced {
        /// Chunks.
        chunks: u32,
        /// Messages.
        messages: u64,
    },
    /// Desktop: no chunk for a while; asking the phone to resume.
    Waiting {
        /// What is awaited.
        reason: String,
    },
    /// Phone: connected and serving its devices.
    Serving {
        /// This device.
        device: String,
        /// The broker.
        broker: String,
    },
    /// Connected to the broker (again) as this device: its session is live.
    Online {
        /// This device.
        device: String,
        /// The broker.
        broker: String,
    },
    /// The connection to the broker is down; the outbox keeps what is sent meanwhile.
    Offline {
        /// Why.
        reason: String,
    },
    /// A new message, received or written on another device of this account.
    Message {
        /// The message.
        message: MessageView,
    },
    /// A message changed: edited, deleted or reacted to.
    Update {
        /// The message as it is now.
        message: MessageView,
    },
    /// One of this account's messages moved to a new delivery status.
    Receipt {
        /// The message id.
        id: String,
        /// The chat id.
        chat: String,
        /// `"sent"`, `"delivered"` or `"read"`.
        status: &'static str,
    },
    /// A chat was read, muted, pinned or archived on another device of this account (or, in
    /// bridge mode, on the phone): its row in the chat list changed.
    ChatChanged {
        /// The chat id.
        chat: String,
    },
    /// Someone is typing in a chat (or stopped).
    Typing {
        /// The chat id.
        chat: String,
        /// Who (the name shown).
        from: String,
        /// Their account id.
        account: String,
        /// Typing or stopped.
        on: bool,
    },
    /// Phone: the bridge server listens here (bridge-mode desktops dial it).
    BridgeListening {
        /// The bound address (`host:port`).
        address: String,
    },
    /// A contact's device went online or offline.
    Presence {
        /// The device id.
        device: String,
        /// The account's name here.
        name: String,
        /// Online now.
        online: bool,
        /// When it last changed (ms; for offline: last seen).
        at: i64,
    },
    /// A device list changed: a device of this account or of a contact was linked or
    /// unlinked.
    Devices {
        /// The account id.
        account: String,
        /// The list's version.
        version: u64,
        /// Devices in the list.
        devices: usize,
    },
    /// A group was created or changed (name, members).
    Group {
        /// The chat id.
        chat: String,
        /// Its name.
        name: String,
        /// Its members' names.
        members: Vec<String>,
        /// Whether this account is (still) a member.
        member: bool,
    },
    /// Bridge mode: a device was linked to or unlinked from the account (as the phone tells).
    PhoneDevice {
        /// The device id.
        device: String,
        /// Its name.
        name: String,
        /// Its platform.
        platform: String,
        /// Linked (else unlinked).
        linked: bool,
        /// When (ms).
        at: i64,
    },
    /// Bridge mode: the phone refused to send a message written here; it left the outbox
    /// and stays "pending" here.
    SendFailed {
        /// The message id.
        id: String,
        /// The chat id.
        chat: String,
        /// Why.
        reason: String,
    },
    /// A contact was added (here or on another device of this account).
    Contact {
        /// The account id.
        account: String,
        /// Its name.
        name: String,
    },
}

/// One device of the account: `{"id","name","platform","linked_at","primary"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    /// Its id: `account.index` for a device of the account; for a bridge desktop its bridge
    /// public key (base64url), which `unlink` takes.
    pub id: String,
    /// `"device"` (a device of the account, in its device list) or `"bridge"` (a desktop
    /// authorised on this phone's bridge).
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Its platform.
    pub platform: String,
    /// When it was linked (ms).
    pub linked_at: i64,
    /// Whether it is the primary (the phone).
    pub primary: bool,
}

/// What linking a desktop in bridge mode stored: `{"account","account_name","bridge_url",
/// "phone_key","desktop_key"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BridgeLinkReport {
    /// The account id.
    pub account: String,
    /// The account's display name.
    pub account_name: String,
    /// The phone's bridge URL.
    pub bridge_url: String,
    /// The phone's bridge public key (base64url).
    pub phone_key: String,
    /// This desktop's bridge public key (base64url), as the phone lists it.
    pub desktop_key: String,
}

/// What `unlink` did: `{"unlinked","kind","version"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnlinkReport {
    /// The removed device (for a bridge desktop: its bridge key).
    pub unlinked: String,
    /// `"device"` (removed from the device list) or `"bridge"` (its bridge key revoked).
    pub kind: &'static str,
    /// The device list's version: the new one, or for a bridge desktop the unchanged one.
    pub version: u64,
}

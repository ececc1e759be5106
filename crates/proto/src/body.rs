//! Message bodies. The header's kind byte says which [`Body`] variant follows; the plaintext is
//! the postcard encoding of that variant's fields in declaration order (no variant tag: the kind
//! byte is the tag). `docs/envelope.md` spells out every field.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tandem_crypto::device_list::MAX_DEVICE_LIST_LEN;
use tandem_crypto::{AccountId, AccountPublicKey, ContactLink, CryptoRng, DeviceId};

use crate::header::MAX_BODY_LEN;
use crate::{Error, Kind, MessageId, Result};

/// Longest text of a message, in bytes of UTF-8.
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// Longest reaction, in bytes of UTF-8 (one emoji sequence; empty removes the reaction).
pub const MAX_EMOJI_LEN: usize = 64;
/// Most message ids in one receipt.
pub const MAX_RECEIPT_IDS: usize = 1024;
/// Most members of a group (its accounts, the sender's included).
pub const MAX_GROUP_MEMBERS: usize = 256;
/// Longest group or member name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 128;

/// A member of a group: the account key (the account id is derived from it) and a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    /// The member's account key.
    pub account_key: AccountPublicKey,
    /// The name the group's members see.
    pub name: String,
}

/// A group chat's id: 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChatId(pub [u8; 16]);

impl ChatId {
    /// A new random group id.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        Self(id)
    }
}

impl std::fmt::Debug for ChatId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChatId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Which chat a body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ChatRef {
    /// The sender's 1:1 chat with account `with`. The sender's own other devices file it under
    /// the chat with `with`; the account `with` files it under the chat with the sender.
    Direct {
        /// The other participant, seen from the sender.
        with: AccountId,
    },
    /// A group chat.
    Group {
        /// The group's id.
        id: ChatId,
    },
}

/// A chat as the receiving device files it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LocalChat {
    /// The 1:1 chat with `peer`.
    Direct {
        /// The other participant, seen from the receiver.
        peer: AccountId,
    },
    /// A group chat.
    Group {
        /// The group's id.
        id: ChatId,
    },
}

impl ChatRef {
    /// Where a receiver of account `own` files a body sent by account `sender`.
    pub fn local_chat(&self, own: &AccountId, sender: &AccountId) -> LocalChat {
        match *self {
            ChatRef::Direct { with } if with == *own => LocalChat::Direct { peer: *sender },
            ChatRef::Direct { with } => LocalChat::Direct { peer: with },
            ChatRef::Group { id } => LocalChat::Group { id },
        }
    }
}

/// Which receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReceiptKind {
    /// Stored on a recipient device.
    Delivered,
    /// Shown to the recipient.
    Read,
}

/// A message body. The variant decides the header kind byte ([`Body::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// A text message.
    Text {
        /// The chat.
        chat: ChatRef,
        /// The text (at most 64 KiB).
        text: String,
    },
    /// A text message quoting another.
    Reply {
        /// The chat.
        chat: ChatRef,
        /// The quoted message.
        quoted: MessageId,
        /// The text.
        text: String,
    },
    /// A reaction; an empty emoji removes the sender's reaction.
    Reaction {
        /// The chat.
        chat: ChatRef,
        /// The message reacted to.
        target: MessageId,
        /// The emoji (at most 64 bytes; empty = remove).
        emoji: String,
    },
    /// A new text for an earlier message of the same sender.
    Edit {
        /// The chat.
        chat: ChatRef,
        /// The edited message.
        target: MessageId,
        /// The new text.
        text: String,
    },
    /// Delete-for-everyone of an earlier message of the same sender.
    Delete {
        /// The chat.
        chat: ChatRef,
        /// The deleted message.
        target: MessageId,
    },
    /// Delivered or read receipts for up to 1024 messages.
    Receipt {
        /// Which receipt.
        kind: ReceiptKind,
        /// The messages (1..=1024).
        ids: Vec<MessageId>,
    },
    /// Typing started or stopped (QoS 0, never stored).
    Typing {
        /// The chat.
        chat: ChatRef,
        /// Whether typing is on.
        on: bool,
    },
    /// A chunk of history sync; its inner format belongs to the history-sync protocol.
    HistoryChunk {
        /// The chunk.
        bytes: Vec<u8>,
    },
    /// A new signed device list of the sender's account (`SignedDeviceList::to_bytes`); the
    /// receiver still runs `tandem_crypto::accept` on it.
    DeviceListNotice {
        /// The encoded signed list.
        list: Vec<u8>,
    },
    /// The primary unlinks `device` (receivers check the sender is the primary).
    Unlink {
        /// The unlinked device.
        device: DeviceId,
    },
    /// A contact shared as a contact link (parsed strictly on decode).
    ContactCard {
        /// The `tandem://contact?...` text.
        link: String,
    },
    /// A chat's state, between one account's own devices.
    ChatState {
        /// The chat.
        chat: ChatRef,
        /// Muted.
        muted: bool,
        /// Pinned.
        pinned: bool,
        /// Archived.
        archived: bool,
        /// Everything up to and including this message has been read.
        read_up_to: Option<MessageId>,
    },
    /// A group's name and member list, version `version` (only a higher version replaces
    /// the one a device holds).
    GroupInfo {
        /// The group.
        id: ChatId,
        /// Grows with every change.
        version: u64,
        /// The group's name.
        name: String,
        /// Every member account, the sender's included (1..=256, no account twice).
        members: Vec<GroupMember>,
    },
}

fn encode_fields<T: Serialize>(fields: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(fields).map_err(|e| Error::Encode {
        reason: e.to_string(),
    })
}

fn decode_fields<T: DeserializeOwned>(kind: Kind, bytes: &[u8]) -> Result<T> {
    let malformed = |reason: String| Error::MalformedBody {
        kind: kind.byte(),
        reason,
    };
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

impl Body {
    /// The header kind of this body.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Text { .. } => Kind::Text,
            Body::Reply { .. } => Kind::Reply,
            Body::Reaction { .. } => Kind::Reaction,
            Body::Edit { .. } => Kind::Edit,
            Body::Delete { .. } => Kind::Delete,
            Body::Receipt { .. } => Kind::Receipt,
            Body::Typing { .. } => Kind::Typing,
            Body::HistoryChunk { .. } => Kind::HistoryChunk,
            Body::DeviceListNotice { .. } => Kind::DeviceListNotice,
            Body::Unlink { .. } => Kind::Unlink,
            Body::ContactCard { .. } => Kind::ContactCard,
            Body::ChatState { .. } => Kind::ChatState,
            Body::GroupInfo { .. } => Kind::GroupInfo,
        }
    }

    /// The chat this body belongs to, if it names one.
    pub fn chat(&self) -> Option<&ChatRef> {
        match self {
            Body::Text { chat, .. }
            | Body::Reply { chat, .. }
            | Body::Reaction { chat, .. }
            | Body::Edit { chat, .. }
            | Body::Delete { chat, .. }
            | Body::Typing { chat, .. }
            | Body::ChatState { chat, .. } => Some(chat),
            Body::Receipt { .. }
            | Body::HistoryChunk { .. }
            | Body::DeviceListNotice { .. }
            | Body::Unlink { .. }
            | Body::ContactCard { .. }
            | Body::GroupInfo { .. } => None,
        }
    }

    /// Checks the limits of every field (what [`Body::decode`] enforces on arrival).
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| Error::MalformedBody {
            kind: self.kind().byte(),
            reason: reason.to_owned(),
        };
        match self {
            Body::Text { text, .. } | Body::Reply { text, .. } | Body::Edit { text, .. } => {
                if text.len() > MAX_TEXT_LEN {
                    return Err(bad("text longer than 64 KiB"));
                }
            }
            Body::Reaction { emoji, .. } => {
                if emoji.len() > MAX_EMOJI_LEN {
                    return Err(bad("reaction longer than 64 bytes"));
                }
            }
            Body::Receipt { ids, .. } => {
                if ids.is_empty() || ids.len() > MAX_RECEIPT_IDS {
                    return Err(bad("a receipt names 1 to 1024 messages"));
                }
            }
            Body::DeviceListNotice { list } => {
                if list.len() > MAX_DEVICE_LIST_LEN {
                    return Err(bad("device list larger than allowed"));
                }
            }
            Body::ContactCard { link } => {
                link.parse::<ContactLink>()
                    .map_err(|e| bad(&format!("contact link: {e}")))?;
            }
            Body::GroupInfo { name, members, .. } => {
                if name.trim().is_empty() || name.len() > MAX_NAME_LEN {
                    return Err(bad("a group name has 1 to 128 bytes"));
                }
                if members.is_empty() || members.len() > MAX_GROUP_MEMBERS {
                    return Err(bad("a group has 1 to 256 members"));
                }
                let mut seen = std::collections::BTreeSet::new();
                for member in members {
                    if member.name.len() > MAX_NAME_LEN {
                        return Err(bad("a member name has at most 128 bytes"));
                    }
                    if !seen.insert(member.account_key.account_id()) {
                        return Err(bad("an account is listed twice"));
                    }
                }
            }
            Body::Delete { .. }
            | Body::Typing { .. }
            | Body::HistoryChunk { .. }
            | Body::Unlink { .. }
            | Body::ChatState { .. } => {}
        }
        Ok(())
    }

    /// The plaintext: postcard of the variant's fields, in declaration order. Checks the field
    /// limits and the envelope's body limit first.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let bytes = match self {
            Body::Text { chat, text } => encode_fields(&(chat, text)),
            Body::Reply { chat, quoted, text } => encode_fields(&(chat, quoted, text)),
            Body::Reaction {
                chat,
                target,
                emoji,
            } => encode_fields(&(chat, target, emoji)),
            Body::Edit { chat, target, text } => encode_fields(&(chat, target, text)),
            Body::Delete { chat, target } => encode_fields(&(chat, target)),
            Body::Receipt { kind, ids } => encode_fields(&(kind, ids)),
            Body::Typing { chat, on } => encode_fields(&(chat, on)),
            Body::HistoryChunk { bytes } => encode_fields(&(bytes,)),
            Body::DeviceListNotice { list } => encode_fields(&(list,)),
            Body::Unlink { device } => encode_fields(&(device,)),
            Body::ContactCard { link } => encode_fields(&(link,)),
            Body::ChatState {
                chat,
                muted,
                pinned,
                archived,
                read_up_to,
            } => encode_fields(&(chat, muted, pinned, archived, read_up_to)),
            Body::GroupInfo {
                id,
                version,
                name,
                members,
            } => encode_fields(&(id, version, name, members)),
        }?;
        if bytes.len() > MAX_BODY_LEN {
            return Err(Error::BodyTooLarge {
                len: bytes.len(),
                max: MAX_BODY_LEN,
            });
        }
        Ok(bytes)
    }

    /// Decodes the plaintext of a body of `kind`. Strict: no trailing bytes, every field within
    /// its limits.
    pub fn decode(kind: Kind, bytes: &[u8]) -> Result<Body> {
        let body = match kind {
            Kind::Text => {
                let (chat, text) = decode_fields(kind, bytes)?;
                Body::Text { chat, text }
            }
            Kind::Reply => {
                let (chat, quoted, text) = decode_fields(kind, bytes)?;
                Body::Reply { chat, quoted, text }
            }
            Kind::Reaction => {
                let (chat, target, emoji) = decode_fields(kind, bytes)?;
                Body::Reaction {
                    chat,
                    target,
                    emoji,
                }
            }
            Kind::Edit => {
                let (chat, target, text) = decode_fields(kind, bytes)?;
                Body::Edit { chat, target, text }
            }
            Kind::Delete => {
                let (chat, target) = decode_fields(kind, bytes)?;
                Body::Delete { chat, target }
            }
            Kind::Receipt => {
                let (kind, ids) = decode_fields(kind, bytes)?;
                Body::Receipt { kind, ids }
            }
            Kind::Typing => {
                let (chat, on) = decode_fields(kind, bytes)?;
                Body::Typing { chat, on }
            }
            Kind::HistoryChunk => {
                let (bytes,) = decode_fields(kind, bytes)?;
                Body::HistoryChunk { bytes }
            }
            Kind::DeviceListNotice => {
                let (list,) = decode_fields(kind, bytes)?;
                Body::DeviceListNotice { list }
            }
            Kind::Unlink => {
                let (device,) = decode_fields(kind, bytes)?;
                Body::Unlink { device }
            }
            Kind::ContactCard => {
                let (link,) = decode_fields(kind, bytes)?;
                Body::ContactCard { link }
            }
            Kind::ChatState => {
                let (chat, muted, pinned, archived, read_up_to) = decode_fields(kind, bytes)?;
                Body::ChatState {
                    chat,
                    muted,
                    pinned,
                    archived,
                    read_up_to,
                }
            }
            Kind::GroupInfo => {
                let (id, version, name, members) = decode_fields(kind, bytes)?;
                Body::GroupInfo {
                    id,
                    version,
                    name,
                    members,
                }
            }
        };
        body.validate()?;
        Ok(body)
    }
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;

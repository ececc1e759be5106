//! What history sync moves, between the store and the sync messages of `tandem_proto::sync`:
//! the phone's plan (which messages go in which chunk), building a chunk or a page from the
//! store, and importing one into the device's store.
//!
//! # The plan
//!
//! Chats are taken in chat-list order (pinned first, then by last activity). The first chunks
//! carry the newest [`RECENT_PER_CHAT`] messages of every chat, so the whole chat list with
//! previews is usable after the first chunk; the rest follows chat by chat, newest first. A
//! chunk closes at [`CHUNK_MESSAGES`] messages or [`CHUNK_RAW_BUDGET`] bytes of text and chat
//! metadata, so even incompressible text stays far below the envelope limit.
//!
//! The plan is a list of chunks, each a list of `(chat, oldest key, newest key, count)` key
//! ranges (the first chunk also names the chats that have no messages). It is stored with the sync's progress, so a phone that restarts rebuilds exactly
//! the same chunks.

use serde::{Deserialize, Serialize};
use tandem_proto::sync::{
    CHUNK_MESSAGES, CHUNK_RAW_BUDGET, Chunk, SyncId, SyncPlanSummary, SyncedChat, SyncedMessage,
};
use tandem_store::{
    ChatId, ChatKind, ChatSummary, Cursor, Member, Message, MessageId, MessageKind, MessageStatus,
    NewChat, NewMessage, Sender, Store, Writer,
};
use uuid::Uuid;

use crate::{Error, Result};

/// Newest messages of each chat sent before any older history.
pub const RECENT_PER_CHAT: usize = 20;
/// Bytes a message adds to a chunk besides its text (ids, times, field tags).
const MESSAGE_OVERHEAD: usize = 96;

/// An inclusive range of one chat's messages, by `(ts, id)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeyRange {
    chat: [u8; 16],
    oldest: (i64, [u8; 16]),
    newest: (i64, [u8; 16]),
    count: u32,
}

/// One chunk of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ChunkPlan {
    ranges: Vec<KeyRange>,
    /// Chats without messages (the first chunk carries them, so every chat arrives).
    empty_chats: Vec<[u8; 16]>,
}

impl ChunkPlan {
    fn count(&self) -> u64 {
        self.ranges.iter().map(|r| u64::from(r.count)).sum()
    }
}

/// The phone's plan for one sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// The device it is for (index in the account).
    pub(crate) peer: u32,
    chunks: Vec<ChunkPlan>,
    chats: u32,
}

/// Which part of the history a plan covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanBound {
    /// Only messages newer than this (ms); the newest [`RECENT_PER_CHAT`] of every chat always
    /// go. `None`: everything.
    pub since_ms: Option<i64>,
}

struct Packer {
    chunks: Vec<ChunkPlan>,
    current: ChunkPlan,
    count: usize,
    bytes: usize,
}

impl Packer {
    fn close(&mut self) {
        if !self.current.ranges.is_empty() {
            self.chunks.push(std::mem::take(&mut self.current));
        }
        self.count = 0;
        self.bytes = 0;
    }

    /// Adds one chat's keys (newest first) with `chat_bytes` of metadata.
    fn add(&mut self, chat: ChatId, chat_bytes: usize, keys: &[tandem_store::MessageKey]) {
        let mut open_range = false;
        for key in keys {
            let size = MESSAGE_OVERHEAD + key.bytes as usize;
            let new_chat_cost = if open_range { 0 } else { chat_bytes };
            if self.count > 0
                && (self.count >= CHUNK_MESSAGES
                    || self.bytes + size + new_chat_cost > CHUNK_RAW_BUDGET)
            {
                self.close();
                open_range = false;
            }
            let entry = (key.ts, *key.id.as_bytes());
            match self.current.ranges.last_mut() {
                Some(range) if open_range => {
                    range.oldest = entry;
                    range.count += 1;
                }
                _ => {
                    self.bytes += chat_bytes;
                    self.current.ranges.push(KeyRange {
                        chat: *chat.as_bytes(),
                        oldest: entry,
                        newest: entry,
                        count: 1,
                    });
                    open_range = true;
                }
            }
            self.count += 1;
            self.bytes += size;
        }
    }
}

fn chat_bytes(summary: &ChatSummary, members: &[Member]) -> usize {
    64 + summary.name.len() + members.iter().map(|m| 24 + m.name.len()).sum::<usize>()
}

/// Plans a sync of the phone's history for device `peer`.
pub(crate) fn build_plan(store: &Store, peer: u32, bound: PlanBound) -> Result<Plan> {
    let chats = store.chats()?;
    let mut per_chat = Vec::with_capacity(chats.len());
    for chat in &chats {
        let mut keys = store.message_keys(chat.id)?;
        if let Some(since) = bound.since_ms {
            let mut kept = 0;
            keys.retain(|k| {
                kept += 1;
                kept <= RECENT_PER_CHAT || k.ts >= since
            });
        }
        let members = store.members(chat.id)?;
        per_chat.push((chat.id, chat_bytes(chat, &members), keys));
    }
    let mut packer = Packer {
        chunks: Vec::new(),
        current: ChunkPlan::default(),
        count: 0,
        bytes: 0,
    };
    for (chat, bytes, keys) in &per_chat {
        let head = keys.get(..RECENT_PER_CHAT.min(keys.len())).unwrap_or(&[]);
        packer.add(*chat, *bytes, head);
    }
    for (chat, bytes, keys) in &per_chat {
        let tail = keys.get(RECENT_PER_CHAT.min(keys.len())..).unwrap_or(&[]);
        packer.add(*chat, *bytes, tail);
    }
    packer.close();
    let empty: Vec<[u8; 16]> = per_chat
        .iter()
        .filter(|(_, _, keys)| keys.is_empty())
        .map(|(chat, _, _)| *chat.as_bytes())
        .collect();
    if !empty.is_empty() {
        if packer.chunks.is_empty() {
            packer.chunks.push(ChunkPlan::default());
        }
        if let Some(first) = packer.chunks.first_mut() {
            first.empty_chats = empty;
        }
    }
    Ok(Plan {
        peer,
        chunks: packer.chunks,
        chats: u32::try_from(chats.len()).unwrap_or(u32::MAX),
    })
}

impl Plan {
    /// What the offer announces.
    pub(crate) fn summary(&self, sync_id: SyncId) -> SyncPlanSummary {
        SyncPlanSummary {
            sync_id,
            chunks: self.total(),
            messages: self.messages(),
            chats: self.chats,
        }
    }

    /// Chunks in the plan.
    pub(crate) fn total(&self) -> u32 {
        u32::try_from(self.chunks.len()).unwrap_or(u32::MAX)
    }

    /// Messages in the plan.
    pub(crate) fn messages(&self) -> u64 {
        self.chunks.iter().map(ChunkPlan::count).sum()
    }

    /// The stored form.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::Corrupt {
            what: "sync plan",
            reason: e.to_string(),
        })
    }

    /// Reads the stored form.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
            what: "sync plan",
            reason: e.to_string(),
        })
    }

    /// Builds chunk `index` from the store.
    pub(crate) fn chunk(&self, store: &Store, sync_id: SyncId, index: u32) -> Result<Chunk> {
        let plan = self
            .chunks
            .get(index as usize)
            .ok_or_else(|| Error::Corrupt {
                what: "sync plan",
                reason: format!("no chunk {index}"),
            })?;
        let mut messages = Vec::with_capacity(plan.count() as usize);
        let mut chats: Vec<SyncedChat> = Vec::new();
        for id in &plan.empty_chats {
            let chat = ChatId(Uuid::from_bytes(*id));
            if let Some(summary) = store.chat(chat)? {
                chats.push(synced_chat(&summary, store.members(chat)?));
            }
        }
        for range in &plan.ranges {
            let chat = ChatId(Uuid::from_bytes(range.chat));
            if !chats.iter().any(|c| c.id == range.chat) {
                let Some(summary) = store.chat(chat)? else {
                    continue;
                };
                chats.push(synced_chat(&summary, store.members(chat)?));
            }
            let oldest = (range.oldest.0, MessageId(Uuid::from_bytes(range.oldest.1)));
            let newest = (range.newest.0, MessageId(Uuid::from_bytes(range.newest.1)));
            messages.extend(
                store
                    .messages_between(chat, oldest, newest)?
                    .iter()
                    .map(synced_message),
            );
        }
        Ok(Chunk::new(sync_id, index, self.total(), chats, messages))
    }
}

/// A chat as sync carries it.
pub(crate) fn synced_chat(summary: &ChatSummary, members: Vec<Member>) -> SyncedChat {
    SyncedChat {
        id: *summary.id.as_bytes(),
        kind: summary.kind.as_str().to_owned(),
        name: summary.name.clone(),
        peer_account: summary.peer_account.clone(),
        created_at: summary.created_at,
        muted: summary.muted,
        pinned: summary.pinned,
        archived: summary.archived,
        unread: summary.unread,
        members: members.into_iter().map(|m| (m.account, m.name)).collect(),
    }
}

/// A message as sync carries it.
pub fn synced_message(m: &Message) -> SyncedMessage {
    SyncedMessage {
        id: *m.id.as_bytes(),
        chat: *m.chat.as_bytes(),
        sender_account: m.sender.account.clone(),
        sender_device: m.sender.device,
        sender_name: m.sender.name.clone(),
        from_me: m.from_me,
        ts: m.ts,
        kind: m.kind.as_str().to_owned(),
        text: m.text.clone(),
        media_name: m.media_name.clone(),
        reply_to: m.reply_to.map(|r| *r.as_bytes()),
        edited_at: m.edited_at,
        deleted: m.deleted,
        status: u8::try_from(m.status.code()).unwrap_or(1),
    }
}

fn new_message(m: &SyncedMessage) -> NewMessage {
    NewMessage {
        id: MessageId(Uuid::from_bytes(m.id)),
        chat: ChatId(Uuid::from_bytes(m.chat)),
        sender: Sender {
            account: m.sender_account.clone(),
            device: m.sender_device,
            name: m.sender_name.clone(),
        },
        from_me: m.from_me,
        ts: m.ts,
        kind: MessageKind::parse(&m.kind),
        text: m.text.clone(),
        media_name: m.media_name.clone(),
        reply_to: m.reply_to.map(|r| MessageId(Uuid::from_bytes(r))),
        edited_at: m.edited_at,
        deleted: m.deleted,
        status: MessageStatus::from_code(i64::from(m.status)).unwrap_or(MessageStatus::Sent),
    }
}

/// Creates or updates the chats, then inserts the messages (existing ids are left alone).
/// Returns how many messages were new.
pub(crate) fn import(
    w: &mut Writer<'_>,
    chats: &[SyncedChat],
    messages: &[SyncedMessage],
) -> Result<usize> {
    for chat in chats {
        let id = ChatId(Uuid::from_bytes(chat.id));
        w.upsert_chat(&NewChat {
            id,
            kind: ChatKind::parse(&chat.kind),
            name: chat.name.clone(),
            peer_account: chat.peer_account.clone(),
            created_at: chat.created_at,
            members: chat
                .members
                .iter()
                .map(|(account, name)| Member {
                    account: account.clone(),
                    name: name.clone(),
                })
                .collect(),
        })?;
        w.set_muted(id, chat.muted)?;
        w.set_pinned(id, chat.pinned)?;
        w.set_archived(id, chat.archived)?;
        w.set_unread(id, chat.unread)?;
    }
    let messages: Vec<NewMessage> = messages.iter().map(new_message).collect();
    Ok(w.insert_messages(&messages)?)
}

/// Up to `limit` messages of `chat` older than `before` (newest first), the chat, and whether
/// older ones remain: the phone's answer to a page request.
pub(crate) fn page(
    store: &Store,
    chat: [u8; 16],
    before: Option<(i64, [u8; 16])>,
    limit: u16,
) -> Result<(Option<SyncedChat>, Vec<SyncedMessage>, bool)> {
    let id = ChatId(Uuid::from_bytes(chat));
    let Some(summary) = store.chat(id)? else {
        return Ok((None, Vec::new(), false));
    };
    let limit = usize::from(limit.clamp(1, tandem_proto::sync::PAGE_MESSAGES));
    let cursor = match before {
        Some((ts, id)) => Cursor::Before {
            ts,
            id: MessageId(Uuid::from_bytes(id)),
        },
        None => Cursor::Newest,
    };
    let mut rows = store.page(id, cursor, limit + 1)?;
    // Pages come oldest first; keep the newest `limit`.
    let more = rows.len() > limit;
    if more {
        rows.remove(0);
    }
    rows.reverse();
    Ok((
        Some(synced_chat(&summary, store.members(id)?)),
        rows.iter().map(synced_message).collect(),
        more,
    ))
}

//! Live messaging without the network: what sending, reacting, editing, deleting and reading
//! write to the store (the message and its fan-out rows in one transaction), what an opened
//! envelope from another device does to the store, and sealing the fan-out queue into outbox
//! envelopes for exactly the devices of each account's newest list. The connection loops
//! (`live.rs`) move the bytes.

use std::collections::BTreeMap;

use tandem_crypto::{AccountId, DeviceId, OsRng};
use tandem_proto::{Body, ChatRef, EnvelopeHeader, LocalChat, MessageId as WireId, ReceiptKind};
use tandem_store::{
    ChatId, ChatKind, ChatSummary, DurableWriter, Message, MessageId, MessageKind, MessageStatus,
    NewMessage, NewOutboxItem, Sender, Store, Writer,
};
use uuid::Uuid;

use crate::contacts::{
    Directory, account_from, chat_ref, direct_chat_id, ensure_direct_chat, group_chat_id,
    queue_fanout, queued_body, save_contact,
};
use crate::identity::{Identity, Sessions, seal_message};
use crate::views::{MessageView, ReactionView, message_view};
use crate::{Engine, Error, Result, now_ms};

/// Fan-out rows sealed per transaction.
const SEAL_BATCH: usize = 256;

/// What `read CHAT` did: `{"chat","marked"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReadReport {
    /// The chat id.
    pub chat: String,
    /// Incoming messages newly marked read.
    pub marked: u64,
}

/// What an incoming body changed, turned into events once its transaction committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// A message arrived (`new`) or changed (edit, delete, reaction).
    Message { id: MessageId, new: bool },
    /// An own message's delivery status moved forward.
    Status {
        id: MessageId,
        status: MessageStatus,
    },
    /// Someone is typing (or stopped): `from` is the name shown, `account` who it is.
    Typing {
        chat: ChatId,
        from: String,
        account: AccountId,
        on: bool,
    },
    /// A chat's state (read, muted, pinned, archived) changed on another device.
    Chat { chat: ChatId },
    /// A contact was added on another device of this account.
    Contact { account: AccountId, name: String },
    /// A group was created or changed (`member`: whether this account is still in it).
    Group {
        chat: ChatId,
        name: String,
        members: Vec<String>,
        member: bool,
    },
}

impl Effect {
    /// Whether the effect brings accounts whose device lists the session must watch.
    pub(crate) fn adds_accounts(&self) -> bool {
        matches!(self, Effect::Contact { .. } | Effect::Group { .. })
    }
}

pub(crate) fn store_id(id: WireId) -> MessageId {
    MessageId(Uuid::from_bytes(*id.as_bytes()))
}

fn wire_id(id: MessageId) -> Result<WireId> {
    Ok(WireId::from_bytes(*id.as_bytes())?)
}

fn rng() -> Result<OsRng> {
    OsRng::new().map_err(|e| Error::Random(e.to_string()))
}

/// The name to show for `account`: the contact's saved name, else its own display name, else
/// its id.
pub(crate) fn display_name(store: &Store, id: &Identity, account: &AccountId) -> Result<String> {
    name_of(store, &id.account, &id.account_name, account)
}

/// The name this device shows for `account`: `own_name` for its own account (`own`), else the
/// contact's name, the account's own display name, or its id.
pub(crate) fn name_of(
    store: &Store,
    own: &AccountId,
    own_name: &str,
    account: &AccountId,
) -> Result<String> {
    if account == own {
        return Ok(own_name.to_owned());
    }
    if let Some(contact) = store
        .contacts()?
        .into_iter()
        .find(|c| c.account == account.as_bytes())
    {
        return Ok(contact.name);
    }
    Ok(store
        .account(account.as_bytes())?
        .map(|a| a.display_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| account.to_string()))
}

/// The name the chat of `message` gives `account`: a direct chat's own name when `account` is
/// its peer, a group's member name.
fn member_name(store: &Store, message: MessageId, account: &AccountId) -> Result<Option<String>> {
    let Some(chat) = store.message(message)?.map(|m| m.chat) else {
        return Ok(None);
    };
    let Some(summary) = store.chat(chat)? else {
        return Ok(None);
    };
    if summary.peer_account.as_deref() == Some(account.as_bytes().as_slice()) {
        return Ok(Some(summary.name));
    }
    Ok(store
        .members(chat)?
        .into_iter()
        .find(|m| m.account.as_deref() == Some(account.as_bytes().as_slice()))
        .map(|m| m.name)
        .filter(|n| !n.is_empty()))
}

/// The accounts a message to `chat` goes to: the other member accounts, then this account (its
/// other devices).
fn recipients(store: &Store, id: &Identity, chat: &ChatSummary) -> Result<Vec<AccountId>> {
    let mut out = Vec::new();
    match chat.kind {
        ChatKind::Group => {
            let members = store.members(chat.id)?;
            if !members
                .iter()
                .any(|m| m.account.as_deref() == Some(id.account.as_bytes().as_slice()))
            {
                return Err(Error::BadInput(format!(
                    "this account is not a member of {}",
                    chat.name
                )));
            }
            for member in members {
                if let Some(account) = member.account.as_deref().and_then(account_from)
                    && account != id.account
                    && !out.contains(&account)
                {
                    out.push(account);
                }
            }
        }
        _ => {
            if let Some(peer) = chat.peer_account.as_deref().and_then(account_from) {
                out.push(peer);
            }
        }
    }
    out.push(id.account);
    Ok(out)
}

/// Whether `account` belongs to the chat `local` on this device.
fn is_member(store: &Store, local: ChatId, account: &AccountId) -> Result<bool> {
    Ok(store
        .members(local)?
        .iter()
        .any(|m| m.account.as_deref() == Some(account.as_bytes().as_slice())))
}

impl Engine {
    fn own_message(&self, text: &str) -> Result<Message> {
        let not_found = || Error::MessageNotFound {
            id: text.to_owned(),
            chat: String::new(),
        };
        let uuid = Uuid::parse_str(text.trim()).map_err(|_| not_found())?;
        self.store().message(MessageId(uuid))?.ok_or_else(not_found)
    }

    /// Writes a new message of this account and queues it for every recipient device.
    fn compose(
        &self,
        chat: &ChatSummary,
        wire: Option<WireId>,
        body_of: impl FnOnce(ChatRef) -> Body,
        row: impl FnOnce(&Identity, MessageId, i64) -> Option<NewMessage>,
    ) -> Result<(MessageId, Identity)> {
        let id = self.identity()?;
        let wire_chat = chat_ref(chat)?;
        let body = body_of(wire_chat);
        body.validate()?;
        let accounts = recipients(self.store(), &id, chat)?;
        let now = now_ms();
        let wire = match wire {
            Some(wire) => wire,
            None => WireId::new_v7(now, &mut rng()?)?,
        };
        let message_id = store_id(wire);
        self.store().write(|w| -> Result<()> {
            if let Some(message) = row(&id, message_id, now) {
                w.insert_messages(std::slice::from_ref(&message))?;
            }
            for account in &accounts {
                queue_fanout(w, account, wire, now, &body)?;
            }
            Ok(())
        })?;
        Ok((message_id, id))
    }

    /// Sends `text` to `chat` (an id or exact name), quoting message `reply` if given. The
    /// message and its fan-out are written at once; a connection sends them (see
    /// [`Engine::run`]).
    ///
    /// # Errors
    /// [`Error::BadInput`] for empty or too long text or a chat without a Tandem contact;
    /// [`Error::MessageNotFound`] for an unknown quoted message.
    pub fn send(&self, chat: &str, text: &str, reply: Option<&str>) -> Result<MessageView> {
        if self.is_bridge()? {
            return self.bridge_send_local(chat, text, reply);
        }
        self.send_as(chat, text, reply, None).map(|(view, _)| view)
    }

    /// [`Engine::send`] under the id `id` when given (a bridge desktop chose it; it must be a
    /// time-ordered message id): a message already stored under that id is answered as it is
    /// and nothing is sent again. Returns the message and whether it is new.
    ///
    /// # Errors
    /// As [`Engine::send`]; [`Error::BadInput`] for an id that is not a message id.
    pub(crate) fn send_as(
        &self,
        chat: &str,
        text: &str,
        reply: Option<&str>,
        id: Option<&str>,
    ) -> Result<(MessageView, bool)> {
        let wire = match id {
            Some(text_id) => {
                let uuid = Uuid::parse_str(text_id.trim())
                    .map_err(|_| Error::BadInput(format!("{text_id} is not a message id")))?;
                if self.store().message(MessageId(uuid))?.is_some() {
                    return Ok((self.message_view(MessageId(uuid))?, false));
                }
                Some(WireId::from_bytes(*uuid.as_bytes())?)
            }
            None => None,
        };
        if text.trim().is_empty() {
            return Err(Error::BadInput("a message needs some text".into()));
        }
        let summary = self.store().chat_by_id_or_name(chat)?;
        let quoted = match reply {
            Some(r) => {
                let m = self.own_message(r)?;
                if m.chat != summary.id {
                    return Err(Error::MessageNotFound {
                        id: r.to_owned(),
                        chat: chat.to_owned(),
                    });
                }
                Some(m.id)
            }
            None => None,
        };
        let quoted_wire = quoted.map(wire_id).transpose()?;
        let (message_id, _) = self.compose(
            &summary,
            wire,
            |chat| match quoted_wire {
                Some(quoted) => Body::Reply {
                    chat,
                    quoted,
                    text: text.to_owned(),
                },
                None => Body::Text {
                    chat,
                    text: text.to_owned(),
                },
            },
            |id, message_id, now| {
                Some(NewMessage {
                    from_me: true,
                    reply_to: quoted,
                    status: MessageStatus::Sending,
                    ..NewMessage::text(
                        message_id,
                        summary.id,
                        Sender::device(
                            id.account.as_bytes().to_vec(),
                            id.device.index,
                            id.account_name.clone(),
                        ),
                        now,
                        text,
                    )
                })
            },
        )?;
        Ok((self.message_view(message_id)?, true))
    }

    /// Reacts to a message with `emoji` (an empty emoji removes this account's reaction).
    ///
    /// # Errors
    /// [`Error::MessageNotFound`]; [`Error::BadInput`] for a chat without a Tandem contact.
    pub fn react(&self, message: &str, emoji: &str) -> Result<MessageView> {
        self.refuse_without_phone()?;
        let target = self.own_message(message)?;
        let summary = self.chat_summary(target.chat)?;
        let emoji = emoji.trim().to_owned();
        let target_wire = wire_id(target.id)?;
        let (_, id) = self.compose(
            &summary,
            None,
            |chat| Body::Reaction {
                chat,
                target: target_wire,
                emoji: emoji.clone(),
            },
            |_, _, _| None,
        )?;
        let now = now_ms();
        self.store()
            .write(|w| w.set_reaction(target.id, id.account.as_bytes().as_slice(), &emoji, now))?;
        self.message_view(target.id)
    }

    /// Replaces the text of one of this account's messages, on every device.
    ///
    /// # Errors
    /// [`Error::MessageNotFound`]; [`Error::BadInput`] for someone else's or a deleted message.
    pub fn edit(&self, message: &str, text: &str) -> Result<MessageView> {
        self.refuse_without_phone()?;
        if text.trim().is_empty() {
            return Err(Error::BadInput(
                "an edit needs some text (use delete to remove a message)".into(),
            ));
        }
        let target = self.editable(message)?;
        let summary = self.chat_summary(target.chat)?;
        let target_wire = wire_id(target.id)?;
        self.compose(
            &summary,
            None,
            |chat| Body::Edit {
                chat,
                target: target_wire,
                text: text.to_owned(),
            },
            |_, _, _| None,
        )?;
        let now = now_ms();
        self.store()
            .write(|w| w.edit_message(target.id, text, now))?;
        self.message_view(target.id)
    }

    /// Deletes one of this account's messages for everyone.
    ///
    /// # Errors
    /// [`Error::MessageNotFound`]; [`Error::BadInput`] for someone else's message.
    pub fn delete(&self, message: &str) -> Result<MessageView> {
        self.refuse_without_phone()?;
        let target = self.editable(message)?;
        let summary = self.chat_summary(target.chat)?;
        let target_wire = wire_id(target.id)?;
        self.compose(
            &summary,
            None,
            |chat| Body::Delete {
                chat,
                target: target_wire,
            },
            |_, _, _| None,
        )?;
        self.store().write(|w| w.delete_for_everyone(target.id))?;
        self.message_view(target.id)
    }

    fn editable(&self, message: &str) -> Result<Message> {
        let target = self.own_message(message)?;
        if !target.from_me {
            return Err(Error::BadInput(
                "only messages this account wrote can be edited or deleted".into(),
            ));
        }
        if target.deleted {
            return Err(Error::BadInput("that message was deleted".into()));
        }
        Ok(target)
    }

    fn chat_summary(&self, chat: ChatId) -> Result<ChatSummary> {
        self.store().chat(chat)?.ok_or(Error::Corrupt {
            what: "chat",
            reason: "a stored message's chat is missing".into(),
        })
    }

    /// Marks a chat read: its unread count drops to zero, read receipts are queued for the
    /// senders, and this account's other devices are told.
    ///
    /// # Errors
    /// Chat lookup errors.
    pub fn mark_read(&self, chat: &str) -> Result<ReadReport> {
        self.refuse_without_phone()?;
        let id = self.identity()?;
        let summary = self.store().chat_by_id_or_name(chat)?;
        let now = now_ms();
        let mut rng = rng()?;
        let marked = self.store().write(|w| -> Result<u64> {
            let read = w.mark_chat_read(summary.id)?;
            let mut by_account: BTreeMap<Vec<u8>, Vec<WireId>> = BTreeMap::new();
            let mut last = None;
            for (message, account) in &read {
                let wire = wire_id(*message)?;
                last = Some(wire);
                by_account.entry(account.clone()).or_default().push(wire);
            }
            for (account, ids) in by_account {
                let Some(account) = account_from(&account) else {
                    continue;
                };
                if account == id.account {
                    continue;
                }
                for ids in ids.chunks(tandem_proto::body::MAX_RECEIPT_IDS) {
                    let body = Body::Receipt {
                        kind: ReceiptKind::Read,
                        ids: ids.to_vec(),
                    };
                    queue_fanout(w, &account, WireId::new_v7(now, &mut rng)?, now, &body)?;
                }
            }
            if let (Some(last), Ok(chat)) = (last, chat_ref(&summary)) {
                let state = Body::ChatState {
                    chat,
                    muted: summary.muted,
                    pinned: summary.pinned,
                    archived: summary.archived,
                    read_up_to: Some(last),
                };
                queue_fanout(w, &id.account, WireId::new_v7(now, &mut rng)?, now, &state)?;
            }
            Ok(read.len() as u64)
        })?;
        Ok(ReadReport {
            chat: summary.id.0.hyphenated().to_string(),
            marked,
        })
    }

    /// Typing indicators for every device of the chat's other members, sealed now (they are
    /// sent at QoS 0 and never stored).
    pub(crate) fn typing_envelopes(
        &self,
        id: &Identity,
        dir: &Directory,
        chat: &str,
        on: bool,
    ) -> Result<Vec<(DeviceId, Vec<u8>)>> {
        let summary = self.store().chat_by_id_or_name(chat)?;
        let body = Body::Typing {
            chat: chat_ref(&summary)?,
            on,
        };
        let accounts = recipients(self.store(), id, &summary)?;
        let now = now_ms();
        let mut rng = rng()?;
        self.store().write_durable(|w| {
            let mut out = Vec::new();
            for account in accounts.iter().filter(|a| **a != id.account) {
                let Some(list) = dir.get(account) else {
                    continue;
                };
                for device in list.device_ids() {
                    let wire = WireId::new_v7(now, &mut rng)?;
                    out.push((device, seal_message(w, id, list, device, &body, wire, now)?));
                }
            }
            Ok(out)
        })
    }

    /// One message as shown, by its id.
    ///
    /// # Errors
    /// [`Error::MessageNotFound`] when it is not stored.
    pub fn message(&self, id: &str) -> Result<MessageView> {
        let message = self.own_message(id)?;
        self.message_view(message.id)
    }

    /// One message as shown, with its reactions.
    ///
    /// # Errors
    /// [`Error::MessageNotFound`] when it is not stored.
    pub fn message_view(&self, id: MessageId) -> Result<MessageView> {
        let store = self.store();
        let message = store.message(id)?.ok_or_else(|| Error::MessageNotFound {
            id: id.0.hyphenated().to_string(),
            chat: String::new(),
        })?;
        let mut view = message_view(&message);
        view.reactions = self.reaction_views(&[id])?.remove(&id).unwrap_or_default();
        Ok(view)
    }

    /// The reactions of `ids`, with the reacting accounts' names.
    pub(crate) fn reaction_views(
        &self,
        ids: &[MessageId],
    ) -> Result<std::collections::HashMap<MessageId, Vec<ReactionView>>> {
        let store = self.store();
        // This account and its name: the device's identity, or on a bridge-mode desktop (no
        // device identity) the account its link names.
        let own: Option<(AccountId, String)> = match self.identity() {
            Ok(id) => Some((id.account, id.account_name.clone())),
            Err(_) => self.bridge_link().ok().flatten().and_then(|link| {
                Some((link.account.parse::<AccountId>().ok()?, link.account_name))
            }),
        };
        let own_account = own.as_ref().map(|(account, _)| *account);
        let mut names: BTreeMap<Vec<u8>, String> = BTreeMap::new();
        let mut out = std::collections::HashMap::new();
        for (message, reactions) in store.reactions(ids)? {
            let mut views = Vec::with_capacity(reactions.len());
            for r in reactions {
                let from = match names.get(&r.account) {
                    Some(n) => n.clone(),
                    None => {
                        let name = match (account_from(&r.account), &own) {
                            (Some(account), Some((own, own_name))) => {
                                let name = name_of(store, own, own_name, &account)?;
                                match name == account.to_string() {
                                    // Not a contact here (a bridge-mode desktop holds none):
                                    // the name the chat gives its member.
                                    true => member_name(store, message, &account)?.unwrap_or(name),
                                    false => name,
                                }
                            }
                            (Some(account), None) => account.to_string(),
                            (None, _) => String::new(),
                        };
                        names.insert(r.account.clone(), name.clone());
                        name
                    }
                };
                views.push(ReactionView {
                    emoji: r.emoji,
                    from,
                    from_me: own_account
                        .as_ref()
                        .is_some_and(|o| o.as_bytes().as_slice() == r.account),
                });
            }
            out.insert(message, views);
        }
        Ok(out)
    }
}

/// Where a body from `sender` about `chat` is filed here, if the sender may write there:
/// a 1:1 chat only with this account (or, from this account's own devices, any contact); a
/// group only if the sender is a member.
fn local_chat_of(
    w: &mut Writer<'_>,
    store: &Store,
    id: &Identity,
    sender: &AccountId,
    chat: &ChatRef,
) -> Result<Option<ChatId>> {
    let from_me = *sender == id.account;
    match chat.local_chat(&id.account, sender) {
        LocalChat::Direct { peer } => {
            if !from_me && peer != *sender {
                tracing::warn!(%sender, "dropping a message about someone else's 1:1 chat");
                return Ok(None);
            }
            if peer == id.account {
                return Ok(None);
            }
            let existing = store.chat(direct_chat_id(&id.account, &peer))?;
            match existing {
                Some(c) => Ok(Some(c.id)),
                None => {
                    let name = display_name(store, id, &peer)?;
                    Ok(Some(ensure_direct_chat(w, &id.account, &peer, &name)?))
                }
            }
        }
        LocalChat::Group { id: group } => {
            let local = group_chat_id(&group);
            if store.chat(local)?.is_none() {
                tracing::warn!(%sender, "dropping a message for an unknown group");
                return Ok(None);
            }
            if !from_me && !is_member(store, local, sender)? {
                tracing::warn!(%sender, "dropping a group message from a non-member");
                return Ok(None);
            }
            Ok(Some(local))
        }
    }
}

/// Applies an opened messaging body from `header.sender` inside the inbox transaction.
/// Returns `None` for bodies that are not messaging (history sync, device lists, unlink): the
/// caller's role handles those.
pub(crate) fn apply(
    w: &mut DurableWriter<'_>,
    store: &Store,
    id: &Identity,
    header: &EnvelopeHeader,
    body: &Body,
) -> Result<Option<Vec<Effect>>> {
    let sender = header.sender;
    let from_me = sender.account == id.account;
    let ts = header.timestamp_ms;
    let mut effects = Vec::new();
    match body {
        Body::Text { chat, text } | Body::Reply { chat, text, .. } => {
            let Some(local) = local_chat_of(w, store, id, &sender.account, chat)? else {
                return Ok(Some(effects));
            };
            let reply_to = match body {
                Body::Reply { quoted, .. } => Some(store_id(*quoted)),
                _ => None,
            };
            let message_id = store_id(header.message_id);
            let name = display_name(store, id, &sender.account)?;
            let message = NewMessage {
                from_me,
                reply_to,
                kind: MessageKind::Text,
                status: MessageStatus::Sent,
                ..NewMessage::text(
                    message_id,
                    local,
                    Sender::device(sender.account.as_bytes().to_vec(), sender.index, name),
                    ts,
                    text.clone(),
                )
            };
            let added = w.insert_messages(std::slice::from_ref(&message))?;
            if added > 0 {
                if !from_me {
                    w.add_unread(local, 1)?;
                    let receipt = Body::Receipt {
                        kind: ReceiptKind::Delivered,
                        ids: vec![header.message_id],
                    };
                    let now = now_ms();
                    queue_fanout(
                        w,
                        &sender.account,
                        WireId::new_v7(now, &mut rng()?)?,
                        now,
                        &receipt,
                    )?;
                }
                effects.push(Effect::Message {
                    id: message_id,
                    new: true,
                });
            }
        }
        Body::Reaction {
            chat,
            target,
            emoji,
        } => {
            if local_chat_of(w, store, id, &sender.account, chat)?.is_some()
                && w.set_reaction(
                    store_id(*target),
                    sender.account.as_bytes().as_slice(),
                    emoji,
                    ts,
                )?
                && w.chat_of(store_id(*target))?.is_some()
            {
                effects.push(Effect::Message {
                    id: store_id(*target),
                    new: false,
                });
            }
        }
        Body::Edit { chat, target, .. } | Body::Delete { chat, target } => {
            let Some(local) = local_chat_of(w, store, id, &sender.account, chat)? else {
                return Ok(Some(effects));
            };
            let target = store_id(*target);
            let Some(original) = w.message(target)? else {
                tracing::debug!("an edit or delete of a message this device does not hold");
                return Ok(Some(effects));
            };
            if original.chat != local
                || original.sender.account.as_deref() != Some(sender.account.as_bytes().as_slice())
            {
                tracing::warn!(%sender, "dropping an edit or delete of someone else's message");
                return Ok(Some(effects));
            }
            let changed = match body {
                Body::Edit { text, .. } => w.edit_message(target, text, ts)?,
                _ => w.delete_for_everyone(target)?,
            };
            if changed {
                effects.push(Effect::Message {
                    id: target,
                    new: false,
                });
            }
        }
        Body::Receipt { kind, ids } => {
            if from_me {
                return Ok(Some(effects));
            }
            let status = match kind {
                ReceiptKind::Delivered => MessageStatus::Delivered,
                ReceiptKind::Read => MessageStatus::Read,
            };
            for wire in ids {
                let message_id = store_id(*wire);
                let Some(message) = w.message(message_id)? else {
                    continue;
                };
                if !message.from_me || !may_receipt(store, &message, &sender.account)? {
                    continue;
                }
                if w.set_status(message_id, status)? {
                    effects.push(Effect::Status {
                        id: message_id,
                        status,
                    });
                }
            }
        }
        Body::Typing { chat, on } => {
            if let Some(local) = local_chat_of(w, store, id, &sender.account, chat)?
                && !from_me
            {
                effects.push(Effect::Typing {
                    chat: local,
                    from: display_name(store, id, &sender.account)?,
                    account: sender.account,
                    on: *on,
                });
            }
        }
        Body::ContactCard { link } => {
            if !from_me {
                return Ok(Some(effects));
            }
            let parsed: tandem_crypto::ContactLink = link.parse()?;
            if parsed.account_id() != id.account {
                save_contact(w, &id.account, &parsed, parsed.name())?;
                effects.push(Effect::Contact {
                    account: parsed.account_id(),
                    name: parsed.name().to_owned(),
                });
            }
        }
        Body::ChatState {
            chat,
            muted,
            pinned,
            archived,
            read_up_to,
        } => {
            if !from_me {
                return Ok(Some(effects));
            }
            let Some(local) = local_chat_of(w, store, id, &sender.account, chat)? else {
                return Ok(Some(effects));
            };
            w.set_muted(local, *muted)?;
            w.set_pinned(local, *pinned)?;
            w.set_archived(local, *archived)?;
            if read_up_to.is_some() {
                w.mark_chat_read(local)?;
            }
            effects.push(Effect::Chat { chat: local });
        }
        Body::GroupInfo { .. } => {
            effects.extend(crate::groups::apply_group_info(
                w,
                store,
                id,
                &sender.account,
                body,
            )?);
        }
        Body::HistoryChunk { .. } | Body::DeviceListNotice { .. } | Body::Unlink { .. } => {
            return Ok(None);
        }
    }
    Ok(Some(effects))
}

/// Whether `account` may send receipts for `message` (a member of its chat).
fn may_receipt(store: &Store, message: &Message, account: &AccountId) -> Result<bool> {
    let Some(chat) = store.chat(message.chat)? else {
        return Ok(false);
    };
    Ok(match chat.kind {
        ChatKind::Group => is_member(store, chat.id, account)?,
        _ => chat.peer_account.as_deref() == Some(account.as_bytes().as_slice()),
    })
}

/// Seals queued fan-out rows whose account's device list is known into outbox envelopes, one
/// per device of the newest list (this device left out), in one durable transaction (the
/// advanced sessions commit with the envelopes). Returns how many rows were sealed; rows of
/// accounts without a known list wait.
pub(crate) fn seal_fanout(
    w: &mut DurableWriter<'_>,
    id: &Identity,
    dir: &Directory,
) -> Result<usize> {
    let mut sealed = 0;
    let now = now_ms();
    let mut rows = Vec::new();
    for account in dir.accounts() {
        rows.extend(w.fanout_for(account.as_bytes().as_slice(), SEAL_BATCH)?);
    }
    let mut sessions = Sessions::default();
    for row in rows {
        let item = &row.item;
        let Some(account) = account_from(&item.account) else {
            continue;
        };
        let Some(list) = dir.get(&account) else {
            continue;
        };
        let body = queued_body(item.kind, &item.body)?;
        let wire = wire_id(item.message_id)?;
        for cert in list.certificates() {
            let device: DeviceId = cert.device_id();
            if device == id.device {
                continue;
            }
            let envelope = sessions.seal(w, id, list, device, &body, wire, item.ts)?;
            w.enqueue(&NewOutboxItem {
                message_id: item.message_id,
                recipient_account: account.as_bytes().to_vec(),
                recipient_device: device.index,
                payload: envelope,
                created_at: now,
            })?;
        }
        w.fanout_done(row.id)?;
        sealed += 1;
        if w.unsent_of(item.message_id)? == 0 {
            w.set_status(item.message_id, MessageStatus::Sent)?;
        }
    }
    sessions.store(w)?;
    Ok(sealed)
}

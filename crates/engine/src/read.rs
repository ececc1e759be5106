//! The read API: status, the chat list, a page of history, search. Everything here reads the
//! local store only, so it answers with no network at all.

use tandem_crypto::{DeviceCertificate, DeviceId};
use tandem_store::{ChatKind, ChatSummary, Cursor, MessageId, SyncPhase, SyncRole, identity};
use uuid::Uuid;

use crate::account::account_key_from;
use crate::views::message_view;
use crate::{
    About, ChatView, Engine, Error, LastMessage, MessageView, Result, SearchHitView, Status,
    SyncView,
};

/// Which page of a chat [`Engine::history_page`] reads (message ids as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// The newest messages.
    Newest,
    /// The messages just older than this one.
    Before(String),
    /// The messages just newer than this one.
    After(String),
    /// A page centred on this message (it included): for jumping to a search hit or a quote.
    Around(String),
}

/// The most messages or hits one call returns.
pub const MAX_LIMIT: usize = 1000;

impl Engine {
    /// Account, device, mode, store counts and sync progress.
    pub fn status(&self) -> Result<Status> {
        let store = self.store();
        let counts = store.counts()?;
        let mode = store
            .identity(identity::MODE)?
            .map(|m| String::from_utf8_lossy(m.expose()).into_owned());
        let (account, device) = if let Some(key) = store.identity(identity::ACCOUNT_KEY)? {
            let account = account_key_from(key.expose())?.account_id();
            (
                Some(account.to_string()),
                Some(DeviceId::primary(account).to_string()),
            )
        } else if let Some(cert) = store.identity(identity::DEVICE_CERTIFICATE)? {
            let cert = DeviceCertificate::from_bytes(cert.expose())?;
            (
                Some(cert.account_id().to_string()),
                Some(cert.device_id().to_string()),
            )
        } else if let Some(key) = store.identity(identity::ACCOUNT_PUBLIC_KEY)? {
            // A bridge-mode desktop: an account, but no device of it.
            (Some(bridge_account(key.expose())?.to_string()), None)
        } else {
            (None, None)
        };
        let mode = match (mode.as_deref(), &account) {
            (_, None) => "unlinked",
            (Some("primary"), _) => "primary",
            (Some("bridge"), _) => "bridge",
            _ => "multi",
        };
        let sync = store
            .sync_states()?
            .into_iter()
            .filter(|s| s.role == SyncRole::Receiver || mode == "primary")
            .max_by_key(|s| s.updated_at)
            .map_or(
                SyncView {
                    state: "none",
                    done: 0,
                    total: 0,
                    chunks_done: 0,
                    chunks_total: 0,
                },
                |s| SyncView {
                    state: match s.phase {
                        SyncPhase::Complete => "complete",
                        SyncPhase::Running => "running",
                        _ => "stopped",
                    },
                    done: s.messages_done,
                    total: s.messages_total,
                    chunks_done: s.chunks_done,
                    chunks_total: s.chunks_total,
                },
            );
        let bridge_url = if mode == "bridge" {
            store
                .identity(identity::BRIDGE_URL)?
                .map(|v| String::from_utf8_lossy(v.expose()).into_owned())
        } else {
            None
        };
        let brokers = match (mode, store.identity(identity::BROKER_URL)?) {
            ("bridge" | "unlinked", _) | (_, None) => Vec::new(),
            (_, Some(list)) => {
                crate::identity::broker_entries(&String::from_utf8_lossy(list.expose()))
            }
        };
        Ok(Status {
            linked: account.is_some(),
            account,
            device,
            mode,
            bridge_url,
            phone_reachable: None,
            brokers,
            broker: None,
            chats: counts.chats,
            messages: counts.messages,
            sync,
        })
    }

    /// `PRAGMA integrity_check` of the store: the problems found (empty when sound).
    pub fn store_integrity(&self) -> Result<Vec<String>> {
        Ok(self.store().integrity_check()?)
    }

    /// Every chat, pinned first, then by last activity.
    pub fn chats(&self) -> Result<Vec<ChatView>> {
        Ok(self.store().chats()?.iter().map(chat_view).collect())
    }

    /// A chat's messages, oldest first: the newest `limit`, or the `limit` before message
    /// `before`. `chat` is a chat id or an exact chat name.
    pub fn history(
        &self,
        chat: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Vec<MessageView>> {
        let page = match before {
            None => Page::Newest,
            Some(id) => Page::Before(id.to_owned()),
        };
        self.history_page(chat, &page, limit)
    }

    /// One page of a chat, oldest first (keyset-paged: as fast deep in history as at the end).
    /// A page shorter than `limit` (for [`Page::Around`]: than its half on either side) means
    /// the chat's end was reached in that direction. `chat` is a chat id or an exact name.
    ///
    /// # Errors
    /// The store's `ChatNotFound` for an unknown chat; [`Error::MessageNotFound`]
    /// when the page's message is not in that chat; store errors.
    pub fn history_page(&self, chat: &str, page: &Page, limit: usize) -> Result<Vec<MessageView>> {
        let store = self.store();
        let summary = store.chat_by_id_or_name(chat)?;
        let limit = limit.clamp(1, MAX_LIMIT);
        let anchor = |text: &str| -> Result<tandem_store::Message> {
            let not_found = || Error::MessageNotFound {
                id: text.to_owned(),
                chat: chat.to_owned(),
            };
            let id = Uuid::parse_str(text.trim()).map_err(|_| not_found())?;
            let message = store.message(MessageId(id))?.ok_or_else(not_found)?;
            if message.chat != summary.id {
                return Err(not_found());
            }
            Ok(message)
        };
        let messages = match page {
            Page::Newest => store.page(summary.id, Cursor::Newest, limit)?,
            Page::Before(id) => store.page(summary.id, anchor(id)?.before(), limit)?,
            Page::After(id) => store.page(summary.id, anchor(id)?.after(), limit)?,
            Page::Around(id) => {
                let message = anchor(id)?;
                let half = limit / 2;
                let mut around = store.page(summary.id, message.before(), half)?;
                let after = store.page(summary.id, message.after(), limit - half - 1)?;
                around.push(message);
                around.extend(after);
                around
            }
        };
        self.message_views(&messages)
    }

    /// Views of stored messages with their reactions.
    fn message_views(&self, messages: &[tandem_store::Message]) -> Result<Vec<MessageView>> {
        let ids: Vec<MessageId> = messages.iter().map(|m| m.id).collect();
        let mut reactions = self.reaction_views(&ids)?;
        Ok(messages
            .iter()
            .map(|m| {
                let mut view = message_view(m);
                view.reactions = reactions.remove(&m.id).unwrap_or_default();
                view
            })
            .collect())
    }

    /// Pins or unpins, mutes or unmutes a chat (on this device only); `None` leaves a flag as
    /// it is.
    ///
    /// # Errors
    /// For an unknown chat; store errors.
    pub fn set_chat(
        &self,
        chat: &str,
        pinned: Option<bool>,
        muted: Option<bool>,
    ) -> Result<ChatView> {
        let id = self.store().chat_by_id_or_name(chat)?.id;
        self.store().write(|w| {
            if let Some(pinned) = pinned {
                w.set_pinned(id, pinned)?;
            }
            if let Some(muted) = muted {
                w.set_muted(id, muted)?;
            }
            Ok::<_, Error>(())
        })?;
        let summary = self
            .store()
            .chat(id)?
            .ok_or_else(|| Error::BadInput(format!("chat {chat} disappeared")))?;
        Ok(chat_view(&summary))
    }

    /// This device: account name, id, name, mode, broker and when it was linked.
    ///
    /// # Errors
    /// Store errors.
    pub fn about(&self) -> Result<About> {
        let status = self.status()?;
        let store = self.store();
        let text = |name: &str| -> Result<Option<String>> {
            Ok(store
                .identity(name)?
                .map(|v| String::from_utf8_lossy(v.expose()).into_owned()))
        };
        let account_name = text(identity::ACCOUNT_NAME)?;
        let broker = text(identity::BROKER_URL)?;
        let mut device_name = text(identity::DEVICE_NAME)?;
        let mut linked_at = None;
        if status.linked
            && let Ok(me) = self.identity()
            && let Some(cert) = me
                .list
                .certificates()
                .iter()
                .find(|c| c.device_id() == me.device)
        {
            linked_at = Some(cert.linked_at_ms());
            if device_name.is_none() {
                device_name = Some(cert.name().to_owned());
            }
        }
        Ok(About {
            account_name,
            device: status.device,
            device_name,
            mode: status.mode,
            broker,
            linked_at,
        })
    }

    /// Full-text search, newest first; `chat` (an id or exact name) narrows it to one chat.
    pub fn search(
        &self,
        query: &str,
        chat: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SearchHitView>> {
        let store = self.store();
        let chat = match chat {
            Some(c) => Some(store.chat_by_id_or_name(c)?.id),
            None => None,
        };
        Ok(store
            .search(query, chat, limit.min(MAX_LIMIT))?
            .iter()
            .map(|hit| SearchHitView {
                message: message_view(&hit.message),
                chat_name: hit.chat_name.clone(),
            })
            .collect())
    }
}

pub(crate) fn chat_view(c: &ChatSummary) -> ChatView {
    ChatView {
        id: c.id.0.hyphenated().to_string(),
        name: c.name.clone(),
        kind: match c.kind {
            ChatKind::Group => "group",
            _ => "direct",
        },
        messages: c.message_count,
        last_ts: (c.message_count > 0).then_some(c.last_ts),
        unread: c.unread,
        muted: c.muted,
        pinned: c.pinned,
        last: c.last_message.as_ref().map(|p| {
            let text = match (&p.kind, p.text.is_empty(), &p.media_name) {
                (tandem_store::MessageKind::Media, true, Some(name)) => name.clone(),
                _ => p.text.clone(),
            };
            LastMessage {
                sender: (!p.sender.name.is_empty()).then(|| p.sender.name.clone()),
                from_me: p.from_me,
                kind: if p.deleted {
                    "deleted".to_owned()
                } else {
                    p.kind.as_str().to_owned()
                },
                text: if p.deleted { String::new() } else { text },
                ts: c.last_ts,
            }
        }),
    }
}

/// The account id of a bridge-mode desktop, from the account key it stored.
fn bridge_account(key: &[u8]) -> Result<tandem_crypto::AccountId> {
    let bytes = <[u8; 32]>::try_from(key).map_err(|_| Error::Corrupt {
        what: "account public key",
        reason: format!("{} bytes instead of 32", key.len()),
    })?;
    Ok(tandem_crypto::AccountPublicKey::from_bytes(&bytes)?.account_id())
}

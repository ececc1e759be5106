//! The read API: status, the chat list, a page of history, search. Everything here reads the
//! local store only, so it answers with no network at all.

use tandem_crypto::{DeviceCertificate, DeviceId};
use tandem_store::{ChatKind, ChatSummary, Cursor, MessageId, SyncPhase, SyncRole, identity};
use uuid::Uuid;

use crate::account::account_key_from;
use crate::views::message_view;
use crate::{ChatView, Engine, Error, MessageView, Result, SearchHitView, Status, SyncView};

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
        Ok(Status {
            linked: account.is_some(),
            account,
            device,
            mode,
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
        let store = self.store();
        let summary = store.chat_by_id_or_name(chat)?;
        let cursor = match before {
            None => Cursor::Newest,
            Some(text) => {
                let not_found = || Error::MessageNotFound {
                    id: text.to_owned(),
                    chat: chat.to_owned(),
                };
                let id = Uuid::parse_str(text.trim()).map_err(|_| not_found())?;
                let message = store.message(MessageId(id))?.ok_or_else(not_found)?;
                if message.chat != summary.id {
                    return Err(not_found());
                }
                message.before()
            }
        };
        let page = store.page(summary.id, cursor, limit.min(MAX_LIMIT))?;
        let ids: Vec<MessageId> = page.iter().map(|m| m.id).collect();
        let mut reactions = self.reaction_views(&ids)?;
        Ok(page
            .iter()
            .map(|m| {
                let mut view = message_view(m);
                view.reactions = reactions.remove(&m.id).unwrap_or_default();
                view
            })
            .collect())
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
    }
}

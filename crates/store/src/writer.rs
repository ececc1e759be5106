//! Writing: a [`Writer`] wraps one SQLite transaction, so whatever a caller does inside
//! [`crate::Store::write`] commits or rolls back as one unit (an import file, a history chunk,
//! a message with its outbox rows). [`DurableWriter`] adds the writes of key material and
//! protocol state and is only handed out by [`crate::Store::write_durable`], which commits
//! under `synchronous=FULL`.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use crate::error::{Error, Result, SqlContext};
use crate::queries;
use crate::rowid;
use crate::secret::SecretBytes;
use crate::types::{
    Account, BridgeChange, BridgeDesktop, ChatId, Contact, Device, Message, MessageId,
    MessageStatus, NewChat, NewMessage, NewOutboxItem, OutboxId, SyncState,
};

const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (rowid, id, chat, sender_account, sender_device, sender_name, from_me, ts, kind, text, media_name, \
      reply_to, edited_at, deleted, status) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (id) DO NOTHING";

/// Indexes one inserted message (the tag expression is the one of `messages.chat_tag`).
const INDEX_MESSAGE: &str = "INSERT INTO messages_fts (rowid, text, chat_tag) \
     VALUES (?1, ?2, 'c' || lower(hex(?3)))";

/// A write transaction in progress (see [`crate::Store::write`]).
pub struct Writer<'c> {
    pub(crate) conn: &'c Connection,
    /// Whether this store serves bridge desktops, read at the first change they must hear of.
    serves_bridge: Option<bool>,
}

/// A write transaction committed under `synchronous=FULL`, for key material and protocol state
/// (see [`crate::Store::write_durable`]). Everything a [`Writer`] does is available too.
pub struct DurableWriter<'c> {
    pub(crate) inner: Writer<'c>,
}

impl<'c> Deref for DurableWriter<'c> {
    type Target = Writer<'c>;
    fn deref(&self) -> &Writer<'c> {
        &self.inner
    }
}

impl DerefMut for DurableWriter<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

fn constraint(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            Some(f.extended_code)
        }
        _ => None,
    }
}

fn to_i64(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::OutOfRange {
        what,
        value: value.to_string(),
    })
}

impl<'c> Writer<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            serves_bridge: None,
        }
    }

    /// Records a change for the bridge desktops (`0004_bridge_changes.sql`), in this
    /// transaction, when the store has any.
    pub(crate) fn changed_for_bridge(&mut self, change: &BridgeChange) -> Result<()> {
        let serves = match self.serves_bridge {
            Some(serves) => serves,
            None => {
                let serves = self
                    .conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM bridge_desktops)")
                    .ctx("reading whether bridge desktops are linked")?
                    .query_row([], |r| r.get(0))
                    .ctx("reading whether bridge desktops are linked")?;
                self.serves_bridge = Some(serves);
                serves
            }
        };
        if !serves {
            return Ok(());
        }
        let (kind, target, extra): (i64, &[u8; 16], Option<&[u8]>) = match change {
            BridgeChange::NewMessage(id) => (0, id.as_bytes(), None),
            BridgeChange::Message(id) => (1, id.as_bytes(), None),
            BridgeChange::Status(id) => (4, id.as_bytes(), None),
            BridgeChange::Reaction { message, account } => {
                (2, message.as_bytes(), Some(account.as_slice()))
            }
            BridgeChange::ChatRead { chat, up_to } => {
                (3, chat.as_bytes(), Some(up_to.as_bytes().as_slice()))
            }
        };
        self.conn
            .prepare_cached("INSERT INTO bridge_changes (kind, target, extra) VALUES (?1, ?2, ?3)")
            .ctx("recording a change for bridge desktops")?
            .execute(params![kind, target.as_slice(), extra])
            .ctx("recording a change for bridge desktops")?;
        Ok(())
    }

    /// Deletes the bridge changes numbered up to `through` (logged for the desktops).
    ///
    /// # Errors
    /// On a database failure.
    pub fn drop_bridge_changes_through(&mut self, through: i64) -> Result<u64> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM bridge_changes WHERE id <= ?1")
            .ctx("dropping logged bridge changes")?
            .execute([through])
            .ctx("dropping logged bridge changes")?;
        Ok(n as u64)
    }

    /// Creates a chat or updates its kind, name and peer; replaces its member list with
    /// `chat.members`. Counters, flags and unread counts are left as they are.
    ///
    /// # Errors
    /// On a database failure.
    pub fn upsert_chat(&mut self, chat: &NewChat) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO chats (id, kind, name, peer_account, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
                 peer_account = excluded.peer_account",
            )
            .ctx("saving a chat")?
            .execute(params![chat.id, chat.kind, chat.name, chat.peer_account, chat.created_at])
            .ctx("saving a chat")?;
        self.conn
            .prepare_cached("DELETE FROM chat_members WHERE chat = ?1")
            .ctx("saving chat members")?
            .execute([chat.id])
            .ctx("saving chat members")?;
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT INTO chat_members (chat, position, account, name) VALUES (?1, ?2, ?3, ?4)",
            )
            .ctx("saving chat members")?;
        for (position, member) in chat.members.iter().enumerate() {
            let position = to_i64("member position", position as u64)?;
            insert
                .execute(params![chat.id, position, member.account, member.name])
                .ctx("saving chat members")?;
        }
        Ok(())
    }

    /// Inserts messages; ids already stored are skipped. Returns how many were really added.
    /// Each chat's message count and last message are updated in the same transaction.
    ///
    /// # Errors
    /// [`Error::UnknownChat`] when a message names a chat that does not exist (nothing of the
    /// transaction is kept once the closure returns the error); a database failure.
    pub fn insert_messages(&mut self, messages: &[NewMessage]) -> Result<usize> {
        let mut stmt = self
            .conn
            .prepare_cached(INSERT_MESSAGE)
            .ctx("preparing the message insert")?;
        let mut index = self
            .conn
            .prepare_cached(INDEX_MESSAGE)
            .ctx("preparing the search index insert")?;
        let mut added_per_chat: BTreeMap<ChatId, u64> = BTreeMap::new();
        let mut added_ids = Vec::new();
        for m in messages {
            let mut rowid = rowid::preferred(m.ts, &m.id);
            let mut probes = 0;
            let changed = loop {
                let result = stmt.execute(params![
                    rowid,
                    m.id,
                    m.chat,
                    m.sender.account,
                    m.sender.device,
                    m.sender.name,
                    m.from_me,
                    m.ts,
                    m.kind,
                    m.text,
                    m.media_name,
                    m.reply_to,
                    m.edited_at,
                    m.deleted,
                    m.status,
                ]);
                match result {
                    Ok(n) => break n,
                    Err(e) => match constraint(&e) {
                        Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
                            probes += 1;
                            rowid = match rowid.checked_add(1) {
                                Some(next) if probes < rowid::MAX_PROBES => next,
                                _ => {
                                    return Err(Error::RowIdSpace {
                                        ts: m.ts,
                                        message: m.id,
                                    });
                                }
                            };
                        }
                        Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                            return Err(Error::UnknownChat {
                                chat: m.chat,
                                message: m.id,
                            });
                        }
                        _ => {
                            return Err(Error::Sqlite {
                                context: "inserting a message",
                                source: e,
                            });
                        }
                    },
                }
            };
            if changed > 0 && !m.text.is_empty() {
                index
                    .execute(params![rowid, m.text, m.chat])
                    .ctx("indexing a message for search")?;
            }
            if changed > 0 {
                added_ids.push(m.id);
                *added_per_chat.entry(m.chat).or_default() += 1;
            }
        }
        drop((stmt, index));
        for (chat, n) in added_per_chat {
            self.refresh_chat(chat, to_i64("message count", n)?)?;
        }
        for id in &added_ids {
            self.changed_for_bridge(&BridgeChange::NewMessage(*id))?;
        }
        Ok(added_ids.len())
    }

    /// Adds `delta` to a chat's message count and recomputes its newest message.
    fn refresh_chat(&mut self, chat: ChatId, delta: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE chats SET message_count = message_count + ?2, \
                 last_ts = coalesce((SELECT ts FROM messages WHERE chat = ?1 ORDER BY ts DESC, id DESC LIMIT 1), 0), \
                 last_message = (SELECT rowid FROM messages WHERE chat = ?1 ORDER BY ts DESC, id DESC LIMIT 1) \
                 WHERE id = ?1",
            )
            .ctx("updating chat counters")?
            .execute(params![chat, delta])
            .ctx("updating chat counters")?;
        Ok(())
    }

    /// Replaces a message's text after an edit. Ignored (returns false) when the message is
    /// unknown, deleted, or already carries a later edit.
    ///
    /// # Errors
    /// On a database failure.
    pub fn edit_message(&mut self, id: MessageId, text: &str, edited_at: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE messages SET text = ?2, edited_at = ?3 \
                 WHERE id = ?1 AND deleted = 0 AND (edited_at IS NULL OR edited_at < ?3)",
            )
            .ctx("editing a message")?
            .execute(params![id, text, edited_at])
            .ctx("editing a message")?;
        self.message_changed(id, n)
    }

    /// Deletes a message for everyone: it stays in its chat as a "deleted" row with no text or
    /// media, and leaves the search index. Returns false when unknown or already deleted.
    ///
    /// # Errors
    /// On a database failure.
    pub fn delete_for_everyone(&mut self, id: MessageId) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE messages SET deleted = 1, text = '', media_name = NULL WHERE id = ?1 AND deleted = 0")
            .ctx("deleting a message")?
            .execute([id])
            .ctx("deleting a message")?;
        self.message_changed(id, n)
    }

    /// Removes a message from this store entirely ("delete for me"). Returns false when unknown.
    ///
    /// # Errors
    /// On a database failure.
    pub fn remove_message(&mut self, id: MessageId) -> Result<bool> {
        let chat: Option<ChatId> = self
            .conn
            .prepare_cached("DELETE FROM messages WHERE id = ?1 RETURNING chat")
            .ctx("removing a message")?
            .query_row([id], |r| r.get(0))
            .optional()
            .ctx("removing a message")?;
        match chat {
            Some(chat) => {
                self.refresh_chat(chat, -1)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Moves a message's delivery status forward (never back: a late "delivered" after "read"
    /// changes nothing). Returns whether it changed.
    ///
    /// # Errors
    /// On a database failure.
    pub fn set_status(&mut self, id: MessageId, status: MessageStatus) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE messages SET status = ?2 WHERE id = ?1 AND status < ?2")
            .ctx("updating a message status")?
            .execute(params![id, status])
            .ctx("updating a message status")?;
        if n > 0 {
            self.changed_for_bridge(&BridgeChange::Status(id))?;
        }
        Ok(n > 0)
    }

    /// Whether `rows` (of one message) changed; records the change for bridge desktops.
    fn message_changed(&mut self, id: MessageId, rows: usize) -> Result<bool> {
        if rows > 0 {
            self.changed_for_bridge(&BridgeChange::Message(id))?;
        }
        Ok(rows > 0)
    }

    fn set_chat_column(&mut self, sql: &'static str, chat: ChatId, value: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(sql)
            .ctx("updating a chat")?
            .execute(params![chat, value])
            .ctx("updating a chat")?;
        Ok(n > 0)
    }

    /// Mutes or unmutes a chat. Returns false when the chat is unknown.
    ///
    /// # Errors
    /// On a database failure.
    pub fn set_muted(&mut self, chat: ChatId, muted: bool) -> Result<bool> {
        self.set_chat_column(
            "UPDATE chats SET muted = ?2 WHERE id = ?1",
            chat,
            i64::from(muted),
        )
    }

    /// Pins or unpins a chat. Returns false when the chat is unknown.
    ///
    /// # Errors
    /// On a database failure.
    pub fn set_pinned(&mut self, chat: ChatId, pinned: bool) -> Result<bool> {
        self.set_chat_column(
            "UPDATE chats SET pinned = ?2 WHERE id = ?1",
            chat,
            i64::from(pinned),
        )
    }

    /// Archives or unarchives a chat. Returns false when the chat is unknown.
    ///
    /// # Errors
    /// On a database failure.
    pub fn set_archived(&mut self, chat: ChatId, archived: bool) -> Result<bool> {
        self.set_chat_column(
            "UPDATE chats SET archived = ?2 WHERE id = ?1",
            chat,
            i64::from(archived),
        )
    }

    /// Sets a chat's unread count (0 marks it read). Returns false when the chat is unknown.
    ///
    /// # Errors
    /// On a database failure or a count beyond `i64::MAX`.
    pub fn set_unread(&mut self, chat: ChatId, unread: u64) -> Result<bool> {
        let unread = to_i64("unread count", unread)?;
        self.set_chat_column("UPDATE chats SET unread = ?2 WHERE id = ?1", chat, unread)
    }

    /// Adds to a chat's unread count. Returns false when the chat is unknown.
    ///
    /// # Errors
    /// On a database failure or a count beyond `i64::MAX`.
    pub fn add_unread(&mut self, chat: ChatId, more: u64) -> Result<bool> {
        let more = to_i64("unread count", more)?;
        self.set_chat_column(
            "UPDATE chats SET unread = unread + ?2 WHERE id = ?1",
            chat,
            more,
        )
    }

    /// Removes a chat with its members and messages. Returns false when unknown.
    ///
    /// # Errors
    /// On a database failure.
    pub fn remove_chat(&mut self, chat: ChatId) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM chats WHERE id = ?1")
            .ctx("removing a chat")?
            .execute([chat])
            .ctx("removing a chat")?;
        Ok(n > 0)
    }

    /// Creates or updates a known account.
    ///
    /// # Errors
    /// On a database failure.
    pub fn upsert_account(&mut self, account: &Account) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO accounts (id, public_key, display_name) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, \
                 display_name = excluded.display_name",
            )
            .ctx("saving an account")?
            .execute(params![
                account.id,
                account.public_key,
                account.display_name
            ])
            .ctx("saving an account")?;
        Ok(())
    }

    /// Adds or renames a contact; its account must be known ([`Self::upsert_account`]).
    ///
    /// # Errors
    /// On a database failure, or when the account is unknown.
    pub fn upsert_contact(&mut self, contact: &Contact) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO contacts (account, name, added_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (account) DO UPDATE SET name = excluded.name",
            )
            .ctx("saving a contact")?
            .execute(params![contact.account, contact.name, contact.added_at])
            .ctx("saving a contact")?;
        Ok(())
    }

    /// Removes a contact (the account stays known). Returns false when it was not a contact.
    ///
    /// # Errors
    /// On a database failure.
    pub fn remove_contact(&mut self, account: &[u8]) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM contacts WHERE account = ?1")
            .ctx("removing a contact")?
            .execute([account])
            .ctx("removing a contact")?;
        Ok(n > 0)
    }

    /// Queues an envelope for sending; returns the outbox row's id.
    ///
    /// # Errors
    /// On a database failure.
    pub fn enqueue(&mut self, item: &NewOutboxItem) -> Result<OutboxId> {
        let id = self
            .conn
            .prepare_cached(
                "INSERT INTO outbox (message_id, recipient_account, recipient_device, payload, created_at, \
                 attempts, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?5) RETURNING id",
            )
            .ctx("queueing an envelope")?
            .query_row(
                params![item.message_id, item.recipient_account, item.recipient_device, item.payload, item.created_at],
                |r| r.get(0),
            )
            .ctx("queueing an envelope")?;
        Ok(OutboxId(id))
    }

    /// Removes a sent envelope from the outbox. Returns false when it was not there.
    ///
    /// # Errors
    /// On a database failure.
    pub fn outbox_done(&mut self, id: OutboxId) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM outbox WHERE id = ?1")
            .ctx("clearing an outbox row")?
            .execute([id.0])
            .ctx("clearing an outbox row")?;
        Ok(n > 0)
    }

    /// Records a failed attempt and when to try again. Returns false when the row is gone.
    ///
    /// # Errors
    /// On a database failure.
    pub fn outbox_retry(&mut self, id: OutboxId, next_attempt_at: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
            )
            .ctx("rescheduling an outbox row")?
            .execute(params![id.0, next_attempt_at])
            .ctx("rescheduling an outbox row")?;
        Ok(n > 0)
    }

    /// Replay detection: records an envelope id; true if it was new, false if seen before.
    ///
    /// # Errors
    /// On a database failure.
    pub fn remember_envelope(&mut self, id: MessageId, now: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("INSERT INTO seen_envelopes (id, seen_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING")
            .ctx("recording an envelope id")?
            .execute(params![id, now])
            .ctx("recording an envelope id")?;
        Ok(n > 0)
    }

    /// Forgets envelope ids seen before `before` (ms); returns how many.
    ///
    /// # Errors
    /// On a database failure.
    pub fn prune_envelopes(&mut self, before: i64) -> Result<u64> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM seen_envelopes WHERE seen_at < ?1")
            .ctx("pruning envelope ids")?
            .execute([before])
            .ctx("pruning envelope ids")?;
        Ok(n as u64)
    }

    /// A message as the transaction sees it.
    ///
    /// # Errors
    /// On a database failure.
    pub fn message(&self, id: MessageId) -> Result<Option<Message>> {
        queries::message(self.conn, id)
    }

    /// A sync's progress as the transaction sees it.
    ///
    /// # Errors
    /// On a database failure.
    pub fn sync_state(&self, sync_id: &[u8]) -> Result<Option<SyncState>> {
        queries::sync_state(self.conn, sync_id)
    }

    /// Appends one event to the phone's bridge log (`body`: the encoded event) and returns its
    /// sequence number: one above every number given out before, even pruned ones.
    ///
    /// # Errors
    /// On a database failure.
    pub fn append_bridge_event(&mut self, body: &[u8], at: i64) -> Result<u64> {
        self.conn
            .prepare_cached("INSERT INTO bridge_events (body, at) VALUES (?1, ?2)")
            .ctx("logging a bridge event")?
            .execute(params![body, at])
            .ctx("logging a bridge event")?;
        Ok(u64::try_from(self.conn.last_insert_rowid()).unwrap_or(0))
    }

    /// Records that desktop `public_key` stored the bridge events up to `up_to` (a lower
    /// number than recorded changes nothing).
    ///
    /// # Errors
    /// On a database failure.
    pub fn record_bridge_ack(&mut self, public_key: &[u8], up_to: u64) -> Result<()> {
        let up_to = i64::try_from(up_to).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached(
                "INSERT INTO bridge_acks (public_key, up_to) VALUES (?1, ?2) \
                 ON CONFLICT (public_key) DO UPDATE SET up_to = max(up_to, excluded.up_to)",
            )
            .ctx("recording a bridge acknowledgement")?
            .execute(params![public_key, up_to])
            .ctx("recording a bridge acknowledgement")?;
        Ok(())
    }

    /// Drops every bridge event with `seq <= through`; returns how many.
    ///
    /// # Errors
    /// On a database failure.
    pub fn drop_bridge_events_through(&mut self, through: u64) -> Result<u64> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        let n = self
            .conn
            .prepare_cached("DELETE FROM bridge_events WHERE seq <= ?1")
            .ctx("pruning the bridge event log")?
            .execute([through])
            .ctx("pruning the bridge event log")?;
        Ok(n as u64)
    }

    /// On a bridge-mode desktop: queues message `id` (already written, "sending") for the
    /// phone.
    ///
    /// # Errors
    /// On a database failure.
    pub fn queue_bridge_send(&mut self, id: MessageId, at: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO bridge_outbox (message_id, queued_at) VALUES (?1, ?2) \
                 ON CONFLICT (message_id) DO NOTHING",
            )
            .ctx("queueing a message for the phone")?
            .execute(params![id, at])
            .ctx("queueing a message for the phone")?;
        Ok(())
    }

    /// On a bridge-mode desktop: message `id` reached the phone. Returns false when it was
    /// not queued.
    ///
    /// # Errors
    /// On a database failure.
    pub fn bridge_send_done(&mut self, id: MessageId) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM bridge_outbox WHERE message_id = ?1")
            .ctx("settling a message sent through the phone")?
            .execute([id])
            .ctx("settling a message sent through the phone")?;
        Ok(n > 0)
    }
}

impl DurableWriter<'_> {
    /// Sets one value of this device's identity (account key, device keys, role, mode, broker...).
    ///
    /// # Errors
    /// On a database failure.
    pub fn put_identity(&mut self, name: &str, value: &[u8]) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO identity (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .ctx("saving the identity")?
            .execute(params![name, value])
            .ctx("saving the identity")?;
        Ok(())
    }

    /// Authorises a desktop on the phone's bridge (replacing the row of the same key).
    ///
    /// # Errors
    /// On a database failure, or a key that is not 32 bytes.
    pub fn put_bridge_desktop(&mut self, desktop: &BridgeDesktop) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO bridge_desktops (public_key, name, platform, linked_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (public_key) DO UPDATE SET \
                 name = excluded.name, platform = excluded.platform, linked_at = excluded.linked_at",
            )
            .ctx("authorising a bridge desktop")?
            .execute(params![
                desktop.public_key,
                desktop.name,
                desktop.platform,
                desktop.linked_at
            ])
            .ctx("authorising a bridge desktop")?;
        Ok(())
    }

    /// Revokes a bridge desktop's key. Returns false when it was not authorised.
    ///
    /// # Errors
    /// On a database failure.
    pub fn delete_bridge_desktop(&mut self, public_key: &[u8]) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM bridge_desktops WHERE public_key = ?1")
            .ctx("revoking a bridge desktop")?
            .execute([public_key])
            .ctx("revoking a bridge desktop")?;
        Ok(n > 0)
    }

    /// Removes one value of the identity. Returns false when it was not set.
    ///
    /// # Errors
    /// On a database failure.
    pub fn delete_identity(&mut self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM identity WHERE name = ?1")
            .ctx("clearing the identity")?
            .execute([name])
            .ctx("clearing the identity")?;
        Ok(n > 0)
    }

    /// Saves the session state with a peer device.
    ///
    /// # Errors
    /// On a database failure.
    pub fn put_session(&mut self, account: &[u8], device: u32, state: &[u8]) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO sessions (peer_account, peer_device, state) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (peer_account, peer_device) DO UPDATE SET state = excluded.state",
            )
            .ctx("saving a session")?
            .execute(params![account, device, state])
            .ctx("saving a session")?;
        Ok(())
    }

    /// Forgets the session with a peer device. Returns false when there was none.
    ///
    /// # Errors
    /// On a database failure.
    pub fn delete_session(&mut self, account: &[u8], device: u32) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM sessions WHERE peer_account = ?1 AND peer_device = ?2")
            .ctx("removing a session")?
            .execute(params![account, device])
            .ctx("removing a session")?;
        Ok(n > 0)
    }

    /// Stores an account's signed device list if its version is newer than the stored one.
    /// Returns whether it was stored. The account must be known.
    ///
    /// # Errors
    /// On a database failure (an unknown account is one) or a version beyond `i64::MAX`.
    pub fn put_device_list(&mut self, account: &[u8], version: u64, signed: &[u8]) -> Result<bool> {
        let version = to_i64("device list version", version)?;
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO device_lists (account, version, signed) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (account) DO UPDATE SET version = excluded.version, signed = excluded.signed \
                 WHERE excluded.version > device_lists.version",
            )
            .ctx("saving a device list")?
            .execute(params![account, version, signed])
            .ctx("saving a device list")?;
        Ok(n > 0)
    }

    /// Creates or replaces a device of a known account.
    ///
    /// # Errors
    /// On a database failure (an unknown account is one).
    pub fn upsert_device(&mut self, device: &Device) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO devices (account, idx, encryption_key, signing_key, name, platform, linked_at, certificate) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (account, idx) DO UPDATE SET encryption_key = excluded.encryption_key, \
                 signing_key = excluded.signing_key, name = excluded.name, platform = excluded.platform, \
                 linked_at = excluded.linked_at, certificate = excluded.certificate",
            )
            .ctx("saving a device")?
            .execute(params![
                device.account,
                device.index,
                device.encryption_key,
                device.signing_key,
                device.name,
                device.platform,
                device.linked_at,
                device.certificate,
            ])
            .ctx("saving a device")?;
        Ok(())
    }

    /// Removes a device (after an unlink). Returns false when unknown.
    ///
    /// # Errors
    /// On a database failure.
    pub fn remove_device(&mut self, account: &[u8], index: u32) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM devices WHERE account = ?1 AND idx = ?2")
            .ctx("removing a device")?
            .execute(params![account, index])
            .ctx("removing a device")?;
        Ok(n > 0)
    }

    /// Creates or replaces a sync's progress.
    ///
    /// # Errors
    /// On a database failure.
    pub fn put_sync_state(&mut self, state: &SyncState) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO sync_state (sync_id, role, state, chunks_done, chunks_total, messages_done, \
                 messages_total, last_acked, digest, plan, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT (sync_id) DO UPDATE SET role = excluded.role, state = excluded.state, \
                 chunks_done = excluded.chunks_done, chunks_total = excluded.chunks_total, \
                 messages_done = excluded.messages_done, messages_total = excluded.messages_total, \
                 last_acked = excluded.last_acked, digest = excluded.digest, plan = excluded.plan, \
                 updated_at = excluded.updated_at",
            )
            .ctx("saving sync progress")?
            .execute(params![
                state.sync_id,
                state.role,
                state.phase,
                state.chunks_done,
                state.chunks_total,
                to_i64("synced messages", state.messages_done)?,
                to_i64("messages to sync", state.messages_total)?,
                state.last_acked,
                state.digest,
                state.plan,
                state.updated_at,
            ])
            .ctx("saving sync progress")?;
        Ok(())
    }

    /// Forgets a sync. Returns false when unknown.
    ///
    /// # Errors
    /// On a database failure.
    pub fn delete_sync_state(&mut self, sync_id: &[u8]) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM sync_state WHERE sync_id = ?1")
            .ctx("removing sync progress")?
            .execute([sync_id])
            .ctx("removing sync progress")?;
        Ok(n > 0)
    }

    /// A session's state as the transaction sees it.
    ///
    /// # Errors
    /// On a database failure.
    pub fn session(&self, account: &[u8], device: u32) -> Result<Option<SecretBytes>> {
        queries::session(self.conn, account, device)
    }
}

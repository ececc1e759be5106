//! Live messaging in the store: the fan-out queue (what this device still has to seal for each
//! account), reactions, and the bookkeeping of receipts (which incoming messages are read, when
//! an outgoing one has left the device).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use crate::error::{Result, SqlContext};
use crate::store::Store;
use crate::types::{BridgeChange, ChatId, MessageId, MessageStatus};
use crate::writer::Writer;

/// Something to seal for every device of one account (see the `fanout` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFanout {
    /// The id the envelopes carry (the message id, for a message).
    pub message_id: MessageId,
    /// The recipient account (this device's own account for its other devices).
    pub account: Vec<u8>,
    /// The body's kind byte.
    pub kind: u8,
    /// The body's plaintext encoding.
    pub body: Vec<u8>,
    /// The sender timestamp the envelopes carry (ms).
    pub ts: i64,
    /// When it was queued (ms).
    pub created_at: i64,
}

/// A queued fan-out row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutItem {
    /// The row's id.
    pub id: i64,
    /// What was queued.
    pub item: NewFanout,
}

/// One account's reaction to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// The reacting account.
    pub account: Vec<u8>,
    /// The emoji.
    pub emoji: String,
    /// When it was sent (ms).
    pub ts: i64,
}

impl Writer<'_> {
    /// Queues `item` for sealing; returns the row id.
    ///
    /// # Errors
    /// On a database failure.
    pub fn add_fanout(&mut self, item: &NewFanout) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO fanout (message_id, account, kind, body, ts, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            )
            .ctx("queueing a fan-out")?
            .query_row(
                params![
                    item.message_id,
                    item.account,
                    item.kind,
                    item.body,
                    item.ts,
                    item.created_at
                ],
                |r| r.get(0),
            )
            .ctx("queueing a fan-out")
    }

    /// The oldest `limit` queued fan-out rows for `account`.
    ///
    /// # Errors
    /// On a database failure.
    pub fn fanout_for(&self, account: &[u8], limit: usize) -> Result<Vec<FanoutItem>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, message_id, account, kind, body, ts, created_at FROM fanout \
                 WHERE account = ?1 ORDER BY id LIMIT ?2",
            )
            .ctx("reading the fan-out queue")?;
        let rows = stmt
            .query_map(params![account, limit], |r| {
                Ok(FanoutItem {
                    id: r.get(0)?,
                    item: NewFanout {
                        message_id: r.get(1)?,
                        account: r.get(2)?,
                        kind: r.get(3)?,
                        body: r.get(4)?,
                        ts: r.get(5)?,
                        created_at: r.get(6)?,
                    },
                })
            })
            .ctx("reading the fan-out queue")?;
        rows.collect::<rusqlite::Result<_>>()
            .ctx("reading the fan-out queue")
    }

    /// Removes a fan-out row once sealed.
    ///
    /// # Errors
    /// On a database failure.
    pub fn fanout_done(&mut self, id: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM fanout WHERE id = ?1")
            .ctx("clearing a fan-out row")?
            .execute([id])
            .ctx("clearing a fan-out row")?;
        Ok(n > 0)
    }

    /// How many envelopes of `message_id` still wait to leave this device (outbox rows and
    /// unsealed fan-out rows).
    ///
    /// # Errors
    /// On a database failure.
    pub fn unsent_of(&self, message_id: MessageId) -> Result<u64> {
        self.conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM outbox WHERE message_id = ?1) \
                      + (SELECT count(*) FROM fanout WHERE message_id = ?1)",
            )
            .ctx("counting unsent envelopes")?
            .query_row([message_id], |r| r.get(0))
            .ctx("counting unsent envelopes")
    }

    /// Records `account`'s reaction to `message` unless a newer one is stored (an empty emoji
    /// removes it, and is kept as the newest word). Returns whether anything changed.
    ///
    /// # Errors
    /// On a database failure.
    pub fn set_reaction(
        &mut self,
        message: MessageId,
        account: &[u8],
        emoji: &str,
        ts: i64,
    ) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO reactions (message, account, emoji, ts) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (message, account) DO UPDATE SET emoji = excluded.emoji, ts = excluded.ts \
                 WHERE excluded.ts > reactions.ts \
                    OR (excluded.ts = reactions.ts AND excluded.emoji > reactions.emoji)",
            )
            .ctx("storing a reaction")?
            .execute(params![message, account, emoji, ts])
            .ctx("storing a reaction")?;
        if n > 0 {
            self.changed_for_bridge(&BridgeChange::Reaction {
                message,
                account: account.to_vec(),
            })?;
        }
        Ok(n > 0)
    }

    /// Marks the incoming messages of `chat` read and returns the ids of those not read before,
    /// with their sender accounts (to send read receipts to), oldest first. Messages with no
    /// known sender account (imports) are marked but not returned. Clears the unread count.
    ///
    /// # Errors
    /// On a database failure.
    pub fn mark_chat_read(&mut self, chat: ChatId) -> Result<Vec<(MessageId, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "UPDATE messages SET status = ?2 WHERE chat = ?1 AND from_me = 0 AND status < ?2 \
                 RETURNING id, sender_account, ts",
            )
            .ctx("marking a chat read")?;
        let mut rows: Vec<(i64, MessageId, Option<Vec<u8>>)> = stmt
            .query_map(params![chat, MessageStatus::Read], |r| {
                Ok((r.get(2)?, r.get(0)?, r.get(1)?))
            })
            .ctx("marking a chat read")?
            .collect::<rusqlite::Result<_>>()
            .ctx("marking a chat read")?;
        rows.sort_by_key(|r| (r.0, r.1.0));
        self.set_unread(chat, 0)?;
        if let Some((_, up_to, _)) = rows.last() {
            self.changed_for_bridge(&BridgeChange::ChatRead {
                chat,
                up_to: *up_to,
            })?;
        }
        Ok(rows
            .into_iter()
            .filter_map(|(_, id, account)| account.map(|a| (id, a)))
            .collect())
    }

    /// The version of a group's member list held here, if the group is known.
    ///
    /// # Errors
    /// On a database failure.
    pub fn group_version(&self, chat: ChatId) -> Result<Option<u64>> {
        self.conn
            .prepare_cached("SELECT version FROM groups WHERE chat = ?1")
            .ctx("reading a group's version")?
            .query_row([chat], |r| r.get(0))
            .optional()
            .ctx("reading a group's version")
    }

    /// Records the version of a group's member list (the chat must exist).
    ///
    /// # Errors
    /// On a database failure.
    pub fn set_group_version(&mut self, chat: ChatId, version: u64) -> Result<()> {
        let version = i64::try_from(version).map_err(|_| crate::Error::OutOfRange {
            what: "group version",
            value: version.to_string(),
        })?;
        self.conn
            .prepare_cached(
                "INSERT INTO groups (chat, version) VALUES (?1, ?2) \
                 ON CONFLICT (chat) DO UPDATE SET version = excluded.version",
            )
            .ctx("recording a group's version")?
            .execute(params![chat, version])
            .ctx("recording a group's version")?;
        Ok(())
    }

    /// Keeps an inbox envelope to handle later (see the `inbox_backlog` table): once the list
    /// of `account` arrives, or (`None`) when the session loop starts. Returns the row id.
    ///
    /// # Errors
    /// On a database failure.
    pub fn add_backlog(&mut self, account: Option<&[u8]>, payload: &[u8], now: i64) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO inbox_backlog (account, payload, received_at) VALUES (?1, ?2, ?3) \
                 RETURNING id",
            )
            .ctx("keeping an envelope for later")?
            .query_row(params![account, payload, now], |r| r.get(0))
            .ctx("keeping an envelope for later")
    }

    /// Removes a handled backlog row.
    ///
    /// # Errors
    /// On a database failure.
    pub fn remove_backlog(&mut self, id: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM inbox_backlog WHERE id = ?1")
            .ctx("clearing a kept envelope")?
            .execute([id])
            .ctx("clearing a kept envelope")?;
        Ok(n > 0)
    }

    /// The chat a message belongs to, if the message is stored.
    ///
    /// # Errors
    /// On a database failure.
    pub fn chat_of(&self, message: MessageId) -> Result<Option<ChatId>> {
        self.conn
            .prepare_cached("SELECT chat FROM messages WHERE id = ?1")
            .ctx("finding a message's chat")?
            .query_row([message], |r| r.get(0))
            .optional()
            .ctx("finding a message's chat")
    }
}

impl Store {
    /// The reactions to each of `messages` (empty ones left out), oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub fn reactions(&self, messages: &[MessageId]) -> Result<HashMap<MessageId, Vec<Reaction>>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT account, emoji, ts FROM reactions WHERE message = ?1 AND emoji <> '' \
                     ORDER BY ts, account",
                )
                .ctx("reading reactions")?;
            let mut out = HashMap::new();
            for id in messages {
                let list: Vec<Reaction> = stmt
                    .query_map([id], |r| {
                        Ok(Reaction {
                            account: r.get(0)?,
                            emoji: r.get(1)?,
                            ts: r.get(2)?,
                        })
                    })
                    .ctx("reading reactions")?
                    .collect::<rusqlite::Result<_>>()
                    .ctx("reading reactions")?;
                if !list.is_empty() {
                    out.insert(*id, list);
                }
            }
            Ok(out)
        })
    }

    /// The accounts that have rows waiting in the fan-out queue.
    ///
    /// # Errors
    /// On a database failure.
    pub fn fanout_accounts(&self) -> Result<Vec<Vec<u8>>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT DISTINCT account FROM fanout")
                .ctx("reading the fan-out queue")?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .ctx("reading the fan-out queue")?;
            rows.collect::<rusqlite::Result<_>>()
                .ctx("reading the fan-out queue")
        })
    }

    /// Kept inbox envelopes of `account` (`None`: those kept while linking), oldest first:
    /// `(row id, payload)`.
    ///
    /// # Errors
    /// On a database failure.
    pub fn backlog(&self, account: Option<&[u8]>) -> Result<Vec<(i64, Vec<u8>)>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, payload FROM inbox_backlog WHERE account IS ?1 ORDER BY id",
                )
                .ctx("reading kept envelopes")?;
            let rows = stmt
                .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))
                .ctx("reading kept envelopes")?;
            rows.collect::<rusqlite::Result<_>>()
                .ctx("reading kept envelopes")
        })
    }

    /// The accounts that have kept inbox envelopes.
    ///
    /// # Errors
    /// On a database failure.
    pub fn backlog_accounts(&self) -> Result<Vec<Vec<u8>>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT DISTINCT account FROM inbox_backlog WHERE account IS NOT NULL",
                )
                .ctx("reading kept envelopes")?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .ctx("reading kept envelopes")?;
            rows.collect::<rusqlite::Result<_>>()
                .ctx("reading kept envelopes")
        })
    }

    /// Rows waiting in the fan-out queue.
    ///
    /// # Errors
    /// On a database failure.
    pub fn fanout_len(&self) -> Result<u64> {
        self.read(|conn| {
            conn.query_row("SELECT count(*) FROM fanout", [], |r| r.get(0))
                .ctx("counting the fan-out queue")
        })
    }
}

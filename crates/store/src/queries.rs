//! Reads shared by [`crate::Store`] (on its reader connection) and [`crate::Writer`] (inside a
//! write transaction): the SQL and the mapping of rows to the store's types.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Result, SqlContext};
use crate::secret::SecretBytes;
use crate::types::{
    Account, BridgeChange, BridgeDesktop, ChatId, ChatSummary, Contact, Cursor, Device, Member,
    Message, MessageId, Preview, Sender, StoredDeviceList, SyncState,
};

/// Characters of the last message kept in a chat-list preview.
pub const PREVIEW_CHARS: usize = 120;

/// The columns of a message, in the order [`message_from_row`] reads them.
pub(crate) const MESSAGE_COLUMNS: &str = "m.id, m.chat, m.sender_account, m.sender_device, m.sender_name, \
     m.from_me, m.ts, m.kind, m.text, m.media_name, m.reply_to, m.edited_at, m.deleted, m.status";

/// Number of columns in [`MESSAGE_COLUMNS`].
pub(crate) const MESSAGE_COLUMN_COUNT: usize = 14;

pub(crate) fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: row.get(0)?,
        chat: row.get(1)?,
        sender: Sender {
            account: row.get(2)?,
            device: row.get(3)?,
            name: row.get(4)?,
        },
        from_me: row.get(5)?,
        ts: row.get(6)?,
        kind: row.get(7)?,
        text: row.get(8)?,
        media_name: row.get(9)?,
        reply_to: row.get(10)?,
        edited_at: row.get(11)?,
        deleted: row.get(12)?,
        status: row.get(13)?,
    })
}

const CHAT_SUMMARY_SELECT: &str = "SELECT c.id, c.kind, c.name, c.peer_account, c.created_at, c.message_count, \
     c.last_ts, c.unread, c.muted, c.pinned, c.archived, \
     m.id, m.sender_account, m.sender_device, m.sender_name, m.from_me, m.kind, substr(m.text, 1, 120), \
     m.media_name, m.deleted, m.status \
     FROM chats c LEFT JOIN messages m ON m.rowid = c.last_message";

fn chat_summary_from_row(row: &Row<'_>) -> rusqlite::Result<ChatSummary> {
    let last_id: Option<MessageId> = row.get(11)?;
    let last_message = match last_id {
        None => None,
        Some(id) => Some(Preview {
            id,
            sender: Sender {
                account: row.get(12)?,
                device: row.get(13)?,
                name: row.get(14)?,
            },
            from_me: row.get(15)?,
            kind: row.get(16)?,
            text: row.get(17)?,
            media_name: row.get(18)?,
            deleted: row.get(19)?,
            status: row.get(20)?,
        }),
    };
    Ok(ChatSummary {
        id: row.get(0)?,
        kind: row.get(1)?,
        name: row.get(2)?,
        peer_account: row.get(3)?,
        created_at: row.get(4)?,
        message_count: row.get(5)?,
        last_ts: row.get(6)?,
        unread: row.get(7)?,
        muted: row.get(8)?,
        pinned: row.get(9)?,
        archived: row.get(10)?,
        last_message,
    })
}

pub(crate) fn chats(conn: &Connection) -> Result<Vec<ChatSummary>> {
    let sql = format!("{CHAT_SUMMARY_SELECT} ORDER BY c.pinned DESC, c.last_ts DESC, c.id");
    let mut stmt = conn.prepare_cached(&sql).ctx("listing chats")?;
    let rows = stmt
        .query_map([], chat_summary_from_row)
        .ctx("listing chats")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("reading the chat list")
}

pub(crate) fn chat(conn: &Connection, id: ChatId) -> Result<Option<ChatSummary>> {
    let sql = format!("{CHAT_SUMMARY_SELECT} WHERE c.id = ?1");
    let mut stmt = conn.prepare_cached(&sql).ctx("reading a chat")?;
    stmt.query_row([id], chat_summary_from_row)
        .optional()
        .ctx("reading a chat")
}

pub(crate) fn chats_named(conn: &Connection, name: &str) -> Result<Vec<ChatSummary>> {
    let sql = format!("{CHAT_SUMMARY_SELECT} WHERE c.name = ?1 ORDER BY c.last_ts DESC, c.id");
    let mut stmt = conn.prepare_cached(&sql).ctx("finding chats by name")?;
    let rows = stmt
        .query_map([name], chat_summary_from_row)
        .ctx("finding chats by name")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("finding chats by name")
}

pub(crate) fn members(conn: &Connection, chat: ChatId) -> Result<Vec<Member>> {
    let mut stmt = conn
        .prepare_cached("SELECT account, name FROM chat_members WHERE chat = ?1 ORDER BY position")
        .ctx("listing chat members")?;
    let rows = stmt
        .query_map([chat], |r| {
            Ok(Member {
                account: r.get(0)?,
                name: r.get(1)?,
            })
        })
        .ctx("listing chat members")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("listing chat members")
}

pub(crate) fn message(conn: &Connection, id: MessageId) -> Result<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?1");
    let mut stmt = conn.prepare_cached(&sql).ctx("reading a message")?;
    stmt.query_row([id], message_from_row)
        .optional()
        .ctx("reading a message")
}

pub(crate) fn page(
    conn: &Connection,
    chat: ChatId,
    cursor: Cursor,
    limit: usize,
) -> Result<Vec<Message>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut out = match cursor {
        Cursor::Newest => {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.chat = ?1 ORDER BY m.ts DESC, m.id DESC LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql).ctx("paging a chat")?;
            let rows = stmt
                .query_map(params![chat, limit], message_from_row)
                .ctx("paging a chat")?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .ctx("paging a chat")?
        }
        Cursor::Before { ts, id } => {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.chat = ?1 AND (m.ts, m.id) < (?2, ?3) \
                 ORDER BY m.ts DESC, m.id DESC LIMIT ?4"
            );
            let mut stmt = conn.prepare_cached(&sql).ctx("paging a chat")?;
            let rows = stmt
                .query_map(params![chat, ts, id, limit], message_from_row)
                .ctx("paging a chat")?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .ctx("paging a chat")?
        }
        Cursor::After { ts, id } => {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.chat = ?1 AND (m.ts, m.id) > (?2, ?3) \
                 ORDER BY m.ts ASC, m.id ASC LIMIT ?4"
            );
            let mut stmt = conn.prepare_cached(&sql).ctx("paging a chat")?;
            let rows = stmt
                .query_map(params![chat, ts, id, limit], message_from_row)
                .ctx("paging a chat")?;
            return rows
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("paging a chat");
        }
    };
    out.reverse();
    Ok(out)
}

pub(crate) fn account(conn: &Connection, id: &[u8]) -> Result<Option<Account>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, public_key, display_name FROM accounts WHERE id = ?1")
        .ctx("reading an account")?;
    stmt.query_row([id], |r| {
        Ok(Account {
            id: r.get(0)?,
            public_key: r.get(1)?,
            display_name: r.get(2)?,
        })
    })
    .optional()
    .ctx("reading an account")
}

pub(crate) fn contacts(conn: &Connection) -> Result<Vec<Contact>> {
    let mut stmt = conn
        .prepare_cached("SELECT account, name, added_at FROM contacts ORDER BY name, account")
        .ctx("listing contacts")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Contact {
                account: r.get(0)?,
                name: r.get(1)?,
                added_at: r.get(2)?,
            })
        })
        .ctx("listing contacts")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("listing contacts")
}

pub(crate) fn bridge_desktops(conn: &Connection) -> Result<Vec<BridgeDesktop>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT public_key, name, platform, linked_at FROM bridge_desktops \
             ORDER BY linked_at, public_key",
        )
        .ctx("listing bridge desktops")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(BridgeDesktop {
                public_key: r.get(0)?,
                name: r.get(1)?,
                platform: r.get(2)?,
                linked_at: r.get(3)?,
            })
        })
        .ctx("listing bridge desktops")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("listing bridge desktops")
}

/// The last bridge sequence number given out (0 before the first): the log's newest row,
/// or, when pruning emptied the log, the AUTOINCREMENT counter.
pub(crate) fn bridge_head(conn: &Connection) -> Result<u64> {
    let newest: Option<i64> = conn
        .query_row("SELECT max(seq) FROM bridge_events", [], |r| r.get(0))
        .ctx("reading the bridge event log")?;
    let counter: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'bridge_events'",
            [],
            |r| r.get(0),
        )
        .optional()
        .ctx("reading the bridge event log")?;
    let head = newest.unwrap_or(0).max(counter.unwrap_or(0));
    Ok(u64::try_from(head).unwrap_or(0))
}

/// The oldest bridge event kept, if any.
pub(crate) fn bridge_first_kept(conn: &Connection) -> Result<Option<u64>> {
    let oldest: Option<i64> = conn
        .query_row("SELECT min(seq) FROM bridge_events", [], |r| r.get(0))
        .ctx("reading the bridge event log")?;
    Ok(oldest.and_then(|s| u64::try_from(s).ok()))
}

/// Up to `max` bridge events with `seq > after`, in order: `(seq, body)`.
pub(crate) fn bridge_events_after(
    conn: &Connection,
    after: u64,
    max: usize,
) -> Result<Vec<(u64, Vec<u8>)>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached("SELECT seq, body FROM bridge_events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .ctx("reading the bridge event log")?;
    let rows = stmt
        .query_map(params![after, max], |r| {
            Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?))
        })
        .ctx("reading the bridge event log")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("reading the bridge event log")
}

/// The highest bridge event desktop `public_key` acknowledged (0 for none).
pub(crate) fn bridge_acked(conn: &Connection, public_key: &[u8]) -> Result<u64> {
    let up_to: Option<i64> = conn
        .query_row(
            "SELECT up_to FROM bridge_acks WHERE public_key = ?1",
            [public_key],
            |r| r.get(0),
        )
        .optional()
        .ctx("reading bridge acknowledgements")?;
    Ok(up_to.and_then(|u| u64::try_from(u).ok()).unwrap_or(0))
}

/// Up to `max` changes for bridge desktops, oldest first (see `0004_bridge_changes.sql`).
pub(crate) fn bridge_changes(conn: &Connection, max: usize) -> Result<Vec<(i64, BridgeChange)>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, kind, target, extra FROM bridge_changes ORDER BY id LIMIT ?1")
        .ctx("reading the bridge changes")?;
    let rows = stmt
        .query_map([i64::try_from(max).unwrap_or(i64::MAX)], |r| {
            let id: i64 = r.get(0)?;
            let kind: i64 = r.get(1)?;
            let extra: Option<Vec<u8>> = r.get(3)?;
            let change = match (kind, extra) {
                (0, _) => BridgeChange::NewMessage(r.get(2)?),
                (4, _) => BridgeChange::Status(r.get(2)?),
                (2, Some(account)) => BridgeChange::Reaction {
                    message: r.get(2)?,
                    account,
                },
                (3, Some(up_to)) => BridgeChange::ChatRead {
                    chat: r.get(2)?,
                    up_to: <[u8; 16]>::try_from(up_to.as_slice())
                        .map(MessageId::from)
                        .map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(
                                3,
                                rusqlite::types::Type::Blob,
                                Box::new(e),
                            )
                        })?,
                },
                _ => BridgeChange::Message(r.get(2)?),
            };
            Ok((id, change))
        })
        .ctx("reading the bridge changes")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("reading the bridge changes")
}

/// The emoji `account` reacted to `message` with (empty: taken back), if it ever did.
pub(crate) fn reaction(
    conn: &Connection,
    message: MessageId,
    account: &[u8],
) -> Result<Option<String>> {
    conn.prepare_cached("SELECT emoji FROM reactions WHERE message = ?1 AND account = ?2")
        .ctx("reading a reaction")?
        .query_row(params![message, account], |r| r.get(0))
        .optional()
        .ctx("reading a reaction")
}

/// The messages queued for the phone on a bridge-mode desktop, oldest first.
pub(crate) fn bridge_outbox(conn: &Connection) -> Result<Vec<MessageId>> {
    let mut stmt = conn
        .prepare_cached("SELECT message_id FROM bridge_outbox ORDER BY queued_at, rowid")
        .ctx("reading the bridge outbox")?;
    let rows = stmt
        .query_map([], |r| r.get::<_, MessageId>(0))
        .ctx("reading the bridge outbox")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("reading the bridge outbox")
}

pub(crate) fn devices(conn: &Connection, account: &[u8]) -> Result<Vec<Device>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT account, idx, encryption_key, signing_key, name, platform, linked_at, certificate \
             FROM devices WHERE account = ?1 ORDER BY idx",
        )
        .ctx("listing devices")?;
    let rows = stmt
        .query_map([account], |r| {
            Ok(Device {
                account: r.get(0)?,
                index: r.get(1)?,
                encryption_key: r.get(2)?,
                signing_key: r.get(3)?,
                name: r.get(4)?,
                platform: r.get(5)?,
                linked_at: r.get(6)?,
                certificate: r.get(7)?,
            })
        })
        .ctx("listing devices")?;
    rows.collect::<rusqlite::Result<_>>().ctx("listing devices")
}

pub(crate) fn device_list(conn: &Connection, account: &[u8]) -> Result<Option<StoredDeviceList>> {
    let mut stmt = conn
        .prepare_cached("SELECT account, version, signed FROM device_lists WHERE account = ?1")
        .ctx("reading a device list")?;
    stmt.query_row([account], |r| {
        Ok(StoredDeviceList {
            account: r.get(0)?,
            version: r.get(1)?,
            signed: r.get(2)?,
        })
    })
    .optional()
    .ctx("reading a device list")
}

pub(crate) fn identity(conn: &Connection, name: &str) -> Result<Option<SecretBytes>> {
    let mut stmt = conn
        .prepare_cached("SELECT value FROM identity WHERE name = ?1")
        .ctx("reading the identity")?;
    stmt.query_row([name], |r| r.get::<_, Vec<u8>>(0).map(SecretBytes::new))
        .optional()
        .ctx("reading the identity")
}

pub(crate) fn session(
    conn: &Connection,
    account: &[u8],
    device: u32,
) -> Result<Option<SecretBytes>> {
    let mut stmt = conn
        .prepare_cached("SELECT state FROM sessions WHERE peer_account = ?1 AND peer_device = ?2")
        .ctx("reading a session")?;
    stmt.query_row(params![account, device], |r| {
        r.get::<_, Vec<u8>>(0).map(SecretBytes::new)
    })
    .optional()
    .ctx("reading a session")
}

const SYNC_SELECT: &str = "SELECT sync_id, role, state, chunks_done, chunks_total, messages_done, messages_total, \
     last_acked, digest, plan, updated_at FROM sync_state";

fn sync_from_row(r: &Row<'_>) -> rusqlite::Result<SyncState> {
    Ok(SyncState {
        sync_id: r.get(0)?,
        role: r.get(1)?,
        phase: r.get(2)?,
        chunks_done: r.get(3)?,
        chunks_total: r.get(4)?,
        messages_done: r.get(5)?,
        messages_total: r.get(6)?,
        last_acked: r.get(7)?,
        digest: r.get(8)?,
        plan: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

pub(crate) fn sync_state(conn: &Connection, sync_id: &[u8]) -> Result<Option<SyncState>> {
    let sql = format!("{SYNC_SELECT} WHERE sync_id = ?1");
    let mut stmt = conn.prepare_cached(&sql).ctx("reading sync progress")?;
    stmt.query_row([sync_id], sync_from_row)
        .optional()
        .ctx("reading sync progress")
}

pub(crate) fn sync_states(conn: &Connection) -> Result<Vec<SyncState>> {
    let sql = format!("{SYNC_SELECT} ORDER BY updated_at DESC, sync_id");
    let mut stmt = conn.prepare_cached(&sql).ctx("listing syncs")?;
    let rows = stmt.query_map([], sync_from_row).ctx("listing syncs")?;
    rows.collect::<rusqlite::Result<_>>().ctx("listing syncs")
}

//! The [`Store`]: opening (key, pragmas, migrations), the write transactions and the reads.
//! It holds two connections to the same file: one that writes, one that reads, so a long
//! import never blocks the chat list (WAL lets the reader see the last commit).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use uuid::Uuid;

use crate::error::{ChatCandidate, Error, OpenError, Result, SqlContext};
use crate::key::{self, KeySource, KeychainUse};
use crate::queries::{self, MESSAGE_COLUMN_COUNT, MESSAGE_COLUMNS};
use crate::search;
use crate::secret::{SecretBytes, SecretString, StoreKey};
use crate::types::{
    Account, BridgeChange, BridgeDesktop, ChatId, ChatSummary, Contact, Counts, Cursor, Device,
    Member, Message, MessageId, MessageKey, OutboxId, OutboxItem, SearchHit, StoredDeviceList,
    SyncState,
};
use crate::writer::{DurableWriter, Writer};

/// The database file's name inside a home directory.
pub const DB_FILE: &str = "tandem.db";

/// The schema migrations, in order. Append only: never edit a released one.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_messaging.sql"),
    include_str!("../migrations/0003_bridge.sql"),
    include_str!("../migrations/0004_bridge_changes.sql"),
];

/// How long a connection waits for a lock held by another before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page cache of the writing connection, in KiB, an upper bound filled only as pages are used.
/// SQLCipher decrypts and authenticates every page it reads into the cache, and FTS5 re-reads
/// its segments when it merges them, so a cache that holds them makes inserts faster.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Page cache of the reading connection, in KiB (chat list, pages, search).
const READER_CACHE_KIB: i64 = 32 * 1024;

/// The newest schema version this build knows.
#[must_use]
pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// The local store: chats, messages, search, outbox, sync progress, identity and sessions, in
/// one SQLite (SQLCipher) file. `Store` is `Send + Sync`; share it with an `Arc`.
pub struct Store {
    path: PathBuf,
    encrypted: bool,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic inside a write closure drops (rolls back) its transaction before the lock is
    // released, so the connection is still sound after poisoning.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Opens (or creates) an encrypted store with a raw 32-byte key, running migrations.
    ///
    /// # Errors
    /// [`OpenError::WrongKey`] when the file does not decrypt with `key`,
    /// [`OpenError::NotADatabase`], [`OpenError::NewerSchema`], or an I/O or SQLite failure.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, OpenError> {
        Self::open_with(path, Some(key))
    }

    /// Opens (or creates) an unencrypted store. For the benchmark baseline only: a real store
    /// is always opened with a key.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_plain(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, None)
    }

    /// Opens (or creates) the store `<home>/tandem.db`, its key taken from the OS keychain or,
    /// where none runs (or `TANDEM_KEYRING=off`), from `<home>/store.key`. Reports where the key
    /// is kept.
    ///
    /// # Errors
    /// As [`Store::open`], and [`OpenError::KeyUnavailable`] when the database exists but its
    /// key cannot be found, [`OpenError::KeyFile`] for an unusable key file.
    pub fn open_in_home(home: &Path) -> Result<(Self, KeySource), OpenError> {
        Self::open_in_home_with(home, KeychainUse::from_env())
    }

    /// As [`Store::open_in_home`], with the caller deciding whether the keychain may be used
    /// (`TANDEM_KEYRING` is not consulted).
    ///
    /// # Errors
    /// As [`Store::open_in_home`].
    pub fn open_in_home_with(
        home: &Path,
        keychain: KeychainUse,
    ) -> Result<(Self, KeySource), OpenError> {
        let home = key::ensure_home(home)?;
        let path = home.join(DB_FILE);
        let (key, source) = key::load_or_create(&home, path.exists(), keychain)?;
        let store = Self::open(&path, &key)?;
        Ok((store, source))
    }

    fn open_with(path: &Path, key: Option<&StoreKey>) -> Result<Self, OpenError> {
        create_private(path)?;
        let mut writer = connect(path, key, WRITER_CACHE_KIB)?;
        migrate(&mut writer, path)?;
        let reader = connect(path, key, READER_CACHE_KIB)?;
        Ok(Self {
            path: path.to_path_buf(),
            encrypted: key.is_some(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is encrypted (false only for [`Store::open_plain`]).
    #[must_use]
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Runs `f` in one write transaction (`synchronous=NORMAL`): everything it writes commits
    /// together when it returns `Ok`, and nothing does when it returns `Err` (or panics).
    ///
    /// # Errors
    /// Whatever `f` returns, or a failure to begin or commit.
    pub fn write<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = lock(&self.writer);
        transaction(&mut conn, |conn| f(&mut Writer::new(conn)))
    }

    /// As [`Store::write`], committed under `synchronous=FULL` so the commit is on disk before
    /// this returns: for key material and protocol state (identity, sessions, device lists,
    /// sync progress), which only a [`DurableWriter`] can write.
    ///
    /// # Errors
    /// Whatever `f` returns, or a failure to switch to FULL, begin or commit.
    pub fn write_durable<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut DurableWriter<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = lock(&self.writer);
        conn.pragma_update(None, "synchronous", "FULL")
            .ctx("switching to synchronous=FULL")?;
        let result = transaction(&mut conn, |conn| {
            f(&mut DurableWriter {
                inner: Writer::new(conn),
            })
        });
        if let Err(e) = conn.pragma_update(None, "synchronous", "NORMAL") {
            // Staying at FULL is safe (only slower); the transaction's outcome stands.
            tracing::warn!(error = %e, "cannot switch the store back to synchronous=NORMAL");
        }
        result
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = lock(&self.reader);
        f(&conn)
    }

    /// All chats, pinned first, then by last activity (newest first).
    ///
    /// # Errors
    /// On a database failure.
    pub fn chats(&self) -> Result<Vec<ChatSummary>> {
        self.read(queries::chats)
    }

    /// One chat by id.
    ///
    /// # Errors
    /// On a database failure.
    pub fn chat(&self, id: ChatId) -> Result<Option<ChatSummary>> {
        self.read(|c| queries::chat(c, id))
    }

    /// The chat a user means: a 32-hex-digit id, a hyphenated UUID, or an exact name.
    ///
    /// # Errors
    /// [`Error::ChatNotFound`] when nothing matches, [`Error::AmbiguousChat`] (listing them)
    /// when several chats carry the name; a database failure.
    pub fn chat_by_id_or_name(&self, query: &str) -> Result<ChatSummary> {
        let wanted = query.trim();
        self.read(|conn| {
            if let Ok(uuid) = Uuid::try_parse(wanted)
                && let Some(chat) = queries::chat(conn, ChatId(uuid))?
            {
                return Ok(chat);
            }
            let mut named = queries::chats_named(conn, wanted)?;
            match named.len() {
                0 => Err(Error::ChatNotFound {
                    query: wanted.to_owned(),
                }),
                1 => named.pop().ok_or_else(|| Error::ChatNotFound {
                    query: wanted.to_owned(),
                }),
                _ => Err(Error::AmbiguousChat {
                    query: wanted.to_owned(),
                    candidates: named
                        .into_iter()
                        .map(|c| ChatCandidate {
                            id: c.id,
                            kind: c.kind,
                            message_count: c.message_count,
                        })
                        .collect(),
                }),
            }
        })
    }

    /// A chat's members, in display order.
    ///
    /// # Errors
    /// On a database failure.
    pub fn members(&self, chat: ChatId) -> Result<Vec<Member>> {
        self.read(|c| queries::members(c, chat))
    }

    /// A page of a chat, oldest first: the newest `limit` messages, or the `limit` messages just
    /// before or after a cursor. Keyset-paged on (ts, id): as fast deep in history as at the end.
    ///
    /// # Errors
    /// On a database failure.
    pub fn page(&self, chat: ChatId, cursor: Cursor, limit: usize) -> Result<Vec<Message>> {
        self.read(|c| queries::page(c, chat, cursor, limit))
    }

    /// One message by id.
    ///
    /// # Errors
    /// On a database failure.
    pub fn message(&self, id: MessageId) -> Result<Option<Message>> {
        self.read(|c| queries::message(c, id))
    }

    /// Full-text search, newest first, in all chats or one. The query is taken as plain words:
    /// all must match, accents and case are ignored, and the last word (if it has two or more
    /// characters) may be the start of a word. No input is an error; an empty query finds
    /// nothing.
    ///
    /// Cost: words are looked up newest first and stop at `limit`, but FTS5 answers a prefix
    /// by merging the posting lists of every word that starts with it, so a short prefix of
    /// very common words ("th") costs time in proportion to their matches (about 100 ms in a
    /// million messages, against well under a millisecond for a rare word).
    ///
    /// # Errors
    /// On a database failure.
    pub fn search(
        &self,
        query: &str,
        chat: Option<ChatId>,
        limit: usize,
    ) -> Result<Vec<SearchHit>> {
        let Some(expr) = search::fts_query(query, chat) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let hit = |row: &rusqlite::Row<'_>| {
                Ok(SearchHit {
                    message: queries::message_from_row(row)?,
                    chat_name: row.get(MESSAGE_COLUMN_COUNT)?,
                })
            };
            let hits = match chat {
                None => {
                    let mut stmt = conn.prepare_cached(&search_sql(false)).ctx("searching")?;
                    let rows = stmt.query_map(params![expr, limit], hit).ctx("searching")?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                }
                Some(chat) => {
                    let mut stmt = conn
                        .prepare_cached(&search_sql(true))
                        .ctx("searching a chat")?;
                    let rows = stmt
                        .query_map(params![expr, limit, chat], hit)
                        .ctx("searching a chat")?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                }
            };
            hits.ctx("reading search results")
        })
    }

    /// How many chats and messages the store holds.
    ///
    /// # Errors
    /// On a database failure.
    pub fn counts(&self) -> Result<Counts> {
        self.read(|conn| {
            conn.prepare_cached("SELECT count(*), coalesce(sum(message_count), 0) FROM chats")
                .ctx("counting")?
                .query_row([], |r| {
                    Ok(Counts {
                        chats: r.get(0)?,
                        messages: r.get(1)?,
                    })
                })
                .ctx("counting")
        })
    }

    /// Outbox rows due at `now` (ms), oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub fn outbox_pending(&self, now: i64, limit: usize) -> Result<Vec<OutboxItem>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, message_id, recipient_account, recipient_device, payload, created_at, attempts, \
                     next_attempt_at FROM outbox WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
                )
                .ctx("reading the outbox")?;
            let rows = stmt
                .query_map(params![now, limit], |r| {
                    Ok(OutboxItem {
                        id: OutboxId(r.get(0)?),
                        message_id: r.get(1)?,
                        recipient_account: r.get(2)?,
                        recipient_device: r.get(3)?,
                        payload: r.get(4)?,
                        created_at: r.get(5)?,
                        attempts: r.get(6)?,
                        next_attempt_at: r.get(7)?,
                    })
                })
                .ctx("reading the outbox")?;
            rows.collect::<rusqlite::Result<_>>().ctx("reading the outbox")
        })
    }

    /// Number of rows in the outbox, due or not.
    ///
    /// # Errors
    /// On a database failure.
    pub fn outbox_len(&self) -> Result<u64> {
        self.read(|conn| {
            conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
                .ctx("counting the outbox")
        })
    }

    /// One sync's progress.
    ///
    /// # Errors
    /// On a database failure.
    pub fn sync_state(&self, sync_id: &[u8]) -> Result<Option<SyncState>> {
        self.read(|c| queries::sync_state(c, sync_id))
    }

    /// Every sync's progress, most recently updated first (to resume after a restart).
    ///
    /// # Errors
    /// On a database failure.
    pub fn sync_states(&self) -> Result<Vec<SyncState>> {
        self.read(queries::sync_states)
    }

    /// The session state with a peer device.
    ///
    /// # Errors
    /// On a database failure.
    pub fn session(&self, account: &[u8], device: u32) -> Result<Option<SecretBytes>> {
        self.read(|c| queries::session(c, account, device))
    }

    /// One value of this device's identity.
    ///
    /// # Errors
    /// On a database failure.
    pub fn identity(&self, name: &str) -> Result<Option<SecretBytes>> {
        self.read(|c| queries::identity(c, name))
    }

    /// An account's newest stored device list.
    ///
    /// # Errors
    /// On a database failure.
    pub fn device_list(&self, account: &[u8]) -> Result<Option<StoredDeviceList>> {
        self.read(|c| queries::device_list(c, account))
    }

    /// An account's known devices, by index.
    ///
    /// # Errors
    /// On a database failure.
    pub fn devices(&self, account: &[u8]) -> Result<Vec<Device>> {
        self.read(|c| queries::devices(c, account))
    }

    /// A known account.
    ///
    /// # Errors
    /// On a database failure.
    pub fn account(&self, id: &[u8]) -> Result<Option<Account>> {
        self.read(|c| queries::account(c, id))
    }

    /// All contacts, by name.
    ///
    /// # Errors
    /// On a database failure.
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        self.read(queries::contacts)
    }

    /// The desktops authorised on this phone's bridge, oldest link first.
    ///
    /// # Errors
    /// On a database failure.
    pub fn bridge_desktops(&self) -> Result<Vec<BridgeDesktop>> {
        self.read(queries::bridge_desktops)
    }

    /// The phone's bridge event log: the last sequence number given out (0 before the first).
    ///
    /// # Errors
    /// On a database failure.
    pub fn bridge_head(&self) -> Result<u64> {
        self.read(queries::bridge_head)
    }

    /// The oldest bridge event kept, if any.
    ///
    /// # Errors
    /// On a database failure.
    pub fn bridge_first_kept(&self) -> Result<Option<u64>> {
        self.read(queries::bridge_first_kept)
    }

    /// Up to `max` bridge events after `after`, in order: `(seq, encoded body)`.
    ///
    /// # Errors
    /// On a database failure.
    pub fn bridge_events_after(&self, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        self.read(|c| queries::bridge_events_after(c, after, max))
    }

    /// The highest bridge event desktop `public_key` acknowledged (0 for none).
    ///
    /// # Errors
    /// On a database failure.
    pub fn bridge_acked(&self, public_key: &[u8]) -> Result<u64> {
        self.read(|c| queries::bridge_acked(c, public_key))
    }

    /// On the phone: up to `max` changes bridge desktops have yet to hear of, oldest first,
    /// each with its number (for [`Writer::drop_bridge_changes_through`]).
    ///
    /// # Errors
    /// On a database failure.
    pub fn bridge_changes(&self, max: usize) -> Result<Vec<(i64, BridgeChange)>> {
        self.read(|c| queries::bridge_changes(c, max))
    }

    /// The emoji `account` reacted to `message` with (empty: removed), if it ever reacted.
    ///
    /// # Errors
    /// On a database failure.
    pub fn reaction(&self, message: MessageId, account: &[u8]) -> Result<Option<String>> {
        self.read(|c| queries::reaction(c, message, account))
    }

    /// On a bridge-mode desktop: the messages waiting for the phone, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub fn bridge_outbox(&self) -> Result<Vec<MessageId>> {
        self.read(queries::bridge_outbox)
    }

    /// Merges the search index's segments into one (run after a large import: later searches
    /// touch fewer pages). Takes a while on a large store.
    ///
    /// # Errors
    /// On a database failure.
    pub fn optimize_search_index(&self) -> Result<()> {
        let conn = lock(&self.writer);
        conn.execute(
            "INSERT INTO messages_fts (messages_fts) VALUES ('optimize')",
            [],
        )
        .ctx("optimizing the search index")?;
        Ok(())
    }

    /// Copies everything from the write-ahead log into the database file.
    ///
    /// # Errors
    /// On a database failure.
    pub fn checkpoint(&self) -> Result<()> {
        let conn = lock(&self.writer);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .ctx("checkpointing")
    }

    /// The keys of a chat's messages, newest first: `(ts, id, approximate bytes)`, for
    /// planning a history sync without loading the messages.
    ///
    /// # Errors
    /// On a database failure.
    pub fn message_keys(&self, chat: ChatId) -> Result<Vec<MessageKey>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT ts, id, length(CAST(text AS BLOB)) + length(CAST(sender_name AS BLOB)) \
                     + coalesce(length(CAST(media_name AS BLOB)), 0) \
                     FROM messages WHERE chat = ?1 ORDER BY ts DESC, id DESC",
                )
                .ctx("listing a chat's message keys")?;
            let rows = stmt
                .query_map(params![chat], |r| {
                    Ok(MessageKey {
                        ts: r.get(0)?,
                        id: r.get(1)?,
                        bytes: r.get::<_, i64>(2)?.try_into().unwrap_or(u32::MAX),
                    })
                })
                .ctx("listing a chat's message keys")?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .ctx("listing a chat's message keys")
        })
    }

    /// A chat's messages from `oldest` to `newest` (both `(ts, id)`, inclusive), oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub fn messages_between(
        &self,
        chat: ChatId,
        oldest: (i64, MessageId),
        newest: (i64, MessageId),
    ) -> Result<Vec<Message>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.chat = ?1 \
                 AND (m.ts, m.id) >= (?2, ?3) AND (m.ts, m.id) <= (?4, ?5) \
                 ORDER BY m.ts ASC, m.id ASC"
            );
            let mut stmt = conn.prepare_cached(&sql).ctx("reading a range of a chat")?;
            let rows = stmt
                .query_map(
                    params![chat, oldest.0, oldest.1, newest.0, newest.1],
                    queries::message_from_row,
                )
                .ctx("reading a range of a chat")?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .ctx("reading a range of a chat")
        })
    }

    /// `PRAGMA integrity_check`: the problems SQLite finds (empty when the database is sound).
    ///
    /// # Errors
    /// On a database failure.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("PRAGMA integrity_check")
                .ctx("checking integrity")?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .ctx("checking integrity")?;
            let lines = rows
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("checking integrity")?;
            Ok(lines.into_iter().filter(|l| l != "ok").collect())
        })
    }

    /// Closes the store and erases it from `home`: the database and its WAL files, and its key
    /// (key file and keychain entry). For a device that was unlinked.
    ///
    /// # Errors
    /// [`OpenError::Io`] naming a file that could not be removed.
    pub fn erase(self, home: &Path, keychain: KeychainUse) -> Result<(), OpenError> {
        let path = self.path.clone();
        drop(self);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            key::remove_if_present(&PathBuf::from(name))?;
        }
        key::erase(home, keychain)
    }

    /// The query plan SQLite picks for a search (one line per step), for tests and benchmarks
    /// that check no plan sorts all matches.
    ///
    /// # Errors
    /// On a database failure.
    pub fn explain_search(&self, in_chat: bool) -> Result<Vec<String>> {
        self.explain(&search_sql(in_chat), if in_chat { 3 } else { 2 })
    }

    /// The query plan SQLite picks for a page of a chat.
    ///
    /// # Errors
    /// On a database failure.
    pub fn explain_page(&self, before: bool) -> Result<Vec<String>> {
        let sql = if before {
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.chat = ?1 AND (m.ts, m.id) < (?2, ?3) \
                 ORDER BY m.ts DESC, m.id DESC LIMIT ?4"
            )
        } else {
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.chat = ?1 ORDER BY m.ts DESC, m.id DESC LIMIT ?2"
            )
        };
        self.explain(&sql, if before { 4 } else { 2 })
    }

    fn explain(&self, sql: &str, parameters: usize) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .ctx("explaining a query")?;
            let nulls = vec![rusqlite::types::Null; parameters];
            let rows = stmt
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .ctx("explaining a query")?;
            rows.collect::<rusqlite::Result<_>>()
                .ctx("explaining a query")
        })
    }
}

fn search_sql(in_chat: bool) -> String {
    format!(
        "SELECT {MESSAGE_COLUMNS}, c.name FROM messages_fts f \
         JOIN messages m ON m.rowid = f.rowid \
         JOIN chats c ON c.id = m.chat \
         WHERE messages_fts MATCH ?1 {} \
         ORDER BY f.rowid DESC LIMIT ?2",
        if in_chat { "AND m.chat = ?3" } else { "" }
    )
}

fn transaction<T, E: From<Error>>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("beginning a write")?;
    let value = f(&tx)?;
    tx.commit().ctx("committing a write")?;
    Ok(value)
}

/// Creates a missing database file with mode 0600, so that SQLite (which gives its `-wal` and
/// `-shm` files the database file's mode) never makes any of them readable by others.
fn create_private(path: &Path) -> Result<(), OpenError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(OpenError::Io {
            action: "creating",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Opens one connection: key first, then a read that proves the key, then the pragmas.
fn connect(path: &Path, key: Option<&StoreKey>, cache_kib: i64) -> Result<Connection, OpenError> {
    let sqlite = |step| {
        move |source| OpenError::Sqlite {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| {
        match source.sqlite_error_code() {
            Some(ErrorCode::CannotOpen) => OpenError::Io {
                action: "opening",
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, source.to_string()),
            },
            _ => OpenError::Sqlite {
                path: path.to_path_buf(),
                step: "opening the file",
                source,
            },
        }
    })?;
    if let Some(key) = key {
        // SQLCipher logs failed page decryptions to stderr by default; the caller gets a typed
        // error instead.
        conn.execute_batch("PRAGMA cipher_log_level = NONE;")
            .map_err(sqlite("quieting SQLCipher"))?;
        let pragma = SecretString(format!("PRAGMA key = \"x'{}'\";", key.to_hex().0));
        conn.execute_batch(&pragma.0)
            .map_err(sqlite("setting the key"))?;
    }
    // The first read of the schema is where a wrong key or a foreign file shows.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|source| classify_unreadable(path, key.is_some(), source))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite("setting the busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sqlite("switching to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::NotADatabase {
            path: path.to_path_buf(),
            reason: format!("cannot use a write-ahead log (journal mode stays {mode})"),
        });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite("setting synchronous"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite("enabling foreign keys"))?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(sqlite("keeping temporary data in memory"))?;
    conn.pragma_update(None, "cache_size", -cache_kib)
        .map_err(sqlite("sizing the page cache"))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Names why the first read failed: a wrong key, a file that is not a database, or else.
fn classify_unreadable(path: &Path, keyed: bool, source: rusqlite::Error) -> OpenError {
    if source.sqlite_error_code() != Some(ErrorCode::NotADatabase) {
        return OpenError::Sqlite {
            path: path.to_path_buf(),
            step: "reading the schema",
            source,
        };
    }
    let mut header = [0u8; 16];
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let plain_header = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok()
        && &header == b"SQLite format 3\0";
    let reason = if plain_header && keyed {
        "it is an unencrypted SQLite database".to_owned()
    } else if plain_header {
        "the SQLite file is damaged".to_owned()
    } else if keyed && size >= 512 && size.is_multiple_of(512) {
        return OpenError::WrongKey {
            path: path.to_path_buf(),
        };
    } else if keyed {
        format!("{size} bytes that are neither SQLite nor SQLCipher pages")
    } else {
        "not an SQLite database (an encrypted store needs its key)".to_owned()
    };
    OpenError::NotADatabase {
        path: path.to_path_buf(),
        reason,
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|source| OpenError::Sqlite {
            path: path.to_path_buf(),
            step: "reading the schema version",
            source,
        })?;
    if usize::try_from(found).is_ok_and(|v| v > schema_version()) || found < 0 {
        return Err(OpenError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: schema_version(),
        });
    }
    migrations().to_latest(conn).map_err(|e| match e {
        rusqlite_migration::Error::MigrationDefinition(
            rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
        ) => OpenError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: schema_version(),
        },
        other => OpenError::Migration {
            path: path.to_path_buf(),
            target: schema_version(),
            reason: other.to_string(),
        },
    })
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::{Connection, MutexGuard, Store, lock};

    /// The reader connection, for tests that inspect the schema.
    pub(crate) fn reader(store: &Store) -> MutexGuard<'_, Connection> {
        lock(&store.reader)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;

//! The store's errors: [`OpenError`] for what can go wrong while opening a store (key, file,
//! schema), kept apart from [`Error`] for what can go wrong once it is open.

use std::path::PathBuf;

use crate::types::{ChatId, ChatKind, MessageId};

/// A result whose error defaults to the store's runtime [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file is an encrypted database, but not one this key decrypts.
    #[error("cannot open the store {path}: wrong key (the file does not decrypt with it)")]
    WrongKey {
        /// The database file.
        path: PathBuf,
    },
    /// The file is not a database this build can open with the given settings.
    #[error("{path} is not a Tandem store: {reason}")]
    NotADatabase {
        /// The database file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The store was written by a newer build (its schema version is ahead of ours).
    #[error(
        "the store {path} has schema version {found}, newer than this build knows ({supported}); \
         update Tandem to open it"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build knows.
        supported: usize,
    },
    /// The database exists but its key is nowhere this build can read it from.
    #[error("the store {path} exists but its key is unavailable: {reason}")]
    KeyUnavailable {
        /// The database file.
        path: PathBuf,
        /// Where the key was looked for and what failed.
        reason: String,
    },
    /// The key file exists but cannot be used.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No random bytes for a new key.
    #[error("cannot create a store key: the system random source failed: {reason}")]
    Random {
        /// The system error.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("creating", "reading"...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed while opening or configuring the connection.
    #[error("opening the store {path} ({step}): {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The step that failed.
        step: &'static str,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// Applying the schema migrations failed.
    #[error("migrating the store {path} to schema version {target}: {reason}")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The schema version being migrated to.
        target: usize,
        /// What went wrong.
        reason: String,
    },
}

/// A failure while using an open store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite reported an error.
    #[error("store: {context}: {source}")]
    Sqlite {
        /// What the store was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// A message names a chat the store does not have.
    #[error("no chat {chat} in the store (message {message})")]
    UnknownChat {
        /// The missing chat.
        chat: ChatId,
        /// The message that referred to it.
        message: MessageId,
    },
    /// No chat matches an id or name.
    #[error("no chat matches {query:?}")]
    ChatNotFound {
        /// What the user asked for.
        query: String,
    },
    /// Several chats carry the name asked for.
    #[error("{} chats are named {query:?}; use an id: {}", candidates.len(), list_candidates(candidates))]
    AmbiguousChat {
        /// What the user asked for.
        query: String,
        /// The chats with that name.
        candidates: Vec<ChatCandidate>,
    },
    /// Time-ordered row ids around this timestamp are exhausted (over a million messages in one
    /// millisecond).
    #[error("no free row id near timestamp {ts} for message {message}")]
    RowIdSpace {
        /// The message's timestamp.
        ts: i64,
        /// The message being inserted.
        message: MessageId,
    },
    /// A value does not fit the store's range.
    #[error("{what} out of range: {value}")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value given.
        value: String,
    },
}

/// One of several chats matching an ambiguous name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatCandidate {
    /// The chat's id.
    pub id: ChatId,
    /// Direct or group.
    pub kind: ChatKind,
    /// How many messages it holds.
    pub message_count: u64,
}

fn list_candidates(candidates: &[ChatCandidate]) -> String {
    candidates
        .iter()
        .map(|c| format!("{} ({}, {} messages)", c.id, c.kind, c.message_count))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Attaches what the store was doing to a rusqlite error.
pub(crate) trait SqlContext<T> {
    /// Wraps the error in [`Error::Sqlite`] with `context`.
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> SqlContext<T> for std::result::Result<T, rusqlite::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| Error::Sqlite { context, source })
    }
}

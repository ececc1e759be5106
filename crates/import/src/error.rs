//! The one error type of `tandem-import`: why a file could not be turned into chats.
//!
//! Every variant names the file (as the caller passed it) and, where there is one, the line or
//! message that was refused, with its text cut to about 80 characters, so that the message can be
//! shown to a user as it is.

/// Everything that can make an import fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file, as given.
        file: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The file holds nothing (no bytes, or only blanks and invisible marks).
    #[error("{file} is empty: there is no chat in it")]
    Empty {
        /// The file, as given.
        file: String,
    },

    /// The file is neither a WhatsApp "Export chat" text file nor a Telegram Desktop JSON export.
    #[error(
        "{file} is not a WhatsApp or Telegram chat export: line {line} does not look like one: \"{text}\""
    )]
    NotAnExport {
        /// The file, as given.
        file: String,
        /// The 1-based line that gave it away.
        line: usize,
        /// That line, cut to about 80 characters.
        text: String,
    },

    /// The file is a chat export of a kind this importer does not read.
    #[error(
        "{file} looks like a {what} export, which cannot be imported (line {line}: \"{text}\")"
    )]
    Unsupported {
        /// The file, as given.
        file: String,
        /// What it looks like, e.g. "Signal (signal-export text)".
        what: &'static str,
        /// The 1-based line that gave it away.
        line: usize,
        /// That line, cut to about 80 characters.
        text: String,
    },

    /// A WhatsApp record starts with a date or time that cannot exist (month 13, 31 April,
    /// 25 o'clock...), or that the time zone cannot place.
    #[error("{file}, line {line}: impossible date or time ({reason}): \"{text}\"")]
    BadDate {
        /// The file, as given.
        file: String,
        /// The 1-based line where the record starts.
        line: usize,
        /// That line, cut to about 80 characters.
        text: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The file starts like JSON but is not valid JSON.
    #[error("{file} is not valid JSON (line {line}, column {column}): {message}")]
    Json {
        /// The file, as given.
        file: String,
        /// The 1-based line of the syntax error.
        line: usize,
        /// The 1-based column of the syntax error.
        column: usize,
        /// The parser's description.
        message: String,
    },

    /// A chat of a Telegram export is not shaped like one (e.g. `messages` is not a list).
    #[error("{file}: chat \"{chat}\" cannot be read: {reason}")]
    BadChat {
        /// The file, as given.
        file: String,
        /// The chat's name (or id, or position, when it has no name).
        chat: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A message of a Telegram export cannot be read (no date, a date that is not a date...).
    #[error("{file}: chat \"{chat}\", message {index}: {reason}")]
    BadMessage {
        /// The file, as given.
        file: String,
        /// The chat's name (or id, or position, when it has no name).
        chat: String,
        /// The 1-based position of the message in the chat's `messages` list.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// The result type of `tandem-import`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

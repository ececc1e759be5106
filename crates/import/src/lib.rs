//! `tandem-import` reads chat exports that people already have and turns them into records the
//! store can keep: WhatsApp "Export chat" text files (Android and iOS, in the locale variants
//! found in the wild) and Telegram Desktop `result.json` files (one chat or the whole account).
//!
//! The crate owns recognising the format from the bytes, every locale and calendar variant of
//! WhatsApp headers, placeholders and system lines (the phrase tables live in a private
//! `whatsapp::locale` module), the Telegram JSON shapes, and turning wall-clock times into UTC
//! instants in a chosen time zone. It does no I/O beyond [`parse_file`] reading one file, and
//! keeps records in file order.
//!
//! Choices worth knowing:
//! - Every record of the file becomes exactly one [`Record`]; continuation lines belong to the
//!   record before them, so a caption under `NAME (file attached)` is that media's text.
//! - Missed calls (WhatsApp) and call records (Telegram) are [`RecordKind::System`] records that
//!   keep the caller as author; the app's notices (encryption, security code, group events)
//!   are system records without author, even when iOS attributes them to the chat's name.
//! - Deleted messages have an empty text; their `from_me` says whether "you" deleted them.
//! - `ImportOptions::me` unset: a WhatsApp file's "You deleted this message" lines, when all by
//!   one author, name the exporting user; a Telegram whole-account export's
//!   `personal_information` does the same by user id.
//!
//! ```
//! use tandem_import::{parse_bytes, ImportOptions, RecordKind};
//!
//! let opts = ImportOptions::new(jiff::tz::TimeZone::UTC);
//! let export = parse_bytes(
//!     "WhatsApp Chat with Ana.txt",
//!     b"18/03/2022, 14:56 - Ana: Hello\n18/03/2022, 15:10 - Ana: <Media omitted>\n",
//!     &opts,
//! )?;
//! let chat = &export.chats[0];
//! assert_eq!(chat.name, "Ana");
//! assert_eq!(chat.records[1].kind, RecordKind::Media { file_name: None });
//! # Ok::<(), tandem_import::Error>(())
//! ```

mod error;
mod telegram;
mod text;
mod whatsapp;

use std::path::Path;

pub use error::{Error, Result};

/// How to read an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The zone in which the export's wall-clock times were written (the exporting phone's
    /// zone). Telegram's `date_unixtime` does not need it.
    pub tz: jiff::tz::TimeZone,
    /// The exporting user's name as it appears as an author. Their records get `from_me`. When
    /// absent, a WhatsApp file's "You deleted this message" lines and a Telegram whole-account
    /// export's `personal_information` name them, when they do.
    pub me: Option<String>,
    /// The chat's name when the file name does not carry one (Telegram single-chat exports
    /// carry their own).
    pub chat_name: Option<String>,
}

impl ImportOptions {
    /// Options reading wall-clock times in `tz`, with no `me` and no chat name.
    pub fn new(tz: jiff::tz::TimeZone) -> Self {
        Self {
            tz,
            me: None,
            chat_name: None,
        }
    }
}

impl Default for ImportOptions {
    /// Wall-clock times read as UTC. Callers importing a user's file should pass the user's
    /// zone (`jiff::tz::TimeZone::system()`) instead.
    fn default() -> Self {
        Self::new(jiff::tz::TimeZone::UTC)
    }
}

/// The kind of file an export came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Format {
    /// WhatsApp for Android: `18/03/2022, 14:56 - Name: text`.
    #[serde(rename = "whatsapp-android")]
    WhatsAppAndroid,
    /// WhatsApp for iOS: `[3/18/22, 14:56:01] Name: text` (and the old bracket-less form).
    #[serde(rename = "whatsapp-ios")]
    WhatsAppIos,
    /// Telegram Desktop JSON.
    #[serde(rename = "telegram")]
    Telegram,
}

impl Format {
    /// A stable name: `whatsapp-android`, `whatsapp-ios` or `telegram`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WhatsAppAndroid => "whatsapp-android",
            Self::WhatsAppIos => "whatsapp-ios",
            Self::Telegram => "telegram",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a chat is between two people or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChatKind {
    /// Two people (or one, for Telegram's saved messages and bots).
    Direct,
    /// A group (or a Telegram channel).
    Group,
}

/// What a record is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RecordKind {
    /// A message someone wrote.
    Text,
    /// A line of the app: encryption notices, group events, security-code changes, and calls
    /// (a call keeps its caller as author).
    System,
    /// A photo, video, voice note, sticker, contact card or document, with its file name when
    /// the export names it. The caption, if any, is the record's text.
    Media {
        /// The attachment's file name, when known.
        file_name: Option<String>,
    },
    /// A message that was deleted before the export.
    Deleted,
}

/// One message of an export.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    /// Where the record starts: the 1-based line of a WhatsApp file, or the 1-based position
    /// of the message in a Telegram chat's `messages` list.
    pub line: usize,
    /// When it was sent, in Unix milliseconds (UTC).
    pub ts_ms: i64,
    /// Who wrote it, cleaned of invisible marks; `None` for system lines without author.
    pub author: Option<String>,
    /// The exporting user wrote it (or, for system lines, did it).
    pub from_me: bool,
    /// What it is.
    pub kind: RecordKind,
    /// The text with its inner newlines: the message, the media caption, or the system text;
    /// empty when there is none.
    pub text: String,
}

/// One chat of an export.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportedChat {
    /// Its name.
    pub name: String,
    /// Direct or group.
    pub kind: ChatKind,
    /// The export's own id for the chat (Telegram), if any.
    pub source_id: Option<String>,
    /// Its records in file order (not sorted: exports are not always chronological).
    pub records: Vec<Record>,
}

/// Everything read from one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Export {
    /// The file's format.
    pub format: Format,
    /// Its chats: one for WhatsApp and single-chat Telegram exports, any number for a
    /// whole-account Telegram export.
    pub chats: Vec<ImportedChat>,
}

/// Reads an export from its bytes. `file_name` names it in errors and, for WhatsApp, gives
/// the chat's name (`WhatsApp Chat with Ana.txt` -> `Ana`); it may be a path.
///
/// The format is recognised from the content, not the name: a JSON object with `messages` or
/// `chats` is Telegram, anything else must start with a WhatsApp header line.
///
/// # Errors
///
/// [`Error::Empty`] for a blank file, [`Error::NotAnExport`] when the first non-blank line is
/// not a WhatsApp header or the JSON is not a Telegram export, [`Error::BadDate`] for a record
/// whose date cannot exist, [`Error::Json`] for broken JSON, [`Error::BadChat`] and
/// [`Error::BadMessage`] for Telegram parts that are not shaped right, and
/// [`Error::Unsupported`] for another app's export.
pub fn parse_bytes(file_name: &str, bytes: &[u8], opts: &ImportOptions) -> Result<Export> {
    let content = text::decode(bytes);
    if text::is_blank(&content) {
        return Err(Error::Empty {
            file: file_name.to_owned(),
        });
    }
    if content
        .trim_start_matches(|c: char| c.is_whitespace() || text::is_mark(c))
        .starts_with('{')
    {
        telegram::parse(file_name, &content, opts)
    } else {
        whatsapp::parse(file_name, &content, opts)
    }
}

/// Reads the export at `path` and parses it with [`parse_bytes`], naming it by its path.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read, else those of [`parse_bytes`].
pub fn parse_file(path: &Path, opts: &ImportOptions) -> Result<Export> {
    let name = path.to_string_lossy();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        file: name.to_string(),
        source,
    })?;
    parse_bytes(&name, &bytes, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_are_stable_in_text_and_json() {
        for (format, name) in [
            (Format::WhatsAppAndroid, "whatsapp-android"),
            (Format::WhatsAppIos, "whatsapp-ios"),
            (Format::Telegram, "telegram"),
        ] {
            assert_eq!(format.as_str(), name);
            assert_eq!(format.to_string(), name);
            assert_eq!(
                serde_json::to_string(&format).unwrap(),
                format!("\"{name}\"")
            );
        }
        let kind = RecordKind::Media {
            file_name: Some("a.jpg".to_owned()),
        };
        assert_eq!(
            serde_json::to_string(&kind).unwrap(),
            r#"{"type":"media","file_name":"a.jpg"}"#
        );
    }

    #[test]
    fn parse_file_reads_a_real_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("WhatsApp Chat with Ana.txt");
        std::fs::write(&path, "18/03/2022, 14:56 - Ana: hi\n").unwrap();
        let export = parse_file(&path, &ImportOptions::default()).unwrap();
        assert_eq!(export.chats[0].name, "Ana");
        assert_eq!(export.chats[0].records[0].ts_ms, 1_647_615_360_000);

        let missing = dir.path().join("gone.txt");
        let err = parse_file(&missing, &ImportOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}", missing.display()))
        );
    }
}

//! Chat exports and synthetic history into the store.
//!
//! Imported records get deterministic ids ([`MessageId::derived`]: the record's time in the
//! first 48 bits, then a hash of its chat, author, kind, text and how many identical records
//! came before it in the file), so importing a file again, or a later export of the same chat
//! that overlaps it, adds nothing twice. Each file is one transaction: a file that is refused
//! stores nothing.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use tandem_import::{ChatKind as ImportKind, Export, Format, ImportedChat, Record, RecordKind};
use tandem_proto::MessageId as ProtoMessageId;
use tandem_store::{
    ChatId, ChatKind, Member, MessageId, MessageKind, MessageStatus, NewChat, NewMessage, Sender,
};
use uuid::Uuid;

use crate::{Engine, Error, GenerateReport, ImportReport, Result, synth};

/// Generated history ends here (2026-01-01T00:00:00Z) whatever the clock says, so the same
/// seed gives the same messages, times and ids on every run.
const GENERATE_END_MS: i64 = 1_767_225_600_000;

/// Messages per insert batch when generating history.
const GENERATE_BATCH: usize = 10_000;

/// How exports are read: the zone their wall-clock times are in, who "me" is, a chat name.
#[derive(Debug, Clone)]
pub struct ImportOptions(tandem_import::ImportOptions);

impl ImportOptions {
    /// `tz` is an IANA zone name (default: the system's zone); `me` the exporting user's name
    /// as it appears in the export; `chat_name` overrides the name taken from the file name.
    pub fn new(tz: Option<&str>, me: Option<String>, chat_name: Option<String>) -> Result<Self> {
        let tz = match tz {
            Some(name) => jiff::tz::TimeZone::get(name)
                .map_err(|e| Error::BadInput(format!("unknown time zone {name:?}: {e}")))?,
            None => jiff::tz::TimeZone::system(),
        };
        Ok(Self(tandem_import::ImportOptions { tz, me, chat_name }))
    }
}

impl Engine {
    /// Imports one export file (WhatsApp text or Telegram JSON) in one transaction.
    pub fn import_file(&self, path: &Path, opts: &ImportOptions) -> Result<ImportReport> {
        let export = tandem_import::parse_file(path, &opts.0)?;
        let (chats, messages) = to_store(&export);
        let added = self.store().write(|w| -> Result<usize> {
            for chat in &chats {
                w.upsert_chat(chat)?;
            }
            Ok(w.insert_messages(&messages)?)
        })?;
        let names: Vec<&str> = export.chats.iter().map(|c| c.name.as_str()).collect();
        Ok(ImportReport {
            file: path.display().to_string(),
            format: export.format.as_str(),
            chat: names.join(", "),
            messages: to_u64(messages.len()),
            added: to_u64(added),
        })
    }

    /// Generates deterministic synthetic history (`seed`) and stores it in batches.
    pub fn generate(&self, chats: usize, messages: usize, seed: u64) -> Result<GenerateReport> {
        if chats == 0 {
            return Err(Error::BadInput("--chats must be at least 1".into()));
        }
        let history = synth::generate(seed, chats, messages, GENERATE_END_MS);
        let store = self.store();
        store.write(|w| -> Result<()> {
            for chat in &history.chats {
                w.upsert_chat(chat)?;
            }
            Ok(())
        })?;
        let mut added = 0usize;
        let mut batch = Vec::with_capacity(GENERATE_BATCH.min(messages));
        for message in history.messages {
            batch.push(message);
            if batch.len() == GENERATE_BATCH {
                added += store.write(|w| w.insert_messages(&batch))?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            added += store.write(|w| w.insert_messages(&batch))?;
        }
        Ok(GenerateReport {
            chats: to_u64(history.chats.len()),
            messages: to_u64(messages),
            added: to_u64(added),
        })
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The store rows for an export: its chats and all their messages.
fn to_store(export: &Export) -> (Vec<NewChat>, Vec<NewMessage>) {
    let family: &[u8] = match export.format {
        Format::Telegram => b"telegram",
        _ => b"whatsapp",
    };
    let mut chats = Vec::with_capacity(export.chats.len());
    let mut messages = Vec::new();
    for chat in &export.chats {
        let id = chat_id(family, chat);
        chats.push(NewChat {
            id,
            kind: match chat.kind {
                ImportKind::Group => ChatKind::Group,
                ImportKind::Direct => ChatKind::Direct,
            },
            name: chat.name.clone(),
            peer_account: None,
            created_at: chat.records.iter().map(|r| r.ts_ms).min().unwrap_or(0),
            members: members(chat),
        });
        let mut seen: HashMap<[u8; 32], u32> = HashMap::new();
        for record in &chat.records {
            messages.push(message(id, record, &mut seen));
        }
    }
    (chats, messages)
}

/// A chat's id: a hash of the export family and the chat's source id or name, so the same chat
/// exported twice lands in the same place.
fn chat_id(family: &[u8], chat: &ImportedChat) -> ChatId {
    let mut h = Sha256::new();
    h.update(b"tandem/v1 imported chat\0");
    h.update(family);
    h.update([0]);
    match &chat.source_id {
        Some(source) => {
            h.update(b"id\0");
            h.update(source.as_bytes());
        }
        None => {
            h.update(b"name\0");
            h.update(chat.name.as_bytes());
        }
    }
    ChatId(Uuid::new_v8(first16(&h.finalize())))
}

/// Distinct authors, in order of appearance.
fn members(chat: &ImportedChat) -> Vec<Member> {
    let mut names: Vec<&str> = Vec::new();
    for author in chat.records.iter().filter_map(|r| r.author.as_deref()) {
        if !names.contains(&author) {
            names.push(author);
        }
    }
    names
        .into_iter()
        .map(|name| Member {
            account: None,
            name: name.to_owned(),
        })
        .collect()
}

/// One record as a store message with its deterministic id.
fn message(chat: ChatId, record: &Record, seen: &mut HashMap<[u8; 32], u32>) -> NewMessage {
    let (kind, media_name, deleted) = match &record.kind {
        RecordKind::Text => (MessageKind::Text, None, false),
        RecordKind::System => (MessageKind::System, None, false),
        RecordKind::Media { file_name } => (MessageKind::Media, file_name.clone(), false),
        RecordKind::Deleted => (MessageKind::Deleted, None, true),
    };
    let author = record.author.as_deref().unwrap_or("");
    let mut key = Vec::with_capacity(author.len() + record.text.len() + 32);
    key.extend_from_slice(&record.ts_ms.to_be_bytes());
    for part in [
        author,
        kind.as_str(),
        media_name.as_deref().unwrap_or(""),
        record.text.as_str(),
    ] {
        key.extend_from_slice(part.as_bytes());
        key.push(0);
    }
    // Identical records (same time, author and text) are distinct messages: count them.
    let fingerprint: [u8; 32] = Sha256::digest(&key).into();
    let occurrence = seen.entry(fingerprint).or_insert(0);
    key.extend_from_slice(&occurrence.to_be_bytes());
    *occurrence += 1;
    NewMessage {
        id: message_id(chat, record.ts_ms, &key),
        chat,
        sender: Sender::named(author),
        from_me: record.from_me,
        ts: record.ts_ms,
        kind,
        text: record.text.clone(),
        media_name,
        reply_to: None,
        edited_at: None,
        deleted,
        status: MessageStatus::Read,
    }
}

/// The deterministic, time-prefixed id of an imported record.
fn message_id(chat: ChatId, ts_ms: i64, key: &[u8]) -> MessageId {
    let mut namespace = b"tandem/v1 import\0".to_vec();
    namespace.extend_from_slice(chat.as_bytes());
    match ProtoMessageId::derived(ts_ms, &namespace, key) {
        Ok(id) => MessageId(Uuid::from_bytes(*id.as_bytes())),
        // Times before 1970 or past the 48-bit range: keep the hash, drop the time prefix.
        Err(_) => MessageId(Uuid::new_v8(first16(&Sha256::digest(
            [namespace.as_slice(), key].concat(),
        )))),
    }
}

/// The first 16 bytes of a digest.
fn first16(digest: &[u8]) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(digest) {
        *b = *d;
    }
    bytes
}

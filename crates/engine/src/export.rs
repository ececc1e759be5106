//! `export`: one chat, or every chat, written to a file the user keeps: JSON for programs
//! ([`ExportFormat::Json`]) or one self-contained HTML page to read in any browser
//! ([`ExportFormat::Html`]: inline CSS, no scripts, nothing fetched).
//!
//! The export streams: each chat is read from its oldest message in keyset pages of
//! [`PAGE`] messages and written through a buffered writer, so memory stays flat whatever the
//! history's length. It is written to `<path>.tmp` and renamed over `path` only once complete:
//! a failure (a full disk, a bad chat name, an unwritable folder) leaves no partial file behind.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde::Serialize;
use tandem_store::{ChatKind, ChatSummary, Cursor, Message, MessageId, identity};
use uuid::Uuid;

use crate::views::message_view;
use crate::{Engine, Error, MessageView, ReactionView, Result, now_ms};

/// Messages read from the store at a time (one keyset page).
const PAGE: usize = 1000;

/// Messages between two progress reports (at most).
const PROGRESS_EVERY: u64 = 1000;

/// The version of the JSON document (`"tandem_export"`); it grows only on an incompatible
/// change.
pub const EXPORT_VERSION: u32 = 1;

/// Characters of a quoted message shown above a reply in HTML.
const QUOTE_CHARS: usize = 100;

/// Bytes the file writer buffers.
const BUFFER: usize = 256 * 1024;

/// What an export is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// One JSON document: `{"tandem_export":1,"exported_at","account","chats":[...]}`, each
    /// chat with its messages as [`MessageView`]s, oldest first.
    Json,
    /// One self-contained HTML page that reads like the chat (inline CSS, no scripts, no
    /// external resources; follows the system's light or dark mode).
    Html,
}

impl ExportFormat {
    /// `"json"` or `"html"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Html => "html",
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportFormat {
    type Err = Error;

    /// `"json"` or `"html"` (case and surrounding spaces ignored).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "html" => Ok(Self::Html),
            _ => Err(Error::BadInput(format!(
                "unknown export format {s:?}: use json or html"
            ))),
        }
    }
}

/// What an export wrote: `{"path","chats","messages","bytes"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// The file written.
    pub path: PathBuf,
    /// Chats in it.
    pub chats: u64,
    /// Messages in it.
    pub messages: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The account an export comes from, as the JSON document names it.
#[derive(Debug, Clone, Serialize)]
struct ExportAccount {
    /// The account id.
    id: String,
    /// Its display name.
    name: Option<String>,
    /// The device that wrote the export.
    device: Option<String>,
}

/// What the top of the file says.
#[derive(Debug)]
struct Head<'a> {
    exported_at: i64,
    account: Option<ExportAccount>,
    chats: &'a [ChatSummary],
    total: u64,
}

/// The message a reply quotes, as shown above it.
#[derive(Debug)]
struct Quote {
    id: String,
    sender: Option<String>,
    from_me: bool,
    snippet: String,
}

impl Engine {
    /// Writes `chat` (an id or exact name; `None`: every chat) to `path` as `format`, calling
    /// `progress(done, total)` at most every 1000 messages and once at the end.
    ///
    /// The file is written as `<path>.tmp` and renamed to `path` when complete (replacing an
    /// older file of that name); on any failure no file is left.
    ///
    /// # Errors
    /// [`Error::Store`] for an unknown or ambiguous chat (before anything is written) or a
    /// store failure; [`Error::BadInput`] when `path` is a folder or names no file;
    /// [`Error::Home`] naming the file when it cannot be written.
    pub fn export(
        &self,
        format: ExportFormat,
        chat: Option<&str>,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ExportReport> {
        let store = self.store();
        let chats = match chat {
            Some(query) => vec![store.chat_by_id_or_name(query)?],
            None => store.chats()?,
        };
        if path.file_name().is_none() || path.is_dir() {
            return Err(Error::BadInput(format!(
                "cannot export to {}: give the name of a file to write",
                path.display()
            )));
        }
        let head = Head {
            exported_at: now_ms(),
            account: self.export_account()?,
            chats: &chats,
            total: chats.iter().map(|c| c.message_count).sum(),
        };

        let (tmp, file) = TmpFile::create(path)?;
        let out = BufWriter::with_capacity(BUFFER, file);
        let (out, done) = match format {
            ExportFormat::Json => self.write_export(JsonSink { out, first: true }, &head, progress),
            ExportFormat::Html => self.write_export(HtmlSink::new(out), &head, progress),
        }
        .map_err(|e| e.at(&tmp.path))?;
        let file = out
            .into_inner()
            .map_err(|e| io_error(&tmp.path, e.into_error()))?;
        file.sync_all().map_err(|e| io_error(&tmp.path, e))?;
        let bytes = file.metadata().map_err(|e| io_error(&tmp.path, e))?.len();
        drop(file);
        tmp.persist(path)?;
        progress(done, head.total.max(done));
        Ok(ExportReport {
            path: path.to_path_buf(),
            chats: u64::try_from(chats.len()).unwrap_or(u64::MAX),
            messages: done,
            bytes,
        })
    }

    /// The account this device belongs to (`None` before it has one).
    fn export_account(&self) -> Result<Option<ExportAccount>> {
        let status = self.status()?;
        let Some(id) = status.account else {
            return Ok(None);
        };
        let name = self
            .store()
            .identity(identity::ACCOUNT_NAME)?
            .map(|v| String::from_utf8_lossy(v.expose()).into_owned());
        Ok(Some(ExportAccount {
            id,
            name,
            device: status.device,
        }))
    }

    /// Streams every chat of `head` into `sink`, oldest message first; returns the writer and
    /// how many messages were written.
    fn write_export<S: Sink>(
        &self,
        mut sink: S,
        head: &Head<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(BufWriter<File>, u64), Failure> {
        let store = self.store();
        sink.begin(head)?;
        let mut done = 0u64;
        let mut reported = 0u64;
        for (index, chat) in head.chats.iter().enumerate() {
            sink.begin_chat(chat, index)?;
            // (ts, id) > (i64::MIN, nil): from the chat's oldest message.
            let mut cursor = Cursor::After {
                ts: i64::MIN,
                id: MessageId(Uuid::nil()),
            };
            loop {
                let page = store.page(chat.id, cursor, PAGE)?;
                let Some(last) = page.last() else { break };
                cursor = last.after();
                let ids: Vec<MessageId> = page.iter().map(|m| m.id).collect();
                let mut reactions = self.reaction_views(&ids)?;
                for m in &page {
                    let mut view = message_view(m);
                    view.reactions = reactions.remove(&m.id).unwrap_or_default();
                    let quote = match (S::QUOTES, m.reply_to) {
                        (true, Some(id)) => Some(store.message(id)?.map(|q| quote_of(&q))),
                        _ => None,
                    };
                    sink.message(m, &view, quote.as_ref().map(Option::as_ref))?;
                    done += 1;
                }
                if done - reported >= PROGRESS_EVERY {
                    progress(done, head.total.max(done));
                    reported = done;
                }
                if page.len() < PAGE {
                    break;
                }
            }
            sink.end_chat()?;
        }
        Ok((sink.end()?, done))
    }
}

/// What went wrong while streaming: the store, or writing the file (named by the caller).
#[derive(Debug)]
enum Failure {
    Engine(Error),
    Io(io::Error),
}

impl Failure {
    fn at(self, path: &Path) -> Error {
        match self {
            Self::Engine(e) => e,
            Self::Io(e) => io_error(path, e),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Engine(e)
    }
}

impl From<tandem_store::Error> for Failure {
    fn from(e: tandem_store::Error) -> Self {
        Self::Engine(e.into())
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

fn io_error(path: &Path, source: io::Error) -> Error {
    Error::Home {
        path: path.to_path_buf(),
        source,
    }
}

/// `<path>.tmp`, removed on drop unless [`TmpFile::persist`] renamed it to its final name.
#[derive(Debug)]
struct TmpFile {
    path: PathBuf,
    keep: bool,
}

impl TmpFile {
    /// Creates `<path>.tmp` afresh, readable by its owner only (the export is not
    /// encrypted), opened for writing. One left by an export that crashed is removed first;
    /// the new file is created exclusively, so a link planted under that name is never
    /// followed.
    fn create(path: &Path) -> Result<(Self, File)> {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        let tmp = PathBuf::from(name);
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error(&tmp, e)),
            _ => {}
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&tmp).map_err(|e| io_error(&tmp, e))?;
        Ok((
            Self {
                path: tmp,
                keep: false,
            },
            file,
        ))
    }

    /// Renames it to `path`, replacing any file there.
    fn persist(mut self, path: &Path) -> Result<()> {
        std::fs::rename(&self.path, path).map_err(|e| io_error(path, e))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.keep {
            // Nothing more to do if it cannot be removed: the error being returned says why.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn quote_of(m: &Message) -> Quote {
    let view = message_view(m);
    let text = if m.deleted {
        "This message was deleted".to_owned()
    } else {
        view.text
    };
    let mut snippet: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().nth(QUOTE_CHARS).is_some() {
        snippet.push('…');
    }
    Quote {
        id: view.id,
        sender: view.sender,
        from_me: view.from_me,
        snippet,
    }
}

fn kind_name(kind: &ChatKind) -> &'static str {
    match kind {
        ChatKind::Group => "group",
        _ => "direct",
    }
}

/// One output format: called with the head, then each chat and its messages in order.
trait Sink {
    /// Whether [`Sink::message`] shows the quoted message of a reply (it is looked up).
    const QUOTES: bool;

    fn begin(&mut self, head: &Head<'_>) -> io::Result<()>;

    fn begin_chat(&mut self, chat: &ChatSummary, index: usize) -> io::Result<()>;

    /// `quote`: for a reply (and [`Sink::QUOTES`]), the quoted message if it is stored.
    fn message(
        &mut self,
        m: &Message,
        view: &MessageView,
        quote: Option<Option<&Quote>>,
    ) -> io::Result<()>;

    fn end_chat(&mut self) -> io::Result<()>;

    /// Closes the document and hands back the writer.
    fn end(self) -> io::Result<BufWriter<File>>;
}

/// The JSON document, one message a line:
///
/// ```text
/// {"tandem_export":1,"exported_at":1767225600000,"account":{...},"chats":[
/// {"id":"...","name":"...","kind":"direct","messages":[
/// {"id":"...","chat":"...",...},
/// ...
/// ]}
/// ]}
/// ```
struct JsonSink {
    out: BufWriter<File>,
    /// No message written yet in the current chat.
    first: bool,
}

impl JsonSink {
    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        let mut serializer = serde_json::Serializer::new(&mut self.out);
        value.serialize(&mut serializer).map_err(io::Error::from)
    }
}

impl Sink for JsonSink {
    const QUOTES: bool = false;

    fn begin(&mut self, head: &Head<'_>) -> io::Result<()> {
        write!(
            self.out,
            "{{\"tandem_export\":{EXPORT_VERSION},\"exported_at\":{},\"account\":",
            head.exported_at
        )?;
        self.value(&head.account)?;
        self.out.write_all(b",\"chats\":[")
    }

    fn begin_chat(&mut self, chat: &ChatSummary, index: usize) -> io::Result<()> {
        if index > 0 {
            self.out.write_all(b",")?;
        }
        self.out.write_all(b"\n{\"id\":")?;
        self.value(&chat.id.0.hyphenated().to_string())?;
        self.out.write_all(b",\"name\":")?;
        self.value(&chat.name)?;
        self.out.write_all(b",\"kind\":")?;
        self.value(kind_name(&chat.kind))?;
        self.out.write_all(b",\"messages\":[")?;
        self.first = true;
        Ok(())
    }

    fn message(
        &mut self,
        _m: &Message,
        view: &MessageView,
        _quote: Option<Option<&Quote>>,
    ) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        self.out.write_all(b"\n")?;
        self.value(view)
    }

    fn end_chat(&mut self) -> io::Result<()> {
        self.out.write_all(b"\n]}")
    }

    fn end(mut self) -> io::Result<BufWriter<File>> {
        self.out.write_all(b"\n]}\n")?;
        Ok(self.out)
    }
}

/// The page's style: a chat's look, light or dark with the system.
const CSS: &str = "\
:root{color-scheme:light dark;--bg:#efeae2;--fg:#111b21;--muted:#667781;--in:#fff;\
--out:#d9fdd3;--accent:#0b7a5a;--line:rgba(0,0,0,.12);--quote:rgba(0,0,0,.05);--read:#2f8be6}\
@media (prefers-color-scheme:dark){:root{--bg:#0b141a;--fg:#e9edef;--muted:#8696a0;\
--in:#202c33;--out:#005c4b;--accent:#53bdeb;--line:rgba(255,255,255,.14);\
--quote:rgba(255,255,255,.07);--read:#53bdeb}}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--fg);\
font:15px/1.4 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",sans-serif}\
main{max-width:860px;margin:0 auto;padding:16px 16px 48px}\
header.export h1{margin:8px 0 4px;font-size:24px}\
header.export p,.about{margin:0 0 12px;color:var(--muted);font-size:13px}\
nav.toc ol{margin:0 0 24px;padding-left:24px}\
nav.toc a,.quote{color:inherit}\
nav.toc span{color:var(--muted);font-size:13px}\
section.chat{margin:24px 0;content-visibility:auto;contain-intrinsic-size:auto 1200px}\
section.chat h2{position:sticky;top:0;z-index:1;margin:0;padding:10px 0;\
background:var(--bg);border-bottom:1px solid var(--line);font-size:19px}\
.day{text-align:center;margin:16px 0 8px}\
.day span{display:inline-block;background:var(--in);color:var(--muted);font-size:12px;\
padding:4px 12px;border-radius:8px;box-shadow:0 1px 0 var(--line)}\
.msg{width:fit-content;min-width:88px;max-width:78%;margin:3px 0;padding:6px 9px 4px;\
border-radius:10px;background:var(--in);box-shadow:0 1px 0 var(--line)}\
.msg.out{margin-left:auto;background:var(--out)}\
.who{color:var(--accent);font-weight:600;font-size:13px}\
.quote{display:block;margin:2px 0 4px;padding:4px 8px;border-left:4px solid var(--accent);\
border-radius:6px;background:var(--quote);font-size:13px;text-decoration:none}\
.quote b{display:block;color:var(--accent)}\
.quote.missing{color:var(--muted);font-style:italic}\
.text{white-space:pre-wrap;overflow-wrap:anywhere}\
.gone{color:var(--muted);font-style:italic}\
.file{font-weight:500}\
.reacts{margin-top:2px}\
.reacts span{display:inline-block;margin-right:4px;padding:0 6px;border-radius:10px;\
background:var(--quote);font-size:13px}\
.meta{text-align:right;color:var(--muted);font-size:11px;white-space:nowrap}\
.tick.read{color:var(--read)}\
.sys{width:fit-content;max-width:85%;margin:8px auto;padding:4px 10px;border-radius:8px;\
background:var(--quote);color:var(--muted);font-size:13px;text-align:center;\
white-space:pre-wrap}\
.sys time{margin-left:6px;font-size:11px}\
@media print{section.chat{content-visibility:visible}section.chat h2{position:static}}";

/// A chat as one readable page: chat headings, day separators, bubbles with sender, time,
/// text, quoted replies, reactions and marks; this account's messages on the right.
struct HtmlSink {
    out: BufWriter<File>,
    tz: TimeZone,
    /// The day of the last message written in this chat.
    day: Option<Date>,
    /// Who wrote the last bubble in this chat (`from_me`, sender), to name a new sender once.
    last_sender: Option<(bool, Option<String>)>,
}

impl HtmlSink {
    fn new(out: BufWriter<File>) -> Self {
        Self {
            out,
            tz: TimeZone::system(),
            day: None,
            last_sender: None,
        }
    }

    /// `ts` as a wall-clock time in this system's zone (`None` if out of range).
    fn local(&self, ts: i64) -> Option<DateTime> {
        Timestamp::from_millisecond(ts)
            .ok()
            .map(|t| self.tz.to_datetime(t))
    }

    fn text(&mut self, s: &str) -> io::Result<()> {
        escape_html(&mut self.out, s)
    }

    fn time(&mut self, ts: i64) -> io::Result<()> {
        match self.local(ts) {
            Some(t) => write!(
                self.out,
                "<time title=\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}\">{:02}:{:02}</time>",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.hour(),
                t.minute()
            ),
            None => write!(self.out, "<time>{ts}</time>"),
        }
    }

    fn quote(&mut self, quote: Option<&Quote>) -> io::Result<()> {
        let Some(q) = quote else {
            return self
                .out
                .write_all(b"<div class=\"quote missing\">A message not in this export</div>");
        };
        self.out.write_all(b"<a class=\"quote\" href=\"#m-")?;
        self.text(&q.id)?;
        self.out.write_all(b"\"><b>")?;
        match (&q.sender, q.from_me) {
            (_, true) => self.out.write_all(b"You")?,
            (Some(name), false) => self.text(name)?,
            (None, false) => {}
        }
        self.out.write_all(b"</b>")?;
        self.text(&q.snippet)?;
        self.out.write_all(b"</a>")
    }

    fn reactions(&mut self, reactions: &[ReactionView]) -> io::Result<()> {
        if reactions.is_empty() {
            return Ok(());
        }
        // Grouped by emoji, in the order each was first used.
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for r in reactions {
            let who = if r.from_me { "You" } else { r.from.as_str() };
            match groups.iter_mut().find(|(emoji, _)| *emoji == r.emoji) {
                Some((_, names)) => names.push(who),
                None => groups.push((&r.emoji, vec![who])),
            }
        }
        self.out.write_all(b"<div class=\"reacts\">")?;
        for (emoji, names) in groups {
            self.out.write_all(b"<span title=\"")?;
            escape_html(&mut self.out, &names.join(", "))?;
            self.out.write_all(b"\">")?;
            escape_html(&mut self.out, emoji)?;
            if names.len() > 1 {
                write!(self.out, " {}", names.len())?;
            }
            self.out.write_all(b"</span>")?;
        }
        self.out.write_all(b"</div>")
    }
}

impl Sink for HtmlSink {
    const QUOTES: bool = true;

    fn begin(&mut self, head: &Head<'_>) -> io::Result<()> {
        let title = match head.chats {
            [chat] => chat.name.clone(),
            _ => "All chats".to_owned(),
        };
        self.out.write_all(
            b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
              <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
              <meta name=\"color-scheme\" content=\"light dark\">\n\
              <meta name=\"generator\" content=\"Tandem\">\n<title>",
        )?;
        self.text(&title)?;
        self.out
            .write_all(b" \xC2\xB7 Tandem export</title>\n<style>")?;
        self.out.write_all(CSS.as_bytes())?;
        self.out
            .write_all(b"</style>\n</head>\n<body>\n<main>\n<header class=\"export\">\n<h1>")?;
        self.text(&title)?;
        self.out.write_all(b"</h1>\n<p>Exported ")?;
        if let Some(t) = self.local(head.exported_at) {
            write!(self.out, "{}", t.strftime("%-d %B %Y, %H:%M"))?;
        }
        if let Some(account) = &head.account {
            self.out.write_all(b" from the account of ")?;
            let name = account.name.as_deref().unwrap_or(&account.id);
            escape_html(&mut self.out, name)?;
        }
        write!(
            self.out,
            " \u{b7} {} {} \u{b7} {} {} \u{b7} times in ",
            head.chats.len(),
            plural(head.chats.len() as u64, "chat", "chats"),
            head.total,
            plural(head.total, "message", "messages"),
        )?;
        let zone = self.tz.iana_name().unwrap_or("this computer's time zone");
        escape_html(&mut self.out, zone)?;
        self.out.write_all(b"</p>\n</header>\n")?;
        if head.chats.len() > 1 {
            self.out
                .write_all(b"<nav class=\"toc\">\n<h2>Chats</h2>\n<ol>\n")?;
            for chat in head.chats {
                self.out.write_all(b"<li><a href=\"#c-")?;
                write!(self.out, "{}", chat.id.0.hyphenated())?;
                self.out.write_all(b"\">")?;
                escape_html(&mut self.out, &chat.name)?;
                writeln!(
                    self.out,
                    "</a> <span>{} {}</span></li>",
                    chat.message_count,
                    plural(chat.message_count, "message", "messages")
                )?;
            }
            self.out.write_all(b"</ol>\n</nav>\n")?;
        }
        Ok(())
    }

    fn begin_chat(&mut self, chat: &ChatSummary, _index: usize) -> io::Result<()> {
        self.day = None;
        self.last_sender = None;
        write!(
            self.out,
            "<section class=\"chat\" id=\"c-{}\">\n<h2>",
            chat.id.0.hyphenated()
        )?;
        escape_html(&mut self.out, &chat.name)?;
        write!(
            self.out,
            "</h2>\n<p class=\"about\">{} \u{b7} {} {}</p>\n",
            match chat.kind {
                ChatKind::Group => "Group",
                _ => "Direct chat",
            },
            chat.message_count,
            plural(chat.message_count, "message", "messages")
        )
    }

    fn message(
        &mut self,
        m: &Message,
        view: &MessageView,
        quote: Option<Option<&Quote>>,
    ) -> io::Result<()> {
        if let Some(t) = self.local(view.ts)
            && self.day != Some(t.date())
        {
            self.day = Some(t.date());
            self.last_sender = None;
            writeln!(
                self.out,
                "<div class=\"day\"><span>{}</span></div>",
                t.strftime("%A, %-d %B %Y")
            )?;
        }
        if view.kind == "system" {
            self.last_sender = None;
            write!(self.out, "<div class=\"sys\" id=\"m-{}\">", view.id)?;
            self.text(&view.text)?;
            self.time(view.ts)?;
            return self.out.write_all(b"</div>\n");
        }
        write!(
            self.out,
            "<div class=\"msg {}\" id=\"m-{}\">",
            if view.from_me { "out" } else { "in" },
            view.id
        )?;
        let author = (view.from_me, view.sender.clone());
        if !view.from_me
            && let Some(name) = &view.sender
            && self.last_sender.as_ref() != Some(&author)
        {
            self.out.write_all(b"<div class=\"who\">")?;
            escape_html(&mut self.out, name)?;
            self.out.write_all(b"</div>")?;
        }
        self.last_sender = Some(author);
        if let Some(quote) = quote {
            self.quote(quote)?;
        }
        match view.kind.as_str() {
            "deleted" => self
                .out
                .write_all(b"<div class=\"text gone\">This message was deleted</div>")?,
            "unsupported" => self
                .out
                .write_all(b"<div class=\"text gone\">A message this version cannot show</div>")?,
            "media" => {
                self.out
                    .write_all(b"<div class=\"file\">\xF0\x9F\x93\x8E ")?;
                let name = m.media_name.as_deref().unwrap_or("A file");
                escape_html(&mut self.out, name)?;
                self.out.write_all(b"</div>")?;
                if !m.text.is_empty() {
                    self.out.write_all(b"<div class=\"text\">")?;
                    escape_html(&mut self.out, &m.text)?;
                    self.out.write_all(b"</div>")?;
                }
            }
            _ => {
                self.out.write_all(b"<div class=\"text\">")?;
                self.text(&view.text)?;
                self.out.write_all(b"</div>")?;
            }
        }
        self.reactions(&view.reactions)?;
        self.out.write_all(b"<div class=\"meta\">")?;
        if view.edited && !view.deleted {
            self.out
                .write_all(b"<span class=\"edited\">edited</span> ")?;
        }
        self.time(view.ts)?;
        if let Some(status) = view.status {
            let tick = match status {
                "pending" => "\u{25cb}",
                "sent" => "\u{2713}",
                _ => "\u{2713}\u{2713}",
            };
            write!(
                self.out,
                " <span class=\"tick {status}\" title=\"{status}\">{tick}</span>"
            )?;
        }
        self.out.write_all(b"</div></div>\n")
    }

    fn end_chat(&mut self) -> io::Result<()> {
        self.out.write_all(b"</section>\n")
    }

    fn end(mut self) -> io::Result<BufWriter<File>> {
        self.out.write_all(b"</main>\n</body>\n</html>\n")?;
        Ok(self.out)
    }
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// Writes `s` with `&`, `<`, `>`, `"` and `'` escaped: safe as HTML text and in a quoted
/// attribute.
fn escape_html(out: &mut impl Write, s: &str) -> io::Result<()> {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        let entity: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&#39;",
            _ => continue,
        };
        out.write_all(bytes.get(start..i).unwrap_or_default())?;
        out.write_all(entity)?;
        start = i + 1;
    }
    out.write_all(bytes.get(start..).unwrap_or_default())
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;

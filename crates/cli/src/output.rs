//! Printing results: JSON (one document on stdout) or text meant for people.

use std::io::Write;

use serde::Serialize;
use tandem_engine::{ChatView, ExportReport, ImportReport, MessageView, SearchHitView, Status};

/// Writes one line to stdout; a closed pipe (`| head`) comes back as an error that
/// [`crate::exit_with`] treats as a normal end.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A Unix-ms time as local `YYYY-MM-DD HH:MM`.
pub fn time(ts: i64) -> String {
    let zone = jiff::tz::TimeZone::system();
    match jiff::Timestamp::from_millisecond(ts) {
        Ok(t) => t.to_zoned(zone).strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => ts.to_string(),
    }
}

/// The chat list.
pub fn chats(chats: &[ChatView], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(chats);
    }
    if chats.is_empty() {
        out!("No chats.");
    }
    for c in chats {
        let last = c.last_ts.map(time).unwrap_or_default();
        out!(
            "{:<36}  {:<6}  {:>8} messages  {last}  {}",
            c.name,
            c.kind,
            c.messages,
            c.id
        );
    }
    Ok(())
}

fn message_line(m: &MessageView) -> String {
    let who = match (&m.sender, m.from_me) {
        (_, true) => "You".to_owned(),
        (Some(s), false) => s.clone(),
        (None, false) => String::new(),
    };
    let body = match m.kind.as_str() {
        "media" => format!("[media] {}", m.text),
        "deleted" => "[deleted]".to_owned(),
        "unsupported" => "[a message this version cannot show]".to_owned(),
        _ => m.text.clone(),
    };
    if m.kind == "system" || who.is_empty() {
        format!("[{}] * {body}", time(m.ts))
    } else {
        format!("[{}] {who}: {body}", time(m.ts))
    }
}

/// A page of history, oldest first.
pub fn history(messages: &[MessageView], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(messages);
    }
    if messages.is_empty() {
        out!("No messages.");
    }
    for m in messages {
        out!("{}", message_line(m));
    }
    Ok(())
}

/// Search hits, newest first.
pub fn search(hits: &[SearchHitView], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(hits);
    }
    if hits.is_empty() {
        out!("No messages match.");
    }
    for h in hits {
        out!("{}  {}", h.chat_name, message_line(&h.message));
    }
    Ok(())
}

/// The device's status.
pub fn status(s: &Status, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(s);
    }
    out!("account:  {}", s.account.as_deref().unwrap_or("(none)"));
    out!("device:   {}", s.device.as_deref().unwrap_or("(none)"));
    out!("mode:     {}", s.mode);
    if let Some(url) = &s.bridge_url {
        out!("bridge:   {url}");
    }
    if let Some(reachable) = s.phone_reachable {
        out!(
            "phone:    {}",
            if reachable {
                "reachable"
            } else {
                "not reachable"
            }
        );
    }
    out!("linked:   {}", if s.linked { "yes" } else { "no" });
    out!("store:    {} chats, {} messages", s.chats, s.messages);
    out!(
        "sync:     {} ({} of {})",
        s.sync.state,
        s.sync.done,
        s.sync.total
    );
    Ok(())
}

/// What an import did to one file.
/// With `--json`, one compact JSON object per line and file (JSON Lines).
pub fn import(r: &ImportReport, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        out!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    out!(
        "{}: {} chat \"{}\": {} messages, {} new",
        r.file,
        r.format,
        r.chat,
        r.messages,
        r.added
    );
    Ok(())
}

/// What an export wrote: the file, then its counts.
pub fn export(r: &ExportReport, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(r);
    }
    let plural = |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    out!(
        "{}: {} {}, {} {}, {} bytes",
        r.path.display(),
        r.chats,
        plural(r.chats, "chat", "chats"),
        r.messages,
        plural(r.messages, "message", "messages"),
        r.bytes
    );
    Ok(())
}

/// One line of text.
pub fn line(text: &str) -> anyhow::Result<()> {
    out!("{text}");
    Ok(())
}

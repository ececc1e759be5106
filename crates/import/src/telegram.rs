//! Telegram Desktop JSON exports (`result.json`): one chat (`{"name", "type", "id",
//! "messages": [...]}`) or the whole account (`{"personal_information", "chats": {"list":
//! [...]}, "left_chats": {"list": [...]}}`).
//!
//! Every element of `messages` becomes one record: `service` elements become system records
//! (actor as author, the action in words as text), messages with `photo`, `file` or
//! `media_type` become media records (the `file_name`, or the exported file's name, and the
//! caption), the rest text. `text` is a string or a list of strings and entity objects
//! (`{"type": "bold", "text": "…"}`), which are joined. Times come from `date_unixtime` when
//! present, else from `date` read as wall-clock time in the chosen zone.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::text::{clean_name, excerpt};
use crate::{ChatKind, Export, Format, ImportOptions, ImportedChat, Record, RecordKind};

/// Who the exporting user is.
#[derive(Debug, Default)]
struct Me {
    name: Option<String>,
    id: Option<String>,
}

/// Parses a Telegram export. `file` is the name as the caller gave it; `text` is the decoded
/// content, which starts with `{`.
pub(crate) fn parse(file: &str, text: &str, opts: &ImportOptions) -> Result<Export> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Json {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let not_export = || Error::NotAnExport {
        file: file.to_owned(),
        line: 1,
        text: excerpt(text.lines().next().unwrap_or("")),
    };
    let root = value.as_object().ok_or_else(not_export)?;
    let me = whoami(root, opts);

    let mut chats = Vec::new();
    if root.contains_key("messages") {
        let fallback = opts
            .chat_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map_or_else(|| crate::whatsapp::file_stem(file), str::to_owned);
        chats.push(chat(file, root, fallback, &me, opts)?);
    } else if root.contains_key("chats") || root.contains_key("left_chats") {
        for key in ["chats", "left_chats"] {
            let Some(section) = root.get(key) else {
                continue;
            };
            let list = section
                .get("list")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::BadChat {
                    file: file.to_owned(),
                    chat: key.to_owned(),
                    reason: format!("\"{key}\" has no \"list\" of chats"),
                })?;
            for (i, item) in list.iter().enumerate() {
                let fallback = format!("chat {}", i + 1);
                let obj = item.as_object().ok_or_else(|| Error::BadChat {
                    file: file.to_owned(),
                    chat: fallback.clone(),
                    reason: "it is not a JSON object".to_owned(),
                })?;
                chats.push(chat(file, obj, fallback, &me, opts)?);
            }
        }
    } else {
        return Err(not_export());
    }
    Ok(Export {
        format: Format::Telegram,
        chats,
    })
}

/// The exporting user: the option, else the whole-account export's `personal_information`.
fn whoami(root: &Map<String, Value>, opts: &ImportOptions) -> Me {
    let info = root.get("personal_information");
    let id = info
        .and_then(|i| i.get("user_id"))
        .and_then(|v| match v {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
        .map(|id| format!("user{id}"));
    let given = opts.me.as_deref().map(clean_name).filter(|n| !n.is_empty());
    let from_info = info.and_then(|i| {
        let part = |k: &str| {
            i.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let full = clean_name(&format!("{} {}", part("first_name"), part("last_name")));
        (!full.is_empty()).then_some(full)
    });
    Me {
        name: given.or(from_info),
        id: if opts.me.is_some() { None } else { id },
    }
}

fn chat(
    file: &str,
    obj: &Map<String, Value>,
    fallback: String,
    me: &Me,
    opts: &ImportOptions,
) -> Result<ImportedChat> {
    let ty = obj.get("type").and_then(Value::as_str);
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .map(clean_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            if ty == Some("saved_messages") {
                "Saved Messages".to_owned()
            } else {
                fallback
            }
        });
    let source_id = obj.get("id").and_then(|v| match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    });
    let messages = match obj.get("messages") {
        Some(Value::Array(list)) => list.as_slice(),
        None => &[],
        Some(_) => {
            return Err(Error::BadChat {
                file: file.to_owned(),
                chat: name,
                reason: "\"messages\" is not a list".to_owned(),
            });
        }
    };
    let mut records = Vec::with_capacity(messages.len());
    let mut group_event = false;
    for (i, m) in messages.iter().enumerate() {
        let bad = |reason: String| Error::BadMessage {
            file: file.to_owned(),
            chat: name.clone(),
            index: i + 1,
            reason,
        };
        let m = m
            .as_object()
            .ok_or_else(|| bad("it is not a JSON object".to_owned()))?;
        let (record, group) = message(i + 1, m, me, opts).map_err(bad)?;
        group_event |= group;
        records.push(record);
    }
    let kind = match ty {
        Some("personal_chat" | "bot_chat" | "saved_messages") => ChatKind::Direct,
        Some(_) => ChatKind::Group,
        None => {
            let authors: BTreeSet<&String> =
                records.iter().filter_map(|r| r.author.as_ref()).collect();
            if group_event || authors.len() > 2 {
                ChatKind::Group
            } else {
                ChatKind::Direct
            }
        }
    };
    Ok(ImportedChat {
        name,
        kind,
        source_id,
        records,
    })
}

/// One message; the flag says it is a group event.
fn message(
    index: usize,
    m: &Map<String, Value>,
    me: &Me,
    opts: &ImportOptions,
) -> Result<(Record, bool), String> {
    let ts_ms = timestamp(m, opts)?;
    let service = m.get("type").and_then(Value::as_str) == Some("service");
    let (who, who_id) = if service {
        ("actor", "actor_id")
    } else {
        ("from", "from_id")
    };
    let author = m
        .get(who)
        .and_then(Value::as_str)
        .map(clean_name)
        .filter(|n| !n.is_empty());
    let author_id = m.get(who_id).and_then(Value::as_str);
    let from_me = match (&me.id, author_id) {
        (Some(mine), Some(theirs)) if mine == theirs => true,
        _ => author.is_some() && author == me.name,
    };
    let mut text = flatten(m.get("text"));
    if text.is_empty() {
        text = flatten(m.get("text_entities"));
    }
    let text = text.replace("\r\n", "\n");
    if service {
        let action = m.get("action").and_then(Value::as_str).unwrap_or("");
        let group = matches!(
            action,
            "create_group"
                | "invite_members"
                | "remove_members"
                | "join_group_by_link"
                | "join_group_by_request"
                | "edit_group_title"
                | "migrate_to_supergroup"
                | "migrate_from_group"
        );
        let described = describe(action, m);
        let text = if text.is_empty() {
            described
        } else {
            format!("{described}: {text}")
        };
        let record = Record {
            line: index,
            ts_ms,
            author,
            from_me,
            kind: RecordKind::System,
            text,
        };
        return Ok((record, group));
    }
    let kind = if ["photo", "file", "media_type"]
        .iter()
        .any(|k| m.contains_key(*k))
    {
        RecordKind::Media {
            file_name: file_name(m),
        }
    } else {
        RecordKind::Text
    };
    let text = if text.is_empty() {
        location(m).unwrap_or(text)
    } else {
        text
    };
    let record = Record {
        line: index,
        ts_ms,
        author,
        from_me,
        kind,
        text,
    };
    Ok((record, false))
}

/// Unix milliseconds from `date_unixtime` (seconds, string or number), else from `date` read in
/// the chosen zone.
fn timestamp(m: &Map<String, Value>, opts: &ImportOptions) -> Result<i64, String> {
    if let Some(v) = m.get("date_unixtime") {
        let secs = match v {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
        .ok_or_else(|| format!("\"date_unixtime\" is not a number of seconds: {v}"))?;
        let ts = Timestamp::from_second(secs)
            .map_err(|_| format!("\"date_unixtime\" {secs} is out of range"))?;
        return Ok(ts.as_millisecond());
    }
    let Some(v) = m.get("date") else {
        return Err("it has neither \"date_unixtime\" nor \"date\"".to_owned());
    };
    let s = v
        .as_str()
        .ok_or_else(|| format!("\"date\" is not a string: {v}"))?;
    let civil: jiff::civil::DateTime = s
        .trim()
        .parse()
        .map_err(|_| format!("\"date\" is not a date and time: \"{}\"", excerpt(s)))?;
    let ts = opts
        .tz
        .to_timestamp(civil)
        .map_err(|e| format!("\"date\" {s} is not a time in the chosen zone: {e}"))?;
    Ok(ts.as_millisecond())
}

/// The text of a `text` field: a string, or a list of strings and entity objects.
fn flatten(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => o.get("text").and_then(Value::as_str),
                _ => None,
            })
            .collect(),
        _ => String::new(),
    }
}

/// The media's file name: `file_name`, else the exported file's name, unless the export left
/// the file out (`"(File not included. …)"`).
fn file_name(m: &Map<String, Value>) -> Option<String> {
    if let Some(name) = m
        .get("file_name")
        .and_then(Value::as_str)
        .map(clean_name)
        .filter(|n| !n.is_empty())
    {
        return Some(name);
    }
    ["file", "photo"].iter().find_map(|k| {
        let path = m.get(*k)?.as_str()?.trim();
        if path.is_empty() || path.starts_with('(') {
            return None;
        }
        let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
        (!base.is_empty()).then(|| base.to_owned())
    })
}

/// A shared location as text, for a message that has no text of its own.
fn location(m: &Map<String, Value>) -> Option<String> {
    let loc = m.get("location_information")?;
    let lat = loc.get("latitude")?;
    let lon = loc.get("longitude")?;
    Some(format!("location: {lat},{lon}"))
}

/// A service action in words.
fn describe(action: &str, m: &Map<String, Value>) -> String {
    let title = m.get("title").and_then(Value::as_str).unwrap_or("");
    let members = m
        .get("members")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    match action {
        "create_group" => format!("created group “{title}”"),
        "create_channel" => format!("created channel “{title}”"),
        "invite_members" => format!("added {members}"),
        "remove_members" => format!("removed {members}"),
        "join_group_by_link" => "joined the group via invite link".to_owned(),
        "join_group_by_request" => "joined the group by request".to_owned(),
        "edit_group_title" => format!("changed the group name to “{title}”"),
        "edit_group_photo" => "changed the group photo".to_owned(),
        "delete_group_photo" => "removed the group photo".to_owned(),
        "pin_message" => "pinned a message".to_owned(),
        "joined_telegram" => "joined Telegram".to_owned(),
        "migrate_to_supergroup" | "migrate_from_group" => {
            "converted the group to a supergroup".to_owned()
        }
        "clear_history" => "cleared the history".to_owned(),
        "phone_call" | "group_call" => {
            let missed = m.get("discard_reason").and_then(Value::as_str) == Some("missed");
            let secs = m.get("duration_seconds").and_then(Value::as_u64);
            let what = if action == "group_call" {
                "group call"
            } else {
                "call"
            };
            match (missed, secs) {
                (true, _) => format!("missed {what}"),
                (false, Some(s)) if s < 60 => format!("{what} ({s} s)"),
                (false, Some(s)) if s % 60 == 0 => format!("{what} ({} min)", s / 60),
                (false, Some(s)) => format!("{what} ({} min {} s)", s / 60, s % 60),
                (false, None) => what.to_owned(),
            }
        }
        "" => "service message".to_owned(),
        other => other.replace('_', " "),
    }
}

#[cfg(test)]
#[path = "telegram_tests.rs"]
mod tests;

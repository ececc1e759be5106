//! WhatsApp "Export chat" text files, Android and iOS, in every locale variant we know of.
//!
//! A record starts at a header line (see [`header`]); every other line continues the record
//! before it. The first non-blank line must be a header, and fixes the file's header shape
//! (brackets or dash, date or time first, date separator): later lines of another shape are
//! continuation lines, which keeps a pasted `[1/2/22, 10:00]` inside a message from splitting it.
//! The meaning of the date numbers is decided once for the whole file. Bodies are classified by
//! [`body`] with the phrase tables of [`locale`].

mod body;
mod header;
mod locale;

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::text::{
    clean_name, contains_any_ci, excerpt, is_blank, strip_prefix_ci, strip_suffix_ci,
};
use crate::{ChatKind, Export, Format, ImportOptions, ImportedChat, Record, RecordKind};
use header::{Framing, Header};

/// A record before its date is resolved and its body classified.
struct Raw<'a> {
    line: usize,
    header: Header,
    first: &'a str,
    cont: Vec<&'a str>,
}

/// Parses a WhatsApp export. `file` is the name as the caller gave it (for errors and the chat's
/// name); `text` is the decoded content.
pub(crate) fn parse(file: &str, text: &str, opts: &ImportOptions) -> Result<Export> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let Some((first_idx, first_line)) = lines.iter().enumerate().find(|(_, l)| !is_blank(l)) else {
        return Err(Error::Empty {
            file: file.to_owned(),
        });
    };
    let Some(first_header) = header::parse_header(first_line) else {
        return Err(Error::NotAnExport {
            file: file.to_owned(),
            line: first_idx + 1,
            text: excerpt(first_line),
        });
    };
    let shape = first_header.shape;

    let mut raws: Vec<Raw<'_>> = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(first_idx) {
        match header::parse_header(line).filter(|h| h.shape == shape) {
            Some(h) => raws.push(Raw {
                line: i + 1,
                header: h,
                first: line.get(h.body_start..).unwrap_or(""),
                cont: Vec::new(),
            }),
            None => {
                if let Some(last) = raws.last_mut() {
                    last.cont.push(line);
                }
            }
        }
    }

    let headers: Vec<Header> = raws.iter().map(|r| r.header).collect();
    if looks_like_signal(&headers) {
        return Err(Error::Unsupported {
            file: file.to_owned(),
            what: "Signal (signal-export text)",
            line: first_idx + 1,
            text: excerpt(first_line),
        });
    }
    let order = header::detect_order(&headers);
    let line_text = |n: usize| excerpt(lines.get(n.saturating_sub(1)).copied().unwrap_or(""));

    let name = chat_name(file, opts);
    let mut records = Vec::with_capacity(raws.len());
    let mut marked = Vec::with_capacity(raws.len());
    for raw in &raws {
        let bad = |reason: String| Error::BadDate {
            file: file.to_owned(),
            line: raw.line,
            text: line_text(raw.line),
            reason,
        };
        let civil = header::civil_datetime(&raw.header, order).map_err(bad)?;
        let ts = opts
            .tz
            .to_timestamp(civil)
            .map_err(|e| bad(format!("not a time in {}: {e}", tz_name(opts))))?;
        let body = body::classify(raw.first, &raw.cont, raw.header.leading_mark);
        marked.push(body.had_mark);
        records.push((
            Record {
                line: raw.line,
                ts_ms: ts.as_millisecond(),
                author: body.author,
                from_me: false,
                kind: body.kind,
                text: body.text,
            },
            body.by_you,
        ));
    }

    let kind = chat_kind(records.iter().map(|(r, _)| r));
    if kind == ChatKind::Group {
        // Old iOS groups attribute the app's lines to the group itself.
        for ((record, _), marked) in records.iter_mut().zip(&marked) {
            if *marked && record.kind == RecordKind::Text && record.author.as_ref() == Some(&name) {
                record.kind = RecordKind::System;
                record.author = None;
                record.text = crate::text::remove_marks(&record.text);
            }
        }
    }

    let me = opts
        .me
        .as_deref()
        .map(clean_name)
        .filter(|m| !m.is_empty())
        .or_else(|| infer_me(&records));
    let records = records
        .into_iter()
        .map(|(mut record, by_you)| {
            record.from_me = by_you || (record.author.is_some() && record.author == me);
            record
        })
        .collect();

    let format = match shape.framing {
        Framing::Dash => Format::WhatsAppAndroid,
        Framing::Bracket | Framing::Colon => Format::WhatsAppIos,
    };
    Ok(Export {
        format,
        chats: vec![ImportedChat {
            name,
            kind,
            source_id: None,
            records,
        }],
    })
}

fn tz_name(opts: &ImportOptions) -> String {
    opts.tz
        .iana_name()
        .unwrap_or("the given time zone")
        .to_owned()
}

/// The old signal-export text format: `[2019-12-24, 12:23] Name: text`. WhatsApp never writes a
/// bracketed ISO date with a comma and without seconds.
fn looks_like_signal(headers: &[Header]) -> bool {
    !headers.is_empty()
        && headers.iter().all(|h| {
            h.shape.framing == Framing::Bracket
                && h.shape.date_sep == '-'
                && h.comma
                && h.parts[0].digits == 4
                && h.time.second.is_none()
                && h.time.meridiem.is_none()
        })
}

/// The exporting user, when the file says so itself: the one author of "You deleted this
/// message" lines.
fn infer_me(records: &[(Record, bool)]) -> Option<String> {
    let authors: BTreeSet<&String> = records
        .iter()
        .filter(|(r, by_you)| *by_you && r.kind == RecordKind::Deleted)
        .filter_map(|(r, _)| r.author.as_ref())
        .collect();
    let mut it = authors.into_iter();
    match (it.next(), it.next()) {
        (Some(one), None) => Some(one.clone()),
        _ => None,
    }
}

/// Group when a system line tells of a group event, or more than two people wrote.
fn chat_kind<'a>(records: impl Iterator<Item = &'a Record> + Clone) -> ChatKind {
    let group_event = records
        .clone()
        .any(|r| r.kind == RecordKind::System && contains_any_ci(&r.text, locale::GROUP_EVENTS));
    let authors: BTreeSet<&String> = records.filter_map(|r| r.author.as_ref()).collect();
    if group_event || authors.len() > 2 {
        ChatKind::Group
    } else {
        ChatKind::Direct
    }
}

/// The chat's name: from a localised export file name, else the option, else the file's stem.
fn chat_name(file: &str, opts: &ImportOptions) -> String {
    let stem = file_stem(file);
    if let Some(name) = name_in_file_name(&stem) {
        return name;
    }
    if let Some(name) = opts
        .chat_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        return name.to_owned();
    }
    stem
}

/// The file's name without folders, extension and ` (N)` duplicate counter, spaces made plain.
pub(crate) fn file_stem(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let base = match base.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && (1..=5).contains(&ext.len())
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            stem
        }
        _ => base,
    };
    let base = clean_name(base);
    strip_copy_counter(&base).to_owned()
}

/// `Name (2)` -> `Name`.
fn strip_copy_counter(s: &str) -> &str {
    if let Some(open) = s.rfind(" (")
        && let Some(inner) = s.get(open + 2..).and_then(|r| r.strip_suffix(')'))
        && !inner.is_empty()
        && inner.bytes().all(|b| b.is_ascii_digit())
    {
        return s.get(..open).unwrap_or(s);
    }
    s
}

/// The chat's name in a localised export file name: `WhatsApp Chat with X`, `Чат WhatsApp с
/// контактом X`...
fn name_in_file_name(stem: &str) -> Option<String> {
    let name = locale::CHAT_FILE_PREFIXES
        .iter()
        .find_map(|p| strip_prefix_ci(stem, p))
        .or_else(|| {
            locale::CHAT_FILE_SUFFIXES
                .iter()
                .find_map(|s| strip_suffix_ci(stem, s))
        })?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
#[path = "whatsapp_tests.rs"]
mod tests;

//! What a WhatsApp record is, once its header is read: who wrote it (if anyone) and whether it
//! is text, a system line, a media placeholder or a deleted message.
//!
//! The rules, in order:
//! 1. A body that starts with a bidirectional mark right after the header is an iOS system line
//!    without author (`[…] <LRM>You created group “X”`).
//! 2. A body without `Name:` before its first colon is a system line without author. A would-be
//!    name that holds quotation marks is not a name (`X changed the subject to "a: b"`).
//! 3. With an author, the body is a deleted-message notice, a media placeholder (Android
//!    `<Media omitted>` / `NAME (file attached)` / `null`, iOS `<LRM>image omitted` /
//!    `NAME • 2 pages <LRM>document omitted` / `<LRM><attached: FILE>`), an app notice attributed to the
//!    chat (encryption, security code: a system line, author dropped), a missed call (a system
//!    line that keeps its author), or text. Continuation lines are the caption of media.
//! 4. An iOS attachment line (the line itself starts with a mark) that matched nothing above is
//!    still media: its placeholder is in a language not listed in [`super::locale`].

use super::locale;
use crate::RecordKind;
use crate::text::{
    clean_name, contains_any_ci, eq_any_ci, is_dir_mark, join_lines, remove_marks,
    strip_leading_marks, strip_prefix_ci, strip_suffix_ci,
};

/// A classified body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    /// The cleaned author, if the line has one.
    pub author: Option<String>,
    /// What the record is.
    pub kind: RecordKind,
    /// Its text: the message, the caption, or the system text.
    pub text: String,
    /// The line itself says the exporting user did it ("You deleted this message",
    /// "You created group ...").
    pub by_you: bool,
    /// A text body that started with a bidirectional mark, as the app's own lines do.
    pub had_mark: bool,
}

/// Classifies a record from the rest of its header line (`first`), its continuation lines and
/// whether the header line started with an invisible mark.
pub(crate) fn classify(first: &str, cont: &[&str], leading_mark: bool) -> Body {
    if first.starts_with(is_dir_mark) {
        return system(None, first, cont);
    }
    let Some((author, rest)) = split_author(first) else {
        return system(None, first, cont);
    };
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let had_mark = rest.starts_with(is_dir_mark);
    let body = strip_leading_marks(rest);
    let single = cont.iter().all(|l| crate::text::is_blank(l));

    if single && let Some(by_you) = deleted(body) {
        return Body {
            author: Some(author),
            kind: RecordKind::Deleted,
            text: String::new(),
            by_you,
            had_mark: false,
        };
    }
    if let Some((file_name, text)) = media(body, cont, rest) {
        return Body {
            author: Some(author),
            kind: RecordKind::Media { file_name },
            text,
            by_you: false,
            had_mark: false,
        };
    }
    if is_notice(body, had_mark) {
        return system(None, body, cont);
    }
    if single && eq_any_ci(body.trim(), locale::MISSED_CALLS) {
        return system(Some(author), body, cont);
    }
    if leading_mark && rest.contains(is_dir_mark) {
        let file_name = rest
            .rfind(is_dir_mark)
            .and_then(|i| rest.get(..i))
            .and_then(document_name);
        return Body {
            author: Some(author),
            kind: RecordKind::Media { file_name },
            text: join_lines(cont.iter().copied()),
            by_you: false,
            had_mark: false,
        };
    }
    let mut lines = vec![body];
    lines.extend(cont.iter().copied());
    Body {
        author: Some(author),
        kind: RecordKind::Text,
        text: join_lines(lines),
        by_you: false,
        had_mark,
    }
}

/// A system record: marks removed from the text, "You ..." noticed.
fn system(author: Option<String>, first: &str, cont: &[&str]) -> Body {
    let mut lines = vec![first];
    lines.extend(cont.iter().copied());
    let text = remove_marks(&join_lines(lines)).trim().to_owned();
    let by_you = is_by_you(&text);
    Body {
        author,
        kind: RecordKind::System,
        text,
        by_you,
        had_mark: false,
    }
}

/// True when a system text's actor is the exporting user.
fn is_by_you(text: &str) -> bool {
    let starts = |list: &[&str]| list.iter().any(|p| strip_prefix_ci(text, p).is_some());
    starts(locale::YOU_ACTOR_PREFIXES) && !starts(locale::YOU_PASSIVE_PREFIXES)
}

/// Splits `Name: text` at the first colon, when what precedes it can be a name.
fn split_author(first: &str) -> Option<(String, &str)> {
    let colon = first.find(':')?;
    let candidate = first.get(..colon)?;
    if candidate.contains(['"', '“', '”', '«', '»', '„']) {
        return None;
    }
    let name = clean_name(candidate);
    if name.is_empty() || name.chars().count() > 100 {
        return None;
    }
    Some((name, first.get(colon + 1..)?))
}

/// `Some(by_you)` when the body is a deleted-message notice.
fn deleted(body: &str) -> Option<bool> {
    let clean = remove_marks(body);
    let clean = clean.trim();
    let clean = clean
        .strip_suffix('.')
        .or_else(|| clean.strip_suffix('。'))
        .unwrap_or(clean)
        .trim_end();
    if eq_any_ci(clean, locale::DELETED_BY_ME) {
        Some(true)
    } else if eq_any_ci(clean, locale::DELETED_BY_OTHER) {
        Some(false)
    } else {
        None
    }
}

/// `Some((file name, caption))` when the body is a media placeholder. `raw` is the body before
/// its leading marks were stripped.
fn media(body: &str, cont: &[&str], raw: &str) -> Option<(Option<String>, String)> {
    let first = body.trim();
    let caption = || join_lines(cont.iter().copied());

    // Android.
    if eq_any_ci(first, locale::ANDROID_MEDIA_OMITTED) {
        return Some((None, caption()));
    }
    let lower = first.to_lowercase();
    for suffix in locale::FILE_ATTACHED_SUFFIXES {
        if !lower.ends_with(suffix) {
            continue;
        }
        if let Some(name) = strip_suffix_ci(first, suffix) {
            let name = clean_name(name);
            if !name.is_empty() {
                return Some((Some(name), caption()));
            }
        }
    }
    if first == "null" && cont.iter().all(|l| crate::text::is_blank(l)) {
        return Some((None, String::new()));
    }

    // iOS with media: `<LRM><attached: 00000035-PHOTO-….jpg>`, maybe after a document title.
    if let Some((before, name, after)) = find_attachment(body) {
        let title = name
            .split_once('-')
            .filter(|(n, _)| n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()))
            .map_or(name, |(_, t)| t);
        let before = clean_name(before);
        let is_title = before.is_empty()
            || before.split('•').next().map(str::trim) == Some(title)
            || before == title;
        let head = [if is_title { "" } else { before.as_str() }, after.trim()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let mut lines = Vec::new();
        if !head.is_empty() {
            lines.push(head.as_str());
        }
        lines.extend(cont.iter().copied());
        return Some((Some(name.to_owned()), join_lines(lines)));
    }

    // iOS without media: `<LRM>image omitted`, `NAME • <LRM>2 pages <LRM>document omitted`.
    let clean = remove_marks(first);
    let clean = clean.trim();
    if eq_any_ci(clean, locale::IOS_MEDIA_OMITTED) || eq_any_ci(clean, locale::IOS_DOCUMENT_OMITTED)
    {
        return Some((None, caption()));
    }
    let last_mark = raw.trim_end().rfind(is_dir_mark)?;
    let tail = strip_leading_marks(raw.get(last_mark..)?).trim();
    if eq_any_ci(tail, locale::IOS_DOCUMENT_OMITTED) {
        let file_name = raw.get(..last_mark).and_then(document_name);
        return Some((file_name, caption()));
    }
    None
}

/// The document's name from what precedes its placeholder: `Resume.pdf • <LRM>2 pages `.
fn document_name(prefix: &str) -> Option<String> {
    let name = clean_name(prefix.split('•').next().unwrap_or(prefix));
    (!name.is_empty()).then_some(name)
}

/// Finds `<label: FILE>` where the label is `attached` or the file has the 8-digit counter that
/// iOS puts before attachment names. Returns what comes before, the file, and what comes after.
fn find_attachment(body: &str) -> Option<(&str, &str, &str)> {
    let mut from = 0;
    while let Some(rel) = body.get(from..).and_then(|s| s.find('<')) {
        let lt = from + rel;
        from = lt + 1;
        let Some(rest) = body.get(lt + 1..) else {
            break;
        };
        let Some(gt) = rest.find('>') else {
            break;
        };
        let Some(inner) = rest.get(..gt) else {
            break;
        };
        let Some((label, name)) = inner.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let counted = name.len() > 9
            && name
                .get(..8)
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && name.get(8..9) == Some("-");
        let label = label.trim();
        let ok_label = label.chars().count() <= 40 && !label.contains('<');
        if ok_label && !name.is_empty() && (label.eq_ignore_ascii_case("attached") || counted) {
            let before = body.get(..lt)?;
            let after = rest.get(gt + 1..)?;
            return Some((before, name, after));
        }
    }
    None
}

/// True when the body is one of the app's own notices (encryption, security code...) even
/// though the export attributes it to someone.
fn is_notice(body: &str, had_mark: bool) -> bool {
    let clean = remove_marks(body);
    let clean = clean.trim_start();
    locale::NOTICE_PREFIXES
        .iter()
        .any(|p| strip_prefix_ci(clean, p).is_some())
        || (had_mark && contains_any_ci(clean, locale::NOTICE_KEYWORDS))
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;

//! Text helpers shared by both parsers: decoding the file's bytes, the invisible bidirectional
//! marks that chat apps sprinkle into exports, cleaning author names, case-insensitive affix
//! matching, and cutting lines for error messages.

use std::borrow::Cow;

/// Turns the file's bytes into text: UTF-16 when the file starts with a UTF-16 byte-order mark,
/// UTF-8 otherwise (invalid sequences become U+FFFD rather than refusing the whole file). A
/// leading byte-order mark is dropped.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return Cow::Owned(decode_utf16(rest, u16::from_le_bytes));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Cow::Owned(decode_utf16(rest, u16::from_be_bytes));
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    String::from_utf8_lossy(bytes)
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|pair| match pair {
        [a, b] => unit([*a, *b]),
        _ => 0xFFFD,
    });
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// True for the invisible formatting characters found in exports: LRM/RLM and the Arabic letter
/// mark, the LRE..RLO embeddings with their PDF, the isolates, and a stray byte-order mark.
pub(crate) fn is_mark(c: char) -> bool {
    matches!(
        c,
        '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// True for the marks that WhatsApp itself puts before the lines it writes: LRM, RLM and the
/// Arabic letter mark (not the embeddings around phone numbers, which belong to names).
pub(crate) fn is_dir_mark(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// True for the spaces that exports use in place of a plain space (no-break, narrow no-break,
/// thin, figure).
pub(crate) fn is_odd_space(c: char) -> bool {
    matches!(c, '\u{00A0}' | '\u{202F}' | '\u{2009}' | '\u{2007}')
}

/// The text without its leading invisible marks.
pub(crate) fn strip_leading_marks(s: &str) -> &str {
    s.trim_start_matches(is_mark)
}

/// The text with every invisible mark removed.
pub(crate) fn remove_marks(s: &str) -> String {
    s.chars().filter(|c| !is_mark(*c)).collect()
}

/// A person's name as the exports spell it, cleaned: invisible marks removed, odd spaces made
/// plain, and trimmed: `<U+202A>+40<NBSP>521<U+202C>` becomes `+40 521`.
pub(crate) fn clean_name(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .filter(|c| !is_mark(*c))
        .map(|c| if is_odd_space(c) { ' ' } else { c })
        .collect();
    cleaned.trim().to_owned()
}

/// True when the text is blank once marks and whitespace are set aside.
pub(crate) fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || is_mark(c))
}

fn same_ci(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

/// `s` without `prefix`, compared without regard to case.
pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let mut chars = s.char_indices();
    let mut end = 0;
    for p in prefix.chars() {
        let (i, c) = chars.next()?;
        if !same_ci(c, p) {
            return None;
        }
        end = i + c.len_utf8();
    }
    s.get(end..)
}

/// `s` without `suffix`, compared without regard to case.
pub(crate) fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let mut chars = s.char_indices().rev();
    let mut start = s.len();
    for p in suffix.chars().rev() {
        let (i, c) = chars.next()?;
        if !same_ci(c, p) {
            return None;
        }
        start = i;
    }
    s.get(..start)
}

/// True when `s` equals one of `options` (given in lower case), without regard to case.
pub(crate) fn eq_any_ci(s: &str, options: &[&str]) -> bool {
    let lower = s.to_lowercase();
    options.iter().any(|o| *o == lower)
}

/// True when `s` contains one of `needles` (given in lower case), without regard to case.
pub(crate) fn contains_any_ci(s: &str, needles: &[&str]) -> bool {
    let lower = s.to_lowercase();
    needles.iter().any(|n| lower.contains(n))
}

/// A line cut to about 80 characters for an error message, with an ellipsis when cut and the
/// invisible marks made visible as nothing.
pub(crate) fn excerpt(line: &str) -> String {
    const MAX: usize = 80;
    let clean: String = line
        .trim_end_matches('\r')
        .chars()
        .filter(|c| !is_mark(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= MAX {
        clean
    } else {
        let mut cut: String = clean.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}

/// Joins the lines of a body with newlines, dropping trailing blank lines.
pub(crate) fn join_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut kept: Vec<&str> = lines.into_iter().collect();
    while kept.last().is_some_and(|l| is_blank(l)) {
        kept.pop();
    }
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_drops_the_bom_and_reads_utf16() {
        assert_eq!(decode(b"\xEF\xBB\xBFhi"), "hi");
        assert_eq!(decode(&[0xFF, 0xFE, b'h', 0, b'i', 0]), "hi");
        assert_eq!(decode(&[0xFE, 0xFF, 0, b'h', 0, b'i', 0]), "hi");
        assert_eq!(decode(&[b'a', 0xFF, b'b']), "a\u{FFFD}b");
    }

    #[test]
    fn names_lose_marks_and_odd_spaces() {
        assert_eq!(
            clean_name("\u{202A}+40\u{a0}521\u{a0}028\u{a0}61\u{a0}88\u{202C}"),
            "+40 521 028 61 88"
        );
        assert_eq!(clean_name("  \u{200e}Dmitry S "), "Dmitry S");
    }

    #[test]
    fn affixes_compare_without_case() {
        assert_eq!(
            strip_prefix_ci("WhatsApp Chat with X", "whatsapp chat with "),
            Some("X")
        );
        assert_eq!(
            strip_suffix_ci("a.vcf (File Attached)", " (file attached)"),
            Some("a.vcf")
        );
        assert_eq!(strip_suffix_ci("x", "longer"), None);
        assert!(eq_any_ci("<Media Omitted>", &["<media omitted>"]));
        assert!(eq_any_ci("Данное Сообщение", &["данное сообщение"]));
        assert!(!eq_any_ci("<Media Omitted> ok", &["<media omitted>"]));
    }

    #[test]
    fn excerpts_are_cut_near_80_characters() {
        let long = "x".repeat(200);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 81);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("\u{200e}short\r"), "short");
    }

    #[test]
    fn joined_bodies_lose_trailing_blank_lines_only() {
        assert_eq!(join_lines(["a", "", "b", "", ""]), "a\n\nb");
        assert_eq!(join_lines(["a "]), "a ");
        assert_eq!(join_lines(["a", ""]), "a");
    }
}

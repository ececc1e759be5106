//! Turning what a user types into a safe FTS5 query: every word quoted (so FTS5 operators and
//! punctuation are plain text), the words ANDed, the last one prefix-matched (unless it is a
//! single character: as a prefix it would match nearly every message, and FTS5 merges every
//! matching term's posting list to answer a prefix query, so it would be slow for nothing).

use crate::types::ChatId;

/// At most this many words of a query are used; more only slow the query down.
pub(crate) const MAX_WORDS: usize = 16;

/// The FTS5 expression for `input` over the message text, restricted to one chat when `chat`
/// is given, or `None` when the input holds nothing searchable.
pub(crate) fn fts_query(input: &str, chat: Option<ChatId>) -> Option<String> {
    let words = fts_expression(input)?;
    Some(match chat {
        // The tag column holds 'c' + the chat id's 32 lowercase hex digits (see the schema).
        Some(chat) => format!("text : ({words}) AND chat_tag : \"c{chat}\""),
        None => format!("text : ({words})"),
    })
}

/// The FTS5 expression for `input`, or `None` when it holds nothing searchable.
///
/// Words are split on whitespace and control characters (FTS5 reads the expression as a C
/// string, so a NUL would cut it short); a word counts only if it contains a letter or digit
/// (FTS5 would drop everything else as separators). Each word becomes a quoted string with inner
/// quotes doubled, so no input can produce an FTS5 syntax error; the last word gets a `*`
/// so that typing "caf" already finds "café" (a last word of one character does not).
fn fts_expression(input: &str) -> Option<String> {
    let words: Vec<&str> = input
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .take(MAX_WORDS)
        .collect();
    let last = words.len().checked_sub(1)?;
    let mut expr = String::with_capacity(input.len() + 4 * words.len());
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            expr.push(' ');
        }
        expr.push('"');
        expr.push_str(&word.replace('"', "\"\""));
        expr.push('"');
        if i == last && word.chars().nth(1).is_some() {
            expr.push_str(" *");
        }
    }
    Some(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_and_the_last_is_a_prefix() {
        assert_eq!(
            fts_expression("hello wor").as_deref(),
            Some("\"hello\" \"wor\" *")
        );
    }

    #[test]
    fn a_single_character_is_a_whole_word_not_a_prefix() {
        assert_eq!(fts_expression("plan b").as_deref(), Some("\"plan\" \"b\""));
        assert_eq!(fts_expression("é").as_deref(), Some("\"é\""));
        assert_eq!(fts_expression("zo").as_deref(), Some("\"zo\" *"));
    }

    #[test]
    fn operators_and_quotes_are_plain_text() {
        assert_eq!(
            fts_expression("NOT a\"b OR").as_deref(),
            Some("\"NOT\" \"a\"\"b\" \"OR\" *")
        );
    }

    #[test]
    fn nothing_searchable_gives_no_query() {
        assert_eq!(fts_expression(""), None);
        assert_eq!(fts_expression("   \t\n"), None);
        assert_eq!(fts_expression("!!! ... \"\" *"), None);
        assert_eq!(fts_expression("\0\u{1}"), None);
    }

    #[test]
    fn control_characters_split_words() {
        assert_eq!(fts_expression("ab\0cd").as_deref(), Some("\"ab\" \"cd\" *"));
    }

    #[test]
    fn queries_search_the_text_column_and_can_name_a_chat() {
        assert_eq!(fts_query("hi", None).as_deref(), Some("text : (\"hi\" *)"));
        let chat = ChatId::from([0xab; 16]);
        assert_eq!(
            fts_query("hi", Some(chat)).as_deref(),
            Some(format!("text : (\"hi\" *) AND chat_tag : \"c{}\"", "ab".repeat(16)).as_str())
        );
        assert_eq!(fts_query(" ", Some(chat)), None);
    }

    #[test]
    fn long_queries_are_cut() {
        let input = "w ".repeat(100);
        let expr = fts_expression(&input).unwrap_or_default();
        assert_eq!(expr.matches('"').count(), 2 * MAX_WORDS);
    }
}

//! Property tests: `parse_bytes` decodes bytes from outside, so random bytes, random text and
//! mutated real-looking exports must never make it panic, what it accepts must be well-formed,
//! and what it refuses must be a typed error that names the file. A generated-header round trip
//! checks dates and times across the layouts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jiff::tz::TimeZone;
use proptest::prelude::*;
use tandem_import::{Error, Export, Format, ImportOptions, RecordKind, parse_bytes};

const ANA: &str = include_str!("fixtures/WhatsApp Chat with Ana Lima.txt");
const GARDEN: &str = include_str!("fixtures/WhatsApp Chat - Garden Club.txt");
const ARABIC: &str = include_str!("fixtures/arabic_ios_digits.txt");
const TELEGRAM: &str = r#"{"name": "Marta", "type": "personal_chat", "id": 1, "messages": [
 {"id": 1, "type": "message", "date_unixtime": "1677666000", "from": "Marta", "text": ["a ", {"type": "bold", "text": "b"}]},
 {"id": 2, "type": "service", "date": "2023-03-01T10:15:30", "actor": "Jo", "action": "phone_call", "duration_seconds": 61},
 {"id": 3, "type": "message", "date_unixtime": 1677666060, "from": null, "photo": "photos/p.jpg", "text": "cap"}
]}"#;
const SEEDS: [&str; 4] = [ANA, GARDEN, ARABIC, TELEGRAM];

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

/// Parses and checks what every accepted export must look like and what every refusal must be.
fn check(bytes: &[u8]) {
    match parse_bytes("fuzz.txt", bytes, &ImportOptions::new(berlin())) {
        Ok(export) => check_export(&export, bytes),
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.contains("fuzz.txt"),
                "error does not name the file: {message}"
            );
            match err {
                Error::NotAnExport { line, text, .. }
                | Error::Unsupported { line, text, .. }
                | Error::BadDate { line, text, .. } => {
                    assert!(line >= 1);
                    assert!(text.chars().count() <= 81, "{text}");
                }
                Error::Json { line, .. } => assert!(line >= 1),
                Error::BadMessage { index, .. } => assert!(index >= 1),
                _ => {}
            }
        }
    }
}

fn check_export(export: &Export, bytes: &[u8]) {
    assert!(!export.chats.is_empty() || export.format == Format::Telegram);
    let line_count = bytes.split(|b| *b == b'\n').count();
    for chat in &export.chats {
        assert!(!chat.name.is_empty());
        let mut last = 0;
        for r in &chat.records {
            assert!(r.line > last, "records keep file order");
            last = r.line;
            if export.format != Format::Telegram {
                assert!(r.line <= line_count);
            }
            if let Some(author) = &r.author {
                assert!(!author.is_empty());
                assert_eq!(author.trim(), author);
                assert!(!author.contains(['\u{200e}', '\u{200f}', '\u{202a}', '\u{202c}']));
            }
            if r.kind == RecordKind::Deleted {
                assert!(r.text.is_empty());
            }
        }
    }
}

/// One change to a valid export.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    InsertLine(usize, String),
    DeleteLine(usize),
    DuplicateLine(usize),
}

/// Lines that look a bit like export lines, or not at all.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,4}[/.-][0-9]{1,3}[/.-][0-9]{1,5},? [0-9]{1,2}[:.][0-9]{1,2}( [AP]M)? - [a-z]{0,5}: .{0,10}",
        "\\[[0-9]{1,2}/[0-9]{1,2}/[0-9]{2}, [0-9]{1,2}:[0-9]{2}:[0-9]{2}\\] .{0,12}",
        "\u{200e}?<attached: [0-9]{8}-.{0,8}>",
        "\\{\"messages\": \\[.{0,10}",
        ".{0,40}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), line()).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

fn apply(seed: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for m in mutations {
        let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        match m {
            Mutation::Truncate(at) => {
                bytes.truncate(at % (bytes.len() + 1));
                continue;
            }
            Mutation::Flip(at, mask) => {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= mask;
                }
                continue;
            }
            Mutation::InsertLine(at, text) => {
                let i = at % (lines.len() + 1);
                lines.insert(i, text.clone().into_bytes());
            }
            Mutation::DeleteLine(at) => {
                let i = at % lines.len();
                lines.remove(i);
            }
            Mutation::DuplicateLine(at) => {
                let i = at % lines.len();
                let copy = lines[i].clone();
                lines.insert(i, copy);
            }
        }
        bytes = lines.join(&b'\n');
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    #[test]
    fn random_text_never_panics(text in ".{0,600}") {
        check(text.as_bytes());
    }

    #[test]
    fn random_export_like_lines_never_panic(lines in proptest::collection::vec(line(), 0..30)) {
        check(lines.join("\n").as_bytes());
        check(lines.join("\r\n").as_bytes());
    }

    #[test]
    fn mutated_exports_never_panic(
        seed in 0..SEEDS.len(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        check(&apply(SEEDS[seed], &mutations));
    }
}

/// A wall-clock time and a layout to write it in.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    y: i16,
    mo: i8,
    d: i8,
    h: i8,
    mi: i8,
    s: i8,
}

fn stamp() -> impl Strategy<Value = Stamp> {
    (2019i16..2100, 1i8..=12, 1i8..=28, 0i8..24, 0i8..60, 0i8..60)
        .prop_map(|(y, mo, d, h, mi, s)| Stamp { y, mo, d, h, mi, s })
}

fn arabic_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0x0660 + d).unwrap(),
            None => c,
        })
        .collect()
}

/// Writes a header and `Ann: hi` in one of the layouts; returns the line and whether the
/// layout keeps seconds.
fn write(layout: usize, t: Stamp) -> (String, bool) {
    let Stamp { y, mo, d, h, mi, s } = t;
    let yy = y % 100;
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    match layout {
        0 => (
            format!("{d:02}/{mo:02}/{y}, {h:02}:{mi:02} - Ann: hi"),
            false,
        ),
        1 => (
            format!("{mo}/{d}/{yy:02}, {h12}:{mi:02}\u{202f}{ampm} - Ann: hi"),
            false,
        ),
        2 => (
            format!("[{mo}/{d}/{yy:02}, {h:02}:{mi:02}:{s:02}] Ann: hi"),
            true,
        ),
        3 => (
            format!("[{mo}/{d}/{yy:02} {h:02}.{mi:02}.{s:02}] Ann: hi"),
            true,
        ),
        4 => (
            format!("[{h:02}:{mi:02}:{s:02}, {mo}/{d}/{yy:02}] Ann: hi"),
            true,
        ),
        5 => (
            format!("{d:02}.{mo:02}.{yy:02} {h:02}:{mi:02} - Ann: hi"),
            false,
        ),
        6 => (
            format!("{y}/{mo:02}/{d:02}, {h:02}:{mi:02} - Ann: hi"),
            false,
        ),
        7 => {
            let sign = if ampm == "AM" { '\u{635}' } else { '\u{645}' };
            let date = arabic_digits(&format!("{d}\u{200f}/{mo}\u{200f}/{y}"));
            let time = arabic_digits(&format!("{h12}:{mi:02}:{s:02}"));
            (format!("[{date}\u{60c} {time}\u{a0}{sign}] Ann: hi"), true)
        }
        8 => (
            format!("[{mo}/{d}/{} BE, {h:02}:{mi:02}:{s:02}] Ann: hi", y + 543),
            true,
        ),
        9 => (
            format!("[{mo}/{d}/R{}, {h:02}:{mi:02}:{s:02}] Ann: hi", y - 2018),
            true,
        ),
        10 => (
            format!("{d:02}-{mo:02}-{y} {h:02}:{mi:02} - Ann: hi"),
            false,
        ),
        _ => (
            format!(
                "{mo:02}/{d:02}/{y}, {h12:02}:{mi:02} {} - Ann: hi",
                if ampm == "AM" { "a. m." } else { "p. m." }
            ),
            false,
        ),
    }
}

const LAYOUTS: usize = 12;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn headers_round_trip_in_every_layout(layout in 0..LAYOUTS, t in stamp()) {
        // A first record on the 25th tells day from month for the whole file.
        let anchor = Stamp { y: 2030, mo: 12, d: 25, h: 10, mi: 0, s: 0 };
        let (first, _) = write(layout, anchor);
        let (line, seconds) = write(layout, t);
        let text = format!("{first}\n{line}\n");
        let export = parse_bytes("x.txt", text.as_bytes(), &ImportOptions::new(berlin())).unwrap();
        let record = &export.chats[0].records[1];
        let s = if seconds { t.s } else { 0 };
        let expected = jiff::civil::date(t.y, t.mo, t.d)
            .at(t.h, t.mi, s, 0)
            .to_zoned(berlin())
            .unwrap()
            .timestamp()
            .as_millisecond();
        prop_assert_eq!(record.ts_ms, expected, "{}", line);
        prop_assert_eq!(record.author.as_deref(), Some("Ann"));
        prop_assert_eq!(&record.text, "hi");
    }
}

//! Parses every export of the shared test corpus (public parser test suites, see its SOURCES.md)
//! and checks one record per message, with per-file counts established by reading the files,
//! plus spot checks of authors, times and texts. The corpus is not part of this repository (its
//! licences do not allow it): the test looks for it in `$TANDEM_EXPORTS_DIR`,
//! `/work/shared/data/exports` or `../shared/data/exports` next to the workspace, and skips with
//! a line on stderr when none exists.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use tandem_import::{
    ChatKind, Error, Export, Format, ImportOptions, ImportedChat, Record, RecordKind, parse_file,
};

fn corpus_dir() -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("TANDEM_EXPORTS_DIR").map(PathBuf::from),
        Some(PathBuf::from("/work/shared/data/exports")),
        Some(workspace.join("../shared/data/exports")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}

macro_rules! corpus_or_skip {
    () => {
        match corpus_dir() {
            Some(dir) => dir,
            None => {
                eprintln!("chat-export corpus not found; skipping (set TANDEM_EXPORTS_DIR)");
                return;
            }
        }
    };
}

fn utc() -> ImportOptions {
    ImportOptions::new(TimeZone::UTC)
}

/// Expected shape of one chat: name, kind, records, and how many of them are text, system,
/// media and deleted, and how many are from the exporting user (inferred from the file).
struct Want {
    name: &'static str,
    kind: ChatKind,
    records: usize,
    text: usize,
    system: usize,
    media: usize,
    deleted: usize,
    mine: usize,
}

const fn w(name: &'static str, kind: ChatKind, counts: [usize; 6]) -> Want {
    let [records, text, system, media, deleted, mine] = counts;
    Want {
        name,
        kind,
        records,
        text,
        system,
        media,
        deleted,
        mine,
    }
}

use ChatKind::{Direct, Group};
use Format::{Telegram, WhatsAppAndroid as Android, WhatsAppIos as Ios};

/// Every file of the corpus with what it must parse to. Record counts are the header lines of
/// each WhatsApp file (SOURCES.md "msgs" column, counted again with `grep`) and the `messages`
/// elements of each Telegram file; the kind split was established by reading every line.
fn table() -> Vec<(&'static str, Format, Vec<Want>)> {
    // [records, text, system, media, deleted, from me]
    let dmitry_android = [60, 18, 3, 31, 8, 8];
    let elon_ios = [25, 6, 3, 14, 2, 21];
    let elon_ios_longer = [28, 6, 3, 16, 3, 24];
    let miner = [9, 7, 2, 0, 0, 0];
    vec![
        (
            "chat-analytics/2A_5M.txt",
            Android,
            vec![w("2A_5M", Direct, [5, 4, 0, 1, 0, 0])],
        ),
        (
            "chat-analytics/4A_11M.txt",
            Android,
            vec![w("4A_11M", Group, [14, 11, 3, 0, 0, 0])],
        ),
        (
            "chat-analytics/DM_2A_7M.json",
            Telegram,
            vec![w("Bob", Direct, [8, 4, 2, 2, 0, 0])],
        ),
        (
            "chat-analytics/MultiChat_2C_6M.json",
            Telegram,
            vec![
                w("Chat One", Direct, [2, 2, 0, 0, 0, 0]),
                w("Chat Two", Group, [4, 2, 1, 1, 0, 0]),
            ],
        ),
        (
            "chat-miner/test_[mmddyy]_24hrs.txt",
            Ios,
            vec![w("test_[mmddyy]_24hrs", Group, miner)],
        ),
        (
            "chat-miner/test_ddmmyy_24hrs.txt",
            Android,
            vec![w("test_ddmmyy_24hrs", Group, miner)],
        ),
        (
            "chat-miner/test_mmddyy_24hrs.txt",
            Android,
            vec![w("test_mmddyy_24hrs", Group, miner)],
        ),
        (
            "chat-miner/test_mmddyyyy_12hrs.txt",
            Android,
            vec![w("test_mmddyyyy_12hrs", Group, miner)],
        ),
        (
            "chat-miner/test_yyyymmdd_24hrs.txt",
            Android,
            vec![w("test_yyyymmdd_24hrs", Group, miner)],
        ),
        (
            "chat-miner/test_single_export.json",
            Telegram,
            vec![w("test_single_export", Direct, [2, 2, 0, 0, 0, 0])],
        ),
        (
            "chat-miner/test_batch_export.json",
            Telegram,
            vec![w("Chatname", Direct, [2, 2, 0, 0, 0, 0])],
        ),
        (
            "rwhatsapp/sample.txt",
            Android,
            vec![w("sample", Group, [9, 6, 2, 1, 0, 1])],
        ),
        (
            "whatstk/pokemon.txt",
            Android,
            vec![w("pokemon", Group, [20, 18, 2, 0, 0, 0])],
        ),
        (
            "whats_json/WhatsApp Chat with Dmitry S EN Android.txt",
            Android,
            vec![w("Dmitry S EN Android", Direct, dmitry_android)],
        ),
        (
            "whats_json/WhatsApp Chat with Dmitry S EN+Media Android.txt",
            Android,
            vec![w("Dmitry S EN+Media Android", Direct, dmitry_android)],
        ),
        (
            "whats_json/WhatsApp Chat with Group Chat XXX Android.txt",
            Android,
            vec![w("Group Chat XXX Android", Group, [20, 3, 16, 0, 1, 6])],
        ),
        (
            "whats_json/Чат WhatsApp с\u{a0}контактом Dmitry S RU Android.txt",
            Android,
            vec![w("Dmitry S RU Android", Direct, dmitry_android)],
        ),
        (
            "whats_json/Chat WhatsApp s\u{a0}uživatelem Dmitry S CZ Android.txt",
            Android,
            vec![w("Dmitry S CZ Android", Direct, dmitry_android)],
        ),
        (
            "whats_json/deutch_android_media.txt",
            Android,
            vec![w("deutch_android_media", Direct, [41, 9, 3, 22, 7, 5])],
        ),
        (
            "whats_json/WhatsApp Chat - Elon Musk (EN).txt",
            Ios,
            vec![w("Elon Musk (EN)", Direct, elon_ios)],
        ),
        (
            "whats_json/WhatsApp Chat - Elon Musk (EN+Media).txt",
            Ios,
            vec![w("Elon Musk (EN+Media)", Direct, elon_ios)],
        ),
        (
            "whats_json/WhatsApp Chat - Elon Musk (German).txt",
            Ios,
            vec![w("Elon Musk (German)", Direct, elon_ios)],
        ),
        (
            "whats_json/WhatsApp Chat - Elon Musk (FR).txt",
            Ios,
            vec![w("Elon Musk (FR)", Direct, elon_ios)],
        ),
        (
            "whats_json/WhatsApp Chat - Elon Musk (RU).txt",
            Ios,
            vec![w("Elon Musk (RU)", Direct, elon_ios)],
        ),
        (
            "whats_json/WhatsApp Chat - Elon Musk (CZ).txt",
            Ios,
            vec![w("Elon Musk (CZ)", Direct, elon_ios)],
        ),
        (
            "whats_json/WhatsApp Chat - Elon Musk (Arabic).txt",
            Ios,
            vec![w("Elon Musk (Arabic)", Direct, elon_ios)],
        ),
        (
            "whats_json/arabic_ios.txt",
            Ios,
            vec![w("arabic_ios", Direct, [23, 6, 1, 14, 2, 21])],
        ),
        (
            "whats_json/iOS Indonesian.txt",
            Ios,
            vec![w("iOS Indonesian", Direct, elon_ios_longer)],
        ),
        (
            "whats_json/iOS Vietnamese.txt",
            Ios,
            vec![w("iOS Vietnamese", Direct, elon_ios_longer)],
        ),
        (
            "whats_json/iOS Japanese.txt",
            Ios,
            vec![w("iOS Japanese", Direct, elon_ios_longer)],
        ),
        (
            "whats_json/iOS Thai.txt",
            Ios,
            vec![w("iOS Thai", Direct, elon_ios_longer)],
        ),
        (
            "whats_json/iOS Hindi.txt",
            Ios,
            vec![w("iOS Hindi", Direct, elon_ios_longer)],
        ),
        (
            "whats_json/Buddhist iOS.txt",
            Ios,
            vec![w("Buddhist iOS", Direct, elon_ios_longer)],
        ),
        (
            "whats_json/Japanese iOS.txt",
            Ios,
            vec![w("Japanese iOS", Direct, elon_ios_longer)],
        ),
        (
            "whats_json/WhatsApp Chat - Group Chat XXX.txt",
            Ios,
            vec![w("Group Chat XXX", Group, [17, 2, 15, 0, 0, 7])],
        ),
    ]
}

/// Files of the corpus that must be refused.
const REFUSED: &[&str] = &["chat-miner/test_export.txt"];

fn all_files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for sub in std::fs::read_dir(dir).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&sub).unwrap() {
            let path = file.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "txt" || ext == "json" {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel);
            }
        }
    }
    out
}

/// Header lines counted without the parser: a WhatsApp record starts at a line that begins
/// (after an optional LRM/RLM) with `[` or a digit, ASCII or Arabic-Indic.
fn header_lines(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.split('\n')
        .filter(|l| {
            let l = l.trim_start_matches(['\u{feff}', '\u{200e}', '\u{200f}']);
            l.starts_with('[')
                || l.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() || ('\u{660}'..='\u{669}').contains(&c))
        })
        .count()
}

/// Telegram messages counted without the parser.
fn json_messages(path: &Path) -> Vec<usize> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let count = |chat: &serde_json::Value| chat["messages"].as_array().map_or(0, Vec::len);
    if v.get("messages").is_some() {
        vec![count(&v)]
    } else {
        v["chats"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(count)
            .collect()
    }
}

fn kinds(chat: &ImportedChat) -> [usize; 6] {
    let n = |f: &dyn Fn(&Record) -> bool| chat.records.iter().filter(|r| f(r)).count();
    [
        chat.records.len(),
        n(&|r| r.kind == RecordKind::Text),
        n(&|r| r.kind == RecordKind::System),
        n(&|r| matches!(r.kind, RecordKind::Media { .. })),
        n(&|r| r.kind == RecordKind::Deleted),
        n(&|r| r.from_me),
    ]
}

#[test]
fn every_corpus_file_parses_to_one_record_per_message() {
    let dir = corpus_or_skip!();
    let table = table();
    let listed: BTreeSet<String> = table
        .iter()
        .map(|(f, ..)| (*f).to_owned())
        .chain(REFUSED.iter().map(|f| (*f).to_owned()))
        .collect();
    assert_eq!(
        all_files(&dir),
        listed,
        "the table must list every corpus file"
    );

    let started = std::time::Instant::now();
    for (file, format, wants) in &table {
        let path = dir.join(file);
        let export = parse_file(&path, &utc()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(export.format, *format, "{file}");
        assert_eq!(export.chats.len(), wants.len(), "{file}");
        let independent = if *format == Telegram {
            json_messages(&path)
        } else {
            vec![header_lines(&path)]
        };
        for ((chat, want), counted) in export.chats.iter().zip(wants).zip(independent) {
            assert_eq!(chat.name, want.name, "{file}");
            assert_eq!(chat.kind, want.kind, "{file}");
            assert_eq!(
                chat.records.len(),
                counted,
                "{file}: records vs. counted messages"
            );
            assert_eq!(
                kinds(chat),
                [
                    want.records,
                    want.text,
                    want.system,
                    want.media,
                    want.deleted,
                    want.mine
                ],
                "{file}: [records, text, system, media, deleted, mine]"
            );
            let lines: Vec<usize> = chat.records.iter().map(|r| r.line).collect();
            assert!(lines.windows(2).all(|w| w[0] < w[1]), "{file}: file order");
        }
    }
    eprintln!("corpus parsed in {:?}", started.elapsed());
}

#[test]
fn the_signal_text_export_is_refused_clearly() {
    let dir = corpus_or_skip!();
    for file in REFUSED {
        let err = parse_file(&dir.join(file), &utc()).unwrap_err();
        assert!(matches!(err, Error::Unsupported { line: 1, .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("test_export.txt") && message.contains("Signal"),
            "{message}"
        );
    }
}

fn load(dir: &Path, file: &str, tz: &str) -> Export {
    parse_file(
        &dir.join(file),
        &ImportOptions::new(TimeZone::get(tz).unwrap()),
    )
    .unwrap()
}

fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8, tz: &str) -> i64 {
    jiff::civil::date(y, mo, d)
        .at(h, mi, s, 0)
        .to_zoned(TimeZone::get(tz).unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn record(export: &Export, line: usize) -> &Record {
    export.chats[0]
        .records
        .iter()
        .find(|r| r.line == line)
        .unwrap_or_else(|| panic!("no record at line {line}"))
}

#[test]
fn arabic_indic_digits_with_the_arabic_pm_sign_and_phone_authors() {
    let dir = corpus_or_skip!();
    let export = load(&dir, "whats_json/arabic_ios.txt", "Europe/Berlin");
    let first = record(&export, 1);
    assert_eq!(first.kind, RecordKind::System);
    assert_eq!(
        first.author, None,
        "the E2E notice is the app's, not the phone number's"
    );
    assert_eq!(first.ts_ms, at(2022, 3, 18, 14, 56, 0, "Europe/Berlin"));
    let deleted = record(&export, 21);
    assert_eq!(deleted.kind, RecordKind::Deleted);
    assert_eq!(deleted.author.as_deref(), Some("+40 521 028 61 88"));
    assert_eq!(deleted.ts_ms, at(2022, 3, 27, 21, 54, 45, "Europe/Berlin"));
    let location = record(&export, 23);
    assert_eq!(
        location.text,
        "موقع: https://maps.google.com/?q=34.800600,28.100155"
    );
}

#[test]
fn buddhist_and_japanese_era_years() {
    let dir = corpus_or_skip!();
    for file in ["whats_json/Buddhist iOS.txt", "whats_json/Japanese iOS.txt"] {
        let export = load(&dir, file, "UTC");
        assert_eq!(
            record(&export, 1).ts_ms,
            at(2022, 3, 18, 14, 56, 1, "UTC"),
            "{file}"
        );
        assert_eq!(
            record(&export, 25).ts_ms,
            at(2023, 1, 7, 23, 32, 30, "UTC"),
            "{file}"
        );
        assert_eq!(
            record(&export, 25).text,
            "Your security code with Elon changed. Tap to learn more."
        );
    }
}

#[test]
fn vietnamese_time_first_and_a_reordered_contact_name() {
    let dir = corpus_or_skip!();
    let export = load(&dir, "whats_json/iOS Vietnamese.txt", "UTC");
    let deleted = record(&export, 21);
    assert_eq!(deleted.author.as_deref(), Some("Musk Elon"));
    assert_eq!(deleted.kind, RecordKind::Deleted);
    assert_eq!(deleted.ts_ms, at(2022, 3, 27, 21, 54, 45, "UTC"));
    assert_eq!(record(&export, 26).ts_ms, at(2023, 1, 12, 2, 5, 44, "UTC"));
}

#[test]
fn spanish_twelve_hour_clock() {
    let dir = corpus_or_skip!();
    let export = load(&dir, "chat-miner/test_mmddyyyy_12hrs.txt", "UTC");
    assert_eq!(record(&export, 3).ts_ms, at(2019, 1, 30, 20, 49, 0, "UTC"));
    assert_eq!(record(&export, 6).ts_ms, at(2020, 6, 20, 0, 8, 0, "UTC"));
    assert_eq!(record(&export, 9).ts_ms, at(2021, 12, 20, 12, 10, 0, "UTC"));
    assert_eq!(record(&export, 9).author.as_deref(), Some("🤓"));
    assert_eq!(
        record(&export, 3).text,
        "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit. Duis libero."
    );
    assert_eq!(record(&export, 2).text, ".");
    let system = record(&export, 6);
    assert_eq!(
        (system.author.as_deref(), system.kind.clone()),
        (None, RecordKind::System)
    );
    assert_eq!(system.text, "+12 345 578 created group \"Groupname\"");
}

#[test]
fn multi_line_messages_and_captions_are_continuation_lines() {
    let dir = corpus_or_skip!();
    let export = load(
        &dir,
        "whats_json/WhatsApp Chat with Dmitry S EN+Media Android.txt",
        "UTC",
    );
    let venue = record(&export, 46);
    assert_eq!(
        venue.text,
        "Pimlico Gardens\nLondon, United Kingdom\nhttps://foursquare.com/v/4e89af95e5fa82ad4c0aa03b"
    );
    let captioned = record(&export, 12);
    assert_eq!(
        captioned.kind,
        RecordKind::Media {
            file_name: Some("IMG-20220323-WA0002.jpg".to_owned())
        }
    );
    assert_eq!(captioned.text, "Титл");
    assert_eq!(captioned.author.as_deref(), Some("Elon"));
    let document = record(&export, 57);
    assert_eq!(document.kind, RecordKind::Media { file_name: None });
    assert_eq!(document.text, "Resume-Dmitry-Starkov.pdf");
    // The E2E notice comes first in the file but is later in time: file order is kept.
    assert_eq!(record(&export, 1).ts_ms, at(2022, 3, 23, 13, 31, 0, "UTC"));
    assert_eq!(record(&export, 2).ts_ms, at(2022, 3, 18, 14, 56, 0, "UTC"));

    let sample = load(&dir, "rwhatsapp/sample.txt", "UTC");
    assert_eq!(
        record(&sample, 5).text,
        "It's fun doing text analysis with R\nisn't it?"
    );
    assert!(record(&sample, 10).text.matches('\u{200d}').count() > 50);
}

#[test]
fn ios_crlf_files_lose_their_carriage_returns_and_keep_attachment_names() {
    let dir = corpus_or_skip!();
    let export = load(
        &dir,
        "whats_json/WhatsApp Chat - Elon Musk (EN+Media).txt",
        "UTC",
    );
    assert!(
        export.chats[0]
            .records
            .iter()
            .all(|r| !r.text.contains('\r'))
    );
    assert_eq!(
        record(&export, 12).kind,
        RecordKind::Media {
            file_name: Some("00000046-Some file.txt".to_owned())
        }
    );
    let en = load(&dir, "whats_json/WhatsApp Chat - Elon Musk (EN).txt", "UTC");
    assert_eq!(
        record(&en, 13).kind,
        RecordKind::Media {
            file_name: Some("Resume-Dmitry-Starkov.pdf".to_owned())
        }
    );
    assert_eq!(
        record(&en, 24).author,
        None,
        "security-code change attributed to the chat"
    );
}

#[test]
fn telegram_array_text_and_mixed_dates() {
    let dir = corpus_or_skip!();
    let batch = load(&dir, "chat-miner/test_batch_export.json", "UTC");
    assert_eq!(batch.chats[0].records[1].text, "Link:https://telegram.org/");
    assert_eq!(
        batch.chats[0].records[1].author.as_deref(),
        Some("Author 2")
    );
    assert_eq!(batch.chats[0].records[1].ts_ms, 1_544_006_964_000);

    let dm = load(&dir, "chat-analytics/DM_2A_7M.json", "Europe/Berlin");
    let r = &dm.chats[0].records;
    assert_eq!(r[1].text, "https://google.com 👀");
    assert_eq!(
        r[1].ts_ms,
        at(2019, 7, 12, 16, 55, 32, "Europe/Berlin"),
        "date only"
    );
    assert_eq!(r[3].ts_ms, 1_652_135_033_000, "date_unixtime only");
    assert_eq!(r[7].ts_ms, 1_691_719_862_000, "both: date_unixtime wins");
    assert_eq!(r[7].text, "call (56 s)");
    assert_eq!(r[5].kind, RecordKind::Media { file_name: None });
}

#[test]
fn the_whole_account_export_names_the_exporting_user() {
    let dir = corpus_or_skip!();
    let mut opts = utc();
    opts.me = Some("Alice".to_owned());
    let export = parse_file(&dir.join("chat-analytics/MultiChat_2C_6M.json"), &opts).unwrap();
    let mine: Vec<(usize, usize)> = export
        .chats
        .iter()
        .enumerate()
        .flat_map(|(c, chat)| {
            chat.records
                .iter()
                .filter(|r| r.from_me)
                .map(move |r| (c, r.line))
        })
        .collect();
    assert_eq!(mine, [(0, 1)]);
}

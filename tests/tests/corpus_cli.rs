#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `tandem-phone import` over the shared corpus of real chat exports (public parser test
//! suites, see its SOURCES.md), one program run per file as a user would: every WhatsApp and
//! Telegram export is stored whole, the Signal export is refused with a clear message, a second
//! pass adds nothing, and a few records read from the files by this test come back from
//! `history` with the same author, text and time. The corpus is not part of the repository:
//! it is looked for in `$TANDEM_EXPORTS_DIR`, `/work/shared/data/exports` and
//! `../shared/data/exports` beside the workspace; without it the test prints why and passes.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tandem_tests::cli::{Home, Run, contains_bytes};

const TZ: &str = "Europe/Berlin";

/// The one corpus file that is not a WhatsApp or Telegram export.
const SIGNAL: &str = "chat-miner/test_export.txt";

fn corpus_dir() -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        std::env::var_os("TANDEM_EXPORTS_DIR").map(PathBuf::from),
        Some(PathBuf::from("/work/shared/data/exports")),
        Some(workspace.join("../shared/data/exports")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_dir())
}

/// Every `.txt` and `.json` file under `dir`, as paths relative to it, sorted.
fn export_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("txt" | "json")
            ) {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn ok(run: Run) -> Run {
    assert!(run.success(), "expected success: {run}");
    run
}

fn import(home: &Home, file: &Path) -> Run {
    home.phone([
        "import".as_ref(),
        file.as_os_str(),
        "--tz".as_ref(),
        std::ffi::OsStr::new(TZ),
        "--json".as_ref(),
    ])
    .unwrap()
}

fn history(home: &Home, chat: &str) -> Vec<Value> {
    let run = ok(home
        .phone(["history", chat, "--limit", "1000", "--json"])
        .unwrap());
    run.json().unwrap().as_array().unwrap().clone()
}

/// The runs of ASCII or Arabic-Indic digits in `text`, as numbers.
fn numbers(text: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut current: Option<i64> = None;
    for c in text.chars() {
        let digit = c.to_digit(10).or_else(|| {
            ('\u{660}'..='\u{669}')
                .contains(&c)
                .then(|| c as u32 - 0x660)
        });
        match (digit, current) {
            (Some(d), n) => current = Some(n.unwrap_or(0) * 10 + i64::from(d)),
            (None, Some(n)) => {
                out.push(n);
                current = None;
            }
            (None, None) => {}
        }
    }
    out.extend(current);
    out
}

/// Unix ms of a wall-clock time in [`TZ`].
fn wall_clock_ms(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    let n = |v: i64| i8::try_from(v).unwrap();
    jiff::civil::date(i16::try_from(y).unwrap(), n(mo), n(d))
        .at(n(h), n(mi), n(s), 0)
        .to_zoned(jiff::tz::TimeZone::get(TZ).unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// The line of `file` that contains `marker` (exactly one must).
fn line_with(file: &Path, marker: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(marker)).collect();
    assert_eq!(lines.len(), 1, "{}: lines with {marker:?}", file.display());
    lines[0].trim_end_matches('\r').to_owned()
}

/// The message of `chat` with exactly this text.
fn find<'a>(messages: &'a [Value], chat: &str, text: &str) -> &'a Value {
    let found: Vec<&Value> = messages.iter().filter(|m| m["text"] == text).collect();
    assert_eq!(found.len(), 1, "{chat}: messages with text {text:?}");
    found[0]
}

#[test]
fn the_whole_corpus_imports_once_and_reads_back_as_written() {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "chat-export corpus not found ($TANDEM_EXPORTS_DIR, /work/shared/data/exports, \
             ../shared/data/exports): skipping"
        );
        return;
    };
    let started = std::time::Instant::now();
    let files = export_files(&dir);
    assert!(files.len() > 30, "the corpus looks incomplete: {files:?}");
    assert!(files.iter().any(|f| f == SIGNAL), "{SIGNAL} is missing");

    let home = Home::new().unwrap();
    ok(home.phone(["init", "--name", "Dmitry"]).unwrap());

    // First pass: every file on its own; everything is new.
    let mut total = 0u64;
    for rel in &files {
        let path = dir.join(rel);
        let run = import(&home, &path);
        if rel == SIGNAL {
            assert_eq!(run.code(), Some(1), "{run}");
            assert!(run.stdout.trim().is_empty(), "{run}");
            let errors = run.errors();
            assert_eq!(errors.len(), 1, "{run}");
            for part in ["test_export.txt", "Signal", "line 1", "cannot be imported"] {
                assert!(
                    errors[0].contains(part),
                    "the refusal does not say {part:?}: {run}"
                );
            }
            continue;
        }
        let reports = ok(run).json_lines().unwrap();
        assert_eq!(reports.len(), 1, "{rel}");
        let report = &reports[0];
        let format = report["format"].as_str().unwrap();
        if rel.ends_with(".json") {
            assert_eq!(format, "telegram", "{rel}");
        } else {
            assert!(format.starts_with("whatsapp-"), "{rel}: {format}");
        }
        let messages = report["messages"].as_u64().unwrap();
        assert!(messages > 0, "{rel}: {report}");
        assert_eq!(report["added"], messages, "{rel}: {report}");
        total += messages;
    }

    // Second pass: nothing new anywhere.
    for rel in files.iter().filter(|f| *f != SIGNAL) {
        let reports = ok(import(&home, &dir.join(rel))).json_lines().unwrap();
        assert_eq!(reports[0]["added"], 0, "{rel}: {}", reports[0]);
    }

    // The store holds exactly the sum.
    let status = ok(home.phone(["status", "--json"]).unwrap())
        .json()
        .unwrap();
    assert_eq!(status["messages"], total, "{status}");
    let chats = ok(home.phone(["chats", "--json"]).unwrap()).json().unwrap();
    let chats = chats.as_array().unwrap();
    assert_eq!(status["chats"], chats.len());
    let per_chat: u64 = chats.iter().map(|c| c["messages"].as_u64().unwrap()).sum();
    assert_eq!(per_chat, total);

    // An iOS record, read from the file by hand: author, text and Berlin wall-clock time
    // (27 March 2022 is the day Berlin moved to summer time: 21:52 is UTC+2).
    let elon = dir.join("whats_json/WhatsApp Chat - Elon Musk (EN).txt");
    let line = line_with(&elon, "This message is reply to another");
    let (stamp, rest) = line.split_once("] ").unwrap();
    let (author, text) = rest.split_once(": ").unwrap();
    let [month, day, year, hour, minute, second] = numbers(stamp)[..] else {
        panic!("{line}")
    };
    let history_elon = history(&home, "Elon Musk (EN)");
    let message = find(&history_elon, "Elon Musk (EN)", text);
    assert_eq!(message["sender"], author);
    assert_eq!(message["kind"], "text");
    assert_eq!(
        message["ts"],
        wall_clock_ms(2000 + year, month, day, hour, minute, second),
        "{line}"
    );
    assert_eq!(
        message["ts"], 1_648_410_757_000_i64,
        "2022-03-27 19:52:37 UTC"
    );

    // Arabic-Indic digits, day first, with the Arabic PM sign: `[٢٧/٣/٢٠٢٢، ٩:٤١:٣٥ م]`.
    let arabic = dir.join("whats_json/arabic_ios.txt");
    let line = line_with(&arabic, "Dmitry S: Pimlico Gardens");
    let (stamp, rest) = line.split_once("] ").unwrap();
    let (author, text) = rest.split_once(": ").unwrap();
    let [day, month, year, hour, minute, second] = numbers(stamp)[..] else {
        panic!("{line}")
    };
    assert!(
        stamp.ends_with('م'),
        "a PM time (the Arabic PM sign): {line}"
    );
    let history_arabic = history(&home, "arabic_ios");
    let message = find(&history_arabic, "arabic_ios", text);
    assert_eq!(message["sender"], author);
    assert_eq!(
        message["text"],
        "Pimlico Gardens (London, United Kingdom): https://foursquare.com/v/4e89af95e5fa82ad4c0aa03b"
    );
    assert_eq!(
        message["ts"],
        wall_clock_ms(year, month, day, hour % 12 + 12, minute, second),
        "{line}"
    );

    // A Telegram message whose text is an array of styled parts.
    let batch = dir.join("chat-miner/test_batch_export.json");
    let json: Value = serde_json::from_slice(&std::fs::read(&batch).unwrap()).unwrap();
    let chat = &json["chats"]["list"][0];
    let raw = chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"].is_array())
        .unwrap();
    let text: String = raw["text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part["text"].as_str().unwrap())
        .collect();
    let seconds: i64 = raw["date_unixtime"].as_str().unwrap().parse().unwrap();
    let name = chat["name"].as_str().unwrap();
    let history_batch = history(&home, name);
    let message = find(&history_batch, name, &text);
    assert_eq!(message["sender"], raw["from"]);
    assert_eq!(message["ts"], seconds * 1000);

    // None of it is readable in the store's files.
    let distinctive = [
        "This message is reply to another",
        "Pimlico Gardens",
        "Minimal Message",
        "Link:https://telegram.org/",
        "Elon Musk",
    ];
    let store = home.files().unwrap();
    assert!(!store.is_empty());
    for secret in distinctive {
        let in_corpus = files
            .iter()
            .any(|rel| contains_bytes(&std::fs::read(dir.join(rel)).unwrap(), secret.as_bytes()))
            || secret == text;
        assert!(in_corpus, "{secret:?} is not in the corpus");
        for (path, bytes) in &store {
            assert!(
                !contains_bytes(bytes, secret.as_bytes()),
                "{} holds {secret:?} in plaintext",
                path.display()
            );
        }
    }
    eprintln!(
        "{} corpus files, {total} messages, imported twice and checked in {:?}",
        files.len(),
        started.elapsed()
    );
}

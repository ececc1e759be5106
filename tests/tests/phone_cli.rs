#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `tandem-phone` and `tandem` as a user drives them: Alice creates her account, imports her
//! WhatsApp history (the import crate's own fixtures), browses and searches it; bad files are
//! refused whole and named; the store on disk holds no plaintext; the companion on a fresh
//! home is unlinked and empty. Real processes, real encrypted stores in temporary homes.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tandem_tests::cli::{Home, Run, contains_bytes};

/// The import crate's fixtures, with what reading them by hand says they hold.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/import/tests/fixtures")
}

struct Fixture {
    file: &'static str,
    format: &'static str,
    chat: &'static str,
    kind: &'static str,
    /// Header lines counted in the file.
    messages: u64,
}

const FIXTURES: [Fixture; 3] = [
    Fixture {
        file: "WhatsApp Chat - Garden Club.txt",
        format: "whatsapp-ios",
        chat: "Garden Club",
        kind: "group",
        messages: 11,
    },
    Fixture {
        file: "WhatsApp Chat with Ana Lima.txt",
        format: "whatsapp-android",
        chat: "Ana Lima",
        kind: "direct",
        messages: 12,
    },
    Fixture {
        file: "arabic_ios_digits.txt",
        format: "whatsapp-ios",
        chat: "arabic_ios_digits",
        kind: "direct",
        messages: 4,
    },
];

const TZ: &str = "Europe/Berlin";

/// A WhatsApp Android export with accents, written by the test.
const CAFE_EXPORT: &str = "12/03/2024, 14:05 - Ana Costa: Vamos ao café amanhã?\n\
                           12/03/2024, 14:06 - Rui: Sim, às 10h.\n";

// ---------------------------------------------------------------------------------------
// Helpers: every run is checked with its whole output in the failure message.

fn ok(run: Run) -> Run {
    assert!(run.success(), "expected success: {run}");
    run
}

fn ok_json(run: Run) -> Value {
    ok(run).json().unwrap()
}

/// A home with Alice's account.
fn alice() -> Home {
    let home = Home::new().unwrap();
    let account = ok(home.phone(["init", "--name", "Alice"]).unwrap());
    assert!(!account.stdout.trim().is_empty(), "{account}");
    home
}

fn fixture_paths() -> Vec<PathBuf> {
    FIXTURES.iter().map(|f| fixtures().join(f.file)).collect()
}

/// `import FILES... --tz Europe/Berlin --json`.
fn import_args(files: &[&Path]) -> Vec<OsString> {
    let mut args = vec![OsString::from("import")];
    args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    args.extend(["--tz", TZ, "--json"].map(OsString::from));
    args
}

/// `import FILES --tz Europe/Berlin --json`, successful, its reports.
fn import(home: &Home, files: &[PathBuf]) -> Vec<Value> {
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let reports = ok(home.phone(import_args(&files)).unwrap())
        .json_lines()
        .unwrap();
    assert_eq!(reports.len(), files.len(), "one report per file");
    reports
}

fn history(home: &Home, chat: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["history", chat, "--json"];
    args.extend(extra);
    let page = ok_json(home.phone(args).unwrap());
    page.as_array().unwrap().clone()
}

fn search(home: &Home, query: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["search", query, "--json"];
    args.extend(extra);
    ok_json(home.phone(args).unwrap())
        .as_array()
        .unwrap()
        .clone()
}

fn status(home: &Home) -> Value {
    ok_json(home.phone(["status", "--json"]).unwrap())
}

fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn timestamps(messages: &[Value]) -> Vec<i64> {
    messages.iter().map(|m| m["ts"].as_i64().unwrap()).collect()
}

fn berlin_ms(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
    jiff::civil::date(y, mo, d)
        .at(h, mi, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get(TZ).unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// Walks a chat back from its newest page with `--before` (the first id of each page) and
/// returns the pages, newest page first; the walk must end with an empty page.
fn walk_back(home: &Home, chat: &str, limit: usize) -> Vec<Vec<Value>> {
    let limit_text = limit.to_string();
    let mut pages = vec![history(home, chat, &["--limit", &limit_text])];
    loop {
        let last = pages.last().unwrap();
        if last.is_empty() {
            pages.pop();
            return pages;
        }
        assert!(last.len() <= limit, "a page longer than --limit");
        assert!(pages.len() < 100, "the walk back does not end");
        let first = last[0]["id"].as_str().unwrap().to_owned();
        pages.push(history(
            home,
            chat,
            &["--limit", &limit_text, "--before", &first],
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Story 1.

#[test]
fn alice_imports_her_history_then_browses_and_searches_it() {
    let home = alice();

    // She imports her three exports: each is recognised, named, and fully stored.
    let reports = import(&home, &fixture_paths());
    for (report, want) in reports.iter().zip(&FIXTURES) {
        assert!(
            report["file"].as_str().unwrap().ends_with(want.file),
            "{report}"
        );
        assert_eq!(report["format"], want.format, "{report}");
        assert_eq!(report["chat"], want.chat, "{report}");
        assert_eq!(report["messages"], want.messages, "{report}");
        assert_eq!(report["added"], want.messages, "{report}");
    }

    // Importing the same files again adds nothing.
    for (report, want) in import(&home, &fixture_paths()).iter().zip(&FIXTURES) {
        assert_eq!(report["messages"], want.messages, "{report}");
        assert_eq!(
            report["added"], 0,
            "a re-import stored duplicates: {report}"
        );
    }

    // A small export of her own, with accents.
    let cafe = home.scratch().join("WhatsApp Chat with Ana Costa.txt");
    std::fs::write(&cafe, CAFE_EXPORT).unwrap();
    let cafe_report = &import(&home, std::slice::from_ref(&cafe))[0];
    assert_eq!(cafe_report["format"], "whatsapp-android");
    assert_eq!(cafe_report["chat"], "Ana Costa");
    assert_eq!(cafe_report["added"], 2);

    // The chat list: the right kinds and counts, newest activity first.
    let chats = ok_json(home.phone(["chats", "--json"]).unwrap());
    let chats = chats.as_array().unwrap();
    assert_eq!(chats.len(), 4, "{chats:?}");
    for want in &FIXTURES {
        let chat = chats
            .iter()
            .find(|c| c["name"] == want.chat)
            .unwrap_or_else(|| panic!("no chat {:?} in {chats:?}", want.chat));
        assert_eq!(chat["kind"], want.kind, "{chat}");
        assert_eq!(chat["messages"], want.messages, "{chat}");
        assert!(chat["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    let last: Vec<i64> = chats
        .iter()
        .map(|c| c["last_ts"].as_i64().unwrap())
        .collect();
    assert!(
        last.is_sorted_by(|a, b| a >= b),
        "chats by last activity: {last:?}"
    );

    // History: all of Ana Lima's chat, oldest first, times read in Berlin.
    let all = history(&home, "Ana Lima", &[]);
    assert_eq!(all.len(), 12);
    assert!(timestamps(&all).is_sorted(), "oldest first");
    let bom_dia = all
        .iter()
        .find(|m| m["text"] == "Bom dia! Are we still on for the ferry?")
        .unwrap();
    assert_eq!(bom_dia["sender"], "Ana Lima");
    assert_eq!(bom_dia["kind"], "text");
    assert_eq!(
        bom_dia["ts"],
        berlin_ms(2024, 1, 2, 9, 1),
        "02/01/2024, 09:01"
    );
    let shopping = all.iter().find(|m| m["sender"] == "Rui").unwrap();
    assert_eq!(shopping["text"], "Yes. Shopping list:\n- bread\n- 2 lemons");

    // The chat can be named by its id too.
    let ana_id = chats.iter().find(|c| c["name"] == "Ana Lima").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(history(&home, &ana_id, &[]), all);

    // --limit N gives the newest N, still oldest first.
    let newest = history(&home, "Ana Lima", &["--limit", "5"]);
    assert_eq!(newest, all[all.len() - 5..]);

    // Walking back page by page visits every message exactly once, in order.
    for want in &FIXTURES {
        let everything = history(&home, want.chat, &["--limit", "1000"]);
        assert_eq!(everything.len() as u64, want.messages);
        let pages = walk_back(&home, want.chat, 5);
        let walked: Vec<Value> = pages.into_iter().rev().flatten().collect();
        let walked_ids = ids(&walked);
        let distinct: BTreeSet<&String> = walked_ids.iter().collect();
        assert_eq!(
            distinct.len(),
            walked_ids.len(),
            "{}: a message seen twice",
            want.chat
        );
        assert_eq!(walked, everything, "{}: the walk back", want.chat);
    }

    // Search: a word in one fixture, with the chat's name.
    let ferry = search(&home, "ferry", &[]);
    assert_eq!(ferry.len(), 1, "{ferry:?}");
    assert_eq!(ferry[0]["chat_name"], "Ana Lima");
    assert_eq!(ferry[0]["id"], bom_dia["id"]);
    assert_eq!(ferry[0]["text"], bom_dia["text"]);

    // A word in two chats: newest first; --chat narrows to one.
    let encrypted = search(&home, "encrypted", &[]);
    let names: Vec<&str> = encrypted
        .iter()
        .map(|h| h["chat_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Garden Club", "Ana Lima"], "{encrypted:?}");
    assert!(
        timestamps(&encrypted).is_sorted_by(|a, b| a >= b),
        "newest first"
    );
    let only_ana = search(&home, "encrypted", &["--chat", "Ana Lima"]);
    assert_eq!(only_ana.len(), 1, "{only_ana:?}");
    assert_eq!(only_ana[0]["chat_name"], "Ana Lima");
    assert_eq!(search(&home, "encrypted", &["--limit", "1"]).len(), 1);

    // Accents and case are ignored, both ways.
    for query in ["cafe", "amanha", "CAFÉ", "Amanhã"] {
        let hits = search(&home, query, &[]);
        assert_eq!(hits.len(), 1, "{query}: {hits:?}");
        assert_eq!(hits[0]["text"], "Vamos ao café amanhã?", "{query}");
        assert_eq!(hits[0]["chat_name"], "Ana Costa", "{query}");
    }
    assert!(search(&home, "tomatoes", &["--chat", "Ana Lima"]).is_empty());
    assert_eq!(search(&home, "tomatoes", &[]).len(), 1);

    // Status counts what is stored.
    let status = status(&home);
    assert_eq!(status["mode"], "primary");
    assert_eq!(status["linked"], true);
    assert_eq!(status["chats"], 4);
    assert_eq!(status["messages"], 11 + 12 + 4 + 2);
}

// ---------------------------------------------------------------------------------------
// Story 2.

/// Imports `file` alone and expects it refused: exit 1, one `error:` line naming the file
/// and containing every one of `says`.
fn refused(home: &Home, file: &Path, says: &[&str]) {
    let run = home.phone(import_args(&[file])).unwrap();
    assert_eq!(run.code(), Some(1), "{run}");
    assert!(
        run.stdout.trim().is_empty(),
        "a report for a refused file: {run}"
    );
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{run}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        errors[0].contains(name),
        "the error does not name {name}: {run}"
    );
    for part in says {
        assert!(
            errors[0].contains(part),
            "the error does not say {part:?}: {run}"
        );
    }
}

#[test]
fn bad_files_are_refused_whole_and_named_and_nothing_is_lost() {
    let home = alice();
    import(&home, &fixture_paths()[..1]);
    let before = (
        status(&home),
        ok(home.phone(["chats", "--json"]).unwrap()).stdout,
    );

    let dir = home.scratch();
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "Dear diary,\nToday nothing happened.\n").unwrap();
    refused(
        &home,
        &notes,
        &["line 1", "Dear diary", "not a WhatsApp or Telegram"],
    );

    let list = dir.join("shopping.json");
    std::fs::write(
        &list,
        "{\n  \"name\": \"shopping\",\n  \"items\": [\"bread\"]\n}\n",
    )
    .unwrap();
    refused(&home, &list, &["not a WhatsApp or Telegram"]);

    let broken = dir.join("result.json");
    std::fs::write(&broken, "{\n  \"name\": \"Bob\",\n  \"messages\": [\n").unwrap();
    refused(&home, &broken, &["not valid JSON", "line 4"]);

    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    refused(&home, &empty, &["empty"]);

    // Two good records, an impossible date on line 3, one more good record: all refused.
    let bad_date = dir.join("WhatsApp Chat with Bad Date.txt");
    std::fs::write(
        &bad_date,
        "12/03/2024, 14:05 - Ana: first\n\
         12/03/2024, 14:06 - Ana: second\n\
         31/04/2024, 10:00 - Ana: there is no 31 April\n\
         12/03/2024, 14:07 - Ana: after\n",
    )
    .unwrap();
    refused(&home, &bad_date, &["line 3", "31/04/2024"]);

    // A Telegram export whose second message has no date: the first is not kept either.
    let telegram = dir.join("bob.json");
    std::fs::write(
        &telegram,
        r#"{"name": "Bob", "type": "personal_chat", "id": 42, "messages": [
            {"id": 1, "type": "message", "date": "2024-03-12T14:05:00", "from": "Bob", "text": "one"},
            {"id": 2, "type": "message", "from": "Bob", "text": "two"}
        ]}"#,
    )
    .unwrap();
    refused(&home, &telegram, &["Bob", "message 2", "date"]);

    let after = (
        status(&home),
        ok(home.phone(["chats", "--json"]).unwrap()).stdout,
    );
    assert_eq!(after, before, "a refused file changed the store");
    assert!(
        search(&home, "first", &[]).is_empty(),
        "part of a refused file was stored"
    );

    // A bad file among good ones: the good ones are imported, the exit code says 1 failed.
    let good = fixtures().join(FIXTURES[1].file);
    let mixed = home.phone(import_args(&[&notes, &good])).unwrap();
    assert_eq!(mixed.code(), Some(1), "{mixed}");
    let reports = mixed.json_lines().unwrap();
    assert_eq!(reports.len(), 1, "{mixed}");
    assert_eq!(reports[0]["chat"], "Ana Lima");
    assert_eq!(reports[0]["added"], 12);
    assert_eq!(mixed.errors().len(), 1, "{mixed}");
    assert!(mixed.errors()[0].contains("notes.txt"), "{mixed}");
    assert!(mixed.stderr.contains("1 of 2 files"), "{mixed}");
    let status = status(&home);
    assert_eq!(
        status["messages"],
        before.0["messages"].as_u64().unwrap() + 12
    );
}

// ---------------------------------------------------------------------------------------
// Story 3.

#[test]
fn the_store_on_disk_holds_no_plaintext() {
    let home = alice();
    import(&home, &fixture_paths());
    let cafe = home.scratch().join("WhatsApp Chat with Ana Costa.txt");
    std::fs::write(&cafe, CAFE_EXPORT).unwrap();
    import(&home, std::slice::from_ref(&cafe));

    let secrets = [
        "Bom dia! Are we still on for the ferry?",
        "Who brings the seeds?",
        "Vamos ao café amanhã?",
        "Garden Club",
        "Ana Lima",
        "Bea Costa",
    ];
    // The texts are in the exports and in the store (readable through the program)...
    let exports: Vec<u8> = fixture_paths()
        .iter()
        .chain([&cafe])
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    for secret in secrets {
        assert!(contains_bytes(&exports, secret.as_bytes()), "{secret}");
        let found = !search(&home, secret, &[]).is_empty()
            || ok(home.phone(["chats"]).unwrap()).stdout.contains(secret);
        assert!(found, "{secret:?} is not in the store at all");
    }
    // ...but in none of the store's files.
    let files = home.files().unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "tandem.db"), "{names:?}");
    for (path, bytes) in &files {
        for secret in secrets {
            assert!(
                !contains_bytes(bytes, secret.as_bytes()),
                "{} holds {secret:?} in plaintext",
                path.display()
            );
        }
    }

    let key = std::fs::metadata(home.path().join("store.key")).unwrap();
    assert_eq!(
        key.permissions().mode() & 0o777,
        0o600,
        "the key file's mode"
    );
    let dir = std::fs::metadata(home.path()).unwrap();
    assert_eq!(
        dir.permissions().mode() & 0o777,
        0o700,
        "the home is private"
    );
}

// ---------------------------------------------------------------------------------------
// Story 4.

#[test]
fn init_twice_refuses_and_keeps_the_first_account() {
    let home = Home::new().unwrap();
    let first = ok(home.phone(["init", "--name", "Alice"]).unwrap());
    let account = first.stdout.trim().to_owned();
    assert_eq!(first.stdout.lines().count(), 1, "{first}");
    assert!(!account.is_empty() && !account.contains(' '), "{first}");

    let second = home.phone(["init", "--name", "Mallory", "--json"]).unwrap();
    assert_eq!(second.code(), Some(1), "{second}");
    assert!(second.stdout.trim().is_empty(), "{second}");
    let errors = second.errors();
    assert_eq!(errors.len(), 1, "{second}");
    assert!(errors[0].contains("already has an account"), "{second}");
    assert!(errors[0].contains(&account), "{second}");

    let status = status(&home);
    assert_eq!(status["account"], account.as_str());
    assert_eq!(status["device"], format!("{account}.0"));
    assert_eq!(status["linked"], true);
    assert_eq!(status["mode"], "primary");

    // --json gives the account and device of a new account.
    let other = Home::new().unwrap();
    let created = ok_json(other.phone(["init", "--name", "Bob", "--json"]).unwrap());
    let id = created["account"].as_str().unwrap();
    assert_ne!(id, account);
    assert_eq!(created["device"], format!("{id}.0"));
}

#[test]
fn the_companion_on_a_fresh_home_is_unlinked_and_empty() {
    let home = Home::new().unwrap();
    let status = ok_json(home.companion(["status", "--json"]).unwrap());
    assert_eq!(
        status,
        json!({
            "account": null,
            "device": null,
            "linked": false,
            "mode": "unlinked",
            "chats": 0,
            "messages": 0,
            "sync": {"state": "none", "done": 0, "total": 0, "chunks_done": 0, "chunks_total": 0},
        })
    );
    assert_eq!(
        ok_json(home.companion(["chats", "--json"]).unwrap()),
        json!([])
    );
    assert_eq!(
        ok_json(home.companion(["search", "anything", "--json"]).unwrap()),
        json!([])
    );
    let missing = home.companion(["history", "Ana Lima", "--json"]).unwrap();
    assert_eq!(missing.code(), Some(1), "{missing}");
    assert!(
        missing
            .errors()
            .first()
            .is_some_and(|e| e.contains("Ana Lima")),
        "{missing}"
    );
}

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `export` as a user runs it: Alice imports two WhatsApp chats on her phone, exports one as
//! JSON (the same messages `history` shows) and everything as one HTML page to open in a
//! browser; a chat name that does not exist is refused with nothing written; and the
//! companion `tandem` exports too (an empty store gives an empty but valid document).

use std::path::Path;

use serde_json::Value;
use tandem_tests::cli::{Home, Run};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/import/tests/fixtures"
);

fn ok(run: Run) -> Run {
    assert!(run.success(), "expected success: {run}");
    run
}

/// Alice's phone with the two fixture chats (Rui is "me" in Ana's chat).
fn alice() -> Home {
    let home = Home::new().unwrap();
    ok(home.phone(["init", "--name", "Alice"]).unwrap());
    for file in [
        "WhatsApp Chat with Ana Lima.txt",
        "WhatsApp Chat - Garden Club.txt",
    ] {
        let path = Path::new(FIXTURES).join(file);
        ok(home
            .phone([
                "import".as_ref(),
                path.as_os_str(),
                "--tz".as_ref(),
                "Europe/Lisbon".as_ref(),
                "--me".as_ref(),
                "Rui".as_ref(),
            ])
            .unwrap());
    }
    home
}

fn export(home: &Home, args: &[&str], output: &Path) -> Run {
    let mut all: Vec<&std::ffi::OsStr> = vec!["export".as_ref()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    all.extend(["--output".as_ref(), output.as_os_str()]);
    home.phone(all).unwrap()
}

#[test]
fn alice_exports_a_chat_as_json_and_everything_as_html() {
    let home = alice();

    // One chat as JSON: the report names the file and what is in it.
    let json_path = home.scratch().join("ana.json");
    let run = ok(export(
        &home,
        &["--format", "json", "--chat", "Ana Lima", "--json"],
        &json_path,
    ));
    let report = run.json().unwrap();
    assert_eq!(report["path"], json_path.to_str().unwrap(), "{run}");
    assert_eq!(report["chats"], 1, "{run}");
    assert_eq!(
        report["bytes"],
        std::fs::metadata(&json_path).unwrap().len(),
        "{run}"
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(doc["tandem_export"], 1);
    assert_eq!(doc["account"]["name"], "Alice");
    let history = ok(home
        .phone(["history", "Ana Lima", "--limit", "1000", "--json"])
        .unwrap())
    .json()
    .unwrap();
    assert_eq!(doc["chats"][0]["name"], "Ana Lima");
    assert_eq!(
        doc["chats"][0]["messages"], history,
        "the same messages, in order"
    );
    assert_eq!(report["messages"], history.as_array().unwrap().len());

    // Everything as HTML, reported as text: the path, then the counts.
    let html_path = home.scratch().join("everything.html");
    let run = ok(export(&home, &["--format", "html"], &html_path));
    let line = run.stdout.trim();
    assert!(
        line.starts_with(html_path.to_str().unwrap()) && line.contains(": 2 chats, "),
        "{run}"
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.to_lowercase().contains("<script"));
    for chat in ["Ana Lima", "Garden Club"] {
        assert!(html.contains(&format!("{chat}</h2>")), "{chat}");
    }
    // Rui is "me" in Ana's chat: his messages sit on the right.
    assert!(html.contains("<div class=\"msg out\""));
    assert!(html.contains("Bom dia! Are we still on for the ferry?"));
    assert!(html.contains("Time check: 18:46 - late again"));
    assert!(
        !home.scratch().join("everything.html.tmp").exists(),
        "no tmp file is left"
    );
}

#[test]
fn an_unknown_chat_or_format_is_refused_and_nothing_is_written() {
    let home = alice();
    let path = home.scratch().join("nobody.json");

    let run = export(&home, &["--format", "json", "--chat", "Nobody"], &path);
    assert_eq!(run.code(), Some(1), "{run}");
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{run}");
    assert!(errors[0].contains("Nobody"), "{run}");
    assert!(!path.exists(), "{run}");
    assert!(!home.scratch().join("nobody.json.tmp").exists(), "{run}");

    let run = export(&home, &["--format", "pdf"], &path);
    assert!(!run.success(), "{run}");
    assert!(run.stderr.contains("json or html"), "{run}");
    assert!(!path.exists(), "{run}");
}

#[test]
fn the_companion_exports_too_and_an_empty_store_gives_an_empty_document() {
    let home = Home::new().unwrap();
    let path = home.scratch().join("empty.json");

    let run = ok(home
        .companion([
            "export".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
            "--output".as_ref(),
            path.as_os_str(),
            "--json".as_ref(),
        ])
        .unwrap());
    let report = run.json().unwrap();
    assert_eq!(
        (report["chats"].as_u64(), report["messages"].as_u64()),
        (Some(0), Some(0))
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["account"], Value::Null, "not linked yet");
    assert_eq!(doc["chats"], serde_json::json!([]));

    let html = home.scratch().join("empty.html");
    ok(home
        .companion([
            "export".as_ref(),
            "--format".as_ref(),
            "html".as_ref(),
            "-o".as_ref(),
            html.as_os_str(),
        ])
        .unwrap());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("0 chats") && page.trim_end().ends_with("</html>"));
}

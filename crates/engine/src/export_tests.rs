//! Exports of a real encrypted store: imported WhatsApp chats, generated history longer than a
//! page, and a conversation with replies, reactions, edits and deletes written as the
//! messaging code writes them. The JSON parses back to exactly the messages `history` shows;
//! the HTML holds every message once, escaped; failures leave no file behind.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tandem_store::{
    Account, ChatId, Contact, Member, MessageKind, MessageStatus, NewChat, NewMessage, Sender,
};
use tempfile::TempDir;

use super::*;
use crate::{ImportOptions, KeychainUse};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../import/tests/fixtures");

/// A primary device named Alice, in a fresh temporary home.
fn phone() -> (TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(&dir.path().join("phone"), KeychainUse::Off).unwrap();
    engine.init_primary("Alice", None).unwrap();
    (dir, engine)
}

/// Alice's phone with the two WhatsApp fixture chats imported (Rui is "me" in Ana's chat).
fn phone_with_imports() -> (TempDir, Engine) {
    let (dir, engine) = phone();
    let opts = ImportOptions::new(Some("Europe/Lisbon"), Some("Rui".into()), None).unwrap();
    for file in [
        "WhatsApp Chat with Ana Lima.txt",
        "WhatsApp Chat - Garden Club.txt",
    ] {
        engine
            .import_file(&Path::new(FIXTURES).join(file), &opts)
            .unwrap();
    }
    (dir, engine)
}

/// Exports and records every progress report.
fn export(
    engine: &Engine,
    format: ExportFormat,
    chat: Option<&str>,
    path: &Path,
) -> (Result<ExportReport>, Vec<(u64, u64)>) {
    let mut calls = Vec::new();
    let result = engine.export(format, chat, path, &mut |done, total| {
        calls.push((done, total));
    });
    (result, calls)
}

fn tmp_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every message of a chat as `history` shows it, oldest first (walking pages of 1000 back).
fn all_history(engine: &Engine, chat: &str) -> Vec<MessageView> {
    let mut all = engine.history(chat, 1000, None).unwrap();
    while let Some(oldest) = all.first().map(|m| m.id.clone()) {
        let older = engine.history(chat, 1000, Some(&oldest)).unwrap();
        if older.is_empty() {
            break;
        }
        all.splice(0..0, older);
    }
    all
}

fn id(n: u128, ts: i64) -> MessageId {
    MessageId(Uuid::from_u128((u128::try_from(ts).unwrap() << 80) | n))
}

#[test]
fn a_chat_exported_as_json_parses_back_to_the_messages_history_shows_in_order() {
    let (dir, engine) = phone_with_imports();
    let path = dir.path().join("ana.json");

    let (report, _) = export(&engine, ExportFormat::Json, Some("Ana Lima"), &path);
    let report = report.unwrap();

    let doc = read_json(&path);
    assert_eq!(doc["tandem_export"], 1);
    let status = engine.status().unwrap();
    assert_eq!(doc["account"]["id"], status.account.unwrap().as_str());
    assert_eq!(doc["account"]["name"], "Alice");
    let exported_at = doc["exported_at"].as_i64().unwrap();
    assert!((now_ms() - exported_at).abs() < 60_000, "{exported_at}");
    let chats = doc["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["name"], "Ana Lima");
    assert_eq!(chats[0]["kind"], "direct");
    let expected = serde_json::to_value(all_history(&engine, "Ana Lima")).unwrap();
    assert_eq!(chats[0]["messages"], expected);
    assert!(
        expected.as_array().unwrap().len() >= 10,
        "the fixture is all there"
    );
    assert_eq!(
        report,
        ExportReport {
            path: path.clone(),
            chats: 1,
            messages: expected.as_array().unwrap().len() as u64,
            bytes: std::fs::metadata(&path).unwrap().len(),
        }
    );
    assert!(!tmp_of(&path).exists(), "the tmp file was renamed");
}

#[test]
fn everything_exported_as_json_holds_every_chat_whole_across_pages_with_progress() {
    // A desktop without an account: the document says so with a null account.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(&dir.path().join("home"), KeychainUse::Off).unwrap();
    engine.generate(4, 5_000, 3).unwrap();
    let path = dir.path().join("all.json");

    let (report, calls) = export(&engine, ExportFormat::Json, None, &path);
    let report = report.unwrap();

    assert_eq!((report.chats, report.messages), (4, 5_000));
    let doc = read_json(&path);
    assert_eq!(doc["account"], Value::Null);
    let chats = doc["chats"].as_array().unwrap();
    let listed: Vec<String> = engine.chats().unwrap().into_iter().map(|c| c.id).collect();
    let exported: Vec<&str> = chats.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(exported, listed, "every chat, in chat-list order");
    assert!(
        chats
            .iter()
            .any(|c| c["messages"].as_array().unwrap().len() > PAGE),
        "a chat spans several pages"
    );
    for chat in chats {
        let id = chat["id"].as_str().unwrap();
        let expected = serde_json::to_value(all_history(&engine, id)).unwrap();
        assert_eq!(chat["messages"], expected, "chat {id}");
    }

    // Progress: never more often than every 1000 messages, always forward, ends complete.
    assert_eq!(calls.last(), Some(&(5_000, 5_000)), "{calls:?}");
    assert!(calls.iter().all(|&(_, total)| total == 5_000), "{calls:?}");
    let mut last = 0;
    for &(done, _) in &calls[..calls.len() - 1] {
        assert!(done >= last + 1000, "{calls:?}");
        last = done;
    }
    assert!(calls.len() >= 4, "reported along the way: {calls:?}");
}

/// A direct chat with Bea as the messaging code leaves it: a message with markup, Alice's
/// reply, reactions from both, an edited and a deleted message, a photo with a caption and a
/// system line. Returns the chat's name.
fn conversation_with_bea(engine: &Engine) -> &'static str {
    let me = engine.identity().unwrap();
    let alice = me.account.as_bytes().to_vec();
    let bea = vec![7u8; 16];
    let chat = ChatId(Uuid::from_u128(0xbea));
    let t0 = 1_717_000_000_000; // 2024-05-29, mid-morning in Europe
    let day = 86_400_000;
    let from_bea = |n, ts, text: &str| {
        NewMessage::text(
            id(n, ts),
            chat,
            Sender::device(bea.clone(), 0, "Bea"),
            ts,
            text,
        )
    };
    let from_alice = |n, ts, text: &str| NewMessage {
        from_me: true,
        status: MessageStatus::Read,
        ..NewMessage::text(
            id(n, ts),
            chat,
            Sender::device(alice.clone(), 0, "Alice"),
            ts,
            text,
        )
    };
    let messages = vec![
        NewMessage {
            kind: MessageKind::System,
            sender: Sender::default(),
            ..from_bea(1, t0, "Messages are end-to-end encrypted")
        },
        from_bea(2, t0 + 60_000, "<script>alert('x')</script> & \"co\""),
        NewMessage {
            reply_to: Some(id(2, t0 + 60_000)),
            ..from_alice(3, t0 + 120_000, "Nice try, Bea")
        },
        from_alice(4, t0 + day, "See you at 5"),
        from_alice(5, t0 + day + 60_000, "Oops, wrong chat"),
        NewMessage {
            kind: MessageKind::Media,
            media_name: Some("IMG-0001.jpg".into()),
            ..from_bea(6, t0 + day + 120_000, "Sunset at the pier")
        },
        NewMessage {
            status: MessageStatus::Sending,
            ..from_alice(7, t0 + day + 180_000, "Still queued")
        },
    ];
    engine
        .store()
        .write(|w| -> Result<()> {
            w.upsert_chat(&NewChat {
                id: chat,
                kind: ChatKind::Direct,
                name: "Bea".into(),
                peer_account: Some(bea.clone()),
                created_at: t0,
                members: vec![
                    Member {
                        account: Some(alice.clone()),
                        name: "Alice".into(),
                    },
                    Member {
                        account: Some(bea.clone()),
                        name: "Bea".into(),
                    },
                ],
            })?;
            w.upsert_account(&Account {
                id: bea.clone(),
                public_key: vec![9; 32],
                display_name: "Beatriz".into(),
            })?;
            w.upsert_contact(&Contact {
                account: bea.clone(),
                name: "Bea".into(),
                added_at: t0,
            })?;
            w.insert_messages(&messages)?;
            w.set_reaction(id(2, t0 + 60_000), &alice, "👍", t0 + 130_000)?;
            w.set_reaction(id(2, t0 + 60_000), &bea, "👍", t0 + 140_000)?;
            w.set_reaction(id(3, t0 + 120_000), &bea, "😂", t0 + 150_000)?;
            w.edit_message(id(4, t0 + day), "See you at 6", t0 + day + 10_000)?;
            w.delete_for_everyone(id(5, t0 + day + 60_000))?;
            Ok(())
        })
        .unwrap();
    "Bea"
}

#[test]
fn replies_reactions_edits_and_deletes_are_in_the_json() {
    let (dir, engine) = phone();
    let chat = conversation_with_bea(&engine);
    let path = dir.path().join("bea.json");

    export(&engine, ExportFormat::Json, Some(chat), &path)
        .0
        .unwrap();

    let doc = read_json(&path);
    let messages = doc["chats"][0]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 7);
    assert_eq!(messages[0]["kind"], "system");
    assert_eq!(messages[1]["text"], "<script>alert('x')</script> & \"co\"");
    assert_eq!(
        messages[1]["reactions"],
        serde_json::json!([
            {"emoji": "👍", "from": "Alice", "from_me": true},
            {"emoji": "👍", "from": "Bea", "from_me": false},
        ])
    );
    assert_eq!(messages[2]["reply_to"], messages[1]["id"]);
    assert_eq!(messages[2]["status"], "read");
    assert_eq!(messages[3]["text"], "See you at 6");
    assert_eq!(messages[3]["edited"], true);
    assert_eq!(messages[4]["deleted"], true);
    assert_eq!(messages[4]["kind"], "deleted");
    assert_eq!(messages[5]["kind"], "media");
    assert_eq!(messages[6]["status"], "pending");
    let expected = serde_json::to_value(all_history(&engine, chat)).unwrap();
    assert_eq!(doc["chats"][0]["messages"], expected);
}

#[test]
fn the_html_reads_like_the_chat_and_escapes_what_people_wrote() {
    let (dir, engine) = phone();
    let chat = conversation_with_bea(&engine);
    let path = dir.path().join("bea.html");

    let report = export(&engine, ExportFormat::Html, Some(chat), &path)
        .0
        .unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert_eq!(report.bytes, html.len() as u64);
    assert_eq!(report.messages, 7);

    // Self-contained: inline style, no scripts, nothing fetched; dark mode follows the system.
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<style>") && html.contains("prefers-color-scheme:dark"));
    let lower = html.to_lowercase();
    for banned in [
        "<script", "src=", "<link", "url(", "@import", "http://", "https://",
    ] {
        assert!(!lower.contains(banned), "{banned} in the page");
    }

    // What Bea wrote is text, not markup.
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;"));

    // Alice's messages on the right, Bea's on the left with her name once per run.
    let view = |n: u128, ts: i64| format!("id=\"m-{}\"", id(n, ts).0.hyphenated());
    let t0 = 1_717_000_000_000;
    let day = 86_400_000;
    assert!(html.contains(&format!("<div class=\"msg in\" {}>", view(2, t0 + 60_000))));
    assert!(html.contains(&format!(
        "<div class=\"msg out\" {}>",
        view(3, t0 + 120_000)
    )));
    assert!(html.contains("<div class=\"who\">Bea</div>"));
    // The system line is centred text of its own.
    assert!(html.contains(&format!(
        "<div class=\"sys\" {}>Messages are end-to-end encrypted",
        view(1, t0)
    )));
    // The reply quotes Bea's message and links to it.
    assert!(html.contains(&format!(
        "<a class=\"quote\" href=\"#m-{}\"><b>Bea</b>&lt;script&gt;",
        id(2, t0 + 60_000).0.hyphenated()
    )));
    // Reactions grouped by emoji, who reacted in the tooltip.
    assert!(html.contains("<span title=\"You, Bea\">👍 2</span>"));
    assert!(html.contains("<span title=\"Bea\">😂</span>"));
    // Marks: edited, deleted, media with its caption, ticks.
    assert!(html.contains("See you at 6") && !html.contains("See you at 5"));
    assert!(html.contains("<span class=\"edited\">edited</span>"));
    assert!(html.contains("This message was deleted") && !html.contains("wrong chat"));
    assert!(html.contains("📎 IMG-0001.jpg</div><div class=\"text\">Sunset at the pier"));
    assert!(html.contains("title=\"read\">✓✓</span>"));
    assert!(html.contains("title=\"pending\">○</span>"));

    // A separator for each of the two days, in this system's zone.
    let tz = TimeZone::system();
    let days: BTreeSet<Date> = [t0, t0 + 120_000, t0 + day, t0 + day + 180_000]
        .into_iter()
        .map(|ts| {
            tz.to_datetime(Timestamp::from_millisecond(ts).unwrap())
                .date()
        })
        .collect();
    assert_eq!(html.matches("<div class=\"day\">").count(), days.len());
    for d in days {
        let label = d.strftime("%A, %-d %B %Y").to_string();
        assert!(html.contains(&label), "{label}");
    }
}

#[test]
fn an_html_export_of_everything_holds_every_message_exactly_once() {
    let (dir, engine) = phone_with_imports();
    engine.generate(3, 2_500, 5).unwrap();
    let path = dir.path().join("all.html");

    let (report, calls) = export(&engine, ExportFormat::Html, None, &path);
    let report = report.unwrap();
    let html = std::fs::read_to_string(&path).unwrap();

    let chats = engine.chats().unwrap();
    assert_eq!(report.chats, 5);
    let total: u64 = chats.iter().map(|c| c.messages).sum();
    assert_eq!(report.messages, total);
    assert_eq!(calls.last(), Some(&(total, total)));
    // A table of contents linking to each chat's section.
    for c in &chats {
        assert!(
            html.contains(&format!("<li><a href=\"#c-{}\">", c.id)),
            "{}",
            c.name
        );
        assert_eq!(html.matches(&format!("id=\"c-{}\"", c.id)).count(), 1);
    }
    // Every message once, in chat-list order then oldest first, its text in its own bubble.
    let marker = " id=\"m-";
    let anchors: Vec<(usize, &str)> = html
        .match_indices(marker)
        .map(|(at, _)| {
            let id_start = at + marker.len();
            let id_end = id_start + html[id_start..].find('"').unwrap();
            (at, &html[id_start..id_end])
        })
        .collect();
    let expected: Vec<MessageView> = chats
        .iter()
        .flat_map(|c| all_history(&engine, &c.id))
        .collect();
    let ids: Vec<&str> = anchors.iter().map(|(_, id)| *id).collect();
    let expected_ids: Vec<&str> = expected.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, expected_ids);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len() as u64, total);
    for (i, m) in expected.iter().enumerate() {
        let from = anchors[i].0;
        let to = anchors.get(i + 1).map_or(html.len(), |a| a.0);
        let bubble = &html[from..to];
        let shown = match m.kind.as_str() {
            "deleted" => "This message was deleted".to_owned(),
            _ => {
                let mut escaped = Vec::new();
                escape_html(&mut escaped, &m.text).unwrap();
                String::from_utf8(escaped).unwrap()
            }
        };
        assert!(bubble.contains(&shown), "{m:?} in {bubble}");
    }
    assert_eq!(
        html.matches("<div class=\"msg ").count() + html.matches("<div class=\"sys\"").count(),
        expected.len()
    );
}

#[test]
fn a_bad_chat_name_is_a_clear_error_and_writes_nothing() {
    let (dir, engine) = phone_with_imports();
    let path = dir.path().join("nobody.json");
    let mut called = false;

    let err = engine
        .export(ExportFormat::Json, Some("Nobody"), &path, &mut |_, _| {
            called = true;
        })
        .unwrap_err();

    assert_eq!(err.kind(), "not_found");
    assert!(err.to_string().contains("Nobody"), "{err}");
    assert!(!path.exists() && !tmp_of(&path).exists());
    assert!(!called, "no progress for an export that never started");
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the home: {entries:?}");
}

#[test]
fn an_older_file_is_replaced_only_by_a_complete_export() {
    let (dir, engine) = phone_with_imports();
    let path = dir.path().join("garden.html");
    std::fs::write(&path, "an older export").unwrap();

    // Refused before anything is written: the older file stays as it was.
    let err = export(&engine, ExportFormat::Html, Some("Nobody"), &path)
        .0
        .unwrap_err();
    assert_eq!(err.kind(), "not_found");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "an older export");

    // A complete export replaces it.
    export(&engine, ExportFormat::Html, Some("Garden Club"), &path)
        .0
        .unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.contains("<h1>Garden Club</h1>") && html.contains("Good night"));
    assert!(!tmp_of(&path).exists());
}

#[cfg(target_os = "linux")]
#[test]
fn a_disk_that_fills_up_mid_export_is_an_error_naming_the_file() {
    let (dir, engine) = phone();
    engine.generate(2, 3_000, 9).unwrap();
    let chats = engine.store().chats().unwrap();
    let head = Head {
        exported_at: 0,
        account: None,
        chats: &chats,
        total: 3_000,
    };
    // Every write fails as on a full disk once the buffer is flushed.
    let full = File::options().write(true).open("/dev/full").unwrap();
    let sink = JsonSink {
        out: BufWriter::with_capacity(BUFFER, full),
        first: true,
    };

    let failure = engine
        .write_export(sink, &head, &mut |_, _| {})
        .unwrap_err();

    let err = failure.at(&dir.path().join("out.json.tmp"));
    let text = err.to_string();
    assert!(text.contains("out.json.tmp"), "names the file: {text}");
    assert!(text.to_lowercase().contains("no space"), "{text}");
}

#[cfg(unix)]
#[test]
fn the_export_is_private_and_a_link_planted_as_its_tmp_file_is_not_followed() {
    use std::os::unix::fs::PermissionsExt;

    let (dir, engine) = phone_with_imports();
    let path = dir.path().join("ana.json");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, tmp_of(&path)).unwrap();

    export(&engine, ExportFormat::Json, Some("Ana Lima"), &path)
        .0
        .unwrap();

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.is_file(), "a file of its own, not the planted link");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner only");
    assert_eq!(read_json(&path)["chats"][0]["name"], "Ana Lima");
    assert!(std::fs::symlink_metadata(tmp_of(&path)).is_err());
}

#[test]
fn a_tmp_file_left_by_a_crashed_export_is_replaced() {
    let (dir, engine) = phone_with_imports();
    let path = dir.path().join("garden.json");
    std::fs::write(tmp_of(&path), "half of an older export that cr").unwrap();

    export(&engine, ExportFormat::Json, Some("Garden Club"), &path)
        .0
        .unwrap();

    assert_eq!(read_json(&path)["chats"][0]["name"], "Garden Club");
    assert!(!tmp_of(&path).exists());
}

#[test]
fn a_folder_or_a_missing_folder_is_refused_with_its_name() {
    let (dir, engine) = phone_with_imports();

    let err = export(&engine, ExportFormat::Json, None, dir.path())
        .0
        .unwrap_err();
    assert_eq!(err.kind(), "bad_input");
    assert!(err.to_string().contains("name of a file"), "{err}");

    let path = dir.path().join("no/such/folder/out.json");
    let err = export(&engine, ExportFormat::Json, None, &path)
        .0
        .unwrap_err();
    assert!(err.to_string().contains("out.json.tmp"), "{err}");
    assert!(!path.exists());
}

#[test]
fn formats_are_read_and_printed_by_name() {
    assert_eq!("json".parse::<ExportFormat>().unwrap(), ExportFormat::Json);
    assert_eq!(
        " HTML ".parse::<ExportFormat>().unwrap(),
        ExportFormat::Html
    );
    for format in [ExportFormat::Json, ExportFormat::Html] {
        assert_eq!(format.to_string().parse::<ExportFormat>().unwrap(), format);
    }
    let err = "pdf".parse::<ExportFormat>().unwrap_err();
    assert_eq!(err.kind(), "bad_input");
    assert!(err.to_string().contains("json or html"), "{err}");
}

/// Undoes [`escape_html`] (only the five entities it writes).
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[test]
fn escaping_leaves_no_markup_and_loses_nothing() {
    let samples = [
        "",
        "plain",
        "<script>alert(1)</script>",
        "a & b && c",
        "\"quoted\" and 'single'",
        "&amp; already escaped",
        "<<>>&&\"\"''",
        "émoji 👍🏽 <b>bold</b>\nnew line\ttab",
        "</div></section><h1>injected",
    ];
    // Also every ASCII character, alone and around the special ones.
    let ascii: Vec<String> = (0u8..128)
        .map(|b| format!("{c}<{c}&{c}", c = char::from(b)))
        .collect();
    for s in samples
        .iter()
        .copied()
        .chain(ascii.iter().map(String::as_str))
    {
        let mut out = Vec::new();
        escape_html(&mut out, s).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            !out.contains(['<', '>', '"', '\'']),
            "{s:?} escaped as {out:?}"
        );
        let bare_ampersand = out.match_indices('&').any(|(i, _)| {
            !["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                .iter()
                .any(|e| out[i..].starts_with(e))
        });
        assert!(!bare_ampersand, "{s:?} escaped as {out:?}");
        assert_eq!(unescape(&out), s);
    }
}

#[test]
fn the_tmp_file_is_removed_when_an_export_is_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let (tmp, file) = TmpFile::create(&path).unwrap();
    drop(file);
    assert!(tmp_of(&path).exists());
    drop(tmp);
    assert!(!tmp_of(&path).exists() && !path.exists());
}

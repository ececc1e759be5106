//! Stories over real SQLCipher files in temporary directories.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tempfile::TempDir;

use crate::*;

/// A temporary directory with a keyed store in it.
struct Fixture {
    dir: TempDir,
    key: [u8; 32],
    store: Store,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = [0x42; 32];
        let store = Store::open(&dir.path().join("t.db"), &StoreKey::from_bytes(key)).unwrap();
        Self { dir, key, store }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("t.db")
    }

    fn reopen(self) -> Self {
        let Self { dir, key, store } = self;
        drop(store);
        let store = Store::open(&dir.path().join("t.db"), &StoreKey::from_bytes(key)).unwrap();
        Self { dir, key, store }
    }
}

fn cid(n: u8) -> ChatId {
    ChatId::from([n; 16])
}

fn mid(n: u64) -> MessageId {
    let mut b = [0u8; 16];
    b[8..].copy_from_slice(&n.to_be_bytes());
    MessageId::from(b)
}

fn group(id: ChatId, name: &str) -> NewChat {
    NewChat {
        id,
        kind: ChatKind::Group,
        name: name.to_owned(),
        peer_account: None,
        created_at: 1_000,
        members: vec![
            Member {
                account: None,
                name: "Alice".into(),
            },
            Member {
                account: Some(vec![1, 2]),
                name: "Bob".into(),
            },
        ],
    }
}

fn text(id: u64, chat: ChatId, ts: i64, body: &str) -> NewMessage {
    NewMessage::text(mid(id), chat, Sender::named("Alice"), ts, body)
}

fn with_chat(f: &Fixture, id: ChatId, name: &str) {
    f.store.write(|w| w.upsert_chat(&group(id, name))).unwrap();
}

fn insert(f: &Fixture, msgs: &[NewMessage]) -> usize {
    f.store.write(|w| w.insert_messages(msgs)).unwrap()
}

fn file_contains(path: &Path, needle: &[u8]) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_store_keeps_its_data_across_a_reopen_with_the_same_key() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Family");
    insert(
        &f,
        &[text(1, cid(1), 10, "hello"), text(2, cid(1), 20, "world")],
    );

    let f = f.reopen();
    let page = f.store.page(cid(1), Cursor::Newest, 10).unwrap();
    assert_eq!(
        page.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["hello", "world"]
    );
    assert_eq!(f.store.members(cid(1)).unwrap().len(), 2);
    assert!(f.store.is_encrypted());
}

#[test]
fn a_wrong_key_is_a_typed_error_not_a_garbage_read() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Family");
    let path = f.path();
    drop(f.store);
    let err = Store::open(&path, &StoreKey::from_bytes([0x43; 32])).unwrap_err();
    assert!(matches!(err, OpenError::WrongKey { .. }), "{err:?}");
    assert!(err.to_string().contains("wrong key"), "{err}");
}

#[test]
fn opening_without_the_key_or_a_foreign_file_says_what_it_is() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Family");
    let encrypted = f.path();
    let err = Store::open_plain(&encrypted).unwrap_err();
    assert!(matches!(err, OpenError::NotADatabase { .. }), "{err:?}");

    let plain = f.dir.path().join("plain.db");
    drop(Store::open_plain(&plain).unwrap());
    let err = Store::open(&plain, &StoreKey::from_bytes([1; 32])).unwrap_err();
    assert!(
        matches!(&err, OpenError::NotADatabase { reason, .. } if reason.contains("unencrypted")),
        "{err:?}"
    );

    let text_file = f.dir.path().join("notes.txt");
    std::fs::write(&text_file, "shopping list: milk, eggs\n").unwrap();
    let err = Store::open(&text_file, &StoreKey::from_bytes([1; 32])).unwrap_err();
    assert!(matches!(err, OpenError::NotADatabase { .. }), "{err:?}");
}

#[test]
fn no_file_of_the_store_holds_a_message_in_plaintext() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Secret plans");
    let needle = "the treasure is buried under the old oak";
    insert(&f, &[text(1, cid(1), 10, needle)]);
    f.store
        .write_durable(|w| w.put_session(b"peer", 1, b"ratchet-state-plaintext"))
        .unwrap();

    let files: Vec<PathBuf> = ["t.db", "t.db-wal", "t.db-shm"]
        .iter()
        .map(|n| f.dir.path().join(n))
        .collect();
    assert!(files[1].exists(), "the write-ahead log is in use");
    for file in &files {
        for n in [
            needle.as_bytes(),
            b"treasure",
            b"Secret plans",
            b"ratchet-state",
            b"CREATE TABLE",
        ] {
            assert!(
                !file_contains(file, n),
                "{} holds {:?}",
                file.display(),
                String::from_utf8_lossy(n)
            );
        }
    }
    // Still none after the log is copied into the main file.
    f.store.checkpoint().unwrap();
    assert!(!file_contains(&files[0], b"treasure"));

    // The same bytes are plainly visible in an unencrypted store: the grep itself works.
    let plain = Store::open_plain(&f.dir.path().join("plain.db")).unwrap();
    plain.write(|w| w.upsert_chat(&group(cid(1), "x"))).unwrap();
    plain
        .write(|w| w.insert_messages(&[text(1, cid(1), 10, needle)]))
        .unwrap();
    plain.checkpoint().unwrap();
    assert!(file_contains(&f.dir.path().join("plain.db"), b"treasure"));
}

#[cfg(unix)]
#[test]
fn the_database_and_its_log_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    for name in ["t.db", "t.db-wal", "t.db-shm"] {
        let mode = std::fs::metadata(f.dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
}

#[test]
fn migrations_build_the_schema_from_an_empty_file() {
    let f = Fixture::new();
    let conn = crate::store::tests_support::reader(&f.store);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, i64::try_from(schema_version()).unwrap());
    let mut stmt = conn
        .prepare(
            "SELECT name, strict FROM pragma_table_list WHERE schema = 'main' AND type = 'table'",
        )
        .unwrap();
    let tables: Vec<(String, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for name in [
        "identity",
        "accounts",
        "devices",
        "device_lists",
        "contacts",
        "chats",
        "chat_members",
        "messages",
        "outbox",
        "sync_state",
        "sessions",
        "seen_envelopes",
    ] {
        let found = tables.iter().find(|(n, _)| n == name);
        assert_eq!(
            found.map(|(_, strict)| *strict),
            Some(true),
            "table {name} exists and is STRICT"
        );
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    let automerge: i64 = conn
        .query_row(
            "SELECT v FROM messages_fts_config WHERE k = 'automerge'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(automerge, 8);
}

#[test]
fn a_store_from_a_newer_build_is_refused() {
    let f = Fixture::new();
    f.store
        .write(|w| {
            w.conn
                .execute_batch("PRAGMA user_version = 99")
                .map_err(|e| Error::Sqlite {
                    context: "test",
                    source: e,
                })
        })
        .unwrap();
    let path = f.path();
    drop(f.store);
    let err = Store::open(&path, &StoreKey::from_bytes(f.key)).unwrap_err();
    assert!(
        matches!(err, OpenError::NewerSchema { found: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn inserting_an_id_twice_is_a_no_op_and_not_counted() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Family");
    assert_eq!(
        insert(&f, &[text(1, cid(1), 10, "a"), text(2, cid(1), 20, "b")]),
        2
    );
    // The same ids again, one with a different body: nothing changes.
    assert_eq!(
        insert(
            &f,
            &[
                text(1, cid(1), 10, "changed"),
                text(2, cid(1), 20, "b"),
                text(3, cid(1), 30, "c")
            ]
        ),
        1
    );
    // Twice within one batch.
    assert_eq!(
        insert(&f, &[text(4, cid(1), 40, "d"), text(4, cid(1), 40, "d")]),
        1
    );

    assert_eq!(
        f.store.counts().unwrap(),
        Counts {
            chats: 1,
            messages: 4
        }
    );
    let chat = f.store.chat(cid(1)).unwrap().unwrap();
    assert_eq!(chat.message_count, 4);
    assert_eq!(f.store.message(mid(1)).unwrap().unwrap().text, "a");
    assert_eq!(f.store.search("changed", None, 10).unwrap().len(), 0);
}

#[test]
fn a_message_for_an_unknown_chat_is_refused_and_nothing_of_the_batch_stays() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Family");
    let err = f
        .store
        .write(|w| w.insert_messages(&[text(1, cid(1), 10, "ok"), text(2, cid(9), 20, "orphan")]))
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownChat { chat, .. } if chat == cid(9)),
        "{err:?}"
    );
    assert_eq!(f.store.counts().unwrap().messages, 0);
    assert!(f.store.message(mid(1)).unwrap().is_none());
}

#[test]
fn paging_walks_a_chat_from_newest_to_oldest_without_gaps_or_repeats() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Family");
    with_chat(&f, cid(2), "Other");
    // 257 messages, many sharing a timestamp, inserted out of order, plus noise in another chat.
    let mut msgs: Vec<NewMessage> = (0..257u64)
        .map(|i| text(1000 - i, cid(1), i64::try_from(i / 3).unwrap(), "x"))
        .collect();
    msgs.reverse();
    msgs.extend((0..50u64).map(|i| text(5000 + i, cid(2), 40, "noise")));
    insert(&f, &msgs);

    let mut seen: Vec<Message> = Vec::new();
    let mut cursor = Cursor::Newest;
    loop {
        let page = f.store.page(cid(1), cursor, 20).unwrap();
        let Some(first) = page.first() else { break };
        cursor = first.before();
        assert!(
            page.windows(2)
                .all(|w| (w[0].ts, w[0].id) < (w[1].ts, w[1].id)),
            "a page is oldest first"
        );
        let mut page = page;
        page.reverse();
        seen.extend(page);
    }
    assert_eq!(seen.len(), 257);
    assert!(
        seen.windows(2)
            .all(|w| (w[0].ts, w[0].id) > (w[1].ts, w[1].id)),
        "strictly newest to oldest"
    );
    assert!(seen.iter().all(|m| m.chat == cid(1)));

    // And forward again from the oldest.
    let oldest = seen.last().unwrap();
    let after = f.store.page(cid(1), oldest.after(), 5).unwrap();
    let expected: Vec<MessageId> = seen.iter().rev().skip(1).take(5).map(|m| m.id).collect();
    assert_eq!(after.iter().map(|m| m.id).collect::<Vec<_>>(), expected);
}

#[test]
fn messages_in_the_same_millisecond_all_get_a_row_and_keep_their_order() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Busy");
    // 3000 ids in one millisecond: 20 bits of hash collide many times (birthday bound ~1200).
    let msgs: Vec<NewMessage> = (0..3000u64)
        .map(|i| text(i, cid(1), 1_700_000_000_000, "same ms"))
        .collect();
    assert_eq!(insert(&f, &msgs), 3000);
    assert_eq!(
        insert(&f, &msgs),
        0,
        "re-inserting probes into the same ids and adds nothing"
    );
    let page = f.store.page(cid(1), Cursor::Newest, 5000).unwrap();
    assert_eq!(page.len(), 3000);
    assert!(page.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(f.store.search("same", None, 5000).unwrap().len(), 3000);
}

#[test]
fn search_folds_accents_and_case_and_matches_the_start_of_the_last_word() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Café crew");
    insert(
        &f,
        &[
            text(1, cid(1), 10, "Meet at the Café Zoë tonight"),
            text(2, cid(1), 20, "Привет, как дела?"),
            text(3, cid(1), 30, "naïve résumé"),
            text(4, cid(1), 40, "nothing to see"),
        ],
    );
    let ids = |q: &str| {
        f.store
            .search(q, None, 10)
            .unwrap()
            .into_iter()
            .map(|h| h.message.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("cafe"), [mid(1)]);
    assert_eq!(ids("CAFÉ zoe"), [mid(1)]);
    assert_eq!(ids("caf"), [mid(1)], "the last word is a prefix");
    assert_eq!(ids("zoe caf"), [mid(1)]);
    assert_eq!(
        ids("cafe nothing"),
        Vec::<MessageId>::new(),
        "all words must match"
    );
    assert_eq!(ids("привет"), [mid(2)]);
    assert_eq!(ids("naive resume"), [mid(3)]);
    let hit = &f.store.search("cafe", None, 10).unwrap()[0];
    assert_eq!(hit.chat_name, "Café crew");
}

#[test]
fn search_returns_the_newest_hits_first_and_can_stay_in_one_chat() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    with_chat(&f, cid(2), "B");
    let mut msgs = Vec::new();
    for i in 0..40u64 {
        let chat = if i % 2 == 0 { cid(1) } else { cid(2) };
        // Insert order unrelated to time order.
        msgs.push(text(
            i,
            chat,
            i64::try_from((i * 7919) % 40).unwrap() * 1000,
            "lunch plans",
        ));
    }
    insert(&f, &msgs);
    let hits = f.store.search("lunch", None, 15).unwrap();
    assert_eq!(hits.len(), 15);
    assert!(
        hits.windows(2).all(|w| w[0].message.ts > w[1].message.ts),
        "newest first"
    );
    assert_eq!(hits[0].message.ts, 39_000);

    // The chat tag that makes in-chat search fast is not searchable text.
    let tag = format!("c{}", cid(1));
    assert!(f.store.search(&tag, None, 10).unwrap().is_empty());
    assert!(f.store.search(&tag, Some(cid(1)), 10).unwrap().is_empty());

    let in_a = f.store.search("lunch", Some(cid(1)), 100).unwrap();
    assert_eq!(in_a.len(), 20);
    assert!(
        in_a.iter()
            .all(|h| h.message.chat == cid(1) && h.chat_name == "A")
    );
    assert!(in_a.windows(2).all(|w| w[0].message.ts > w[1].message.ts));
}

#[test]
fn no_search_or_page_plan_sorts_all_matches() {
    let f = Fixture::new();
    for in_chat in [false, true] {
        let plan = f.store.explain_search(in_chat).unwrap().join("\n");
        assert!(
            !plan.contains("TEMP B-TREE"),
            "search plan (in chat: {in_chat}) sorts:\n{plan}"
        );
        assert!(plan.contains("VIRTUAL TABLE"), "{plan}");
    }
    for before in [false, true] {
        let plan = f.store.explain_page(before).unwrap().join("\n");
        assert!(!plan.contains("TEMP B-TREE"), "page plan sorts:\n{plan}");
        assert!(
            plan.contains("messages_chat_ts"),
            "page plan uses the (chat, ts, id) index:\n{plan}"
        );
    }
}

#[test]
fn search_stays_in_step_with_edits_and_deletes() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    insert(
        &f,
        &[
            text(1, cid(1), 10, "see you at the station"),
            text(2, cid(1), 20, "station is closed"),
        ],
    );
    assert_eq!(f.store.search("station", None, 10).unwrap().len(), 2);

    assert!(
        f.store
            .write(|w| w.edit_message(mid(1), "see you at the harbour", 100))
            .unwrap()
    );
    assert!(
        !f.store
            .write(|w| w.edit_message(mid(1), "stale edit", 50))
            .unwrap(),
        "an older edit is ignored"
    );
    let m = f.store.message(mid(1)).unwrap().unwrap();
    assert_eq!(
        (m.text.as_str(), m.edited_at),
        ("see you at the harbour", Some(100))
    );
    assert_eq!(
        f.store
            .search("station", None, 10)
            .unwrap()
            .iter()
            .map(|h| h.message.id)
            .collect::<Vec<_>>(),
        [mid(2)]
    );
    assert_eq!(f.store.search("harbour", None, 10).unwrap().len(), 1);
    assert_eq!(f.store.search("stale", None, 10).unwrap().len(), 0);

    // Delete for everyone: the row stays, its text leaves the index.
    assert!(f.store.write(|w| w.delete_for_everyone(mid(2))).unwrap());
    let m = f.store.message(mid(2)).unwrap().unwrap();
    assert!(m.deleted && m.text.is_empty());
    assert_eq!(f.store.search("station", None, 10).unwrap().len(), 0);
    assert!(
        !f.store
            .write(|w| w.edit_message(mid(2), "resurrected station", 200))
            .unwrap(),
        "deleted stays deleted"
    );

    // Delete for me: the row goes, with its index entry and its count.
    assert!(f.store.write(|w| w.remove_message(mid(1))).unwrap());
    assert_eq!(f.store.search("harbour", None, 10).unwrap().len(), 0);
    assert_eq!(f.store.chat(cid(1)).unwrap().unwrap().message_count, 1);
    integrity_check(&f.store);
}

fn integrity_check(store: &Store) {
    let conn = crate::store::tests_support::reader(store);
    // The index's own structure (texts that are empty are never indexed, so the check against
    // the content table, rank 1, does not apply).
    conn.execute(
        "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')",
        [],
    )
    .unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn the_chat_list_puts_pinned_chats_first_then_the_most_recent() {
    let f = Fixture::new();
    for (n, name) in [(1, "Old"), (2, "New"), (3, "Pinned"), (4, "Empty")] {
        with_chat(&f, cid(n), name);
    }
    insert(
        &f,
        &[
            text(1, cid(1), 100, "old news"),
            text(2, cid(2), 300, "fresh"),
            text(3, cid(3), 50, "a long time ago ".repeat(20).trim()),
        ],
    );
    f.store
        .write(|w| {
            w.set_pinned(cid(3), true)?;
            w.set_muted(cid(1), true)?;
            w.add_unread(cid(2), 2)?;
            w.add_unread(cid(2), 1)
        })
        .unwrap();
    let chats = f.store.chats().unwrap();
    assert_eq!(
        chats.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["Pinned", "New", "Old", "Empty"]
    );
    let new = &chats[1];
    assert_eq!((new.unread, new.last_ts, new.message_count), (3, 300, 1));
    assert_eq!(
        new.last_message.as_ref().map(|p| p.text.as_str()),
        Some("fresh")
    );
    assert!(chats[2].muted);
    assert!(chats[0].pinned);
    assert_eq!(
        chats[0].last_message.as_ref().unwrap().text.chars().count(),
        PREVIEW_CHARS
    );
    assert!(chats[3].last_message.is_none());

    f.store.write(|w| w.set_unread(cid(2), 0)).unwrap();
    assert_eq!(f.store.chat(cid(2)).unwrap().unwrap().unread, 0);
}

#[test]
fn the_last_message_follows_inserts_of_older_history_and_removals() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    insert(&f, &[text(2, cid(1), 200, "newest")]);
    insert(&f, &[text(1, cid(1), 100, "older history")]);
    let chat = f.store.chat(cid(1)).unwrap().unwrap();
    assert_eq!((chat.last_ts, chat.last_message.unwrap().id), (200, mid(2)));
    f.store.write(|w| w.remove_message(mid(2))).unwrap();
    let chat = f.store.chat(cid(1)).unwrap().unwrap();
    assert_eq!(
        (
            chat.last_ts,
            chat.last_message.unwrap().id,
            chat.message_count
        ),
        (100, mid(1), 1)
    );
    f.store.write(|w| w.remove_message(mid(1))).unwrap();
    let chat = f.store.chat(cid(1)).unwrap().unwrap();
    assert_eq!(
        (chat.last_ts, chat.last_message, chat.message_count),
        (0, None, 0)
    );
}

#[test]
fn a_chat_is_found_by_id_in_either_spelling_or_by_an_exact_name() {
    let f = Fixture::new();
    with_chat(&f, cid(0xab), "Family");
    with_chat(&f, cid(2), "Work");
    with_chat(&f, cid(3), "Work");
    let id = cid(0xab);
    assert_eq!(f.store.chat_by_id_or_name(&id.to_string()).unwrap().id, id);
    assert_eq!(
        f.store
            .chat_by_id_or_name(&id.0.hyphenated().to_string())
            .unwrap()
            .id,
        id
    );
    assert_eq!(f.store.chat_by_id_or_name(" Family ").unwrap().id, id);
    assert!(matches!(
        f.store.chat_by_id_or_name("family"),
        Err(Error::ChatNotFound { .. })
    ));
    match f.store.chat_by_id_or_name("Work") {
        Err(e @ Error::AmbiguousChat { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&cid(2).to_string()) && msg.contains(&cid(3).to_string()),
                "{msg}"
            );
        }
        other => panic!("expected an ambiguity, got {other:?}"),
    }
}

#[test]
fn a_message_and_its_outbox_rows_commit_together_or_not_at_all() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    let outbox_for = |n: u32| NewOutboxItem {
        message_id: mid(1),
        recipient_account: b"bob".to_vec(),
        recipient_device: n,
        payload: vec![n as u8; 4],
        created_at: 1_000,
    };

    // The closure fails after writing both: neither stays.
    let failed: Result<()> = f.store.write(|w| {
        w.insert_messages(&[text(1, cid(1), 10, "hi bob")])?;
        w.enqueue(&outbox_for(0))?;
        Err(Error::ChatNotFound {
            query: "simulated failure".into(),
        })
    });
    assert!(failed.is_err());
    assert!(f.store.message(mid(1)).unwrap().is_none());
    assert_eq!(f.store.outbox_len().unwrap(), 0);

    // The closure succeeds: both are there.
    let ids = f
        .store
        .write(|w| {
            w.insert_messages(&[text(1, cid(1), 10, "hi bob")])?;
            Ok::<_, Error>((w.enqueue(&outbox_for(0))?, w.enqueue(&outbox_for(1))?))
        })
        .unwrap();
    assert!(f.store.message(mid(1)).unwrap().is_some());
    let due = f.store.outbox_pending(1_000, 10).unwrap();
    assert_eq!(due.iter().map(|o| o.id).collect::<Vec<_>>(), [ids.0, ids.1]);

    // One fails and is retried later; the other is done.
    f.store
        .write(|w| {
            w.outbox_retry(ids.0, 5_000)?;
            w.outbox_done(ids.1)
        })
        .unwrap();
    assert!(f.store.outbox_pending(1_000, 10).unwrap().is_empty());
    let later = f.store.outbox_pending(5_000, 10).unwrap();
    assert_eq!(
        (later.len(), later[0].attempts, later[0].recipient_device),
        (1, 1, 0)
    );
}

#[test]
fn a_panicking_closure_leaves_nothing_behind_and_the_store_still_works() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    let store = &f.store;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store
            .write(|w| {
                w.insert_messages(&[text(1, cid(1), 10, "half")])?;
                panic!("crash in the middle of a write");
                #[allow(unreachable_code)]
                Ok::<_, Error>(())
            })
            .ok();
    }));
    assert!(result.is_err());
    assert!(f.store.message(mid(1)).unwrap().is_none());
    insert(&f, &[text(2, cid(1), 20, "after")]);
    assert_eq!(f.store.counts().unwrap().messages, 1);
}

#[test]
fn durable_writes_commit_under_synchronous_full_and_normal_writes_do_not() {
    let f = Fixture::new();
    let mode = |w: &Writer<'_>| {
        w.conn
            .query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    assert_eq!(
        f.store.write(|w| Ok::<_, Error>(mode(w))).unwrap(),
        1,
        "NORMAL"
    );
    assert_eq!(
        f.store.write_durable(|w| Ok::<_, Error>(mode(w))).unwrap(),
        2,
        "FULL"
    );
    assert_eq!(
        f.store.write(|w| Ok::<_, Error>(mode(w))).unwrap(),
        1,
        "back to NORMAL"
    );
    let _ = f.store.write_durable(|_| {
        Err::<(), _>(Error::ChatNotFound {
            query: String::new(),
        })
    });
    assert_eq!(
        f.store.write(|w| Ok::<_, Error>(mode(w))).unwrap(),
        1,
        "back to NORMAL after a failure too"
    );
}

#[test]
fn bridge_desktops_are_authorised_listed_renamed_and_revoked() {
    let f = Fixture::new();
    let office = BridgeDesktop {
        public_key: vec![1; 32],
        name: "Office".into(),
        platform: "linux".into(),
        linked_at: 20,
    };
    let home = BridgeDesktop {
        public_key: vec![2; 32],
        name: "Home".into(),
        platform: "windows".into(),
        linked_at: 10,
    };
    assert_eq!(f.store.bridge_desktops().unwrap(), vec![]);
    f.store
        .write_durable(|w| {
            w.put_bridge_desktop(&office)?;
            w.put_bridge_desktop(&home)
        })
        .unwrap();
    assert_eq!(
        f.store.bridge_desktops().unwrap(),
        vec![home.clone(), office.clone()],
        "oldest link first"
    );
    // The same key linked again replaces its row.
    let renamed = BridgeDesktop {
        name: "Office (new)".into(),
        linked_at: 30,
        ..office.clone()
    };
    f.store
        .write_durable(|w| w.put_bridge_desktop(&renamed))
        .unwrap();
    assert_eq!(
        f.store.bridge_desktops().unwrap(),
        vec![home.clone(), renamed]
    );
    // Revoking deletes the key; revoking an unknown key says so.
    assert!(
        f.store
            .write_durable(|w| w.delete_bridge_desktop(&[1; 32]))
            .unwrap()
    );
    assert!(
        !f.store
            .write_durable(|w| w.delete_bridge_desktop(&[1; 32]))
            .unwrap()
    );
    assert_eq!(f.store.bridge_desktops().unwrap(), vec![home]);
    // A key that is not 32 bytes never gets in.
    let short = BridgeDesktop {
        public_key: vec![3; 31],
        name: "Short".into(),
        platform: "linux".into(),
        linked_at: 1,
    };
    assert!(
        f.store
            .write_durable(|w| w.put_bridge_desktop(&short))
            .is_err()
    );
    assert_eq!(f.store.bridge_desktops().unwrap().len(), 1);
}

#[test]
fn identity_sessions_devices_and_device_lists_round_trip() {
    let f = Fixture::new();
    let account = Account {
        id: b"acct-1".to_vec(),
        public_key: vec![9; 32],
        display_name: "Alice".into(),
    };
    let device = Device {
        account: account.id.clone(),
        index: 2,
        encryption_key: vec![1; 32],
        signing_key: vec![2; 32],
        name: "Laptop".into(),
        platform: "linux".into(),
        linked_at: 77,
        certificate: vec![3; 100],
    };
    f.store
        .write_durable(|w| {
            w.put_identity(identity::ACCOUNT_KEY, &[7; 32])?;
            w.put_identity(identity::ROLE, b"desktop")?;
            w.upsert_account(&account)?;
            w.upsert_device(&device)?;
            w.put_session(&account.id, 2, b"state-1")?;
            w.put_session(&account.id, 2, b"state-2")?;
            assert!(w.put_device_list(&account.id, 3, b"list-v3")?);
            assert!(
                !w.put_device_list(&account.id, 2, b"list-v2")?,
                "older list ignored"
            );
            assert!(
                !w.put_device_list(&account.id, 3, b"other-v3")?,
                "same version ignored"
            );
            Ok::<_, Error>(())
        })
        .unwrap();
    let f = f.reopen();
    let key = f.store.identity(identity::ACCOUNT_KEY).unwrap().unwrap();
    assert_eq!(key.expose(), &[7; 32]);
    assert!(
        !format!("{key:?}").contains('7'),
        "Debug shows no secret: {key:?}"
    );
    assert_eq!(f.store.identity("missing").unwrap(), None);
    assert_eq!(
        f.store.session(&account.id, 2).unwrap().unwrap().expose(),
        b"state-2"
    );
    assert_eq!(f.store.devices(&account.id).unwrap(), [device]);
    assert_eq!(f.store.account(&account.id).unwrap().unwrap(), account);
    let list = f.store.device_list(&account.id).unwrap().unwrap();
    assert_eq!((list.version, list.signed.as_slice()), (3, &b"list-v3"[..]));
    assert!(
        f.store
            .write_durable(|w| w.put_device_list(&account.id, 4, b"list-v4"))
            .unwrap()
    );

    f.store
        .write(|w| {
            w.upsert_contact(&Contact {
                account: account.id.clone(),
                name: "Ally".into(),
                added_at: 5,
            })
        })
        .unwrap();
    assert_eq!(f.store.contacts().unwrap()[0].name, "Ally");
    f.store
        .write_durable(|w| w.remove_device(&account.id, 2))
        .unwrap();
    assert!(f.store.devices(&account.id).unwrap().is_empty());
}

#[test]
fn sync_progress_survives_a_reopen() {
    let f = Fixture::new();
    let state = SyncState {
        sync_id: b"sync-1".to_vec(),
        role: SyncRole::Receiver,
        phase: SyncPhase::Running,
        chunks_done: 3,
        chunks_total: 10,
        messages_done: 1_500,
        messages_total: 5_000,
        last_acked: Some(2),
        digest: vec![0xdd; 32],
        plan: b"plan".to_vec(),
        updated_at: 42,
    };
    f.store.write_durable(|w| w.put_sync_state(&state)).unwrap();
    let f = f.reopen();
    assert_eq!(f.store.sync_state(b"sync-1").unwrap().unwrap(), state);
    let done = SyncState {
        phase: SyncPhase::Complete,
        chunks_done: 10,
        last_acked: Some(9),
        ..state.clone()
    };
    f.store.write_durable(|w| w.put_sync_state(&done)).unwrap();
    assert_eq!(f.store.sync_states().unwrap(), [done]);
}

#[test]
fn statuses_only_move_forward() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    let mut m = text(1, cid(1), 10, "hi");
    m.status = MessageStatus::Sending;
    m.from_me = true;
    insert(&f, &[m]);
    let status = || f.store.message(mid(1)).unwrap().unwrap().status;
    assert!(
        f.store
            .write(|w| w.set_status(mid(1), MessageStatus::Sent))
            .unwrap()
    );
    assert!(
        f.store
            .write(|w| w.set_status(mid(1), MessageStatus::Read))
            .unwrap()
    );
    assert!(
        !f.store
            .write(|w| w.set_status(mid(1), MessageStatus::Delivered))
            .unwrap()
    );
    assert_eq!(status(), MessageStatus::Read);
}

#[test]
fn replayed_envelopes_are_recognised_until_pruned() {
    let f = Fixture::new();
    assert!(f.store.write(|w| w.remember_envelope(mid(1), 100)).unwrap());
    assert!(!f.store.write(|w| w.remember_envelope(mid(1), 200)).unwrap());
    assert!(f.store.write(|w| w.remember_envelope(mid(2), 300)).unwrap());
    assert_eq!(f.store.write(|w| w.prune_envelopes(250)).unwrap(), 1);
    assert!(
        f.store.write(|w| w.remember_envelope(mid(1), 400)).unwrap(),
        "forgotten after pruning"
    );
    assert!(!f.store.write(|w| w.remember_envelope(mid(2), 400)).unwrap());
}

#[test]
fn unknown_kinds_from_newer_builds_are_kept() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    let mut m = text(1, cid(1), 10, "");
    m.kind = MessageKind::Other("poll".into());
    let mut media = text(2, cid(1), 20, "look at this");
    media.kind = MessageKind::Media;
    media.media_name = Some("IMG-0001.jpg".into());
    media.reply_to = Some(mid(1));
    insert(&f, &[m, media.clone()]);
    assert_eq!(
        f.store.message(mid(1)).unwrap().unwrap().kind,
        MessageKind::Other("poll".into())
    );
    assert_eq!(
        f.store.message(mid(2)).unwrap().unwrap(),
        Message::from(media)
    );
}

#[test]
fn removing_a_chat_removes_its_messages_and_their_index_entries() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    with_chat(&f, cid(2), "B");
    insert(
        &f,
        &[
            text(1, cid(1), 10, "pineapple"),
            text(2, cid(2), 20, "pineapple"),
        ],
    );
    assert!(f.store.write(|w| w.remove_chat(cid(1))).unwrap());
    assert_eq!(f.store.search("pineapple", None, 10).unwrap().len(), 1);
    assert_eq!(
        f.store.counts().unwrap(),
        Counts {
            chats: 1,
            messages: 1
        }
    );
    integrity_check(&f.store);
}

#[test]
fn the_store_key_never_shows_in_debug_output() {
    let key = StoreKey::from_bytes([0xab; 32]);
    let shown = format!("{key:?}");
    assert!(!shown.to_lowercase().contains("ab"), "{shown}");
    let f = Fixture::new();
    assert!(!format!("{:?}", f.store).contains("42"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Whatever a user types, search answers with hits or nothing, never an FTS5 syntax error.
    #[test]
    fn any_typed_query_searches_without_error(query in ".{0,40}", words in proptest::collection::vec("[\"*^:()+\\-a-zA-Zé0-9 ]{0,8}|NEAR|AND|OR|NOT", 0..5)) {
        let f = hostile_fixture();
        f.store.search(&query, None, 5).unwrap();
        f.store.search(&words.join(" "), Some(cid(1)), 5).unwrap();
    }
}

fn hostile_fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let f = Fixture::new();
        with_chat(&f, cid(1), "A");
        insert(
            &f,
            &[text(
                1,
                cid(1),
                10,
                "AND OR NOT near \"quoted\" * ^ colon: (paren) e-mail café",
            )],
        );
        f
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// A store file damaged anywhere opens with a typed error or reads with typed errors; it
    /// never panics and never returns another chat's text.
    #[test]
    fn a_damaged_store_file_gives_typed_errors(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = Store::open(&path, &StoreKey::from_bytes([5; 32])).unwrap();
            store.write(|w| w.upsert_chat(&group(cid(1), "A"))).unwrap();
            store.write(|w| w.insert_messages(&(0..200).map(|i| text(i, cid(1), i64::try_from(i).unwrap(), "some words here")).collect::<Vec<_>>())).unwrap();
            store.checkpoint().unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        std::fs::write(&path, &bytes).unwrap();
        match Store::open(&path, &StoreKey::from_bytes([5; 32])) {
            Err(_) => {}
            Ok(store) => {
                // Reads either fail with a typed error or return what was written.
                if let Ok(page) = store.page(cid(1), Cursor::Newest, 500) {
                    prop_assert!(page.iter().all(|m| m.text == "some words here"));
                }
                let _ = store.search("words", None, 10);
                let _ = store.chats();
            }
        }
    }
}

/// After a mixed workload (batches, duplicates, edits, deletes for everyone and for me, a
/// removed chat), every word's hits are exactly the messages whose current text holds a word
/// starting with it: the index never keeps a stale entry or misses a new one.
#[test]
fn the_search_index_matches_the_texts_after_any_mix_of_writes() {
    const WORDS: &[&str] = &[
        "apple", "apricot", "banana", "band", "cherry", "date", "elder", "fig",
    ];
    let f = Fixture::new();
    for n in 1..=3 {
        with_chat(&f, cid(n), "chat");
    }
    let mut seed = 7u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let sentence = |next: &mut dyn FnMut(u64) -> u64| {
        let words = next(4);
        (0..words)
            .map(|_| WORDS[next(WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    };
    for round in 0..6u64 {
        let batch: Vec<NewMessage> = (0..60)
            .map(|i| {
                let id = round * 50 + i; // overlaps the previous round: duplicates
                text(
                    id,
                    cid(u8::try_from(id % 3).unwrap() + 1),
                    i64::try_from(id).unwrap(),
                    &sentence(&mut next),
                )
            })
            .collect();
        insert(&f, &batch);
        f.store
            .write(|w| {
                for _ in 0..10 {
                    let id = mid(next(round * 50 + 60));
                    match next(3) {
                        0 => {
                            w.edit_message(
                                id,
                                &sentence(&mut next),
                                i64::try_from(round * 1000 + next(999)).unwrap(),
                            )?;
                        }
                        1 => {
                            w.delete_for_everyone(id)?;
                        }
                        _ => {
                            w.remove_message(id)?;
                        }
                    }
                }
                Ok::<_, Error>(())
            })
            .unwrap();
    }
    f.store.write(|w| w.remove_chat(cid(3))).unwrap();

    let all: Vec<Message> = (1..=2)
        .flat_map(|n| f.store.page(cid(n), Cursor::Newest, 10_000).unwrap())
        .collect();
    assert_eq!(f.store.counts().unwrap().messages, all.len() as u64);
    for prefix in [
        "ap", "apple", "apricot", "ban", "band", "banana", "cherry", "date", "elder", "fig",
        "zebra",
    ] {
        let mut expected: Vec<MessageId> = all
            .iter()
            .filter(|m| m.text.split(' ').any(|w| w.starts_with(prefix)))
            .map(|m| m.id)
            .collect();
        let mut found: Vec<MessageId> = f
            .store
            .search(prefix, None, 10_000)
            .unwrap()
            .into_iter()
            .map(|h| h.message.id)
            .collect();
        expected.sort();
        found.sort();
        assert_eq!(found, expected, "hits for {prefix:?}");
    }
    integrity_check(&f.store);
}

#[test]
fn the_store_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
    let f = Fixture::new();
    with_chat(&f, cid(1), "A");
    std::thread::scope(|s| {
        let store = &f.store;
        s.spawn(move || {
            for i in 0..20u64 {
                store
                    .write(|w| {
                        w.insert_messages(&[text(
                            i,
                            cid(1),
                            i64::try_from(i).unwrap(),
                            "from a thread",
                        )])
                    })
                    .unwrap();
            }
        });
        s.spawn(move || {
            for _ in 0..20 {
                let page = store.page(cid(1), Cursor::Newest, 50).unwrap();
                assert!(page.windows(2).all(|w| w[0].ts < w[1].ts));
            }
        });
    });
    assert_eq!(f.store.counts().unwrap().messages, 20);
}

#[test]
fn a_phone_with_bridge_desktops_notes_each_change_for_them_in_the_changes_own_transaction() {
    let f = Fixture::new();
    with_chat(&f, cid(1), "Lunch");
    // No bridge desktop yet: nothing is noted.
    insert(&f, &[text(1, cid(1), 1_000, "before any bridge desktop")]);
    assert_eq!(f.store.bridge_changes(10).unwrap(), vec![]);

    f.store
        .write_durable(|w| {
            w.put_bridge_desktop(&BridgeDesktop {
                public_key: vec![1; 32],
                name: "Office".into(),
                platform: "linux".into(),
                linked_at: 1,
            })
        })
        .unwrap();
    let bob = vec![7u8; 16];
    f.store
        .write(|w| -> Result<()> {
            w.insert_messages(&[
                text(2, cid(1), 2_000, "new"),
                text(1, cid(1), 1_000, "already stored: no change"),
            ])?;
            assert!(w.edit_message(mid(2), "new, edited", 2_500)?);
            assert!(
                !w.edit_message(mid(2), "an older edit", 2_400)?,
                "no change"
            );
            assert!(w.set_reaction(mid(1), &bob, "👍", 3_000)?);
            assert!(w.set_status(mid(2), MessageStatus::Delivered)?);
            assert_eq!(w.mark_chat_read(cid(1))?.len(), 0, "no sender accounts");
            Ok(())
        })
        .unwrap();
    // A transaction that fails leaves no note either.
    let failed: Result<()> = f.store.write(|w| {
        w.delete_for_everyone(mid(1))?;
        Err(Error::OutOfRange {
            what: "test",
            value: "rolled back".into(),
        })
    });
    assert!(failed.is_err());

    let changes: Vec<BridgeChange> = f
        .store
        .bridge_changes(10)
        .unwrap()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert_eq!(
        changes,
        vec![
            BridgeChange::NewMessage(mid(2)),
            BridgeChange::Message(mid(2)),
            BridgeChange::Reaction {
                message: mid(1),
                account: bob.clone(),
            },
            BridgeChange::Status(mid(2)),
            BridgeChange::ChatRead {
                chat: cid(1),
                up_to: mid(2),
            },
        ]
    );
    assert_eq!(
        f.store.reaction(mid(1), &bob).unwrap().as_deref(),
        Some("👍")
    );
    assert_eq!(f.store.reaction(mid(2), &bob).unwrap(), None);

    // Logged ones are dropped up to a number; later ones stay, and survive a reopen.
    let numbers: Vec<i64> = f
        .store
        .bridge_changes(10)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    f.store
        .write(|w| w.drop_bridge_changes_through(numbers[2]))
        .unwrap();
    let f = f.reopen();
    assert_eq!(
        f.store.bridge_changes(1).unwrap().len(),
        1,
        "the limit holds"
    );
    assert_eq!(f.store.bridge_changes(10).unwrap().len(), 2);
}

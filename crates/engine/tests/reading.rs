#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The reads the desktop app's screens make: the chat list with its previews and flags, a
//! conversation walked a page at a time in both directions, a jump into the middle of a chat,
//! and the settings screen's "this device". A real encrypted store in a temporary home.

use std::collections::HashSet;

use tandem_engine::{Engine, KeychainUse, Page};

fn phone_with_history(messages: usize) -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(&dir.path().join("phone"), KeychainUse::Off).unwrap();
    engine
        .init_primary("Alice", Some("mqtt://127.0.0.1:1883"))
        .unwrap();
    engine.generate(3, messages, 11).unwrap();
    (dir, engine)
}

#[test]
fn a_chat_walked_page_by_page_to_its_oldest_message_and_back_sees_each_message_once() {
    let (_dir, engine) = phone_with_history(3_000);
    let chat = engine
        .chats()
        .unwrap()
        .into_iter()
        .max_by_key(|c| c.messages)
        .unwrap();

    // Up from the newest page to the oldest, as the conversation scrolls up.
    let mut upward = engine.history_page(&chat.id, &Page::Newest, 50).unwrap();
    assert_eq!(upward.len(), 50);
    loop {
        let oldest = upward.first().unwrap().id.clone();
        let older = engine
            .history_page(&chat.id, &Page::Before(oldest), 50)
            .unwrap();
        let short = older.len() < 50;
        upward.splice(0..0, older);
        if short {
            break;
        }
    }
    assert_eq!(upward.len() as u64, chat.messages);
    let ids: HashSet<&str> = upward.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), upward.len(), "no message twice");
    assert!(
        upward
            .windows(2)
            .all(|w| (w[0].ts, &w[0].id) <= (w[1].ts, &w[1].id))
    );

    // Down again from the oldest, as the conversation scrolls back to the newest.
    let mut downward = engine
        .history_page(&chat.id, &Page::Before(upward[50].id.clone()), 50)
        .unwrap();
    assert_eq!(downward.first().unwrap().id, upward[0].id);
    loop {
        let newest = downward.last().unwrap().id.clone();
        let newer = engine
            .history_page(&chat.id, &Page::After(newest), 50)
            .unwrap();
        let short = newer.len() < 50;
        downward.extend(newer);
        if short {
            break;
        }
    }
    let up: Vec<&str> = upward.iter().map(|m| m.id.as_str()).collect();
    let down: Vec<&str> = downward.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(up, down);
}

#[test]
fn a_jump_to_a_message_deep_in_a_chat_opens_a_page_centred_on_it() {
    let (_dir, engine) = phone_with_history(2_000);
    let chat = engine
        .chats()
        .unwrap()
        .into_iter()
        .max_by_key(|c| c.messages)
        .unwrap();
    let mut all = engine.history_page(&chat.id, &Page::Newest, 1000).unwrap();
    while all.len() < chat.messages as usize {
        let older = engine
            .history_page(&chat.id, &Page::Before(all[0].id.clone()), 1000)
            .unwrap();
        all.splice(0..0, older);
    }
    let target = all[300].clone();
    let page = engine
        .history_page(&chat.id, &Page::Around(target.id.clone()), 50)
        .unwrap();
    assert_eq!(page.len(), 50);
    assert_eq!(page[25].id, target.id, "the target sits in the middle");
    let expected: Vec<&str> = all[275..325].iter().map(|m| m.id.as_str()).collect();
    let got: Vec<&str> = page.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(got, expected);

    // Near the start of the chat the page is short on the older side.
    let first = engine
        .history_page(&chat.id, &Page::Around(all[2].id.clone()), 50)
        .unwrap();
    assert_eq!(first[0].id, all[0].id);
    assert_eq!(first[2].id, all[2].id);

    // A message of another chat, or no message at all, is a clear error.
    let other = engine
        .chats()
        .unwrap()
        .into_iter()
        .find(|c| c.id != chat.id)
        .unwrap();
    let foreign = engine.history_page(&other.id, &Page::Newest, 1).unwrap()[0]
        .id
        .clone();
    let err = engine
        .history_page(&chat.id, &Page::Around(foreign), 50)
        .unwrap_err();
    assert_eq!(err.kind(), "not_found");
    let err = engine
        .history_page(&chat.id, &Page::After("nonsense".into()), 50)
        .unwrap_err();
    assert_eq!(err.kind(), "not_found");
}

#[test]
fn the_chat_list_previews_the_newest_message_and_keeps_pins_and_mutes() {
    let (_dir, engine) = phone_with_history(600);
    let chats = engine.chats().unwrap();
    for chat in &chats {
        let newest = engine
            .history_page(&chat.id, &Page::Newest, 1)
            .unwrap()
            .remove(0);
        let last = chat.last.clone().unwrap();
        assert_eq!(last.ts, newest.ts);
        assert_eq!(last.from_me, newest.from_me);
        assert!(newest.text.starts_with(&last.text));
    }

    // Pinning the least recent chat puts it first; muting is kept; both come back off.
    let least = chats.last().unwrap().id.clone();
    let pinned = engine.set_chat(&least, Some(true), Some(true)).unwrap();
    assert!(pinned.pinned && pinned.muted);
    let listed = engine.chats().unwrap();
    assert_eq!(listed[0].id, least);
    assert!(listed[0].muted);
    let unpinned = engine.set_chat(&least, Some(false), None).unwrap();
    assert!(!unpinned.pinned && unpinned.muted);
    assert_eq!(engine.chats().unwrap().last().unwrap().id, least);
    assert!(engine.set_chat("no such chat", Some(true), None).is_err());
}

#[test]
fn this_device_is_described_for_the_settings_screen() {
    let (_dir, engine) = phone_with_history(10);
    let about = engine.about().unwrap();
    assert_eq!(about.account_name.as_deref(), Some("Alice"));
    assert_eq!(about.mode, "primary");
    assert_eq!(about.broker.as_deref(), Some("mqtt://127.0.0.1:1883"));
    assert_eq!(about.device, engine.status().unwrap().device);
    assert!(about.linked_at.is_some_and(|t| t > 0));

    let fresh = tempfile::tempdir().unwrap();
    let unlinked = Engine::open_with(fresh.path(), KeychainUse::Off).unwrap();
    let about = unlinked.about().unwrap();
    assert_eq!(about.mode, "unlinked");
    assert_eq!((about.device, about.linked_at), (None, None));
}

//! Tests of the history-sync benchmark: small runs of both scenarios end to end, and the
//! pieces its baselines and splits are built from.

use std::collections::HashSet;

use tandem_engine::synth;
use tandem_store::StoreKey;

use super::*;
use tandem_proto::sync::SyncedMessage;

fn figure<'a>(printed: &'a str, name: &str) -> Option<&'a str> {
    printed
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[test]
fn a_phone_links_a_fresh_desktop_and_every_figure_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let scenario = Scenario {
        sync: 2_500,
        phone_chats: 8,
        existing: 0,
        existing_chats: 0,
        goal: None,
    };
    let run = run_scenario(&mut out, dir.path(), scenario).unwrap();

    assert_eq!(run.messages, 2_500);
    assert!(run.chunks >= 3, "{} chunks", run.chunks);
    assert!(run.first_chunk <= run.total);
    let printed = String::from_utf8(out).unwrap();
    assert_eq!(
        figure(&printed, "sync.into_empty.desktop_holds"),
        Some("2500 messages in 8 chats (sync verified)")
    );
    for name in [
        "pairing",
        "total",
        "rate",
        "first_chunk_visible",
        "chunks",
        "direct_insert.rate",
        "sync_vs_direct_insert",
        "split.phone_build",
        "split.desktop_decode",
        "split.desktop_insert_durable",
        "split.chunk_compressed_avg",
    ] {
        assert!(
            figure(&printed, &format!("sync.into_empty.{name}")).is_some(),
            "no {name} in:\n{printed}"
        );
    }
    assert_eq!(
        figure(&printed, "sync.into_empty.messages"),
        Some("2500 messages")
    );
    assert!(
        figure(&printed, "sync.into_empty.goal.total")
            .unwrap()
            .starts_with("n/a")
    );
    let first = figure(&printed, "sync.into_empty.goal.first_chunk").unwrap();
    assert!(first.starts_with("MET") || first.starts_with("MISSED"));
}

#[test]
fn a_desktop_holding_a_history_keeps_it_and_gains_the_phones() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let scenario = Scenario {
        sync: 1_200,
        phone_chats: 4,
        existing: 3_000,
        existing_chats: 5,
        goal: Some(Duration::from_secs(60)),
    };
    let run = run_scenario(&mut out, dir.path(), scenario).unwrap();

    assert_eq!(run.messages, 1_200);
    let printed = String::from_utf8(out).unwrap();
    assert_eq!(
        figure(&printed, "sync.into_3k.desktop_holds"),
        Some("4200 messages in 9 chats (sync verified)")
    );
    assert!(figure(&printed, "sync.into_3k.setup.desktop_fill_3k").is_some());
    assert!(
        figure(&printed, "sync.into_3k.goal.total")
            .unwrap()
            .starts_with("MET"),
        "{printed}"
    );
}

#[test]
fn planned_chunks_carry_every_message_once_within_the_sync_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("phone.db"), &StoreKey::from_bytes([3; 32])).unwrap();
    let history = synth::generate(5, 6, 5_000, 1_760_000_000_000);
    store
        .write(|w| history.chats.iter().try_for_each(|c| w.upsert_chat(c)))
        .unwrap();
    let messages: Vec<NewMessage> = history.messages.collect();
    for batch in messages.chunks(1_000) {
        store.write(|w| w.insert_messages(batch)).unwrap();
    }

    let plan = plan_chunks(&store).unwrap();
    let encoded = build_chunks(&store, &plan).unwrap();

    assert_eq!(encoded.len(), plan.len());
    let mut seen = HashSet::new();
    for (index, bytes) in encoded.iter().enumerate() {
        let SyncMessage::Chunk(chunk) = SyncMessage::decode(bytes).unwrap() else {
            panic!("chunk {index} decoded to another message");
        };
        chunk.verify().unwrap();
        assert_eq!(chunk.index as usize, index);
        assert_eq!(chunk.total as usize, plan.len());
        assert!(chunk.messages.len() <= CHUNK_MESSAGES);
        let raw: usize = chunk.messages.iter().map(SyncedMessage::raw_len).sum();
        assert!(raw <= CHUNK_RAW_BUDGET, "chunk {index} holds {raw} bytes");
        for m in &chunk.messages {
            assert!(seen.insert(m.id), "a message came twice");
        }
    }
    assert_eq!(seen.len(), 5_000);
}

#[test]
fn the_history_read_back_for_the_baseline_is_the_stored_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("phone.db"), &StoreKey::from_bytes([4; 32])).unwrap();
    let history = synth::generate(9, 3, 2_345, 1_760_000_000_000);
    store
        .write(|w| history.chats.iter().try_for_each(|c| w.upsert_chat(c)))
        .unwrap();
    let messages: Vec<NewMessage> = history.messages.collect();
    store.write(|w| w.insert_messages(&messages)).unwrap();

    let (chats, rows) = read_history(&store).unwrap();

    assert_eq!(chats.len(), 3);
    assert_eq!(rows.len(), 2_345);
    let mut expected = messages.clone();
    let mut got = rows.clone();
    expected.sort_by_key(|m| *m.id.as_bytes());
    got.sort_by_key(|m| *m.id.as_bytes());
    assert_eq!(got, expected);
    let copy = Store::open(&dir.path().join("copy.db"), &StoreKey::from_bytes([4; 32])).unwrap();
    insert_direct(&copy, &chats, &rows, Commit::Durable).unwrap();
    assert_eq!(copy.counts().unwrap().messages, 2_345);
}

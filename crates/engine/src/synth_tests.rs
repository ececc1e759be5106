//! The generated history is deterministic, realistic in shape, and loads into a real store.

use std::collections::{BTreeSet, HashMap};

use tandem_store::{Cursor, MessageKind, Store, StoreKey};

use super::*;

const NOW: i64 = 1_760_000_000_000;

fn fingerprint(history: History) -> (Vec<NewChat>, Vec<NewMessage>) {
    (history.chats, history.messages.collect())
}

#[test]
fn the_same_seed_gives_the_same_history_and_another_seed_does_not() {
    let a = fingerprint(generate(7, 12, 3_000, NOW));
    let b = fingerprint(generate(7, 12, 3_000, NOW));
    assert_eq!(a, b);
    let c = fingerprint(generate(8, 12, 3_000, NOW));
    assert_ne!(a.0, c.0);
    assert_ne!(a.1, c.1);
}

#[test]
fn a_fixed_seed_keeps_giving_the_same_first_message() {
    // Pins the generator's output: a change here changes every benchmark's data set.
    let first = generate(1, 5, 1, NOW).messages.next().unwrap();
    assert_eq!(first.id.to_string(), "018b097ede587330a4d44e89d465f19a");
    assert_eq!(first.ts, 1_696_671_391_320);
    assert_eq!(first.text, "Tojin was the what éumbulzan.");
    assert_eq!(first.id.0.get_version_num(), 7);
}

#[test]
fn it_makes_exactly_the_messages_asked_for_in_time_order_over_years() {
    let history = generate(3, 20, 20_000, NOW);
    let chats: BTreeSet<ChatId> = history.chats.iter().map(|c| c.id).collect();
    assert_eq!(chats.len(), 20);
    assert_eq!(history.messages.len(), 20_000);
    let messages: Vec<NewMessage> = history.messages.collect();
    assert_eq!(messages.len(), 20_000);
    assert!(
        messages.windows(2).all(|w| w[0].ts <= w[1].ts),
        "oldest first"
    );
    let first = messages.first().unwrap().ts;
    let last = messages.last().unwrap().ts;
    assert!(
        (NOW - SPAN_MS..NOW - SPAN_MS + 30 * 86_400_000).contains(&first),
        "starts {} days back",
        (NOW - first) / 86_400_000
    );
    assert!(
        (NOW - 30 * 86_400_000..=NOW + 86_400_000).contains(&last),
        "ends near now"
    );
    assert!(messages.iter().all(|m| chats.contains(&m.chat)));
    let ids: BTreeSet<MessageId> = messages.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), messages.len(), "ids are unique");
    for m in &messages {
        let (secs, nanos) = m.id.0.get_timestamp().unwrap().to_unix();
        assert_eq!(
            i64::try_from(secs * 1000 + u64::from(nanos / 1_000_000)).unwrap(),
            m.ts,
            "v7 prefix is the timestamp"
        );
    }
}

#[test]
fn the_history_looks_like_real_chats() {
    let history = generate(11, 30, 50_000, NOW);
    let groups = history
        .chats
        .iter()
        .filter(|c| c.kind == ChatKind::Group)
        .count();
    assert!((5..=15).contains(&groups), "{groups} groups of 30");
    assert!(
        history
            .chats
            .iter()
            .all(|c| c.members.len() >= 2 && !c.name.is_empty())
    );
    assert!(
        history
            .chats
            .iter()
            .filter(|c| c.kind == ChatKind::Direct)
            .all(|c| c.members.len() == 2)
    );
    let messages: Vec<NewMessage> = history.messages.collect();

    let count = |f: &dyn Fn(&NewMessage) -> bool| messages.iter().filter(|m| f(m)).count();
    let n = messages.len();
    let short = count(&|m| m.kind == MessageKind::Text && m.text.split(' ').count() <= 4);
    let long = count(&|m| m.text.split(' ').count() >= 50);
    assert!(
        short > n / 4 && long > n / 100 && long < n / 5,
        "short {short}, long {long}"
    );
    assert!(count(&|m| m.kind == MessageKind::Media && m.media_name.is_some()) > n / 100);
    assert!(count(&|m| m.kind == MessageKind::System) > 0);
    assert!(count(&|m| m.deleted) > 0);
    assert!(count(&|m| m.reply_to.is_some()) > n / 100);
    assert!(count(&|m| m.edited_at.is_some()) > 0);
    assert!(count(&|m| m.from_me) > n / 10);
    assert!(
        count(&|m| m
            .text
            .chars()
            .any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)))
            > 0,
        "Cyrillic"
    );
    assert!(
        count(&|m| m
            .text
            .chars()
            .any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c)))
            > 0,
        "CJK"
    );
    assert!(
        count(&|m| m
            .text
            .chars()
            .any(|c| ('\u{1F300}'..='\u{1FAFF}').contains(&c)))
            > 0,
        "emoji"
    );
    assert!(
        count(&|m| m.text.contains(['é', 'ö', 'ñ', 'ë', 'ü'])) > 0,
        "accents"
    );

    // A few chats hold most messages.
    let mut per_chat: HashMap<ChatId, usize> = HashMap::new();
    for m in &messages {
        *per_chat.entry(m.chat).or_default() += 1;
    }
    let mut sizes: Vec<usize> = per_chat.into_values().collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    assert!(sizes[0] > 5 * sizes[sizes.len() / 2], "{sizes:?}");

    // Common words are common and rare words are rare.
    let with_word = |w: &str| {
        messages
            .iter()
            .filter(|m| {
                m.text
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|t| t.eq_ignore_ascii_case(w))
            })
            .count()
    };
    let common = with_word(&word_by_rank(5));
    let rare = with_word(&word_by_rank(8_000));
    assert!(
        common > n / 50 && rare < n / 1_000 && rare < common / 20,
        "common {common}, rare {rare}"
    );
    assert!(vocabulary_size() >= 10_000);
}

#[test]
fn a_generated_history_loads_into_a_store_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("synth.db"), &StoreKey::from_bytes([3; 32])).unwrap();
    let history = generate(5, 8, 5_000, NOW);
    store
        .write(|w| history.chats.iter().try_for_each(|c| w.upsert_chat(c)))
        .unwrap();
    let messages: Vec<NewMessage> = history.messages.collect();
    let mut added = 0;
    for batch in messages.chunks(1_000) {
        added += store.write(|w| w.insert_messages(batch)).unwrap();
    }
    assert_eq!(added, 5_000);
    assert_eq!(store.counts().unwrap().messages, 5_000);
    let biggest = store
        .chats()
        .unwrap()
        .into_iter()
        .max_by_key(|c| c.message_count)
        .unwrap();
    let page = store.page(biggest.id, Cursor::Newest, 50).unwrap();
    assert_eq!(page.len(), 50);
    assert_eq!(page.last().unwrap().ts, biggest.last_ts);
}

//! Stories about history sync on the wire: every message survives its compressed encoding,
//! a receiver catches an inconsistent chunk, hostile bytes (garbage, trailing bytes, a zstd
//! bomb) are refused, and the phone's send window paces, resumes and completes a sync.

use proptest::prelude::*;
use tandem_crypto::rng::{ChaCha20Rng, Rng, SeedableRng};

use super::*;
use crate::testkit::T0;

const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "of",
    "in",
    "is",
    "it",
    "you",
    "that",
    "for",
    "on",
    "was",
    "with",
    "are",
    "be",
    "at",
    "have",
    "this",
    "we",
    "not",
    "but",
    "they",
    "do",
    "what",
    "so",
    "if",
    "can",
    "just",
    "about",
    "will",
    "all",
    "when",
    "there",
    "out",
    "up",
    "get",
    "like",
    "one",
    "time",
    "know",
    "going",
    "think",
    "see",
    "tomorrow",
    "tonight",
    "today",
    "yesterday",
    "morning",
    "dinner",
    "lunch",
    "coffee",
    "meeting",
    "train",
    "station",
    "office",
    "home",
    "weekend",
    "holiday",
    "birthday",
    "party",
    "movie",
    "book",
    "photo",
    "call",
    "message",
    "later",
    "soon",
    "sorry",
    "thanks",
    "great",
    "okay",
    "sure",
    "maybe",
    "really",
    "love",
    "good",
    "nice",
    "late",
    "early",
    "running",
    "waiting",
    "ready",
    "done",
    "back",
    "here",
    "where",
    "why",
    "how",
    "who",
    "which",
    "could",
    "would",
    "should",
    "need",
    "want",
    "send",
    "bring",
    "pick",
    "leave",
    "arrive",
    "remember",
    "forget",
    "buy",
    "milk",
    "bread",
    "keys",
    "car",
    "bus",
    "rain",
    "sun",
    "cold",
    "hot",
    "kids",
    "school",
    "doctor",
    "work",
    "project",
    "deadline",
    "report",
    "draft",
    "review",
    "Anna",
    "Marco",
    "Léa",
    "Zoë",
    "😂",
    "👍",
    "❤️",
    "🎉",
    "ok!",
    "haha",
    "lol",
    "?",
    "!",
    "...",
    "5pm",
    "7:30",
    "12",
    "3",
    "€20",
];

/// About `len` characters of chat-like text.
fn chatty(rng: &mut ChaCha20Rng, len: usize) -> String {
    let mut text = String::new();
    while text.chars().count() < len {
        if !text.is_empty() {
            text.push(' ');
        }
        let word = WORDS[usize::try_from(rng.next_u32()).unwrap() % WORDS.len()];
        text.push_str(word);
    }
    text
}

fn id(rng: &mut ChaCha20Rng) -> [u8; 16] {
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    id
}

fn chat(id: [u8; 16], name: &str) -> SyncedChat {
    SyncedChat {
        id,
        kind: "direct".into(),
        name: name.into(),
        peer_account: Some(id.to_vec()),
        created_at: T0 - 365 * 86_400_000,
        muted: false,
        pinned: true,
        archived: false,
        unread: 2,
        members: vec![
            (Some(id.to_vec()), name.into()),
            (None, "Someone without an account".into()),
        ],
    }
}

/// `count` realistic messages spread over `chats`, about 80 characters of text each.
fn messages(rng: &mut ChaCha20Rng, chats: &[SyncedChat], count: usize) -> Vec<SyncedMessage> {
    let mut ts = T0 - 30 * 86_400_000;
    let mut out: Vec<SyncedMessage> = Vec::with_capacity(count);
    for i in 0..count {
        let chat = &chats[i % chats.len()];
        ts += i64::from(rng.next_u32() % 600_000);
        let from_me = rng.next_u32().is_multiple_of(2);
        let roll = rng.next_u32() % 100;
        let reply_to = match out.last() {
            Some(previous) if roll < 10 => Some(previous.id),
            _ => None,
        };
        let len = 40 + usize::try_from(rng.next_u32() % 80).unwrap();
        out.push(SyncedMessage {
            id: id(rng),
            chat: chat.id,
            sender_account: (!from_me).then(|| chat.id.to_vec()),
            sender_device: Some(0),
            sender_name: if from_me {
                "Alice".into()
            } else {
                chat.name.clone()
            },
            from_me,
            ts,
            kind: if roll == 99 { "media" } else { "text" }.into(),
            text: chatty(rng, len),
            media_name: (roll == 99).then(|| format!("IMG-2024{i:04}-WA0001.jpg")),
            reply_to,
            edited_at: (roll == 98).then_some(ts + 60_000),
            deleted: roll == 97,
            status: u8::try_from(rng.next_u32() % 4).unwrap(),
        });
    }
    out
}

/// A chunk of `count` messages over three chats.
fn chunk(seed: u8, index: u32, total: u32, count: usize) -> Chunk {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let chats = vec![
        chat(id(&mut rng), "Bob"),
        chat(id(&mut rng), "Carol 🌷"),
        chat(id(&mut rng), "Family"),
    ];
    let msgs = messages(&mut rng, &chats, count);
    Chunk::new([seed; 16], index, total, chats, msgs)
}

fn bad_chunk(chunk: &Chunk) -> String {
    match chunk.verify() {
        Err(SyncError::BadChunk { index, reason }) => {
            assert_eq!(index, chunk.index);
            reason
        }
        other => panic!("expected a refused chunk, got {other:?}"),
    }
}

#[test]
fn every_sync_message_survives_its_compressed_encoding() {
    let full = chunk(1, 2, 5, 25);
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let page_chat = chat(id(&mut rng), "Dave");
    let page_messages = messages(&mut rng, std::slice::from_ref(&page_chat), 50);
    let every = vec![
        SyncMessage::Chunk(Box::new(full.clone())),
        SyncMessage::Chunk(Box::new(Chunk::new([0; 16], 0, 1, vec![], vec![]))),
        SyncMessage::Ack {
            sync_id: [1; 16],
            index: 2,
            digest: full.digest,
            count: full.count(),
        },
        SyncMessage::Resume {
            sync_id: [1; 16],
            next: u32::MAX,
        },
        SyncMessage::Complete {
            sync_id: [1; 16],
            chunks: 5,
            messages: 4_999,
            digest: [0xEE; 32],
        },
        SyncMessage::Unknown { sync_id: [9; 16] },
        SyncMessage::PageRequest {
            request_id: u64::MAX,
            chat: page_chat.id,
            before: Some((i64::MIN, [3; 16])),
            limit: PAGE_MESSAGES,
        },
        SyncMessage::PageRequest {
            request_id: 0,
            chat: page_chat.id,
            before: None,
            limit: 0,
        },
        SyncMessage::Page {
            request_id: 7,
            chat: Some(page_chat),
            messages: page_messages,
            more: true,
        },
        SyncMessage::Page {
            request_id: 8,
            chat: None,
            messages: vec![],
            more: false,
        },
    ];
    for message in every {
        let bytes = message.encode().unwrap();
        assert_eq!(SyncMessage::decode(&bytes).unwrap(), message, "{message:?}");
        // The encoding is what the module says: zstd around postcard.
        let plain = zstd::bulk::decompress(&bytes, MAX_DECOMPRESSED_LEN).unwrap();
        assert_eq!(plain, postcard::to_allocvec(&message).unwrap());
    }
}

#[test]
fn a_fresh_chunk_verifies_and_reports_its_range_count_and_digest() {
    let c = chunk(3, 0, 1, 40);
    c.verify().unwrap();
    assert_eq!(c.count(), 40);
    assert_eq!(c.oldest_ts, c.messages.iter().map(|m| m.ts).min().unwrap());
    assert_eq!(c.newest_ts, c.messages.iter().map(|m| m.ts).max().unwrap());
    assert!(c.oldest_ts < c.newest_ts);
    assert_eq!(c.digest, digest(&c.messages));
    // An empty chunk (a sync with no messages) is consistent too.
    let empty = Chunk::new([0; 16], 0, 1, vec![], vec![]);
    empty.verify().unwrap();
    assert_eq!((empty.count(), empty.oldest_ts, empty.newest_ts), (0, 0, 0));
}

#[test]
fn a_chunk_whose_text_was_changed_fails_its_digest() {
    let mut c = chunk(4, 1, 3, 30);
    c.messages[17].text.push('!');
    assert_eq!(bad_chunk(&c), "its digest does not match its messages");
    let error = c.verify().unwrap_err();
    assert_eq!(
        error.to_string(),
        "chunk 1 refused: its digest does not match its messages"
    );
    // Reordering, dropping or flipping a flag is caught the same way.
    let mut c = chunk(4, 1, 3, 30);
    c.messages.swap(0, 1);
    assert_eq!(bad_chunk(&c), "its digest does not match its messages");
    let mut c = chunk(4, 1, 3, 30);
    c.messages.pop();
    assert_eq!(bad_chunk(&c), "its digest does not match its messages");
    let mut c = chunk(4, 1, 3, 30);
    c.messages[3].deleted = !c.messages[3].deleted;
    assert_eq!(bad_chunk(&c), "its digest does not match its messages");
}

#[test]
fn a_chunk_whose_time_range_does_not_match_its_messages_is_refused() {
    let good = chunk(5, 0, 2, 10);
    for (old, new) in [(-1, 0), (1, 0), (0, 1), (0, -1)] {
        let mut c = good.clone();
        c.oldest_ts += old;
        c.newest_ts += new;
        assert_eq!(
            bad_chunk(&c),
            "its time range does not match its messages",
            "{old} {new}"
        );
    }
}

#[test]
fn a_chunk_holding_a_message_of_a_chat_it_does_not_carry_is_refused() {
    let mut c = chunk(6, 0, 2, 10);
    let dropped = c.chats.remove(1);
    let hex: String = dropped.id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        bad_chunk(&c),
        format!("a message's chat {hex} is not in the chunk")
    );
}

#[test]
fn a_chunk_numbered_beyond_the_total_is_refused() {
    for (index, total) in [(3, 3), (4, 3), (0, 0), (u32::MAX, u32::MAX)] {
        let c = chunk(7, index, total, 5);
        assert_eq!(
            bad_chunk(&c),
            format!("index beyond the total {total}"),
            "{index}/{total}"
        );
    }
    chunk(7, 2, 3, 5).verify().unwrap();
}

#[test]
fn a_chunk_with_an_unknown_delivery_status_is_refused() {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let chats = vec![chat(id(&mut rng), "Bob")];
    let mut msgs = messages(&mut rng, &chats, 3);
    msgs[1].status = 4;
    let c = Chunk::new([8; 16], 0, 1, chats, msgs);
    assert_eq!(bad_chunk(&c), "a message has an unknown status");
}

#[test]
fn decode_refuses_garbage_with_a_typed_error() {
    assert!(matches!(
        SyncMessage::decode(b""),
        Err(SyncError::Malformed(_))
    ));
    let cases: [&[u8]; 3] = [b"not zstd at all", &[0x28, 0xB5, 0x2F, 0xFD], &[0; 64]];
    for bytes in cases {
        assert!(
            matches!(SyncMessage::decode(bytes), Err(SyncError::Malformed(ref why)) if why.starts_with("zstd")),
            "{bytes:?}"
        );
    }
    // Valid zstd around bytes that are not a sync message.
    let not_postcard = zstd::bulk::compress(&[0xFF; 40], ZSTD_LEVEL).unwrap();
    assert!(matches!(
        SyncMessage::decode(&not_postcard),
        Err(SyncError::Malformed(_))
    ));
    // A chunk cut short.
    let plain = postcard::to_allocvec(&SyncMessage::Chunk(Box::new(chunk(9, 0, 1, 5)))).unwrap();
    let cut = zstd::bulk::compress(&plain[..plain.len() / 2], ZSTD_LEVEL).unwrap();
    assert!(matches!(
        SyncMessage::decode(&cut),
        Err(SyncError::Malformed(_))
    ));
}

#[test]
fn decode_refuses_trailing_bytes() {
    let message = SyncMessage::Resume {
        sync_id: [4; 16],
        next: 3,
    };
    let mut plain = postcard::to_allocvec(&message).unwrap();
    plain.extend_from_slice(&[0, 0]);
    let bytes = zstd::bulk::compress(&plain, ZSTD_LEVEL).unwrap();
    assert_eq!(
        SyncMessage::decode(&bytes),
        Err(SyncError::Malformed("2 trailing bytes".into()))
    );
    // Two frames back to back: the second one is trailing data too.
    let mut twice = message.encode().unwrap();
    twice.extend_from_slice(&message.encode().unwrap());
    assert!(SyncMessage::decode(&twice).is_err());
}

#[test]
fn a_zstd_bomb_is_refused_without_inflating_it() {
    let zeros = vec![0u8; 9 * 1024 * 1024];
    // A frame that declares its 9 MiB size, and a streamed one that does not declare it.
    let declared = zstd::bulk::compress(&zeros, ZSTD_LEVEL).unwrap();
    let streamed = zstd::stream::encode_all(zeros.as_slice(), ZSTD_LEVEL).unwrap();
    drop(zeros);
    for bomb in [declared, streamed] {
        assert!(bomb.len() < 4096, "{} bytes compressed", bomb.len());
        let started = std::time::Instant::now();
        let result = SyncMessage::decode(&bomb);
        assert!(
            matches!(result, Err(SyncError::Malformed(ref why)) if why.starts_with("zstd")),
            "{result:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

#[test]
fn a_message_of_exactly_the_decompressed_limit_decodes_and_one_byte_more_does_not() {
    let page = |text: String| SyncMessage::Page {
        request_id: 1,
        chat: None,
        messages: vec![SyncedMessage {
            id: [1; 16],
            chat: [2; 16],
            sender_account: None,
            sender_device: None,
            sender_name: String::new(),
            from_me: true,
            ts: 0,
            kind: "text".into(),
            text,
            media_name: None,
            reply_to: None,
            edited_at: None,
            deleted: false,
            status: 0,
        }],
        more: false,
    };
    // The text's length prefix takes 4 bytes for any length from 2^21 to 2^28.
    let probe = 1 << 22;
    let overhead = postcard::to_allocvec(&page("a".repeat(probe)))
        .unwrap()
        .len()
        - probe;
    let at_limit = page("a".repeat(MAX_DECOMPRESSED_LEN - overhead));
    assert_eq!(
        postcard::to_allocvec(&at_limit).unwrap().len(),
        MAX_DECOMPRESSED_LEN
    );
    assert_eq!(
        SyncMessage::decode(&at_limit.encode().unwrap()).unwrap(),
        at_limit
    );
    let over = page("a".repeat(MAX_DECOMPRESSED_LEN - overhead + 1));
    assert!(matches!(
        SyncMessage::decode(&over.encode().unwrap()),
        Err(SyncError::Malformed(_))
    ));
}

#[test]
fn the_chunk_digest_is_sha256_of_the_postcard_messages() {
    let c = chunk(10, 0, 1, 12);
    let expected: [u8; 32] = Sha256::digest(postcard::to_allocvec(&c.messages).unwrap()).into();
    assert_eq!(digest(&c.messages), expected);
    let empty: [u8; 32] = Sha256::digest([0u8]).into();
    assert_eq!(
        digest(&[]),
        empty,
        "an empty list is postcard's single 0 byte"
    );
}

#[test]
fn the_running_digest_follows_its_formula_and_depends_on_order_and_index() {
    let (a, b) = ([0xAA; 32], [0xBB; 32]);
    let mut by_hand = Sha256::new();
    by_hand.update(CHAIN_START);
    by_hand.update(0u32.to_le_bytes());
    by_hand.update(a);
    let first: [u8; 32] = by_hand.finalize().into();
    assert_eq!(chain(&CHAIN_START, 0, &a), first);
    assert_eq!(CHAIN_START, [0; 32]);

    let ab = chain(&chain(&CHAIN_START, 0, &a), 1, &b);
    let ba = chain(&chain(&CHAIN_START, 0, &b), 1, &a);
    assert_ne!(ab, ba, "swapping two chunks changes the running digest");
    assert_ne!(
        chain(&CHAIN_START, 0, &a),
        chain(&CHAIN_START, 1, &a),
        "the index is part of it"
    );
    assert_ne!(
        chain(&CHAIN_START, 0, &a),
        chain(&[1; 32], 0, &a),
        "and so is the previous digest"
    );
    // Deterministic.
    assert_eq!(ab, chain(&chain(&CHAIN_START, 0, &a), 1, &b));
}

#[test]
fn the_receiver_imports_the_next_chunk_acks_old_ones_again_and_drops_ones_beyond_a_gap() {
    assert_eq!(receive_decision(0, 0), ChunkDecision::Import);
    assert_eq!(receive_decision(5, 5), ChunkDecision::Import);
    assert_eq!(receive_decision(5, 0), ChunkDecision::AckAgain);
    assert_eq!(receive_decision(5, 4), ChunkDecision::AckAgain);
    assert_eq!(receive_decision(5, 6), ChunkDecision::Drop);
    assert_eq!(receive_decision(0, u32::MAX), ChunkDecision::Drop);
    assert_eq!(receive_decision(u32::MAX, u32::MAX), ChunkDecision::Import);
    assert_eq!(receive_decision(u32::MAX, 0), ChunkDecision::AckAgain);
}

#[test]
fn the_sender_keeps_at_most_the_window_of_chunks_unacknowledged() {
    let mut window = SenderWindow::new(10, 0, 0, CHAIN_START);
    assert_eq!(window.take_sendable(), 0..SEND_WINDOW);
    assert!(window.take_sendable().is_empty(), "nothing until an ack");
    assert_eq!(window.on_ack(0, &[1; 32], 100), AckOutcome::Progress);
    assert_eq!(window.take_sendable(), SEND_WINDOW..SEND_WINDOW + 1);
    assert_eq!(window.on_ack(1, &[2; 32], 100), AckOutcome::Progress);
    assert_eq!(window.on_ack(2, &[3; 32], 100), AckOutcome::Progress);
    assert_eq!(window.take_sendable(), SEND_WINDOW + 1..SEND_WINDOW + 3);
    assert_eq!(window.next, SEND_WINDOW + 3);
    assert_eq!(window.acked, 3);
    // A small sync sends everything at once.
    let mut small = SenderWindow::new(2, 0, 0, CHAIN_START);
    assert_eq!(small.take_sendable(), 0..2);
    assert!(small.take_sendable().is_empty());
}

#[test]
fn acks_in_order_advance_the_count_and_the_running_digest() {
    let chunks: Vec<Chunk> = (0..3).map(|i| chunk(11 + i, u32::from(i), 3, 20)).collect();
    let mut window = SenderWindow::new(3, 0, 0, CHAIN_START);
    let mut expected = CHAIN_START;
    for (i, c) in chunks.iter().enumerate() {
        let index = u32::try_from(i).unwrap();
        let outcome = window.on_ack(index, &c.digest, c.count());
        expected = chain(&expected, index, &c.digest);
        assert_eq!(window.acked, index + 1);
        assert_eq!(window.acked_messages, 20 * u64::from(index + 1));
        assert_eq!(window.chain, expected);
        let last = i == chunks.len() - 1;
        assert_eq!(
            outcome,
            if last {
                AckOutcome::Complete
            } else {
                AckOutcome::Progress
            }
        );
        assert_eq!(window.is_complete(), last);
    }
}

#[test]
fn out_of_order_and_duplicate_acks_are_stale_and_change_nothing() {
    let mut window = SenderWindow::new(6, 0, 0, CHAIN_START);
    window.take_sendable();
    assert_eq!(window.on_ack(0, &[1; 32], 10), AckOutcome::Progress);
    let before = window.clone();
    for (index, why) in [
        (0, "duplicate"),
        (2, "ahead of 1"),
        (5, "far ahead"),
        (99, "unknown"),
    ] {
        assert_eq!(
            window.on_ack(index, &[7; 32], 10),
            AckOutcome::Stale,
            "{why}"
        );
        assert_eq!(window, before, "{why}");
    }
    assert_eq!(window.on_ack(1, &[2; 32], 10), AckOutcome::Progress);
}

#[test]
fn resume_sends_again_from_the_last_acknowledged_chunk() {
    let mut window = SenderWindow::new(10, 0, 0, CHAIN_START);
    assert_eq!(window.take_sendable(), 0..4);
    assert_eq!(window.on_ack(0, &[1; 32], 5), AckOutcome::Progress);
    assert_eq!(window.on_ack(1, &[2; 32], 5), AckOutcome::Progress);
    assert_eq!(window.take_sendable(), 4..6);
    // The device reconnects (it may say it holds more than this side saw acknowledged).
    window.on_resume();
    assert_eq!(
        window.take_sendable(),
        2..6,
        "chunks 2.. again, within the window"
    );
    // A phone restarted from its stored progress resumes the same way.
    let chain_so_far = window.chain;
    let mut restarted = SenderWindow::new(10, 2, 10, chain_so_far);
    assert_eq!(restarted.next, 2);
    assert_eq!(restarted.take_sendable(), 2..6);
    assert_eq!(restarted.on_ack(2, &[3; 32], 5), AckOutcome::Progress);
    assert_eq!(
        restarted.chain,
        chain(
            &chain(&chain(&CHAIN_START, 0, &[1; 32]), 1, &[2; 32]),
            2,
            &[3; 32]
        )
    );
    assert_eq!(restarted.acked_messages, 15);
}

#[test]
fn the_last_ack_completes_the_sync_and_nothing_follows() {
    let mut window = SenderWindow::new(2, 0, 0, CHAIN_START);
    window.take_sendable();
    assert_eq!(window.on_ack(0, &[1; 32], 1), AckOutcome::Progress);
    assert!(!window.is_complete());
    assert_eq!(window.on_ack(1, &[2; 32], 1), AckOutcome::Complete);
    assert!(window.is_complete());
    assert_eq!(window.on_ack(1, &[2; 32], 1), AckOutcome::Stale);
    assert_eq!(window.on_ack(2, &[2; 32], 1), AckOutcome::Stale);
    window.on_resume();
    assert!(window.take_sendable().is_empty());
    assert_eq!(window.acked_messages, 2);
}

#[test]
fn a_sync_of_zero_chunks_is_complete_at_once() {
    let mut window = SenderWindow::new(0, 0, 0, CHAIN_START);
    assert!(window.is_complete());
    assert!(window.take_sendable().is_empty());
    assert_eq!(window.on_ack(0, &[0; 32], 0), AckOutcome::Stale);
    assert_eq!(window.chain, CHAIN_START);
}

/// The phone's window and the device's `receive_decision` over a lossy link: some chunks and
/// acks vanish, the device restarts and resumes; in the end every chunk is imported once and
/// both sides agree on the counts and the running digest.
#[test]
fn a_sync_over_a_lossy_link_with_a_restart_ends_with_both_sides_agreeing() {
    let total = 9u32;
    let chunks: Vec<Chunk> = (0..total)
        .map(|i| {
            chunk(
                20 + u8::try_from(i).unwrap(),
                i,
                total,
                7 + usize::try_from(i).unwrap(),
            )
        })
        .collect();
    let mut rng = ChaCha20Rng::from_seed([30; 32]);
    let mut phone = SenderWindow::new(total, 0, 0, CHAIN_START);
    // The device: chunks held (committed), and its own running digest.
    let mut held = 0u32;
    let mut device_chain = CHAIN_START;
    let mut imported = Vec::new();
    let mut rounds = 0;
    let mut completed = 0;
    while !phone.is_complete() {
        rounds += 1;
        assert!(rounds < 100, "the sync makes progress");
        let mut acks = Vec::new();
        for index in phone.take_sendable() {
            // The chunk travels encoded; one in four is lost on the way.
            if rng.next_u32() % 4 == 0 {
                continue;
            }
            let bytes =
                SyncMessage::Chunk(Box::new(chunks[usize::try_from(index).unwrap()].clone()))
                    .encode()
                    .unwrap();
            let SyncMessage::Chunk(received) = SyncMessage::decode(&bytes).unwrap() else {
                panic!("not a chunk")
            };
            received.verify().unwrap();
            match receive_decision(held, received.index) {
                ChunkDecision::Import => {
                    imported.push(received.index);
                    device_chain = chain(&device_chain, received.index, &received.digest);
                    held += 1;
                    acks.push((received.index, received.digest, received.count()));
                }
                ChunkDecision::AckAgain => {
                    acks.push((received.index, received.digest, received.count()));
                }
                ChunkDecision::Drop => {}
            }
        }
        for (index, digest, count) in acks {
            // One ack in three is lost (the device committed, then its ack vanished).
            if rng.next_u32() % 3 == 0 {
                continue;
            }
            if phone.on_ack(index, &digest, count) == AckOutcome::Complete {
                completed += 1;
            }
        }
        // Chunks stopped coming: the device asks to resume.
        phone.on_resume();
    }
    assert_eq!(completed, 1, "Complete is reported once");
    assert_eq!(
        imported,
        (0..total).collect::<Vec<_>>(),
        "each chunk imported once, in order"
    );
    assert_eq!(phone.chain, device_chain);
    let sent: u64 = chunks.iter().map(Chunk::count).sum();
    assert_eq!(phone.acked_messages, sent);
}

#[test]
fn a_chunk_of_1000_realistic_messages_compresses_far_below_the_envelope_limit() {
    let mut rng = ChaCha20Rng::from_seed([31; 32]);
    let chats: Vec<SyncedChat> = ["Bob", "Carol", "Family 👪", "Work", "Football club"]
        .iter()
        .map(|name| chat(id(&mut rng), name))
        .collect();
    let msgs = messages(&mut rng, &chats, CHUNK_MESSAGES);
    let text: usize = msgs.iter().map(|m| m.text.chars().count()).sum();
    let average = text / msgs.len();
    assert!(
        (70..=90).contains(&average),
        "about 80 characters each: {average}"
    );
    let raw: usize = msgs.iter().map(SyncedMessage::raw_len).sum();
    let c = Chunk::new([31; 16], 0, 1, chats, msgs);
    c.verify().unwrap();
    let message = SyncMessage::Chunk(Box::new(c));
    let plain = postcard::to_allocvec(&message).unwrap().len();
    let bytes = message.encode().unwrap();
    println!(
        "1000 messages, {average} chars average: raw estimate {raw} B, postcard {plain} B, zstd-{ZSTD_LEVEL} {} B ({:.1} KiB, ratio {:.2})",
        bytes.len(),
        bytes.len() as f64 / 1024.0,
        plain as f64 / bytes.len() as f64
    );
    assert!(
        raw <= CHUNK_RAW_BUDGET,
        "the planner's estimate fits its budget: {raw}"
    );
    assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
    assert_eq!(SyncMessage::decode(&bytes).unwrap(), message);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        match SyncMessage::decode(&bytes) {
            Ok(message) => prop_assert_eq!(SyncMessage::decode(&message.encode().unwrap()), Ok(message)),
            Err(error) => prop_assert!(matches!(error, SyncError::Malformed(_)), "{:?}", error),
        }
    }

    #[test]
    fn random_bytes_inside_valid_zstd_never_panic_the_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let framed = zstd::bulk::compress(&bytes, 1).unwrap();
        if let Ok(message) = SyncMessage::decode(&framed) {
            // What decodes is exactly what was inside.
            prop_assert_eq!(postcard::to_allocvec(&message).unwrap(), bytes);
        }
    }

    #[test]
    fn mutated_chunks_never_panic_and_a_changed_chunk_never_verifies(
        at in any::<usize>(),
        xor in 1u8..=255,
        compressed in any::<bool>(),
    ) {
        let original = chunk(40, 1, 3, 20);
        let message = SyncMessage::Chunk(Box::new(original.clone()));
        let bytes = if compressed {
            let mut bytes = message.encode().unwrap();
            let len = bytes.len();
            bytes[at % len] ^= xor;
            bytes
        } else {
            let mut plain = postcard::to_allocvec(&message).unwrap();
            let len = plain.len();
            plain[at % len] ^= xor;
            zstd::bulk::compress(&plain, ZSTD_LEVEL).unwrap()
        };
        if let Ok(SyncMessage::Chunk(decoded)) = SyncMessage::decode(&bytes)
            && *decoded != original
            && decoded.verify().is_ok()
        {
            // Only fields outside the digest may differ: the sync id, index, total or chats.
            prop_assert_eq!(&decoded.messages, &original.messages);
        }
    }

    #[test]
    fn the_window_never_sends_beyond_the_window_and_completes_once(
        total in 0u32..20,
        steps in proptest::collection::vec((0u8..3, 0u32..24), 0..80),
    ) {
        let mut window = SenderWindow::new(total, 0, 0, CHAIN_START);
        let mut completes = 0;
        for (action, index) in steps {
            match action {
                0 => {
                    let range = window.take_sendable();
                    prop_assert!(range.start >= window.acked || range.is_empty());
                    prop_assert!(range.end <= total);
                    prop_assert!(range.end <= window.acked + SEND_WINDOW);
                }
                1 => {
                    let before = window.acked;
                    match window.on_ack(index, &[index as u8; 32], 1) {
                        AckOutcome::Stale => prop_assert_eq!(window.acked, before),
                        AckOutcome::Progress => prop_assert_eq!(window.acked, before + 1),
                        AckOutcome::Complete => {
                            completes += 1;
                            prop_assert_eq!(window.acked, total);
                        }
                    }
                }
                _ => window.on_resume(),
            }
            prop_assert!(window.acked <= total);
            prop_assert_eq!(window.acked_messages, u64::from(window.acked));
        }
        prop_assert!(completes <= 1);
        prop_assert_eq!(completes == 1, window.is_complete() && total > 0);
    }
}

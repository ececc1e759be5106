use proptest::prelude::*;
use tandem_crypto::{AccountId, DeviceId};
use tandem_proto::sync::Chunk;

use super::*;
use crate::testkit::{NOW, chat, message_id, new_message, synced};

fn account(n: u8) -> AccountId {
    AccountId::from_bytes([n; 16])
}

/// One of every message, variant by variant.
fn catalogue() -> Vec<Message> {
    let c = ChatId([1; 16]);
    let request = |id, body| Message::Request(Request { id, body });
    let event = |seq, body| Message::Event(Event { seq, body });
    let chunk = Chunk::new([4; 16], 0, 2, vec![chat(1)], vec![synced(1, 1, "hello")]);
    vec![
        request(
            1,
            RequestBody::Send {
                chat: c,
                message: message_id(1),
                text: "hi".into(),
                reply_to: Some(message_id(0)),
            },
        ),
        request(
            2,
            RequestBody::React {
                chat: c,
                message: message_id(1),
                emoji: "👍".into(),
            },
        ),
        request(
            3,
            RequestBody::Edit {
                chat: c,
                message: message_id(1),
                text: "hi!".into(),
            },
        ),
        request(
            4,
            RequestBody::Delete {
                chat: c,
                message: message_id(1),
            },
        ),
        request(
            5,
            RequestBody::MarkRead {
                chat: c,
                up_to: message_id(1),
            },
        ),
        request(
            6,
            RequestBody::PageOlder {
                chat: c,
                before: Some((NOW, message_id(1))),
                limit: 50,
            },
        ),
        request(
            7,
            RequestBody::Search {
                query: "lunch".into(),
                chat: None,
                limit: 20,
            },
        ),
        request(8, RequestBody::Typing { chat: c, on: true }),
        request(
            9,
            RequestBody::Sync(SyncMessage::Resume {
                sync_id: [4; 16],
                next: 1,
            }),
        ),
        Message::Response(Response {
            id: 1,
            result: Ok(Reply::Message(synced(1, 1, "hi"))),
        }),
        Message::Response(Response {
            id: 6,
            result: Ok(Reply::Page(Page {
                chats: vec![chat(1)],
                messages: vec![synced(2, 1, "b"), synced(1, 1, "a")],
                more: true,
            })),
        }),
        Message::Response(Response {
            id: 2,
            result: Ok(Reply::Done),
        }),
        Message::Response(Response {
            id: 3,
            result: Err(Failure {
                kind: FailureKind::NotFound,
                message: "no such message".into(),
            }),
        }),
        event(1, new_message(1)),
        event(
            2,
            EventBody::Edited {
                chat: c,
                message: message_id(1),
                text: "edited".into(),
                edited_at: NOW,
            },
        ),
        event(
            3,
            EventBody::Deleted {
                chat: c,
                message: message_id(1),
            },
        ),
        event(
            4,
            EventBody::Reaction {
                chat: c,
                message: message_id(1),
                by: Some(account(3)),
                emoji: String::new(),
            },
        ),
        event(
            5,
            EventBody::Receipt {
                chat: c,
                message: message_id(1),
                kind: ReceiptKind::Read,
                by: None,
            },
        ),
        event(
            6,
            EventBody::ChatRead {
                chat: c,
                up_to: message_id(1),
            },
        ),
        event(
            7,
            EventBody::DeviceChange {
                device: DeviceId::new(account(1), 2),
                name: "Laptop".into(),
                platform: "linux".into(),
                change: DeviceChangeKind::Linked,
                at: NOW,
            },
        ),
        event(
            0,
            EventBody::Typing {
                chat: c,
                who: account(3),
                on: true,
            },
        ),
        event(
            0,
            EventBody::Presence {
                account: account(3),
                online: false,
                last_seen: Some(NOW),
            },
        ),
        event(0, EventBody::Sync(SyncMessage::Chunk(Box::new(chunk)))),
        Message::Ack { up_to: 7 },
        Message::Ping { nonce: 9 },
        Message::Pong { nonce: 9 },
        Message::Close {
            reason: CloseReason::Replaced,
        },
        Message::Close {
            reason: CloseReason::protocol_error(&Error::FrameAfterClose),
        },
    ]
}

#[test]
fn every_message_round_trips() {
    for message in catalogue() {
        let bytes = message.encode().unwrap();
        assert_eq!(bytes[0], PROTOCOL_VERSION);
        assert_eq!(
            Message::decode(&bytes).unwrap(),
            message,
            "{}",
            message.name()
        );
    }
}

#[test]
fn the_decoder_names_what_is_wrong() {
    let bytes = Message::Ping { nonce: 1 }.encode().unwrap();
    assert!(matches!(Message::decode(&[]), Err(Error::Malformed { .. })));
    let mut newer = bytes.clone();
    newer[0] = 2;
    assert!(matches!(
        Message::decode(&newer),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
    assert!(matches!(
        Message::decode(&[1, 99]),
        Err(Error::UnknownVariant { .. })
    ));
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(&[0, 0]);
    assert!(matches!(
        Message::decode(&trailing),
        Err(Error::TrailingBytes { count: 2, .. })
    ));
    assert!(matches!(
        Message::decode(&vec![1u8; MAX_MESSAGE_LEN + 1]),
        Err(Error::MessageTooLarge { .. })
    ));
    assert!(matches!(
        Message::decode(&bytes[..1]),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn the_variant_counts_match_the_encoder_and_unknown_tags_are_named() {
    let close = Message::Close {
        reason: CloseReason::protocol_error(&Error::Closed),
    };
    assert_eq!(close.encode().unwrap()[1..3], [6, 5]);
    assert_eq!((MESSAGE_VARIANTS, CLOSE_VARIANTS), (7, 6));
    let sync = Message::Request(Request {
        id: 9,
        body: RequestBody::Sync(SyncMessage::Resume {
            sync_id: [0; 16],
            next: 0,
        }),
    });
    assert_eq!(
        sync.encode().unwrap()[1..4],
        [0, 9, REQUEST_VARIANTS as u8 - 1]
    );
    let event = Message::Event(Event {
        seq: 0,
        body: EventBody::Sync(SyncMessage::Unknown { sync_id: [0; 16] }),
    });
    assert_eq!(
        event.encode().unwrap()[1..4],
        [2, 0, EVENT_VARIANTS as u8 - 1]
    );
    let page = Message::Response(Response {
        id: 6,
        result: Ok(Reply::Page(Page {
            chats: vec![],
            messages: vec![],
            more: false,
        })),
    });
    assert_eq!(
        page.encode().unwrap()[1..5],
        [1, 6, 0, REPLY_VARIANTS as u8 - 1]
    );
    let internal = Message::Response(Response {
        id: 6,
        result: Err(Failure {
            kind: FailureKind::Internal,
            message: String::new(),
        }),
    });
    assert_eq!(
        internal.encode().unwrap()[1..5],
        [1, 6, 1, FAILURE_VARIANTS as u8 - 1]
    );

    for (bytes, what) in [
        (&[1u8, 7][..], "message variant 7"),
        (&[1, 0, 1, 9, 0][..], "request variant 9"),
        (&[1, 1, 1, 0, 3][..], "reply variant 3"),
        (&[1, 1, 1, 1, 5, 0][..], "failure kind variant 5"),
        (&[1, 2, 0, 10][..], "event variant 10"),
        (&[1, 2, 0x80, 0x01, 200, 1][..], "event variant 200"),
        (&[1, 6, 6][..], "close reason variant 6"),
    ] {
        match Message::decode(bytes) {
            Err(Error::UnknownVariant { reason, .. }) => {
                assert!(reason.starts_with(what), "{reason}")
            }
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
    assert!(matches!(
        EventBody::decode(&[1, 12]),
        Err(Error::UnknownVariant { .. })
    ));
    // A known tag with bad content is malformed, not unknown.
    assert!(matches!(
        Message::decode(&[1, 2, 1, 3]),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn limits_are_enforced_on_both_sides() {
    let c = ChatId([1; 16]);
    let too_long = Message::Request(Request {
        id: 1,
        body: RequestBody::Send {
            chat: c,
            message: message_id(1),
            text: "x".repeat(MAX_TEXT_LEN + 1),
            reply_to: None,
        },
    });
    assert!(matches!(too_long.encode(), Err(Error::Malformed { .. })));
    // The decoder refuses it too, when a peer encodes it without the check.
    let raw = postcard::to_extend(&too_long, vec![PROTOCOL_VERSION]).unwrap();
    assert!(matches!(
        Message::decode(&raw),
        Err(Error::Malformed { .. })
    ));

    for limit in [0, 51] {
        let page = Message::Request(Request {
            id: 1,
            body: RequestBody::PageOlder {
                chat: c,
                before: None,
                limit,
            },
        });
        assert!(page.encode().is_err(), "limit {limit}");
    }
    let empty_search = Message::Request(Request {
        id: 1,
        body: RequestBody::Search {
            query: "  ".into(),
            chat: None,
            limit: 5,
        },
    });
    assert!(empty_search.encode().is_err());
    let logged_without_seq = Message::Event(Event {
        seq: 0,
        body: new_message(1),
    });
    assert!(logged_without_seq.encode().is_err());
    let typing_with_seq = Message::Event(Event {
        seq: 3,
        body: EventBody::Typing {
            chat: c,
            who: account(1),
            on: true,
        },
    });
    assert!(typing_with_seq.encode().is_err());
    let chunk_from_desktop = Message::Request(Request {
        id: 1,
        body: RequestBody::Sync(SyncMessage::Unknown { sync_id: [1; 16] }),
    });
    assert!(chunk_from_desktop.encode().is_err());
    let mut forged = Chunk::new([4; 16], 0, 1, vec![chat(1)], vec![synced(1, 1, "a")]);
    forged.digest = [0; 32];
    let forged_chunk = Message::Event(Event {
        seq: 0,
        body: EventBody::Sync(SyncMessage::Chunk(Box::new(forged))),
    });
    assert!(forged_chunk.encode().is_err());
    let other_chat = Message::Event(Event {
        seq: 1,
        body: EventBody::Message {
            message: synced(1, 1, "a"),
            chat: Some(chat(2)),
        },
    });
    assert!(other_chat.encode().is_err());
}

#[test]
fn event_bodies_encode_alone_for_the_log() {
    for message in catalogue() {
        if let Message::Event(Event { body, .. }) = message {
            let bytes = body.encode().unwrap();
            assert_eq!(EventBody::decode(&bytes).unwrap(), body);
        }
    }
    assert!(EventBody::decode(&[1, 200]).is_err());
}

#[test]
fn close_reasons_read_well_and_are_cut_to_the_limit() {
    let long = Error::Malformed {
        what: "message",
        reason: "é".repeat(MAX_REASON_LEN),
    };
    let reason = CloseReason::protocol_error(&long);
    let CloseReason::ProtocolError { kind, detail } = &reason else {
        unreachable!()
    };
    assert_eq!(kind, "malformed");
    assert!(detail.len() <= MAX_REASON_LEN);
    assert!(reason.to_string().starts_with("protocol error (malformed)"));
    assert_eq!(
        CloseReason::ResumeNeeded.to_string(),
        "events were missed; reconnecting"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_are_refused_with_a_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::decode(&bytes);
        let _ = EventBody::decode(&bytes);
        let mut versioned = vec![PROTOCOL_VERSION];
        versioned.extend_from_slice(&bytes);
        if let Ok(message) = Message::decode(&versioned) {
            // Whatever decodes is valid and encodes back to the same value.
            prop_assert_eq!(Message::decode(&message.encode().unwrap()).unwrap(), message);
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        which in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let all = catalogue();
        let message = &all[which.index(all.len())];
        let mut bytes = message.encode().unwrap();
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Ok(decoded) = Message::decode(&bytes) {
            prop_assert!(decoded.validate().is_ok());
        }
        let bytes = message.encode().unwrap();
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(Message::decode(short).is_err());
    }
}

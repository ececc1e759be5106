//! Stories about envelopes between alice's and bob's devices: every body kind, late and
//! repeated delivery, strangers, tampering, restarts and rekeying.

use proptest::prelude::*;
use tandem_crypto::{DeviceId, PairwiseSession, RekeyPolicy};

use super::*;
use crate::header::{FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_ENVELOPE_LEN};
use crate::testkit::{Person, T0, World};
use crate::{ChatId, ChatRef, Envelope, Flags, LocalChat, ReceiptKind};
use tandem_crypto::rng::SeedableRng;

fn every_body(world: &mut World) -> Vec<Body> {
    let chat = world.chat();
    let target = MessageId::new_v7(T0 - 5, &mut world.rng).unwrap();
    let group = ChatRef::Group {
        id: ChatId::random(&mut world.rng),
    };
    let link = tandem_crypto::ContactLink::new(world.bob.account.public_key(), "Bob")
        .unwrap()
        .to_string();
    vec![
        Body::Text {
            chat,
            text: "hello bob 👋".into(),
        },
        Body::Reply {
            chat: group,
            quoted: target,
            text: "quoting".into(),
        },
        Body::Reaction {
            chat,
            target,
            emoji: "👍".into(),
        },
        Body::Reaction {
            chat,
            target,
            emoji: String::new(),
        },
        Body::Edit {
            chat,
            target,
            text: "fixed typo".into(),
        },
        Body::Delete { chat, target },
        Body::Receipt {
            kind: ReceiptKind::Read,
            ids: vec![target, target],
        },
        Body::Typing { chat, on: true },
        Body::HistoryChunk {
            bytes: vec![0, 1, 2, 255],
        },
        Body::DeviceListNotice {
            list: world
                .alice
                .list
                .sign(&world.alice.account)
                .unwrap()
                .to_bytes()
                .unwrap(),
        },
        Body::Unlink {
            device: DeviceId::new(world.alice.id(), 3),
        },
        Body::ContactCard { link },
        Body::ChatState {
            chat: group,
            muted: true,
            pinned: false,
            archived: true,
            read_up_to: Some(target),
        },
        Body::GroupInfo {
            id: ChatId([4; 16]),
            version: 1,
            name: "Weekend".into(),
            members: vec![crate::body::GroupMember {
                account_key: world.alice.account.public_key(),
                name: "Alice".into(),
            }],
        },
    ]
}

#[test]
fn every_body_kind_travels_from_alice_to_bob() {
    let mut world = World::new(1);
    let bodies = every_body(&mut world);
    let kinds: std::collections::BTreeSet<_> = bodies.iter().map(Body::kind).collect();
    assert_eq!(kinds.len(), Kind::ALL.len(), "the list covers every kind");
    for body in bodies {
        let bytes = world.alice_sends(&body);
        let opened = world.bob_opens(&bytes).unwrap();
        assert_eq!(opened.body, OpenedBody::Known(body.clone()));
        assert_eq!(opened.header.kind, body.kind().byte());
        assert_eq!(opened.header.sender, world.alice.device(0).id);
        assert_eq!(opened.header.recipient, world.bob.device(0).id);
        assert_eq!(opened.header.timestamp_ms, world.now_ms);
    }
}

#[test]
fn alice_and_bob_file_a_direct_message_under_each_other() {
    let world = World::new(1);
    let chat = world.chat();
    // Bob files alice's message under the chat with alice; alice's laptop under the chat with bob.
    assert_eq!(
        chat.local_chat(&world.bob.id(), &world.alice.id()),
        LocalChat::Direct {
            peer: world.alice.id()
        }
    );
    assert_eq!(
        chat.local_chat(&world.alice.id(), &world.alice.id()),
        LocalChat::Direct {
            peer: world.bob.id()
        }
    );
}

#[test]
fn messages_arriving_out_of_order_all_open() {
    let mut world = World::new(2);
    let sent: Vec<_> = (0..5)
        .map(|i| world.alice_sends(&world.text(&format!("m{i}"))))
        .collect();
    for i in [4, 0, 2, 1, 3] {
        let opened = world.bob_opens(&sent[i]).unwrap();
        assert_eq!(opened.body, OpenedBody::Known(world.text(&format!("m{i}"))));
    }
}

#[test]
fn the_same_envelope_twice_is_refused() {
    let mut world = World::new(3);
    let bytes = world.alice_sends(&world.text("once"));
    world.bob_opens(&bytes).unwrap();
    assert!(matches!(
        world.bob_opens(&bytes),
        Err(Error::CounterReplay { counter: 0, .. })
    ));
}

#[test]
fn the_same_message_id_in_a_new_envelope_is_refused() {
    // Alice's outbox retried after a restart: same message id, new counter.
    let mut world = World::new(4);
    let id = MessageId::new_v7(T0, &mut world.rng).unwrap();
    let first = world.alice_sends_as(id, &world.text("hi"));
    let retry = world.alice_sends_as(id, &world.text("hi"));
    world.bob_opens(&first).unwrap();
    assert_eq!(world.bob_opens(&retry), Err(Error::Replay { id }));
}

#[test]
fn a_device_missing_from_the_list_is_refused() {
    let mut world = World::new(5);
    let old_list = world.alice.list.clone();
    let laptop = world.alice.link("laptop", &mut world.rng);
    let laptop_id = world.alice.device(laptop).id;
    let bob_id = world.bob.device(0).id;
    let mut laptop_out = PairwiseSession::new(laptop_id, bob_id);
    let session = laptop_out
        .outbound(
            &world.alice.device(laptop).keys,
            &world.bob.device(0).keys.public_keys(),
            world.now_ms,
            &RekeyPolicy::default(),
            &mut world.rng,
        )
        .unwrap();
    let params = SealParams {
        message_id: MessageId::new_v7(T0, &mut world.rng).unwrap(),
        timestamp_ms: T0,
        flags: Flags::NONE,
    };
    let bytes = seal_envelope(session, &params, &world.text("from the laptop")).unwrap();
    let envelope = Envelope::decode(&bytes).unwrap();
    let mut bob_from_laptop = PairwiseSession::new(bob_id, laptop_id);
    // Bob still has the list from before the laptop was linked.
    let result = open_envelope(
        &envelope,
        &world.bob.device(0).keys,
        &mut bob_from_laptop,
        &old_list,
        &mut world.bob_guard,
        world.now_ms,
    );
    assert_eq!(
        result,
        Err(Error::NotInDeviceList {
            device: laptop_id,
            version: 1
        })
    );
    // With the new list it opens.
    let new_list = world.alice.list.clone();
    let opened = open_envelope(
        &envelope,
        &world.bob.device(0).keys,
        &mut bob_from_laptop,
        &new_list,
        &mut world.bob_guard,
        world.now_ms,
    )
    .unwrap();
    assert_eq!(opened.header.sender, laptop_id);
}

#[test]
fn an_envelope_checked_against_another_accounts_list_is_refused() {
    let mut world = World::new(6);
    let bytes = world.alice_sends(&world.text("hi"));
    let carol = Person::new(&mut world.rng);
    assert!(matches!(
        world.bob_opens_with_list(&bytes, &carol.list),
        Err(Error::UnknownSender { .. })
    ));
}

#[test]
fn a_stranger_claiming_to_be_alices_phone_is_refused() {
    let mut world = World::new(7);
    let mallory = Person::new(&mut world.rng);
    let alice_phone = world.alice.device(0).id;
    let bob_phone = world.bob.device(0).id;
    let mut fake = PairwiseSession::new(alice_phone, bob_phone);
    let session = fake
        .outbound(
            &mallory.device(0).keys,
            &world.bob.device(0).keys.public_keys(),
            T0,
            &RekeyPolicy::default(),
            &mut world.rng,
        )
        .unwrap();
    let params = SealParams {
        message_id: MessageId::new_v7(T0, &mut world.rng).unwrap(),
        timestamp_ms: T0,
        flags: Flags::NONE,
    };
    let forged = seal_envelope(session, &params, &world.text("it's me, alice")).unwrap();
    assert_eq!(
        world.bob_opens(&forged),
        Err(Error::BadTag {
            sender: alice_phone
        })
    );
    assert!(world.bob_guard.is_empty());
}

#[test]
fn an_envelope_for_another_device_or_with_the_wrong_state_is_refused() {
    let mut world = World::new(8);
    let bytes = world.alice_sends(&world.text("for bob's phone"));
    let envelope = Envelope::decode(&bytes).unwrap();
    let laptop = world.bob.link("laptop", &mut world.rng);
    let laptop_id = world.bob.device(laptop).id;
    let mut laptop_state = PairwiseSession::new(laptop_id, world.alice.device(0).id);
    let list = world.alice.list.clone();
    assert!(matches!(
        open_envelope(
            &envelope,
            &world.bob.device(laptop).keys,
            &mut laptop_state,
            &list,
            &mut world.bob_guard,
            T0
        ),
        Err(Error::WrongRecipient { .. })
    ));
    let mut state_of_someone_else =
        PairwiseSession::new(world.bob.device(0).id, DeviceId::new(world.alice.id(), 7));
    assert!(matches!(
        open_envelope(
            &envelope,
            &world.bob.device(0).keys,
            &mut state_of_someone_else,
            &list,
            &mut world.bob_guard,
            T0
        ),
        Err(Error::WrongSession { .. })
    ));
}

#[test]
fn a_relinked_sender_with_new_keys_is_refused_on_the_old_session() {
    let mut world = World::new(9);
    let first = world.alice_sends(&world.text("one"));
    let second = world.alice_sends(&world.text("two"));
    world.bob_opens(&first).unwrap();
    // Alice's phone index 0 re-linked with new keys (version 2 of her list).
    let mut rng = tandem_crypto::rng::ChaCha20Rng::from_seed([99; 32]);
    let new_phone = tandem_crypto::DeviceKeys::generate(&mut rng);
    let cert = tandem_crypto::DeviceCertificate::issue(
        &world.alice.account,
        &new_phone,
        tandem_crypto::DeviceDescription {
            index: 0,
            keys: new_phone.public_keys(),
            name: "new phone".into(),
            platform: "test".into(),
            linked_at_ms: T0,
        },
    )
    .unwrap();
    let relinked = world.alice.list.successor(T0, vec![cert]).unwrap();
    assert_eq!(
        world.bob_opens_with_list(&second, &relinked),
        Err(Error::KeyMismatch {
            device: world.alice.device(0).id
        })
    );
}

#[test]
fn tampering_with_any_header_byte_is_refused_and_changes_nothing() {
    let mut world = World::new(10);
    let bytes = world.alice_sends(&world.text("integrity"));
    for i in 0..HEADER_LEN {
        for xor in [0x01u8, 0x80] {
            let mut tampered = bytes.clone();
            tampered[i] ^= xor;
            assert!(
                world.bob_opens(&tampered).is_err(),
                "flipping bit {xor:#x} of header byte {i} went unnoticed"
            );
        }
    }
    // Every forgery was refused without touching bob's state: the real envelope still opens.
    assert!(world.bob_guard.is_empty());
    world.bob_opens(&bytes).unwrap();
}

#[test]
fn tampering_with_the_ciphertext_is_refused() {
    let mut world = World::new(11);
    let bytes = world.alice_sends(&world.text("integrity"));
    for i in HEADER_LEN..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x10;
        assert!(matches!(
            world.bob_opens(&tampered),
            Err(Error::BadTag { .. })
        ));
    }
    world.bob_opens(&bytes).unwrap();
}

#[test]
fn sessions_restored_from_bytes_continue() {
    let mut world = World::new(12);
    let first = world.alice_sends(&world.text("before"));
    world.bob_opens(&first).unwrap();
    let alice_state = world.alice_out.to_bytes().unwrap();
    let bob_state = world.bob_in.to_bytes().unwrap();
    // Both apps restart.
    world.alice_out = PairwiseSession::from_bytes(&alice_state).unwrap();
    world.bob_in = PairwiseSession::from_bytes(&bob_state).unwrap();
    let second = world.alice_sends(&world.text("after"));
    let opened = world.bob_opens(&second).unwrap();
    assert_eq!(opened.header.session.counter, 1);
    assert_eq!(
        opened.header.session.session_id,
        Envelope::decode(&first)
            .unwrap()
            .header()
            .session
            .session_id
    );
    assert!(matches!(
        world.bob_opens(&first),
        Err(Error::CounterReplay { .. })
    ));
}

#[test]
fn after_the_rekey_limit_alice_starts_a_new_session_and_bob_follows() {
    let mut world = World::new(13);
    world.policy = RekeyPolicy {
        max_messages: 2,
        max_age_ms: RekeyPolicy::DEFAULT_MAX_AGE_MS,
    };
    let sent: Vec<_> = (0..5)
        .map(|i| world.alice_sends(&world.text(&format!("m{i}"))))
        .collect();
    let sessions: Vec<_> = sent
        .iter()
        .map(|b| Envelope::decode(b).unwrap().header().session)
        .collect();
    assert_eq!(sessions[0].session_id, sessions[1].session_id);
    assert_ne!(sessions[1].session_id, sessions[2].session_id);
    assert_ne!(sessions[3].session_id, sessions[4].session_id);
    assert_eq!(
        sessions.iter().map(|s| s.counter).collect::<Vec<_>>(),
        vec![0, 1, 0, 1, 0]
    );
    for bytes in sent.iter().rev() {
        world.bob_opens(bytes).unwrap();
    }
    assert_eq!(world.bob_in.inbound_sessions().len(), 3);
}

/// Seals a body of an arbitrary kind and flags with the session primitives directly, as a newer
/// client would.
fn seal_raw(world: &mut World, kind: u8, flags: u8, plaintext: &[u8]) -> Vec<u8> {
    let session = world
        .alice_out
        .outbound(
            &world.alice.device(0).keys,
            &world.bob.device(0).keys.public_keys(),
            world.now_ms,
            &world.policy,
            &mut world.rng,
        )
        .unwrap();
    let (session_header, key) = session.next_key().unwrap();
    let header = EnvelopeHeader {
        kind,
        flags: Flags::from_bits(flags),
        message_id: MessageId::new_v7(T0, &mut world.rng).unwrap(),
        sender: session.local(),
        recipient: session.remote(),
        timestamp_ms: T0,
        session: session_header,
        ciphertext_len: u32::try_from(plaintext.len() + 16).unwrap(),
    };
    let mut out = header.encode();
    let ciphertext = key.seal(&out, plaintext).unwrap();
    out.extend_from_slice(&ciphertext);
    out
}

#[test]
fn a_kind_from_a_newer_version_opens_as_unsupported() {
    let mut world = World::new(14);
    let bytes = seal_raw(&mut world, 200, 0, b"poll: lunch?");
    let opened = world.bob_opens(&bytes).unwrap();
    assert_eq!(
        opened.body,
        OpenedBody::Unsupported {
            kind: 200,
            plaintext: b"poll: lunch?".to_vec()
        }
    );
}

#[test]
fn unknown_hint_flags_are_kept_and_unknown_critical_flags_refused() {
    let mut world = World::new(15);
    let hinted = seal_raw(&mut world, Kind::Typing.byte(), 0x0e, &[0, 0]);
    // A typing body needs a chat; build a real one instead of zeros.
    let body = Body::Typing {
        chat: world.chat(),
        on: false,
    };
    let plaintext = body.encode().unwrap();
    let hinted_ok = seal_raw(&mut world, Kind::Typing.byte(), 0x0e, &plaintext);
    assert!(matches!(
        world.bob_opens(&hinted),
        Err(Error::MalformedBody { kind: 7, .. })
    ));
    let opened = world.bob_opens(&hinted_ok).unwrap();
    assert_eq!(opened.header.flags.bits(), 0x0e);
    assert_eq!(opened.body, OpenedBody::Known(body));
    let critical = seal_raw(&mut world, Kind::Typing.byte(), 0x10, &plaintext);
    assert_eq!(
        Envelope::decode(&critical),
        Err(Error::UnknownCriticalFlags { flags: 0x10 })
    );
    let silent = seal_raw(
        &mut world,
        Kind::Typing.byte(),
        Flags::SILENT.bits(),
        &plaintext,
    );
    let opened = world.bob_opens(&silent).unwrap();
    assert!(opened.header.flags.contains(Flags::SILENT));
}

#[test]
fn decoding_is_strict_about_every_framing_error() {
    let mut world = World::new(16);
    let bytes = world.alice_sends(&world.text("x"));
    assert!(matches!(
        Envelope::decode(&bytes[..2]),
        Err(Error::TooShort { .. })
    ));
    assert!(matches!(
        Envelope::decode(&bytes[..HEADER_LEN - 1]),
        Err(Error::TooShort { .. })
    ));
    assert!(matches!(
        Envelope::decode(&bytes[..bytes.len() - 1]),
        Err(Error::TooShort { .. })
    ));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        Envelope::decode(&trailing),
        Err(Error::TrailingBytes { count: 1 })
    );
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert!(matches!(
        Envelope::decode(&magic),
        Err(Error::BadMagic { .. })
    ));
    let mut newer = bytes.clone();
    newer[2] = FORMAT_VERSION + 1;
    assert_eq!(
        Envelope::decode(&newer),
        Err(Error::UnsupportedVersion { found: 2 })
    );
    let mut kind0 = bytes.clone();
    kind0[3] = 0;
    assert_eq!(Envelope::decode(&kind0), Err(Error::ReservedKind));
    let mut huge = MAGIC.to_vec();
    huge.push(FORMAT_VERSION);
    huge.resize(MAX_ENVELOPE_LEN + 1, 0);
    assert!(matches!(
        Envelope::decode(&huge),
        Err(Error::Oversized { .. })
    ));
    let mut declared_huge = bytes.clone();
    declared_huge[121..125].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Envelope::decode(&declared_huge),
        Err(Error::Oversized { .. })
    ));
    let mut declared_tiny = bytes[..HEADER_LEN].to_vec();
    declared_tiny[121..125].copy_from_slice(&15u32.to_be_bytes());
    declared_tiny.extend_from_slice(&[0; 15]);
    assert_eq!(
        Envelope::decode(&declared_tiny),
        Err(Error::CiphertextTooShort { len: 15 })
    );
    let mut v4_id = bytes.clone();
    v4_id[11] = (v4_id[11] & 0x0f) | 0x40;
    assert!(matches!(
        Envelope::decode(&v4_id),
        Err(Error::BadMessageId { .. })
    ));
    let mut far_future = bytes.clone();
    far_future[61] = 0x80;
    assert!(matches!(
        Envelope::decode(&far_future),
        Err(Error::TimestampOutOfRange { .. })
    ));
}

#[test]
fn the_header_layout_matches_the_spec() {
    let mut world = World::new(17);
    let bytes = world.alice_sends(&world.text("layout"));
    let envelope = Envelope::decode(&bytes).unwrap();
    let h = envelope.header();
    assert_eq!(&bytes[0..2], b"TD");
    assert_eq!(bytes[2], 1);
    assert_eq!(bytes[3], Kind::Text.byte());
    assert_eq!(bytes[4], 0);
    assert_eq!(&bytes[5..21], h.message_id.as_bytes());
    assert_eq!(&bytes[21..41], &h.sender.to_bytes());
    assert_eq!(&bytes[41..61], &h.recipient.to_bytes());
    assert_eq!(&bytes[61..69], &T0.to_be_bytes());
    assert_eq!(&bytes[69..85], &h.session.session_id.0);
    assert_eq!(&bytes[85..89], &0u32.to_be_bytes());
    assert_eq!(&bytes[89..121], &h.session.enc);
    assert_eq!(
        &bytes[121..125],
        &u32::try_from(bytes.len() - HEADER_LEN)
            .unwrap()
            .to_be_bytes()
    );
    assert_eq!(envelope.header_bytes(), &bytes[..HEADER_LEN]);
    assert_eq!(h.encode(), bytes[..HEADER_LEN].to_vec());
}

#[test]
fn oversized_bodies_are_refused_before_the_session_moves() {
    let mut world = World::new(18);
    let big = Body::HistoryChunk {
        bytes: vec![7; crate::header::MAX_BODY_LEN],
    };
    let session = world
        .alice_out
        .outbound(
            &world.alice.device(0).keys,
            &world.bob.device(0).keys.public_keys(),
            T0,
            &RekeyPolicy::default(),
            &mut world.rng,
        )
        .unwrap();
    let params = SealParams {
        message_id: MessageId::new_v7(T0, &mut world.rng).unwrap(),
        timestamp_ms: T0,
        flags: Flags::NONE,
    };
    assert!(matches!(
        seal_envelope(session, &params, &big),
        Err(Error::BodyTooLarge { .. })
    ));
    assert_eq!(session.next_counter(), 0);
    // The largest body that fits makes an envelope of exactly the maximum size (its postcard
    // length prefix takes 3 bytes).
    let fits = Body::HistoryChunk {
        bytes: vec![7; crate::header::MAX_BODY_LEN - 3],
    };
    let bytes = seal_envelope(session, &params, &fits).unwrap();
    assert_eq!(bytes.len(), MAX_ENVELOPE_LEN);
    assert!(world.bob_opens(&bytes).is_ok());
}

#[test]
fn the_same_seed_gives_the_same_envelope_bytes() {
    let run = |seed| {
        let mut world = World::new(seed);
        let a = world.alice_sends(&world.text("same"));
        let b = world.alice_sends(&world.text("same"));
        (a, b)
    };
    let (a1, b1) = run(19);
    let (a2, b2) = run(19);
    assert_eq!(a1, a2);
    assert_eq!(b1, b2);
    assert_ne!(a1, b1, "the chain moves on");
    assert_ne!(run(20).0, a1);
}

static SAMPLE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut world = World::new(21);
    world.alice_sends(&world.text("a sample envelope"))
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_decode_or_open(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut world = World::new(21);
        let _ = world.bob_opens(&bytes);
        let mut framed = MAGIC.to_vec();
        framed.push(FORMAT_VERSION);
        framed.extend_from_slice(&bytes);
        prop_assert!(world.bob_opens(&framed).is_err());
    }

    #[test]
    fn mutated_envelopes_never_panic_and_never_open(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut world = World::new(21);
        let mut bytes = SAMPLE.clone();
        for (at, xor) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        // Two flips of one byte can cancel out; only a real change must be refused.
        prop_assume!(bytes != *SAMPLE);
        prop_assert!(world.bob_opens(&bytes).is_err());
    }
}

use proptest::prelude::*;

use super::*;
use crate::desktop::DesktopHandshake;
use crate::log::{EventLog, MemoryEventLog};
use crate::noise;
use crate::phone::PhoneEndpoint;
use crate::testkit::{NOW, deleted, key, rng};

fn hello(cursor: u64) -> Hello {
    Hello {
        versions: vec![1],
        clock_ms: NOW,
        nonce: [5; 16],
        cursor,
        sync: Some(SyncResumeState {
            sync_id: [6; 16],
            next: 3,
        }),
    }
}

fn phone() -> PhoneEndpoint {
    let mut endpoint = PhoneEndpoint::new(key(1));
    endpoint.authorise(key(2).public_key()).unwrap();
    endpoint
}

fn message1(desktop_seed: u8, phone_key: &crate::PublicKey, cursor: u64, seed: u8) -> Vec<u8> {
    DesktopHandshake::start(
        &key(desktop_seed),
        phone_key,
        cursor,
        None,
        NOW,
        &mut rng(seed),
    )
    .unwrap()
    .1
}

/// Message 1 made by hand, with any payload bytes.
fn raw_message1(payload: &[u8]) -> Vec<u8> {
    let mut state = noise::initiator(&key(2), &key(1).public_key(), &mut rng(9)).unwrap();
    let mut out = vec![0u8; 65_535];
    let len = state.write_message(payload, &mut out).unwrap();
    out.truncate(len);
    out
}

#[test]
fn the_payloads_round_trip_and_decode_strictly() {
    let h = hello(42);
    assert_eq!(Hello::decode(&h.encode().unwrap()).unwrap(), h);
    let w = Welcome {
        version: 1,
        clock_ms: NOW,
        head_seq: 9,
        catch_up: CatchUp::Resync { next_seq: 4 },
    };
    assert_eq!(Welcome::decode(&w.encode().unwrap()).unwrap(), w);

    let mut trailing = h.encode().unwrap();
    trailing.push(0);
    assert!(matches!(
        Hello::decode(&trailing),
        Err(Error::TrailingBytes { count: 1, .. })
    ));
    let mut version = h.encode().unwrap();
    version[0] = 2;
    assert!(matches!(
        Hello::decode(&version),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
    assert!(matches!(Hello::decode(&[]), Err(Error::Malformed { .. })));
    let none = Hello {
        versions: vec![],
        ..hello(0)
    };
    assert!(matches!(
        Hello::decode(&none.encode().unwrap()),
        Err(Error::Malformed { .. })
    ));
    let mut bad_variant = w.encode().unwrap();
    let last = bad_variant.len() - 2;
    bad_variant[last] = 7; // the CatchUp tag
    assert!(matches!(
        Welcome::decode(&bad_variant),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn the_replay_cache_remembers_within_the_window_and_forgets_after() {
    let mut cache = ReplayCache::new(1000, 2);
    cache
        .check_and_remember(&[1; 32], &[1; 16], NOW, NOW)
        .unwrap();
    assert_eq!(
        cache.check_and_remember(&[1; 32], &[2; 16], NOW, NOW + 10),
        Err(Error::ReplayedHandshake {
            what: "ephemeral key"
        })
    );
    assert_eq!(
        cache.check_and_remember(&[2; 32], &[1; 16], NOW, NOW + 10),
        Err(Error::ReplayedHandshake {
            what: "connection nonce"
        })
    );
    assert!(matches!(
        cache.check_and_remember(&[3; 32], &[3; 16], NOW - 1001, NOW),
        Err(Error::ClockSkew { skew_ms: 1001, .. })
    ));
    assert!(matches!(
        cache.check_and_remember(&[3; 32], &[3; 16], NOW + 1001, NOW),
        Err(Error::ClockSkew { .. })
    ));
    cache
        .check_and_remember(&[2; 32], &[2; 16], NOW, NOW)
        .unwrap();
    assert_eq!(
        cache.check_and_remember(&[3; 32], &[3; 16], NOW, NOW),
        Err(Error::ReplayCacheFull { capacity: 2 })
    );
    // Past the window the entries are gone, and a fresh handshake fits again.
    cache
        .check_and_remember(&[3; 32], &[3; 16], NOW + 1001, NOW + 1001)
        .unwrap();
    assert_eq!(cache.len(), 1);
    assert!(cache.check_ephemeral(&[1; 32], NOW + 1001).is_ok());
}

#[test]
fn a_desktop_and_its_phone_complete_the_handshake_deterministically() {
    let mut endpoint = phone();
    let log = MemoryEventLog::new();
    let (handshake, m1) = DesktopHandshake::start(
        &key(2),
        &endpoint.public_key(),
        0,
        Some(SyncResumeState {
            sync_id: [8; 16],
            next: 2,
        }),
        NOW,
        &mut rng(3),
    )
    .unwrap();
    // The same generator gives the same bytes: the library draws no other randomness.
    let again = message1(2, &endpoint.public_key(), 0, 3);
    assert_ne!(again, m1, "the sync state is part of the payload");
    let (_, same) = DesktopHandshake::start(
        &key(2),
        &endpoint.public_key(),
        0,
        Some(SyncResumeState {
            sync_id: [8; 16],
            next: 2,
        }),
        NOW,
        &mut rng(3),
    )
    .unwrap();
    assert_eq!(same, m1);
    // About 130 bytes: 32 ephemeral, 48 encrypted static key, the Hello, 16 tag.
    assert!((110..=150).contains(&m1.len()), "{} bytes", m1.len());

    let mut accepted = endpoint.accept(&m1, &log, NOW + 2000, &mut rng(4)).unwrap();
    assert_eq!(accepted.hello.cursor, 0);
    assert_eq!(accepted.hello.sync.map(|s| s.next), Some(2));
    assert_eq!(accepted.session.desktop(), &key(2).public_key());
    assert!(!accepted.session.is_confirmed());
    let m2 = accepted.session.poll_transmit().unwrap();
    let (desktop, welcome) = handshake.finish(&m2).unwrap();
    assert_eq!(welcome.version, 1);
    assert_eq!(welcome.catch_up, CatchUp::Replay);
    assert_eq!(welcome.clock_ms, NOW + 2000);
    assert_eq!(desktop.phone(), &endpoint.public_key());
    assert!(desktop.is_open());
}

#[test]
fn the_phone_refuses_strangers_replays_wrong_keys_and_bad_clocks() {
    let mut endpoint = phone();
    let log = MemoryEventLog::new();

    let stranger = message1(7, &endpoint.public_key(), 0, 3);
    assert_eq!(
        endpoint
            .accept(&stranger, &log, NOW, &mut rng(4))
            .unwrap_err(),
        Error::UnauthorisedDesktop {
            key: key(7).public_key()
        }
    );

    let wrong_phone = message1(2, &key(8).public_key(), 0, 3);
    assert_eq!(
        endpoint
            .accept(&wrong_phone, &log, NOW, &mut rng(4))
            .unwrap_err(),
        Error::NotForThisPhone
    );

    let good = message1(2, &endpoint.public_key(), 0, 5);
    endpoint.accept(&good, &log, NOW, &mut rng(4)).unwrap();
    assert_eq!(
        endpoint
            .accept(&good, &log, NOW + 1, &mut rng(4))
            .unwrap_err(),
        Error::ReplayedHandshake {
            what: "ephemeral key"
        }
    );
    // Once the window has passed the clock alone refuses it.
    assert!(matches!(
        endpoint
            .accept(&good, &log, NOW + REPLAY_WINDOW_MS + 1, &mut rng(4))
            .unwrap_err(),
        Error::ClockSkew { .. }
    ));
    let slow = message1(2, &endpoint.public_key(), 0, 6);
    assert!(matches!(
        endpoint
            .accept(&slow, &log, NOW - REPLAY_WINDOW_MS - 1, &mut rng(4))
            .unwrap_err(),
        Error::ClockSkew { .. }
    ));

    assert!(matches!(
        endpoint.accept(&good[..40], &log, NOW, &mut rng(4)),
        Err(Error::HandshakeTooShort { message: 1, .. })
    ));
    assert!(matches!(
        endpoint.accept(&vec![0u8; 65_536], &log, NOW, &mut rng(4)),
        Err(Error::FrameTooLarge { .. })
    ));
    let mut altered = message1(2, &endpoint.public_key(), 0, 10);
    altered[50] ^= 1;
    assert_eq!(
        endpoint
            .accept(&altered, &log, NOW, &mut rng(4))
            .unwrap_err(),
        Error::NotForThisPhone
    );
}

#[test]
fn a_revoked_desktop_is_refused_at_its_next_handshake() {
    let mut endpoint = phone();
    let log = MemoryEventLog::new();
    assert!(endpoint.revoke(&key(2).public_key()));
    assert!(!endpoint.is_authorised(&key(2).public_key()));
    let m1 = message1(2, &endpoint.public_key(), 0, 3);
    assert!(matches!(
        endpoint.accept(&m1, &log, NOW, &mut rng(4)),
        Err(Error::UnauthorisedDesktop { .. })
    ));
    assert!(matches!(
        endpoint.authorise(crate::PublicKey::from_bytes([9; 32]).unwrap()),
        Ok(())
    ));
}

#[test]
fn versions_are_negotiated_and_a_bad_payload_is_refused() {
    let mut endpoint = phone();
    let log = MemoryEventLog::new();
    let newer = Hello {
        versions: vec![1, 2, 3],
        ..hello(0)
    };
    let accepted = endpoint
        .accept(
            &raw_message1(&newer.encode().unwrap()),
            &log,
            NOW,
            &mut rng(4),
        )
        .unwrap();
    assert_eq!(accepted.welcome.version, 1);

    let mut endpoint = phone();
    let future = Hello {
        versions: vec![2, 3],
        ..hello(0)
    };
    assert_eq!(
        endpoint
            .accept(
                &raw_message1(&future.encode().unwrap()),
                &log,
                NOW,
                &mut rng(4)
            )
            .unwrap_err(),
        Error::NoCommonVersion {
            offered: vec![2, 3]
        }
    );
    let mut endpoint = phone();
    assert!(matches!(
        endpoint.accept(&raw_message1(b"\x01garbage"), &log, NOW, &mut rng(4)),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn the_desktop_refuses_an_answer_that_does_not_prove_the_phone_key() {
    let mut endpoint = phone();
    let log = MemoryEventLog::new();
    let start = || {
        DesktopHandshake::start(&key(2), &key(1).public_key(), 0, None, NOW, &mut rng(3)).unwrap()
    };
    let (handshake, m1) = start();
    let mut accepted = endpoint.accept(&m1, &log, NOW, &mut rng(4)).unwrap();
    let mut m2 = accepted.session.poll_transmit().unwrap();
    m2[40] ^= 0x80;
    assert_eq!(
        handshake.finish(&m2).unwrap_err(),
        Error::PhoneNotAuthenticated {
            expected: key(1).public_key()
        }
    );
    let (handshake, _) = start();
    assert!(matches!(
        handshake.finish(&[0u8; 20]),
        Err(Error::HandshakeTooShort { message: 2, .. })
    ));
    let (handshake, _) = start();
    assert!(matches!(
        handshake.finish(&vec![0u8; 70_000]),
        Err(Error::FrameTooLarge { .. })
    ));
    // A small-order key cannot even be decoded as a bridge key.
    assert!(postcard::from_bytes::<crate::PublicKey>(&[0u8; 32]).is_err());
}

#[test]
fn the_catch_up_follows_the_log() {
    let mut log = MemoryEventLog::new();
    for n in 1..=10 {
        log.publish(deleted(n)).unwrap();
    }
    log.drop_through(4).unwrap();
    let catch_up = |cursor: u64, seed: u8| {
        let mut endpoint = phone();
        let m1 = message1(2, &endpoint.public_key(), cursor, seed);
        let accepted = endpoint.accept(&m1, &log, NOW, &mut rng(4)).unwrap();
        (accepted.welcome.catch_up, accepted.session.sent_seq())
    };
    assert_eq!(catch_up(4, 1), (CatchUp::Replay, 4));
    assert_eq!(catch_up(10, 2), (CatchUp::Replay, 10));
    assert_eq!(catch_up(3, 3), (CatchUp::Resync { next_seq: 5 }, 4));
    assert_eq!(catch_up(0, 4), (CatchUp::Resync { next_seq: 5 }, 4));
    // The phone's log is behind the desktop (the phone lost it): start again after its head.
    assert_eq!(catch_up(25, 5), (CatchUp::Resync { next_seq: 11 }, 10));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_payload_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Hello::decode(&bytes);
        let _ = Welcome::decode(&bytes);
    }

    #[test]
    fn random_and_mutated_message1_are_refused_with_a_typed_error(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut endpoint = phone();
        let log = MemoryEventLog::new();
        prop_assert!(endpoint.accept(&bytes, &log, NOW, &mut rng(4)).is_err());
        let mut m1 = message1(2, &endpoint.public_key(), 0, 3);
        for (at, x) in &flips {
            let i = at.index(m1.len());
            m1[i] ^= x;
        }
        prop_assert!(endpoint.accept(&m1, &log, NOW, &mut rng(4)).is_err());
        let m1 = message1(2, &endpoint.public_key(), 0, 11);
        let short = &m1[..cut.index(m1.len())];
        prop_assert!(endpoint.accept(short, &log, NOW, &mut rng(4)).is_err());
    }

    #[test]
    fn random_and_mutated_message2_are_refused_with_a_typed_error(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        at in any::<prop::sample::Index>(),
        x in 1u8..=255,
    ) {
        let (handshake, _) =
            DesktopHandshake::start(&key(2), &key(1).public_key(), 0, None, NOW, &mut rng(3)).unwrap();
        prop_assert!(handshake.finish(&bytes).is_err());

        let mut endpoint = phone();
        let log = MemoryEventLog::new();
        let (handshake, m1) =
            DesktopHandshake::start(&key(2), &key(1).public_key(), 0, None, NOW, &mut rng(3)).unwrap();
        let mut accepted = endpoint.accept(&m1, &log, NOW, &mut rng(4)).unwrap();
        let mut m2 = accepted.session.poll_transmit().unwrap();
        let i = at.index(m2.len());
        m2[i] ^= x;
        prop_assert!(handshake.finish(&m2).is_err());
    }
}

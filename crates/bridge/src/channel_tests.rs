use proptest::prelude::*;

use super::*;
use crate::desktop::DesktopIncoming;
use crate::log::{EventLog, MemoryEventLog};
use crate::message::{Reply, RequestBody};
use crate::phone::PhoneIncoming;
use crate::testkit::{connected, desktop_to_phone, new_message, phone_to_desktop, synced};

fn big_text_page(bytes: usize) -> Reply {
    let per = 60_000;
    let messages = (0..bytes.div_ceil(per))
        .map(|n| synced(n as u32, 1, &"y".repeat(per)))
        .collect();
    Reply::Page(crate::message::Page {
        chats: vec![],
        messages,
        more: false,
    })
}

#[test]
fn a_big_message_is_fragmented_and_reassembled() {
    let mut log = MemoryEventLog::new();
    let (_, mut phone, mut desktop) = connected(&log, 0);
    desktop_to_phone(&mut desktop, &mut phone, &mut log);
    let reply = big_text_page(3 * 1024 * 1024);
    phone.respond(7, Ok(reply.clone())).unwrap();
    let frames = phone.queued();
    assert!(frames >= 48, "{frames} frames");
    let mut got = Vec::new();
    while let Some(frame) = phone.poll_transmit() {
        assert!(frame.len() <= MAX_FRAME_LEN);
        got.extend(desktop.receive(&frame).unwrap());
    }
    assert_eq!(got.len(), 1);
    let DesktopIncoming::Response(response) = &got[0] else {
        unreachable!("{got:?}")
    };
    assert_eq!(response.id, 7);
    assert_eq!(response.result, Ok(reply));
}

#[test]
fn a_dropped_reordered_or_replayed_frame_closes_the_channel() {
    let mut log = MemoryEventLog::new();
    for case in ["dropped", "reordered", "replayed", "altered"] {
        let (_, mut phone, mut desktop) = connected(&log, 0);
        desktop_to_phone(&mut desktop, &mut phone, &mut log);
        for n in 0..3 {
            phone.ping(n).unwrap();
        }
        let frames: Vec<_> = std::iter::from_fn(|| phone.poll_transmit()).collect();
        let result = match case {
            "dropped" => desktop.receive(&frames[1]),
            "reordered" => desktop
                .receive(&frames[0])
                .and_then(|_| desktop.receive(&frames[2])),
            "replayed" => desktop
                .receive(&frames[0])
                .and_then(|_| desktop.receive(&frames[0])),
            _ => {
                let mut altered = frames[0].clone();
                altered[3] ^= 1;
                desktop.receive(&altered)
            }
        };
        assert!(
            matches!(result, Err(Error::FrameDecrypt { .. })),
            "{case}: {result:?}"
        );
        assert!(!desktop.is_open(), "{case}");
        // The desktop told the phone why before closing (after answering the pings it read).
        let mut last = None;
        while let Some(frame) = desktop.poll_transmit() {
            last = phone.receive(&frame, &mut log).unwrap();
        }
        match last {
            Some(PhoneIncoming::Closed {
                reason: CloseReason::ProtocolError { kind, .. },
            }) => assert_eq!(kind, "frame_decrypt", "{case}"),
            other => panic!("{case}: {other:?}"),
        }
        assert_eq!(
            desktop.receive(&frames[2]),
            Err(Error::FrameAfterClose),
            "{case}"
        );
    }
}

#[test]
fn frames_after_close_are_refused_on_both_sides() {
    let mut log = MemoryEventLog::new();
    let (_, mut phone, mut desktop) = connected(&log, 0);
    desktop_to_phone(&mut desktop, &mut phone, &mut log);
    desktop.close(CloseReason::Normal);
    assert_eq!(desktop.ping(1), Err(Error::Closed));
    let close = desktop.poll_transmit().unwrap();
    assert_eq!(
        phone.receive(&close, &mut log).unwrap(),
        Some(PhoneIncoming::Closed {
            reason: CloseReason::Normal
        })
    );
    assert_eq!(
        phone.state(),
        &ChannelState::Closed {
            reason: CloseReason::Normal
        }
    );
    // Anything after the close is refused, even a frame that would decrypt.
    desktop.channel_mut().state = ChannelState::Open;
    desktop.ping(2).unwrap();
    let late = desktop.poll_transmit().unwrap();
    assert_eq!(phone.receive(&late, &mut log), Err(Error::FrameAfterClose));
    assert_eq!(phone.respond(1, Ok(Reply::Done)), Err(Error::Closed));
    assert!(
        phone.poll_transmit().is_none(),
        "nothing is sent after close"
    );
}

#[test]
fn oversized_frames_are_refused_before_decryption() {
    let log = MemoryEventLog::new();
    let (_, _, mut desktop) = connected(&log, 0);
    assert_eq!(
        desktop.receive(&vec![0u8; MAX_FRAME_LEN + 1]),
        Err(Error::FrameTooLarge {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
    assert!(!desktop.is_open());
}

#[test]
fn a_message_growing_past_the_cap_or_the_fragment_count_is_refused() {
    let log = MemoryEventLog::new();
    let (_, mut phone, mut desktop) = connected(&log, 0);
    let mut fragment = vec![MORE];
    fragment.extend(std::iter::repeat_n(0u8, MAX_FRAGMENT_LEN));
    let mut result = Ok(None);
    let mut sent = 0;
    while result.is_ok() {
        phone.channel_mut().send_raw_plain(&fragment).unwrap();
        let frame = phone.poll_transmit().unwrap();
        result = desktop.receive(&frame);
        sent += 1;
    }
    assert!(
        matches!(result, Err(Error::MessageTooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(sent, MAX_FRAGMENTS);

    let (_, mut phone, mut desktop) = connected(&log, 0);
    let mut result = Ok(None);
    let mut sent = 0;
    while result.is_ok() {
        phone.channel_mut().send_raw_plain(&[MORE]).unwrap();
        let frame = phone.poll_transmit().unwrap();
        result = desktop.receive(&frame);
        sent += 1;
    }
    assert_eq!(result, Err(Error::TooManyFragments { max: MAX_FRAGMENTS }));
    assert_eq!(sent, MAX_FRAGMENTS + 1);
}

#[test]
fn malformed_frames_close_the_channel_with_a_reason() {
    let mut log = MemoryEventLog::new();
    for plain in [
        &[][..],
        &[7u8, 1, 2][..],
        &[LAST, 1, 99][..],
        &[LAST, 9, 0][..],
    ] {
        let (_, mut phone, mut desktop) = connected(&log, 0);
        desktop_to_phone(&mut desktop, &mut phone, &mut log);
        desktop.channel_mut().send_raw_plain(plain).unwrap();
        let frame = desktop.poll_transmit().unwrap();
        let err = phone.receive(&frame, &mut log).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Malformed { .. }
                    | Error::UnknownVariant { .. }
                    | Error::UnsupportedVersion { .. }
            ),
            "{plain:?}: {err:?}"
        );
        let close = phone.poll_transmit().unwrap();
        match desktop.receive(&close).unwrap() {
            Some(DesktopIncoming::Closed {
                reason: CloseReason::ProtocolError { kind, .. },
            }) => assert_eq!(kind, err.kind()),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn each_side_refuses_what_only_the_other_side_sends() {
    let mut log = MemoryEventLog::new();
    let (_, mut phone, mut desktop) = connected(&log, 0);
    desktop_to_phone(&mut desktop, &mut phone, &mut log);
    // A phone that sends a request, a desktop that sends an event.
    phone
        .channel_mut()
        .send(&Message::Request(crate::message::Request {
            id: 1,
            body: RequestBody::Typing {
                chat: tandem_proto::ChatId([1; 16]),
                on: true,
            },
        }))
        .unwrap();
    let frame = phone.poll_transmit().unwrap();
    assert!(matches!(
        desktop.receive(&frame),
        Err(Error::Unexpected { .. })
    ));

    let (_, mut phone, mut desktop) = connected(&log, 0);
    desktop_to_phone(&mut desktop, &mut phone, &mut log);
    desktop
        .channel_mut()
        .send(&Message::Event(crate::message::Event {
            seq: 1,
            body: new_message(1),
        }))
        .unwrap();
    let frame = desktop.poll_transmit().unwrap();
    assert!(matches!(
        phone.receive(&frame, &mut log),
        Err(Error::Unexpected { .. })
    ));
}

#[test]
fn pings_are_answered_and_acks_are_recorded_within_what_was_sent() {
    let mut log = MemoryEventLog::new();
    log.publish(new_message(1)).unwrap();
    let (_, mut phone, mut desktop) = connected(&log, 0);
    assert_eq!(phone.pump_events(&log, 10).unwrap(), 1);
    let got = phone_to_desktop(&mut phone, &mut desktop);
    assert!(matches!(got[..], [DesktopIncoming::Event { seq: 1, .. }]));
    desktop.ack(1).unwrap();
    assert_eq!(
        desktop.ack(2),
        Err(Error::AckBeyondSent { acked: 2, sent: 1 })
    );
    desktop.ping(5).unwrap();
    let got = desktop_to_phone(&mut desktop, &mut phone, &mut log);
    assert_eq!(
        got,
        [
            PhoneIncoming::Acked { up_to: 0 },
            PhoneIncoming::Acked { up_to: 1 }
        ]
    );
    assert!(phone.is_confirmed());
    assert_eq!(log.acked(phone.desktop()).unwrap(), 1);
    let got = phone_to_desktop(&mut phone, &mut desktop);
    assert_eq!(got, [DesktopIncoming::Pong { nonce: 5 }]);

    // A desktop that acknowledges beyond what it was sent is cut off.
    desktop
        .channel_mut()
        .send(&Message::Ack { up_to: 9 })
        .unwrap();
    let frame = desktop.poll_transmit().unwrap();
    assert_eq!(
        phone.receive(&frame, &mut log),
        Err(Error::AckBeyondSent { acked: 9, sent: 1 })
    );
    assert_eq!(log.acked(phone.desktop()).unwrap(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_and_mutated_frames_are_refused_with_a_typed_error(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        at in any::<prop::sample::Index>(),
        x in 1u8..=255,
    ) {
        let mut log = MemoryEventLog::new();
        let (_, mut phone, mut desktop) = connected(&log, 0);
        prop_assert!(desktop.receive(&bytes).is_err());
        prop_assert!(phone.receive(&bytes, &mut log).is_err());

        let (_, mut phone, mut desktop) = connected(&log, 0);
        phone.respond(1, Ok(Reply::Message(synced(1, 1, "hello")))).unwrap();
        let mut frame = phone.poll_transmit().unwrap();
        let i = at.index(frame.len());
        frame[i] ^= x;
        let refused = matches!(desktop.receive(&frame), Err(Error::FrameDecrypt { .. }));
        prop_assert!(refused);
        prop_assert!(!desktop.is_open());
    }
}

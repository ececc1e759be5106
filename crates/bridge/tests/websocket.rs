//! The bridge over a real WebSocket on 127.0.0.1: each binary message is exactly one frame of
//! the sans-I/O API, and a thin loop on each side is all the driver needs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use futures_util::{SinkExt as _, StreamExt as _};
use tandem_bridge::noise::MAX_FRAME_LEN;
use tandem_bridge::{
    CloseReason, DesktopHandshake, DesktopIncoming, EventBody, EventLog, MemoryEventLog, Page,
    PhoneEndpoint, PhoneIncoming, Reply, RequestBody, StaticSecret,
};
use tandem_crypto::rng::{ChaCha20Rng, SeedableRng};
use tandem_proto::sync::SyncedMessage;
use tandem_proto::{ChatId, MessageId};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as Ws;

const NOW: i64 = 1_750_000_000_000;

fn message(n: u32, text: String) -> SyncedMessage {
    SyncedMessage {
        id: *MessageId::derived(NOW, b"ws", &n.to_le_bytes())
            .unwrap()
            .as_bytes(),
        chat: [1; 16],
        sender_account: None,
        sender_device: None,
        sender_name: "Ana".into(),
        from_me: false,
        ts: NOW + i64::from(n),
        kind: "text".into(),
        text,
        media_name: None,
        reply_to: None,
        edited_at: None,
        deleted: false,
        status: 1,
    }
}

#[tokio::test]
async fn one_binary_message_carries_one_noise_message_end_to_end() {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let phone_key = StaticSecret::generate(&mut rng);
    let desktop_key = StaticSecret::generate(&mut rng);
    let mut endpoint = PhoneEndpoint::new(phone_key);
    endpoint.authorise(desktop_key.public_key()).unwrap();
    let phone_public = endpoint.public_key();
    let desktop_public = desktop_key.public_key();
    let mut log = MemoryEventLog::new();
    log.publish(EventBody::Message {
        message: message(0, "before you connected".into()),
        chat: None,
    })
    .unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();

    // The phone's driver: accept, answer requests, publish one live event, stop on Close.
    let phone = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut rng = ChaCha20Rng::from_seed([10; 32]);
        let Some(Ok(Ws::Binary(message1))) = ws.next().await else {
            panic!("no message 1");
        };
        let accepted = endpoint.accept(&message1, &log, NOW, &mut rng).unwrap();
        let mut session = accepted.session;
        session.pump_events(&log, 64).unwrap();
        let mut sent_sizes = Vec::new();
        loop {
            while let Some(frame) = session.poll_transmit() {
                sent_sizes.push(frame.len());
                ws.send(Ws::binary(frame)).await.unwrap();
            }
            let Some(Ok(incoming)) = ws.next().await else {
                break;
            };
            let Ws::Binary(frame) = incoming else {
                continue;
            };
            match session.receive(&frame, &mut log).unwrap() {
                Some(PhoneIncoming::Request(request)) => {
                    let reply = match request.body {
                        RequestBody::PageOlder { .. } => Reply::Page(Page {
                            chats: vec![],
                            messages: (1..=40).map(|n| message(n, "w".repeat(9000))).collect(),
                            more: false,
                        }),
                        _ => Reply::Done,
                    };
                    session.respond(request.id, Ok(reply)).unwrap();
                    log.publish(EventBody::ChatRead {
                        chat: ChatId([1; 16]),
                        up_to: MessageId::derived(NOW, b"ws", &[1]).unwrap(),
                    })
                    .unwrap();
                    session.pump_events(&log, 64).unwrap();
                }
                Some(PhoneIncoming::Closed { .. }) => break,
                Some(_) | None => {}
            }
        }
        (log.acked(&desktop_public).unwrap(), sent_sizes)
    });

    // The desktop's driver.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}"))
        .await
        .unwrap();
    let (handshake, message1) =
        DesktopHandshake::start(&desktop_key, &phone_public, 0, None, NOW, &mut rng).unwrap();
    ws.send(Ws::binary(message1)).await.unwrap();
    let Some(Ok(Ws::Binary(message2))) = ws.next().await else {
        panic!("no message 2");
    };
    let (mut session, welcome) = handshake.finish(&message2).unwrap();
    assert_eq!(welcome.head_seq, 1);
    session
        .request(RequestBody::PageOlder {
            chat: ChatId([1; 16]),
            before: None,
            limit: 50,
        })
        .unwrap();
    let mut events = Vec::new();
    let mut page = None;
    while page.is_none() || events.len() < 2 {
        while let Some(frame) = session.poll_transmit() {
            ws.send(Ws::binary(frame)).await.unwrap();
        }
        let Some(Ok(Ws::Binary(frame))) = ws.next().await else {
            panic!("connection lost");
        };
        match session.receive(&frame).unwrap() {
            Some(DesktopIncoming::Event { seq, body }) => {
                events.push((seq, body));
                session.ack(seq).unwrap();
            }
            Some(DesktopIncoming::Response(response)) => page = Some(response),
            other => assert!(other.is_none(), "{other:?}"),
        }
    }
    session.close(CloseReason::Normal);
    while let Some(frame) = session.poll_transmit() {
        ws.send(Ws::binary(frame)).await.unwrap();
    }
    let (acked, sent_sizes) = phone.await.unwrap();

    assert_eq!(events.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2]);
    let Some(Ok(Reply::Page(page))) = page.map(|r| r.result) else {
        panic!("no page");
    };
    assert_eq!(page.messages.len(), 40);
    assert_eq!(acked, 2);
    // Message 2, event 1, the page in 6 fragments, event 2; none above the Noise limit.
    assert!(sent_sizes.len() >= 9, "{sent_sizes:?}");
    assert!(sent_sizes.iter().all(|&len| len <= MAX_FRAME_LEN));
}

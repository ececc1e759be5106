//! The bridge as a story: one phone serves two linked desktops (and refuses a stranger) over
//! in-memory byte pipes, with real Noise crypto. Connections drop at awkward moments and come
//! back with the desktop's cursor; at the end every desktop holds every event exactly once, the
//! phone holds every sent message exactly once, and the history sync completed verified.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use tandem_bridge::handshake::REPLAY_WINDOW_MS;
use tandem_bridge::message::MAX_MESSAGE_LEN;
use tandem_bridge::noise::MAX_FRAME_LEN;
use tandem_bridge::{
    CatchUp, CloseReason, DesktopHandshake, DesktopIncoming, DesktopSession, Error, EventBody,
    EventLog, Failure, FailureKind, MemoryEventLog, Page, PhoneEndpoint, PhoneIncoming,
    PhoneSession, Reply, RequestBody, StaticSecret, SyncResumeState,
};
use tandem_crypto::rng::{ChaCha20Rng, Rng as _, SeedableRng};
use tandem_proto::sync::{
    AckOutcome, CHAIN_START, Chunk, SenderWindow, SyncMessage, SyncedChat, SyncedMessage, chain,
};
use tandem_proto::{ChatId, MessageId, ReceiptKind};

const T0: i64 = 1_750_000_000_000;
const SYNC_ID: [u8; 16] = [0x5a; 16];

fn chat(n: u8) -> SyncedChat {
    SyncedChat {
        id: [n; 16],
        kind: "direct".into(),
        name: format!("Chat {n}"),
        peer_account: Some(vec![n; 16]),
        created_at: T0,
        muted: false,
        pinned: false,
        archived: false,
        unread: 0,
        members: vec![],
    }
}

fn stored(id: MessageId, chat: u8, ts: i64, text: String, from_me: bool) -> SyncedMessage {
    SyncedMessage {
        id: *id.as_bytes(),
        chat: [chat; 16],
        sender_account: None,
        sender_device: None,
        sender_name: if from_me { "Me".into() } else { "Ana".into() },
        from_me,
        ts,
        kind: "text".into(),
        text,
        media_name: None,
        reply_to: None,
        edited_at: None,
        deleted: false,
        status: 1,
    }
}

/// History chunks whose text does not compress much (so they need several frames).
fn history(rng: &mut ChaCha20Rng) -> Vec<Chunk> {
    (0..3u32)
        .map(|index| {
            let messages = (0..40u32)
                .map(|n| {
                    let mut noise = vec![0u8; 1500];
                    rng.fill_bytes(&mut noise);
                    let text = noise.iter().map(|b| char::from(b'a' + b % 26)).collect();
                    let ts = T0 - 1_000_000 + i64::from(index * 100 + n);
                    let id =
                        MessageId::derived(ts, b"story", &(index * 100 + n).to_le_bytes()).unwrap();
                    stored(id, 1, ts, text, false)
                })
                .collect();
            Chunk::new(SYNC_ID, index, 3, vec![chat(1)], messages)
        })
        .collect()
}

/// The phone: the bridge endpoint, its event log, and a tiny messenger behind it.
struct Phone {
    endpoint: PhoneEndpoint,
    log: MemoryEventLog,
    messages: BTreeMap<[u8; 16], SyncedMessage>,
    chunks: Vec<Chunk>,
    window: SenderWindow,
    rng: ChaCha20Rng,
    now: i64,
    refusals: Vec<Error>,
}

impl Phone {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let chunks = history(rng);
        Self {
            endpoint: PhoneEndpoint::new(StaticSecret::generate(rng)),
            log: MemoryEventLog::new(),
            messages: BTreeMap::new(),
            window: SenderWindow::new(chunks.len() as u32, 0, 0, CHAIN_START),
            chunks,
            rng: ChaCha20Rng::from_seed([77; 32]),
            now: T0,
            refusals: Vec::new(),
        }
    }

    fn accept(&mut self, message1: &[u8]) -> Result<PhoneSession, Error> {
        let accepted = self
            .endpoint
            .accept(message1, &self.log, self.now, &mut self.rng)
            .inspect_err(|e| self.refusals.push(e.clone()))?;
        let mut session = accepted.session;
        while session.pump_events(&self.log, 64)? > 0 {}
        if accepted.hello.sync.is_some_and(|s| s.sync_id == SYNC_ID) {
            self.window.on_resume();
            self.send_chunks(&mut session);
        }
        Ok(session)
    }

    fn send_chunks(&mut self, session: &mut PhoneSession) {
        for index in self.window.take_sendable() {
            let chunk = self.chunks[index as usize].clone();
            session
                .push_unlogged(EventBody::Sync(SyncMessage::Chunk(Box::new(chunk))))
                .unwrap();
        }
    }

    fn publish(&mut self, body: EventBody, sessions: &mut [&mut PhoneSession]) -> u64 {
        let seq = self.log.publish(body).unwrap();
        for session in sessions.iter_mut().filter(|s| s.is_open()) {
            while session.pump_events(&self.log, 64).unwrap() > 0 {}
        }
        seq
    }

    /// One frame from a desktop; requests are carried out, their events published to every
    /// session given.
    fn take(
        &mut self,
        session: &mut PhoneSession,
        frame: &[u8],
        others: &mut [&mut PhoneSession],
    ) -> Result<(), Error> {
        let Some(incoming) = session.receive(frame, &mut self.log)? else {
            return Ok(());
        };
        let PhoneIncoming::Request(request) = incoming else {
            return Ok(());
        };
        let result = match request.body {
            RequestBody::Send {
                chat,
                message,
                text,
                reply_to,
            } => {
                let key = *message.as_bytes();
                if let Some(known) = self.messages.get(&key) {
                    Ok(Reply::Message(known.clone()))
                } else {
                    let mut m = stored(message, chat.0[0], message.timestamp_ms(), text, true);
                    m.reply_to = reply_to.map(|r| *r.as_bytes());
                    self.messages.insert(key, m.clone());
                    let body = EventBody::Message {
                        message: m.clone(),
                        chat: None,
                    };
                    let mut all: Vec<&mut PhoneSession> =
                        others.iter_mut().map(|s| &mut **s).collect();
                    all.push(session);
                    self.publish(body, &mut all);
                    Ok(Reply::Message(m))
                }
            }
            RequestBody::PageOlder {
                chat,
                before,
                limit,
            } => {
                let mut older: Vec<_> = self
                    .chunks
                    .iter()
                    .flat_map(|c| c.messages.iter())
                    .filter(|m| m.chat == chat.0)
                    .filter(|m| before.is_none_or(|(ts, id)| (m.ts, m.id) < (ts, *id.as_bytes())))
                    .cloned()
                    .collect();
                older.sort_by_key(|m| std::cmp::Reverse((m.ts, m.id)));
                let more = older.len() > usize::from(limit);
                older.truncate(usize::from(limit));
                Ok(Reply::Page(Page {
                    chats: vec![chat_of(chat)],
                    messages: older,
                    more,
                }))
            }
            RequestBody::Sync(SyncMessage::Ack {
                index,
                digest,
                count,
                ..
            }) => {
                if self.window.on_ack(index, &digest, count) == AckOutcome::Complete {
                    session
                        .push_unlogged(EventBody::Sync(SyncMessage::Complete {
                            sync_id: SYNC_ID,
                            chunks: self.window.total,
                            messages: self.window.acked_messages,
                            digest: self.window.chain,
                        }))
                        .unwrap();
                } else {
                    self.send_chunks(session);
                }
                Ok(Reply::Done)
            }
            RequestBody::Edit { .. } => Err(Failure {
                kind: FailureKind::Invalid,
                message: "only your own messages can be edited".into(),
            }),
            _ => Ok(Reply::Done),
        };
        session.respond(request.id, result)
    }
}

fn chat_of(chat: ChatId) -> SyncedChat {
    self::chat(chat.0[0])
}

/// A linked desktop and what it stored.
struct Desktop {
    key: StaticSecret,
    phone_key: tandem_bridge::PublicKey,
    /// The store: logged events in the order taken in, with their numbers.
    events: Vec<(u64, EventBody)>,
    /// The cursor, stored with the events.
    cursor: u64,
    sync_done: u32,
    sync_chain: [u8; 32],
    sync_messages: u64,
    sync_verified: Option<bool>,
    responses: Vec<tandem_bridge::Response>,
    closed: Vec<CloseReason>,
    rng: ChaCha20Rng,
}

impl Desktop {
    fn new(seed: u8, phone: &mut Phone) -> Self {
        let key = StaticSecret::generate(&mut ChaCha20Rng::from_seed([seed; 32]));
        phone.endpoint.authorise(key.public_key()).unwrap();
        Self {
            key,
            phone_key: phone.endpoint.public_key(),
            events: Vec::new(),
            cursor: 0,
            sync_done: 0,
            sync_chain: CHAIN_START,
            sync_messages: 0,
            sync_verified: None,
            responses: Vec::new(),
            closed: Vec::new(),
            rng: ChaCha20Rng::from_seed([seed.wrapping_add(100); 32]),
        }
    }

    fn hello(&mut self, now: i64) -> (DesktopHandshake, Vec<u8>) {
        let sync = (self.sync_verified.is_none()).then_some(SyncResumeState {
            sync_id: SYNC_ID,
            next: self.sync_done,
        });
        DesktopHandshake::start(
            &self.key,
            &self.phone_key,
            self.cursor,
            sync,
            now,
            &mut self.rng,
        )
        .unwrap()
    }

    fn connect(&mut self, phone: &mut Phone) -> (DesktopSession, PhoneSession) {
        let (handshake, m1) = self.hello(phone.now);
        let mut phone_session = phone.accept(&m1).unwrap();
        let m2 = phone_session.poll_transmit().unwrap();
        let (session, welcome) = handshake.finish(&m2).unwrap();
        if let CatchUp::Resync { next_seq } = welcome.catch_up {
            // The store keeps what it has; history comes again by sync.
            self.cursor = next_seq - 1;
        }
        (session, phone_session)
    }

    fn take(&mut self, session: &mut DesktopSession, frame: &[u8]) -> Result<(), Error> {
        match session.receive(frame)? {
            Some(DesktopIncoming::Event { seq, body }) => {
                // One transaction: the event and the cursor; then the acknowledgement.
                self.events.push((seq, body));
                self.cursor = seq;
                assert_eq!(session.last_seq(), seq);
                session.ack(seq)?;
            }
            Some(DesktopIncoming::Unlogged(EventBody::Sync(sync))) => {
                self.take_sync(session, sync)?
            }
            Some(DesktopIncoming::Response(response)) => self.responses.push(response),
            Some(DesktopIncoming::Closed { reason }) => self.closed.push(reason),
            Some(DesktopIncoming::AlreadySeen { seq }) => {
                assert!(seq <= self.cursor);
            }
            Some(DesktopIncoming::Unlogged(_) | DesktopIncoming::Pong { .. }) | None => {}
        }
        Ok(())
    }

    fn take_sync(&mut self, session: &mut DesktopSession, sync: SyncMessage) -> Result<(), Error> {
        match sync {
            SyncMessage::Chunk(chunk) => {
                chunk.verify().unwrap();
                if chunk.index == self.sync_done {
                    self.sync_chain = chain(&self.sync_chain, chunk.index, &chunk.digest);
                    self.sync_messages += chunk.count();
                    self.sync_done += 1;
                }
                if chunk.index < self.sync_done {
                    session.request(RequestBody::Sync(SyncMessage::Ack {
                        sync_id: SYNC_ID,
                        index: chunk.index,
                        digest: chunk.digest,
                        count: chunk.count(),
                    }))?;
                }
            }
            SyncMessage::Complete {
                chunks,
                messages,
                digest,
                ..
            } => {
                self.sync_verified = Some(
                    chunks == self.sync_done
                        && messages == self.sync_messages
                        && digest == self.sync_chain,
                );
            }
            other => panic!("unexpected sync message {other:?}"),
        }
        Ok(())
    }
}

/// Moves frames both ways until nothing is left, or until `budget` frames reached the desktop
/// (then the rest is lost with the connection).
fn exchange(
    phone: &mut Phone,
    ps: &mut PhoneSession,
    desktop: &mut Desktop,
    ds: &mut DesktopSession,
    others: &mut [&mut PhoneSession],
    budget: Option<usize>,
) {
    let mut delivered = 0;
    loop {
        let mut moved = false;
        while let Some(frame) = ps.poll_transmit() {
            if budget.is_some_and(|b| delivered >= b) {
                return;
            }
            desktop.take(ds, &frame).unwrap();
            delivered += 1;
            moved = true;
        }
        while let Some(frame) = ds.poll_transmit() {
            if ps.is_open() {
                phone.take(ps, &frame, others).unwrap();
            }
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn logged_events(phone: &Phone) -> Vec<(u64, EventBody)> {
    phone
        .log
        .read_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.body))
        .collect()
}

fn receipt(n: u8) -> EventBody {
    EventBody::Receipt {
        chat: ChatId([1; 16]),
        message: MessageId::derived(T0, b"receipt", &[n]).unwrap(),
        kind: ReceiptKind::Read,
        by: None,
    }
}

#[test]
fn a_phone_serves_two_desktops_through_flapping_connections_and_loses_nothing() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut phone = Phone::new(&mut rng);
    let mut laptop = Desktop::new(10, &mut phone);
    let mut office = Desktop::new(20, &mut phone);
    office.sync_verified = Some(true); // linked earlier, its history is complete
    for n in 1..=3 {
        phone.publish(receipt(n), &mut []);
    }

    // The laptop connects, catches up on the three events and starts the history sync; the
    // connection dies after four frames (inside the first chunk or just after it).
    let (mut lap, mut lap_phone) = laptop.connect(&mut phone);
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [],
        Some(4),
    );
    assert_eq!(laptop.cursor, 3);
    assert_eq!(laptop.sync_verified, None);
    drop((lap, lap_phone));

    // Both connect; the laptop's sync resumes and completes, verified.
    let (mut lap, mut lap_phone) = laptop.connect(&mut phone);
    let (mut off, mut off_phone) = office.connect(&mut phone);
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [&mut off_phone],
        None,
    );
    assert_eq!(laptop.cursor, 3);
    assert_eq!(
        laptop.sync_verified,
        Some(true),
        "the laptop's history sync completed"
    );
    assert_eq!(phone.log.acked(&laptop.key.public_key()).unwrap(), 3);

    // The office desktop sends a message; both desktops get it as an event.
    let message = MessageId::new_v7(phone.now, &mut rng).unwrap();
    off.request(RequestBody::Send {
        chat: ChatId([1; 16]),
        message,
        text: "lunch at noon?".into(),
        reply_to: None,
    })
    .unwrap();
    exchange(
        &mut phone,
        &mut off_phone,
        &mut office,
        &mut off,
        &mut [&mut lap_phone],
        None,
    );
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [&mut off_phone],
        None,
    );
    assert_eq!(office.cursor, 4);
    assert_eq!(laptop.cursor, 4);
    match &office.responses[..] {
        [r] => assert!(matches!(&r.result, Ok(Reply::Message(m)) if m.text == "lunch at noon?")),
        other => panic!("{other:?}"),
    }

    // Drop 1: the office connection dies with a second Send in flight; the desktop retries
    // it with the same message id after reconnecting, and the phone sends it once.
    let again = MessageId::new_v7(phone.now + 5, &mut rng).unwrap();
    let send = RequestBody::Send {
        chat: ChatId([1; 16]),
        message: again,
        text: "or 1pm".into(),
        reply_to: Some(message),
    };
    off.request(send.clone()).unwrap();
    let request_frame = off.poll_transmit().unwrap();
    phone
        .take(&mut off_phone, &request_frame, &mut [&mut lap_phone])
        .unwrap();
    drop((off, off_phone)); // the response is lost with the connection
    phone.now += 1_000;
    let (mut off, mut off_phone) = office.connect(&mut phone);
    off.request(send).unwrap();
    exchange(
        &mut phone,
        &mut off_phone,
        &mut office,
        &mut off,
        &mut [&mut lap_phone],
        None,
    );
    assert_eq!(
        phone.messages.len(),
        2,
        "the retried send is not sent twice"
    );
    assert_eq!(office.cursor, 5);

    // Drop 2: the laptop goes away; meanwhile 30 events happen. It reconnects and the
    // connection dies again after 7 frames of catch-up, then once more before any frame.
    drop((lap, lap_phone));
    for n in 10..40 {
        phone.publish(receipt(n), &mut [&mut off_phone]);
    }
    phone.now += 1_000;
    let before = laptop.cursor;
    let (mut lap, mut lap_phone) = laptop.connect(&mut phone);
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [],
        Some(7),
    );
    assert_eq!(laptop.cursor, before + 7);
    drop((lap, lap_phone));
    let (handshake, m1) = laptop.hello(phone.now);
    let lost = phone.accept(&m1).unwrap(); // message 2 never arrives
    drop((handshake, lost));
    // Drop 3: events reach the desktop but its acknowledgements do not reach the phone.
    let (mut lap, mut lap_phone) = laptop.connect(&mut phone);
    for _ in 0..5 {
        let frame = lap_phone.poll_transmit().unwrap();
        laptop.take(&mut lap, &frame).unwrap();
    }
    drop((lap, lap_phone));
    assert_eq!(laptop.cursor, before + 7 + 5);
    assert!(phone.log.acked(&laptop.key.public_key()).unwrap() < laptop.cursor);
    let (mut lap, mut lap_phone) = laptop.connect(&mut phone);
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [&mut off_phone],
        None,
    );
    exchange(
        &mut phone,
        &mut off_phone,
        &mut office,
        &mut off,
        &mut [&mut lap_phone],
        None,
    );

    // Nothing lost, nothing twice, same order everywhere.
    let log = logged_events(&phone);
    assert_eq!(log.len(), 35);
    assert_eq!(laptop.events, log);
    assert_eq!(office.events, log);
    assert_eq!(phone.log.acked(&laptop.key.public_key()).unwrap(), 35);
    assert_eq!(phone.log.acked(&office.key.public_key()).unwrap(), 35);

    // Both acknowledged everything: the log may forget it all, and a reconnect replays nothing.
    let pruned = phone.endpoint.prune(&mut phone.log, 1000).unwrap();
    assert_eq!((pruned.dropped, pruned.through), (35, 35));
    drop((lap, lap_phone));
    let (mut lap, mut lap_phone) = laptop.connect(&mut phone);
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [],
        None,
    );
    assert_eq!(laptop.events.len(), 35);

    // An older page of history, on demand, over the same channel.
    lap.request(RequestBody::PageOlder {
        chat: ChatId([1; 16]),
        before: None,
        limit: 50,
    })
    .unwrap();
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [],
        None,
    );
    let Some(Ok(Reply::Page(page))) = laptop.responses.last().map(|r| r.result.clone()) else {
        panic!("no page: {:?}", laptop.responses.last());
    };
    assert_eq!((page.messages.len(), page.more), (50, true));

    // A refused request answers with a typed failure.
    lap.request(RequestBody::Edit {
        chat: ChatId([1; 16]),
        message,
        text: "x".into(),
    })
    .unwrap();
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [],
        None,
    );
    assert!(matches!(
        laptop.responses.last().map(|r| &r.result),
        Some(Err(Failure {
            kind: FailureKind::Invalid,
            ..
        }))
    ));
}

#[test]
fn a_desktop_that_fell_behind_the_kept_log_is_told_to_resync() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let mut phone = Phone::new(&mut rng);
    let mut laptop = Desktop::new(10, &mut phone);
    let _office = Desktop::new(20, &mut phone);
    laptop.sync_verified = Some(true);
    for n in 1..=30 {
        phone.publish(receipt(n), &mut []);
    }
    let pruned = phone.endpoint.prune(&mut phone.log, 10).unwrap();
    assert_eq!(pruned.through, 20);
    assert_eq!(pruned.behind.len(), 2);
    let (handshake, m1) = laptop.hello(phone.now);
    let mut session = phone.accept(&m1).unwrap();
    let (mut lap, welcome) = handshake.finish(&session.poll_transmit().unwrap()).unwrap();
    assert_eq!(welcome.catch_up, CatchUp::Resync { next_seq: 21 });
    assert_eq!(lap.last_seq(), 20);
    laptop.cursor = 20;
    exchange(
        &mut phone,
        &mut session,
        &mut laptop,
        &mut lap,
        &mut [],
        None,
    );
    assert_eq!(
        laptop
            .events
            .iter()
            .map(|(seq, _)| *seq)
            .collect::<Vec<_>>(),
        (21..=30).collect::<Vec<_>>()
    );
}

#[test]
fn intruders_replays_and_bad_frames_are_refused_and_store_nothing() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut phone = Phone::new(&mut rng);
    let mut laptop = Desktop::new(10, &mut phone);
    laptop.sync_verified = Some(true);
    phone.publish(receipt(1), &mut []);

    // A stranger with its own key.
    let stranger_key = StaticSecret::generate(&mut rng);
    let (_, m1) = DesktopHandshake::start(
        &stranger_key,
        &phone.endpoint.public_key(),
        0,
        None,
        T0,
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        phone.accept(&m1).unwrap_err(),
        Error::UnauthorisedDesktop {
            key: stranger_key.public_key()
        }
    );

    // A linked desktop that holds the wrong phone key.
    let wrong = StaticSecret::generate(&mut rng).public_key();
    let (_, m1) = DesktopHandshake::start(&laptop.key, &wrong, 0, None, T0, &mut rng).unwrap();
    assert_eq!(phone.accept(&m1).unwrap_err(), Error::NotForThisPhone);

    // A recorded message 1 played again, now and after the window.
    let (handshake, m1) = laptop.hello(phone.now);
    let mut live = phone.accept(&m1).unwrap();
    assert!(matches!(
        phone.accept(&m1),
        Err(Error::ReplayedHandshake { .. })
    ));
    phone.now += REPLAY_WINDOW_MS + 1;
    assert!(matches!(phone.accept(&m1), Err(Error::ClockSkew { .. })));
    phone.now -= REPLAY_WINDOW_MS + 1;
    assert_eq!(phone.refusals.len(), 4);
    assert_eq!(
        phone.log.acked(&laptop.key.public_key()).unwrap(),
        0,
        "nothing recorded"
    );

    // The real desktop goes on; then sends an oversized frame.
    let (mut lap, _) = handshake.finish(&live.poll_transmit().unwrap()).unwrap();
    exchange(&mut phone, &mut live, &mut laptop, &mut lap, &mut [], None);
    assert!(live.is_confirmed());
    assert_eq!(laptop.events.len(), 1);
    let before = logged_events(&phone);
    assert_eq!(
        live.receive(&vec![0u8; MAX_FRAME_LEN + 1], &mut phone.log),
        Err(Error::FrameTooLarge {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
    assert!(!live.is_open());
    // The phone said why; the desktop learns it, and then refuses anything more.
    let close = live.poll_transmit().unwrap();
    laptop.take(&mut lap, &close).unwrap();
    assert!(matches!(
        laptop.closed.last(),
        Some(CloseReason::ProtocolError { kind, .. }) if kind == "frame_too_large"
    ));
    assert_eq!(lap.receive(&close), Err(Error::FrameAfterClose));
    assert_eq!(logged_events(&phone), before, "nothing stored");

    // Malformed bytes on a fresh connection: garbage, and a frame from another connection.
    let (mut lap, mut lap_phone) = laptop.connect(&mut phone);
    let (mut other, mut other_phone) = laptop.connect(&mut phone);
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [],
        None,
    );
    other.ping(1).unwrap();
    let _ack = other.poll_transmit().unwrap();
    let foreign = other.poll_transmit().unwrap();
    assert!(matches!(
        lap_phone.receive(&foreign, &mut phone.log),
        Err(Error::FrameDecrypt { .. })
    ));
    assert!(matches!(
        other_phone.receive(b"\x00\x01garbage", &mut phone.log),
        Err(Error::FrameDecrypt { .. })
    ));
    assert_eq!(logged_events(&phone), before, "nothing stored");

    // A frame after a Close the desktop sent.
    let (mut lap, mut lap_phone) = laptop.connect(&mut phone);
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [],
        None,
    );
    lap.close(CloseReason::Normal);
    let close = lap.poll_transmit().unwrap();
    assert_eq!(
        lap_phone.receive(&close, &mut phone.log).unwrap(),
        Some(PhoneIncoming::Closed {
            reason: CloseReason::Normal
        })
    );
    assert_eq!(
        lap_phone.receive(&close, &mut phone.log),
        Err(Error::FrameAfterClose)
    );
    assert_eq!(laptop.events.len(), 1);
}

#[test]
fn a_big_message_crosses_in_fragments_and_a_huge_one_is_refused() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let mut phone = Phone::new(&mut rng);
    let mut laptop = Desktop::new(10, &mut phone);
    laptop.sync_verified = Some(true);
    let (mut lap, mut lap_phone) = laptop.connect(&mut phone);
    exchange(
        &mut phone,
        &mut lap_phone,
        &mut laptop,
        &mut lap,
        &mut [],
        None,
    );

    // A page of 200 long messages: about 1.2 MB.
    let messages: Vec<_> = (0..200u32)
        .map(|n| {
            let id = MessageId::derived(T0, b"big", &n.to_le_bytes()).unwrap();
            stored(id, 1, T0 + i64::from(n), "z".repeat(6000), false)
        })
        .collect();
    let page = Reply::Page(Page {
        chats: vec![chat(1)],
        messages,
        more: false,
    });
    lap_phone.respond(42, Ok(page.clone())).unwrap();
    let frames: Vec<_> = std::iter::from_fn(|| lap_phone.poll_transmit()).collect();
    assert!(frames.len() >= 18, "{} frames", frames.len());
    assert!(frames.iter().all(|f| f.len() <= MAX_FRAME_LEN));
    for frame in &frames {
        laptop.take(&mut lap, frame).unwrap();
    }
    let last = laptop.responses.last().unwrap();
    assert_eq!((last.id, &last.result), (42, &Ok(page)));

    // Larger than any message may be: refused by the sender before a byte leaves.
    let huge = Reply::Page(Page {
        chats: vec![],
        messages: (0..200u32)
            .map(|n| {
                let id = MessageId::derived(T0, b"huge", &n.to_le_bytes()).unwrap();
                stored(id, 1, T0, "h".repeat(60_000), false)
            })
            .collect(),
        more: false,
    });
    assert!(matches!(
        lap_phone.respond(43, Ok(huge)),
        Err(Error::MessageTooLarge {
            max: MAX_MESSAGE_LEN,
            ..
        })
    ));
    assert_eq!(lap_phone.queued(), 0);
}

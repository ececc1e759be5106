//! The desktop's bridge driver against a scripted phone: a real tokio-tungstenite server on
//! 127.0.0.1 driving `tandem_bridge::PhoneEndpoint` over a `MemoryEventLog`, with a real
//! phone store (a primary engine) behind its history sync and pages. The desktop is a real
//! encrypted store whose identity entries say "linked in bridge mode to that phone".

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use tandem_bridge::{
    DeviceChangeKind, EventLog, MemoryEventLog, Page, PhoneEndpoint, PhoneIncoming, PhoneSession,
};
use tandem_crypto::{AccountId, DeviceId};
use tandem_proto::sync::{SyncedChat, chain};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::*;
use crate::history::PlanBound;
use crate::{KeychainUse, SessionHandle, session_channel};

const BOB_CHAT: [u8; 16] = [7; 16];
/// When Bob's messages were written.
const T0: i64 = 1_750_000_000_000;

/// What the scripted phone holds and counts.
struct PhoneState {
    endpoint: PhoneEndpoint,
    log: MemoryEventLog,
    /// The phone's own store: the history it syncs and pages.
    history: Engine,
    plans: HashMap<[u8; 16], history::Plan>,
    /// Messages sent for desktops, by id.
    stored: HashMap<[u8; 16], SyncedMessage>,
    /// `Send` requests that stored a new message.
    sends: usize,
    /// Every request body received.
    requests: Vec<RequestBody>,
    /// Handshakes accepted and refused.
    accepted: usize,
    refused: usize,
    /// Close the connection abruptly after pushing this many history chunks (once).
    drop_after_chunks: Option<u32>,
    /// Unlogged events pushed on every new connection.
    on_connect: Vec<EventBody>,
    account: AccountId,
}

/// The scripted phone: its state and, while it runs, its server.
struct Phone {
    state: Arc<Mutex<PhoneState>>,
    head: Arc<watch::Sender<u64>>,
    address: SocketAddr,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: TempDir,
}

impl Phone {
    /// A phone (account "Alice") whose store holds `messages` generated messages in `chats`
    /// chats, not serving yet; its address is reserved.
    async fn new(chats: usize, messages: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let history = Engine::open_with(&dir.path().join("phone"), KeychainUse::Off).unwrap();
        history.init_primary("Alice", None).unwrap();
        if messages > 0 {
            history.generate(chats, messages, 7).unwrap();
        }
        let account = history.identity().unwrap().account;
        let secret = StaticSecret::generate(&mut rng().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        Self {
            state: Arc::new(Mutex::new(PhoneState {
                endpoint: PhoneEndpoint::new(secret),
                log: MemoryEventLog::new(),
                history,
                plans: HashMap::new(),
                stored: HashMap::new(),
                sends: 0,
                requests: Vec::new(),
                accepted: 0,
                refused: 0,
                drop_after_chunks: None,
                on_connect: Vec::new(),
                account,
            })),
            head: Arc::new(watch::channel(0).0),
            address,
            server: None,
            _dir: dir,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut PhoneState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    fn url(&self) -> String {
        format!("ws://{}", self.address)
    }

    fn public_key(&self) -> PublicKey {
        self.with(|s| s.endpoint.public_key())
    }

    fn account_key(&self) -> [u8; 32] {
        self.with(|s| {
            let key = s
                .history
                .store()
                .identity(identity::ACCOUNT_KEY)
                .unwrap()
                .unwrap();
            crate::account::account_key_from(key.expose())
                .unwrap()
                .public_key()
                .to_bytes()
        })
    }

    fn publish(&self, body: EventBody) -> u64 {
        let seq = self.with(|s| s.log.publish(body).unwrap());
        self.head.send_replace(seq);
        seq
    }

    /// Serves at its address (again).
    async fn start(&mut self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        let state = self.state.clone();
        let head = self.head.clone();
        self.server = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(serve(tcp, state.clone(), head.clone()));
            }
        }));
    }

    /// Stops serving: the listener and every connection go.
    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }
}

type PhoneSocket = tokio_tungstenite::WebSocketStream<TcpStream>;

/// One desktop connection on the scripted phone.
async fn serve(tcp: TcpStream, state: Arc<Mutex<PhoneState>>, head: Arc<watch::Sender<u64>>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let Some(Ok(Ws::Binary(message1))) = ws.next().await else {
        return;
    };
    let mut head_rx = head.subscribe();
    let accepted = {
        let mut guard = state.lock().unwrap();
        let s = &mut *guard;
        match s
            .endpoint
            .accept(&message1, &s.log, now_ms(), &mut rng().unwrap())
        {
            Ok(accepted) => {
                s.accepted += 1;
                let mut session = accepted.session;
                for body in s.on_connect.clone() {
                    session.push_unlogged(body).unwrap();
                }
                let drop_now = match accepted.hello.sync {
                    Some(resume) if s.plans.contains_key(&resume.sync_id) => {
                        stream(s, &mut session, resume.sync_id, resume.next)
                    }
                    _ => false,
                };
                Some((session, drop_now))
            }
            Err(_) => {
                s.refused += 1;
                None
            }
        }
    };
    let Some((mut session, drop_now)) = accepted else {
        return;
    };
    if drop_now {
        let _ = send_all(&mut ws, &mut session).await;
        return;
    }
    loop {
        {
            let guard = state.lock().unwrap();
            let _ = session.pump_events(&guard.log, 256);
        }
        if send_all(&mut ws, &mut session).await.is_err() || !session.is_open() {
            return;
        }
        tokio::select! {
            frame = ws.next() => {
                let Some(Ok(frame)) = frame else { return };
                let Ws::Binary(frame) = frame else { continue };
                let drop_now = {
                    let mut guard = state.lock().unwrap();
                    let s = &mut *guard;
                    match session.receive(&frame, &mut s.log) {
                        Ok(Some(PhoneIncoming::Request(request))) => {
                            answer(s, &head, &mut session, request)
                        }
                        Ok(Some(PhoneIncoming::Closed { .. })) | Err(_) => return,
                        Ok(_) => false,
                    }
                };
                if drop_now {
                    let _ = send_all(&mut ws, &mut session).await;
                    return;
                }
            }
            changed = head_rx.changed() => if changed.is_err() { return },
        }
    }
}

async fn send_all(ws: &mut PhoneSocket, session: &mut PhoneSession) -> std::result::Result<(), ()> {
    while let Some(frame) = session.poll_transmit() {
        ws.send(Ws::binary(frame)).await.map_err(|_| ())?;
    }
    Ok(())
}

/// Answers one request; returns true when the connection must drop now.
fn answer(
    s: &mut PhoneState,
    head: &watch::Sender<u64>,
    session: &mut PhoneSession,
    request: tandem_bridge::Request,
) -> bool {
    s.requests.push(request.body.clone());
    let mut drop_now = false;
    let reply = match request.body {
        RequestBody::Send {
            chat,
            message,
            text,
            reply_to,
        } => {
            let stored = match s.stored.get(message.as_bytes()) {
                Some(stored) => stored.clone(),
                None => {
                    let stored = SyncedMessage {
                        id: *message.as_bytes(),
                        chat: chat.0,
                        sender_account: Some(s.account.as_bytes().to_vec()),
                        sender_device: Some(0),
                        sender_name: "Alice".into(),
                        from_me: true,
                        ts: now_ms(),
                        kind: "text".into(),
                        text,
                        media_name: None,
                        reply_to: reply_to.map(|r| *r.as_bytes()),
                        edited_at: None,
                        deleted: false,
                        status: 1,
                    };
                    s.stored.insert(stored.id, stored.clone());
                    s.sends += 1;
                    // Every desktop hears of it, this one too.
                    let seq = s
                        .log
                        .publish(EventBody::Message {
                            message: stored.clone(),
                            chat: None,
                        })
                        .unwrap();
                    head.send_replace(seq);
                    stored
                }
            };
            BridgeReply::Message(stored)
        }
        RequestBody::Sync(SyncMessage::Resume { sync_id, next }) => {
            if !s.plans.contains_key(&sync_id) && next == 0 {
                let plan = history::build_plan(s.history.store(), 0, PlanBound::default()).unwrap();
                s.plans.insert(sync_id, plan);
            }
            if s.plans.contains_key(&sync_id) {
                drop_now = stream(s, session, sync_id, next);
            } else {
                session
                    .push_unlogged(EventBody::Sync(SyncMessage::Unknown { sync_id }))
                    .unwrap();
            }
            BridgeReply::Done
        }
        RequestBody::PageOlder {
            chat,
            before,
            limit,
        } => {
            let (chat, messages, more) = history::page(
                s.history.store(),
                chat.0,
                before.map(|(ts, id)| (ts, *id.as_bytes())),
                limit,
            )
            .unwrap();
            BridgeReply::Page(Page {
                chats: chat.into_iter().collect(),
                messages,
                more,
            })
        }
        _ => BridgeReply::Done,
    };
    session.respond(request.id, Ok(reply)).unwrap();
    drop_now
}

/// Pushes the chunks of `sync_id` from `next` on, then `Complete`. Returns true when the
/// connection must drop (the test's knob).
fn stream(s: &mut PhoneState, session: &mut PhoneSession, sync_id: [u8; 16], next: u32) -> bool {
    let plan = s.plans.get(&sync_id).unwrap().clone();
    let store = s.history.store();
    let mut digest = CHAIN_START;
    let mut pushed = 0;
    for index in 0..plan.total() {
        let chunk = plan.chunk(store, sync_id, index).unwrap();
        digest = chain(&digest, index, &chunk.digest);
        if index < next {
            continue;
        }
        session
            .push_unlogged(EventBody::Sync(SyncMessage::Chunk(Box::new(chunk))))
            .unwrap();
        pushed += 1;
        if s.drop_after_chunks == Some(pushed) {
            s.drop_after_chunks = None;
            return true;
        }
    }
    session
        .push_unlogged(EventBody::Sync(SyncMessage::Complete {
            sync_id,
            chunks: plan.total(),
            messages: plan.messages(),
            digest,
        }))
        .unwrap();
    false
}

/// A desktop linked in bridge mode to `phone` (whose bridge key it holds as `phone_key`),
/// with a chat "Bob".
fn desktop(dir: &TempDir, phone: &Phone, phone_key: PublicKey) -> (Engine, PublicKey) {
    let engine = Engine::open_with(&dir.path().join("desktop"), KeychainUse::Off).unwrap();
    let secret = StaticSecret::generate(&mut rng().unwrap());
    phone
        .with(|s| s.endpoint.authorise(secret.public_key()))
        .unwrap();
    let account_key = phone.account_key();
    engine
        .store()
        .write_durable(|w| -> Result<()> {
            w.put_identity(identity::ROLE, b"desktop")?;
            w.put_identity(identity::MODE, b"bridge")?;
            w.put_identity(identity::BRIDGE_SECRET, secret.to_bytes().as_slice())?;
            w.put_identity(identity::BRIDGE_URL, phone.url().as_bytes())?;
            w.put_identity(identity::BRIDGE_PHONE_KEY, phone_key.as_bytes())?;
            w.put_identity(identity::ACCOUNT_PUBLIC_KEY, &account_key)?;
            w.put_identity(identity::ACCOUNT_NAME, b"Alice")?;
            history::import(w, &[bob_chat()], &[])?;
            Ok(())
        })
        .unwrap();
    (engine, secret.public_key())
}

fn bob_chat() -> SyncedChat {
    SyncedChat {
        id: BOB_CHAT,
        kind: "direct".into(),
        name: "Bob".into(),
        peer_account: None,
        created_at: 1,
        muted: false,
        pinned: false,
        archived: false,
        unread: 0,
        members: Vec::new(),
    }
}

/// A message from Bob in his chat.
fn from_bob(n: u8, text: &str) -> SyncedMessage {
    SyncedMessage {
        id: *WireId::derived(T0, b"bob", &[n]).unwrap().as_bytes(),
        chat: BOB_CHAT,
        sender_account: None,
        sender_device: None,
        sender_name: "Bob".into(),
        from_me: false,
        ts: T0 + i64::from(n),
        kind: "text".into(),
        text: text.into(),
        media_name: None,
        reply_to: None,
        edited_at: None,
        deleted: false,
        status: 1,
    }
}

/// Runs the desktop's session (`run_shared`: the control socket is open) while `script`
/// runs; every engine event lands in `events`.
async fn with_session<F: Future<Output = ()>>(
    engine: &Engine,
    events: &RefCell<Vec<Event>>,
    script: impl FnOnce(SessionHandle) -> F,
) {
    let (handle, requests) = session_channel();
    let mut on = |e: &Event| events.borrow_mut().push(e.clone());
    let session = Box::pin(engine.run_shared(None, &handle, requests, &mut on));
    let script = script(handle.clone());
    tokio::select! {
        result = session => panic!("the session ended: {result:?}"),
        () = script => {}
    }
}

/// Waits (at most 5 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < give_up, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn message_text(engine: &Engine, id: [u8; 16]) -> Option<String> {
    engine
        .store()
        .message(MessageId(Uuid::from_bytes(id)))
        .unwrap()
        .map(|m| m.text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_the_phone_are_stored_with_the_cursor_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::new(1, 0).await;
    let (desktop, desktop_key) = desktop(&dir, &phone, phone.public_key());
    let first = from_bob(1, "before you connected");
    phone.publish(EventBody::Message {
        message: first.clone(),
        chat: Some(bob_chat()),
    });
    phone.publish(EventBody::Edited {
        chat: WireChat(BOB_CHAT),
        message: WireId::from_bytes(first.id).unwrap(),
        text: "edited on the phone".into(),
        edited_at: now_ms(),
    });
    phone.with(|s| {
        s.on_connect.push(EventBody::Typing {
            chat: WireChat(BOB_CHAT),
            who: s.account,
            on: true,
        });
    });
    phone.start().await;
    let events = RefCell::new(Vec::new());
    let second = from_bob(2, "live");
    with_session(&desktop, &events, |_| async {
        until("the catch-up is stored", || {
            message_text(&desktop, first.id).as_deref() == Some("edited on the phone")
        })
        .await;
        phone.publish(EventBody::Message {
            message: second.clone(),
            chat: None,
        });
        phone.publish(EventBody::Reaction {
            chat: WireChat(BOB_CHAT),
            message: WireId::from_bytes(second.id).unwrap(),
            by: None,
            emoji: "👍".into(),
        });
        phone.publish(EventBody::DeviceChange {
            device: DeviceId::new(phone.with(|s| s.account), 3),
            name: "Laptop".into(),
            platform: "linux".into(),
            change: DeviceChangeKind::Linked,
            at: now_ms(),
        });
        until("the live events are acknowledged", || {
            phone.with(|s| s.log.acked(&desktop_key).unwrap()) == 5
        })
        .await;
    })
    .await;

    assert_eq!(desktop.bridge_cursor().unwrap(), 5);
    assert_eq!(message_text(&desktop, second.id).as_deref(), Some("live"));
    let view = desktop
        .message_view(MessageId(Uuid::from_bytes(second.id)))
        .unwrap();
    assert_eq!(view.reactions.len(), 1);
    assert!(view.reactions[0].from_me, "{view:?}");
    let chat = desktop
        .store()
        .chat(ChatId(Uuid::from_bytes(BOB_CHAT)))
        .unwrap()
        .unwrap();
    assert_eq!(
        chat.unread, 1,
        "the live message without a chat counts as unread"
    );
    let events = events.into_inner();
    let has = |f: &dyn Fn(&Event) -> bool| events.iter().any(f);
    assert!(has(&|e| matches!(e, Event::Online { .. })));
    assert!(has(
        &|e| matches!(e, Event::Message { message } if message.text == "before you connected")
    ));
    assert!(has(
        &|e| matches!(e, Event::Update { message } if message.text == "edited on the phone")
    ));
    assert!(has(
        &|e| matches!(e, Event::Message { message } if message.text == "live")
    ));
    assert!(has(
        &|e| matches!(e, Event::Update { message } if message.reactions.len() == 1)
    ));
    assert!(has(
        &|e| matches!(e, Event::Typing { from, on: true, .. } if from == "Alice")
    ));
    assert!(has(
        &|e| matches!(e, Event::PhoneDevice { name, linked: true, .. } if name == "Laptop")
    ));
    // With no history on the phone, the sync it asked for is complete at once.
    assert_eq!(desktop.status().unwrap().sync.state, "complete");
    phone.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_desktop_resumes_after_its_cursor_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::new(1, 0).await;
    let (desktop, desktop_key) = desktop(&dir, &phone, phone.public_key());
    phone.publish(EventBody::Message {
        message: from_bob(1, "one"),
        chat: Some(bob_chat()),
    });
    phone.publish(EventBody::Message {
        message: from_bob(2, "two"),
        chat: None,
    });
    phone.start().await;
    let before = RefCell::new(Vec::new());
    with_session(&desktop, &before, |_| async {
        until("two events are acknowledged", || {
            phone.with(|s| s.log.acked(&desktop_key).unwrap()) == 2
        })
        .await;
    })
    .await;
    assert_eq!(desktop.bridge_cursor().unwrap(), 2);

    // While the desktop is stopped the phone logs two more.
    phone.publish(EventBody::Message {
        message: from_bob(3, "three"),
        chat: None,
    });
    phone.publish(EventBody::Deleted {
        chat: WireChat(BOB_CHAT),
        message: WireId::from_bytes(from_bob(1, "").id).unwrap(),
    });
    let after = RefCell::new(Vec::new());
    with_session(&desktop, &after, |_| async {
        until("four events are acknowledged", || {
            phone.with(|s| s.log.acked(&desktop_key).unwrap()) == 4
        })
        .await;
    })
    .await;

    assert_eq!(desktop.bridge_cursor().unwrap(), 4);
    assert_eq!(desktop.store().counts().unwrap().messages, 3);
    let after = after.into_inner();
    let new: Vec<_> = after
        .iter()
        .filter_map(|e| match e {
            Event::Message { message } => Some(message.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        new,
        ["three"],
        "only the events after the cursor: {after:?}"
    );
    assert!(
        after
            .iter()
            .any(|e| matches!(e, Event::Update { message } if message.deleted)),
        "{after:?}"
    );
    assert_eq!(phone.with(|s| s.accepted), 2);
    phone.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_written_while_the_phone_is_down_waits_and_goes_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::new(1, 0).await;
    let (desktop, _) = desktop(&dir, &phone, phone.public_key());
    let view = desktop.send("Bob", "written offline", None).unwrap();
    assert_eq!(view.status, Some("pending"));
    assert_eq!(desktop.store().bridge_outbox().unwrap().len(), 1);
    // `tandem send` with the phone away: nothing sent, still queued.
    assert!(
        !desktop
            .send_queued(Duration::from_millis(600), &mut |_| {})
            .await
            .unwrap()
    );
    assert_eq!(desktop.store().bridge_outbox().unwrap().len(), 1);

    let events = RefCell::new(Vec::new());
    with_session(&desktop, &events, |_| async {
        until("the session reports the phone offline", || {
            events
                .borrow()
                .iter()
                .any(|e| matches!(e, Event::Offline { .. }))
        })
        .await;
        assert_eq!(desktop.store().bridge_outbox().unwrap().len(), 1);
        phone.start().await;
        until("the outbox is empty", || {
            desktop.store().bridge_outbox().unwrap().is_empty()
        })
        .await;
        until("the phone's own event about it is stored", || {
            desktop.bridge_cursor().unwrap() == 1
        })
        .await;
    })
    .await;

    assert_eq!(desktop.message(&view.id).unwrap().status, Some("sent"));
    assert_eq!(phone.with(|s| s.sends), 1);
    let sends = phone.with(|s| {
        s.requests
            .iter()
            .filter(|r| matches!(r, RequestBody::Send { .. }))
            .count()
    });
    assert_eq!(sends, 1, "sent exactly once");
    assert_eq!(desktop.store().counts().unwrap().messages, 1);
    let events = events.into_inner();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Receipt { id, status: "sent", .. } if *id == view.id))
    );
    phone.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_sync_is_imported_verified_and_resumes_after_a_dropped_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::new(3, 2_500).await;
    let (desktop, _) = desktop(&dir, &phone, phone.public_key());
    phone.with(|s| s.drop_after_chunks = Some(1));
    phone.start().await;
    let events = RefCell::new(Vec::new());
    let report = desktop
        .sync(Some(Duration::from_secs(20)), &mut |e| {
            events.borrow_mut().push(e.clone());
        })
        .await
        .unwrap();

    let (total, messages, phone_chats) = phone.with(|s| {
        let plan = s.plans.values().next().unwrap().clone();
        (
            plan.total(),
            plan.messages(),
            s.history.store().counts().unwrap().chats,
        )
    });
    assert!(total >= 3, "a plan of {total} chunks");
    assert_eq!(report.chunks, total);
    assert_eq!(report.messages, messages);
    let counts = desktop.store().counts().unwrap();
    assert_eq!(counts.messages, 2_500);
    // The phone's chats, and Bob's that only the desktop holds.
    assert_eq!(counts.chats, phone_chats + 1);
    assert_eq!(
        phone.with(|s| s.accepted),
        2,
        "resumed on a second connection"
    );
    let resumes = phone.with(|s| {
        s.requests
            .iter()
            .filter(|r| matches!(r, RequestBody::Sync(SyncMessage::Resume { .. })))
            .count()
    });
    assert_eq!(resumes, 1, "the second connection resumed from Hello.sync");
    let status = desktop.status().unwrap();
    assert_eq!(status.sync.state, "complete");
    assert_eq!(status.sync.done, 2_500);
    assert_eq!(status.sync.total, 2_500);
    let events = events.into_inner();
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Progress { .. }))
            .count()
            >= total as usize
    );
    assert!(events.iter().any(|e| matches!(e, Event::Synced { .. })));
    phone.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_whether_the_phone_is_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::new(1, 0).await;
    let (desktop, _) = desktop(&dir, &phone, phone.public_key());
    let status = desktop.status_live().await.unwrap();
    assert_eq!(status.mode, "bridge");
    assert_eq!(status.phone_reachable, Some(false));
    assert_eq!(status.bridge_url.as_deref(), Some(phone.url().as_str()));

    phone.start().await;
    let status = desktop.status_live().await.unwrap();
    assert_eq!(status.phone_reachable, Some(true));
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["phone_reachable"], serde_json::json!(true));
    // The probe stored nothing and left no event unacknowledged behind.
    assert_eq!(desktop.store().counts().unwrap().messages, 0);

    // With a session running, `status` asks it over the control socket.
    let events = RefCell::new(Vec::new());
    with_session(&desktop, &events, |_| async {
        until("the session is online", || {
            events
                .borrow()
                .iter()
                .any(|e| matches!(e, Event::Online { .. }))
        })
        .await;
        let accepted = phone.with(|s| s.accepted);
        assert_eq!(
            desktop.status_live().await.unwrap().phone_reachable,
            Some(true)
        );
        assert_eq!(phone.with(|s| s.accepted), accepted, "no second connection");
        phone.stop().await;
        until("the session sees the phone go", || {
            events
                .borrow()
                .iter()
                .any(|e| matches!(e, Event::Offline { .. }))
        })
        .await;
        assert_eq!(
            desktop.status_live().await.unwrap().phone_reachable,
            Some(false)
        );
    })
    .await;
    // A multi-device or unlinked device says nothing about a phone.
    let other = Engine::open_with(&dir.path().join("other"), KeychainUse::Off).unwrap();
    let json = serde_json::to_value(other.status_live().await.unwrap()).unwrap();
    assert!(json.get("phone_reachable").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_holding_another_phone_key_is_refused_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::new(1, 0).await;
    let impostor = StaticSecret::generate(&mut rng().unwrap()).public_key();
    let (desktop, _) = desktop(&dir, &phone, impostor);
    phone.publish(EventBody::Message {
        message: from_bob(1, "secret"),
        chat: Some(bob_chat()),
    });
    phone.start().await;
    let events = RefCell::new(Vec::new());
    with_session(&desktop, &events, |_| async {
        until("two handshakes are refused", || {
            phone.with(|s| s.refused) >= 2
        })
        .await;
    })
    .await;
    assert_eq!(phone.with(|s| s.accepted), 0);
    assert_eq!(desktop.bridge_cursor().unwrap(), 0);
    assert_eq!(desktop.store().counts().unwrap().messages, 0);
    let events = events.into_inner();
    assert!(!events.iter().any(|e| matches!(e, Event::Online { .. })));
    assert!(events.iter().any(|e| matches!(e, Event::Offline { .. })));
    let status = desktop.status_live().await.unwrap();
    assert_eq!(status.phone_reachable, Some(false));
    assert_eq!(status.sync.state, "none");
    // `sync` gives up with the phone unreachable.
    let err = desktop
        .sync(Some(Duration::from_millis(800)), &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "timeout", "{err}");
    phone.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_pages_come_over_the_bridge_and_requests_need_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::new(1, 300).await;
    let (desktop, _) = desktop(&dir, &phone, phone.public_key());
    // The desktop holds the newest ten messages of the phone's chat.
    let (chat, newest) = phone.with(|s| {
        let chat = s.history.store().chats().unwrap()[0].id;
        let (chat, messages, _) =
            history::page(s.history.store(), *chat.as_bytes(), None, 10).unwrap();
        (chat.unwrap(), messages)
    });
    desktop
        .store()
        .write(|w| history::import(w, std::slice::from_ref(&chat), &newest))
        .unwrap();
    let chat_id = uuid_text(chat.id);

    // Without a session, react/edit/delete/read say the phone is needed.
    let target = uuid_text(newest[0].id);
    let err = desktop.react(&target, "👍").unwrap_err();
    assert_eq!(err.kind(), "phone_unreachable", "{err}");

    // Unreachable: fetch gives up.
    let err = desktop
        .fetch_older(&chat_id, 1, Duration::from_millis(700))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "phone_offline", "{err}");

    phone.start().await;
    let report = desktop
        .fetch_older(&chat_id, 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.fetched, 100);
    assert!(report.more);
    assert_eq!(desktop.store().counts().unwrap().messages, 110);

    // A running session sends a reaction to the phone and applies it once done.
    let events = RefCell::new(Vec::new());
    let seen = &events;
    with_session(&desktop, &events, |handle| async move {
        until("the session is online", || {
            seen.borrow()
                .iter()
                .any(|e| matches!(e, Event::Online { .. }))
        })
        .await;
        let reply = handle
            .call(Request::React {
                message: target.clone(),
                emoji: "🎉".into(),
            })
            .await
            .unwrap();
        let Reply::Ok(value) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(value["reactions"][0]["emoji"], "🎉");
        let reply = handle.call(Request::PhoneStatus).await.unwrap();
        assert_eq!(
            reply,
            Reply::Ok(serde_json::json!({ "phone_reachable": true }))
        );
    })
    .await;
    let reacted = phone.with(|s| {
        s.requests
            .iter()
            .any(|r| matches!(r, RequestBody::React { emoji, .. } if emoji == "🎉"))
    });
    assert!(reacted);
    phone.stop().await;
}

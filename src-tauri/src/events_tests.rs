use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_engine::{Event, MessageView};
use tauri::ipc::{Channel, InvokeResponseBody};

use super::*;

/// A channel as the UI would hold it, capturing what it receives as JSON values.
fn ui_channel() -> (Channel<AppEvent>, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let channel = Channel::new(move |body| {
        let InvokeResponseBody::Json(json) = body else {
            panic!("events are JSON");
        };
        sink.lock()
            .unwrap()
            .push(serde_json::from_str(&json).unwrap());
        Ok(())
    });
    (channel, seen)
}

fn message(from_me: bool) -> MessageView {
    MessageView {
        id: "0190c7a4-0000-7000-8000-000000000001".into(),
        chat: "0190c7a4-0000-7000-8000-0000000000c1".into(),
        sender: (!from_me).then(|| "Bob".to_owned()),
        from_me,
        ts: 1_700_000_000_000,
        kind: "text".into(),
        text: "hello".into(),
        status: from_me.then_some("pending"),
        reply_to: None,
        reactions: Vec::new(),
        edited: false,
        deleted: false,
    }
}

#[test]
fn engine_events_reach_the_ui_as_the_engine_serializes_them() {
    let (channel, seen) = ui_channel();
    let hub = Hub::new(Connection::Connecting);
    hub.subscribe(channel);
    hub.engine_event(&Event::Typing {
        chat: "c".into(),
        from: "Bob".into(),
        account: "bob".into(),
        on: true,
    });
    hub.engine_event(&Event::Message {
        message: message(false),
    });
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0],
        serde_json::json!({"event": "typing", "chat": "c", "from": "Bob", "account": "bob", "on": true})
    );
    assert_eq!(seen[1]["event"], "message");
    assert_eq!(seen[1]["message"]["text"], "hello");
    assert_eq!(seen[1]["message"]["sender"], "Bob");
    // A new message changes the chat list: the first change goes out at once.
    assert_eq!(seen[2], serde_json::json!({"event": "chats_changed"}));
    assert_eq!(seen.len(), 3);
}

#[test]
fn online_and_offline_become_the_connection_state() {
    let (channel, seen) = ui_channel();
    let hub = Hub::new(Connection::Connecting);
    hub.subscribe(channel);
    hub.engine_event(&Event::Online {
        device: "a.1".into(),
        broker: "mqtt://127.0.0.1:1883".into(),
    });
    // Online again (a reconnection): the state did not change, nothing is sent.
    hub.engine_event(&Event::Online {
        device: "a.1".into(),
        broker: "mqtt://127.0.0.1:1883".into(),
    });
    hub.engine_event(&Event::Offline {
        reason: "connection refused".into(),
    });
    assert_eq!(hub.connection(), Connection::Offline);
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        vec![
            serde_json::json!({"event": "connection", "state": "online"}),
            serde_json::json!({"event": "connection", "state": "offline", "reason": "connection refused"}),
        ]
    );
}

#[test]
fn phone_side_and_internal_events_are_not_forwarded() {
    for event in [
        Event::Device {
            name: "laptop".into(),
            platform: "linux".into(),
        },
        Event::DeviceLinked {
            device: "a.2".into(),
            name: "laptop".into(),
            platform: "linux".into(),
        },
        Event::Waiting {
            reason: "chunk".into(),
        },
        Event::Serving {
            device: "a.1".into(),
            broker: "mqtt://x".into(),
        },
        Event::Code {
            link: "tandem://link?x".into(),
            index: 0,
            expires_at: 1,
        },
    ] {
        let mapped = map_engine_event(&event);
        assert_eq!(mapped.event, None, "{event:?}");
        assert_eq!(mapped.connection, None);
        assert!(!mapped.chats_changed);
    }
}

#[test]
fn which_events_change_the_chat_list() {
    let changes = |e: Event| map_engine_event(&e).chats_changed;
    assert!(changes(Event::Message {
        message: message(true)
    }));
    assert!(changes(Event::Update {
        message: message(true)
    }));
    assert!(changes(Event::Receipt {
        id: "m".into(),
        chat: "c".into(),
        status: "read"
    }));
    assert!(changes(Event::Synced {
        chunks: 1,
        messages: 2
    }));
    assert!(changes(Event::Progress {
        chunks_done: 1,
        chunks_total: 2,
        messages_done: 3,
        messages_total: 4
    }));
    assert!(changes(Event::Contact {
        account: "a".into(),
        name: "Bob".into()
    }));
    // Read (or muted, pinned, archived) on the phone: only the chat list shows it.
    let read_elsewhere = map_engine_event(&Event::ChatChanged { chat: "c".into() });
    assert!(read_elsewhere.chats_changed);
    assert_eq!(read_elsewhere.event, None);
    assert!(!changes(Event::Presence {
        device: "b.1".into(),
        name: "Bob".into(),
        online: true,
        at: 5
    }));
    assert!(!changes(Event::Linked {
        account: "a".into(),
        device: "a.2".into()
    }));
}

#[test]
fn shell_events_are_tagged_by_event() {
    let json = |e: ShellEvent| serde_json::to_value(AppEvent::from(e)).unwrap();
    assert_eq!(
        json(ShellEvent::LinkFailed {
            kind: "expired".into(),
            message: "QR code expired, try again".into()
        }),
        serde_json::json!({"event": "link_failed", "kind": "expired", "message": "QR code expired, try again"})
    );
    assert_eq!(
        json(ShellEvent::ExportProgress {
            done: 1000,
            total: 5000
        }),
        serde_json::json!({"event": "export_progress", "done": 1000, "total": 5000})
    );
    assert_eq!(
        json(ShellEvent::Unlinked),
        serde_json::json!({"event": "unlinked"})
    );
    assert_eq!(
        json(ShellEvent::Settings {
            settings: Settings::default()
        }),
        serde_json::json!({"event": "settings", "settings": {"theme": "system", "notifications": true, "preview": true}})
    );
}

#[test]
fn the_throttle_sends_the_first_change_at_once_and_one_trailing_event_per_interval() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut throttle = Throttle::new(Duration::from_millis(250));
    assert_eq!(throttle.poke(ms(0)), Poke::Now);
    // Changes within the interval arm one timer, at the end of the interval.
    assert_eq!(throttle.poke(ms(10)), Poke::At(ms(250)));
    assert_eq!(throttle.poke(ms(100)), Poke::Covered);
    assert_eq!(throttle.poke(ms(249)), Poke::Covered);
    throttle.fire(ms(250));
    // The trailing event counts as the last one sent.
    assert_eq!(throttle.poke(ms(300)), Poke::At(ms(500)));
    throttle.fire(ms(500));
    // After a quiet interval, a change goes out at once again.
    assert_eq!(throttle.poke(ms(800)), Poke::Now);
    assert_eq!(throttle.poke(ms(1050)), Poke::Now);
}

#[test]
fn a_burst_of_changes_becomes_one_event_now_and_one_trailing() {
    let (channel, seen) = ui_channel();
    let hub = Hub::new(Connection::Online);
    hub.subscribe(channel);
    let t0 = Instant::now() + Duration::from_secs(3600);
    // The trailing timer is armed for an hour from now: it does not go off in this test.
    for n in 0..100 {
        hub.chats_changed(t0 + Duration::from_millis(n));
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
    hub.fire_chats_changed(t0 + Duration::from_millis(250));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|e| *e == serde_json::json!({"event": "chats_changed"}))
    );
}

#[tokio::test]
async fn the_trailing_chats_changed_goes_out_by_itself() {
    let (channel, seen) = ui_channel();
    let hub = Hub::new(Connection::Online);
    hub.subscribe(channel);
    let start = Instant::now();
    hub.chats_changed(start);
    hub.chats_changed(start + Duration::from_millis(1));
    assert_eq!(seen.lock().unwrap().len(), 1);
    let deadline = start + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the trailing event never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(start.elapsed() >= CHATS_CHANGED_EVERY);
}

#[test]
fn a_new_channel_replaces_the_old_one_and_listeners_see_everything() {
    let (old, old_seen) = ui_channel();
    let (new, new_seen) = ui_channel();
    let hub = Hub::new(Connection::Unlinked);
    let heard = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&heard);
    hub.listen(Box::new(move |_| *counter.lock().unwrap() += 1));
    hub.emit(ShellEvent::Unlinked);
    hub.subscribe(old);
    hub.emit(ShellEvent::Unlinked);
    hub.subscribe(new);
    hub.emit(ShellEvent::Unlinked);
    assert_eq!(old_seen.lock().unwrap().len(), 1);
    assert_eq!(new_seen.lock().unwrap().len(), 1);
    assert_eq!(*heard.lock().unwrap(), 3);
}

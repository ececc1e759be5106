//! Helpers for this crate's unit tests: seeded generators, keys, a connected pair, sample
//! messages.

use tandem_crypto::rng::{ChaCha20Rng, SeedableRng};
use tandem_proto::sync::{SyncedChat, SyncedMessage};
use tandem_proto::{ChatId, MessageId};

use crate::desktop::{DesktopHandshake, DesktopSession};
use crate::keys::StaticSecret;
use crate::log::MemoryEventLog;
use crate::message::EventBody;
use crate::phone::{PhoneEndpoint, PhoneSession};

pub(crate) const NOW: i64 = 1_750_000_000_000;

pub(crate) fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

pub(crate) fn key(seed: u8) -> StaticSecret {
    StaticSecret::generate(&mut rng(seed))
}

pub(crate) fn message_id(n: u32) -> MessageId {
    MessageId::derived(NOW, b"bridge-tests", &n.to_le_bytes()).unwrap()
}

pub(crate) fn chat(n: u8) -> SyncedChat {
    SyncedChat {
        id: [n; 16],
        kind: "direct".into(),
        name: format!("chat {n}"),
        peer_account: Some(vec![n; 16]),
        created_at: NOW - 1000,
        muted: false,
        pinned: false,
        archived: false,
        unread: 0,
        members: vec![(Some(vec![n; 16]), "Ana".into())],
    }
}

pub(crate) fn synced(n: u32, chat: u8, text: &str) -> SyncedMessage {
    SyncedMessage {
        id: *message_id(n).as_bytes(),
        chat: [chat; 16],
        sender_account: Some(vec![chat; 16]),
        sender_device: Some(0),
        sender_name: "Ana".into(),
        from_me: false,
        ts: NOW + i64::from(n),
        kind: "text".into(),
        text: text.into(),
        media_name: None,
        reply_to: None,
        edited_at: None,
        deleted: false,
        status: 1,
    }
}

pub(crate) fn new_message(n: u32) -> EventBody {
    EventBody::Message {
        message: synced(n, 1, &format!("message {n}")),
        chat: (n == 1).then(|| chat(1)),
    }
}

pub(crate) fn deleted(n: u32) -> EventBody {
    EventBody::Deleted {
        chat: ChatId([1; 16]),
        message: message_id(n),
    }
}

/// Moves every queued frame of `from` into `to` via the closures.
pub(crate) fn phone_to_desktop(
    phone: &mut PhoneSession,
    desktop: &mut DesktopSession,
) -> Vec<crate::desktop::DesktopIncoming> {
    let mut out = Vec::new();
    while let Some(frame) = phone.poll_transmit() {
        if let Some(item) = desktop.receive(&frame).unwrap() {
            out.push(item);
        }
    }
    out
}

pub(crate) fn desktop_to_phone(
    desktop: &mut DesktopSession,
    phone: &mut PhoneSession,
    log: &mut MemoryEventLog,
) -> Vec<crate::phone::PhoneIncoming> {
    let mut out = Vec::new();
    while let Some(frame) = desktop.poll_transmit() {
        if let Some(item) = phone.receive(&frame, log).unwrap() {
            out.push(item);
        }
    }
    out
}

/// A phone with desktop key 2 authorised, and that desktop connected with `cursor`.
pub(crate) fn connected(
    log: &MemoryEventLog,
    cursor: u64,
) -> (PhoneEndpoint, PhoneSession, DesktopSession) {
    let mut endpoint = PhoneEndpoint::new(key(1));
    let desktop_key = key(2);
    endpoint.authorise(desktop_key.public_key()).unwrap();
    let (handshake, m1) = DesktopHandshake::start(
        &desktop_key,
        &endpoint.public_key(),
        cursor,
        None,
        NOW,
        &mut rng(3),
    )
    .unwrap();
    let mut accepted = endpoint.accept(&m1, log, NOW, &mut rng(4)).unwrap();
    let m2 = accepted.session.poll_transmit().unwrap();
    let (desktop, _) = handshake.finish(&m2).unwrap();
    (endpoint, accepted.session, desktop)
}

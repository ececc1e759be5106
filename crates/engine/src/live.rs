//! The live part of every device connection: the [`Messenger`] that the phone's serve loop and
//! the companion's sync loop both carry. It watches the device lists and presence of the
//! accounts this device talks to, publishes this device's presence (with a Last Will that says
//! "offline" when the connection dies), seals the fan-out queue and drains the outbox, and
//! turns stored changes into [`Event`]s.
//!
//! Outbox rows are published tagged with their row id and removed only when the broker has
//! acknowledged them: rows a crash left behind are published again by the next process
//! (receivers drop the repeat), and rows in flight on a live connection are left to `rumqttc`,
//! which sends them again after a reconnection.

use std::collections::{HashMap, HashSet, VecDeque};

use rumqttc::Publish;
use serde::{Deserialize, Serialize};
use tandem_crypto::DeviceId;
use tandem_proto::Envelope;
use tandem_store::{MessageId, MessageStatus, OutboxId};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::contacts::{Directory, account_from, known_accounts};
use crate::control::{
    ControlServer, Pending, Reply, Request, SessionHandle, SessionRequests, session_channel,
};
use crate::desktop::Until;
use crate::identity::Identity;
use crate::messaging::{Effect, display_name, seal_fanout};
use crate::mqtt::{Connection, Incoming, topics};
use crate::views::Event;
use crate::{Engine, Result, now_ms};

/// Outbox rows in flight at most (handed to the connection, not yet acknowledged): well
/// under rumqttc's request queue, refilled as acknowledgements come back.
const MAX_IN_FLIGHT: usize = 256;

/// What a device publishes, retained, at its presence topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Presence {
    /// Connected now.
    pub(crate) online: bool,
    /// When that became true (ms); for a Last Will, when the dead connection was opened.
    pub(crate) at: i64,
}

impl Presence {
    fn bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self).unwrap_or_default()
    }
}

/// The Last Will of a device connection opened now: "offline" on its presence topic.
pub(crate) fn last_will(device: &DeviceId) -> tandem_net::Will {
    tandem_net::Will::new(
        topics::presence(device),
        Presence {
            online: false,
            at: now_ms(),
        }
        .bytes(),
        true,
    )
}

/// The live-messaging state of one device connection.
#[derive(Debug)]
pub(crate) struct Messenger {
    pub(crate) dir: Directory,
    /// Outbox rows handed to the connection and not yet acknowledged.
    in_flight: HashMap<i64, MessageId>,
    /// Topics of other accounts this connection subscribed to.
    watched: HashSet<String>,
    /// Owner of each watched presence topic.
    presence_of: HashMap<String, DeviceId>,
    /// Work handed over by other processes (see `control.rs`).
    requests: Option<mpsc::Receiver<Pending>>,
    /// Replies to send once a message is acknowledged by the broker (`send --wait`).
    waiters: HashMap<MessageId, Vec<oneshot::Sender<Reply>>>,
    /// Kept inbox envelopes (see [`Messenger::keep`]) ready to handle: `(backlog row,
    /// payload)`.
    released: VecDeque<(i64, Vec<u8>)>,
    /// This device's inbox topic (where kept envelopes came from).
    inbox: String,
}

/// What woke a session loop.
#[derive(Debug)]
pub(crate) enum Wake {
    /// The connection.
    Mqtt(Incoming),
    /// A kept inbox envelope to handle now, as if it had just arrived; once handled, its
    /// backlog row is removed ([`Messenger::handled`]) instead of acknowledging it.
    Kept(i64, Publish),
    /// Another process handed over work.
    Request(Pending),
}

impl Messenger {
    /// The state for `id`'s connection, with every known account's list.
    pub(crate) fn new(
        engine: &Engine,
        id: &Identity,
        requests: Option<mpsc::Receiver<Pending>>,
    ) -> Result<Self> {
        let dir = Directory::load(engine.store(), id)?;
        let store = engine.store();
        // Envelopes kept while linking, and those whose sender's list came before a restart.
        let mut released: VecDeque<(i64, Vec<u8>)> = store.backlog(None)?.into();
        for account in store.backlog_accounts()? {
            if account_from(&account).is_some_and(|a| dir.get(&a).is_some()) {
                released.extend(store.backlog(Some(&account))?);
            }
        }
        Ok(Self {
            dir,
            in_flight: HashMap::new(),
            watched: HashSet::new(),
            presence_of: HashMap::new(),
            requests,
            waiters: HashMap::new(),
            released,
            inbox: topics::inbox(&id.device),
        })
    }

    /// Keeps an inbox envelope from an account whose device list should come but has not yet
    /// (a group member met a moment ago) until it does: stored, so the caller acknowledges it
    /// now (brokers want acknowledgements in order). Returns false for anything else.
    pub(crate) fn keep(&mut self, engine: &Engine, id: &Identity, payload: &[u8]) -> Result<bool> {
        let sender = match Envelope::decode(payload) {
            Ok(envelope) => envelope.header().sender.account,
            Err(_) => return Ok(false),
        };
        if sender == id.account
            || self.dir.get(&sender).is_some()
            || !known_accounts(engine.store())?.contains(&sender)
        {
            return Ok(false);
        }
        tracing::debug!(%sender, "keeping an envelope until its sender's device list arrives");
        engine
            .store()
            .write(|w| w.add_backlog(Some(sender.as_bytes().as_slice()), payload, now_ms()))?;
        Ok(true)
    }

    /// A kept envelope was handled.
    pub(crate) fn handled(engine: &Engine, row: i64) -> Result<()> {
        engine.store().write(|w| w.remove_backlog(row))?;
        Ok(())
    }

    /// A kept envelope ready to handle, else waits for the connection or handed-over work.
    pub(crate) async fn next(
        &mut self,
        conn: &mut Connection,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Wake> {
        if let Some((row, payload)) = self.released.pop_front() {
            let publish = Publish::new(self.inbox.clone(), rumqttc::QoS::AtLeastOnce, payload);
            return Ok(Wake::Kept(row, publish));
        }
        if let Some(requests) = &mut self.requests {
            tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => return Ok(Wake::Request(request)),
                    None => self.requests = None,
                },
                incoming = conn.next(deadline) => return Ok(Wake::Mqtt(incoming?)),
            }
        }
        Ok(Wake::Mqtt(conn.next(deadline).await?))
    }

    /// Does handed-over work and answers it (a `send --wait` once the broker has it).
    /// Returns true when the session must reread its identity (a device was linked or
    /// unlinked by another process).
    pub(crate) fn handle(
        &mut self,
        engine: &Engine,
        id: &Identity,
        conn: &mut Connection,
        pending: Pending,
        on: &mut dyn FnMut(&Event),
    ) -> Result<bool> {
        let Pending { request, reply } = pending;
        tracing::debug!(device = %id.device, ?request, "handed-over work");
        let mut wait_for = None;
        let mut reload = false;
        let result: Result<serde_json::Value> = (|| {
            let value = match &request {
                Request::Send {
                    chat,
                    text,
                    reply,
                    wait,
                    id: chosen,
                } => {
                    let (view, new) =
                        engine.send_as(chat, text, reply.as_deref(), chosen.as_deref())?;
                    if *wait {
                        wait_for = Uuid::parse_str(&view.id).ok().map(MessageId);
                    }
                    if new {
                        on(&Event::Message {
                            message: view.clone(),
                        });
                    }
                    to_value(&view)
                }
                Request::React { message, emoji } => to_value(&engine.react(message, emoji)?),
                Request::Edit { message, text } => to_value(&engine.edit(message, text)?),
                Request::Delete { message } => to_value(&engine.delete(message)?),
                Request::Read { chat } => to_value(&engine.mark_read(chat)?),
                Request::ContactAdd { link, name } => {
                    let view = engine.contact_add(link, name.as_deref())?;
                    self.watch(engine, id, conn)?;
                    to_value(&view)
                }
                Request::GroupCreate { name, members } => {
                    let view = engine.group_create(name, members)?;
                    self.watch(engine, id, conn)?;
                    to_value(&view)
                }
                Request::GroupAdd { chat, member } => {
                    let view = engine.group_add(chat, member)?;
                    self.watch(engine, id, conn)?;
                    to_value(&view)
                }
                Request::GroupRemove { chat, member } => {
                    to_value(&engine.group_remove(chat, member)?)
                }
                Request::Publish {
                    items,
                    reload: again,
                } => {
                    for item in items {
                        conn.publish(&item.topic, item.payload.clone(), item.retain)?;
                    }
                    reload = *again;
                    Ok(serde_json::json!({ "published": items.len() }))
                }
                Request::PhoneStatus => Ok(serde_json::json!({ "phone_reachable": null })),
                Request::Connection => Ok(serde_json::json!({ "broker": conn.connected_url() })),
                Request::Typing { chat, on } => {
                    for (to, envelope) in engine.typing_envelopes(id, &self.dir, chat, *on)? {
                        conn.publish_once(&topics::inbox(&to), envelope, false)?;
                    }
                    Ok(serde_json::json!({ "chat": chat, "on": on }))
                }
            }?;
            self.flush(engine, id, conn)?;
            Ok(value)
        })();
        match (result, wait_for) {
            (Err(e), _) => {
                let _ = reply.send(Reply::error(&e));
            }
            (Ok(value), None) => {
                let _ = reply.send(Reply::Ok(value));
            }
            (Ok(value), Some(message)) => {
                let sent = engine
                    .store()
                    .message(message)?
                    .is_some_and(|m| m.status >= MessageStatus::Sent);
                if sent {
                    let _ = reply.send(Reply::Ok(value));
                } else {
                    self.waiters.entry(message).or_default().push(reply);
                }
            }
        }
        Ok(reload)
    }

    /// Subscribes to the device lists and presence of every account this device talks to (new
    /// ones only; call again after a contact is added or a list changes).
    pub(crate) fn watch(
        &mut self,
        engine: &Engine,
        id: &Identity,
        conn: &mut Connection,
    ) -> Result<()> {
        for account in known_accounts(engine.store())? {
            if account == id.account {
                continue;
            }
            let topic = topics::devices(&account);
            if self.watched.insert(topic.clone()) {
                tracing::debug!(%account, "watching a device list");
                conn.subscribe(&topic)?;
            }
            if let Some(list) = self.dir.get(&account) {
                for device in list.device_ids() {
                    let topic = topics::presence(&device);
                    if self.watched.insert(topic.clone()) {
                        self.presence_of.insert(topic.clone(), device);
                        conn.subscribe(&topic)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// On every (re)connection: this device is online; send what waits.
    pub(crate) fn on_connected(
        &mut self,
        engine: &Engine,
        id: &Identity,
        conn: &mut Connection,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        if conn.take_lost_in_flight() {
            // The broker kept no session: what was in flight is published again (receivers
            // drop what they already have).
            self.in_flight.clear();
        }
        conn.publish(
            &topics::presence(&id.device),
            Presence {
                online: true,
                at: now_ms(),
            }
            .bytes(),
            true,
        )?;
        on(&Event::Online {
            device: id.device.to_string(),
            broker: conn.url(),
        });
        self.flush(engine, id, conn)
    }

    /// Seals the fan-out queue and hands every outbox row not yet in flight to the connection.
    pub(crate) fn flush(
        &mut self,
        engine: &Engine,
        id: &Identity,
        conn: &mut Connection,
    ) -> Result<()> {
        let store = engine.store();
        if store.fanout_len()? > 0 {
            loop {
                let sealed = store.write_durable(|w| seal_fanout(w, id, &self.dir))?;
                tracing::debug!(device = %id.device, sealed, "sealed fan-out rows");
                if sealed == 0 {
                    break;
                }
            }
        }
        self.publish_outbox(engine, id, conn)
    }

    /// Hands outbox rows not yet in flight to the connection, up to [`MAX_IN_FLIGHT`].
    fn publish_outbox(
        &mut self,
        engine: &Engine,
        id: &Identity,
        conn: &mut Connection,
    ) -> Result<()> {
        let store = engine.store();
        let room = MAX_IN_FLIGHT.saturating_sub(self.in_flight.len());
        if room == 0 {
            return Ok(());
        }
        let rows = store.outbox_pending(i64::MAX, room + self.in_flight.len())?;
        let mut handed = 0;
        for row in rows {
            if handed == room {
                break;
            }
            if self.in_flight.contains_key(&row.id.0) {
                continue;
            }
            let to = match account_from(&row.recipient_account) {
                Some(account) => DeviceId::new(account, row.recipient_device),
                None => {
                    store.write(|w| w.outbox_done(row.id))?;
                    continue;
                }
            };
            conn.publish_tagged(&topics::inbox(&to), row.payload, row.id.0)?;
            self.in_flight.insert(row.id.0, row.message_id);
            handed += 1;
        }
        tracing::debug!(
            device = %id.device,
            handed,
            in_flight = self.in_flight.len(),
            "outbox rows handed to the broker"
        );
        Ok(())
    }

    /// The broker acknowledged outbox row `tag` (and maybe more right behind it): they are
    /// done, in one transaction; a message none of whose envelopes wait any more is "sent";
    /// the outbox refills what is in flight.
    pub(crate) fn on_puback(
        &mut self,
        engine: &Engine,
        id: &Identity,
        conn: &mut Connection,
        tag: Option<i64>,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        let mut tags: Vec<i64> = tag.into_iter().collect();
        tags.extend(conn.ready_pubacks());
        let mut messages = Vec::new();
        for tag in &tags {
            if let Some(message) = self.in_flight.remove(tag)
                && !messages.contains(&message)
            {
                messages.push(message);
            }
        }
        if messages.is_empty() {
            return Ok(());
        }
        let settled = engine
            .store()
            .write(|w| -> Result<Vec<(MessageId, bool)>> {
                for tag in &tags {
                    w.outbox_done(OutboxId(*tag))?;
                }
                let mut settled = Vec::new();
                for message in &messages {
                    if w.unsent_of(*message)? == 0 {
                        settled.push((*message, w.set_status(*message, MessageStatus::Sent)?));
                    }
                }
                Ok(settled)
            })?;
        tracing::debug!(
            acknowledged = tags.len(),
            settled = settled.len(),
            "the broker acknowledged outbox rows"
        );
        for (message, sent) in settled {
            if sent {
                engine.emit(
                    vec![Effect::Status {
                        id: message,
                        status: MessageStatus::Sent,
                    }],
                    on,
                );
            }
            // Everything left: a `send --wait` is answered (a receipt may have moved the
            // status past "sent" before the last acknowledgement).
            if let Some(waiters) = self.waiters.remove(&message) {
                let view = engine.message_view(message).and_then(|v| to_value(&v));
                for waiter in waiters {
                    let reply = match &view {
                        Ok(value) => Reply::Ok(value.clone()),
                        Err(e) => Reply::error(e),
                    };
                    let _ = waiter.send(reply);
                }
            }
        }
        if self.in_flight.len() <= MAX_IN_FLIGHT / 2 {
            self.publish_outbox(engine, id, conn)?;
        }
        Ok(())
    }

    /// Whether every outbox row and fan-out row has left (the broker acknowledged all).
    pub(crate) fn drained(&self, engine: &Engine) -> Result<bool> {
        let store = engine.store();
        Ok(self.in_flight.is_empty() && store.outbox_len()? == 0 && store.fanout_len()? == 0)
    }

    /// A publish on a topic of another account (a device list or a presence). Returns false
    /// for topics that are not this messenger's.
    pub(crate) fn on_topic(
        &mut self,
        engine: &Engine,
        id: &Identity,
        conn: &mut Connection,
        publish: &Publish,
        on: &mut dyn FnMut(&Event),
    ) -> Result<bool> {
        if !self.watched.contains(publish.topic.as_str()) {
            tracing::debug!(topic = %publish.topic, "a publish on a topic not watched");
            return Ok(false);
        }
        if let Some(device) = self.presence_of.get(publish.topic.as_str()).copied() {
            if let Ok(presence) = serde_json::from_slice::<Presence>(&publish.payload) {
                on(&Event::Presence {
                    device: device.to_string(),
                    name: display_name(engine.store(), id, &device.account)?,
                    online: presence.online,
                    at: presence.at,
                });
            }
            return Ok(true);
        }
        let Some(account) = known_accounts(engine.store())?
            .into_iter()
            .find(|a| topics::devices(a) == publish.topic)
        else {
            return Ok(true);
        };
        if publish.payload.is_empty() {
            return Ok(true);
        }
        let dir = &mut self.dir;
        let accepted = engine
            .store()
            .write_durable(|w| dir.accept(w, &account, &publish.payload));
        match accepted {
            Ok(true) => {
                tracing::debug!(device = %id.device, %account, "took a device list");
                self.released.extend(
                    engine
                        .store()
                        .backlog(Some(account.as_bytes().as_slice()))?,
                );
                if let Some(list) = self.dir.get(&account) {
                    on(&Event::Devices {
                        account: account.to_string(),
                        version: list.version(),
                        devices: list.certificates().len(),
                    });
                }
                self.watch(engine, id, conn)?;
                self.flush(engine, id, conn)?;
            }
            Ok(false) => tracing::debug!(%account, "a device list already held"),
            Err(e) => tracing::warn!(%account, error = %e, "ignoring a device list"),
        }
        Ok(true)
    }

    /// Says "offline" (retained) before a clean disconnect; the Last Will covers the rest.
    pub(crate) fn goodbye(id: &Identity, conn: &mut Connection) {
        let offline = Presence {
            online: false,
            at: now_ms(),
        };
        if let Err(e) = conn.publish(&topics::presence(&id.device), offline.bytes(), true) {
            tracing::debug!(error = %e, "could not say offline");
        }
    }
}

impl Engine {
    /// Turns committed effects into events.
    pub(crate) fn emit(&self, effects: Vec<Effect>, on: &mut dyn FnMut(&Event)) {
        for effect in effects {
            let event = match effect {
                Effect::Message { id, new } => match self.message_view(id) {
                    Ok(message) if new => Event::Message { message },
                    Ok(message) => Event::Update { message },
                    Err(e) => {
                        tracing::debug!(error = %e, "a changed message is gone");
                        continue;
                    }
                },
                Effect::Status { id, status } => {
                    let chat = self
                        .store()
                        .message(id)
                        .ok()
                        .flatten()
                        .map(|m| m.chat.0.hyphenated().to_string())
                        .unwrap_or_default();
                    Event::Receipt {
                        id: id.0.hyphenated().to_string(),
                        chat,
                        status: status.as_str(),
                    }
                }
                Effect::Typing {
                    chat,
                    from,
                    account,
                    on,
                } => Event::Typing {
                    chat: chat.0.hyphenated().to_string(),
                    from,
                    account: account.to_string(),
                    on,
                },
                Effect::Chat { chat } => Event::ChatChanged {
                    chat: chat.0.hyphenated().to_string(),
                },
                Effect::Contact { account, name } => Event::Contact {
                    account: account.to_string(),
                    name,
                },
                Effect::Group {
                    chat,
                    name,
                    members,
                    member,
                } => Event::Group {
                    chat: chat.0.hyphenated().to_string(),
                    name,
                    members,
                    member,
                },
            };
            on(&event);
        }
    }
}

impl Engine {
    /// Stays connected as this device until the caller drops the future (a broker that is down
    /// is retried with backoff, reported as [`Event::Offline`]): receives messages,
    /// receipts, typing and presence, sends the outbox, and (on the phone) serves the history
    /// syncs and pages of linked devices, (on a companion) receives its history sync.
    ///
    /// # Errors
    /// [`crate::Error::NotLinked`]; [`crate::Error::Unlinked`] when the phone removed this
    /// device; broker and store errors.
    pub async fn run(&self, broker: Option<&str>, on: &mut dyn FnMut(&Event)) -> Result<()> {
        let (handle, requests) = session_channel();
        self.run_shared(broker, &handle, requests, on).await
    }

    /// [`Engine::run`] for a front end in the same process (the desktop app): its work comes
    /// through `handle` (whose `requests` this takes), and the control socket is open too, so
    /// the command-line programs hand their work to this session instead of connecting as the
    /// same device.
    ///
    /// # Errors
    /// As [`Engine::run`]; [`crate::Error::BadInput`] when another process already runs this
    /// home's session.
    pub async fn run_shared(
        &self,
        broker: Option<&str>,
        handle: &SessionHandle,
        requests: SessionRequests,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        let _server = ControlServer::start(self.home(), handle.tx.clone()).await?;
        self.run_with(broker, requests, on).await
    }

    /// [`Engine::run`] without the control socket: work comes from the [`crate::SessionHandle`] of
    /// `requests` (for a front end in the same process, such as the desktop app).
    ///
    /// # Errors
    /// As [`Engine::run`].
    pub async fn run_with(
        &self,
        broker: Option<&str>,
        requests: SessionRequests,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        if self.is_bridge()? {
            return self.bridge_run(requests.rx, on).await;
        }
        if self.is_primary()? {
            self.serve_with(broker, crate::ServeUntil::Stopped, Some(requests.rx), on)
                .await
        } else {
            self.companion_session(Until::Forever, Some(requests.rx), on)
                .await
                .map(|_| ())
        }
    }

    /// Connects until everything queued to send has been acknowledged by the broker, or
    /// `timeout` passes. Returns whether everything was sent.
    ///
    /// # Errors
    /// As [`Engine::run`].
    pub async fn send_queued(
        &self,
        timeout: std::time::Duration,
        on: &mut dyn FnMut(&Event),
    ) -> Result<bool> {
        if crate::control::session_running(self.home()).await {
            return Err(crate::Error::SessionRunning { action: "send" });
        }
        if self.is_bridge()? {
            return self.bridge_send_queued(timeout, on).await;
        }
        let session = async {
            if self.is_primary()? {
                self.serve(None, crate::ServeUntil::Drained, on).await
            } else {
                self.companion_session(Until::Drained, None, on)
                    .await
                    .map(|_| ())
            }
        };
        match tokio::time::timeout(timeout, session).await {
            Ok(done) => done.map(|()| true),
            Err(_) => Ok(false),
        }
    }

    /// What waits to be sent: `(fan-out rows not yet sealed, sealed envelopes not yet
    /// acknowledged by the broker)`.
    ///
    /// # Errors
    /// On a store failure.
    pub fn queued(&self) -> Result<(u64, u64)> {
        let store = self.store();
        Ok((store.fanout_len()?, store.outbox_len()?))
    }

    /// Whether this device is its account's primary.
    pub(crate) fn is_primary(&self) -> Result<bool> {
        Ok(self.identity()?.account_key.is_some())
    }
}

fn to_value<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| crate::Error::BadInput(format!("cannot encode a reply: {e}")))
}

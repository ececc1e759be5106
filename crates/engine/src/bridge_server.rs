//! The phone's bridge server (bridge mode, DESIGN 8; protocol in `docs/bridge.md`): a
//! WebSocket listener beside the phone's own session. Bridge-mode desktops hold no MQTT session:
//! they connect here, and the phone relays for them over its session.
//!
//! What it owns:
//! - the listener and one driver loop per WebSocket connection, each carrying one
//!   [`tandem_bridge::PhoneSession`] (the sans-I/O protocol) and nothing else;
//! - the event log in the phone's store ([`StoreLog`]): the hub moves what the store noted for
//!   bridge desktops in the transaction of each change (new and changed messages, reactions,
//!   chats read; [`log_changes`]) into the log, turns device-list changes into events (typing
//!   and presence go to the connections open at that moment), and every connection sends what
//!   the log holds after the last event it sent, so replayed and live events are one stream;
//! - requests: sends, reactions, edits, deletions and read marks are handed to the phone's
//!   running session (the same path as another process's `tandem-phone send`), pages and
//!   searches are answered from the store;
//! - history syncs to bridge desktops (plans kept in memory while the phone runs: a desktop that
//!   reconnects resumes; after a phone restart it is told `Unknown` and starts again).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tandem_bridge::{
    CloseReason, DeviceChangeKind, EventBody, EventLog, Failure, FailureKind, LoggedEvent, Page,
    PhoneEndpoint, PhoneIncoming, PhoneSession, PublicKey, Reply as BridgeReply, RequestBody,
};
use tandem_crypto::OsRng;
use tandem_proto::sync::{AckOutcome, CHAIN_START, SenderWindow, SyncId, SyncMessage};
use tandem_proto::{ChatId as WireChat, MessageId as WireId, ReceiptKind};
use tandem_store::{BridgeChange, MessageId, MessageStatus, Store};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use uuid::Uuid;

use crate::control::{Reply, Request, SessionHandle};
use crate::history::{self, Plan, PlanBound, synced_chat, synced_message};
use crate::views::Event;
use crate::{Engine, Error, Result, now_ms};

/// The largest WebSocket message taken from the socket: above the protocol's 65 535-byte
/// frames (so an oversized frame reaches the protocol, which refuses it with its reason), far
/// below anything that could exhaust memory.
const MAX_WS_MESSAGE: usize = 128 * 1024;
/// How long a new connection may take to send handshake message 1.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often each connection checks its desktop is still authorised and pings it.
const TICK: Duration = Duration::from_secs(1);
/// Pings every this many ticks; a desktop silent for [`SILENCE_TICKS`] is gone.
const PING_TICKS: u32 = 10;
/// Ticks of silence (no frame at all) after which a connection is dropped.
const SILENCE_TICKS: u32 = 35;
/// Events kept in the log at most (older ones are dropped; a desktop that far behind resyncs).
const MAX_KEPT_EVENTS: u64 = 100_000;
/// Unlogged events (typing, presence) buffered per connection.
const UNLOGGED_BUFFER: usize = 256;
/// Changes the store noted for bridge desktops, logged per transaction at most.
const CHANGES_BATCH: usize = 500;
/// How often the hub looks for changes noted by another process (a one-shot `tandem-phone
/// send`, an import) when the session reports none.
const CHANGES_EVERY: Duration = Duration::from_secs(1);

/// The phone's event log, in its store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreLog<'a> {
    store: &'a Store,
}

impl<'a> StoreLog<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }
}

fn log_error(e: impl std::fmt::Display) -> tandem_bridge::Error {
    tandem_bridge::Error::EventLog {
        reason: e.to_string(),
    }
}

/// A logged event as the log stores it.
fn encode_event(body: &EventBody) -> tandem_bridge::Result<Vec<u8>> {
    postcard::to_allocvec(body).map_err(log_error)
}

impl EventLog for StoreLog<'_> {
    fn append_logged(&mut self, body: EventBody) -> tandem_bridge::Result<u64> {
        let bytes = encode_event(&body)?;
        self.store
            .write_durable(|w| w.append_bridge_event(&bytes, now_ms()))
            .map_err(log_error)
    }

    fn head(&self) -> tandem_bridge::Result<u64> {
        self.store.bridge_head().map_err(log_error)
    }

    fn first_kept(&self) -> tandem_bridge::Result<u64> {
        match self.store.bridge_first_kept().map_err(log_error)? {
            Some(first) => Ok(first),
            None => Ok(self.head()?.saturating_add(1)),
        }
    }

    fn read_after(&self, after: u64, max: usize) -> tandem_bridge::Result<Vec<LoggedEvent>> {
        self.store
            .bridge_events_after(after, max)
            .map_err(log_error)?
            .into_iter()
            .map(|(seq, bytes)| {
                let body = postcard::from_bytes(&bytes).map_err(|e| {
                    log_error(format!("event {seq} in the log does not decode: {e}"))
                })?;
                Ok(LoggedEvent { seq, body })
            })
            .collect()
    }

    fn acked(&self, desktop: &PublicKey) -> tandem_bridge::Result<u64> {
        self.store
            .bridge_acked(desktop.as_bytes())
            .map_err(log_error)
    }

    fn record_ack(&mut self, desktop: &PublicKey, up_to: u64) -> tandem_bridge::Result<()> {
        self.store
            .write(|w| w.record_bridge_ack(desktop.as_bytes(), up_to))
            .map_err(log_error)
    }

    fn drop_through(&mut self, through: u64) -> tandem_bridge::Result<u64> {
        self.store
            .write(|w| w.drop_bridge_events_through(through))
            .map_err(log_error)
    }
}

/// One history sync to a bridge desktop.
struct BridgeSync {
    owner: PublicKey,
    plan: Plan,
    window: SenderWindow,
    /// Digests of the chunks built (index → digest).
    built: HashMap<u32, [u8; 32]>,
}

/// What every connection shares.
struct Shared {
    /// The phone's engine (its own handle on the store).
    engine: Engine,
    endpoint: Mutex<PhoneEndpoint>,
    /// The log's head after each append.
    head: watch::Sender<u64>,
    unlogged: broadcast::Sender<EventBody>,
    session: SessionHandle,
    /// The confirmed connection of each desktop: (connection number, how to replace it).
    live: Mutex<HashMap<PublicKey, (u64, Arc<Notify>)>>,
    /// History syncs not finished, by id.
    syncs: Mutex<HashMap<SyncId, BridgeSync>>,
    shutdown: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bound bridge listener, before the phone's session starts.
#[derive(Debug)]
pub struct BridgeListener {
    listener: TcpListener,
}

impl BridgeListener {
    /// Binds `address` (port 0 picks a free port).
    ///
    /// # Errors
    /// [`Error::BadInput`] when the address cannot be bound.
    pub async fn bind(address: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(address).await.map_err(|e| {
            Error::BadInput(format!(
                "cannot listen for bridge desktops on {address}: {e}"
            ))
        })?;
        Ok(Self { listener })
    }

    /// The address bound.
    ///
    /// # Errors
    /// [`Error::BadInput`] when the socket has no address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::BadInput(format!("the bridge listener has no address: {e}")))
    }
}

/// Says "shut down" to every connection when dropped.
struct ShutdownOnDrop(watch::Sender<bool>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

impl Engine {
    /// [`Engine::run`] on the phone with a bridge server on `listener`: bridge-mode desktops
    /// linked to this phone connect there; the phone relays their sends over its session and
    /// sends them everything it sees. Stops (closing every bridge connection with
    /// `ShuttingDown`) when the caller drops the future.
    ///
    /// # Errors
    /// As [`Engine::run`]; [`Error::BadInput`] when this device is not a primary or has no
    /// bridge key (`--bridge-url` makes one).
    pub async fn run_bridged(
        &self,
        broker: Option<&str>,
        listener: BridgeListener,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        if !self.is_primary()? {
            return Err(Error::BadInput(
                "only the phone serves bridge desktops".into(),
            ));
        }
        let secret = self.bridge_secret()?.ok_or_else(|| {
            Error::BadInput(
                "this phone has no bridge key yet: pass --bridge-url ws://HOST:PORT once".into(),
            )
        })?;
        let (handle, requests) = crate::control::session_channel();
        let _server = crate::control::ControlServer::start(self.home(), handle.tx.clone()).await?;
        let address = listener.local_addr()?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let shutdown_guard = ShutdownOnDrop(shutdown_tx);
        let engine = Engine::open_with(self.home(), self.keychain)?;
        let head = engine.store().bridge_head()?;
        let shared = Arc::new(Shared {
            engine,
            endpoint: Mutex::new(PhoneEndpoint::new(secret)),
            head: watch::channel(head).0,
            unlogged: broadcast::channel(UNLOGGED_BUFFER).0,
            session: handle,
            live: Mutex::new(HashMap::new()),
            syncs: Mutex::new(HashMap::new()),
            shutdown,
        });
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let hub = tokio::spawn(hub(Arc::clone(&shared), listener.listener, events_rx));
        on(&Event::BridgeListening {
            address: address.to_string(),
        });
        let mut forward = |event: &Event| {
            let _ = events_tx.send(event.clone());
            on(event);
        };
        let result = self.run_with(broker, requests, &mut forward).await;
        drop(shutdown_guard);
        // Give the connections a moment to say why they close.
        tokio::time::sleep(Duration::from_millis(50)).await;
        hub.abort();
        result
    }
}

/// Accepts connections and turns the session's events into the log.
async fn hub(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut events: mpsc::UnboundedReceiver<Event>,
) {
    let mut next_connection = 0u64;
    let mut appended = 0u64;
    let mut devices = match OwnDevices::load(&shared.engine) {
        Ok(devices) => Some(devices),
        Err(e) => {
            tracing::warn!(error = %e, "bridge: the account's devices could not be read");
            None
        }
    };
    let own = match shared.engine.primary() {
        Ok(id) => Some(id.account),
        Err(e) => {
            tracing::warn!(error = %e, "bridge: the phone's account could not be read; changes are not logged");
            None
        }
    };
    // What was committed and not yet logged (the phone stopped, crashed, or ran without its
    // bridge) goes out first; then every change as the session reports it, or within
    // CHANGES_EVERY when another process made it.
    let mut changes_tick = tokio::time::interval(CHANGES_EVERY);
    changes_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = changes_tick.tick() => {
                appended += log_noted(&shared, own.as_ref());
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    next_connection += 1;
                    let shared = Arc::clone(&shared);
                    let number = next_connection;
                    tokio::spawn(async move {
                        if let Err(e) = connection(&shared, stream, peer, number).await {
                            tracing::info!(%peer, error = %e, "bridge: connection ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bridge: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            event = events.recv() => {
                let Some(event) = event else { return };
                let changes = match (&event, &mut devices) {
                    (Event::Devices { .. }, Some(devices)) => devices.changes(&shared.engine),
                    _ => Ok(Vec::new()),
                };
                let bodies = changes.map(|mut changes| {
                    changes.extend(unlogged_events(&event));
                    changes
                });
                match bodies {
                    Ok(bodies) => {
                        for body in bodies {
                            publish(&shared, body);
                            appended += 1;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "bridge: an event could not be turned into bridge events"),
                }
                if matches!(event, Event::Message { .. } | Event::Update { .. } | Event::Receipt { .. }) {
                    appended += log_noted(&shared, own.as_ref());
                }
                if appended >= 1000 {
                    appended = 0;
                    let pruned = lock(&shared.endpoint)
                        .prune(&mut StoreLog::new(shared.engine.store()), MAX_KEPT_EVENTS);
                    if let Err(e) = pruned {
                        tracing::warn!(error = %e, "bridge: pruning the event log failed");
                    }
                }
            }
        }
    }
}

/// The account's devices as the hub last saw them, to tell bridge desktops which were linked
/// or unlinked when the list changes.
struct OwnDevices {
    account: tandem_crypto::AccountId,
    known: HashMap<u32, (String, String)>,
}

impl OwnDevices {
    fn load(engine: &Engine) -> Result<Self> {
        let account = engine.primary()?.account;
        let mut devices = Self {
            account,
            known: HashMap::new(),
        };
        devices.known = devices.read(engine)?;
        Ok(devices)
    }

    fn read(&self, engine: &Engine) -> Result<HashMap<u32, (String, String)>> {
        Ok(engine
            .store()
            .devices(self.account.as_bytes())?
            .into_iter()
            .map(|d| (d.index, (d.name, d.platform)))
            .collect())
    }

    /// What changed since the last look, as `DeviceChange` events.
    fn changes(&mut self, engine: &Engine) -> Result<Vec<EventBody>> {
        let now = self.read(engine)?;
        let at = now_ms();
        let mut out = Vec::new();
        let mut push = |index: u32, (name, platform): &(String, String), change| {
            let mut name = name.clone();
            let mut platform = platform.clone();
            truncate(&mut name, tandem_proto::body::MAX_NAME_LEN);
            truncate(&mut platform, tandem_bridge::message::MAX_PLATFORM_LEN);
            out.push(EventBody::DeviceChange {
                device: tandem_crypto::DeviceId::new(self.account, index),
                name,
                platform,
                change,
                at,
            });
        };
        for (index, device) in &now {
            if !self.known.contains_key(index) {
                push(*index, device, DeviceChangeKind::Linked);
            }
        }
        for (index, device) in &self.known {
            if !now.contains_key(index) {
                push(*index, device, DeviceChangeKind::Unlinked);
            }
        }
        self.known = now;
        Ok(out)
    }
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// Logs a logged event (and wakes the connections), or sends an unlogged one to the
/// connections open now.
fn publish(shared: &Shared, body: EventBody) {
    if body.is_logged() {
        match StoreLog::new(shared.engine.store()).publish(body) {
            Ok(seq) => {
                shared.head.send_replace(seq);
            }
            Err(e) => tracing::warn!(error = %e, "bridge: logging an event failed"),
        }
    } else {
        let _ = shared.unlogged.send(body);
    }
}

fn wire_chat(id: &str) -> Option<WireChat> {
    Uuid::parse_str(id).ok().map(|u| WireChat(*u.as_bytes()))
}

/// [`log_changes`], with a failure logged (the notes stay for the next try).
fn log_noted(shared: &Shared, own: Option<&tandem_crypto::AccountId>) -> u64 {
    let Some(own) = own else { return 0 };
    log_changes(shared, own).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "bridge: logging the noted changes failed");
        0
    })
}

/// Logs what the store noted for bridge desktops (written in the same transaction as each
/// change: new and changed messages, reactions, chats read here), each as it is now, and drops
/// the notes in the transaction that logs them: whatever was committed reaches the log, even
/// if the phone stopped in between. Returns how many events were logged.
fn log_changes(shared: &Shared, own: &tandem_crypto::AccountId) -> Result<u64> {
    let store = shared.engine.store();
    let mut logged = 0;
    loop {
        let noted = store.bridge_changes(CHANGES_BATCH)?;
        let Some(&(last, _)) = noted.last() else {
            return Ok(logged);
        };
        let new: HashSet<MessageId> = noted
            .iter()
            .filter_map(|(_, change)| match change {
                BridgeChange::NewMessage(id) => Some(*id),
                _ => None,
            })
            .collect();
        // A message noted twice (new, then changed) is logged once, as it is now.
        let mut seen = HashSet::new();
        let mut encoded = Vec::new();
        for (_, change) in &noted {
            let key = match change {
                BridgeChange::NewMessage(id) => BridgeChange::Message(*id),
                other => other.clone(),
            };
            if seen.insert(key)
                && let Some(body) = change_event(store, own, change, &new)?
            {
                encoded.push(encode_event(&body).map_err(bridge_error)?);
            }
        }
        let at = now_ms();
        let head = store.write_durable(|w| -> Result<Option<u64>> {
            let mut head = None;
            for bytes in &encoded {
                head = Some(w.append_bridge_event(bytes, at)?);
            }
            w.drop_bridge_changes_through(last)?;
            Ok(head)
        })?;
        if let Some(head) = head {
            shared.head.send_replace(head);
        }
        logged += encoded.len() as u64;
        if noted.len() < CHANGES_BATCH {
            return Ok(logged);
        }
    }
}

/// The logged event for one noted change, read from the store as it is now (`None` when
/// there is nothing left to say: the message is gone, an id is not one the wire carries).
fn change_event(
    store: &Store,
    own: &tandem_crypto::AccountId,
    change: &BridgeChange,
    new: &HashSet<MessageId>,
) -> Result<Option<EventBody>> {
    let wire = |id: MessageId| WireId::from_bytes(*id.as_bytes()).ok();
    Ok(match change {
        BridgeChange::NewMessage(id) | BridgeChange::Message(id) => {
            let Some(message) = store.message(*id)? else {
                return Ok(None);
            };
            let chat = match new.contains(id) {
                true => store
                    .chat(message.chat)?
                    .map(|summary| -> Result<_> {
                        Ok(synced_chat(&summary, store.members(summary.id)?))
                    })
                    .transpose()?,
                false => None,
            };
            Some(EventBody::Message {
                message: synced_message(&message),
                chat,
            })
        }
        BridgeChange::Status(id) => {
            let Some(message) = store.message(*id)? else {
                return Ok(None);
            };
            let kind = match message.status {
                MessageStatus::Delivered => Some(ReceiptKind::Delivered),
                MessageStatus::Read => Some(ReceiptKind::Read),
                _ => None,
            };
            match (kind, wire(*id)) {
                (Some(kind), Some(wire_id)) => Some(EventBody::Receipt {
                    chat: WireChat(*message.chat.as_bytes()),
                    message: wire_id,
                    kind,
                    by: None,
                }),
                // "sent" has no receipt: the message as it is now carries it.
                _ => Some(EventBody::Message {
                    message: synced_message(&message),
                    chat: None,
                }),
            }
        }
        BridgeChange::Reaction { message, account } => {
            let (Some(stored), Some(emoji), Some(id)) = (
                store.message(*message)?,
                store.reaction(*message, account)?,
                wire(*message),
            ) else {
                return Ok(None);
            };
            let Ok(by) =
                <[u8; 16]>::try_from(account.as_slice()).map(tandem_crypto::AccountId::from_bytes)
            else {
                return Ok(None);
            };
            if emoji.len() > tandem_proto::body::MAX_EMOJI_LEN {
                return Ok(None);
            }
            Some(EventBody::Reaction {
                chat: WireChat(*stored.chat.as_bytes()),
                message: id,
                by: (by != *own).then_some(by),
                emoji,
            })
        }
        BridgeChange::ChatRead { chat, up_to } => wire(*up_to).map(|up_to| EventBody::ChatRead {
            chat: WireChat(*chat.as_bytes()),
            up_to,
        }),
    })
}

/// The unlogged bridge events for one event of the phone's session: typing and presence go to
/// the connections open now (messages and their changes reach the log through the store's
/// notes, see [`log_changes`]).
fn unlogged_events(event: &Event) -> Vec<EventBody> {
    match event {
        Event::Typing {
            chat, account, on, ..
        } => match (wire_chat(chat), account.parse::<tandem_crypto::AccountId>()) {
            (Some(chat), Ok(who)) => vec![EventBody::Typing { chat, who, on: *on }],
            _ => Vec::new(),
        },
        Event::Presence {
            device, online, at, ..
        } => match device.parse::<tandem_crypto::DeviceId>() {
            Ok(device) => vec![EventBody::Presence {
                account: device.account,
                online: *online,
                last_seen: Some(*at),
            }],
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The WebSocket of one desktop.
type Socket = WebSocketStream<TcpStream>;

/// The WebSocket settings of both ends of the bridge: messages and frames above
/// [`MAX_WS_MESSAGE`] are refused by the socket before they are buffered.
pub(crate) fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
}

/// One desktop's connection, from the WebSocket upgrade to its close.
async fn connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    number: u64,
) -> Result<()> {
    // Small frames go at once (see `websocket_config`).
    let _ = stream.set_nodelay(true);
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(websocket_config()))
        .await
        .map_err(|e| Error::BadInput(format!("bridge: not a WebSocket from {peer}: {e}")))?;
    let message1 = match tokio::time::timeout(HANDSHAKE_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(WsMessage::Binary(bytes)))) => bytes,
        Ok(Some(Ok(other))) => {
            tracing::warn!(%peer, kind = "malformed", "bridge: handshake refused: the first message was not binary ({})", frame_kind(&other));
            refuse(&mut ws, "not a bridge handshake").await;
            return Ok(());
        }
        Ok(Some(Err(e))) => {
            tracing::warn!(%peer, error = %e, "bridge: handshake refused: a bad WebSocket message");
            refuse(&mut ws, "bad WebSocket message").await;
            return Ok(());
        }
        Ok(None) => return Ok(()),
        Err(_) => {
            tracing::warn!(%peer, "bridge: handshake refused: nothing sent in time");
            refuse(&mut ws, "handshake timeout").await;
            return Ok(());
        }
    };
    let store = shared.engine.store();
    let accepted = {
        let mut endpoint = lock(&shared.endpoint);
        refresh_authorised(store, &mut endpoint)?;
        let mut rng = OsRng::new().map_err(|e| Error::Random(e.to_string()))?;
        endpoint.accept(&message1, &StoreLog::new(store), now_ms(), &mut rng)
    };
    let accepted = match accepted {
        Ok(accepted) => accepted,
        Err(e) => {
            // The endpoint logged the refusal with its kind; nothing was stored.
            tracing::info!(%peer, kind = e.kind(), "bridge: refused a connection");
            refuse(&mut ws, e.kind()).await;
            return Ok(());
        }
    };
    let mut conn = Conn {
        shared: Arc::clone(shared),
        session: accepted.session,
        number,
        replaced: Arc::new(Notify::new()),
        registered: false,
        sync: None,
    };
    let resume = accepted.hello.sync.map(|s| (s.sync_id, s.next));
    let result = conn.drive(&mut ws, resume).await;
    conn.finish(&mut ws).await;
    result
}

fn frame_kind(message: &WsMessage) -> &'static str {
    match message {
        WsMessage::Text(_) => "text",
        WsMessage::Binary(_) => "binary",
        WsMessage::Ping(_) => "ping",
        WsMessage::Pong(_) => "pong",
        WsMessage::Close(_) => "close",
        WsMessage::Frame(_) => "raw frame",
    }
}

/// Closes a refused connection with a policy-violation close frame.
async fn refuse(ws: &mut Socket, why: &str) {
    let reason: String = why.chars().take(100).collect();
    let _ = ws
        .close(Some(CloseFrame {
            code: CloseCode::Policy,
            reason: reason.into(),
        }))
        .await;
}

/// Makes the endpoint's authorised set the store's (linked and unlinked since last time).
fn refresh_authorised(store: &Store, endpoint: &mut PhoneEndpoint) -> Result<()> {
    let stored = authorised_keys(store)?;
    let revoked: Vec<PublicKey> = endpoint
        .authorised()
        .filter(|k| !stored.contains(k))
        .copied()
        .collect();
    for key in revoked {
        endpoint.revoke(&key);
    }
    for key in stored {
        if let Err(e) = endpoint.authorise(key) {
            tracing::warn!(error = %e, "bridge: a stored desktop key is not usable");
        }
    }
    Ok(())
}

fn authorised_keys(store: &Store) -> Result<Vec<PublicKey>> {
    Ok(store
        .bridge_desktops()?
        .into_iter()
        .filter_map(|d| <[u8; 32]>::try_from(d.public_key.as_slice()).ok())
        .filter_map(|bytes| PublicKey::from_bytes(bytes).ok())
        .collect())
}

/// One open connection's state.
struct Conn {
    shared: Arc<Shared>,
    session: PhoneSession,
    number: u64,
    replaced: Arc<Notify>,
    registered: bool,
    /// The history sync this connection sends, taken out of the shared map while it runs.
    sync: Option<(SyncId, BridgeSync)>,
}

impl Conn {
    async fn drive(&mut self, ws: &mut Socket, resume: Option<(SyncId, u32)>) -> Result<()> {
        let mut head = self.shared.head.subscribe();
        let mut unlogged = self.shared.unlogged.subscribe();
        let mut shutdown = self.shared.shutdown.clone();
        let replaced = Arc::clone(&self.replaced);
        if let Some((sync_id, next)) = resume {
            self.on_sync(SyncMessage::Resume { sync_id, next })?;
        }
        self.pump()?;
        self.flush(ws).await?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u32;
        let mut silent = 0u32;
        while self.session.is_open() {
            tokio::select! {
                frame = ws.next() => {
                    silent = 0;
                    match frame {
                        Some(Ok(WsMessage::Binary(bytes))) => self.on_frame(&bytes).await?,
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                        Some(Ok(WsMessage::Text(_))) => {
                            tracing::warn!(desktop = %self.session.desktop(), kind = "malformed", "bridge: channel closed on error: a text message");
                            self.session.close(CloseReason::ProtocolError {
                                kind: "malformed".into(),
                                detail: "text messages are not used".into(),
                            });
                        }
                        Some(Ok(WsMessage::Close(_))) | None => return Ok(()),
                        Some(Err(e)) => {
                            tracing::warn!(desktop = %self.session.desktop(), error = %e, "bridge: the WebSocket failed");
                            return Ok(());
                        }
                    }
                }
                changed = head.changed() => {
                    if changed.is_err() { return Ok(()); }
                    self.pump()?;
                }
                body = unlogged.recv() => match body {
                    Ok(body) => self.session.push_unlogged(body).map_err(bridge_error)?,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(missed = n, "bridge: a slow desktop missed typing/presence events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                () = replaced.notified() => self.session.close(CloseReason::Replaced),
                _ = shutdown.changed() => self.session.close(CloseReason::ShuttingDown),
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    silent = silent.saturating_add(1);
                    if !authorised_keys(self.shared.engine.store())?.contains(self.session.desktop()) {
                        tracing::info!(desktop = %self.session.desktop(), "bridge: the desktop was unlinked");
                        self.session.close(CloseReason::Unlinked);
                    } else if silent >= SILENCE_TICKS {
                        tracing::info!(desktop = %self.session.desktop(), "bridge: the desktop went silent");
                        return Ok(());
                    } else if ticks.is_multiple_of(PING_TICKS) {
                        self.session.ping(u64::from(ticks)).map_err(bridge_error)?;
                    }
                }
            }
            self.flush(ws).await?;
        }
        Ok(())
    }

    /// Sends what the session queued.
    async fn flush(&mut self, ws: &mut Socket) -> Result<()> {
        while let Some(frame) = self.session.poll_transmit() {
            ws.send(WsMessage::Binary(frame.into()))
                .await
                .map_err(|e| Error::BadInput(format!("bridge: sending to the desktop: {e}")))?;
        }
        Ok(())
    }

    /// Queues every logged event the connection has not sent yet, in batches.
    fn pump(&mut self) -> Result<()> {
        if !self.session.is_open() {
            return Ok(());
        }
        let log = StoreLog::new(self.shared.engine.store());
        loop {
            match self
                .session
                .pump_events(&log, tandem_bridge::log::READ_BATCH)
            {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(tandem_bridge::Error::EventGap { last, got }) => {
                    tracing::warn!(last, got, "bridge: the log was pruned under a connection");
                    return Ok(());
                }
                Err(e) => return Err(bridge_error(e)),
            }
        }
    }

    async fn on_frame(&mut self, frame: &[u8]) -> Result<()> {
        let was_confirmed = self.session.is_confirmed();
        let incoming = {
            let mut log = StoreLog::new(self.shared.engine.store());
            self.session.receive(frame, &mut log)
        };
        if !was_confirmed && self.session.is_confirmed() {
            self.register();
        }
        match incoming {
            Ok(Some(PhoneIncoming::Request(request))) => {
                let result = self.answer(request.body).await;
                if let Err(e) = self.session.respond(request.id, result) {
                    tracing::warn!(error = %e, "bridge: could not answer a request");
                }
            }
            Ok(Some(PhoneIncoming::Closed { .. })) => {}
            Ok(Some(PhoneIncoming::Acked { .. } | PhoneIncoming::Pong { .. }) | None) => {}
            // Logged by the session; the channel is closed with the reason queued.
            Err(_) => {}
        }
        Ok(())
    }

    /// This connection is the desktop's live one now; an older one is told it was replaced.
    fn register(&mut self) {
        let key = *self.session.desktop();
        let previous =
            lock(&self.shared.live).insert(key, (self.number, Arc::clone(&self.replaced)));
        self.registered = true;
        if let Some((_, older)) = previous {
            older.notify_one();
        }
    }

    /// Closes the socket, gives back an unfinished sync, unregisters.
    async fn finish(&mut self, ws: &mut Socket) {
        let _ = self.flush(ws).await;
        let _ = ws.close(None).await;
        if let Some((sync_id, sync)) = self.sync.take() {
            lock(&self.shared.syncs).insert(sync_id, sync);
        }
        if self.registered {
            let mut live = lock(&self.shared.live);
            if live
                .get(self.session.desktop())
                .is_some_and(|(n, _)| *n == self.number)
            {
                live.remove(self.session.desktop());
            }
        }
    }

    /// Does one request.
    async fn answer(&mut self, body: RequestBody) -> std::result::Result<BridgeReply, Failure> {
        let hex = |bytes: &[u8; 16]| Uuid::from_bytes(*bytes).hyphenated().to_string();
        let store = self.shared.engine.store();
        match body {
            RequestBody::Send {
                chat,
                message,
                text,
                reply_to,
            } => {
                self.relay(Request::Send {
                    chat: hex(&chat.0),
                    text,
                    reply: reply_to.map(|r| hex(r.as_bytes())),
                    wait: false,
                    id: Some(hex(message.as_bytes())),
                })
                .await?;
                let stored = store
                    .message(MessageId(Uuid::from_bytes(*message.as_bytes())))
                    .map_err(internal)?
                    .ok_or_else(|| failure(FailureKind::Internal, "the message was not stored"))?;
                Ok(BridgeReply::Message(synced_message(&stored)))
            }
            RequestBody::React { message, emoji, .. } => {
                self.relay(Request::React {
                    message: hex(message.as_bytes()),
                    emoji,
                })
                .await
            }
            RequestBody::Edit { message, text, .. } => {
                self.relay(Request::Edit {
                    message: hex(message.as_bytes()),
                    text,
                })
                .await
            }
            RequestBody::Delete { message, .. } => {
                self.relay(Request::Delete {
                    message: hex(message.as_bytes()),
                })
                .await
            }
            RequestBody::MarkRead { chat, .. } => {
                self.relay(Request::Read { chat: hex(&chat.0) }).await
            }
            RequestBody::Typing { chat, on } => {
                self.relay(Request::Typing {
                    chat: hex(&chat.0),
                    on,
                })
                .await
            }
            RequestBody::PageOlder {
                chat,
                before,
                limit,
            } => {
                let before = before.map(|(ts, id)| (ts, *id.as_bytes()));
                let (chat, messages, more) =
                    history::page(store, chat.0, before, limit).map_err(internal)?;
                Ok(BridgeReply::Page(Page {
                    chats: chat.into_iter().collect(),
                    messages,
                    more,
                }))
            }
            RequestBody::Search { query, chat, limit } => self.search(&query, chat, limit),
            RequestBody::Sync(message) => {
                self.on_sync(message).map_err(internal)?;
                Ok(BridgeReply::Done)
            }
        }
    }

    /// Hands work to the phone's session and waits for its answer.
    async fn relay(&self, request: Request) -> std::result::Result<BridgeReply, Failure> {
        match self.shared.session.call(request).await {
            Ok(Reply::Ok(_)) => Ok(BridgeReply::Done),
            Ok(Reply::Error { kind, message }) => Err(failure(
                match kind.as_str() {
                    "not_found" | "ambiguous" => FailureKind::NotFound,
                    "bad_input" => FailureKind::Invalid,
                    _ => FailureKind::Internal,
                },
                &message,
            )),
            Err(e) => Err(failure(FailureKind::Unavailable, &e.to_string())),
        }
    }

    fn search(
        &self,
        query: &str,
        chat: Option<WireChat>,
        limit: u16,
    ) -> std::result::Result<BridgeReply, Failure> {
        let engine = &self.shared.engine;
        let store = engine.store();
        let chat = chat.map(|c| Uuid::from_bytes(c.0).hyphenated().to_string());
        let hits = engine
            .search(query, chat.as_deref(), usize::from(limit))
            .map_err(|e| match e {
                Error::BadInput(m) => failure(FailureKind::Invalid, &m),
                other => internal(other),
            })?;
        let mut messages = Vec::new();
        let mut chats: Vec<tandem_proto::sync::SyncedChat> = Vec::new();
        for hit in hits {
            let Ok(uuid) = Uuid::parse_str(&hit.message.id) else {
                continue;
            };
            let Some(message) = store.message(MessageId(uuid)).map_err(internal)? else {
                continue;
            };
            if !chats.iter().any(|c| c.id == *message.chat.as_bytes())
                && let Some(summary) = store.chat(message.chat).map_err(internal)?
            {
                chats.push(synced_chat(
                    &summary,
                    store.members(summary.id).map_err(internal)?,
                ));
            }
            messages.push(synced_message(&message));
        }
        Ok(BridgeReply::Page(Page {
            chats,
            messages,
            more: false,
        }))
    }

    /// A history-sync message from the desktop (`Resume` starts or resumes, `Ack` moves the
    /// window); queues what the window allows.
    fn on_sync(&mut self, message: SyncMessage) -> Result<()> {
        let desktop = *self.session.desktop();
        match message {
            SyncMessage::Resume { sync_id, next } => {
                if self.sync.as_ref().is_some_and(|(id, _)| *id == sync_id) {
                    if let Some((_, sync)) = &mut self.sync {
                        sync.window.on_resume();
                    }
                } else {
                    if let Some((old, sync)) = self.sync.take() {
                        lock(&self.shared.syncs).insert(old, sync);
                    }
                    let known = lock(&self.shared.syncs).remove(&sync_id);
                    match known {
                        Some(mut sync) if sync.owner == desktop => {
                            sync.window.on_resume();
                            self.sync = Some((sync_id, sync));
                        }
                        Some(other) => {
                            lock(&self.shared.syncs).insert(sync_id, other);
                            return self.push_sync(SyncMessage::Unknown { sync_id });
                        }
                        None if next == 0 => {
                            let plan = history::build_plan(
                                self.shared.engine.store(),
                                0,
                                PlanBound::default(),
                            )?;
                            tracing::info!(desktop = %desktop, chunks = plan.total(), messages = plan.messages(), "bridge: history sync started");
                            let window = SenderWindow::new(plan.total(), 0, 0, CHAIN_START);
                            self.sync = Some((
                                sync_id,
                                BridgeSync {
                                    owner: desktop,
                                    plan,
                                    window,
                                    built: HashMap::new(),
                                },
                            ));
                        }
                        None => return self.push_sync(SyncMessage::Unknown { sync_id }),
                    }
                }
                self.send_window()
            }
            SyncMessage::Ack {
                sync_id,
                index,
                count,
                ..
            } => {
                let store = self.shared.engine.store();
                let Some((id, sync)) = &mut self.sync else {
                    return Ok(());
                };
                if *id != sync_id {
                    return Ok(());
                }
                let own = match sync.built.get(&index) {
                    Some(d) => *d,
                    None => sync.plan.chunk(store, sync_id, index)?.digest,
                };
                match sync.window.on_ack(index, &own, count) {
                    AckOutcome::Stale => Ok(()),
                    _ => self.send_window(),
                }
            }
            other => {
                tracing::debug!(?other, "bridge: a sync message a desktop does not send");
                Ok(())
            }
        }
    }

    /// Queues the chunks the window allows, or `Complete` once every chunk is acknowledged.
    fn send_window(&mut self) -> Result<()> {
        let store = self.shared.engine.store();
        let Some((sync_id, sync)) = &mut self.sync else {
            return Ok(());
        };
        let sync_id = *sync_id;
        let mut out = Vec::new();
        if sync.window.is_complete() {
            out.push(SyncMessage::Complete {
                sync_id,
                chunks: sync.window.total,
                messages: sync.window.acked_messages,
                digest: sync.window.chain,
            });
            tracing::info!(desktop = %self.session.desktop(), chunks = sync.window.total, "bridge: history sync complete");
            self.sync = None;
        } else {
            for index in sync.window.take_sendable() {
                let chunk = sync.plan.chunk(store, sync_id, index)?;
                sync.built.insert(index, chunk.digest);
                out.push(SyncMessage::Chunk(Box::new(chunk)));
            }
        }
        for message in out {
            self.push_sync(message)?;
        }
        Ok(())
    }

    fn push_sync(&mut self, message: SyncMessage) -> Result<()> {
        self.session
            .push_unlogged(EventBody::Sync(message))
            .map_err(bridge_error)
    }
}

fn bridge_error(e: tandem_bridge::Error) -> Error {
    Error::Bridge(e.to_string())
}

fn failure(kind: FailureKind, message: &str) -> Failure {
    let mut message = message.to_owned();
    truncate(&mut message, tandem_bridge::message::MAX_REASON_LEN);
    Failure { kind, message }
}

fn internal(e: impl std::fmt::Display) -> Failure {
    failure(FailureKind::Internal, &e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_log_in_the_store_keeps_the_rules_of_every_event_log() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open_with(dir.path(), crate::KeychainUse::Off).unwrap();
        let mut log = StoreLog::new(engine.store());
        tandem_bridge::log::check_event_log(&mut log).unwrap();
        // Numbers are never reused, even when pruning emptied the log.
        let head = log.head().unwrap();
        log.drop_through(head).unwrap();
        assert_eq!(log.first_kept().unwrap(), head + 1);
        let next = log
            .publish(EventBody::Deleted {
                chat: WireChat([1; 16]),
                message: WireId::derived(1_700_000_000_000, b"t", b"1").unwrap(),
            })
            .unwrap();
        assert_eq!(next, head + 1);
        // And not after a restart either.
        drop(engine);
        let engine = Engine::open_with(dir.path(), crate::KeychainUse::Off).unwrap();
        assert_eq!(StoreLog::new(engine.store()).head().unwrap(), next);
    }
}

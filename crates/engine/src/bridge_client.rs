//! Bridge mode's desktop driver (DESIGN 8, `docs/bridge.md`): a desktop linked in bridge mode
//! holds no broker session and is no device of the account; it reaches the phone over one
//! WebSocket at a time, feeding the sans-I/O [`tandem_bridge::DesktopSession`].
//!
//! This module owns:
//! - the connection loop: connect, handshake with the stored keys and cursor, reconnect with
//!   backoff (200 ms doubling to 5 s), a ping every 10 s and a dead-connection timeout;
//! - applying the phone's logged events to the local store, each in one durable transaction
//!   with the cursor ([`BRIDGE_CURSOR`]), acknowledged to the phone only after the commit;
//! - the history sync over the bridge (chunks verified and imported by the same code as
//!   multi-device mode: `desktop::receive`);
//! - the bridge outbox: messages written while the phone is away, sent oldest first once
//!   connected, settled in one transaction with the phone's stored copy;
//! - requests that need the phone now (react, edit, delete, read, typing, older pages), and
//!   whether the phone is reachable (`status`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tandem_bridge::{
    CatchUp, CloseReason, DesktopHandshake, DesktopIncoming, DesktopSession, DeviceChangeKind,
    EventBody, Failure, PublicKey, Reply as BridgeReply, RequestBody, Response, StaticSecret,
    SyncResumeState,
};
use tandem_crypto::{AccountId, OsRng};
use tandem_proto::sync::{CHAIN_START, PAGE_MESSAGES, SyncMessage, SyncedMessage};
use tandem_proto::{ChatId as WireChat, MessageId as WireId, ReceiptKind};
use tandem_store::{
    ChatId, Cursor, DurableWriter, MessageId, MessageStatus, NewMessage, Sender, Store, SyncPhase,
    SyncRole, SyncState, identity,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::control::{Pending, Reply, Request};
use crate::desktop::{FetchReport, Step, SyncReport, progress, receive};
use crate::messaging::{Effect, ReadReport, store_id};
use crate::views::{Event, MessageView, Status};
use crate::{Engine, Error, Result, history, now_ms};

/// Identity entry: the last event sequence number this desktop stored (8 bytes, little
/// endian), written in the same transaction as the event's effects.
pub(crate) const BRIDGE_CURSOR: &str = "bridge_cursor";
/// First wait before reconnecting; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
/// Longest wait between connection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the desktop pings the phone.
const PING_EVERY: Duration = Duration::from_secs(10);
/// A connection from which nothing arrived for this long is dead.
const DEAD_AFTER: Duration = Duration::from_secs(25);
/// How long the TCP connect and the handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `status` tries to reach the phone when no session runs.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// With a history sync running: no chunk for this long, ask the phone to resume.
const SYNC_STALL: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a bridge-mode desktop stored when it linked.
struct BridgeConfig {
    secret: StaticSecret,
    phone: PublicKey,
    url: String,
    account: AccountId,
    account_name: String,
}

/// When a bridge session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// Never (until the caller drops the future).
    Forever,
    /// Once the bridge outbox is empty.
    Drained,
    /// Once the history sync is complete and the events up to the phone's head are stored.
    Synced,
    /// Once `pages` pages of `chat` older than what this desktop holds are stored.
    Fetch { chat: ChatId, pages: u32 },
    /// As soon as the handshake succeeded.
    Probe,
}

/// What a request sent to the phone is waiting for.
#[derive(Debug)]
enum Waiter {
    /// An outbox message.
    Send(MessageId),
    /// A history-sync `Ack` or `Resume`.
    Sync,
    /// A page of older messages.
    Page,
    /// Work handed over by a front end: done locally once the phone did it, then answered.
    Control {
        after: AfterDone,
        reply: oneshot::Sender<Reply>,
    },
}

/// What a handed-over request does locally once the phone answered `Done`.
#[derive(Debug)]
enum AfterDone {
    React { message: MessageId, emoji: String },
    Edit { message: MessageId, text: String },
    Delete { message: MessageId },
    Read { chat: ChatId },
    Typing { chat: String, on: bool },
}

/// How one connection ended.
enum Ended {
    /// The goal was reached (the channel was closed normally).
    Done,
    /// The connection dropped; reconnect.
    Dropped(String),
}

/// What woke the connection loop.
enum Wake {
    Frame(Option<std::result::Result<Ws, tokio_tungstenite::tungstenite::Error>>),
    Request(Option<Pending>),
    Timer,
}

fn unreachable_phone(reason: impl std::fmt::Display) -> Error {
    Error::PhoneUnreachable {
        reason: reason.to_string(),
    }
}

fn bridge_error(error: &tandem_bridge::Error) -> Error {
    Error::Bridge(error.to_string())
}

fn failure_error(failure: &Failure) -> Error {
    Error::Bridge(format!(
        "the phone refused ({:?}): {}",
        failure.kind, failure.message
    ))
}

fn rng() -> Result<OsRng> {
    OsRng::new().map_err(|e| Error::Random(e.to_string()))
}

fn wire_id(id: MessageId) -> Result<WireId> {
    Ok(WireId::from_bytes(*id.as_bytes())?)
}

fn uuid_text(bytes: [u8; 16]) -> String {
    Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// Waits for the next handed-over request; pends forever without a channel.
async fn next_request(requests: &mut Option<mpsc::Receiver<Pending>>) -> Option<Pending> {
    match requests {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends every frame the session has queued.
async fn flush(ws: &mut Socket, session: &mut DesktopSession) -> Result<()> {
    while let Some(frame) = session.poll_transmit() {
        ws.send(Ws::binary(frame))
            .await
            .map_err(|e| unreachable_phone(format!("sending to the phone: {e}")))?;
    }
    Ok(())
}

/// The next binary message (the handshake's message 2).
async fn next_binary(ws: &mut Socket) -> Result<Vec<u8>> {
    loop {
        match ws.next().await {
            Some(Ok(Ws::Binary(bytes))) => return Ok(bytes.to_vec()),
            Some(Ok(Ws::Close(_))) | None => {
                return Err(unreachable_phone(
                    "the phone closed the connection during the handshake (is this desktop \
                     still linked, and is it the phone it was linked to?)",
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(unreachable_phone(e)),
        }
    }
}

impl Engine {
    /// Whether this desktop is linked in bridge mode.
    pub(crate) fn is_bridge(&self) -> Result<bool> {
        Ok(self
            .store()
            .identity(identity::MODE)?
            .is_some_and(|m| m.expose() == b"bridge"))
    }

    /// The bridge keys and address as stored (see [`Engine::bridge_link`]).
    fn bridge_config(&self) -> Result<BridgeConfig> {
        let link = self.bridge_link()?.ok_or(Error::NotLinked)?;
        let secret = self.bridge_secret()?.ok_or(Error::Corrupt {
            what: "bridge secret",
            reason: "missing".into(),
        })?;
        let phone: PublicKey = link.phone_key.parse().map_err(|_| Error::Corrupt {
            what: "phone bridge key",
            reason: "not a key".into(),
        })?;
        let account: AccountId = link.account.parse().map_err(|_| Error::Corrupt {
            what: "account id",
            reason: "not an account id".into(),
        })?;
        Ok(BridgeConfig {
            secret,
            phone,
            url: link.bridge_url,
            account,
            account_name: link.account_name,
        })
    }

    /// The last event sequence number stored (0 for none).
    fn bridge_cursor(&self) -> Result<u64> {
        Ok(self
            .store()
            .identity(BRIDGE_CURSOR)?
            .and_then(|v| <[u8; 8]>::try_from(v.expose()).ok())
            .map_or(0, u64::from_le_bytes))
    }

    /// Refuses work that needs the phone at once on a bridge-mode desktop without a running
    /// session (react, edit, delete, read: a running session sends them to the phone).
    pub(crate) fn refuse_without_phone(&self) -> Result<()> {
        if self.is_bridge()? {
            return Err(Error::PhoneUnreachable {
                reason: "no session runs on this desktop; start `tandem run` (or the app) so it \
                         can reach the phone"
                    .into(),
            });
        }
        Ok(())
    }

    /// `send` on a bridge-mode desktop: writes the message (from this account, "pending", a
    /// fresh UUIDv7) and queues it for the phone, in one durable transaction.
    pub(crate) fn bridge_send_local(
        &self,
        chat: &str,
        text: &str,
        reply: Option<&str>,
    ) -> Result<MessageView> {
        if text.trim().is_empty() {
            return Err(Error::BadInput("a message needs some text".into()));
        }
        if text.len() > tandem_proto::body::MAX_TEXT_LEN {
            return Err(Error::BadInput(format!(
                "a message is at most {} bytes long",
                tandem_proto::body::MAX_TEXT_LEN
            )));
        }
        let cfg = self.bridge_config()?;
        let store = self.store();
        let summary = store.chat_by_id_or_name(chat)?;
        let reply_to = match reply {
            Some(r) => {
                let quoted = Uuid::parse_str(r.trim())
                    .ok()
                    .and_then(|u| store.message(MessageId(u)).ok().flatten())
                    .filter(|m| m.chat == summary.id)
                    .ok_or_else(|| Error::MessageNotFound {
                        id: r.to_owned(),
                        chat: chat.to_owned(),
                    })?;
                Some(quoted.id)
            }
            None => None,
        };
        let now = now_ms();
        let id = store_id(WireId::new_v7(now, &mut rng()?)?);
        let message = NewMessage {
            from_me: true,
            reply_to,
            status: MessageStatus::Sending,
            ..NewMessage::text(
                id,
                summary.id,
                Sender {
                    account: Some(cfg.account.as_bytes().to_vec()),
                    device: None,
                    name: cfg.account_name.clone(),
                },
                now,
                text,
            )
        };
        store.write_durable(|w| -> Result<()> {
            w.insert_messages(std::slice::from_ref(&message))?;
            w.queue_bridge_send(id, now)?;
            Ok(())
        })?;
        self.message_view(id)
    }

    /// [`Engine::run_with`] on a bridge-mode desktop: stays connected to the phone.
    pub(crate) async fn bridge_run(
        &self,
        requests: mpsc::Receiver<Pending>,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        let mut driver = Driver::new(self, Goal::Forever, Some(requests))?;
        Box::pin(driver.run(on)).await
    }

    /// [`Engine::send_queued`] on a bridge-mode desktop: connects until the bridge outbox is
    /// empty or `timeout` passes.
    pub(crate) async fn bridge_send_queued(
        &self,
        timeout: Duration,
        on: &mut dyn FnMut(&Event),
    ) -> Result<bool> {
        if self.store().bridge_outbox()?.is_empty() {
            return Ok(true);
        }
        let mut driver = Driver::new(self, Goal::Drained, None)?;
        match tokio::time::timeout(timeout, Box::pin(driver.run(on))).await {
            Ok(done) => done.map(|()| true),
            Err(_) => Ok(false),
        }
    }

    /// [`Engine::sync`] on a bridge-mode desktop: connects until the history sync is
    /// complete and verified and the phone's events are stored.
    pub(crate) async fn bridge_sync(
        &self,
        timeout: Option<Duration>,
        on: &mut dyn FnMut(&Event),
    ) -> Result<SyncReport> {
        let mut driver = Driver::new(self, Goal::Synced, None)?;
        let run = Box::pin(driver.run(on));
        let outcome = match timeout {
            Some(t) => tokio::time::timeout(t, run).await.ok(),
            None => Some(run.await),
        };
        match outcome {
            Some(result) => {
                result?;
                Ok(driver.synced.unwrap_or(SyncReport {
                    chunks: 0,
                    messages: 0,
                }))
            }
            None => {
                let state = self.receiving()?;
                Err(Error::SyncTimeout {
                    done: state.as_ref().map_or(0, |s| s.messages_done),
                    total: state.as_ref().map_or(0, |s| s.messages_total),
                })
            }
        }
    }

    /// [`Engine::fetch_older`] on a bridge-mode desktop: `PageOlder` requests over the bridge.
    pub(crate) async fn bridge_fetch_older(
        &self,
        chat: &str,
        pages: u32,
        wait: Duration,
    ) -> Result<FetchReport> {
        let summary = self.store().chat_by_id_or_name(chat)?;
        let mut driver = Driver::new(
            self,
            Goal::Fetch {
                chat: summary.id,
                pages: pages.max(1),
            },
            None,
        )?;
        let limit = wait.saturating_mul(pages.max(1));
        match tokio::time::timeout(limit, Box::pin(driver.run(&mut |_| {}))).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(Error::PhoneOffline {
                    seconds: limit.as_secs(),
                });
            }
        }
        Ok(FetchReport {
            chat: summary.name,
            fetched: driver.fetched,
            more: driver.more,
        })
    }

    /// Whether the phone answers a handshake now (within `timeout`); the connection is then
    /// closed with `Normal`.
    async fn probe_phone(&self, timeout: Duration) -> Result<bool> {
        let mut driver = Driver::new(self, Goal::Probe, None)?;
        Ok(
            match tokio::time::timeout(timeout, Box::pin(driver.run(&mut |_| {}))).await {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "the phone did not answer the probe");
                    false
                }
                Err(_) => false,
            },
        )
    }

    /// [`Engine::status`] with what only a running session knows: on a device with its own
    /// broker session, the broker it is connected to now (asked over the control socket;
    /// `null` when no session runs); on a bridge-mode desktop, whether the phone is reachable
    /// now (asked of the running session, else tried with a handshake of at most 2 s).
    ///
    /// # Errors
    /// As [`Engine::status`].
    pub async fn status_live(&self) -> Result<Status> {
        let mut status = self.status()?;
        if status.mode == "unlinked" {
            return Ok(status);
        }
        if status.mode != "bridge" {
            // The broker the running session is on, if one runs.
            let broker = match Engine::hand_over(self.home(), &Request::Connection).await {
                Ok(Some(Reply::Ok(value))) => value
                    .get("broker")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
                _ => None,
            };
            status.broker = Some(broker);
            return Ok(status);
        }
        let reachable = match Engine::hand_over(self.home(), &Request::PhoneStatus).await {
            Ok(Some(Reply::Ok(value))) => value
                .get("phone_reachable")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            Ok(Some(Reply::Error { .. })) | Err(_) => false,
            Ok(None) => self.probe_phone(PROBE_TIMEOUT).await?,
        };
        status.phone_reachable = Some(reachable);
        Ok(status)
    }

    /// The name to show for `account`: this account's, a contact's, the account's own, or
    /// its id.
    fn bridge_name(&self, own: &AccountId, own_name: &str, account: &AccountId) -> Result<String> {
        crate::messaging::name_of(self.store(), own, own_name, account)
    }
}

/// Inserts a message as the phone holds it, or brings the stored copy up to it (edit,
/// delete, status). `add_unread`: count a new incoming message as unread (when the phone sent
/// no chat carrying the count).
fn upsert_message(
    w: &mut DurableWriter<'_>,
    message: &SyncedMessage,
    add_unread: bool,
) -> Result<Vec<Effect>> {
    let id = MessageId(Uuid::from_bytes(message.id));
    let mut effects = Vec::new();
    match w.message(id)? {
        None => {
            if history::import(w, &[], std::slice::from_ref(message))? > 0 {
                if add_unread && !message.from_me {
                    w.add_unread(ChatId(Uuid::from_bytes(message.chat)), 1)?;
                }
                effects.push(Effect::Message { id, new: true });
            }
        }
        Some(old) => {
            let changed = if message.deleted && !old.deleted {
                w.delete_for_everyone(id)?
            } else if let Some(at) = message.edited_at.filter(|at| Some(*at) != old.edited_at) {
                !message.deleted && w.edit_message(id, &message.text, at)?
            } else {
                false
            };
            if old.from_me
                && let Some(status) = MessageStatus::from_code(i64::from(message.status))
                && w.set_status(id, status)?
            {
                effects.push(Effect::Status { id, status });
            }
            if changed {
                effects.push(Effect::Message { id, new: false });
            }
        }
    }
    Ok(effects)
}

/// One bridge session: the connection loop and what it waits for.
struct Driver<'e> {
    engine: &'e Engine,
    cfg: BridgeConfig,
    goal: Goal,
    requests: Option<mpsc::Receiver<Pending>>,
    /// Requests sent on the current connection, by id.
    waiting: HashMap<u32, Waiter>,
    /// Outbox messages sent on the current connection.
    sending: HashSet<MessageId>,
    /// `send --wait` callers, answered once the phone stored the message.
    send_waiters: HashMap<MessageId, Vec<oneshot::Sender<Reply>>>,
    /// Whether a connection is open now.
    online: bool,
    /// Whether being offline was reported since the last connection.
    offline_reported: bool,
    /// The phone's head when this connection opened.
    head: u64,
    /// The finished history sync, once it is.
    synced: Option<SyncReport>,
    /// When the last history-sync message arrived (or was asked for).
    last_sync: Instant,
    /// What ends the session with an error.
    fatal: Option<Error>,
    /// Older pages: asked, messages new to this desktop, whether the phone holds more.
    asked: u32,
    fetched: u64,
    more: bool,
}

impl<'e> Driver<'e> {
    fn new(
        engine: &'e Engine,
        goal: Goal,
        requests: Option<mpsc::Receiver<Pending>>,
    ) -> Result<Self> {
        Ok(Self {
            engine,
            cfg: engine.bridge_config()?,
            goal,
            requests,
            waiting: HashMap::new(),
            sending: HashSet::new(),
            send_waiters: HashMap::new(),
            online: false,
            offline_reported: false,
            head: 0,
            synced: None,
            last_sync: Instant::now(),
            fatal: None,
            asked: 0,
            fetched: 0,
            more: true,
        })
    }

    fn store(&self) -> &'e Store {
        self.engine.store()
    }

    fn syncs(&self) -> bool {
        matches!(self.goal, Goal::Forever | Goal::Synced)
    }

    /// Reconnects with backoff until the goal is reached (a probe fails at once).
    async fn run(&mut self, on: &mut dyn FnMut(&Event)) -> Result<()> {
        let mut backoff = BACKOFF_FIRST;
        let mut rng = rng()?;
        loop {
            let reason = match self.connect(&mut rng).await {
                Ok((ws, session, catch_up)) => {
                    backoff = BACKOFF_FIRST;
                    match self.connection(ws, session, catch_up, on).await? {
                        Ended::Done => return Ok(()),
                        Ended::Dropped(reason) => reason,
                    }
                }
                Err(e) if self.goal == Goal::Probe => return Err(e),
                Err(e @ (Error::Store(_) | Error::Corrupt { .. })) => return Err(e),
                Err(e) => e.to_string(),
            };
            tracing::info!(url = %self.cfg.url, %reason, "bridge: the phone is not reachable");
            if !self.offline_reported {
                self.offline_reported = true;
                on(&Event::Offline { reason });
            }
            self.idle_until(Instant::now() + backoff, on).await?;
            backoff = backoff.saturating_mul(2).min(BACKOFF_MAX);
        }
    }

    /// Between connections: answers handed-over work that needs no phone (a send is queued)
    /// and refuses the rest, until `until`.
    async fn idle_until(&mut self, until: Instant, on: &mut dyn FnMut(&Event)) -> Result<()> {
        loop {
            let wake = tokio::select! {
                pending = next_request(&mut self.requests) => Some(pending),
                () = tokio::time::sleep_until(until) => None,
            };
            match wake {
                None => return Ok(()),
                Some(Some(pending)) => self.request(None, pending, on)?,
                Some(None) => self.requests = None,
            }
        }
    }

    /// Connects and shakes hands with the stored keys, cursor and sync state.
    async fn connect(&mut self, rng: &mut OsRng) -> Result<(Socket, DesktopSession, CatchUp)> {
        let cursor = self.engine.bridge_cursor()?;
        let sync = if self.syncs() {
            self.engine
                .receiving()?
                .filter(|s| s.phase == SyncPhase::Running)
                .and_then(|s| {
                    Some(SyncResumeState {
                        sync_id: s.sync_id.as_slice().try_into().ok()?,
                        next: s.chunks_done,
                    })
                })
        } else {
            None
        };
        let cfg = &self.cfg;
        let handshake = async {
            // Small frames go at once (Nagle's algorithm would hold each reply for the
            // phone's delayed ACK: 40 ms a message); frames above the protocol's limit are
            // refused by the socket.
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
                cfg.url.as_str(),
                Some(crate::bridge_server::websocket_config()),
                true,
            )
            .await
            .map_err(|e| unreachable_phone(format!("{}: {e}", cfg.url)))?;
            let (handshake, message1) =
                DesktopHandshake::start(&cfg.secret, &cfg.phone, cursor, sync, now_ms(), rng)
                    .map_err(|e| bridge_error(&e))?;
            ws.send(Ws::binary(message1))
                .await
                .map_err(unreachable_phone)?;
            let message2 = next_binary(&mut ws).await?;
            let (session, welcome) = handshake
                .finish(&message2)
                .map_err(|e| unreachable_phone(format!("the handshake failed: {e}")))?;
            Ok::<_, Error>((ws, session, welcome))
        };
        let (ws, session, welcome) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| unreachable_phone("no answer within 5 s"))??;
        tracing::info!(url = %self.cfg.url, cursor, head = welcome.head_seq, catch_up = ?welcome.catch_up, "bridge: connected to the phone");
        self.head = welcome.head_seq;
        Ok((ws, session, welcome.catch_up))
    }

    /// One open connection, until the goal is reached or it drops.
    async fn connection(
        &mut self,
        mut ws: Socket,
        mut session: DesktopSession,
        catch_up: CatchUp,
        on: &mut dyn FnMut(&Event),
    ) -> Result<Ended> {
        self.online = true;
        self.offline_reported = false;
        if self.goal != Goal::Probe {
            on(&Event::Online {
                device: self.cfg.secret.public_key().to_string(),
                broker: self.cfg.url.clone(),
            });
        }
        let ended = self.open(&mut ws, &mut session, catch_up, on).await;
        self.online = false;
        self.sending.clear();
        for (_, waiter) in self.waiting.drain() {
            if let Waiter::Control { reply, .. } = waiter {
                let _ = reply.send(Reply::error(&unreachable_phone(
                    "the connection to the phone dropped before it answered",
                )));
            }
        }
        if !matches!(ended, Ok(Ended::Done)) {
            let _ = flush(&mut ws, &mut session).await;
            let _ = ws.close(None).await;
        }
        if let Some(error) = self.fatal.take() {
            return Err(error);
        }
        ended
    }

    async fn open(
        &mut self,
        ws: &mut Socket,
        session: &mut DesktopSession,
        catch_up: CatchUp,
        on: &mut dyn FnMut(&Event),
    ) -> Result<Ended> {
        if self.syncs() {
            self.ensure_sync(session, catch_up, on)?;
        }
        if self.goal != Goal::Probe {
            self.send_outbox(session)?;
        }
        if matches!(self.goal, Goal::Fetch { .. }) {
            self.ask_page(session)?;
        }
        let mut last_heard = Instant::now();
        let mut next_ping = last_heard + PING_EVERY;
        let mut nonce = 0u64;
        loop {
            if let Err(e) = flush(ws, session).await {
                return Ok(Ended::Dropped(e.to_string()));
            }
            if self.fatal.is_some() {
                session.close(CloseReason::Normal);
                return Ok(Ended::Dropped("stopping".into()));
            }
            if self.done(session)? {
                session.close(CloseReason::Normal);
                let _ = flush(ws, session).await;
                let _ = ws.close(None).await;
                return Ok(Ended::Done);
            }
            if !session.is_open() {
                return Ok(Ended::Dropped(format!(
                    "the channel closed: {:?}",
                    session.state()
                )));
            }
            let mut deadline = next_ping.min(last_heard + DEAD_AFTER);
            if self.syncs() && self.synced.is_none() {
                deadline = deadline.min(self.last_sync + SYNC_STALL);
            }
            let wake = tokio::select! {
                frame = ws.next() => Wake::Frame(frame),
                pending = next_request(&mut self.requests) => Wake::Request(pending),
                () = tokio::time::sleep_until(deadline) => Wake::Timer,
            };
            match wake {
                Wake::Frame(None) => return Ok(Ended::Dropped("the phone hung up".into())),
                Wake::Frame(Some(Err(e))) => return Ok(Ended::Dropped(e.to_string())),
                Wake::Frame(Some(Ok(Ws::Binary(frame)))) => {
                    last_heard = Instant::now();
                    match session.receive(&frame) {
                        Ok(None) => {}
                        Ok(Some(incoming)) => {
                            if let Some(reason) = self.incoming(session, incoming, on)? {
                                return Ok(Ended::Dropped(reason));
                            }
                        }
                        Err(e) => return Ok(Ended::Dropped(e.to_string())),
                    }
                }
                Wake::Frame(Some(Ok(Ws::Close(_)))) => {
                    return Ok(Ended::Dropped("the phone closed the connection".into()));
                }
                Wake::Frame(Some(Ok(_))) => last_heard = Instant::now(),
                Wake::Request(Some(pending)) => self.request(Some(&mut *session), pending, on)?,
                Wake::Request(None) => self.requests = None,
                Wake::Timer => {
                    let now = Instant::now();
                    if now >= last_heard + DEAD_AFTER {
                        return Ok(Ended::Dropped(format!(
                            "nothing from the phone for {} s",
                            DEAD_AFTER.as_secs()
                        )));
                    }
                    if now >= next_ping {
                        nonce = nonce.wrapping_add(1);
                        session.ping(nonce).map_err(|e| bridge_error(&e))?;
                        next_ping = now + PING_EVERY;
                    }
                    if self.syncs() && self.synced.is_none() && now >= self.last_sync + SYNC_STALL {
                        self.resume_sync(session, on)?;
                    }
                }
            }
        }
    }

    /// Whether the goal is reached.
    fn done(&self, session: &DesktopSession) -> Result<bool> {
        Ok(match self.goal {
            Goal::Forever => false,
            Goal::Probe => true,
            Goal::Drained => self.sending.is_empty() && self.store().bridge_outbox()?.is_empty(),
            Goal::Synced => self.synced.is_some() && session.last_seq() >= self.head,
            Goal::Fetch { pages, .. } => {
                !self.waiting.values().any(|w| matches!(w, Waiter::Page))
                    && (self.asked >= pages || !self.more)
            }
        })
    }

    /// Something the phone sent. Returns why the connection must be dropped, if it must.
    fn incoming(
        &mut self,
        session: &mut DesktopSession,
        incoming: DesktopIncoming,
        on: &mut dyn FnMut(&Event),
    ) -> Result<Option<String>> {
        match incoming {
            DesktopIncoming::Event { seq, body } => {
                let store = self.store();
                let (effects, events) = store.write_durable(|w| -> Result<_> {
                    let applied = self.apply_event(w, &body)?;
                    w.put_identity(BRIDGE_CURSOR, &seq.to_le_bytes())?;
                    Ok(applied)
                })?;
                session.ack(seq).map_err(|e| bridge_error(&e))?;
                self.engine.emit(effects, on);
                for event in &events {
                    on(event);
                }
            }
            DesktopIncoming::AlreadySeen { seq } => {
                tracing::debug!(seq, "bridge: an event already stored");
            }
            DesktopIncoming::Unlogged(body) => self.unlogged(session, body, on)?,
            DesktopIncoming::Response(response) => self.response(session, response, on)?,
            DesktopIncoming::Pong { .. } => {}
            DesktopIncoming::Closed { reason } => {
                if reason == CloseReason::Unlinked {
                    self.fatal = Some(Error::Unlinked);
                    self.engine.store().write_durable(|w| -> Result<()> {
                        for name in [identity::BRIDGE_SECRET, identity::MODE] {
                            w.delete_identity(name)?;
                        }
                        Ok(())
                    })?;
                }
                return Ok(Some(format!("the phone closed the channel: {reason}")));
            }
        }
        Ok(None)
    }

    /// A logged event's effects, inside its transaction.
    fn apply_event(
        &self,
        w: &mut DurableWriter<'_>,
        body: &EventBody,
    ) -> Result<(Vec<Effect>, Vec<Event>)> {
        let store = self.store();
        let mut effects = Vec::new();
        let mut events = Vec::new();
        let message_id = |id: &WireId| store_id(*id);
        match body {
            EventBody::Message { message, chat } => {
                let chat_id = ChatId(Uuid::from_bytes(message.chat));
                let known = match chat {
                    Some(chat) => {
                        history::import(w, std::slice::from_ref(chat), &[])?;
                        true
                    }
                    None => store.chat(chat_id)?.is_some(),
                };
                if known {
                    effects = upsert_message(w, message, chat.is_none())?;
                } else {
                    tracing::warn!(chat = %chat_id.0, "bridge: a message for a chat this desktop does not hold");
                }
            }
            EventBody::Edited {
                message,
                text,
                edited_at,
                ..
            } => {
                let id = message_id(message);
                if w.edit_message(id, text, *edited_at)? {
                    effects.push(Effect::Message { id, new: false });
                }
            }
            EventBody::Deleted { message, .. } => {
                let id = message_id(message);
                if w.delete_for_everyone(id)? {
                    effects.push(Effect::Message { id, new: false });
                }
            }
            EventBody::Reaction {
                message, by, emoji, ..
            } => {
                let id = message_id(message);
                let account = by.unwrap_or(self.cfg.account);
                if w.chat_of(id)?.is_some()
                    && w.set_reaction(id, account.as_bytes().as_slice(), emoji, now_ms())?
                {
                    effects.push(Effect::Message { id, new: false });
                }
            }
            EventBody::Receipt { message, kind, .. } => {
                let id = message_id(message);
                let status = match kind {
                    ReceiptKind::Delivered => MessageStatus::Delivered,
                    ReceiptKind::Read => MessageStatus::Read,
                };
                if w.message(id)?.is_some_and(|m| m.from_me) && w.set_status(id, status)? {
                    effects.push(Effect::Status { id, status });
                }
            }
            EventBody::ChatRead { chat, .. } => {
                let chat = ChatId(Uuid::from_bytes(chat.0));
                w.mark_chat_read(chat)?;
                effects.push(Effect::Chat { chat });
            }
            EventBody::DeviceChange {
                device,
                name,
                platform,
                change,
                at,
            } => events.push(Event::PhoneDevice {
                device: device.to_string(),
                name: name.clone(),
                platform: platform.clone(),
                linked: *change == DeviceChangeKind::Linked,
                at: *at,
            }),
            EventBody::Typing { .. } | EventBody::Presence { .. } | EventBody::Sync(_) => {}
        }
        Ok((effects, events))
    }

    /// Typing, presence and history sync: not logged, never stored as events.
    fn unlogged(
        &mut self,
        session: &mut DesktopSession,
        body: EventBody,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        match body {
            EventBody::Typing {
                chat,
                who,
                on: typing,
            } => on(&Event::Typing {
                chat: uuid_text(chat.0),
                from: self
                    .engine
                    .bridge_name(&self.cfg.account, &self.cfg.account_name, &who)?,
                account: who.to_string(),
                on: typing,
            }),
            EventBody::Presence {
                account,
                online,
                last_seen,
            } => on(&Event::Presence {
                device: account.to_string(),
                name: self.engine.bridge_name(
                    &self.cfg.account,
                    &self.cfg.account_name,
                    &account,
                )?,
                online,
                at: last_seen.unwrap_or_else(now_ms),
            }),
            EventBody::Sync(message) => self.on_sync(session, message, on)?,
            other => tracing::warn!(?other, "bridge: a logged event sent as unlogged"),
        }
        Ok(())
    }

    /// The running sync's id, if one runs.
    fn running_sync(&self) -> Result<Option<(SyncState, [u8; 16])>> {
        Ok(self
            .engine
            .receiving()?
            .filter(|s| matches!(s.phase, SyncPhase::Running | SyncPhase::Complete))
            .and_then(|s| {
                let id = s.sync_id.as_slice().try_into().ok()?;
                Some((s, id))
            }))
    }

    /// On every connection: a desktop without a complete history sync asks for one (a new one
    /// after `Resync`, when the phone no longer has the events after the cursor).
    fn ensure_sync(
        &mut self,
        session: &mut DesktopSession,
        catch_up: CatchUp,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        self.last_sync = Instant::now();
        let resync = match catch_up {
            CatchUp::Resync { next_seq } => Some(next_seq),
            CatchUp::Replay => None,
        };
        match self.running_sync()? {
            Some((state, _)) if resync.is_none() && state.phase == SyncPhase::Complete => {
                if self.synced.is_none() {
                    self.synced = Some(SyncReport {
                        chunks: state.chunks_total,
                        messages: state.messages_done,
                    });
                }
                Ok(())
            }
            Some((state, sync_id)) if resync.is_none() => {
                on(&progress(&state));
                // The phone resumes from `Hello.sync` by itself once it knows the sync; one it
                // may never have heard of (nothing arrived yet) is asked for again.
                if state.chunks_done == 0 {
                    self.request_sync(session, SyncMessage::Resume { sync_id, next: 0 })?;
                }
                Ok(())
            }
            _ => self.start_sync(session, resync),
        }
    }

    /// Writes a new receiving sync (and, after `Resync`, the cursor the phone continues
    /// from) and asks the phone for it.
    fn start_sync(&mut self, session: &mut DesktopSession, resync: Option<u64>) -> Result<()> {
        let mut sync_id = [0u8; 16];
        crate::desktop::rand_fill(&mut rng()?, &mut sync_id);
        let now = now_ms();
        self.synced = None;
        self.store().write_durable(|w| -> Result<()> {
            w.put_sync_state(&SyncState {
                sync_id: sync_id.to_vec(),
                role: SyncRole::Receiver,
                phase: SyncPhase::Running,
                chunks_done: 0,
                chunks_total: 0,
                messages_done: 0,
                messages_total: 0,
                last_acked: None,
                digest: CHAIN_START.to_vec(),
                plan: Vec::new(),
                updated_at: now,
            })?;
            if let Some(next_seq) = resync {
                w.put_identity(BRIDGE_CURSOR, &next_seq.saturating_sub(1).to_le_bytes())?;
            }
            Ok(())
        })?;
        tracing::info!(
            resync = resync.is_some(),
            "bridge: asking the phone for the history"
        );
        self.request_sync(session, SyncMessage::Resume { sync_id, next: 0 })
    }

    /// Asks the phone to resume the running sync where this desktop stands.
    fn resume_sync(
        &mut self,
        session: &mut DesktopSession,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        self.last_sync = Instant::now();
        if let Some((state, sync_id)) = self.running_sync()?
            && state.phase == SyncPhase::Running
        {
            on(&Event::Waiting {
                reason: "no history from the phone for a while; asking it to resume".into(),
            });
            let next = state.chunks_done;
            self.request_sync(session, SyncMessage::Resume { sync_id, next })?;
        }
        Ok(())
    }

    fn request_sync(&mut self, session: &mut DesktopSession, message: SyncMessage) -> Result<()> {
        let id = session
            .request(RequestBody::Sync(message))
            .map_err(|e| bridge_error(&e))?;
        self.waiting.insert(id, Waiter::Sync);
        Ok(())
    }

    /// A history-sync message: verified and imported by the multi-device code, answered
    /// with an `Ack` once stored.
    fn on_sync(
        &mut self,
        session: &mut DesktopSession,
        message: SyncMessage,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        let Some((state, sync_id)) = self.running_sync()? else {
            tracing::debug!("bridge: a history message with no sync running");
            return Ok(());
        };
        self.last_sync = Instant::now();
        let unknown = matches!(&message, SyncMessage::Unknown { sync_id: id } if *id == sync_id);
        let step = self.store().write_durable(|w| -> Result<Step> {
            // The desktop asked with `Resume { next: 0 }`: the plan's size comes with the
            // first chunk, the message count with `Complete`.
            let mut state = state;
            let update = match &message {
                SyncMessage::Chunk(chunk)
                    if chunk.sync_id == sync_id
                        && state.chunks_done == 0
                        && state.chunks_total != chunk.total =>
                {
                    state.chunks_total = chunk.total;
                    true
                }
                SyncMessage::Complete {
                    sync_id: id,
                    messages,
                    ..
                } if *id == sync_id && state.phase == SyncPhase::Running => {
                    state.messages_total = *messages;
                    true
                }
                _ => false,
            };
            if update {
                w.put_sync_state(&state)?;
            }
            receive(w, sync_id, message)
        })?;
        match step {
            Step::Ack {
                index,
                digest,
                count,
                progress,
            } => {
                self.request_sync(
                    session,
                    SyncMessage::Ack {
                        sync_id,
                        index,
                        digest,
                        count,
                    },
                )?;
                if let Some(event) = progress {
                    on(&event);
                }
            }
            Step::Complete(report) => {
                if self.synced.is_none() {
                    on(&Event::Synced {
                        chunks: report.chunks,
                        messages: report.messages,
                    });
                }
                self.synced = Some(report);
            }
            Step::Failed(reason) => {
                tracing::warn!(%reason, "bridge: the history sync failed");
                if self.goal == Goal::Synced {
                    self.fatal = Some(Error::SyncFailed(reason));
                } else if unknown {
                    // The phone lost it (a restart): ask for a new one.
                    self.start_sync(session, None)?;
                } else {
                    on(&Event::Waiting { reason });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends every queued message not yet sent on this connection, oldest first.
    fn send_outbox(&mut self, session: &mut DesktopSession) -> Result<()> {
        let store = self.store();
        for id in store.bridge_outbox()? {
            if self.sending.contains(&id) {
                continue;
            }
            let Some(message) = store.message(id)? else {
                store.write_durable(|w| w.bridge_send_done(id))?;
                continue;
            };
            let body = RequestBody::Send {
                chat: WireChat(*message.chat.as_bytes()),
                message: wire_id(id)?,
                text: message.text.clone(),
                reply_to: message.reply_to.map(wire_id).transpose()?,
            };
            let request = session.request(body).map_err(|e| bridge_error(&e))?;
            self.waiting.insert(request, Waiter::Send(id));
            self.sending.insert(id);
        }
        Ok(())
    }

    /// Asks for the next page of older messages (`Goal::Fetch`).
    fn ask_page(&mut self, session: &mut DesktopSession) -> Result<()> {
        let Goal::Fetch { chat, .. } = self.goal else {
            return Ok(());
        };
        let oldest = self
            .store()
            .page(
                chat,
                Cursor::After {
                    ts: i64::MIN,
                    id: MessageId(Uuid::nil()),
                },
                1,
            )?
            .first()
            .map(|m| wire_id(m.id).map(|id| (m.ts, id)))
            .transpose()?;
        let request = session
            .request(RequestBody::PageOlder {
                chat: WireChat(*chat.as_bytes()),
                before: oldest,
                limit: PAGE_MESSAGES,
            })
            .map_err(|e| bridge_error(&e))?;
        self.waiting.insert(request, Waiter::Page);
        self.asked += 1;
        Ok(())
    }

    /// The phone's answer to a request.
    fn response(
        &mut self,
        session: &mut DesktopSession,
        response: Response,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        let Some(waiter) = self.waiting.remove(&response.id) else {
            tracing::debug!(id = response.id, "bridge: a response to no request");
            return Ok(());
        };
        match (waiter, response.result) {
            (Waiter::Send(id), Ok(BridgeReply::Message(stored))) => {
                let effects = self.store().write_durable(|w| -> Result<Vec<Effect>> {
                    let effects = upsert_message(w, &stored, false)?;
                    w.bridge_send_done(id)?;
                    Ok(effects)
                })?;
                self.sending.remove(&id);
                self.engine.emit(effects, on);
                self.answer_send(id, None);
            }
            (Waiter::Send(id), result) => {
                let reason = match result {
                    Err(failure) => failure_error(&failure).to_string(),
                    Ok(other) => format!("the phone answered a send with {other:?}"),
                };
                tracing::warn!(message = %id.0, %reason, "bridge: the phone did not send a message");
                self.store().write_durable(|w| w.bridge_send_done(id))?;
                self.sending.remove(&id);
                let chat = self
                    .store()
                    .message(id)?
                    .map(|m| m.chat.0.hyphenated().to_string())
                    .unwrap_or_default();
                on(&Event::SendFailed {
                    id: id.0.hyphenated().to_string(),
                    chat,
                    reason: reason.clone(),
                });
                self.answer_send(id, Some(Error::Bridge(reason)));
            }
            (Waiter::Sync, Ok(_)) => {}
            (Waiter::Sync, Err(failure)) => {
                tracing::warn!(error = %failure_error(&failure), "bridge: a history-sync request refused");
            }
            (Waiter::Page, Ok(BridgeReply::Page(page))) => {
                let fetched = self.store().write_durable(|w| -> Result<usize> {
                    history::import(w, &page.chats, &page.messages)
                })?;
                self.fetched += fetched as u64;
                self.more = page.more;
                if let Goal::Fetch { pages, .. } = self.goal
                    && page.more
                    && self.asked < pages
                {
                    self.ask_page(session)?;
                }
            }
            (Waiter::Page, Ok(other)) => {
                self.fatal = Some(Error::Bridge(format!(
                    "the phone answered a page request with {other:?}"
                )));
            }
            (Waiter::Page, Err(failure)) => self.fatal = Some(failure_error(&failure)),
            (Waiter::Control { after, reply }, Ok(_)) => {
                let answer = self.after_done(after).unwrap_or_else(|e| Reply::error(&e));
                let _ = reply.send(answer);
            }
            (Waiter::Control { reply, .. }, Err(failure)) => {
                let _ = reply.send(Reply::error(&failure_error(&failure)));
            }
        }
        Ok(())
    }

    /// Answers the `send --wait` callers of `id`.
    fn answer_send(&mut self, id: MessageId, error: Option<Error>) {
        let Some(waiters) = self.send_waiters.remove(&id) else {
            return;
        };
        let reply = match error {
            Some(e) => Reply::error(&e),
            None => match self.engine.message_view(id).and_then(|v| to_value(&v)) {
                Ok(value) => Reply::Ok(value),
                Err(e) => Reply::error(&e),
            },
        };
        for waiter in waiters {
            let _ = waiter.send(reply.clone());
        }
    }

    /// What a handed-over request does here once the phone did it.
    fn after_done(&self, after: AfterDone) -> Result<Reply> {
        let store = self.store();
        let value = match after {
            AfterDone::React { message, emoji } => {
                store.write(|w| {
                    w.set_reaction(
                        message,
                        self.cfg.account.as_bytes().as_slice(),
                        &emoji,
                        now_ms(),
                    )
                })?;
                to_value(&self.engine.message_view(message)?)?
            }
            AfterDone::Edit { message, text } => {
                store.write(|w| w.edit_message(message, &text, now_ms()))?;
                to_value(&self.engine.message_view(message)?)?
            }
            AfterDone::Delete { message } => {
                store.write(|w| w.delete_for_everyone(message))?;
                to_value(&self.engine.message_view(message)?)?
            }
            AfterDone::Read { chat } => {
                let marked = store.write(|w| w.mark_chat_read(chat))?.len() as u64;
                to_value(&ReadReport {
                    chat: chat.0.hyphenated().to_string(),
                    marked,
                })?
            }
            AfterDone::Typing { chat, on } => serde_json::json!({ "chat": chat, "on": on }),
        };
        Ok(Reply::Ok(value))
    }

    /// Work handed over by a front end (the desktop app, another `tandem` process).
    fn request(
        &mut self,
        session: Option<&mut DesktopSession>,
        pending: Pending,
        on: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        let Pending { request, reply } = pending;
        tracing::debug!(?request, "bridge: handed-over work");
        if let Request::Send {
            chat,
            text,
            reply: quoted,
            wait,
            ..
        } = &request
        {
            let view = match self.engine.send(chat, text, quoted.as_deref()) {
                Ok(view) => view,
                Err(e) => {
                    let _ = reply.send(Reply::error(&e));
                    return Ok(());
                }
            };
            on(&Event::Message {
                message: view.clone(),
            });
            let id = Uuid::parse_str(&view.id).ok().map(MessageId);
            match (*wait, id) {
                (true, Some(id)) => self.send_waiters.entry(id).or_default().push(reply),
                _ => {
                    let _ =
                        reply.send(to_value(&view).map_or_else(|e| Reply::error(&e), Reply::Ok));
                }
            }
            if let Some(session) = session {
                self.send_outbox(session)?;
            }
            return Ok(());
        }
        if let Request::PhoneStatus = request {
            let _ = reply.send(Reply::Ok(
                serde_json::json!({ "phone_reachable": self.online }),
            ));
            return Ok(());
        }
        if let Request::Connection = request {
            let _ = reply.send(Reply::Ok(serde_json::json!({ "broker": null })));
            return Ok(());
        }
        let prepared = self.prepare(&request);
        let (body, after) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                let _ = reply.send(Reply::error(&e));
                return Ok(());
            }
        };
        let Some(session) = session else {
            let _ = reply.send(Reply::error(&unreachable_phone(
                "this desktop is not connected to the phone now",
            )));
            return Ok(());
        };
        match session.request(body) {
            Ok(id) => {
                self.waiting.insert(id, Waiter::Control { after, reply });
            }
            Err(e) => {
                let _ = reply.send(Reply::error(&bridge_error(&e)));
            }
        }
        Ok(())
    }

    /// The bridge request for handed-over work, and what to do locally once it is done.
    fn prepare(&self, request: &Request) -> Result<(RequestBody, AfterDone)> {
        let store = self.store();
        let message = |text: &str| -> Result<tandem_store::Message> {
            Uuid::parse_str(text.trim())
                .ok()
                .and_then(|u| store.message(MessageId(u)).ok().flatten())
                .ok_or_else(|| Error::MessageNotFound {
                    id: text.to_owned(),
                    chat: String::new(),
                })
        };
        let editable = |text: &str| -> Result<tandem_store::Message> {
            let m = message(text)?;
            if !m.from_me {
                return Err(Error::BadInput(
                    "only messages this account wrote can be edited or deleted".into(),
                ));
            }
            if m.deleted {
                return Err(Error::BadInput("that message was deleted".into()));
            }
            Ok(m)
        };
        Ok(match request {
            Request::React {
                message: target,
                emoji,
            } => {
                let m = message(target)?;
                let emoji = emoji.trim().to_owned();
                (
                    RequestBody::React {
                        chat: WireChat(*m.chat.as_bytes()),
                        message: wire_id(m.id)?,
                        emoji: emoji.clone(),
                    },
                    AfterDone::React {
                        message: m.id,
                        emoji,
                    },
                )
            }
            Request::Edit {
                message: target,
                text,
            } => {
                if text.trim().is_empty() {
                    return Err(Error::BadInput(
                        "an edit needs some text (use delete to remove a message)".into(),
                    ));
                }
                let m = editable(target)?;
                (
                    RequestBody::Edit {
                        chat: WireChat(*m.chat.as_bytes()),
                        message: wire_id(m.id)?,
                        text: text.clone(),
                    },
                    AfterDone::Edit {
                        message: m.id,
                        text: text.clone(),
                    },
                )
            }
            Request::Delete { message: target } => {
                let m = editable(target)?;
                (
                    RequestBody::Delete {
                        chat: WireChat(*m.chat.as_bytes()),
                        message: wire_id(m.id)?,
                    },
                    AfterDone::Delete { message: m.id },
                )
            }
            Request::Read { chat } => {
                let summary = store.chat_by_id_or_name(chat)?;
                let newest = store
                    .page(summary.id, Cursor::Newest, 1)?
                    .first()
                    .map(|m| m.id)
                    .ok_or_else(|| Error::BadInput(format!("{} holds no message", summary.name)))?;
                (
                    RequestBody::MarkRead {
                        chat: WireChat(*summary.id.as_bytes()),
                        up_to: wire_id(newest)?,
                    },
                    AfterDone::Read { chat: summary.id },
                )
            }
            Request::Typing { chat, on } => {
                let summary = store.chat_by_id_or_name(chat)?;
                (
                    RequestBody::Typing {
                        chat: WireChat(*summary.id.as_bytes()),
                        on: *on,
                    },
                    AfterDone::Typing {
                        chat: summary.id.0.hyphenated().to_string(),
                        on: *on,
                    },
                )
            }
            Request::Send { .. }
            | Request::PhoneStatus
            | Request::Connection
            | Request::GroupCreate { .. }
            | Request::GroupAdd { .. }
            | Request::GroupRemove { .. }
            | Request::Publish { .. }
            | Request::ContactAdd { .. } => {
                return Err(Error::BadInput(
                    "a desktop in bridge mode cannot do this; do it on the phone".into(),
                ));
            }
        })
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::BadInput(format!("cannot encode a reply: {e}")))
}

#[cfg(test)]
#[path = "bridge_client_tests.rs"]
mod tests;

//! What the shell pushes to the UI: the [`AppEvent`]s, the [`Hub`] that sends them through the
//! channel the UI handed to `subscribe` (the newest one), keeps the connection state, and
//! throttles `chats_changed` ([`Throttle`], sans-I/O, time passed in).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tandem_engine::Event;
use tauri::ipc::Channel;

use crate::settings::Settings;

/// The least time between two `chats_changed` events.
pub const CHATS_CHANGED_EVERY: Duration = Duration::from_millis(250);

/// How this device is connected, as the UI's banner shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// Not linked to an account: the link screen.
    Unlinked,
    /// Linked; the session is starting and has not been online yet.
    Connecting,
    /// The session is connected to the broker.
    Online,
    /// The broker cannot be reached; the local history can still be read.
    Offline,
}

/// An event of the shell's own (the engine's are forwarded as they are, see [`AppEvent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ShellEvent {
    /// A pairing code to show (replacing the previous one).
    Code {
        /// The link the code holds.
        link: String,
        /// The code as an SVG document (dark modules on white).
        svg: String,
        /// 0 for the first code, then 1, 2...
        index: u32,
        /// When the phone stops accepting it (ms).
        expires_at: i64,
        /// When it was shown (ms).
        issued_at: i64,
    },
    /// Linking ended without a link.
    LinkFailed {
        /// `expired` when the codes ran out, else the engine's error kind.
        kind: String,
        /// One sentence for people.
        message: String,
    },
    /// The connection state changed.
    Connection {
        /// The new state.
        state: Connection,
        /// Why (for `offline`).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The chat list should be read again (new chats, counts, previews).
    ChatsChanged,
    /// The phone removed this device; its data is erased.
    Unlinked,
    /// An export is running: `done` of `total` messages written.
    ExportProgress {
        /// Messages written.
        done: u64,
        /// Messages to write.
        total: u64,
    },
    /// The settings changed.
    Settings {
        /// The settings now.
        settings: Settings,
    },
}

/// One object tagged by `event`: an engine event as the engine serializes it, or one of the
/// shell's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AppEvent {
    /// Forwarded from the engine.
    Engine(Event),
    /// The shell's own.
    Shell(ShellEvent),
}

impl From<ShellEvent> for AppEvent {
    fn from(event: ShellEvent) -> Self {
        Self::Shell(event)
    }
}

/// What one engine event becomes for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The event to send, if any.
    pub event: Option<AppEvent>,
    /// The new connection state, if it changed.
    pub connection: Option<(Connection, Option<String>)>,
    /// Whether the chat list changed.
    pub chats_changed: bool,
}

/// Maps an engine event (other than `Code`, which the link task draws itself) for the UI:
/// `online`/`offline` become the connection state, phone-side and internal events are dropped,
/// the rest pass as they are.
#[must_use]
pub fn map_engine_event(event: &Event) -> Mapped {
    let forward = |chats_changed| Mapped {
        event: Some(AppEvent::Engine(event.clone())),
        connection: None,
        chats_changed,
    };
    match event {
        Event::Online { .. } => Mapped {
            event: None,
            connection: Some((Connection::Online, None)),
            chats_changed: false,
        },
        Event::Offline { reason } => Mapped {
            event: None,
            connection: Some((Connection::Offline, Some(reason.clone()))),
            chats_changed: false,
        },
        Event::Message { .. }
        | Event::Update { .. }
        | Event::Receipt { .. }
        | Event::Group { .. }
        | Event::Contact { .. }
        | Event::SendFailed { .. }
        | Event::Progress { .. }
        | Event::Synced { .. } => forward(true),
        // Read, muted, pinned or archived elsewhere: the chat list shows it.
        Event::ChatChanged { .. } => Mapped {
            event: None,
            connection: None,
            chats_changed: true,
        },
        Event::Refused { .. }
        | Event::Linked { .. }
        | Event::Typing { .. }
        | Event::Presence { .. }
        | Event::Devices { .. }
        | Event::PhoneDevice { .. } => forward(false),
        // `Code` is drawn by the link task; the rest are the phone's or internal.
        Event::Code { .. }
        | Event::Device { .. }
        | Event::DeviceLinked { .. }
        | Event::Waiting { .. }
        | Event::Serving { .. }
        | Event::BridgeListening { .. } => Mapped {
            event: None,
            connection: None,
            chats_changed: false,
        },
    }
}

/// When to send `chats_changed`: at once when the last one went out long enough ago, else once
/// at the end of the interval (a trailing one, so the last change is never lost). Sans-I/O: the
/// caller passes the time and arms the timer.
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    armed: bool,
}

/// What to do about one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poke {
    /// Send now.
    Now,
    /// Arm a timer for this instant and call [`Throttle::fire`] then.
    At(Instant),
    /// A timer is armed already; it covers this change.
    Covered,
}

impl Throttle {
    /// At most one event per `every`.
    #[must_use]
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            armed: false,
        }
    }

    /// Something changed at `now`.
    pub fn poke(&mut self, now: Instant) -> Poke {
        if self.armed {
            return Poke::Covered;
        }
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.armed = true;
                Poke::At(last + self.every)
            }
            _ => {
                self.last = Some(now);
                Poke::Now
            }
        }
    }

    /// The armed timer went off at `now`: send the trailing event.
    pub fn fire(&mut self, now: Instant) {
        self.armed = false;
        self.last = Some(now);
    }
}

/// Something that wants to see every event (the desktop's notifications and tray).
pub type Listener = Box<dyn Fn(&AppEvent) + Send + Sync>;

/// Sends events to the UI's newest channel and to the shell's listeners; keeps the connection
/// state. Cloned freely (one shared inside).
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    channel: Mutex<Option<Channel<AppEvent>>>,
    connection: Mutex<Connection>,
    throttle: Mutex<Throttle>,
    listeners: Mutex<Vec<Arc<Listener>>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connection", &self.connection())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// A hub with no channel yet, in connection state `connection`.
    #[must_use]
    pub fn new(connection: Connection) -> Self {
        Self {
            inner: Arc::new(HubInner {
                channel: Mutex::new(None),
                connection: Mutex::new(connection),
                throttle: Mutex::new(Throttle::new(CHATS_CHANGED_EVERY)),
                listeners: Mutex::new(Vec::new()),
            }),
        }
    }

    /// From now on, events go to `channel` (the previous one is dropped: a reloaded UI).
    pub fn subscribe(&self, channel: Channel<AppEvent>) {
        *lock(&self.inner.channel) = Some(channel);
    }

    /// Adds a listener that sees every event sent from now on.
    pub fn listen(&self, listener: Listener) {
        lock(&self.inner.listeners).push(Arc::new(listener));
    }

    /// Sends `event` to the UI and the listeners.
    pub fn emit(&self, event: impl Into<AppEvent>) {
        let event = event.into();
        let channel = lock(&self.inner.channel).clone();
        if let Some(channel) = channel
            && let Err(e) = channel.send(event.clone())
        {
            // A reloading page: the next `subscribe` brings a new channel and a snapshot.
            tracing::debug!(error = %e, "an event could not reach the UI");
        }
        let listeners = lock(&self.inner.listeners).clone();
        for listener in listeners {
            listener(&event);
        }
    }

    /// The connection state now.
    #[must_use]
    pub fn connection(&self) -> Connection {
        *lock(&self.inner.connection)
    }

    /// Sets the connection state and tells the UI (only when it changed, or with a reason).
    pub fn set_connection(&self, state: Connection, reason: Option<String>) {
        let changed = {
            let mut now = lock(&self.inner.connection);
            let changed = *now != state;
            *now = state;
            changed
        };
        if changed || reason.is_some() {
            self.emit(ShellEvent::Connection { state, reason });
        }
    }

    /// Forwards one event from the engine (mapped by [`map_engine_event`]).
    pub fn engine_event(&self, event: &Event) {
        let mapped = map_engine_event(event);
        if let Some((state, reason)) = mapped.connection {
            self.set_connection(state, reason);
        }
        if let Some(event) = mapped.event {
            self.emit(event);
        }
        if mapped.chats_changed {
            self.chats_changed(Instant::now());
        }
    }

    /// The chat list changed at `now`: sends `chats_changed` now or arms the trailing one.
    pub fn chats_changed(&self, now: Instant) {
        let poke = lock(&self.inner.throttle).poke(now);
        match poke {
            Poke::Now => self.emit(ShellEvent::ChatsChanged),
            Poke::Covered => {}
            Poke::At(at) => {
                let hub = self.clone();
                tauri::async_runtime::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    hub.fire_chats_changed(Instant::now());
                });
            }
        }
    }

    /// The trailing `chats_changed` timer went off at `now`.
    pub fn fire_chats_changed(&self, now: Instant) {
        lock(&self.inner.throttle).fire(now);
        self.emit(ShellEvent::ChatsChanged);
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;

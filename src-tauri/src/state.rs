//! The app's state, shared by every command: the home directory, the engine over it (replaced
//! when logging out), the event hub, the running session and link, the settings. Cheap to
//! clone (one shared inside), so background tasks hold it too.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tandem_engine::{About, Engine, Event, LinkOptions, QrSchedule, Request, Status};

use crate::error::{Error, Result};
use crate::events::{AppEvent, Connection, Hub, ShellEvent};
use crate::link::{CodeDrawer, LinkMode, Linking, failed_event};
use crate::session::{End, Session};
use crate::settings::Settings;
use crate::worker::{Worker, on_own_thread};

/// How long logging out waits for the broker to take the "this device leaves" message.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long logging out waits for commands still using the engine before erasing it.
const ERASE_WAIT: Duration = Duration::from_secs(10);

/// What the command line set.
#[derive(Debug, Clone)]
pub struct Options {
    /// The broker linking meets the phone on (`mqtt://host:port`).
    pub broker: String,
    /// A CA certificate (PEM file) to trust for an `mqtts://` broker.
    pub broker_ca: Option<PathBuf>,
    /// Demo mode: every pairing code is also written to this PNG file.
    pub qr_png: Option<PathBuf>,
    /// Whether the store's key may live in the OS keychain (for the store opened after
    /// logging out).
    pub keychain: tandem_engine::KeychainUse,
}

/// This device for the settings screen: the engine's [`About`] and the home directory.
#[derive(Debug, Clone, Serialize)]
pub struct AboutView {
    /// The engine's part.
    #[serde(flatten)]
    pub about: About,
    /// The home directory.
    pub home: String,
}

/// What the UI needs to draw its first screen (the answer to `subscribe`).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Store and sync.
    pub status: Status,
    /// This device.
    pub about: AboutView,
    /// The settings.
    pub settings: Settings,
    /// The connection state.
    pub connection: Connection,
    /// This computer's name (the device name the link screen suggests).
    pub host_name: String,
}

/// Shared by every command and background task.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    home: PathBuf,
    options: Options,
    engine: RwLock<Option<Arc<Engine>>>,
    hub: Hub,
    session: Session,
    linking: Linking,
    settings: Mutex<Settings>,
    ready: Mutex<BTreeSet<String>>,
    started: Instant,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("home", &self.inner.home)
            .field("options", &self.inner.options)
            .field("hub", &self.inner.hub)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AppState {
    /// The state over `engine` (opened on `home`); `started` is when the process started.
    ///
    /// # Errors
    /// The engine's error when its status cannot be read.
    pub fn new(home: &Path, engine: Engine, options: Options, started: Instant) -> Result<Self> {
        let linked = engine.status()?.linked;
        let settings = Settings::load(home);
        Ok(Self {
            inner: Arc::new(Inner {
                home: home.to_path_buf(),
                options,
                engine: RwLock::new(Some(Arc::new(engine))),
                hub: Hub::new(if linked {
                    Connection::Connecting
                } else {
                    Connection::Unlinked
                }),
                session: Session::default(),
                linking: Linking::default(),
                settings: Mutex::new(settings),
                ready: Mutex::new(BTreeSet::new()),
                started,
            }),
        })
    }

    /// The home directory.
    #[must_use]
    pub fn home(&self) -> &Path {
        &self.inner.home
    }

    /// The event hub.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The engine.
    ///
    /// # Errors
    /// [`Error::Busy`] while logging out replaces it.
    pub fn engine(&self) -> Result<Arc<Engine>> {
        self.inner
            .engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::Busy)
    }

    /// Runs `read` on the engine on a blocking thread (the store answers synchronously).
    ///
    /// # Errors
    /// [`Error::Busy`]; the errors of `read`.
    pub async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> tandem_engine::Result<T> + Send + 'static,
    {
        let engine = self.engine()?;
        tauri::async_runtime::spawn_blocking(move || read(&engine).map_err(Error::from))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Does a command that changes something: through the session when one is connected,
    /// else in the engine directly.
    ///
    /// # Errors
    /// The engine's or the session's error.
    pub async fn request(&self, request: Request) -> Result<serde_json::Value> {
        let engine = self.engine()?;
        self.inner
            .session
            .call(engine, &self.inner.hub, request)
            .await
    }

    /// This device, with the home directory.
    ///
    /// # Errors
    /// The engine's errors.
    pub async fn about(&self) -> Result<AboutView> {
        let about = self.read(Engine::about).await?;
        Ok(AboutView {
            about,
            home: self.inner.home.display().to_string(),
        })
    }

    /// From now on events go to `channel`; returns what the UI shows first.
    ///
    /// # Errors
    /// The engine's errors.
    pub async fn subscribe(&self, channel: tauri::ipc::Channel<AppEvent>) -> Result<Snapshot> {
        // First the channel, so nothing that happens while the snapshot is read is lost.
        self.inner.hub.subscribe(channel);
        Ok(Snapshot {
            status: self.read(Engine::status).await?,
            about: self.about().await?,
            settings: self.settings(),
            connection: self.inner.hub.connection(),
            host_name: host_name(),
        })
    }

    /// The settings now.
    #[must_use]
    pub fn settings(&self) -> Settings {
        *lock(&self.inner.settings)
    }

    /// Saves new settings and tells the UI.
    ///
    /// # Errors
    /// [`Error::File`] when they cannot be saved (they are not changed then).
    pub fn set_settings(&self, settings: Settings) -> Result<Settings> {
        settings.save(&self.inner.home)?;
        *lock(&self.inner.settings) = settings;
        self.inner.hub.emit(ShellEvent::Settings { settings });
        Ok(settings)
    }

    /// The line `ready: WHAT MS` (ms since the process started) the first time the UI says it
    /// is ready with `what`; `None` after that. `what` keeps only `[A-Za-z0-9_-]`.
    pub fn ready_line(&self, what: &str) -> Option<String> {
        let what: String = what
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            .take(64)
            .collect();
        if !lock(&self.inner.ready).insert(what.clone()) {
            return None;
        }
        let ms = self.inner.started.elapsed().as_millis();
        Some(format!("ready: {what} {ms}"))
    }

    /// Prints [`AppState::ready_line`] to stdout (flushed): the cold-start benchmark and the
    /// tests read it.
    ///
    /// # Errors
    /// [`Error::Task`] when stdout cannot be written.
    pub fn ui_ready(&self, what: &str) -> Result<()> {
        let Some(line) = self.ready_line(what) else {
            return Ok(());
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::Task(format!("writing to stdout: {e}")))
    }

    /// Starts the session when the device is linked (else the state is `unlinked`).
    ///
    /// # Errors
    /// The engine's errors; [`Error::Task`] when the session's thread cannot start.
    pub async fn start_session_if_linked(&self) -> Result<()> {
        let engine = self.engine()?;
        if !self.read(Engine::status).await?.linked {
            self.inner.hub.set_connection(Connection::Unlinked, None);
            return Ok(());
        }
        if self.inner.hub.connection() == Connection::Unlinked {
            self.inner.hub.set_connection(Connection::Connecting, None);
        }
        let state = self.clone();
        self.inner
            .session
            .start(
                engine,
                self.inner.hub.clone(),
                Box::new(move |end| {
                    tauri::async_runtime::spawn(async move { state.session_ended(end).await });
                }),
            )
            .await
    }

    async fn session_ended(&self, end: End) {
        match end {
            End::NotLinked => {}
            End::Unlinked => {
                self.inner.hub.emit(ShellEvent::Unlinked);
                if let Err(e) = self.erase().await {
                    tracing::error!(error = %e, "cannot erase this device's data after it was unlinked");
                }
            }
        }
    }

    /// Starts linking (stopping a link that runs) with this device name, in `mode`: as a
    /// device of its own ([`Engine::link`], which goes on with the first sync) or through the
    /// phone ([`Engine::link_bridge`]; the session syncs over the bridge once it runs).
    ///
    /// # Errors
    /// [`Error::BadInput`] on a linked device; a CA file that cannot be read or holds no
    /// certificate; [`Error::Task`].
    pub async fn link_start(&self, name: &str, mode: LinkMode) -> Result<()> {
        let engine = self.engine()?;
        if self.read(Engine::status).await?.linked {
            return Err(Error::BadInput(
                "this computer is already linked to an account; log out first to link it again"
                    .into(),
            ));
        }
        if let Some(ca) = &self.inner.options.broker_ca {
            let pem = std::fs::read(ca).map_err(|source| Error::File {
                action: "read",
                path: ca.clone(),
                source,
            })?;
            engine.trust_broker_ca(&pem)?;
        }
        let name = match name.trim() {
            "" => host_name(),
            name => name.chars().take(64).collect(),
        };
        let options = LinkOptions {
            broker: self.inner.options.broker.clone(),
            name,
            platform: std::env::consts::OS.to_owned(),
            schedule: QrSchedule::default(),
            sync_timeout: None,
        };
        let drawer = CodeDrawer {
            qr_png: self.inner.options.qr_png.clone(),
            current: self.inner.linking.current_code(),
        };
        let state = self.clone();
        self.inner
            .linking
            .restart(move |generation| {
                Worker::spawn("tandem link", move || async move {
                    let hub = state.hub().clone();
                    let result = {
                        let mut on = |event: &Event| match drawer.draw(event, now_ms()) {
                            Some(code) => hub.emit(code),
                            None => hub.engine_event(event),
                        };
                        match mode {
                            LinkMode::MultiDevice => engine.link(&options, &mut on).await.map(drop),
                            LinkMode::Bridge => {
                                engine.link_bridge(&options, &mut on).await.map(drop)
                            }
                        }
                    };
                    drop(engine);
                    // Not on this thread: ending the link stops this worker.
                    tauri::async_runtime::spawn(async move {
                        state.link_ended(generation, result).await;
                    });
                })
            })
            .await
    }

    async fn link_ended(&self, generation: u64, result: tandem_engine::Result<()>) {
        let current = self.inner.linking.finish(generation).await;
        let linked = matches!(self.read(Engine::status).await, Ok(s) if s.linked);
        match result {
            Err(e) if !linked => {
                if current {
                    tracing::info!(error = %e, "linking ended without a link");
                    self.inner.hub.emit(failed_event(&e));
                }
            }
            result => {
                if let Err(e) = result {
                    // Linked, but the first sync stopped (multi-device): the session goes on
                    // with it.
                    tracing::warn!(error = %e, "the first sync stopped; the session continues it");
                }
                if let Err(e) = self.start_session_if_linked().await {
                    tracing::error!(error = %e, "cannot start the session after linking");
                }
            }
        }
    }

    /// Stops linking.
    pub async fn link_cancel(&self) {
        self.inner.linking.cancel().await;
    }

    /// The link text of the code shown now.
    ///
    /// # Errors
    /// [`Error::NoCode`] when none is shown.
    pub fn current_code(&self) -> Result<String> {
        self.inner.linking.code().ok_or(Error::NoCode)
    }

    /// Logs this device out: stops the session, tells the phone it leaves (when the broker can
    /// be reached), erases its data and opens a fresh, unlinked store.
    ///
    /// # Errors
    /// [`Error::BadInput`] on a phone's (primary) home; [`Error::Busy`] when the engine stays
    /// in use; the engine's errors.
    pub async fn logout(&self) -> Result<()> {
        let engine = self.engine()?;
        let status = self.read(Engine::status).await?;
        if status.mode == "primary" {
            return Err(Error::BadInput(
                "this is the phone's own home (the primary device): logging out would erase the \
                 account; use tandem-phone there"
                    .into(),
            ));
        }
        self.inner.linking.cancel().await;
        self.inner.session.stop().await;
        if status.linked {
            let leaving = Arc::clone(&engine);
            match on_own_thread("tandem leave", move || async move {
                leaving.leave(LEAVE_TIMEOUT).await
            })
            .await?
            {
                Ok(true) => tracing::info!("the phone was told that this device leaves"),
                Ok(false) => tracing::warn!(
                    "the broker could not be reached: the phone lists this device until it is removed there"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell the phone that this device leaves")
                }
            }
        }
        drop(engine);
        self.erase().await
    }

    /// Erases this device's data and opens a fresh store in its place (the state becomes
    /// `unlinked`). The session and the link must be stopped; commands still using the
    /// engine are waited for.
    async fn erase(&self) -> Result<()> {
        self.inner.linking.cancel().await;
        self.inner.session.stop().await;
        let taken = self
            .inner
            .engine
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut engine = taken.ok_or(Error::Busy)?;
        let give_up = Instant::now() + ERASE_WAIT;
        let engine = loop {
            match Arc::try_unwrap(engine) {
                Ok(engine) => break engine,
                Err(shared) if Instant::now() < give_up => {
                    engine = shared;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(shared) => {
                    *self
                        .inner
                        .engine
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = Some(shared);
                    return Err(Error::Busy);
                }
            }
        };
        let home = self.inner.home.clone();
        let keychain = self.inner.options.keychain;
        let (erased, fresh) = tauri::async_runtime::spawn_blocking(move || {
            let erased = engine.erase();
            (erased, Engine::open_with(&home, keychain))
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
        let fresh = fresh.map(Arc::new);
        if let Ok(fresh) = &fresh {
            *self
                .inner
                .engine
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(fresh));
        }
        self.inner.hub.set_connection(Connection::Unlinked, None);
        self.inner.hub.chats_changed(Instant::now());
        erased?;
        fresh?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// This computer's name: `$HOSTNAME`, `/etc/hostname` or the kernel's, else "Desktop".
#[must_use]
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().chars().take(64).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "Desktop".to_owned())
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

//! The device's live session: one worker thread running `Engine::run_with` (which reconnects
//! by itself and reports `online`/`offline`), started again with backoff when it fails, and
//! the handle through which the commands that change something reach it. Without a running
//! session (not linked, stopped, between two tries) those commands go to the engine directly,
//! which stores what is sent as queued for the next session.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tandem_engine::{Engine, Event, Reply, Request, SessionHandle};

use crate::error::{Error, Result};
use crate::events::{Connection, Hub};
use crate::worker::Worker;

/// The first wait before the session is started again after a failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// How a session ended for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The phone removed this device: its data must be erased.
    Unlinked,
    /// The device is not linked (any more).
    NotLinked,
}

/// Waits between tries: doubling from [`FIRST_RETRY`] up to [`MAX_RETRY`], back to the start
/// once a try got online.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_RETRY }
    }
}

impl Backoff {
    /// The wait before the next try (and doubles the one after).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_RETRY);
        wait
    }

    /// A try got online: the next failure waits [`FIRST_RETRY`] again.
    pub fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

/// What the app does when a session ends for good (called on the session's thread).
pub type OnEnd = Box<dyn FnOnce(End) + Send>;

/// The running session, if any.
#[derive(Debug, Default)]
pub struct Session {
    worker: tokio::sync::Mutex<Option<Worker>>,
    handle: Arc<Mutex<Option<SessionHandle>>>,
}

impl Session {
    /// Starts the session of `engine` (stopping one that runs); its events go to `hub`.
    ///
    /// # Errors
    /// [`Error::Task`] when its thread cannot start.
    pub async fn start(&self, engine: Arc<Engine>, hub: Hub, on_end: OnEnd) -> Result<()> {
        let mut slot = self.worker.lock().await;
        if let Some(previous) = slot.take() {
            previous.stop().await;
        }
        let handle = Arc::clone(&self.handle);
        *slot = Some(Worker::spawn("tandem session", move || {
            run(engine, hub, handle, on_end)
        })?);
        Ok(())
    }

    /// Stops the session, if one runs, and waits until its thread let go of the engine.
    pub async fn stop(&self) {
        let worker = self.worker.lock().await.take();
        if let Some(worker) = worker {
            worker.stop().await;
        }
        *lock(&self.handle) = None;
    }

    /// Whether a session is running (or waiting to try again).
    #[cfg(test)]
    pub async fn is_running(&self) -> bool {
        let mut slot = self.worker.lock().await;
        slot.as_mut().is_some_and(|w| !w.is_finished())
    }

    /// Does `request` in the running session, or directly in `engine` when none is connected
    /// right now (`hub` then gets the events the session would have sent). Returns the
    /// command's JSON result.
    ///
    /// # Errors
    /// The engine's error for the request; [`Error::Session`] for one the session reported.
    pub async fn call(
        &self,
        engine: Arc<Engine>,
        hub: &Hub,
        request: Request,
    ) -> Result<serde_json::Value> {
        let handle = lock(&self.handle).clone();
        match handle {
            Some(handle) => match handle.call(request).await? {
                Reply::Ok(value) => Ok(value),
                Reply::Error { kind, message } => Err(Error::Session { kind, message }),
            },
            None => {
                let hub = hub.clone();
                tauri::async_runtime::spawn_blocking(move || direct(&engine, &hub, &request))
                    .await
                    .map_err(|e| Error::Task(e.to_string()))?
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::Task(format!("encoding a result: {e}")))
}

/// A request done by the engine itself, with no connection: what is sent is stored queued.
///
/// # Errors
/// The engine's errors; [`Error::BadInput`] for requests the app never makes.
pub fn direct(engine: &Engine, hub: &Hub, request: &Request) -> Result<serde_json::Value> {
    match request {
        Request::Send {
            chat, text, reply, ..
        } => {
            let view = engine.send(chat, text, reply.as_deref())?;
            // As the session does: the UI learns of its own message like of any other.
            hub.engine_event(&Event::Message {
                message: view.clone(),
            });
            to_value(&view)
        }
        Request::React { message, emoji } => {
            let view = engine.react(message, emoji)?;
            hub.engine_event(&Event::Update {
                message: view.clone(),
            });
            to_value(&view)
        }
        Request::Edit { message, text } => {
            let view = engine.edit(message, text)?;
            hub.engine_event(&Event::Update {
                message: view.clone(),
            });
            to_value(&view)
        }
        Request::Delete { message } => {
            let view = engine.delete(message)?;
            hub.engine_event(&Event::Update {
                message: view.clone(),
            });
            to_value(&view)
        }
        Request::Read { chat } => {
            let report = engine.mark_read(chat)?;
            hub.chats_changed(std::time::Instant::now());
            to_value(&report)
        }
        // Typing is never stored: with no connection there is nobody to tell.
        Request::Typing { chat, on } => Ok(serde_json::json!({ "chat": chat, "on": on })),
        other => Err(Error::BadInput(format!(
            "the desktop app does not do {other:?} without a session"
        ))),
    }
}

/// The session's thread: runs the engine's session until it ends for good, starting it again
/// with backoff after failures.
async fn run(
    engine: Arc<Engine>,
    hub: Hub,
    handle: Arc<Mutex<Option<SessionHandle>>>,
    on_end: OnEnd,
) {
    let mut backoff = Backoff::default();
    loop {
        let (session, requests) = tandem_engine::session_channel();
        *lock(&handle) = Some(session.clone());
        let mut online = false;
        let result = {
            let mut on = |event: &Event| {
                if matches!(event, Event::Online { .. }) {
                    online = true;
                }
                hub.engine_event(event);
            };
            engine.run_shared(None, &session, requests, &mut on).await
        };
        *lock(&handle) = None;
        if online {
            backoff.reset();
        }
        let reason = match result {
            Err(e) if e.kind() == "unlinked" => {
                tracing::warn!("the phone unlinked this device");
                on_end(End::Unlinked);
                return;
            }
            Err(e) if matches!(e.kind(), "not_linked" | "no_account") => {
                hub.set_connection(Connection::Unlinked, None);
                on_end(End::NotLinked);
                return;
            }
            Err(e) => e.to_string(),
            Ok(()) => "the session ended".to_owned(),
        };
        let wait = backoff.next_wait();
        tracing::warn!(%reason, retry_in = ?wait, "the session stopped; starting it again");
        hub.set_connection(
            Connection::Offline,
            Some(format!("{reason} (trying again in {} s)", wait.as_secs())),
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_thirty_seconds_and_start_over_once_online() {
        let mut backoff = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| backoff.next_wait().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), FIRST_RETRY);
    }

    #[tokio::test]
    async fn without_a_session_requests_go_to_the_engine_and_the_ui_hears_of_them() {
        let home = tempfile::tempdir().unwrap();
        let engine =
            Arc::new(Engine::open_with(home.path(), tandem_engine::KeychainUse::Off).unwrap());
        let hub = Hub::new(Connection::Unlinked);
        let session = Session::default();
        assert!(!session.is_running().await);
        // Typing needs a connection: with none it is simply not sent.
        let typing = session
            .call(
                Arc::clone(&engine),
                &hub,
                Request::Typing {
                    chat: "Bob".into(),
                    on: true,
                },
            )
            .await
            .unwrap();
        assert_eq!(typing, serde_json::json!({"chat": "Bob", "on": true}));
        // A chat that does not exist is the engine's error, with its kind.
        let err = session
            .call(
                Arc::clone(&engine),
                &hub,
                Request::Send {
                    chat: "Nobody".into(),
                    text: "hi".into(),
                    reply: None,
                    wait: false,
                    id: None,
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), "no_account" | "not_linked" | "not_found"),
            "{}: {err}",
            err.kind()
        );
    }
}

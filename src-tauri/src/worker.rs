//! Threads for the engine's long-running work. The engine's async calls (`run_with`, `link`,
//! `leave`) report through a `&mut dyn FnMut`, so their futures are not `Send` and cannot go to
//! Tauri's shared runtime; each runs on a thread of its own with a single-threaded Tokio
//! runtime. A [`Worker`] can be stopped, and stopping waits until the thread has dropped
//! everything it held (the engine's `Arc` above all: logging out needs the last one).

use std::future::Future;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// A background thread running one future until it ends or is stopped.
#[derive(Debug)]
pub struct Worker {
    stop: Option<oneshot::Sender<()>>,
    /// Says the thread ended; `None` once that was seen.
    done: Option<oneshot::Receiver<()>>,
}

impl Worker {
    /// Starts a thread named `name` that runs the future `make` returns (`make` runs on the
    /// thread, so the future need not be `Send`).
    ///
    /// # Errors
    /// [`Error::Task`] when the thread or its runtime cannot be started.
    pub fn spawn<F, Fut>(name: &str, make: F) -> Result<Self>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let (finished, done) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Task(format!("starting a runtime for {name}: {e}")))?;
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let work = make();
                    tokio::select! {
                        () = work => {}
                        _ = stopped => {}
                    }
                });
                // Tasks the work spawned (its MQTT event loop) end with their runtime.
                drop(runtime);
                let _ = finished.send(());
            })
            .map_err(|e| Error::Task(format!("starting the {name} thread: {e}")))?;
        Ok(Self {
            stop: Some(stop),
            done: Some(done),
        })
    }

    /// Stops the work (if it still runs) and waits until its thread has dropped all it held.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            // Already ended when the receiver is gone: nothing to stop.
            let _ = stop.send(());
        }
        // An error means the thread ended without saying so (it panicked): it is gone either way.
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }

    /// Whether the work has ended (by itself or stopped).
    #[cfg(test)]
    pub fn is_finished(&mut self) -> bool {
        let Some(done) = &mut self.done else {
            return true;
        };
        if matches!(done.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
            return false;
        }
        self.done = None;
        true
    }
}

/// Runs the future `make` returns on a thread of its own and returns its output.
///
/// # Errors
/// [`Error::Task`] when the thread cannot start or ends without an answer.
pub async fn on_own_thread<T, F, Fut>(name: &str, make: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let (answer, answered) = oneshot::channel();
    let worker = Worker::spawn(name, move || async move {
        let _ = answer.send(make().await);
    })?;
    let result = answered
        .await
        .map_err(|_| Error::Task(format!("{name} ended without an answer")));
    worker.stop().await;
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn stopping_a_worker_waits_until_it_dropped_what_it_held() {
        let held = Arc::new(());
        let clone = Arc::clone(&held);
        let worker = Worker::spawn("test forever", move || async move {
            let _keep = clone;
            std::future::pending::<()>().await;
        })
        .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(Arc::strong_count(&held), 2);
        worker.stop().await;
        assert_eq!(Arc::strong_count(&held), 1);
    }

    #[tokio::test]
    async fn a_worker_that_ended_by_itself_says_so_and_stops_at_once() {
        let mut worker = Worker::spawn("test short", || async {}).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !worker.is_finished() {
            assert!(std::time::Instant::now() < deadline, "never finished");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        worker.stop().await;
    }

    #[tokio::test]
    async fn a_future_that_is_not_send_runs_on_its_own_thread() {
        let value = on_own_thread("test answer", || async {
            // An `Rc` held across an await makes the future `!Send`.
            let shared = std::rc::Rc::new(20);
            tokio::task::yield_now().await;
            *shared + 22
        })
        .await
        .unwrap();
        assert_eq!(value, 42);
    }
}

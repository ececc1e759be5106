//! The app's one piece of state: the engine over this device's `--home`.

use std::sync::Arc;

use tandem_engine::Engine;

/// Shared by every command; the engine does its own locking.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine opened on the device's home directory.
    pub engine: Arc<Engine>,
}

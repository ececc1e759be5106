//! The Tandem engine: the running client that `tandem-phone`, `tandem` and the desktop app
//! share. It opens a device's home directory (the encrypted store inside), creates the account
//! on the primary, imports chat exports and synthetic history, and answers the read commands
//! (`status`, `chats`, `history`, `search`) with serializable views.
//!
//! Front ends parse arguments and print; everything they show comes from here.

mod account;
mod bridge_client;
mod bridge_server;
mod contacts;
mod control;
mod desktop;
mod error;
mod export;
mod groups;
mod history;
mod home;
mod identity;
mod import;
mod live;
mod messaging;
mod mqtt;
mod phone;
mod read;
mod replay;
pub mod synth;
mod views;

use std::path::{Path, PathBuf};

pub use tandem_store::KeychainUse;
use tandem_store::{KeySource, Store};

pub use account::AccountCreated;
pub use bridge_server::BridgeListener;
pub use contacts::ContactView;
pub use control::{
    Publication, Reply, Request, SOCKET_FILE, SessionHandle, SessionRequests, session_channel,
    socket_path,
};
pub use desktop::{FetchReport, LinkOptions, SyncReport};
pub use error::{Error, Result};
pub use export::{EXPORT_VERSION, ExportFormat, ExportReport};
pub use history::{PlanBound, RECENT_PER_CHAT, synced_message};
pub use home::{Role, default_home};
pub use import::ImportOptions;
pub use messaging::ReadReport;
pub use phone::ServeUntil;
pub use read::Page;
pub use replay::StoreReplayGuard;
pub use tandem_proto::link::{LinkMode, PairingLink};
pub use tandem_proto::pairing::QrSchedule;
pub use views::{
    About, BridgeLinkReport, ChatView, DeviceView, Event, GenerateReport, ImportReport,
    LastMessage, MessageView, ReactionView, SearchHitView, Status, SyncView, UnlinkReport,
};

/// One device's engine over its home directory.
#[derive(Debug)]
pub struct Engine {
    home: PathBuf,
    keychain: KeychainUse,
    key_source: KeySource,
    store: Store,
}

impl Engine {
    /// Opens (creating if needed) the device's home directory and its encrypted store.
    pub fn open(home: &Path) -> Result<Self> {
        Self::open_with(home, KeychainUse::from_env())
    }

    /// [`Engine::open`], saying whether the OS keychain may hold the store key
    /// ([`KeychainUse::Off`]: always the 0600 key file).
    pub fn open_with(home: &Path, keychain: KeychainUse) -> Result<Self> {
        create_private_dir(home)?;
        let (store, key_source) = Store::open_in_home_with(home, keychain)?;
        Ok(Self {
            home: home.to_path_buf(),
            keychain,
            key_source,
            store,
        })
    }

    /// Erases this device's store and its key (for a device the phone unlinked): the database
    /// files and the key file or keychain entry. The home directory itself stays.
    ///
    /// # Errors
    /// [`Error::Open`] naming a file that could not be removed.
    pub fn erase(self) -> Result<()> {
        self.store.erase(&self.home, self.keychain)?;
        Ok(())
    }

    /// The home directory this engine runs in.
    #[must_use]
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Where the store's key is kept (OS keychain or key file).
    #[must_use]
    pub fn key_source(&self) -> KeySource {
        self.key_source
    }

    /// The store (thread-safe: it serializes writes and reads on its own connections).
    fn store(&self) -> &Store {
        &self.store
    }
}

/// Creates `dir` (and parents) readable by its owner only.
fn create_private_dir(dir: &Path) -> Result<()> {
    let fail = |source| Error::Home {
        path: dir.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map_err(fail)
    }
}

/// Milliseconds since the Unix epoch, from the system clock (the engine's one clock).
fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

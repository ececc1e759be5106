//! The engine's one error type. Every variant reads as one plain sentence and has a stable
//! [`Error::kind`] that front ends branch on (the desktop app sends `{kind, message}`).

use std::path::PathBuf;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No platform data directory could be found (no home directory).
    #[error("no data directory found for Tandem; pass --home DIR or set TANDEM_HOME")]
    NoHome,
    /// The home directory could not be created or read.
    #[error("cannot use {}: {source}", path.display())]
    Home {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened (wrong key, not a database, a newer schema...).
    #[error(transparent)]
    Open(#[from] tandem_store::OpenError),
    /// A store operation failed, or a chat or message was not found in it.
    #[error(transparent)]
    Store(#[from] tandem_store::Error),
    /// An export file was refused.
    #[error(transparent)]
    Import(#[from] tandem_import::Error),
    /// A cryptographic operation failed (a key could not be made or read).
    #[error(transparent)]
    Crypto(#[from] tandem_crypto::Error),
    /// A message id could not be made.
    #[error(transparent)]
    Proto(#[from] tandem_proto::Error),
    /// A message id that is not in the chat asked about.
    #[error("no message {id} in chat {chat}")]
    MessageNotFound {
        /// The message id as given.
        id: String,
        /// The chat as given.
        chat: String,
    },
    /// `init` on a device that already has an account.
    #[error("this device already has an account ({account}); refusing to overwrite it")]
    AlreadyInitialised {
        /// The existing account id.
        account: String,
    },
    /// A command that needs the account, on a device without one.
    #[error("this device has no account yet: run `tandem-phone init --name NAME` first")]
    NoAccount,
    /// A value given by the user is not acceptable.
    #[error("{0}")]
    BadInput(String),
    /// A stored identity value is damaged.
    #[error("the stored {what} is damaged: {reason}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A command for a linked device, on a device that is not linked.
    #[error(
        "this device is not linked: run `tandem link --broker URL` and scan the code with the phone"
    )]
    NotLinked,
    /// `link` on a device that already belongs to an account.
    #[error("this device is already linked to account {account}; refusing to link it again")]
    AlreadyLinked {
        /// The account.
        account: String,
    },
    /// The phone removed this device from the account.
    #[error("this device was unlinked by the phone; its keys and local data are erased")]
    Unlinked,
    /// This device answered a link that the phone never confirmed.
    #[error("the phone did not confirm the link of this device; run `tandem link` again")]
    LinkUnconfirmed,
    /// The user said no.
    #[error("link cancelled")]
    Cancelled,
    /// A pairing link (QR code) was refused.
    #[error("bad link: {0}")]
    Link(#[from] tandem_proto::link::LinkError),
    /// Pairing ended without a link.
    #[error(transparent)]
    Pairing(#[from] tandem_proto::pairing::PairingError),
    /// A history-sync message could not be made.
    #[error(transparent)]
    Sync(#[from] tandem_proto::sync::SyncError),
    /// The history sync ended without the phone's whole history.
    #[error("history sync failed: {0}")]
    SyncFailed(String),
    /// The history sync did not finish in time.
    #[error(
        "sync not finished: {done} of {total} messages so far (the phone may be offline); run `tandem sync` again"
    )]
    SyncTimeout {
        /// Messages synced.
        done: u64,
        /// Messages planned.
        total: u64,
    },
    /// The broker could not be reached or refused a request.
    #[error("broker {url}: {reason}")]
    Broker {
        /// The broker.
        url: String,
        /// Why.
        reason: String,
    },
    /// The phone did not answer a request that needs it online.
    #[error(
        "the phone did not answer within {seconds} s; it must be online (`tandem-phone run`) to fetch older messages"
    )]
    PhoneOffline {
        /// How long was waited.
        seconds: u64,
    },
    /// Another process runs this device's session (`run`, the desktop app): a second
    /// connection as the same device would take it away.
    #[error(
        "a running session (`run` or the desktop app) holds this device's connection and does \
         this by itself; stop it first to {action} from here"
    )]
    SessionRunning {
        /// What was asked.
        action: &'static str,
    },
    /// Internal: a transaction rolled back on purpose (never returned to callers).
    #[error("skipped")]
    Skip,
    /// A bridge-mode desktop cannot reach the phone (not running, another network, a refused
    /// handshake).
    #[error("the phone is not reachable: {reason}")]
    PhoneUnreachable {
        /// Why.
        reason: String,
    },
    /// The bridge to the phone failed: a protocol error, or the phone refused a request.
    #[error("bridge: {0}")]
    Bridge(String),
    /// The system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

impl Error {
    /// A stable, machine-readable kind for front ends.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoHome | Self::Home { .. } => "home",
            Self::Open(_) => "store_open",
            Self::Store(tandem_store::Error::ChatNotFound { .. })
            | Self::MessageNotFound { .. } => "not_found",
            Self::Store(tandem_store::Error::AmbiguousChat { .. }) => "ambiguous",
            Self::Store(_) => "store",
            Self::Import(_) => "import",
            Self::Crypto(_) | Self::Proto(_) | Self::Random(_) => "crypto",
            Self::AlreadyInitialised { .. } => "already_initialised",
            Self::NoAccount => "no_account",
            Self::BadInput(_) => "bad_input",
            Self::Corrupt { .. } => "corrupt",
            Self::NotLinked => "not_linked",
            Self::AlreadyLinked { .. } => "already_linked",
            Self::Unlinked => "unlinked",
            Self::Cancelled => "cancelled",
            Self::LinkUnconfirmed => "link_unconfirmed",
            Self::Link(_) => "bad_link",
            Self::Pairing(_) => "pairing",
            Self::Sync(_) | Self::SyncFailed(_) => "sync",
            Self::SyncTimeout { .. } => "timeout",
            Self::Broker { .. } => "broker",
            Self::PhoneOffline { .. } => "phone_offline",
            Self::SessionRunning { .. } => "session_running",
            Self::PhoneUnreachable { .. } => "phone_unreachable",
            Self::Bridge(_) => "bridge",
            Self::Skip => "internal",
        }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
        }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

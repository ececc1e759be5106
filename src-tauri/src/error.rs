//! The shell's one error type, serialized on purpose for the UI: `{"kind": "...", "message":
//! "..."}`. A command's promise rejects with it; `kind` is stable to branch on, `message` is one
//! sentence for people.

use std::path::PathBuf;

use serde::ser::SerializeStruct as _;

/// Everything a command or a background task of the shell can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused or failed (its [`tandem_engine::Error::kind`] is the kind).
    #[error(transparent)]
    Engine(#[from] tandem_engine::Error),
    /// The running session answered a request with an error.
    #[error("{message}")]
    Session {
        /// The engine's kind, as the session reported it.
        kind: String,
        /// The engine's message.
        message: String,
    },
    /// A QR code could not be drawn or saved.
    #[error(transparent)]
    Qr(#[from] tandem_qr::Error),
    /// A file of the shell (settings, an export, a CA file) could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was being done (`read`, `write`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `save_qr` while no code is shown.
    #[error("no QR code is shown right now; start linking first")]
    NoCode,
    /// A command that needs an unlinked device, on a linked one (or the other way round).
    #[error("{0}")]
    BadInput(String),
    /// The engine is being replaced (logging out) and cannot answer for a moment.
    #[error("Tandem is logging out of this device; try again in a moment")]
    Busy,
    /// A background thread or task of the shell could not start or ended abnormally.
    #[error("an internal task failed: {0}")]
    Task(String),
}

impl Error {
    /// A stable, machine-readable kind for the UI.
    #[must_use]
    pub fn kind(&self) -> &str {
        match self {
            Self::Engine(e) => e.kind(),
            Self::Session { kind, .. } => kind,
            Self::Qr(_) => "qr",
            Self::File { .. } => "file",
            Self::NoCode => "no_code",
            Self::BadInput(_) => "bad_input",
            Self::Busy => "busy",
            Self::Task(_) => "internal",
        }
    }
}

impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Error", 2)?;
        s.serialize_field("kind", self.kind())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

/// The shell's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

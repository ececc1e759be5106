//! The one error type of the test harness: what can go wrong starting brokers, finding and
//! running binaries, and driving MQTT probe clients.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the harness can fail at, with what a test author needs to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `mosquitto` binary was not found and `TANDEM_SKIP_MOSQUITTO=1` is not set.
    #[error(
        "mosquitto is not installed (looked in {searched}): install it \
         (`apt-get install mosquitto`), point TANDEM_MOSQUITTO at the binary, or set \
         TANDEM_SKIP_MOSQUITTO=1 to skip the Mosquitto tests"
    )]
    MosquittoMissing {
        /// Where it was looked for.
        searched: String,
    },

    /// The `nats-server` binary was not found (the cluster tests need it).
    #[error(
        "nats-server is not installed (looked in {searched}): install it \
         (`apt-get install nats-server`) or point TANDEM_NATS_SERVER at the binary"
    )]
    NatsMissing {
        /// Where it was looked for.
        searched: String,
    },

    /// A broker process or spawned binary exited while it should be running.
    #[error("{what} exited early with {status}; its log:\n{log}")]
    Exited {
        /// Which process.
        what: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its log (or the end of it).
        log: String,
    },

    /// A broker did not accept TCP connections in time.
    #[error("{what} did not accept connections on {addr} within {waited:?}; its log:\n{log}")]
    NotReady {
        /// Which broker.
        what: String,
        /// The address probed.
        addr: SocketAddr,
        /// How long we waited.
        waited: Duration,
        /// Its log (or the end of it).
        log: String,
    },

    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path or program.
        what: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// Building the workspace binaries failed.
    #[error("building the workspace binaries failed: {reason}")]
    Build {
        /// The command line and its exit status or spawn error.
        reason: String,
    },

    /// A binary is still missing after building.
    #[error("binary `{name}` not found at {path} even after building the workspace binaries")]
    BinaryMissing {
        /// The binary's name.
        name: String,
        /// Where it was expected.
        path: PathBuf,
    },

    /// A system program the app tests need is not installed.
    #[error(
        "`{program}` is not installed (not found on PATH): install the Debian package \
         `{package}` (.ci/setup installs it)"
    )]
    ProgramMissing {
        /// The program looked for.
        program: String,
        /// The Debian package that provides it.
        package: String,
    },

    /// A WebDriver command to the app's window failed (the session, a script, a click).
    #[error("{what}: {reason}\n--- the app's output so far\n{log}")]
    WebDriver {
        /// What was being done.
        what: String,
        /// The WebDriver client's or server's reason.
        reason: String,
        /// What the WebDriver server and the app printed so far.
        log: String,
    },

    /// The app's window did not show something in time.
    #[error(
        "the app did not show {what} within {waited:?}\n--- the page\n{page}\n\
         --- the app's output so far\n{log}"
    )]
    NotShown {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
        /// The page at that moment: its `data-testid`s and the start of its text.
        page: String,
        /// What the WebDriver server and the app printed so far.
        log: String,
    },

    /// The embedded broker or a client setting failed.
    #[error(transparent)]
    Net(#[from] tandem_net::Error),

    /// An MQTT probe client failed: refused connection, refused subscription, lost
    /// connection.
    #[error("MQTT client `{client_id}`: {reason}")]
    Mqtt {
        /// The probe's client id.
        client_id: String,
        /// What went wrong.
        reason: String,
    },

    /// Something expected did not happen in time.
    #[error("MQTT client `{client_id}`: timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// The probe's client id.
        client_id: String,
        /// What it waited for.
        what: String,
        /// How long.
        waited: Duration,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with what was being done.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

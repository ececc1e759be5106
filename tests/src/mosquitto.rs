//! A real Mosquitto broker for tests: its own config file and data in a temporary directory,
//! a free port on 127.0.0.1, restart with persistence, stopped on drop.
//!
//! The rule when `mosquitto` is missing: [`Mosquitto::start`] fails with
//! [`Error::MosquittoMissing`], which says how to install it. [`Mosquitto::start_or_skip`]
//! returns `Ok(None)` instead only when `TANDEM_SKIP_MOSQUITTO=1` is set, and prints why. A
//! conformance suite that silently skips proves nothing, so skipping is opt-in.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tandem_net::BrokerUrl;
use tempfile::TempDir;

use crate::error::{Error, Result, io};

/// Environment variable naming the `mosquitto` binary to use.
pub const MOSQUITTO_ENV: &str = "TANDEM_MOSQUITTO";

/// Environment variable that, set to `1`, lets tests skip when Mosquitto is not installed.
pub const SKIP_ENV: &str = "TANDEM_SKIP_MOSQUITTO";

/// How long start and restart wait for the port to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a graceful stop (SIGTERM, which saves persistence) may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How to run the broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MosquittoOptions {
    /// Keep sessions, queued messages and retained messages on disk across
    /// [`Mosquitto::restart`] (`persistence true` in the temporary directory).
    pub persistence: bool,
}

impl MosquittoOptions {
    /// Options with persistence on.
    #[must_use]
    pub fn persistent() -> Self {
        Self { persistence: true }
    }
}

/// A running `mosquitto` process. Dropping it kills the process and waits for it.
#[derive(Debug)]
pub struct Mosquitto {
    binary: PathBuf,
    dir: TempDir,
    config: PathBuf,
    addr: SocketAddr,
    url: BrokerUrl,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts Mosquitto on a free 127.0.0.1 port and returns once the port accepts
    /// connections.
    ///
    /// # Errors
    /// [`Error::MosquittoMissing`] if the binary is not found; [`Error::Io`],
    /// [`Error::Exited`] or [`Error::NotReady`] if it cannot be started.
    pub fn start(options: MosquittoOptions) -> Result<Self> {
        let binary = find_binary()?;
        // A port found by binding port 0 can be taken again before mosquitto binds it: retry
        // with a fresh port (and directory) when that happens.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = tempfile::Builder::new()
                .prefix("tandem-mosquitto-")
                .tempdir()
                .map_err(io("create a temporary directory for mosquitto"))?;
            let config = dir.path().join("mosquitto.conf");
            let addr = free_port()?;
            let text = config_text(addr, dir.path(), options.persistence, running_as_root());
            std::fs::write(&config, text).map_err(io(format!("write {}", config.display())))?;
            let mut broker = Self {
                binary: binary.clone(),
                dir,
                config,
                addr,
                url: BrokerUrl::from_socket_addr(addr)?,
                child: None,
            };
            match broker.spawn_and_wait() {
                Ok(()) => return Ok(broker),
                Err(Error::Exited { log, .. }) if attempt < 3 && log.contains("in use") => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Like [`Mosquitto::start`], but when Mosquitto is not installed and
    /// `TANDEM_SKIP_MOSQUITTO=1` is set, prints why and returns `Ok(None)`.
    ///
    /// # Errors
    /// As [`Mosquitto::start`].
    pub fn start_or_skip(options: MosquittoOptions) -> Result<Option<Self>> {
        skip_if_missing(Self::start(options), skip_requested())
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://127.0.0.1:port`.
    #[must_use]
    pub fn url(&self) -> &BrokerUrl {
        &self.url
    }

    /// The temporary directory holding the config, the log and the persistence file.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// The process id, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the broker gracefully (SIGTERM: with persistence on it writes its database) and
    /// starts it again on the same port with the same files.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be signalled or restarted, [`Error::Exited`] or
    /// [`Error::NotReady`] if the new process does not come up.
    pub fn restart(&mut self) -> Result<()> {
        self.stop_gracefully()?;
        self.spawn_and_wait()
    }

    fn spawn_and_wait(&mut self) -> Result<()> {
        let log_path = self.dir.path().join("mosquitto.log");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io(format!("start {}", self.binary.display())))?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child
                    .try_wait()
                    .map_err(io("check on the mosquitto process"))?
            {
                self.child = None;
                return Err(Error::Exited {
                    what: format!("mosquitto on {}", self.addr),
                    status,
                    log: tail(&std::fs::read_to_string(&log_path).unwrap_or_default()),
                });
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady {
                    what: "mosquitto".to_owned(),
                    addr: self.addr,
                    waited: READY_TIMEOUT,
                    log: tail(&self.log()),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then wait; SIGKILL if it takes longer than [`STOP_TIMEOUT`].
    fn stop_gracefully(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .map_err(io("run `kill -TERM` on mosquitto"))?;
        if !status.success() {
            // Already gone (it died): reap it below.
            let _ = child.kill();
        }
        let started = Instant::now();
        loop {
            if child
                .try_wait()
                .map_err(io("wait for mosquitto to stop"))?
                .is_some()
            {
                return Ok(());
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                child.wait().map_err(io("wait for mosquitto to stop"))?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `TANDEM_SKIP_MOSQUITTO=1` is set.
#[must_use]
pub fn skip_requested() -> bool {
    std::env::var(SKIP_ENV).is_ok_and(|v| v == "1")
}

/// The skip rule: a missing Mosquitto becomes `Ok(None)` only when skipping was asked for.
fn skip_if_missing<T>(started: Result<T>, skip: bool) -> Result<Option<T>> {
    match started {
        Err(e @ Error::MosquittoMissing { .. }) if skip => {
            eprintln!("skipping a Mosquitto test because {SKIP_ENV}=1: {e}");
            Ok(None)
        }
        other => other.map(Some),
    }
}

/// The `mosquitto` binary: `$TANDEM_MOSQUITTO`, else the first found in `$PATH`,
/// `/usr/sbin`, `/usr/local/sbin`, `/sbin`.
fn find_binary() -> Result<PathBuf> {
    find_binary_in(std::env::var_os(MOSQUITTO_ENV), std::env::var_os("PATH"))
}

fn find_binary_in(explicit: Option<OsString>, path: Option<OsString>) -> Result<PathBuf> {
    if let Some(explicit) = explicit {
        let explicit = PathBuf::from(explicit);
        return if explicit.is_file() {
            Ok(explicit)
        } else {
            Err(Error::MosquittoMissing {
                searched: format!("{MOSQUITTO_ENV}={}", explicit.display()),
            })
        };
    }
    let mut dirs: Vec<PathBuf> = path
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    if let Some(found) = dirs
        .iter()
        .map(|dir| dir.join("mosquitto"))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    let searched = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::MosquittoMissing { searched })
}

/// A free 127.0.0.1 port, found by binding port 0 and letting go.
fn free_port() -> Result<SocketAddr> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(io("bind 127.0.0.1:0 to find a free port"))?;
    listener
        .local_addr()
        .map_err(io("read the port bound on 127.0.0.1:0"))
}

/// Mosquitto run as root drops to the `mosquitto` user unless told `user root`.
fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The config file: one listener, anonymous access, a log file, persistence when asked.
fn config_text(addr: SocketAddr, dir: &Path, persistence: bool, as_root: bool) -> String {
    let mut text = String::from("# written by tandem-tests\n");
    if as_root {
        text.push_str("user root\n");
    }
    let _ = writeln!(text, "listener {} {}", addr.port(), addr.ip());
    text.push_str("allow_anonymous true\n");
    let _ = writeln!(
        text,
        "log_dest file {}",
        dir.join("mosquitto.log").display()
    );
    text.push_str("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n");
    text.push_str("connection_messages true\n");
    if persistence {
        text.push_str("persistence true\n");
        // Mosquitto wants the trailing slash on the directory.
        let _ = writeln!(text, "persistence_location {}/", dir.display());
    } else {
        text.push_str("persistence false\n");
    }
    text
}

/// The last lines of a log, enough to see why something failed.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(30);
    lines.get(start..).unwrap_or_default().join("\n")
}

#[cfg(test)]
#[path = "mosquitto_tests.rs"]
mod tests;

//! A real Mosquitto broker for tests: its own config file and data in a temporary directory,
//! a free port on 127.0.0.1, restart with persistence, stopped on drop.
//!
//! Two flavours:
//! - [`Mosquitto`]: one plain, anonymous listener (the conformance suite).
//! - [`DeployedMosquitto`]: the deployment shipped in `docs/broker/`, two Mosquitto processes
//!   as an operator runs them: the device broker (`mosquitto.conf`: TLS, per-device passwords,
//!   per-device ACLs) and the pairing broker (`mosquitto-pairing.conf`: TLS, anonymous,
//!   pairing topics only). Both files are read from the repository and adapted only in ports
//!   and paths, with certificates made by the shipped `make-certs.sh` and passwords hashed by
//!   `mosquitto_passwd -U` as the README says.
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

use tandem_net::{BrokerUrl, Credentials, Scheme, TlsTrust};
use tempfile::TempDir;

use crate::error::{Error, Result, io};

/// Environment variable naming the `mosquitto` binary to use.
pub const MOSQUITTO_ENV: &str = "TANDEM_MOSQUITTO";

/// Environment variable naming the `mosquitto_passwd` binary to use.
pub const MOSQUITTO_PASSWD_ENV: &str = "TANDEM_MOSQUITTO_PASSWD";

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
    // Declared before `dir`: the process is killed before its directory is removed.
    process: Process,
    url: BrokerUrl,
    dir: TempDir,
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
            let mut process = Process {
                what: "mosquitto".to_owned(),
                binary: binary.clone(),
                config,
                log: dir.path().join("mosquitto.log"),
                addr,
                child: None,
            };
            match process.spawn_and_wait() {
                Ok(()) => {
                    return Ok(Self {
                        process,
                        url: BrokerUrl::from_socket_addr(addr)?,
                        dir,
                    });
                }
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
        self.process.addr
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
        self.process.log()
    }

    /// The process id, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Stops the broker gracefully (SIGTERM: with persistence on it writes its database) and
    /// starts it again on the same port with the same files.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be signalled or restarted, [`Error::Exited`] or
    /// [`Error::NotReady`] if the new process does not come up.
    pub fn restart(&mut self) -> Result<()> {
        self.process.stop_gracefully()?;
        self.process.spawn_and_wait()
    }
}

/// One `mosquitto` process: its config file, its log file, the one address it listens on.
/// Dropping it kills the process and waits for it.
#[derive(Debug)]
pub(crate) struct Process {
    /// What error messages call it ("mosquitto", "the pairing mosquitto").
    pub(crate) what: String,
    pub(crate) binary: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) addr: SocketAddr,
    pub(crate) child: Option<Child>,
}

impl Process {
    /// Its log so far (empty before it writes one).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts it and returns once its address accepts TCP connections.
    pub(crate) fn spawn_and_wait(&mut self) -> Result<()> {
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
                    .map_err(io(format!("check on {}", self.what)))?
            {
                self.child = None;
                return Err(Error::Exited {
                    what: format!("{} on {}", self.what, self.addr),
                    status,
                    log: tail(&self.log()),
                });
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady {
                    what: self.what.clone(),
                    addr: self.addr,
                    waited: READY_TIMEOUT,
                    log: tail(&self.log()),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then wait; SIGKILL if it takes longer than [`STOP_TIMEOUT`].
    pub(crate) fn stop_gracefully(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .map_err(io(format!("run `kill -TERM` on {}", self.what)))?;
        if !status.success() {
            // Already gone (it died): reap it below.
            let _ = child.kill();
        }
        let started = Instant::now();
        loop {
            if child
                .try_wait()
                .map_err(io(format!("wait for {} to stop", self.what)))?
                .is_some()
            {
                return Ok(());
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                child
                    .wait()
                    .map_err(io(format!("wait for {} to stop", self.what)))?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
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
    find_program("mosquitto", MOSQUITTO_ENV, explicit, path, |searched| {
        Error::MosquittoMissing { searched }
    })
}

/// A system program (a broker): `explicit` (the value of `env`) when set, else the first
/// `program` found in `path`, `/usr/sbin`, `/usr/local/sbin`, `/sbin`, `/usr/bin`; `missing`
/// makes the error from where it looked.
pub(crate) fn find_program(
    program: &str,
    env: &str,
    explicit: Option<OsString>,
    path: Option<OsString>,
    missing: impl FnOnce(String) -> Error,
) -> Result<PathBuf> {
    if let Some(explicit) = explicit {
        let explicit = PathBuf::from(explicit);
        return if explicit.is_file() {
            Ok(explicit)
        } else {
            Err(missing(format!("{env}={}", explicit.display())))
        };
    }
    let mut dirs: Vec<PathBuf> = path
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"].map(PathBuf::from));
    if let Some(found) = dirs
        .iter()
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    let searched = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(missing(searched))
}

/// A free 127.0.0.1 port, found by binding port 0 and letting go.
pub(crate) fn free_port() -> Result<SocketAddr> {
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

/// The folder of the shipped broker configuration: `docs/broker/` of this repository.
#[must_use]
pub fn shipped_config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")))
        .join("docs")
        .join("broker")
}

/// The deployment shipped in `docs/broker/`, as two Mosquitto processes on free 127.0.0.1
/// ports: the device broker (`mosquitto.conf`: TLS, passwords, per-device ACLs, username as
/// client id, persistence) and the pairing broker (`mosquitto-pairing.conf`: TLS, anonymous,
/// pairing topics only). Each has a client id space of its own. Both share one directory
/// (certificates, password file, ACLs, configs, logs), as on a real host. Dropping it kills
/// both processes.
///
/// The server certificate (one, for both) names `127.0.0.1`; the CA that signed it is
/// [`Self::ca_pem`].
#[derive(Debug)]
pub struct DeployedMosquitto {
    // The processes are declared before `dir`: they are killed before it is removed.
    devices: Process,
    pairing: Process,
    device_url: BrokerUrl,
    pairing_url: BrokerUrl,
    passwd_binary: PathBuf,
    ca_pem: Vec<u8>,
    dir: TempDir,
}

impl DeployedMosquitto {
    /// Makes a CA and a server certificate (`make-certs.sh`), registers `logins` in the
    /// password file, and starts the device broker and the pairing broker with the shipped
    /// configurations; returns once both accept connections.
    ///
    /// # Errors
    /// [`Error::MosquittoMissing`] if `mosquitto` or `mosquitto_passwd` is not found;
    /// [`Error::Exited`] if `make-certs.sh` or `mosquitto_passwd` fails or a Mosquitto
    /// exits; [`Error::Io`] if a file cannot be written or a shipped configuration no longer
    /// holds the placeholders the test replaces; [`Error::NotReady`] if one does not come
    /// up.
    pub fn start(logins: &[Credentials]) -> Result<Self> {
        let binary = find_binary()?;
        let passwd_binary = find_passwd_binary()?;
        let shipped = shipped_config_dir();
        let read_shipped = |name: &str| {
            let path = shipped.join(name);
            std::fs::read_to_string(&path)
                .map(|text| (path.clone(), text))
                .map_err(io(format!("read {}", path.display())))
        };
        let (device_conf, device_text) = read_shipped(DEVICE_CONF)?;
        let (pairing_conf, pairing_text) = read_shipped(PAIRING_CONF)?;

        let dir = tempfile::Builder::new()
            .prefix("tandem-mosquitto-tls-")
            .tempdir()
            .map_err(io("create a temporary directory for mosquitto"))?;
        make_certs(&shipped, dir.path())?;
        for acl in ["acl-devices", "acl-pairing"] {
            let from = shipped.join(acl);
            std::fs::copy(&from, dir.path().join(acl))
                .map_err(io(format!("copy {}", from.display())))?;
        }
        let passwords = dir.path().join("passwords");
        std::fs::write(&passwords, "").map_err(io(format!("create {}", passwords.display())))?;
        add_logins(&passwd_binary, dir.path(), logins)?;
        let ca_path = dir.path().join("ca.crt");
        let ca_pem = std::fs::read(&ca_path).map_err(io(format!("read {}", ca_path.display())))?;

        let as_root = running_as_root();
        let adapt = |shipped_conf: &Path, adapted: Result<String, String>| {
            let text = adapted.map_err(|reason| Error::Io {
                what: format!("adapt {} for the test", shipped_conf.display()),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
            })?;
            let name = shipped_conf.file_name().unwrap_or_default();
            let config = dir.path().join(name);
            std::fs::write(&config, text).map_err(io(format!("write {}", config.display())))?;
            Ok::<_, Error>(config)
        };
        // A port found by binding port 0 can be taken again before mosquitto binds it: retry
        // with fresh ports when that happens.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (device_addr, pairing_addr) = two_free_ports()?;
            let mut devices = Process {
                what: "the device mosquitto".to_owned(),
                binary: binary.clone(),
                config: adapt(
                    &device_conf,
                    device_config_text(&device_text, device_addr, dir.path(), as_root),
                )?,
                log: dir.path().join(DEVICE_LOG),
                addr: device_addr,
                child: None,
            };
            let mut pairing = Process {
                what: "the pairing mosquitto".to_owned(),
                binary: binary.clone(),
                config: adapt(
                    &pairing_conf,
                    pairing_config_text(&pairing_text, pairing_addr, dir.path(), as_root),
                )?,
                log: dir.path().join(PAIRING_LOG),
                addr: pairing_addr,
                child: None,
            };
            match devices
                .spawn_and_wait()
                .and_then(|()| pairing.spawn_and_wait())
            {
                Ok(()) => {
                    return Ok(Self {
                        devices,
                        pairing,
                        device_url: BrokerUrl::from_socket_addr_with(Scheme::Mqtts, device_addr)?,
                        pairing_url: BrokerUrl::from_socket_addr_with(Scheme::Mqtts, pairing_addr)?,
                        passwd_binary,
                        ca_pem,
                        dir,
                    });
                }
                Err(Error::Exited { log, .. }) if attempt < 3 && log.contains("in use") => {
                    // Stop the one that did start; start the next attempt with clean logs.
                    drop((devices, pairing));
                    for log in [DEVICE_LOG, PAIRING_LOG] {
                        let _ = std::fs::remove_file(dir.path().join(log));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Like [`DeployedMosquitto::start`], but when Mosquitto is not installed and
    /// `TANDEM_SKIP_MOSQUITTO=1` is set, prints why and returns `Ok(None)`.
    ///
    /// # Errors
    /// As [`DeployedMosquitto::start`].
    pub fn start_or_skip(logins: &[Credentials]) -> Result<Option<Self>> {
        skip_if_missing(Self::start(logins), skip_requested())
    }

    /// `mqtts://127.0.0.1:port` of the device broker.
    #[must_use]
    pub fn device_url(&self) -> &BrokerUrl {
        &self.device_url
    }

    /// The device broker's address.
    #[must_use]
    pub fn device_addr(&self) -> SocketAddr {
        self.devices.addr
    }

    /// `mqtts://127.0.0.1:port` of the pairing broker.
    #[must_use]
    pub fn pairing_url(&self) -> &BrokerUrl {
        &self.pairing_url
    }

    /// The pairing broker's address.
    #[must_use]
    pub fn pairing_addr(&self) -> SocketAddr {
        self.pairing.addr
    }

    /// The CA certificate (PEM) that signed the server certificate.
    #[must_use]
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// The CA as the TLS trust clients connect with.
    #[must_use]
    pub fn tls_trust(&self) -> TlsTrust {
        TlsTrust::from_ca_pem(self.ca_pem.clone())
    }

    /// The device broker's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        self.devices.log()
    }

    /// The pairing broker's log so far.
    #[must_use]
    pub fn pairing_log(&self) -> String {
        self.pairing.log()
    }

    /// The temporary directory holding both configurations, the certificates, the password
    /// file, the ACLs and both logs.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Registers more devices while the brokers run, the way an operator does: hashes the
    /// new `username:password` lines with `mosquitto_passwd -U`, appends them to the
    /// password file, and reloads the device broker (SIGHUP); returns once it has reloaded.
    ///
    /// # Errors
    /// [`Error::Exited`] if `mosquitto_passwd` fails, [`Error::Io`] if a file cannot be
    /// written or the process signalled, [`Error::NotReady`] if no reload shows in the log.
    pub fn register(&self, logins: &[Credentials]) -> Result<()> {
        add_logins(&self.passwd_binary, self.dir(), logins)?;
        let reloads_before = self.log().matches(RELOAD_LINE).count();
        let Some(pid) = self.devices.pid() else {
            return Err(Error::Io {
                what: "reload the device mosquitto".to_owned(),
                source: std::io::Error::other("it is not running"),
            });
        };
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .map_err(io("run `kill -HUP` on the device mosquitto"))?;
        if !status.success() {
            return Err(Error::Io {
                what: format!("send SIGHUP to the device mosquitto (pid {pid})"),
                source: std::io::Error::other(format!("kill exited with {status}")),
            });
        }
        let started = Instant::now();
        while self.log().matches(RELOAD_LINE).count() <= reloads_before {
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady {
                    what: "the device mosquitto to reload its password file".to_owned(),
                    addr: self.device_addr(),
                    waited: READY_TIMEOUT,
                    log: tail(&self.log()),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

/// The device broker's configuration in `docs/broker/`.
const DEVICE_CONF: &str = "mosquitto.conf";

/// The pairing broker's configuration in `docs/broker/`.
const PAIRING_CONF: &str = "mosquitto-pairing.conf";

/// The device broker's log file in the test directory.
const DEVICE_LOG: &str = "mosquitto.log";

/// The pairing broker's log file in the test directory.
const PAIRING_LOG: &str = "mosquitto-pairing.log";

/// What Mosquitto logs when it starts reloading on SIGHUP (it finishes before it serves the
/// network again: one thread does both).
const RELOAD_LINE: &str = "Reloading config.";

/// `mosquitto_passwd`: `$TANDEM_MOSQUITTO_PASSWD`, else the first found in `$PATH`,
/// `/usr/bin`, `/usr/local/bin` (Debian's `mosquitto` package ships it).
fn find_passwd_binary() -> Result<PathBuf> {
    if let Some(explicit) = std::env::var_os(MOSQUITTO_PASSWD_ENV) {
        let explicit = PathBuf::from(explicit);
        return if explicit.is_file() {
            Ok(explicit)
        } else {
            Err(Error::MosquittoMissing {
                searched: format!("{MOSQUITTO_PASSWD_ENV}={}", explicit.display()),
            })
        };
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs.iter()
        .map(|dir| dir.join("mosquitto_passwd"))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::MosquittoMissing {
            searched: format!(
                "mosquitto_passwd in {}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// Runs the shipped `make-certs.sh` into `out` for the host 127.0.0.1.
pub(crate) fn make_certs(shipped: &Path, out: &Path) -> Result<()> {
    let script = shipped.join("make-certs.sh");
    run(
        Command::new("bash").arg(&script).arg(out).arg("127.0.0.1"),
        &format!("{} {} 127.0.0.1", script.display(), out.display()),
    )
}

/// Appends `logins` to `dir/passwords` as the README says: plain `username:password` lines
/// in a new file, hashed in place by `mosquitto_passwd -U`, then appended (running `-U` on
/// the whole password file would hash the hashes again).
fn add_logins(passwd_binary: &Path, dir: &Path, logins: &[Credentials]) -> Result<()> {
    if logins.is_empty() {
        return Ok(());
    }
    let plain = password_lines(logins).map_err(|reason| Error::Io {
        what: "write the new password lines".to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, reason),
    })?;
    let new = dir.join("new-logins");
    std::fs::write(&new, plain.as_bytes()).map_err(io(format!("write {}", new.display())))?;
    run(
        Command::new(passwd_binary).arg("-U").arg(&new),
        &format!("{} -U {}", passwd_binary.display(), new.display()),
    )?;
    let hashed = std::fs::read(&new).map_err(io(format!("read {}", new.display())))?;
    std::fs::remove_file(&new).map_err(io(format!("remove {}", new.display())))?;
    let passwords = dir.join("passwords");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&passwords)
        .map_err(io(format!("open {}", passwords.display())))?;
    std::io::Write::write_all(&mut file, &hashed)
        .map_err(io(format!("append to {}", passwords.display())))
}

/// `username:password` lines, refusing what the password file format cannot hold.
pub(crate) fn password_lines(logins: &[Credentials]) -> Result<String, String> {
    let mut text = String::new();
    for login in logins {
        let (user, password) = (&login.username, login.password.expose());
        if user.is_empty() || user.contains([':', '\n', '\r']) {
            return Err(format!(
                "username {user:?} cannot be a password file entry (empty, `:` or a line break)"
            ));
        }
        if password.contains(['\n', '\r']) {
            return Err(format!("the password of {user:?} holds a line break"));
        }
        let _ = writeln!(text, "{user}:{password}");
    }
    Ok(text)
}

/// Runs a helper program to completion; a failure carries its output.
pub(crate) fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("run {what}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::Exited {
        what: what.to_owned(),
        status: output.status,
        log: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// Two distinct free 127.0.0.1 ports.
fn two_free_ports() -> Result<(SocketAddr, SocketAddr)> {
    let ports = free_ports(2)?;
    match ports.as_slice() {
        [first, second] => Ok((*first, *second)),
        _ => Err(Error::Io {
            what: "find two free ports".to_owned(),
            source: std::io::Error::other("fewer ports than asked for"),
        }),
    }
}

/// `count` distinct free 127.0.0.1 ports: every one is held until all are found, so that
/// none is handed out twice (ports found one at a time can repeat: the kernel gives a port
/// just released again).
pub(crate) fn free_ports(count: usize) -> Result<Vec<SocketAddr>> {
    let listeners = (0..count)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0").map_err(io("bind 127.0.0.1:0 to find a free port"))
        })
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map_err(io("read the port bound on 127.0.0.1:0"))
        })
        .collect()
}

/// The shipped `mosquitto.conf` (the device broker) adapted to a test: its listener bound to
/// `device`, every path moved into `dir`, and `user root` when running as root.
fn device_config_text(
    shipped: &str,
    device: SocketAddr,
    dir: &Path,
    as_root: bool,
) -> Result<String, String> {
    let rules = [
        ("listener 8883", listener_line(device)),
        (
            "persistence_location /var/lib/mosquitto/",
            format!("persistence_location {}/", dir.display()),
        ),
        (
            "log_dest file /var/log/mosquitto/mosquitto.log",
            format!("log_dest file {}", dir.join(DEVICE_LOG).display()),
        ),
    ];
    adapt_shipped_config(shipped, DEVICE_CONF, &rules, dir, as_root)
}

/// The shipped `mosquitto-pairing.conf` (the pairing broker) adapted to a test: its listener
/// bound to `pairing`, every path moved into `dir`, and `user root` when running as root.
fn pairing_config_text(
    shipped: &str,
    pairing: SocketAddr,
    dir: &Path,
    as_root: bool,
) -> Result<String, String> {
    let rules = [
        ("listener 8884", listener_line(pairing)),
        (
            "log_dest file /var/log/mosquitto/mosquitto-pairing.log",
            format!("log_dest file {}", dir.join(PAIRING_LOG).display()),
        ),
    ];
    adapt_shipped_config(shipped, PAIRING_CONF, &rules, dir, as_root)
}

fn listener_line(addr: SocketAddr) -> String {
    format!("listener {} {}", addr.port(), addr.ip())
}

/// A shipped configuration with each `(placeholder, replacement)` line replaced and every
/// file of [`SHIPPED_FILES_DIR`] moved into `dir`. Each placeholder must be found, some
/// setting must name a file of [`SHIPPED_FILES_DIR`], and no other `listener` line may be
/// left (a test must not bind a real port, and one process serves one port): a shipped file
/// that changed shape fails here, loudly.
fn adapt_shipped_config(
    shipped: &str,
    name: &str,
    rules: &[(&str, String)],
    dir: &Path,
    as_root: bool,
) -> Result<String, String> {
    let mut found = vec![false; rules.len()];
    let mut text = format!("# adapted by tandem-tests from docs/broker/{name}\n");
    if as_root {
        text.push_str("user root\n");
    }
    let files = format!("{}/", dir.display());
    let mut moved_files = 0;
    for line in shipped.lines() {
        let mut out = line.to_owned();
        let mut replaced = false;
        for ((placeholder, replacement), seen) in rules.iter().zip(found.iter_mut()) {
            if line.trim_end() == *placeholder {
                out.clone_from(replacement);
                *seen = true;
                replaced = true;
            }
        }
        let setting = line.trim_start();
        if !replaced && setting.split_whitespace().next() == Some("listener") {
            return Err(format!("an unexpected line `{}`", line.trim()));
        }
        if !setting.starts_with('#') && out.contains(SHIPPED_FILES_DIR) {
            out = out.replace(SHIPPED_FILES_DIR, &files);
            moved_files += 1;
        }
        text.push_str(&out);
        text.push('\n');
    }
    for ((placeholder, _), seen) in rules.iter().zip(found) {
        if !seen {
            return Err(format!("the line `{placeholder}` is missing"));
        }
    }
    if moved_files == 0 {
        return Err(format!("no setting names a file in {SHIPPED_FILES_DIR}"));
    }
    Ok(text)
}

/// Where the shipped configurations expect their certificates, password file and ACL files.
const SHIPPED_FILES_DIR: &str = "/etc/mosquitto/tandem/";

/// The last lines of a log, enough to see why something failed.
pub(crate) fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(30);
    lines.get(start..).unwrap_or_default().join("\n")
}

#[cfg(test)]
#[path = "mosquitto_tests.rs"]
mod tests;

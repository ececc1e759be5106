//! The desktop app's real window under test: [`Display`] is a virtual X screen (`Xvfb`),
//! [`SessionBus`] a private D-Bus session bus (the app's single-instance and notification
//! plugins need one), [`NotificationWatch`] records the desktop notifications the app asks for
//! on that bus (`dbus-monitor`), and [`App`] is `tandem-desktop` launched and driven by
//! `WebKitWebDriver` through a WebDriver session (the `fantoccini` client), on that screen and
//! bus.
//!
//! Every wait is bounded and reports what the page showed and what the app printed. Every
//! process is started on free ports / displays and stopped on drop: the app's whole process
//! tree (its `WebKitWebProcess` and `WebKitNetworkProcess`), the WebDriver server, the
//! monitor, the bus, the screen. A missing `Xvfb`, `dbus-daemon`, `dbus-monitor` or
//! `WebKitWebDriver` is an error naming the Debian package to install, never a skip.
//!
//! The app runs with `TAURI_WEBVIEW_AUTOMATION=true` (so WebKitGTK accepts the WebDriver
//! session), `TANDEM_KEYRING=off`, and its own empty `XDG_CONFIG_HOME`, `XDG_DATA_HOME` and
//! `XDG_CACHE_HOME` (its window state and downloads stay out of the user's folders).
//! Screenshots ([`App::screenshot`]) are written to `docs/screenshots/` only when
//! `TANDEM_SCREENSHOTS=1`, so test runs never rewrite the docs.

use std::ffi::OsString;
use std::fmt;
use std::io::BufRead as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::cli::{lines_of, read_all};
use crate::error::{Error, Result, io};
use crate::process::{ChildGuard, bin, comm, descendants, kill_all};

/// The virtual screen: width x height x depth.
pub const SCREEN: (u32, u32, u32) = (1280, 800, 24);
/// How long a helper program (Xvfb, the bus, the monitor, the WebDriver server) may take to
/// be ready.
pub const START: Duration = Duration::from_secs(15);
/// How long launching the app may take: the WebDriver session starts the app, its web
/// process, and loads the first page (a debug build on two shared cores).
pub const LAUNCH: Duration = Duration::from_secs(120);
/// How long one WebDriver command may take before it counts as hung.
pub const COMMAND: Duration = Duration::from_secs(30);
/// The environment variable that turns [`App::screenshot`] on (`1`).
pub const SCREENSHOTS: &str = "TANDEM_SCREENSHOTS";
/// The app's program.
pub const DESKTOP: &str = "tandem-desktop";
/// How often waits look at the page again.
const POLL: Duration = Duration::from_millis(50);
/// How long a screenshot waits for transitions to end after the page painted.
const PAINT: Duration = Duration::from_millis(600);
/// How long closing the WebDriver session may take on drop.
const CLOSE: Duration = Duration::from_secs(10);
/// How much of the page's text an error shows.
const PAGE_TEXT: usize = 1500;
/// How much of the app's output an error shows (its end).
const LOG_TAIL: usize = 6000;

/// `[data-testid="ID"]`: the selector of the UI's stable test hooks.
#[must_use]
pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// The path of `program` on `PATH`.
///
/// # Errors
/// [`Error::ProgramMissing`] naming `package` when it is not there.
pub fn find_program(program: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| Error::ProgramMissing {
            program: program.to_owned(),
            package: package.to_owned(),
        })
}

/// A TCP port on 127.0.0.1 that nobody listened on a moment ago.
///
/// # Errors
/// [`Error::Io`] if no port can be bound.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(io("bind 127.0.0.1:0"))?;
    Ok(listener
        .local_addr()
        .map_err(io("read a bound port"))?
        .port())
}

/// Reads the first line a helper program prints on stdout, waiting up to [`START`]; when it
/// exits or stays silent, an error with its stderr.
fn first_line(
    child: &mut ChildGuard,
    stdout: &Receiver<String>,
    stderr: &mut Option<std::thread::JoinHandle<String>>,
    what: &str,
) -> Result<String> {
    if let Ok(line) = stdout.recv_timeout(START) {
        return Ok(line);
    }
    let status = child.wait_timeout(Duration::from_millis(500))?;
    let log = match status {
        Some(_) => stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default(),
        None => String::new(),
    };
    Err(match status {
        Some(status) => Error::Exited {
            what: what.to_owned(),
            status,
            log,
        },
        None => Error::Io {
            what: format!("wait {START:?} for {what} to say it is ready"),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "it printed nothing"),
        },
    })
}

// ---------------------------------------------------------------------------------------
// The screen.

/// A virtual X screen (`Xvfb`, [`SCREEN`]) on a display number it picks itself
/// (`-displayfd`), killed on drop.
#[derive(Debug)]
pub struct Display {
    child: ChildGuard,
    number: u32,
    /// Kept so that the reader thread (and Xvfb's stdout) stay open.
    _stdout: Receiver<String>,
}

impl Display {
    /// Starts `Xvfb` and waits until it accepts clients.
    ///
    /// # Errors
    /// [`Error::ProgramMissing`] without `Xvfb`; [`Error::Exited`] / [`Error::Io`] if it
    /// does not come up.
    pub fn start() -> Result<Self> {
        let xvfb = find_program("Xvfb", "xvfb")?;
        let (width, height, depth) = SCREEN;
        let mut command = Command::new(xvfb);
        command
            .args(["-displayfd", "1", "-screen", "0"])
            .arg(format!("{width}x{height}x{depth}"))
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(&mut command)?;
        let stdout = lines_of(child.child_mut().stdout.take());
        let mut stderr = child.child_mut().stderr.take().map(read_all);
        let line = first_line(&mut child, &stdout, &mut stderr, "Xvfb")?;
        let number = line.trim().parse::<u32>().map_err(|e| Error::Io {
            what: format!("read the display number Xvfb printed: {line:?}"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        Ok(Self {
            child,
            number,
            _stdout: stdout,
        })
    }

    /// `:N`, for `DISPLAY`.
    #[must_use]
    pub fn name(&self) -> String {
        format!(":{}", self.number)
    }

    /// Xvfb's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes the keyboard focus away from every window, as when the user switches to another
    /// program (there is no window manager: the X server's input focus is set to none).
    ///
    /// # Errors
    /// [`Error::Io`] if the X server cannot be reached or refuses.
    pub fn unfocus(&self) -> Result<()> {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::xproto::{ConnectionExt as _, InputFocus};
        let what = format!("take the keyboard focus away on display {}", self.name());
        let (conn, _) = x11rb::connect(Some(&self.name())).map_err(|e| x_error(&what, e))?;
        conn.set_input_focus(InputFocus::NONE, x11rb::NONE, x11rb::CURRENT_TIME)
            .map_err(|e| x_error(&what, e))?
            .check()
            .map_err(|e| x_error(&what, e))?;
        conn.flush().map_err(|e| x_error(&what, e))
    }

    /// The window holding the keyboard focus: `0` none, `1` whichever the pointer is in.
    ///
    /// # Errors
    /// [`Error::Io`] if the X server cannot be reached.
    pub fn focus(&self) -> Result<u32> {
        use x11rb::protocol::xproto::ConnectionExt as _;
        let what = format!("read the keyboard focus on display {}", self.name());
        let (conn, _) = x11rb::connect(Some(&self.name())).map_err(|e| x_error(&what, e))?;
        let reply = conn
            .get_input_focus()
            .map_err(|e| x_error(&what, e))?
            .reply()
            .map_err(|e| x_error(&what, e))?;
        Ok(reply.focus)
    }
}

/// An X11 failure as [`Error::Io`].
fn x_error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Io {
        what: what.to_owned(),
        source: std::io::Error::other(e),
    }
}

// ---------------------------------------------------------------------------------------
// The session bus.

/// The configuration of a private session bus: only this user, no activatable services (no
/// portal, keyring or notification daemon starts behind the test's back), monitoring allowed.
const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=@DIR@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

/// A private D-Bus session bus (`dbus-daemon --nofork`), its socket in a temporary folder,
/// killed on drop.
#[derive(Debug)]
pub struct SessionBus {
    child: ChildGuard,
    address: String,
    _stdout: Receiver<String>,
    _dir: TempDir,
}

impl SessionBus {
    /// Starts it and reads its address.
    ///
    /// # Errors
    /// [`Error::ProgramMissing`] without `dbus-daemon`; [`Error::Io`] / [`Error::Exited`] if
    /// it does not come up.
    pub fn start() -> Result<Self> {
        let daemon = find_program("dbus-daemon", "dbus-daemon")?;
        let dir = tempfile::Builder::new()
            .prefix("tandem-bus-")
            .tempdir()
            .map_err(io("create a folder for a session bus"))?;
        let config = dir.path().join("session.conf");
        let text = BUS_CONFIG.replace("@DIR@", &dir.path().to_string_lossy());
        std::fs::write(&config, text).map_err(io(format!("write {}", config.display())))?;
        let mut command = Command::new(daemon);
        command
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(&mut command)?;
        let stdout = lines_of(child.child_mut().stdout.take());
        let mut stderr = child.child_mut().stderr.take().map(read_all);
        let address = first_line(&mut child, &stdout, &mut stderr, "dbus-daemon")?
            .trim()
            .to_owned();
        if !address.starts_with("unix:") {
            return Err(Error::Io {
                what: format!("read the address dbus-daemon printed: {address:?}"),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not an address"),
            });
        }
        Ok(Self {
            child,
            address,
            _stdout: stdout,
            _dir: dir,
        })
    }

    /// Its address, for `DBUS_SESSION_BUS_ADDRESS`.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The daemon's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

// ---------------------------------------------------------------------------------------
// Notifications.

/// One `org.freedesktop.Notifications.Notify` call seen on the bus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    /// Its top-level string arguments in order: app name, icon, summary (title), body.
    pub strings: Vec<String>,
}

impl Notification {
    /// The title.
    #[must_use]
    pub fn summary(&self) -> &str {
        self.strings.get(2).map_or("", String::as_str)
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &str {
        self.strings.get(3).map_or("", String::as_str)
    }

    /// Whether one of its strings contains `text`.
    #[must_use]
    pub fn mentions(&self, text: &str) -> bool {
        self.strings.iter().any(|s| s.contains(text))
    }
}

/// What [`NotificationWatch`]'s reader thread has seen.
#[derive(Debug, Default)]
struct Seen {
    /// The monitor is registered (it printed its first line).
    ready: bool,
    calls: Vec<Notification>,
    /// A string argument spanning several lines, still open.
    open: Option<String>,
    /// The current message is a `Notify` call (its arguments are collected).
    in_notify: bool,
}

impl Seen {
    /// Takes one line of `dbus-monitor`'s output.
    fn take(&mut self, line: &str) {
        self.ready = true;
        if let Some(open) = &mut self.open {
            open.push('\n');
            open.push_str(line);
            if line.ends_with('"') {
                let mut done = self.open.take().unwrap_or_default();
                done.pop();
                self.push_string(done);
            }
            return;
        }
        if !line.starts_with(' ') {
            // A message header: `method call time=... member=Notify`, `signal ...`, `error ...`.
            self.in_notify = line.starts_with("method call") && line.contains("member=Notify");
            if self.in_notify {
                self.calls.push(Notification::default());
            }
            return;
        }
        // Top-level arguments are indented by three spaces; nested ones (the hints) by more.
        let Some(rest) = line.strip_prefix("   string \"") else {
            return;
        };
        if !self.in_notify {
            return;
        }
        match rest.strip_suffix('"') {
            Some(whole) => self.push_string(whole.to_owned()),
            None => self.open = Some(rest.to_owned()),
        }
    }

    fn push_string(&mut self, s: String) {
        if let Some(call) = self.calls.last_mut() {
            call.strings.push(s);
        }
    }
}

/// `dbus-monitor` on a [`SessionBus`], recording every `Notify` call (the app makes them
/// whether or not a notification daemon answers), killed on drop.
#[derive(Debug)]
pub struct NotificationWatch {
    child: ChildGuard,
    seen: Arc<Mutex<Seen>>,
}

impl NotificationWatch {
    /// Starts the monitor and waits until it is registered on the bus.
    ///
    /// # Errors
    /// [`Error::ProgramMissing`] without `dbus-monitor`; [`Error::Io`] if it does not come
    /// up.
    pub fn start(bus: &SessionBus) -> Result<Self> {
        let monitor = find_program("dbus-monitor", "dbus-bin")?;
        let mut command = Command::new(monitor);
        command
            .arg("--address")
            .arg(bus.address())
            .arg("type='method_call',interface='org.freedesktop.Notifications',member='Notify'")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = ChildGuard::spawn(&mut command)?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        if let Some(stdout) = child.child_mut().stdout.take() {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lock(&seen).take(&line);
                }
            });
        }
        let watch = Self { child, seen };
        let started = Instant::now();
        while !lock(&watch.seen).ready {
            if started.elapsed() > START {
                return Err(Error::Io {
                    what: "wait for dbus-monitor to register on the session bus".to_owned(),
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "it printed nothing"),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(watch)
    }

    /// Every `Notify` call seen so far.
    #[must_use]
    pub fn calls(&self) -> Vec<Notification> {
        lock(&self.seen).calls.clone()
    }

    /// The first `Notify` call (seen already or still to come) one of whose strings contains
    /// `text`, waiting up to `timeout`.
    ///
    /// # Errors
    /// [`Error::Io`] (timed out) listing the calls seen if none comes in time.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> Result<Notification> {
        let started = Instant::now();
        loop {
            let calls = self.calls();
            if let Some(found) = calls.iter().find(|call| call.mentions(text)) {
                return Ok(found.clone());
            }
            if started.elapsed() > timeout {
                return Err(Error::Io {
                    what: format!(
                        "wait {timeout:?} for a desktop notification mentioning {text:?} \
                         (Notify calls seen: {calls:?})"
                    ),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no such notification",
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The monitor's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// The app.

/// The environment the app runs in here (under test or benchmark): `display` and `bus`, X11,
/// the keyring off, no `TANDEM_HOME` / `TANDEM_BROKER` from outside, no accessibility bus and
/// no dconf (nothing started on the bus behind the run), and its own XDG folders under `xdg`
/// (its window state and downloads stay out of the user's).
///
/// # Errors
/// [`Error::Io`] if the XDG folders cannot be created.
pub fn app_environment(
    command: &mut Command,
    display: &Display,
    bus: &SessionBus,
    xdg: &Path,
) -> Result<()> {
    command
        .env("DISPLAY", display.name())
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .env("TANDEM_KEYRING", "off")
        .env_remove("TANDEM_HOME")
        .env_remove("TANDEM_BROKER")
        .env_remove("WAYLAND_DISPLAY")
        .env("GDK_BACKEND", "x11")
        .env("NO_AT_BRIDGE", "1")
        .env("GSETTINGS_BACKEND", "memory");
    for (var, dir) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        let path = xdg.join(dir);
        std::fs::create_dir_all(&path).map_err(io(format!("create {}", path.display())))?;
        command.env(var, path);
    }
    Ok(())
}

/// How to launch the app: `tandem-desktop --home HOME [--broker URL] [--qr-png FILE] ARGS...`.
#[derive(Debug, Clone)]
pub struct AppOptions {
    home: PathBuf,
    broker: Option<String>,
    qr_png: Option<PathBuf>,
    args: Vec<OsString>,
}

impl AppOptions {
    /// The app on `home` (its `--home`).
    #[must_use]
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self {
            home: home.into(),
            broker: None,
            qr_png: None,
            args: Vec::new(),
        }
    }

    /// `--broker URL`: the broker to link through.
    #[must_use]
    pub fn broker(mut self, url: impl Into<String>) -> Self {
        self.broker = Some(url.into());
        self
    }

    /// `--qr-png FILE`: the demo mode, every link code also written there as a PNG.
    #[must_use]
    pub fn qr_png(mut self, path: impl Into<PathBuf>) -> Self {
        self.qr_png = Some(path.into());
        self
    }

    /// Any other argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The command-line arguments.
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--home".to_owned(),
            self.home.to_string_lossy().into_owned(),
        ];
        if let Some(broker) = &self.broker {
            args.extend(["--broker".to_owned(), broker.clone()]);
        }
        if let Some(qr) = &self.qr_png {
            args.extend(["--qr-png".to_owned(), qr.to_string_lossy().into_owned()]);
        }
        args.extend(self.args.iter().map(|a| a.to_string_lossy().into_owned()));
        args
    }
}

/// What the WebDriver server and the app (its child, sharing its pipes) print, kept as it
/// comes.
#[derive(Debug, Default)]
struct Output {
    stdout: Vec<String>,
    stderr: String,
}

/// `tandem-desktop` launched by `WebKitWebDriver` on a [`Display`] and a [`SessionBus`],
/// driven through one WebDriver session. Every method waits a bounded time. Dropping it
/// closes the session and kills the app's whole process tree and the WebDriver server.
pub struct App {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: ChildGuard,
    output: Arc<Mutex<Output>>,
    _xdg: TempDir,
    screenshots: Option<PathBuf>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("driver", &self.driver.id())
            .field("screenshots", &self.screenshots)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Starts `WebKitWebDriver` on a free port and launches the app through a new session,
    /// its window sized to the whole screen.
    ///
    /// # Errors
    /// [`Error::ProgramMissing`] without `WebKitWebDriver`; [`Error::WebDriver`] with
    /// everything printed if the session (the app) does not start; as [`bin`].
    pub fn launch(display: &Display, bus: &SessionBus, options: &AppOptions) -> Result<Self> {
        let driver = find_program("WebKitWebDriver", "webkit2gtk-driver")?;
        let binary = bin(DESKTOP)?;
        let xdg = tempfile::Builder::new()
            .prefix("tandem-app-xdg-")
            .tempdir()
            .map_err(io("create the app's XDG folders"))?;
        let port = free_port()?;
        let mut command = Command::new(&driver);
        command
            .arg(format!("--port={port}"))
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        app_environment(&mut command, display, bus, xdg.path())?;
        let mut child = ChildGuard::spawn(&mut command)?;
        let output = Arc::new(Mutex::new(Output::default()));
        collect(&mut child, &output);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io("start a Tokio runtime for the WebDriver client"))?;
        let mut app = Self {
            runtime,
            client: None,
            driver: child,
            output,
            _xdg: xdg,
            screenshots: screenshot_dir(),
        };
        app.wait_for_port(port)?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "webkitgtk:browserOptions".to_owned(),
            json!({"binary": binary, "args": options.to_args()}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let connecting =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&url)
                .await_within(&app.runtime, LAUNCH);
        let client = match connecting {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(app.webdriver_error(
                    &format!("start a WebDriver session launching {}", binary.display()),
                    &e.to_string(),
                ));
            }
            Err(()) => {
                return Err(app.webdriver_error(
                    &format!("start a WebDriver session launching {}", binary.display()),
                    &format!("no answer within {LAUNCH:?}"),
                ));
            }
        };
        app.client = Some(client);
        let (width, height, _) = SCREEN;
        app.command("size the window", |c| async move {
            c.set_window_rect(0, 0, width, height).await
        })?;
        Ok(app)
    }

    /// Waits until the WebDriver server accepts connections on `port`.
    fn wait_for_port(&mut self, port: u16) -> Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.driver.try_wait()? {
                return Err(Error::Exited {
                    what: format!("WebKitWebDriver --port={port}"),
                    status,
                    log: self.log(),
                });
            }
            if started.elapsed() > START {
                return Err(self.webdriver_error(
                    &format!("connect to WebKitWebDriver on {addr}"),
                    &format!("it did not listen within {START:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn client(&self) -> Result<Client> {
        self.client.clone().ok_or_else(|| Error::WebDriver {
            what: "use the WebDriver session".to_owned(),
            reason: "it is closed".to_owned(),
            log: self.log(),
        })
    }

    /// Runs one WebDriver command, bounded by [`COMMAND`].
    fn command<T, F, Fut>(&self, what: &str, command: F) -> Result<T>
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, fantoccini::error::CmdError>>,
    {
        let client = self.client()?;
        match command(client).await_within(&self.runtime, COMMAND) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.webdriver_error(what, &e.to_string())),
            Err(()) => Err(self.webdriver_error(what, &format!("no answer within {COMMAND:?}"))),
        }
    }

    fn webdriver_error(&self, what: &str, reason: &str) -> Error {
        Error::WebDriver {
            what: what.to_owned(),
            reason: reason.to_owned(),
            log: self.log_tail(),
        }
    }

    /// Runs `script` in the page (`arguments` holds `args`; `return` gives the value).
    ///
    /// # Errors
    /// [`Error::WebDriver`] if the script throws or the session fails.
    pub fn eval(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        let owned = script.to_owned();
        self.command(&format!("run the script {script:?}"), |c| async move {
            c.execute(&owned, args).await
        })
    }

    /// Runs `script` every 50 ms until it returns something truthy (not `null`, `false`,
    /// `0`, `""` or an empty list), and returns that.
    ///
    /// # Errors
    /// [`Error::NotShown`] describing `what`, with the page and the app's output, after
    /// `timeout`; [`Error::WebDriver`] if the script fails.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        script: &str,
        args: &[Value],
    ) -> Result<Value> {
        let started = Instant::now();
        loop {
            let value = self.eval(script, args.to_vec())?;
            if truthy(&value) {
                return Ok(value);
            }
            if started.elapsed() > timeout {
                return Err(self.not_shown(what, timeout));
            }
            self.check_running(what)?;
            std::thread::sleep(POLL);
        }
    }

    /// Fails at once when the app's process is gone.
    fn check_running(&self, what: &str) -> Result<()> {
        if self.pid().is_none() {
            return Err(self.webdriver_error(
                &format!("wait for {what}"),
                "the app's process is gone (it crashed or quit)",
            ));
        }
        Ok(())
    }

    /// The error for something not shown in time.
    pub fn not_shown(&self, what: &str, waited: Duration) -> Error {
        Error::NotShown {
            what: what.to_owned(),
            waited,
            page: self.page_summary(),
            log: self.log_tail(),
        }
    }

    /// The page now: how many elements carry each `data-testid`, and the start of its text.
    #[must_use]
    pub fn page_summary(&self) -> String {
        let script = format!(
            "const ids = {{}};
             for (const e of document.querySelectorAll('[data-testid]')) {{
               const k = e.getAttribute('data-testid'); ids[k] = (ids[k] || 0) + 1;
             }}
             return {{url: location.href, testids: ids,
                      text: (document.body ? document.body.innerText : '').slice(0, {PAGE_TEXT})}};"
        );
        match self.eval(&script, Vec::new()) {
            Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
            Err(e) => format!("(the page could not be read: {e})"),
        }
    }

    /// Waits until an element matches `selector`.
    ///
    /// # Errors
    /// As [`App::wait_until`].
    pub fn wait_for(&self, selector: &str, timeout: Duration) -> Result<()> {
        self.wait_until(
            &format!("an element {selector}"),
            timeout,
            "return document.querySelector(arguments[0]) !== null",
            &[json!(selector)],
        )
        .map(drop)
    }

    /// Waits until no element matches `selector`.
    ///
    /// # Errors
    /// As [`App::wait_until`].
    pub fn wait_gone(&self, selector: &str, timeout: Duration) -> Result<()> {
        self.wait_until(
            &format!("no element {selector} any more"),
            timeout,
            "return document.querySelector(arguments[0]) === null",
            &[json!(selector)],
        )
        .map(drop)
    }

    /// How many elements match `selector`.
    ///
    /// # Errors
    /// [`Error::WebDriver`] if the page cannot be read.
    pub fn count(&self, selector: &str) -> Result<usize> {
        let value = self.eval(
            "return document.querySelectorAll(arguments[0]).length",
            vec![json!(selector)],
        )?;
        Ok(value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0))
    }

    /// The attribute `name` of the first element matching `selector` (`None` when there is
    /// no such element or attribute).
    ///
    /// # Errors
    /// [`Error::WebDriver`] if the page cannot be read.
    pub fn attr(&self, selector: &str, name: &str) -> Result<Option<String>> {
        let value = self.eval(
            "const e = document.querySelector(arguments[0]);
             return e ? e.getAttribute(arguments[1]) : null;",
            vec![json!(selector), json!(name)],
        )?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// The attribute `name` of every element matching `selector`, in document order.
    ///
    /// # Errors
    /// [`Error::WebDriver`] if the page cannot be read.
    pub fn attrs(&self, selector: &str, name: &str) -> Result<Vec<Option<String>>> {
        let value = self.eval(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.getAttribute(arguments[1]));",
            vec![json!(selector), json!(name)],
        )?;
        Ok(value
            .as_array()
            .map(|all| all.iter().map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    }

    /// The visible text of the first element matching `selector`.
    ///
    /// # Errors
    /// [`Error::WebDriver`] if there is none or the page cannot be read.
    pub fn text(&self, selector: &str) -> Result<String> {
        let element = self.find(selector)?;
        self.command(&format!("read the text of {selector}"), |_| async move {
            element.text().await
        })
    }

    fn find(&self, selector: &str) -> Result<Element> {
        let owned = selector.to_owned();
        self.command(&format!("find {selector}"), |c| async move {
            c.find(Locator::Css(&owned)).await
        })
    }

    /// Clicks the first element matching `selector`, as a user does (a WebDriver click: it
    /// is scrolled into view and must be clickable).
    ///
    /// # Errors
    /// [`Error::WebDriver`] if there is none or it cannot be clicked.
    pub fn click(&self, selector: &str) -> Result<()> {
        let element = self.find(selector)?;
        self.command(&format!("click {selector}"), |_| async move {
            element.click().await
        })
    }

    /// Types `text` into the first element matching `selector` (real key events; `\n` is
    /// typed as the Enter key).
    ///
    /// # Errors
    /// [`Error::WebDriver`] if there is none or it takes no keys.
    pub fn type_text(&self, selector: &str, text: &str) -> Result<()> {
        let element = self.find(selector)?;
        let keys: String = text
            .chars()
            .map(|c| {
                if c == '\n' {
                    char::from(fantoccini::key::Key::Enter)
                } else {
                    c
                }
            })
            .collect();
        self.command(&format!("type {text:?} into {selector}"), |_| async move {
            element.send_keys(&keys).await
        })
    }

    /// Empties the first input matching `selector`.
    ///
    /// # Errors
    /// [`Error::WebDriver`] if there is none.
    pub fn clear(&self, selector: &str) -> Result<()> {
        let element = self.find(selector)?;
        self.command(&format!("clear {selector}"), |_| async move {
            element.clear().await
        })
    }

    /// Takes a screenshot of the window into `docs/screenshots/NAME.png` when
    /// `TANDEM_SCREENSHOTS=1` (else does nothing); returns the path written.
    ///
    /// # Errors
    /// [`Error::WebDriver`] if the screenshot fails, [`Error::Io`] if it cannot be written.
    pub fn screenshot(&self, name: &str) -> Result<Option<PathBuf>> {
        let Some(dir) = &self.screenshots else {
            return Ok(None);
        };
        // The screenshot is the web process's last painting, which trails the DOM: let it
        // paint what the DOM holds now (two animation frames, then a moment for transitions).
        self.command("wait for the page to paint", |c| async move {
            c.execute_async(
                "const done = arguments[arguments.length - 1];
                 requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                Vec::new(),
            )
            .await
        })?;
        std::thread::sleep(PAINT);
        let png = self.command(&format!("take the screenshot {name}"), |c| async move {
            c.screenshot().await
        })?;
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(io(format!("write {}", path.display())))?;
        Ok(Some(path))
    }

    /// Waits for a line the app prints on stdout starting with `prefix` (such as
    /// `ready: chat_list`), already printed or still to come; returns it.
    ///
    /// # Errors
    /// [`Error::Io`] (timed out) with everything printed after `timeout`.
    pub fn wait_for_output(&self, prefix: &str, timeout: Duration) -> Result<String> {
        let started = Instant::now();
        loop {
            if let Some(line) = lock(&self.output)
                .stdout
                .iter()
                .find(|line| line.starts_with(prefix))
            {
                return Ok(line.clone());
            }
            if started.elapsed() > timeout {
                return Err(Error::Io {
                    what: format!(
                        "wait {timeout:?} for the app to print a line starting with {prefix:?}; \
                         it printed:\n{}",
                        self.log_tail()
                    ),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no such line in time",
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The app's process id (the `tandem-desktop` child of the WebDriver server), while it
    /// runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        descendants(self.driver.id())
            .into_iter()
            .find(|p| p.ppid == self.driver.id() && comm(p.pid).starts_with(DESKTOP))
            .map(|p| p.pid)
    }

    /// Everything the WebDriver server and the app printed so far.
    #[must_use]
    pub fn log(&self) -> String {
        let output = lock(&self.output);
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            output.stdout.join("\n"),
            output.stderr
        )
    }

    /// The end of [`App::log`].
    fn log_tail(&self) -> String {
        let log = self.log();
        let skip = log.len().saturating_sub(LOG_TAIL);
        let start = (skip..=log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        log.get(start..).unwrap_or_default().to_owned()
    }

    /// Closes the session (which ends the app) and stops everything; returns what was
    /// printed.
    #[must_use]
    pub fn quit(mut self) -> String {
        self.stop();
        self.log()
    }

    fn stop(&mut self) {
        let tree = descendants(self.driver.id());
        if let Some(client) = self.client.take() {
            let _ = client.close().await_within(&self.runtime, CLOSE);
        }
        kill_all(&tree);
        let _ = self.driver.child_mut().kill();
        let _ = self.driver.child_mut().wait();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Collects the WebDriver server's stdout (line by line) and stderr as they come.
fn collect(child: &mut ChildGuard, output: &Arc<Mutex<Output>>) {
    if let Some(stdout) = child.child_mut().stdout.take() {
        let output = Arc::clone(output);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lock(&output).stdout.push(line);
            }
        });
    }
    if let Some(stderr) = child.child_mut().stderr.take() {
        let output = Arc::clone(output);
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => lock(&output)
                        .stderr
                        .push_str(&String::from_utf8_lossy(&line)),
                }
            }
        });
    }
}

/// `docs/screenshots` when `TANDEM_SCREENSHOTS=1`.
fn screenshot_dir() -> Option<PathBuf> {
    (std::env::var(SCREENSHOTS).as_deref() == Ok("1"))
        .then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"))
}

/// JavaScript truthiness of a script's result.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

/// Runs a future to completion on a runtime, bounded in time.
trait AwaitWithin: std::future::Future + Sized {
    /// `Err(())` when `limit` passes first.
    fn await_within(
        self,
        runtime: &tokio::runtime::Runtime,
        limit: Duration,
    ) -> std::result::Result<Self::Output, ()> {
        runtime.block_on(async move { tokio::time::timeout(limit, self).await.map_err(|_| ()) })
    }
}

impl<F: std::future::Future> AwaitWithin for F {}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;

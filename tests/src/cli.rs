//! The command-line programs as a user runs them: [`Home`] is one device's fresh data
//! directory with `tandem-phone` ([`Home::phone`]) and `tandem` ([`Home::companion`]) run
//! against it; [`Run`] is what one run printed and how it exited; [`BrokerProcess`] is a
//! `tandem broker` running in the background until it is signalled; [`Background`] is any
//! other program left running (a `link`, `scan` or `sync` that prints JSON Lines events as it
//! goes), read event by event, each wait bounded; [`wait_for_file`] waits for a file another
//! process writes.
//!
//! Every child gets `TANDEM_KEYRING=off` (the store key goes to a 0600 file in the home, never
//! to the user's keychain), no `TANDEM_HOME` (only `--home` counts), and no stdin.

use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{Error, Result, io};
use crate::process::{ChildGuard, bin};

/// The primary device's program.
pub const PHONE: &str = "tandem-phone";

/// The companion's program (also the broker).
pub const COMPANION: &str = "tandem";

/// What `tandem broker` prints once it listens, before the address.
pub const LISTENING: &str = "listening on mqtt://";

/// How long [`BrokerProcess::start`] waits for the address line.
pub const BROKER_READY: Duration = Duration::from_secs(10);

/// A command for the workspace binary `program` (built if needed, see [`bin`]), with the
/// test environment: `TANDEM_KEYRING=off`, no `TANDEM_HOME`, stdin closed.
///
/// # Errors
/// As [`bin`].
pub fn command(program: &str) -> Result<Command> {
    let mut command = Command::new(bin(program)?);
    command
        .env("TANDEM_KEYRING", "off")
        .env_remove("TANDEM_HOME")
        .stdin(Stdio::null());
    Ok(command)
}

/// Runs `command` to the end and keeps what it printed.
///
/// # Errors
/// [`Error::Io`] naming the command line if it cannot be started or waited for.
pub fn run(command: &mut Command) -> Result<Run> {
    let line = command_line(command);
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(io(format!("run `{line}`")))?;
    Ok(Run {
        command: line,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The program and its arguments, for messages.
fn command_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| {
            let part = part.to_string_lossy();
            if part.contains(' ') {
                format!("'{part}'")
            } else {
                part.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One device's data directory: `home` in a fresh temporary directory, deleted on drop. The
/// `home` directory itself does not exist until the first program run creates it, as on a
/// user's first run.
#[derive(Debug)]
pub struct Home {
    dir: TempDir,
    home: PathBuf,
}

impl Home {
    /// A new home, not created yet.
    ///
    /// # Errors
    /// [`Error::Io`] if the temporary directory cannot be made.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tandem-home-")
            .tempdir()
            .map_err(io("create a temporary directory for a home"))?;
        let home = dir.path().join("home");
        Ok(Self { dir, home })
    }

    /// The directory, as passed to `--home`.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.home
    }

    /// A scratch directory beside the home (not in it), for files a test writes, such as
    /// exports to import.
    #[must_use]
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `tandem-phone --home HOME ARGS...`.
    ///
    /// # Errors
    /// As [`command`] and [`run`].
    pub fn phone<I, S>(&self, args: I) -> Result<Run>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.program(PHONE, args)
    }

    /// Runs `tandem --home HOME ARGS...`.
    ///
    /// # Errors
    /// As [`command`] and [`run`].
    pub fn companion<I, S>(&self, args: I) -> Result<Run>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.program(COMPANION, args)
    }

    fn program<I, S>(&self, program: &str, args: I) -> Result<Run>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = command(program)?;
        command.arg("--home").arg(self.path()).args(args);
        run(&mut command)
    }

    /// Every regular file directly in the home (the database, its `-wal` and `-shm` files
    /// when present, the key file...) with its bytes, sorted by path.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory or file that cannot be read.
    pub fn files(&self) -> Result<Vec<(PathBuf, Vec<u8>)>> {
        let what = format!("list {}", self.path().display());
        let mut files = Vec::new();
        for entry in std::fs::read_dir(self.path()).map_err(io(what.clone()))? {
            let path = entry.map_err(io(what.clone()))?.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).map_err(io(format!("read {}", path.display())))?;
                files.push((path, bytes));
            }
        }
        files.sort();
        Ok(files)
    }
}

/// What one run of a program printed, and how it exited.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// Whether it exited with code 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Its exit code (`None` when a signal ended it).
    #[must_use]
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Stdout as one JSON document.
    ///
    /// # Errors
    /// [`Error::Io`] (invalid data) with the whole run when stdout is not JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.stdout).map_err(|e| self.not_json(e))
    }

    /// Stdout as JSON Lines: one document per non-empty line.
    ///
    /// # Errors
    /// [`Error::Io`] (invalid data) with the whole run when a line is not JSON.
    pub fn json_lines(&self) -> Result<Vec<serde_json::Value>> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).map_err(|e| self.not_json(e)))
            .collect()
    }

    /// The lines of stderr that report an error (`error: ...`), without the prefix.
    #[must_use]
    pub fn errors(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter_map(|line| line.strip_prefix("error: "))
            .collect()
    }

    fn not_json(&self, e: serde_json::Error) -> Error {
        Error::Io {
            what: format!("read the JSON output of {self}"),
            source: e.into(),
        }
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` ({})\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// Whether `needle` occurs anywhere in `haystack` (an empty needle always does).
#[must_use]
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// A `tandem broker` process: started in the background, its address read from what it
/// prints, stopped by a signal. Dropping it kills it.
#[derive(Debug)]
pub struct BrokerProcess {
    child: ChildGuard,
    addr: SocketAddr,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

/// How a [`BrokerProcess`] ended.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// Its exit status.
    pub status: ExitStatus,
    /// What it printed on stdout after the address line.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl BrokerProcess {
    /// Runs `tandem broker --listen LISTEN` and waits up to [`BROKER_READY`] for its
    /// `listening on mqtt://ADDR` line.
    ///
    /// # Errors
    /// [`Error::Exited`] with its stderr if it exits first; [`Error::Io`] if it cannot be
    /// started, prints something else, or stays silent too long.
    pub fn start(listen: &str) -> Result<Self> {
        let mut command = command(COMPANION)?;
        command
            .args(["broker", "--listen", listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(&mut command)?;
        let stdout = child.child_mut().stdout.take();
        let stderr = child.child_mut().stderr.take();
        let stdout = lines_of(stdout);
        let mut stderr = stderr.map(read_all);
        let started = Instant::now();
        let mut printed = String::new();
        let addr = loop {
            let left = BROKER_READY.saturating_sub(started.elapsed());
            match stdout.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.trim().strip_prefix(LISTENING) {
                        break addr.parse::<SocketAddr>().map_err(|e| Error::Io {
                            what: format!("read the address `tandem broker` printed: {line:?}"),
                            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                        })?;
                    }
                    printed.push_str(&line);
                    printed.push('\n');
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Stdout closed: it exited (or is about to). Report how, with its stderr.
                    let status = child
                        .wait_timeout(Duration::from_secs(5))?
                        .ok_or_else(|| not_ready(listen, "closed stdout but kept running"))?;
                    let log = stderr
                        .take()
                        .and_then(|h| h.join().ok())
                        .unwrap_or_default();
                    return Err(Error::Exited {
                        what: format!("tandem broker --listen {listen}"),
                        status,
                        log: format!("{printed}{log}"),
                    });
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(not_ready(
                        listen,
                        &format!("printed no address in {BROKER_READY:?} (stdout: {printed:?})"),
                    ));
                }
            }
        };
        Ok(Self {
            child,
            addr,
            stdout,
            stderr,
        })
    }

    /// The address it printed (the real port, also when port 0 was asked for).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it `signal` (a name `kill` knows: `INT`, `TERM`...) and waits up to `timeout`
    /// for it to exit.
    ///
    /// # Errors
    /// [`Error::Io`] if `kill` fails or it is still running after `timeout` (it is then
    /// killed).
    pub fn stop(mut self, signal: &str, timeout: Duration) -> Result<Stopped> {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(&pid)
            .status()
            .map_err(io(format!("run `kill -{signal} {pid}`")))?;
        if !sent.success() {
            return Err(Error::Io {
                what: format!("`kill -{signal} {pid}` failed with {sent}"),
                source: std::io::Error::other("the broker process could not be signalled"),
            });
        }
        let Some(status) = self.child.wait_timeout(timeout)? else {
            return Err(Error::Io {
                what: format!("wait for `tandem broker` (pid {pid}) to exit after SIG{signal}"),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("still running after {timeout:?}"),
                ),
            });
        };
        // The pipes are closed now: the readers end.
        let stdout: String = self.stdout.iter().map(|line| line + "\n").collect();
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Ok(Stopped {
            status,
            stdout,
            stderr,
        })
    }
}

fn not_ready(listen: &str, reason: &str) -> Error {
    Error::Io {
        what: format!("start `tandem broker --listen {listen}`"),
        source: std::io::Error::new(std::io::ErrorKind::TimedOut, reason.to_owned()),
    }
}

/// A thread sending each line of `pipe` as it comes; the channel closes at end of file.
pub fn lines_of(pipe: Option<impl Read + Send + 'static>) -> Receiver<String> {
    let (send, receive) = channel();
    if let Some(pipe) = pipe {
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
    }
    receive
}

/// A thread reading all of `pipe` until end of file.
pub(crate) fn read_all(pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut bytes = Vec::new();
        if BufReader::new(pipe).read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// How long [`Background`] waits for a finished process's pipes to close (a grandchild that
/// kept them open must not hang the test).
const PIPES_CLOSE: Duration = Duration::from_secs(5);

impl Home {
    /// Starts `tandem-phone --home HOME ARGS...` in the background, stdin closed.
    ///
    /// # Errors
    /// As [`command`] and [`Background::spawn`].
    pub fn spawn_phone<I, S>(&self, args: I) -> Result<Background>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = command(PHONE)?;
        command.arg("--home").arg(self.path()).args(args);
        Background::spawn(&mut command)
    }

    /// Starts `tandem-phone --home HOME ARGS...` in the background with `input` on its stdin,
    /// which is then closed (an answer to a prompt).
    ///
    /// # Errors
    /// As [`command`] and [`Background::spawn_with_input`].
    pub fn spawn_phone_with_input<I, S>(&self, args: I, input: &[u8]) -> Result<Background>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = command(PHONE)?;
        command.arg("--home").arg(self.path()).args(args);
        Background::spawn_with_input(&mut command, input)
    }

    /// Starts `tandem --home HOME ARGS...` in the background, stdin closed.
    ///
    /// # Errors
    /// As [`command`] and [`Background::spawn`].
    pub fn spawn_companion<I, S>(&self, args: I) -> Result<Background>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = command(COMPANION)?;
        command.arg("--home").arg(self.path()).args(args);
        Background::spawn(&mut command)
    }
}

/// A program left running in the background: its stdout read line by line as it comes (the
/// JSON Lines events of `tandem link`, `tandem-phone scan`...), its stderr collected as it
/// comes. Every wait is bounded; the errors carry everything it printed so far. Dropping it
/// kills it (SIGKILL).
#[derive(Debug)]
pub struct Background {
    child: ChildGuard,
    command: String,
    lines: Receiver<String>,
    /// The stdout lines taken from `lines` so far.
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Background {
    /// Spawns `command` with stdout and stderr piped (stdin as the command says: [`command`]
    /// closes it).
    ///
    /// # Errors
    /// [`Error::Io`] naming the command line if it cannot be started.
    pub fn spawn(command: &mut Command) -> Result<Self> {
        let line = command_line(command);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = command.spawn().map_err(io(format!("start `{line}`")))?;
        Ok(Self::watch(ChildGuard::new(child, line.clone()), line))
    }

    /// Spawns `command` like [`Background::spawn`], writes `input` to its stdin and closes it.
    /// A program that exits without reading its input is not an error.
    ///
    /// # Errors
    /// [`Error::Io`] naming the command line if it cannot be started or the input cannot be
    /// written.
    pub fn spawn_with_input(command: &mut Command, input: &[u8]) -> Result<Self> {
        let line = command_line(command);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(io(format!("start `{line}`")))?;
        let stdin = child.stdin.take();
        let background = Self::watch(ChildGuard::new(child, line.clone()), line);
        if let Some(mut stdin) = stdin {
            match stdin.write_all(input) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(io(format!("write the input of `{}`", background.command))(
                        e,
                    ));
                }
                _ => {}
            }
            // Dropping `stdin` closes it: the program reads end of file after the input.
        }
        Ok(background)
    }

    fn watch(mut child: ChildGuard, command: String) -> Self {
        let stdout = child.child_mut().stdout.take();
        let stderr = child.child_mut().stderr.take();
        let collected = Arc::new(Mutex::new(String::new()));
        let stderr_reader = stderr.map(|pipe| {
            let collected = Arc::clone(&collected);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => collected
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push_str(&String::from_utf8_lossy(&line)),
                    }
                }
            })
        });
        Self {
            child,
            command,
            lines: lines_of(stdout),
            stdout: Vec::new(),
            stderr: collected,
            stderr_reader,
        }
    }

    /// The command line, for messages.
    #[must_use]
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stdout lines read so far (by the `next_*` and `wait_*` calls).
    #[must_use]
    pub fn printed(&self) -> &[String] {
        &self.stdout
    }

    /// The stdout lines read so far that are JSON documents, parsed.
    #[must_use]
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Everything it printed on stderr so far.
    #[must_use]
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Its exit status if it has exited, without blocking.
    ///
    /// # Errors
    /// [`Error::Io`] if the status cannot be read.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// The next line of stdout, waiting up to `timeout`; `None` once stdout is closed (it
    /// exited, or is exiting).
    ///
    /// # Errors
    /// [`Error::Io`] (timed out) with everything it printed if no line comes in time.
    pub fn next_line(&mut self, timeout: Duration) -> Result<Option<String>> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.stdout.push(line.clone());
                Ok(Some(line))
            }
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(self.timed_out("a line on stdout", timeout)),
        }
    }

    /// The next non-empty line of stdout as JSON, waiting up to `timeout`; `None` once stdout
    /// is closed.
    ///
    /// # Errors
    /// As [`Background::next_line`], and [`Error::Io`] (invalid data) with everything it
    /// printed when the line is not JSON.
    pub fn next_json(&mut self, timeout: Duration) -> Result<Option<serde_json::Value>> {
        let started = Instant::now();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            let Some(line) = self.next_line(left)? else {
                return Ok(None);
            };
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| Error::Io {
                    what: format!("read the JSON line {line:?} printed by {self}"),
                    source: e.into(),
                });
        }
    }

    /// Reads JSON lines until one satisfies `wanted` (described by `what` in errors) and
    /// returns it; the lines before it stay in [`Background::printed`].
    ///
    /// # Errors
    /// [`Error::Exited`] with everything it printed if it exits first, [`Error::Io`] if
    /// `timeout` passes first or a line is not JSON.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut wanted: impl FnMut(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let started = Instant::now();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            let next = self.next_json(left).map_err(|e| waiting_for(what, e))?;
            match next {
                Some(value) if wanted(&value) => return Ok(value),
                Some(_) => {}
                None => {
                    // Stdout closed: it exited (or is about to); report how.
                    let status = self.child.wait_timeout(PIPES_CLOSE)?;
                    return Err(match status {
                        Some(status) => Error::Exited {
                            what: format!("`{}` (while waiting for {what})", self.command),
                            status,
                            log: self.printed_so_far(),
                        },
                        None => self.timed_out(
                            &format!("{what} (it closed stdout but kept running)"),
                            PIPES_CLOSE,
                        ),
                    });
                }
            }
        }
    }

    /// Reads JSON lines until one whose `"event"` is `event`, and returns it.
    ///
    /// # Errors
    /// As [`Background::wait_for`].
    pub fn wait_for_event(&mut self, event: &str, timeout: Duration) -> Result<serde_json::Value> {
        self.wait_for(&format!("the {event:?} event"), timeout, |value| {
            value.get("event").and_then(serde_json::Value::as_str) == Some(event)
        })
    }

    /// Sends it `signal` (a name `kill` knows: `TERM`, `INT`...).
    ///
    /// # Errors
    /// [`Error::Io`] if `kill` cannot run or fails (for example, it already exited and was
    /// reaped).
    pub fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(&pid)
            .stderr(Stdio::null())
            .status()
            .map_err(io(format!("run `kill -{signal} {pid}`")))?;
        if sent.success() {
            Ok(())
        } else {
            Err(Error::Io {
                what: format!(
                    "`kill -{signal} {pid}` ({}) failed with {sent}",
                    self.command
                ),
                source: std::io::Error::other("the process could not be signalled"),
            })
        }
    }

    /// Waits up to `timeout` for it to exit by itself and returns the whole run: everything it
    /// printed (also the lines already read) and how it exited.
    ///
    /// # Errors
    /// [`Error::Io`] (timed out) with everything it printed if it is still running after
    /// `timeout` (it is then killed).
    pub fn finish(mut self, timeout: Duration) -> Result<Run> {
        match self.child.wait_timeout(timeout)? {
            Some(status) => Ok(self.into_run(status)),
            None => {
                let what = format!("`{}`", self.command);
                let run = self.kill()?;
                Err(Error::Io {
                    what: format!("wait {timeout:?} for {what} to exit; it was killed: {run}"),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "still running after the timeout",
                    ),
                })
            }
        }
    }

    /// Kills it now with SIGKILL (a crash, a power cut) and returns the whole run. If it had
    /// already exited, the run says how (see [`Run::code`]: `None` when the signal ended it).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be waited for.
    pub fn kill(mut self) -> Result<Run> {
        // Fails only if it already exited, which is fine: wait returns that status.
        let _ = self.child.child_mut().kill();
        let status = self
            .child
            .child_mut()
            .wait()
            .map_err(io(format!("wait for `{}`", self.command)))?;
        Ok(self.into_run(status))
    }

    /// Collects the rest of stdout and stderr (bounded by [`PIPES_CLOSE`]) into a [`Run`].
    fn into_run(mut self, status: ExitStatus) -> Run {
        let deadline = Instant::now() + PIPES_CLOSE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stdout.push(line),
                Err(_) => break,
            }
        }
        if let Some(reader) = self.stderr_reader.take() {
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        let stdout: String = self.stdout.iter().map(|line| format!("{line}\n")).collect();
        Run {
            command: self.command.clone(),
            status,
            stdout,
            stderr: self.stderr(),
        }
    }

    fn printed_so_far(&self) -> String {
        format!(
            "--- stdout so far\n{}\n--- stderr so far\n{}",
            self.stdout.join("\n"),
            self.stderr()
        )
    }

    fn timed_out(&self, what: &str, waited: Duration) -> Error {
        Error::Io {
            what: format!("wait {waited:?} for {what} from {self}"),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "nothing came in time"),
        }
    }
}

/// Adds what was awaited to a timeout or a bad line.
fn waiting_for(what: &str, e: Error) -> Error {
    match e {
        Error::Io { what: was, source } => Error::Io {
            what: format!("while waiting for {what}: {was}"),
            source,
        },
        other => other,
    }
}

impl fmt::Display for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (pid {})\n{}",
            self.command,
            self.child.id(),
            self.printed_so_far()
        )
    }
}

/// Waits up to `timeout` for `path` to exist and be non-empty (a file another process writes,
/// such as the QR code `tandem link --qr-png` keeps up to date).
///
/// # Errors
/// [`Error::Io`] (timed out) naming the file if it does not appear in time.
pub fn wait_for_file(path: &Path, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0) {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(Error::Io {
                what: format!("wait {timeout:?} for {} to be written", path.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the file did not appear in time",
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_found_anywhere_and_only_where_they_are() {
        assert!(contains_bytes(b"xxsecretyy", b"secret"));
        assert!(contains_bytes(b"secret", b"secret"));
        assert!(!contains_bytes(b"secre", b"secret"));
        assert!(!contains_bytes(b"s e c r e t", b"secret"));
        assert!(contains_bytes(b"", b""));
    }

    #[test]
    fn a_run_reads_json_documents_lines_and_error_lines() {
        let run = run(Command::new("sh").args([
            "-c",
            "printf '{\"a\":1}\\n\\n{\"a\":2}\\n'; echo 'error: bad.txt, line 3' >&2; exit 1",
        ]))
        .unwrap();
        assert_eq!(run.code(), Some(1));
        assert!(!run.success());
        let lines = run.json_lines().unwrap();
        assert_eq!(
            lines,
            [serde_json::json!({"a": 1}), serde_json::json!({"a": 2})]
        );
        assert!(run.json().is_err(), "two documents are not one");
        assert_eq!(run.errors(), ["bad.txt, line 3"]);
        assert!(run.to_string().contains("sh -c"), "{run}");
    }

    #[test]
    fn output_that_is_not_json_is_an_error_showing_the_output() {
        let run = run(Command::new("echo").arg("not json")).unwrap();
        let err = run.json().unwrap_err().to_string();
        assert!(err.contains("not json") && err.contains("echo"), "{err}");
    }

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]).stdin(Stdio::null());
        command
    }

    #[test]
    fn a_background_run_is_read_event_by_event_then_whole() {
        let mut bg = Background::spawn(&mut sh(
            "echo '{\"event\":\"code\",\"index\":0}'; sleep 0.2; \
             echo '{\"event\":\"linked\",\"device\":\"a.1\"}'; echo 'almost done' >&2; exit 3",
        ))
        .unwrap();
        let linked = bg
            .wait_for_event("linked", Duration::from_secs(10))
            .unwrap();
        assert_eq!(linked["device"], "a.1");
        assert_eq!(bg.events().len(), 2, "the lines before it are kept");
        assert_eq!(bg.events()[0]["event"], "code");
        let run = bg.finish(Duration::from_secs(10)).unwrap();
        assert_eq!(run.code(), Some(3), "{run}");
        assert_eq!(run.json_lines().unwrap().len(), 2, "{run}");
        assert_eq!(run.stderr, "almost done\n", "{run}");
    }

    #[test]
    fn a_wait_that_times_out_says_so_with_the_output_and_kill_ends_the_process() {
        let mut bg =
            Background::spawn(&mut sh("echo '{\"event\":\"code\"}'; exec sleep 30")).unwrap();
        let started = Instant::now();
        let err = bg
            .wait_for_event("linked", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            err.contains("\"linked\"") && err.contains("in time"),
            "{err}"
        );
        assert!(
            err.contains("{\"event\":\"code\"}"),
            "the output so far: {err}"
        );
        let run = bg.kill().unwrap();
        assert_eq!(run.code(), None, "ended by the signal: {run}");
    }

    #[test]
    fn a_program_that_exits_before_the_event_is_reported_with_its_stderr() {
        let mut bg = Background::spawn(&mut sh(
            "echo '{\"event\":\"code\"}'; echo 'error: gone' >&2; exit 1",
        ))
        .unwrap();
        let err = bg
            .wait_for_event("synced", Duration::from_secs(10))
            .unwrap_err();
        assert!(matches!(err, Error::Exited { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("synced") && text.contains("error: gone"),
            "{text}"
        );
    }

    #[test]
    fn finish_kills_a_program_that_does_not_end_in_time() {
        let bg = Background::spawn(&mut sh("exec sleep 30")).unwrap();
        let started = Instant::now();
        let err = bg
            .finish(Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        assert!(err.contains("sleep 30") && err.contains("killed"), "{err}");
    }

    #[test]
    fn input_reaches_the_program_and_a_line_that_is_not_json_is_an_error() {
        let mut bg = Background::spawn_with_input(
            &mut sh("read answer; echo \"{\\\"answer\\\":\\\"$answer\\\"}\"; echo plain"),
            b"y\n",
        )
        .unwrap();
        let answer = bg.next_json(Duration::from_secs(10)).unwrap().unwrap();
        assert_eq!(answer["answer"], "y");
        let err = bg
            .next_json(Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("plain"), "{err}");
        let run = bg.finish(Duration::from_secs(10)).unwrap();
        assert!(run.success(), "{run}");
        assert_eq!(bg_lines(&run), ["{\"answer\":\"y\"}", "plain"]);
    }

    fn bg_lines(run: &Run) -> Vec<&str> {
        run.stdout.lines().collect()
    }

    #[test]
    fn a_file_written_later_is_waited_for_and_a_missing_one_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code.txt");
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                std::fs::write(path, "tandem://link?v=1\n").unwrap();
            })
        };
        wait_for_file(&path, Duration::from_secs(10)).unwrap();
        writer.join().unwrap();
        let missing = dir.path().join("never.png");
        let err = wait_for_file(&missing, Duration::from_millis(50))
            .unwrap_err()
            .to_string();
        assert!(err.contains("never.png"), "{err}");
    }
}

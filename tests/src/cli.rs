//! The command-line programs as a user runs them: [`Home`] is one device's fresh data
//! directory with `tandem-phone` ([`Home::phone`]) and `tandem` ([`Home::companion`]) run
//! against it; [`Run`] is what one run printed and how it exited; [`BrokerProcess`] is a
//! `tandem broker` running in the background until it is signalled.
//!
//! Every child gets `TANDEM_KEYRING=off` (the store key goes to a 0600 file in the home, never
//! to the user's keychain), no `TANDEM_HOME` (only `--home` counts), and no stdin.

use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
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
fn lines_of(pipe: Option<impl Read + Send + 'static>) -> Receiver<String> {
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
fn read_all(pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut bytes = Vec::new();
        if BufReader::new(pipe).read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
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
}

//! Processes for process-level tests: finding the workspace's built binaries ([`bin`]),
//! making sure every spawned process dies with the test ([`ChildGuard`]), and the trees of
//! processes a program starts ([`descendants`], [`kill_all`]; the app's WebKit processes).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, io};

/// The path of the workspace binary `name` (`tandem`, `tandem-phone`) built with the same
/// profile as the running test: `<target>/<profile>/<name>`, found from the test executable
/// (`<target>/<profile>/deps/<test>-<hash>`).
///
/// When the test runs under Cargo (`$CARGO` is set, as `cargo test` does), the first call in
/// a test process runs `cargo build --workspace --bins` into the same target directory, so
/// the binaries are never stale (`cargo test -p tandem-tests` does not build another
/// package's binaries; a no-op build takes well under a second). Outside Cargo it builds only
/// if the binary is missing. Either way at most one build per process (`OnceLock`).
///
/// # Errors
/// [`Error::Io`] if the test executable cannot be located, [`Error::Build`] if the build
/// fails, [`Error::BinaryMissing`] if the binary still does not exist.
pub fn bin(name: &str) -> Result<PathBuf> {
    static BUILD: OnceLock<Result<(), String>> = OnceLock::new();
    let exe = std::env::current_exe().map_err(io("locate the running test executable"))?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        Path::to_path_buf,
    );
    let freshen = std::env::var_os("CARGO").is_some();
    find_or_build(&exe, &workspace, name, freshen, |plan| {
        BUILD.get_or_init(|| plan.run()).clone()
    })
}

/// Where the binaries of the running test's profile live, and how to build them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The workspace root (the build's working directory).
    pub workspace: PathBuf,
    /// `<target>`: the `--target-dir` to build into.
    pub target_dir: PathBuf,
    /// `<target>/<profile>`: where the binaries appear.
    pub profile_dir: PathBuf,
    /// The profile flags: none for `debug`, `--release`, or `--profile NAME`.
    pub profile_args: Vec<String>,
}

impl BuildPlan {
    /// The plan for a test executable at `exe` in the workspace at `workspace`.
    #[must_use]
    pub fn for_test_exe(exe: &Path, workspace: &Path) -> Self {
        let exe_dir = exe.parent().unwrap_or(Path::new("."));
        let profile_dir = if exe_dir.file_name().is_some_and(|n| n == "deps") {
            exe_dir.parent().unwrap_or(exe_dir)
        } else {
            exe_dir
        };
        let target_dir = profile_dir.parent().unwrap_or(profile_dir);
        let profile_args = match profile_dir.file_name().and_then(|n| n.to_str()) {
            None | Some("debug") => Vec::new(),
            Some("release") => vec!["--release".to_owned()],
            Some(other) => vec!["--profile".to_owned(), other.to_owned()],
        };
        Self {
            workspace: workspace.to_path_buf(),
            target_dir: target_dir.to_path_buf(),
            profile_dir: profile_dir.to_path_buf(),
            profile_args,
        }
    }

    /// The cargo arguments.
    #[must_use]
    pub fn args(&self) -> Vec<OsString> {
        // The whole workspace, exactly as `.ci/test` builds it before the tests: building one
        // package alone would unify dependency features differently and rebuild them.
        let mut args: Vec<OsString> = ["build", "--workspace", "--bins", "--target-dir"]
            .into_iter()
            .map(OsString::from)
            .collect();
        args.push(self.target_dir.clone().into_os_string());
        args.extend(self.profile_args.iter().map(OsString::from));
        args
    }

    /// Runs the build (`$CARGO`, else `cargo`), its output going to the test's stderr.
    ///
    /// # Errors
    /// A description of the failure: the command line and its exit status or spawn error.
    pub fn run(&self) -> Result<(), String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let command_line = format!(
            "{} {}",
            cargo.to_string_lossy(),
            self.args()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        eprintln!("building the workspace binaries: {command_line}");
        let status = Command::new(&cargo)
            .args(self.args())
            .current_dir(&self.workspace)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("`{command_line}` could not start: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{command_line}` failed with {status}"))
        }
    }
}

/// [`bin`] with the build step passed in (tests use a fake one). `freshen`: build even if
/// the binary exists.
fn find_or_build(
    exe: &Path,
    workspace: &Path,
    name: &str,
    freshen: bool,
    build: impl FnOnce(&BuildPlan) -> Result<(), String>,
) -> Result<PathBuf> {
    let plan = BuildPlan::for_test_exe(exe, workspace);
    let path = plan
        .profile_dir
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() && !freshen {
        return Ok(path);
    }
    build(&plan).map_err(|reason| Error::Build { reason })?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::BinaryMissing {
            name: name.to_owned(),
            path,
        })
    }
}

/// A spawned process that is killed and waited for when dropped, so a failing test leaves
/// no process behind.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    what: String,
}

impl ChildGuard {
    /// Spawns `command`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the program if it cannot be started.
    pub fn spawn(command: &mut Command) -> Result<Self> {
        let what = command.get_program().to_string_lossy().into_owned();
        let child = command.spawn().map_err(io(format!("start {what}")))?;
        Ok(Self { child, what })
    }

    /// Guards an already spawned process; `what` names it in errors.
    #[must_use]
    pub fn new(child: Child, what: impl Into<String>) -> Self {
        Self {
            child,
            what: what.into(),
        }
    }

    /// The process id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The process, to take its pipes or signal it.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Its exit status if it has exited, without blocking.
    ///
    /// # Errors
    /// [`Error::Io`] if the status cannot be read.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .map_err(io(format!("check on {}", self.what)))
    }

    /// Waits up to `timeout` for it to exit by itself; `None` if it is still running.
    ///
    /// # Errors
    /// [`Error::Io`] if the status cannot be read.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if started.elapsed() >= timeout {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills it now and waits for it.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be waited for.
    pub fn kill(mut self) -> Result<ExitStatus> {
        // Fails only if it already exited, which is fine: wait returns that status.
        let _ = self.child.kill();
        self.child
            .wait()
            .map_err(io(format!("wait for {}", self.what)))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Process trees: a program and everything it started (the app's WebKit processes).

/// A process as `/proc` shows it: its id, its parent and its start time (which tells a
/// reused id apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    /// Its id.
    pub pid: u32,
    /// Its parent's id.
    pub ppid: u32,
    /// Its start time (clock ticks after boot).
    pub start: u64,
}

/// Reads `/proc/PID/stat`: the parent (field 4) and the start time (field 22), counted after
/// the command name, which may hold spaces and parentheses.
#[must_use]
pub fn proc_stat(pid: u32) -> Option<Proc> {
    parse_stat(
        pid,
        &std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
    )
}

/// [`proc_stat`] of a `/proc/PID/stat` text.
#[must_use]
pub fn parse_stat(pid: u32, stat: &str) -> Option<Proc> {
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (the state).
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some(Proc { pid, ppid, start })
}

/// Every living process.
#[must_use]
pub fn all_procs() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// The descendants of `root` (not `root` itself), parents before children.
#[must_use]
pub fn descendants(root: u32) -> Vec<Proc> {
    let procs = all_procs();
    let mut found: Vec<Proc> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in procs.iter().filter(|p| p.ppid == parent) {
            if !found.iter().any(|f| f.pid == p.pid) {
                found.push(*p);
                frontier.push(p.pid);
            }
        }
    }
    found
}

/// The command name of a process (`/proc/PID/comm`).
#[must_use]
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Sends SIGKILL to each process still alive with the same start time (never to a process
/// that took a freed id since).
pub fn kill_all(procs: &[Proc]) {
    for p in procs {
        if proc_stat(p.pid).is_some_and(|now| now.start == p.start) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(p.pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;

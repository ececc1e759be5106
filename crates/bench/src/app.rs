//! Desktop-app benchmark: what the real `tandem-desktop` window costs in memory and how fast
//! it starts on a large history, each beside a baseline measured in the same run.
//!
//! Everything runs under its own virtual screen (`Xvfb`) and private session bus
//! (`dbus-daemon`), with the release binaries found beside this one (`tandem-desktop`,
//! `tandem`, `tandem-phone`), and a `tandem broker` on the loopback port the cached homes
//! were linked through, so that the app comes up online as on a user's machine.
//!
//! The history (`--work DIR`, built once and reused): a phone with 1M generated messages in
//! 40 chats (`tandem-phone generate`), and a desktop home linked to it and synced by the
//! command line (`tandem link --qr-png` + `tandem-phone scan --qr-png`, as `.ci/demo` does
//! without a display). `--quick` uses a 100k-message history of its own.
//!
//! Measured, three runs each:
//! - `app.pss_mb`: the proportional set size (the sum of `Pss:` in `/proc/PID/smaps_rollup`)
//!   of the app's process and all its descendants (`WebKitWebProcess`,
//!   `WebKitNetworkProcess`), with the history open and the chat list shown (the app prints
//!   `ready: chat_list` once the UI rendered it), once it settled; baseline:
//!   `tandem-desktop --bare`, a bare Tauri window on a minimal page, its web view set up as
//!   the app's (no compositing, no caches), measured the same way.
//!   Goal: at most 50 MB above the bare window.
//! - `app.cold_start_ms`: from spawning the app to its `ready: chat_list` line (the page
//!   cache is warm: the same history was opened before); goal under 1 s. Baseline: the
//!   command-line `tandem chats` on the same home (opening the store and listing the chats,
//!   no window).
//! - `app.deb_mb` (with `--deb FILE`): the size of the `.deb` the Tauri bundler built.
//!
//! Every line is `name: value unit`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tandem_tests::app::{Display, SessionBus, app_environment, free_port};
use tandem_tests::cli::{BrokerProcess, lines_of};
use tandem_tests::process::{ChildGuard, comm, descendants, kill_all};

use crate::report::{line, load_average, short};

/// Messages of the full run's history.
const MESSAGES_FULL: usize = 1_000_000;
/// Messages of the `--quick` run's history.
const MESSAGES_QUICK: usize = 100_000;
/// Chats the history is spread over.
const CHATS: usize = 40;
/// Seed of the generated history.
const SEED: &str = "7";
/// Runs of each measurement (the median is reported).
const RUNS: usize = 3;
/// Where `--work` defaults to: a real disk, not a tmpfs `/tmp`.
const DEFAULT_WORK: &str = "/var/tmp/tandem-bench-app";
/// Longest `tandem link` may take to write its QR code.
const HELPER_READY: Duration = Duration::from_secs(15);
/// Longest the app may take to show its chat list.
const APP_READY: Duration = Duration::from_secs(60);
/// Longest linking and syncing the cached desktop may take.
const LINK_LIMIT: Duration = Duration::from_secs(900);
/// How often the memory is sampled while it settles.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// The memory counts as settled once this many consecutive samples stay within
/// [`SETTLED_WITHIN_KB`] of each other...
const SETTLED_SAMPLES: usize = 8;
/// ...(kB).
const SETTLED_WITHIN_KB: u64 = 512;
/// ...and no sooner than this after the window is up (a web process still loading grows).
const SETTLE_AT_LEAST: Duration = Duration::from_secs(2);
/// Longest the memory may take to settle; the last sample counts after that (and says so).
const SETTLE_AT_MOST: Duration = Duration::from_secs(20);
/// The names (as `/proc/PID/comm` cuts them) of WebKit's helper processes, whose presence
/// says the bare window's web view is up (it prints nothing).
const WEBKIT_HELPERS: [&str; 2] = ["WebKitWebProces", "WebKitNetworkPr"];
/// The line the app prints once the UI rendered the chat list.
const READY: &str = "ready: chat_list";

/// Goal: the app's memory above the bare window's.
const GOAL_OVER_BARE_MB: f64 = 50.0;
/// Goal: spawn to the chat list.
const GOAL_COLD_START: Duration = Duration::from_secs(1);

/// What a run needs: the history's size, where the cache lives, the optional `.deb`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Messages of the history (1M, or 100k with `--quick`).
    pub messages: usize,
    /// The cache folder (`--work`).
    pub work: PathBuf,
    /// The `.deb` to weigh (`--deb`).
    pub deb: Option<PathBuf>,
}

impl Options {
    /// The options of a full or `--quick` run.
    #[must_use]
    pub fn new(quick: bool, work: Option<PathBuf>, deb: Option<PathBuf>) -> Self {
        Self {
            messages: if quick { MESSAGES_QUICK } else { MESSAGES_FULL },
            work: work.unwrap_or_else(|| PathBuf::from(DEFAULT_WORK)),
            deb,
        }
    }
}

/// Runs the app benchmark and prints one figure per line.
///
/// # Errors
/// When a binary or a system program is missing, the history cannot be built or linked, or
/// the app does not show its chat list in time.
pub fn run(out: &mut dyn Write, options: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    load_average(out, "app", "start")?;
    let bins = Binaries::find()?;
    let size = short(options.messages);
    let cache = options.work.join(&size);
    let (history, built) = History::cached_or_built(&bins, &cache, options.messages)?;
    line(
        out,
        "app.history",
        options.messages,
        &format!(
            "messages in {CHATS} chats ({}; {})",
            cache.display(),
            if built {
                format!("built in {:.1} s", started.elapsed().as_secs_f64())
            } else {
                "cached".to_owned()
            }
        ),
    )?;

    let (broker, broker_url) = broker(history.port).with_context(|| {
        format!(
            "the cached homes in {} were linked through 127.0.0.1:{}; free that port or \
             delete the folder to rebuild them on another",
            cache.display(),
            history.port
        )
    })?;
    let screen = Screen::start()?;
    let scratch = tempfile::Builder::new()
        .prefix("tandem-bench-app-")
        .tempdir()
        .context("creating a folder for the app's XDG directories")?;

    // The bare window, three times.
    let mut bare = Vec::new();
    for run in 0..RUNS {
        let xdg = scratch.path().join(format!("bare-{run}"));
        let mut app = Launched::spawn(&bins.desktop, &["--bare".to_owned()], &screen, &xdg)?;
        app.wait_for_web_view(APP_READY)?;
        bare.push(app.settled_memory()?);
    }
    // The app on the history, three times: the start time and then the memory.
    let mut starts = Vec::new();
    let mut reported = Vec::new();
    let mut full = Vec::new();
    let args = vec![
        "--home".to_owned(),
        history.desktop.to_string_lossy().into_owned(),
        "--broker".to_owned(),
        broker_url,
    ];
    for run in 0..RUNS {
        let xdg = scratch.path().join(format!("app-{run}"));
        let spawned = Instant::now();
        let mut app = Launched::spawn(&bins.desktop, &args, &screen, &xdg)?;
        let ready = app.wait_for_line(READY, APP_READY)?;
        starts.push(spawned.elapsed());
        reported.push(app_reported_ms(&ready));
        full.push(app.settled_memory()?);
    }
    // Baseline of the start: the command line opening the same store and listing its chats.
    let mut cli = Vec::new();
    for _ in 0..RUNS {
        let listing = Instant::now();
        let status = Command::new(&bins.companion)
            .arg("--home")
            .arg(&history.desktop)
            .args(["--json", "chats"])
            .env("TANDEM_KEYRING", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running `tandem chats`")?;
        anyhow::ensure!(status.success(), "`tandem chats` failed with {status}");
        cli.push(listing.elapsed());
    }
    drop(screen);
    drop(broker);

    // Memory.
    let bare_mb = median_memory(&bare);
    let app_mb = median_memory(&full);
    line(
        out,
        "app.pss_mb.bare",
        format!("{:.1}", bare_mb.total),
        &format!(
            "MB (tandem-desktop --bare: a bare Tauri window on a minimal page, web view set up as the app's; median of {RUNS}; {}; runs {})",
            bare_mb.parts(),
            totals(&bare)
        ),
    )?;
    line(
        out,
        "app.pss_mb.app",
        format!("{:.1}", app_mb.total),
        &format!(
            "MB ({} messages open, chat list shown; median of {RUNS}; {}; runs {})",
            short(options.messages),
            app_mb.parts(),
            totals(&full)
        ),
    )?;
    let over = app_mb.total - bare_mb.total;
    line(
        out,
        "app.pss_mb.over_bare",
        format!("{over:.1}"),
        "MB (the app above the bare window)",
    )?;
    for (name, samples) in [("bare", &bare), ("app", &full)] {
        if let Some(unsettled) = samples.iter().find(|m| !m.settled) {
            line(
                out,
                &format!("app.pss_mb.{name}.note"),
                "unsettled",
                &format!(
                    "(a run's memory still moved after {SETTLE_AT_MOST:?}; its last sample, {:.1} MB, counts)",
                    unsettled.kb as f64 / 1024.0
                ),
            )?;
        }
    }

    // Start.
    let start = median(&starts);
    let cli_median = median(&cli);
    line(
        out,
        "app.cold_start_ms",
        ms(start),
        &format!(
            "ms (spawn to `{READY}` on {} messages, median of {RUNS}: {}; the app's own clock: {}; warm page cache)",
            short(options.messages),
            list_ms(&starts),
            reported
                .iter()
                .map(|r| r.map_or_else(|| "?".to_owned(), |ms| ms.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )?;
    line(
        out,
        "app.baseline.cli_chats_ms",
        ms(cli_median),
        &format!(
            "ms (`tandem chats` on the same home: open the store, list the chats, no window; median of {RUNS}: {})",
            list_ms(&cli)
        ),
    )?;
    line(
        out,
        "app.cold_start.ratio_to_cli_chats",
        format!(
            "{:.1}",
            start.as_secs_f64() / cli_median.as_secs_f64().max(1e-9)
        ),
        "x",
    )?;

    if let Some(deb) = &options.deb {
        let bytes = std::fs::metadata(deb)
            .with_context(|| format!("reading the size of {}", deb.display()))?
            .len();
        line(
            out,
            "app.deb_mb",
            format!("{:.1}", bytes as f64 / 1e6),
            &format!("MB ({})", deb.display()),
        )?;
    }

    goal_line(
        out,
        "app.goal.memory",
        over <= GOAL_OVER_BARE_MB,
        &format!("{over:.1} MB above the bare window (goal <= {GOAL_OVER_BARE_MB:.0} MB)"),
    )?;
    goal_line(
        out,
        "app.goal.cold_start",
        start < GOAL_COLD_START,
        &format!(
            "{} ms to the chat list on {} messages (goal < {} ms)",
            ms(start),
            short(options.messages),
            ms(GOAL_COLD_START)
        ),
    )?;
    load_average(out, "app", "end")?;
    line(
        out,
        "app.run_time",
        format!("{:.1}", started.elapsed().as_secs_f64()),
        "s",
    )
}

// ---------------------------------------------------------------------------------------
// Binaries and system programs.

/// The release binaries this benchmark runs, found beside it.
#[derive(Debug, Clone)]
struct Binaries {
    desktop: PathBuf,
    companion: PathBuf,
    phone: PathBuf,
}

impl Binaries {
    fn find() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating tandem-bench")?;
        let dir = exe.parent().unwrap_or(Path::new("."));
        let find = |name: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                bail!(
                    "{} is missing: build it beside tandem-bench first \
                     (`cargo build --release -p tandem-desktop -p tandem-cli`; the UI must be \
                     built before: `cd ui && npm run build`)",
                    path.display()
                )
            }
        };
        Ok(Self {
            desktop: find("tandem-desktop")?,
            companion: find("tandem")?,
            phone: find("tandem-phone")?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// The cached history.

/// The cached homes: a phone with the generated history and a desktop linked to it, and
/// the port they were linked through.
#[derive(Debug, Clone)]
struct History {
    desktop: PathBuf,
    port: u16,
}

/// Files that mark a finished step of the cache.
const GENERATED_MARK: &str = "generated.ok";
const LINKED_MARK: &str = "linked.ok";
const PORT_FILE: &str = "broker-port";

impl History {
    /// The cached homes in `dir`, built first if missing or unfinished; also whether they
    /// were built now.
    fn cached_or_built(
        bins: &Binaries,
        dir: &Path,
        messages: usize,
    ) -> anyhow::Result<(Self, bool)> {
        let phone = dir.join("phone");
        let desktop = dir.join("desktop");
        let port_file = dir.join(PORT_FILE);
        let port = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok());
        let mut built = false;
        let port = match port {
            Some(port) if dir.join(GENERATED_MARK).is_file() => port,
            _ => {
                built = true;
                if dir.exists() {
                    std::fs::remove_dir_all(dir)
                        .with_context(|| format!("clearing {}", dir.display()))?;
                }
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let port = free_port()?;
                std::fs::write(&port_file, port.to_string())
                    .with_context(|| format!("writing {}", port_file.display()))?;
                let url = format!("mqtt://127.0.0.1:{port}");
                run_ok(
                    Command::new(&bins.phone)
                        .arg("--home")
                        .arg(&phone)
                        .args(["init", "--name", "Alice", "--broker", &url]),
                    "tandem-phone init",
                )?;
                run_ok(
                    Command::new(&bins.phone).arg("--home").arg(&phone).args([
                        "generate",
                        "--chats",
                        &CHATS.to_string(),
                        "--messages",
                        &messages.to_string(),
                        "--seed",
                        SEED,
                    ]),
                    "tandem-phone generate",
                )?;
                mark(dir, GENERATED_MARK)?;
                port
            }
        };
        if !dir.join(LINKED_MARK).is_file() {
            built = true;
            if desktop.exists() {
                std::fs::remove_dir_all(&desktop)
                    .with_context(|| format!("clearing {}", desktop.display()))?;
            }
            link(bins, &phone, &desktop, dir, port)?;
            mark(dir, LINKED_MARK)?;
        }
        Ok((Self { desktop, port }, built))
    }
}

/// Links a new desktop home to the phone by QR code, as `.ci/demo` does without a display:
/// `tandem link --qr-png` and `tandem-phone scan --qr-png --yes`, until both finish (the
/// whole history synced).
fn link(
    bins: &Binaries,
    phone: &Path,
    desktop: &Path,
    dir: &Path,
    port: u16,
) -> anyhow::Result<()> {
    let (_broker, broker_url) = broker(port)?;
    let qr = dir.join("qr.png");
    let _ = std::fs::remove_file(&qr);
    let mut linking = ChildGuard::spawn(
        Command::new(&bins.companion)
            .arg("--home")
            .arg(desktop)
            .args(["link", "--broker", &broker_url, "--name", "Bench laptop"])
            .arg("--qr-png")
            .arg(&qr)
            .args(["--timeout", "600"])
            .env("TANDEM_KEYRING", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let started = Instant::now();
    while !std::fs::metadata(&qr).is_ok_and(|m| m.len() > 0) {
        if let Some(status) = linking.try_wait()? {
            bail!("`tandem link` exited with {status} before writing its QR code");
        }
        anyhow::ensure!(
            started.elapsed() < HELPER_READY,
            "`tandem link` wrote no QR code within {HELPER_READY:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run_ok(
        Command::new(&bins.phone)
            .arg("--home")
            .arg(phone)
            .arg("scan")
            .arg("--qr-png")
            .arg(&qr)
            .arg("--yes"),
        "tandem-phone scan",
    )?;
    let started = Instant::now();
    loop {
        if let Some(status) = linking.try_wait()? {
            anyhow::ensure!(status.success(), "`tandem link` failed with {status}");
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < LINK_LIMIT,
            "`tandem link` did not finish its sync within {LINK_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mark(dir: &Path, name: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, b"").with_context(|| format!("writing {}", path.display()))
}

/// Runs a command to the end (keyring off, no stdin); it must succeed.
fn run_ok(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .env("TANDEM_KEYRING", "off")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{what} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The broker, the screen and the bus.

/// `tandem broker` on a given loopback port, and its URL.
fn broker(port: u16) -> anyhow::Result<(BrokerProcess, String)> {
    let process = BrokerProcess::start(&format!("127.0.0.1:{port}"))?;
    let url = format!("mqtt://{}", process.addr());
    Ok((process, url))
}

/// A virtual screen and a private session bus, the same the end-to-end tests run the app on.
#[derive(Debug)]
struct Screen {
    display: Display,
    bus: SessionBus,
}

impl Screen {
    fn start() -> anyhow::Result<Self> {
        Ok(Self {
            display: Display::start()?,
            bus: SessionBus::start()?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// The app and its memory.

/// One run of `tandem-desktop`: its stdout read line by line, killed with its whole process
/// tree on drop.
#[derive(Debug)]
struct Launched {
    process: ChildGuard,
    lines: Receiver<String>,
}

impl Drop for Launched {
    /// Its WebKit processes go with it (the guard then kills the app itself).
    fn drop(&mut self) {
        kill_all(&descendants(self.process.id()));
    }
}

impl Launched {
    fn spawn(binary: &Path, args: &[String], screen: &Screen, xdg: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        app_environment(&mut command, &screen.display, &screen.bus, xdg)?;
        let mut process = ChildGuard::spawn(&mut command)?;
        let lines = lines_of(process.child_mut().stdout.take());
        Ok(Self { process, lines })
    }

    /// Waits for a stdout line starting with `prefix`.
    fn wait_for_line(&mut self, prefix: &str, limit: Duration) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let left = limit.saturating_sub(started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => {}
                Err(_) => bail!(
                    "tandem-desktop did not print `{prefix}` within {limit:?} ({})",
                    match self.process.try_wait() {
                        Ok(Some(status)) => format!("exited: {status}"),
                        _ => "still running".to_owned(),
                    }
                ),
            }
        }
    }

    /// Waits until the window's web view started WebKit's helper processes (the bare window
    /// prints nothing).
    fn wait_for_web_view(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while !descendants(self.process.id())
            .iter()
            .any(|p| WEBKIT_HELPERS.contains(&comm(p.pid).as_str()))
        {
            if let Some(status) = self.process.try_wait()? {
                bail!("tandem-desktop --bare exited with {status}");
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "the bare window started no WebKit process within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Samples the tree's memory until it settles (see [`SETTLED_SAMPLES`]).
    fn settled_memory(&mut self) -> anyhow::Result<Memory> {
        let started = Instant::now();
        let mut recent: Vec<Memory> = Vec::new();
        loop {
            if let Some(status) = self.process.try_wait()? {
                bail!("tandem-desktop exited with {status} while its memory was measured");
            }
            let now = tree_memory(self.process.id());
            recent.push(now.clone());
            if recent.len() > SETTLED_SAMPLES {
                recent.remove(0);
            }
            let settled = recent.len() == SETTLED_SAMPLES && {
                let low = recent.iter().map(|m| m.kb).min().unwrap_or(0);
                let high = recent.iter().map(|m| m.kb).max().unwrap_or(0);
                high - low <= SETTLED_WITHIN_KB
            };
            if settled && started.elapsed() >= SETTLE_AT_LEAST {
                return Ok(Memory {
                    settled: true,
                    ..now
                });
            }
            if started.elapsed() >= SETTLE_AT_MOST {
                return Ok(Memory {
                    settled: false,
                    ..now
                });
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
    }
}

/// The PSS of a process tree: in all, and by kind of process.
#[derive(Debug, Clone, Default, PartialEq)]
struct Memory {
    /// kB in all.
    kb: u64,
    /// kB of the app's own process.
    ui_kb: u64,
    /// kB of its web processes.
    web_kb: u64,
    /// kB of its network processes.
    network_kb: u64,
    /// kB of anything else it started.
    other_kb: u64,
    /// Whether it settled before it was read.
    settled: bool,
}

/// Megabytes, for printing.
#[derive(Debug, Clone, Copy, PartialEq)]
struct MemoryMb {
    total: f64,
    ui: f64,
    web: f64,
    network: f64,
    other: f64,
}

impl MemoryMb {
    fn parts(&self) -> String {
        let mut parts = format!(
            "app process {:.1}, web {:.1}, network {:.1}",
            self.ui, self.web, self.network
        );
        if self.other > 0.0 {
            parts.push_str(&format!(", other {:.1}", self.other));
        }
        parts
    }
}

/// The run with the median total, in MB (the kB of `smaps` divided by 1024).
fn median_memory(runs: &[Memory]) -> MemoryMb {
    let mut sorted: Vec<&Memory> = runs.iter().collect();
    sorted.sort_by_key(|m| m.kb);
    let mid = sorted
        .get(sorted.len() / 2)
        .copied()
        .cloned()
        .unwrap_or_default();
    let mb = |kb: u64| kb as f64 / 1024.0;
    MemoryMb {
        total: mb(mid.kb),
        ui: mb(mid.ui_kb),
        web: mb(mid.web_kb),
        network: mb(mid.network_kb),
        other: mb(mid.other_kb),
    }
}

fn totals(runs: &[Memory]) -> String {
    runs.iter()
        .map(|m| format!("{:.1}", m.kb as f64 / 1024.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The PSS of `root` and all its descendants.
fn tree_memory(root: u32) -> Memory {
    let mut memory = Memory::default();
    let mut add = |pid: u32, own: bool| {
        let kb = pss_kb(pid);
        memory.kb += kb;
        let name = comm(pid);
        if own {
            memory.ui_kb += kb;
        } else if name.starts_with("WebKitWebProc") {
            memory.web_kb += kb;
        } else if name.starts_with("WebKitNetwork") {
            memory.network_kb += kb;
        } else {
            memory.other_kb += kb;
        }
    };
    add(root, true);
    for p in descendants(root) {
        add(p.pid, false);
    }
    memory
}

/// The sum of the `Pss:` lines of `/proc/PID/smaps_rollup`, in kB (0 if it is gone).
fn pss_kb(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    parse_pss_kb(&text)
}

/// The sum of the `Pss:` lines of an `smaps_rollup` text, in kB.
fn parse_pss_kb(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("Pss:"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------------------
// Figures.

/// The milliseconds in `ready: chat_list MS` (the app's own clock from its start).
fn app_reported_ms(line: &str) -> Option<u64> {
    line.split_whitespace().last()?.parse().ok()
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

fn list_ms(samples: &[Duration]) -> String {
    samples
        .iter()
        .map(|d| ms(*d))
        .collect::<Vec<_>>()
        .join(", ")
}

fn goal_line(out: &mut dyn Write, name: &str, met: bool, detail: &str) -> anyhow::Result<()> {
    line(out, name, if met { "MET" } else { "MISSED" }, detail)
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;

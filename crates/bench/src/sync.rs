//! History-sync benchmark: a phone links a fresh desktop by its pairing link and sends its
//! whole generated history through an embedded MQTT broker on loopback, all in this process.
//!
//! The desktop and the phone each run on their own thread with their own single-threaded
//! Tokio runtime (what two processes on one machine would do), sharing the machine's cores
//! with the broker's threads. The desktop's first code goes to the phone through a channel, as
//! a camera would take it.
//!
//! Measured, for a history synced into an empty desktop and into one already holding a large
//! history (a different generated history, so no id is shared):
//! - the sync time (the desktop's `Linked` to its `Synced` event) and its rate;
//! - the time until the first chunk is committed on the desktop (its first `Progress` with a
//!   chunk done): what the user first sees;
//! - the CPU time of the desktop's thread, the phone's thread and the whole process (the rest
//!   is mostly the broker) over the sync.
//!
//! Baseline, in the same run: the same rows inserted straight into a desktop store of the same
//! schema and encryption (and, in the second scenario, the same existing history), 1,000 per
//! transaction, without network or crypto. Where the time goes, measured apart on the same
//! data: the phone building chunks (reading ranges, postcard, digest, zstd), the desktop
//! decoding them (zstd, postcard, digest check), and the same direct insert committed durably
//! per chunk as the desktop's import does.
//!
//! Every line is `name: value unit`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::report::{line, load_average, short};
use tandem_engine::{
    Engine, Event, KeychainUse, LinkOptions, PlanBound, QrSchedule, synced_message,
};
use tandem_proto::sync::{CHUNK_MESSAGES, CHUNK_RAW_BUDGET, Chunk, SyncMessage, SyncedChat};
use tandem_store::{ChatId, Cursor, MessageId, NewChat, NewMessage, Store};
use tokio::sync::watch;

/// Seed of the phone's generated history.
const PHONE_SEED: u64 = 11;
/// Seed of the history a desktop already holds (another seed: other chats, other ids).
const DESKTOP_SEED: u64 = 12;
/// Chats of the phone's history.
const PHONE_CHATS: usize = 50;
/// Chats of the desktop's existing history.
const DESKTOP_CHATS: usize = 60;
/// Messages per transaction of the direct-insert baseline (a sync chunk holds up to 1,000).
const DIRECT_BATCH: usize = 1_000;
/// Messages read per page from the phone's store for the baseline.
const READ_PAGE: usize = 1_000;
/// Longest either side may take to link and sync before the run is declared stuck.
const SIDE_LIMIT: Duration = Duration::from_secs(150);
/// Longest the phone waits for the desktop's first code.
const CODE_WAIT: Duration = Duration::from_secs(30);
/// Bytes a message adds to a chunk besides its text and names when planning (ids, times,
/// field tags): the engine plans with the same figure, above `SyncedMessage::raw_len`'s.
const RAW_PER_MESSAGE: usize = 96;
/// Kernel clock ticks per second of `/proc/self/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// Goal for syncing 100k messages into an empty desktop.
const GOAL_EMPTY: Duration = Duration::from_millis(2_500);
/// Goal for syncing 100k messages into a desktop holding 1M.
const GOAL_FILLED: Duration = Duration::from_secs(4);
/// Goal for the sync rate against the direct-insert rate.
const GOAL_RATIO: f64 = 0.7;
/// Goal for the first chunk to be visible on the desktop after linking.
const GOAL_FIRST_CHUNK: Duration = Duration::from_millis(300);
/// Messages the time goals are stated for.
const GOAL_MESSAGES: usize = 100_000;

/// One scenario: `sync` messages from a phone with `phone_chats` chats into a desktop that
/// already holds `existing` messages in `existing_chats` chats.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    sync: usize,
    phone_chats: usize,
    existing: usize,
    existing_chats: usize,
    /// The goal for the whole sync, when `sync` is the size it is stated for.
    goal: Option<Duration>,
}

impl Scenario {
    fn label(&self) -> String {
        if self.existing == 0 {
            "into_empty".to_owned()
        } else {
            format!("into_{}", short(self.existing))
        }
    }
}

/// Runs the history-sync benchmark and prints one figure per line.
///
/// # Errors
/// When a store, the broker, linking or the sync fails, or the desktop ends with other than
/// the expected messages.
pub fn run(out: &mut dyn Write, quick: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let (sync, existing) = if quick {
        (10_000, 100_000)
    } else {
        (GOAL_MESSAGES, 1_000_000)
    };
    let goal = |g| (sync == GOAL_MESSAGES).then_some(g);
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    load_average(out, "sync", "start")?;
    let mut totals = Vec::new();
    for scenario in [
        Scenario {
            sync,
            phone_chats: PHONE_CHATS,
            existing: 0,
            existing_chats: 0,
            goal: goal(GOAL_EMPTY),
        },
        Scenario {
            sync,
            phone_chats: PHONE_CHATS,
            existing,
            existing_chats: DESKTOP_CHATS,
            goal: goal(GOAL_FILLED),
        },
    ] {
        totals.push(run_scenario(out, dir.path(), scenario)?.total);
    }
    if let [empty, filled] = totals.as_slice() {
        line(
            out,
            &format!("sync.into_{}_vs_into_empty", short(existing)),
            format!(
                "{:.2}",
                filled.as_secs_f64() / empty.as_secs_f64().max(1e-9)
            ),
            "x (sync time)",
        )?;
    }
    load_average(out, "sync", "end")?;
    line(out, "sync.run_time", secs(started.elapsed()), "s")
}

fn run_scenario(out: &mut dyn Write, dir: &Path, s: Scenario) -> anyhow::Result<SyncRun> {
    let label = s.label();
    let name = |figure: &str| format!("sync.{label}.{figure}");
    let root = dir.join(&label);
    let phone_home = root.join("phone");
    let desktop_home = root.join("desktop");
    let direct_home = root.join("direct");
    let durable_home = root.join("durable");

    // The phone: an account and its generated history.
    let phone = Engine::open_with(&phone_home, KeychainUse::Off)?;
    phone.init_primary("Bench", None)?;
    let (generated, took) = timed(|| Ok(phone.generate(s.phone_chats, s.sync, PHONE_SEED)?))?;
    anyhow::ensure!(
        generated.added == s.sync as u64,
        "the phone stored {} of {} generated messages",
        generated.added,
        s.sync
    );
    line(out, &name("setup.phone_generate"), secs(took), "s")?;

    // The desktop, already holding a history when the scenario says so, and two copies of it
    // for the baselines.
    if s.existing > 0 {
        let desktop = Engine::open_with(&desktop_home, KeychainUse::Off)?;
        let (filled, took) =
            timed(|| Ok(desktop.generate(s.existing_chats, s.existing, DESKTOP_SEED)?))?;
        anyhow::ensure!(
            filled.added == s.existing as u64,
            "the desktop stored {} of {} generated messages",
            filled.added,
            s.existing
        );
        drop(desktop);
        line(
            out,
            &name(&format!("setup.desktop_fill_{}", short(s.existing))),
            secs(took),
            &format!("s ({} msg/s)", rate(s.existing, took)),
        )?;
        let ((), took) = timed(|| {
            copy_home(&desktop_home, &direct_home)?;
            copy_home(&desktop_home, &durable_home)
        })?;
        line(out, &name("setup.copy_desktop_twice"), secs(took), "s")?;
    }
    let desktop = Engine::open_with(&desktop_home, KeychainUse::Off)?;

    // The measured run: link, then the whole history.
    let broker = tandem_net::EmbeddedBroker::start(([127, 0, 0, 1], 0).into())
        .context("starting the embedded broker")?;
    let run = link_and_sync(&desktop, &phone, &broker.url().to_string())?;
    broker.stop();
    let status = desktop.status()?;
    let expected = (s.existing + s.sync) as u64;
    anyhow::ensure!(
        status.messages == expected && status.sync.state == "complete",
        "the desktop holds {} messages (sync {}), expected {expected}",
        status.messages,
        status.sync.state
    );
    anyhow::ensure!(
        run.messages == s.sync as u64,
        "the sync reported {} messages, the phone holds {}",
        run.messages,
        s.sync
    );
    drop(desktop);
    drop(phone);
    report_run(out, &name, &run)?;
    line(
        out,
        &name("desktop_holds"),
        status.messages,
        &format!("messages in {} chats (sync verified)", status.chats),
    )?;

    // Baseline: the same rows straight into a desktop store, 1,000 per transaction.
    let (phone_store, _) = Store::open_in_home_with(&phone_home, KeychainUse::Off)?;
    let (chats, rows) = read_history(&phone_store)?;
    anyhow::ensure!(
        rows.len() == s.sync,
        "read {} rows of {}",
        rows.len(),
        s.sync
    );
    let (direct_store, _) = Store::open_in_home_with(&direct_home, KeychainUse::Off)?;
    let direct = measure(|| insert_direct(&direct_store, &chats, &rows, Commit::Normal))?;
    drop(direct_store);
    let direct_rate = rate(rows.len(), direct.wall);
    line(out, &name("direct_insert.time"), secs(direct.wall), "s")?;
    line(out, &name("direct_insert.rate"), direct_rate, "msg/s")?;
    if let Some(cpu) = direct.cpu {
        line(
            out,
            &name("direct_insert.rate_per_cpu_second"),
            rate(rows.len(), cpu),
            "msg/s",
        )?;
    }
    let sync_rate = rate(rows.len(), run.total);
    let ratio = sync_rate as f64 / direct_rate.max(1) as f64;
    line(
        out,
        &name("sync_vs_direct_insert"),
        format!("{ratio:.2}"),
        "x",
    )?;
    if let (Some(direct_cpu), Some(desktop_cpu)) = (direct.cpu, run.desktop_cpu) {
        line(
            out,
            &name("sync_vs_direct_insert_cpu"),
            format!(
                "{:.2}",
                direct_cpu.as_secs_f64() / desktop_cpu.as_secs_f64().max(1e-9)
            ),
            "x (direct insert CPU / desktop thread CPU during the sync)",
        )?;
    }

    // Where the time goes, each part apart on the same data.
    split(out, &name, &phone_store, &durable_home, &chats, &rows, &run)?;

    // Goals.
    match s.goal {
        Some(goal) => goal_line(
            out,
            &name("goal.total"),
            run.total < goal,
            &format!("{} s (goal < {} s)", secs(run.total), secs(goal)),
        )?,
        None => line(
            out,
            &name("goal.total"),
            "n/a",
            &format!(
                "(the goal is stated for {} messages; this run synced {})",
                short(GOAL_MESSAGES),
                short(s.sync)
            ),
        )?,
    }
    goal_line(
        out,
        &name("goal.vs_direct_insert"),
        ratio >= GOAL_RATIO,
        &format!("{ratio:.2} x (goal >= {GOAL_RATIO} x)"),
    )?;
    goal_line(
        out,
        &name("goal.first_chunk"),
        run.first_chunk < GOAL_FIRST_CHUNK,
        &format!(
            "{} ms (goal < {} ms)",
            ms(run.first_chunk),
            ms(GOAL_FIRST_CHUNK)
        ),
    )?;
    Ok(run)
}

fn report_run(
    out: &mut dyn Write,
    name: &dyn Fn(&str) -> String,
    run: &SyncRun,
) -> anyhow::Result<()> {
    line(
        out,
        &name("pairing"),
        ms(run.pairing),
        "ms (first code to linked)",
    )?;
    line(out, &name("messages"), run.messages, "messages")?;
    line(out, &name("chunks"), run.chunks, "chunks")?;
    line(
        out,
        &name("messages_per_chunk"),
        run.messages / u64::from(run.chunks.max(1)),
        "messages",
    )?;
    line(out, &name("total"), secs(run.total), "s (linked to synced)")?;
    line(
        out,
        &name("rate"),
        rate(usize::try_from(run.messages)?, run.total),
        "msg/s",
    )?;
    line(
        out,
        &name("first_chunk_visible"),
        ms(run.first_chunk),
        "ms (linked to the first chunk committed)",
    )?;
    let percentile = |p: usize| {
        let at = (run.gaps.len() * p).div_ceil(100).saturating_sub(1);
        run.gaps.get(at).copied().unwrap_or_default()
    };
    line(
        out,
        &name("chunk_interval"),
        ms(percentile(50)),
        &format!(
            "ms median, {} ms p95, {} ms max (between chunk commits on the desktop)",
            ms(percentile(95)),
            ms(percentile(100))
        ),
    )?;
    line(
        out,
        &name("resume_waits"),
        run.waits,
        "(desktop asked to resume after a quiet spell)",
    )?;
    if let Some(cpu) = run.desktop_cpu {
        line(
            out,
            &name("cpu.desktop_thread"),
            secs(cpu),
            &format!(
                "s (idle {} s: waiting for chunks or the disk)",
                secs(run.total.saturating_sub(cpu))
            ),
        )?;
    }
    if let Some(cpu) = run.phone_cpu {
        line(out, &name("cpu.phone_thread"), secs(cpu), "s")?;
    }
    if let Some(cpu) = run.process_cpu {
        line(
            out,
            &name("cpu.process"),
            secs(cpu),
            &format!(
                "s ({:.2} cores busy on average)",
                cpu.as_secs_f64() / run.total.as_secs_f64().max(1e-9)
            ),
        )?;
        if let (Some(desktop), Some(phone)) = (run.desktop_cpu, run.phone_cpu) {
            line(
                out,
                &name("cpu.broker_and_rest"),
                secs(cpu.saturating_sub(desktop + phone)),
                "s (process minus both sides; 10 ms ticks)",
            )?;
        }
    }
    Ok(())
}

/// Times the parts of a sync apart: the phone's plan and chunk building, the desktop's
/// decoding, and the direct insert committed durably per chunk (as the import commits).
fn split(
    out: &mut dyn Write,
    name: &dyn Fn(&str) -> String,
    phone_store: &Store,
    durable_home: &Path,
    chats: &[NewChat],
    rows: &[NewMessage],
    run: &SyncRun,
) -> anyhow::Result<()> {
    let (plan, took_plan) = timed(|| plan_chunks(phone_store))?;
    line(
        out,
        &name("split.phone_plan"),
        ms(took_plan),
        "ms (message keys of every chat, packed into chunks; done before linking)",
    )?;
    let (chunks, build) = timed(|| build_chunks(phone_store, &plan))?;
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    let count = chunks.len().max(1);
    line(
        out,
        &name("split.phone_build"),
        secs(build),
        &format!(
            "s ({} ms per chunk: read, postcard, digest, zstd)",
            ms(build / u32::try_from(count)?)
        ),
    )?;
    line(
        out,
        &name("split.chunks_built"),
        chunks.len(),
        "chunks (this bench's packing: same limits, no recent-first ordering)",
    )?;
    line(
        out,
        &name("split.chunk_compressed_avg"),
        bytes / count,
        &format!(
            "bytes ({:.1} bytes per message)",
            bytes as f64 / rows.len().max(1) as f64
        ),
    )?;
    let (decoded, decode) = timed(|| {
        let mut messages = 0usize;
        for bytes in &chunks {
            let SyncMessage::Chunk(chunk) = SyncMessage::decode(bytes)? else {
                anyhow::bail!("a built chunk decoded to another message");
            };
            chunk.verify()?;
            messages += chunk.messages.len();
        }
        Ok(messages)
    })?;
    anyhow::ensure!(
        decoded == rows.len(),
        "the chunks held {decoded} of {} messages",
        rows.len()
    );
    line(
        out,
        &name("split.desktop_decode"),
        secs(decode),
        "s (zstd, postcard, digest check)",
    )?;
    let (durable_store, _) = Store::open_in_home_with(durable_home, KeychainUse::Off)?;
    let durable = measure(|| insert_direct(&durable_store, chats, rows, Commit::Durable))?;
    let on_cpu = durable.cpu.map_or_else(String::new, |cpu| {
        format!(", {} s of it on the CPU", secs(cpu))
    });
    line(
        out,
        &name("split.desktop_insert_durable"),
        secs(durable.wall),
        &format!("s (the direct insert, each 1,000 committed with synchronous=FULL{on_cpu})"),
    )?;
    let serial = build + decode + durable.wall;
    line(
        out,
        &name("split.serial_sum"),
        secs(serial),
        &format!(
            "s (build + decode + durable insert; the sync took {} s)",
            secs(run.total)
        ),
    )?;
    line(
        out,
        &name("split.rest_of_sync"),
        format!(
            "{:.3}",
            run.total.as_secs_f64() - durable.wall.as_secs_f64()
        ),
        "s (sync time beyond the durable insert alone)",
    )?;
    Ok(())
}

/// What the desktop and the phone reported, stamped as it happened.
#[derive(Debug, Clone)]
struct SyncRun {
    pairing: Duration,
    total: Duration,
    first_chunk: Duration,
    chunks: u32,
    messages: u64,
    waits: u32,
    /// Time between consecutive chunk commits on the desktop, sorted.
    gaps: Vec<Duration>,
    desktop_cpu: Option<Duration>,
    phone_cpu: Option<Duration>,
    process_cpu: Option<Duration>,
}

/// A moment, with the CPU time spent so far by this thread and by the process.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    at: Instant,
    thread_cpu: Option<Duration>,
    process_cpu: Option<Duration>,
}

impl Stamp {
    fn now() -> Self {
        Self {
            at: Instant::now(),
            thread_cpu: thread_cpu_time(),
            process_cpu: process_cpu_time(),
        }
    }
}

fn cpu_between(from: Option<Duration>, to: Option<Duration>) -> Option<Duration> {
    from.zip(to).map(|(a, b)| b.saturating_sub(a))
}

/// The desktop's events, stamped.
#[derive(Debug, Default)]
struct DesktopLog {
    first_code: Option<Stamp>,
    linked: Option<Stamp>,
    first_chunk: Option<Stamp>,
    /// When each chunk was committed (every `Progress` after the first chunk).
    chunks_committed: Vec<Instant>,
    synced: Option<(Stamp, u32, u64)>,
    waits: u32,
}

impl DesktopLog {
    fn record(&mut self, event: &Event) {
        match event {
            Event::Code { .. } => {
                self.first_code.get_or_insert_with(Stamp::now);
            }
            Event::Linked { .. } => self.linked = Some(Stamp::now()),
            Event::Progress { chunks_done, .. } if *chunks_done >= 1 => {
                self.first_chunk.get_or_insert_with(Stamp::now);
                self.chunks_committed.push(Instant::now());
            }
            Event::Synced { chunks, messages } => {
                self.synced = Some((Stamp::now(), *chunks, *messages));
            }
            Event::Waiting { .. } => self.waits += 1,
            _ => {}
        }
    }
}

/// The phone's events, stamped.
#[derive(Debug, Default)]
struct PhoneLog {
    linked: Option<Stamp>,
    synced: Option<Stamp>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a Tokio runtime")
}

/// Resolves once the other side has failed (never, while it runs).
async fn other_side_failed(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|failed| *failed).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Links `desktop` to `phone`'s account over `broker` and syncs the history: each side on its
/// own thread with its own runtime. Returns what the desktop saw, stamped.
fn link_and_sync(desktop: &Engine, phone: &Engine, broker: &str) -> anyhow::Result<SyncRun> {
    let (code_tx, code_rx) = mpsc::channel::<String>();
    let (failed_tx, failed_rx) = watch::channel(false);
    let (desktop_result, phone_result) = std::thread::scope(|scope| {
        let failed = &failed_tx;
        let desktop_rx = failed_rx.clone();
        let desktop_side = scope.spawn(move || {
            let result = desktop_side(desktop, broker, code_tx, desktop_rx);
            if result.is_err() {
                failed.send_replace(true);
            }
            result
        });
        let phone_rx = failed_rx.clone();
        let phone_side = scope.spawn(move || {
            let result = phone_side(phone, &code_rx, phone_rx);
            if result.is_err() {
                failed.send_replace(true);
            }
            result
        });
        (
            desktop_side
                .join()
                .map_err(|_| anyhow::anyhow!("the desktop's thread panicked")),
            phone_side
                .join()
                .map_err(|_| anyhow::anyhow!("the phone's thread panicked")),
        )
    });
    let phone_log = phone_result?.context("the phone's scan and history sync")?;
    let log = desktop_result?.context("the desktop's link and history sync")?;
    let (code, linked, first_chunk, (synced, chunks, messages)) =
        match (log.first_code, log.linked, log.first_chunk, log.synced) {
            (Some(code), Some(linked), Some(first), Some(synced)) => (code, linked, first, synced),
            _ => anyhow::bail!("the desktop finished without reporting every step: {log:?}"),
        };
    let phone_cpu = match (phone_log.linked, phone_log.synced) {
        (Some(from), Some(to)) => cpu_between(from.thread_cpu, to.thread_cpu),
        _ => None,
    };
    let mut gaps: Vec<Duration> = log
        .chunks_committed
        .windows(2)
        .filter_map(|w| Some(w.get(1)?.duration_since(*w.first()?)))
        .collect();
    gaps.sort_unstable();
    Ok(SyncRun {
        gaps,
        pairing: linked.at.duration_since(code.at),
        total: synced.at.duration_since(linked.at),
        first_chunk: first_chunk.at.duration_since(linked.at),
        chunks,
        messages,
        waits: log.waits,
        desktop_cpu: cpu_between(linked.thread_cpu, synced.thread_cpu),
        phone_cpu,
        process_cpu: cpu_between(linked.process_cpu, synced.process_cpu),
    })
}

fn desktop_side(
    engine: &Engine,
    broker: &str,
    code_tx: mpsc::Sender<String>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<DesktopLog> {
    let rt = runtime()?;
    let options = LinkOptions {
        broker: broker.to_owned(),
        name: "Bench desktop".to_owned(),
        platform: "linux".to_owned(),
        schedule: QrSchedule::default(),
        sync_timeout: None,
    };
    let mut log = DesktopLog::default();
    let mut code_tx = Some(code_tx);
    let outcome = {
        let mut on = |event: &Event| {
            log.record(event);
            if let Event::Code { link, .. } = event
                && let Some(tx) = code_tx.take()
            {
                // A phone that is gone already failed; its error is the one reported.
                tx.send(link.clone()).ok();
            }
        };
        rt.block_on(async {
            let link = Box::pin(tokio::time::timeout(
                SIDE_LIMIT,
                engine.link(&options, &mut on),
            ));
            tokio::select! {
                result = link => Some(result),
                () = other_side_failed(stop) => None,
            }
        })
    };
    match outcome {
        Some(Ok(Ok(_report))) => Ok(log),
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(_)) => anyhow::bail!("linking and syncing took longer than {SIDE_LIMIT:?}"),
        None => anyhow::bail!("stopped: the phone failed"),
    }
}

fn phone_side(
    engine: &Engine,
    code_rx: &mpsc::Receiver<String>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<PhoneLog> {
    let text = code_rx
        .recv_timeout(CODE_WAIT)
        .context("the desktop showed no code")?;
    let link = Engine::parse_link(&text)?;
    let rt = runtime()?;
    let mut log = PhoneLog::default();
    let outcome = {
        let mut on = |event: &Event| match event {
            Event::DeviceLinked { .. } => log.linked = Some(Stamp::now()),
            Event::Synced { .. } => log.synced = Some(Stamp::now()),
            _ => {}
        };
        let mut confirm = |_: &str, _: &str| true;
        rt.block_on(async {
            let scan = Box::pin(tokio::time::timeout(
                SIDE_LIMIT,
                engine.scan(link, PlanBound::default(), &mut confirm, &mut on),
            ));
            tokio::select! {
                result = scan => Some(result),
                () = other_side_failed(stop) => None,
            }
        })
    };
    match outcome {
        Some(Ok(Ok(_report))) => Ok(log),
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(_)) => anyhow::bail!("scanning and serving took longer than {SIDE_LIMIT:?}"),
        None => anyhow::bail!("stopped: the desktop failed"),
    }
}

/// Every chat (as a [`NewChat`]) and every message of `store`, each chat newest page first,
/// each page oldest first (the order a sync brings them in).
fn read_history(store: &Store) -> anyhow::Result<(Vec<NewChat>, Vec<NewMessage>)> {
    let mut chats = Vec::new();
    let mut rows = Vec::new();
    for summary in store.chats()? {
        chats.push(NewChat {
            id: summary.id,
            kind: summary.kind.clone(),
            name: summary.name.clone(),
            peer_account: summary.peer_account.clone(),
            created_at: summary.created_at,
            members: store.members(summary.id)?,
        });
        let mut cursor = Cursor::Newest;
        loop {
            let page = store.page(summary.id, cursor, READ_PAGE)?;
            let Some(oldest) = page.first() else {
                break;
            };
            cursor = oldest.before();
            let full = page.len() == READ_PAGE;
            rows.extend(page.into_iter().map(NewMessage::from));
            if !full {
                break;
            }
        }
    }
    Ok((chats, rows))
}

/// How each transaction of a direct insert commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// `synchronous=NORMAL`, as message writes commit.
    Normal,
    /// `synchronous=FULL`, as the desktop commits each imported chunk.
    Durable,
}

/// Creates the chats, then inserts `rows` [`DIRECT_BATCH`] per transaction.
fn insert_direct(
    store: &Store,
    chats: &[NewChat],
    rows: &[NewMessage],
    commit: Commit,
) -> anyhow::Result<()> {
    store.write(|w| chats.iter().try_for_each(|c| w.upsert_chat(c)))?;
    for batch in rows.chunks(DIRECT_BATCH) {
        let added = match commit {
            Commit::Normal => store.write(|w| w.insert_messages(batch))?,
            Commit::Durable => store.write_durable(|w| w.insert_messages(batch))?,
        };
        anyhow::ensure!(
            added == batch.len(),
            "only {added} of {} messages were added",
            batch.len()
        );
    }
    Ok(())
}

/// An inclusive `(ts, id)` range of one chat's messages.
#[derive(Debug, Clone, Copy)]
struct Range {
    chat: ChatId,
    oldest: (i64, MessageId),
    newest: (i64, MessageId),
}

/// Packs every chat's messages, newest first, into chunks of at most [`CHUNK_MESSAGES`]
/// messages and [`CHUNK_RAW_BUDGET`] estimated bytes (the sync's limits).
fn plan_chunks(store: &Store) -> anyhow::Result<Vec<Vec<Range>>> {
    let mut chunks = Vec::new();
    let mut current: Vec<Range> = Vec::new();
    let (mut count, mut bytes) = (0usize, 0usize);
    for chat in store.chats()? {
        let mut open = false;
        for key in store.message_keys(chat.id)? {
            let size = RAW_PER_MESSAGE + key.bytes as usize;
            if count > 0 && (count >= CHUNK_MESSAGES || bytes + size > CHUNK_RAW_BUDGET) {
                chunks.push(std::mem::take(&mut current));
                (count, bytes, open) = (0, 0, false);
            }
            let entry = (key.ts, key.id);
            match current.last_mut() {
                Some(range) if open => range.oldest = entry,
                _ => {
                    current.push(Range {
                        chat: chat.id,
                        oldest: entry,
                        newest: entry,
                    });
                    open = true;
                }
            }
            count += 1;
            bytes += size;
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    Ok(chunks)
}

/// Builds and encodes every planned chunk as the phone sends it (`zstd(postcard(Chunk))`).
fn build_chunks(store: &Store, plan: &[Vec<Range>]) -> anyhow::Result<Vec<Vec<u8>>> {
    let total = u32::try_from(plan.len())?;
    let mut encoded = Vec::with_capacity(plan.len());
    for (index, ranges) in plan.iter().enumerate() {
        let mut chats: Vec<SyncedChat> = Vec::new();
        let mut messages = Vec::new();
        for range in ranges {
            if !chats.iter().any(|c| c.id == *range.chat.as_bytes()) {
                let summary = store.chat(range.chat)?.context("a planned chat is gone")?;
                chats.push(SyncedChat {
                    id: *summary.id.as_bytes(),
                    kind: summary.kind.as_str().to_owned(),
                    name: summary.name,
                    peer_account: summary.peer_account,
                    created_at: summary.created_at,
                    muted: summary.muted,
                    pinned: summary.pinned,
                    archived: summary.archived,
                    unread: summary.unread,
                    members: store
                        .members(range.chat)?
                        .into_iter()
                        .map(|m| (m.account, m.name))
                        .collect(),
                });
            }
            messages.extend(
                store
                    .messages_between(range.chat, range.oldest, range.newest)?
                    .iter()
                    .map(synced_message),
            );
        }
        let chunk = Chunk::new([0; 16], u32::try_from(index)?, total, chats, messages);
        encoded.push(SyncMessage::Chunk(Box::new(chunk)).encode()?);
    }
    Ok(encoded)
}

/// Copies a device home (its database and key file) into a new folder readable by its owner.
fn copy_home(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(to)
        .with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry.with_context(|| format!("listing {}", from.display()))?;
        let path: PathBuf = entry.path();
        if entry.file_type()?.is_file() {
            std::fs::copy(&path, to.join(entry.file_name()))
                .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

/// Wall-clock and on-CPU time of a piece of work on this thread.
#[derive(Debug, Clone, Copy)]
struct Spent {
    wall: Duration,
    cpu: Option<Duration>,
}

fn measure(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Spent> {
    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    f()?;
    let wall = started.elapsed();
    Ok(Spent {
        wall,
        cpu: cpu_between(cpu_before, thread_cpu_time()),
    })
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, Duration)> {
    let started = Instant::now();
    let value = f()?;
    Ok((value, started.elapsed()))
}

/// Time this thread has spent on a CPU (Linux `schedstat`), if the kernel says.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    (ns > 0).then(|| Duration::from_nanos(ns))
}

/// Time the whole process (every thread, live or ended) has spent on a CPU (Linux
/// `/proc/self/stat`: user + system, in clock ticks).
fn process_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64((user + system) as f64 / USER_HZ))
}

fn goal_line(out: &mut dyn Write, name: &str, met: bool, detail: &str) -> anyhow::Result<()> {
    line(out, name, if met { "MET" } else { "MISSED" }, detail)
}

fn rate(count: usize, took: Duration) -> u64 {
    (count as f64 / took.as_secs_f64().max(1e-9)) as u64
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;

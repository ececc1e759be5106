//! Live-messaging benchmark: how long a message takes from `send` on one account's phone to
//! stored on the other account's laptop, and how fast a phone seals and hands over the
//! envelopes of a queue to an account with five devices; each beside a bare `rumqttc` figure
//! measured in the same run, on the same embedded broker, on loopback.
//!
//! Every device (Alice's phone and linked laptops, Bob's phone) has its own home on the real
//! disk (a temporary folder under `/var/tmp`, whose file system is printed) and runs its
//! session on its own thread with its own single-threaded Tokio runtime, as separate
//! programs on one machine would.
//!
//! Measured:
//! - `messaging.bare_rtt_us`: two `rumqttc` clients, QoS 1 both ways, one message in flight,
//!   a payload the size of a real envelope (read off the broker during the warm-up): from
//!   just before `publish` to the receiving client's event loop handing the message over.
//! - `messaging.bare_rtt_answered_us` (and `_nodelay_us`): the same, with the receiver
//!   answering each message and the sender taking the answer before its next publish, as
//!   "delivered" receipts make the engine do; with and without `TCP_NODELAY` on the clients.
//!   This isolates the Nagle / delayed-ACK stall (about 40 ms on Linux) that the engine's
//!   figure shows.
//! - `messaging.send_to_stored_us`: Bob's phone sends to Alice, one message at a time; from
//!   just before the session call (`Request::Send`, not waiting for the broker) to Alice's
//!   laptop reporting the message, which it does after its store transaction committed.
//!   Split: until the call answered, and until Bob's phone saw the broker's acknowledgement.
//!   The series stops early past a time budget (and says so).
//! - `messaging.fanout_envelopes_per_s`: Bob queues messages with no session running, then
//!   connects until the broker acknowledged every envelope (one per device of Alice's
//!   account); the sealing part is timed apart by watching the fan-out queue empty. Baseline:
//!   as many bare QoS 1 publishes of the same size through one `rumqttc` client, to offline
//!   persistent sessions as Alice's devices are, until every `PUBACK`.
//! - `messaging.env.disk_sync_us`: the disk under the homes, one `fdatasync` after an
//!   append: the floor of every durable commit on the measured path.
//!
//! Every line is `name: value unit`.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rumqttc::{AsyncClient, EventLoop, Packet, QoS};
use tandem_engine::{
    Engine, Event, KeychainUse, LinkOptions, PlanBound, QrSchedule, Reply, Request, SessionHandle,
    session_channel,
};
use tandem_net::{BrokerUrl, ClientSettings, EmbeddedBroker, mqtt_options};
use tokio::sync::oneshot;

use crate::report::{line, load_average, short};

/// Messages timed for the latency figures (and bare round trips).
const LATENCY_FULL: usize = 10_000;
/// [`LATENCY_FULL`] with `--quick`.
const LATENCY_QUICK: usize = 1_000;
/// Timed round trips of the bare series with an answer (each takes up to ~40 ms).
const ANSWERED_FULL: usize = 200;
/// [`ANSWERED_FULL`] with `--quick`.
const ANSWERED_QUICK: usize = 50;
/// Longest the timed `send_to_stored` series runs: at tens of milliseconds per message,
/// 10k messages would take minutes; the series stops early and says so.
const BUDGET_FULL: Duration = Duration::from_secs(60);
/// [`BUDGET_FULL`] with `--quick`.
const BUDGET_QUICK: Duration = Duration::from_secs(20);
/// Messages queued for the fan-out figure.
const FANOUT_FULL: usize = 10_000;
/// [`FANOUT_FULL`] with `--quick`.
const FANOUT_QUICK: usize = 1_000;
/// Untimed round trips before each latency series (connections, caches, the first device
/// list lookups).
const WARMUP: usize = 50;
/// Devices of Alice's account in the fan-out run: her phone and four laptops.
const FANOUT_DEVICES: usize = 5;
/// Longest wait for any one event (a message stored, a session online, a device list).
pub(crate) const EVENT_WAIT: Duration = Duration::from_secs(10);
/// Longest a link (pairing and history sync) may take.
const LINK_LIMIT: Duration = Duration::from_secs(60);
/// Longest the fan-out's `send_queued` may take.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// How often the fan-out watcher reads the queue lengths.
const WATCH_EVERY: Duration = Duration::from_millis(1);
/// Where device homes go: a real disk, not a tmpfs `/tmp`.
pub(crate) const HOMES_IN: &str = "/var/tmp";
/// Disk syncs timed for the durable-commit floor.
const DISK_SYNCS: usize = 200;
/// Bytes appended before each timed disk sync (a WAL commit of a message or two).
const DISK_SYNC_BYTES: usize = 4096;
/// Requests a bare client may queue before its event loop takes them (as the engine's).
const BARE_REQUEST_CAPACITY: usize = 1024;
/// How long a bare client waits for the broker to close its connection after `DISCONNECT`.
const LEAVE_WAIT: Duration = Duration::from_secs(2);
/// Topic of the bare round trips.
const RTT_TOPIC: &str = "bench/rtt";

/// Goal: `send_to_stored` p50 at most this many times the bare p50.
const GOAL_P50_RATIO: f64 = 3.0;
/// Goal: `send_to_stored` p99 under this.
const GOAL_P99: Duration = Duration::from_millis(1);
/// Goal: envelopes sealed and acknowledged per second in the fan-out.
const GOAL_FANOUT_PER_S: f64 = 50_000.0;

/// How many samples and messages a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Timed messages of each latency series.
    pub(crate) latency: usize,
    /// Untimed round trips before each latency series.
    pub(crate) warmup: usize,
    /// Timed round trips of each bare series with an answer coming back (slow: Nagle).
    pub(crate) answered: usize,
    /// Longest the timed `send_to_stored` series may run; it stops early past this.
    pub(crate) budget: Duration,
    /// Messages Bob queues for the fan-out.
    pub(crate) fanout: usize,
}

impl Counts {
    /// The counts of a full run or of a `--quick` one.
    pub(crate) fn for_run(quick: bool) -> Self {
        if quick {
            Self {
                latency: LATENCY_QUICK,
                warmup: WARMUP,
                answered: ANSWERED_QUICK,
                budget: BUDGET_QUICK,
                fanout: FANOUT_QUICK,
            }
        } else {
            Self {
                latency: LATENCY_FULL,
                warmup: WARMUP,
                answered: ANSWERED_FULL,
                budget: BUDGET_FULL,
                fanout: FANOUT_FULL,
            }
        }
    }
}

/// Runs the messaging benchmark and prints one figure per line.
///
/// # Errors
/// When the broker, a store, linking or a session fails, or a message or acknowledgement
/// does not come in time.
pub fn run(out: &mut dyn Write, quick: bool) -> anyhow::Result<()> {
    run_with(out, Counts::for_run(quick))
}

/// [`run`] with explicit counts.
pub(crate) fn run_with(out: &mut dyn Write, counts: Counts) -> anyhow::Result<()> {
    anyhow::ensure!(
        counts.latency > 0 && counts.answered > 0 && counts.fanout > 0,
        "the messaging benchmark needs at least one message per series ({counts:?})"
    );
    let started = Instant::now();
    load_average(out, "messaging", "start")?;
    let dir = homes_dir()?;
    line(
        out,
        "messaging.env.homes",
        dir.path().display(),
        &format!("({})", file_system_of(dir.path())),
    )?;
    let syncs = disk_syncs(dir.path(), DISK_SYNCS)?;
    let (sync_p50, sync_p99) = p50_p99(&syncs)?;
    let sync_detail = format!(
        "us (fdatasync after a {} KiB append in that folder, {DISK_SYNCS} samples: the floor of one durable commit)",
        DISK_SYNC_BYTES / 1024
    );
    line(
        out,
        "messaging.env.disk_sync_us.p50",
        us(sync_p50),
        &sync_detail,
    )?;
    line(
        out,
        "messaging.env.disk_sync_us.p99",
        us(sync_p99),
        &sync_detail,
    )?;
    let broker = EmbeddedBroker::start(([127, 0, 0, 1], 0).into())
        .context("starting the embedded broker")?;
    let (world, took) = timed(|| World::create(dir.path(), broker.url()))?;
    line(
        out,
        "messaging.setup.accounts_and_laptop",
        secs(took),
        "s (two accounts, contacts exchanged, Alice's laptop linked)",
    )?;

    let latency = latency(out, &world, broker.url(), counts)?;
    let fanout = fanout(out, &world, broker.url(), counts, latency.envelope_bytes)?;
    broker.stop();

    goal_line(
        out,
        "messaging.goal.send_to_stored_p50",
        latency.p50_ratio <= GOAL_P50_RATIO,
        &format!(
            "{:.2} x the bare p50 (goal <= {GOAL_P50_RATIO} x)",
            latency.p50_ratio
        ),
    )?;
    goal_line(
        out,
        "messaging.goal.send_to_stored_p99",
        latency.p99 < GOAL_P99,
        &format!(
            "{} us (goal < {} us; the path holds two durable commits, the sender's seal and the receiver's store, and one disk sync here takes {} us p50)",
            us(latency.p99),
            us(GOAL_P99),
            us(sync_p50)
        ),
    )?;
    goal_line(
        out,
        "messaging.goal.fanout",
        fanout >= GOAL_FANOUT_PER_S,
        &format!("{fanout:.0} envelopes/s (goal >= {GOAL_FANOUT_PER_S:.0})"),
    )?;
    load_average(out, "messaging", "end")?;
    line(out, "messaging.run_time", secs(started.elapsed()), "s")
}

/// What the latency part hands to the goals and to the fan-out part.
#[derive(Debug, Clone, Copy)]
struct Latency {
    envelope_bytes: usize,
    p50_ratio: f64,
    p99: Duration,
}

/// The bare round trips and `send_to_stored`, with Alice's phone, her laptop and Bob's phone
/// running their sessions.
fn latency(
    out: &mut dyn Write,
    world: &World,
    url: &BrokerUrl,
    counts: Counts,
) -> anyhow::Result<Latency> {
    let broker = url.to_string();
    let keep_nothing: fn(&Event) -> bool = |_| false;
    let alice_phone = Session::start("Alice's phone", &world.alice_phone, &broker, keep_nothing)?;
    let laptop_home = world.laptops.first().context("no laptop linked")?;
    let laptop = Session::start("Alice's laptop", laptop_home, &broker, |e| {
        matches!(e, Event::Message { .. })
    })?;
    // A message's first receipt says the broker took it: "sent", or "delivered" when the
    // laptop's receipt overtook the broker's acknowledgement (the status then never says
    // "sent").
    let mut bob = Session::start("Bob's phone", &world.bob_phone, &broker, |e| {
        matches!(
            e,
            Event::Devices { .. }
                | Event::Receipt {
                    status: "sent" | "delivered",
                    ..
                }
        )
    })?;
    // Bob's copy of Alice's device list predates the laptop; the retained list brings it.
    bob.wait_for("Alice's list of 2 devices", EVENT_WAIT, |_, e| {
        world.is_list_of(e, 2).then_some(())
    })?;
    let rt = runtime()?;
    let mut messenger = Messenger {
        rt: &rt,
        bob,
        laptop,
        chat: &world.chat,
        sent: 0,
    };

    // The size of a real envelope, read off the broker, for the bare payload.
    let sniffer = Sniffer::start(url)?;
    messenger.round_trip()?;
    let envelope_bytes = sniffer.first_size(EVENT_WAIT)?;
    line(
        out,
        "messaging.envelope_bytes",
        envelope_bytes,
        &format!(
            "bytes (a {}-character text, as the broker carries it)",
            message_text(0).chars().count()
        ),
    )?;
    for _ in 1..counts.warmup {
        messenger.round_trip()?;
    }

    let bare_trips = BareTrips {
        payload: envelope_bytes,
        warmup: counts.warmup,
        samples: counts.latency,
        receipt: false,
        nodelay: false,
    };
    let bare = bare_round_trips(url, bare_trips)?;
    let (bare_p50, bare_p99) = p50_p99(&bare)?;
    let bare_detail = format!(
        "us (rumqttc QoS 1 publish to receive, one in flight, {} samples, {envelope_bytes}-byte payload)",
        short(counts.latency)
    );
    line(out, "messaging.bare_rtt_us.p50", us(bare_p50), &bare_detail)?;
    line(out, "messaging.bare_rtt_us.p99", us(bare_p99), &bare_detail)?;
    // The same with an answer coming back to the sender between messages, as delivered
    // receipts do: with Nagle's algorithm on (rumqttc's default), the sender's PUBACK of the
    // answer is left unacknowledged by the broker's delayed ACK and holds back the next
    // publish. TCP_NODELAY on the clients removes that one; the broker's own sockets
    // (rumqttd 0.20 sets no TCP_NODELAY) still hold a write behind an unacknowledged one.
    for nodelay in [false, true] {
        let trips = bare_round_trips(
            url,
            BareTrips {
                samples: counts.answered,
                receipt: true,
                nodelay,
                ..bare_trips
            },
        )?;
        let (p50, p99) = p50_p99(&trips)?;
        let name = if nodelay {
            "bare_rtt_answered_nodelay_us"
        } else {
            "bare_rtt_answered_us"
        };
        let detail = format!(
            "us (as bare_rtt, {} samples, the receiver answering each message and the sender acknowledging the answer before its next publish{})",
            counts.answered,
            if nodelay {
                ", TCP_NODELAY on both clients"
            } else {
                ""
            }
        );
        line(out, &format!("messaging.{name}.p50"), us(p50), &detail)?;
        line(out, &format!("messaging.{name}.p99"), us(p99), &detail)?;
    }

    let mut trips = Vec::with_capacity(counts.latency);
    let measured = Instant::now();
    while trips.len() < counts.latency && measured.elapsed() < counts.budget {
        trips.push(messenger.round_trip()?);
    }
    let took = measured.elapsed();
    let timed = trips.len();
    let cut = if timed < counts.latency {
        format!(
            " of {}: stopped at the {} s budget",
            short(counts.latency),
            counts.budget.as_secs()
        )
    } else {
        String::new()
    };
    let samples: Vec<Duration> = trips.iter().map(|t| t.stored).collect();
    let (p50, p99) = p50_p99(&samples)?;
    let max = samples.iter().max().copied().unwrap_or_default();
    let detail = format!(
        "us (Bob's phone send to stored on Alice's laptop, one at a time, {timed} messages{cut})"
    );
    line(out, "messaging.send_to_stored_us.p50", us(p50), &detail)?;
    line(out, "messaging.send_to_stored_us.p99", us(p99), &detail)?;
    line(out, "messaging.send_to_stored_us.max", us(max), &detail)?;
    line(
        out,
        "messaging.send_to_stored.rate",
        rate(timed, took),
        "msg/s (one at a time)",
    )?;
    for (figure, what, part) in [
        (
            "answered",
            "the session call answered: message stored, fan-out sealed, handed to rumqttc",
            (|t: &Trip| t.answered) as fn(&Trip) -> Duration,
        ),
        (
            "acknowledged",
            "the broker's PUBACK of every envelope reported on Bob's phone",
            |t: &Trip| t.acknowledged,
        ),
    ] {
        let parts: Vec<Duration> = trips.iter().map(part).collect();
        let (p50, p99) = p50_p99(&parts)?;
        line(
            out,
            &format!("messaging.send_to_stored.split.{figure}_us"),
            us(p50),
            &format!("us p50, {} us p99 (from the call to {what})", us(p99)),
        )?;
    }
    let p50_ratio = ratio(p50, bare_p50);
    line(
        out,
        "messaging.send_to_stored_vs_bare.p50",
        format!("{p50_ratio:.2}"),
        "x",
    )?;
    line(
        out,
        "messaging.send_to_stored_vs_bare.p99",
        format!("{:.2}", ratio(p99, bare_p99)),
        "x",
    )?;
    let Messenger { laptop, bob, .. } = messenger;
    laptop.stop()?;
    bob.stop()?;
    alice_phone.stop()?;
    Ok(Latency {
        envelope_bytes,
        p50_ratio,
        p99,
    })
}

/// Bob's phone sending to Alice and Alice's laptop receiving, one message at a time.
struct Messenger<'a> {
    rt: &'a tokio::runtime::Runtime,
    bob: Session,
    laptop: Session,
    chat: &'a str,
    sent: usize,
}

/// One message's way, each time counted from the session call on Bob's phone.
#[derive(Debug, Clone, Copy)]
struct Trip {
    /// Until the call answered (the message stored, its fan-out sealed, handed to `rumqttc`).
    answered: Duration,
    /// Until Bob's phone reported it sent (the broker acknowledged every envelope).
    acknowledged: Duration,
    /// Until Alice's laptop reported it (after its store transaction committed).
    stored: Duration,
}

impl Messenger<'_> {
    /// Sends the next message and waits until Alice's laptop stored it and Bob's phone saw it
    /// acknowledged by the broker.
    fn round_trip(&mut self) -> anyhow::Result<Trip> {
        let text = message_text(self.sent);
        self.sent += 1;
        let request = Request::Send {
            chat: self.chat.to_owned(),
            text,
            reply: None,
            wait: false,
            id: None,
        };
        let t0 = Instant::now();
        let reply = self
            .rt
            .block_on(self.bob.handle.call(request))
            .context("handing a message to Bob's session")?;
        let answered = t0.elapsed();
        let id = match reply {
            Reply::Ok(view) => view
                .get("id")
                .and_then(|id| id.as_str())
                .map(str::to_owned)
                .with_context(|| format!("Bob's session answered a send without an id: {view}"))?,
            Reply::Error { kind, message } => {
                anyhow::bail!("Bob's session refused a send: {kind}: {message}")
            }
        };
        let stored = self
            .laptop
            .wait_for("Bob's message stored", EVENT_WAIT, |at, e| match e {
                Event::Message { message } if message.id == id => Some(at),
                _ => None,
            })?;
        let acknowledged =
            self.bob
                .wait_for("Bob's message sent", EVENT_WAIT, |at, e| match e {
                    Event::Receipt { id: sent, .. } if *sent == id => Some(at),
                    _ => None,
                })?;
        self.bob
            .forget(|e| matches!(e, Event::Receipt { id: later, .. } if *later == id));
        Ok(Trip {
            answered,
            acknowledged: acknowledged.saturating_duration_since(t0),
            stored: stored.saturating_duration_since(t0),
        })
    }
}

/// Links three more laptops to Alice's account, lets Bob learn her list of five, queues
/// messages on Bob's phone and sends them; then the bare baseline. Returns envelopes/s.
fn fanout(
    out: &mut dyn Write,
    world: &World,
    url: &BrokerUrl,
    counts: Counts,
    envelope_bytes: usize,
) -> anyhow::Result<f64> {
    let broker = url.to_string();
    let ((), took) = timed(|| {
        for index in world.laptops.len()..FANOUT_DEVICES - 1 {
            link_laptop(
                &world.alice_phone,
                &laptop_home(&world.root, index),
                &broker,
            )?;
        }
        Ok(())
    })?;
    line(
        out,
        "messaging.fanout.setup.link_laptops",
        secs(took),
        &format!(
            "s ({} more laptops linked, each synced)",
            FANOUT_DEVICES - 1 - world.laptops.len()
        ),
    )?;
    let mut bob = Session::start("Bob's phone", &world.bob_phone, &broker, |e| {
        matches!(e, Event::Devices { .. })
    })?;
    bob.wait_for("Alice's list of 5 devices", EVENT_WAIT, |_, e| {
        world.is_list_of(e, FANOUT_DEVICES).then_some(())
    })?;
    bob.stop()?;

    let engine = Engine::open_with(&world.bob_phone, KeychainUse::Off)?;
    let mut queuing = Duration::ZERO;
    let mut run = Drained {
        total: Duration::ZERO,
        sealed: Some(Duration::ZERO),
        most_unacked: 0,
        left: (0, 0),
    };
    let mut rounds = 0;
    let mut queued = 0;
    while queued < counts.fanout {
        let batch = counts.fanout - queued;
        let ((), took) = timed(|| {
            for i in queued..queued + batch {
                engine.send(&world.chat, &message_text(i), None)?;
            }
            Ok(())
        })?;
        queuing += took;
        let (unsealed, unacked) = engine.queued()?;
        anyhow::ensure!(
            unsealed >= batch as u64 && unacked == 0,
            "Bob's queue holds {unsealed} unsealed and {unacked} unacknowledged rows after queuing {batch} messages"
        );
        let round = drain(&engine, batch)?;
        anyhow::ensure!(
            round.left == (0, 0),
            "Bob's queue still holds {} unsealed and {} unacknowledged rows",
            round.left.0,
            round.left.1
        );
        run.total += round.total;
        run.sealed = run.sealed.zip(round.sealed).map(|(a, b)| a + b);
        run.most_unacked = run.most_unacked.max(round.most_unacked);
        queued += batch;
        rounds += 1;
    }
    line(
        out,
        "messaging.fanout.setup.queue",
        secs(queuing),
        &format!(
            "s ({} msg/s: engine.send of {} messages, no session running)",
            rate(counts.fanout, queuing),
            short(counts.fanout)
        ),
    )?;
    line(
        out,
        "messaging.fanout.rounds",
        rounds,
        "round(s): everything queued with no session running, then send_queued",
    )?;
    let envelopes = counts.fanout * FANOUT_DEVICES;
    let per_s = envelopes as f64 / run.total.as_secs_f64().max(1e-9);
    line(out, "messaging.fanout.devices", FANOUT_DEVICES, "devices")?;
    line(
        out,
        "messaging.fanout.envelopes",
        envelopes,
        &format!(
            "envelopes ({} messages x {FANOUT_DEVICES} devices; the most seen waiting for an ack: {})",
            short(counts.fanout),
            run.most_unacked
        ),
    )?;
    line(
        out,
        "messaging.fanout.total",
        secs(run.total),
        "s (summed over the rounds: send_queued called to the last message acknowledged)",
    )?;
    line(
        out,
        "messaging.fanout_envelopes_per_s",
        format!("{per_s:.0}"),
        "envelopes/s (sealed, published, acknowledged)",
    )?;
    if let Some(sealed) = run.sealed {
        line(
            out,
            "messaging.fanout.seal",
            secs(sealed),
            &format!(
                "s ({:.0} envelopes/s: send_queued called to the fan-out queue seen empty, polled every {} ms)",
                envelopes as f64 / sealed.as_secs_f64().max(1e-9),
                WATCH_EVERY.as_millis()
            ),
        )?;
        let rest = run.total.saturating_sub(sealed);
        line(
            out,
            "messaging.fanout.publish",
            secs(rest),
            &format!(
                "s ({:.0} envelopes/s: fan-out queue empty to the last acknowledgement)",
                envelopes as f64 / rest.as_secs_f64().max(1e-9)
            ),
        )?;
    }

    let bare = bare_publishes(url, envelopes, envelope_bytes, FANOUT_DEVICES)?;
    let bare_per_s = envelopes as f64 / bare.as_secs_f64().max(1e-9);
    line(
        out,
        "messaging.fanout.bare_publish_per_s",
        format!("{bare_per_s:.0}"),
        &format!(
            "publishes/s (one rumqttc client, QoS 1, {envelopes} x {envelope_bytes} bytes to {FANOUT_DEVICES} offline sessions, until every PUBACK)"
        ),
    )?;
    line(
        out,
        "messaging.fanout_vs_bare",
        format!("{:.2}", per_s / bare_per_s.max(1e-9)),
        "x",
    )?;
    Ok(per_s)
}

/// What Bob's `send_queued` did.
#[derive(Debug, Clone, Copy)]
struct Drained {
    /// From the call to the last message acknowledged.
    total: Duration,
    /// From the call to the fan-out queue seen empty.
    sealed: Option<Duration>,
    /// The most outbox rows the watcher saw waiting.
    most_unacked: u64,
    /// `queued()` once it returned.
    left: (u64, u64),
}

/// Sends everything `engine` queued (`messages` messages), watching the queue from another
/// connection to its store.
fn drain(engine: &Engine, messages: usize) -> anyhow::Result<Drained> {
    let rt = runtime()?;
    let watcher_engine = Engine::open_with(engine.home(), KeychainUse::Off)?;
    let stop = AtomicBool::new(false);
    let mut sent = 0usize;
    let mut last_sent = None;
    let (all_sent_tx, all_sent) = oneshot::channel::<()>();
    let mut all_sent_tx = Some(all_sent_tx);
    let started = Instant::now();
    let (done, watched) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_queue(&watcher_engine, &stop));
        let mut on = |event: &Event| {
            if let Event::Receipt { status: "sent", .. } = event {
                sent += 1;
                last_sent = Some(Instant::now());
                if sent == messages
                    && let Some(tx) = all_sent_tx.take()
                {
                    tx.send(()).ok();
                }
            }
        };
        let done = rt.block_on(async {
            let drain = Box::pin(engine.send_queued(DRAIN_LIMIT, &mut on));
            tokio::select! {
                done = drain => done,
                // Every message acknowledged: the quiet spell send_queued waits before it
                // disconnects is not part of the figure, and is not waited for.
                _ = all_sent => Ok(true),
            }
        });
        stop.store(true, Ordering::Relaxed);
        (done, watcher.join())
    });
    let all_sent = done.context("Bob's send_queued")?;
    anyhow::ensure!(
        all_sent,
        "Bob's send_queued did not finish within {DRAIN_LIMIT:?}"
    );
    anyhow::ensure!(
        sent == messages,
        "{sent} of {messages} messages were reported sent"
    );
    let (sealed_at, most_unacked) = watched
        .map_err(|_| anyhow::anyhow!("the queue watcher panicked"))?
        .context("watching Bob's queue")?;
    let last = last_sent.context("no message was reported sent")?;
    Ok(Drained {
        total: last.saturating_duration_since(started),
        sealed: sealed_at.map(|at| at.saturating_duration_since(started)),
        most_unacked,
        left: engine.queued()?,
    })
}

/// Reads the queue lengths every [`WATCH_EVERY`] until `stop`: when the fan-out queue was
/// first seen empty, and the most outbox rows seen.
fn watch_queue(engine: &Engine, stop: &AtomicBool) -> anyhow::Result<(Option<Instant>, u64)> {
    let mut sealed_at = None;
    let mut most_unacked = 0;
    while !stop.load(Ordering::Relaxed) {
        let (unsealed, unacked) = engine.queued()?;
        let at = Instant::now();
        most_unacked = most_unacked.max(unacked);
        if unsealed == 0 && sealed_at.is_none() {
            sealed_at = Some(at);
        }
        std::thread::sleep(WATCH_EVERY);
    }
    Ok((sealed_at, most_unacked))
}

/// Two accounts on one broker: Alice (phone, laptops) and Bob (phone), each in the other's
/// contacts.
#[derive(Debug)]
struct World {
    root: PathBuf,
    alice_phone: PathBuf,
    laptops: Vec<PathBuf>,
    bob_phone: PathBuf,
    /// Bob's chat with Alice (its id).
    chat: String,
    /// Alice's account id.
    alice: String,
}

impl World {
    /// Alice's phone with one laptop linked and Bob's phone; contacts are exchanged before
    /// the laptop is linked, so that Bob learns Alice's longer list from the broker.
    fn create(root: &Path, url: &BrokerUrl) -> anyhow::Result<Self> {
        let broker = url.to_string();
        let alice_phone = root.join("alice-phone");
        let bob_phone = root.join("bob-phone");
        let alice = Engine::open_with(&alice_phone, KeychainUse::Off)?;
        let bob = Engine::open_with(&bob_phone, KeychainUse::Off)?;
        alice.init_primary("Alice", Some(&broker))?;
        bob.init_primary("Bob", Some(&broker))?;
        let alice_link = alice.contact_link()?;
        alice.contact_add(&bob.contact_link()?, None)?;
        let contact = bob.contact_add(&alice_link, None)?;
        drop((alice, bob));
        let laptop = laptop_home(root, 0);
        link_laptop(&alice_phone, &laptop, &broker)?;
        Ok(Self {
            root: root.to_path_buf(),
            alice_phone,
            laptops: vec![laptop],
            bob_phone,
            chat: contact.chat,
            alice: contact.account,
        })
    }

    /// Whether `event` says Alice's device list now holds `devices` devices.
    fn is_list_of(&self, event: &Event, devices: usize) -> bool {
        matches!(event, Event::Devices { account, devices: n, .. } if *account == self.alice && *n == devices)
    }
}

fn laptop_home(root: &Path, index: usize) -> PathBuf {
    root.join(format!("alice-laptop-{}", index + 1))
}

/// Links a new laptop at `laptop` to the account of the phone at `phone`: the laptop shows its
/// code on its own thread, the phone scans it here; both end once the history is synced.
pub(crate) fn link_laptop(phone: &Path, laptop: &Path, broker: &str) -> anyhow::Result<()> {
    let options = LinkOptions {
        broker: broker.to_owned(),
        name: format!(
            "Alice's {}",
            laptop.file_name().unwrap_or_default().to_string_lossy()
        ),
        platform: "linux".to_owned(),
        schedule: QrSchedule::default(),
        sync_timeout: Some(LINK_LIMIT),
    };
    let (code_tx, code_rx) = mpsc::channel::<String>();
    let (laptop_result, phone_result) = std::thread::scope(|scope| {
        let laptop_side = scope.spawn(move || -> anyhow::Result<()> {
            let engine = Engine::open_with(laptop, KeychainUse::Off)?;
            let mut code_tx = Some(code_tx);
            let mut on = |event: &Event| {
                if let Event::Code { link, .. } = event
                    && let Some(tx) = code_tx.take()
                {
                    // A phone that is gone already failed; its error is the one reported.
                    tx.send(link.clone()).ok();
                }
            };
            let linked = runtime()?.block_on(async {
                tokio::time::timeout(LINK_LIMIT, Box::pin(engine.link(&options, &mut on))).await
            });
            match linked {
                Ok(result) => result.map(|_| ()).map_err(Into::into),
                Err(_) => anyhow::bail!("linking took longer than {LINK_LIMIT:?}"),
            }
        });
        let phone_side = || -> anyhow::Result<()> {
            let code = code_rx
                .recv_timeout(EVENT_WAIT)
                .context("the laptop showed no code")?;
            let link = Engine::parse_link(&code)?;
            let engine = Engine::open_with(phone, KeychainUse::Off)?;
            let mut confirm = |_: &str, _: &str| true;
            let scanned = runtime()?.block_on(async {
                let mut on = |_: &Event| {};
                let scan = engine.scan(link, PlanBound::default(), &mut confirm, &mut on);
                tokio::time::timeout(LINK_LIMIT, Box::pin(scan)).await
            });
            match scanned {
                Ok(result) => result.map(|_| ()).map_err(Into::into),
                Err(_) => anyhow::bail!("scanning and syncing took longer than {LINK_LIMIT:?}"),
            }
        };
        let phone_result = phone_side();
        let laptop_result = laptop_side
            .join()
            .map_err(|_| anyhow::anyhow!("the laptop's thread panicked"));
        (laptop_result, phone_result)
    });
    laptop_result?.with_context(|| format!("linking {}", laptop.display()))?;
    phone_result.with_context(|| format!("the phone scanning for {}", laptop.display()))
}

/// An event a session reported, stamped on its own thread.
type Stamped = (Instant, Event);

/// One device running its session (`Engine::run_with`) on its own thread with its own
/// runtime; the events it keeps come back stamped.
pub(crate) struct Session {
    name: &'static str,
    pub(crate) handle: SessionHandle,
    events: mpsc::Receiver<Stamped>,
    /// Kept events not yet asked for.
    held: VecDeque<Stamped>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Session {
    /// Starts the session of the device at `home` and returns once it is online. Besides
    /// `Online`, the events `keep` says yes to come back through [`Session::wait_for`].
    pub(crate) fn start(
        name: &'static str,
        home: &Path,
        broker: &str,
        keep: fn(&Event) -> bool,
    ) -> anyhow::Result<Self> {
        Self::spawn(name, home, broker, None, keep)
    }

    /// [`Session::start`] for a phone that also serves bridge desktops on `bridge`
    /// (`Engine::run_bridged`; its work is not handed over through [`Session::handle`]).
    pub(crate) fn start_bridged(
        name: &'static str,
        home: &Path,
        broker: &str,
        bridge: std::net::SocketAddr,
        keep: fn(&Event) -> bool,
    ) -> anyhow::Result<Self> {
        Self::spawn(name, home, broker, Some(bridge), keep)
    }

    fn spawn(
        name: &'static str,
        home: &Path,
        broker: &str,
        bridge: Option<std::net::SocketAddr>,
        keep: fn(&Event) -> bool,
    ) -> anyhow::Result<Self> {
        let (tx, events) = mpsc::channel::<Stamped>();
        let (stop, stopped) = oneshot::channel::<()>();
        let (handle, requests) = session_channel();
        let home = home.to_path_buf();
        let broker = broker.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("bench {name}"))
            .spawn(move || -> anyhow::Result<()> {
                let engine = Engine::open_with(&home, KeychainUse::Off)?;
                let mut on = |event: &Event| {
                    let at = Instant::now();
                    if keep(event) || matches!(event, Event::Online { .. }) {
                        // The bench stopped listening: it is ending anyway.
                        tx.send((at, event.clone())).ok();
                    }
                };
                runtime()?.block_on(async {
                    let session = async {
                        match bridge {
                            Some(address) => {
                                let listener = tandem_engine::BridgeListener::bind(address).await?;
                                drop(requests);
                                engine.run_bridged(Some(&broker), listener, &mut on).await
                            }
                            None => engine.run_with(Some(&broker), requests, &mut on).await,
                        }
                    };
                    tokio::select! {
                        result = Box::pin(session) => result.map_err(anyhow::Error::from),
                        _ = stopped => Ok(()),
                    }
                })
            })
            .with_context(|| format!("starting the thread of {name}"))?;
        let mut session = Self {
            name,
            handle,
            events,
            held: VecDeque::new(),
            stop: Some(stop),
            thread: Some(thread),
        };
        session.wait_for("online", EVENT_WAIT, |_, e| {
            matches!(e, Event::Online { .. }).then_some(())
        })?;
        Ok(session)
    }

    /// Waits at most `limit` for a kept event that `wanted` maps to a value; events it does
    /// not want stay for a later wait.
    pub(crate) fn wait_for<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut wanted: impl FnMut(Instant, &Event) -> Option<T>,
    ) -> anyhow::Result<T> {
        if let Some(found) = self
            .held
            .iter()
            .position(|(at, e)| wanted(*at, e).is_some())
            && let Some((at, event)) = self.held.remove(found)
            && let Some(value) = wanted(at, &event)
        {
            return Ok(value);
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((at, event)) => match wanted(at, &event) {
                    Some(value) => return Ok(value),
                    None => self.held.push_back((at, event)),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    anyhow::bail!("no {what} event from {} within {limit:?}", self.name)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let ended = self.join();
                    return Err(match ended {
                        Err(e) => e.context(format!("{}'s session ended", self.name)),
                        Ok(()) => {
                            anyhow::anyhow!("{}'s session ended before a {what} event", self.name)
                        }
                    });
                }
            }
        }
    }

    /// Drops the kept events `unwanted` says yes to (those no wait will ask for).
    pub(crate) fn forget(&mut self, unwanted: impl Fn(&Event) -> bool) {
        self.held.retain(|(_, e)| !unwanted(e));
    }

    /// Stops the session and returns how it ended.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            // A session that already ended says why when joined.
            stop.send(()).ok();
        }
        self.join()
            .with_context(|| format!("{}'s session", self.name))
    }

    fn join(&mut self) -> anyhow::Result<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("the thread of {} panicked", self.name))?,
            None => Ok(()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        // Dropped on an error path: that error is the one reported.
        self.join().ok();
    }
}

/// A client that reads the first envelope published to any device inbox.
struct Sniffer {
    sizes: mpsc::Receiver<usize>,
    thread: Option<JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Sniffer {
    /// Subscribes to every inbox (`tandem/v1/dev/+/in`) and returns once the broker
    /// acknowledged the subscription.
    fn start(url: &BrokerUrl) -> anyhow::Result<Self> {
        let (client, mut events) = bare_client(url, "bench-sniffer", true, false)?;
        let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
        let (size_tx, sizes) = mpsc::channel::<usize>();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench sniffer".to_owned())
            .spawn(move || {
                let Ok(rt) = runtime() else {
                    ready_tx.send(Err("no runtime".to_owned())).ok();
                    return;
                };
                rt.block_on(async {
                    if let Err(e) = client
                        .subscribe("tandem/v1/dev/+/in", QoS::AtMostOnce)
                        .await
                    {
                        ready_tx.send(Err(e.to_string())).ok();
                        return;
                    }
                    loop {
                        let polled = tokio::select! {
                            polled = events.poll() => polled,
                            _ = &mut stopped => break,
                        };
                        match polled {
                            Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                                ready_tx.send(Ok(())).ok();
                            }
                            Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                                size_tx.send(p.payload.len()).ok();
                            }
                            Ok(_) => {}
                            Err(e) => {
                                ready_tx.send(Err(e.to_string())).ok();
                                return;
                            }
                        }
                    }
                    leave(&client, &mut events).await;
                });
            })
            .context("starting the sniffer's thread")?;
        let sniffer = Self {
            sizes,
            thread: Some(thread),
            stop: Some(stop),
        };
        match ready.recv_timeout(EVENT_WAIT) {
            Ok(Ok(())) => Ok(sniffer),
            Ok(Err(e)) => anyhow::bail!("the sniffer could not subscribe: {e}"),
            Err(_) => anyhow::bail!("the sniffer's subscription was not acknowledged"),
        }
    }

    /// The size of the first envelope seen; stops the sniffer.
    fn first_size(mut self, limit: Duration) -> anyhow::Result<usize> {
        let size = self
            .sizes
            .recv_timeout(limit)
            .context("the sniffer saw no envelope")?;
        self.end();
        Ok(size)
    }

    fn end(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if let Some(thread) = self.thread.take() {
            // A panicked sniffer only loses the size, already reported as missing.
            thread.join().ok();
        }
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.end();
    }
}

/// A bare `rumqttc` client as the engine configures its own (QoS 1 in flight: 100).
fn bare_client(
    url: &BrokerUrl,
    client_id: &str,
    clean_session: bool,
    nodelay: bool,
) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let settings = ClientSettings {
        clean_session,
        ..ClientSettings::default()
    };
    let options = mqtt_options(url, client_id, &settings)
        .with_context(|| format!("options of the bare client {client_id}"))?;
    let (client, mut events) = AsyncClient::new(options, BARE_REQUEST_CAPACITY);
    let mut network = events.network_options();
    network.set_tcp_nodelay(nodelay);
    events.set_network_options(network);
    Ok((client, events))
}

/// How a series of bare round trips runs.
#[derive(Debug, Clone, Copy)]
struct BareTrips {
    /// Bytes per message.
    payload: usize,
    /// Untimed round trips first.
    warmup: usize,
    /// Timed round trips.
    samples: usize,
    /// Whether the receiver answers each message with a small QoS 1 publish that the sender
    /// receives (and acknowledges) before its next message, as a "delivered" receipt does.
    receipt: bool,
    /// Whether both clients set `TCP_NODELAY` (off by default in rumqttc, and in the engine).
    nodelay: bool,
}

impl BareTrips {
    /// A name for the clients and topics of this series.
    fn label(&self) -> String {
        format!(
            "{}{}",
            if self.receipt { "receipt" } else { "plain" },
            if self.nodelay { "-nodelay" } else { "" }
        )
    }
}

/// What the bare receiver's thread sends the sender.
#[derive(Debug, Clone, Copy)]
enum Heard {
    /// Subscribed: messages from now on arrive.
    Ready,
    /// Message `seq` arrived at the stamped instant.
    Message(Instant, u32),
}

/// `warmup + samples` QoS 1 round trips between two bare clients, one in flight: the
/// receiver on its own thread stamps each message as its event loop hands it over (and,
/// with `receipt`, answers it). Returns the timed round trips.
fn bare_round_trips(url: &BrokerUrl, trips: BareTrips) -> anyhow::Result<Vec<Duration>> {
    let total = trips.warmup + trips.samples;
    let label = trips.label();
    let topic = format!("{RTT_TOPIC}/{label}");
    let receipt_topic = format!("{RTT_TOPIC}/{label}/receipt");
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel::<Heard>();
    let receiver = {
        let (client, events) =
            bare_client(url, &format!("bench-rtt-rx-{label}"), true, trips.nodelay)?;
        let answer = trips.receipt.then(|| receipt_topic.clone());
        let topic = topic.clone();
        std::thread::Builder::new()
            .name("bench rtt receiver".to_owned())
            .spawn(move || -> anyhow::Result<()> {
                runtime()?.block_on(bare_receiver(
                    client, events, &topic, answer, total, heard_tx,
                ))
            })
            .context("starting the bare receiver's thread")?
    };

    let (client, mut events) =
        bare_client(url, &format!("bench-rtt-tx-{label}"), true, trips.nodelay)?;
    let timed = runtime()?.block_on(async {
        match tokio::time::timeout(EVENT_WAIT, heard.recv()).await {
            Ok(Some(Heard::Ready)) => {}
            _ => anyhow::bail!("the bare receiver did not subscribe within {EVENT_WAIT:?}"),
        }
        // The sender's event loop runs beside it; receipts arriving are counted.
        let (receipts_tx, mut receipts) = tokio::sync::mpsc::unbounded_channel::<()>();
        if trips.receipt {
            client
                .subscribe(receipt_topic.as_str(), QoS::AtLeastOnce)
                .await
                .context("subscribing the bare sender to receipts")?;
        }
        let (subscribed_tx, subscribed) = oneshot::channel::<()>();
        let driver = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            tx.send(()).ok();
                        }
                    }
                    Ok(rumqttc::Event::Incoming(Packet::Publish(_))) => {
                        receipts_tx.send(()).ok();
                    }
                    Ok(_) => {}
                    Err(e) => return e,
                }
            }
        });
        if trips.receipt {
            tokio::time::timeout(EVENT_WAIT, subscribed)
                .await
                .context("the bare sender's subscription was not acknowledged")?
                .context("the bare sender's connection ended")?;
        }
        let mut timed = Vec::with_capacity(trips.samples);
        for seq in 0..u32::try_from(total)? {
            let mut body = vec![0x5a; trips.payload.max(4)];
            if let Some(head) = body.get_mut(..4) {
                head.copy_from_slice(&seq.to_le_bytes());
            }
            let t0 = Instant::now();
            client
                .publish(topic.as_str(), QoS::AtLeastOnce, false, body)
                .await
                .context("queuing a bare publish")?;
            let (at, got) = match tokio::time::timeout(EVENT_WAIT, heard.recv()).await {
                Ok(Some(Heard::Message(at, got))) => (at, got),
                _ if driver.is_finished() => {
                    anyhow::bail!("the bare sender's connection failed")
                }
                _ => anyhow::bail!("bare message {seq} did not arrive within {EVENT_WAIT:?}"),
            };
            anyhow::ensure!(
                got == seq,
                "bare message {got} arrived when {seq} was awaited"
            );
            if seq as usize >= trips.warmup {
                timed.push(at.saturating_duration_since(t0));
            }
            if trips.receipt {
                tokio::time::timeout(EVENT_WAIT, receipts.recv())
                    .await
                    .with_context(|| format!("no receipt for bare message {seq}"))?;
            }
        }
        client.disconnect().await.ok();
        tokio::time::timeout(Duration::from_secs(1), driver)
            .await
            .ok();
        Ok::<_, anyhow::Error>(timed)
    });
    let received = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("the bare receiver panicked"))?;
    // The sender's error explains a receiver that stopped hearing.
    let timed = timed?;
    received?;
    Ok(timed)
}

/// The receiving side of [`bare_round_trips`]: subscribes to `topic`, stamps `total`
/// messages, answering each on `answer` if given.
async fn bare_receiver(
    client: AsyncClient,
    mut events: EventLoop,
    topic: &str,
    answer: Option<String>,
    total: usize,
    heard: tokio::sync::mpsc::UnboundedSender<Heard>,
) -> anyhow::Result<()> {
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .context("subscribing the bare receiver")?;
    let mut received = 0;
    while received < total {
        let polled = tokio::time::timeout(EVENT_WAIT, events.poll())
            .await
            .context("the bare receiver heard nothing")?;
        match polled.context("the bare receiver's connection")? {
            rumqttc::Event::Incoming(Packet::Publish(p)) => {
                let at = Instant::now();
                let head = p
                    .payload
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .context("a bare message without its number")?;
                heard
                    .send(Heard::Message(at, u32::from_le_bytes(head)))
                    .ok();
                received += 1;
                if let Some(answer) = &answer {
                    client
                        .publish(answer.as_str(), QoS::AtLeastOnce, false, head.to_vec())
                        .await
                        .context("queuing a bare receipt")?;
                }
            }
            rumqttc::Event::Incoming(Packet::SubAck(_)) => {
                heard.send(Heard::Ready).ok();
            }
            _ => {}
        }
    }
    // The last acknowledgements leave with the next polls, before the DISCONNECT.
    leave(&client, &mut events).await;
    Ok(())
}

/// Sends `DISCONNECT` and polls until the broker closes the connection (at most
/// [`LEAVE_WAIT`]), so that the next client connects only after the broker let this one go.
///
/// Closing the socket right after `DISCONNECT` races in rumqttd 0.20: the router may handle the
/// disconnection twice (once for the packet, once for the closed socket), and if a new client
/// took the freed connection slot in between, the second time drops *that* client.
async fn leave(client: &AsyncClient, events: &mut EventLoop) {
    if client.disconnect().await.is_err() {
        return;
    }
    tokio::time::timeout(LEAVE_WAIT, async {
        // rumqttc reports the broker's close as an error; the next poll would reconnect.
        while events.poll().await.is_ok() {}
    })
    .await
    .ok();
}

/// `count` QoS 1 publishes of `payload` bytes through one bare client, spread over `sinks`
/// topics each subscribed by an offline persistent session; the time from the first publish
/// to the last `PUBACK`.
fn bare_publishes(
    url: &BrokerUrl,
    count: usize,
    payload: usize,
    sinks: usize,
) -> anyhow::Result<Duration> {
    let rt = runtime()?;
    let topics: Vec<String> = (0..sinks).map(|i| format!("bench/fanout/{i}")).collect();
    rt.block_on(async {
        for (i, topic) in topics.iter().enumerate() {
            park_sink(url, &format!("bench-sink-{i}"), topic).await?;
        }
        let (client, mut events) = bare_client(url, "bench-fanout-tx", true, false)?;
        let body = vec![0x5a; payload];
        let started = Instant::now();
        let publisher = tokio::spawn(async move {
            for topic in topics.iter().cycle().take(count) {
                client
                    .publish(topic.as_str(), QoS::AtLeastOnce, false, body.clone())
                    .await?;
            }
            Ok::<_, rumqttc::ClientError>(client)
        });
        let mut acked = 0;
        while acked < count {
            let polled = tokio::time::timeout(EVENT_WAIT, events.poll())
                .await
                .context("the bare publisher heard nothing")?;
            if let rumqttc::Event::Incoming(Packet::PubAck(_)) =
                polled.context("the bare publisher's connection")?
            {
                acked += 1;
            }
        }
        let took = started.elapsed();
        let client = publisher
            .await
            .context("the bare publishing task")?
            .context("queuing a bare publish")?;
        leave(&client, &mut events).await;
        Ok(took)
    })
}

/// Connects `client_id` with a persistent session, subscribes it to `topic` and leaves: the
/// broker keeps what is published there for it, as for an offline device.
async fn park_sink(url: &BrokerUrl, client_id: &str, topic: &str) -> anyhow::Result<()> {
    let (client, mut events) = bare_client(url, client_id, false, false)?;
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .context("subscribing a sink")?;
    let subscribed = tokio::time::timeout(EVENT_WAIT, async {
        loop {
            if let rumqttc::Event::Incoming(Packet::SubAck(_)) = events.poll().await? {
                return Ok(());
            }
        }
    })
    .await
    .with_context(|| format!("parking the sink {client_id}"))?;
    subscribed
        .map_err(|e: rumqttc::ConnectionError| anyhow::Error::new(e))
        .with_context(|| format!("parking the sink {client_id}"))?;
    leave(&client, &mut events).await;
    Ok(())
}

/// `count` appends of [`DISK_SYNC_BYTES`] to a file in `dir`, each followed by a timed
/// `fdatasync` (what SQLite does to commit durably on Linux).
fn disk_syncs(dir: &Path, count: usize) -> anyhow::Result<Vec<Duration>> {
    let path = dir.join("disk-sync-probe");
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let block = vec![0x5a; DISK_SYNC_BYTES];
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        file.write_all(&block)
            .with_context(|| format!("writing {}", path.display()))?;
        let t0 = Instant::now();
        file.sync_data()
            .with_context(|| format!("syncing {}", path.display()))?;
        samples.push(t0.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(samples)
}

/// The `i`-th message's text (the same length for every `i` below 100,000).
pub(crate) fn message_text(i: usize) -> String {
    format!("Message {i:05} from Bob: are we still on for lunch tomorrow at noon?")
}

/// The median and 99th percentile (nearest rank) of `samples`.
pub(crate) fn p50_p99(samples: &[Duration]) -> anyhow::Result<(Duration, Duration)> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    match (percentile(&sorted, 50), percentile(&sorted, 99)) {
        (Some(p50), Some(p99)) => Ok((p50, p99)),
        _ => anyhow::bail!("no samples"),
    }
}

/// The `p`-th percentile (nearest rank) of `sorted`; `None` when it is empty.
fn percentile(sorted: &[Duration], p: usize) -> Option<Duration> {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// A temporary folder for the device homes, on a real disk when there is one.
pub(crate) fn homes_dir() -> anyhow::Result<tempfile::TempDir> {
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("tandem-bench-messaging-");
        b
    };
    if Path::new(HOMES_IN).is_dir() {
        builder
            .tempdir_in(HOMES_IN)
            .with_context(|| format!("creating a folder in {HOMES_IN}"))
    } else {
        builder.tempdir().context("creating a temporary folder")
    }
}

/// The file system type of the mount holding `path` (Linux `/proc/mounts`), or "unknown".
pub(crate) fn file_system_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown file system".to_owned();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown file system".to_owned(), |(_, kind)| kind)
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a Tokio runtime")
}

pub(crate) fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, Duration)> {
    let started = Instant::now();
    let value = f()?;
    Ok((value, started.elapsed()))
}

fn goal_line(out: &mut dyn Write, name: &str, met: bool, detail: &str) -> anyhow::Result<()> {
    line(out, name, if met { "MET" } else { "MISSED" }, detail)
}

pub(crate) fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

pub(crate) fn rate(count: usize, took: Duration) -> u64 {
    (count as f64 / took.as_secs_f64().max(1e-9)) as u64
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

pub(crate) fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

#[cfg(test)]
#[path = "messaging_tests.rs"]
mod tests;

//! Load benchmark (issue 7): N linked devices across accounts exchange M sealed messages each
//! through real MQTT brokers, and every envelope is opened, checked and counted once.
//!
//! Devices are simulated at the protocol level, not as whole engines (500 SQLite stores would
//! measure the disk): each device is one `rumqttc` client with its broker name
//! (`{account}-{index}`) as client id, a persistent session, and a QoS 1 subscription to its
//! inbox `tandem/v1/dev/{account}-{index}/in`. Accounts have two devices (a phone `-0` and a
//! desktop `-1`), each with a certificate in its account's signed device list. Account `a`
//! writes to account `a + 1` (a ring): each message of a device goes to both devices of that
//! account, two envelopes sealed over pairwise sessions (`seal_envelope`, the engine's path)
//! under one message id. The text carries the send instant (µs since the run's start on the
//! process's monotonic clock, read before sealing).
//!
//! A receiver reads the clear header, drops an envelope whose message id it has already shown
//! (counted as a duplicate: QoS 1 may deliver twice), and opens every other one
//! (`open_envelope`: recipient, device list, session key, tag, counter, replay guard).
//! Latency: from the send instant to the opened message, so it includes sealing, the broker and
//! opening.
//!
//! Pacing: closed loop. Every device has one message (its two envelopes) in flight: it sends
//! the next once the broker acknowledged both (`PUBACK`), so the brokers set the pace and are
//! never overrun. Devices connect and subscribe [`CONNECTING_AT_ONCE`] at a time, all before
//! the first send; on a cluster device `i` uses node `i % nodes`, so most envelopes cross
//! nodes. Throughput: distinct deliveries per second from the first send to the last
//! delivery.
//!
//! Without `--brokers`, one run measures the embedded broker, one Mosquitto and a three-node
//! NATS JetStream cluster, one after the other on the same machine, and prints the cluster's
//! figures against each single broker's.
//!
//! Limits: the embedded broker accepts 1,000 connections (`tandem_net::BrokerConfig`'s
//! default), so it takes at most about 1,000 devices; Mosquitto and NATS set none that 500
//! devices reach.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rumqttc::{AsyncClient, EventLoop, Packet, QoS, SubscribeReasonCode};
use tandem_crypto::{
    AccountId, AccountKey, DeviceCertificate, DeviceDescription, DeviceId, DeviceKeys, DeviceList,
    DevicePublicKeys, OsRng, PairwiseSession, RekeyPolicy,
};
use tandem_net::{BrokerList, BrokerUrl, ClientSettings, mqtt_options};
use tandem_proto::{
    Body, ChatRef, Envelope, Flags, MemoryReplayGuard, MessageId, OpenedBody, SealParams,
    open_envelope, seal_envelope,
};
use tandem_tests::{Embedded, Mosquitto, MosquittoOptions, NatsCluster};
use tokio::sync::{Semaphore, mpsc};

use crate::messaging::{p50_p99, rate, ratio, secs};
use crate::report::{line, load_average};

/// Devices of a full run.
pub const DEVICES_FULL: usize = 500;
/// Messages each device sends in a full run.
pub const MESSAGES_FULL: usize = 20;
/// Devices of a `--quick` run.
pub const DEVICES_QUICK: usize = 20;
/// Messages each device sends in a `--quick` run.
pub const MESSAGES_QUICK: usize = 5;
/// Devices of an account: a phone and a desktop.
const DEVICES_PER_ACCOUNT: usize = 2;
/// Devices connecting and subscribing at the same time.
const CONNECTING_AT_ONCE: usize = 16;
/// Tries of a connection before the run gives up on it (a cluster may refuse a client id for
/// a moment, or take long over a CONNECT while busy).
const CONNECT_TRIES: u32 = 20;
/// Pause between two tries of a connection.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Longest wait for a subscription's `SUBACK`.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(30);
/// Longest wait for the `PUBACK`s of one message.
const ACK_WAIT: Duration = Duration::from_secs(60);
/// Longest wait, once every envelope was acknowledged, for the last deliveries.
const DELIVERY_WAIT: Duration = Duration::from_secs(60);
/// How long a client waits for the broker to close its connection after `DISCONNECT`.
const LEAVE_WAIT: Duration = Duration::from_secs(2);
/// How often the run looks at the delivery count while waiting.
const WATCH_EVERY: Duration = Duration::from_millis(2);
/// Requests a client may queue before its event loop takes them.
const REQUEST_CAPACITY: usize = 64;
/// Replay-guard memory of each device (more than it receives in a run).
const REPLAY_MEMORY: usize = 100_000;

/// What `tandem-bench load` was asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Devices (default [`DEVICES_FULL`], [`DEVICES_QUICK`] with `quick`).
    pub devices: Option<usize>,
    /// Messages per device (default [`MESSAGES_FULL`], [`MESSAGES_QUICK`] with `quick`).
    pub messages: Option<usize>,
    /// Broker lists to run against instead of the three setups; each one setup whose devices
    /// spread over its URLs.
    pub brokers: Vec<String>,
    /// A smoke run.
    pub quick: bool,
}

/// The shape of one run: how many devices, and how many messages each sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) devices: usize,
    pub(crate) messages: usize,
    /// Longest wait, once every envelope was acknowledged, for the last deliveries.
    pub(crate) delivery_wait: Duration,
}

impl Plan {
    /// Envelopes that must be delivered: each message goes to every device of one account.
    pub(crate) fn expected(self) -> usize {
        self.devices * self.messages * DEVICES_PER_ACCOUNT
    }

    fn accounts(self) -> usize {
        self.devices / DEVICES_PER_ACCOUNT
    }

    fn check(self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.devices >= 2 * DEVICES_PER_ACCOUNT
                && self.devices.is_multiple_of(DEVICES_PER_ACCOUNT),
            "--devices must be an even number of at least 4 (accounts of {DEVICES_PER_ACCOUNT} devices, at least two accounts), not {}",
            self.devices
        );
        anyhow::ensure!(self.messages > 0, "--messages must be at least 1");
        Ok(())
    }
}

/// One setup's figures.
#[derive(Debug, Clone)]
pub(crate) struct Figures {
    /// Envelopes that had to arrive.
    pub(crate) expected: usize,
    /// Distinct envelopes opened and shown (each once).
    pub(crate) delivered: usize,
    /// Envelopes delivered again after their message was shown (dropped, not shown).
    pub(crate) duplicates: usize,
    /// Envelopes that did not open (each one also counts as lost).
    pub(crate) failed: usize,
    /// What the first failure said.
    pub(crate) first_failure: Option<String>,
    /// Median latency, send to opened.
    pub(crate) p50: Duration,
    /// 99th percentile latency.
    pub(crate) p99: Duration,
    /// From the first send to the last distinct delivery.
    pub(crate) wall: Duration,
    /// Connecting and subscribing every device.
    pub(crate) connect: Duration,
    /// Connections lost and made again during the run.
    pub(crate) reconnects: usize,
    /// Nodes the devices spread over.
    pub(crate) nodes: usize,
}

impl Figures {
    pub(crate) fn lost(&self) -> usize {
        self.expected.saturating_sub(self.delivered)
    }

    /// Distinct deliveries per second.
    pub(crate) fn throughput(&self) -> u64 {
        rate(self.delivered, self.wall)
    }
}

/// Runs the load benchmark and prints one line per setup, then the cluster against each
/// single broker.
///
/// # Errors
/// When a broker cannot start, a device cannot connect, or any envelope is lost.
pub fn run(out: &mut dyn Write, options: &Options) -> anyhow::Result<()> {
    let plan = Plan {
        devices: options.devices.unwrap_or(if options.quick {
            DEVICES_QUICK
        } else {
            DEVICES_FULL
        }),
        messages: options.messages.unwrap_or(if options.quick {
            MESSAGES_QUICK
        } else {
            MESSAGES_FULL
        }),
        delivery_wait: DELIVERY_WAIT,
    };
    plan.check()?;
    load_average(out, "load", "start")?;
    line(
        out,
        "load.plan",
        format!("{} x {}", plan.devices, plan.messages),
        &format!(
            "devices x messages ({} accounts of {DEVICES_PER_ACCOUNT} devices; each message to \
             the {DEVICES_PER_ACCOUNT} devices of the next account: {} envelopes; closed loop, \
             one message in flight per device; {CONNECTING_AT_ONCE} devices connecting at once)",
            plan.accounts(),
            plan.expected()
        ),
    )?;
    let mut measured: Vec<(String, Figures)> = Vec::new();
    if options.brokers.is_empty() {
        let embedded = Embedded::start().context("starting the embedded broker")?;
        let urls = vec![embedded.url().clone()];
        measure(out, &mut measured, "embedded", &urls, plan)?;
        drop(embedded); // stops it: the next setup has the machine to itself

        match Mosquitto::start_or_skip(MosquittoOptions::default()).context("starting Mosquitto")? {
            Some(mosquitto) => {
                let urls = vec![mosquitto.url().clone()];
                measure(out, &mut measured, "mosquitto", &urls, plan)?;
            }
            None => line(
                out,
                "load.mosquitto",
                "skipped",
                "(mosquitto not installed)",
            )?,
        }

        match NatsCluster::start() {
            Ok(cluster) => {
                let urls = cluster.urls().to_vec();
                measure(out, &mut measured, "nats_cluster", &urls, plan)?;
            }
            Err(e @ tandem_tests::Error::NatsMissing { .. }) => {
                line(out, "load.nats_cluster", "skipped", &format!("({e})"))?;
            }
            Err(e) => return Err(e).context("starting the three-node NATS cluster"),
        }
    } else {
        let many = options.brokers.len() > 1;
        for (i, list) in options.brokers.iter().enumerate() {
            let urls: Vec<BrokerUrl> = BrokerList::parse(list)
                .with_context(|| format!("--brokers {list}"))?
                .urls()
                .to_vec();
            let name = if many {
                format!("brokers{}", i + 1)
            } else {
                "brokers".to_owned()
            };
            measure(out, &mut measured, &name, &urls, plan)?;
        }
    }
    compare(out, &measured)?;
    load_average(out, "load", "end")?;

    verdict(&measured)
}

/// Fails, naming each setup and what it lost, when any envelope was lost.
fn verdict(measured: &[(String, Figures)]) -> anyhow::Result<()> {
    let failed: Vec<String> = measured
        .iter()
        .filter(|(_, f)| f.lost() > 0)
        .map(|(name, f)| {
            format!(
                "{name}: {} of {} envelopes lost{}",
                f.lost(),
                f.expected,
                f.first_failure
                    .as_ref()
                    .map(|e| format!(" ({} did not open; first: {e})", f.failed))
                    .unwrap_or_default()
            )
        })
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "messages were lost: {}",
        failed.join("; ")
    );
    Ok(())
}

/// Runs the load on one setup and prints its line.
fn measure(
    out: &mut dyn Write,
    measured: &mut Vec<(String, Figures)>,
    name: &str,
    urls: &[BrokerUrl],
    plan: Plan,
) -> anyhow::Result<()> {
    let figures = run_setup(urls, plan).with_context(|| format!("the load on {name}"))?;
    line(
        out,
        &format!("load.{name}"),
        figures.throughput(),
        &format!(
            "deliveries/s ({} of {} delivered, {} lost, {} duplicates seen and dropped; latency \
             p50 {} ms, p99 {} ms; {} s from the first send to the last delivery; {} s to connect \
             and subscribe {} devices over {} node{}; {} reconnects)",
            figures.delivered,
            figures.expected,
            figures.lost(),
            figures.duplicates,
            ms(figures.p50),
            ms(figures.p99),
            secs(figures.wall),
            secs(figures.connect),
            plan.devices,
            figures.nodes,
            if figures.nodes == 1 { "" } else { "s" },
            figures.reconnects,
        ),
    )?;
    measured.push((name.to_owned(), figures));
    Ok(())
}

/// Every setup of several nodes against every single broker of the same run.
fn compare(out: &mut dyn Write, measured: &[(String, Figures)]) -> anyhow::Result<()> {
    for (many, m) in measured.iter().filter(|(_, f)| f.nodes > 1) {
        for (single, s) in measured.iter().filter(|(_, f)| f.nodes == 1) {
            let throughput = m.throughput() as f64 / (s.throughput() as f64).max(1.0);
            line(
                out,
                &format!("load.{many}_vs_{single}"),
                format!("{throughput:.2}"),
                &format!(
                    "x the throughput ({} against {} deliveries/s); latency p50 {:.1} x ({} against \
                     {} ms), p99 {:.1} x ({} against {} ms); connecting {:.1} x",
                    m.throughput(),
                    s.throughput(),
                    ratio(m.p50, s.p50),
                    ms(m.p50),
                    ms(s.p50),
                    ratio(m.p99, s.p99),
                    ms(m.p99),
                    ms(s.p99),
                    ratio(m.connect, s.connect),
                ),
            )?;
        }
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// The topic of a device's inbox.
fn inbox_topic(broker_name: &str) -> String {
    format!("tandem/v1/dev/{broker_name}/in")
}

/// One simulated device: its id, keys, and the devices it writes to.
struct Member {
    id: DeviceId,
    keys: Arc<DeviceKeys>,
    public: DevicePublicKeys,
    /// Indices (into the population) of the devices its messages go to.
    writes_to: Vec<usize>,
}

/// Every device of a run and every account's device list.
struct Population {
    members: Vec<Member>,
    lists: Arc<HashMap<AccountId, DeviceList>>,
}

impl Population {
    /// `plan.accounts()` fresh accounts (fresh ids: no broker session of an earlier run is
    /// reused) of [`DEVICES_PER_ACCOUNT`] devices each.
    fn new(plan: Plan) -> anyhow::Result<Self> {
        let mut rng = OsRng::new()?;
        let now_ms = now_ms();
        let accounts = plan.accounts();
        let mut members = Vec::with_capacity(plan.devices);
        let mut lists = HashMap::with_capacity(accounts);
        for a in 0..accounts {
            let account = AccountKey::generate(&mut rng);
            let mut certs = Vec::with_capacity(DEVICES_PER_ACCOUNT);
            let next = (a + 1) % accounts;
            let writes_to: Vec<usize> = (0..DEVICES_PER_ACCOUNT)
                .map(|d| next * DEVICES_PER_ACCOUNT + d)
                .collect();
            for index in 0..u32::try_from(DEVICES_PER_ACCOUNT)? {
                let keys = DeviceKeys::generate(&mut rng);
                certs.push(DeviceCertificate::issue(
                    &account,
                    &keys,
                    DeviceDescription {
                        index,
                        keys: keys.public_keys(),
                        name: format!("load device {index}"),
                        platform: "bench".into(),
                        linked_at_ms: now_ms,
                    },
                )?);
                members.push(Member {
                    id: DeviceId::new(account.account_id(), index),
                    public: keys.public_keys(),
                    keys: Arc::new(keys),
                    writes_to: writes_to.clone(),
                });
            }
            let list = DeviceList::new(account.public_key(), 1, now_ms, certs)?;
            lists.insert(account.account_id(), list);
        }
        Ok(Self {
            members,
            lists: Arc::new(lists),
        })
    }
}

/// The wall clock in ms (envelope timestamps; latency uses the monotonic clock).
fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Runs the load of `plan` on the broker(s) at `urls` (device `i` on `urls[i % len]`) and
/// returns its figures; every device has left when it returns.
///
/// # Errors
/// When a device cannot connect or subscribe, or a send is not acknowledged in time.
pub(crate) fn run_setup(urls: &[BrokerUrl], plan: Plan) -> anyhow::Result<Figures> {
    plan.check()?;
    anyhow::ensure!(!urls.is_empty(), "no broker to run the load against");
    let population = Population::new(plan)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting a Tokio runtime")?;
    runtime.block_on(load(urls, population, plan))
}

/// What a device's event loop counted.
#[derive(Debug, Default)]
struct Tally {
    delivered: usize,
    duplicates: usize,
    failed: usize,
    first_failure: Option<String>,
    latencies: Vec<Duration>,
    last_delivery: Option<Instant>,
    reconnects: usize,
}

/// A device's receiving side: its sessions with the devices writing to it, what it has shown.
struct Inbox {
    keys: Arc<DeviceKeys>,
    me: DeviceId,
    lists: Arc<HashMap<AccountId, DeviceList>>,
    sessions: HashMap<DeviceId, PairwiseSession>,
    replay: MemoryReplayGuard,
    shown: HashSet<MessageId>,
    epoch: Instant,
    delivered: Arc<AtomicUsize>,
    tally: Tally,
}

impl Inbox {
    /// Takes one envelope that arrived `at`: drops a message already shown, opens the rest.
    fn take(&mut self, bytes: &[u8], at: Instant) {
        match self.open(bytes, at) {
            Ok(None) => self.tally.duplicates += 1,
            Ok(Some(latency)) => {
                self.tally.delivered += 1;
                self.tally.latencies.push(latency);
                self.tally.last_delivery = Some(at);
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.tally.failed += 1;
                if self.tally.first_failure.is_none() {
                    self.tally.first_failure = Some(format!("{e:#}"));
                }
            }
        }
    }

    /// The latency of a message shown now, `None` for a duplicate.
    fn open(&mut self, bytes: &[u8], at: Instant) -> anyhow::Result<Option<Duration>> {
        let envelope = Envelope::decode(bytes).context("decoding an envelope")?;
        let header = *envelope.header();
        if self.shown.contains(&header.message_id) {
            return Ok(None);
        }
        let list = self
            .lists
            .get(&header.sender.account)
            .context("an envelope from an unknown account")?;
        let session = self
            .sessions
            .entry(header.sender)
            .or_insert_with(|| PairwiseSession::new(self.me, header.sender));
        let opened = open_envelope(
            &envelope,
            &self.keys,
            session,
            list,
            &mut self.replay,
            now_ms(),
        )
        .context("opening an envelope")?;
        let OpenedBody::Known(Body::Text { text, .. }) = opened.body else {
            anyhow::bail!("an envelope opened to another body than a text");
        };
        let sent_us: u64 = text
            .strip_prefix("sent ")
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(us, _)| us.parse().ok())
            .with_context(|| format!("a text without its send instant: {text:?}"))?;
        self.shown.insert(header.message_id);
        let received = at.saturating_duration_since(self.epoch);
        Ok(Some(
            received.saturating_sub(Duration::from_micros(sent_us)),
        ))
    }
}

/// A device's sending side: its sessions with the devices it writes to.
struct Outbox {
    keys: Arc<DeviceKeys>,
    me: DeviceId,
    peers: Vec<Peer>,
    rng: OsRng,
    epoch: Instant,
}

struct Peer {
    session: PairwiseSession,
    keys: DevicePublicKeys,
    topic: String,
}

impl Outbox {
    /// Message `n`: one envelope per peer, under one message id, stamped just before sealing.
    fn seal(&mut self, n: usize) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let sent_us = self.epoch.elapsed().as_micros();
        let now_ms = now_ms();
        let params = SealParams {
            message_id: MessageId::new_v7(now_ms, &mut self.rng)?,
            timestamp_ms: now_ms,
            flags: Flags::NONE,
        };
        let policy = RekeyPolicy::default();
        let mut envelopes = Vec::with_capacity(self.peers.len());
        for peer in &mut self.peers {
            let body = Body::Text {
                chat: ChatRef::Direct {
                    with: peer.session.remote().account,
                },
                text: format!(
                    "sent {sent_us} us: message {n} of {}",
                    self.me.broker_name()
                ),
            };
            let session =
                peer.session
                    .outbound(&self.keys, &peer.keys, now_ms, &policy, &mut self.rng)?;
            envelopes.push((peer.topic.clone(), seal_envelope(session, &params, &body)?));
        }
        Ok(envelopes)
    }
}

/// Connects and subscribes every device, lets each send its messages in a closed loop, waits
/// for every delivery (or `plan.delivery_wait`), and makes every device leave.
async fn load(urls: &[BrokerUrl], population: Population, plan: Plan) -> anyhow::Result<Figures> {
    let epoch = Instant::now();
    let names: Vec<String> = population
        .members
        .iter()
        .map(|m| m.id.broker_name())
        .collect();

    // Connect and subscribe, a few at a time.
    let connecting = Instant::now();
    let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut joins = Vec::with_capacity(plan.devices);
    for (i, name) in names.iter().enumerate() {
        let url = urls
            .get(i % urls.len())
            .context("no broker for a device")?
            .clone();
        let name = name.clone();
        let gate = Arc::clone(&gate);
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            join(&url, &name).await
        }));
    }
    let mut connected = Vec::with_capacity(plan.devices);
    for (joined, name) in joins.into_iter().zip(&names) {
        connected.push(
            joined
                .await
                .context("a connecting task")?
                .with_context(|| format!("device {name}"))?,
        );
    }
    let connect = connecting.elapsed();

    // Every device's event loop runs from now on, opening what arrives.
    let delivered = Arc::new(AtomicUsize::new(0));
    let leaving = Arc::new(AtomicBool::new(false));
    let mut drivers = Vec::with_capacity(plan.devices);
    let mut clients = Vec::with_capacity(plan.devices);
    let mut acks = Vec::with_capacity(plan.devices);
    let mut sends = Vec::with_capacity(plan.devices);
    for ((client, events), member) in connected.into_iter().zip(&population.members) {
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let inbox = Inbox {
            keys: Arc::clone(&member.keys),
            me: member.id,
            lists: Arc::clone(&population.lists),
            sessions: HashMap::new(),
            replay: MemoryReplayGuard::new(REPLAY_MEMORY),
            shown: HashSet::new(),
            epoch,
            delivered: Arc::clone(&delivered),
            tally: Tally::default(),
        };
        drivers.push(tokio::spawn(drive(
            events,
            inbox,
            acks_tx,
            Arc::clone(&leaving),
        )));
        let mut peers = Vec::with_capacity(member.writes_to.len());
        for &to in &member.writes_to {
            let peer = population
                .members
                .get(to)
                .context("a device writes to a device that does not exist")?;
            peers.push(Peer {
                session: PairwiseSession::new(member.id, peer.id),
                keys: peer.public,
                topic: inbox_topic(&peer.id.broker_name()),
            });
        }
        sends.push(Outbox {
            keys: Arc::clone(&member.keys),
            me: member.id,
            peers,
            rng: OsRng::new()?,
            epoch,
        });
        clients.push(client);
        acks.push(acks_rx);
    }

    // Send: every device at once, one message in flight each.
    let sending = Instant::now();
    let mut sending_tasks = Vec::with_capacity(plan.devices);
    for ((outbox, client), acks) in sends.into_iter().zip(&clients).zip(acks) {
        let client = client.clone();
        sending_tasks.push(tokio::spawn(send(client, outbox, acks, plan.messages)));
    }
    let mut send_error = None;
    for (task, name) in sending_tasks.into_iter().zip(&names) {
        let sent = task
            .await
            .context("a sending task")
            .and_then(|r| r.with_context(|| format!("device {name}")));
        if let Err(e) = sent {
            send_error.get_or_insert(e);
        }
    }

    // Wait for the last deliveries.
    let expected = plan.expected();
    let deadline = Instant::now() + plan.delivery_wait;
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(WATCH_EVERY).await;
    }

    // Leave: DISCONNECT, then each event loop ends once its broker closed the connection.
    leaving.store(true, Ordering::Relaxed);
    for client in &clients {
        client.disconnect().await.ok();
    }
    let mut tallies = Vec::with_capacity(plan.devices);
    for driver in drivers {
        tallies.push(driver.await.context("a device's event loop")?);
    }
    if let Some(e) = send_error {
        return Err(e);
    }

    let mut latencies = Vec::with_capacity(expected);
    let mut figures = Figures {
        expected,
        delivered: 0,
        duplicates: 0,
        failed: 0,
        first_failure: None,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        wall: Duration::ZERO,
        connect,
        reconnects: 0,
        nodes: urls.len(),
    };
    let mut last = sending;
    for tally in tallies {
        figures.delivered += tally.delivered;
        figures.duplicates += tally.duplicates;
        figures.failed += tally.failed;
        figures.reconnects += tally.reconnects;
        if figures.first_failure.is_none() {
            figures.first_failure = tally.first_failure;
        }
        latencies.extend(tally.latencies);
        last = last.max(tally.last_delivery.unwrap_or(sending));
    }
    figures.wall = last.saturating_duration_since(sending);
    if !latencies.is_empty() {
        (figures.p50, figures.p99) = p50_p99(&latencies)?;
    }
    Ok(figures)
}

/// Connects `name` to `url` with a persistent session and subscribes it to its inbox at QoS
/// 1, trying the connection again after a refusal or a failure.
async fn join(url: &BrokerUrl, name: &str) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let settings = ClientSettings {
        clean_session: false,
        ..ClientSettings::default()
    };
    let options =
        mqtt_options(url, name, &settings).with_context(|| format!("options of {name}"))?;
    let (client, mut events) = AsyncClient::new(options, REQUEST_CAPACITY);
    let mut tries = 0;
    loop {
        tries += 1;
        match events.poll().await {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(e) if tries >= CONNECT_TRIES => {
                return Err(e).with_context(|| format!("connecting to {url} ({tries} tries)"));
            }
            Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
        }
    }
    client
        .subscribe(inbox_topic(name), QoS::AtLeastOnce)
        .await
        .context("queuing the inbox subscription")?;
    let subscribed = tokio::time::timeout(SUBSCRIBE_WAIT, async {
        loop {
            if let rumqttc::Event::Incoming(Packet::SubAck(ack)) = events.poll().await? {
                return Ok::<_, rumqttc::ConnectionError>(ack);
            }
        }
    })
    .await
    .context("no SUBACK in time")?
    .context("subscribing to the inbox")?;
    anyhow::ensure!(
        subscribed.return_codes == [SubscribeReasonCode::Success(QoS::AtLeastOnce)],
        "the inbox subscription was answered {:?}",
        subscribed.return_codes
    );
    Ok((client, events))
}

/// A device's event loop: opens what arrives, passes `PUBACK`s to the sender, reconnects (the
/// next poll does) when the connection drops; ends once `leaving` and the broker closed the
/// connection.
async fn drive(
    mut events: EventLoop,
    mut inbox: Inbox,
    acks: mpsc::UnboundedSender<()>,
    leaving: Arc<AtomicBool>,
) -> Tally {
    loop {
        let polled = if leaving.load(Ordering::Relaxed) {
            match tokio::time::timeout(LEAVE_WAIT, events.poll()).await {
                Ok(polled) => polled,
                Err(_) => break,
            }
        } else {
            events.poll().await
        };
        match polled {
            Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) => {
                inbox.take(&publish.payload, Instant::now());
            }
            Ok(rumqttc::Event::Incoming(Packet::PubAck(_))) => {
                acks.send(()).ok();
            }
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => inbox.tally.reconnects += 1,
            Ok(_) => {}
            Err(_) if leaving.load(Ordering::Relaxed) => break,
            Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
        }
    }
    inbox.tally
}

/// Sends `messages` messages, each once the broker acknowledged every envelope of the one
/// before.
async fn send(
    client: AsyncClient,
    mut outbox: Outbox,
    mut acks: mpsc::UnboundedReceiver<()>,
    messages: usize,
) -> anyhow::Result<()> {
    for n in 0..messages {
        let envelopes = outbox.seal(n)?;
        let count = envelopes.len();
        for (topic, bytes) in envelopes {
            client
                .publish(topic, QoS::AtLeastOnce, false, bytes)
                .await
                .context("queuing an envelope")?;
        }
        for _ in 0..count {
            tokio::time::timeout(ACK_WAIT, acks.recv())
                .await
                .with_context(|| format!("message {n} was not acknowledged within {ACK_WAIT:?}"))?
                .context("the connection's event loop ended")?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;

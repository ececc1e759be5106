#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Live messaging across real processes, as users run it: Alice's phone (`tandem-phone`), her
//! desktop linked to it (`tandem`), Bob's phone, each with its own home, each `run --json`
//! printing one event per line, brokers on free loopback ports (`tandem broker`, Mosquitto),
//! and the other commands (`send`, `read`, `typing`, `contact-add`) handed to the running
//! sessions over their homes' control sockets.
//!
//! The stories: Bob writes and Alice's desktop shows it within a second; a thousand messages
//! survive a Mosquitto restart; a desktop killed mid-burst gets the rest; a 30-second network
//! cut while the desktop sends; a phone started while its broker is down; a desktop that was
//! off gets everything when it comes back; a linked desktop learns a new contact; typing and
//! presence (Last Will); with two brokers listed, every device fails over to the second when
//! the first dies. Then on a three-node NATS JetStream cluster, each device on a node of its
//! own: messages, receipts, typing and presence across nodes; linking and a 10k-message
//! history sync; the desktop's node killed in the middle of a thousand-message burst (every
//! message once on every device), then that node restarted and another stopped.
//!
//! Every wait is bounded and every failure shows what the programs printed. Every process a
//! story starts is stopped before it ends (a failing story kills them on drop).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tandem_engine::{Engine, Reply, Request};
use tandem_store::{KeychainUse, Store};
use tandem_tests::cli::{Background, BrokerProcess, Home, Run};
use tandem_tests::{Mosquitto, MosquittoOptions, NatsCluster, TcpProxy};

/// Longest wait for one expected step (a command, an event, a link).
const STEP: Duration = Duration::from_secs(30);
/// Longest wait for a burst of a thousand messages to land everywhere (debug builds on two
/// shared cores).
const BURST: Duration = Duration::from_secs(90);
/// Longest wait for a burst to land after a cluster node was killed under it: what was in
/// flight through that node comes again once the cluster's `ack_wait` runs out.
const CLUSTER_LANDING: Duration = Duration::from_secs(180);
/// How many messages a burst holds.
const BURST_SIZE: usize = 1000;
/// The desktop's name.
const DESKTOP_NAME: &str = "Alice's desktop";

// ---------------------------------------------------------------------------------------
// Helpers: every check shows the whole output of the run it is about.

/// Unwraps a harness result, showing the error's text (with the programs' output) in full.
fn must<T>(result: tandem_tests::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn ok(run: Run) -> Run {
    assert!(run.success(), "expected success: {run}");
    run
}

fn ok_json(run: Run) -> Value {
    let run = ok(run);
    run.json().unwrap_or_else(|e| panic!("{e}"))
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {value}"))
}

fn is_event(event: &Value, name: &str) -> bool {
    event["event"] == name
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Hands `request` to the session running on `home`, as `tandem send` does, and returns its
/// answer (the command's `--json` output).
fn hand_over(rt: &tokio::runtime::Runtime, home: &Path, request: &Request) -> Value {
    match rt.block_on(Engine::hand_over(home, request)) {
        Ok(Some(Reply::Ok(value))) => value,
        Ok(Some(Reply::Error { kind, message })) => {
            panic!("{request:?} on {}: {kind}: {message}", home.display())
        }
        Ok(None) => panic!(
            "{request:?}: no session runs on {} (no control socket answers)",
            home.display()
        ),
        Err(e) => panic!("{request:?} on {}: {e}", home.display()),
    }
}

fn send_request(chat: &str, text: String) -> Request {
    Request::Send {
        chat: chat.to_owned(),
        text,
        reply: None,
        wait: false,
        id: None,
    }
}

/// A port nobody listens on right now.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A `tandem broker` on a free port, and its URL.
fn embedded_broker() -> (BrokerProcess, String) {
    let broker = must(BrokerProcess::start("127.0.0.1:0"));
    let url = format!("mqtt://{}", broker.addr());
    (broker, url)
}

/// Stops a `tandem broker` with SIGINT; it must exit 0.
fn stop_broker(broker: BrokerProcess) {
    let stopped = must(broker.stop("INT", STEP));
    assert!(
        stopped.status.success(),
        "`tandem broker` did not stop cleanly: {stopped:?}"
    );
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `timeout`; `what` and the
/// last value seen describe a failure.
fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> (Option<T>, String),
) -> T {
    let started = Instant::now();
    loop {
        let (done, seen) = check();
        if let Some(done) = done {
            return done;
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}; last seen: {seen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints how long a story took (shown with `--nocapture`, and in the report).
fn took(story: &str, started: Instant) {
    eprintln!(
        "story {story:?} took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// Devices and their running sessions.

/// One device as a user has it: a home, the program that runs on it, its account and
/// device id.
struct Device {
    /// Who it is, for messages ("Alice's phone").
    who: String,
    home: Home,
    /// `tandem-phone` (true) or `tandem` (false).
    phone: bool,
    account: String,
    id: String,
}

impl Device {
    /// `tandem-phone init --name NAME --broker URL`: a new account on a new phone.
    fn phone(name: &str, broker: &str) -> Self {
        let home = must(Home::new());
        let created = ok_json(must(
            home.phone(["--json", "init", "--name", name, "--broker", broker]),
        ));
        let account = text(&created, "account").to_owned();
        let id = text(&created, "device").to_owned();
        assert_eq!(id, format!("{account}.0"), "{created}");
        Self {
            who: format!("{name}'s phone"),
            home,
            phone: true,
            account,
            id,
        }
    }

    /// Links a new desktop to `phone` through `broker` by the CLI: `tandem link` shows its
    /// code, `tandem-phone scan --link ... --yes` takes it, and the (empty) history syncs.
    fn desktop_of(phone: &Device, broker: &str) -> Self {
        Self::desktop_of_within(phone, broker, STEP)
    }

    /// [`Device::desktop_of`], the link and its history sync given up to `timeout`.
    fn desktop_of_within(phone: &Device, broker: &str, timeout: Duration) -> Self {
        let home = must(Home::new());
        let mut link = must(home.spawn_companion([
            "--json",
            "link",
            "--broker",
            broker,
            "--name",
            DESKTOP_NAME,
            "--timeout",
            "60",
        ]));
        let code = must(link.wait_for_event("code", STEP));
        let link_text = text(&code, "link").to_owned();
        let scanned = must(
            must(
                phone
                    .home
                    .spawn_phone(["--json", "scan", "--link", &link_text, "--yes"]),
            )
            .finish(timeout),
        );
        let linked = must(link.finish(timeout));
        assert!(scanned.success(), "{scanned}");
        assert!(linked.success(), "{linked}");
        let events = linked.json_lines().unwrap_or_else(|e| panic!("{e}"));
        let linked_event = events
            .iter()
            .find(|e| is_event(e, "linked"))
            .unwrap_or_else(|| panic!("no `linked` event: {linked}"));
        assert_eq!(linked_event["account"], phone.account.as_str(), "{linked}");
        let id = text(linked_event, "device").to_owned();
        assert_eq!(id, format!("{}.1", phone.account), "{linked}");
        assert!(events.iter().any(|e| is_event(e, "synced")), "{linked}");
        Self {
            who: DESKTOP_NAME.to_owned(),
            home,
            phone: false,
            account: phone.account.clone(),
            id,
        }
    }

    /// Runs this device's program with `args` to the end.
    fn cli(&self, args: &[&str]) -> Run {
        if self.phone {
            must(self.home.phone(args))
        } else {
            must(self.home.companion(args))
        }
    }

    /// Runs this device's program with `--json` and `args`; it must succeed and print JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        ok_json(self.cli(&all))
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    /// `contact-link --json`.
    fn contact_link(&self) -> String {
        text(&self.json(&["contact-link"]), "link").to_owned()
    }

    /// `contact-add LINK --name NAME` with `other`'s contact link; returns the contact.
    fn add_contact(&self, other: &Device, name: &str) -> Value {
        let added = self.json(&["contact-add", &other.contact_link(), "--name", name]);
        assert_eq!(added["account"], other.account.as_str(), "{added}");
        assert_eq!(added["name"], name, "{added}");
        added
    }

    /// `history CHAT --limit LIMIT --json`.
    fn history(&self, chat: &str, limit: usize) -> Vec<Value> {
        let limit = limit.to_string();
        let page = self.json(&["history", chat, "--limit", &limit]);
        page.as_array()
            .unwrap_or_else(|| panic!("`history` is not a list: {page}"))
            .clone()
    }

    /// Waits until the chat holds at least `count` messages; returns its history (up to
    /// twice `count`, so that a surplus shows).
    fn wait_for_history(&self, chat: &str, count: usize, timeout: Duration) -> Vec<Value> {
        eventually(
            &format!("{}: {count} messages in {chat:?}", self.who),
            timeout,
            || {
                let page = self.history(chat, count * 2 + 10);
                let seen = format!("{} messages", page.len());
                ((page.len() >= count).then_some(page), seen)
            },
        )
    }

    /// `run --json`, once it says it is online.
    fn run(&self) -> Session {
        let mut session = self.start();
        let online = session.next("online", STEP, |e| is_event(e, "online"));
        assert_eq!(online["device"], self.id.as_str(), "{online}");
        session
    }

    /// `run --json`, not waiting for anything.
    fn start(&self) -> Session {
        let bg = if self.phone {
            must(self.home.spawn_phone(["--json", "run"]))
        } else {
            must(self.home.spawn_companion(["--json", "run"]))
        };
        Session {
            who: self.who.clone(),
            home: self.path().to_path_buf(),
            bg,
        }
    }
}

/// Alice and Bob each add the other by the CLI.
fn befriend(alice: &Device, bob: &Device) {
    alice.add_contact(bob, "Bob");
    bob.add_contact(alice, "Alice");
}

/// A `run --json` in the background, read event by event.
struct Session {
    who: String,
    home: PathBuf,
    bg: Background,
}

impl Session {
    /// The next event (not one already read) that satisfies `wanted`, waiting up to
    /// `timeout`.
    fn next(&mut self, what: &str, timeout: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        let what = format!("{what} on {}", self.who);
        must(self.bg.wait_for(&what, timeout, wanted))
    }

    /// An event, already read or still to come, that satisfies `wanted`.
    fn find(&mut self, what: &str, timeout: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(seen) = self.bg.events().into_iter().find(|e| wanted(e)) {
            return seen;
        }
        self.next(what, timeout, wanted)
    }

    /// The `message` event of the message with this text; returns the message.
    fn message(&mut self, text: &str, timeout: Duration) -> Value {
        let event = self.find(&format!("the message {text:?}"), timeout, |e| {
            is_event(e, "message") && e["message"]["text"] == text
        });
        event["message"].clone()
    }

    /// Every event read so far.
    fn events(&self) -> Vec<Value> {
        self.bg.events()
    }

    /// Reads whatever it printed in the next `wait` (events not waited for).
    fn drain(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.bg.next_line(left) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// Hands `request` to it over its home's control socket.
    fn ask(&self, request: &Request) -> Value {
        hand_over(&runtime(), &self.home, request)
    }

    /// Stops it with SIGTERM: it must exit 0. Returns everything it printed.
    fn stop(mut self) -> Run {
        assert!(
            must(self.bg.try_wait()).is_none(),
            "{} stopped by itself: {}",
            self.who,
            self.bg
        );
        must(self.bg.signal("TERM"));
        let who = self.who;
        let stopped = must(self.bg.finish(STEP));
        assert_eq!(
            stopped.code(),
            Some(0),
            "SIGTERM must stop {who} cleanly: {stopped}"
        );
        stopped
    }

    /// Kills it with SIGKILL (a crash): returns everything it printed.
    fn kill(self) -> Run {
        must(self.bg.kill())
    }
}

/// Checks that `messages` (a history page) holds exactly the texts `want`, each once, with
/// distinct ids.
fn assert_exactly(who: &str, messages: &[Value], want: &[String]) {
    let ids: BTreeSet<&str> = messages.iter().map(|m| text(m, "id")).collect();
    assert_eq!(ids.len(), messages.len(), "{who}: a message id shows twice");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for m in messages {
        *counts.entry(text(m, "text")).or_default() += 1;
    }
    let missing: Vec<&String> = want
        .iter()
        .filter(|t| !counts.contains_key(t.as_str()))
        .collect();
    let twice: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let wanted: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    let unexpected: Vec<&&str> = counts.keys().filter(|t| !wanted.contains(**t)).collect();
    assert!(
        missing.is_empty()
            && twice.is_empty()
            && unexpected.is_empty()
            && messages.len() == want.len(),
        "{who}: {} messages, {} wanted; missing {} (first {:?}), repeated {twice:?}, \
         unexpected {unexpected:?}",
        messages.len(),
        want.len(),
        missing.len(),
        missing.first()
    );
}

fn texts(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix} {i}")).collect()
}

/// Checks the store in `home` (stopped: nothing runs on it): `PRAGMA integrity_check` is
/// clean and every chat's counter matches its rows.
fn assert_store_intact(home: &Path) {
    let (store, _) = Store::open_in_home_with(home, KeychainUse::Off)
        .unwrap_or_else(|e| panic!("open the store in {}: {e}", home.display()));
    let problems = store.integrity_check().unwrap();
    assert!(
        problems.is_empty(),
        "PRAGMA integrity_check on {}: {problems:?}",
        home.display()
    );
    let mut total = 0;
    for chat in store.chats().unwrap() {
        let page = store
            .page(chat.id, tandem_store::Cursor::Newest, usize::MAX)
            .unwrap();
        assert_eq!(
            page.len() as u64,
            chat.message_count,
            "chat {:?}: its message count is not its rows",
            chat.name
        );
        total += page.len() as u64;
    }
    assert_eq!(store.counts().unwrap().messages, total);
}

/// Alice (phone and linked desktop) and Bob, friends.
struct World {
    alice: Device,
    bob: Device,
    desktop: Device,
}

impl World {
    /// Everyone on one broker.
    fn new(broker: &str) -> Self {
        Self::with_brokers(broker, broker)
    }

    /// Alice's devices on `alice` (the phone hands its broker to the desktop it links), Bob's
    /// phone on `bob`.
    fn with_brokers(alice: &str, bob: &str) -> Self {
        let alice_phone = Device::phone("Alice", alice);
        let bob = Device::phone("Bob", bob);
        befriend(&alice_phone, &bob);
        let desktop = Device::desktop_of(&alice_phone, alice);
        let alice = alice_phone;
        Self {
            alice,
            bob,
            desktop,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Story 1.

#[test]
fn bob_writes_and_alices_desktop_shows_it_within_a_second() {
    let started = Instant::now();
    let (broker, url) = embedded_broker();
    let world = World::new(&url);
    let (alice, bob, desktop) = (&world.alice, &world.bob, &world.desktop);
    // The desktop got Bob from the phone when it linked.
    let chats = desktop.json(&["chats"]);
    assert!(
        chats.as_array().unwrap().iter().any(|c| c["name"] == "Bob"),
        "the desktop does not list Bob: {chats}"
    );

    let mut alice_run = alice.run();
    let mut bob_run = bob.run();
    let mut desktop_run = desktop.run();

    // Bob writes; his `send --wait` returns once the broker has it.
    let hello = "Hello Alice! Dinner at 8?";
    let sending = Instant::now();
    let sent = bob.json(&["send", "Alice", hello, "--wait"]);
    let acknowledged = sending.elapsed();
    assert_eq!(sent["text"], hello, "{sent}");
    assert_eq!(sent["from_me"], true, "{sent}");
    assert!(
        ["sent", "delivered", "read"].contains(&text(&sent, "status")),
        "`send --wait` returned before the broker had it: {sent}"
    );
    // ...and Bob's run did the sending: it printed the message.
    let on_bob = bob_run.message(hello, STEP);
    assert_eq!(on_bob["id"], sent["id"], "{on_bob}");

    // Alice's desktop shows it within a second.
    let on_desktop = desktop_run.message(hello, Duration::from_secs(5));
    let shown = sending.elapsed();
    eprintln!(
        "story 1: `send --wait` returned after {} ms; the desktop printed the message {} ms \
         after the send started",
        acknowledged.as_millis(),
        shown.as_millis()
    );
    assert!(
        shown < Duration::from_secs(1),
        "the desktop showed Bob's message {shown:?} after he sent it"
    );
    assert_eq!(on_desktop["id"], sent["id"], "{on_desktop}");
    assert_eq!(on_desktop["from_me"], false, "{on_desktop}");
    assert_eq!(on_desktop["sender"], "Bob", "{on_desktop}");
    // Alice's phone too.
    let on_phone = alice_run.message(hello, STEP);
    assert_eq!(on_phone["id"], sent["id"], "{on_phone}");
    assert_eq!(on_phone["from_me"], false, "{on_phone}");

    // Alice answers from the desktop: the command hands it to the desktop's run, which
    // prints it as it sends it.
    let answer = "Yes! See you at 8";
    let answered = desktop.json(&["send", "Bob", answer, "--wait"]);
    assert_eq!(answered["from_me"], true, "{answered}");
    let answer_id = text(&answered, "id").to_owned();
    let on_desktop = desktop_run.message(answer, STEP);
    assert_eq!(
        on_desktop["id"], answer_id,
        "the desktop's run did not send it: {on_desktop}"
    );
    // Bob's run gets it; Alice's phone shows it as hers.
    let on_bob = bob_run.message(answer, STEP);
    assert_eq!(on_bob["id"], answer_id, "{on_bob}");
    assert_eq!(on_bob["from_me"], false, "{on_bob}");
    assert_eq!(on_bob["sender"], "Alice", "{on_bob}");
    let on_phone = alice_run.message(answer, STEP);
    assert_eq!(on_phone["id"], answer_id, "{on_phone}");
    assert_eq!(on_phone["from_me"], true, "{on_phone}");

    // Bob reads the chat (handed to his run): the desktop's ticks go delivered, then read.
    let read = bob.json(&["read", "Alice"]);
    assert!(read["marked"].as_u64().unwrap_or(0) >= 1, "{read}");
    let receipt = |status: &'static str| {
        let id = answer_id.clone();
        move |e: &Value| is_event(e, "receipt") && e["id"] == id.as_str() && e["status"] == status
    };
    desktop_run.find("the read receipt", STEP, receipt("read"));
    let events = desktop_run.events();
    let at = |status: &'static str| events.iter().position(receipt(status));
    let (delivered, read_at) = (at("delivered"), at("read"));
    assert!(
        delivered.is_some() && delivered < read_at,
        "the desktop's receipts for {answer_id} are not `delivered` then `read`: {events:?}"
    );

    // The desktop's history says so, read while its run holds the session.
    let history = desktop.history("Bob", 10);
    let mine = history
        .iter()
        .find(|m| m["id"] == answer_id.as_str())
        .unwrap_or_else(|| panic!("the answer is not in the desktop's history: {history:?}"));
    assert_eq!(mine["status"], "read", "{mine}");
    let want = [hello.to_owned(), answer.to_owned()];
    assert_exactly("the desktop's chat with Bob", &history, &want);
    assert_exactly("Alice's chat with Bob", &alice.history("Bob", 10), &want);
    assert_exactly("Bob's chat with Alice", &bob.history("Alice", 10), &want);

    for run in [alice_run, bob_run, desktop_run] {
        run.stop();
    }
    stop_broker(broker);
    took(
        "1 Bob writes, the desktop shows it within a second",
        started,
    );
}

// ---------------------------------------------------------------------------------------
// Stories 2 and 3: bursts.

/// Bob sends `BURST_SIZE` messages `prefix 0`... through his running session, one request
/// after the other without waiting for the broker, on a thread; `sent` counts them.
fn burst(
    bob: &Device,
    prefix: &'static str,
    sent: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Vec<String>> {
    let home = bob.path().to_path_buf();
    std::thread::spawn(move || {
        let rt = runtime();
        let mut ids = Vec::with_capacity(BURST_SIZE);
        for i in 0..BURST_SIZE {
            let answer = hand_over(&rt, &home, &send_request("Alice", format!("{prefix} {i}")));
            ids.push(text(&answer, "id").to_owned());
            sent.store(i + 1, Ordering::SeqCst);
        }
        ids
    })
}

fn wait_until_sent(sent: &AtomicUsize, count: usize) {
    eventually(
        &format!("{count} messages handed to Bob's run"),
        BURST,
        || {
            let now = sent.load(Ordering::SeqCst);
            ((now >= count).then_some(()), format!("{now} sent"))
        },
    );
}

/// Checks that Bob's own copy of the burst is complete and that the broker took every
/// message ("sent" or better).
fn assert_all_sent(bob: &Device, want: &[String]) {
    let history = eventually("Bob's burst all sent", BURST, || {
        let page = bob.history("Alice", BURST_SIZE * 2);
        let pending = page
            .iter()
            .filter(|m| {
                !["sent", "delivered", "read"].contains(&m["status"].as_str().unwrap_or(""))
            })
            .count();
        (
            (page.len() >= want.len() && pending == 0).then_some(page.clone()),
            format!("{} messages, {pending} not sent", page.len()),
        )
    });
    assert_exactly("Bob's chat with Alice", &history, want);
}

/// Once the burst `want` is on both of Alice's devices: after a moment for any repeat to
/// show, each holds it exactly once, and Bob's copy is whole and all sent.
fn assert_burst_once_everywhere(world: &World, want: &[String]) {
    std::thread::sleep(Duration::from_millis(500));
    for (who, device) in [
        ("Alice's phone", &world.alice),
        ("Alice's desktop", &world.desktop),
    ] {
        assert_exactly(who, &device.history("Bob", BURST_SIZE * 2), want);
    }
    assert_all_sent(&world.bob, want);
}

#[test]
fn a_thousand_messages_survive_a_broker_restart() {
    let started = Instant::now();
    let Some(mut mosquitto) = must(Mosquitto::start_or_skip(MosquittoOptions::persistent())) else {
        return;
    };
    let url = mosquitto.url().to_string();
    let world = World::new(&url);
    let (alice, bob, desktop) = (&world.alice, &world.bob, &world.desktop);
    let alice_run = alice.run();
    let mut bob_run = bob.run();
    let desktop_run = desktop.run();

    // Bob sends a thousand; after about 300 the broker restarts under everyone.
    let sent = Arc::new(AtomicUsize::new(0));
    let sending = Instant::now();
    let sender = burst(bob, "burst", Arc::clone(&sent));
    wait_until_sent(&sent, 300);
    let restart_at = sent.load(Ordering::SeqCst);
    must(mosquitto.restart());
    let after_restart = sent.load(Ordering::SeqCst);
    assert!(
        after_restart < BURST_SIZE,
        "the burst was over before the broker was back ({after_restart} sent): restart earlier"
    );
    let ids = sender.join().unwrap();
    let handed = sending.elapsed();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), BURST_SIZE);

    // Everything lands on both of Alice's devices, exactly once.
    let want = texts("burst", BURST_SIZE);
    let on_phone = alice.wait_for_history("Bob", BURST_SIZE, BURST);
    let on_desktop = desktop.wait_for_history("Bob", BURST_SIZE, BURST);
    let landed = sending.elapsed();
    assert_eq!(on_phone.len(), BURST_SIZE);
    assert_eq!(on_desktop.len(), BURST_SIZE);
    assert_burst_once_everywhere(&world, &want);
    eprintln!(
        "story 2: {BURST_SIZE} messages handed to Bob's run in {:.1} s (restart after {restart_at}); \
         all on both of Alice's devices after {:.1} s",
        handed.as_secs_f64(),
        landed.as_secs_f64()
    );

    // Bob's session saw the broker go and come back.
    bob_run.drain(Duration::from_millis(200));
    let events = bob_run.events();
    let offline = events
        .iter()
        .position(|e| is_event(e, "offline"))
        .unwrap_or_else(|| panic!("Bob's run never went offline: {events:?}"));
    assert!(
        events[offline..].iter().any(|e| is_event(e, "online")),
        "Bob's run did not come back online: {events:?}"
    );

    for run in [alice_run, bob_run, desktop_run] {
        run.stop();
    }
    took("2 a thousand messages survive a broker restart", started);
}

#[test]
fn a_desktop_killed_mid_burst_gets_the_rest() {
    let started = Instant::now();
    let (broker, url) = embedded_broker();
    let world = World::new(&url);
    let (alice, bob, desktop) = (&world.alice, &world.bob, &world.desktop);
    let alice_run = alice.run();
    let bob_run = bob.run();
    let mut desktop_run = desktop.run();

    let sent = Arc::new(AtomicUsize::new(0));
    let sender = burst(bob, "burst", Arc::clone(&sent));
    // kill -9 the desktop once it has shown about 300.
    let mut shown = 0;
    while shown < 300 {
        desktop_run.next("a message of the burst", BURST, |e| is_event(e, "message"));
        shown += 1;
    }
    let killed = desktop_run.kill();
    assert_eq!(killed.code(), None, "{killed}");
    let at_kill = sent.load(Ordering::SeqCst);

    // It comes back and gets the rest.
    let desktop_run = desktop.run();
    let ids = sender.join().unwrap();
    assert_eq!(ids.len(), BURST_SIZE);
    let want = texts("burst", BURST_SIZE);
    desktop.wait_for_history("Bob", BURST_SIZE, BURST);
    alice.wait_for_history("Bob", BURST_SIZE, BURST);
    assert_burst_once_everywhere(&world, &want);
    eprintln!(
        "story 3: the desktop was killed after showing {shown} messages ({at_kill} sent by then)"
    );

    for run in [alice_run, bob_run, desktop_run] {
        run.stop();
    }
    // The desktop's store is whole: its status counts exactly the burst, the sync is done.
    let status = desktop.json(&["status"]);
    assert_eq!(status["linked"], true, "{status}");
    assert_eq!(status["mode"], "multi", "{status}");
    assert_eq!(status["messages"], BURST_SIZE, "{status}");
    assert_eq!(status["sync"]["state"], "complete", "{status}");
    assert_store_intact(desktop.path());
    stop_broker(broker);
    took("3 a desktop killed mid-burst gets the rest", started);
}

// ---------------------------------------------------------------------------------------
// Story 4.

#[test]
fn a_thirty_second_network_cut_while_the_desktop_sends() {
    let started = Instant::now();
    let (broker, url) = embedded_broker();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = must(rt.block_on(TcpProxy::start(broker.addr())));
    let through_proxy = proxy.url().to_string();
    // Alice's phone and her desktop (which takes the phone's broker when it links) reach the
    // broker through the proxy; Bob's phone reaches it directly. Alice's phone stays off, so
    // the cut is the desktop's alone.
    let world = World::with_brokers(&through_proxy, &url);
    let (bob, desktop) = (&world.bob, &world.desktop);
    let mut bob_run = bob.run();
    let mut desktop_run = desktop.run();
    let online = desktop_run.find("online", STEP, |e| is_event(e, "online"));
    assert_eq!(online["broker"], through_proxy.as_str(), "{online}");

    // Alice sends 20 from her desktop, without waiting; the network goes after 10.
    let want = texts("through the cut", 20);
    for message in &want[..10] {
        let queued = desktop.json(&["send", "Bob", message]);
        assert_eq!(queued["text"], message.as_str(), "{queued}");
    }
    proxy.cut();
    let cut = Instant::now();
    for message in &want[10..] {
        let queued = desktop.json(&["send", "Bob", message]);
        assert_eq!(queued["text"], message.as_str(), "{queued}");
        assert_eq!(queued["status"], "pending", "{queued}");
    }
    // All 20 went to the desktop's run.
    for message in &want {
        desktop_run.message(message, STEP);
    }
    let offline = desktop_run.find("offline", STEP, |e| is_event(e, "offline"));
    assert!(text(&offline, "reason").contains("retrying"), "{offline}");
    // Nothing sent during the cut gets through.
    std::thread::sleep(Duration::from_secs(30).saturating_sub(cut.elapsed()));
    let during = bob.history("Alice", 100);
    let leaked: Vec<&Value> = during
        .iter()
        .filter(|m| want[10..].iter().any(|t| m["text"] == t.as_str()))
        .collect();
    assert!(leaked.is_empty(), "sent through a cut network: {leaked:?}");

    // The network comes back: the desktop goes online again and Bob gets all 20, once.
    proxy.resume();
    let back = Instant::now();
    desktop_run.next("online after the cut", STEP, |e| is_event(e, "online"));
    let reconnected = back.elapsed();
    for message in &want {
        bob_run.message(message, STEP);
    }
    let delivered = back.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly("Bob's chat with Alice", &bob.history("Alice", 100), &want);
    eventually("the desktop's 20 messages all sent", STEP, || {
        let history = desktop.history("Bob", 100);
        let sent = history.iter().filter(|m| m["status"] != "pending").count();
        ((sent == want.len()).then_some(()), format!("{history:?}"))
    });
    assert_exactly(
        "the desktop's chat with Bob",
        &desktop.history("Bob", 100),
        &want,
    );
    eprintln!(
        "story 4: online {} ms after the network came back; all 20 at Bob after {} ms",
        reconnected.as_millis(),
        delivered.as_millis()
    );

    for run in [bob_run, desktop_run] {
        run.stop();
    }
    drop(proxy);
    stop_broker(broker);
    took("4 a 30-second network cut while sending", started);
}

// ---------------------------------------------------------------------------------------
// Story 5.

#[test]
fn the_cli_survives_a_broker_that_is_down_at_start() {
    let started = Instant::now();
    let port = free_port();
    let url = format!("mqtt://{port}");
    let alice = Device::phone("Alice", &url);
    let bob = Device::phone("Bob", &url);

    // Bob's phone starts while nothing listens there: it says so, and keeps trying.
    let mut bob_run = bob.start();
    let offline = bob_run.next("offline", STEP, |e| is_event(e, "offline"));
    let reason = text(&offline, "reason");
    assert!(
        reason.contains("retrying") && reason.contains(&port.to_string()),
        "{offline}"
    );
    // Work handed to it meanwhile is taken.
    let added = bob_run.ask(&Request::ContactAdd {
        link: alice.contact_link(),
        name: Some("Alice".into()),
    });
    assert_eq!(added["account"], alice.account.as_str(), "{added}");

    // The broker comes up about 2 s later.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(started.elapsed()));
    let broker = must(BrokerProcess::start(&port.to_string()));
    let up = Instant::now();
    let online = bob_run.next("online", STEP, |e| is_event(e, "online"));
    assert_eq!(online["device"], bob.id.as_str(), "{online}");
    eprintln!(
        "story 5: Bob's run was online {} ms after the broker started",
        up.elapsed().as_millis()
    );

    // A message sent now arrives.
    alice.add_contact(&bob, "Bob");
    let hello = "Are you there, Bob?";
    let sent = alice.json(&["send", "Bob", hello, "--wait"]);
    let on_bob = bob_run.message(hello, STEP);
    assert_eq!(on_bob["id"], sent["id"], "{on_bob}");
    assert_eq!(on_bob["sender"], "Alice", "{on_bob}");

    bob_run.stop();
    stop_broker(broker);
    took("5 the CLI survives a broker that is down at start", started);
}

// ---------------------------------------------------------------------------------------
// Story 6.

#[test]
fn a_desktop_that_was_off_gets_everything_when_it_comes_back() {
    let started = Instant::now();
    let (broker, url) = embedded_broker();
    let world = World::new(&url);
    let (alice, bob, desktop) = (&world.alice, &world.bob, &world.desktop);
    let mut alice_run = alice.run();
    let bob_run = bob.run();

    // Bob writes 20 while the desktop is off; Alice's phone gets them.
    let want = texts("while you were away", 20);
    for message in &want {
        bob.json(&["send", "Alice", message]);
    }
    for message in &want {
        alice_run.message(message, STEP);
    }

    // The desktop comes back: all 20 arrive, once, in the order Bob wrote them.
    let mut desktop_run = desktop.run();
    for message in &want {
        desktop_run.message(message, STEP);
    }
    let history = desktop.wait_for_history("Bob", want.len(), STEP);
    assert_exactly("the desktop's chat with Bob", &history, &want);
    let order: Vec<&str> = history.iter().map(|m| text(m, "text")).collect();
    assert_eq!(order, want, "the desktop's order");
    let on_phone: Vec<String> = alice
        .history("Bob", 100)
        .iter()
        .map(|m| text(m, "id").to_owned())
        .collect();
    let on_desktop: Vec<String> = history.iter().map(|m| text(m, "id").to_owned()).collect();
    assert_eq!(on_desktop, on_phone, "the desktop and the phone disagree");

    for run in [alice_run, bob_run, desktop_run] {
        run.stop();
    }
    stop_broker(broker);
    took("6 a device that was off gets everything", started);
}

// ---------------------------------------------------------------------------------------
// Story 7.

#[test]
fn a_linked_desktop_learns_a_new_contact() {
    let started = Instant::now();
    let (broker, url) = embedded_broker();
    let world = World::new(&url);
    let (alice, desktop) = (&world.alice, &world.desktop);
    let carol = Device::phone("Carol", &url);
    let alice_run = alice.run();
    let mut desktop_run = desktop.run();

    // Alice adds Carol on her phone (handed to its run) while the desktop runs.
    let added = alice.add_contact(&carol, "Carol");
    let contact = desktop_run.next("the new contact", STEP, |e| is_event(e, "contact"));
    assert_eq!(contact["account"], carol.account.as_str(), "{contact}");
    assert_eq!(contact["name"], "Carol", "{contact}");
    let chats = desktop.json(&["chats"]);
    let carol_chat = chats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Carol")
        .unwrap_or_else(|| panic!("the desktop does not list Carol: {chats}"));
    assert_eq!(carol_chat["id"], added["chat"], "{chats}");
    assert_eq!(carol_chat["kind"], "direct", "{chats}");

    for run in [alice_run, desktop_run] {
        run.stop();
    }
    stop_broker(broker);
    took("7 linked desktops learn new contacts", started);
}

// ---------------------------------------------------------------------------------------
// Story 8.

#[test]
fn typing_and_presence_reach_the_desktop() {
    let started = Instant::now();
    let Some(mosquitto) = must(Mosquitto::start_or_skip(MosquittoOptions::default())) else {
        return;
    };
    let url = mosquitto.url().to_string();
    let world = World::new(&url);
    let (bob, desktop) = (&world.bob, &world.desktop);
    // Bob is online before the desktop looks: its first word on Bob is "online".
    let bob_run = bob.run();
    let mut desktop_run = desktop.run();
    let is_bob = |online: bool| {
        let device = bob.id.clone();
        move |e: &Value| {
            is_event(e, "presence") && e["device"] == device.as_str() && e["online"] == online
        }
    };
    let present = desktop_run.find("Bob online", STEP, is_bob(true));
    assert_eq!(present["name"], "Bob", "{present}");

    // Bob types (handed to his run): the desktop shows it.
    let typing = bob.json(&["typing", "Alice"]);
    assert_eq!(typing["on"], true, "{typing}");
    let shown = desktop_run.next("Bob typing", STEP, |e| is_event(e, "typing"));
    assert_eq!(shown["from"], "Bob", "{shown}");
    assert_eq!(shown["on"], true, "{shown}");
    let chats = desktop.json(&["chats"]);
    let bob_chat = chats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Bob")
        .unwrap_or_else(|| panic!("no chat with Bob: {chats}"));
    assert_eq!(shown["chat"], bob_chat["id"], "{shown}");

    // Bob's phone dies: the broker's Last Will tells the desktop.
    let killed = Instant::now();
    bob_run.kill();
    let gone = desktop_run.next("Bob offline", STEP, is_bob(false));
    eprintln!(
        "story 8: the desktop saw Bob offline {} ms after the kill",
        killed.elapsed().as_millis()
    );
    assert!(gone["at"].as_i64().unwrap_or(0) > 0, "{gone}");

    desktop_run.stop();
    took("8 typing and presence", started);
}

// ---------------------------------------------------------------------------------------
// Story 9.

#[test]
fn with_two_brokers_listed_every_device_fails_over_when_the_first_dies() {
    let started = Instant::now();
    let (first, first_url) = embedded_broker();
    let (second, second_url) = embedded_broker();
    // Two brokers of one deployment, in the order tried: the phone is set up with both, and
    // the desktop it links gets both from its offer.
    let list = format!("{first_url},{second_url}");
    let world = World::new(&list);
    let (alice, bob, desktop) = (&world.alice, &world.bob, &world.desktop);
    let listed = [first_url.as_str(), second_url.as_str()];
    for device in [alice, bob, desktop] {
        let status = device.json(&["status"]);
        assert_eq!(status["brokers"], serde_json::json!(listed), "{status}");
        assert_eq!(status["broker"], Value::Null, "no session runs: {status}");
    }

    // Everyone starts on the first broker, and says so.
    let mut sessions = [alice.start(), bob.start(), desktop.start()];
    for session in &mut sessions {
        let online = session.next("online", STEP, |e| is_event(e, "online"));
        assert_eq!(online["broker"], first_url.as_str(), "{online}");
    }
    assert_eq!(desktop.json(&["status"])["broker"], first_url.as_str());
    bob.json(&["send", "Alice", "On the first broker"]);
    sessions[2].message("On the first broker", STEP);

    // The first broker dies: each device moves to the second, keeps its session running, and
    // says where it is now.
    stop_broker(first);
    let moved = Instant::now();
    for session in &mut sessions {
        let online = session.next("online on the second broker", STEP, |e| {
            is_event(e, "online") && e["broker"] == second_url.as_str()
        });
        assert_eq!(online["broker"], second_url.as_str(), "{online}");
    }
    eprintln!(
        "story 9: every device was on the second broker {} ms after the first stopped",
        moved.elapsed().as_millis()
    );
    let status = eventually(
        "the desktop's status naming the second broker",
        STEP,
        || {
            let status = desktop.json(&["status"]);
            let on_second = status["broker"] == second_url.as_str();
            (on_second.then(|| status.clone()), status.to_string())
        },
    );
    assert_eq!(status["brokers"], serde_json::json!(listed), "{status}");

    // Messages flow there, both ways, each once.
    bob.json(&["send", "Alice", "On the second broker"]);
    sessions[2].message("On the second broker", STEP);
    sessions[0].message("On the second broker", STEP);
    desktop.json(&["send", "Bob", "Answered after the failover"]);
    sessions[1].message("Answered after the failover", STEP);
    let want: Vec<String> = [
        "On the first broker",
        "On the second broker",
        "Answered after the failover",
    ]
    .map(str::to_owned)
    .into();
    let history = desktop.wait_for_history("Bob", want.len(), STEP);
    assert_exactly("the desktop's chat with Bob", &history, &want);

    for session in sessions {
        session.stop();
    }
    stop_broker(second);
    took("9 failover to the second broker", started);
}

// ---------------------------------------------------------------------------------------
// Stories 10 to 12: a three-node NATS JetStream cluster, every device on a node of its own.

/// Every node of `cluster` as one broker list, starting at node `first` (a device's list
/// names its own node first and the others after it, in order).
fn nodes_from(cluster: &NatsCluster, first: usize) -> String {
    (0..tandem_tests::nats::NODES)
        .map(|i| cluster.url(first + i).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Alice's phone on node 1, her desktop on node 2, Bob's phone on node 3, each listing all
/// three nodes from its own. The phone starts with the desktop's order, links it (the offer
/// hands the desktop that list; the code meets on node 2), then takes its own order.
fn world_on(cluster: &NatsCluster, history: usize, link_within: Duration) -> World {
    let alice = Device::phone("Alice", &nodes_from(cluster, 1));
    let bob = Device::phone("Bob", &nodes_from(cluster, 2));
    befriend(&alice, &bob);
    if history > 0 {
        let messages = history.to_string();
        ok(alice.cli(&[
            "generate",
            "--chats",
            "20",
            "--messages",
            &messages,
            "--seed",
            "11",
        ]));
    }
    let desktop = Device::desktop_of_within(&alice, &cluster.url(1).to_string(), link_within);
    ok(alice.cli(&["broker", "--url", &nodes_from(cluster, 0)]));
    World {
        alice,
        bob,
        desktop,
    }
}

/// Starts the three runs and checks that each is online on its own node:
/// `[alice, bob, desktop]`.
fn run_on_nodes(world: &World, cluster: &NatsCluster) -> [Session; 3] {
    let mut sessions = [
        world.alice.start(),
        world.bob.start(),
        world.desktop.start(),
    ];
    for (session, node) in sessions.iter_mut().zip([0, 2, 1]) {
        let online = session.next("online", STEP, |e| is_event(e, "online"));
        assert_eq!(
            online["broker"],
            cluster.url(node).to_string(),
            "{} is not on node {}: {online}",
            session.who,
            node + 1
        );
    }
    sessions
}

/// Waits until `session` says it is online again on a node other than `lost` (after a
/// failover: the next node of its list, or the one after when the next refused it twice
/// while the cluster was electing new leaders); returns that node's URL.
fn online_elsewhere(session: &mut Session, cluster: &NatsCluster, lost: usize) -> String {
    let lost_url = cluster.url(lost).to_string();
    let online = session.next(&format!("online off node {}", lost + 1), BURST, |e| {
        is_event(e, "online") && e["broker"] != lost_url.as_str()
    });
    text(&online, "broker").to_owned()
}

#[test]
fn on_a_cluster_devices_on_three_nodes_exchange_messages_receipts_and_presence() {
    let started = Instant::now();
    let cluster = must(NatsCluster::start());
    let world = world_on(&cluster, 0, STEP);
    let (alice, bob, desktop) = (&world.alice, &world.bob, &world.desktop);
    let status = desktop.json(&["status"]);
    assert_eq!(
        status["brokers"],
        serde_json::json!(nodes_from(&cluster, 1).split(',').collect::<Vec<_>>()),
        "the desktop got the phone's list, its own node first: {status}"
    );
    let [mut alice_run, mut bob_run, mut desktop_run] = run_on_nodes(&world, &cluster);

    // Bob (node 3) is online: the desktop (node 2) hears it from his retained presence.
    let is_bob = |online: bool| {
        let device = bob.id.clone();
        move |e: &Value| {
            is_event(e, "presence") && e["device"] == device.as_str() && e["online"] == online
        }
    };
    desktop_run.find("Bob online", STEP, is_bob(true));

    // Bob writes: both of Alice's devices show it, each on its own node.
    let hello = "Hello from node 3";
    let sent = bob.json(&["send", "Alice", hello, "--wait"]);
    let on_desktop = desktop_run.message(hello, STEP);
    let on_phone = alice_run.message(hello, STEP);
    assert_eq!(on_desktop["id"], sent["id"], "{on_desktop}");
    assert_eq!(on_phone["id"], sent["id"], "{on_phone}");

    // Bob types; the desktop sees it.
    bob.json(&["typing", "Alice"]);
    let typing = desktop_run.next("Bob typing", STEP, |e| is_event(e, "typing"));
    assert_eq!(typing["from"], "Bob", "{typing}");

    // Alice answers from the desktop; Bob reads it: the desktop's ticks go delivered, read.
    let answer = "Hello from node 2";
    let answered = desktop.json(&["send", "Bob", answer, "--wait"]);
    let answer_id = text(&answered, "id").to_owned();
    let on_bob = bob_run.message(answer, STEP);
    assert_eq!(on_bob["id"], answer_id.as_str(), "{on_bob}");
    let on_phone = alice_run.message(answer, STEP);
    assert_eq!(on_phone["from_me"], true, "{on_phone}");
    bob.json(&["read", "Alice"]);
    let receipt = |status: &'static str| {
        let id = answer_id.clone();
        move |e: &Value| is_event(e, "receipt") && e["id"] == id.as_str() && e["status"] == status
    };
    desktop_run.find("the read receipt", STEP, receipt("read"));
    let events = desktop_run.events();
    let at = |status: &'static str| events.iter().position(receipt(status));
    assert!(
        at("delivered").is_some() && at("delivered") < at("read"),
        "the desktop's receipts for {answer_id} are not `delivered` then `read`: {events:?}"
    );

    // Bob's phone dies: his node publishes his Last Will, the desktop's node delivers it.
    bob_run.kill();
    desktop_run.next("Bob offline", STEP, is_bob(false));

    let want = [hello.to_owned(), answer.to_owned()];
    assert_exactly(
        "the desktop's chat with Bob",
        &desktop.history("Bob", 10),
        &want,
    );
    assert_exactly("Alice's chat with Bob", &alice.history("Bob", 10), &want);
    assert_exactly("Bob's chat with Alice", &bob.history("Alice", 10), &want);
    for run in [alice_run, desktop_run] {
        run.stop();
    }
    took(
        "10 a cluster: three nodes, messages, receipts, presence",
        started,
    );
}

#[test]
fn on_a_cluster_a_desktop_links_and_syncs_ten_thousand_messages() {
    const HISTORY: usize = 10_000;
    let started = Instant::now();
    let cluster = must(NatsCluster::start());
    let world = world_on(&cluster, HISTORY, BURST * 2);
    let (alice, desktop) = (&world.alice, &world.desktop);
    eprintln!(
        "story 11: linked and synced {HISTORY} messages through the cluster after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The desktop holds the phone's whole history: every chat with the same messages.
    let on_phone = alice.json(&["status"]);
    let on_desktop = desktop.json(&["status"]);
    assert_eq!(on_desktop["sync"]["state"], "complete", "{on_desktop}");
    assert_eq!(on_desktop["messages"], HISTORY, "{on_desktop}");
    assert_eq!(on_desktop["messages"], on_phone["messages"], "{on_phone}");
    assert_eq!(on_desktop["chats"], on_phone["chats"], "{on_phone}");
    let chats = alice.json(&["chats"]);
    for chat in chats.as_array().unwrap().iter().take(3) {
        let name = text(chat, "name");
        let ids = |device: &Device| -> Vec<String> {
            device
                .history(name, 50)
                .iter()
                .map(|m| text(m, "id").to_owned())
                .collect()
        };
        assert_eq!(ids(alice), ids(desktop), "the chat {name:?} differs");
    }
    assert_store_intact(desktop.path());
    took("11 a cluster: link and sync 10k", started);
}

#[test]
fn on_a_cluster_a_node_dies_mid_burst_and_another_restarts_and_rejoins() {
    let started = Instant::now();
    let mut cluster = must(NatsCluster::start());
    let world = world_on(&cluster, 0, STEP);
    let (alice, bob, desktop) = (&world.alice, &world.bob, &world.desktop);
    let [mut alice_run, mut bob_run, mut desktop_run] = run_on_nodes(&world, &cluster);

    // Bob (node 3) sends a thousand; once the desktop has shown 300, its node (2) is killed.
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = burst(bob, "burst", Arc::clone(&sent));
    let mut shown = 0;
    while shown < 300 {
        desktop_run.next("a message of the burst", BURST, |e| is_event(e, "message"));
        shown += 1;
    }
    cluster.kill_node(1);
    let killed = Instant::now();
    let at_kill = sent.load(Ordering::SeqCst);
    // The desktop moves on to another node of its list, keeping its session there.
    let desktop_node = online_elsewhere(&mut desktop_run, &cluster, 1);
    let moved = killed.elapsed();
    let ids = sender.join().unwrap();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), BURST_SIZE);

    // Every message lands once on every device. Those in flight through the killed node come
    // again when the cluster's acknowledgement wait (`ack_wait`) runs out.
    let want = texts("burst", BURST_SIZE);
    let landing = Instant::now();
    desktop.wait_for_history("Bob", BURST_SIZE, CLUSTER_LANDING);
    alice.wait_for_history("Bob", BURST_SIZE, CLUSTER_LANDING);
    let landed = landing.elapsed();
    assert_burst_once_everywhere(&world, &want);
    eprintln!(
        "story 12: node 2 killed after the desktop showed {shown} ({at_kill} sent); the desktop \
         was online on {desktop_node} {} ms later; the last message landed {:.1} s after Bob's \
         run had them all",
        moved.as_millis(),
        landed.as_secs_f64()
    );

    // Node 2 restarts and rejoins; then node 1 stops: Alice's phone (and the desktop, if it
    // went there) moves on, and the cluster keeps working on nodes 2 and 3, whose JetStream
    // quorum needs the rejoined node.
    must(cluster.start_node(1));
    must(cluster.stop_node(0));
    online_elsewhere(&mut alice_run, &cluster, 0);
    let after = "After the rejoin";
    bob.json(&["send", "Alice", after]);
    alice_run.message(after, BURST);
    desktop_run.message(after, BURST);
    let reply = "Heard you on the rejoined node";
    alice.json(&["send", "Bob", reply]);
    bob_run.message(reply, BURST);
    // A history page holds at most a thousand: the newest page shows the two, the store's
    // count shows nothing else came.
    for device in [alice, desktop] {
        let status = eventually(
            &format!("{}: both messages after the rejoin", device.who),
            BURST,
            || {
                let status = device.json(&["status"]);
                let count = status["messages"].as_u64().unwrap_or(0);
                (
                    (count >= BURST_SIZE as u64 + 2).then(|| status.clone()),
                    format!("{count}"),
                )
            },
        );
        assert_eq!(
            status["messages"],
            BURST_SIZE + 2,
            "{}: {status}",
            device.who
        );
        let newest = device.history("Bob", 3);
        let newest: Vec<&str> = newest.iter().map(|m| text(m, "text")).collect();
        assert_eq!(newest, ["burst 999", after, reply], "{}", device.who);
    }
    let newest = bob.history("Alice", 2);
    let newest: Vec<&str> = newest.iter().map(|m| text(m, "text")).collect();
    assert_eq!(newest, [after, reply], "Bob's chat with Alice");

    for run in [alice_run, bob_run, desktop_run] {
        run.stop();
    }
    assert_store_intact(desktop.path());
    assert_store_intact(alice.path());
    took(
        "12 a cluster: a node dies mid-burst, another restarts",
        started,
    );
}

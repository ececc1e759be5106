#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Bridge mode (issue 6) across real processes, as users run it: `tandem broker`, Alice's phone
//! running `tandem-phone run --bridge-listen`, a desktop linked with `tandem link --mode
//! bridge` (it holds no broker session: everything goes over the encrypted WebSocket to the
//! phone), and Bob's phone.
//!
//! The stories: the desktop links, gets the history over the bridge, shows what Bob writes and
//! writes back; with Alice's phone stopped it still opens every chat and searches, says the
//! phone is unreachable and keeps what Alice writes; when the phone returns, Bob's messages of
//! the meantime arrive once and the queued message goes out once. A bridge cut twenty times
//! while Bob writes loses and repeats nothing. Intruders (an unknown key, a replayed
//! handshake, oversized, malformed and text frames, a frame after the close) are refused
//! with the phone's store unchanged, while two desktops are served at once.
//!
//! Every wait is bounded and every failure shows what the programs printed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tandem_bridge::{DesktopHandshake, PublicKey, StaticSecret};
use tandem_store::{KeychainUse, Store};
use tandem_tests::TcpProxy;
use tandem_tests::cli::{Background, BrokerProcess, Home, Run};
use tokio_tungstenite::tungstenite::Message as Ws;

/// Longest wait for one expected step.
const STEP: Duration = Duration::from_secs(30);
/// The desktop's name.
const DESKTOP_NAME: &str = "Alice's bridged desktop";

fn must<T>(result: tandem_tests::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn ok_json(run: Run) -> Value {
    assert!(run.success(), "expected success: {run}");
    run.json().unwrap_or_else(|e| panic!("{e}"))
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {value}"))
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `timeout`.
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One home and the program that runs on it.
struct Device {
    who: &'static str,
    home: Home,
    phone: bool,
}

impl Device {
    fn cli(&self, args: &[&str]) -> Run {
        if self.phone {
            must(self.home.phone(args))
        } else {
            must(self.home.companion(args))
        }
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        ok_json(self.cli(&all))
    }

    fn spawn(&self, args: &[&str]) -> Background {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        if self.phone {
            must(self.home.spawn_phone(all))
        } else {
            must(self.home.spawn_companion(all))
        }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    /// The texts of a chat's newest `limit` messages, oldest first.
    fn texts(&self, chat: &str, limit: usize) -> Vec<String> {
        let page = self.json(&["history", chat, "--limit", &limit.to_string()]);
        page.as_array()
            .unwrap_or_else(|| panic!("{}: `history` is not a list: {page}", self.who))
            .iter()
            .map(|m| text(m, "text").to_owned())
            .collect()
    }

    /// Waits until the chat holds every one of `want` (and says what it holds otherwise).
    fn wait_for_texts(&self, chat: &str, want: &[&str], timeout: Duration) -> Vec<String> {
        eventually(
            &format!("{}: {want:?} in {chat:?}", self.who),
            timeout,
            || {
                let texts = self.texts(chat, 500);
                let all = want.iter().all(|w| texts.iter().any(|t| t == w));
                (all.then(|| texts.clone()), format!("{texts:?}"))
            },
        )
    }

    fn status(&self) -> Value {
        self.json(&["status"])
    }

    /// The newest message of `chat` whose text is `text`, as `history` shows it.
    fn message(&self, chat: &str, text: &str) -> Option<Value> {
        let page = self.json(&["history", chat, "--limit", "50"]);
        page.as_array()?
            .iter()
            .rev()
            .find(|m| m["text"] == text)
            .cloned()
    }

    /// Waits until the message of `chat` with text `text` shows `emoji` from `from`.
    fn wait_for_reaction(&self, chat: &str, text: &str, emoji: &str, from: &str) {
        eventually(
            &format!("{}: {from}'s {emoji} on {text:?}", self.who),
            STEP,
            || {
                let message = self.message(chat, text).unwrap_or_default();
                let shown = message["reactions"].as_array().is_some_and(|all| {
                    all.iter().any(|r| r["emoji"] == emoji && r["from"] == from)
                });
                (shown.then_some(()), message.to_string())
            },
        );
    }

    /// The unread count of the chat named `name`.
    fn unread(&self, name: &str) -> u64 {
        let chats = self.json(&["chats"]);
        chats
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name))
            .and_then(|c| c["unread"].as_u64())
            .unwrap_or_else(|| panic!("{}: no unread count for {name} in {chats}", self.who))
    }
}

/// Asserts each of `want` shows exactly once in `texts`.
fn assert_once(who: &str, texts: &[String], want: &[&str]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in texts {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    for w in want {
        assert_eq!(
            counts.get(w).copied().unwrap_or(0),
            1,
            "{who}: {w:?} must show exactly once in {texts:?}"
        );
    }
}

/// A running `run --json`.
struct Session {
    who: &'static str,
    bg: Background,
}

impl Session {
    fn wait(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let what = format!("{what} on {}", self.who);
        must(self.bg.wait_for(&what, STEP, wanted))
    }

    /// Stops it with SIGTERM; it must exit 0.
    fn stop(self) -> Run {
        must(self.bg.signal("TERM"));
        let stopped = must(self.bg.finish(STEP));
        assert_eq!(stopped.code(), Some(0), "{}: {stopped}", self.who);
        stopped
    }
}

/// Alice's phone, Bob's phone (friends), a broker, and a desktop linked to Alice's phone in
/// bridge mode.
struct World {
    _broker: BrokerProcess,
    url: String,
    alice: Device,
    bob: Device,
    desktop: Device,
    /// Where Alice's phone listens for bridge desktops.
    listen: SocketAddr,
    /// The phone's bridge key, as it printed it.
    phone_key: PublicKey,
}

impl World {
    /// Everyone set up; the phone's bridge URL is `bridge_url` when given (a proxy in front of
    /// the phone), else the address it listens on.
    fn new(bridge_url: impl FnOnce(SocketAddr) -> Option<String>) -> (Self, Session) {
        let broker = must(BrokerProcess::start("127.0.0.1:0"));
        let url = format!("mqtt://{}", broker.addr());
        let alice = Device {
            who: "Alice's phone",
            home: must(Home::new()),
            phone: true,
        };
        let bob = Device {
            who: "Bob's phone",
            home: must(Home::new()),
            phone: true,
        };
        alice.json(&["init", "--name", "Alice", "--broker", &url]);
        bob.json(&["init", "--name", "Bob", "--broker", &url]);
        let alice_link = text(&alice.json(&["contact-link"]), "link").to_owned();
        let bob_link = text(&bob.json(&["contact-link"]), "link").to_owned();
        alice.json(&["contact-add", &bob_link, "--name", "Bob"]);
        bob.json(&["contact-add", &alice_link, "--name", "Alice"]);
        // Some history on Alice's phone before the desktop links: it must come over the bridge.
        alice.json(&[
            "generate",
            "--messages",
            "300",
            "--chats",
            "3",
            "--seed",
            "6",
        ]);

        // A free port for the bridge, so that the phone can come back on the same one.
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut first = alice.spawn(&[
            "run",
            "--bridge-listen",
            &listen.to_string(),
            "--bridge-url",
            &bridge_url(listen).unwrap_or_else(|| format!("ws://{listen}")),
        ]);
        must(first.wait_for("the bridge listening", STEP, |e| {
            e["event"] == "bridge_listening"
        }));
        // The key goes to stderr, read on its own: it may come a moment after the event.
        let stderr = eventually("the phone's bridge key on stderr", STEP, || {
            let stderr = first.stderr();
            (
                stderr.contains("bridge key: ").then(|| stderr.clone()),
                stderr,
            )
        });
        let phone_key = phone_key_of(&stderr);
        let phone = Session {
            who: "Alice's phone",
            bg: first,
        };

        let desktop = link_desktop(&alice, &url, DESKTOP_NAME);
        (
            Self {
                _broker: broker,
                url,
                alice,
                bob,
                desktop,
                listen,
                phone_key,
            },
            phone,
        )
    }

    fn run_phone(&self) -> Session {
        let mut bg = self
            .alice
            .spawn(&["run", "--bridge-listen", &self.listen.to_string()]);
        must(bg.wait_for("the bridge listening", STEP, |e| {
            e["event"] == "bridge_listening"
        }));
        Session {
            who: "Alice's phone",
            bg,
        }
    }

    fn run_bob(&self) -> Session {
        let mut bg = self.bob.spawn(&["run"]);
        must(bg.wait_for("online", STEP, |e| e["event"] == "online"));
        Session {
            who: "Bob's phone",
            bg,
        }
    }

    fn run_desktop(&self) -> Session {
        Session {
            who: DESKTOP_NAME,
            bg: self.desktop.spawn(&["run"]),
        }
    }

    /// The desktop's `status --json` says the phone is (not) reachable, eventually.
    fn wait_reachable(&self, reachable: bool) -> Value {
        eventually(&format!("phone_reachable = {reachable}"), STEP, || {
            let status = self.desktop.status();
            let done = status["phone_reachable"] == reachable;
            (done.then(|| status.clone()), status.to_string())
        })
    }
}

/// Links a new desktop named `name` to `alice` in bridge mode (her phone may be running).
fn link_desktop(alice: &Device, url: &str, name: &'static str) -> Device {
    let desktop = Device {
        who: name,
        home: must(Home::new()),
        phone: false,
    };
    let mut link = desktop.spawn(&[
        "link",
        "--mode",
        "bridge",
        "--broker",
        url,
        "--name",
        name,
        "--timeout",
        "60",
    ]);
    let code = must(link.wait_for_event("code", STEP));
    let scanned = must(
        alice
            .spawn(&["scan", "--link", text(&code, "link"), "--yes"])
            .finish(STEP),
    );
    assert!(scanned.success(), "{scanned}");
    let linked = must(link.finish(STEP));
    assert!(linked.success(), "{linked}");
    desktop
}

/// The phone's bridge key from what `tandem-phone run --bridge-url` printed.
fn phone_key_of(stderr: &str) -> PublicKey {
    let line = stderr
        .lines()
        .find(|l| l.contains("bridge key: "))
        .unwrap_or_else(|| panic!("the phone did not print its bridge key: {stderr}"));
    let key = line
        .split("bridge key: ")
        .nth(1)
        .unwrap()
        .trim_end_matches([')', '.']);
    key.parse().unwrap_or_else(|e| panic!("{key:?}: {e}"))
}

// ---------------------------------------------------------------------------------------

#[test]
fn alice_uses_her_desktop_through_her_phone_and_keeps_reading_when_the_phone_is_gone() {
    let started = Instant::now();
    let (world, phone) = World::new(|_| None);
    let (alice, bob, desktop) = (&world.alice, &world.bob, &world.desktop);
    let status = desktop.status();
    assert_eq!(status["mode"], "bridge", "{status}");

    // The desktop connects to the phone and gets its whole history over the bridge.
    let mut session = world.run_desktop();
    let phone_counts = alice.status();
    let synced = eventually("the history over the bridge", STEP, || {
        let status = desktop.status();
        let done = status["messages"] == phone_counts["messages"]
            && status["chats"] == phone_counts["chats"]
            && status["sync"]["state"] == "complete";
        (
            done.then(|| status.clone()),
            format!("{status} vs {phone_counts}"),
        )
    });
    assert_eq!(synced["phone_reachable"], true, "{synced}");
    let alice_chats = alice.json(&["chats"]);
    let desktop_chats = desktop.json(&["chats"]);
    let names = |chats: &Value| -> Vec<String> {
        let mut names: Vec<String> = chats
            .as_array()
            .unwrap()
            .iter()
            .map(|c| text(c, "name").to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&desktop_chats), names(&alice_chats));

    // Bob writes: the desktop shows it.
    let mut bob_session = world.run_bob();
    bob.json(&["send", "Alice", "Hi Alice, are you at your desk?"]);
    session.wait("Bob's message", |e| {
        e["event"] == "message" && e["message"]["text"] == "Hi Alice, are you at your desk?"
    });
    desktop.wait_for_texts("Bob", &["Hi Alice, are you at your desk?"], STEP);
    // Bob types: the desktop hears it through the phone (never stored).
    bob.json(&["typing", "Alice"]);
    let typing = session.wait("Bob typing", |e| e["event"] == "typing");
    assert_eq!(typing["from"], "Bob", "{typing}");
    assert_eq!(typing["on"], true, "{typing}");

    // Alice answers from the desktop: Bob gets it, and her phone has it too.
    desktop.json(&["send", "Bob", "Yes, writing from the desktop"]);
    bob_session.wait("Alice's answer", |e| {
        e["event"] == "message" && e["message"]["text"] == "Yes, writing from the desktop"
    });
    alice.wait_for_texts("Bob", &["Yes, writing from the desktop"], STEP);

    // Alice's phone goes away: the desktop still browses and searches, and says so.
    phone.stop();
    let status = world.wait_reachable(false);
    assert_eq!(
        status["messages"],
        synced["messages"].as_u64().unwrap() + 2,
        "{status}"
    );
    for chat in desktop_chats.as_array().unwrap() {
        let id = text(chat, "id");
        let page = desktop.json(&["history", id, "--limit", "20"]);
        assert!(
            !page.as_array().unwrap().is_empty(),
            "chat {chat} does not open offline"
        );
    }
    let hits = desktop.json(&["search", "desk"]);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["text"] == "Hi Alice, are you at your desk?"),
        "{hits}"
    );

    // Meanwhile Bob writes twice and Alice writes from the desktop: hers waits.
    bob.json(&["send", "Alice", "Lunch at one?"]);
    bob.json(&["send", "Alice", "I'll book a table"]);
    let queued = desktop.json(&["send", "Bob", "Sure, see you there"]);
    assert_eq!(queued["status"], "pending", "{queued}");

    // Alice's phone runs a while without its bridge: it takes Bob's messages and his reaction
    // to her answer from the broker. The desktop cannot hear of them yet, and must not lose
    // them: they wait in the phone's store, noted in the transactions that stored them.
    let answer = bob
        .message("Alice", "Yes, writing from the desktop")
        .expect("Bob holds Alice's answer");
    bob.json(&["react", text(&answer, "id"), "👍"]);
    let mut unbridged = Session {
        who: "Alice's phone, bridge off",
        bg: alice.spawn(&["run"]),
    };
    unbridged.wait("online", |e| e["event"] == "online");
    alice.wait_for_texts("Bob", &["Lunch at one?", "I'll book a table"], STEP);
    alice.wait_for_reaction("Bob", "Yes, writing from the desktop", "👍", "Bob");
    unbridged.stop();

    // The phone returns: Bob's messages arrive once, the queued one goes out once.
    let phone = world.run_phone();
    world.wait_reachable(true);
    let texts = desktop.wait_for_texts(
        "Bob",
        &["Lunch at one?", "I'll book a table", "Sure, see you there"],
        STEP,
    );
    assert_once(
        DESKTOP_NAME,
        &texts,
        &[
            "Lunch at one?",
            "I'll book a table",
            "Sure, see you there",
            "Hi Alice, are you at your desk?",
        ],
    );
    let bob_texts = bob.wait_for_texts("Alice", &["Sure, see you there"], STEP);
    assert_once(
        "Bob",
        &bob_texts,
        &["Sure, see you there", "Yes, writing from the desktop"],
    );
    eventually("the queued message marked sent", STEP, || {
        let page = desktop.json(&["history", "Bob", "--limit", "5"]);
        let sent = page
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["text"] == "Sure, see you there")
            .is_some_and(|m| m["status"] != "pending");
        (sent.then_some(()), page.to_string())
    });
    desktop.wait_for_reaction("Bob", "Yes, writing from the desktop", "👍", "Bob");

    // Bob changes his reaction while the bridge is up: the desktop follows.
    bob.json(&["react", text(&answer, "id"), "🎉"]);
    desktop.wait_for_reaction("Bob", "Yes, writing from the desktop", "🎉", "Bob");
    // Alice reads Bob's chat on her phone: the desktop's unread count follows.
    assert!(
        desktop.unread("Bob") > 0,
        "Bob's messages are unread on the desktop"
    );
    alice.json(&["read", "Bob"]);
    eventually("the chat read on the desktop too", STEP, || {
        let unread = desktop.unread("Bob");
        ((unread == 0).then_some(()), unread.to_string())
    });

    session.stop();
    bob_session.stop();
    phone.stop();
    // The desktop never held a broker session of its own.
    assert!(desktop.status()["device"].is_null());
    eprintln!("story took {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_bridge_cut_twenty_times_while_bob_writes_loses_and_repeats_nothing() {
    // The proxy forwards on its own thread, between the test's steps.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy_slot: std::sync::Mutex<Option<TcpProxy>> = std::sync::Mutex::new(None);
    let (world, phone) = World::new(|listen| {
        let proxy = rt.block_on(TcpProxy::start(listen)).unwrap();
        let url = format!("ws://{}", proxy.addr());
        *proxy_slot.lock().unwrap() = Some(proxy);
        Some(url)
    });
    let proxy = proxy_slot.lock().unwrap().take().unwrap();
    let (bob, desktop) = (&world.bob, &world.desktop);
    let mut session = world.run_desktop();
    world.wait_reachable(true);
    let bob_session = world.run_bob();

    let want: Vec<String> = (0..60).map(|i| format!("flap {i}")).collect();
    let mut cuts = 0;
    for (i, t) in want.iter().enumerate() {
        bob.json(&["send", "Alice", t]);
        if i % 3 == 2 {
            rt.block_on(async {
                proxy.cut();
                tokio::time::sleep(Duration::from_millis(150)).await;
                proxy.resume();
            });
            cuts += 1;
        }
    }
    assert_eq!(cuts, 20);
    let wanted: Vec<&str> = want.iter().map(String::as_str).collect();
    let texts = desktop.wait_for_texts("Bob", &wanted, Duration::from_secs(60));
    assert_once(DESKTOP_NAME, &texts, &wanted);
    session.wait("the last message as an event", |e| {
        e["event"] == "message" && e["message"]["text"] == "flap 59"
    });
    session.stop();
    bob_session.stop();
    phone.stop();
}

/// Reads the desktop's bridge secret from its store (the test plays a second copy of it).
fn desktop_secret(home: &Path) -> StaticSecret {
    let (store, _) = Store::open_in_home_with(home, KeychainUse::Off).unwrap();
    let bytes = store.identity("bridge_secret").unwrap().unwrap();
    StaticSecret::from_bytes(<[u8; 32]>::try_from(bytes.expose()).unwrap())
}

/// The phone's event log and acknowledgements, to show that nothing was stored.
fn phone_bridge_state(home: &Path) -> (u64, u64) {
    let (store, _) = Store::open_in_home_with(home, KeychainUse::Off).unwrap();
    (
        store.bridge_head().unwrap(),
        store.bridge_acked(&[0; 32]).unwrap(),
    )
}

fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// What the phone did with one attempt: the first message back, or how the socket ended.
async fn attempt(url: &str, frames: Vec<Ws>) -> String {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for frame in frames {
        if ws.send(frame).await.is_err() {
            return "closed while sending".into();
        }
    }
    match tokio::time::timeout(STEP, ws.next()).await {
        Ok(Some(Ok(Ws::Binary(b)))) => format!("binary {} bytes", b.len()),
        Ok(Some(Ok(Ws::Close(frame)))) => format!("closed: {frame:?}"),
        Ok(Some(Ok(other))) => format!("{other:?}"),
        Ok(Some(Err(e))) => format!("error: {e}"),
        Ok(None) => "ended".into(),
        Err(_) => "no answer".into(),
    }
}

#[test]
fn intruders_are_refused_and_the_phone_stores_nothing_while_two_desktops_are_served() {
    let (world, phone) = World::new(|_| None);
    let url = format!("ws://{}", world.listen);
    let secret = desktop_secret(world.desktop.path());
    let rt = runtime();
    let mut rng = tandem_crypto::OsRng::new().unwrap();
    let before = phone_bridge_state(world.alice.path());

    rt.block_on(async {
        // A desktop key the phone never authorised.
        let stranger = StaticSecret::generate(&mut rng);
        let (_, m1) =
            DesktopHandshake::start(&stranger, &world.phone_key, 0, None, now(), &mut rng).unwrap();
        let answer = attempt(&url, vec![Ws::Binary(m1.into())]).await;
        assert!(answer.starts_with("closed"), "a stranger: {answer}");

        // The real desktop's key, but for another phone: does not decrypt.
        let other_phone = StaticSecret::generate(&mut rng).public_key();
        let (_, m1) =
            DesktopHandshake::start(&secret, &other_phone, 0, None, now(), &mut rng).unwrap();
        let answer = attempt(&url, vec![Ws::Binary(m1.into())]).await;
        assert!(answer.starts_with("closed"), "wrong phone key: {answer}");

        // A genuine handshake works once; replayed, it is refused.
        let (_, m1) =
            DesktopHandshake::start(&secret, &world.phone_key, 0, None, now(), &mut rng).unwrap();
        let answer = attempt(&url, vec![Ws::Binary(m1.clone().into())]).await;
        assert!(
            answer.starts_with("binary"),
            "a genuine handshake: {answer}"
        );
        let answer = attempt(&url, vec![Ws::Binary(m1.into())]).await;
        assert!(answer.starts_with("closed"), "a replay: {answer}");

        // Oversized, malformed and text first frames.
        let answer = attempt(&url, vec![Ws::Binary(vec![7u8; 100_000].into())]).await;
        assert!(answer.starts_with("closed"), "oversized: {answer}");
        let answer = attempt(&url, vec![Ws::Binary(vec![1u8; 40].into())]).await;
        assert!(answer.starts_with("closed"), "too short: {answer}");
        let answer = attempt(&url, vec![Ws::Text("hello".into())]).await;
        assert!(answer.starts_with("closed"), "text: {answer}");

        // Open, then garbage after the handshake: the phone closes the channel.
        let (handshake, m1) =
            DesktopHandshake::start(&secret, &world.phone_key, 0, None, now(), &mut rng).unwrap();
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Ws::Binary(m1.into())).await.unwrap();
        let Some(Ok(Ws::Binary(m2))) = ws.next().await else {
            panic!("no handshake answer")
        };
        let (mut session, _) = handshake.finish(&m2).unwrap();
        session.close(tandem_bridge::CloseReason::Normal);
        while let Some(frame) = session.poll_transmit() {
            ws.send(Ws::Binary(frame.into())).await.unwrap();
        }
        // A frame after the close: never read (the phone ends the connection at the close).
        let _ = ws.send(Ws::Binary(vec![0u8; 64].into())).await;
        let ended = tokio::time::timeout(STEP, async {
            loop {
                match ws.next().await {
                    None | Some(Err(_)) | Some(Ok(Ws::Close(_))) => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the phone kept a closed channel open");
    });

    // Nothing of all that was stored by the phone, and it said why it refused each.
    assert_eq!(phone_bridge_state(world.alice.path()), before);
    let logged = phone.bg.stderr();
    for kind in [
        "unauthorised_desktop",
        "not_for_this_phone",
        "replayed_handshake",
        "frame_too_large",
        "handshake_too_short",
        "malformed",
    ] {
        assert!(
            logged.contains(kind),
            "the phone did not log a {kind} refusal: {logged}"
        );
    }

    // Two desktops at once: a second one links while the phone runs; Bob writes and both
    // show it.
    let second = link_desktop(&world.alice, &world.url, "Alice's laptop");
    let mut first_session = world.run_desktop();
    let mut second_session = Session {
        who: "Alice's laptop",
        bg: second.spawn(&["run"]),
    };
    world.wait_reachable(true);
    let bob_session = world.run_bob();
    world
        .bob
        .json(&["send", "Alice", "To both of your desktops"]);
    for session in [&mut first_session, &mut second_session] {
        session.wait("Bob's message", |e| {
            e["event"] == "message" && e["message"]["text"] == "To both of your desktops"
        });
    }
    world
        .desktop
        .wait_for_texts("Bob", &["To both of your desktops"], STEP);
    second.wait_for_texts("Bob", &["To both of your desktops"], STEP);

    // A laptop joins the account in multi-device mode: the bridged desktops hear of it.
    let laptop = must(Home::new());
    let mut link = must(laptop.spawn_companion([
        "--json",
        "link",
        "--broker",
        &world.url,
        "--name",
        "Alice's new laptop",
        "--timeout",
        "60",
    ]));
    let code = must(link.wait_for_event("code", STEP));
    let scanned = must(
        world
            .alice
            .spawn(&["scan", "--link", text(&code, "link"), "--yes"])
            .finish(STEP),
    );
    assert!(scanned.success(), "{scanned}");
    let linked = must(link.finish(STEP));
    assert!(linked.success(), "{linked}");
    for session in [&mut first_session, &mut second_session] {
        let change = session.wait("the new laptop", |e| e["event"] == "phone_device");
        assert_eq!(change["name"], "Alice's new laptop", "{change}");
        assert_eq!(change["linked"], true, "{change}");
    }
    first_session.stop();
    second_session.stop();
    bob_session.stop();
    phone.stop();
}

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Live messaging as the front ends use it, in one process over the embedded broker: Alice's
//! phone and her linked laptop, and Bob's phone, each running its session (`Engine::run`) on
//! its own thread with its own runtime, as three programs would; work is handed to a running
//! session over its home's control socket, as the CLI and the app do.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tandem_engine::{
    Engine, Event, KeychainUse, LinkOptions, PlanBound, QrSchedule, Reply, Request,
};
use tandem_net::EmbeddedBroker;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `TANDEM_LOG=debug cargo test ...` shows the engine's logs.
fn logs() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

fn open(home: &Path) -> Engine {
    logs();
    Engine::open_with(home, KeychainUse::Off).unwrap()
}

/// A device running its session on its own thread; every event it reports goes to `events`.
struct Running {
    home: PathBuf,
    events: mpsc::Receiver<Event>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Running {
    fn start(home: &Path, broker: &str) -> Self {
        let (tx, events) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let home_owned = home.to_path_buf();
        let broker = broker.to_owned();
        let thread = thread::spawn(move || {
            let engine = open(&home_owned);
            let mut on = |e: &Event| {
                let _ = tx.send(e.clone());
            };
            runtime().block_on(async {
                tokio::select! {
                    r = engine.run(Some(&broker), &mut on) => r.unwrap(),
                    _ = stopped => {}
                }
            });
        });
        let running = Self {
            home: home.to_path_buf(),
            events,
            stop: Some(stop),
            thread: Some(thread),
        };
        running.wait_for("online", |e| matches!(e, Event::Online { .. }));
        running
    }

    /// Hands `request` to the running session, as `tandem send` would.
    fn ask(&self, request: Request) -> serde_json::Value {
        match runtime()
            .block_on(Engine::hand_over(&self.home, &request))
            .unwrap()
        {
            Some(Reply::Ok(value)) => value,
            other => panic!("{request:?} answered {other:?}"),
        }
    }

    /// Sends and waits for the broker; returns the message's id and status.
    fn send(&self, chat: &str, text: &str) -> (String, String) {
        let value = self.ask(Request::Send {
            chat: chat.into(),
            text: text.into(),
            reply: None,
            wait: true,
            id: None,
        });
        (
            value["id"].as_str().unwrap().to_owned(),
            value["status"].as_str().unwrap().to_owned(),
        )
    }

    /// Waits (at most 10 s) for an event matching `wanted`; returns it.
    fn wait_for(&self, what: &str, wanted: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if wanted(&e) => return e,
                Ok(_) => {}
                Err(_) => panic!("no {what} event on {} within 10 s", self.home.display()),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct World {
    broker: EmbeddedBroker,
    dir: tempfile::TempDir,
    alice_phone: PathBuf,
    alice_laptop: PathBuf,
    bob_phone: PathBuf,
}

impl World {
    /// Alice's phone with her laptop linked, Bob's phone, and each in the other's contacts.
    fn new() -> Self {
        let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let url = broker.url().to_string();
        let dir = tempfile::tempdir().unwrap();
        let world = Self {
            broker,
            alice_phone: dir.path().join("alice-phone"),
            alice_laptop: dir.path().join("alice-laptop"),
            bob_phone: dir.path().join("bob-phone"),
            dir,
        };
        open(&world.alice_phone)
            .init_primary("Alice", Some(&url))
            .unwrap();
        open(&world.bob_phone)
            .init_primary("Bob", Some(&url))
            .unwrap();
        let bob_link = open(&world.bob_phone).contact_link().unwrap();
        let alice_link = open(&world.alice_phone).contact_link().unwrap();
        open(&world.alice_phone)
            .contact_add(&bob_link, None)
            .unwrap();
        open(&world.bob_phone)
            .contact_add(&alice_link, None)
            .unwrap();
        world.link_laptop();
        world
    }

    fn url(&self) -> String {
        self.broker.url().to_string()
    }

    /// A third phone, Carol's, in Alice's contacts (and Alice in hers); not Bob's.
    fn carol(&self) -> PathBuf {
        let home = self.dir.path().join("carol-phone");
        open(&home)
            .init_primary("Carol", Some(&self.url()))
            .unwrap();
        let carol_link = open(&home).contact_link().unwrap();
        let alice_link = open(&self.alice_phone).contact_link().unwrap();
        open(&self.alice_phone)
            .contact_add(&carol_link, None)
            .unwrap();
        open(&home).contact_add(&alice_link, None).unwrap();
        home
    }

    fn link_laptop(&self) {
        link(&self.alice_phone, &self.alice_laptop, &self.url());
    }
}

/// Links a new companion at `home` to the phone at `phone_home`.
fn link(phone_home: &Path, home: &Path, url: &str) {
    {
        let (codes, first) = mpsc::channel::<String>();
        let options = LinkOptions {
            broker: url.to_owned(),
            name: "Alice's laptop".into(),
            platform: "linux".into(),
            schedule: QrSchedule::default(),
            sync_timeout: Some(Duration::from_secs(30)),
        };
        let home = home.to_path_buf();
        let laptop = thread::spawn(move || {
            let engine = open(&home);
            let mut on = |e: &Event| {
                if let Event::Code { link, .. } = e {
                    let _ = codes.send(link.clone());
                }
            };
            runtime().block_on(engine.link(&options, &mut on)).unwrap();
        });
        let code = first.recv_timeout(Duration::from_secs(10)).unwrap();
        let phone = open(phone_home);
        runtime()
            .block_on(async {
                let link = Engine::parse_link(&code)?;
                phone
                    .scan(link, PlanBound::default(), &mut |_, _| true, &mut |_| {})
                    .await
            })
            .unwrap();
        laptop.join().unwrap();
    }
}

fn is_message(text: &'static str) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Message { message } if message.text == text)
}

fn texts(engine: &Engine, chat: &str) -> Vec<(String, bool)> {
    engine
        .history(chat, 100, None)
        .unwrap()
        .into_iter()
        .map(|m| (m.text, m.from_me))
        .collect()
}

#[test]
fn bob_writes_alice_answers_from_her_laptop_and_every_device_agrees() {
    let world = World::new();
    let url = world.url();
    let alice_phone = Running::start(&world.alice_phone, &url);
    let laptop = Running::start(&world.alice_laptop, &url);
    let bob = Running::start(&world.bob_phone, &url);

    // Bob writes; Alice's phone and her laptop both get it, once.
    let (hello, status) = bob.send("Alice", "Hello Alice!");
    assert_eq!(status, "sent");
    alice_phone.wait_for("Bob's message on the phone", is_message("Hello Alice!"));
    laptop.wait_for("Bob's message on the laptop", is_message("Hello Alice!"));
    // Delivered comes back to Bob from Alice's devices.
    bob.wait_for(
        "delivered",
        |e| matches!(e, Event::Receipt { id, status: "delivered", .. } if *id == hello),
    );

    // Alice answers from the laptop; Bob gets it, and Alice's phone shows it as hers.
    let (answer, _) = laptop.send("Bob", "Hi Bob, from my laptop");
    bob.wait_for("Alice's answer", is_message("Hi Bob, from my laptop"));
    alice_phone.wait_for(
        "the answer synced to the phone",
        |e| matches!(e, Event::Message { message } if message.id == answer && message.from_me),
    );

    // Bob reads the chat: Alice's devices see "read".
    bob.ask(Request::Read {
        chat: "Alice".into(),
    });
    laptop.wait_for(
        "read on the laptop",
        |e| matches!(e, Event::Receipt { id, status: "read", .. } if *id == answer),
    );
    alice_phone.wait_for(
        "read on the phone",
        |e| matches!(e, Event::Receipt { id, status: "read", .. } if *id == answer),
    );

    drop((alice_phone, laptop, bob));
    let expected = vec![
        ("Hello Alice!".to_owned(), false),
        ("Hi Bob, from my laptop".to_owned(), true),
    ];
    assert_eq!(texts(&open(&world.alice_phone), "Bob"), expected);
    assert_eq!(texts(&open(&world.alice_laptop), "Bob"), expected);
    let bob_side: Vec<(String, bool)> = expected.iter().map(|(t, me)| (t.clone(), !me)).collect();
    assert_eq!(texts(&open(&world.bob_phone), "Alice"), bob_side);
    let on_phone = open(&world.alice_phone).history("Bob", 10, None).unwrap();
    assert_eq!(on_phone[1].status, Some("read"));
}

fn ask_ok(running: &Running, request: Request) -> String {
    running.ask(request)["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// What a chat looks like on one device: text, whether it is a reply, reactions, marks.
fn shape(engine: &Engine, chat: &str) -> Vec<(String, bool, Vec<String>, bool, bool)> {
    engine
        .history(chat, 100, None)
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m.text,
                m.reply_to.is_some(),
                m.reactions.into_iter().map(|r| r.emoji).collect(),
                m.edited,
                m.deleted,
            )
        })
        .collect()
}

#[test]
fn replies_reactions_edits_and_deletes_look_the_same_on_every_device() {
    let world = World::new();
    let url = world.url();
    let alice_phone = Running::start(&world.alice_phone, &url);
    let laptop = Running::start(&world.alice_laptop, &url);
    let bob = Running::start(&world.bob_phone, &url);

    let (question, _) = bob.send("Alice", "Dinner at 8?");
    laptop.wait_for("the question", is_message("Dinner at 8?"));
    let answer = ask_ok(
        &laptop,
        Request::Send {
            chat: "Bob".into(),
            text: "Yes!".into(),
            reply: Some(question.clone()),
            wait: true,
            id: None,
        },
    );
    bob.wait_for("the answer", is_message("Yes!"));
    ask_ok(
        &bob,
        Request::React {
            message: answer.clone(),
            emoji: "👍".into(),
        },
    );
    ask_ok(
        &bob,
        Request::Edit {
            message: question.clone(),
            text: "Dinner at 9?".into(),
        },
    );
    // Events come in order: the reaction, then the edit.
    alice_phone.wait_for("the reaction", |e| {
        matches!(e, Event::Update { message } if message.reactions.iter().any(|r| r.emoji == "👍"))
    });
    for device in [&alice_phone, &laptop] {
        device.wait_for(
            "the edit",
            |e| matches!(e, Event::Update { message } if message.text == "Dinner at 9?"),
        );
    }
    // Alice deletes her answer from the phone, though she wrote it on the laptop.
    ask_ok(&alice_phone, Request::Delete { message: answer });
    for device in [&laptop, &bob] {
        device.wait_for(
            "the delete",
            |e| matches!(e, Event::Update { message } if message.deleted),
        );
    }
    drop((alice_phone, laptop, bob));

    let on_phone = shape(&open(&world.alice_phone), "Bob");
    assert_eq!(
        on_phone,
        vec![
            ("Dinner at 9?".to_owned(), false, vec![], true, false),
            (String::new(), true, vec!["👍".to_owned()], false, true),
        ]
    );
    assert_eq!(shape(&open(&world.alice_laptop), "Bob"), on_phone);
    assert_eq!(shape(&open(&world.bob_phone), "Alice"), on_phone);
}

#[test]
fn a_group_of_three_accounts_reaches_every_member_device() {
    let world = World::new();
    let carol_home = world.carol();
    let url = world.url();
    let alice_phone = Running::start(&world.alice_phone, &url);
    let laptop = Running::start(&world.alice_laptop, &url);
    let bob = Running::start(&world.bob_phone, &url);
    let carol = Running::start(&carol_home, &url);

    // Alice's laptop has Bob from the link; Carol was added on the phone before: the laptop
    // learned her from its history sync offer? No: she was added after the link, so the phone
    // told the laptop with a contact card.
    let group = alice_phone.ask(Request::GroupCreate {
        name: "Trip".into(),
        members: vec!["Bob".into(), "Carol".into()],
    });
    let group_id = group["id"].as_str().unwrap().to_owned();
    for device in [&laptop, &bob, &carol] {
        device.wait_for("the new group", |e| {
            matches!(e, Event::Group { name, members, member: true, .. }
                if name == "Trip" && members.len() == 3)
        });
    }
    // Carol and Bob never met: each learns the other's devices from the group.
    carol.send(&group_id, "Hi all, Carol here");
    for device in [&alice_phone, &laptop, &bob] {
        device.wait_for("Carol's group message", is_message("Hi all, Carol here"));
    }
    bob.send(&group_id, "Hello Carol");
    carol.wait_for("Bob's group message", is_message("Hello Carol"));

    // Carol leaves (Alice removes her): she gets nothing of the group from then on.
    alice_phone.ask(Request::GroupRemove {
        chat: group_id.clone(),
        member: "Carol".into(),
    });
    carol.wait_for("her removal", |e| {
        matches!(e, Event::Group { member: false, .. })
    });
    bob.wait_for(
        "Carol's removal",
        |e| matches!(e, Event::Group { members, .. } if members.len() == 2),
    );
    bob.send(&group_id, "Just us now");
    laptop.wait_for("the message after the removal", is_message("Just us now"));
    drop((alice_phone, laptop, bob, carol));
    let on_carol: Vec<String> = open(&carol_home)
        .history(&group_id, 10, None)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(on_carol, vec!["Hi all, Carol here", "Hello Carol"]);
    let on_laptop = texts(&open(&world.alice_laptop), &group_id);
    assert_eq!(on_laptop.len(), 3);
}

/// A raw MQTT client, as anyone with access to the broker could run.
struct Mallory {
    client: rumqttc::AsyncClient,
    runtime: tokio::runtime::Runtime,
    events: rumqttc::EventLoop,
}

impl Mallory {
    fn connect(url: &str) -> Self {
        let url = tandem_net::BrokerUrl::parse(url).unwrap();
        let options = tandem_net::mqtt_options(
            &url,
            "mallory",
            &tandem_net::ClientSettings {
                clean_session: true,
                ..tandem_net::ClientSettings::default()
            },
        )
        .unwrap();
        let (client, events) = rumqttc::AsyncClient::new(options, 10);
        Self {
            client,
            runtime: runtime(),
            events,
        }
    }

    /// Polls until `done` says a packet is the one awaited.
    fn until(&mut self, done: impl Fn(&rumqttc::Packet) -> bool) -> rumqttc::Packet {
        let events = &mut self.events;
        self.runtime.block_on(async {
            loop {
                let event = tokio::time::timeout(Duration::from_secs(5), events.poll())
                    .await
                    .unwrap()
                    .unwrap();
                if let rumqttc::Event::Incoming(packet) = event
                    && done(&packet)
                {
                    return packet;
                }
            }
        })
    }

    fn subscribe(&mut self, topic: &str) {
        let client = self.client.clone();
        let topic = topic.to_owned();
        self.runtime
            .block_on(client.subscribe(topic, rumqttc::QoS::AtLeastOnce))
            .unwrap();
        self.until(|p| matches!(p, rumqttc::Packet::SubAck(_)));
    }

    /// The next message on a subscribed topic.
    fn next_message(&mut self) -> Vec<u8> {
        match self.until(|p| matches!(p, rumqttc::Packet::Publish(_))) {
            rumqttc::Packet::Publish(p) => p.payload.to_vec(),
            _ => unreachable!(),
        }
    }

    fn publish(&mut self, topic: &str, payload: Vec<u8>) {
        let client = self.client.clone();
        let topic = topic.to_owned();
        self.runtime
            .block_on(client.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload))
            .unwrap();
        self.until(|p| matches!(p, rumqttc::Packet::PubAck(_)));
    }
}

/// An envelope for `to` (keys from its account's retained list) claiming to come from
/// `claimed`, sealed with keys that are not `claimed`'s.
fn forged_envelope(
    to: tandem_crypto::DeviceId,
    to_list: &tandem_crypto::DeviceList,
    claimed: tandem_crypto::DeviceId,
    text: &str,
) -> Vec<u8> {
    use tandem_crypto::rng::SeedableRng as _;
    let mut rng = tandem_crypto::rng::ChaCha20Rng::seed_from_u64(7);
    let rogue = tandem_crypto::DeviceKeys::generate(&mut rng);
    let mut session = tandem_crypto::PairwiseSession::new(claimed, to);
    let now = jiff::Timestamp::now().as_millisecond();
    let outbound = session
        .outbound(
            &rogue,
            to_list.device(to.index).unwrap().keys(),
            now,
            &tandem_crypto::RekeyPolicy::default(),
            &mut rng,
        )
        .unwrap();
    let params = tandem_proto::SealParams {
        message_id: tandem_proto::MessageId::new_v7(now, &mut rng).unwrap(),
        timestamp_ms: now,
        flags: tandem_proto::Flags::NONE,
    };
    let body = tandem_proto::Body::Text {
        chat: tandem_proto::ChatRef::Direct { with: to.account },
        text: text.to_owned(),
    };
    tandem_proto::seal_envelope(outbound, &params, &body).unwrap()
}

#[test]
fn forged_replayed_and_unlisted_envelopes_are_dropped_and_nothing_is_stored() {
    let world = World::new();
    let url = world.url();
    let alice_account: tandem_crypto::AccountId = open(&world.alice_phone)
        .status()
        .unwrap()
        .account
        .unwrap()
        .parse()
        .unwrap();
    let bob_account: tandem_crypto::AccountId = open(&world.bob_phone)
        .status()
        .unwrap()
        .account
        .unwrap()
        .parse()
        .unwrap();
    let alice = tandem_crypto::DeviceId::primary(alice_account);
    let inbox = format!("tandem/v1/dev/{}/in", alice.broker_name());
    let alice_phone = Running::start(&world.alice_phone, &url);
    let bob = Running::start(&world.bob_phone, &url);

    // Mallory reads Alice's retained device list and listens on her inbox (no ACL here).
    let mut mallory = Mallory::connect(&url);
    mallory.subscribe(&format!("tandem/v1/dev/{}/devices", alice.broker_name()));
    let alice_list = tandem_crypto::SignedDeviceList::from_bytes(&mallory.next_message())
        .unwrap()
        .verify(&alice_account)
        .unwrap();
    mallory.subscribe(&inbox);

    bob.send("Alice", "The real one");
    alice_phone.wait_for("Bob's message", is_message("The real one"));
    let captured = mallory.next_message();

    // A replay of Bob's envelope, one claiming to be Bob's phone sealed with other keys, and
    // one from a device Bob's list does not hold.
    mallory.publish(&inbox, captured);
    let forged = forged_envelope(
        alice,
        &alice_list,
        tandem_crypto::DeviceId::primary(bob_account),
        "Forged",
    );
    mallory.publish(&inbox, forged);
    let unlisted = forged_envelope(
        alice,
        &alice_list,
        tandem_crypto::DeviceId::new(bob_account, 7),
        "Unlisted",
    );
    mallory.publish(&inbox, unlisted);
    // A real message after them: once it is in, the bad ones were handled before it.
    bob.send("Alice", "The real two");
    alice_phone.wait_for("Bob's second message", is_message("The real two"));
    while let Ok(event) = alice_phone.events.try_recv() {
        assert!(
            !matches!(&event, Event::Message { .. } | Event::Update { .. }),
            "nothing else shows: {event:?}"
        );
    }
    drop((alice_phone, bob));
    assert_eq!(
        texts(&open(&world.alice_phone), "Bob"),
        vec![
            ("The real one".to_owned(), false),
            ("The real two".to_owned(), false)
        ]
    );
}

#[test]
fn a_contacts_new_device_gets_the_next_message_and_an_unlinked_one_gets_nothing_new() {
    let world = World::new();
    let url = world.url();
    let alice_phone = Running::start(&world.alice_phone, &url);
    let bob = Running::start(&world.bob_phone, &url);

    // Bob links a laptop while his phone runs: the scan hands the new list to the running
    // session, which publishes it and sends the laptop its history.
    let bob_laptop = world.dir.path().join("bob-laptop");
    link(&world.bob_phone, &bob_laptop, &url);
    alice_phone.wait_for("Bob's new device list", |e| {
        matches!(e, Event::Devices { devices: 2, .. })
    });
    let laptop = Running::start(&bob_laptop, &url);
    alice_phone.send("Bob", "Hi Bob's laptop");
    laptop.wait_for(
        "Alice's message on the new laptop",
        is_message("Hi Bob's laptop"),
    );

    // Bob unlinks it; Alice learns the new list and seals nothing more for it.
    let laptop_id = open(&bob_laptop).status().unwrap().device.unwrap();
    let report = runtime()
        .block_on(open(&world.bob_phone).unlink(&laptop_id, None))
        .unwrap();
    assert_eq!(report.unlinked, laptop_id);
    alice_phone.wait_for("Bob's shorter device list", |e| {
        matches!(e, Event::Devices { devices: 1, .. })
    });
    drop(laptop);
    let mut mallory = Mallory::connect(&url);
    mallory.subscribe(&format!("tandem/v1/dev/{laptop_id}/in"));
    alice_phone.send("Bob", "Only for the phone");
    bob.wait_for(
        "the message on Bob's phone",
        is_message("Only for the phone"),
    );
    let events = &mut mallory.events;
    let stray = mallory.runtime.block_on(async {
        let until = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(event) = tokio::time::timeout_at(until, events.poll()).await {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) = event {
                return Some(p);
            }
        }
        None
    });
    assert!(
        stray.is_none(),
        "nothing reaches the unlinked laptop's inbox: {stray:?}"
    );
}

#[test]
fn typing_shows_on_the_other_side_and_a_dropped_connection_reads_offline() {
    let world = World::new();
    let url = world.url();
    let alice_phone = Running::start(&world.alice_phone, &url);
    let bob = Running::start(&world.bob_phone, &url);
    alice_phone.wait_for(
        "Bob online",
        |e| matches!(e, Event::Presence { online: true, name, .. } if name == "Bob"),
    );
    // Bob watches Alice's presence once he holds her device list: then he can seal to her.
    bob.wait_for(
        "Alice online",
        |e| matches!(e, Event::Presence { online: true, name, .. } if name == "Alice"),
    );
    bob.ask(Request::Typing {
        chat: "Alice".into(),
        on: true,
    });
    alice_phone.wait_for(
        "Bob typing",
        |e| matches!(e, Event::Typing { from, on: true, .. } if from == "Bob"),
    );
    // Bob's process goes away without a goodbye: the broker publishes his Last Will.
    drop(bob);
    alice_phone.wait_for(
        "Bob offline",
        |e| matches!(e, Event::Presence { online: false, name, .. } if name == "Bob"),
    );
    // Typing is never stored.
    assert!(texts(&open(&world.alice_phone), "Bob").is_empty());
}

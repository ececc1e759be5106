#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The engine's linking API as a front end uses it, in one process over the embedded broker:
//! Alice's phone and her laptop, each on its own thread with its own runtime (as two programs
//! would be), real encrypted stores in temporary homes.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tandem_crypto::rng::SeedableRng as _;
use tandem_engine::{
    Engine, Error, Event, KeychainUse, LinkOptions, PlanBound, QrSchedule, ServeUntil, SyncReport,
};
use tandem_net::EmbeddedBroker;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct World {
    broker: EmbeddedBroker,
    _dir: tempfile::TempDir,
    phone_home: std::path::PathBuf,
    desktop_home: std::path::PathBuf,
}

impl World {
    /// A broker and Alice's phone holding `messages` generated messages in `chats` chats.
    fn new(chats: usize, messages: usize) -> Self {
        let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let phone_home = dir.path().join("phone");
        let desktop_home = dir.path().join("desktop");
        let phone = Engine::open_with(&phone_home, KeychainUse::Off).unwrap();
        phone.init_primary("Alice", None).unwrap();
        phone.generate(chats, messages, 3).unwrap();
        Self {
            broker,
            _dir: dir,
            phone_home,
            desktop_home,
        }
    }

    fn url(&self) -> String {
        self.broker.url().to_string()
    }

    fn phone(&self) -> Engine {
        Engine::open_with(&self.phone_home, KeychainUse::Off).unwrap()
    }

    fn desktop(&self) -> Engine {
        Engine::open_with(&self.desktop_home, KeychainUse::Off).unwrap()
    }

    /// The laptop starts linking on its own thread; `watch` sees every event it reports.
    /// Returns the thread and the first code's link text.
    fn spawn_desktop(
        &self,
        schedule: QrSchedule,
        mut watch: impl FnMut(&Event) + Send + 'static,
    ) -> (
        thread::JoinHandle<tandem_engine::Result<SyncReport>>,
        String,
    ) {
        let (codes, first_code) = mpsc::channel::<String>();
        let options = LinkOptions {
            broker: self.url(),
            name: "Alice's laptop".into(),
            platform: "linux".into(),
            schedule,
            sync_timeout: Some(Duration::from_secs(60)),
        };
        let desktop_home = self.desktop_home.clone();
        let desktop = thread::spawn(move || {
            let engine = Engine::open_with(&desktop_home, KeychainUse::Off).unwrap();
            runtime().block_on(engine.link(&options, &mut |event| {
                if let Event::Code { link, .. } = event {
                    let _ = codes.send(link.clone());
                }
                watch(event);
            }))
        });
        let link = first_code.recv_timeout(Duration::from_secs(10)).unwrap();
        (desktop, link)
    }

    /// The laptop shows its code; the phone scans the first one, possibly edited by `tamper`.
    /// Returns both sides' outcomes.
    fn link(
        &self,
        tamper: impl FnOnce(String) -> String + Send + 'static,
        schedule: QrSchedule,
    ) -> (
        tandem_engine::Result<SyncReport>,
        tandem_engine::Result<SyncReport>,
    ) {
        let (desktop, link) = self.spawn_desktop(schedule, |_| {});
        let phone = self.phone();
        let scanned = runtime().block_on(async {
            let link = Engine::parse_link(&tamper(link))?;
            phone
                .scan(link, PlanBound::default(), &mut |_, _| true, &mut |_| {})
                .await
        });
        (desktop.join().unwrap(), scanned)
    }
}

fn quick_expiry() -> QrSchedule {
    QrSchedule {
        first_ms: 1_500,
        every_ms: 1_000,
        total_ms: 2_500,
    }
}

#[test]
fn a_linked_laptop_holds_exactly_the_phones_history() {
    let world = World::new(6, 3_000);
    let (desktop, phone) = world.link(|l| l, QrSchedule::default());
    let desktop = desktop.unwrap();
    assert_eq!(phone.unwrap(), desktop);
    assert_eq!(desktop.messages, 3_000);

    let (phone, laptop) = (world.phone(), world.desktop());
    assert_eq!(laptop.chats().unwrap(), phone.chats().unwrap());
    for chat in phone.chats().unwrap() {
        assert_eq!(
            laptop.history(&chat.id, 10_000, None).unwrap(),
            phone.history(&chat.id, 10_000, None).unwrap(),
            "chat {}",
            chat.name
        );
    }
    let status = laptop.status().unwrap();
    assert!(status.linked);
    assert_eq!(status.mode, "multi");
    assert_eq!(status.sync.state, "complete");
    assert_eq!(
        status.device.unwrap(),
        format!("{}.1", status.account.unwrap())
    );
    assert_eq!(phone.devices().unwrap().len(), 2);
    assert_eq!(laptop.store_integrity().unwrap(), Vec::<String>::new());
}

#[test]
fn a_scan_with_the_wrong_secret_is_refused_and_changes_nothing() {
    let world = World::new(1, 10);
    let (desktop, phone) = world.link(
        |link| {
            let at = link.find("secret=").unwrap() + "secret=".len();
            let mut tampered = link.clone();
            // Another valid-looking secret: 43 base64url characters.
            tampered.replace_range(at..at + 43, &"A".repeat(43));
            tampered
        },
        quick_expiry(),
    );
    let phone_error = phone.unwrap_err().to_string();
    assert!(
        phone_error.contains("refused") && phone_error.contains("secret"),
        "{phone_error}"
    );
    let desktop_error = desktop.unwrap_err().to_string();
    assert_eq!(desktop_error, "QR code expired, try again");
    assert_eq!(world.phone().devices().unwrap().len(), 1);
    let laptop = world.desktop().status().unwrap();
    assert!(!laptop.linked);
    assert_eq!(laptop.messages, 0);
}

#[test]
fn an_unlinked_laptop_learns_it_on_its_next_connection_and_erases_itself() {
    let world = World::new(2, 200);
    let (desktop, _) = world.link(|l| l, QrSchedule::default());
    let device = world.desktop().status().unwrap().device.unwrap();
    assert_eq!(desktop.unwrap().messages, 200);

    let report = runtime()
        .block_on(world.phone().unlink(&device, Some(&world.url())))
        .unwrap();
    assert_eq!(report.unlinked, device);
    assert_eq!(world.phone().devices().unwrap().len(), 1);

    let laptop = world.desktop();
    let outcome = runtime().block_on(laptop.sync(Some(Duration::from_secs(20)), &mut |_| {}));
    assert!(matches!(outcome, Err(Error::Unlinked)), "{outcome:?}");
    laptop.erase().unwrap();
    let after = world.desktop().status().unwrap();
    assert!(!after.linked);
    assert_eq!((after.chats, after.messages), (0, 0));
}

#[test]
fn a_laptop_that_logs_out_is_removed_from_the_phones_devices() {
    let world = World::new(1, 50);
    let (desktop, _) = world.link(|l| l, QrSchedule::default());
    assert_eq!(desktop.unwrap().messages, 50);
    let device = world.desktop().status().unwrap().device.unwrap();

    // The phone serves, as it does whenever it is online.
    let phone_home = world.phone_home.clone();
    let url = world.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (events_tx, events) = mpsc::channel::<Event>();
    let server = thread::spawn(move || {
        let phone = Engine::open_with(&phone_home, KeychainUse::Off).unwrap();
        let mut forward = |e: &Event| {
            let _ = events_tx.send(e.clone());
        };
        runtime().block_on(async {
            tokio::select! {
                r = phone.serve(Some(&url), ServeUntil::Stopped, &mut forward) => r,
                _ = stopped => Ok(()),
            }
        })
    });

    // The laptop says goodbye, then erases itself.
    let laptop = world.desktop();
    assert!(
        runtime()
            .block_on(laptop.leave(Duration::from_secs(10)))
            .unwrap()
    );
    laptop.erase().unwrap();
    assert!(!world.desktop().status().unwrap().linked);

    // The phone unlinked it: a new device list without it.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(Event::Devices { devices: 1, .. }) => break,
            Ok(_) => {}
            Err(e) => panic!("the phone never unlinked the laptop: {e}"),
        }
    }
    stop.send(()).unwrap();
    server.join().unwrap().unwrap();
    let phone = world.phone();
    assert!(phone.devices().unwrap().iter().all(|d| d.id != device));

    // A primary cannot log out; a fresh home has nothing to leave.
    let refused = runtime().block_on(phone.leave(Duration::from_secs(1)));
    assert!(matches!(refused, Err(Error::BadInput(_))), "{refused:?}");
    let fresh = world.desktop();
    let nothing = runtime().block_on(fresh.leave(Duration::from_secs(1)));
    assert!(matches!(nothing, Err(Error::NotLinked)), "{nothing:?}");
}

#[test]
fn older_messages_come_a_page_at_a_time_while_the_phone_serves() {
    let world = World::new(1, 400);
    // A bounded plan: only the newest messages of each chat now.
    let (desktop, link) = world.spawn_desktop(QrSchedule::default(), |_| {});
    let link = Engine::parse_link(&link).unwrap();
    let bound = PlanBound {
        since_ms: Some(i64::MAX),
    };
    runtime()
        .block_on(
            world
                .phone()
                .scan(link, bound, &mut |_, _| true, &mut |_| {}),
        )
        .unwrap();
    assert_eq!(desktop.join().unwrap().unwrap().messages, 20);

    // Offline phone: a clear error.
    let laptop = world.desktop();
    let chat = laptop.chats().unwrap()[0].id.clone();
    let offline = runtime().block_on(laptop.fetch_older(&chat, 1, Duration::from_secs(1)));
    assert!(
        matches!(offline, Err(Error::PhoneOffline { .. })),
        "{offline:?}"
    );

    // The phone serves; two pages of 50 arrive, older than what the laptop had.
    let phone_home = world.phone_home.clone();
    let url = world.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = thread::spawn(move || {
        let phone = Engine::open_with(&phone_home, KeychainUse::Off).unwrap();
        let mut quiet = |_: &Event| {};
        runtime().block_on(async {
            tokio::select! {
                r = phone.serve(Some(&url), ServeUntil::Stopped, &mut quiet) => r,
                _ = stopped => Ok(()),
            }
        })
    });
    let fetched = runtime()
        .block_on(laptop.fetch_older(&chat, 2, Duration::from_secs(10)))
        .unwrap();
    assert_eq!((fetched.fetched, fetched.more), (100, true));
    let all = runtime()
        .block_on(laptop.fetch_older(&chat, 100, Duration::from_secs(10)))
        .unwrap();
    assert_eq!((all.fetched, all.more), (280, false));
    stop.send(()).unwrap();
    server.join().unwrap().unwrap();
    assert_eq!(
        laptop.history(&chat, 1_000, None).unwrap(),
        world.phone().history(&chat, 1_000, None).unwrap()
    );
}

#[test]
fn a_broker_restart_mid_sync_loses_nothing_and_duplicates_nothing() {
    let mut world = World::new(8, 12_000);
    let addr = world.broker.local_addr();
    let (progressed, third_chunk) = mpsc::channel::<()>();
    let (desktop, link) = world.spawn_desktop(QrSchedule::default(), move |event| {
        if let Event::Progress { chunks_done: 3, .. } = event {
            let _ = progressed.send(());
        }
    });
    let link = Engine::parse_link(&link).unwrap();
    let phone_home = world.phone_home.clone();
    let phone = thread::spawn(move || {
        let phone = Engine::open_with(&phone_home, KeychainUse::Off).unwrap();
        runtime().block_on(phone.scan(link, PlanBound::default(), &mut |_, _| true, &mut |_| {}))
    });

    // The broker goes away with everything in flight, and comes back empty on the same port.
    third_chunk.recv_timeout(Duration::from_secs(30)).unwrap();
    let old = std::mem::replace(
        &mut world.broker,
        EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap(),
    );
    old.stop();
    world.broker = EmbeddedBroker::start(addr).unwrap();

    let desktop = desktop.join().unwrap().unwrap();
    let phone = phone.join().unwrap().unwrap();
    assert_eq!(desktop, phone);
    assert_eq!(desktop.messages, 12_000);
    let (laptop, phone) = (world.desktop(), world.phone());
    assert_eq!(laptop.status().unwrap().messages, 12_000);
    assert_eq!(laptop.chats().unwrap(), phone.chats().unwrap());
    assert_eq!(laptop.store_integrity().unwrap(), Vec::<String>::new());
}

#[test]
fn a_laptop_stopped_right_after_its_answer_finishes_the_link_at_its_next_sync() {
    let world = World::new(3, 1_500);
    let (codes, first_code) = mpsc::channel::<String>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = LinkOptions {
        broker: world.url(),
        name: "Alice's laptop".into(),
        platform: "linux".into(),
        schedule: QrSchedule::default(),
        sync_timeout: Some(Duration::from_secs(60)),
    };
    let desktop_home = world.desktop_home.clone();
    let desktop = thread::spawn(move || {
        let engine = Engine::open_with(&desktop_home, KeychainUse::Off).unwrap();
        let mut on = |event: &Event| {
            if let Event::Code { link, .. } = event {
                let _ = codes.send(link.clone());
            }
        };
        // The laptop stops the moment the phone has linked it: before or after it saw the
        // phone's confirmation, whichever the race gives.
        runtime().block_on(async {
            tokio::select! {
                r = engine.link(&options, &mut on) => Some(r),
                _ = stopped => None,
            }
        })
    });
    let link =
        Engine::parse_link(&first_code.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    let phone_home = world.phone_home.clone();
    let phone = thread::spawn(move || {
        let phone = Engine::open_with(&phone_home, KeychainUse::Off).unwrap();
        let mut stop = Some(stop);
        runtime().block_on(
            phone.scan(link, PlanBound::default(), &mut |_, _| true, &mut |event| {
                if matches!(event, Event::DeviceLinked { .. })
                    && let Some(stop) = stop.take()
                {
                    let _ = stop.send(());
                }
            }),
        )
    });
    let first = desktop.join().unwrap();
    assert!(
        first.is_none(),
        "the laptop was stopped before its sync ended: {first:?}"
    );

    let laptop = world.desktop();
    // (Usually it stopped before the confirmation arrived: then it holds only a pending link,
    // which `sync` finishes from the account's retained device list.)
    let report = runtime()
        .block_on(laptop.sync(Some(Duration::from_secs(60)), &mut |_| {}))
        .unwrap();
    assert_eq!(report.messages, 1_500);
    assert_eq!(phone.join().unwrap().unwrap(), report);
    let status = laptop.status().unwrap();
    assert!(status.linked);
    assert_eq!(status.messages, 1_500);
    assert_eq!(laptop.chats().unwrap(), world.phone().chats().unwrap());
}

/// Publishes `payload` retained on `topic`, as anyone with access to the broker could.
fn publish_retained(url: &str, topic: &str, payload: Vec<u8>) {
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
    runtime().block_on(async {
        let (client, mut events) = rumqttc::AsyncClient::new(options, 10);
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload)
            .await
            .unwrap();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), events.poll())
                .await
                .unwrap()
                .unwrap();
            if matches!(event, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) {
                break;
            }
        }
    });
}

#[test]
fn forged_and_older_device_lists_on_the_accounts_topic_change_nothing() {
    let world = World::new(2, 300);
    // The account's first list (the phone alone), kept from before the link.
    let account = world.phone().status().unwrap().account.unwrap();
    let account_id: tandem_crypto::AccountId = account.parse().unwrap();
    let (phone_store, _) =
        tandem_store::Store::open_in_home_with(&world.phone_home, KeychainUse::Off).unwrap();
    let first_list = phone_store
        .device_list(account_id.as_bytes())
        .unwrap()
        .unwrap()
        .signed;
    drop(phone_store);
    let (desktop, _) = world.link(|l| l, QrSchedule::default());
    assert_eq!(desktop.unwrap().messages, 300);
    let laptop = world.desktop();
    let device = laptop.status().unwrap().device.unwrap();

    // Mallory replaces the retained list: first with garbage, then with a list of her own
    // account, then with the account's older list, which does not hold the laptop.
    let topic = format!("tandem/v1/dev/{account}-0/devices");
    let mut rng = tandem_crypto::rng::ChaCha20Rng::seed_from_u64(9);
    let mallory = tandem_crypto::AccountKey::generate(&mut rng);
    let mallory_device = tandem_crypto::DeviceKeys::generate(&mut rng);
    let certificate = tandem_crypto::DeviceCertificate::issue(
        &mallory,
        &mallory_device,
        tandem_crypto::DeviceDescription {
            index: 0,
            keys: mallory_device.public_keys(),
            name: "Mallory".into(),
            platform: "linux".into(),
            linked_at_ms: 1,
        },
    )
    .unwrap();
    let forged = tandem_crypto::DeviceList::new(mallory.public_key(), 99, 1, vec![certificate])
        .unwrap()
        .sign(&mallory)
        .unwrap()
        .to_bytes()
        .unwrap();
    for payload in [b"not a list".to_vec(), forged, first_list] {
        publish_retained(&world.url(), &topic, payload);
        let outcome = runtime().block_on(laptop.sync(Some(Duration::from_secs(20)), &mut |_| {}));
        assert_eq!(outcome.unwrap().messages, 300);
        let status = laptop.status().unwrap();
        assert!(status.linked, "the laptop must stay linked");
        assert_eq!(status.device.unwrap(), device);
        assert_eq!(status.messages, 300);
    }
}

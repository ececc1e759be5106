#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Linking a desktop in bridge mode, as a front end uses the engine, over a real embedded
//! broker: Alice's phone and her office desktop, each on its own thread with its own runtime,
//! real encrypted stores in temporary homes. The desktop becomes no device of the account: the
//! phone authorises its bridge key, the desktop keeps the phone's bridge URL and key.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tandem_engine::{
    BridgeLinkReport, DeviceView, Engine, Error, Event, KeychainUse, LinkOptions, QrSchedule,
};
use tandem_net::EmbeddedBroker;

const BRIDGE_URL: &str = "ws://192.168.1.20:7070";

/// The desktop's thread: how its link ended, and every event it reported.
type DesktopThread = thread::JoinHandle<(tandem_engine::Result<BridgeLinkReport>, Vec<Event>)>;

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
    /// A broker, Alice's phone with some history, a contact (Bob) and a bridge URL.
    fn new() -> Self {
        let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let phone_home = dir.path().join("phone");
        let desktop_home = dir.path().join("desktop");
        let phone = Engine::open_with(&phone_home, KeychainUse::Off).unwrap();
        phone.init_primary("Alice", None).unwrap();
        phone.generate(2, 40, 3).unwrap();
        let bob = Engine::open_with(&dir.path().join("bob"), KeychainUse::Off).unwrap();
        bob.init_primary("Bob", None).unwrap();
        phone
            .contact_add(&bob.contact_link().unwrap(), Some("Bob"))
            .unwrap();
        phone.set_bridge_url(BRIDGE_URL).unwrap();
        Self {
            broker,
            _dir: dir,
            phone_home,
            desktop_home,
        }
    }

    fn phone(&self) -> Engine {
        Engine::open_with(&self.phone_home, KeychainUse::Off).unwrap()
    }

    fn desktop(&self) -> Engine {
        Engine::open_with(&self.desktop_home, KeychainUse::Off).unwrap()
    }

    /// The desktop starts linking in bridge mode on its own thread. Returns the thread and
    /// the first code's link text.
    fn spawn_desktop(&self, schedule: QrSchedule) -> (DesktopThread, String) {
        let (codes, first_code) = mpsc::channel::<String>();
        let options = LinkOptions {
            broker: self.broker.url().to_string(),
            name: "Office desktop".into(),
            platform: "linux".into(),
            schedule,
            sync_timeout: None,
        };
        let home = self.desktop_home.clone();
        let desktop = thread::spawn(move || {
            let engine = Engine::open_with(&home, KeychainUse::Off).unwrap();
            let mut seen = Vec::new();
            let result = runtime().block_on(engine.link_bridge(&options, &mut |event| {
                if let Event::Code { link, .. } = event {
                    let _ = codes.send(link.clone());
                }
                seen.push(event.clone());
            }));
            (result, seen)
        });
        let link = first_code.recv_timeout(Duration::from_secs(10)).unwrap();
        (desktop, link)
    }

    /// The desktop shows its code; the phone scans the first one, possibly edited by
    /// `tamper`. Returns both sides' outcomes and the desktop's events.
    fn link(
        &self,
        tamper: impl FnOnce(String) -> String,
        schedule: QrSchedule,
    ) -> (
        tandem_engine::Result<BridgeLinkReport>,
        Vec<Event>,
        tandem_engine::Result<DeviceView>,
        String,
    ) {
        let (desktop, link) = self.spawn_desktop(schedule);
        let phone = self.phone();
        let scanned = runtime().block_on(async {
            let link = Engine::parse_link(&tamper(link.clone()))?;
            phone.scan_bridge(link, &mut |_, _| true, &mut |_| {}).await
        });
        let (linked, events) = desktop.join().unwrap();
        (linked, events, scanned, link)
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
fn a_desktop_links_in_bridge_mode_and_the_account_keeps_its_devices() {
    let world = World::new();
    let phone = world.phone();
    let devices_before = phone.devices().unwrap();
    let (url, phone_key) = phone.bridge_endpoint().unwrap().unwrap();
    assert_eq!(url, BRIDGE_URL);
    drop(phone);

    let (linked, events, scanned, link) = world.link(|l| l, QrSchedule::default());
    assert!(link.contains("mode=bridge&"), "{link}");
    assert!(!link.contains("&sig="), "{link}");
    let report = linked.unwrap();
    let authorised = scanned.unwrap();

    // The desktop holds the phone's bridge URL and key, its own key, the account.
    assert_eq!(report.bridge_url, BRIDGE_URL);
    assert_eq!(report.phone_key, phone_key.to_string());
    assert_eq!(report.account_name, "Alice");
    assert!(events.contains(&Event::Linked {
        account: report.account.clone(),
        device: report.desktop_key.clone(),
    }));
    let desktop = world.desktop();
    assert_eq!(desktop.bridge_link().unwrap(), Some(report.clone()));
    let status = desktop.status().unwrap();
    assert_eq!(status.mode, "bridge");
    assert!(status.linked);
    assert_eq!(status.account.as_deref(), Some(report.account.as_str()));
    assert_eq!(status.device, None, "a bridge desktop is no device");
    assert_eq!(status.bridge_url.as_deref(), Some(BRIDGE_URL));
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["mode"], "bridge");
    assert_eq!(json["bridge_url"], BRIDGE_URL);
    // No history yet: it comes over the bridge.
    assert_eq!(status.messages, 0);
    assert_eq!(desktop.store_integrity().unwrap(), Vec::<String>::new());

    // The phone authorised exactly that key; the account's device list did not change.
    assert_eq!(authorised.id, report.desktop_key);
    assert_eq!(authorised.kind, "bridge");
    assert_eq!(authorised.name, "Office desktop");
    let phone = world.phone();
    let after = phone.devices().unwrap();
    let (account_devices, bridges): (Vec<_>, Vec<_>) =
        after.into_iter().partition(|d| d.kind == "device");
    assert_eq!(account_devices, devices_before);
    assert_eq!(bridges, vec![authorised]);
    assert_eq!(
        phone.status().unwrap().account.as_deref(),
        Some(report.account.as_str())
    );

    // A bridge desktop does not link twice.
    let again = runtime().block_on(desktop.link_bridge(
        &LinkOptions {
            broker: world.broker.url().to_string(),
            name: "x".into(),
            platform: "linux".into(),
            schedule: quick_expiry(),
            sync_timeout: None,
        },
        &mut |_| {},
    ));
    assert!(
        matches!(again, Err(Error::AlreadyLinked { .. })),
        "{again:?}"
    );

    // Its sync goes over the bridge (no phone serves it here: it times out), and logging
    // out tells nobody (no session).
    let sync = runtime().block_on(desktop.sync(Some(Duration::from_secs(1)), &mut |_| {}));
    assert!(matches!(&sync, Err(Error::SyncTimeout { .. })), "{sync:?}");
    assert!(
        !runtime()
            .block_on(desktop.leave(Duration::from_secs(1)))
            .unwrap()
    );

    // Unlinking it on the phone revokes its key, and leaves the device list alone.
    let version = runtime()
        .block_on(phone.unlink(&report.desktop_key[..12], None))
        .unwrap();
    assert_eq!(version.unlinked, report.desktop_key);
    assert_eq!(version.kind, "bridge");
    let left = phone.devices().unwrap();
    assert_eq!(left, devices_before);
    // Once revoked, the key names nothing.
    let again = runtime().block_on(phone.unlink(&report.desktop_key, None));
    assert!(
        matches!(&again, Err(Error::BadInput(why)) if why.contains("bridge desktop")),
        "{again:?}"
    );
}

#[test]
fn a_bridge_scan_with_the_wrong_secret_fails_cleanly_and_stores_nothing() {
    let world = World::new();
    let (linked, _, scanned, _) = world.link(
        |link| {
            let at = link.find("secret=").unwrap() + "secret=".len();
            let mut tampered = link.clone();
            tampered.replace_range(at..at + 43, &"A".repeat(43));
            tampered
        },
        quick_expiry(),
    );
    let phone_error = scanned.unwrap_err().to_string();
    assert!(
        phone_error.contains("refused") && phone_error.contains("secret"),
        "{phone_error}"
    );
    assert_eq!(
        linked.unwrap_err().to_string(),
        "QR code expired, try again"
    );
    let phone = world.phone();
    assert!(phone.devices().unwrap().iter().all(|d| d.kind == "device"));
    let desktop = world.desktop();
    let status = desktop.status().unwrap();
    assert!(!status.linked);
    assert_eq!(status.mode, "unlinked");
    assert_eq!(desktop.bridge_link().unwrap(), None);
}

#[test]
fn an_expired_bridge_code_is_refused_before_going_online_and_stores_nothing() {
    let world = World::new();
    let (desktop, link) = world.spawn_desktop(quick_expiry());
    let (linked, _) = desktop.join().unwrap();
    assert_eq!(
        linked.unwrap_err().to_string(),
        "QR code expired, try again"
    );
    let phone = world.phone();
    let scanned = runtime().block_on(phone.scan_bridge(
        Engine::parse_link(&link).unwrap(),
        &mut |_, _| panic!("an expired code is never shown for confirmation"),
        &mut |_| {},
    ));
    let error = scanned.unwrap_err();
    assert!(error.to_string().contains("expired"), "{error}");
    assert!(phone.devices().unwrap().iter().all(|d| d.kind == "device"));
    assert!(!world.desktop().status().unwrap().linked);
}

#[test]
fn the_phone_needs_a_bridge_url_and_never_mixes_the_modes() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let bare = Engine::open_with(&dir.path().join("p"), KeychainUse::Off).unwrap();
    bare.init_primary("Carol", None).unwrap();
    assert_eq!(bare.bridge_endpoint().unwrap(), None);
    for bad in ["http://x", "ws://", "ws://a b"] {
        assert!(
            matches!(bare.set_bridge_url(bad), Err(Error::BadInput(_))),
            "{bad}"
        );
    }

    let (desktop, link) = world.spawn_desktop(quick_expiry());
    let parsed = Engine::parse_link(&link).unwrap();
    // A phone without a bridge URL refuses before showing anything.
    let refused = runtime().block_on(bare.scan_bridge(
        parsed.clone(),
        &mut |_, _| panic!("not asked"),
        &mut |_| {},
    ));
    assert!(
        matches!(&refused, Err(Error::BadInput(why)) if why.contains("--bridge-url")),
        "{refused:?}"
    );
    // The multi-device scan refuses a bridge code.
    let refused = runtime().block_on(world.phone().scan(
        parsed,
        tandem_engine::PlanBound::default(),
        &mut |_, _| panic!("not asked"),
        &mut |_| {},
    ));
    assert!(matches!(refused, Err(Error::BadInput(_))), "{refused:?}");
    let (linked, _) = desktop.join().unwrap();
    assert!(linked.is_err());
    // Cancelling at the confirmation stores nothing either.
    let (desktop, link) = world.spawn_desktop(quick_expiry());
    let cancelled = runtime().block_on(world.phone().scan_bridge(
        Engine::parse_link(&link).unwrap(),
        &mut |name, _| {
            assert_eq!(name, "Office desktop");
            false
        },
        &mut |_| {},
    ));
    assert!(matches!(cancelled, Err(Error::Cancelled)), "{cancelled:?}");
    let _ = desktop.join().unwrap();
    assert!(
        world
            .phone()
            .devices()
            .unwrap()
            .iter()
            .all(|d| d.kind == "device")
    );
}

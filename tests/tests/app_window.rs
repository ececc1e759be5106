#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Alice uses Tandem's real desktop window (`tandem-desktop`, driven over WebDriver on a
//! virtual screen), with her real phone (`tandem-phone`) and a real broker (`tandem broker`):
//!
//! - she links the app by its QR code (the phone reads the PNG the app writes in demo mode),
//!   watches the sync and finds her phone's chats;
//! - she scrolls her biggest chat back to its very first message, the window never holding
//!   more than a few hundred messages;
//! - she searches, picks a hit, and the chat opens at that message, which flashes;
//! - she writes to Bob in the composer: the ticks go to delivered, and her phone and Bob's
//!   have the message;
//! - Bob writes while the window is in the background: a desktop notification;
//! - the broker goes away: an offline banner, and her history still opens and searches;
//! - she links the app through her phone instead (bridge mode): her chats come over the
//!   phone's bridge, and when the phone goes away the banner says so, her chats still open,
//!   and what she writes waits until the phone is back.
//!
//! One story per test, one at a time (each runs its own screen, bus, broker and processes).
//! With `TANDEM_SCREENSHOTS=1` the stories also write the screenshots in `docs/screenshots/`.
//! Every wait is bounded and every failure shows the page and what the programs printed.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_tests::app::{App, AppOptions, Display, NotificationWatch, SessionBus, testid};
use tandem_tests::cli::{Background, BrokerProcess, Home, Run, wait_for_file};

/// Longest wait for one step of the window (a screen shown, a list filled).
const SHOWN: Duration = Duration::from_secs(30);
/// Longest wait for one step of the command-line programs.
const STEP: Duration = Duration::from_secs(30);
/// Longest wait for a link and its whole history sync.
const SYNC: Duration = Duration::from_secs(120);
/// The time zone the fixtures are read in.
const TZ: &str = "Europe/Berlin";
/// The import crate's fixtures: a group (11 messages) and a direct chat (12).
const FIXTURES: [&str; 2] = [
    "WhatsApp Chat - Garden Club.txt",
    "WhatsApp Chat with Ana Lima.txt",
];
/// The generated history: its chats and messages.
const GENERATED_CHATS: &str = "5";
const GENERATED: usize = 3000;
/// A larger history when screenshots are taken, so that the sync lasts long enough to be
/// photographed.
const GENERATED_FOR_SCREENSHOTS: usize = 60_000;
/// A word only one imported message holds (Garden Club: "I have tomatoes.").
const IMPORTED_WORD: &str = "tomatoes";
/// Most messages the conversation may hold in its DOM at once.
const DOM_LIMIT: usize = 400;
/// The desktop's name when it is linked by the command line.
const DESKTOP_NAME: &str = "Alice's laptop";

/// The stories run one at a time: each starts a WebKit app, which two shared cores feel.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// Helpers: every check shows the whole output of the run it is about.

/// Unwraps a harness result, showing the error's text (the page, the programs' output).
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

fn list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => panic!("not a list: {other}"),
    }
}

/// `[data-testid="ID"][NAME="VALUE"]`.
fn with_attr(id: &str, name: &str, value: &str) -> String {
    format!("{}[{name}=\"{value}\"]", testid(id))
}

fn screenshots_on() -> bool {
    std::env::var(tandem_tests::app::SCREENSHOTS).as_deref() == Ok("1")
}

/// One story's stage: its turn on the machine (one story at a time), its clock and its
/// broker (a `tandem broker` on a free port).
struct Stage {
    _turn: MutexGuard<'static, ()>,
    started: Instant,
    broker: Option<BrokerProcess>,
    url: String,
}

impl Stage {
    fn new() -> Self {
        let turn = one_at_a_time();
        let broker = must(BrokerProcess::start("127.0.0.1:0"));
        let url = format!("mqtt://{}", broker.addr());
        Self {
            _turn: turn,
            started: Instant::now(),
            broker: Some(broker),
            url,
        }
    }

    /// Alice's phone with her history, its chats, and a desktop home linked to it.
    fn linked_alice(&self) -> (Phone, Vec<Value>, Home) {
        let phone = Phone::alice(&self.url, GENERATED);
        let chats = phone.chats();
        let desktop = phone.link_desktop(&self.url);
        (phone, chats, desktop)
    }

    /// Stops the broker (on SIGINT; it must exit cleanly).
    fn stop_broker(&mut self) {
        if let Some(broker) = self.broker.take() {
            let stopped = must(broker.stop("INT", STEP));
            assert!(stopped.status.success(), "{stopped:?}");
        }
    }

    /// Stops the broker if it still runs, and prints how long the story took.
    fn end(mut self, story: &str) {
        self.stop_broker();
        eprintln!(
            "story {story:?} took {:.1} s",
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// The app's window on its own virtual screen and session bus (the app goes first when it
/// is dropped, then the bus and the screen).
struct Window {
    app: App,
    display: Display,
    bus: SessionBus,
}

impl Window {
    /// The app on `home`, through `broker`.
    fn open(home: &Home, broker: &str) -> Self {
        let display = must(Display::start());
        let bus = must(SessionBus::start());
        let options = AppOptions::new(home.path())
            .broker(broker)
            .qr_png(home.scratch().join("qr.png"));
        let app = must(App::launch(&display, &bus, &options));
        Self { app, display, bus }
    }

    /// The app on a linked `home`, once it lists exactly `chats` and is online (no banner).
    fn listing(home: &Home, broker: &str, chats: &[Value]) -> Self {
        let window = Self::open(home, broker);
        wait_for_chats(&window, &names(chats), SHOWN);
        must(window.wait_gone(&testid("banner"), SHOWN));
        window
    }
}

impl std::ops::Deref for Window {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

// ---------------------------------------------------------------------------------------
// Phones.

/// A phone: its home, its account.
struct Phone {
    home: Home,
    account: String,
}

impl Phone {
    /// `tandem-phone init --name NAME --broker URL`.
    fn new(name: &str, broker: &str) -> Self {
        let home = must(Home::new());
        let created = ok_json(must(
            home.phone(["--json", "init", "--name", name, "--broker", broker]),
        ));
        let account = text(&created, "account").to_owned();
        Self { home, account }
    }

    /// Alice's phone: her two exports and `generated` synthetic messages in five chats.
    fn alice(broker: &str, generated: usize) -> Self {
        let phone = Self::new("Alice", broker);
        let fixtures =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/import/tests/fixtures");
        let mut import = vec!["--json".to_owned(), "import".to_owned()];
        import.extend(
            FIXTURES
                .iter()
                .map(|f| fixtures.join(f).to_string_lossy().into_owned()),
        );
        import.extend(["--tz".to_owned(), TZ.to_owned()]);
        ok(must(phone.home.phone(import)));
        let messages = generated.to_string();
        ok(must(phone.home.phone([
            "generate",
            "--chats",
            GENERATED_CHATS,
            "--messages",
            &messages,
            "--seed",
            "7",
        ])));
        phone
    }

    /// Imports every chat export of `../shared/data/exports` (real exports from public
    /// parsers' test suites, WhatsApp and Telegram), where the checkout has that folder beside
    /// it, as CI's does; returns how many files were imported. A file the importer refuses
    /// must be refused with a reason (one error line naming it), and the rest still import.
    fn import_shared_exports(&self) -> usize {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/exports");
        let Ok(found) = std::fs::read_dir(&folder) else {
            return 0;
        };
        let mut files: Vec<String> = Vec::new();
        let mut folders: Vec<std::path::PathBuf> = found.flatten().map(|e| e.path()).collect();
        while let Some(path) = folders.pop() {
            if path.is_dir() {
                folders.extend(
                    std::fs::read_dir(&path)
                        .unwrap()
                        .flatten()
                        .map(|e| e.path()),
                );
            } else if path.extension().is_some_and(|e| e == "txt" || e == "json") {
                files.push(path.to_string_lossy().into_owned());
            }
        }
        files.sort();
        let mut args = vec!["--json".to_owned(), "import".to_owned()];
        args.extend(["--tz".to_owned(), TZ.to_owned()]);
        args.extend(files.iter().cloned());
        let run = must(self.home.phone(args));
        let imported = must(run.json_lines()).len();
        let refused = run.errors();
        assert_eq!(
            imported + refused.len(),
            files.len(),
            "every file is imported or refused with a reason: {run}"
        );
        imported
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        ok_json(must(self.home.phone(all)))
    }

    /// The chats, as `chats --json` lists them.
    fn chats(&self) -> Vec<Value> {
        list(self.json(&["chats"]))
    }

    fn messages(&self) -> u64 {
        self.json(&["status"])["messages"].as_u64().unwrap()
    }

    /// Every message of a chat, oldest first, read page by page.
    fn whole_history(&self, chat: &str) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let mut args = vec!["history", chat, "--limit", "500"];
            let before;
            if let Some(first) = all.first() {
                before = text(first, "id").to_owned();
                args.extend(["--before", &before]);
            }
            let page = list(self.json(&args));
            let short = page.len() < 500;
            all.splice(0..0, page);
            if short {
                return all;
            }
        }
    }

    fn search(&self, query: &str) -> Vec<Value> {
        list(self.json(&["search", query, "--limit", "50"]))
    }

    fn history(&self, chat: &str, limit: usize) -> Vec<Value> {
        let limit = limit.to_string();
        list(self.json(&["history", chat, "--limit", &limit]))
    }

    /// Adds `other` as a contact named `name`.
    fn add_contact(&self, other: &Phone, name: &str) {
        let link = text(&other.json(&["contact-link"]), "link").to_owned();
        let added = self.json(&["contact-add", &link, "--name", name]);
        assert_eq!(added["account"], other.account.as_str(), "{added}");
    }

    /// `run --json` in the background, once it serves.
    fn run(&self) -> Background {
        let mut run = must(self.home.spawn_phone(["--json", "run"]));
        must(run.wait_for("the phone online", STEP, |e| {
            e["event"] == "serving" || e["event"] == "online"
        }));
        run
    }

    /// A desktop home linked to this phone by the command line (`tandem link` and
    /// `tandem-phone scan --link`), its history synced.
    fn link_desktop(&self, broker: &str) -> Home {
        let desktop = must(Home::new());
        let mut link = must(desktop.spawn_companion([
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
                self.home
                    .spawn_phone(["--json", "scan", "--link", &link_text, "--yes"]),
            )
            .finish(SYNC),
        );
        assert!(scanned.success(), "{scanned}");
        let linked = must(link.finish(SYNC));
        assert!(linked.success(), "{linked}");
        desktop
    }
}

/// Stops a background run with SIGTERM.
fn stop(run: Background) {
    let _ = run.signal("TERM");
    let _ = run.finish(STEP);
}

/// The chat a phone lists under `name`.
fn chat_named<'a>(chats: &'a [Value], name: &str) -> &'a Value {
    chats
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no chat {name:?} in {chats:?}"))
}

// ---------------------------------------------------------------------------------------
// The window.

/// Waits until the chat list has loaded and lists exactly `names`; returns the rows' names.
fn wait_for_chats(app: &App, names: &BTreeSet<String>, timeout: Duration) {
    let want: Vec<&String> = names.iter().collect();
    let shown = app.wait_until(
        &format!("the chat rows {want:?}"),
        timeout,
        "const list = document.querySelector('[data-testid=\"chat-list\"]');
         if (!list || list.getAttribute('data-loaded') !== 'true') return null;
         const names = [...document.querySelectorAll('[data-testid=\"chat-row\"]')]
           .map(r => r.getAttribute('data-name')).sort();
         const want = arguments[0];
         return JSON.stringify(names) === JSON.stringify(want) ? names : null;",
        &[json!(want)],
    );
    must(shown);
}

/// The phone's chat names.
fn names(chats: &[Value]) -> BTreeSet<String> {
    chats.iter().map(|c| text(c, "name").to_owned()).collect()
}

/// Opens a chat by clicking its row; waits for its conversation and its first messages.
fn open_chat(app: &App, chat_id: &str) {
    must(app.click(&with_attr("chat-row", "data-chat-id", chat_id)));
    must(app.wait_for(&with_attr("conversation", "data-chat-id", chat_id), SHOWN));
    must(app.wait_for(&testid("message"), SHOWN));
}

/// The ids of the messages the conversation holds, in document order.
fn rendered_ids(app: &App) -> Vec<String> {
    must(app.attrs(&testid("message"), "data-message-id"))
        .into_iter()
        .map(|id| id.unwrap_or_default())
        .collect()
}

/// Checks that `shown` is a run of consecutive messages of `all` (ids, oldest first).
fn assert_consecutive(shown: &[String], all: &[String], when: &str) {
    let Some(first) = shown.first() else {
        panic!("{when}: no message shown");
    };
    let start = all
        .iter()
        .position(|id| id == first)
        .unwrap_or_else(|| panic!("{when}: the shown message {first} is not in the chat"));
    let expected = all.get(start..start + shown.len());
    assert_eq!(
        expected,
        Some(shown),
        "{when}: the conversation does not show consecutive messages in order"
    );
}

/// Records every state of the `sync-progress` bar from now on (it may come and go between
/// two polls): `window.__syncSeen`, a list of `[done, total]`.
const WATCH_SYNC: &str = "
    window.__syncSeen = [];
    const note = () => {
      const bar = document.querySelector('[data-testid=\"sync-progress\"]');
      if (bar && window.__syncSeen.length < 10000) {
        window.__syncSeen.push([bar.getAttribute('data-done'), bar.getAttribute('data-total')]);
      }
    };
    new MutationObserver(note).observe(document.documentElement, {
      subtree: true, childList: true, attributes: true,
      attributeFilter: ['data-done', 'data-total'],
    });
    note();
    return true;";

// ---------------------------------------------------------------------------------------
// (a) Link by QR code.

#[test]
fn the_app_links_by_its_qr_code_syncs_and_lists_the_phones_chats() {
    let stage = Stage::new();
    let generated = if screenshots_on() {
        GENERATED_FOR_SCREENSHOTS
    } else {
        GENERATED
    };
    let phone = Phone::alice(&stage.url, generated);
    let real = phone.import_shared_exports();
    eprintln!("the phone imported {real} real chat exports");
    let total = phone.messages();
    let chats = phone.chats();
    let desktop = must(Home::new());
    let app = Window::open(&desktop, &stage.url);

    // A fresh home: the link screen with a QR code, its link in `data-link`.
    must(app.wait_for(&testid("link-screen"), SHOWN));
    let link = must(app.wait_until(
        "a QR code with its link",
        SHOWN,
        "const qr = document.querySelector('[data-testid=\"qr\"]');
         const link = qr && qr.getAttribute('data-link');
         return link && link.startsWith('tandem://link?') && qr.querySelector('svg') ? link : null;",
        &[],
    ));
    assert!(
        link.as_str().unwrap().contains("name="),
        "the link names the device: {link}"
    );
    assert_eq!(
        must(app.count(&testid("chat-row"))),
        0,
        "no chats before linking"
    );
    // The app writes the code it shows to the PNG (demo mode), for the phone's camera.
    let qr_png = desktop.scratch().join("qr.png");
    must(wait_for_file(&qr_png, SHOWN));
    must(app.screenshot("link"));

    // The phone scans the PNG and confirms; the window shows the sync, then the chats.
    must(app.eval(WATCH_SYNC, Vec::new()));
    let qr_arg = qr_png.to_string_lossy().into_owned();
    let mut scan = must(
        phone
            .home
            .spawn_phone(["--json", "scan", "--qr-png", &qr_arg, "--yes"]),
    );
    if screenshots_on() {
        must(app.wait_for(&testid("sync-progress"), SYNC));
        must(app.wait_for(&testid("chat-row"), SYNC));
        must(app.screenshot("sync"));
    }
    let linked = must(scan.wait_for_event("linked", SYNC));
    assert_eq!(linked["device"], format!("{}.1", phone.account), "{linked}");
    let scanned = must(scan.finish(SYNC));
    assert!(scanned.success(), "{scanned}");
    must(app.wait_gone(&testid("link-screen"), SHOWN));
    wait_for_chats(&app, &names(&chats), SYNC);
    must(app.wait_gone(&testid("sync-progress"), SYNC));

    // The progress bar was shown, counting up to the phone's whole history.
    let seen = list(must(app.eval("return window.__syncSeen", Vec::new())));
    assert!(
        !seen.is_empty(),
        "the sync progress was never shown (the phone sent {total} messages)"
    );
    let totals: BTreeSet<String> = seen
        .iter()
        .filter_map(|s| s[1].as_str().map(str::to_owned))
        .collect();
    assert!(
        totals.contains(&total.to_string()),
        "the progress bar's total is not the phone's {total} messages: {seen:?}"
    );
    let done: Vec<u64> = seen
        .iter()
        .filter_map(|s| s[0].as_str().and_then(|d| d.parse().ok()))
        .collect();
    assert!(
        done.windows(2).all(|w| w[0] <= w[1]),
        "the progress went back: {done:?}"
    );

    // Every row carries its chat's id and name as the phone has them.
    let rows: BTreeSet<(String, String)> = must(app.attrs(&testid("chat-row"), "data-chat-id"))
        .into_iter()
        .zip(must(app.attrs(&testid("chat-row"), "data-name")))
        .map(|(id, name)| (id.unwrap_or_default(), name.unwrap_or_default()))
        .collect();
    let want: BTreeSet<(String, String)> = chats
        .iter()
        .map(|c| (text(c, "id").to_owned(), text(c, "name").to_owned()))
        .collect();
    assert_eq!(rows, want, "the chat rows");
    // The UI said once that its chat list is up.
    must(app.wait_for_output("ready: chat_list", SHOWN));
    must(app.screenshot("chats"));

    // Settings: this device and the phone.
    must(app.click(&testid("settings-button")));
    must(app.wait_for(&testid("settings-panel"), SHOWN));
    must(app.wait_until(
        "the phone and this computer in the device list",
        SHOWN,
        "return document.querySelectorAll('[data-testid=\"device-row\"]').length >= 2",
        &[],
    ));
    must(app.screenshot("settings"));

    drop(app);
    stage.end("(a) link by QR code");
}

// ---------------------------------------------------------------------------------------
// (b) Scroll back to the oldest message.

#[test]
fn the_biggest_chat_scrolls_back_to_its_first_message_with_a_bounded_window() {
    let stage = Stage::new();
    let (phone, chats, desktop) = stage.linked_alice();
    let biggest = chats
        .iter()
        .max_by_key(|c| c["messages"].as_u64().unwrap_or(0))
        .unwrap();
    let chat_id = text(biggest, "id").to_owned();
    let all: Vec<String> = phone
        .whole_history(&chat_id)
        .iter()
        .map(|m| text(m, "id").to_owned())
        .collect();
    assert_eq!(all.len() as u64, biggest["messages"].as_u64().unwrap());
    let (oldest, newest) = (all.first().unwrap().clone(), all.last().unwrap().clone());

    let app = Window::listing(&desktop, &stage.url, &chats);
    let ready = must(app.wait_for_output("ready: chat_list", SHOWN));
    eprintln!("the app printed {ready:?}");

    // Opening the chat shows its newest messages at once.
    open_chat(&app, &chat_id);
    must(app.wait_for(&with_attr("message", "data-message-id", &newest), SHOWN));
    let first_view = rendered_ids(&app);
    assert_consecutive(&first_view, &all, "on opening");
    assert!(
        first_view.len() < all.len(),
        "the whole chat ({} messages) was loaded at once",
        all.len()
    );

    // Scroll to the top again and again until the first message is there.
    let scroller = testid("message-scroller");
    let mut most = first_view.len();
    let mut steps = 0;
    let mut shown = first_view;
    while !shown.contains(&oldest) {
        steps += 1;
        assert!(
            steps <= all.len() / 10 + 20,
            "still not at the first message after {steps} scrolls; shown {} from {:?}",
            shown.len(),
            shown.first()
        );
        let before = shown.first().cloned().unwrap_or_default();
        must(app.eval(
            "const s = document.querySelector(arguments[0]); s.scrollTop = 0;
             s.dispatchEvent(new Event('scroll'));",
            vec![json!(scroller)],
        ));
        must(app.wait_until(
            "older messages after scrolling to the top",
            SHOWN,
            "const first = document.querySelector('[data-testid=\"message\"]');
             const id = first && first.getAttribute('data-message-id');
             return id && id !== arguments[0] ? id : null;",
            &[json!(before)],
        ));
        shown = rendered_ids(&app);
        most = most.max(shown.len());
        assert!(
            shown.len() <= DOM_LIMIT,
            "the conversation holds {} messages (limit {DOM_LIMIT})",
            shown.len()
        );
        assert_consecutive(&shown, &all, &format!("after scroll {steps}"));
    }
    eprintln!(
        "scrolled {} messages back to the first in {steps} steps; at most {most} in the DOM",
        all.len()
    );

    drop(app);
    stage.end("(b) scroll to the oldest message");
}

// ---------------------------------------------------------------------------------------
// (c) Search and jump.

/// A message of `history` (oldest first) that searching for its whole text finds on the
/// phone among a few hits, from the oldest ones: `(message, query)`.
fn findable(phone: &Phone, history: &[Value]) -> (Value, String) {
    for message in history.iter().take(200) {
        let query = text(message, "text");
        // Typed key by key: short, plain ASCII (no emoji for the WebDriver keyboard).
        if message["kind"] != "text"
            || query.len() > 60
            || !query.is_ascii()
            || query.split_whitespace().count() < 3
        {
            continue;
        }
        let hits = phone.search(query);
        if hits.len() <= 5 && hits.iter().any(|h| h["id"] == message["id"]) {
            return (message.clone(), query.to_owned());
        }
    }
    panic!("no old message of the chat is found by its own text");
}

/// Types `query` into the search box and clicks the hit for `message`; checks that its chat
/// opens with it shown and flashing.
fn search_and_jump(app: &App, query: &str, message: &Value, screenshot: Option<&str>) {
    let id = text(message, "id");
    let chat = text(message, "chat");
    must(app.clear(&testid("search-box")));
    must(app.type_text(&testid("search-box"), query));
    let hit = with_attr("search-hit", "data-message-id", id);
    must(app.wait_for(&hit, SHOWN));
    assert_eq!(
        must(app.attr(&hit, "data-chat-id")).as_deref(),
        Some(chat),
        "the hit names its chat"
    );
    if let Some(name) = screenshot {
        must(app.screenshot(name));
    }
    must(app.click(&hit));
    must(app.wait_for(&with_attr("conversation", "data-chat-id", chat), SHOWN));
    let target = with_attr("message", "data-message-id", id);
    must(app.wait_until(
        &format!("the message {id} shown and flashing"),
        SHOWN,
        "const m = document.querySelector(arguments[0]);
         return m && (m.getAttribute('data-flash') === 'true' || m.classList.contains('flash'));",
        &[json!(target)],
    ));
}

#[test]
fn a_search_hit_opens_its_chat_at_that_message_which_flashes() {
    let stage = Stage::new();
    let (phone, chats, desktop) = stage.linked_alice();
    // A word of an imported message.
    let imported = phone.search(IMPORTED_WORD);
    assert_eq!(imported.len(), 1, "{imported:?}");
    let imported = imported[0].clone();
    // One of the first messages of the biggest chat, hundreds of pages from its newest.
    let biggest = chats
        .iter()
        .max_by_key(|c| c["messages"].as_u64().unwrap_or(0))
        .unwrap();
    let history = phone.whole_history(text(biggest, "id"));
    let (old, old_query) = findable(&phone, &history);

    let app = Window::listing(&desktop, &stage.url, &chats);

    search_and_jump(&app, IMPORTED_WORD, &imported, Some("search"));
    // The flash ends; the imported group chat as it reads (media, system and deleted
    // messages among the texts).
    must(app.wait_gone("[data-flash=\"true\"]", SHOWN));
    must(app.screenshot("conversation"));
    let shown = rendered_ids(&app);
    assert!(
        shown.len() <= DOM_LIMIT,
        "{} messages in the DOM",
        shown.len()
    );
    search_and_jump(&app, &old_query, &old, None);
    let shown = rendered_ids(&app);
    assert!(
        shown.len() <= DOM_LIMIT,
        "{} messages in the DOM",
        shown.len()
    );
    assert!(
        !shown.contains(&text(history.last().unwrap(), "id").to_owned()),
        "jumping to an old message loaded the chat from its newest end"
    );

    drop(app);
    stage.end("(c) search and jump");
}

// ---------------------------------------------------------------------------------------
// (d) and (e): Alice, her desktop and Bob.

/// Alice's phone (with history) and Bob's, contacts of each other, and Alice's desktop linked
/// afterwards (so it knows Bob).
struct Friends {
    alice: Phone,
    bob: Phone,
    desktop: Home,
}

impl Friends {
    fn new(url: &str) -> Self {
        let alice = Phone::alice(url, GENERATED);
        let bob = Phone::new("Bob", url);
        alice.add_contact(&bob, "Bob");
        bob.add_contact(&alice, "Alice");
        let desktop = alice.link_desktop(url);
        Self {
            alice,
            bob,
            desktop,
        }
    }
}

/// The message in the conversation whose text contains `needle`: `(id, status)`.
const FIND_MESSAGE: &str = "
    const m = [...document.querySelectorAll('[data-testid=\"message\"]')]
      .find(e => e.textContent.includes(arguments[0]));
    return m ? [m.getAttribute('data-message-id'), m.getAttribute('data-status')] : null;";

#[test]
fn a_message_written_in_the_composer_is_delivered_to_bob_and_reaches_the_phone() {
    let stage = Stage::new();
    let friends = Friends::new(&stage.url);
    let chats = friends.alice.chats();
    let bob_chat = text(chat_named(&chats, "Bob"), "id").to_owned();
    let alice_run = friends.alice.run();
    let bob_run = friends.bob.run();

    let app = Window::listing(&friends.desktop, &stage.url, &chats);
    must(app.click(&with_attr("chat-row", "data-chat-id", &bob_chat)));
    must(app.wait_for(&with_attr("conversation", "data-chat-id", &bob_chat), SHOWN));

    let hello = "Hello Bob, written in the desktop window";
    must(app.type_text(&testid("composer"), &format!("{hello}\n")));
    let shown = must(app.wait_until(
        "the new message in the conversation",
        SHOWN,
        FIND_MESSAGE,
        &[json!(hello)],
    ));
    let id = shown[0].as_str().unwrap().to_owned();
    assert_eq!(
        must(app.eval(
            "return document.querySelector(arguments[0]).value",
            vec![json!(testid("composer"))]
        )),
        json!(""),
        "the composer is emptied after sending"
    );
    // Its ticks: sent once the broker has it, delivered once Bob's phone has it.
    let selector = with_attr("message", "data-message-id", &id);
    for status in ["sent", "delivered"] {
        must(app.wait_until(
            &format!("the message {status}"),
            SHOWN,
            "const m = document.querySelector(arguments[0]);
             const s = m && m.getAttribute('data-status');
             return s && arguments[1].includes(s);",
            &[
                json!(selector),
                json!(if status == "sent" {
                    vec!["sent", "delivered", "read"]
                } else {
                    vec!["delivered", "read"]
                }),
            ],
        ));
    }

    // Alice's phone has it as hers, and Bob has it from Alice.
    let on_phone = eventually("the message on Alice's phone", || {
        friends
            .alice
            .history(&bob_chat, 10)
            .into_iter()
            .find(|m| m["id"] == id.as_str())
    });
    assert_eq!(on_phone["text"], hello, "{on_phone}");
    assert_eq!(on_phone["from_me"], true, "{on_phone}");
    let on_bob = eventually("the message on Bob's phone", || {
        friends
            .bob
            .history("Alice", 10)
            .into_iter()
            .find(|m| m["id"] == id.as_str())
    });
    assert_eq!(on_bob["from_me"], false, "{on_bob}");
    assert_eq!(on_bob["text"], hello, "{on_bob}");

    drop(app);
    stop(alice_run);
    stop(bob_run);
    stage.end("(d) the composer");
}

/// Polls `check` every 200 ms until it returns `Some`, for at most [`STEP`].
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(done) = check() {
            return done;
        }
        assert!(started.elapsed() < STEP, "{what}: not within {STEP:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn bob_writes_while_the_window_is_in_the_background_and_a_notification_shows_it() {
    let stage = Stage::new();
    let friends = Friends::new(&stage.url);
    let chats = friends.alice.chats();
    let bob_chat = text(chat_named(&chats, "Bob"), "id").to_owned();

    // Bob's phone stays online, and learns that Alice now has a desktop too (her phone
    // published its new device list when it linked it): his messages go to both.
    let mut bob_run = must(friends.bob.home.spawn_phone(["--json", "run"]));
    let alice_account = friends.alice.account.clone();
    must(
        bob_run.wait_for("Alice's two devices on Bob's phone", STEP, |e| {
            e["event"] == "devices"
                && e["account"] == alice_account.as_str()
                && e["devices"].as_u64() >= Some(2)
        }),
    );

    let app = Window::listing(&friends.desktop, &stage.url, &chats);
    let notifications = must(NotificationWatch::start(&app.bus));
    let bob_row = with_attr("chat-row", "data-chat-id", &bob_chat);

    // While Alice looks at the window, Bob's message shows in it and nothing pops up.
    must(app.wait_until(
        "the window with the focus (it has it from the start)",
        SHOWN,
        "return document.hasFocus()",
        &[],
    ));
    let first = "Are you there, Alice?";
    ok(must(
        friends.bob.home.phone(["send", "Alice", first, "--wait"]),
    ));
    must(app.wait_until(
        "Bob's first message counted on his row",
        SHOWN,
        "const r = document.querySelector(arguments[0]);
         return r && Number(r.getAttribute('data-unread')) >= 1;",
        &[json!(bob_row)],
    ));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !notifications.calls().iter().any(|n| n.mentions(first)),
        "a notification while the window has the focus: {:?}",
        notifications.calls()
    );

    // Alice switches to another program; Bob writes again: a notification with his name
    // and his text.
    must(app.display.unfocus());
    must(app.wait_until(
        "the window without the focus",
        SHOWN,
        "return !document.hasFocus()",
        &[],
    ));
    let second = "Dinner at 8? Bring the tomatoes";
    let sending = Instant::now();
    ok(must(
        friends.bob.home.phone(["send", "Alice", second, "--wait"]),
    ));
    let shown = must(notifications.wait_for(second, SHOWN));
    eprintln!(
        "the notification came {} ms after Bob's send started: {shown:?}",
        sending.elapsed().as_millis()
    );
    assert_eq!(shown.summary(), "Bob", "the title is the chat: {shown:?}");
    assert_eq!(shown.body(), second, "the body is the text: {shown:?}");
    must(app.wait_until(
        "Bob's two messages counted on his row",
        SHOWN,
        "const r = document.querySelector(arguments[0]);
         return r && Number(r.getAttribute('data-unread')) >= 2;",
        &[json!(bob_row)],
    ));
    // The window shows both in Bob's chat.
    must(app.click(&bob_row));
    must(app.wait_until(
        "Bob's messages in his chat",
        SHOWN,
        FIND_MESSAGE,
        &[json!(second)],
    ));
    must(app.wait_until(
        "Bob's first message in his chat",
        SHOWN,
        FIND_MESSAGE,
        &[json!(first)],
    ));

    drop(app);
    stop(bob_run);
    stage.end("(e) a notification");
}

// ---------------------------------------------------------------------------------------
// (f) Offline.

#[test]
fn without_the_broker_the_window_says_offline_and_the_history_still_opens_and_searches() {
    let mut stage = Stage::new();
    let (phone, chats, desktop) = stage.linked_alice();
    let imported = phone.search(IMPORTED_WORD)[0].clone();
    // Online: no banner.
    let app = Window::listing(&desktop, &stage.url, &chats);

    stage.stop_broker();
    must(app.wait_for(&with_attr("banner", "data-state", "offline"), SHOWN));

    // Every chat still opens from the local store.
    for chat in &chats {
        open_chat(&app, text(chat, "id"));
    }
    must(app.screenshot("offline"));
    // And search still finds.
    search_and_jump(&app, IMPORTED_WORD, &imported, None);
    assert!(
        must(app.count(&with_attr("banner", "data-state", "offline"))) == 1,
        "the banner stays while offline"
    );

    drop(app);
    stage.end("(f) offline");
}

// ---------------------------------------------------------------------------------------
// (g) Through the phone (bridge mode).

/// The link of the QR code shown, once it is a bridge-mode one (`bridge`) or not.
fn shown_link(app: &App, what: &str, bridge: bool) -> String {
    let link = must(app.wait_until(
        what,
        SHOWN,
        "const qr = document.querySelector('[data-testid=\"qr\"]');
         const link = qr && qr.getAttribute('data-link');
         if (!link || !qr.querySelector('svg')) return null;
         return link.includes('mode=bridge') === arguments[0] ? link : null;",
        &[json!(bridge)],
    ));
    link.as_str().unwrap().to_owned()
}

/// The settings panel's mode and phone lines: `(data-mode, mode text, phone state)`.
fn settings_says(app: &App, phone: &str) -> (String, String) {
    must(app.click(&testid("settings-button")));
    must(app.wait_for(&testid("settings-panel"), SHOWN));
    must(app.wait_for(&with_attr("phone-reachable", "data-state", phone), SHOWN));
    let mode = must(app.attr(&testid("device-mode"), "data-mode")).unwrap_or_default();
    // The panel slides in: until it has, WebDriver's visible text can still be empty.
    let text = must(app.wait_until(
        "the device's mode in words",
        SHOWN,
        "const e = document.querySelector('[data-testid=\"device-mode\"]');
         const words = e && e.textContent.trim();
         return words ? words : null;",
        &[],
    ));
    let text = text.as_str().unwrap_or_default().to_owned();
    must(app.click("[aria-label=\"Close settings\"]"));
    must(app.wait_gone(&testid("settings-panel"), SHOWN));
    (mode, text)
}

#[test]
fn linked_through_the_phone_the_window_says_when_the_phone_is_gone_and_keeps_the_history() {
    let stage = Stage::new();
    let alice = Phone::new("Alice", &stage.url);
    let bob = Phone::new("Bob", &stage.url);
    alice.add_contact(&bob, "Bob");
    ok(must(alice.home.phone([
        "generate",
        "--chats",
        "3",
        "--messages",
        "300",
        "--seed",
        "6",
    ])));
    let chats = alice.chats();
    let bob_chat = text(chat_named(&chats, "Bob"), "id").to_owned();
    let mut phone =
        must(
            alice
                .home
                .spawn_phone(["--json", "run", "--bridge-listen", "127.0.0.1:0"]),
        );
    let listening = must(phone.wait_for("the bridge listening", STEP, |e| {
        e["event"] == "bridge_listening"
    }));
    let address = text(&listening, "address").to_owned();

    // The link screen offers both ways, "on its own" chosen; choosing "through your phone"
    // starts over with a bridge-mode code.
    let desktop = must(Home::new());
    let app = Window::open(&desktop, &stage.url);
    must(app.wait_for(&testid("link-screen"), SHOWN));
    let radios = must(app.eval(
        "const group = document.querySelector('[data-testid=\"link-mode\"]');
         return [group.getAttribute('role'),
                 ...[...group.querySelectorAll('input[type=radio]')]
                   .map(r => r.value + (r.checked ? ':checked' : ''))];",
        Vec::new(),
    ));
    assert_eq!(
        radios,
        json!(["radiogroup", "multi-device:checked", "bridge"]),
        "the mode choice"
    );
    let multi = shown_link(&app, "a multi-device code", false);
    must(app.click(&testid("link-mode-bridge")));
    let link = shown_link(&app, "a bridge-mode code", true);
    assert_ne!(link, multi);
    assert_eq!(
        must(app.eval(
            "return document.querySelector('[data-testid=\"link-mode\"] input:checked').value",
            Vec::new()
        )),
        json!("bridge")
    );

    // The phone scans it while it runs; the chats come over the bridge, no banner.
    let scanned = must(
        must(
            alice
                .home
                .spawn_phone(["--json", "scan", "--link", &link, "--yes"]),
        )
        .finish(SYNC),
    );
    assert!(scanned.success(), "{scanned}");
    must(app.wait_gone(&testid("link-screen"), SHOWN));
    wait_for_chats(&app, &names(&chats), SYNC);
    must(app.wait_gone(&testid("banner"), SHOWN));
    let (mode, said) = settings_says(&app, "reachable");
    assert_eq!(mode, "bridge");
    assert!(said.contains("Linked through your phone"), "{said}");

    // The phone goes away: the banner says so, in place of "offline".
    stop(phone);
    let unreachable = with_attr("banner", "data-state", "phone-unreachable");
    must(app.wait_for(&unreachable, SHOWN));
    let banner = must(app.text(&unreachable));
    assert!(
        banner.contains("Phone not reachable"),
        "the banner says {banner:?}"
    );
    assert_eq!(
        must(app.count(&with_attr("banner", "data-state", "offline"))),
        0
    );
    settings_says(&app, "unreachable");

    // Every chat with messages still opens from this computer's store.
    for chat in chats.iter().filter(|c| c["messages"].as_u64() > Some(0)) {
        open_chat(&app, text(chat, "id"));
    }
    must(app.screenshot("phone-unreachable"));

    // Alice writes to Bob meanwhile: the composer takes it, and it waits (pending).
    must(app.click(&with_attr("chat-row", "data-chat-id", &bob_chat)));
    must(app.wait_for(&with_attr("conversation", "data-chat-id", &bob_chat), SHOWN));
    let later = "Written while my phone was away";
    must(app.type_text(&testid("composer"), &format!("{later}\n")));
    let shown = must(app.wait_until(
        "the new message, pending",
        SHOWN,
        FIND_MESSAGE,
        &[json!(later)],
    ));
    assert_eq!(shown[1], "pending", "{shown}");
    let id = shown[0].as_str().unwrap().to_owned();
    assert_eq!(must(app.count(&unreachable)), 1, "the banner stays");

    // The phone comes back on its address (and Bob is online): the banner goes and the
    // message goes out through it, under the id the window showed.
    let bob_run = bob.run();
    let mut back = must(
        alice
            .home
            .spawn_phone(["--json", "run", "--bridge-listen", &address]),
    );
    must(back.wait_for("the bridge listening again", STEP, |e| {
        e["event"] == "bridge_listening"
    }));
    must(app.wait_gone(&testid("banner"), SHOWN));
    let on_phone = eventually("the message on Alice's phone", || {
        alice
            .history(&bob_chat, 5)
            .into_iter()
            .find(|m| m["text"] == later)
    });
    assert_eq!(on_phone["from_me"], true, "{on_phone}");
    assert_eq!(on_phone["id"], id.as_str(), "{on_phone}");
    // Once the broker took it from the phone, the window's clock turns into a tick. (Until
    // Bob's phone has run once, his devices are unknown and the message cannot leave: it stays
    // pending, rightly.)
    let ticked = must(app.wait_until(
        "the message no longer pending",
        SYNC,
        "const m = [...document.querySelectorAll('[data-testid=\"message\"]')]
           .find(e => e.textContent.includes(arguments[0]));
         const status = m && m.getAttribute('data-status');
         return status && status !== 'pending' ? [m.getAttribute('data-message-id'), status] : null;",
        &[json!(later)],
    ));
    assert_eq!(ticked[0], id.as_str(), "{ticked}");
    stop(back);
    stop(bob_run);

    drop(app);
    stage.end("(g) through the phone");
}

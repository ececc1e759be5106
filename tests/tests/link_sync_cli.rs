#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Alice links her desktop to her phone and gets her whole history on it (issue 3), driven
//! through the two programs as a user runs them: `tandem link` shows a QR code (a PNG or a
//! text file kept up to date at every rotation), `tandem-phone scan` reads it, asks, links and
//! serves the history sync; `tandem sync` finishes a sync that was cut; `tandem-phone run`
//! serves resumptions; `tandem-phone unlink` removes the desktop again.
//!
//! The stories: link by PNG over the embedded broker and by pasted text over Mosquitto, and
//! compare what both stores show (chats, every message, search hits); kill -9 the desktop at
//! several points of the sync, and the phone once, and resume to exactly the phone's
//! messages; a wrong secret, an expired code, a declined prompt and a link with a bad field
//! each change nothing; the previous code still links after a rotation; an unlinked desktop
//! learns it at its next sync and erases its copy.
//!
//! Real processes, real brokers, real encrypted stores in temporary homes. Every wait is
//! bounded and every failure shows what the programs printed.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_store::{Cursor, KeychainUse, Store};
use tandem_tests::cli::{Background, BrokerProcess, Home, Run, wait_for_file};
use tandem_tests::{Mosquitto, MosquittoOptions};

/// Longest wait for one expected step (a code shown, a link made, a progress event).
const STEP: Duration = Duration::from_secs(30);
/// Longest wait for a whole link-and-sync (debug builds on two shared cores).
const SYNC: Duration = Duration::from_secs(120);
/// The desktop's name, as the phone must show it.
const DESKTOP_NAME: &str = "Work laptop";
/// The time zone the fixtures are read in.
const TZ: &str = "Europe/Berlin";
/// The import crate's fixtures: 11 + 12 + 4 messages in three chats.
const FIXTURES: [&str; 3] = [
    "WhatsApp Chat - Garden Club.txt",
    "WhatsApp Chat with Ana Lima.txt",
    "arabic_ios_digits.txt",
];
const FIXTURE_MESSAGES: u64 = 11 + 12 + 4;
/// How many chats `generate` spreads its messages over.
const GENERATED_CHATS: &str = "12";

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

/// A run that must fail with exit code 1 and say `error: ...` on stderr; what it says, the
/// errors joined. (An error may follow an unanswered prompt on the same line.)
fn failed(run: &Run) -> String {
    assert_eq!(run.code(), Some(1), "expected exit code 1: {run}");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|line| line.split_once("error: ").map(|(_, error)| error))
        .collect();
    assert!(!errors.is_empty(), "no `error: ...` on stderr: {run}");
    errors.join("\n")
}

fn events(run: &Run) -> Vec<Value> {
    run.json_lines().unwrap_or_else(|e| panic!("{e}"))
}

fn event_name(event: &Value) -> &str {
    event["event"].as_str().unwrap_or("")
}

fn of_kind<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| event_name(e) == name).collect()
}

fn number(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {field:?} in {value}"))
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {value}"))
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Whether `field` occurs in `message` as a word of its own (`dh`, not the `dh` in `width`).
fn names_field(message: &str, field: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    message.match_indices(field).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + field.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// A `tandem broker` on a free port, and its URL.
fn embedded_broker() -> (BrokerProcess, String) {
    let broker = must(BrokerProcess::start("127.0.0.1:0"));
    let url = format!("mqtt://{}", broker.addr());
    (broker, url)
}

/// Alice's phone: her account, her three exports, and `generated` synthetic messages.
struct Phone {
    home: Home,
    account: String,
}

impl Phone {
    fn new(generated: usize) -> Self {
        let home = must(Home::new());
        let created = ok_json(must(home.phone(["init", "--name", "Alice", "--json"])));
        let account = text(&created, "account").to_owned();
        let fixtures =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/import/tests/fixtures");
        let mut import: Vec<OsString> = vec!["import".into()];
        import.extend(FIXTURES.iter().map(|f| fixtures.join(f).into_os_string()));
        import.extend(["--tz", TZ, "--json"].map(OsString::from));
        ok(must(home.phone(import)));
        if generated > 0 {
            let messages = generated.to_string();
            ok(must(home.phone([
                "generate",
                "--chats",
                GENERATED_CHATS,
                "--messages",
                &messages,
                "--seed",
                "7",
            ])));
        }
        let phone = Self { home, account };
        assert_eq!(
            phone.messages(),
            FIXTURE_MESSAGES + generated as u64,
            "the phone's history"
        );
        phone
    }

    /// `ACCOUNT.index`: the phone is `.0`, the first linked desktop `.1`.
    fn device(&self, index: u32) -> String {
        format!("{}.{index}", self.account)
    }

    fn status(&self) -> Value {
        ok_json(must(self.home.phone(["status", "--json"])))
    }

    fn messages(&self) -> u64 {
        number(&self.status(), "messages")
    }

    fn devices(&self) -> Vec<Value> {
        let devices = ok_json(must(self.home.phone(["--json", "devices"])));
        devices
            .as_array()
            .unwrap_or_else(|| panic!("`devices --json` is not an array: {devices}"))
            .clone()
    }

    /// Checks that the phone's device list is only the phone itself.
    fn assert_only_the_primary(&self) {
        let devices = self.devices();
        assert_eq!(devices.len(), 1, "{devices:?}");
        assert_eq!(devices[0]["id"], self.device(0), "{devices:?}");
        assert_eq!(devices[0]["primary"], true, "{devices:?}");
    }

    /// `tandem-phone --json scan ARGS...` in the background, stdin closed.
    fn scan(&self, args: &[&str]) -> Background {
        let mut all = vec!["--json", "scan"];
        all.extend_from_slice(args);
        must(self.home.spawn_phone(all))
    }

    /// `tandem-phone --json run` (the broker it remembers from the scan), once it serves.
    fn serve(&self) -> Background {
        let mut run = must(self.home.spawn_phone(["--json", "run"]));
        let serving = must(run.wait_for_event("serving", STEP));
        assert_eq!(serving["device"], self.device(0), "{serving}");
        assert!(
            serving["broker"]
                .as_str()
                .is_some_and(|b| b.starts_with("mqtt://")),
            "{serving}"
        );
        run
    }
}

/// Stops `tandem-phone run` with SIGTERM: it must exit 0.
fn stop_serving(mut run: Background) {
    assert!(
        must(run.try_wait()).is_none(),
        "`tandem-phone run` stopped by itself: {run}"
    );
    must(run.signal("TERM"));
    let stopped = must(run.finish(STEP));
    assert_eq!(
        stopped.code(),
        Some(0),
        "SIGTERM must stop it cleanly: {stopped}"
    );
}

/// `tandem --json link --broker URL --name "Work laptop" EXTRA...` in the background.
fn link(desktop: &Home, broker: &str, extra: &[&str]) -> Background {
    let mut args = vec!["--json", "link", "--broker", broker, "--name", DESKTOP_NAME];
    args.extend_from_slice(extra);
    must(desktop.spawn_companion(args))
}

/// `tandem --json sync --timeout 120` in the background.
fn sync(desktop: &Home) -> Background {
    must(desktop.spawn_companion(["--json", "sync", "--timeout", "120"]))
}

fn desktop_status(desktop: &Home) -> Value {
    ok_json(must(desktop.companion(["status", "--json"])))
}

/// Checks that the desktop holds no account and no history.
fn assert_unlinked_and_empty(desktop: &Home) {
    let status = desktop_status(desktop);
    assert_eq!(status["linked"], false, "{status}");
    assert_eq!(status["chats"], 0, "{status}");
    assert_eq!(status["messages"], 0, "{status}");
}

/// The first `code` event of a `tandem link` run, checked.
fn first_code(link: &mut Background) -> Value {
    let code = must(link.wait_for_event("code", STEP));
    assert_eq!(code["index"], 0, "{code}");
    assert!(text(&code, "link").starts_with("tandem://link?"), "{code}");
    let now = jiff::Timestamp::now().as_millisecond();
    let expires = code["expires_at"].as_i64().unwrap_or(0);
    assert!(
        expires > now,
        "a fresh code expires in the future: {code} (now {now})"
    );
    code
}

/// Waits until `file` holds exactly `link` and a newline (it is replaced at each rotation).
fn wait_for_text(file: &Path, link: &str) {
    must(wait_for_file(file, STEP));
    let want = format!("{link}\n");
    let started = Instant::now();
    loop {
        let now = std::fs::read_to_string(file).unwrap_or_default();
        if now == want {
            return;
        }
        assert!(
            started.elapsed() < STEP,
            "{} holds {now:?}, not the current code {want:?}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// The link's parameters, for reading and for forging.

fn params(link: &str) -> Vec<(String, String)> {
    let (_, query) = link
        .split_once('?')
        .unwrap_or_else(|| panic!("no query in {link:?}"));
    query
        .split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = raw.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A parameter of the link, decoded.
fn param(link: &str, key: &str) -> String {
    let (_, raw) = params(link)
        .into_iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key:?} in {link:?}"));
    percent_decode(&raw)
}

/// The link with `key` set to `value` as written (or removed), the other parameters as they
/// were.
fn with_param(link: &str, key: &str, value: Option<&str>) -> String {
    let (prefix, _) = link.split_once('?').unwrap();
    let mut pairs: Vec<String> = Vec::new();
    let mut seen = false;
    for (k, v) in params(link) {
        if k == key {
            seen = true;
            if let Some(value) = value {
                pairs.push(format!("{k}={value}"));
            }
        } else {
            pairs.push(format!("{k}={v}"));
        }
    }
    assert!(seen, "no {key:?} in {link:?}");
    format!("{prefix}?{}", pairs.join("&"))
}

/// Another secret that looks just as valid: two different characters swapped (same
/// alphabet, same length), leaving the last one alone (a strict base64 decoder checks its
/// low bits).
fn another_secret(secret: &str) -> String {
    let mut chars: Vec<char> = secret.chars().collect();
    let last = chars.len().saturating_sub(1);
    let other = (1..last)
        .find(|&j| chars[j] != chars[0])
        .unwrap_or_else(|| panic!("cannot vary the secret {secret:?}"));
    chars.swap(0, other);
    let forged: String = chars.into_iter().collect();
    assert_ne!(forged, secret);
    forged
}

// Events and stores.

/// Checks the `progress` events of one side of a sync that ran without a break: the chunk
/// and message counts only grow, the totals never change, the messages total is `total`,
/// and the last one says everything arrived. Returns the number of chunks.
fn check_progress(events: &[Value], total: u64, side: &str) -> u64 {
    let progress = of_kind(events, "progress");
    assert!(
        !progress.is_empty(),
        "{side}: no progress events: {events:?}"
    );
    let chunks_total = number(progress[0], "chunks_total");
    let (mut chunks, mut messages) = (0, 0);
    for p in &progress {
        assert_eq!(number(p, "chunks_total"), chunks_total, "{side}: {p}");
        assert_eq!(number(p, "messages_total"), total, "{side}: {p}");
        let (c, m) = (number(p, "chunks_done"), number(p, "messages_done"));
        assert!(
            c >= chunks && m >= messages,
            "{side}: progress went back at {p}"
        );
        assert!(
            c <= chunks_total && m <= total,
            "{side}: beyond the total at {p}"
        );
        (chunks, messages) = (c, m);
    }
    assert_eq!(
        (chunks, messages),
        (chunks_total, total),
        "{side}: the last progress event is not the whole history: {progress:?}"
    );
    chunks_total
}

/// Checks the `synced` event that ends a run: last, with these counts.
fn check_synced(events: &[Value], chunks: u64, total: u64, side: &str) {
    let last = events.last().unwrap_or_else(|| panic!("{side}: no events"));
    assert_eq!(
        *last,
        json!({"event": "synced", "chunks": chunks, "messages": total}),
        "{side}: the last event"
    );
}

/// Checks the `code` events of a `tandem link` run: numbered from 0, each a different link.
fn check_codes(events: &[Value]) -> Vec<String> {
    let codes = of_kind(events, "code");
    assert!(!codes.is_empty(), "no code shown: {events:?}");
    let mut links = Vec::new();
    for (index, code) in codes.iter().enumerate() {
        assert_eq!(number(code, "index"), index as u64, "{codes:?}");
        let link = text(code, "link");
        assert!(link.starts_with("tandem://link?"), "{code}");
        assert!(
            !links.iter().any(|l| l == link),
            "a code shown twice: {codes:?}"
        );
        links.push(link.to_owned());
    }
    let expiries: Vec<i64> = codes
        .iter()
        .map(|c| c["expires_at"].as_i64().unwrap())
        .collect();
    assert!(
        expiries.windows(2).all(|w| w[0] <= w[1]),
        "no code expires before the one before it: {codes:?}"
    );
    links
}

/// Checks everything both sides printed for a link and sync that ran without a break, and
/// returns the number of chunks.
fn check_clean_link(phone: &Phone, scanned: &Run, linked: &Run, link_text: &str) -> u64 {
    let total = phone.messages();
    let platform = param(link_text, "platform");
    assert!(!platform.is_empty(), "{link_text}");
    assert_eq!(param(link_text, "name"), DESKTOP_NAME, "{link_text}");

    // The phone showed the desktop, linked it as its first other device, and sent it all.
    let phone_events = events(scanned);
    assert_eq!(
        phone_events.first(),
        Some(&json!({"event": "device", "name": DESKTOP_NAME, "platform": platform})),
        "the phone shows the device first: {scanned}"
    );
    let phone_linked = of_kind(&phone_events, "linked");
    assert_eq!(phone_linked.len(), 1, "{scanned}");
    assert_eq!(
        *phone_linked[0],
        json!({"event": "linked", "device": phone.device(1), "name": DESKTOP_NAME, "platform": platform}),
        "{scanned}"
    );
    let chunks = check_progress(&phone_events, total, "the phone");
    check_synced(&phone_events, chunks, total, "the phone");

    // The desktop showed its code, was linked, and received it all.
    let desktop_events = events(linked);
    assert_eq!(event_name(&desktop_events[0]), "code", "{linked}");
    let codes = check_codes(&desktop_events);
    assert!(codes.iter().any(|c| c == link_text), "{linked}");
    let desktop_linked = of_kind(&desktop_events, "linked");
    assert_eq!(desktop_linked.len(), 1, "{linked}");
    assert_eq!(
        *desktop_linked[0],
        json!({"event": "linked", "account": phone.account, "device": phone.device(1)}),
        "{linked}"
    );
    let after_link = desktop_events
        .iter()
        .position(|e| event_name(e) == "linked")
        .unwrap();
    assert!(
        of_kind(&desktop_events[after_link..], "code").is_empty(),
        "no code is shown once linked: {linked}"
    );
    assert_eq!(
        check_progress(&desktop_events, total, "the desktop"),
        chunks,
        "both sides count the same chunks"
    );
    check_synced(&desktop_events, chunks, total, "the desktop");
    chunks
}

/// Checks the desktop's status after a complete sync of the phone's history.
fn check_complete(phone: &Phone, desktop: &Home, chunks: Option<u64>) {
    let status = desktop_status(desktop);
    let phone_status = phone.status();
    let total = number(&phone_status, "messages");
    assert_eq!(status["account"], phone.account.as_str(), "{status}");
    assert_eq!(status["device"], phone.device(1), "{status}");
    assert_eq!(status["linked"], true, "{status}");
    assert_eq!(status["mode"], "multi", "{status}");
    assert_eq!(status["chats"], phone_status["chats"], "{status}");
    assert_eq!(number(&status, "messages"), total, "{status}");
    let sync = &status["sync"];
    assert_eq!(sync["state"], "complete", "{status}");
    assert_eq!(
        (number(sync, "done"), number(sync, "total")),
        (total, total),
        "{status}"
    );
    assert_eq!(
        number(sync, "chunks_done"),
        number(sync, "chunks_total"),
        "{status}"
    );
    if let Some(chunks) = chunks {
        assert_eq!(number(sync, "chunks_total"), chunks, "{status}");
    }
}

/// Checks that the phone's device list holds the phone and the desktop it linked.
fn check_devices(phone: &Phone, link_text: &str) {
    let devices = phone.devices();
    assert_eq!(devices.len(), 2, "{devices:?}");
    let primary = devices.iter().find(|d| d["id"] == phone.device(0));
    let desktop = devices.iter().find(|d| d["id"] == phone.device(1));
    let (Some(primary), Some(desktop)) = (primary, desktop) else {
        panic!("the phone and the desktop are not both listed: {devices:?}");
    };
    assert_eq!(primary["primary"], true, "{devices:?}");
    assert_eq!(desktop["primary"], false, "{devices:?}");
    assert_eq!(desktop["name"], DESKTOP_NAME, "{devices:?}");
    assert_eq!(
        desktop["platform"],
        param(link_text, "platform"),
        "{devices:?}"
    );
    assert!(number(desktop, "linked_at") > 0, "{devices:?}");
}

/// Runs a read command with `--json` on the phone (`tandem-phone`) or the desktop (`tandem`).
fn read(home: &Home, on_phone: bool, args: &[&str]) -> Value {
    let run = if on_phone {
        must(home.phone(args))
    } else {
        must(home.companion(args))
    };
    ok_json(run)
}

/// Every message of a chat, oldest first, read page by page (`history --limit 1000`, then
/// `--before` the oldest message so far) until a page comes back empty.
fn whole_history(home: &Home, on_phone: bool, chat: &str) -> Vec<Value> {
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut args = vec!["history", chat, "--limit", "1000", "--json"];
        if let Some(id) = &before {
            args.extend(["--before", id.as_str()]);
        }
        let page = read(home, on_phone, &args);
        let page = page.as_array().cloned().unwrap_or_default();
        let Some(oldest) = page.first() else {
            break;
        };
        before = Some(text(oldest, "id").to_owned());
        pages.push(page);
        assert!(
            pages.len() <= 1000,
            "chat {chat}: the walk back does not end"
        );
    }
    pages.into_iter().rev().flatten().collect()
}

/// Checks that the desktop shows exactly what the phone shows: the chat list, every message
/// of every chat, and the hits of each of `searches` (each must find something on the
/// phone).
fn assert_same_history(phone: &Home, desktop: &Home, searches: &[&str]) {
    let chats = read(phone, true, &["chats", "--json"]);
    assert!(
        chats.as_array().is_some_and(|c| !c.is_empty()),
        "the phone has no chats: {chats}"
    );
    let desktop_chats = read(desktop, false, &["chats", "--json"]);
    if desktop_chats != chats {
        let names = |list: &Value, other: &Value| -> Vec<String> {
            let ids: BTreeSet<String> = other
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].to_string())
                .collect();
            list.as_array()
                .unwrap()
                .iter()
                .filter(|c| !ids.contains(&c["id"].to_string()))
                .map(|c| format!("{} ({} messages)", c["name"], c["messages"]))
                .collect()
        };
        panic!(
            "the desktop's chat list differs from the phone's: missing on the desktop: {:?}; \
             only on the desktop: {:?}\n--- phone\n{chats}\n--- desktop\n{desktop_chats}",
            names(&chats, &desktop_chats),
            names(&desktop_chats, &chats)
        );
    }
    for chat in chats.as_array().unwrap() {
        let id = text(chat, "id");
        let count = usize::try_from(number(chat, "messages")).unwrap();
        let on_phone = whole_history(phone, true, id);
        assert_eq!(on_phone.len(), count, "the phone's history of {chat}");
        let on_desktop = whole_history(desktop, false, id);
        if on_desktop != on_phone {
            let ids = |v: &[Value]| -> BTreeSet<String> {
                v.iter().map(|m| m["id"].to_string()).collect()
            };
            let (p, d) = (ids(&on_phone), ids(&on_desktop));
            let first = on_phone.iter().zip(&on_desktop).find(|(a, b)| a != b);
            panic!(
                "chat {chat}: the desktop's history differs from the phone's \
                 ({} messages on the phone, {} on the desktop, {} ids only on the phone, \
                 {} only on the desktop; first difference (phone, desktop): {first:?})",
                on_phone.len(),
                on_desktop.len(),
                p.difference(&d).count(),
                d.difference(&p).count()
            );
        }
    }
    for query in searches {
        let args = ["search", query, "--limit", "1000", "--json"];
        let hits = read(phone, true, &args);
        assert!(
            hits.as_array().is_some_and(|h| !h.is_empty()),
            "{query:?} finds nothing on the phone: pick another word"
        );
        assert_eq!(
            read(desktop, false, &args),
            hits,
            "the desktop's hits for {query:?} differ from the phone's"
        );
    }
}

/// Opens the store in `home` (the key file beside it), checks its integrity and that its
/// counters match its rows, and returns the ids of all its messages (checked distinct).
fn stored_ids(home: &Path) -> BTreeSet<[u8; 16]> {
    let (store, _) = Store::open_in_home_with(home, KeychainUse::Off)
        .unwrap_or_else(|e| panic!("open the store in {}: {e}", home.display()));
    let problems = store.integrity_check().unwrap();
    assert!(
        problems.is_empty(),
        "PRAGMA integrity_check on {}: {problems:?}",
        home.display()
    );
    let mut ids = Vec::new();
    for chat in store.chats().unwrap() {
        let page = store.page(chat.id, Cursor::Newest, usize::MAX).unwrap();
        assert_eq!(
            page.len() as u64,
            chat.message_count,
            "chat {:?}: its message count is not its rows",
            chat.name
        );
        ids.extend(page.iter().map(|m| *m.id.as_bytes()));
    }
    let distinct: BTreeSet<[u8; 16]> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "a message is stored twice");
    assert_eq!(
        store.counts().unwrap().messages,
        ids.len() as u64,
        "the store's count is not its rows"
    );
    distinct
}

/// Checks that the desktop's store holds exactly the phone's messages, intact.
fn assert_same_messages(phone: &Phone, desktop: &Home) {
    let on_phone = stored_ids(phone.home.path());
    let on_desktop = stored_ids(desktop.path());
    assert_eq!(on_phone.len() as u64, phone.messages());
    if on_desktop != on_phone {
        panic!(
            "the desktop holds {} messages, the phone {}: {} missing on the desktop, {} \
             that the phone does not have",
            on_desktop.len(),
            on_phone.len(),
            on_phone.difference(&on_desktop).count(),
            on_desktop.difference(&on_phone).count()
        );
    }
}

/// The desktop shows its first code, also kept in a text file: the running `link`, the file
/// and the code's link text.
fn show_code(
    desktop: &Home,
    broker: &str,
    extra: &[&str],
) -> (Background, std::path::PathBuf, String) {
    let file = desktop.scratch().join("code.txt");
    let mut args = vec!["--qr-text", path_arg(&file)];
    args.extend_from_slice(extra);
    let mut running = link(desktop, broker, &args);
    let code = first_code(&mut running);
    let link_text = text(&code, "link").to_owned();
    (running, file, link_text)
}

/// Links `desktop` to `phone` over `broker` by pasted text, and checks both sides.
fn link_by_text(phone: &Phone, desktop: &Home, broker: &str) -> u64 {
    let file = desktop.scratch().join("code.txt");
    let mut link = link(desktop, broker, &["--qr-text", path_arg(&file)]);
    let code = first_code(&mut link);
    let link_text = text(&code, "link").to_owned();
    wait_for_text(&file, &link_text);
    let scanned = must(phone.scan(&["--link", &link_text, "--yes"]).finish(SYNC));
    let linked = must(link.finish(SYNC));
    assert!(scanned.success(), "{scanned}");
    assert!(linked.success(), "{linked}");
    let chunks = check_clean_link(phone, &scanned, &linked, &link_text);
    check_devices(phone, &link_text);
    chunks
}

// ---------------------------------------------------------------------------------------
// Story 1: link by PNG, 10k messages, both stores show the same.

#[test]
fn alice_links_her_desktop_by_scanning_its_qr_png_and_it_shows_exactly_her_history() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(10_000);
    let desktop = must(Home::new());
    let png = desktop.scratch().join("code.png");

    // The desktop shows its code and keeps code.png up to date.
    let mut link = link(&desktop, &url, &["--qr-png", path_arg(&png)]);
    let code = first_code(&mut link);
    must(wait_for_file(&png, STEP));
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );

    // Alice points her phone at it and confirms; the history flows until both are done.
    let scanned = must(
        phone
            .scan(&["--qr-png", path_arg(&png), "--yes"])
            .finish(SYNC),
    );
    let linked = must(link.finish(SYNC));
    assert!(scanned.success(), "{scanned}");
    assert!(linked.success(), "{linked}");
    let chunks = check_clean_link(&phone, &scanned, &linked, text(&code, "link"));
    assert!(
        chunks >= 2,
        "10k messages should travel in several chunks, not {chunks}"
    );
    check_devices(&phone, text(&code, "link"));
    check_complete(&phone, &desktop, Some(chunks));

    // Her desktop now shows what her phone shows, message for message, hit for hit.
    assert_same_history(
        &phone.home,
        &desktop,
        &["ferry", "encrypted", "the", "café", "mañana", "ok th"],
    );
    assert_same_messages(&phone, &desktop);
}

// ---------------------------------------------------------------------------------------
// Story 2: link by pasted text, over Mosquitto.

#[test]
fn alice_links_by_pasting_the_link_text_over_mosquitto() {
    let Some(mosquitto) = must(Mosquitto::start_or_skip(MosquittoOptions::default())) else {
        return;
    };
    let url = mosquitto.url().to_string();
    let phone = Phone::new(2_000);
    let desktop = must(Home::new());

    let file = desktop.scratch().join("code.txt");
    let mut link = link(&desktop, &url, &["--qr-text", path_arg(&file)]);
    let code = first_code(&mut link);
    wait_for_text(&file, text(&code, "link"));

    // She copies the text into the phone ("$(cat code.txt)").
    let pasted = std::fs::read_to_string(&file).unwrap();
    let scanned = must(
        phone
            .scan(&["--link", pasted.trim_end(), "--yes"])
            .finish(SYNC),
    );
    let linked = must(link.finish(SYNC));
    assert!(
        scanned.success(),
        "{scanned}\n--- mosquitto log\n{}",
        mosquitto.log()
    );
    assert!(
        linked.success(),
        "{linked}\n--- mosquitto log\n{}",
        mosquitto.log()
    );
    let chunks = check_clean_link(&phone, &scanned, &linked, text(&code, "link"));
    check_devices(&phone, text(&code, "link"));
    check_complete(&phone, &desktop, Some(chunks));
    assert_same_history(&phone.home, &desktop, &["ferry", "the", "café"]);
    assert_same_messages(&phone, &desktop);
}

// ---------------------------------------------------------------------------------------
// Story 3: kill -9 the desktop mid-sync, at several points; `tandem sync` finishes it.

/// Waits for a progress event with at least `chunks` chunks done (or for the end).
fn progress_at_least(run: &mut Background, chunks: u64) -> Value {
    must(run.wait_for(
        &format!("progress with at least {chunks} chunks done"),
        SYNC,
        |e| {
            (event_name(e) == "progress" && e["chunks_done"].as_u64() >= Some(chunks))
                || event_name(e) == "synced"
        },
    ))
}

/// Kills the desktop (SIGKILL) right after `seen`, and checks what it left: the progress it
/// reported is kept, and, when `mid_sync`, the sync is still unfinished.
fn kill_desktop_after(run: Background, seen: &Value, desktop: &Home, mid_sync: bool) {
    let killed = must(run.kill());
    assert_eq!(
        killed.code(),
        None,
        "the desktop finished before it could be killed after {seen}: \
         generate more messages: {killed}"
    );
    assert_eq!(event_name(seen), "progress", "{killed}");
    let status = desktop_status(desktop);
    let sync = &status["sync"];
    assert_eq!(status["linked"], true, "{status}");
    assert!(
        number(sync, "done") >= number(seen, "messages_done")
            && number(sync, "chunks_done") >= number(seen, "chunks_done"),
        "the desktop reported progress it did not keep: reported {seen}, kept {status}"
    );
    if mid_sync {
        assert_eq!(sync["state"], "running", "{status}");
        assert!(number(sync, "done") < number(sync, "total"), "{status}");
    }
}

#[test]
fn a_desktop_killed_mid_sync_ends_with_exactly_the_phones_messages_after_tandem_sync() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(20_000);
    let desktop = must(Home::new());

    let (mut link, _, link_text) = show_code(&desktop, &url, &[]);
    let scan = phone.scan(&["--link", &link_text, "--yes"]);

    // Kill 1: right after the first chunk.
    let first = progress_at_least(&mut link, 1);
    let chunks = first["chunks_total"].as_u64().unwrap_or(0);
    assert!(
        chunks >= 5,
        "20k messages should travel in many chunks (about 1000 messages each), not {chunks}: {first}"
    );
    kill_desktop_after(link, &first, &desktop, true);

    // The phone app is closed too, then serves from `tandem-phone run`.
    // (It may already have given up on the desktop: a failed signal is fine.)
    let _ = scan.signal("TERM");
    let _ = scan.finish(STEP);
    let devices = phone.devices();
    assert!(
        devices.iter().any(|d| d["id"] == phone.device(1)),
        "the link itself was made before the sync: {devices:?}"
    );
    let serving = phone.serve();

    // Kill 2: in the middle.
    let mut resumed = sync(&desktop);
    let middle = progress_at_least(&mut resumed, chunks / 2);
    assert!(
        number(&middle, "chunks_done") >= number(&first, "chunks_done"),
        "the resumed sync starts over: {middle} after {first}"
    );
    kill_desktop_after(resumed, &middle, &desktop, true);

    // Kill 3: right after the last progress event (it may or may not have finished).
    let mut resumed = sync(&desktop);
    let last = progress_at_least(&mut resumed, chunks);
    if event_name(&last) == "progress" {
        kill_desktop_after(resumed, &last, &desktop, false);
    } else {
        let run = must(resumed.finish(STEP));
        assert!(run.success(), "{run}");
    }

    // `tandem sync` finishes it: exactly the phone's messages, once each, intact.
    let finished = must(sync(&desktop).finish(SYNC));
    assert!(finished.success(), "{finished}");
    let finished_events = events(&finished);
    assert_eq!(
        finished_events.last().map(event_name),
        Some("synced"),
        "{finished}"
    );
    check_complete(&phone, &desktop, Some(chunks));

    // Nothing is pending now: `tandem sync` says so at once.
    let started = Instant::now();
    let again = must(sync(&desktop).finish(STEP));
    assert!(again.success(), "{again}");
    assert_eq!(
        events(&again).last().map(event_name),
        Some("synced"),
        "{again}"
    );
    assert!(
        of_kind(&events(&again), "progress").is_empty(),
        "nothing was pending: {again}"
    );
    assert!(started.elapsed() < Duration::from_secs(15), "{again}");

    stop_serving(serving);
    check_complete(&phone, &desktop, Some(chunks));
    assert_same_messages(&phone, &desktop);
}

// ---------------------------------------------------------------------------------------
// Story 4: kill the phone mid-sync; the desktop waits and finishes when it comes back.

#[test]
fn the_desktop_waits_for_a_phone_killed_mid_sync_and_finishes_when_it_is_back() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(20_000);
    let desktop = must(Home::new());

    let png = desktop.scratch().join("code.png");
    let mut link = link(&desktop, &url, &["--qr-png", path_arg(&png)]);
    first_code(&mut link);
    must(wait_for_file(&png, STEP));
    let scan = phone.scan(&["--qr-png", path_arg(&png), "--yes"]);

    // The phone dies after the desktop has two chunks.
    let seen = progress_at_least(&mut link, 2);
    assert_eq!(event_name(&seen), "progress", "{link}");
    let killed = must(scan.kill());
    assert_eq!(
        killed.code(),
        None,
        "the phone finished before it could be killed: generate more messages: {killed}"
    );

    // The desktop keeps waiting; another process sees a sync under way.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        must(link.try_wait()).is_none(),
        "the desktop gave up without its phone: {link}"
    );
    let status = desktop_status(&desktop);
    let sync = &status["sync"];
    assert_eq!(status["linked"], true, "{status}");
    assert_eq!(sync["state"], "running", "{status}");
    assert!(
        number(sync, "done") >= number(&seen, "messages_done"),
        "{status} after {seen}"
    );
    assert!(number(sync, "done") < number(sync, "total"), "{status}");
    assert_eq!(number(sync, "total"), phone.messages(), "{status}");

    // The most recent chats came first: her latest chat already has messages.
    let phone_chats = ok_json(must(phone.home.phone(["chats", "--json"])));
    let latest = &phone_chats[0];
    let desktop_chats = ok_json(must(desktop.companion(["chats", "--json"])));
    let on_desktop = desktop_chats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == latest["id"]);
    assert!(
        on_desktop.is_some_and(|c| number(c, "messages") > 0),
        "the phone's latest chat {latest} is not among the first synced: {desktop_chats}"
    );

    // The phone is back: the desktop finishes with exactly the phone's messages.
    let serving = phone.serve();
    let linked = must(link.finish(SYNC));
    assert!(linked.success(), "{linked}");
    let linked_events = events(&linked);
    let chunks = number(&seen, "chunks_total");
    check_synced(&linked_events, chunks, phone.messages(), "the desktop");
    stop_serving(serving);
    check_complete(&phone, &desktop, Some(chunks));
    assert_same_messages(&phone, &desktop);
}

// ---------------------------------------------------------------------------------------
// Story 5: failures change nothing.

#[test]
fn a_wrong_link_secret_is_refused_and_links_nothing() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(0);
    let phone_before = phone.status();
    let desktop = must(Home::new());

    let (mut link, _, real_text) = show_code(&desktop, &url, &["--timeout", "30"]);
    let real = real_text.as_str();
    let secret = params(real)
        .into_iter()
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no secret in {real}"));
    let forged = with_param(real, "secret", Some(&another_secret(&secret)));

    let scanned = must(
        phone
            .scan(&["--link", &forged, "--yes"])
            .finish(STEP + STEP),
    );
    let error = failed(&scanned);
    assert!(error.contains("refused"), "{scanned}");
    assert!(of_kind(&events(&scanned), "linked").is_empty(), "{scanned}");

    // The desktop did not link: it still waits for a good code, or gave up with an error.
    std::thread::sleep(Duration::from_millis(500));
    let desktop_run = if must(link.try_wait()).is_none() {
        must(link.kill())
    } else {
        let run = must(link.finish(STEP));
        failed(&run);
        run
    };
    let desktop_events = events(&desktop_run);
    assert!(
        of_kind(&desktop_events, "linked").is_empty()
            && of_kind(&desktop_events, "progress").is_empty(),
        "{desktop_run}"
    );
    // ...and said why (a `refused` event while it waits on, or its error).
    let said = format!("{}{}", desktop_run.stdout, desktop_run.stderr);
    assert!(
        said.contains("refused") || said.contains("secret"),
        "the desktop does not report the refused offer: {desktop_run}"
    );
    assert_unlinked_and_empty(&desktop);
    phone.assert_only_the_primary();
    assert_eq!(phone.status(), phone_before);
}

#[test]
fn an_expired_code_stops_the_desktop_and_cannot_be_scanned_afterwards() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(0);
    let phone_before = phone.status();
    let desktop = must(Home::new());

    // Codes that live 1 s, then 0.5 s each, 2 s in all; nobody scans them.
    let file = desktop.scratch().join("code.txt");
    let started = Instant::now();
    let link = link(
        &desktop,
        &url,
        &[
            "--qr-text",
            path_arg(&file),
            "--timeout",
            "2",
            "--qr-first-ms",
            "1000",
            "--qr-every-ms",
            "500",
        ],
    );
    let expired = must(link.finish(STEP));
    let lived = started.elapsed();
    let error = failed(&expired);
    assert!(error.contains("QR code expired"), "{expired}");
    assert!(
        lived >= Duration::from_millis(1500),
        "the codes were shown for only {lived:?}: {expired}"
    );
    let expired_events = events(&expired);
    let codes = check_codes(&expired_events);
    assert!(
        codes.len() >= 2,
        "a code shown for 1 s then every 0.5 s for 2 s rotates: {expired}"
    );
    assert!(of_kind(&expired_events, "linked").is_empty(), "{expired}");
    let last = codes.last().unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{last}\n"),
        "the text file holds the last code"
    );

    // Alice scans the last code too late.
    let scanned = must(phone.scan(&["--link", last, "--yes"]).finish(STEP));
    let error = failed(&scanned);
    assert!(
        ["expired", "answer", "time"]
            .iter()
            .any(|w| error.contains(w)),
        "the phone should say the code expired or got no answer: {scanned}"
    );
    phone.assert_only_the_primary();
    assert_eq!(phone.status(), phone_before);
    assert_unlinked_and_empty(&desktop);
}

#[test]
fn codes_rotate_the_files_follow_and_the_previous_code_still_links() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(1_000);
    let desktop = must(Home::new());

    let file = desktop.scratch().join("code.txt");
    let png = desktop.scratch().join("code.png");
    let mut link = link(
        &desktop,
        &url,
        &[
            "--qr-text",
            path_arg(&file),
            "--qr-png",
            path_arg(&png),
            "--qr-first-ms",
            "1500",
            "--qr-every-ms",
            "6000",
            "--timeout",
            "60",
        ],
    );
    let first = first_code(&mut link);
    let first_link = text(&first, "link").to_owned();
    wait_for_text(&file, &first_link);
    must(wait_for_file(&png, STEP));
    // Alice's phone takes a picture of the first code.
    let photo = desktop.scratch().join("photo.png");
    std::fs::copy(&png, &photo).unwrap();

    // After 1.5 s a new code replaces it, with a new pairing ref, in both files.
    let second = must(link.wait_for_event("code", STEP));
    assert_eq!(second["index"], 1, "{second}");
    let second_link = text(&second, "link").to_owned();
    assert_ne!(second_link, first_link);
    assert_ne!(param(&second_link, "ref"), param(&first_link, "ref"));
    assert!(
        second["expires_at"].as_i64() > first["expires_at"].as_i64(),
        "{first} then {second}"
    );
    wait_for_text(&file, &second_link);
    let old_png = std::fs::read(&photo).unwrap();
    let started = Instant::now();
    while std::fs::read(&png).unwrap_or_default() == old_png {
        assert!(
            started.elapsed() < STEP,
            "{} still shows the first code",
            png.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The picture of the first code, scanned just after it changed, still links.
    let scanned = must(
        phone
            .scan(&["--qr-png", path_arg(&photo), "--yes"])
            .finish(SYNC),
    );
    let linked = must(link.finish(SYNC));
    assert!(scanned.success(), "{scanned}");
    assert!(linked.success(), "{linked}");
    let chunks = check_clean_link(&phone, &scanned, &linked, &first_link);
    check_devices(&phone, &first_link);
    check_complete(&phone, &desktop, Some(chunks));
    assert_same_history(&phone.home, &desktop, &["ferry"]);
}

#[test]
fn the_phone_asks_before_linking_and_no_answer_or_no_changes_nothing() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(0);
    let phone_before = phone.status();
    let desktop = must(Home::new());

    let (mut link, _, link_text) = show_code(&desktop, &url, &["--timeout", "60"]);
    let shown = json!({
        "event": "device",
        "name": DESKTOP_NAME,
        "platform": param(&link_text, "platform"),
    });

    // No answer (stdin closed), then "n": cancelled, after showing what would be linked.
    let silent = must(phone.scan(&["--link", &link_text]).finish(STEP));
    let no = must(
        must(
            phone
                .home
                .spawn_phone_with_input(["--json", "scan", "--link", &link_text], b"n\n"),
        )
        .finish(STEP),
    );
    for run in [&silent, &no] {
        let error = failed(run);
        assert!(error.contains("link cancelled"), "{run}");
        assert_eq!(
            events(run),
            std::slice::from_ref(&shown),
            "only the device is shown: {run}"
        );
    }
    phone.assert_only_the_primary();
    assert_eq!(phone.status(), phone_before);
    assert!(
        must(link.try_wait()).is_none(),
        "the desktop stopped waiting: {link}"
    );
    assert_unlinked_and_empty(&desktop);

    // "y": linked, and the history follows.
    let yes = must(
        must(
            phone
                .home
                .spawn_phone_with_input(["--json", "scan", "--link", &link_text], b"y\n"),
        )
        .finish(SYNC),
    );
    let linked = must(link.finish(SYNC));
    assert!(yes.success(), "{yes}");
    assert!(linked.success(), "{linked}");
    let chunks = check_clean_link(&phone, &yes, &linked, &link_text);
    check_devices(&phone, &link_text);
    check_complete(&phone, &desktop, Some(chunks));
}

// ---------------------------------------------------------------------------------------
// Story 1, small: a chat without messages yet is a chat too.

#[test]
fn chats_without_messages_reach_the_desktop_too() {
    let (_broker, url) = embedded_broker();
    // 30 messages over 12 generated chats leave most of those chats empty.
    let phone = Phone::new(30);
    let chats = read(&phone.home, true, &["chats", "--json"]);
    let empty = chats
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["messages"] == 0)
        .count();
    assert!(empty > 0, "no empty chat to check: {chats}");
    let desktop = must(Home::new());
    let chunks = link_by_text(&phone, &desktop, &url);
    assert_same_history(&phone.home, &desktop, &["ferry"]);
    check_complete(&phone, &desktop, Some(chunks));
}

// ---------------------------------------------------------------------------------------
// Story 6: a link with a bad field.

#[test]
fn a_link_with_a_bad_field_is_refused_naming_the_field_and_nothing_is_written() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(0);
    let phone_before = phone.status();
    let desktop = must(Home::new());

    let (link, _, good) = show_code(&desktop, &url, &["--timeout", "60"]);

    // 16 zero bytes in base64url: valid base64, but not a 32-byte key.
    let short_key = "AAAAAAAAAAAAAAAAAAAAAA";
    let cases: [(&str, String, &str); 7] = [
        ("no ref", with_param(&good, "ref", None), "ref"),
        (
            "dh not base64",
            with_param(&good, "dh", Some("not*base64!")),
            "dh",
        ),
        (
            "dh of 16 bytes",
            with_param(&good, "dh", Some(short_key)),
            "dh",
        ),
        ("version 2", with_param(&good, "v", Some("2")), "v"),
        (
            "an ftp broker",
            with_param(&good, "broker", Some("ftp://x")),
            "broker",
        ),
        ("an empty name", with_param(&good, "name", Some("")), "name"),
        (
            "a short secret",
            with_param(&good, "secret", Some(short_key)),
            "secret",
        ),
    ];
    for (what, bad, field) in &cases {
        let scanned = must(phone.scan(&["--link", bad, "--yes"]).finish(STEP));
        let error = failed(&scanned);
        if *field == "v" {
            assert!(
                names_field(&error, "v") || error.contains("version"),
                "{what}: the error does not name the version: {scanned}"
            );
        } else {
            assert!(
                error.contains("bad link"),
                "{what}: expected `bad link: ...`: {scanned}"
            );
            assert!(
                names_field(&error, field),
                "{what}: the error does not name {field:?}: {scanned}"
            );
        }
        assert!(
            of_kind(&events(&scanned), "linked").is_empty(),
            "{what}: {scanned}"
        );
    }
    phone.assert_only_the_primary();
    assert_eq!(
        phone.status(),
        phone_before,
        "a refused link changed the phone"
    );

    // The link as shown links: only the edits were wrong.
    let scanned = must(phone.scan(&["--link", &good, "--yes"]).finish(SYNC));
    let linked = must(link.finish(SYNC));
    assert!(scanned.success(), "{scanned}");
    assert!(linked.success(), "{linked}");
    check_clean_link(&phone, &scanned, &linked, &good);
}

// ---------------------------------------------------------------------------------------
// Story 7: unlink.

#[test]
fn an_unlinked_desktop_learns_it_at_its_next_sync_and_erases_its_copy() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(500);
    let desktop = must(Home::new());
    link_by_text(&phone, &desktop, &url);
    check_complete(&phone, &desktop, None);

    let unlink = |device: &str| -> Run {
        must(must(phone.home.spawn_phone(["--json", "unlink", device])).finish(STEP))
    };

    // A device that does not exist, and the phone itself, cannot be unlinked.
    let unknown = phone.device(7);
    let refused = unlink(&unknown);
    assert!(failed(&refused).contains(&unknown), "{refused}");
    let primary = phone.device(0);
    let itself = unlink(&primary);
    let error = failed(&itself);
    assert!(
        error.contains("primary") || error.contains(&primary),
        "{itself}"
    );
    assert_eq!(
        phone.devices().len(),
        2,
        "a refused unlink changed the list"
    );

    // Alice unlinks her desktop from her phone.
    let removed = ok(unlink(&phone.device(1)));
    let answer = removed.json().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["unlinked"], phone.device(1), "{removed}");
    assert!(number(&answer, "version") >= 2, "{removed}");
    phone.assert_only_the_primary();
    let again = unlink(&phone.device(1));
    assert!(failed(&again).contains(&phone.device(1)), "{again}");

    // The desktop learns it at its next connection, and erases what it held.
    let synced = must(sync(&desktop).finish(STEP + STEP));
    let error = failed(&synced);
    assert!(error.contains("unlinked"), "{synced}");
    assert_unlinked_and_empty(&desktop);
    assert_eq!(desktop_status(&desktop)["mode"], "unlinked");
    assert_eq!(
        ok_json(must(desktop.companion(["chats", "--json"]))),
        json!([])
    );
    assert_eq!(
        ok_json(must(desktop.companion(["search", "ferry", "--json"]))),
        json!([])
    );
    assert!(stored_ids(desktop.path()).is_empty());
}

#[test]
fn a_desktop_that_logs_out_is_unlinked_by_the_phone_and_erases_its_copy() {
    let (_broker, url) = embedded_broker();
    let phone = Phone::new(300);
    let desktop = must(Home::new());
    link_by_text(&phone, &desktop, &url);
    check_complete(&phone, &desktop, None);
    let serving = phone.serve();

    // Without --yes and with no answer on stdin, nothing happens.
    let unanswered = must(desktop.companion(["logout"]));
    assert!(failed(&unanswered).contains("cancelled"), "{unanswered}");
    assert_eq!(desktop_status(&desktop)["linked"], true);

    // With --yes: the phone is told, and the local copy is erased.
    let out = ok_json(must(desktop.companion(["--json", "logout", "--yes"])));
    assert_eq!(out, json!({ "logged_out": true, "phone_told": true }));
    assert_unlinked_and_empty(&desktop);

    // The phone unlinked it: its list holds only the primary again.
    let started = Instant::now();
    while phone.devices().len() > 1 {
        assert!(
            started.elapsed() < STEP,
            "the phone still lists the desktop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    phone.assert_only_the_primary();
    stop_serving(serving);

    // A device that is not linked has nothing to log out of.
    let again = must(desktop.companion(["logout", "--yes"]));
    assert!(failed(&again).contains("not linked"), "{again}");
}

// ---------------------------------------------------------------------------------------
// The helpers' own checks.

#[test]
fn link_parameters_are_read_and_forged_as_written() {
    let link = "tandem://link?v=1&ref=abc&secret=AbCdEfG&name=Work%20laptop&platform=linux";
    assert_eq!(param(link, "name"), "Work laptop");
    assert_eq!(
        with_param(link, "ref", None),
        "tandem://link?v=1&secret=AbCdEfG&name=Work%20laptop&platform=linux"
    );
    assert_eq!(
        with_param(link, "v", Some("2")),
        "tandem://link?v=2&ref=abc&secret=AbCdEfG&name=Work%20laptop&platform=linux"
    );
    let forged = another_secret("AbCdEfG");
    assert_eq!(forged.len(), 7);
    assert!(forged.ends_with('G'));
    assert_eq!(
        forged.chars().collect::<BTreeSet<_>>(),
        "AbCdEfG".chars().collect::<BTreeSet<_>>()
    );
    assert!(names_field("field dh: not base64", "dh"));
    assert!(names_field("bad link: field v: version 2", "v"));
    assert!(!names_field("the width is wrong", "dh"));
    assert!(!names_field("invalid value", "v"));
}

// ---------------------------------------------------------------------------------------
// Bridge mode (issue 6, part 2): the same QR flow links a desktop that becomes no device of
// the account; the phone authorises its bridge key, the desktop keeps the phone's bridge URL.

#[test]
fn alice_links_a_desktop_in_bridge_mode_and_her_account_keeps_its_devices() {
    const BRIDGE_URL: &str = "ws://127.0.0.1:7070";
    let (_broker, url) = embedded_broker();
    let desktop = must(Home::new());
    let (mut link, file, link_text) = show_code(&desktop, &url, &["--mode", "bridge"]);
    wait_for_text(&file, &link_text);
    assert_eq!(param(&link_text, "mode"), "bridge", "{link_text}");
    assert!(
        params(&link_text).iter().all(|(key, _)| key != "sig"),
        "{link_text}"
    );
    let desktop_key = param(&link_text, "bridge");

    // A phone without a bridge URL refuses the code before going online; the desktop waits.
    let bare = Phone::new(0);
    let refused = must(bare.scan(&["--link", &link_text, "--yes"]).finish(STEP));
    assert!(failed(&refused).contains("--bridge-url"), "{refused}");
    bare.assert_only_the_primary();
    assert!(
        must(link.try_wait()).is_none(),
        "the desktop stopped waiting: {link}"
    );

    // Alice's phone has one: it links the desktop as a bridge desktop.
    let home = must(Home::new());
    let created = ok_json(must(home.phone([
        "init",
        "--name",
        "Alice",
        "--bridge-url",
        BRIDGE_URL,
        "--json",
    ])));
    let phone = Phone {
        account: text(&created, "account").to_owned(),
        home,
    };
    let phone_before = phone.status();
    let scanned = must(phone.scan(&["--link", &link_text, "--yes"]).finish(STEP));
    let linked = must(link.finish(STEP));
    assert!(scanned.success(), "{scanned}");
    assert!(linked.success(), "{linked}");
    let platform = param(&link_text, "platform");
    assert_eq!(
        events(&scanned),
        vec![
            json!({"event": "device", "name": DESKTOP_NAME, "platform": platform}),
            json!({"event": "linked", "device": desktop_key, "name": DESKTOP_NAME, "platform": platform}),
        ],
        "{scanned}"
    );
    let desktop_events = events(&linked);
    assert_eq!(
        of_kind(&desktop_events, "linked"),
        vec![&json!({"event": "linked", "account": phone.account, "device": desktop_key})],
        "{linked}"
    );

    // The desktop is in bridge mode with the phone's URL; no device of the account.
    let status = desktop_status(&desktop);
    assert_eq!(status["mode"], "bridge", "{status}");
    assert_eq!(status["bridge_url"], BRIDGE_URL, "{status}");
    assert_eq!(status["linked"], true, "{status}");
    assert_eq!(status["account"], phone.account.as_str(), "{status}");
    assert_eq!(status["device"], Value::Null, "{status}");

    // The phone lists it as a bridge desktop; its account's device list did not change.
    let devices = phone.devices();
    assert_eq!(devices.len(), 2, "{devices:?}");
    assert_eq!(devices[0]["id"], phone.device(0), "{devices:?}");
    assert_eq!(devices[1]["kind"], "bridge", "{devices:?}");
    assert_eq!(devices[1]["id"], desktop_key.as_str(), "{devices:?}");
    assert_eq!(devices[1]["name"], DESKTOP_NAME, "{devices:?}");
    assert_eq!(phone.status(), phone_before);

    // Unlinking it revokes its key.
    let removed = ok_json(must(phone.home.phone([
        "--json",
        "unlink",
        &desktop_key[..10],
    ])));
    assert_eq!(removed["unlinked"], desktop_key.as_str(), "{removed}");
    assert_eq!(removed["kind"], "bridge", "{removed}");
    phone.assert_only_the_primary();
}

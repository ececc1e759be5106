//! Bridge mode against multi-device mode, in the same run and on the same embedded broker:
//! Alice's phone (with history), a laptop linked in multi-device mode, a desktop linked in
//! bridge mode (its messages go through the phone), Bob's phone.
//!
//! - history sync: link + sync to "synced" on each desktop (the same history);
//! - send-to-stored: Bob sends, each desktop reports the message stored (one send, both
//!   desktops, so both series see the same broker and phone);
//! - paging: 50 older messages over the bridge (a `PageOlder` round trip on an open
//!   connection) beside the same page read from the desktop's own store.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt};
use tandem_bridge::{
    DesktopHandshake, DesktopIncoming, Reply as BridgeReply, RequestBody, StaticSecret,
};
use tandem_engine::{Engine, Event, KeychainUse, LinkOptions, Page, QrSchedule, Reply, Request};
use tandem_net::EmbeddedBroker;
use tandem_store::Store;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::messaging::{
    EVENT_WAIT, Session, homes_dir, link_laptop, message_text, p50_p99, rate, ratio, runtime, secs,
    timed, us,
};
use crate::report::{line, load_average};

/// Messages on Alice's phone before the desktops link.
const HISTORY_FULL: usize = 50_000;
/// [`HISTORY_FULL`] with `--quick`.
const HISTORY_QUICK: usize = 5_000;
/// Chats they are spread over.
const HISTORY_CHATS: usize = 20;
/// Timed send-to-stored samples (after [`WARMUP`] untimed ones).
const LATENCY_FULL: usize = 300;
/// [`LATENCY_FULL`] with `--quick`.
const LATENCY_QUICK: usize = 50;
/// Untimed messages before the latency series.
const WARMUP: usize = 20;
/// Timed pages of 50.
const PAGES: usize = 40;
/// Messages a page asks for.
const PAGE_SIZE: u16 = 50;
/// Longest a link or a history sync may take.
const SYNC_LIMIT: Duration = Duration::from_secs(300);

/// Runs the bridge benchmark and prints one figure per line.
///
/// # Errors
/// When the broker, a store, linking, a session or the bridge fails, or an event does not
/// come in time.
pub fn run(out: &mut dyn Write, quick: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    load_average(out, "bridge", "start")?;
    let (history, samples) = if quick {
        (HISTORY_QUICK, LATENCY_QUICK)
    } else {
        (HISTORY_FULL, LATENCY_FULL)
    };
    let dir = homes_dir()?;
    let root = dir.path();
    let broker = EmbeddedBroker::start(([127, 0, 0, 1], 0).into())
        .context("starting the embedded broker")?;
    let url = broker.url().to_string();
    let alice_phone = root.join("alice-phone");
    let bob_phone = root.join("bob-phone");
    let laptop = root.join("alice-laptop");
    let desktop = root.join("alice-bridged");
    let chat = {
        let alice = Engine::open_with(&alice_phone, KeychainUse::Off)?;
        let bob = Engine::open_with(&bob_phone, KeychainUse::Off)?;
        alice.init_primary("Alice", Some(&url))?;
        bob.init_primary("Bob", Some(&url))?;
        let alice_link = alice.contact_link()?;
        alice.contact_add(&bob.contact_link()?, None)?;
        let contact = bob.contact_add(&alice_link, None)?;
        alice.generate(HISTORY_CHATS, history, 7)?;
        contact.chat
    };

    // Multi-device: link and sync the laptop (the phone serves its sync while scanning).
    let ((), multi_took) = timed(|| link_laptop(&alice_phone, &laptop, &url))?;
    let synced = Engine::open_with(&laptop, KeychainUse::Off)?
        .status()?
        .messages;
    line(
        out,
        "bridge.baseline.multi_device_sync_s",
        secs(multi_took),
        &format!("s (link + history sync of {synced} messages in multi-device mode)"),
    )?;

    // Bridge: the phone listens, the desktop links by the same QR flow, then its session
    // brings the history over the bridge.
    let listen = free_address()?;
    Engine::open_with(&alice_phone, KeychainUse::Off)?.set_bridge_url(&format!("ws://{listen}"))?;
    let phone = Session::start_bridged("Alice's phone", &alice_phone, &url, listen, |_| false)?;
    let t0 = Instant::now();
    link_bridged(&alice_phone, &desktop, &url)?;
    let linked = t0.elapsed();
    let mut bridged = Session::start("Alice's bridged desktop", &desktop, &url, |e| {
        matches!(e, Event::Synced { .. } | Event::Message { .. })
    })?;
    bridged.wait_for("history synced", SYNC_LIMIT, |_, e| {
        matches!(e, Event::Synced { .. }).then_some(())
    })?;
    let bridge_took = t0.elapsed();
    let bridge_synced = Engine::open_with(&desktop, KeychainUse::Off)?
        .status()?
        .messages;
    line(
        out,
        "bridge.sync_s",
        secs(bridge_took),
        &format!(
            "s (link {} s + history sync of {bridge_synced} messages over the bridge; {:.2} x multi-device)",
            secs(linked),
            bridge_took.as_secs_f64() / multi_took.as_secs_f64().max(f64::EPSILON)
        ),
    )?;
    line(
        out,
        "bridge.sync_rate",
        rate(usize::try_from(bridge_synced)?, bridge_took),
        &format!(
            "messages/s over the bridge (multi-device: {} messages/s)",
            rate(usize::try_from(synced)?, multi_took)
        ),
    )?;

    // Send-to-stored: one message from Bob, stored by both desktops.
    let mut multi = Session::start("Alice's laptop", &laptop, &url, |e| {
        matches!(e, Event::Message { .. })
    })?;
    let bob = Session::start("Bob's phone", &bob_phone, &url, |_| false)?;
    let rt = runtime()?;
    let mut via_bridge = Vec::with_capacity(samples);
    let mut via_broker = Vec::with_capacity(samples);
    for i in 0..WARMUP + samples {
        let request = Request::Send {
            chat: chat.clone(),
            text: message_text(i),
            reply: None,
            wait: false,
            id: None,
        };
        let t0 = Instant::now();
        let id = match rt.block_on(bob.handle.call(request))? {
            Reply::Ok(view) => view
                .get("id")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .context("a send without an id")?,
            Reply::Error { kind, message } => anyhow::bail!("Bob's send: {kind}: {message}"),
        };
        let stored = |session: &mut Session, what: &str| {
            session.wait_for(what, EVENT_WAIT, |at, e| match e {
                Event::Message { message } if message.id == id => Some(at),
                _ => None,
            })
        };
        let on_laptop = stored(&mut multi, "Bob's message on the laptop")?;
        let on_desktop = stored(&mut bridged, "Bob's message on the bridged desktop")?;
        if i >= WARMUP {
            via_broker.push(on_laptop.saturating_duration_since(t0));
            via_bridge.push(on_desktop.saturating_duration_since(t0));
        }
    }
    let (broker_p50, broker_p99) = p50_p99(&via_broker)?;
    let (bridge_p50, bridge_p99) = p50_p99(&via_bridge)?;
    let detail = format!("us (Bob's send to the desktop's store, {samples} samples)");
    line(
        out,
        "bridge.baseline.multi_device_send_to_stored_us.p50",
        us(broker_p50),
        &detail,
    )?;
    line(
        out,
        "bridge.baseline.multi_device_send_to_stored_us.p99",
        us(broker_p99),
        &detail,
    )?;
    line(
        out,
        "bridge.send_to_stored_us.p50",
        us(bridge_p50),
        &format!(
            "{detail}; through the phone: {:.2} x multi-device",
            ratio(bridge_p50, broker_p50)
        ),
    )?;
    line(out, "bridge.send_to_stored_us.p99", us(bridge_p99), &detail)?;
    multi.stop()?;
    bob.stop()?;
    bridged.stop()?;

    // Paging: the biggest chat, 50 at a time, over the bridge and from the local store.
    let (remote, local) = pages(&desktop)?;
    let (remote_p50, remote_p99) = p50_p99(&remote)?;
    let (local_p50, _) = p50_p99(&local)?;
    line(
        out,
        "bridge.baseline.local_page_50_us.p50",
        us(local_p50),
        &format!("us (50 older messages from the desktop's own store, {PAGES} pages)"),
    )?;
    line(
        out,
        "bridge.page_50_us.p50",
        us(remote_p50),
        &format!(
            "us (50 older messages over the bridge: request to decoded page, {PAGES} pages; p99 {} us; {:.1} x the local read)",
            us(remote_p99),
            ratio(remote_p50, local_p50)
        ),
    )?;
    phone.stop()?;
    broker.stop();
    load_average(out, "bridge", "end")?;
    line(out, "bridge.run_time", secs(started.elapsed()), "s")
}

/// A loopback address nobody listens on right now.
fn free_address() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Links the desktop at `desktop` in bridge mode to the phone at `phone` (whose session runs):
/// the desktop shows its code on its own thread, the phone scans it here.
fn link_bridged(phone: &Path, desktop: &Path, broker: &str) -> anyhow::Result<()> {
    let options = LinkOptions {
        broker: broker.to_owned(),
        name: "Alice's bridged desktop".to_owned(),
        platform: "linux".to_owned(),
        schedule: QrSchedule::default(),
        sync_timeout: None,
    };
    let (code_tx, code_rx) = mpsc::channel::<String>();
    std::thread::scope(|scope| {
        let desktop_side = scope.spawn(move || -> anyhow::Result<()> {
            let engine = Engine::open_with(desktop, KeychainUse::Off)?;
            let mut code_tx = Some(code_tx);
            let mut on = |event: &Event| {
                if let Event::Code { link, .. } = event
                    && let Some(tx) = code_tx.take()
                {
                    tx.send(link.clone()).ok();
                }
            };
            runtime()?
                .block_on(async {
                    tokio::time::timeout(
                        SYNC_LIMIT,
                        Box::pin(engine.link_bridge(&options, &mut on)),
                    )
                    .await
                })
                .context("linking in bridge mode took too long")??;
            Ok(())
        });
        let phone_side = || -> anyhow::Result<()> {
            let code = code_rx
                .recv_timeout(EVENT_WAIT)
                .context("the desktop showed no code")?;
            let link = Engine::parse_link(&code)?;
            let engine = Engine::open_with(phone, KeychainUse::Off)?;
            let mut confirm = |_: &str, _: &str| true;
            let mut on = |_: &Event| {};
            runtime()?
                .block_on(async {
                    tokio::time::timeout(
                        SYNC_LIMIT,
                        Box::pin(engine.scan_bridge(link, &mut confirm, &mut on)),
                    )
                    .await
                })
                .context("scanning in bridge mode took too long")??;
            Ok(())
        };
        let phone_result = phone_side();
        let desktop_result = desktop_side
            .join()
            .map_err(|_| anyhow::anyhow!("the desktop's thread panicked"))?;
        desktop_result.context("the desktop linking in bridge mode")?;
        phone_result.context("the phone scanning a bridge code")
    })
}

/// Pages through the biggest chat over the bridge (an open connection with the desktop's key,
/// its session stopped) and from the desktop's store: the time of each page.
fn pages(desktop: &Path) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let engine = Engine::open_with(desktop, KeychainUse::Off)?;
    let report = engine
        .bridge_link()?
        .context("the desktop is not in bridge mode")?;
    let biggest = engine
        .chats()?
        .into_iter()
        .max_by_key(|c| c.messages)
        .context("the desktop has no chat")?;
    // Local: 50 older at a time from the newest.
    let mut local = Vec::with_capacity(PAGES);
    let mut cursor = Page::Newest;
    for _ in 0..PAGES {
        let t0 = Instant::now();
        let page = engine.history_page(&biggest.id, &cursor, usize::from(PAGE_SIZE))?;
        local.push(t0.elapsed());
        let Some(oldest) = page.first() else { break };
        cursor = Page::Before(oldest.id.clone());
    }
    drop(engine);
    let (store, _) = Store::open_in_home_with(desktop, KeychainUse::Off)?;
    let secret = store
        .identity("bridge_secret")?
        .context("the desktop has no bridge key")?;
    let secret = StaticSecret::from_bytes(
        <[u8; 32]>::try_from(secret.expose()).map_err(|_| anyhow::anyhow!("a bad bridge key"))?,
    );
    let cursor = store
        .identity("bridge_cursor")?
        .and_then(|v| <[u8; 8]>::try_from(v.expose()).ok())
        .map_or(0, u64::from_le_bytes);
    drop(store);
    let phone_key: tandem_bridge::PublicKey = report.phone_key.parse()?;
    let chat = tandem_proto::ChatId(uuid::Uuid::parse_str(&biggest.id)?.into_bytes());
    let remote = runtime()?.block_on(async {
        let mut rng = tandem_crypto::OsRng::new()?;
        let (handshake, m1) = DesktopHandshake::start(
            &secret,
            &phone_key,
            cursor,
            None,
            jiff::Timestamp::now().as_millisecond(),
            &mut rng,
        )?;
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(&report.bridge_url, None, true).await?;
        ws.send(Ws::Binary(m1.into())).await?;
        let m2 = match ws.next().await {
            Some(Ok(Ws::Binary(m2))) => m2,
            other => anyhow::bail!("no handshake answer: {other:?}"),
        };
        let (mut session, _) = handshake.finish(&m2)?;
        let mut before = None;
        let mut times = Vec::with_capacity(PAGES);
        for _ in 0..PAGES {
            let t0 = Instant::now();
            let id = session.request(RequestBody::PageOlder {
                chat,
                before,
                limit: PAGE_SIZE,
            })?;
            while let Some(frame) = session.poll_transmit() {
                ws.send(Ws::Binary(frame.into())).await?;
            }
            let page = loop {
                let frame = match ws.next().await {
                    Some(Ok(Ws::Binary(frame))) => frame,
                    Some(Ok(_)) => continue,
                    other => anyhow::bail!("the bridge ended: {other:?}"),
                };
                match session.receive(&frame)? {
                    Some(DesktopIncoming::Response(response)) if response.id == id => {
                        match response.result {
                            Ok(BridgeReply::Page(page)) => break page,
                            other => anyhow::bail!("not a page: {other:?}"),
                        }
                    }
                    _ => {}
                }
                while let Some(frame) = session.poll_transmit() {
                    ws.send(Ws::Binary(frame.into())).await?;
                }
            };
            times.push(t0.elapsed());
            let Some(oldest) = page.messages.last() else {
                break;
            };
            before = Some((oldest.ts, tandem_proto::MessageId::from_bytes(oldest.id)?));
        }
        session.close(tandem_bridge::CloseReason::Normal);
        while let Some(frame) = session.poll_transmit() {
            ws.send(Ws::Binary(frame.into())).await.ok();
        }
        Ok(times)
    })?;
    Ok((remote, local))
}

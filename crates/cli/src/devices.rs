//! The linking commands of both programs: `tandem link` / `tandem sync` on the companion,
//! `tandem-phone scan` / `run` / `devices` / `unlink` on the primary. Each builds the engine
//! call, runs it on a small runtime until it ends or a stop signal arrives, and prints what it
//! reports: JSON Lines with `--json`, else a QR code, messages and a progress bar for people.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressStyle};
use tandem_engine::{
    Engine, Error as EngineError, Event, LinkOptions, PlanBound, QrSchedule, SyncReport,
};

use crate::broker::StopSignal;
use crate::output;

/// How `tandem link` links: `multi-device` (its own broker session) or `bridge` (through the
/// phone's WebSocket bridge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// A device of the account with its own broker session.
    #[default]
    MultiDevice,
    /// A desktop that talks to the phone over its bridge; the broker serves only to link.
    Bridge,
}

/// `tandem link`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The broker the phone and this device meet on, e.g. mqtt://127.0.0.1:1883 (in bridge
    /// mode only while linking).
    #[arg(long)]
    pub broker: String,
    /// multi-device: this device gets its own broker session; bridge: it talks to the phone
    /// over the phone's bridge (WebSocket) and is no device of the account.
    #[arg(long, value_enum, default_value_t = Mode::MultiDevice)]
    pub mode: Mode,
    /// This device's name, as the phone shows it (default: "Tandem on HOSTNAME").
    #[arg(long)]
    pub name: Option<String>,
    /// Trust the certificate authority in FILE (PEM) for an mqtts:// broker.
    #[arg(long, value_name = "FILE")]
    pub broker_ca: Option<PathBuf>,
    /// Keep FILE updated with the current code as a PNG image.
    #[arg(long, value_name = "FILE")]
    pub qr_png: Option<PathBuf>,
    /// Keep FILE updated with the current code's link text.
    #[arg(long, value_name = "FILE")]
    pub qr_text: Option<PathBuf>,
    /// How long codes are shown in all, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 160)]
    pub timeout: u64,
    /// Life of the first code in ms (tests).
    #[arg(long, hide = true, default_value_t = 60_000)]
    pub qr_first_ms: u64,
    /// Life of every later code in ms (tests).
    #[arg(long, hide = true, default_value_t = 20_000)]
    pub qr_every_ms: u64,
}

/// `tandem-phone scan`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("code").required(true).args(["qr_png", "link"])))]
pub struct ScanArgs {
    /// An image (PNG or JPEG) of the desktop's QR code.
    #[arg(long, value_name = "FILE")]
    pub qr_png: Option<PathBuf>,
    /// The desktop's link text (`tandem://link?...`).
    #[arg(long, value_name = "TEXT")]
    pub link: Option<String>,
    /// Link without asking for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Sync only the last DAYS days of history (the newest messages of every chat always go;
    /// older ones can be fetched on demand).
    #[arg(long, value_name = "DAYS")]
    pub days: Option<u32>,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Prints what the engine reports as it goes.
pub(crate) struct Reporter {
    json: bool,
    qr_png: Option<PathBuf>,
    qr_text: Option<PathBuf>,
    bar: Option<ProgressBar>,
    failure: Option<anyhow::Error>,
    /// Linking in bridge mode (the messages say so).
    bridge: bool,
}

impl Reporter {
    pub(crate) fn new(json: bool) -> Self {
        Self {
            json,
            qr_png: None,
            qr_text: None,
            bar: None,
            failure: None,
            bridge: false,
        }
    }

    pub(crate) fn on(&mut self, event: &Event) {
        if let Err(e) = self.show(event)
            && self.failure.is_none()
        {
            self.failure = Some(e);
        }
    }

    fn show(&mut self, event: &Event) -> anyhow::Result<()> {
        if let Event::Code { link, .. } = event {
            self.save_code(link)?;
        }
        if self.json {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", serde_json::to_string(event)?)?;
            out.flush()?;
            return Ok(());
        }
        match event {
            Event::Code {
                link,
                index,
                expires_at,
            } => {
                let code = tandem_qr::QrCode::new(link)?;
                let mut out = std::io::stdout().lock();
                if std::io::stdout().is_terminal() {
                    write!(out, "\x1b[2J\x1b[H")?;
                }
                writeln!(out, "{}", code.to_terminal())?;
                writeln!(
                    out,
                    "Scan this code with the phone (code {}, valid until {}), or run there:\n  tandem-phone scan --link '{link}'",
                    index + 1,
                    output::time(*expires_at)
                )?;
                out.flush()?;
            }
            Event::Refused { reason } => eprintln!("warning: refused a scan: {reason}"),
            Event::Linked { account, device } => {
                if self.bridge {
                    output::line(&format!(
                        "Linked to account {account} in bridge mode (this desktop's bridge key: {device})."
                    ))?;
                } else {
                    output::line(&format!(
                        "Linked to account {account} as device {device}. Syncing history..."
                    ))?;
                }
            }
            Event::Device { .. } => {}
            Event::DeviceLinked {
                device,
                name,
                platform,
            } => {
                if self.bridge {
                    output::line(&format!(
                        "Linked bridge desktop \"{name}\" ({platform}), key {device}."
                    ))?;
                } else {
                    output::line(&format!(
                        "Linked \"{name}\" ({platform}) as {device}. Sending history..."
                    ))?;
                }
            }
            Event::Progress {
                chunks_done,
                chunks_total,
                messages_done,
                messages_total,
            } => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(*messages_total);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{bar:30} {pos}/{len} messages ({percent}%) {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar
                });
                bar.set_length(*messages_total);
                bar.set_position(*messages_done);
                bar.set_message(format!("chunk {chunks_done}/{chunks_total}"));
            }
            Event::Synced { chunks, messages } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                output::line(&format!(
                    "History synced: {messages} messages in {chunks} chunks."
                ))?;
            }
            Event::Waiting { reason } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(reason.clone());
                } else {
                    eprintln!("{reason}");
                }
            }
            Event::Serving { device, broker } => {
                eprintln!("Serving {device} on {broker} (Ctrl-C to stop).");
            }
            Event::Online { device, broker } => eprintln!("Online as {device} on {broker}."),
            Event::Offline { reason } => eprintln!("Offline: {reason}"),
            Event::Message { message } => output::line(&format!(
                "{} {}: {}",
                output::time(message.ts),
                message.sender.as_deref().unwrap_or("?"),
                message.text
            ))?,
            Event::Update { message } => output::line(&format!(
                "{} {} (changed): {}",
                output::time(message.ts),
                message.sender.as_deref().unwrap_or("?"),
                message.text
            ))?,
            Event::Receipt { id, status, .. } => output::line(&format!("{id} {status}"))?,
            Event::Typing { from, on, .. } => {
                if *on {
                    eprintln!("{from} is typing...");
                }
            }
            Event::Presence {
                device,
                name,
                online,
                at,
            } => eprintln!(
                "{name} ({device}) {}",
                if *online {
                    "online".to_owned()
                } else {
                    format!("offline, last seen {}", output::time(*at))
                }
            ),
            Event::Devices {
                account,
                version,
                devices,
            } => eprintln!("{account}: device list version {version}, {devices} devices"),
            Event::Contact { account, name } => eprintln!("New contact {name} ({account})"),
            // The chat list shows it; nothing to say on a terminal.
            Event::ChatChanged { .. } => {}
            Event::BridgeListening { address } => {
                eprintln!("Bridge desktops can connect on {address}.");
            }
            Event::PhoneDevice {
                device,
                name,
                linked,
                ..
            } => eprintln!(
                "Device {name} ({device}) {}",
                if *linked { "linked" } else { "unlinked" }
            ),
            Event::SendFailed { id, reason, .. } => eprintln!("Message {id} not sent: {reason}"),
            Event::Group {
                name,
                members,
                member,
                ..
            } => eprintln!(
                "Group {name}: {}{}",
                members.join(", "),
                if *member {
                    ""
                } else {
                    " (you are no longer a member)"
                }
            ),
        }
        Ok(())
    }

    fn save_code(&self, link: &str) -> anyhow::Result<()> {
        if let Some(path) = &self.qr_text {
            write_atomically(path, format!("{link}\n").as_bytes())?;
        }
        if let Some(path) = &self.qr_png {
            let png = tandem_qr::QrCode::new(link)?.to_png(8)?;
            tandem_qr::write_png_atomically(path, &png)?;
        }
        Ok(())
    }

    pub(crate) fn finish<T>(mut self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
        let value = result?;
        match self.failure {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn default_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    let mut name = match host {
        Some(host) => format!("Tandem on {host}"),
        None => "Tandem desktop".to_owned(),
    };
    while name.len() > 64 {
        name.pop();
    }
    name
}

/// Runs `work` until it ends or a stop signal arrives (then: "interrupted").
fn until_stopped<T>(
    work: impl std::future::Future<Output = tandem_engine::Result<T>>,
) -> anyhow::Result<T> {
    runtime()?.block_on(async {
        let stop = StopSignal::install()?;
        tokio::select! {
            result = work => Ok(result?),
            _ = stop.recv() => Err(anyhow::anyhow!("interrupted")),
        }
    })
}

/// `tandem logout`: tells the phone (which unlinks this device), then erases the home's keys
/// and history. Without `yes`, asks first.
pub fn logout(engine: Engine, yes: bool, json: bool) -> anyhow::Result<()> {
    let status = engine.status()?;
    if !status.linked {
        anyhow::bail!("this device is not linked: there is nothing to log out of");
    }
    if !yes
        && !yes_or_no(&format!(
            "Log out? The phone unlinks this device and its {} messages here are erased.",
            status.messages
        ))
    {
        anyhow::bail!("cancelled: nothing was changed");
    }
    let told = runtime()?.block_on(engine.leave(Duration::from_secs(10)))?;
    engine.erase()?;
    let mut out = std::io::stdout().lock();
    if json {
        let report = serde_json::json!({ "logged_out": true, "phone_told": told });
        writeln!(out, "{report}")?;
    } else if told {
        writeln!(
            out,
            "Logged out: the phone unlinks this device; its local data is erased."
        )?;
    } else {
        writeln!(
            out,
            "Logged out: local data erased. The broker was not reachable, so the phone still \
             lists this device until you unlink it there (tandem-phone unlink)."
        )?;
    }
    Ok(())
}

fn erase_if_unlinked<T>(engine: Engine, result: anyhow::Result<T>) -> anyhow::Result<T> {
    if let Err(e) = &result
        && matches!(e.downcast_ref::<EngineError>(), Some(EngineError::Unlinked))
    {
        engine.erase()?;
    }
    result
}

/// `tandem link`.
pub fn link(engine: Engine, args: &LinkArgs, json: bool) -> anyhow::Result<()> {
    if let Some(path) = &args.broker_ca {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        engine.trust_broker_ca(&pem)?;
    }
    let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let options = LinkOptions {
        broker: args.broker.clone(),
        name: args.name.clone().unwrap_or_else(default_name),
        platform: std::env::consts::OS.to_owned(),
        schedule: QrSchedule {
            first_ms: ms(args.qr_first_ms),
            every_ms: ms(args.qr_every_ms),
            total_ms: ms(args.timeout.saturating_mul(1000)),
        },
        sync_timeout: None,
    };
    let mut reporter = Reporter::new(json);
    reporter.qr_png.clone_from(&args.qr_png);
    reporter.qr_text.clone_from(&args.qr_text);
    if args.mode == Mode::Bridge {
        reporter.bridge = true;
        let result = until_stopped(engine.link_bridge(&options, &mut |e| reporter.on(e)));
        let report = reporter.finish(result)?;
        if json {
            // JSON Lines: the `linked` event said it; `status --json` shows the bridge URL.
            return Ok(());
        }
        return output::line(&format!(
            "The desktop will reach the phone at {} (phone key {}).",
            report.bridge_url, report.phone_key
        ));
    }
    let result = until_stopped(engine.link(&options, &mut |e| reporter.on(e)));
    let result = reporter.finish(result);
    erase_if_unlinked(engine, result).map(|_: SyncReport| ())
}

/// `tandem sync`.
pub fn sync(engine: Engine, timeout: Option<u64>, json: bool) -> anyhow::Result<()> {
    let mut reporter = Reporter::new(json);
    let result =
        until_stopped(engine.sync(timeout.map(Duration::from_secs), &mut |e| reporter.on(e)));
    let result = reporter.finish(result);
    erase_if_unlinked(engine, result).map(|_| ())
}

fn ask(name: &str, platform: &str, bridge: bool) -> bool {
    if bridge {
        yes_or_no(&format!(
            "Link bridge desktop \"{name}\" ({platform}) to this phone's bridge?"
        ))
    } else {
        yes_or_no(&format!("Link \"{name}\" ({platform}) to this account?"))
    }
}

/// Asks `question` on stderr; only "y" or "yes" on stdin is a yes.
fn yes_or_no(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(0) | Err(_) => {
            // No answer (end of input): end the prompt's line before the error.
            eprintln!();
            false
        }
        Ok(_) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
    }
}

/// `tandem-phone scan`.
pub fn scan(engine: &Engine, args: &ScanArgs, json: bool) -> anyhow::Result<()> {
    let text = match (&args.qr_png, &args.link) {
        (Some(path), _) => tandem_qr::decode_image_file(path)?,
        (None, Some(text)) => text.clone(),
        (None, None) => anyhow::bail!("give --qr-png FILE or --link TEXT"),
    };
    let link = Engine::parse_link(&text)?;
    let bridge = link.mode() == tandem_engine::LinkMode::Bridge;
    let yes = args.yes;
    if bridge {
        let mut reporter = Reporter::new(json);
        reporter.bridge = true;
        let mut confirm = |name: &str, platform: &str| yes || ask(name, platform, true);
        let result = until_stopped(engine.scan_bridge(link, &mut confirm, &mut |e| reporter.on(e)));
        return reporter.finish(result).map(|_| ());
    }
    let bound = PlanBound {
        since_ms: args
            .days
            .map(|d| jiff::Timestamp::now().as_millisecond() - i64::from(d) * 86_400_000),
    };
    let mut reporter = Reporter::new(json);
    let mut confirm = |name: &str, platform: &str| yes || ask(name, platform, false);
    let result = until_stopped(engine.scan(link, bound, &mut confirm, &mut |e| reporter.on(e)));
    reporter.finish(result).map(|_| ())
}

/// `tandem-phone devices`.
pub fn devices(engine: &Engine, json: bool) -> anyhow::Result<()> {
    let devices = engine.devices()?;
    if json {
        return output::json(&devices);
    }
    for d in &devices {
        output::line(&format!(
            "{}  {} ({}){}  linked {}",
            d.id,
            d.name,
            d.platform,
            if d.primary {
                " [this phone]"
            } else if d.kind == "bridge" {
                " [bridge desktop]"
            } else {
                ""
            },
            output::time(d.linked_at)
        ))?;
    }
    Ok(())
}

/// `tandem-phone unlink`.
pub fn unlink(
    engine: &Engine,
    device: &str,
    broker: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let report = until_stopped(engine.unlink(device, broker))?;
    if json {
        return output::json(&report);
    }
    if report.kind == "bridge" {
        return output::line(&format!(
            "Unlinked bridge desktop {}: its key is revoked.",
            report.unlinked
        ));
    }
    output::line(&format!(
        "Unlinked {} (device list version {}).",
        report.unlinked, report.version
    ))
}

/// `tandem fetch`.
pub fn fetch(engine: &Engine, chat: &str, pages: u32, wait: u64, json: bool) -> anyhow::Result<()> {
    let report = until_stopped(engine.fetch_older(chat, pages, Duration::from_secs(wait)))?;
    if json {
        return output::json(&report);
    }
    output::line(&format!(
        "{}: {} older messages fetched{}",
        report.chat,
        report.fetched,
        if report.more {
            "; the phone has more"
        } else {
            "; that is all of it"
        }
    ))
}

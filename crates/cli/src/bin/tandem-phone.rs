//! `tandem-phone`: the primary device, headless. It owns the account and its history.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tandem_cli::devices::{self, ScanArgs};
use tandem_cli::messaging::{self, Messaging};
use tandem_cli::{Global, Read, exit_with, init_logging, output, run_read};
use tandem_engine::{Engine, ImportOptions, Role};

/// Tandem's primary device (the phone's role), headless: account, history import, read commands.
#[derive(Debug, Parser)]
#[command(name = "tandem-phone", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the account on this device (refuses if one exists).
    Init {
        /// Your display name.
        #[arg(long)]
        name: String,
        /// The MQTT broker, e.g. mqtt://127.0.0.1:1883; or the nodes of one cluster,
        /// comma-separated, tried in order (mqtt://a:1883,mqtt://b:1883): devices fail over
        /// to the next when theirs dies, and linked devices get the list.
        #[arg(long)]
        broker: Option<String>,
        #[command(flatten)]
        access: BrokerAccessArgs,
        /// The address bridge-mode desktops dial, e.g. ws://192.168.1.20:7070 (stored; bridge
        /// links carry it).
        #[arg(long, value_name = "URL")]
        bridge_url: Option<String>,
    },
    /// Set how this account's devices reach the broker (see docs/broker): its URL, the CA of
    /// an mqtts:// broker, whether devices log in with their own passwords.
    Broker {
        /// The broker devices use, e.g. mqtts://broker.example:8883.
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        access: BrokerAccessArgs,
    },
    /// Print the broker logins (username:password) of this account's first N devices, for
    /// the broker's password file (see docs/broker).
    BrokerPasswords {
        /// How many device ids (the primary is the first).
        #[arg(long, default_value_t = 8)]
        devices: u32,
    },
    /// Import WhatsApp "Export chat" text files and Telegram Desktop result.json files.
    Import {
        /// The export files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Time zone the export's wall-clock times are in (IANA name; default: this system's).
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
        /// Your name as it appears in the export, so your messages are marked as yours.
        #[arg(long, value_name = "NAME")]
        me: Option<String>,
        /// Name for the chat (default: from the file name).
        #[arg(long, value_name = "NAME")]
        chat_name: Option<String>,
    },
    /// Generate deterministic synthetic history (for benchmarks and demos).
    Generate {
        /// How many chats.
        #[arg(long)]
        chats: usize,
        /// How many messages in all.
        #[arg(long)]
        messages: usize,
        /// Seed: the same seed gives the same history.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Link a desktop: read its QR code (image or link text), confirm, send its history.
    Scan(ScanArgs),
    /// Stay connected: messages, receipts, presence; serve linked devices (history sync
    /// resumptions, older pages). With --json: one line per event.
    Run {
        /// The broker (default: the one of the last link).
        #[arg(long)]
        broker: Option<String>,
        /// Store the address bridge-mode desktops dial, e.g. ws://192.168.1.20:7070 (bridge
        /// links carry it).
        #[arg(long, value_name = "URL")]
        bridge_url: Option<String>,
        /// Serve bridge-mode desktops on this address, e.g. 0.0.0.0:7070 (port 0 picks one;
        /// without a stored bridge URL, ws://ADDRESS becomes it).
        #[arg(long, value_name = "ADDR")]
        bridge_listen: Option<std::net::SocketAddr>,
    },
    /// List the account's devices.
    Devices,
    /// Remove a device from the account; it erases its data on its next connection.
    Unlink {
        /// The device id (see `devices`).
        device: String,
        /// The broker (default: the one of the last link).
        #[arg(long)]
        broker: Option<String>,
    },
    #[command(flatten)]
    Messaging(Messaging),
    #[command(flatten)]
    Read(Read),
}

/// How devices log in to the broker.
#[derive(Debug, clap::Args)]
struct BrokerAccessArgs {
    /// Trust the certificate authority in FILE (PEM) for an mqtts:// broker.
    #[arg(long, value_name = "FILE")]
    broker_ca: Option<PathBuf>,
    /// Devices log in with their per-device passwords (`broker-passwords`).
    #[arg(long)]
    broker_login: bool,
}

impl BrokerAccessArgs {
    fn given(&self) -> bool {
        self.broker_ca.is_some() || self.broker_login
    }

    fn apply(&self, engine: &Engine, url: Option<&str>) -> anyhow::Result<()> {
        let pem = match &self.broker_ca {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
            ),
            None => None,
        };
        engine.configure_broker(url, pem.as_deref(), self.broker_login)?;
        Ok(())
    }
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => exit_with(&e),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.global.json;
    let engine = Engine::open(&cli.global.home(Role::Phone)?)?;
    match cli.command {
        Command::Init {
            name,
            broker,
            access,
            bridge_url,
        } => {
            let created = engine.init_primary(&name, broker.as_deref())?;
            if access.given() {
                access.apply(&engine, None)?;
            }
            if let Some(url) = &bridge_url {
                set_bridge_url(&engine, url)?;
            }
            if json {
                output::json(&created)?;
            } else {
                output::line(&created.account)?;
            }
        }
        Command::Import {
            files,
            tz,
            me,
            chat_name,
        } => {
            let opts = ImportOptions::new(tz.as_deref(), me, chat_name)?;
            let mut failed = 0usize;
            for file in &files {
                match engine.import_file(file, &opts) {
                    Ok(report) => output::import(&report, json)?,
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: {e}");
                    }
                }
            }
            if failed > 0 {
                eprintln!("{failed} of {} files were not imported", files.len());
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Generate {
            chats,
            messages,
            seed,
        } => {
            let report = engine.generate(chats, messages, seed)?;
            if json {
                output::json(&report)?;
            } else {
                output::line(&format!(
                    "generated {} messages in {} chats ({} new)",
                    report.messages, report.chats, report.added
                ))?;
            }
        }
        Command::Broker { url, access } => {
            access.apply(&engine, url.as_deref())?;
            if !json {
                output::line("broker settings saved; new links carry them")?;
            }
        }
        Command::BrokerPasswords { devices } => {
            let logins = engine.broker_passwords(devices)?;
            if json {
                let list: Vec<_> = logins
                    .iter()
                    .map(|(u, p)| serde_json::json!({ "username": u, "password": p }))
                    .collect();
                output::json(&list)?;
            } else {
                for (username, password) in &logins {
                    output::line(&format!("{username}:{password}"))?;
                }
            }
        }
        Command::Scan(args) => devices::scan(&engine, &args, json)?,
        Command::Run {
            broker,
            bridge_url,
            bridge_listen,
        } => {
            if let Some(url) = &bridge_url {
                set_bridge_url(&engine, url)?;
            }
            match bridge_listen {
                Some(listen) => messaging::run_bridged(&engine, broker.as_deref(), listen, json)?,
                None => messaging::run(&engine, broker.as_deref(), json)?,
            }
        }
        Command::Messaging(cmd) => {
            drop(engine);
            messaging::run_messaging(&cli.global.home(Role::Phone)?, &cmd, json)?;
        }
        Command::Devices => devices::devices(&engine, json)?,
        Command::Unlink { device, broker } => {
            devices::unlink(&engine, &device, broker.as_deref(), json)?;
        }
        Command::Read(read) => run_read(&engine, &read, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Stores the bridge URL and says so on stderr (stdout stays the command's own output).
fn set_bridge_url(engine: &Engine, url: &str) -> anyhow::Result<()> {
    let key = engine.set_bridge_url(url)?;
    eprintln!("Bridge desktops will dial {url} (this phone's bridge key: {key}).");
    Ok(())
}

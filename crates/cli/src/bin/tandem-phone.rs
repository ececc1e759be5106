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
        /// The MQTT broker, e.g. mqtt://127.0.0.1:1883.
        #[arg(long)]
        broker: Option<String>,
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
        Command::Init { name, broker } => {
            let created = engine.init_primary(&name, broker.as_deref())?;
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
        Command::Scan(args) => devices::scan(&engine, &args, json)?,
        Command::Run { broker } => messaging::run(&engine, broker.as_deref(), json)?,
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

//! `tandem`: the headless companion. It runs the same engine as the desktop app.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tandem_cli::devices::{self, LinkArgs};
use tandem_cli::messaging::{self, Messaging};
use tandem_cli::{Global, Read, exit_with, init_logging, run_read};
use tandem_engine::{Engine, Role};

/// Tandem's headless companion: link to the phone by QR code, sync and browse the history, run a
/// broker.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded MQTT broker until Ctrl-C.
    Broker {
        /// Address to listen on (port 0 picks a free port; the real address is printed).
        #[arg(long, default_value = "127.0.0.1:1883")]
        listen: SocketAddr,
    },
    /// Link this device to the phone: show a QR code, wait for the scan, sync the history.
    Link(LinkArgs),
    /// Connect and catch up: finish an interrupted history sync, learn of an unlink (returns
    /// after a moment when nothing is pending).
    Sync {
        /// Give up after SECS seconds.
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
    },
    /// Fetch older messages of a chat from the phone (50 a page; the phone must be online).
    Fetch {
        /// The chat: its id or its exact name.
        chat: String,
        /// How many pages.
        #[arg(long, default_value_t = 1)]
        pages: u32,
        /// How long to wait for the phone's answer to each page, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        timeout: u64,
    },
    /// Stay connected: receive messages, receipts and presence, send the outbox, finish the
    /// history sync. With --json: one line per event.
    Run,
    /// Log out: ask the phone to unlink this device, then erase its keys and local history.
    Logout {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit_with(&e),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Broker { listen } => tandem_cli::broker::run(listen),
        Command::Link(args) => {
            let engine = Engine::open(&cli.global.home(Role::Desktop)?)?;
            devices::link(engine, &args, cli.global.json)
        }
        Command::Sync { timeout } => {
            let engine = Engine::open(&cli.global.home(Role::Desktop)?)?;
            devices::sync(engine, timeout, cli.global.json)
        }
        Command::Fetch {
            chat,
            pages,
            timeout,
        } => {
            let engine = Engine::open(&cli.global.home(Role::Desktop)?)?;
            devices::fetch(&engine, &chat, pages, timeout, cli.global.json)
        }
        Command::Run => {
            let engine = Engine::open(&cli.global.home(Role::Desktop)?)?;
            messaging::run(&engine, None, cli.global.json)
        }
        Command::Logout { yes } => {
            let engine = Engine::open(&cli.global.home(Role::Desktop)?)?;
            devices::logout(engine, yes, cli.global.json)
        }
        Command::Messaging(cmd) => {
            messaging::run_messaging(&cli.global.home(Role::Desktop)?, &cmd, cli.global.json)
        }
        Command::Read(read) => {
            let engine = Engine::open(&cli.global.home(Role::Desktop)?)?;
            run_read(&engine, &read, cli.global.json)
        }
    }
}

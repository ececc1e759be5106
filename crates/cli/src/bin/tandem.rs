//! `tandem`: the headless companion. It runs the same engine as the desktop app.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tandem_cli::{Global, Read, exit_with, init_logging, run_read};
use tandem_engine::{Engine, Role};

/// Tandem's headless companion: browse and search this device's history, run a broker.
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
        Command::Read(read) => {
            let engine = Engine::open(&cli.global.home(Role::Desktop)?)?;
            run_read(&engine, &read, cli.global.json)
        }
    }
}

//! Tandem's desktop app: a thin Tauri 2 shell. The engine does the work; this crate opens it on
//! the device's home directory and exposes a few commands to the UI in `ui/`.

mod commands;
mod error;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tandem_engine::{Engine, Role};

/// Command-line options of `tandem-desktop`.
#[derive(Debug, Parser)]
#[command(name = "tandem-desktop", version, about = "Tandem on this computer")]
struct Args {
    /// The device's data directory (the same one `tandem --home` uses).
    #[arg(long, env = "TANDEM_HOME")]
    home: Option<PathBuf>,
}

/// Opens the engine and runs the app until its window closes.
pub fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let home = match args
        .home
        .map_or_else(|| tandem_engine::default_home(Role::Desktop), Ok)
    {
        Ok(home) => home,
        Err(e) => return fail(&e),
    };
    let engine = match Engine::open(&home) {
        Ok(engine) => Arc::new(engine),
        Err(e) => return fail(&e),
    };
    let result = tauri::Builder::default()
        .manage(state::AppState { engine })
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::chats,
            commands::history,
            commands::search,
        ])
        .run(tauri::generate_context!());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!("{e}");
    eprintln!("tandem-desktop: {e}");
    ExitCode::FAILURE
}

//! Tandem's desktop app: a thin Tauri 2 shell over the engine. It opens the engine on the
//! device's home directory, links it by QR code, runs its live session, and answers the UI's
//! commands (`commands`), pushing events through the channel the UI subscribed with (`events`).
//! The desktop's own behaviour (window, tray, notifications) lives in `desktop`.
//!
//! `--bare` opens one window on a minimal page and nothing else: the memory benchmark's
//! baseline.

mod commands;
mod desktop;
mod error;
mod events;
mod files;
mod link;
mod session;
mod settings;
mod state;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use tandem_engine::{Engine, Role};
use tauri::Manager as _;

use crate::state::{AppState, Options};

/// The broker linking uses when neither `--broker` nor `TANDEM_BROKER` says otherwise.
const DEFAULT_BROKER: &str = "mqtt://127.0.0.1:1883";

/// Command-line options of `tandem-desktop`.
#[derive(Debug, Parser)]
#[command(name = "tandem-desktop", version, about = "Tandem on this computer")]
struct Args {
    /// The device's data directory (the same one `tandem --home` uses).
    #[arg(long, env = "TANDEM_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// The broker to meet the phone on when linking (`mqtt://host:port`, `mqtts://...`).
    #[arg(long, env = "TANDEM_BROKER", value_name = "URL", default_value = DEFAULT_BROKER)]
    broker: String,
    /// A CA certificate (PEM) to trust for an `mqtts://` broker.
    #[arg(long, value_name = "FILE")]
    broker_ca: Option<PathBuf>,
    /// Demo and tests: also write every pairing code to FILE as a PNG image (a phone process
    /// scans it with `tandem-phone scan --qr-png FILE`).
    #[arg(long, value_name = "FILE")]
    qr_png: Option<PathBuf>,
    /// Open one blank window and nothing else (no engine, tray or plugins): the baseline the
    /// memory benchmark compares with.
    #[arg(long)]
    bare: bool,
}

/// Runs the app until it quits.
pub fn run() -> ExitCode {
    let started = Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.bare {
        return finish(run_bare());
    }
    let home = match args
        .home
        .map_or_else(|| tandem_engine::default_home(Role::Desktop), Ok)
    {
        Ok(home) => home,
        Err(e) => return fail(&e),
    };
    let keychain = tandem_engine::KeychainUse::from_env();
    let state = Engine::open_with(&home, keychain)
        .map_err(error::Error::from)
        .and_then(|engine| {
            AppState::new(
                &home,
                engine,
                Options {
                    broker: args.broker,
                    broker_ca: args.broker_ca,
                    qr_png: args.qr_png,
                    keychain,
                },
                started,
            )
        });
    match state {
        Ok(state) => finish(run_app(state)),
        Err(e) => fail(&e),
    }
}

fn run_app(state: AppState) -> tauri::Result<()> {
    // A second start on the same home shows the first window (apps on other homes run side by
    // side). On Linux this needs a D-Bus session bus; without one the plugin starts the app
    // normally, with a warning.
    let single = tauri_plugin_single_instance::Builder::new()
        .dbus_id(instance_id(state.home()))
        .callback(|app, _args, _cwd| desktop::show_main_window(app))
        .build();
    tauri::Builder::default()
        .plugin(single)
        .plugin(tauri_plugin_notification::init())
        .plugin(
            tauri_plugin_window_state::Builder::new()
                // Visibility is not restored: the app never starts hidden in the tray.
                .with_state_flags(
                    tauri_plugin_window_state::StateFlags::all()
                        - tauri_plugin_window_state::StateFlags::VISIBLE,
                )
                .build(),
        )
        .manage(state)
        .setup(|app| {
            let handle = app.handle().clone();
            desktop::create_main_window(&handle)?;
            let state = app.state::<AppState>().inner().clone();
            desktop::install(&handle, &state);
            tauri::async_runtime::spawn(async move {
                if let Err(e) = state.start_session_if_linked().await {
                    tracing::error!(error = %e, "cannot start the session");
                }
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::subscribe,
            commands::status,
            commands::about,
            commands::chats,
            commands::history,
            commands::search,
            commands::send,
            commands::react,
            commands::edit,
            commands::remove,
            commands::mark_read,
            commands::typing,
            commands::set_chat,
            commands::devices,
            commands::settings,
            commands::set_settings,
            commands::link_start,
            commands::link_cancel,
            commands::save_qr,
            commands::export,
            commands::logout,
            commands::ui_ready,
        ])
        .run(tauri::generate_context!())
}

/// The single-instance id of a home: the app's identifier and a hash of the home's path.
fn instance_id(home: &std::path::Path) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    let mut hasher = std::hash::DefaultHasher::new();
    home.hash(&mut hasher);
    format!("app.tandem.desktop.h{:016x}", hasher.finish())
}

/// The bare window's page: a few words of HTML, so that WebKit starts its web process as for
/// any real page (`about:blank` runs without one, which would flatter the baseline).
const BARE_PAGE: &str =
    "data:text/html,<!doctype html><meta charset=utf-8><title>Tandem</title><p>Tandem</p>";

/// One window showing a minimal page, its web view set up as the app's ([`desktop::lighten`]):
/// no engine, no tray, no plugins.
fn run_bare() -> tauri::Result<()> {
    tauri::Builder::default()
        .setup(|app| {
            let blank = tauri::Url::parse(BARE_PAGE)?;
            let window = tauri::WebviewWindowBuilder::new(
                app,
                desktop::MAIN,
                tauri::WebviewUrl::External(blank),
            )
            .title("Tandem (bare)")
            .build()?;
            desktop::lighten(&window);
            Ok(())
        })
        .run(tauri::generate_context!())
}

fn finish(result: tauri::Result<()>) -> ExitCode {
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

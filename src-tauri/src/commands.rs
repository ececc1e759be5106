//! The commands the UI calls (see `notes/app-api.md` for the contract): each a few lines over
//! the state and the engine. Listed in `build.rs` and granted in `capabilities/main.json`, in
//! this order.

use std::str::FromStr as _;

use tandem_engine::{
    ChatView, DeviceView, Engine, ExportFormat, Page, Request, SearchHitView, Status,
};
use tauri::State;
use tauri::ipc::Channel;

use crate::error::{Error, Result};
use crate::events::{AppEvent, ShellEvent};
use crate::files::{free_name, output_dir};
use crate::link::LinkMode;
use crate::settings::Settings;
use crate::state::{AboutView, AppState, Snapshot};

/// How many messages one page of a conversation holds.
const PAGE: usize = 50;
/// The most search hits returned.
const HITS: usize = 50;

/// Sends events to `events` from now on; returns what the first screen needs.
#[tauri::command]
pub async fn subscribe(state: State<'_, AppState>, events: Channel<AppEvent>) -> Result<Snapshot> {
    state.subscribe(events).await
}

/// The account, device, mode, store counts and sync progress.
#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Result<Status> {
    state.read(Engine::status).await
}

/// This device, for the settings screen.
#[tauri::command]
pub async fn about(state: State<'_, AppState>) -> Result<AboutView> {
    state.about().await
}

/// Every chat, pinned first, then by last activity.
#[tauri::command]
pub async fn chats(state: State<'_, AppState>) -> Result<Vec<ChatView>> {
    state.read(Engine::chats).await
}

/// One page of a chat, oldest first: the newest, or the page before, after or around a message.
#[tauri::command]
pub async fn history(
    state: State<'_, AppState>,
    chat: String,
    before: Option<String>,
    after: Option<String>,
    around: Option<String>,
) -> Result<Vec<tandem_engine::MessageView>> {
    let page = match (before, after, around) {
        (None, None, None) => Page::Newest,
        (Some(id), None, None) => Page::Before(id),
        (None, Some(id), None) => Page::After(id),
        (None, None, Some(id)) => Page::Around(id),
        _ => {
            return Err(Error::BadInput(
                "give at most one of before, after and around".into(),
            ));
        }
    };
    state
        .read(move |e| e.history_page(&chat, &page, PAGE))
        .await
}

/// Full-text search over all history (or one chat), newest first.
#[tauri::command]
pub async fn search(
    state: State<'_, AppState>,
    query: String,
    chat: Option<String>,
) -> Result<Vec<SearchHitView>> {
    if query.trim().is_empty() {
        return Ok(Vec::new());
    }
    state
        .read(move |e| e.search(&query, chat.as_deref(), HITS))
        .await
}

/// Sends a message (stored at once as pending; a `receipt` event follows).
#[tauri::command]
pub async fn send(
    state: State<'_, AppState>,
    chat: String,
    text: String,
    reply: Option<String>,
) -> Result<serde_json::Value> {
    state
        .request(Request::Send {
            chat,
            text,
            reply,
            wait: false,
            id: None,
        })
        .await
}

/// Reacts to a message ("" removes this account's reaction).
#[tauri::command]
pub async fn react(
    state: State<'_, AppState>,
    message: String,
    emoji: String,
) -> Result<serde_json::Value> {
    state.request(Request::React { message, emoji }).await
}

/// Edits one of this account's messages.
#[tauri::command]
pub async fn edit(
    state: State<'_, AppState>,
    message: String,
    text: String,
) -> Result<serde_json::Value> {
    state.request(Request::Edit { message, text }).await
}

/// Deletes one of this account's messages for everyone.
#[tauri::command]
pub async fn remove(state: State<'_, AppState>, message: String) -> Result<serde_json::Value> {
    state.request(Request::Delete { message }).await
}

/// Marks a chat read.
#[tauri::command]
pub async fn mark_read(state: State<'_, AppState>, chat: String) -> Result<()> {
    state.request(Request::Read { chat }).await.map(drop)
}

/// Tells the chat's members that this account is typing (or stopped).
#[tauri::command]
pub async fn typing(state: State<'_, AppState>, chat: String, on: bool) -> Result<()> {
    state.request(Request::Typing { chat, on }).await.map(drop)
}

/// Pins or mutes a chat (on this device).
#[tauri::command]
pub async fn set_chat(
    state: State<'_, AppState>,
    chat: String,
    pinned: Option<bool>,
    muted: Option<bool>,
) -> Result<ChatView> {
    let view = state
        .read(move |e| e.set_chat(&chat, pinned, muted))
        .await?;
    state.hub().chats_changed(std::time::Instant::now());
    Ok(view)
}

/// The account's devices, this one included.
#[tauri::command]
pub async fn devices(state: State<'_, AppState>) -> Result<Vec<DeviceView>> {
    state.read(Engine::devices).await
}

/// The app's settings.
#[tauri::command]
pub fn settings(state: State<'_, AppState>) -> Settings {
    state.settings()
}

/// Saves the app's settings.
#[tauri::command]
pub async fn set_settings(state: State<'_, AppState>, settings: Settings) -> Result<Settings> {
    let state = state.inner().clone();
    // Off the async workers: saving waits for the disk.
    tauri::async_runtime::spawn_blocking(move || state.set_settings(settings))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// Starts (or restarts, with this device name and mode) linking; `mode` is `multi-device`
/// (when absent) or `bridge`.
#[tauri::command]
pub async fn link_start(
    state: State<'_, AppState>,
    name: String,
    mode: Option<LinkMode>,
) -> Result<()> {
    state.link_start(&name, mode.unwrap_or_default()).await
}

/// Stops linking.
#[tauri::command]
pub async fn link_cancel(state: State<'_, AppState>) -> Result<()> {
    state.link_cancel().await;
    Ok(())
}

/// Saves the code shown now as a PNG in the Downloads folder; returns the path.
#[tauri::command]
pub async fn save_qr(state: State<'_, AppState>) -> Result<String> {
    let link = state.current_code()?;
    let path = free_name(&output_dir(), "Tandem QR code", "png")?;
    crate::link::write_png(&link, &path)?;
    Ok(path.display().to_string())
}

/// Exports a chat or everything as JSON or HTML into the Downloads folder; returns the path.
/// `export_progress` events follow the work.
#[tauri::command]
pub async fn export(
    state: State<'_, AppState>,
    format: String,
    chat: Option<String>,
) -> Result<String> {
    let format = ExportFormat::from_str(&format)?;
    let stem = match &chat {
        None => "Tandem export".to_owned(),
        Some(chat) => {
            let wanted = chat.clone();
            let name = state
                .read(move |e| {
                    Ok(e.chats()?
                        .into_iter()
                        .find(|c| c.id == wanted || c.name == wanted))
                })
                .await?
                .map_or_else(|| chat.clone(), |c| c.name);
            format!("Tandem export - {name}")
        }
    };
    let path = free_name(&output_dir(), &stem, format.as_str())?;
    let hub = state.hub().clone();
    let report = state
        .read(move |e| {
            e.export(format, chat.as_deref(), &path, &mut |done, total| {
                hub.emit(ShellEvent::ExportProgress { done, total });
            })
        })
        .await?;
    Ok(report.path.display().to_string())
}

/// Logs this device out and erases its data.
#[tauri::command]
pub async fn logout(state: State<'_, AppState>) -> Result<()> {
    state.logout().await
}

/// The UI says it is ready with `what` (printed once, for the benchmarks and the demo log).
#[tauri::command]
pub fn ui_ready(state: State<'_, AppState>, what: String) -> Result<()> {
    state.ui_ready(&what)
}

//! The commands the UI calls: each a few lines over the engine. Listed in `build.rs` and
//! granted in `capabilities/main.json`.

use tandem_engine::{ChatView, MessageView, SearchHitView, Status};
use tauri::State;

use crate::error::UiError;
use crate::state::AppState;

/// How many messages one page of a conversation holds.
const PAGE: usize = 50;

/// The account, device, mode and store counts.
#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Result<Status, UiError> {
    Ok(state.engine.status()?)
}

/// Every chat, pinned first, then by last activity.
#[tauri::command]
pub async fn chats(state: State<'_, AppState>) -> Result<Vec<ChatView>, UiError> {
    Ok(state.engine.chats()?)
}

/// One page of a chat, oldest first: the newest page, or the page before `before`.
#[tauri::command]
pub async fn history(
    state: State<'_, AppState>,
    chat: String,
    before: Option<String>,
) -> Result<Vec<MessageView>, UiError> {
    Ok(state.engine.history(&chat, PAGE, before.as_deref())?)
}

/// Full-text search over all history, newest first.
#[tauri::command]
pub async fn search(
    state: State<'_, AppState>,
    query: String,
    chat: Option<String>,
) -> Result<Vec<SearchHitView>, UiError> {
    Ok(state.engine.search(&query, chat.as_deref(), PAGE)?)
}

//! Tauri's build step. Every command the UI may call is listed here (so Tauri generates an
//! `allow-<command>` permission for it) and granted in `capabilities/main.json`; nothing else is.

/// The commands of `src/commands.rs`, in the order they appear there.
const COMMANDS: &[&str] = &[
    "subscribe",
    "status",
    "about",
    "chats",
    "history",
    "search",
    "send",
    "react",
    "edit",
    "remove",
    "mark_read",
    "typing",
    "set_chat",
    "devices",
    "settings",
    "set_settings",
    "link_start",
    "link_cancel",
    "save_qr",
    "export",
    "logout",
    "ui_ready",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )?;
    Ok(())
}

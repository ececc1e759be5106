//! Tauri's build step. Every command the UI may call is listed here (so Tauri generates an
//! `allow-<command>` permission for it) and granted in `capabilities/main.json`; nothing else is.

/// The commands of `src/commands.rs`, in the order they appear there.
const COMMANDS: &[&str] = &["status", "chats", "history", "search"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )?;
    Ok(())
}

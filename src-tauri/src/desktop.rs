//! How the app behaves on the desktop: the main window (closing hides it; links from messages
//! open in the system browser), the tray icon with the unread count and its menu, and system
//! notifications for new messages while the window is not focused. Nothing here is fatal: a
//! desktop without a tray host or a notification daemon still runs the app.

use tandem_engine::{ChatView, Event, MessageView};
use tauri::menu::{Menu, MenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::webview::NewWindowResponse;
use tauri::{AppHandle, Manager, Url, WebviewWindow, WebviewWindowBuilder, WindowEvent};
use tauri_plugin_notification::NotificationExt as _;

use crate::events::{AppEvent, ShellEvent};
use crate::settings::Settings;
use crate::state::AppState;

/// The main window's label (as in `tauri.conf.json` and the capability).
pub const MAIN: &str = "main";
/// The tray icon's id.
const TRAY: &str = "main";
/// The tray menu's items.
const SHOW: &str = "show";
const QUIT: &str = "quit";

/// What to do with a URL the page wants to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// The app's own pages: load it.
    Stay,
    /// A web link: open it in the system browser.
    Browser,
    /// Anything else (`file:`, `javascript:`, custom schemes): ignore it.
    Block,
}

/// Decides what happens to a navigation to `url`.
#[must_use]
pub fn link_action(url: &Url) -> LinkAction {
    match url.scheme() {
        "tauri" | "asset" | "ipc" => LinkAction::Stay,
        "http" | "https"
            if matches!(
                url.host_str(),
                Some("tauri.localhost" | "asset.localhost" | "ipc.localhost")
            ) =>
        {
            LinkAction::Stay
        }
        "http" | "https" => LinkAction::Browser,
        "about" if url.path() == "blank" => LinkAction::Stay,
        _ => LinkAction::Block,
    }
}

fn open_in_browser(url: &Url) {
    if let Err(e) = tauri_plugin_opener::open_url(url.as_str(), None::<&str>) {
        tracing::warn!(%url, error = %e, "cannot open the link in the system browser");
    }
}

/// Creates the main window from its configuration, with the link policy of [`link_action`]
/// for navigations and new windows (`target="_blank"`), and closing that hides it.
///
/// # Errors
/// When the window cannot be created.
pub fn create_main_window(app: &AppHandle) -> tauri::Result<WebviewWindow> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN)
        .cloned()
        .unwrap_or_default();
    let window = WebviewWindowBuilder::from_config(app, &config)?
        .on_navigation(|url| match link_action(url) {
            LinkAction::Stay => true,
            LinkAction::Browser => {
                open_in_browser(url);
                false
            }
            LinkAction::Block => {
                tracing::warn!(%url, "blocked a navigation away from the app");
                false
            }
        })
        .on_new_window(|url, _features| {
            match link_action(&url) {
                LinkAction::Browser => open_in_browser(&url),
                LinkAction::Stay | LinkAction::Block => {
                    tracing::warn!(%url, "blocked a new window");
                }
            }
            NewWindowResponse::Deny
        })
        .build()?;
    lighten(&window);
    let hide = window.clone();
    window.on_window_event(move |event| {
        if let WindowEvent::CloseRequested { api, .. } = event {
            // Closing hides to the tray; the session keeps running. "Quit" ends the app.
            api.prevent_close();
            if let Err(e) = hide.hide() {
                tracing::warn!(error = %e, "cannot hide the window");
            }
        }
    });
    Ok(window)
}

/// Sets the web view up for a page of the app's own rather than pages from the web:
/// - no memory caches (decoded resources, back/forward pages): its page comes from the app's
///   assets, and those caches would only hold memory;
/// - no accelerated compositing: WebKit then paints the page in one software layer instead of
///   a tree of composited layers (on a machine without a GPU, through a software GL), which
///   costs 50 to 75 MB less for each window measured (`tandem-bench app`), and a chat
///   client's page (text, a few transitions) scrolls as smoothly without it.
///
/// The bare window of the memory benchmark is set up the same way, so that the figure
/// compares the app with the same window without Tandem.
pub fn lighten(window: &WebviewWindow) {
    #[cfg(target_os = "linux")]
    {
        let result = window.with_webview(|webview| {
            use webkit2gtk::{
                CacheModel, HardwareAccelerationPolicy, SettingsExt as _, WebContextExt as _,
                WebViewExt,
            };
            let view = webview.inner();
            if let Some(context) = view.context() {
                context.set_cache_model(CacheModel::DocumentViewer);
            }
            if let Some(settings) = WebViewExt::settings(&view) {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot set the web view's cache model");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = window;
}

/// Shows, unminimizes and focuses the main window.
pub fn show_main_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(MAIN) {
        let shown = window
            .show()
            .and_then(|()| window.unminimize())
            .and_then(|()| window.set_focus());
        if let Err(e) = shown {
            tracing::warn!(error = %e, "cannot show the window");
        }
    }
}

/// The tray icon's tooltip and title for `unread` messages.
#[must_use]
pub fn tray_text(unread: u64) -> (String, Option<String>) {
    match unread {
        0 => ("Tandem".to_owned(), None),
        1 => ("Tandem: 1 unread message".to_owned(), Some("1".to_owned())),
        n => (format!("Tandem: {n} unread messages"), Some(n.to_string())),
    }
}

/// Creates the tray icon (the window's icon; menu "Show Tandem", "Quit"). A desktop without a
/// tray (no StatusNotifier host, no indicator library) only gets a warning in the log.
pub fn create_tray(app: &AppHandle) {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build_tray(app)));
    match built {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "no tray icon"),
        // The indicator library is loaded on first use and panics when it is missing.
        Err(_) => tracing::warn!("no tray icon: the system's indicator library is missing"),
    }
}

fn build_tray(app: &AppHandle) -> tauri::Result<()> {
    let show = MenuItem::with_id(app, SHOW, "Show Tandem", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT, "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &quit])?;
    let (tooltip, _) = tray_text(0);
    let mut tray = TrayIconBuilder::with_id(TRAY)
        .menu(&menu)
        .tooltip(tooltip)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id().as_ref() {
            SHOW => show_main_window(app),
            QUIT => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                show_main_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

/// Shows the unread total on the tray icon (read on a blocking thread).
pub fn refresh_tray(app: &AppHandle, state: &AppState) {
    let Some(tray) = app.tray_by_id(TRAY) else {
        return;
    };
    let state = state.clone();
    tauri::async_runtime::spawn(async move {
        let unread = match state.read(tandem_engine::Engine::chats).await {
            Ok(chats) => chats.iter().map(|c| c.unread).sum(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot count unread messages for the tray");
                return;
            }
        };
        let (tooltip, title) = tray_text(unread);
        if let Err(e) = tray
            .set_tooltip(Some(tooltip))
            .and_then(|()| tray.set_title(title))
        {
            tracing::warn!(error = %e, "cannot update the tray icon");
        }
    });
}

/// The notification for a new message, if one is due: from someone else, notifications on,
/// the window not focused, the chat not muted. Title: the chat's name; body: the text, or
/// "New message" without previews.
#[must_use]
pub fn notification(
    message: &MessageView,
    chat: Option<&ChatView>,
    settings: Settings,
    focused: bool,
) -> Option<(String, String)> {
    if message.from_me
        || !settings.notifications
        || focused
        || chat.is_some_and(|c| c.muted)
        || matches!(message.kind.as_str(), "system" | "deleted")
    {
        return None;
    }
    let title = chat
        .map(|c| c.name.clone())
        .or_else(|| message.sender.clone())
        .unwrap_or_else(|| "Tandem".to_owned());
    let body = if settings.preview && !message.text.trim().is_empty() {
        message.text.chars().take(200).collect()
    } else {
        "New message".to_owned()
    };
    Some((title, body))
}

fn main_window_focused(app: &AppHandle) -> bool {
    app.get_webview_window(MAIN)
        .is_some_and(|w| w.is_visible().unwrap_or(false) && w.is_focused().unwrap_or(false))
}

/// Shows a system notification for `message` if one is due (see [`notification`]).
fn notify(app: &AppHandle, state: &AppState, message: &MessageView) {
    let settings = state.settings();
    if message.from_me || !settings.notifications {
        return;
    }
    let focused = main_window_focused(app);
    if focused {
        tracing::debug!(chat = %message.chat, "no notification: the window is focused");
        return;
    }
    let app = app.clone();
    let state = state.clone();
    let message = message.clone();
    tauri::async_runtime::spawn(async move {
        let chat_id = message.chat.clone();
        let chat = state
            .read(move |e| Ok(e.chats()?.into_iter().find(|c| c.id == chat_id)))
            .await
            .unwrap_or_default();
        let Some((title, body)) = notification(&message, chat.as_ref(), settings, focused) else {
            return;
        };
        tracing::debug!(%title, "notifying a new message");
        if let Err(e) = app.notification().builder().title(title).body(body).show() {
            tracing::warn!(error = %e, "cannot show a notification");
        }
    });
}

/// Everything the desktop does on its own: the tray, and listening to events for
/// notifications and the unread count.
pub fn install(app: &AppHandle, state: &AppState) {
    create_tray(app);
    refresh_tray(app, state);
    let handle = app.clone();
    let listening = state.clone();
    state.hub().listen(Box::new(move |event| match event {
        AppEvent::Engine(Event::Message { message }) => notify(&handle, &listening, message),
        AppEvent::Shell(ShellEvent::ChatsChanged) => refresh_tray(&handle, &listening),
        _ => {}
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn web_links_open_in_the_browser_and_the_app_stays_in_its_window() {
        assert_eq!(link_action(&url("tauri://localhost/")), LinkAction::Stay);
        assert_eq!(
            link_action(&url("http://tauri.localhost/index.html")),
            LinkAction::Stay
        );
        assert_eq!(link_action(&url("about:blank")), LinkAction::Stay);
        assert_eq!(
            link_action(&url("https://example.org/page?q=1")),
            LinkAction::Browser
        );
        assert_eq!(
            link_action(&url("http://192.168.1.1/")),
            LinkAction::Browser
        );
        for blocked in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "mailto:a@example.org",
            "data:text/html,<b>x</b>",
            "about:config",
            "smb://server/share",
        ] {
            assert_eq!(link_action(&url(blocked)), LinkAction::Block, "{blocked}");
        }
    }

    #[test]
    fn the_tray_shows_the_unread_count() {
        assert_eq!(tray_text(0), ("Tandem".to_owned(), None));
        assert_eq!(
            tray_text(1),
            ("Tandem: 1 unread message".to_owned(), Some("1".to_owned()))
        );
        assert_eq!(
            tray_text(42),
            (
                "Tandem: 42 unread messages".to_owned(),
                Some("42".to_owned())
            )
        );
    }

    fn message(from_me: bool, text: &str) -> MessageView {
        MessageView {
            id: "m".into(),
            chat: "c".into(),
            sender: Some("Bob".into()),
            from_me,
            ts: 0,
            kind: "text".into(),
            text: text.into(),
            status: None,
            reply_to: None,
            reactions: Vec::new(),
            edited: false,
            deleted: false,
        }
    }

    fn chat(muted: bool) -> ChatView {
        ChatView {
            id: "c".into(),
            name: "Book club".into(),
            kind: "group",
            messages: 3,
            last_ts: Some(0),
            unread: 1,
            muted,
            pinned: false,
            last: None,
        }
    }

    #[test]
    fn a_message_from_someone_else_is_notified_while_the_window_is_not_focused() {
        let on = Settings::default();
        assert_eq!(
            notification(
                &message(false, "See you at 8"),
                Some(&chat(false)),
                on,
                false
            ),
            Some(("Book club".to_owned(), "See you at 8".to_owned()))
        );
        // Focused window, own message, muted chat, notifications off: nothing.
        assert_eq!(
            notification(&message(false, "x"), Some(&chat(false)), on, true),
            None
        );
        assert_eq!(
            notification(&message(true, "x"), Some(&chat(false)), on, false),
            None
        );
        assert_eq!(
            notification(&message(false, "x"), Some(&chat(true)), on, false),
            None
        );
        let off = Settings {
            notifications: false,
            ..on
        };
        assert_eq!(
            notification(&message(false, "x"), Some(&chat(false)), off, false),
            None
        );
    }

    #[test]
    fn without_previews_the_body_hides_the_text() {
        let no_preview = Settings {
            preview: false,
            ..Settings::default()
        };
        assert_eq!(
            notification(
                &message(false, "secret"),
                Some(&chat(false)),
                no_preview,
                false
            ),
            Some(("Book club".to_owned(), "New message".to_owned()))
        );
        // A chat not found (yet): the sender's name is the title.
        assert_eq!(
            notification(&message(false, "hi"), None, Settings::default(), false),
            Some(("Bob".to_owned(), "hi".to_owned()))
        );
    }
}

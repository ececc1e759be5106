use std::sync::{Arc, Mutex};
use std::time::Instant;

use tandem_engine::{Engine, KeychainUse, Request};
use tauri::ipc::{Channel, InvokeResponseBody};

use super::*;
use crate::settings::Theme;
use tandem_net::EmbeddedBroker;

fn options() -> Options {
    Options {
        broker: "mqtt://127.0.0.1:1".into(),
        broker_ca: None,
        qr_png: None,
        keychain: KeychainUse::Off,
    }
}

/// A fresh, unlinked desktop home.
fn unlinked(home: &Path) -> AppState {
    let engine = Engine::open_with(home, KeychainUse::Off).unwrap();
    AppState::new(home, engine, options(), Instant::now()).unwrap()
}

/// A fresh, unlinked desktop home whose links meet the phone on `broker`.
fn unlinked_on(home: &Path, broker: &str) -> AppState {
    let engine = Engine::open_with(home, KeychainUse::Off).unwrap();
    let options = Options {
        broker: broker.to_owned(),
        ..options()
    };
    AppState::new(home, engine, options, Instant::now()).unwrap()
}

/// The link of the first `code` event the UI was sent after its first `after` events
/// (waiting up to 20 s for it).
async fn code_after(seen: &Mutex<Vec<serde_json::Value>>, after: usize) -> String {
    let give_up = Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found = seen
            .lock()
            .unwrap()
            .iter()
            .skip(after)
            .find(|e| e["event"] == "code")
            .map(|e| e["link"].as_str().unwrap().to_owned());
        if let Some(link) = found {
            return link;
        }
        assert!(
            Instant::now() < give_up,
            "no code shown: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A phone's home: Alice's account with two synthetic chats of 20 messages and Bob, a
/// contact (whose own account is made in `bob`).
fn primary(home: &Path, bob: &Path) -> AppState {
    let engine = Engine::open_with(home, KeychainUse::Off).unwrap();
    engine
        .init_primary("Alice", Some("mqtt://127.0.0.1:1"))
        .unwrap();
    engine.generate(2, 20, 7).unwrap();
    let bob_engine = Engine::open_with(bob, KeychainUse::Off).unwrap();
    bob_engine
        .init_primary("Bob", Some("mqtt://127.0.0.1:1"))
        .unwrap();
    engine
        .contact_add(&bob_engine.contact_link().unwrap(), None)
        .unwrap();
    AppState::new(home, engine, options(), Instant::now()).unwrap()
}

/// Subscribes a channel that captures what the UI would receive.
async fn subscribe(state: &AppState) -> (Snapshot, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let channel = Channel::new(move |body| {
        if let InvokeResponseBody::Json(json) = body {
            sink.lock()
                .unwrap()
                .push(serde_json::from_str(&json).unwrap());
        }
        Ok(())
    });
    let snapshot = state.subscribe(channel).await.unwrap();
    (snapshot, seen)
}

#[tokio::test]
async fn a_fresh_home_starts_unlinked_with_a_snapshot_for_the_link_screen() {
    let home = tempfile::tempdir().unwrap();
    let state = unlinked(home.path());
    let (snapshot, _) = subscribe(&state).await;
    assert_eq!(snapshot.connection, Connection::Unlinked);
    assert!(!snapshot.status.linked);
    assert_eq!(snapshot.about.home, home.path().display().to_string());
    assert_eq!(snapshot.settings, Settings::default());
    assert!(!snapshot.host_name.is_empty());
    let json = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(json["about"]["mode"], "unlinked");
    assert_eq!(json["about"]["home"], home.path().display().to_string());
    assert_eq!(json["connection"], "unlinked");
    // Starting the session of an unlinked device does nothing.
    state.start_session_if_linked().await.unwrap();
    assert_eq!(state.hub().connection(), Connection::Unlinked);
    assert_eq!(state.current_code().unwrap_err().kind(), "no_code");
}

#[tokio::test]
async fn the_ready_line_is_printed_once_per_screen() {
    let home = tempfile::tempdir().unwrap();
    let state = unlinked(home.path());
    let first = state.ready_line("chat_list").unwrap();
    let ms: u64 = first
        .strip_prefix("ready: chat_list ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(ms < 60_000, "{first}");
    assert_eq!(state.ready_line("chat_list"), None);
    assert_eq!(
        state
            .ready_line("link screen\n!")
            .as_deref()
            .map(|l| l.split(' ').nth(1)),
        Some(Some("linkscreen"))
    );
}

#[tokio::test]
async fn settings_are_saved_in_the_home_and_the_ui_hears_of_them() {
    let home = tempfile::tempdir().unwrap();
    let state = unlinked(home.path());
    let (_, seen) = subscribe(&state).await;
    let dark = Settings {
        theme: Theme::Dark,
        notifications: false,
        preview: false,
    };
    assert_eq!(state.set_settings(dark).unwrap(), dark);
    assert_eq!(state.settings(), dark);
    assert_eq!(Settings::load(home.path()), dark);
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &serde_json::json!({"event": "settings", "settings": {"theme": "dark", "notifications": false, "preview": false}})
    );
    // A restarted app reads them back.
    drop(state);
    assert_eq!(unlinked(home.path()).settings(), dark);
}

#[tokio::test]
async fn without_a_session_a_sent_message_is_stored_pending_and_shown_at_once() {
    let home = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    let state = primary(home.path(), bob.path());
    let (_, seen) = subscribe(&state).await;
    let chats = state.read(Engine::chats).await.unwrap();
    let chat = chats.into_iter().find(|c| c.name == "Bob").unwrap();
    let sent = state
        .request(Request::Send {
            chat: chat.id.clone(),
            text: "See you at eight".into(),
            reply: None,
            wait: false,
            id: None,
        })
        .await
        .unwrap();
    assert_eq!(sent["text"], "See you at eight");
    assert_eq!(sent["status"], "pending");
    assert_eq!(sent["from_me"], true);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0]["event"], "message");
        assert_eq!(seen[0]["message"]["id"], sent["id"]);
        assert_eq!(seen[1], serde_json::json!({"event": "chats_changed"}));
    }
    // The stored message is the newest of its chat's newest page.
    let id = sent["id"].as_str().unwrap().to_owned();
    let page = state
        .read(move |e| e.history_page(&chat.id, &tandem_engine::Page::Newest, 50))
        .await
        .unwrap();
    assert_eq!(page.last().unwrap().id, id);
    // Edits and reactions go the same way and come back as updates.
    let edited = state
        .request(Request::Edit {
            message: id.clone(),
            text: "See you at nine".into(),
        })
        .await
        .unwrap();
    assert_eq!(edited["edited"], true);
    assert_eq!(seen.lock().unwrap().last().unwrap()["event"], "update");
}

#[tokio::test]
async fn the_phone_home_cannot_log_out_nor_link() {
    let home = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    let state = primary(home.path(), bob.path());
    assert_eq!(state.logout().await.unwrap_err().kind(), "bad_input");
    assert_eq!(
        state
            .link_start("laptop", LinkMode::MultiDevice)
            .await
            .unwrap_err()
            .kind(),
        "bad_input"
    );
    // Nothing was erased.
    assert!(state.read(Engine::status).await.unwrap().linked);
}

#[tokio::test]
async fn logging_out_erases_the_store_and_opens_a_fresh_one() {
    let home = tempfile::tempdir().unwrap();
    let state = unlinked(home.path());
    // Some local data to erase: a synthetic history.
    state.read(|e| e.generate(1, 5, 1)).await.unwrap();
    assert_eq!(state.read(Engine::status).await.unwrap().messages, 5);
    let (_, seen) = subscribe(&state).await;
    // A command holding the engine while logging out is waited for.
    let held = state.engine().unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        drop(held);
    });
    state.logout().await.unwrap();
    release.await.unwrap();
    let status = state.read(Engine::status).await.unwrap();
    assert!(!status.linked);
    assert_eq!(status.messages, 0);
    assert_eq!(state.hub().connection(), Connection::Unlinked);
    assert!(
        seen.lock()
            .unwrap()
            .contains(&serde_json::json!({"event": "chats_changed"}))
    );
}

#[test]
fn the_link_mode_is_read_from_the_ui_s_words_and_is_multi_device_by_default() {
    let read = |v: serde_json::Value| serde_json::from_value::<LinkMode>(v);
    assert_eq!(
        read(serde_json::json!("multi-device")).unwrap(),
        LinkMode::MultiDevice
    );
    assert_eq!(read(serde_json::json!("bridge")).unwrap(), LinkMode::Bridge);
    assert_eq!(LinkMode::default(), LinkMode::MultiDevice);
    for odd in ["multi", "Bridge", "", "primary"] {
        assert!(read(serde_json::json!(odd)).is_err(), "{odd:?} was taken");
    }
    // The command's argument may be absent (an older UI): multi-device then.
    let absent: Option<LinkMode> = serde_json::from_value(serde_json::Value::Null).unwrap();
    assert_eq!(absent.unwrap_or_default(), LinkMode::MultiDevice);
}

#[tokio::test]
async fn the_chosen_mode_decides_the_code_shown_and_choosing_again_restarts_linking() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("mqtt://{}", broker.local_addr());
    let home = tempfile::tempdir().unwrap();
    let state = unlinked_on(home.path(), &url);
    let (_, seen) = subscribe(&state).await;

    // Through the phone: a bridge-mode code, carrying this computer's bridge key.
    state
        .link_start("Alice's laptop", LinkMode::Bridge)
        .await
        .unwrap();
    let bridge = code_after(&seen, 0).await;
    assert!(bridge.starts_with("tandem://link?"), "{bridge}");
    assert!(bridge.contains("mode=bridge"), "{bridge}");
    assert!(bridge.contains("&bridge="), "{bridge}");
    assert!(bridge.contains("name=Alice"), "{bridge}");
    assert_eq!(state.current_code().unwrap(), bridge);

    // Choosing "on its own" again starts over with a multi-device code.
    let shown = seen.lock().unwrap().len();
    state
        .link_start("Alice's laptop", LinkMode::MultiDevice)
        .await
        .unwrap();
    let multi = code_after(&seen, shown).await;
    assert!(!multi.contains("mode="), "{multi}");
    assert!(!multi.contains("&bridge="), "{multi}");
    assert_eq!(state.current_code().unwrap(), multi);

    // Cancelled, nothing is shown and nothing was stored: still unlinked.
    state.link_cancel().await;
    assert_eq!(state.current_code().unwrap_err().kind(), "no_code");
    let status = state.read(Engine::status).await.unwrap();
    assert!(!status.linked);
    assert_eq!(status.mode, "unlinked");
}

//! Where the key lives: key files created 0600, reused forever, refused when damaged; the
//! keychain path tried only with a session bus, failing fast without one. Tests that let the
//! store try the keychain run in a child process whose environment points at no real bus, so
//! no test ever touches a developer's keychain.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::{ChatId, ChatKind, NewChat, Store};

fn chat() -> NewChat {
    NewChat {
        id: ChatId::from([1; 16]),
        kind: ChatKind::Direct,
        name: "Bob".into(),
        peer_account: Some(b"bob".to_vec()),
        created_at: 0,
        members: Vec::new(),
    }
}

#[test]
fn without_a_keychain_the_key_goes_to_a_file_created_0600_and_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (store, source) = Store::open_in_home_with(&home, KeychainUse::Off).unwrap();
    assert_eq!(source, KeySource::File);
    store.write(|w| w.upsert_chat(&chat())).unwrap();
    drop(store);

    let key_file = home.join(KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key file mode {mode:o}");
        let home_mode = std::fs::metadata(&home).unwrap().permissions().mode() & 0o777;
        assert_eq!(home_mode, 0o700, "home mode {home_mode:o}");
    }
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(text.trim().len(), 64);
    assert!(home.join(crate::DB_FILE).exists());

    // Reopened (even with the keychain allowed: the file is where the key lives now).
    let (store, source) = Store::open_in_home_with(&home, KeychainUse::Auto).unwrap();
    assert_eq!(source, KeySource::File);
    assert_eq!(store.chats().unwrap().len(), 1);
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        text,
        "the key file is never rewritten"
    );
}

#[test]
fn a_store_whose_key_is_gone_is_refused_not_rekeyed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    drop(Store::open_in_home_with(home, KeychainUse::Off).unwrap());
    std::fs::remove_file(home.join(KEY_FILE)).unwrap();
    let err = Store::open_in_home_with(home, KeychainUse::Off).unwrap_err();
    assert!(matches!(err, OpenError::KeyUnavailable { .. }), "{err:?}");
    assert!(
        !home.join(KEY_FILE).exists(),
        "no new key was made for the old store"
    );
}

#[test]
fn a_damaged_key_file_is_a_typed_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(home.join(KEY_FILE), "not a key\n").unwrap();
    let err = Store::open_in_home_with(home, KeychainUse::Off).unwrap_err();
    assert!(
        matches!(&err, OpenError::KeyFile { path, .. } if path.ends_with(KEY_FILE)),
        "{err:?}"
    );
    assert!(err.to_string().contains(KEY_FILE));
}

#[test]
fn a_key_file_of_another_store_is_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    drop(Store::open_in_home_with(home, KeychainUse::Off).unwrap());
    std::fs::write(home.join(KEY_FILE), format!("{}\n", "AB".repeat(32))).unwrap();
    let err = Store::open_in_home_with(home, KeychainUse::Off).unwrap_err();
    assert!(matches!(err, OpenError::WrongKey { .. }), "{err:?}");
}

#[test]
fn key_files_accept_either_case_and_surrounding_whitespace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(KEY_FILE);
    std::fs::write(
        &path,
        format!("  {}{}\r\n", "AB".repeat(16), "cd".repeat(16)),
    )
    .unwrap();
    let key = read_key_file(&path).unwrap();
    assert_eq!(&key.expose()[..2], &[0xab, 0xab]);
    assert_eq!(key.expose()[31], 0xcd);
}

#[test]
fn the_keychain_user_is_stable_per_home_and_differs_between_homes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    assert_eq!(keychain_user(a.path()), keychain_user(a.path()));
    assert_eq!(keychain_user(a.path()), keychain_user(&a.path().join(".")));
    assert_ne!(keychain_user(a.path()), keychain_user(b.path()));
    assert!(keychain_user(a.path()).starts_with("store-"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// Random bytes in a key file are a typed error (or, if they happen to be 64 hex digits,
    /// a key): never a panic.
    #[test]
    fn random_key_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), hexish in "[0-9a-fA-F \\n]{60,70}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        for contents in [bytes.as_slice(), hexish.as_bytes()] {
            std::fs::write(&path, contents).unwrap();
            match read_key_file(&path) {
                Ok(key) => prop_assert_eq!(key.expose().len(), 32),
                Err(OpenError::KeyFile { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }
    }
}

/// Runs `open_in_home` (reading `TANDEM_KEYRING` itself) in a child copy of this test binary
/// with the given environment; returns its key source line and how long the child took.
fn open_in_child(home: &Path, env: &[(&str, &str)]) -> (String, Duration) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "key::tests::child_open_in_home",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env_remove("DBUS_SESSION_BUS_ADDRESS")
    .env_remove("XDG_RUNTIME_DIR")
    .env_remove(KEYRING_ENV)
    .env("TANDEM_STORE_TEST_HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .find("source=")
        .map(|at| stdout[at..].lines().next().unwrap_or_default().to_owned());
    let line = line.unwrap_or_default();
    (line, took)
}

/// Not a test of its own: the body the tests above run in a child process.
#[test]
#[ignore = "run by the keychain tests in a child process with a controlled environment"]
fn child_open_in_home() {
    let home = std::env::var_os("TANDEM_STORE_TEST_HOME").unwrap();
    let started = Instant::now();
    let (_store, source) = Store::open_in_home(Path::new(&home)).unwrap();
    println!("source={source:?} ms={}", started.elapsed().as_millis());
}

#[test]
fn with_no_session_bus_the_keychain_is_skipped_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (line, took) = open_in_child(dir.path(), &[]);
    assert!(line.starts_with("source=File"), "{line}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(dir.path().join(KEY_FILE).exists());
}

#[test]
fn with_a_dead_session_bus_the_keychain_fails_fast_and_a_file_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let bus = format!("unix:path={}", dir.path().join("no-such-bus").display());
    let (line, took) = open_in_child(dir.path(), &[("DBUS_SESSION_BUS_ADDRESS", &bus)]);
    assert!(line.starts_with("source=File"), "{line}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn tandem_keyring_off_forces_the_file_even_with_a_bus_address() {
    let dir = tempfile::tempdir().unwrap();
    let bus = format!("unix:path={}", dir.path().join("no-such-bus").display());
    let (line, _) = open_in_child(
        dir.path(),
        &[("DBUS_SESSION_BUS_ADDRESS", &bus), (KEYRING_ENV, "off")],
    );
    assert!(line.starts_with("source=File"), "{line}");
    // Reopening in a fresh process reads the same file.
    let (line, _) = open_in_child(dir.path(), &[(KEYRING_ENV, "OFF")]);
    assert!(line.starts_with("source=File"), "{line}");
}

/// The keychain path end to end, against a real Secret Service (gnome-keyring) on a private
/// session bus with its own temporary home: the first open puts a new key in the keychain and
/// makes no key file; the second reads it back from there.
#[test]
#[ignore = "needs dbus-run-session and gnome-keyring-daemon; run with --ignored"]
fn with_a_real_secret_service_the_key_lives_in_the_keychain() {
    let dir = tempfile::tempdir().unwrap();
    let keyring_home = dir.path().join("keyring-home");
    let home = dir.path().join("store");
    std::fs::create_dir_all(&keyring_home).unwrap();
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "export HOME='{kr}'; echo -n test | gnome-keyring-daemon --unlock --components=secrets >/dev/null; \
         for i in 1 2; do TANDEM_STORE_TEST_HOME='{home}' '{exe}' --exact key::tests::child_open_in_home --ignored --nocapture; done",
        kr = keyring_home.display(),
        home = home.display(),
        exe = exe.display(),
    );
    let out = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &script])
        .env_remove(KEYRING_ENV)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("source=Keychain").count(), 2, "{stdout}");
    assert!(
        !home.join(KEY_FILE).exists(),
        "no key file beside a keychain key"
    );
}

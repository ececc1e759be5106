//! Where a store's key lives: the OS keychain (Secret Service over D-Bus on Linux), or, where
//! no keychain runs, a key file `<home>/store.key` created with mode 0600. Once a key is in one
//! place it is always read from there.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::OpenError;
use crate::rowid::fnv1a64;
use crate::secret::StoreKey;

/// The keychain service name under which store keys are kept.
pub const KEYCHAIN_SERVICE: &str = "tandem";
/// The environment variable that, set to `off`, keeps keys out of the keychain (tests, CI).
pub const KEYRING_ENV: &str = "TANDEM_KEYRING";
/// The key file's name inside the home directory.
pub const KEY_FILE: &str = "store.key";
/// How long a keychain call may take before the store gives up on it (an unlock prompt the
/// user ignores, a keychain daemon that does not answer).
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether [`crate::Store::open_in_home_with`] may use the OS keychain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeychainUse {
    /// Use the keychain when a session bus runs; fall back to a key file otherwise.
    Auto,
    /// Never touch the keychain: key file only (tests, CI, servers, `--no-keychain`).
    Off,
}

impl KeychainUse {
    /// [`KeychainUse::Off`] when `TANDEM_KEYRING=off` is set, else [`KeychainUse::Auto`].
    #[must_use]
    pub fn from_env() -> Self {
        if std::env::var(KEYRING_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
            Self::Off
        } else {
            Self::Auto
        }
    }
}

/// Where a store's key was found (or put).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// The OS keychain.
    Keychain,
    /// The key file `<home>/store.key` (mode 0600): weaker, the key sits beside the database.
    File,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Keychain => "OS keychain",
            Self::File => "key file",
        })
    }
}

/// The keychain account name for a home directory: a stable hash of its canonical path, so two
/// homes (profiles, tests) never share a key.
pub fn keychain_user(home: &Path) -> String {
    let canonical = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    format!("store-{:016x}", fnv1a64(path_bytes(&canonical).as_ref()))
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    std::borrow::Cow::Borrowed(path.as_os_str().as_bytes())
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    std::borrow::Cow::Owned(path.to_string_lossy().into_owned().into_bytes())
}

/// Finds the key of the store in `home`, or makes one when the store is new.
///
/// `db_exists` says whether the database file is already there: a missing key for an existing
/// database is an error (a new key would not open it), never a silent new key.
pub(crate) fn load_or_create(
    home: &Path,
    db_exists: bool,
    keychain: KeychainUse,
) -> Result<(StoreKey, KeySource), OpenError> {
    let file = home.join(KEY_FILE);
    if file.exists() {
        let key = read_key_file(&file)?;
        // Warned once, when the file was created; every later open only notes it.
        tracing::info!(path = %file.display(), "the store key is kept on disk beside the database, not in an OS keychain");
        return Ok((key, KeySource::File));
    }
    match keychain_unavailable(keychain) {
        None => {
            let user = keychain_user(home);
            match keychain_get(&user) {
                Ok(Some(key)) => return Ok((key, KeySource::Keychain)),
                Ok(None) if db_exists => {
                    return Err(OpenError::KeyUnavailable {
                        path: home.join(crate::DB_FILE),
                        reason: format!(
                            "no key file {} and no keychain entry {KEYCHAIN_SERVICE}/{user}",
                            file.display()
                        ),
                    });
                }
                Ok(None) => match keychain_create(&user) {
                    Ok(key) => return Ok((key, KeySource::Keychain)),
                    Err(reason) => {
                        tracing::warn!(%reason, "cannot store the key in the OS keychain; falling back to a key file");
                    }
                },
                Err(reason) if db_exists => {
                    return Err(OpenError::KeyUnavailable {
                        path: home.join(crate::DB_FILE),
                        reason: format!(
                            "no key file {}, and the keychain failed: {reason}",
                            file.display()
                        ),
                    });
                }
                Err(reason) => {
                    tracing::warn!(%reason, "the OS keychain is not usable; falling back to a key file");
                }
            }
        }
        Some(reason) if db_exists => {
            return Err(OpenError::KeyUnavailable {
                path: home.join(crate::DB_FILE),
                reason: format!("no key file {}, and no keychain: {reason}", file.display()),
            });
        }
        Some(reason) => {
            tracing::debug!(%reason, "not using the OS keychain");
        }
    }
    let key = create_key_file(&file)?;
    tracing::warn!(
        path = %file.display(),
        "no OS keychain: the store key is kept on disk (mode 0600) beside the database"
    );
    Ok((key, KeySource::File))
}

/// Why the keychain must not be tried here, or `None` when it may be.
///
/// The check comes before any D-Bus call so that a machine with no session bus fails at once
/// instead of letting libdbus try to autolaunch one.
pub(crate) fn keychain_unavailable(keychain: KeychainUse) -> Option<String> {
    if keychain == KeychainUse::Off {
        return Some(format!(
            "keychain turned off ({KEYRING_ENV}=off or by the caller)"
        ));
    }
    session_bus_missing()
}

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn session_bus_missing() -> Option<String> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    // libdbus also finds a per-user bus at $XDG_RUNTIME_DIR/bus when the variable is unset.
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| Path::new(&dir).join("bus").exists()) {
        return None;
    }
    Some("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)".to_owned())
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
fn session_bus_missing() -> Option<String> {
    Some("this build has no keychain backend for this operating system".to_owned())
}

/// Runs a keychain call on its own thread, giving up after [`KEYCHAIN_TIMEOUT`].
fn with_timeout<T: Send + 'static>(
    what: &'static str,
    call: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("tandem-keychain".to_owned())
        .spawn(move || {
            // The receiver may have given up; nothing to do then.
            let _ = tx.send(call());
        })
        .map_err(|e| format!("{what}: cannot start a thread: {e}"))?;
    match rx.recv_timeout(KEYCHAIN_TIMEOUT) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "{what}: no answer within {} s",
            KEYCHAIN_TIMEOUT.as_secs()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!("{what}: the keychain call died")),
    }
}

fn entry(user: &str) -> Result<keyring::Entry, String> {
    keyring::Entry::new(KEYCHAIN_SERVICE, user).map_err(|e| e.to_string())
}

/// The key in the keychain; `Ok(None)` when there is no entry.
fn keychain_get(user: &str) -> Result<Option<StoreKey>, String> {
    let user = user.to_owned();
    with_timeout("reading the keychain", move || {
        match entry(&user)?.get_secret() {
            Ok(secret) => {
                let secret = crate::secret::SecretBytes::new(secret);
                let bytes: [u8; StoreKey::LEN] = secret.expose().try_into().map_err(|_| {
                    format!(
                        "the keychain entry holds {} bytes, not {}",
                        secret.len(),
                        StoreKey::LEN
                    )
                })?;
                Ok(Some(StoreKey::from_bytes(bytes)))
            }
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    })
}

/// A new key, stored in the keychain and read back through a fresh entry (a backend that only
/// keeps it in memory would otherwise lose the key at exit).
fn keychain_create(user: &str) -> Result<StoreKey, String> {
    let key = StoreKey::generate().map_err(|e| format!("random source: {e}"))?;
    let secret = crate::secret::SecretBytes::new(key.expose().to_vec());
    let owned = user.to_owned();
    with_timeout("writing the keychain", move || {
        entry(&owned)?
            .set_secret(secret.expose())
            .map_err(|e| e.to_string())
    })?;
    match keychain_get(user)? {
        Some(back) if back.expose() == key.expose() => Ok(key),
        Some(_) => Err("the keychain returned a different key than was stored".to_owned()),
        None => Err("the keychain did not keep the key".to_owned()),
    }
}

/// Removes `file`; one that is not there is not an error.
pub(crate) fn remove_if_present(file: &Path) -> Result<(), OpenError> {
    match std::fs::remove_file(file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(OpenError::Io {
            action: "removing",
            path: file.to_path_buf(),
            source,
        }),
    }
}

/// Removes the store key of `home`: the key file, and the keychain entry unless `keychain` is
/// [`KeychainUse::Off`]. A key that is not there is not an error.
pub(crate) fn erase(home: &Path, keychain: KeychainUse) -> Result<(), OpenError> {
    remove_if_present(&home.join(KEY_FILE))?;
    if keychain_unavailable(keychain).is_none() {
        let user = keychain_user(home);
        let outcome = with_timeout("erasing the keychain entry", move || {
            match entry(&user)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        });
        if let Err(reason) = outcome {
            tracing::warn!(%reason, "could not erase the store key from the keychain");
        }
    }
    Ok(())
}

/// Reads a key file: 64 hex digits, surrounding whitespace allowed.
pub(crate) fn read_key_file(path: &Path) -> Result<StoreKey, OpenError> {
    let io = |source| OpenError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    warn_if_readable_by_others(&file, path);
    let mut buf = Vec::with_capacity(80);
    let read = file.take(1024).read_to_end(&mut buf);
    let contents = crate::secret::SecretBytes::new(buf);
    read.map_err(io)?;
    let text = contents.expose().trim_ascii();
    StoreKey::from_hex(text).ok_or_else(|| OpenError::KeyFile {
        path: path.to_path_buf(),
        reason: format!(
            "expected {} hex digits, found {} bytes that are not a key",
            2 * StoreKey::LEN,
            text.len()
        ),
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(file: &std::fs::File, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata() {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the store key file is readable by other users");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_file: &std::fs::File, _path: &Path) {}

/// Creates a new key file with mode 0600 from the start (never widened, then narrowed).
pub(crate) fn create_key_file(path: &Path) -> Result<StoreKey, OpenError> {
    let key = StoreKey::generate().map_err(|e| OpenError::Random {
        reason: e.to_string(),
    })?;
    let io = |source| OpenError::Io {
        action: "creating",
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    let mut hex = key.to_hex();
    hex.0.push('\n');
    file.write_all(hex.0.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key)
}

/// Creates the home directory (mode 0700 on Unix) if it is missing.
pub(crate) fn ensure_home(home: &Path) -> Result<PathBuf, OpenError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(home).map_err(|source| OpenError::Io {
        action: "creating the directory",
        path: home.to_path_buf(),
        source,
    })?;
    Ok(home.to_path_buf())
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;

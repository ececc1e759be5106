//! The app's own settings (theme, notifications, previews), kept as JSON in
//! `<home>/app-settings.json`. A missing file means the defaults; a damaged one too, with a
//! warning in the log: settings never keep the app from starting.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The settings file's name inside the home directory.
pub const SETTINGS_FILE: &str = "app-settings.json";

/// The colour scheme the UI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Follow the system's light or dark mode.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

/// What the settings screen changes: `{"theme","notifications","preview"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The colour scheme.
    pub theme: Theme,
    /// Show a system notification for a new message while the window is not focused.
    pub notifications: bool,
    /// Show the message's text in the notification (else "New message").
    pub preview: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            theme: Theme::System,
            notifications: true,
            preview: true,
        }
    }
}

/// The settings file of a home directory.
#[must_use]
pub fn settings_path(home: &Path) -> PathBuf {
    home.join(SETTINGS_FILE)
}

impl Settings {
    /// Reads the settings of `home`: the defaults when the file is missing, and (with a warning
    /// in the log) when it cannot be read or parsed.
    #[must_use]
    pub fn load(home: &Path) -> Self {
        let path = settings_path(home);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the app settings; using the defaults");
                return Self::default();
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(settings) => settings,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the app settings file is damaged; using the defaults");
                Self::default()
            }
        }
    }

    /// Writes the settings to `home` atomically (a temporary file renamed over the old one).
    ///
    /// # Errors
    /// [`Error::File`] naming the file when it cannot be written.
    pub fn save(&self, home: &Path) -> Result<()> {
        let path = settings_path(home);
        let tmp = home.join(format!(".{SETTINGS_FILE}.tmp"));
        let fail = |source| Error::File {
            action: "write",
            path: path.clone(),
            source,
        };
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        bytes.push(b'\n');
        let written = std::fs::File::create(&tmp)
            .and_then(|mut file| {
                file.write_all(&bytes)?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            // The temporary file is useless now; the caller learns of the first error.
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_home_has_the_defaults() {
        let home = tempfile::tempdir().unwrap();
        let settings = Settings::load(home.path());
        assert_eq!(settings.theme, Theme::System);
        assert!(settings.notifications);
        assert!(settings.preview);
    }

    #[test]
    fn saved_settings_come_back_and_the_file_is_plain_json() {
        let home = tempfile::tempdir().unwrap();
        let chosen = Settings {
            theme: Theme::Dark,
            notifications: false,
            preview: true,
        };
        chosen.save(home.path()).unwrap();
        assert_eq!(Settings::load(home.path()), chosen);
        let text = std::fs::read_to_string(settings_path(home.path())).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"theme": "dark", "notifications": false, "preview": true})
        );
        let leftovers: Vec<_> = std::fs::read_dir(home.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(SETTINGS_FILE)]);
    }

    #[test]
    fn a_damaged_file_means_the_defaults_and_is_replaced_on_the_next_save() {
        let home = tempfile::tempdir().unwrap();
        for damaged in [
            &b"{\"theme\": \"dark\", \"notif"[..],
            b"not json at all",
            b"{\"theme\": \"purple\"}",
            b"[1, 2, 3]",
            b"\xff\xfe\x00",
        ] {
            std::fs::write(settings_path(home.path()), damaged).unwrap();
            assert_eq!(Settings::load(home.path()), Settings::default());
        }
        let light = Settings {
            theme: Theme::Light,
            ..Settings::default()
        };
        light.save(home.path()).unwrap();
        assert_eq!(Settings::load(home.path()), light);
    }

    #[test]
    fn missing_fields_take_their_defaults() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(settings_path(home.path()), br#"{"preview": false}"#).unwrap();
        let settings = Settings::load(home.path());
        assert_eq!(
            settings,
            Settings {
                preview: false,
                ..Settings::default()
            }
        );
    }

    #[test]
    fn saving_into_a_missing_home_fails_naming_the_file() {
        let home = tempfile::tempdir().unwrap();
        let gone = home.path().join("not-there");
        let err = Settings::default().save(&gone).unwrap_err();
        assert_eq!(err.kind(), "file");
        assert!(err.to_string().contains(SETTINGS_FILE), "{err}");
    }
}

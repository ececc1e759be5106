//! Where the app puts the files it writes for people (a saved QR code, exports): the Downloads
//! folder, or the home directory when there is none, under a name that never replaces an
//! existing file (`name.png`, `name (2).png`, `name (3).png`, ...).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How many numbered names are tried before giving up.
const MAX_TRIES: u32 = 10_000;

/// The folder files for people go to: the user's Downloads folder (the XDG setting, else
/// `~/Downloads` when it exists), else the home directory, else the current directory.
#[must_use]
pub fn output_dir() -> PathBuf {
    let home = dirs::home_dir();
    dirs::download_dir()
        .filter(|d| d.is_dir())
        .or_else(|| {
            home.as_ref()
                .map(|h| h.join("Downloads"))
                .filter(|d| d.is_dir())
        })
        .or(home)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The first of `stem.ext`, `stem (2).ext`, `stem (3).ext`... that does not exist in `dir`.
///
/// # Errors
/// [`Error::File`] when every name is taken.
pub fn free_name(dir: &Path, stem: &str, ext: &str) -> Result<PathBuf> {
    let stem = file_stem(stem);
    for n in 1..=MAX_TRIES {
        let name = if n == 1 {
            format!("{stem}.{ext}")
        } else {
            format!("{stem} ({n}).{ext}")
        };
        let path = dir.join(name);
        // `symlink_metadata`: a dangling link also takes the name.
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(path);
        }
    }
    Err(Error::File {
        action: "find a free name in",
        path: dir.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{MAX_TRIES} files named {stem} already exist"),
        ),
    })
}

/// `text` as a portable file-name stem: letters, digits, `-`, `_`, `.` and spaces kept (other
/// characters become `_`), no leading dot, at most 80 characters, never empty.
#[must_use]
pub fn file_stem(text: &str) -> String {
    let mut stem: String = text
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    while stem.starts_with('.') {
        stem.remove(0);
    }
    let stem = stem.trim().to_owned();
    if stem.is_empty() {
        "tandem".to_owned()
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_name_is_plain_and_later_ones_are_numbered() {
        let dir = tempfile::tempdir().unwrap();
        let first = free_name(dir.path(), "tandem-qr", "png").unwrap();
        assert_eq!(first, dir.path().join("tandem-qr.png"));
        std::fs::write(&first, b"one").unwrap();
        let second = free_name(dir.path(), "tandem-qr", "png").unwrap();
        assert_eq!(second, dir.path().join("tandem-qr (2).png"));
        std::fs::write(&second, b"two").unwrap();
        assert_eq!(
            free_name(dir.path(), "tandem-qr", "png").unwrap(),
            dir.path().join("tandem-qr (3).png")
        );
        // Nothing existing was touched.
        assert_eq!(std::fs::read(&first).unwrap(), b"one");
    }

    #[test]
    fn a_gap_in_the_numbers_is_reused_and_other_extensions_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("export.json"), b"").unwrap();
        std::fs::write(dir.path().join("export (3).json"), b"").unwrap();
        std::fs::write(dir.path().join("export (2).html"), b"").unwrap();
        assert_eq!(
            free_name(dir.path(), "export", "json").unwrap(),
            dir.path().join("export (2).json")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_symlink_takes_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("x.png")).unwrap();
        assert_eq!(
            free_name(dir.path(), "x", "png").unwrap(),
            dir.path().join("x (2).png")
        );
    }

    #[test]
    fn chat_names_become_safe_stems() {
        assert_eq!(file_stem("Family 👪 / Holidays"), "Family _ _ Holidays");
        assert_eq!(file_stem("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_stem("..."), "tandem");
        assert_eq!(file_stem("   "), "tandem");
        assert_eq!(file_stem("Zoë's chat"), "Zoë_s chat");
        assert_eq!(file_stem(&"a".repeat(200)).chars().count(), 80);
    }

    #[test]
    fn names_with_unsafe_characters_stay_inside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = free_name(dir.path(), "a/b\\c:d", "html").unwrap();
        assert_eq!(path.parent().unwrap(), dir.path());
        assert_eq!(path.file_name().unwrap(), "a_b_c_d.html");
    }
}

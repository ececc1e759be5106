//! Saving: a picture reaches its file whole or not at all.
//!
//! The bytes go to a new temporary file beside the target (same folder, so same file system),
//! are flushed to disk, and the temporary file is renamed over the target, which the operating
//! system does atomically: a reader sees the old file or the new one, never a part. On Unix the
//! file is created readable by its owner only, because a pairing code holds a secret.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// How many temporary names are tried before giving up (each is new: a name is only taken when a
/// file of that name is left from a crash or made by another process).
const TEMP_ATTEMPTS: u32 = 16;

/// Counter that keeps the temporary names of one process apart.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `png` to `path` atomically: through a temporary file in the same folder (named
/// `.NAME.PID-N.tmp`), flushed to disk, then renamed over `path`. An existing file at `path` is
/// replaced. The folder must exist.
///
/// # Errors
/// [`Error::Write`] naming `path` when `path` does not name a file, or the temporary file cannot
/// be created, written, flushed or renamed; the temporary file is removed then.
pub fn write_png_atomically(path: &Path, png: &[u8]) -> Result<()> {
    let write_error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        write_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path does not end with a file name",
        ))
    })?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let (temp_path, mut file) = create_temp(folder, name).map_err(write_error)?;
    let written = file
        .write_all(png)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&temp_path, path)
        });
    if let Err(source) = written {
        // The temporary file is ours and useless now; failing to remove it changes nothing for
        // the caller, who learns of the first error.
        let _ = fs::remove_file(&temp_path);
        return Err(write_error(source));
    }
    sync_folder(folder);
    Ok(())
}

/// Creates a new temporary file for `name` in `folder`, never opening one that exists.
fn create_temp(folder: &Path, name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    let mut last_error = io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name");
    for _ in 0..TEMP_ATTEMPTS {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}-{n}.tmp", std::process::id()));
        let temp_path = folder.join(temp_name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        match options.open(&temp_path) {
            Ok(file) => return Ok((temp_path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last_error = err,
            Err(err) => return Err(err),
        }
    }
    Err(last_error)
}

/// Flushes the folder's entry list, so the rename survives a power cut (Unix; elsewhere folders
/// cannot be opened this way and the rename is left to the file system). Best effort: the file is
/// already in place, and a failure here is not worth reporting as a failed save.
fn sync_folder(folder: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = folder;
}

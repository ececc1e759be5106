//! The one error type of `tandem-qr`: why a text could not become a QR code, why a picture could
//! not be saved, or why no pairing link could be read out of a picture.
//!
//! Every variant that concerns a file names it, so the message can be shown to a user as it is.
//! Errors from [`decode_image_bytes`](crate::decode_image_bytes), which has no file, say
//! "the image" instead.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in `tandem-qr`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text does not fit in the largest QR code (version 40) at error correction level M.
    #[error(
        "a text of {len} bytes does not fit in a QR code (at most {max} bytes of arbitrary text)",
        max = crate::MAX_TEXT_BYTES
    )]
    TooLong {
        /// Length of the refused text, in bytes.
        len: usize,
    },

    /// The QR encoder refused the text for a reason other than its length.
    #[error("cannot encode the text as a QR code: {reason}")]
    Encode {
        /// The encoder's reason.
        reason: String,
    },

    /// A PNG was asked for with a module size outside `1..=32` pixels.
    #[error("a QR code cannot be drawn with {scale} pixels per module (allowed: 1 to 32)")]
    BadScale {
        /// The refused number of pixels per module.
        scale: u32,
    },

    /// The PNG encoder failed (it writes to memory, so this is not expected to happen).
    #[error("cannot encode the QR code as PNG: {reason}")]
    Png {
        /// The encoder's reason.
        reason: String,
    },

    /// A picture file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file, as given.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// A picture could not be saved (its temporary file could not be written, synced or renamed).
    #[error("cannot save {}: {source}", .path.display())]
    Write {
        /// The file that was to be written, as given.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The bytes are not a PNG or JPEG picture this crate can read (unknown format, damaged,
    /// or larger than [`MAX_IMAGE_PIXELS`](crate::MAX_IMAGE_PIXELS)).
    #[error("{} is not a readable PNG or JPEG picture: {reason}", origin(.path.as_deref()))]
    Image {
        /// The file, as given; `None` for bytes handed over directly.
        path: Option<PathBuf>,
        /// What is wrong with it.
        reason: String,
    },

    /// The picture was read, but no QR code was found in it.
    #[error("no QR code was found in {}", origin(.path.as_deref()))]
    NoCode {
        /// The file, as given; `None` for bytes handed over directly.
        path: Option<PathBuf>,
    },

    /// Something shaped like a QR code was found, but it could not be read (blurred, cut off,
    /// damaged beyond what error correction repairs).
    #[error(
        "a QR code was found in {} but could not be read ({reason}); try a sharper, straighter picture",
        origin(.path.as_deref())
    )]
    Unreadable {
        /// The file, as given; `None` for bytes handed over directly.
        path: Option<PathBuf>,
        /// The reader's reason.
        reason: String,
    },

    /// The QR code holds bytes that are not UTF-8 text, so it is not a Tandem link.
    #[error("the QR code in {} does not hold UTF-8 text", origin(.path.as_deref()))]
    NotUtf8 {
        /// The file, as given; `None` for bytes handed over directly.
        path: Option<PathBuf>,
    },
}

/// The result type of `tandem-qr`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a message names where the picture came from.
fn origin(path: Option<&Path>) -> String {
    match path {
        Some(path) => path.display().to_string(),
        None => "the image".to_owned(),
    }
}

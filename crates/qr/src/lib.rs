//! `tandem-qr` turns a pairing link (`tandem://link?v=1&ref=..&dh=..&secret=..`) into a QR code
//! that the desktop can show, and reads such a code back out of a picture the phone took or was
//! given.
//!
//! The crate owns three things and no more:
//! - **Encoding** ([`QrCode`]): a text becomes a QR code at error correction level M (15 % of
//!   the code can be lost), drawn as terminal art, as SVG or as an 8-bit grayscale PNG, each with
//!   the 4-module quiet zone that scanners need.
//! - **Saving** ([`write_png_atomically`]): a PNG reaches its file through a temporary file in the
//!   same folder and a rename, so a reader never sees half a picture.
//! - **Decoding** ([`decode_image_file`], [`decode_image_bytes`]): a PNG or JPEG picture (any bit
//!   depth, palette, alpha, progressive or CMYK JPEG) becomes grayscale, and the first QR code that
//!   `rqrr` finds and reads in it is returned as text. When the first look finds nothing, the
//!   picture is looked at again transposed, upside down and inverted: `rqrr` misses some codes
//!   tilted at particular angles in photos, and a screenshot of inverted terminal art is a light
//!   code on a dark background.
//!
//! It is sans-I/O apart from those two file functions: no network, no clock, no global state
//! except a counter that keeps temporary file names apart.
//!
//! Choices worth knowing:
//! - A pairing link holds a secret. [`QrCode`] keeps its modules in a buffer that is wiped when it
//!   is dropped and its `Debug` shows only the size; the pixel buffers this crate builds while
//!   drawing or reading pictures are wiped too. Buffers inside the `qrcode`, `png`, `zune-jpeg` and
//!   `rqrr` crates are not (they offer no way to), and the strings and bytes handed back belong to
//!   the caller. Saved PNGs are created readable by their owner only (Unix).
//! - Pictures are checked before they are decoded: at most [`MAX_FILE_BYTES`] bytes and
//!   [`MAX_IMAGE_PIXELS`] pixels, so a hostile file cannot make the reader allocate gigabytes.
//! - The QR reader (`rqrr` 0.11) has known assertion failures on some real photos (its issue
//!   #54). A panic inside the picture or QR decoders is caught and reported as
//!   [`Error::Image`] or [`Error::Unreadable`] instead of taking the app down; this relies on the
//!   default `panic = "unwind"` strategy.
//!
//! ```
//! use tandem_qr::{decode_image_bytes, QrCode};
//!
//! let link = "tandem://link?v=1&ref=6f1c2a&dh=2dX0aGVsbG8";
//! let code = QrCode::new(link)?;
//! let png = code.to_png(4)?;
//! assert_eq!(decode_image_bytes(&png)?, link);
//! # Ok::<(), tandem_qr::Error>(())
//! ```

mod decode;
mod encode;
mod error;
mod save;
#[cfg(test)]
mod testkit;

pub use decode::{MAX_FILE_BYTES, MAX_IMAGE_PIXELS, decode_image_bytes, decode_image_file};
pub use encode::{MAX_SCALE, MAX_TEXT_BYTES, QUIET_ZONE, QrCode};
pub use error::{Error, Result};
pub use save::write_png_atomically;

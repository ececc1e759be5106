//! Encoding: a text becomes a [`QrCode`], which draws itself as terminal art, SVG or PNG.
//!
//! The module grid comes from the `qrcode` crate (error correction level M, smallest version
//! that fits, best mask); the three renderers are written here so that each one has exactly the
//! quiet zone, colours and shape the rest of Tandem relies on.

use std::fmt;
use std::fmt::Write as _;
use std::io::Write as _;

use qrcode::types::QrError;
use qrcode::{Color, EcLevel};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Width of the light border drawn around every code, in modules (the 4 the QR standard asks
/// for).
pub const QUIET_ZONE: usize = 4;

/// Largest number of pixels per module [`QrCode::to_png`] accepts.
pub const MAX_SCALE: u32 = 32;

/// Longest text, in bytes, that always fits (version 40, level M, byte mode). Texts made only of
/// digits or of upper-case letters fit longer, because the encoder packs them tighter.
pub const MAX_TEXT_BYTES: usize = 2331;

/// Size, in SVG user units (pixels when shown as is), of one module in [`QrCode::to_svg`]'s
/// `width` and `height`; its `viewBox` counts in modules, so it scales to any size.
const SVG_PIXELS_PER_MODULE: usize = 8;

/// A QR code at error correction level M, ready to be drawn.
///
/// It holds the module grid (not the text). Because a pairing link carries a secret, the grid is
/// wiped when the value is dropped and `Debug` shows only the width.
pub struct QrCode {
    /// Modules per side, without the quiet zone.
    width: usize,
    /// Row-major modules, `true` for dark; `width * width` of them.
    modules: Vec<bool>,
}

impl QrCode {
    /// Encodes `text` in the smallest QR code that holds it at error correction level M.
    ///
    /// # Errors
    /// [`Error::TooLong`] when the text does not fit even in a version 40 code (see
    /// [`MAX_TEXT_BYTES`]); [`Error::Encode`] if the encoder refuses it for another reason.
    pub fn new(text: &str) -> Result<Self> {
        let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
            .map_err(|err| match err {
                QrError::DataTooLong => Error::TooLong { len: text.len() },
                other => Error::Encode {
                    reason: other.to_string(),
                },
            })?;
        let width = code.width();
        let modules = code
            .into_colors()
            .into_iter()
            .map(|color| color == Color::Dark)
            .collect();
        Ok(Self { width, modules })
    }

    /// Modules per side, without the quiet zone (21 for version 1, 4 more per version, up to
    /// 177).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Modules per side with the quiet zone on both sides.
    pub(crate) fn framed_width(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }

    /// Whether the module at column `x`, row `y` of the framed code (quiet zone included) is
    /// dark. Anything outside the code, quiet zone or not, is light.
    pub(crate) fn is_dark(&self, x: usize, y: usize) -> bool {
        let (Some(x), Some(y)) = (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) else {
            return false;
        };
        if x >= self.width || y >= self.width {
            return false;
        }
        self.modules
            .get(y * self.width + x)
            .copied()
            .unwrap_or(false)
    }

    /// Draws the code with Unicode half blocks, two module rows per text line, quiet zone
    /// included: `width() + 8` characters per line and `ceil((width() + 8) / 2)` lines, each
    /// ending with `'\n'`. Only `'\u{2580}'` (▀), `'\u{2584}'` (▄), `'\u{2588}'` (█) and `' '` are
    /// used, without colour codes.
    ///
    /// A block is drawn in the terminal's text colour and a space shows its background. Terminals
    /// are mostly light text on a dark background, so blocks stand for the **light** modules and
    /// the quiet zone, and spaces for the dark modules: on such a terminal the code appears
    /// dark-on-light, as scanners expect. On a dark-on-light terminal the code shows inverted;
    /// many phone scanners (and [`decode_image_bytes`](crate::decode_image_bytes)) read that too,
    /// but the PNG or SVG is the safe choice there. When the framed height is odd, the lower half
    /// of the last line is left as background.
    pub fn to_terminal(&self) -> String {
        let side = self.framed_width();
        let lines = side.div_ceil(2);
        // Each character is 3 bytes of UTF-8 at most; plus one newline per line.
        let mut out = String::with_capacity(lines * (side * 3 + 1));
        for line in 0..lines {
            let top = 2 * line;
            let bottom = top + 1;
            for x in 0..side {
                let top_light = !self.is_dark(x, top);
                let bottom_light = bottom < side && !self.is_dark(x, bottom);
                out.push(match (top_light, bottom_light) {
                    (true, true) => '\u{2588}',
                    (true, false) => '\u{2580}',
                    (false, true) => '\u{2584}',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
        }
        out
    }

    /// Draws the code as a standalone SVG document: a white square with the quiet zone and one
    /// black `<path>` made of one rectangle per horizontal run of dark modules.
    ///
    /// The `viewBox` counts in modules (`0 0 n n` with `n = width() + 8`), so the picture scales to
    /// any size; `width` and `height` suggest 8 px per module; `shape-rendering="crispEdges"` keeps
    /// module edges sharp when scaled.
    pub fn to_svg(&self) -> String {
        let side = self.framed_width();
        let pixels = side * SVG_PIXELS_PER_MODULE;
        let mut path = String::new();
        for y in 0..side {
            let mut x = 0;
            while x < side {
                if !self.is_dark(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < side && self.is_dark(x, y) {
                    x += 1;
                }
                let run = x - start;
                // Writing to a String cannot fail.
                let _ = write!(path, "M{start} {y}h{run}v1h-{run}z");
            }
        }
        let mut svg = String::with_capacity(path.len() + 400);
        let _ = write!(
            svg,
            concat!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" ",
                "viewBox=\"0 0 {side} {side}\" width=\"{pixels}\" height=\"{pixels}\" ",
                "shape-rendering=\"crispEdges\">\n",
                "<rect x=\"0\" y=\"0\" width=\"{side}\" height=\"{side}\" fill=\"#ffffff\"/>\n",
                "<path fill=\"#000000\" d=\"{path}\"/>\n",
                "</svg>\n"
            ),
            side = side,
            pixels = pixels,
            path = path,
        );
        path.zeroize();
        svg
    }

    /// Draws the code as an 8-bit grayscale PNG with `scale` pixels per module (`1..=32`) and the
    /// quiet zone: `(width() + 8) * scale` pixels per side, black (0) on white (255).
    ///
    /// [`decode_image_bytes`](crate::decode_image_bytes) reads codes of pairing-link size back
    /// even at scale 1, but not the largest (version 40) ones, which need 2 or more; a picture
    /// meant for people and cameras is better at 8 or more.
    ///
    /// # Errors
    /// [`Error::BadScale`] when `scale` is outside `1..=32`; [`Error::Png`] if the PNG encoder
    /// fails, which writing to memory does not do in practice.
    pub fn to_png(&self, scale: u32) -> Result<Vec<u8>> {
        if !(1..=MAX_SCALE).contains(&scale) {
            return Err(Error::BadScale { scale });
        }
        let png_error = |reason: String| Error::Png { reason };
        let side = self.framed_width();
        let pixel_scale = usize::try_from(scale).map_err(|err| png_error(err.to_string()))?;
        let row_len = side * pixel_scale;
        let side_px = u32::try_from(row_len).map_err(|err| png_error(err.to_string()))?;

        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, side_px, side_px);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|err| png_error(err.to_string()))?;
        let mut stream = writer
            .stream_writer()
            .map_err(|err| png_error(err.to_string()))?;
        let mut row = Zeroizing::new(Vec::with_capacity(row_len));
        for y in 0..side {
            row.clear();
            for x in 0..side {
                let value = if self.is_dark(x, y) { 0 } else { 255 };
                row.extend(std::iter::repeat_n(value, pixel_scale));
            }
            for _ in 0..pixel_scale {
                stream
                    .write_all(&row)
                    .map_err(|err| png_error(err.to_string()))?;
            }
        }
        stream.finish().map_err(|err| png_error(err.to_string()))?;
        writer.finish().map_err(|err| png_error(err.to_string()))?;
        Ok(png)
    }
}

impl Drop for QrCode {
    fn drop(&mut self) {
        self.modules.zeroize();
    }
}

impl fmt::Debug for QrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrCode")
            .field("width", &self.width)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;

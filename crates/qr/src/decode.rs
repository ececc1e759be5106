//! Decoding: a PNG or JPEG picture becomes grayscale, and `rqrr` finds and reads the QR code in
//! it.
//!
//! The module owns telling the formats apart by their first bytes, the size limits checked before
//! any pixel is decoded, turning every PNG colour type and JPEG colour space into 8-bit luminance
//! (transparent pixels over white), looking again at a picture transposed, upside down and
//! inverted when no code is read (tilted photos, light codes on a dark background), and keeping a
//! panic in a decoder from escaping.

use std::io::{Cursor, Read as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use rqrr::{DeQRError, PreparedImage};
use zeroize::Zeroizing;
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::error::{Error, Result};

/// Largest picture file [`decode_image_file`] reads, in bytes (64 MiB: phone photos are a few
/// MiB, lossless screenshots a few tens).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Largest picture decoded, in pixels (64 Mi, about 67 megapixels or 8192 × 8192: more than a
/// 48-megapixel phone camera gives). Larger pictures are refused with [`Error::Image`] before their pixels are decoded.
pub const MAX_IMAGE_PIXELS: u64 = 64 * 1024 * 1024;

/// The eight bytes every PNG file starts with.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// The start-of-image marker and the first byte of the next marker of every JPEG file.
const JPEG_SIGNATURE: [u8; 3] = [0xff, 0xd8, 0xff];

/// Reads the picture at `path` (PNG or JPEG) and returns the text of the first QR code found in
/// it.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Image`] when it is not a PNG or JPEG
/// picture, is damaged, or is larger than [`MAX_FILE_BYTES`] or [`MAX_IMAGE_PIXELS`];
/// [`Error::NoCode`] when no QR code is found; [`Error::Unreadable`] when one is found but cannot
/// be read; [`Error::NotUtf8`] when it does not hold UTF-8 text. Every one names `path`.
pub fn decode_image_file(path: &Path) -> Result<String> {
    let io_error = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if u64::try_from(bytes.len()).map_or(true, |len| len > MAX_FILE_BYTES) {
        return Err(Error::Image {
            path: Some(path.to_owned()),
            reason: format!(
                "the file is larger than {} MiB",
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        });
    }
    decode(&bytes, Some(path))
}

/// Reads a PNG or JPEG picture held in memory and returns the text of the first QR code found in
/// it.
///
/// # Errors
/// As [`decode_image_file`], without [`Error::Io`]; messages say "the image" instead of a file
/// name.
pub fn decode_image_bytes(bytes: &[u8]) -> Result<String> {
    decode(bytes, None)
}

/// Decodes the picture, then its code, naming `path` in any error.
fn decode(bytes: &[u8], path: Option<&Path>) -> Result<String> {
    let image = to_gray(bytes).map_err(|reason| Error::Image {
        path: path.map(Path::to_path_buf),
        reason,
    })?;
    let mut unreadable_reason = None;
    let mut found = None;
    for view in VIEWS {
        match scan(&image, view) {
            Scan::Found(bytes) => {
                found = Some(bytes);
                break;
            }
            Scan::Unreadable(reason) => {
                unreadable_reason.get_or_insert(reason);
            }
            Scan::Nothing => {}
        }
    }
    let mut text = match (found, unreadable_reason) {
        (Some(bytes), _) => bytes,
        (None, Some(reason)) => return Err(unreadable(path, reason)),
        (None, None) => {
            return Err(Error::NoCode {
                path: path.map(Path::to_path_buf),
            });
        }
    };
    String::from_utf8(std::mem::take(&mut *text)).map_err(|err| {
        // The refused bytes hold what the code held: wipe them too.
        drop(Zeroizing::new(err.into_bytes()));
        Error::NotUtf8 {
            path: path.map(Path::to_path_buf),
        }
    })
}

/// An [`Error::Unreadable`] naming `path`.
fn unreadable(path: Option<&Path>, reason: String) -> Error {
    Error::Unreadable {
        path: path.map(Path::to_path_buf),
        reason,
    }
}

/// A picture as 8-bit luminance, 0 black to 255 white.
struct GrayImage {
    width: usize,
    height: usize,
    /// Row-major, `width * height` values.
    pixels: Zeroizing<Vec<u8>>,
}

impl GrayImage {
    /// The luminance at column `x`, row `y`; white outside the picture.
    fn get(&self, x: usize, y: usize) -> u8 {
        if x >= self.width {
            return u8::MAX;
        }
        self.pixels
            .get(y * self.width + x)
            .copied()
            .unwrap_or(u8::MAX)
    }
}

/// Decodes a PNG or JPEG picture to luminance, or says why not.
fn to_gray(bytes: &[u8]) -> std::result::Result<GrayImage, String> {
    let decoder: fn(&[u8]) -> std::result::Result<GrayImage, String> =
        if bytes.starts_with(&PNG_SIGNATURE) {
            png_to_gray
        } else if bytes.starts_with(&JPEG_SIGNATURE) {
            jpeg_to_gray
        } else if bytes.is_empty() {
            return Err("the file is empty".to_owned());
        } else {
            return Err("its first bytes are not those of a PNG or JPEG file".to_owned());
        };
    catch_unwind(AssertUnwindSafe(|| decoder(bytes)))
        .unwrap_or_else(|_| Err("the picture decoder failed on its malformed data".to_owned()))
}

/// Refuses a picture of more than [`MAX_IMAGE_PIXELS`] pixels (or of none).
fn check_size(width: usize, height: usize) -> std::result::Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("it is {width} × {height} pixels: it shows nothing"));
    }
    let pixels = u64::try_from(width)
        .ok()
        .zip(u64::try_from(height).ok())
        .and_then(|(w, h)| w.checked_mul(h));
    match pixels {
        Some(pixels) if pixels <= MAX_IMAGE_PIXELS => Ok(()),
        _ => Err(format!(
            "it is {width} × {height} pixels, more than the {} megapixels this reader accepts",
            MAX_IMAGE_PIXELS / 1_000_000
        )),
    }
}

/// Decodes any PNG (every colour type, bit depth, palette, transparency, interlacing; the first
/// frame of an animation) to luminance.
fn png_to_gray(bytes: &[u8]) -> std::result::Result<GrayImage, String> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.set_ignore_text_chunk(true);
    let header = decoder
        .read_header_info()
        .map_err(|err| format!("bad PNG header: {err}"))?;
    let (w, h) = header.size();
    let width = usize::try_from(w).map_err(|err| err.to_string())?;
    let height = usize::try_from(h).map_err(|err| err.to_string())?;
    check_size(width, height)?;

    let mut reader = decoder
        .read_info()
        .map_err(|err| format!("bad PNG: {err}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "the PNG is too large for memory".to_owned())?;
    let mut buffer = Zeroizing::new(vec![0; size]);
    let frame = reader
        .next_frame(&mut buffer)
        .map_err(|err| format!("bad PNG data: {err}"))?;
    if frame.bit_depth != png::BitDepth::Eight {
        return Err(format!(
            "unexpected PNG sample depth {:?} after conversion",
            frame.bit_depth
        ));
    }
    let channels = match frame.color_type {
        png::ColorType::Grayscale => Channels::Luma,
        png::ColorType::GrayscaleAlpha => Channels::LumaAlpha,
        png::ColorType::Rgb => Channels::Rgb,
        png::ColorType::Rgba => Channels::Rgba,
        png::ColorType::Indexed => {
            return Err("a palette PNG was not expanded to colours".to_owned());
        }
    };
    let frame_width = usize::try_from(frame.width).map_err(|err| err.to_string())?;
    let frame_height = usize::try_from(frame.height).map_err(|err| err.to_string())?;
    gray_from_rows(
        &buffer,
        frame_width,
        frame_height,
        frame.line_size,
        channels,
    )
}

/// Decodes a baseline or progressive JPEG (grayscale, YCbCr, RGB, CMYK or YCCK) to luminance.
fn jpeg_to_gray(bytes: &[u8]) -> std::result::Result<GrayImage, String> {
    let side_limit = usize::from(u16::MAX);
    let options = DecoderOptions::default()
        .set_max_width(side_limit)
        .set_max_height(side_limit);
    let mut probe = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    probe
        .decode_headers()
        .map_err(|err| format!("bad JPEG header: {err:?}"))?;
    let (width, height) = probe
        .dimensions()
        .ok_or_else(|| "the JPEG has no size".to_owned())?;
    check_size(width, height)?;

    // Luminance straight from the decoder where it can give it; RGB (which it can give for every
    // colour space) otherwise.
    let (colorspace, channels) = match probe.input_colorspace() {
        Some(ColorSpace::YCbCr | ColorSpace::Luma) => (ColorSpace::Luma, Channels::Luma),
        _ => (ColorSpace::RGB, Channels::Rgb),
    };
    let mut decoder = JpegDecoder::new_with_options(
        ZCursor::new(bytes),
        options.jpeg_set_out_colorspace(colorspace),
    );
    let pixels = Zeroizing::new(
        decoder
            .decode()
            .map_err(|err| format!("bad JPEG data: {err:?}"))?,
    );
    gray_from_rows(&pixels, width, height, width * channels.count(), channels)
}

/// How the samples of one decoded pixel are laid out.
#[derive(Clone, Copy)]
enum Channels {
    Luma,
    LumaAlpha,
    Rgb,
    Rgba,
}

impl Channels {
    /// Samples per pixel.
    fn count(self) -> usize {
        match self {
            Self::Luma => 1,
            Self::LumaAlpha => 2,
            Self::Rgb => 3,
            Self::Rgba => 4,
        }
    }

    /// The luminance of one pixel's samples, transparent parts seen over white.
    fn luminance(self, samples: &[u8]) -> u8 {
        let sample = |i: usize| u32::from(samples.get(i).copied().unwrap_or(u8::MAX));
        let (luma, alpha) = match self {
            Self::Luma => (sample(0), 255),
            Self::LumaAlpha => (sample(0), sample(1)),
            Self::Rgb => (rgb_luma(sample(0), sample(1), sample(2)), 255),
            Self::Rgba => (rgb_luma(sample(0), sample(1), sample(2)), sample(3)),
        };
        let over_white = (luma * alpha + 255 * (255 - alpha) + 127) / 255;
        u8::try_from(over_white).unwrap_or(u8::MAX)
    }
}

/// ITU-R BT.601 luma of 8-bit R, G, B, with weights summing to 256.
fn rgb_luma(r: u32, g: u32, b: u32) -> u32 {
    (77 * r + 150 * g + 29 * b + 128) >> 8
}

/// Converts `height` rows of `line_size` bytes, each starting with `width` pixels laid out as
/// `channels`, to luminance.
fn gray_from_rows(
    samples: &[u8],
    width: usize,
    height: usize,
    line_size: usize,
    channels: Channels,
) -> std::result::Result<GrayImage, String> {
    let per_pixel = channels.count();
    if line_size < width * per_pixel || samples.len() < line_size * height {
        return Err(format!(
            "the decoder gave {} bytes for {width} × {height} pixels",
            samples.len()
        ));
    }
    let mut pixels = Zeroizing::new(Vec::with_capacity(width * height));
    for row in samples.chunks_exact(line_size).take(height) {
        pixels.extend(
            row.chunks_exact(per_pixel)
                .take(width)
                .map(|pixel| channels.luminance(pixel)),
        );
    }
    Ok(GrayImage {
        width,
        height,
        pixels,
    })
}

/// What one look for a QR code found.
enum Scan {
    /// A code was read; its bytes.
    Found(Zeroizing<Vec<u8>>),
    /// Codes were found, none could be read; why the last one failed.
    Unreadable(String),
    /// No code was found.
    Nothing,
}

/// How the picture is shown to the QR reader in one look.
#[derive(Clone, Copy)]
struct View {
    /// Rows read as columns (the picture turned a quarter and mirrored; the reader undoes the
    /// mirror itself).
    transposed: bool,
    /// Turned upside down.
    turned: bool,
    /// Dark and light swapped.
    inverted: bool,
}

/// The looks taken, in order, until a code is read. `rqrr` scans the picture row by row and misses
/// some codes that are tilted in the picture (a phone photo) at particular angles; the same code
/// seen transposed or upside down is often found. Inverted views read light codes on a dark
/// background.
const VIEWS: [View; 6] = [
    View {
        transposed: false,
        turned: false,
        inverted: false,
    },
    View {
        transposed: true,
        turned: false,
        inverted: false,
    },
    View {
        transposed: false,
        turned: true,
        inverted: false,
    },
    View {
        transposed: false,
        turned: false,
        inverted: true,
    },
    View {
        transposed: true,
        turned: false,
        inverted: true,
    },
    View {
        transposed: false,
        turned: true,
        inverted: true,
    },
];

/// Looks for QR codes in the picture as `view` shows it, and reads the first that can be read.
fn scan(image: &GrayImage, view: View) -> Scan {
    let mask = if view.inverted { u8::MAX } else { 0 };
    let (width, height) = if view.transposed {
        (image.height, image.width)
    } else {
        (image.width, image.height)
    };
    let pixel = |x: usize, y: usize| -> u8 {
        let value = if view.transposed {
            image.get(y, x)
        } else if view.turned {
            image.get(
                image.width.saturating_sub(x + 1),
                image.height.saturating_sub(y + 1),
            )
        } else {
            image.get(x, y)
        };
        value ^ mask
    };
    catch_unwind(AssertUnwindSafe(|| {
        let mut prepared = PreparedImage::prepare_from_greyscale(width, height, pixel);
        let grids = prepared.detect_grids();
        if grids.is_empty() {
            return Scan::Nothing;
        }
        let mut last_error = None;
        for grid in grids {
            let mut bytes = Zeroizing::new(Vec::new());
            match grid.decode_to(&mut *bytes) {
                Ok(_) => return Scan::Found(bytes),
                Err(err) => last_error = Some(err),
            }
        }
        Scan::Unreadable(last_error.map_or_else(String::new, describe))
    }))
    .unwrap_or_else(|_| Scan::Unreadable("the QR reader failed on this picture".to_owned()))
}

/// A user-facing reason for a code that was found but could not be read.
fn describe(error: DeQRError) -> String {
    match error {
        DeQRError::DataEcc => "too many damaged modules to correct",
        DeQRError::FormatEcc => "its format information is damaged",
        DeQRError::InvalidVersion | DeQRError::InvalidGridSize => "its size could not be made out",
        DeQRError::DataUnderflow | DeQRError::DataOverflow | DeQRError::UnknownDataType => {
            "its contents are malformed"
        }
        DeQRError::EncodingError => "its text is badly encoded",
        DeQRError::IoError => "its contents could not be collected",
    }
    .to_owned()
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;

//! Stories about reading a pairing code out of the pictures people actually hand over: PNGs of
//! every kind, JPEGs from cameras and editors, photos of a screen, inverted screenshots, and
//! files that are damaged, huge or not pictures at all.

use super::*;
use crate::QrCode;
use crate::testkit::{gray_png, paint_modules, pairing_link};

/// The code's pixels at `scale` (quiet zone included), `true` for dark, and the side in pixels.
fn raster(code: &QrCode, scale: usize) -> (usize, Vec<bool>) {
    let side = (code.width() + 8) * scale;
    let dark = (0..side * side)
        .map(|i| code.is_dark((i % side) / scale, (i / side) / scale))
        .collect();
    (side, dark)
}

/// A PNG of the given colour type and depth from raw sample bytes, with an optional palette and
/// transparency chunk.
fn png_of(
    side: usize,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<Vec<u8>>,
    trns: Option<Vec<u8>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(color);
    encoder.set_depth(depth);
    if let Some(palette) = palette {
        encoder.set_palette(palette);
    }
    if let Some(trns) = trns {
        encoder.set_trns(trns);
    }
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
    out
}

/// Packs one bit per pixel (`true` → 1), rows padded to whole bytes.
fn pack_bits(side: usize, bits: impl Fn(usize) -> bool) -> Vec<u8> {
    let row_bytes = side.div_ceil(8);
    let mut data = vec![0u8; row_bytes * side];
    for y in 0..side {
        for x in 0..side {
            if bits(y * side + x) {
                data[y * row_bytes + x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    data
}

/// A JPEG from 8-bit samples.
fn jpeg_of(
    width: usize,
    height: usize,
    color: jpeg_encoder::ColorType,
    data: &[u8],
    quality: u8,
    progressive: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    encoder.set_progressive(progressive);
    encoder
        .encode(data, width as u16, height as u16, color)
        .unwrap();
    out
}

#[test]
fn pngs_of_every_colour_type_and_depth_are_read() {
    let link = pairing_link(300);
    let code = QrCode::new(&link).unwrap();
    let (side, dark) = raster(&code, 3);
    let per_pixel =
        |f: &dyn Fn(bool) -> Vec<u8>| -> Vec<u8> { dark.iter().flat_map(|&d| f(d)).collect() };

    let pictures = [
        (
            "1-bit grayscale",
            png_of(
                side,
                png::ColorType::Grayscale,
                png::BitDepth::One,
                &pack_bits(side, |i| !dark[i]),
                None,
                None,
            ),
        ),
        (
            "16-bit grayscale",
            png_of(
                side,
                png::ColorType::Grayscale,
                png::BitDepth::Sixteen,
                &per_pixel(&|d| {
                    if d {
                        vec![0x10, 0x00]
                    } else {
                        vec![0xf0, 0xff]
                    }
                }),
                None,
                None,
            ),
        ),
        (
            "navy on cream RGB",
            png_of(
                side,
                png::ColorType::Rgb,
                png::BitDepth::Eight,
                &per_pixel(&|d| {
                    if d {
                        vec![20, 30, 90]
                    } else {
                        vec![250, 240, 200]
                    }
                }),
                None,
                None,
            ),
        ),
        (
            "black on transparent RGBA",
            png_of(
                side,
                png::ColorType::Rgba,
                png::BitDepth::Eight,
                &per_pixel(&|d| {
                    if d {
                        vec![0, 0, 0, 255]
                    } else {
                        vec![0, 0, 0, 0]
                    }
                }),
                None,
                None,
            ),
        ),
        (
            "black on transparent gray+alpha",
            png_of(
                side,
                png::ColorType::GrayscaleAlpha,
                png::BitDepth::Eight,
                &per_pixel(&|d| if d { vec![0, 255] } else { vec![0, 0] }),
                None,
                None,
            ),
        ),
        (
            "1-bit palette, transparent background",
            png_of(
                side,
                png::ColorType::Indexed,
                png::BitDepth::One,
                &pack_bits(side, |i| dark[i]),
                // Entry 0 is transparent black, entry 1 opaque black.
                Some(vec![0, 0, 0, 0, 0, 0]),
                Some(vec![0, 255]),
            ),
        ),
    ];

    for (kind, png) in pictures {
        assert_eq!(decode_image_bytes(&png).unwrap(), link, "{kind}");
    }
}

#[test]
fn jpegs_gray_colour_progressive_and_cmyk_are_read() {
    use jpeg_encoder::ColorType;
    let link = pairing_link(300);
    let code = QrCode::new(&link).unwrap();
    let (side, dark) = raster(&code, 4);
    let per_pixel =
        |f: &dyn Fn(bool) -> Vec<u8>| -> Vec<u8> { dark.iter().flat_map(|&d| f(d)).collect() };
    let gray = per_pixel(&|d| vec![if d { 0 } else { 255 }]);
    let colour = per_pixel(&|d| {
        if d {
            vec![30, 20, 80]
        } else {
            vec![255, 250, 235]
        }
    });
    let cmyk = per_pixel(&|d| {
        if d {
            vec![0, 0, 0, 255]
        } else {
            vec![0, 0, 0, 0]
        }
    });

    let pictures = [
        (
            "gray",
            jpeg_of(side, side, ColorType::Luma, &gray, 90, false),
        ),
        (
            "colour",
            jpeg_of(side, side, ColorType::Rgb, &colour, 75, false),
        ),
        (
            "progressive",
            jpeg_of(side, side, ColorType::Rgb, &colour, 75, true),
        ),
        (
            "CMYK",
            jpeg_of(side, side, ColorType::Cmyk, &cmyk, 90, false),
        ),
    ];

    for (kind, jpeg) in pictures {
        assert_eq!(decode_image_bytes(&jpeg).unwrap(), link, "{kind} JPEG");
    }
}

/// Something like a phone photo of the desktop's screen: the code (quiet zone included, at
/// `scale` px per module) tilted by `degrees`, on a grey desk, lit unevenly, with sensor noise.
/// Returns RGB samples of `width` × `height`.
fn photo_of_screen(
    code: &QrCode,
    scale: usize,
    degrees: f64,
    width: usize,
    height: usize,
) -> Vec<u8> {
    let (side, dark) = raster(code, scale);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
    let half = side as f64 / 2.0;
    let source = |x: f64, y: f64| -> f64 {
        if x < 0.0 || y < 0.0 || x >= side as f64 || y >= side as f64 {
            return 95.0; // the desk
        }
        if dark[y as usize * side + x as usize] {
            25.0
        } else {
            235.0
        }
    };
    let mut noise: u32 = 0x1234_5678;
    let mut rgb = Vec::with_capacity(width * height * 3);
    for v in 0..height {
        for u in 0..width {
            // Where this photo pixel falls on the code, sampled 2×2 to blur edges a little.
            let mut sum = 0.0;
            for (du, dv) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (dx, dy) = (u as f64 + du - cx, v as f64 + dv - cy);
                let x = cos * dx + sin * dy + half;
                let y = -sin * dx + cos * dy + half;
                sum += source(x, y);
            }
            let light = 0.7 + 0.3 * (u as f64 / width as f64);
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            let grain = f64::from(noise % 25) - 12.0;
            let value = (sum / 4.0 * light + grain).clamp(0.0, 255.0);
            rgb.extend([value as u8, (value * 0.97) as u8, (value * 0.9) as u8]);
        }
    }
    rgb
}

#[test]
fn tilted_uneven_noisy_jpeg_photos_of_the_screen_are_read() {
    let link = pairing_link(300);
    let code = QrCode::new(&link).unwrap();
    let (width, height) = (720, 640);
    // The code spans about 460 of the photo's 720 pixels, 6 per module.
    for degrees in [4.0, 18.0, 42.0] {
        let photo = photo_of_screen(&code, 6, degrees, width, height);
        let jpeg = jpeg_of(
            width,
            height,
            jpeg_encoder::ColorType::Rgb,
            &photo,
            70,
            false,
        );

        assert_eq!(
            decode_image_bytes(&jpeg).unwrap(),
            link,
            "tilted {degrees}°"
        );
    }
}

#[test]
fn a_light_code_on_a_dark_background_is_read_too() {
    // A screenshot of the terminal art on a light-themed terminal comes out inverted.
    let link = pairing_link(300);
    let code = QrCode::new(&link).unwrap();
    let (side, dark) = raster(&code, 4);
    let inverted: Vec<u8> = dark.iter().map(|&d| if d { 255 } else { 0 }).collect();

    assert_eq!(
        decode_image_bytes(&gray_png(side, side, &inverted)).unwrap(),
        link
    );
}

#[test]
fn a_code_damaged_beyond_repair_is_unreadable_not_missing() {
    let code = QrCode::new(&pairing_link(300)).unwrap();
    let framed = code.width() + 8;
    let mut modules: Vec<bool> = (0..framed * framed)
        .map(|i| code.is_dark(i % framed, i / framed))
        .collect();
    // Flip every other module in the rows between the finder patterns: far more than the 15 %
    // level M repairs, while the finder and timing patterns stay.
    for y in 4 + 9..4 + code.width() - 9 {
        for x in 4 + 9..4 + code.width() - 9 {
            if (x + y) % 2 == 0 && y != 4 + 6 && x != 4 + 6 {
                modules[y * framed + x] ^= true;
            }
        }
    }

    let err = decode_image_bytes(&paint_modules(&modules, framed, 4)).unwrap_err();

    assert!(
        matches!(err, Error::Unreadable { path: None, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("a QR code was found in the image but could not be read")
    );
}

#[test]
fn a_code_holding_bytes_that_are_not_utf8_is_refused() {
    let raw = qrcode::QrCode::new(b"tandem://link?v=1&ref=\xff\xfe\xfd").unwrap();
    let width = raw.width();
    let framed = width + 8;
    let colors = raw.to_colors();
    let modules: Vec<bool> = (0..framed * framed)
        .map(|i| {
            let (x, y) = (i % framed, i / framed);
            (4..4 + width).contains(&x)
                && (4..4 + width).contains(&y)
                && colors[(y - 4) * width + x - 4] == qrcode::Color::Dark
        })
        .collect();

    let err = decode_image_bytes(&paint_modules(&modules, framed, 4)).unwrap_err();

    assert!(matches!(err, Error::NotUtf8 { path: None }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the QR code in the image does not hold UTF-8 text"
    );
}

#[test]
fn noise_and_blank_pictures_hold_no_code() {
    let side = 300;
    let mut state: u32 = 7;
    let noise: Vec<u8> = (0..side * side)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    for (kind, pixels) in [
        ("noise", noise),
        ("white", vec![255; side * side]),
        ("black", vec![0; side * side]),
    ] {
        let err = decode_image_bytes(&gray_png(side, side, &pixels)).unwrap_err();
        assert!(
            matches!(err, Error::NoCode { path: None }),
            "{kind}: {err:?}"
        );
        assert_eq!(err.to_string(), "no QR code was found in the image");
    }
}

#[test]
fn a_huge_png_is_refused_from_its_header_before_any_pixel_is_decoded() {
    // Only the signature and the header of a 20000 × 20000 picture: 400 megapixels.
    let mut header = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut header, 20_000, 20_000);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let writer = encoder.write_header().unwrap();
        drop(writer);
    }

    let err = decode_image_bytes(&header).unwrap_err();

    let Error::Image { path: None, reason } = &err else {
        panic!("{err:?}")
    };
    assert!(
        reason.contains("20000 × 20000 pixels, more than the 67 megapixels"),
        "{reason}"
    );
}

#[test]
fn a_huge_jpeg_is_refused_from_its_header_before_any_pixel_is_decoded() {
    let mut jpeg = jpeg_of(
        16,
        16,
        jpeg_encoder::ColorType::Luma,
        &[128; 256],
        90,
        false,
    );
    // Rewrite the frame header (SOF0: FF C0, length, precision, height, width) to 60000 × 60000.
    let sof = jpeg.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xea, 0x60, 0xea, 0x60]);

    let err = decode_image_bytes(&jpeg).unwrap_err();

    let Error::Image { path: None, reason } = &err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("60000 × 60000 pixels"), "{reason}");
}

#[test]
fn other_formats_empty_and_cut_files_are_image_errors() {
    let png = QrCode::new("tandem://link?v=1").unwrap().to_png(4).unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "GIF",
            b"GIF89a\x01\x00\x01\x00",
            "first bytes are not those of a PNG or JPEG",
        ),
        ("empty", b"", "the file is empty"),
        ("cut PNG", &png[..png.len() / 2], "bad PNG"),
        ("cut JPEG", b"\xff\xd8\xff\xe0\x00\x10JFIF", "bad JPEG"),
    ];
    for (kind, bytes, reason_part) in cases {
        let err = decode_image_bytes(bytes).unwrap_err();
        let Error::Image { path: None, reason } = &err else {
            panic!("{kind}: {err:?}")
        };
        assert!(reason.contains(reason_part), "{kind}: {reason}");
        assert!(
            err.to_string()
                .starts_with("the image is not a readable PNG or JPEG picture: ")
        );
    }
}

#[test]
fn transparent_pixels_count_as_white_paper() {
    assert_eq!(Channels::Rgba.luminance(&[0, 0, 0, 0]), 255);
    assert_eq!(Channels::Rgba.luminance(&[0, 0, 0, 255]), 0);
    assert_eq!(Channels::LumaAlpha.luminance(&[0, 128]), 127);
    assert_eq!(Channels::Rgb.luminance(&[255, 255, 255]), 255);
    assert_eq!(Channels::Rgb.luminance(&[0, 255, 0]), 149);
    assert_eq!(Channels::Luma.luminance(&[42]), 42);
}

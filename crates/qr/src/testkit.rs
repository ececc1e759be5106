//! Helpers shared by the unit tests: pairing-link-like texts and pictures painted from pixels.

/// A link shaped like the desktop's pairing link (`tandem://link?v=1&ref=..&dh=..&sig=..
/// &secret=..&broker=..&name=..&platform=..`), exactly `len` characters long (at least 280).
pub(crate) fn pairing_link(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state: u32 = 0x9e37_79b9;
    let mut b64 = |n: usize| -> String {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                char::from(ALPHABET[(state % 64) as usize])
            })
            .collect()
    };
    let mut link = format!(
        "tandem://link?v=1&ref={}&dh={}&sig={}&secret={}&broker=mqtts%3A%2F%2Fbroker.example.org%3A8883&platform=linux&name=",
        b64(22),
        b64(43),
        b64(86),
        b64(22),
    );
    assert!(
        link.len() <= len,
        "a pairing link is at least {} chars",
        link.len()
    );
    let name = "Ana%27s%20laptop%20";
    while link.len() < len {
        let room = len - link.len();
        link.push_str(&name[..room.min(name.len())]);
    }
    link
}

/// An 8-bit grayscale PNG of `width` × `height` pixels, row-major.
pub(crate) fn gray_png(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(pixels).unwrap();
    writer.finish().unwrap();
    out
}

/// Paints a square grid of modules (`true` dark), `side` per row, `scale` pixels per module, black
/// on white, with no border of its own.
pub(crate) fn paint_modules(grid: &[bool], side: usize, scale: usize) -> Vec<u8> {
    let px = side * scale;
    let mut pixels = vec![255u8; px * px];
    for y in 0..px {
        for x in 0..px {
            if grid[(y / scale) * side + x / scale] {
                pixels[y * px + x] = 0;
            }
        }
    }
    gray_png(px, px, &pixels)
}

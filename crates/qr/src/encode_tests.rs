//! Stories about drawing a pairing code: every renderer shows exactly the modules of the code,
//! with its quiet zone, and what it draws can be read back.

use super::*;
use crate::decode_image_bytes;
use crate::testkit::{paint_modules, pairing_link};

/// The framed module grid (quiet zone included) as the code itself says it is.
fn framed_grid(code: &QrCode) -> Vec<bool> {
    let side = code.framed_width();
    (0..side * side)
        .map(|i| code.is_dark(i % side, i / side))
        .collect()
}

#[test]
fn the_code_is_level_m_and_holds_the_link() {
    let link = pairing_link(300);
    let code = QrCode::new(&link).unwrap();

    // Read the module grid directly, without any picture in between.
    let grid = rqrr::SimpleGrid::from_func(code.width(), |x, y| {
        code.is_dark(x + QUIET_ZONE, y + QUIET_ZONE)
    });
    let (meta, text) = rqrr::Grid::new(grid).decode().unwrap();

    assert_eq!(text, link);
    assert_eq!(meta.ecc_level, 0, "format bits 00 mean level M");
    assert_eq!(code.width(), 17 + 4 * meta.version.0);
    // 300 bytes at level M need version 13 (271 bytes at most in version 12).
    assert_eq!(code.width(), 69);
}

#[test]
fn the_quiet_zone_is_light_all_around() {
    let code = QrCode::new("tandem://link?v=1").unwrap();
    let side = code.framed_width();
    for i in 0..side {
        for band in 0..QUIET_ZONE {
            assert!(!code.is_dark(i, band), "top row {band}, column {i}");
            assert!(!code.is_dark(i, side - 1 - band), "bottom row, column {i}");
            assert!(!code.is_dark(band, i), "left column {band}, row {i}");
            assert!(!code.is_dark(side - 1 - band, i), "right column, row {i}");
        }
    }
    // The top-left finder pattern starts right inside the quiet zone.
    assert!(code.is_dark(QUIET_ZONE, QUIET_ZONE));
    assert!(code.is_dark(QUIET_ZONE + 6, QUIET_ZONE + 6));
}

#[test]
fn terminal_art_is_width_plus_8_columns_and_half_as_many_lines_of_four_characters() {
    let code = QrCode::new(&pairing_link(300)).unwrap();
    let art = code.to_terminal();
    let columns = code.width() + 8;

    assert!(art.ends_with('\n'));
    let lines: Vec<&str> = art.split_terminator('\n').collect();
    assert_eq!(lines.len(), columns.div_ceil(2));
    for line in &lines {
        assert_eq!(line.chars().count(), columns);
        assert!(
            line.chars()
                .all(|c| matches!(c, '\u{2580}' | '\u{2584}' | '\u{2588}' | ' ')),
            "unexpected character in {line:?}"
        );
    }
    // The quiet zone's top two rows are light: full blocks. The framed side is odd, so the last
    // line holds one light row over the background: upper half blocks.
    assert!(lines[0].chars().all(|c| c == '\u{2588}'));
    assert!(lines[lines.len() - 1].chars().all(|c| c == '\u{2580}'));
}

#[test]
fn terminal_art_scans_on_a_dark_terminal() {
    let link = pairing_link(290);
    let code = QrCode::new(&link).unwrap();
    let side = code.framed_width();

    // A dark terminal draws blocks in light text colour over a dark background.
    let mut seen = vec![true; side * side];
    for (line, text) in code.to_terminal().lines().enumerate() {
        for (x, c) in text.chars().enumerate() {
            let (top_light, bottom_light) = match c {
                '\u{2588}' => (true, true),
                '\u{2580}' => (true, false),
                '\u{2584}' => (false, true),
                _ => (false, false),
            };
            seen[2 * line * side + x] = !top_light;
            if 2 * line + 1 < side {
                seen[(2 * line + 1) * side + x] = !bottom_light;
            }
        }
    }

    assert_eq!(seen, framed_grid(&code), "the art shows every module");
    assert_eq!(
        decode_image_bytes(&paint_modules(&seen, side, 4)).unwrap(),
        link
    );
}

/// The rectangles of the SVG's path, painted back into a module grid.
fn paint_svg_path(svg: &str, side: usize) -> Vec<bool> {
    let d_start = svg.find(" d=\"").unwrap() + 4;
    let d = &svg[d_start..d_start + svg[d_start..].find('"').unwrap()];
    let mut grid = vec![false; side * side];
    for rect in d.split_terminator('z') {
        // "M{x} {y}h{run}v1h-{run}"
        let rect = rect.strip_prefix('M').unwrap();
        let (x, rest) = rect.split_once(' ').unwrap();
        let (y, rest) = rest.split_once('h').unwrap();
        let (run, back) = rest.split_once("v1h-").unwrap();
        assert_eq!(run, back, "a rectangle closes on itself: {rect}");
        let (x, y, run): (usize, usize, usize) =
            (x.parse().unwrap(), y.parse().unwrap(), run.parse().unwrap());
        for cell in &mut grid[y * side + x..y * side + x + run] {
            assert!(!*cell, "rectangles do not overlap");
            *cell = true;
        }
    }
    grid
}

#[test]
fn svg_is_a_standalone_document_sized_by_its_view_box() {
    let code = QrCode::new(&pairing_link(300)).unwrap();
    let svg = code.to_svg();
    let side = code.width() + 8;

    assert!(svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "));
    assert!(svg.ends_with("</svg>\n"));
    assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.contains(&format!("viewBox=\"0 0 {side} {side}\"")));
    assert!(svg.contains(&format!(
        "width=\"{px}\" height=\"{px}\"",
        px = side * SVG_PIXELS_PER_MODULE
    )));
    assert!(svg.contains("shape-rendering=\"crispEdges\""));
    assert!(svg.contains(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{side}\" height=\"{side}\" fill=\"#ffffff\"/>"
    )));
    assert_eq!(svg.matches("<path ").count(), 1);
}

#[test]
fn svg_path_draws_exactly_the_dark_modules_and_scans() {
    let link = pairing_link(300);
    let code = QrCode::new(&link).unwrap();
    let side = code.framed_width();

    let painted = paint_svg_path(&code.to_svg(), side);

    assert_eq!(painted, framed_grid(&code));
    assert_eq!(
        decode_image_bytes(&paint_modules(&painted, side, 3)).unwrap(),
        link
    );
}

#[test]
fn svg_merges_each_horizontal_run_into_one_rectangle() {
    let code = QrCode::new("tandem://link?v=1").unwrap();
    let svg = code.to_svg();
    let side = code.framed_width();

    // A run starts at every dark module whose left neighbour is light.
    let grid = framed_grid(&code);
    let runs = (0..side * side)
        .filter(|&i| grid[i] && (i % side == 0 || !grid[i - 1]))
        .count();
    assert_eq!(svg.matches('M').count(), runs);
    // Row 4 (the first of the code) starts with the 7-module top edge of a finder pattern.
    assert!(svg.contains("M4 4h7v1h-7z"));
}

#[test]
fn png_is_8_bit_grayscale_with_scale_pixels_per_module_and_the_quiet_zone() {
    let code = QrCode::new(&pairing_link(300)).unwrap();
    for scale in [1, 3, 32] {
        let png = code.to_png(scale).unwrap();

        let mut reader = png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        let side = (code.width() + 8) * scale as usize;

        assert_eq!((frame.width as usize, frame.height as usize), (side, side));
        assert_eq!(frame.color_type, png::ColorType::Grayscale);
        assert_eq!(frame.bit_depth, png::BitDepth::Eight);
        for y in 0..side {
            for x in 0..side {
                let module = code.is_dark(x / scale as usize, y / scale as usize);
                let expected = if module { 0 } else { 255 };
                assert_eq!(
                    pixels[y * side + x],
                    expected,
                    "pixel {x},{y} at scale {scale}"
                );
            }
        }
    }
}

#[test]
fn png_scale_outside_1_to_32_is_refused() {
    let code = QrCode::new("tandem://link?v=1").unwrap();
    for scale in [0, 33, u32::MAX] {
        let err = code.to_png(scale).unwrap_err();
        assert!(matches!(err, Error::BadScale { scale: s } if s == scale));
        assert!(err.to_string().contains("1 to 32"), "{err}");
    }
}

#[test]
fn the_longest_text_fits_in_version_40_and_one_byte_more_is_too_long() {
    let text: String = "tandem://link?"
        .chars()
        .cycle()
        .take(MAX_TEXT_BYTES)
        .collect();
    assert_eq!(QrCode::new(&text).unwrap().width(), 177);

    let longer = format!("{text}x");
    let err = QrCode::new(&longer).unwrap_err();
    assert!(matches!(err, Error::TooLong { len } if len == MAX_TEXT_BYTES + 1));
    assert_eq!(
        err.to_string(),
        "a text of 2332 bytes does not fit in a QR code (at most 2331 bytes of arbitrary text)"
    );
}

#[test]
fn an_empty_text_is_a_version_1_code() {
    assert_eq!(QrCode::new("").unwrap().width(), 21);
}

#[test]
fn debug_shows_the_size_and_not_the_modules() {
    let code = QrCode::new(&pairing_link(300)).unwrap();
    assert_eq!(format!("{code:?}"), "QrCode { width: 69, .. }");
}

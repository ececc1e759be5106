//! Properties: any short ASCII text survives the trip through a PNG, and the picture reader,
//! given random or damaged bytes, answers with a typed error (or a text) and never panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use proptest::prelude::*;
use tandem_qr::{Error, QrCode, decode_image_bytes};

/// Whether the reader's answer is one it may give for bytes from outside.
fn is_typed_answer(result: &Result<String, Error>) -> bool {
    matches!(
        result,
        Ok(_)
            | Err(Error::Image { path: None, .. }
                | Error::NoCode { path: None }
                | Error::Unreadable { path: None, .. }
                | Error::NotUtf8 { path: None })
    )
}

/// A real PNG of a pairing-like code, to damage.
fn sample_png() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| {
        QrCode::new("tandem://link?v=1&ref=q7Hk2mPz9XwT&dh=Zk3yQW9tY1hBcGxx")
            .unwrap()
            .to_png(2)
            .unwrap()
    })
}

/// A real JPEG of a code, to damage.
fn sample_jpeg() -> &'static [u8] {
    static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
    JPEG.get_or_init(|| {
        let code = QrCode::new("tandem://link?v=1&ref=q7Hk2mPz9XwT").unwrap();
        let png = code.to_png(2).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 80)
            .encode(
                &pixels,
                frame.width as u16,
                frame.height as u16,
                jpeg_encoder::ColorType::Luma,
            )
            .unwrap();
        jpeg
    })
}

/// Applies `edits` (position, new byte) and cuts the result at `keep` of its length.
fn damaged(original: &[u8], edits: &[(usize, u8)], keep: f64) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for &(at, value) in edits {
        let at = at % bytes.len();
        bytes[at] = value;
    }
    let keep = ((bytes.len() as f64) * keep).ceil() as usize;
    bytes.truncate(keep.max(1));
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_ascii_text_up_to_300_chars_round_trips_through_png(
        text in "[ -~]{0,300}",
        scale in 2u32..=4,
    ) {
        let png = QrCode::new(&text).unwrap().to_png(scale).unwrap();
        prop_assert_eq!(decode_image_bytes(&png).unwrap(), text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_refused_with_a_typed_error(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        start in prop::sample::select(vec![&b""[..], b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]),
    ) {
        let mut input = start.to_vec();
        input.extend(bytes);
        let result = decode_image_bytes(&input);
        prop_assert!(is_typed_answer(&result), "{:?}", result);
    }

    #[test]
    fn damaged_pngs_get_a_typed_answer(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        keep in 0.05f64..=1.0,
    ) {
        let result = decode_image_bytes(&damaged(sample_png(), &edits, keep));
        prop_assert!(is_typed_answer(&result), "{:?}", result);
    }

    #[test]
    fn damaged_jpegs_get_a_typed_answer(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        keep in 0.05f64..=1.0,
    ) {
        let result = decode_image_bytes(&damaged(sample_jpeg(), &edits, keep));
        prop_assert!(is_typed_answer(&result), "{:?}", result);
    }
}

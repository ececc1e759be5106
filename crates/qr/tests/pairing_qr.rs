//! The desktop shows a pairing link as a QR code and saves it as a PNG; the phone reads it back
//! from a picture. These stories go through the public API only, with real files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use tandem_qr::{Error, QrCode, decode_image_bytes, decode_image_file, write_png_atomically};

/// A link shaped like the desktop's pairing link, `len` characters long (at least 260).
fn pairing_link(len: usize) -> String {
    let mut link = String::from(
        "tandem://link?v=1&ref=q7Hk2mPz9XwT4bNc1sLd0A&dh=Zk3yQW9tY1hBcGxxR0x6VjNmM2RkNEc5bE5oVXc0cmE\
         &sig=Fh2Kd9sL0pQw8eRt5yUi3oPa7sDf1gHj6kLz4xCv2bNm9qWe0rTy8uIo5pAs3dFg7hJk1lZx6cVb4nMq2wEr0t\
         &secret=Pq3Wm8Zt1Yx7Lk4Jh9Gf2D&broker=mqtts%3A%2F%2Fbroker.example.org%3A8883&platform=linux&name=",
    );
    assert!(link.len() <= len);
    while link.len() < len {
        link.push(char::from(b'a' + (link.len() % 26) as u8));
    }
    link
}

#[test]
fn a_pairing_link_round_trips_through_png_bytes_at_several_scales() {
    let link = pairing_link(300);
    let code = QrCode::new(&link).unwrap();

    for scale in [1, 2, 3, 4, 8] {
        let png = code.to_png(scale).unwrap();
        assert_eq!(decode_image_bytes(&png).unwrap(), link, "scale {scale}");
    }
}

#[test]
fn a_400_character_link_round_trips_in_a_bigger_code() {
    let link = pairing_link(400);
    let code = QrCode::new(&link).unwrap();
    assert!(code.width() > QrCode::new(&pairing_link(300)).unwrap().width());

    assert_eq!(decode_image_bytes(&code.to_png(3).unwrap()).unwrap(), link);
}

#[test]
fn the_longest_link_the_protocol_accepts_round_trips() {
    // tandem-proto refuses links longer than 1024 bytes.
    let link = pairing_link(1024);
    let code = QrCode::new(&link).unwrap();

    for scale in [2, 4] {
        assert_eq!(
            decode_image_bytes(&code.to_png(scale).unwrap()).unwrap(),
            link
        );
    }
}

/// The names in `folder`, sorted.
fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_png_saved_atomically_is_read_back_from_its_file_and_replaces_the_old_one() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("pairing.png");
    let first = pairing_link(300);
    let second = pairing_link(320);

    write_png_atomically(&path, &QrCode::new(&first).unwrap().to_png(4).unwrap()).unwrap();
    assert_eq!(decode_image_file(&path).unwrap(), first);

    // The code rotates: the next one replaces the file, and no temporary file is left behind.
    write_png_atomically(&path, &QrCode::new(&second).unwrap().to_png(4).unwrap()).unwrap();
    assert_eq!(decode_image_file(&path).unwrap(), second);
    assert_eq!(names_in(folder.path()), ["pairing.png"]);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "a pairing code is for its owner's eyes only"
        );
    }
}

#[test]
fn a_png_saved_by_a_relative_name_lands_in_the_current_folder() {
    // A bare file name has an empty parent: the temporary file must go to ".", not to "".
    let folder = tempfile::tempdir().unwrap();
    let png = QrCode::new("tandem://link?v=1").unwrap().to_png(2).unwrap();
    let relative = Path::new("relative-name-test.png");

    let previous = std::env::current_dir().unwrap();
    std::env::set_current_dir(folder.path()).unwrap();
    let saved = write_png_atomically(relative, &png);
    std::env::set_current_dir(previous).unwrap();

    saved.unwrap();
    assert_eq!(
        std::fs::read(folder.path().join(relative)).unwrap(),
        png,
        "the file holds exactly the bytes given"
    );
}

#[test]
fn saving_into_a_missing_folder_fails_naming_the_file_and_leaves_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("no-such-folder").join("pairing.png");

    let err = write_png_atomically(&path, b"\x89PNG").unwrap_err();

    let Error::Write {
        path: named,
        source,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(named, &path);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with(&format!("cannot save {}: ", path.display()))
    );
    assert!(names_in(folder.path()).is_empty());
}

#[test]
fn saving_to_a_path_without_a_file_name_is_refused() {
    let err = write_png_atomically(Path::new("/"), b"\x89PNG").unwrap_err();
    assert!(
        matches!(&err, Error::Write { path, .. } if path == Path::new("/")),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("does not end with a file name"),
        "{err}"
    );
}

#[test]
fn a_picture_with_no_code_says_so_naming_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("blank.png");
    // A blank white page: the pixels of a code's quiet zone, and nothing else.
    let code = QrCode::new("x").unwrap();
    let side = (code.width() + 8) as u32 * 8;
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&vec![255; (side * side) as usize])
            .unwrap();
        writer.finish().unwrap();
    }
    write_png_atomically(&path, &png).unwrap();

    let err = decode_image_file(&path).unwrap_err();

    assert!(
        matches!(&err, Error::NoCode { path: Some(p) } if p == &path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("no QR code was found in {}", path.display())
    );
}

#[test]
fn a_file_that_is_not_a_picture_is_an_image_error_naming_the_path() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("link.txt");
    std::fs::write(&path, pairing_link(300)).unwrap();

    let err = decode_image_file(&path).unwrap_err();

    let Error::Image {
        path: Some(named),
        reason,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(named, &path);
    assert!(reason.contains("not those of a PNG or JPEG"), "{reason}");
    assert!(err.to_string().starts_with(&format!(
        "{} is not a readable PNG or JPEG picture",
        path.display()
    )));
}

#[test]
fn a_missing_file_is_an_io_error_naming_the_path() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("never-saved.png");

    let err = decode_image_file(&path).unwrap_err();

    let Error::Io {
        path: named,
        source,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(named, &path);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read {}: ", path.display()))
    );
}

#[test]
fn a_folder_given_as_a_picture_is_an_io_error() {
    let folder = tempfile::tempdir().unwrap();
    let err = decode_image_file(folder.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == folder.path()),
        "{err:?}"
    );
}

#[test]
fn a_text_too_long_for_any_qr_code_is_refused() {
    let err = QrCode::new(&"x".repeat(5000)).unwrap_err();
    assert!(matches!(err, Error::TooLong { len: 5000 }), "{err:?}");
}

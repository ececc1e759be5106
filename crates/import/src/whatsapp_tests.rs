use jiff::tz::TimeZone;

use super::*;
use crate::parse_bytes;

fn utc() -> ImportOptions {
    ImportOptions::new(TimeZone::UTC)
}

fn berlin() -> ImportOptions {
    ImportOptions::new(TimeZone::get("Europe/Berlin").unwrap())
}

/// Unix ms of a UTC wall-clock time.
fn ms(y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8) -> i64 {
    jiff::civil::date(y, mo, d)
        .at(h, mi, s, 0)
        .to_zoned(TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn parse(name: &str, text: &str, opts: &ImportOptions) -> ImportedChat {
    let export = parse_bytes(name, text.as_bytes(), opts).unwrap();
    assert_eq!(export.chats.len(), 1);
    export.chats.into_iter().next().unwrap()
}

fn media(file_name: Option<&str>) -> RecordKind {
    RecordKind::Media {
        file_name: file_name.map(str::to_owned),
    }
}

fn lines(chat: &ImportedChat) -> Vec<usize> {
    chat.records.iter().map(|r| r.line).collect()
}

const ANA: &str = include_str!("../tests/fixtures/WhatsApp Chat with Ana Lima.txt");
const GARDEN: &str = include_str!("../tests/fixtures/WhatsApp Chat - Garden Club.txt");
const ARABIC: &str = include_str!("../tests/fixtures/arabic_ios_digits.txt");

#[test]
fn an_android_chat_with_ana_has_one_record_per_header_line() {
    let export = parse_bytes("WhatsApp Chat with Ana Lima.txt", ANA.as_bytes(), &utc()).unwrap();
    assert_eq!(export.format, Format::WhatsAppAndroid);
    let chat = &export.chats[0];
    assert_eq!(chat.name, "Ana Lima");
    assert_eq!(chat.kind, ChatKind::Direct);
    assert_eq!(chat.source_id, None);
    assert_eq!(lines(chat), [1, 2, 3, 6, 8, 10, 11, 12, 13, 14, 15, 16]);

    let r = &chat.records;
    assert_eq!(r[0].kind, RecordKind::System);
    assert_eq!(r[0].author, None);
    assert!(
        r[0].text
            .starts_with("Messages and calls are end-to-end encrypted.")
    );

    assert_eq!(r[1].author.as_deref(), Some("Ana Lima"));
    assert_eq!(r[1].ts_ms, ms(2024, 1, 2, 9, 1, 0));
    assert_eq!(r[2].text, "Yes. Shopping list:\n- bread\n- 2 lemons");

    assert_eq!(r[3].kind, media(None));
    assert_eq!(r[3].text, "the ticket");
    assert_eq!(r[4].kind, media(Some("IMG-20240102-WA0001.jpg")));
    assert_eq!(r[4].text, "Sunset at the pier");
    assert_eq!(r[5].kind, media(Some("Notes.pdf")));
    assert_eq!(r[5].text, "");

    assert_eq!(r[6].kind, RecordKind::Deleted);
    assert!(!r[6].from_me);
    assert_eq!(r[7].kind, RecordKind::Deleted);
    assert!(r[7].from_me);
    assert_eq!(r[8].kind, media(None), "null is view-once media");
    assert_eq!(
        r[9].text,
        "location: https://maps.google.com/?q=38.7071,-9.1355"
    );

    assert_eq!(r[10].kind, RecordKind::System);
    assert_eq!(r[10].author.as_deref(), Some("Ana Lima"));
    assert_eq!(r[10].text, "Missed video call");
    assert_eq!(r[10].ts_ms, ms(2024, 1, 13, 18, 45, 0));

    // The body holds a time and " - ", and trailing blank lines of the file are dropped.
    assert_eq!(r[11].text, "Time check: 18:46 - late again");
}

#[test]
fn who_is_me_comes_from_the_option_or_from_you_deleted_lines() {
    let chat = parse("WhatsApp Chat with Ana Lima.txt", ANA, &utc());
    let mine: Vec<usize> = chat
        .records
        .iter()
        .filter(|r| r.from_me)
        .map(|r| r.line)
        .collect();
    assert_eq!(
        mine,
        [3, 6, 12, 13, 16],
        "Rui deleted a message, so Rui exported"
    );

    let mut opts = utc();
    opts.me = Some(" Ana Lima ".to_owned());
    let chat = parse("WhatsApp Chat with Ana Lima.txt", ANA, &opts);
    let mine: Vec<usize> = chat
        .records
        .iter()
        .filter(|r| r.from_me)
        .map(|r| r.line)
        .collect();
    assert_eq!(
        mine,
        [2, 8, 10, 11, 12, 14, 15],
        "Ana's lines and the 'You deleted' line"
    );
}

#[test]
fn berlin_wall_clock_times_become_utc_instants() {
    let chat = parse("WhatsApp Chat with Ana Lima.txt", ANA, &berlin());
    // 2 January 2024 09:01 in Berlin (CET, UTC+1).
    assert_eq!(chat.records[1].ts_ms, ms(2024, 1, 2, 8, 1, 0));
    let summer = "01/07/2024, 09:00 - A: x\n31/10/2024, 09:00 - A: y\n";
    let chat = parse("x.txt", summer, &berlin());
    assert_eq!(
        chat.records[0].ts_ms,
        ms(2024, 7, 1, 7, 0, 0),
        "CEST is UTC+2"
    );
    assert_eq!(
        chat.records[1].ts_ms,
        ms(2024, 10, 31, 8, 0, 0),
        "CET is UTC+1"
    );
}

#[test]
fn an_ios_group_with_bom_crlf_and_lf_inside_a_message() {
    let export = parse_bytes("WhatsApp Chat - Garden Club.txt", GARDEN.as_bytes(), &utc()).unwrap();
    assert_eq!(export.format, Format::WhatsAppIos);
    let chat = &export.chats[0];
    assert_eq!(chat.name, "Garden Club");
    assert_eq!(chat.kind, ChatKind::Group);
    // Line numbers count the LF inside record 4 (lines 4-6).
    assert_eq!(lines(chat), [1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13]);
    let r = &chat.records;

    assert_eq!(
        r[0].kind,
        RecordKind::System,
        "E2E notice attributed to the group"
    );
    assert_eq!(r[0].author, None);
    assert_eq!(r[0].ts_ms, ms(2024, 5, 4, 10, 0, 0));

    assert_eq!(r[1].text, "You created group “Garden Club”");
    assert!(r[1].from_me);
    assert_eq!(r[2].text, "You added Bea Costa");
    assert!(r[2].from_me);

    assert_eq!(r[3].author.as_deref(), Some("Bea Costa"));
    assert_eq!(
        r[3].text,
        "Thanks!\nWho brings the seeds?\nI have tomatoes."
    );

    assert_eq!(
        r[4].kind,
        media(Some("00000012-PHOTO-2024-05-04-10-11-12.jpg"))
    );
    assert_eq!(r[5].author.as_deref(), Some("+351 912 345 678"));
    assert_eq!(r[5].kind, media(Some("Plan.pdf")));
    assert_eq!(r[5].ts_ms, ms(2024, 5, 4, 13, 15, 0));
    assert_eq!(r[6].kind, media(None));
    assert_eq!(r[7].kind, RecordKind::Deleted);

    assert_eq!(r[8].kind, RecordKind::System);
    assert_eq!(
        r[8].text,
        "Bea Costa changed the subject to “Garden Club: Spring”"
    );
    assert_eq!(
        r[8].ts_ms,
        ms(2024, 5, 4, 12, 5, 0),
        "12:05 PM is just after noon"
    );
    assert_eq!(
        r[9].ts_ms,
        ms(2024, 5, 5, 0, 30, 0),
        "12:30 AM is just after midnight"
    );
    assert_eq!(r[10].text, "You removed +351\u{a0}912\u{a0}345\u{a0}678");
    assert_eq!(r[10].ts_ms, ms(2024, 5, 13, 21, 0, 0));
}

#[test]
fn arabic_indic_digits_rlm_and_the_arabic_pm_sign() {
    let chat = parse("arabic_ios_digits.txt", ARABIC, &utc());
    assert_eq!(chat.name, "arabic_ios_digits");
    assert_eq!(chat.kind, ChatKind::Direct);
    let r = &chat.records;
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].kind, RecordKind::System);
    assert_eq!(
        r[0].ts_ms,
        ms(2024, 2, 5, 9, 30, 0),
        "day first: 5 February"
    );
    assert_eq!(r[1].author.as_deref(), Some("+20 100 555 0199"));
    assert_eq!(r[1].ts_ms, ms(2024, 2, 5, 13, 5, 9));
    assert_eq!(r[1].text, "مرحبا");
    assert_eq!(r[2].kind, media(None));
    assert_eq!(r[2].ts_ms, ms(2024, 2, 15, 23, 59, 59));
    assert_eq!(r[3].kind, RecordKind::Deleted);
    assert_eq!(r[3].ts_ms, ms(2024, 2, 16, 0, 0, 0), "12 ص is midnight");
}

#[test]
fn every_date_layout_of_one_small_chat_gives_the_same_instants() {
    let layouts = [
        "20/01/19, 11:23 - Jo: a\n30/01/19, 20:49 - Jo: b\n",
        "01/20/19, 11:23 - Jo: a\n01/30/19, 20:49 - Jo: b\n",
        "01/20/2019, 11:23 a. m. - Jo: a\n01/30/2019, 08:49 p. m. - Jo: b\n",
        "2019/01/20, 11:23 - Jo: a\n2019/01/30, 20:49 - Jo: b\n",
        "[01/20/19 11:23] Jo: a\n[01/30/19 20:49] Jo: b\n",
        "20.01.2019, 11:23 - Jo: a\n30.01.2019, 20:49 - Jo: b\n",
        "20-01-2019 11:23 - Jo: a\n30-01-2019 20:49 - Jo: b\n",
        "[11:23:00, 1/20/19] Jo: a\n[20:49:00, 1/30/19] Jo: b\n",
        "[1/20/19 11.23.00] Jo: a\n[1/30/19 20.49.00] Jo: b\n",
        "[1/20/2562 BE, 11:23:00] Jo: a\n[1/30/2562 BE, 20:49:00] Jo: b\n",
        "[1/20/H31, 11:23:00] Jo: a\n[1/30/H31, 20:49:00] Jo: b\n",
        "20.1.2019 klo 11.23 - Jo: a\n30.1.2019 klo 20.49 - Jo: b\n",
        "1/20/19, 11:23:00 AM: Jo: a\n1/30/19, 8:49:00 PM: Jo: b\n",
    ];
    for layout in layouts {
        let chat = parse("x.txt", layout, &utc());
        let ts: Vec<i64> = chat.records.iter().map(|r| r.ts_ms).collect();
        assert_eq!(
            ts,
            [ms(2019, 1, 20, 11, 23, 0), ms(2019, 1, 30, 20, 49, 0)],
            "{layout}"
        );
        assert_eq!(chat.records[1].author.as_deref(), Some("Jo"), "{layout}");
        assert_eq!(chat.records[1].text, "b", "{layout}");
    }
}

#[test]
fn a_header_of_another_shape_inside_a_message_is_a_continuation_line() {
    let text = "18/03/2022, 14:56 - Ana: quoting:\n[3/18/22, 14:56:01] Bo: old line\n18/03/2022, 14:57 - Bo: ok\n";
    let chat = parse("x.txt", text, &utc());
    assert_eq!(chat.records.len(), 2);
    assert_eq!(
        chat.records[0].text,
        "quoting:\n[3/18/22, 14:56:01] Bo: old line"
    );
}

#[test]
fn more_than_two_authors_make_a_group_and_group_events_do_too() {
    let three = "1/1/21, 12:00 - A: x\n1/1/21, 12:01 - B: y\n1/1/21, 12:02 - C: z\n";
    assert_eq!(parse("x.txt", three, &utc()).kind, ChatKind::Group);
    let two = "1/1/21, 12:00 - A: x\n1/1/21, 12:01 - B: y\n";
    assert_eq!(parse("x.txt", two, &utc()).kind, ChatKind::Direct);
    let event = "1/1/21, 12:00 - A created group \"G\"\n1/1/21, 12:01 - A: y\n";
    assert_eq!(parse("x.txt", event, &utc()).kind, ChatKind::Group);
    let joined = "[1/1/21, 12:00:00] \u{200e}Bo joined using this group's invite link\r\n";
    assert_eq!(parse("x.txt", joined, &utc()).kind, ChatKind::Group);
    let german = "01.01.21, 12:00 - Anna hat dich hinzugefügt\n";
    assert_eq!(parse("x.txt", german, &utc()).kind, ChatKind::Group);
}

#[test]
fn old_ios_groups_attribute_app_lines_to_the_group_name() {
    let text = "[1/2/21, 12:00:00] Book Club: \u{200e}Anna added Bo\r\n[1/2/21, 12:00:01] \u{200e}Anna created group “Book Club”\r\n[1/2/21, 12:01:00] Anna: hi\r\n";
    let chat = parse("WhatsApp Chat - Book Club.txt", text, &utc());
    assert_eq!(chat.kind, ChatKind::Group);
    assert_eq!(chat.records[0].kind, RecordKind::System);
    assert_eq!(chat.records[0].author, None);
    assert_eq!(chat.records[0].text, "Anna added Bo");
}

#[test]
fn chat_names_come_from_localised_file_names_then_the_option_then_the_stem() {
    let text = "1/1/21, 12:00 - A: x\n";
    let cases = [
        ("WhatsApp Chat with Ana Lima.txt", "Ana Lima"),
        (
            "/home/u/Downloads/WhatsApp Chat - Elon Musk (EN).txt",
            "Elon Musk (EN)",
        ),
        ("WhatsApp Chat with Ana Lima (2).txt", "Ana Lima"),
        ("C:\\Users\\u\\WhatsApp Chat with Ana.txt", "Ana"),
        (
            "Чат WhatsApp с\u{a0}контактом Dmitry S RU Android.txt",
            "Dmitry S RU Android",
        ),
        (
            "Chat WhatsApp s\u{a0}uživatelem Dmitry S CZ Android.txt",
            "Dmitry S CZ Android",
        ),
        ("WhatsApp-chat met Jan.txt", "Jan"),
        ("Chat de WhatsApp con Lucía.txt", "Lucía"),
        ("WhatsApp-Chat mit Max.txt", "Max"),
        ("Discussion WhatsApp avec Zoé.txt", "Zoé"),
        ("Ayşe ile WhatsApp Sohbeti.txt", "Ayşe"),
    ];
    for (file, name) in cases {
        assert_eq!(parse(file, text, &utc()).name, name, "{file}");
    }
    let mut opts = utc();
    opts.chat_name = Some("Family".to_owned());
    assert_eq!(parse("_chat.txt", text, &opts).name, "Family");
    assert_eq!(parse("WhatsApp Chat with Ana.txt", text, &opts).name, "Ana");
    assert_eq!(parse("_chat.txt", text, &utc()).name, "_chat");
    assert_eq!(parse("notes", text, &utc()).name, "notes");
}

#[test]
fn a_bom_and_blank_lines_before_the_first_header_are_fine() {
    let text = "\u{feff}\n\n18/03/2022, 14:56 - A: x\n";
    let chat = parse("x.txt", text, &utc());
    assert_eq!(lines(&chat), [3]);
}

#[test]
fn a_file_that_is_not_an_export_names_the_first_line() {
    let err = parse_bytes(
        "notes.txt",
        b"\n  \nDear diary,\ntoday 18/03/2022, 14:56 - x\n",
        &utc(),
    )
    .unwrap_err();
    match &err {
        Error::NotAnExport { file, line, text } => {
            assert_eq!(file, "notes.txt");
            assert_eq!(*line, 3);
            assert_eq!(text, "Dear diary,");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "notes.txt is not a WhatsApp or Telegram chat export: line 3 does not look like one: \"Dear diary,\""
    );
}

#[test]
fn a_long_bad_line_is_cut_in_the_error() {
    let long = "x".repeat(500);
    let err = parse_bytes("a.txt", long.as_bytes(), &utc()).unwrap_err();
    let Error::NotAnExport { text, .. } = err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(text.chars().count(), 81);
}

#[test]
fn an_impossible_date_is_refused_with_its_line() {
    let text = "20/01/2022, 10:00 - A: x\n21/13/2022, 10:00 - A: month 13\n";
    let err = parse_bytes("chat.txt", text.as_bytes(), &utc()).unwrap_err();
    match &err {
        Error::BadDate {
            file, line, text, ..
        } => {
            assert_eq!(file, "chat.txt");
            assert_eq!(*line, 2);
            assert_eq!(text, "21/13/2022, 10:00 - A: month 13");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("there is no month 13"), "{err}");
}

#[test]
fn empty_files_are_refused() {
    for bytes in [
        &b""[..],
        b"   \n\n",
        b"\xEF\xBB\xBF",
        "\u{200e}\n".as_bytes(),
    ] {
        let err = parse_bytes("empty.txt", bytes, &utc()).unwrap_err();
        assert!(matches!(err, Error::Empty { .. }), "{bytes:?}: {err:?}");
        assert_eq!(
            err.to_string(),
            "empty.txt is empty: there is no chat in it"
        );
    }
}

#[test]
fn the_old_signal_export_text_format_is_refused_by_name() {
    let text =
        "[2019-12-24, 12:23] Jane Doe: Hello John!\n[2020-01-17, 21:49] John Doe: Hello\nJane!\n";
    let err = parse_bytes("test_export.txt", text.as_bytes(), &utc()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { line: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("Signal"), "{err}");
    // A WhatsApp export with ISO dates has seconds.
    let swedish = "[2022-03-18 14:56:01] Anna: Hej\r\n";
    assert_eq!(parse("x.txt", swedish, &utc()).records.len(), 1);
}

#[test]
fn a_utf16_export_is_read() {
    let text = "18/03/2022, 14:56 - Ana: olá\n";
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    let chat = parse_bytes("x.txt", &bytes, &utc())
        .unwrap()
        .chats
        .remove(0);
    assert_eq!(chat.records[0].text, "olá");
}

use jiff::tz::TimeZone;

use super::*;
use crate::parse_bytes;

fn opts(tz: &str) -> ImportOptions {
    ImportOptions::new(TimeZone::get(tz).unwrap())
}

fn parse(name: &str, json: &str, opts: &ImportOptions) -> Export {
    parse_bytes(name, json.as_bytes(), opts).unwrap()
}

const SINGLE: &str = r#"{
  "name": "Marta",
  "type": "personal_chat",
  "id": 4242,
  "messages": [
    {"id": 1, "type": "service", "date": "2023-03-01T08:00:00", "date_unixtime": "1677657600",
     "actor": "Marta", "actor_id": "user77", "action": "joined_telegram", "text": ""},
    {"id": 2, "type": "message", "date": "2023-03-01T10:15:30", "from": "Marta", "from_id": "user77",
     "text": ["Menu: ", {"type": "bold", "text": "soup"}, " and ", {"type": "link", "text": "https://example.org/menu"}]},
    {"id": 3, "type": "message", "date_unixtime": 1677666000, "from": "Jonas", "from_id": "user12",
     "text": "line one\r\nline two"},
    {"id": 4, "type": "message", "date_unixtime": "1677666060", "from": "Jonas", "from_id": "user12",
     "photo": "photos/photo_3@01-03-2023_11-21-00.jpg", "width": 800, "height": 600, "text": "the view"},
    {"id": 5, "type": "message", "date_unixtime": "1677666120", "from": "Marta", "from_id": "user77",
     "file": "files/Recipe Book.pdf", "file_name": "Recipe Book.pdf", "mime_type": "application/pdf", "text": ""},
    {"id": 6, "type": "message", "date_unixtime": "1677666180", "from": "Marta", "from_id": "user77",
     "photo": "(File not included. Change data exporting settings to download.)", "text": ""},
    {"id": 7, "type": "message", "date_unixtime": "1677666240", "from": "Marta", "from_id": "user77",
     "file": "voice_messages/audio_1.ogg", "media_type": "voice_message", "duration_seconds": 3, "text": ""},
    {"id": 8, "type": "message", "date_unixtime": "1677666300", "from": null, "from_id": "user99",
     "text": "from a deleted account"},
    {"id": 9, "type": "service", "date_unixtime": "1677666360", "actor": "Jonas", "actor_id": "user12",
     "action": "phone_call", "discard_reason": "missed", "text": ""},
    {"id": 10, "type": "message", "date_unixtime": "1677666420", "from": "Jonas", "from_id": "user12",
     "text": "", "text_entities": [{"type": "plain", "text": "only entities"}]}
  ]
}"#;

#[test]
fn a_single_chat_export_has_one_record_per_message() {
    let export = parse("result.json", SINGLE, &opts("UTC"));
    assert_eq!(export.format, Format::Telegram);
    assert_eq!(export.chats.len(), 1);
    let chat = &export.chats[0];
    assert_eq!(chat.name, "Marta");
    assert_eq!(chat.kind, ChatKind::Direct);
    assert_eq!(chat.source_id.as_deref(), Some("4242"));
    let r = &chat.records;
    assert_eq!(r.len(), 10);
    assert_eq!(
        r.iter().map(|r| r.line).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );

    assert_eq!(r[0].kind, RecordKind::System);
    assert_eq!(r[0].author.as_deref(), Some("Marta"));
    assert_eq!(r[0].text, "joined Telegram");
    assert_eq!(
        r[0].ts_ms, 1_677_657_600_000,
        "date_unixtime wins over date"
    );

    assert_eq!(r[1].text, "Menu: soup and https://example.org/menu");
    assert_eq!(r[1].ts_ms, 1_677_665_730_000, "date read in UTC");
    assert_eq!(r[2].text, "line one\nline two");
    assert_eq!(r[2].ts_ms, 1_677_666_000_000, "a number works too");

    assert_eq!(
        r[3].kind,
        RecordKind::Media {
            file_name: Some("photo_3@01-03-2023_11-21-00.jpg".to_owned())
        }
    );
    assert_eq!(r[3].text, "the view");
    assert_eq!(
        r[4].kind,
        RecordKind::Media {
            file_name: Some("Recipe Book.pdf".to_owned())
        }
    );
    assert_eq!(r[5].kind, RecordKind::Media { file_name: None });
    assert_eq!(
        r[6].kind,
        RecordKind::Media {
            file_name: Some("audio_1.ogg".to_owned())
        }
    );
    assert_eq!(r[7].author, None);
    assert_eq!(r[8].kind, RecordKind::System);
    assert_eq!(r[8].text, "missed call");
    assert_eq!(r[9].text, "only entities");
    assert!(r.iter().all(|r| !r.from_me));
}

#[test]
fn local_dates_are_read_in_the_given_zone() {
    let export = parse("result.json", SINGLE, &opts("Europe/Berlin"));
    // 2023-03-01 10:15:30 in Berlin is 09:15:30 UTC.
    assert_eq!(export.chats[0].records[1].ts_ms, 1_677_662_130_000);
    // date_unixtime does not depend on the zone.
    assert_eq!(export.chats[0].records[2].ts_ms, 1_677_666_000_000);
}

#[test]
fn me_marks_records_by_name() {
    let mut o = opts("UTC");
    o.me = Some("Jonas".to_owned());
    let export = parse("result.json", SINGLE, &o);
    let mine: Vec<usize> = export.chats[0]
        .records
        .iter()
        .filter(|r| r.from_me)
        .map(|r| r.line)
        .collect();
    assert_eq!(mine, [3, 4, 9, 10]);
}

const ACCOUNT: &str = r#"{
  "about": "Here is the data you requested.",
  "personal_information": {"user_id": 12, "first_name": "Jonas", "last_name": "", "phone_number": "+49 000"},
  "chats": {"about": "chats", "list": [
    {"name": "Marta", "type": "personal_chat", "id": 4242, "messages": [
      {"id": 1, "type": "message", "date_unixtime": "1677666000", "from": "Jonas Renamed", "from_id": "user12", "text": "hi"},
      {"id": 2, "type": "message", "date_unixtime": "1677666060", "from": "Marta", "from_id": "user77", "text": "hey"}
    ]},
    {"name": "Climbing", "type": "private_supergroup", "id": 99, "messages": [
      {"id": 1, "type": "service", "date_unixtime": "1677666000", "actor": "Marta", "actor_id": "user77",
       "action": "create_group", "title": "Climbing", "members": ["Marta", "Jonas"], "text": ""}
    ]},
    {"name": null, "type": "saved_messages", "id": 12, "messages": []}
  ]},
  "left_chats": {"about": "left", "list": [
    {"name": "Old Group", "type": "private_group", "id": 7, "messages": [
      {"id": 1, "type": "service", "date_unixtime": "1600000000", "actor": "Jonas", "actor_id": "user12",
       "action": "remove_members", "members": ["Jonas"], "text": ""}
    ]}
  ]}
}"#;

#[test]
fn a_whole_account_export_has_every_chat_and_knows_who_exported() {
    let export = parse("result.json", ACCOUNT, &opts("UTC"));
    let names: Vec<&str> = export.chats.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Marta", "Climbing", "Saved Messages", "Old Group"]);
    let kinds: Vec<ChatKind> = export.chats.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ChatKind::Direct,
            ChatKind::Group,
            ChatKind::Direct,
            ChatKind::Group
        ]
    );
    let marta = &export.chats[0];
    assert!(
        marta.records[0].from_me,
        "same user id, whatever the display name"
    );
    assert!(!marta.records[1].from_me);
    let climbing = &export.chats[1];
    assert_eq!(climbing.records[0].text, "created group “Climbing”");
    assert_eq!(climbing.source_id.as_deref(), Some("99"));
    assert!(export.chats[2].records.is_empty());
    assert_eq!(export.chats[3].records[0].text, "removed Jonas");
    assert!(export.chats[3].records[0].from_me);
}

#[test]
fn a_chat_without_type_or_name_is_named_and_kinded_by_its_content() {
    let json = r#"{"messages": [
        {"type": "message", "date_unixtime": "1544006350", "from": "A", "text": "x"},
        {"type": "message", "date_unixtime": "1544006351", "from": "B", "text": "y"}]}"#;
    let chat = &parse("exports/test_single_export.json", json, &opts("UTC")).chats[0];
    assert_eq!(chat.name, "test_single_export");
    assert_eq!(chat.kind, ChatKind::Direct);
    let mut o = opts("UTC");
    o.chat_name = Some("Imported".to_owned());
    assert_eq!(parse("x.json", json, &o).chats[0].name, "Imported");

    let three = r#"{"messages": [
        {"date_unixtime": "1", "from": "A", "text": "x"},
        {"date_unixtime": "2", "from": "B", "text": "y"},
        {"date_unixtime": "3", "from": "C", "text": "z"}]}"#;
    assert_eq!(
        parse("x.json", three, &opts("UTC")).chats[0].kind,
        ChatKind::Group
    );
}

#[test]
fn broken_json_names_line_and_column() {
    let err = parse_bytes(
        "result.json",
        b"{\n  \"messages\": [\n    {,]\n}",
        &opts("UTC"),
    )
    .unwrap_err();
    match &err {
        Error::Json {
            file, line, column, ..
        } => {
            assert_eq!(file, "result.json");
            assert_eq!(*line, 3);
            assert_eq!(*column, 6);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("result.json is not valid JSON (line 3, column 6)")
    );
}

#[test]
fn json_that_is_not_a_telegram_export_is_refused() {
    for json in [r#"{"hello": "world"}"#, r#"{"chat": []}"#] {
        let err = parse_bytes("data.json", json.as_bytes(), &opts("UTC")).unwrap_err();
        match &err {
            Error::NotAnExport { line, text, .. } => {
                assert_eq!(*line, 1);
                assert_eq!(text, json);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let err = parse_bytes("data.json", br#"{"messages": 3}"#, &opts("UTC")).unwrap_err();
    assert!(matches!(err, Error::BadChat { .. }), "{err:?}");
    let err = parse_bytes("data.json", br#"{"chats": {"list": 3}}"#, &opts("UTC")).unwrap_err();
    assert!(matches!(err, Error::BadChat { .. }), "{err:?}");
}

#[test]
fn a_message_without_a_usable_date_is_refused_with_its_position() {
    let cases = [
        (
            r#"{"name": "N", "messages": [{"from": "A", "text": "x"}]}"#,
            "neither",
        ),
        (
            r#"{"name": "N", "messages": [{"date_unixtime": "soon", "text": "x"}]}"#,
            "not a number",
        ),
        (
            r#"{"name": "N", "messages": [{"date": "2023-13-01T00:00:00", "text": "x"}]}"#,
            "not a date",
        ),
        (r#"{"name": "N", "messages": [42]}"#, "not a JSON object"),
        (
            r#"{"name": "N", "messages": [{"date_unixtime": "99999999999999999"}]}"#,
            "out of range",
        ),
    ];
    for (json, why) in cases {
        let err = parse_bytes("r.json", json.as_bytes(), &opts("UTC")).unwrap_err();
        match &err {
            Error::BadMessage {
                chat,
                index,
                reason,
                ..
            } => {
                assert_eq!(chat, "N");
                assert_eq!(*index, 1);
                assert!(reason.contains(why), "{reason}");
            }
            other => panic!("unexpected {other:?} for {json}"),
        }
    }
}

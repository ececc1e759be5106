use super::*;

const LRM: &str = "\u{200e}";

fn one(first: &str) -> Body {
    classify(first, &[], false)
}

fn media(file_name: Option<&str>) -> RecordKind {
    RecordKind::Media {
        file_name: file_name.map(str::to_owned),
    }
}

#[test]
fn a_plain_message_keeps_its_author_and_text() {
    let b = one("Ana Lima: Bom dia! Are we still on?");
    assert_eq!(b.author.as_deref(), Some("Ana Lima"));
    assert_eq!(b.kind, RecordKind::Text);
    assert_eq!(b.text, "Bom dia! Are we still on?");
}

#[test]
fn continuation_lines_join_the_text_and_trailing_blank_lines_go() {
    let b = classify(
        "Rui: Shopping list:",
        &["- bread", "", "- lemons", "", ""],
        false,
    );
    assert_eq!(b.text, "Shopping list:\n- bread\n\n- lemons");
}

#[test]
fn colons_inside_the_text_do_not_move_the_author() {
    let b = one("John-John Doe: Lorem ipsum : dolor sit amet.");
    assert_eq!(b.author.as_deref(), Some("John-John Doe"));
    assert_eq!(b.text, "Lorem ipsum : dolor sit amet.");
    let b = one("Rui: Time check: 18:46");
    assert_eq!(b.text, "Time check: 18:46");
}

#[test]
fn a_message_without_space_after_the_colon_still_has_its_author() {
    let b = one("John Doe:.");
    assert_eq!(b.author.as_deref(), Some("John Doe"));
    assert_eq!(b.text, ".");
}

#[test]
fn phone_number_authors_lose_their_embedding_marks_and_nbsp() {
    let b = one("\u{202a}+40\u{a0}521\u{a0}028\u{a0}61\u{a0}88\u{202c}: \u{200f}hello");
    assert_eq!(b.author.as_deref(), Some("+40 521 028 61 88"));
    assert_eq!(b.text, "hello");
}

#[test]
fn lines_without_an_author_are_system_lines() {
    let b = one("Dmitry S created group \"Group Chat\"");
    assert_eq!(b.kind, RecordKind::System);
    assert_eq!(b.author, None);
    assert_eq!(b.text, "Dmitry S created group \"Group Chat\"");
    assert!(!b.by_you);

    let b = one("You changed the subject from \"a: b\" to \"c\"");
    assert_eq!(b.kind, RecordKind::System);
    assert!(b.by_you);

    let b = one("You were added");
    assert_eq!(b.kind, RecordKind::System);
    assert!(!b.by_you, "being added is not something you did");
}

#[test]
fn an_ios_body_starting_with_a_mark_is_an_authorless_system_line_even_with_a_colon() {
    let b = one(&format!("{LRM}Bea changed the subject to “Club: Spring”"));
    assert_eq!(b.kind, RecordKind::System);
    assert_eq!(b.author, None);
    assert_eq!(b.text, "Bea changed the subject to “Club: Spring”");

    let b = one(&format!(
        "{LRM}{LRM}{LRM}Elon turned on disappearing messages. {LRM}New messages will disappear."
    ));
    assert_eq!(
        b.text,
        "Elon turned on disappearing messages. New messages will disappear."
    );
}

#[test]
fn notices_attributed_to_the_chat_are_system_lines_without_author() {
    let b = one(&format!(
        "Elon Musk: {LRM}Messages and calls are end-to-end encrypted. No one outside of this chat can read them."
    ));
    assert_eq!(b.kind, RecordKind::System);
    assert_eq!(b.author, None);

    let b = one(&format!(
        "Elon Musk: {LRM}{LRM}Deine Sicherheitsnummer für Elon hat sich geändert. {LRM}Tippe, um mehr zu erfahren."
    ));
    assert_eq!(b.kind, RecordKind::System);
    assert_eq!(
        b.text,
        "Deine Sicherheitsnummer für Elon hat sich geändert. Tippe, um mehr zu erfahren."
    );

    // Android, no mark: recognised by how it starts.
    let b = one("Pokemon Chat: Messages and calls are end-to-end encrypted.");
    assert_eq!(b.kind, RecordKind::System);

    // A person writing about encryption without the app's mark is a person.
    let b = one("Ana: I read that WhatsApp is end-to-end encrypted");
    assert_eq!(b.kind, RecordKind::Text);
}

#[test]
fn deleted_messages_in_several_languages() {
    let cases = [
        ("Ana: This message was deleted", false),
        ("Rui: You deleted this message", true),
        ("Elon Musk: \u{200e}This message was deleted.", false),
        ("Dmitry S: \u{200e}You deleted this message.", true),
        ("Dmitry S: Данное сообщение удалено", false),
        ("Elon: Вы удалили данное сообщение", true),
        ("Dmitry S: Tato zpráva byla odstraněna.", false),
        ("Elon: Tuto zprávu jste odstranil/a.", true),
        ("Dmitry S: Dit bericht is verwijderd", false),
        ("Elon: U hebt dit bericht verwijderd", true),
        ("Elon Musk: \u{200e}Diese Nachricht wurde gelöscht.", false),
        ("Elon Musk: \u{200e}Ce message a été supprimé.", false),
        ("Elon Musk: \u{200e}このメッセージは削除されました。", false),
        ("Dmitry S: \u{200e}このメッセージを削除しました。", true),
        ("Dmitry S: \u{200f}أنت حذفت هذه الرسالة.", true),
    ];
    for (line, by_you) in cases {
        let b = one(line);
        assert_eq!(b.kind, RecordKind::Deleted, "{line}");
        assert_eq!(b.by_you, by_you, "{line}");
        assert_eq!(b.text, "", "{line}");
    }
    // With a second line it is a message that happens to say so.
    let b = classify("Ana: This message was deleted", &["or was it?"], false);
    assert_eq!(b.kind, RecordKind::Text);
}

#[test]
fn android_media_placeholders_with_captions_and_file_names() {
    let b = classify("Rui: <Media omitted>", &["the ticket"], false);
    assert_eq!(b.kind, media(None));
    assert_eq!(b.text, "the ticket");

    assert_eq!(one("A: <media omitted>").kind, media(None));
    assert_eq!(one("A: <Без медиафайлов>").kind, media(None));
    assert_eq!(one("A: <Média vynechány>").kind, media(None));
    assert_eq!(one("A: <Media weggelaten>").kind, media(None));

    let b = classify(
        "Ana: IMG-20240102-WA0001.jpg (file attached)",
        &["Sunset"],
        false,
    );
    assert_eq!(b.kind, media(Some("IMG-20240102-WA0001.jpg")));
    assert_eq!(b.text, "Sunset");

    let b = one("Elon: \u{200e}Alex.vcf (soubor byl přiložen)");
    assert_eq!(b.kind, media(Some("Alex.vcf")));
    let b = one("D: \u{200e}PTT-20220323-WA0000.opus (bestand bijgevoegd)");
    assert_eq!(b.kind, media(Some("PTT-20220323-WA0000.opus")));
    let b = one("D: \u{200e}TR.vcf (файл добавлен)");
    assert_eq!(b.kind, media(Some("TR.vcf")));

    let b = one("Rui: null");
    assert_eq!(b.kind, media(None));
    assert_eq!(b.text, "");
}

#[test]
fn ios_media_placeholders_in_several_languages() {
    for placeholder in [
        "image omitted",
        "GIF omitted",
        "Contact card omitted",
        "Bild weggelassen",
        "image absente",
        "изображение отсутствует",
        "obrázek vynechán",
        "gambar tidak disertakan",
        "đã bỏ qua hình ảnh",
        "画像は含まれていません",
        "ไม่มีรูปภาพ",
        "फ़ोटो हटाई गई",
        "لم يتم إدراج الصورة",
    ] {
        let b = one(&format!("Dmitry S: {LRM}{placeholder}"));
        assert_eq!(b.kind, media(None), "{placeholder}");
        assert_eq!(b.text, "", "{placeholder}");
    }
}

#[test]
fn ios_documents_keep_their_names() {
    let b = one(&format!("D: Plan.pdf • {LRM}3 pages {LRM}document omitted"));
    assert_eq!(b.kind, media(Some("Plan.pdf")));
    assert_eq!(b.text, "");
    let b = one(&format!("D: Some file.txt {LRM}Dokument weggelassen"));
    assert_eq!(b.kind, media(Some("Some file.txt")));
    let b = one(&format!(
        "D: Resume.pdf • {LRM}ページ数: 2 {LRM}ドキュメントは含まれていません"
    ));
    assert_eq!(b.kind, media(Some("Resume.pdf")));
    // Without the app's mark it is just text that ends with those words.
    let b = one("D: my notes are in the document omitted");
    assert_eq!(b.kind, RecordKind::Text);
}

#[test]
fn ios_attachments_keep_the_exported_file_name_and_real_captions() {
    let b = one(&format!(
        "D: {LRM}<attached: 00000035-PHOTO-2022-03-27-21-41-55.jpg>"
    ));
    assert_eq!(
        b.kind,
        media(Some("00000035-PHOTO-2022-03-27-21-41-55.jpg"))
    );
    assert_eq!(b.text, "");

    // The document's title before the attachment is not a caption.
    let b = one(&format!(
        "D: Some file.txt {LRM}<attached: 00000046-Some file.txt>"
    ));
    assert_eq!(b.kind, media(Some("00000046-Some file.txt")));
    assert_eq!(b.text, "");
    let b = one(&format!(
        "D: Resume.pdf • {LRM}2 pages {LRM}<attached: 00000047-Resume.pdf>"
    ));
    assert_eq!(b.kind, media(Some("00000047-Resume.pdf")));
    assert_eq!(b.text, "");

    // Another language's label, recognised by the file counter; a caption after it is kept.
    let b = classify(
        &format!("D: {LRM}<Anhang: 00000012-PHOTO-2024-05-04.jpg>"),
        &["Tomaten!"],
        false,
    );
    assert_eq!(b.kind, media(Some("00000012-PHOTO-2024-05-04.jpg")));
    assert_eq!(b.text, "Tomaten!");

    // Angle brackets in a message are not attachments.
    let b = one("D: a <b: c> d");
    assert_eq!(b.kind, RecordKind::Text);
}

#[test]
fn an_ios_attachment_line_in_an_unknown_language_is_still_media() {
    let b = classify(&format!("D: {LRM}bild utelämnad"), &[], true);
    assert_eq!(b.kind, media(None));
    let b = classify(
        &format!("D: Plan.pdf • {LRM}3 sidor {LRM}dokument utelämnat"),
        &[],
        true,
    );
    assert_eq!(b.kind, media(Some("Plan.pdf")));
    // The same body on a line without the leading mark is text.
    let b = classify(&format!("D: {LRM}bild utelämnad"), &[], false);
    assert_eq!(b.kind, RecordKind::Text);
    assert_eq!(b.text, "bild utelämnad");
}

#[test]
fn missed_calls_are_system_lines_that_keep_the_caller() {
    for line in [
        "Dmitry S: Missed voice call",
        "Dmitry S: Пропущенный аудиозвонок",
        "Dmitry S: Zmeškaný hovor",
        "Dmitry S: Gemiste spraakoproep",
    ] {
        let b = one(line);
        assert_eq!(b.kind, RecordKind::System, "{line}");
        assert_eq!(b.author.as_deref(), Some("Dmitry S"), "{line}");
    }
}

#[test]
fn locations_and_venues_are_text() {
    let b = one(&format!(
        "D: {LRM}Location: https://maps.google.com/?q=51.5,-0.12"
    ));
    assert_eq!(b.kind, RecordKind::Text);
    assert_eq!(b.text, "Location: https://maps.google.com/?q=51.5,-0.12");
    let b = classify(
        "D: Pimlico Gardens",
        &["London, United Kingdom", "https://foursquare.com/v/4e89"],
        false,
    );
    assert_eq!(b.kind, RecordKind::Text);
    assert_eq!(
        b.text,
        "Pimlico Gardens\nLondon, United Kingdom\nhttps://foursquare.com/v/4e89"
    );
}

#[test]
fn inner_marks_of_user_text_are_kept_and_only_leading_ones_go() {
    let b = one(&format!("D: {LRM}{LRM}hello {LRM}world"));
    assert_eq!(b.text, format!("hello {LRM}world"));
}

#[test]
fn every_phrase_table_is_in_lower_case() {
    let tables = [
        locale::ANDROID_MEDIA_OMITTED,
        locale::FILE_ATTACHED_SUFFIXES,
        locale::IOS_MEDIA_OMITTED,
        locale::IOS_DOCUMENT_OMITTED,
        locale::DELETED_BY_OTHER,
        locale::DELETED_BY_ME,
        locale::MISSED_CALLS,
        locale::NOTICE_PREFIXES,
        locale::NOTICE_KEYWORDS,
        locale::GROUP_EVENTS,
        locale::YOU_ACTOR_PREFIXES,
        locale::YOU_PASSIVE_PREFIXES,
        locale::CHAT_FILE_PREFIXES,
        locale::CHAT_FILE_SUFFIXES,
    ];
    for table in tables {
        for entry in table {
            assert_eq!(entry.to_lowercase(), *entry);
            assert!(!entry.trim().is_empty());
        }
    }
}

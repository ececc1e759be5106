//! Body encoding: limits, strictness, and random plaintexts.

use proptest::prelude::*;

use super::*;
use tandem_crypto::AccountId;

fn chat() -> ChatRef {
    ChatRef::Direct {
        with: AccountId::from_bytes([7; 16]),
    }
}

#[test]
fn a_text_body_is_its_fields_in_order() {
    let body = Body::Text {
        chat: chat(),
        text: "hi".into(),
    };
    let bytes = body.encode().unwrap();
    // ChatRef::Direct is variant 0, then 16 account bytes, then a varint length and the text.
    let mut expected = vec![0u8];
    expected.extend_from_slice(&[7; 16]);
    expected.extend_from_slice(&[2, b'h', b'i']);
    assert_eq!(bytes, expected);
    assert_eq!(Body::decode(Kind::Text, &bytes).unwrap(), body);
}

#[test]
fn limits_are_enforced_both_ways() {
    let too_long = Body::Text {
        chat: chat(),
        text: "x".repeat(MAX_TEXT_LEN + 1),
    };
    assert!(matches!(
        too_long.encode(),
        Err(Error::MalformedBody { kind: 1, .. })
    ));
    let big_emoji = Body::Reaction {
        chat: chat(),
        target: MessageId::derived(1, b"n", b"k").unwrap(),
        emoji: "x".repeat(65),
    };
    assert!(big_emoji.encode().is_err());
    let no_ids = Body::Receipt {
        kind: ReceiptKind::Delivered,
        ids: Vec::new(),
    };
    assert!(no_ids.encode().is_err());
    let bad_card = Body::ContactCard {
        link: "https://example.com".into(),
    };
    assert!(bad_card.encode().is_err());
    // The same limits apply to what arrives.
    let raw = postcard::to_allocvec(&(chat(), "x".repeat(MAX_TEXT_LEN + 1))).unwrap();
    assert!(Body::decode(Kind::Text, &raw).is_err());
}

#[test]
fn trailing_bytes_and_bad_bools_are_refused() {
    let body = Body::Typing {
        chat: chat(),
        on: true,
    };
    let mut bytes = body.encode().unwrap();
    assert_eq!(Body::decode(Kind::Typing, &bytes).unwrap(), body);
    *bytes.last_mut().unwrap() = 2;
    assert!(Body::decode(Kind::Typing, &bytes).is_err());
    let mut bytes = body.encode().unwrap();
    bytes.push(0);
    assert!(matches!(
        Body::decode(Kind::Typing, &bytes),
        Err(Error::MalformedBody { kind: 7, .. })
    ));
}

#[test]
fn each_kind_byte_is_stable() {
    let bytes: Vec<u8> = Kind::ALL.iter().map(|k| k.byte()).collect();
    assert_eq!(bytes, (1..=13).collect::<Vec<u8>>());
    assert_eq!(Kind::from_byte(0), None);
    assert_eq!(Kind::from_byte(14), None);
    for kind in Kind::ALL {
        assert_eq!(Kind::from_byte(kind.byte()), Some(kind));
    }
}

#[test]
fn a_group_lists_each_account_once_with_bounded_names() {
    let key = |seed: u8| tandem_crypto::AccountKey::from_secret_bytes(&[seed; 32]).public_key();
    let member = |seed: u8, name: &str| GroupMember {
        account_key: key(seed),
        name: name.into(),
    };
    let group = |members: Vec<GroupMember>, name: &str| Body::GroupInfo {
        id: ChatId([9; 16]),
        version: 2,
        name: name.into(),
        members,
    };
    let ok = group(vec![member(1, "Alice"), member(2, "Bob")], "Trip");
    let bytes = ok.encode().unwrap();
    assert_eq!(Body::decode(Kind::GroupInfo, &bytes).unwrap(), ok);
    for bad in [
        group(vec![member(1, "Alice"), member(1, "Alice again")], "Trip"),
        group(Vec::new(), "Trip"),
        group(vec![member(1, "Alice")], "  "),
        group(vec![member(1, &"x".repeat(MAX_NAME_LEN + 1))], "Trip"),
    ] {
        assert!(
            matches!(bad.encode(), Err(Error::MalformedBody { kind: 13, .. })),
            "{bad:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_plaintexts_never_panic_any_body_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for kind in Kind::ALL {
            if let Ok(body) = Body::decode(kind, &bytes) {
                // What decodes re-encodes to the very same bytes (one encoding per body).
                prop_assert_eq!(body.encode().unwrap(), bytes.clone());
            }
        }
    }
}

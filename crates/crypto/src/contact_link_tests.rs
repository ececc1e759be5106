//! Contact links: what bob's phone shows as a QR code, and what alice's parser refuses.

use proptest::prelude::*;

use super::*;
use crate::testkit::Person;

fn bobs_link() -> ContactLink {
    let bob = Person::with_phone(2);
    ContactLink::new(bob.account.public_key(), "Bob & Co. ✓").unwrap()
}

#[test]
fn a_link_formats_and_parses_back_with_the_derived_account_id() {
    let link = bobs_link();
    let text = link.to_string();
    assert!(text.starts_with("tandem://contact?v=1&account="));
    assert!(
        text.ends_with("&name=Bob%20%26%20Co.%20%E2%9C%93"),
        "{text}"
    );
    let parsed: ContactLink = text.parse().unwrap();
    assert_eq!(parsed, link);
    assert_eq!(parsed.name(), "Bob & Co. ✓");
    assert_eq!(
        parsed.account_id(),
        Person::with_phone(2).account.account_id()
    );
}

/// A check on the error a bad link must give.
type Expect = fn(&ContactLinkError) -> bool;

#[test]
fn parameter_order_does_not_matter_but_everything_else_is_strict() {
    let link = bobs_link();
    let key = link.account_key().to_base32();
    let ok = format!("tandem://contact?name=Bob&account={key}&v=1");
    assert_eq!(ok.parse::<ContactLink>().unwrap().name(), "Bob");

    let cases: Vec<(String, Expect)> = vec![
        (format!("tandem://link?v=1&account={key}&name=Bob"), |e| {
            matches!(e, ContactLinkError::NotAContactLink)
        }),
        (
            format!("TANDEM://contact?v=1&account={key}&name=Bob"),
            |e| matches!(e, ContactLinkError::NotAContactLink),
        ),
        (
            format!("tandem://contact?v=2&account={key}&name=Bob"),
            |e| matches!(e, ContactLinkError::UnsupportedVersion(v) if v == "2"),
        ),
        (format!("tandem://contact?account={key}&name=Bob"), |e| {
            matches!(e, ContactLinkError::MissingParameter("v"))
        }),
        ("tandem://contact?v=1&name=Bob".to_string(), |e| {
            matches!(e, ContactLinkError::MissingParameter("account"))
        }),
        (format!("tandem://contact?v=1&account={key}"), |e| {
            matches!(e, ContactLinkError::MissingParameter("name"))
        }),
        (
            format!("tandem://contact?v=1&v=1&account={key}&name=Bob"),
            |e| matches!(e, ContactLinkError::DuplicateParameter(p) if p == "v"),
        ),
        (
            format!("tandem://contact?v=1&account={key}&name=Bob&x=1"),
            |e| matches!(e, ContactLinkError::UnknownParameter(p) if p == "x"),
        ),
        (
            format!("tandem://contact?v=1&account={key}&name=Bob&"),
            |e| matches!(e, ContactLinkError::MalformedQuery(_)),
        ),
        (
            format!("tandem://contact?v=1&account={}&name=Bob", &key[..51]),
            |e| matches!(e, ContactLinkError::BadAccountKey(_)),
        ),
        (
            format!(
                "tandem://contact?v=1&account={}&name=Bob",
                key.to_uppercase()
            ),
            |e| matches!(e, ContactLinkError::BadAccountKey(_)),
        ),
        (
            format!("tandem://contact?v=1&account={}&name=Bob", "a".repeat(52)),
            |e| matches!(e, ContactLinkError::BadAccountKey(_)),
        ),
        (
            format!("tandem://contact?v=1&account={key}&name=Bob%2"),
            |e| matches!(e, ContactLinkError::BadName(_)),
        ),
        (
            format!("tandem://contact?v=1&account={key}&name=Bob%zz"),
            |e| matches!(e, ContactLinkError::BadName(_)),
        ),
        (
            format!("tandem://contact?v=1&account={key}&name=Bob Smith"),
            |e| matches!(e, ContactLinkError::BadName(_)),
        ),
        (
            format!("tandem://contact?v=1&account={key}&name=%FF"),
            |e| matches!(e, ContactLinkError::BadName(_)),
        ),
        (
            format!("tandem://contact?v=1&account={key}&name=%0A"),
            |e| matches!(e, ContactLinkError::BadName(_)),
        ),
        (format!("tandem://contact?v=1&account={key}&name="), |e| {
            matches!(e, ContactLinkError::BadName(_))
        }),
        (
            format!("tandem://contact?v=1&account={key}&name={}", "a".repeat(65)),
            |e| matches!(e, ContactLinkError::BadName(_)),
        ),
        (
            format!(
                "tandem://contact?v=1&account={key}&name={}",
                "a".repeat(600)
            ),
            |e| matches!(e, ContactLinkError::TooLong { .. }),
        ),
    ];
    for (text, expected) in cases {
        match text.parse::<ContactLink>() {
            Err(Error::ContactLink(e)) => assert!(expected(&e), "{text}: got {e:?}"),
            other => panic!("{text}: expected a contact link error, got {other:?}"),
        }
    }
}

#[test]
fn names_are_bounded_when_building_too() {
    let key = bobs_link().account_key().to_owned();
    assert!(ContactLink::new(key, "").is_err());
    assert!(ContactLink::new(key, "a\u{7}").is_err());
    assert!(ContactLink::new(key, "a".repeat(65)).is_err());
    assert!(ContactLink::new(key, "a".repeat(64)).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_text_never_panics_the_parser(text in ".{0,200}") {
        let _ = text.parse::<ContactLink>();
        let with_prefix = format!("{CONTACT_LINK_PREFIX}{text}");
        let _ = with_prefix.parse::<ContactLink>();
    }

    #[test]
    fn mutated_links_never_panic_and_parse_only_to_consistent_links(
        at in any::<prop::sample::Index>(),
        with in any::<char>(),
    ) {
        let text = bobs_link().to_string();
        let mut chars: Vec<char> = text.chars().collect();
        let i = at.index(chars.len());
        chars[i] = with;
        let mutated: String = chars.into_iter().collect();
        if let Ok(link) = mutated.parse::<ContactLink>() {
            // Whatever parses is self-consistent and formats back to a parsable link.
            prop_assert_eq!(link.to_string().parse::<ContactLink>().unwrap(), link);
        }
    }

    #[test]
    fn any_valid_name_round_trips(name in "[^\\p{Cc}]{1,16}") {
        let key = *bobs_link().account_key();
        let link = ContactLink::new(key, name.clone()).unwrap();
        let parsed = link.to_string().parse::<ContactLink>().unwrap();
        prop_assert_eq!(parsed.name(), name.as_str());
    }
}

//! Stories about the pairing link a desktop shows as a QR code: what it looks like, that it
//! survives text of every kind, and that a phone refuses every broken link with the name of
//! the field at fault instead of acting on it.

use proptest::prelude::*;
use tandem_crypto::DeviceKeys;
use tandem_crypto::rng::{ChaCha20Rng, SeedableRng};

use super::*;
use crate::testkit::T0;

/// A link as a desktop would show it, with fresh keys, ref and secret.
fn sample(seed: u8) -> PairingLink {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let keys = DeviceKeys::generate(&mut rng);
    PairingLink {
        pairing_ref: PairingRef::random(&mut rng),
        keys: LinkKeys::Device(keys.public_keys()),
        secret: LinkSecret::random(&mut rng),
        expires_at_ms: T0 + 80_000,
        broker: "mqtt://broker.example:1883".into(),
        name: "Alice's laptop".into(),
        platform: "linux".into(),
    }
}

/// The link's text with parameter `key` set to the raw (already encoded) `value`.
fn with(link: &str, key: &str, value: &str) -> String {
    let query = link.strip_prefix(LINK_PREFIX).unwrap();
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (k, _) = pair.split_once('=').unwrap();
            if k == key {
                format!("{k}={value}")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    assert!(
        pairs.iter().any(|p| p.starts_with(&format!("{key}="))),
        "no {key} in {link}"
    );
    format!("{LINK_PREFIX}{}", pairs.join("&"))
}

/// The link's text without parameter `key`.
fn without(link: &str, key: &str) -> String {
    let query = link.strip_prefix(LINK_PREFIX).unwrap();
    let all = query.split('&').count();
    let pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with(&format!("{key}=")))
        .collect();
    assert_eq!(pairs.len(), all - 1, "{key} was in the link once");
    format!("{LINK_PREFIX}{}", pairs.join("&"))
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

/// The field a refusal names (every refusal of a field must name one).
fn field_of(error: &LinkError) -> &str {
    match error {
        LinkError::Missing { field } | LinkError::Field { field, .. } => field,
        LinkError::Duplicate { field } | LinkError::Unknown { field } => field,
        LinkError::Version { .. } => "v",
        other => panic!("{other:?} names no field"),
    }
}

fn refused(text: &str) -> LinkError {
    match text.parse::<PairingLink>() {
        Ok(link) => panic!("{text} was accepted as {link:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_link_reads_like_the_documented_uri() {
    let link = sample(1);
    let text = link.to_string();
    let expected = format!(
        "tandem://link?v=1&ref={}&dh={}&sig={}&secret={}&exp={}&broker=mqtt%3A%2F%2Fbroker.example%3A1883&name=Alice%27s%20laptop&platform=linux",
        BASE32_NOPAD
            .encode(&link.pairing_ref.0)
            .to_ascii_lowercase(),
        b64(&link.keys.device().unwrap().x25519),
        b64(&link.keys.device().unwrap().ed25519),
        b64(link.secret.expose()),
        T0 + 80_000,
    );
    assert_eq!(text, expected);
    assert_eq!(link.pairing_ref.to_string().len(), 26);
    assert_eq!(
        link.pairing_ref.topic(),
        format!("tandem/v1/pair/{}", link.pairing_ref)
    );
    assert_eq!(text.parse::<PairingLink>().unwrap(), link);
}

#[test]
fn a_link_round_trips_with_spaces_accents_emoji_and_query_characters() {
    let names = [
        ("Zoë's ThinkPad", "Linux Mint 21"),
        ("Café & Crème = ☕", "macOS 14 & more"),
        ("📱➡️💻 bureau", "Windows 11 🪟"),
        ("a=b&c=d?e#f%20g+h", "x/y\\z;1"),
        ("  leading and trailing  ", "ｗｉｄｅ"),
    ];
    for (i, (name, platform)) in names.into_iter().enumerate() {
        let mut link = sample(u8::try_from(i).unwrap());
        link.name = name.into();
        link.platform = platform.into();
        link.broker = format!("mqtts://user:p&ss=w0rd@broker-{i}.example:8883/?a=1&b=2");
        let text = link.to_string();
        assert!(
            text.is_ascii(),
            "{text} is plain ASCII, safe for any QR mode"
        );
        assert_eq!(
            text.matches('&').count(),
            8,
            "only the separators are bare & in {text}"
        );
        let parsed: PairingLink = text.parse().unwrap();
        assert_eq!(parsed, link);
        assert_eq!(parsed.name, name);
        assert_eq!(parsed.platform, platform);
        assert_eq!(parsed.to_string(), text);
    }
}

#[test]
fn a_link_pasted_with_surrounding_whitespace_still_parses() {
    let link = sample(2);
    let pasted = format!("  {link}\r\n");
    assert_eq!(pasted.parse::<PairingLink>().unwrap(), link);
}

#[test]
fn the_longest_names_allowed_still_fit_in_a_link() {
    let mut link = sample(3);
    // 16 four-byte emoji = 64 bytes (the name limit), 32 bytes of two-byte accents.
    link.name = "🦀".repeat(MAX_DEVICE_NAME_LEN / 4);
    link.platform = "é".repeat(MAX_PLATFORM_LEN / 2);
    assert_eq!(link.name.len(), MAX_DEVICE_NAME_LEN);
    assert_eq!(link.platform.len(), MAX_PLATFORM_LEN);
    let text = link.to_string();
    assert!(text.len() <= MAX_LINK_LEN, "{} bytes", text.len());
    assert_eq!(text.parse::<PairingLink>().unwrap(), link);
}

#[test]
fn every_link_that_validates_formats_to_text_that_parses() {
    let mut link = sample(4);
    link.name = "🦀".repeat(MAX_DEVICE_NAME_LEN / 4);
    link.platform = "é".repeat(MAX_PLATFORM_LEN / 2);
    // A 255-byte internationalised broker host (the limit is 256): every Cyrillic byte is
    // written as %XX in the link.
    link.broker = format!("mqtts://{}", "брокер.".repeat(19));
    assert_eq!(link.broker.len(), 255);
    // Every field is within its own limit, but the link they make is too long for a QR code
    // a phone would accept: validate says so before any code is shown.
    let len = link.to_string().len();
    assert!(len > MAX_LINK_LEN);
    assert_eq!(link.validate(), Err(LinkError::TooLong { len }));
    // A shorter broker makes a link that validates, and its text parses back to it.
    link.broker = format!("mqtts://{}", "брокер.".repeat(4));
    assert_eq!(link.validate(), Ok(()));
    let text = link.to_string();
    assert_eq!(
        text.parse::<PairingLink>(),
        Ok(link),
        "{} bytes",
        text.len()
    );
}

/// The parameters of a multi-device link.
const MULTI_FIELDS: [&str; 9] = [
    "v", "ref", "dh", "sig", "secret", "exp", "broker", "name", "platform",
];
/// The parameters of a bridge link.
const BRIDGE_FIELDS: [&str; 10] = [
    "v", "mode", "ref", "dh", "bridge", "secret", "exp", "broker", "name", "platform",
];

#[test]
fn a_link_missing_any_field_is_refused_naming_it() {
    let text = sample(5).to_string();
    for name in MULTI_FIELDS {
        assert_eq!(
            refused(&without(&text, name)),
            LinkError::Missing { field: name },
            "without {name}"
        );
    }
    assert_eq!(
        refused(LINK_PREFIX),
        LinkError::Unknown { field: "".into() },
        "an empty query names the empty parameter"
    );
}

#[test]
fn a_field_given_twice_is_refused_even_with_the_same_value() {
    let text = sample(6).to_string();
    for name in MULTI_FIELDS {
        let doubled = format!("{text}&{name}=x");
        assert_eq!(
            refused(&doubled),
            LinkError::Duplicate { field: name.into() }
        );
    }
    assert_eq!(
        refused(&format!("{text}&v=1")),
        LinkError::Duplicate { field: "v".into() }
    );
}

#[test]
fn an_unknown_field_is_refused_naming_it() {
    let text = sample(7).to_string();
    let error = refused(&format!("{text}&color=blue"));
    assert_eq!(
        error,
        LinkError::Unknown {
            field: "color".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "field color is not part of a version 1 link"
    );
    // A trailing separator is an empty, unknown parameter; a long name is cut in the error.
    assert_eq!(
        refused(&format!("{text}&")),
        LinkError::Unknown { field: "".into() }
    );
    let long = "k".repeat(500);
    assert_eq!(
        refused(&format!("{text}&{long}=1")),
        LinkError::Unknown {
            field: "k".repeat(32)
        }
    );
}

#[test]
fn a_newer_or_odd_version_is_refused() {
    let text = sample(8).to_string();
    for version in ["2", "0", "01", "1.0", "", " 1"] {
        assert_eq!(
            refused(&with(&text, "v", version)),
            LinkError::Version {
                found: version.into()
            },
            "v={version}"
        );
    }
    assert_eq!(
        refused(&with(&text, "v", "2")).to_string(),
        "field v: link version 2 is not supported (this build reads version 1)"
    );
}

#[test]
fn a_ref_that_is_not_16_bytes_of_base32_is_refused() {
    let text = sample(9).to_string();
    let fifteen = BASE32_NOPAD.encode(&[7u8; 15]).to_ascii_lowercase();
    let seventeen = BASE32_NOPAD.encode(&[7u8; 17]).to_ascii_lowercase();
    for bad in [
        "",
        "0189",
        "not-base32-at-all!!!!!!!!!",
        "%61%61",
        fifteen.as_str(),
        seventeen.as_str(),
    ] {
        let error = refused(&with(&text, "ref", bad));
        assert!(
            matches!(error, LinkError::Field { field: "ref", .. }),
            "ref={bad}: {error:?}"
        );
    }
    let error = refused(&with(&text, "ref", &fifteen));
    assert_eq!(error.to_string(), "field ref: does not hold 16 bytes");
    // Upper case is the same base32 and reads the same ref.
    let link = sample(9);
    let upper = with(
        &text,
        "ref",
        &link.pairing_ref.to_string().to_ascii_uppercase(),
    );
    assert_eq!(upper.parse::<PairingLink>().unwrap(), link);
}

#[test]
fn a_dh_key_that_is_not_a_usable_x25519_key_is_refused() {
    let text = sample(10).to_string();
    let cases = [
        ("not base64!".to_owned(), "is not base64url without padding"),
        (
            format!("{}=", b64(&[1; 32])),
            "is not base64url without padding",
        ),
        (b64(&[9; 31]), "holds 31 bytes instead of 32"),
        (b64(&[9; 33]), "holds 33 bytes instead of 32"),
        (
            b64(&[0; 32]),
            "is not a usable X25519 public key (small order)",
        ),
        (
            // u = 1: a point of order 4.
            b64(&{
                let mut k = [0u8; 32];
                k[0] = 1;
                k
            }),
            "is not a usable X25519 public key (small order)",
        ),
    ];
    for (value, reason) in cases {
        assert_eq!(
            refused(&with(&text, "dh", &value)),
            LinkError::Field {
                field: "dh",
                reason: reason.into()
            },
            "dh={value}"
        );
    }
}

#[test]
fn a_sig_key_that_is_not_a_valid_ed25519_point_is_refused() {
    let text = sample(11).to_string();
    // y = 2 has no x on the curve (checked offline: (y²-1)/(dy²+1) is not a square mod p).
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    // y = 1 is the identity: a valid encoding, but a weak key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for key in [off_curve, identity] {
        assert_eq!(
            refused(&with(&text, "sig", &b64(&key))),
            LinkError::Field {
                field: "sig",
                reason: "is not a usable Ed25519 public key".into()
            },
            "sig={key:?}"
        );
    }
    assert!(matches!(
        refused(&with(&text, "sig", &b64(&[3; 16]))),
        LinkError::Field { field: "sig", .. }
    ));
}

#[test]
fn a_secret_of_the_wrong_length_is_refused() {
    let text = sample(12).to_string();
    for len in [0usize, 16, 31, 33, 64] {
        assert_eq!(
            refused(&with(&text, "secret", &b64(&vec![5; len]))),
            LinkError::Field {
                field: "secret",
                reason: format!("holds {len} bytes instead of 32")
            }
        );
    }
    assert!(matches!(
        refused(&with(&text, "secret", "*secret*")),
        LinkError::Field {
            field: "secret",
            ..
        }
    ));
}

#[test]
fn an_expiry_that_is_not_a_whole_non_negative_number_is_refused() {
    let text = sample(13).to_string();
    for bad in ["soon", "", "1e12", "1.5", "99999999999999999999", "0x10"] {
        assert_eq!(
            refused(&with(&text, "exp", bad)),
            LinkError::Field {
                field: "exp",
                reason: "is not a whole number of milliseconds".into()
            },
            "exp={bad}"
        );
    }
    assert_eq!(
        refused(&with(&text, "exp", "-1")),
        LinkError::Field {
            field: "exp",
            reason: "must not be negative".into()
        }
    );
}

#[test]
fn a_broker_that_is_not_an_mqtt_address_is_refused() {
    let text = sample(14).to_string();
    let enc = |s: &str| utf8_percent_encode(s, TEXT_ENCODE).to_string();
    for bad in [
        "http://broker.example",
        "broker.example:1883",
        "mqtt://",
        "mqtt://two words",
        "mqtt://tab\there",
        "",
        format!("mqtt://{}", "h".repeat(MAX_BROKER_LEN)).as_str(),
    ] {
        let error = refused(&with(&text, "broker", &enc(bad)));
        assert!(
            matches!(
                error,
                LinkError::Field {
                    field: "broker",
                    ..
                }
            ),
            "broker={bad}: {error:?}"
        );
    }
    assert_eq!(
        refused(&with(&text, "broker", &enc("ws://x"))).to_string(),
        "field broker: must be an mqtt:// or mqtts:// address"
    );
    // Not UTF-8 once decoded.
    assert_eq!(
        refused(&with(&text, "broker", "mqtt%3A%2F%2F%FF")),
        LinkError::Field {
            field: "broker",
            reason: "is not percent-encoded UTF-8".into()
        }
    );
}

#[test]
fn an_empty_too_long_or_control_character_name_or_platform_is_refused() {
    let text = sample(15).to_string();
    for (name, max) in [
        ("name", MAX_DEVICE_NAME_LEN),
        ("platform", MAX_PLATFORM_LEN),
    ] {
        let long = "x".repeat(max + 1);
        let cases = [
            ("", "is empty".to_owned()),
            (long.as_str(), format!("is longer than {max} bytes")),
            ("line%0Abreak", "contains control characters".to_owned()),
            ("bell%07", "contains control characters".to_owned()),
            ("del%7F", "contains control characters".to_owned()),
            ("c1%C2%85", "contains control characters".to_owned()),
            ("%C3%28", "is not percent-encoded UTF-8".to_owned()),
        ];
        for (value, reason) in cases {
            assert_eq!(
                refused(&with(&text, name, value)),
                LinkError::Field {
                    field: name,
                    reason
                },
                "{name}={value}"
            );
        }
        // Exactly at the limit is fine.
        let at_limit = "x".repeat(max);
        assert!(with(&text, name, &at_limit).parse::<PairingLink>().is_ok());
    }
}

#[test]
fn a_too_long_link_is_refused_before_anything_else() {
    let text = sample(16).to_string();
    let padded = format!("{text}&pad={}", "p".repeat(MAX_LINK_LEN));
    assert_eq!(refused(&padded), LinkError::TooLong { len: padded.len() });
    let huge = "x".repeat(1 << 20);
    assert_eq!(refused(&huge), LinkError::TooLong { len: 1 << 20 });
}

#[test]
fn anything_but_a_tandem_link_is_refused_as_not_a_link() {
    let link = sample(17).to_string();
    let query = link.strip_prefix(LINK_PREFIX).unwrap();
    for other in [
        String::new(),
        format!("tandem://contact?{query}"),
        format!("https://link?{query}"),
        format!("TANDEM://LINK?{query}"),
        format!("tandem://link{query}"),
        "tandem://link".into(),
    ] {
        assert_eq!(refused(&other), LinkError::Prefix, "{other}");
    }
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let link = sample(18);
    let secret = b64(link.secret.expose());
    let debug = format!("{link:?}");
    assert!(!debug.contains(&secret), "{debug}");
    assert!(debug.contains("LinkSecret(<redacted>)"), "{debug}");
    assert_eq!(
        format!("{:?}", link.pairing_ref),
        format!("PairingRef({})", link.pairing_ref)
    );
}

#[test]
fn two_random_refs_and_secrets_differ() {
    let mut rng = ChaCha20Rng::from_seed([19; 32]);
    assert_ne!(PairingRef::random(&mut rng), PairingRef::random(&mut rng));
    assert_ne!(LinkSecret::random(&mut rng), LinkSecret::random(&mut rng));
    assert_eq!(LinkSecret::from_bytes([4; 32]).expose(), &[4; 32]);
}

/// One edit of a link's text: overwrite, insert, delete, or truncate at a position.
#[derive(Debug, Clone)]
enum Edit {
    Overwrite(usize, char),
    Insert(usize, char),
    Delete(usize),
    Truncate(usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![
        Just('&'),
        Just('='),
        Just('%'),
        Just('?'),
        Just('\0'),
        Just('é'),
        Just('🦀'),
        any::<char>(),
        proptest::char::range('0', 'z'),
    ];
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(i, c)| Edit::Overwrite(i, c)),
        (any::<usize>(), c).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *edit {
        Edit::Overwrite(i, c) => {
            let n = chars.len();
            if let Some(slot) = chars.get_mut(at(i, n)) {
                *slot = c;
            }
        }
        Edit::Insert(i, c) => {
            let n = chars.len() + 1;
            chars.insert(at(i, n), c);
        }
        Edit::Delete(i) => {
            let n = chars.len();
            if n > 0 {
                chars.remove(at(i, n));
            }
        }
        Edit::Truncate(i) => {
            let n = chars.len() + 1;
            chars.truncate(at(i, n));
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_text_never_panics_and_is_refused(text in ".{0,1200}") {
        let result = text.parse::<PairingLink>();
        prop_assert!(result.is_err(), "{text:?} parsed");
    }

    #[test]
    fn random_text_after_the_prefix_never_panics(query in "[a-z=&%0-9A-F_-]{0,300}") {
        // Almost always refused: never with Prefix, and never by panicking.
        match format!("{LINK_PREFIX}{query}").parse::<PairingLink>() {
            Ok(link) => prop_assert_eq!(link.validate(), Ok(())),
            Err(error) => prop_assert_ne!(error, LinkError::Prefix),
        }
    }

    #[test]
    fn mutated_links_never_panic_and_what_parses_is_valid(
        seed in any::<u8>(),
        edits in proptest::collection::vec(edit_strategy(), 1..6),
    ) {
        let mut text = sample(seed).to_string();
        for edit in &edits {
            text = apply(&text, edit);
        }
        match text.parse::<PairingLink>() {
            // A harmless edit (say, a digit of exp): the result is still a valid link that
            // formats to text that parses back to itself.
            Ok(link) => {
                prop_assert_eq!(link.validate(), Ok(()));
                prop_assert!(link.keys.check().is_ok());
                prop_assert_eq!(link.mode(), LinkMode::MultiDevice);
                prop_assert_eq!(link.to_string().parse::<PairingLink>(), Ok(link));
            }
            Err(error) => {
                // Every refusal has a message; those about a field name a real one.
                prop_assert!(!error.to_string().is_empty());
                if let LinkError::Missing { field } | LinkError::Field { field, .. } = &error {
                    prop_assert!(FIELDS.contains(field), "{error:?}");
                }
            }
        }
    }

    #[test]
    fn any_valid_name_and_platform_round_trip(
        name in "[^\\p{Cc}]{1,12}",
        platform in "[^\\p{Cc}]{1,8}",
        exp in 0i64..i64::MAX,
        seed in any::<u8>(),
    ) {
        let mut link = sample(seed);
        link.name = name;
        link.platform = platform;
        link.expires_at_ms = exp;
        prop_assume!(link.validate().is_ok());
        let text = link.to_string();
        prop_assert_eq!(text.parse::<PairingLink>(), Ok(link));
    }
}

#[test]
fn every_field_name_error_reads_well() {
    let text = sample(20).to_string();
    let error = refused(&without(&text, "secret"));
    assert_eq!(error.to_string(), "field secret is missing");
    assert_eq!(field_of(&error), "secret");
    let error = refused(&format!("{text}&dh=x"));
    assert_eq!(error.to_string(), "field dh appears more than once");
    assert_eq!(field_of(&error), "dh");
    let error = refused(&with(&text, "v", "3"));
    assert_eq!(field_of(&error), "v");
    assert_eq!(
        LinkError::TooLong { len: 2000 }.to_string(),
        "the link is 2000 bytes long, at most 1024 allowed"
    );
    assert_eq!(
        LinkError::Prefix.to_string(),
        "not a Tandem pairing link (it must start with tandem://link?)"
    );
}

// ------------------------------------------------------------------------------------------
// Bridge-mode links

/// A bridge-mode link as a desktop would show it: a one-off pairing key and its bridge key.
fn bridge_sample(seed: u8) -> PairingLink {
    let mut rng = ChaCha20Rng::from_seed([seed.wrapping_add(100); 32]);
    let pairing = DeviceKeys::generate(&mut rng);
    let bridge = DeviceKeys::generate(&mut rng);
    PairingLink {
        pairing_ref: PairingRef::random(&mut rng),
        keys: LinkKeys::Bridge {
            dh: pairing.public_keys().x25519,
            bridge: bridge.public_keys().x25519,
        },
        secret: LinkSecret::random(&mut rng),
        expires_at_ms: T0 + 80_000,
        broker: "mqtt://broker.example:1883".into(),
        name: "Bob's desk".into(),
        platform: "linux".into(),
    }
}

#[test]
fn a_bridge_link_says_so_and_carries_the_bridge_key_instead_of_sig() {
    let link = bridge_sample(1);
    let LinkKeys::Bridge { dh, bridge } = link.keys else {
        panic!("not a bridge link")
    };
    let text = link.to_string();
    let expected = format!(
        "tandem://link?v=1&mode=bridge&ref={}&dh={}&bridge={}&secret={}&exp={}&broker=mqtt%3A%2F%2Fbroker.example%3A1883&name=Bob%27s%20desk&platform=linux",
        link.pairing_ref,
        b64(&dh),
        b64(&bridge),
        b64(link.secret.expose()),
        T0 + 80_000,
    );
    assert_eq!(text, expected);
    let parsed: PairingLink = text.parse().unwrap();
    assert_eq!(parsed, link);
    assert_eq!(parsed.mode(), LinkMode::Bridge);
    assert_eq!(parsed.keys.dh(), &dh);
    assert_eq!(parsed.keys.bridge(), Some(&bridge));
    assert_eq!(parsed.keys.device(), None);
    assert!(text.len() < MAX_LINK_LEN);
}

#[test]
fn a_link_without_mode_is_a_multi_device_link_as_before() {
    // The text an older desktop shows parses exactly as it did, as a multi-device link.
    let link = sample(9);
    let text = link.to_string();
    assert!(!text.contains("mode="), "{text}");
    assert!(!text.contains("bridge="), "{text}");
    let parsed: PairingLink = text.parse().unwrap();
    assert_eq!(parsed.mode(), LinkMode::MultiDevice);
    assert_eq!(parsed.keys.bridge(), None);
    assert_eq!(parsed.keys.device(), link.keys.device());
}

#[test]
fn a_bridge_link_missing_any_of_its_fields_is_refused_naming_it() {
    let text = bridge_sample(2).to_string();
    for name in BRIDGE_FIELDS {
        let error = refused(&without(&text, name));
        // Without mode it reads as a multi-device link, which then lacks sig and must not
        // carry bridge.
        let expected = if name == "mode" { "bridge" } else { name };
        assert_eq!(field_of(&error), expected, "without {name}: {error}");
    }
    for name in BRIDGE_FIELDS {
        assert_eq!(
            refused(&format!("{text}&{name}=x")),
            LinkError::Duplicate { field: name.into() }
        );
    }
}

#[test]
fn the_fields_of_one_mode_are_refused_in_the_other() {
    let multi = sample(3).to_string();
    let bridge = bridge_sample(3).to_string();
    let key = b64(&DeviceKeys::generate(&mut ChaCha20Rng::from_seed([7; 32]))
        .public_keys()
        .x25519);
    let error = refused(&format!("{multi}&bridge={key}"));
    assert_eq!(field_of(&error), "bridge");
    assert_eq!(
        error.to_string(),
        "field bridge: only a bridge link (mode=bridge) carries it"
    );
    let error = refused(&format!("{bridge}&sig={key}"));
    assert_eq!(field_of(&error), "sig");
    assert_eq!(
        error.to_string(),
        "field sig: a bridge link carries no device signing key"
    );
    for odd in ["multi-device", "Bridge", "", "bridge2"] {
        let error = refused(&with(&bridge, "mode", odd));
        assert_eq!(field_of(&error), "mode", "mode={odd}");
    }
}

#[test]
fn a_bridge_key_of_small_order_or_equal_to_dh_is_refused() {
    let text = bridge_sample(4).to_string();
    let mut one = [0u8; 32];
    one[0] = 1;
    for weak in [[0u8; 32], one] {
        let error = refused(&with(&text, "bridge", &b64(&weak)));
        assert_eq!(field_of(&error), "bridge");
        let error = refused(&with(&text, "dh", &b64(&weak)));
        assert_eq!(field_of(&error), "dh");
    }
    let error = refused(&with(&text, "bridge", "AAAA"));
    assert_eq!(
        error.to_string(),
        "field bridge: holds 3 bytes instead of 32"
    );
    let LinkKeys::Bridge { dh, .. } = bridge_sample(4).keys else {
        panic!("not a bridge link")
    };
    let error = refused(&with(&text, "bridge", &b64(&dh)));
    assert_eq!(error.to_string(), "field bridge: must differ from dh");
}

#[test]
fn link_modes_read_and_write_as_the_cli_spells_them() {
    for mode in [LinkMode::MultiDevice, LinkMode::Bridge] {
        assert_eq!(mode.to_string().parse::<LinkMode>(), Ok(mode));
    }
    assert_eq!(LinkMode::Bridge.as_str(), "bridge");
    assert!("websocket".parse::<LinkMode>().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_bridge_links_never_panic_and_what_parses_is_valid(
        seed in any::<u8>(),
        edits in proptest::collection::vec(edit_strategy(), 1..6),
    ) {
        let mut text = bridge_sample(seed).to_string();
        for edit in &edits {
            text = apply(&text, edit);
        }
        match text.parse::<PairingLink>() {
            Ok(link) => {
                prop_assert_eq!(link.validate(), Ok(()));
                prop_assert!(link.keys.check().is_ok());
                prop_assert_eq!(link.to_string().parse::<PairingLink>(), Ok(link));
            }
            Err(error) => {
                prop_assert!(!error.to_string().is_empty());
                if let LinkError::Missing { field } | LinkError::Field { field, .. } = &error {
                    prop_assert!(FIELDS.contains(field), "{error:?}");
                }
            }
        }
    }

    #[test]
    fn random_bridge_parameters_never_panic(
        mode in "(bridge|[a-z-]{0,12})",
        bridge in "[A-Za-z0-9_-]{0,50}",
        seed in any::<u8>(),
    ) {
        let text = with(&with(&bridge_sample(seed).to_string(), "mode", &mode), "bridge", &bridge);
        if let Ok(link) = text.parse::<PairingLink>() {
            prop_assert_eq!(link.mode(), LinkMode::Bridge);
            prop_assert!(link.keys.check().is_ok());
        }
    }
}

use super::*;
use proptest::prelude::*;

fn parse(s: &str) -> Result<BrokerUrl> {
    BrokerUrl::parse(s)
}

#[test]
fn a_plain_url_gives_its_host_and_port() {
    let url = parse("mqtt://broker.example.org:1884").unwrap();
    assert_eq!(url.host(), "broker.example.org");
    assert_eq!(url.port(), 1884);
    assert_eq!(url.to_string(), "mqtt://broker.example.org:1884");
}

#[test]
fn the_port_defaults_to_1883_and_a_trailing_slash_is_fine() {
    let url = parse("MQTT://localhost/").unwrap();
    assert_eq!((url.host(), url.port()), ("localhost", 1883));
    assert_eq!(url.to_string(), "mqtt://localhost:1883");
}

#[test]
fn ipv6_hosts_are_bracketed_in_urls_and_bare_in_host() {
    let url = parse("mqtt://[::1]:2000").unwrap();
    assert_eq!(url.host(), "::1");
    assert_eq!(url.to_string(), "mqtt://[::1]:2000");
    assert_eq!(parse("mqtt://[fe80::1]").unwrap().port(), 1883);
}

#[test]
fn a_socket_address_becomes_a_url() {
    let url = BrokerUrl::from_socket_addr("127.0.0.1:4567".parse().unwrap()).unwrap();
    assert_eq!(url.to_string(), "mqtt://127.0.0.1:4567");
    let v6 = BrokerUrl::from_socket_addr("[::1]:4567".parse().unwrap()).unwrap();
    assert_eq!(v6.to_string(), "mqtt://[::1]:4567");
    assert!(matches!(
        BrokerUrl::from_socket_addr("127.0.0.1:0".parse().unwrap()),
        Err(Error::BadUrl { .. })
    ));
}

#[test]
fn mqtts_is_recognized_and_reported_as_unsupported() {
    let err = parse("mqtts://broker.example.org").unwrap_err();
    match &err {
        Error::UnsupportedScheme { scheme, reason, .. } => {
            assert_eq!(scheme, "mqtts");
            assert!(reason.contains("TLS"), "{reason}");
        }
        other => panic!("expected UnsupportedScheme, got {other:?}"),
    }
    assert!(err.to_string().contains("mqtts://broker.example.org"));
}

#[test]
fn other_schemes_are_refused_with_the_expected_shape() {
    for url in ["http://host", "ws://host:80", "tcp://host:1883"] {
        assert!(
            matches!(parse(url), Err(Error::UnsupportedScheme { .. })),
            "{url}"
        );
    }
}

#[test]
fn malformed_urls_say_what_is_wrong() {
    let cases = [
        ("broker:1883", "missing scheme"),
        ("mqtt://", "host is missing"),
        ("mqtt://:1883", "host is missing"),
        ("mqtt://host:", "port is empty"),
        ("mqtt://host:0", "port 0"),
        ("mqtt://host:65536", "larger than 65535"),
        ("mqtt://host:12a", "decimal"),
        ("mqtt://host:1883/inbox", "path"),
        ("mqtt://host?x=1", "query"),
        ("mqtt://user:pw@host", "credentials"),
        ("mqtt://::1", "brackets"),
        ("mqtt://[::1", "closing"),
        ("mqtt://[nope]:1", "not an IPv6"),
        ("mqtt://[::1]x", "only `:port`"),
        ("mqtt://ho st", "letters, digits"),
        ("mqtt://a..b", "empty label"),
        ("mqtt://300.1.1.1", "IPv4"),
    ];
    for (url, needle) in cases {
        match parse(url) {
            Err(Error::BadUrl {
                reason,
                url: echoed,
            }) => {
                assert!(reason.contains(needle), "{url}: {reason}");
                assert_eq!(echoed, url);
            }
            other => panic!("{url}: expected BadUrl({needle}), got {other:?}"),
        }
    }
}

#[test]
fn a_very_long_host_is_refused() {
    let url = format!("mqtt://{}:1883", "a".repeat(254));
    assert!(matches!(parse(&url), Err(Error::BadUrl { .. })));
}

fn host_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
    ]
}

proptest! {
    #[test]
    fn random_text_never_panics(s in ".{0,80}") {
        let _ = parse(&s);
    }

    #[test]
    fn random_text_after_the_scheme_never_panics(s in "\\PC{0,60}") {
        if let Ok(url) = parse(&format!("mqtt://{s}")) {
            prop_assert!(url.port() != 0);
        }
    }

    #[test]
    fn valid_urls_round_trip_through_display(host in host_strategy(), port in 1u16..) {
        let url = parse(&format!("mqtt://{host}:{port}")).unwrap();
        prop_assert_eq!(url.port(), port);
        let again = parse(&url.to_string()).unwrap();
        prop_assert_eq!(again, url);
    }

    #[test]
    fn mutated_valid_urls_parse_or_fail_with_a_typed_error(
        host in host_strategy(),
        port in 1u16..,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        delete in any::<bool>(),
    ) {
        let mut bytes = format!("mqtt://{host}:{port}").into_bytes();
        let i = at.index(bytes.len());
        if delete {
            bytes.remove(i);
        } else {
            bytes.insert(i, byte);
        }
        let text = String::from_utf8_lossy(&bytes);
        match parse(&text) {
            Ok(url) => prop_assert!(url.port() != 0 && !url.host().is_empty()),
            Err(Error::BadUrl { .. } | Error::UnsupportedScheme { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}

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
fn mqtts_is_tls_on_port_8883_by_default() {
    let url = parse("mqtts://broker.example.org").unwrap();
    assert!(url.is_tls());
    assert_eq!(url.scheme(), Scheme::Mqtts);
    assert_eq!(
        (url.host(), url.port()),
        ("broker.example.org", DEFAULT_TLS_PORT)
    );
    assert_eq!(url.to_string(), "mqtts://broker.example.org:8883");

    let explicit = parse("MQTTS://[::1]:9883/").unwrap();
    assert!(explicit.is_tls());
    assert_eq!(explicit.to_string(), "mqtts://[::1]:9883");

    let plain = parse("mqtt://broker.example.org").unwrap();
    assert!(!plain.is_tls());
    assert_eq!(plain.scheme(), Scheme::Mqtt);
    assert_ne!(plain, parse("mqtts://broker.example.org:1883").unwrap());
}

#[test]
fn a_tls_socket_address_becomes_an_mqtts_url() {
    let addr = "127.0.0.1:4567".parse().unwrap();
    let url = BrokerUrl::from_socket_addr_with(Scheme::Mqtts, addr).unwrap();
    assert_eq!(url.to_string(), "mqtts://127.0.0.1:4567");
    assert!(url.is_tls());
    assert!(!BrokerUrl::from_socket_addr(addr).unwrap().is_tls());
}

#[test]
fn other_schemes_are_refused_with_the_expected_shape() {
    for url in [
        "http://host",
        "ws://host:80",
        "wss://host",
        "tcp://host:1883",
    ] {
        match parse(url) {
            Err(Error::UnsupportedScheme { reason, .. }) => {
                assert!(reason.contains("mqtts://"), "{url}: {reason}");
            }
            other => panic!("{url}: expected UnsupportedScheme, got {other:?}"),
        }
    }
    // The TLS spellings of other tools point at the one Tandem reads.
    for url in ["ssl://host:8883", "tls://host"] {
        match parse(url) {
            Err(Error::UnsupportedScheme { reason, .. }) => {
                assert!(reason.contains("write mqtts://"), "{url}: {reason}");
            }
            other => panic!("{url}: expected UnsupportedScheme, got {other:?}"),
        }
    }
}

#[test]
fn credentials_in_a_url_are_refused_and_told_to_go_separately() {
    for url in [
        "mqtt://user:pw@host",
        "mqtts://alice.1:secret@broker:8883",
        "mqtts://user@host",
    ] {
        match parse(url) {
            Err(Error::BadUrl { reason, .. }) => {
                assert!(
                    reason.contains("pass the username and password separately"),
                    "{reason}"
                );
            }
            other => panic!("{url}: expected BadUrl, got {other:?}"),
        }
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
    fn random_text_after_the_scheme_never_panics(s in "\\PC{0,60}", tls in any::<bool>()) {
        let scheme = if tls { "mqtts" } else { "mqtt" };
        if let Ok(url) = parse(&format!("{scheme}://{s}")) {
            prop_assert!(url.port() != 0);
            prop_assert_eq!(url.is_tls(), tls);
        }
    }

    #[test]
    fn valid_urls_round_trip_through_display(
        host in host_strategy(),
        port in 1u16..,
        tls in any::<bool>(),
    ) {
        let scheme = if tls { "mqtts" } else { "mqtt" };
        let url = parse(&format!("{scheme}://{host}:{port}")).unwrap();
        prop_assert_eq!(url.port(), port);
        prop_assert_eq!(url.is_tls(), tls);
        let again = parse(&url.to_string()).unwrap();
        prop_assert_eq!(again, url);
    }

    #[test]
    fn mutated_valid_urls_parse_or_fail_with_a_typed_error(
        host in host_strategy(),
        port in 1u16..,
        tls in any::<bool>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        delete in any::<bool>(),
    ) {
        let scheme = if tls { "mqtts" } else { "mqtt" };
        let mut bytes = format!("{scheme}://{host}:{port}").into_bytes();
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

#[test]
fn a_broker_list_keeps_its_order_and_reads_back_as_written() {
    let list = BrokerList::parse("mqtt://a:1883, mqtts://b , mqtt://[::1]:2000").unwrap();
    let urls: Vec<String> = list.urls().iter().map(ToString::to_string).collect();
    assert_eq!(
        urls,
        ["mqtt://a:1883", "mqtts://b:8883", "mqtt://[::1]:2000"]
    );
    assert_eq!(BrokerList::parse(&list.to_string()).unwrap(), list);
    let one = BrokerList::parse("mqtt://localhost").unwrap();
    assert_eq!(
        one,
        BrokerList::from(parse("mqtt://localhost:1883").unwrap())
    );
    assert_eq!(one.to_string(), "mqtt://localhost:1883");
    let a = parse("mqtt://a").unwrap();
    let b = parse("mqtt://b").unwrap();
    let built = BrokerList::from_urls([a.clone(), b, a]).unwrap();
    assert_eq!(
        built.to_string(),
        "mqtt://a:1883,mqtt://b:1883",
        "each once, in order"
    );
    assert_eq!(BrokerList::from_urls([]), None);
}

#[test]
fn a_broker_list_refuses_empty_entries_repeats_and_bad_urls() {
    for bad in ["", " ", "mqtt://a,", ",mqtt://a", "mqtt://a,,mqtt://b"] {
        assert!(
            matches!(BrokerList::parse(bad), Err(Error::BadUrl { .. })),
            "{bad:?}"
        );
    }
    let twice = BrokerList::parse("mqtt://a:1883,mqtt://a").unwrap_err();
    assert!(twice.to_string().contains("twice"), "{twice}");
    assert!(matches!(
        BrokerList::parse("mqtt://a,ws://b"),
        Err(Error::UnsupportedScheme { .. })
    ));
}

use super::*;
use crate::credentials::Password;
use crate::tls::tests::TEST_CA_PEM;
use proptest::prelude::*;
use rumqttc::{TlsConfiguration, Transport};

fn url() -> BrokerUrl {
    BrokerUrl::parse("mqtt://127.0.0.1:18830").unwrap()
}

#[test]
fn default_settings_give_a_persistent_session_with_big_packets() {
    let options = mqtt_options(&url(), "ACCT7-1", &ClientSettings::default()).unwrap();
    assert_eq!(options.client_id(), "ACCT7-1");
    assert_eq!(options.broker_address(), ("127.0.0.1".to_owned(), 18830));
    assert!(!options.clean_session());
    assert_eq!(options.keep_alive(), DEFAULT_KEEP_ALIVE);
    assert_eq!(options.max_packet_size(), MAX_PACKET_SIZE);
    assert_eq!(options.inflight(), 100);
    assert!(options.last_will().is_none());
    assert!(options.credentials().is_none());
    assert!(matches!(options.transport(), Transport::Tcp));
}

#[test]
fn a_device_on_a_tls_broker_logs_in_with_its_password_over_rustls() {
    let url = BrokerUrl::parse("mqtts://127.0.0.1:18883").unwrap();
    let settings = ClientSettings {
        credentials: Some(Credentials::new("alice.1", "5e1f...device-password")),
        tls: Some(TlsTrust::from_ca_pem(TEST_CA_PEM)),
        ..ClientSettings::default()
    };
    let options = mqtt_options(&url, "alice.1", &settings).unwrap();
    let login = options.credentials().unwrap();
    assert_eq!(login.username, "alice.1");
    assert_eq!(login.password, "5e1f...device-password");
    assert!(matches!(
        options.transport(),
        Transport::Tls(TlsConfiguration::Rustls(_))
    ));
    assert_eq!(options.broker_address(), ("127.0.0.1".to_owned(), 18883));
    // The settings print without the password.
    let printed = format!("{settings:?}");
    assert!(!printed.contains("device-password"), "{printed}");
}

#[test]
fn credentials_work_over_plain_tcp_too() {
    let settings = ClientSettings {
        credentials: Some(Credentials::new("bob.0", Password::from("pw"))),
        ..ClientSettings::default()
    };
    let options = mqtt_options(&url(), "bob.0", &settings).unwrap();
    assert_eq!(options.credentials().unwrap().username, "bob.0");
    assert!(matches!(options.transport(), Transport::Tcp));
}

#[test]
fn tls_trust_on_a_plain_url_is_an_error_not_ignored() {
    let settings = ClientSettings {
        tls: Some(TlsTrust::from_ca_pem(TEST_CA_PEM)),
        ..ClientSettings::default()
    };
    match mqtt_options(&url(), "id", &settings) {
        Err(Error::Tls { url, reason }) => {
            assert_eq!(url, "mqtt://127.0.0.1:18830");
            assert!(reason.contains("mqtts://"), "{reason}");
        }
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[test]
fn an_mqtts_url_with_an_unusable_ca_is_an_error() {
    let url = BrokerUrl::parse("mqtts://broker.example.org").unwrap();
    let settings = ClientSettings {
        tls: Some(TlsTrust::from_ca_pem(b"not a certificate".to_vec())),
        ..ClientSettings::default()
    };
    assert!(matches!(
        mqtt_options(&url, "id", &settings),
        Err(Error::Tls { .. })
    ));
}

#[test]
fn credentials_mqtt_cannot_carry_are_typed_errors() {
    let long = "x".repeat(65_536);
    let cases = [
        (Credentials::new("", "pw"), "credentials.username"),
        (Credentials::new("nul\0", "pw"), "credentials.username"),
        (
            Credentials::new(long.as_str(), "pw"),
            "credentials.username",
        ),
        (
            Credentials::new("alice.1", long.as_str()),
            "credentials.password",
        ),
    ];
    for (credentials, expected) in cases {
        let settings = ClientSettings {
            credentials: Some(credentials),
            ..ClientSettings::default()
        };
        match mqtt_options(&url(), "id", &settings) {
            Err(Error::ClientSetting { setting, value, .. }) => {
                assert_eq!(setting, expected);
                if setting == "credentials.password" {
                    // The password itself never appears in the error, only its size.
                    assert_eq!(value, "65536 bytes");
                }
            }
            other => panic!("expected ClientSetting({expected}), got {other:?}"),
        }
    }
}

#[test]
fn a_last_will_is_passed_through() {
    let settings = ClientSettings {
        last_will: Some(Will::new(
            "tandem/v1/acct/A/presence/A-1",
            b"offline".to_vec(),
            true,
        )),
        keep_alive: Duration::from_secs(5),
        clean_session: true,
        ..ClientSettings::default()
    };
    let options = mqtt_options(&url(), "A-1", &settings).unwrap();
    let will = options.last_will().unwrap();
    assert_eq!(will.topic, "tandem/v1/acct/A/presence/A-1");
    assert_eq!(&will.message[..], b"offline");
    assert_eq!(will.qos, QoS::AtLeastOnce);
    assert!(will.retain);
    assert!(options.clean_session());
    assert_eq!(options.keep_alive(), Duration::from_secs(5));
}

#[test]
fn client_ids_brokers_would_refuse_are_typed_errors() {
    let long = "x".repeat(65_536);
    for id in ["", "a/b", "a+b", "a#", "$SYS", "tab\there", long.as_str()] {
        match mqtt_options(&url(), id, &ClientSettings::default()) {
            Err(Error::BadClientId { client_id, .. }) => assert_eq!(client_id, id),
            other => panic!("{id:?}: expected BadClientId, got {other:?}"),
        }
    }
}

#[test]
fn keep_alives_rumqttc_or_rumqttd_refuse_are_typed_errors() {
    for keep_alive in [
        Duration::ZERO,
        Duration::from_millis(500),
        Duration::from_millis(1500),
        Duration::from_secs(65_536),
    ] {
        let settings = ClientSettings {
            keep_alive,
            ..ClientSettings::default()
        };
        assert!(
            matches!(
                mqtt_options(&url(), "id", &settings),
                Err(Error::ClientSetting {
                    setting: "keep_alive",
                    ..
                })
            ),
            "{keep_alive:?}"
        );
    }
}

#[test]
fn packet_size_inflight_and_will_are_checked() {
    let tiny = ClientSettings {
        max_packet_size: 10,
        ..ClientSettings::default()
    };
    assert!(matches!(
        mqtt_options(&url(), "id", &tiny),
        Err(Error::ClientSetting {
            setting: "max_packet_size",
            ..
        })
    ));
    let none_in_flight = ClientSettings {
        inflight: 0,
        ..ClientSettings::default()
    };
    assert!(matches!(
        mqtt_options(&url(), "id", &none_in_flight),
        Err(Error::ClientSetting {
            setting: "inflight",
            ..
        })
    ));
    for topic in ["", "a/+/b", "a/#", "nul\0"] {
        let settings = ClientSettings {
            last_will: Some(Will::new(topic, b"x".to_vec(), false)),
            ..ClientSettings::default()
        };
        assert!(
            matches!(
                mqtt_options(&url(), "id", &settings),
                Err(Error::BadWillTopic { .. })
            ),
            "{topic:?}"
        );
    }
    let huge_will = ClientSettings {
        max_packet_size: 64,
        last_will: Some(Will::new("t", vec![0; 65], false)),
        ..ClientSettings::default()
    };
    assert!(matches!(
        mqtt_options(&url(), "id", &huge_will),
        Err(Error::ClientSetting {
            setting: "last_will.payload",
            ..
        })
    ));
}

proptest! {
    /// rumqttc asserts on some inputs; `mqtt_options` must turn every one into an error.
    #[test]
    fn any_client_id_and_settings_give_options_or_a_typed_error(
        id in "\\PC{0,40}|.{0,40}",
        keep_alive_ms in 0u64..70_000_000,
        inflight in any::<u16>(),
        clean_session in any::<bool>(),
        will_topic in proptest::option::of(".{0,20}"),
        login in proptest::option::of((".{0,20}", ".{0,20}")),
    ) {
        let settings = ClientSettings {
            keep_alive: Duration::from_millis(keep_alive_ms),
            inflight,
            clean_session,
            last_will: will_topic.map(|t| Will::new(t, b"bye".to_vec(), true)),
            credentials: login.map(|(user, password)| Credentials::new(user, password)),
            ..ClientSettings::default()
        };
        match mqtt_options(&url(), &id, &settings) {
            Ok(options) => {
                prop_assert_eq!(options.client_id(), id);
                prop_assert_eq!(
                    options.credentials().map(|login| login.username),
                    settings.credentials.map(|c| c.username)
                );
            }
            Err(Error::BadClientId { .. } | Error::ClientSetting { .. } | Error::BadWillTopic { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

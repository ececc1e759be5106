use super::*;
use proptest::prelude::*;

/// A self-signed P-256 CA certificate (`CN=Tandem unit-test CA`), made once with
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 ...`. Only parsed here; the
/// handshake itself is exercised against Mosquitto in `tests/tests/broker_acl.rs`.
pub(crate) const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUFIMDZT1gVlMI+pccpAqWjc8NsfgwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTVGFuZGVtIHVuaXQtdGVzdCBDQTAgFw0yNjExMjgwOTI4MjRa
GA8yMTI2MTEwNDA5MjgyNFowHjEcMBoGA1UEAwwTVGFuZGVtIHVuaXQtdGVzdCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABDGYfBmbqSMlJN+MKLdiYSPife/3
52MuyRlWrUJC6/BI0Y4+5KOKVHBEOMUJEmCTuIn4Bg1/1CGE00dXieAqT++jUzBR
MB0GA1UdDgQWBBS5WW4kSDdPihdbFmXCqQAWWa3YNTAfBgNVHSMEGDAWgBS5WW4k
SDdPihdbFmXCqQAWWa3YNTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQC9eLRnm5gdCT3Xy/XizhdI50RAGg9Id8VM6KbfolzEswIgC/4G4QIAH6pe
Zs9f7JD0M+dBBmS3ieg61r0eHHWrDDo=
-----END CERTIFICATE-----
";

fn tls_url() -> BrokerUrl {
    BrokerUrl::parse("mqtts://127.0.0.1:18883").unwrap()
}

fn tls_reason(result: Result<Transport>) -> String {
    match result {
        Err(Error::Tls { reason, url }) => {
            assert!(url.starts_with("mqtt"), "{url}");
            reason
        }
        Err(other) => panic!("expected Error::Tls, got {other:?}"),
        Ok(_) => panic!("expected Error::Tls, got a transport"),
    }
}

#[test]
fn a_private_ca_gives_a_rustls_transport() {
    let trust = TlsTrust::from_ca_pem(TEST_CA_PEM);
    let transport = transport(&tls_url(), Some(&trust)).unwrap();
    assert!(matches!(
        transport,
        Transport::Tls(TlsConfiguration::Rustls(_))
    ));
    // Two CAs in one file (a bundle) are fine too.
    let bundle = TlsTrust::from_ca_pem(format!("{TEST_CA_PEM}{TEST_CA_PEM}"));
    assert!(transport_is_tls(&tls_url(), &bundle));
}

fn transport_is_tls(url: &BrokerUrl, trust: &TlsTrust) -> bool {
    matches!(transport(url, Some(trust)), Ok(Transport::Tls(_)))
}

#[test]
fn plain_urls_get_tcp_and_refuse_tls_trust() {
    let plain = BrokerUrl::parse("mqtt://127.0.0.1:1883").unwrap();
    assert!(matches!(transport(&plain, None), Ok(Transport::Tcp)));
    let reason = tls_reason(transport(&plain, Some(&TlsTrust::from_ca_pem(TEST_CA_PEM))));
    assert!(reason.contains("mqtts://"), "{reason}");
}

#[test]
fn a_pem_without_a_usable_certificate_says_what_is_wrong() {
    let key_only = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let cut = TEST_CA_PEM.replace("-----END CERTIFICATE-----\n", "");
    let garbage_der = "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";
    let cases = [
        ("", "no -----BEGIN CERTIFICATE----- block"),
        ("just some text", "no -----BEGIN CERTIFICATE----- block"),
        (key_only, "no -----BEGIN CERTIFICATE----- block"),
        (cut.as_str(), "malformed after 0 certificate(s)"),
        (
            garbage_der,
            "certificate 1 of 1 in the PEM cannot be a trust anchor",
        ),
    ];
    for (pem, needle) in cases {
        let reason = tls_reason(transport(&tls_url(), Some(&TlsTrust::from_ca_pem(pem))));
        assert!(reason.contains(needle), "{pem:?}: {reason}");
    }
}

#[test]
fn a_host_no_certificate_can_name_is_refused_before_connecting() {
    let url = BrokerUrl::parse("mqtts://-bad.example.org").unwrap();
    let reason = tls_reason(transport(&url, Some(&TlsTrust::from_ca_pem(TEST_CA_PEM))));
    assert!(reason.contains("DNS name"), "{reason}");
}

#[test]
fn without_a_ca_the_system_store_is_used_and_must_not_be_empty() {
    let empty = roots_from_system(&tls_url(), || {
        (Vec::new(), vec!["could not open /etc/ssl/certs".to_owned()])
    })
    .unwrap_err();
    let text = empty.to_string();
    assert!(text.contains("no trusted CA certificates"), "{text}");
    assert!(text.contains("could not open /etc/ssl/certs"), "{text}");
    assert!(text.contains("mqtts://127.0.0.1:18883"), "{text}");

    let ca = CertificateDer::from_pem_slice(TEST_CA_PEM.as_bytes()).unwrap();
    let found = roots_from_system(&tls_url(), || (vec![ca], Vec::new())).unwrap();
    assert_eq!(found.len(), 1);
}

#[test]
fn the_real_system_store_is_read_when_no_ca_is_given() {
    // Debian's ca-certificates bundle; where it is missing the error must say so.
    let has_bundle = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists();
    match transport(&tls_url(), None) {
        Ok(Transport::Tls(TlsConfiguration::Rustls(_))) => assert!(has_bundle),
        Err(Error::Tls { reason, .. }) => {
            assert!(!has_bundle, "{reason}");
            assert!(reason.contains("no trusted CA certificates"), "{reason}");
        }
        Ok(_) => panic!("not a rustls TLS transport"),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

#[test]
fn debug_shows_the_size_not_the_bytes() {
    let printed = format!("{:?}", TlsTrust::from_ca_pem(TEST_CA_PEM));
    assert_eq!(
        printed,
        format!("TlsTrust {{ ca_pem: {} bytes }}", TEST_CA_PEM.len())
    );
}

proptest! {
    /// The CA PEM comes from a file or a pairing offer: any bytes give a transport or a
    /// typed error.
    #[test]
    fn random_pem_bytes_give_a_transport_or_a_tls_error(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        match transport(&tls_url(), Some(&TlsTrust::from_ca_pem(bytes))) {
            Ok(Transport::Tls(_)) | Err(Error::Tls { .. }) => {}
            Ok(_) => prop_assert!(false, "not a TLS transport"),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn mutated_ca_pem_gives_a_transport_or_a_tls_error(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        action in 0u8..3,
    ) {
        let mut bytes = TEST_CA_PEM.as_bytes().to_vec();
        let i = at.index(bytes.len());
        match action {
            0 => { bytes.remove(i); }
            1 => bytes.insert(i, byte),
            _ => bytes.truncate(i),
        }
        match transport(&tls_url(), Some(&TlsTrust::from_ca_pem(bytes))) {
            Ok(Transport::Tls(_)) | Err(Error::Tls { .. }) => {}
            Ok(_) => prop_assert!(false, "not a TLS transport"),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

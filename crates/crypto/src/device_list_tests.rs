//! Stories about certificates and device lists: alice's and bob's phones, a laptop linked and
//! unlinked, and everything a forger might try.

use proptest::prelude::*;

use super::*;
use crate::testkit::Person;
use crate::{AccountSignedCertificate, DeviceDescription, DeviceKeys};

#[test]
fn alices_and_bobs_phone_certificates_verify() {
    let alice = Person::with_phone(1);
    let bob = Person::with_phone(2);
    for person in [&alice, &bob] {
        let phone = person.device(0);
        phone.cert.verify().unwrap();
        assert_eq!(phone.cert.device_id(), phone.id);
        assert!(phone.cert.device_id().is_primary());
        assert_eq!(phone.cert.keys(), &phone.keys.public_keys());
        assert_eq!(phone.cert.name(), "phone");
        assert_eq!(phone.cert.platform(), "android");
    }
    assert_ne!(alice.device(0).id.account, bob.device(0).id.account);
}

#[test]
fn a_certificate_signed_by_another_account_key_fails() {
    let alice = Person::with_phone(1);
    let mallory = Person::with_phone(3);
    // Mallory signs a certificate claiming to be for alice's account: the id does not derive
    // from the key that signed.
    let mut forged = mallory.device(0).cert.clone();
    let alice_id = alice.device(0).id;
    // Rebuild the cert body claiming alice's account id but mallory's key and signatures.
    let bytes = forged.to_bytes().unwrap();
    let mallory_id = mallory.device(0).id.account;
    let mut tampered = bytes.clone();
    let at = find(&tampered, mallory_id.as_bytes()).unwrap();
    tampered[at..at + 16].copy_from_slice(alice_id.account.as_bytes());
    forged = DeviceCertificate::from_bytes(&tampered).unwrap();
    assert!(matches!(
        forged.verify(),
        Err(Error::CertificateAccountMismatch { device }) if device.account == alice_id.account
    ));
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn every_flipped_byte_of_a_certificate_is_caught() {
    let alice = Person::with_phone(1);
    let bytes = alice.device(0).cert.to_bytes().unwrap();
    for i in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x01;
        if let Ok(cert) = DeviceCertificate::from_bytes(&tampered) {
            assert!(cert.verify().is_err(), "flipping byte {i} went unnoticed");
        }
    }
}

#[test]
fn a_missing_or_wrong_device_signature_fails() {
    let alice = Person::with_phone(1);
    let mut cert = alice.device(0).cert.clone();
    *cert.signatures_mut().1 = [0u8; 64];
    assert!(matches!(
        cert.verify(),
        Err(Error::CertificateDeviceSignature { .. })
    ));
    let mut cert = alice.device(0).cert.clone();
    *cert.signatures_mut().0 = [0u8; 64];
    assert!(matches!(
        cert.verify(),
        Err(Error::CertificateAccountSignature { .. })
    ));
}

#[test]
fn a_changed_name_breaks_both_signatures() {
    let alice = Person::with_phone(1);
    let mut cert = alice.device(0).cert.clone();
    cert.description_mut().name = "evil".into();
    assert!(matches!(
        cert.verify(),
        Err(Error::CertificateAccountSignature { .. })
    ));
}

#[test]
fn a_laptop_is_linked_in_two_steps_and_only_it_can_countersign() {
    let mut alice = Person::with_phone(1);
    let laptop = DeviceKeys::generate(&mut alice.rng);
    let stranger = DeviceKeys::generate(&mut alice.rng);
    let offer = alice
        .account
        .certify(DeviceDescription {
            index: 1,
            keys: laptop.public_keys(),
            name: "Alice's laptop".into(),
            platform: "linux".into(),
            linked_at_ms: 1_700_000_000_500,
        })
        .unwrap();
    // The offer travels as bytes to the laptop.
    let received = AccountSignedCertificate::from_bytes(&offer.to_bytes().unwrap()).unwrap();
    received.verify_account_signature().unwrap();
    assert!(matches!(
        received.clone().countersign(&stranger),
        Err(Error::CertificateKeysMismatch { .. })
    ));
    let cert = received.countersign(&laptop).unwrap();
    cert.verify().unwrap();
    assert_eq!(cert.device_id().index, 1);
    assert_eq!(cert.linked_at_ms(), 1_700_000_000_500);
    assert_eq!(
        DeviceCertificate::from_bytes(&cert.to_bytes().unwrap()).unwrap(),
        cert
    );
}

#[test]
fn certificate_fields_are_bounded() {
    let mut alice = Person::with_phone(1);
    let keys = DeviceKeys::generate(&mut alice.rng);
    let describe = |name: &str, platform: &str| DeviceDescription {
        index: 1,
        keys: keys.public_keys(),
        name: name.into(),
        platform: platform.into(),
        linked_at_ms: 0,
    };
    for (name, platform, field) in [
        ("", "linux", "name"),
        (&"x".repeat(65), "linux", "name"),
        ("tab\there", "linux", "name"),
        ("ok", "", "platform"),
        ("ok", &"p".repeat(33), "platform"),
    ] {
        assert!(
            matches!(
                alice.account.certify(describe(name, platform)),
                Err(Error::CertificateField { field: f, .. }) if f == field
            ),
            "{name:?} / {platform:?}"
        );
    }
    alice
        .account
        .certify(describe(&"é".repeat(32), "linux"))
        .unwrap();
}

#[test]
fn a_list_verifies_for_its_account_and_round_trips_through_bytes() {
    let mut alice = Person::with_phone(1);
    alice.link("laptop", "linux");
    let signed = alice.signed_list(1);
    let bytes = signed.to_bytes().unwrap();
    let decoded = SignedDeviceList::from_bytes(&bytes).unwrap();
    assert_eq!(decoded, signed);
    let list = decoded.verify(&alice.account.account_id()).unwrap();
    assert_eq!(list.version(), 1);
    assert_eq!(list.device_ids().count(), 2);
    let laptop = alice.device(1);
    assert!(list.contains(&laptop.id, &laptop.keys.public_keys()));
    assert!(!list.contains(&laptop.id, &alice.device(0).keys.public_keys()));
    assert_eq!(list.device(1).unwrap().name(), "laptop");
    assert!(list.device(2).is_none());
}

#[test]
fn device_list_versions_only_grow() {
    let mut alice = Person::with_phone(1);
    let id = alice.account.account_id();
    let v1 = alice.signed_list(1);
    let first = accept(&id, None, &v1).unwrap();
    assert_eq!(first.added, vec![alice.device(0).id]);

    alice.link("laptop", "linux");
    let v2 = alice.signed_list(2);
    let second = accept(&id, Some(&first.list), &v2).unwrap();
    assert_eq!(second.added, vec![alice.device(1).id]);
    assert!(second.removed.is_empty());

    // The old list again: refused as older.
    assert!(matches!(
        accept(&id, Some(&second.list), &v1),
        Err(Error::DeviceListOlder {
            current: 2,
            candidate: 1,
            ..
        })
    ));
    // The same list again: a harmless replay.
    assert!(matches!(
        accept(&id, Some(&second.list), &v2),
        Err(Error::DeviceListReplayed { version: 2, .. })
    ));
    // Another list with the same version: a conflict worth reporting.
    alice.link("tablet", "android");
    let other_v2 = alice.signed_list(2);
    assert!(matches!(
        accept(&id, Some(&second.list), &other_v2),
        Err(Error::DeviceListConflict { version: 2, .. })
    ));
}

#[test]
fn unlinking_and_relinking_show_up_in_the_difference() {
    let mut alice = Person::with_phone(1);
    alice.link("laptop", "linux");
    let id = alice.account.account_id();
    let v1 = accept(&id, None, &alice.signed_list(1)).unwrap().list;
    // Unlink the laptop.
    let phone_only = vec![alice.device(0).cert.clone()];
    let v2 = v1.successor(1_700_000_001_000, phone_only).unwrap();
    let accepted = accept(&id, Some(&v1), &v2.sign(&alice.account).unwrap()).unwrap();
    assert_eq!(accepted.removed, vec![alice.device(1).id]);
    assert!(accepted.added.is_empty() && accepted.rekeyed.is_empty());
    // Re-link index 1 with new keys.
    let new_keys = DeviceKeys::generate(&mut alice.rng);
    let cert = DeviceCertificate::issue(
        &alice.account,
        &new_keys,
        DeviceDescription {
            index: 1,
            keys: new_keys.public_keys(),
            name: "laptop".into(),
            platform: "linux".into(),
            linked_at_ms: 1_700_000_002_000,
        },
    )
    .unwrap();
    let v3 = accepted
        .list
        .successor(1_700_000_002_000, vec![alice.device(0).cert.clone(), cert])
        .unwrap();
    let relinked = accept(&id, Some(&v1), &v3.sign(&alice.account).unwrap()).unwrap();
    assert_eq!(relinked.rekeyed, vec![alice.device(1).id]);
    assert_eq!(relinked.list.version(), 3);
}

#[test]
fn a_list_signed_by_another_account_is_refused() {
    let alice = Person::with_phone(1);
    let mallory = Person::with_phone(3);
    let alice_id = alice.account.account_id();
    let current = alice.list(1);
    // Mallory's own list, offered as alice's.
    assert!(matches!(
        accept(&alice_id, Some(&current), &mallory.signed_list(9)),
        Err(Error::DeviceListWrongAccount { .. })
    ));
    // Alice's list content with mallory's signature bytes.
    let mut forged = alice.signed_list(2);
    *forged.signature_mut() = *mallory.signed_list(2).signature_mut();
    assert!(matches!(
        accept(&alice_id, Some(&current), &forged),
        Err(Error::DeviceListSignature { .. })
    ));
    // A key cannot sign another account's list.
    assert!(matches!(
        alice.list(2).sign(&mallory.account),
        Err(Error::DeviceListSignerMismatch { .. })
    ));
}

#[test]
fn a_list_carrying_a_certificate_of_another_account_is_refused() {
    let alice = Person::with_phone(1);
    let mallory = Person::with_phone(3);
    let mut certs = vec![alice.device(0).cert.clone(), mallory.device(0).cert.clone()];
    assert!(matches!(
        DeviceList::new(alice.account.public_key(), 1, 0, certs.clone()),
        Err(Error::DeviceListForeignCertificate { .. })
    ));
    // Smuggled into a signed list after signing: the signature no longer covers it.
    let mut signed = alice.signed_list(2);
    signed.certificates_mut().push(certs.pop().unwrap());
    assert!(accept(&alice.account.account_id(), None, &signed).is_err());
}

#[test]
fn list_structure_is_checked() {
    let alice = Person::with_phone(1);
    let key = alice.account.public_key();
    assert!(matches!(
        DeviceList::new(key, 1, 0, Vec::new()),
        Err(Error::DeviceListInvalid { .. })
    ));
    let twice = vec![alice.device(0).cert.clone(), alice.device(0).cert.clone()];
    assert!(matches!(
        DeviceList::new(key, 1, 0, twice),
        Err(Error::DeviceListInvalid { .. })
    ));
}

#[test]
fn list_decoding_is_strict() {
    let alice = Person::with_phone(1);
    let bytes = alice.signed_list(1).to_bytes().unwrap();
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        SignedDeviceList::from_bytes(&trailing),
        Err(Error::Decode { .. })
    ));
    let mut newer = bytes.clone();
    newer[0] = 2;
    assert!(matches!(
        SignedDeviceList::from_bytes(&newer),
        Err(Error::UnsupportedFormat { found: 2, .. })
    ));
    assert!(SignedDeviceList::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(SignedDeviceList::from_bytes(&[]).is_err());
    assert!(matches!(
        SignedDeviceList::from_bytes(&vec![1u8; MAX_DEVICE_LIST_LEN + 1]),
        Err(Error::Size { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_the_list_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SignedDeviceList::from_bytes(&bytes);
        let _ = DeviceCertificate::from_bytes(&bytes);
        let _ = AccountSignedCertificate::from_bytes(&bytes);
    }

    #[test]
    fn mutated_lists_never_panic_and_never_verify_with_other_content(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)
    ) {
        let (original, account, list) = &*SAMPLE_LIST;
        let mut bytes = original.clone();
        for (at, xor) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        if let Ok(decoded) = SignedDeviceList::from_bytes(&bytes)
            && let Ok(verified) = decoded.verify(account)
        {
            // Only a re-encoding of the very same content may still verify.
            prop_assert_eq!(&verified, list);
        }
    }
}

/// Alice's two-device list, encoded once for the mutation test.
static SAMPLE_LIST: std::sync::LazyLock<(Vec<u8>, crate::AccountId, DeviceList)> =
    std::sync::LazyLock::new(|| {
        let mut alice = Person::with_phone(1);
        alice.link("laptop", "linux");
        (
            alice.signed_list(1).to_bytes().unwrap(),
            alice.account.account_id(),
            alice.list(1),
        )
    });

//! Stories about linking alice's laptop to her phone: the two machines are driven against each
//! other by handing each one's publications to the other, with the clock moved by hand. Some
//! stories play a misbehaving or hostile party by sealing messages themselves.

use proptest::prelude::*;
use tandem_crypto::rng::{ChaCha20Rng, SeedableRng};
use tandem_crypto::{
    AccountKey, DeviceCertificate, DeviceDescription, DeviceId, DeviceKeys, DeviceList,
    SignedDeviceList,
};

use super::*;
use crate::sync::SyncPlanSummary;
use crate::testkit::T0;

const BROKER: &str = "mqtt://127.0.0.1:1883";
const LAPTOP: &str = "Alice's laptop";
const PLATFORM: &str = "linux";

/// An account: its key, its phone (index 0), further devices, and its signed list (version 1).
struct Account {
    key: AccountKey,
    phone: DeviceKeys,
    devices: Vec<DeviceKeys>,
    certs: Vec<DeviceCertificate>,
    list: SignedDeviceList,
}

impl Account {
    /// An account whose list holds a phone and `others` more devices.
    fn new(rng: &mut ChaCha20Rng, others: u32) -> Self {
        let key = AccountKey::generate(rng);
        let mut devices = Vec::new();
        let mut certs = Vec::new();
        for index in 0..=others {
            let keys = DeviceKeys::generate(rng);
            let cert = DeviceCertificate::issue(
                &key,
                &keys,
                DeviceDescription {
                    index,
                    keys: keys.public_keys(),
                    name: if index == 0 { "phone" } else { "tablet" }.into(),
                    platform: "android".into(),
                    linked_at_ms: T0 - 86_400_000,
                },
            )
            .unwrap();
            devices.push(keys);
            certs.push(cert);
        }
        let list = DeviceList::new(key.public_key(), 1, T0 - 86_400_000, certs.clone())
            .unwrap()
            .sign(&key)
            .unwrap();
        let phone = devices.remove(0);
        Self {
            key,
            phone,
            devices,
            certs,
            list,
        }
    }

    fn id(&self) -> tandem_crypto::AccountId {
        self.key.account_id()
    }

    /// A list of this account with `version` and `certs`, signed by its key.
    fn list_with(&self, version: u64, certs: Vec<DeviceCertificate>) -> SignedDeviceList {
        DeviceList::new(self.key.public_key(), version, T0, certs)
            .unwrap()
            .sign(&self.key)
            .unwrap()
    }
}

fn contents(index: u32, bob: &AccountKey) -> OfferContents {
    OfferContents {
        account_name: "Alice".into(),
        index,
        brokers: vec![BROKER.into(), "mqtts://backup.example:8883".into()],
        access: Some(BrokerAccess {
            username: format!("new-device-{index}"),
            password: "s3cret-for-the-new-device".into(),
            ca_pem: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
        }),
        sync: SyncPlanSummary {
            sync_id: [7; 16],
            chunks: 3,
            messages: 2500,
            chats: 12,
        },
        contacts: vec![OfferContact {
            account_key: bob.public_key(),
            name: "Bob".into(),
        }],
    }
}

fn published<E>(out: &[Output<E>]) -> Vec<(String, Vec<u8>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Publish { topic, payload } => Some((topic.clone(), payload.clone())),
            _ => None,
        })
        .collect()
}

fn events<E: Clone>(out: &[Output<E>]) -> Vec<E> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The single payload published in `out`, and its topic.
fn only_publish<E: fmt::Debug>(out: &[Output<E>]) -> (String, Vec<u8>) {
    let all = published(out);
    assert_eq!(all.len(), 1, "one publication expected in {out:?}");
    all.into_iter().next().unwrap()
}

/// What a Reject payload says, opened by its recipient.
fn reject_reason(payload: &[u8], to: &DeviceKeys, pairing_ref: &PairingRef) -> RejectReason {
    let Wire::Reject { from, sealed } = Wire::decode(payload).unwrap() else {
        panic!("not a reject")
    };
    open_reject(to, &from, pairing_ref, &sealed).unwrap()
}

/// Alice (phone and account), bob (only a contact), and alice's laptop showing codes.
struct Rig {
    rng: ChaCha20Rng,
    alice: Account,
    bob: AccountKey,
    desktop: DesktopPairing,
    /// Every code the desktop showed, by index.
    codes: Vec<PairingLink>,
}

impl Rig {
    /// Starts the desktop at `T0`; returns its first outputs too.
    fn new(seed: u8) -> (Self, Vec<DesktopOutput>) {
        Self::with_devices(seed, 0)
    }

    fn with_devices(seed: u8, others: u32) -> (Self, Vec<DesktopOutput>) {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let alice = Account::new(&mut rng, others);
        let bob = AccountKey::generate(&mut rng);
        let keys = DeviceKeys::generate(&mut rng);
        let (desktop, out) = DesktopPairing::start(
            keys,
            LAPTOP,
            PLATFORM,
            BROKER,
            QrSchedule::default(),
            T0,
            &mut rng,
        )
        .unwrap();
        let mut rig = Self {
            rng,
            alice,
            bob,
            desktop,
            codes: Vec::new(),
        };
        rig.record(&out);
        (rig, out)
    }

    fn record(&mut self, out: &[DesktopOutput]) {
        for event in events(out) {
            if let DesktopEvent::Code { link, index } = event {
                // Codes already dead when a late poll issues them are never shown, so an
                // index may skip; the rig keeps the shown ones in order.
                assert!(usize::try_from(index).unwrap() >= self.codes.len());
                self.codes.push(link);
            }
        }
    }

    fn poll(&mut self, now: i64) -> Vec<DesktopOutput> {
        let out = self.desktop.poll(now, &mut self.rng);
        self.record(&out);
        out
    }

    fn topic(&self, code: usize) -> String {
        self.codes[code].pairing_ref.topic()
    }

    /// Alice's phone scans `link` at `now` for device index 1.
    fn scan_link(&mut self, link: PairingLink, now: i64) -> (PhonePairing, Vec<PhoneOutput>) {
        PhonePairing::start(
            link,
            &self.alice.key,
            &self.alice.phone,
            &self.alice.list,
            contents(1, &self.bob),
            now,
            &mut self.rng,
        )
        .unwrap()
    }

    fn scan(&mut self, code: usize, now: i64) -> (PhonePairing, Vec<PhoneOutput>) {
        let link = self.codes[code].clone();
        self.scan_link(link, now)
    }

    /// Hands every publication of the phone to the desktop.
    /// Delivers `offer` to the desktop at `at`, which refuses it for `reason`; the phone, told
    /// at `told_at`, fails with the same reason.
    fn expect_refusal(
        &mut self,
        phone: &mut PhonePairing,
        offer: &[PhoneOutput],
        reason: RejectReason,
        at: i64,
        told_at: i64,
    ) {
        let refused = self.deliver_to_desktop(offer, at);
        assert_eq!(
            events(&refused),
            vec![DesktopEvent::OfferRefused(reason.clone())]
        );
        let told = self.deliver_to_phone(phone, &refused, told_at);
        assert_eq!(
            events(&told),
            vec![PhoneEvent::Failed(PairingError::Refused {
                by: "desktop",
                reason
            })]
        );
    }

    fn deliver_to_desktop(&mut self, phone_out: &[PhoneOutput], now: i64) -> Vec<DesktopOutput> {
        let mut out = Vec::new();
        for (topic, payload) in published(phone_out) {
            out.extend(self.desktop.handle(&topic, &payload, now, &mut self.rng));
        }
        out
    }

    /// Hands every publication of the desktop to alice's phone.
    fn deliver_to_phone(
        &mut self,
        phone: &mut PhonePairing,
        desktop_out: &[DesktopOutput],
        now: i64,
    ) -> Vec<PhoneOutput> {
        let mut out = Vec::new();
        for (topic, payload) in published(desktop_out) {
            out.extend(phone.handle(
                &topic,
                &payload,
                &self.alice.key,
                &self.alice.phone,
                now,
                &mut self.rng,
            ));
        }
        out
    }

    /// The whole exchange from a scan of `code` at `now`; returns what each side reported last.
    fn link(
        &mut self,
        code: usize,
        now: i64,
    ) -> (LinkedDevice, DeviceCertificate, SignedDeviceList) {
        let (mut phone, offer) = self.scan(code, now);
        let answer = self.deliver_to_desktop(&offer, now + 100);
        assert!(
            matches!(events(&answer)[..], [DesktopEvent::Answered { .. }]),
            "{answer:?}"
        );
        let done = self.deliver_to_phone(&mut phone, &answer, now + 200);
        let [
            PhoneEvent::Linked {
                certificate,
                device_list,
            },
        ] = &events(&done)[..]
        else {
            panic!("the phone did not link: {done:?}")
        };
        let last = self.deliver_to_desktop(&done, now + 300);
        let [DesktopEvent::Linked(linked)] = &events(&last)[..] else {
            panic!("the desktop did not link: {last:?}")
        };
        (
            (**linked).clone(),
            (**certificate).clone(),
            (**device_list).clone(),
        )
    }

    /// Seals `offer` as alice's phone would, for `link`, sent from `from`.
    fn seal_offer(&mut self, link: &PairingLink, from: &DeviceKeys, offer: &Offer) -> Vec<u8> {
        let sender = from.public_keys().x25519;
        let mut plain = postcard::to_allocvec(offer).unwrap();
        let mut mac = offer_mac(&link.secret, &link.pairing_ref, &sender);
        mac.update(&plain);
        plain.extend_from_slice(&mac.finalize().into_bytes());
        let sealed = oneshot::seal(
            from,
            link.keys.dh(),
            &info(OFFER_INFO, &link.pairing_ref),
            &link.pairing_ref.0,
            &plain,
            &mut self.rng,
        )
        .unwrap();
        Wire::Offer {
            from: sender,
            sealed,
        }
        .encode()
        .unwrap()
    }

    /// Seals a Done as alice's phone would.
    fn seal_done(&mut self, link: &PairingLink, offer_id: [u8; 16], list: &[u8]) -> Vec<u8> {
        let body = postcard::to_allocvec(&Done {
            offer_id,
            device_list: list.to_vec(),
        })
        .unwrap();
        let sealed = oneshot::seal(
            &self.alice.phone,
            link.keys.dh(),
            &info(DONE_INFO, &link.pairing_ref),
            &link.pairing_ref.0,
            &body,
            &mut self.rng,
        )
        .unwrap();
        Wire::Done { sealed }.encode().unwrap()
    }

    /// Opens the desktop's answer as alice's phone.
    fn open_answer(&self, link: &PairingLink, payload: &[u8]) -> Answer {
        let Wire::Answer { sealed } = Wire::decode(payload).unwrap() else {
            panic!("not an answer")
        };
        let plain = oneshot::open(
            &self.alice.phone,
            link.keys.dh(),
            &info(ANSWER_INFO, &link.pairing_ref),
            &link.pairing_ref.0,
            &sealed,
        )
        .unwrap();
        strict(&plain).unwrap()
    }

    /// Seals an answer as the desktop would.
    fn seal_answer(&mut self, link: &PairingLink, answer: &Answer) -> Vec<u8> {
        let body = postcard::to_allocvec(answer).unwrap();
        let sealed = oneshot::seal(
            self.desktop.keys(),
            &self.alice.phone.public_keys().x25519,
            &info(ANSWER_INFO, &link.pairing_ref),
            &link.pairing_ref.0,
            &body,
            &mut self.rng,
        )
        .unwrap();
        Wire::Answer { sealed }.encode().unwrap()
    }
}

fn is_waiting(desktop: &DesktopPairing) -> bool {
    matches!(desktop.state, DesktopState::Waiting)
}

#[test]
fn the_desktop_starts_by_subscribing_and_showing_its_first_code() {
    let (rig, out) = Rig::new(1);
    let link = &rig.codes[0];
    assert_eq!(
        out,
        vec![
            Output::Subscribe(link.pairing_ref.topic()),
            Output::Event(DesktopEvent::Code {
                link: link.clone(),
                index: 0
            }),
        ]
    );
    assert_eq!(
        link.keys,
        LinkKeys::Device(rig.desktop.keys().public_keys())
    );
    assert_eq!(link.name, LAPTOP);
    assert_eq!(link.platform, PLATFORM);
    assert_eq!(link.broker, BROKER);
    assert_eq!(link.expires_at_ms, T0 + 80_000);
    assert_eq!(rig.desktop.next_deadline(), Some(T0 + 60_000));
    // What the QR code shows parses back to the same link.
    assert_eq!(link.to_string().parse::<PairingLink>().unwrap(), *link);
}

#[test]
fn a_phone_scanning_the_code_links_the_desktop_and_both_hold_the_same_new_list() {
    let (mut rig, _) = Rig::new(2);
    let now = T0 + 5_000;

    let (mut phone, offer) = rig.scan(0, now);
    let topic = rig.topic(0);
    assert_eq!(
        offer,
        vec![
            Output::Subscribe(topic.clone()),
            Output::Publish {
                topic: topic.clone(),
                payload: only_publish(&offer).1
            },
        ]
    );
    assert_eq!(phone.next_deadline(), Some(now + REPLY_TIMEOUT_MS));

    let answer = rig.deliver_to_desktop(&offer, now + 100);
    let desktop_id = DeviceId::new(rig.alice.id(), 1);
    assert_eq!(
        events(&answer),
        vec![DesktopEvent::Answered {
            device: desktop_id,
            account_name: "Alice".into()
        }]
    );
    assert_eq!(only_publish(&answer).0, topic);
    assert_eq!(
        rig.desktop.next_deadline(),
        Some(now + 100 + REPLY_TIMEOUT_MS)
    );

    let done = rig.deliver_to_phone(&mut phone, &answer, now + 200);
    let [
        PhoneEvent::Linked {
            certificate,
            device_list,
        },
    ] = &events(&done)[..]
    else {
        panic!("{done:?}")
    };
    assert_eq!(only_publish(&done).0, topic);

    let last = rig.deliver_to_desktop(&done, now + 300);
    let [DesktopEvent::Linked(linked)] = &events(&last)[..] else {
        panic!("{last:?}")
    };
    assert!(published(&last).is_empty());

    // One certificate, complete, on both sides, describing the laptop.
    assert_eq!(linked.certificate, **certificate);
    linked.certificate.verify().unwrap();
    assert_eq!(linked.device(), desktop_id);
    assert_eq!(linked.account(), rig.alice.id());
    assert_eq!(linked.certificate.keys(), &rig.desktop.keys().public_keys());
    assert_eq!(linked.certificate.name(), LAPTOP);
    assert_eq!(linked.certificate.platform(), PLATFORM);
    assert_eq!(linked.certificate.linked_at_ms(), now);

    // One list, the successor of version 1, holding the phone and the laptop.
    assert_eq!(linked.device_list, **device_list);
    let list = linked.device_list.verify(&rig.alice.id()).unwrap();
    assert_eq!(list.version(), 2);
    assert_eq!(list.certificates().len(), 2);
    assert_eq!(list.device(0), Some(&rig.alice.certs[0]));
    assert_eq!(list.device(1), Some(&linked.certificate));
    let old = rig.alice.list.verify(&rig.alice.id()).unwrap();
    let accepted = tandem_crypto::accept(&rig.alice.id(), Some(&old), &linked.device_list).unwrap();
    assert_eq!(accepted.added, vec![desktop_id]);
    assert!(accepted.removed.is_empty());

    // The desktop learned what the phone offered.
    assert_eq!(linked.offer.account_name, "Alice");
    assert_eq!(
        linked.offer.brokers,
        vec![BROKER.to_owned(), "mqtts://backup.example:8883".into()]
    );
    assert_eq!(linked.offer.access, contents(1, &rig.bob).access);
    let shown = format!("{:?}", linked.offer.access);
    assert!(
        !shown.contains("s3cret"),
        "the password is never printed: {shown}"
    );
    assert_eq!(linked.offer.sync, contents(1, &rig.bob).sync);
    assert_eq!(linked.offer.contacts, contents(1, &rig.bob).contacts);
    assert_eq!(Some(&linked.offer), phone.offer());

    // Both machines are done: no deadline, nothing more to do.
    assert_eq!(rig.desktop.next_deadline(), None);
    assert_eq!(phone.next_deadline(), None);
    assert!(rig.poll(T0 + 1_000_000).is_empty());
    assert!(phone.poll(T0 + 1_000_000).is_empty());
}

#[test]
fn codes_rotate_after_60_s_then_every_20_s_and_all_expire_at_160_s() {
    let (mut rig, _) = Rig::new(3);
    // (seconds after start, codes retired then, the new code, when the new code expires)
    let rhythm: [(i64, &[usize], usize, i64); 5] = [
        (60, &[], 1, 100),
        (80, &[0], 2, 120),
        (100, &[1], 3, 140),
        (120, &[2], 4, 160),
        (140, &[3], 5, 160),
    ];
    for (at, retired, index, expires) in rhythm {
        let at = T0 + at * 1000;
        assert_eq!(rig.desktop.next_deadline(), Some(at));
        assert!(rig.poll(at - 1).is_empty(), "nothing before {at}");
        let out = rig.poll(at);
        let mut expected: Vec<DesktopOutput> = retired
            .iter()
            .map(|&i| Output::Unsubscribe(rig.topic(i)))
            .collect();
        expected.push(Output::Subscribe(rig.topic(index)));
        expected.push(Output::Event(DesktopEvent::Code {
            link: rig.codes[index].clone(),
            index: u32::try_from(index).unwrap(),
        }));
        assert_eq!(out, expected, "at {at}");
        assert_eq!(rig.codes[index].expires_at_ms, T0 + expires * 1000);
        // A repeated poll at the same time changes nothing.
        assert!(rig.poll(at).is_empty());
    }
    assert_eq!(rig.desktop.next_deadline(), Some(T0 + 160_000));
    assert!(rig.poll(T0 + 159_999).is_empty());
    assert_eq!(
        rig.poll(T0 + 160_000),
        vec![
            Output::Unsubscribe(rig.topic(4)),
            Output::Unsubscribe(rig.topic(5)),
            Output::Event(DesktopEvent::Failed(PairingError::CodeExpired)),
        ]
    );
    assert_eq!(rig.desktop.next_deadline(), None);
    assert!(rig.poll(T0 + 1_000_000).is_empty());

    // Six codes, each with its own ref and secret, the same keys and name.
    assert_eq!(rig.codes.len(), 6);
    for (i, a) in rig.codes.iter().enumerate() {
        assert_eq!(a.keys, LinkKeys::Device(rig.desktop.keys().public_keys()));
        for b in rig.codes.iter().skip(i + 1) {
            assert_ne!(a.pairing_ref, b.pairing_ref);
            assert_ne!(a.secret, b.secret);
        }
    }
    assert_eq!(
        PairingError::CodeExpired.to_string(),
        "QR code expired, try again"
    );
}

#[test]
fn every_code_topic_subscribed_is_unsubscribed_exactly_once_by_the_end() {
    let (mut rig, first) = Rig::new(4);
    let mut all = first;
    let mut now = T0;
    while let Some(next) = rig.desktop.next_deadline() {
        assert!(next > now, "deadlines move forward");
        now = next;
        all.extend(rig.poll(now));
    }
    let subscribed: Vec<&String> = all
        .iter()
        .filter_map(|o| match o {
            Output::Subscribe(t) => Some(t),
            _ => None,
        })
        .collect();
    let mut unsubscribed: Vec<&String> = all
        .iter()
        .filter_map(|o| match o {
            Output::Unsubscribe(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(subscribed.len(), 6);
    unsubscribed.sort();
    let mut expected = subscribed.clone();
    expected.sort();
    assert_eq!(unsubscribed, expected);
    // Each topic is unsubscribed only after it was subscribed.
    for topic in &subscribed {
        let sub = all
            .iter()
            .position(|o| o == &Output::Subscribe((*topic).clone()));
        let unsub = all
            .iter()
            .position(|o| o == &Output::Unsubscribe((*topic).clone()));
        assert!(sub < unsub);
    }
}

#[test]
fn a_desktop_that_wakes_late_shows_and_subscribes_only_codes_still_valid() {
    let (mut rig, _) = Rig::new(24);
    // The laptop slept from T0 to T0 + 130 s; codes 1 and 2 would have expired by now.
    let now = T0 + 130_000;
    let out = rig.poll(now);
    let shown: Vec<PairingLink> = events(&out)
        .into_iter()
        .filter_map(|e| match e {
            DesktopEvent::Code { link, .. } => Some(link),
            _ => None,
        })
        .collect();
    let last = shown.last().expect("a code is shown after waking");
    assert!(last.expires_at_ms > now);
    for link in &shown {
        assert!(
            link.expires_at_ms > now,
            "a code that expired at {} was shown at {now}",
            link.expires_at_ms
        );
    }
    for output in &out {
        if let Output::Subscribe(topic) = output {
            let link = shown
                .iter()
                .find(|l| &l.pairing_ref.topic() == topic)
                .unwrap();
            assert!(link.expires_at_ms > now, "subscribed to dead {topic}");
        }
    }
    // Whatever is shown last links.
    let index = rig.codes.len() - 1;
    rig.link(index, now + 1_000);
}

#[test]
fn a_desktop_that_wakes_after_the_last_code_expired_just_reports_it() {
    let (mut rig, _) = Rig::new(25);
    assert_eq!(
        rig.poll(T0 + 400_000),
        vec![
            Output::Unsubscribe(rig.topic(0)),
            Output::Event(DesktopEvent::Failed(PairingError::CodeExpired)),
        ]
    );
    assert_eq!(rig.codes.len(), 1, "no code is shown after the end");
}

#[test]
fn an_offer_arriving_just_after_the_last_code_expired_is_refused_as_expired() {
    let (mut rig, _) = Rig::new(26);
    while rig.codes.len() < 6 {
        let at = rig.desktop.next_deadline().unwrap();
        rig.poll(at);
    }
    // The phone scans the last code one second before the end; the desktop ends first.
    let (mut phone, offer) = rig.scan(5, T0 + 159_000);
    let ended = rig.poll(T0 + 160_000);
    assert!(ended.contains(&Output::Event(DesktopEvent::Failed(
        PairingError::CodeExpired
    ))));
    rig.expect_refusal(
        &mut phone,
        &offer,
        RejectReason::Expired,
        T0 + 160_500,
        T0 + 161_000,
    );
}

#[test]
fn the_previous_code_still_links_right_after_a_rotation() {
    let (mut rig, _) = Rig::new(5);
    rig.poll(T0 + 60_000);
    assert_eq!(rig.codes.len(), 2, "code 1 replaced code 0 on screen");
    // The phone scanned code 0 just before it was replaced; its offer arrives just after.
    let (linked, certificate, _) = rig.link(0, T0 + 59_900);
    assert_eq!(linked.certificate, certificate);
    assert_eq!(linked.offer.pairing_ref, rig.codes[0].pairing_ref);
}

#[test]
fn a_code_two_rotations_old_is_refused_as_expired_on_both_sides() {
    let (mut rig, _) = Rig::new(6);
    rig.poll(T0 + 60_000);
    // Scanned one second before it expires; the desktop rotates before the offer arrives.
    let (mut phone, offer) = rig.scan(0, T0 + 79_000);
    let rotated = rig.poll(T0 + 80_000);
    assert!(rotated.contains(&Output::Unsubscribe(rig.topic(0))));
    // The broker still delivers the offer (it was on its way).
    let refused = rig.deliver_to_desktop(&offer, T0 + 80_500);
    assert_eq!(
        events(&refused),
        vec![DesktopEvent::OfferRefused(RejectReason::Expired)]
    );
    let (topic, reject) = only_publish(&refused);
    assert_eq!(topic, rig.topic(0));
    assert_eq!(
        reject_reason(&reject, &rig.alice.phone, &rig.codes[0].pairing_ref),
        RejectReason::Expired
    );
    let told = rig.deliver_to_phone(&mut phone, &refused, T0 + 81_000);
    let failed = PairingError::Refused {
        by: "desktop",
        reason: RejectReason::Expired,
    };
    assert_eq!(
        told,
        vec![Output::Event(PhoneEvent::Failed(failed.clone()))]
    );
    assert_eq!(
        failed.to_string(),
        "the desktop refused the link: the QR code had expired"
    );
    assert_eq!(phone.next_deadline(), None);
    // The desktop keeps waiting, and the code on screen links.
    assert!(is_waiting(&rig.desktop));
    rig.link(2, T0 + 85_000);
}

#[test]
fn a_wrong_secret_is_refused_on_both_sides_and_the_right_scan_still_links() {
    let (mut rig, _) = Rig::new(7);
    let mut forged = rig.codes[0].clone();
    forged.secret = LinkSecret::random(&mut rig.rng);
    let (mut phone, offer) = rig.scan_link(forged, T0 + 10_000);
    rig.expect_refusal(
        &mut phone,
        &offer,
        RejectReason::WrongSecret,
        T0 + 10_100,
        T0 + 10_200,
    );
    // Nothing changed on the desktop: still waiting, no offer remembered.
    assert!(is_waiting(&rig.desktop));
    assert!(rig.desktop.seen_offers.is_empty());
    assert_eq!(rig.desktop.next_deadline(), Some(T0 + 60_000));
    let (linked, _, _) = rig.link(0, T0 + 20_000);
    assert_eq!(linked.device(), DeviceId::new(rig.alice.id(), 1));
}

#[test]
fn a_phone_refuses_a_code_that_already_expired_before_going_online() {
    let (mut rig, _) = Rig::new(8);
    let link = rig.codes[0].clone();
    for (late_by, ago_s) in [(0, 0), (1, 0), (12_345, 12), (3_600_000, 3600)] {
        let error = PhonePairing::start(
            link.clone(),
            &rig.alice.key,
            &rig.alice.phone,
            &rig.alice.list,
            contents(1, &rig.bob),
            link.expires_at_ms + late_by,
            &mut rig.rng,
        )
        .unwrap_err();
        assert_eq!(error, PairingError::ScannedExpired { ago_s });
    }
    assert_eq!(
        PairingError::ScannedExpired { ago_s: 12 }.to_string(),
        "this QR code expired 12 s ago; show a new code on the desktop and scan again"
    );
    // One millisecond earlier it was fine.
    rig.scan(0, link.expires_at_ms - 1);
}

#[test]
fn an_offer_replayed_to_a_restarted_desktop_does_not_open() {
    let (mut rig, _) = Rig::new(9);
    let (_phone, offer) = rig.scan(0, T0 + 5_000);
    let (_, payload) = only_publish(&offer);
    // The laptop restarts pairing with the same device keys, and with new keys.
    let same_keys = DeviceKeys::from_secret_bytes(&rig.desktop.keys().to_secret_bytes()).unwrap();
    let new_keys = DeviceKeys::generate(&mut rig.rng);
    for keys in [same_keys, new_keys] {
        let (mut fresh, out) = DesktopPairing::start(
            keys,
            LAPTOP,
            PLATFORM,
            BROKER,
            QrSchedule::default(),
            T0 + 10_000,
            &mut rig.rng,
        )
        .unwrap();
        let [DesktopEvent::Code { link, .. }] = &events(&out)[..] else {
            panic!("{out:?}")
        };
        // The old topic is not listened to any more.
        assert!(
            fresh
                .handle(&rig.topic(0), &payload, T0 + 10_100, &mut rig.rng)
                .is_empty()
        );
        // Replayed onto the new code's topic: sealed to another code (and maybe another key).
        let refused = fresh.handle(
            &link.pairing_ref.topic(),
            &payload,
            T0 + 10_100,
            &mut rig.rng,
        );
        assert_eq!(
            events(&refused),
            vec![DesktopEvent::OfferRefused(RejectReason::BadOffer(
                "it does not open with this device's key".into()
            ))]
        );
        assert!(is_waiting(&fresh));
    }
}

#[test]
fn an_offer_replayed_after_linking_is_refused_as_replayed() {
    let (mut rig, _) = Rig::new(10);
    let (mut phone, offer) = rig.scan(0, T0 + 5_000);
    let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
    let done = rig.deliver_to_phone(&mut phone, &answer, T0 + 5_200);
    let last = rig.deliver_to_desktop(&done, T0 + 5_300);
    assert!(matches!(events(&last)[..], [DesktopEvent::Linked(_)]));

    let again = rig.deliver_to_desktop(&offer, T0 + 6_000);
    assert_eq!(
        events(&again),
        vec![DesktopEvent::OfferRefused(RejectReason::Replayed)]
    );
    let (_, reject) = only_publish(&again);
    assert_eq!(
        reject_reason(&reject, &rig.alice.phone, &rig.codes[0].pairing_ref),
        RejectReason::Replayed
    );
    // And the Done again changes nothing either.
    assert!(rig.deliver_to_desktop(&done, T0 + 6_100).is_empty());
}

#[test]
fn the_same_offer_delivered_twice_while_answered_gets_the_same_answer_again() {
    let (mut rig, _) = Rig::new(11);
    let (mut phone, offer) = rig.scan(0, T0 + 5_000);
    let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
    let (topic, first) = only_publish(&answer);
    // QoS 1 delivers the offer a second time.
    let again = rig.deliver_to_desktop(&offer, T0 + 5_150);
    assert_eq!(
        again,
        vec![Output::Publish {
            topic,
            payload: first
        }]
    );
    // The phone takes the first answer and ignores the duplicate.
    let done = rig.deliver_to_phone(&mut phone, &answer, T0 + 5_200);
    assert!(matches!(events(&done)[..], [PhoneEvent::Linked { .. }]));
    assert!(
        rig.deliver_to_phone(&mut phone, &again, T0 + 5_210)
            .is_empty()
    );
    let last = rig.deliver_to_desktop(&done, T0 + 5_300);
    assert!(matches!(events(&last)[..], [DesktopEvent::Linked(_)]));
}

#[test]
fn a_second_phone_while_the_first_is_answered_is_told_the_desktop_is_busy() {
    let (mut rig, _) = Rig::new(12);
    let (mut phone, offer) = rig.scan(0, T0 + 5_000);
    let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);

    // Mallory saw the code too and scans it with her own account.
    let mallory = Account::new(&mut rig.rng, 0);
    let (mut intruder, intrusion) = PhonePairing::start(
        rig.codes[0].clone(),
        &mallory.key,
        &mallory.phone,
        &mallory.list,
        contents(1, &rig.bob),
        T0 + 5_120,
        &mut rig.rng,
    )
    .unwrap();
    let busy = rig.deliver_to_desktop(&intrusion, T0 + 5_150);
    assert_eq!(
        events(&busy),
        vec![DesktopEvent::OfferRefused(RejectReason::Busy)]
    );
    let (topic, payload) = only_publish(&busy);
    let told = intruder.handle(
        &topic,
        &payload,
        &mallory.key,
        &mallory.phone,
        T0 + 5_160,
        &mut rig.rng,
    );
    assert_eq!(
        events(&told),
        vec![PhoneEvent::Failed(PairingError::Refused {
            by: "desktop",
            reason: RejectReason::Busy
        })]
    );
    // Alice's phone does not act on a reject meant for another phone.
    assert!(
        rig.deliver_to_phone(&mut phone, &busy, T0 + 5_170)
            .is_empty()
    );

    // Alice's link goes through.
    let done = rig.deliver_to_phone(&mut phone, &answer, T0 + 5_200);
    let last = rig.deliver_to_desktop(&done, T0 + 5_300);
    let [DesktopEvent::Linked(linked)] = &events(&last)[..] else {
        panic!("{last:?}")
    };
    assert_eq!(linked.account(), rig.alice.id());
}

#[test]
fn an_offer_from_a_device_that_is_not_the_primary_is_refused() {
    let (mut rig, _) = Rig::with_devices(13, 1);
    // Alice's tablet (index 1) tries to link the laptop in the phone's place.
    let tablet = DeviceKeys::from_secret_bytes(&rig.alice.devices[0].to_secret_bytes()).unwrap();
    let (mut machine, offer) = PhonePairing::start(
        rig.codes[0].clone(),
        &rig.alice.key,
        &tablet,
        &rig.alice.list,
        contents(2, &rig.bob),
        T0 + 5_000,
        &mut rig.rng,
    )
    .unwrap();
    let refused = rig.deliver_to_desktop(&offer, T0 + 5_100);
    let expected = RejectReason::BadOffer("it was not sent by the account's primary device".into());
    assert_eq!(
        events(&refused),
        vec![DesktopEvent::OfferRefused(expected.clone())]
    );
    let (topic, payload) = only_publish(&refused);
    let told = machine.handle(
        &topic,
        &payload,
        &rig.alice.key,
        &tablet,
        T0 + 5_200,
        &mut rig.rng,
    );
    assert_eq!(
        events(&told),
        vec![PhoneEvent::Failed(PairingError::Refused {
            by: "desktop",
            reason: expected
        })]
    );
    assert!(is_waiting(&rig.desktop));
}

#[test]
fn an_offer_for_a_device_index_already_in_use_is_refused() {
    let (mut rig, _) = Rig::with_devices(14, 1);
    for index in [0, 1] {
        let (_, offer) = PhonePairing::start(
            rig.codes[0].clone(),
            &rig.alice.key,
            &rig.alice.phone,
            &rig.alice.list,
            contents(index, &rig.bob),
            T0 + 5_000,
            &mut rig.rng,
        )
        .unwrap();
        let refused = rig.deliver_to_desktop(&offer, T0 + 5_100);
        assert_eq!(
            events(&refused),
            vec![DesktopEvent::OfferRefused(RejectReason::BadOffer(format!(
                "device index {index} is already in use"
            )))]
        );
    }
    assert!(is_waiting(&rig.desktop));
}

#[test]
fn an_offer_whose_device_list_is_not_signed_by_the_account_is_refused() {
    let (mut rig, _) = Rig::new(15);
    let link = rig.codes[0].clone();
    let mallory = Account::new(&mut rig.rng, 0);
    // The genuine list with one signature byte flipped.
    let mut flipped = rig.alice.list.to_bytes().unwrap();
    *flipped.last_mut().unwrap() ^= 0x01;
    for list in [mallory.list.to_bytes().unwrap(), flipped] {
        let (mut phone, _) = rig.scan(0, T0 + 5_000);
        let mut offer = phone.offer().unwrap().clone();
        offer.device_list = list;
        let payload = rig.seal_offer(&link, &rig.alice.phone.clone_keys(), &offer);
        let refused = rig.desktop.handle(
            &link.pairing_ref.topic(),
            &payload,
            T0 + 5_100,
            &mut rig.rng,
        );
        let [DesktopEvent::OfferRefused(RejectReason::BadDeviceList(why))] = &events(&refused)[..]
        else {
            panic!("{refused:?}")
        };
        assert!(!why.is_empty());
        let told = rig.deliver_to_phone(&mut phone, &refused, T0 + 5_200);
        assert!(
            matches!(
                &events(&told)[..],
                [PhoneEvent::Failed(PairingError::Refused {
                    by: "desktop",
                    reason: RejectReason::BadDeviceList(_)
                })]
            ),
            "{told:?}"
        );
        assert!(is_waiting(&rig.desktop));
    }
    // The genuine offer still links.
    rig.link(0, T0 + 6_000);
}

#[test]
fn an_offer_for_another_code_or_from_another_time_is_refused_as_replayed() {
    let (mut rig, _) = Rig::new(16);
    let link = rig.codes[0].clone();
    let now = T0 + 5_000;
    let other_ref = PairingRef::random(&mut rig.rng);
    type Edit = Box<dyn Fn(&mut Offer)>;
    let edits: [(&str, Edit); 3] = [
        ("another code", Box::new(move |o| o.pairing_ref = other_ref)),
        (
            "made before the code was shown",
            Box::new(|o| o.created_at_ms = T0 - MAX_CLOCK_SKEW_MS - 1),
        ),
        (
            "made in the future",
            Box::new(move |o| o.created_at_ms = now + MAX_CLOCK_SKEW_MS + 1),
        ),
    ];
    for (story, edit) in edits {
        let (phone, _) = rig.scan(0, now);
        let mut offer = phone.offer().unwrap().clone();
        edit(&mut offer);
        let payload = rig.seal_offer(&link, &rig.alice.phone.clone_keys(), &offer);
        let refused = rig
            .desktop
            .handle(&link.pairing_ref.topic(), &payload, now, &mut rig.rng);
        assert_eq!(
            events(&refused),
            vec![DesktopEvent::OfferRefused(RejectReason::Replayed)],
            "{story}"
        );
    }
    // Within the allowed skew either way is fine.
    let (phone, _) = rig.scan(0, now);
    let mut offer = phone.offer().unwrap().clone();
    offer.created_at_ms = now + MAX_CLOCK_SKEW_MS;
    let payload = rig.seal_offer(&link, &rig.alice.phone.clone_keys(), &offer);
    let out = rig
        .desktop
        .handle(&link.pairing_ref.topic(), &payload, now, &mut rig.rng);
    assert!(
        matches!(events(&out)[..], [DesktopEvent::Answered { .. }]),
        "{out:?}"
    );
}

/// A Done the desktop must refuse, and how its list was made.
enum BadDone {
    CurrentList,
    OlderVersion,
    SameVersionWithTheLaptop,
    OtherAccount,
    FlippedSignature,
    WithoutTheLaptop,
    AnotherDeviceInItsPlace,
}

#[test]
fn a_done_with_an_old_forged_or_incomplete_list_fails_on_both_sides() {
    let cases = [
        BadDone::CurrentList,
        BadDone::OlderVersion,
        BadDone::SameVersionWithTheLaptop,
        BadDone::OtherAccount,
        BadDone::FlippedSignature,
        BadDone::WithoutTheLaptop,
        BadDone::AnotherDeviceInItsPlace,
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let (mut rig, _) = Rig::new(40 + u8::try_from(i).unwrap());
        let link = rig.codes[0].clone();
        let (mut phone, offer) = rig.scan(0, T0 + 5_000);
        let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
        let laptop = rig.open_answer(&link, &only_publish(&answer).1).certificate;
        let phone_cert = rig.alice.certs[0].clone();
        let list = match case {
            BadDone::CurrentList => rig.alice.list.clone(),
            BadDone::OlderVersion => rig.alice.list_with(0, vec![phone_cert, laptop]),
            BadDone::SameVersionWithTheLaptop => rig.alice.list_with(1, vec![phone_cert, laptop]),
            BadDone::OtherAccount => Account::new(&mut rig.rng, 1).list,
            BadDone::FlippedSignature => {
                let mut bytes = rig
                    .alice
                    .list_with(2, vec![phone_cert, laptop])
                    .to_bytes()
                    .unwrap();
                let at = bytes.len() - 10;
                bytes[at] ^= 0x20;
                SignedDeviceList::from_bytes(&bytes).unwrap()
            }
            BadDone::WithoutTheLaptop => rig.alice.list_with(2, vec![phone_cert]),
            BadDone::AnotherDeviceInItsPlace => {
                let stranger = DeviceKeys::generate(&mut rig.rng);
                let cert = DeviceCertificate::issue(
                    &rig.alice.key,
                    &stranger,
                    DeviceDescription {
                        index: 1,
                        keys: stranger.public_keys(),
                        name: LAPTOP.into(),
                        platform: PLATFORM.into(),
                        linked_at_ms: T0,
                    },
                )
                .unwrap();
                rig.alice.list_with(2, vec![phone_cert, cert])
            }
        };
        let offer_id = phone.offer().unwrap().offer_id;
        let done = rig.seal_done(&link, offer_id, &list.to_bytes().unwrap());
        let out = rig
            .desktop
            .handle(&link.pairing_ref.topic(), &done, T0 + 5_300, &mut rig.rng);
        let [
            DesktopEvent::Failed(PairingError::RefusedReply {
                from: "phone",
                reason: reason @ RejectReason::BadDeviceList(_),
            }),
        ] = &events(&out)[..]
        else {
            panic!("case {i}: {out:?}")
        };
        assert_eq!(
            rig.desktop.next_deadline(),
            None,
            "case {i}: the desktop ended"
        );
        // The phone (still waiting for the answer) is told why and stops.
        let told = rig.deliver_to_phone(&mut phone, &out, T0 + 5_400);
        assert_eq!(
            events(&told),
            vec![PhoneEvent::Failed(PairingError::Refused {
                by: "desktop",
                reason: reason.clone()
            })],
            "case {i}"
        );
    }
}

#[test]
fn a_done_for_another_offer_is_refused_as_replayed() {
    let (mut rig, _) = Rig::new(17);
    let link = rig.codes[0].clone();
    let (_phone, offer) = rig.scan(0, T0 + 5_000);
    let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
    let laptop = rig.open_answer(&link, &only_publish(&answer).1).certificate;
    let list = rig
        .alice
        .list_with(2, vec![rig.alice.certs[0].clone(), laptop]);
    let done = rig.seal_done(&link, [0xAB; 16], &list.to_bytes().unwrap());
    let out = rig
        .desktop
        .handle(&link.pairing_ref.topic(), &done, T0 + 5_300, &mut rig.rng);
    assert_eq!(
        events(&out),
        vec![DesktopEvent::Failed(PairingError::RefusedReply {
            from: "phone",
            reason: RejectReason::Replayed
        })]
    );
}

#[test]
fn a_done_sealed_by_hand_with_the_right_list_links_which_proves_the_refusals_above() {
    let (mut rig, _) = Rig::new(18);
    let link = rig.codes[0].clone();
    let (phone, offer) = rig.scan(0, T0 + 5_000);
    let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
    let laptop = rig.open_answer(&link, &only_publish(&answer).1).certificate;
    let list = rig
        .alice
        .list_with(2, vec![rig.alice.certs[0].clone(), laptop.clone()]);
    let done = rig.seal_done(
        &link,
        phone.offer().unwrap().offer_id,
        &list.to_bytes().unwrap(),
    );
    let out = rig
        .desktop
        .handle(&link.pairing_ref.topic(), &done, T0 + 5_300, &mut rig.rng);
    let [DesktopEvent::Linked(linked)] = &events(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(linked.certificate, laptop);
    assert_eq!(linked.device_list, list);
}

#[test]
fn a_tampered_answer_is_refused_by_the_phone_and_the_desktop_learns_why() {
    for (i, flip_at) in [1usize, 40, 64].into_iter().enumerate() {
        let (mut rig, _) = Rig::new(50 + u8::try_from(i).unwrap());
        let link = rig.codes[0].clone();
        let (mut phone, offer) = rig.scan(0, T0 + 5_000);
        let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
        let genuine = rig.open_answer(&link, &only_publish(&answer).1);
        // Flip one byte of the laptop's counter-signature (the last 64 bytes of the encoding).
        let mut bytes = genuine.certificate.to_bytes().unwrap();
        let at = bytes.len() - flip_at;
        bytes[at] ^= 0x04;
        let tampered = Answer {
            offer_id: genuine.offer_id,
            certificate: DeviceCertificate::from_bytes(&bytes).unwrap(),
        };
        let forged = rig.seal_answer(&link, &tampered);
        let out = phone.handle(
            &link.pairing_ref.topic(),
            &forged,
            &rig.alice.key,
            &rig.alice.phone,
            T0 + 5_200,
            &mut rig.rng,
        );
        let [
            PhoneEvent::Failed(PairingError::RefusedReply {
                from: "desktop",
                reason: reason @ RejectReason::BadAnswer(_),
            }),
        ] = &events(&out)[..]
        else {
            panic!("flip at -{flip_at}: {out:?}")
        };
        assert_eq!(phone.next_deadline(), None);
        // The phone told the desktop, which stops too.
        let told = rig.deliver_to_desktop(&out, T0 + 5_300);
        assert_eq!(
            events(&told),
            vec![DesktopEvent::Failed(PairingError::Refused {
                by: "phone",
                reason: reason.clone()
            })]
        );
        assert_eq!(rig.desktop.next_deadline(), None);
        // The genuine answer arriving afterwards changes nothing.
        assert!(
            rig.deliver_to_phone(&mut phone, &answer, T0 + 5_400)
                .is_empty()
        );
    }
}

#[test]
fn an_answer_to_another_offer_is_refused_as_replayed() {
    let (mut rig, _) = Rig::new(19);
    let link = rig.codes[0].clone();
    let (mut phone, offer) = rig.scan(0, T0 + 5_000);
    let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
    let mut other = rig.open_answer(&link, &only_publish(&answer).1);
    other.offer_id = [0x42; 16];
    let forged = rig.seal_answer(&link, &other);
    let out = phone.handle(
        &link.pairing_ref.topic(),
        &forged,
        &rig.alice.key,
        &rig.alice.phone,
        T0 + 5_200,
        &mut rig.rng,
    );
    assert_eq!(
        events(&out),
        vec![PhoneEvent::Failed(PairingError::RefusedReply {
            from: "desktop",
            reason: RejectReason::Replayed
        })]
    );
}

#[test]
fn a_phone_gives_up_when_no_answer_comes_within_the_reply_timeout() {
    let (mut rig, _) = Rig::new(20);
    let (mut phone, offer) = rig.scan(0, T0 + 5_000);
    let deadline = T0 + 5_000 + REPLY_TIMEOUT_MS;
    assert_eq!(phone.next_deadline(), Some(deadline));
    assert!(phone.poll(deadline - 1).is_empty());
    let out = phone.poll(deadline);
    let failed = PairingError::NoReply { from: "desktop" };
    assert_eq!(out, vec![Output::Event(PhoneEvent::Failed(failed.clone()))]);
    assert_eq!(failed.to_string(), "no reply from the desktop within 30 s");
    assert_eq!(phone.next_deadline(), None);
    assert!(phone.poll(deadline + 1).is_empty());
    // An answer that comes after all is ignored.
    let answer = rig.deliver_to_desktop(&offer, deadline + 10);
    assert!(
        rig.deliver_to_phone(&mut phone, &answer, deadline + 20)
            .is_empty()
    );
}

#[test]
fn a_desktop_gives_up_when_the_phone_never_confirms() {
    let (mut rig, _) = Rig::new(21);
    let (mut phone, offer) = rig.scan(0, T0 + 5_000);
    let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
    let deadline = T0 + 5_100 + REPLY_TIMEOUT_MS;
    assert_eq!(rig.desktop.next_deadline(), Some(deadline));
    assert!(rig.poll(deadline - 1).is_empty());
    assert_eq!(
        rig.poll(deadline),
        vec![Output::Event(DesktopEvent::Failed(PairingError::NoReply {
            from: "phone"
        }))]
    );
    assert_eq!(rig.desktop.next_deadline(), None);
    // A Done that comes after all is ignored.
    let done = rig.deliver_to_phone(&mut phone, &answer, deadline + 10);
    assert!(rig.deliver_to_desktop(&done, deadline + 20).is_empty());
}

#[test]
fn each_side_ignores_its_own_messages_and_other_topics() {
    let (mut rig, _) = Rig::new(22);
    let (mut phone, offer) = rig.scan(0, T0 + 5_000);
    let (topic, offer_payload) = only_publish(&offer);
    // The broker echoes the phone's offer back to the phone.
    assert!(
        phone
            .handle(
                &topic,
                &offer_payload,
                &rig.alice.key,
                &rig.alice.phone,
                T0 + 5_010,
                &mut rig.rng
            )
            .is_empty()
    );
    // An offer on a topic the desktop never showed.
    let elsewhere = PairingRef::random(&mut rig.rng).topic();
    assert!(
        rig.desktop
            .handle(&elsewhere, &offer_payload, T0 + 5_020, &mut rig.rng)
            .is_empty()
    );
    let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
    let (_, answer_payload) = only_publish(&answer);
    // The desktop's answer echoed back to it, and the answer on another topic for the phone.
    assert!(
        rig.desktop
            .handle(&topic, &answer_payload, T0 + 5_110, &mut rig.rng)
            .is_empty()
    );
    assert!(
        phone
            .handle(
                &elsewhere,
                &answer_payload,
                &rig.alice.key,
                &rig.alice.phone,
                T0 + 5_120,
                &mut rig.rng
            )
            .is_empty()
    );
    // An offer sealed with the desktop's own key as sender is not taken for a phone's.
    let link = rig.codes[0].clone();
    let own = rig.desktop.keys().clone_keys();
    let offer_copy = phone.offer().unwrap().clone();
    let spoofed = rig.seal_offer(&link, &own, &offer_copy);
    assert!(
        rig.desktop
            .handle(&topic, &spoofed, T0 + 5_130, &mut rig.rng)
            .is_empty()
    );
    // The pairing itself is unharmed.
    let done = rig.deliver_to_phone(&mut phone, &answer, T0 + 5_200);
    let last = rig.deliver_to_desktop(&done, T0 + 5_300);
    assert!(matches!(events(&last)[..], [DesktopEvent::Linked(_)]));
}

#[test]
fn a_desktop_refuses_to_start_with_a_name_or_schedule_that_cannot_work() {
    let mut rng = ChaCha20Rng::from_seed([23; 32]);
    let bad = [
        ("", PLATFORM, BROKER, QrSchedule::default()),
        (LAPTOP, "", BROKER, QrSchedule::default()),
        (LAPTOP, PLATFORM, "tcp://broker", QrSchedule::default()),
        (
            LAPTOP,
            PLATFORM,
            BROKER,
            QrSchedule {
                first_ms: 0,
                ..QrSchedule::default()
            },
        ),
        (
            LAPTOP,
            PLATFORM,
            BROKER,
            QrSchedule {
                every_ms: -1,
                ..QrSchedule::default()
            },
        ),
    ];
    for (name, platform, broker, schedule) in bad {
        let result = DesktopPairing::start(
            DeviceKeys::generate(&mut rng),
            name,
            platform,
            broker,
            schedule,
            T0,
            &mut rng,
        );
        assert!(
            matches!(result, Err(PairingError::Local(_))),
            "{name:?} {platform:?} {broker:?} {schedule:?}"
        );
    }
}

#[test]
fn wire_decode_refuses_oversized_and_trailing_bytes() {
    let too_big = vec![0u8; MAX_PAIRING_MESSAGE_LEN + 1];
    assert_eq!(
        Wire::decode(&too_big),
        Err(format!(
            "{} bytes is too large",
            MAX_PAIRING_MESSAGE_LEN + 1
        ))
    );
    let mut bytes = Wire::Answer {
        sealed: vec![1, 2, 3],
    }
    .encode()
    .unwrap();
    assert_eq!(
        Wire::decode(&bytes),
        Ok(Wire::Answer {
            sealed: vec![1, 2, 3]
        })
    );
    bytes.push(0);
    assert_eq!(Wire::decode(&bytes), Err("1 trailing bytes".into()));
    assert!(Wire::decode(&[]).is_err());
    assert!(Wire::decode(&[9]).is_err(), "no fifth kind of message");
}

/// `DeviceKeys` is not `Clone` on purpose; tests copy keys through their secret bytes.
trait CloneKeys {
    fn clone_keys(&self) -> DeviceKeys;
}

impl CloneKeys for DeviceKeys {
    fn clone_keys(&self) -> DeviceKeys {
        DeviceKeys::from_secret_bytes(&self.to_secret_bytes()).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn wire_decode_of_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(wire) = Wire::decode(&bytes) {
            // Whatever decodes re-encodes to a message that decodes the same.
            prop_assert_eq!(Wire::decode(&wire.encode().unwrap()), Ok(wire));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_payloads_on_a_code_topic_never_link_anything(
        seed in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (mut rig, _) = Rig::new(seed);
        let (mut phone, offer) = rig.scan(0, T0 + 5_000);
        let topic = rig.topic(0);
        // Random bytes, and random bodies in each well-formed kind of message.
        let mut payloads = vec![body.clone()];
        let from = rig.alice.phone.public_keys().x25519;
        for wire in [
            Wire::Offer { from, sealed: body.clone() },
            Wire::Answer { sealed: body.clone() },
            Wire::Done { sealed: body.clone() },
            Wire::Reject { from: *rig.codes[0].keys.dh(), sealed: body },
        ] {
            payloads.push(wire.encode().unwrap());
        }
        for payload in &payloads {
            let out = rig.desktop.handle(&topic, payload, T0 + 5_100, &mut rig.rng);
            prop_assert!(events(&out).iter().all(|e| matches!(e, DesktopEvent::OfferRefused(_))), "{:?}", out);
            let out = phone.handle(&topic, payload, &rig.alice.key, &rig.alice.phone, T0 + 5_100, &mut rig.rng);
            prop_assert!(out.is_empty(), "{:?}", out);
        }
        // And the genuine exchange still completes.
        let answer = rig.deliver_to_desktop(&offer, T0 + 5_200);
        let done = rig.deliver_to_phone(&mut phone, &answer, T0 + 5_300);
        let last = rig.deliver_to_desktop(&done, T0 + 5_400);
        prop_assert!(matches!(events(&last)[..], [DesktopEvent::Linked(_)]));
    }

    #[test]
    fn mutated_offers_are_never_answered(
        seed in any::<u8>(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
    ) {
        let (mut rig, _) = Rig::new(seed);
        let (_phone, offer) = rig.scan(0, T0 + 5_000);
        let (topic, mut payload) = only_publish(&offer);
        for &(at, xor) in &flips {
            let len = payload.len();
            payload[at % len] ^= xor;
        }
        prop_assume!(payload != only_publish(&offer).1);
        let out = rig.desktop.handle(&topic, &payload, T0 + 5_100, &mut rig.rng);
        prop_assert!(
            events(&out).iter().all(|e| matches!(e, DesktopEvent::OfferRefused(_))),
            "{:?}",
            out
        );
        prop_assert!(is_waiting(&rig.desktop));
    }

    #[test]
    fn mutated_answers_and_dones_never_link(
        seed in any::<u8>(),
        at in any::<usize>(),
        xor in 1u8..=255,
    ) {
        let (mut rig, _) = Rig::new(seed);
        let (mut phone, offer) = rig.scan(0, T0 + 5_000);
        let answer = rig.deliver_to_desktop(&offer, T0 + 5_100);
        let (topic, mut bad_answer) = only_publish(&answer);
        let len = bad_answer.len();
        bad_answer[at % len] ^= xor;
        let out = phone.handle(&topic, &bad_answer, &rig.alice.key, &rig.alice.phone, T0 + 5_200, &mut rig.rng);
        prop_assert!(out.is_empty(), "{:?}", out);
        let done = rig.deliver_to_phone(&mut phone, &answer, T0 + 5_300);
        let (_, mut bad_done) = only_publish(&done);
        let len = bad_done.len();
        bad_done[at % len] ^= xor;
        let out = rig.desktop.handle(&topic, &bad_done, T0 + 5_400, &mut rig.rng);
        prop_assert!(out.is_empty(), "{:?}", out);
        // The genuine Done still links.
        let last = rig.deliver_to_desktop(&done, T0 + 5_500);
        prop_assert!(matches!(events(&last)[..], [DesktopEvent::Linked(_)]));
    }
}

// ------------------------------------------------------------------------------------------
// Bridge mode: alice links her office desktop to her phone's bridge. Same QR flow, same
// machines; the offer carries the bridge URL and key, and no device of the account changes.

const BRIDGE_URL: &str = "ws://192.168.1.20:7070";
const DESK: &str = "Office desktop";

/// Alice, bob, and alice's desktop showing bridge-mode codes.
struct BridgeRig {
    rng: ChaCha20Rng,
    alice: Account,
    bob: AccountKey,
    /// The phone's bridge key (its public half).
    phone_bridge: [u8; 32],
    /// The desktop's bridge key (its public half).
    desk_bridge: [u8; 32],
    desktop: DesktopPairing,
    codes: Vec<PairingLink>,
}

impl BridgeRig {
    fn new(seed: u8) -> Self {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let alice = Account::new(&mut rng, 1);
        let bob = AccountKey::generate(&mut rng);
        let phone_bridge = DeviceKeys::generate(&mut rng).public_keys().x25519;
        let desk_bridge = DeviceKeys::generate(&mut rng).public_keys().x25519;
        let pairing_keys = DeviceKeys::generate(&mut rng);
        let (desktop, out) = DesktopPairing::start_bridge(
            pairing_keys,
            desk_bridge,
            DESK,
            PLATFORM,
            BROKER,
            QrSchedule::default(),
            T0,
            &mut rng,
        )
        .unwrap();
        let codes = events(&out)
            .into_iter()
            .filter_map(|e| match e {
                DesktopEvent::Code { link, .. } => Some(link),
                _ => None,
            })
            .collect();
        Self {
            rng,
            alice,
            bob,
            phone_bridge,
            desk_bridge,
            desktop,
            codes,
        }
    }

    fn contents(&self) -> BridgeOfferContents {
        BridgeOfferContents {
            account_name: "Alice".into(),
            bridge_url: BRIDGE_URL.into(),
            bridge_key: self.phone_bridge,
            contacts: vec![OfferContact {
                account_key: self.bob.public_key(),
                name: "Bob".into(),
            }],
        }
    }

    fn scan_link(
        &mut self,
        link: PairingLink,
        now: i64,
    ) -> Result<(PhonePairing, Vec<PhoneOutput>), PairingError> {
        let contents = self.contents();
        PhonePairing::start_bridge(
            link,
            &self.alice.key,
            &self.alice.phone,
            &self.alice.list,
            contents,
            now,
            &mut self.rng,
        )
    }

    fn deliver_desktop(&mut self, phone_out: &[PhoneOutput], now: i64) -> Vec<DesktopOutput> {
        let mut out = Vec::new();
        for (topic, payload) in published(phone_out) {
            out.extend(self.desktop.handle(&topic, &payload, now, &mut self.rng));
        }
        out
    }

    fn deliver_phone(
        &mut self,
        phone: &mut PhonePairing,
        desktop_out: &[DesktopOutput],
        now: i64,
    ) -> Vec<PhoneOutput> {
        let mut out = Vec::new();
        for (topic, payload) in published(desktop_out) {
            out.extend(phone.handle(
                &topic,
                &payload,
                &self.alice.key,
                &self.alice.phone,
                now,
                &mut self.rng,
            ));
        }
        out
    }

    /// Seals `plain` (an encoded offer) with the MAC of `secret` from `from` to the code.
    fn seal_raw(
        &mut self,
        link: &PairingLink,
        secret: &LinkSecret,
        from: &DeviceKeys,
        mut plain: Vec<u8>,
    ) -> Vec<u8> {
        let sender = from.public_keys().x25519;
        let mut mac = offer_mac(secret, &link.pairing_ref, &sender);
        mac.update(&plain);
        plain.extend_from_slice(&mac.finalize().into_bytes());
        let sealed = oneshot::seal(
            from,
            link.keys.dh(),
            &info(OFFER_INFO, &link.pairing_ref),
            &link.pairing_ref.0,
            &plain,
            &mut self.rng,
        )
        .unwrap();
        Wire::Offer {
            from: sender,
            sealed,
        }
        .encode()
        .unwrap()
    }
}

#[test]
fn a_bridge_desktop_links_with_the_same_qr_flow_and_learns_the_phones_bridge() {
    let mut rig = BridgeRig::new(60);
    let link = rig.codes[0].clone();
    assert_eq!(link.mode(), crate::link::LinkMode::Bridge);
    assert_eq!(link.keys.bridge(), Some(&rig.desk_bridge));
    assert_eq!(link.keys.dh(), &rig.desktop.keys().public_keys().x25519);
    assert!(link.to_string().contains("mode=bridge"));

    // The phone scans and offers: no certificate, no broker login, the list unchanged.
    let (mut phone, offer) = rig.scan_link(link.clone(), T0 + 5_000).unwrap();
    assert!(phone.offer().is_none());
    let sent = phone.bridge_offer().unwrap().clone();
    assert_eq!(sent.bridge_url, BRIDGE_URL);
    assert_eq!(sent.bridge_key, rig.phone_bridge);
    assert_eq!(sent.account(), rig.alice.id());
    assert_eq!(sent.device_list, rig.alice.list.to_bytes().unwrap());

    // The desktop verifies and answers with its bridge key.
    let answer = rig.deliver_desktop(&offer, T0 + 5_100);
    assert_eq!(
        events(&answer),
        vec![DesktopEvent::BridgeAnswered {
            account: rig.alice.id(),
            account_name: "Alice".into(),
        }]
    );
    assert!(rig.desktop.answered().is_none(), "no pending device link");

    // The phone authorises that key and confirms.
    let done = rig.deliver_phone(&mut phone, &answer, T0 + 5_200);
    assert_eq!(
        events(&done),
        vec![PhoneEvent::BridgeLinked(BridgeDesktop {
            bridge_key: rig.desk_bridge,
            name: DESK.into(),
            platform: PLATFORM.into(),
            linked_at_ms: T0 + 5_200,
        })]
    );
    assert!(
        matches!(done[0], Output::Event(_)),
        "the phone stores before it confirms"
    );
    assert_eq!(phone.next_deadline(), None);

    let last = rig.deliver_desktop(&done, T0 + 5_300);
    let [DesktopEvent::BridgeLinked(linked)] = &events(&last)[..] else {
        panic!("the desktop did not link: {last:?}")
    };
    assert_eq!(linked.offer, sent);
    assert_eq!(linked.bridge_key, rig.desk_bridge);
    assert_eq!(linked.account(), rig.alice.id());
    assert_eq!(linked.offer.contacts.len(), 1);
    assert_eq!(rig.desktop.next_deadline(), None);
}

#[test]
fn a_bridge_offer_with_the_wrong_secret_is_refused_and_the_phone_is_told() {
    let mut rig = BridgeRig::new(61);
    let mut link = rig.codes[0].clone();
    link.secret = LinkSecret::from_bytes([9; 32]);
    let (mut phone, offer) = rig.scan_link(link, T0 + 1_000).unwrap();
    let refused = rig.deliver_desktop(&offer, T0 + 1_100);
    assert_eq!(
        events(&refused),
        vec![DesktopEvent::OfferRefused(RejectReason::WrongSecret)]
    );
    let told = rig.deliver_phone(&mut phone, &refused, T0 + 1_200);
    assert_eq!(
        events(&told),
        vec![PhoneEvent::Failed(PairingError::Refused {
            by: "desktop",
            reason: RejectReason::WrongSecret
        })]
    );
    assert!(matches!(rig.desktop.state, DesktopState::Waiting));
}

#[test]
fn an_expired_bridge_code_is_refused_by_the_phone_and_by_the_desktop() {
    let mut rig = BridgeRig::new(62);
    let link = rig.codes[0].clone();
    let late = link.expires_at_ms + 2_000;
    assert_eq!(
        rig.scan_link(link.clone(), late).unwrap_err(),
        PairingError::ScannedExpired { ago_s: 2 }
    );
    // A phone with a slow clock offers anyway: the desktop checks with its own.
    let (mut phone, offer) = rig.scan_link(link.clone(), T0 + 1_000).unwrap();
    let refused = rig.deliver_desktop(&offer, link.expires_at_ms);
    assert_eq!(
        events(&refused),
        vec![DesktopEvent::OfferRefused(RejectReason::Expired)]
    );
    let told = rig.deliver_phone(&mut phone, &refused, link.expires_at_ms + 100);
    assert!(matches!(
        events(&told)[..],
        [PhoneEvent::Failed(PairingError::Refused {
            reason: RejectReason::Expired,
            ..
        })]
    ));
}

#[test]
fn a_replayed_bridge_offer_gets_the_same_answer_or_a_refusal_never_a_second_link() {
    let mut rig = BridgeRig::new(63);
    let link = rig.codes[0].clone();
    let (mut phone, offer) = rig.scan_link(link, T0 + 1_000).unwrap();
    let answer = rig.deliver_desktop(&offer, T0 + 1_100);
    // Delivered twice (QoS 1): the same answer again, no new event.
    let again = rig.deliver_desktop(&offer, T0 + 1_150);
    assert_eq!(published(&again), published(&answer));
    assert!(events(&again).is_empty());
    let done = rig.deliver_phone(&mut phone, &answer, T0 + 1_200);
    let linked = rig.deliver_desktop(&done, T0 + 1_300);
    assert!(matches!(
        events(&linked)[..],
        [DesktopEvent::BridgeLinked(_)]
    ));
    // After the link, the recorded offer is refused as replayed.
    let replayed = rig.deliver_desktop(&offer, T0 + 1_400);
    assert_eq!(
        events(&replayed),
        vec![DesktopEvent::OfferRefused(RejectReason::Replayed)]
    );
    // The phone ended: a second answer changes nothing.
    assert!(
        rig.deliver_phone(&mut phone, &answer, T0 + 1_500)
            .is_empty()
    );
}

#[test]
fn a_declined_bridge_link_ends_both_sides_with_the_reason() {
    let mut rig = BridgeRig::new(64);
    let link = rig.codes[0].clone();
    let (_phone, offer) = rig.scan_link(link.clone(), T0 + 1_000).unwrap();
    let answer = rig.deliver_desktop(&offer, T0 + 1_100);
    assert!(matches!(
        events(&answer)[..],
        [DesktopEvent::BridgeAnswered { .. }]
    ));
    // The phone's user cancels after the answer: it refuses and says so.
    let payload = seal_reject(
        &rig.alice.phone,
        link.keys.dh(),
        &link.pairing_ref,
        None,
        RejectReason::Cancelled,
        &mut rig.rng,
    )
    .unwrap();
    let out = rig.desktop.handle(
        &link.pairing_ref.topic(),
        &payload,
        T0 + 1_200,
        &mut rig.rng,
    );
    assert_eq!(
        events(&out),
        vec![DesktopEvent::Failed(PairingError::Refused {
            by: "phone",
            reason: RejectReason::Cancelled
        })]
    );
    assert_eq!(rig.desktop.next_deadline(), None);
}

#[test]
fn modes_do_not_mix_a_bridge_code_is_never_linked_as_a_device_nor_the_reverse() {
    let mut rig = BridgeRig::new(65);
    let bridge_link = rig.codes[0].clone();
    let error = PhonePairing::start(
        bridge_link,
        &rig.alice.key,
        &rig.alice.phone,
        &rig.alice.list,
        contents(2, &rig.bob),
        T0 + 1_000,
        &mut rig.rng,
    )
    .unwrap_err();
    assert!(matches!(error, PairingError::Local(ref why) if why.contains("bridge-mode")));

    let (multi, _) = Rig::new(66);
    let device_link = multi.codes[0].clone();
    let error = rig.scan_link(device_link, T0 + 1_000).unwrap_err();
    assert!(matches!(error, PairingError::Local(ref why) if why.contains("multi-device")));

    // A multi-device offer that reaches a bridge desktop does not decode as a bridge offer.
    let link = rig.codes[0].clone();
    let mut plain_rig = Rig::new(67).0;
    let (phone, _) = plain_rig.scan(0, T0 + 1_000);
    let plain = postcard::to_allocvec(phone.offer().unwrap()).unwrap();
    let secret = link.secret.clone();
    let phone_keys = rig.alice.phone.clone_keys();
    let payload = rig.seal_raw(&link, &secret, &phone_keys, plain);
    let out = rig.deliver_desktop(
        &[Output::Publish {
            topic: link.pairing_ref.topic(),
            payload,
        }],
        T0 + 1_100,
    );
    assert!(matches!(
        events(&out)[..],
        [DesktopEvent::OfferRefused(RejectReason::BadOffer(_))]
    ));
}

#[test]
fn a_bridge_offer_is_checked_before_it_is_answered() {
    let mut rig = BridgeRig::new(68);
    let link = rig.codes[0].clone();
    let (phone, _) = rig.scan_link(link.clone(), T0 + 1_000).unwrap();
    let good = phone.bridge_offer().unwrap().clone();
    let mallory = Account::new(&mut rig.rng, 0);
    let tablet = rig.alice.devices[0].clone_keys();
    let phone_keys = rig.alice.phone.clone_keys();
    let mut one = [0u8; 32];
    one[0] = 1;
    /// A story, the offer, its sender, and what the refusal must say.
    type Case = (
        &'static str,
        BridgeOffer,
        DeviceKeys,
        fn(&RejectReason) -> bool,
    );
    let cases: Vec<Case> = vec![
        (
            "a bad bridge URL",
            BridgeOffer {
                bridge_url: "http://192.168.1.20".into(),
                ..good.clone()
            },
            phone_keys.clone_keys(),
            |r| matches!(r, RejectReason::BadOffer(why) if why.contains("ws://")),
        ),
        (
            "a bridge key of small order",
            BridgeOffer {
                bridge_key: one,
                ..good.clone()
            },
            phone_keys.clone_keys(),
            |r| matches!(r, RejectReason::BadOffer(why) if why.contains("small order")),
        ),
        (
            "the desktop's own bridge key",
            BridgeOffer {
                bridge_key: rig.desk_bridge,
                ..good.clone()
            },
            phone_keys.clone_keys(),
            |r| matches!(r, RejectReason::BadOffer(_)),
        ),
        (
            "another account's key over alice's list",
            BridgeOffer {
                account_key: mallory.key.public_key(),
                ..good.clone()
            },
            phone_keys.clone_keys(),
            |r| matches!(r, RejectReason::BadDeviceList(_)),
        ),
        (
            "sent by a device that is not the primary",
            BridgeOffer {
                offer_id: [1; 16],
                ..good.clone()
            },
            tablet,
            |r| matches!(r, RejectReason::BadOffer(why) if why.contains("primary")),
        ),
    ];
    for (i, (story, mut offer, from, expected)) in cases.into_iter().enumerate() {
        offer.offer_id[15] = u8::try_from(i).unwrap() + 100;
        let plain = postcard::to_allocvec(&offer).unwrap();
        let secret = link.secret.clone();
        let payload = rig.seal_raw(&link, &secret, &from, plain);
        let out = rig.desktop.handle(
            &link.pairing_ref.topic(),
            &payload,
            T0 + 1_100,
            &mut rig.rng,
        );
        let [DesktopEvent::OfferRefused(reason)] = &events(&out)[..] else {
            panic!("{story}: {out:?}")
        };
        assert!(expected(reason), "{story}: {reason:?}");
        assert!(
            matches!(rig.desktop.state, DesktopState::Waiting),
            "{story}"
        );
    }
    // And the phone refuses to offer a bad URL in the first place.
    let mut contents = rig.contents();
    contents.bridge_url = "ws://".into();
    let error = PhonePairing::start_bridge(
        link,
        &rig.alice.key,
        &rig.alice.phone,
        &rig.alice.list,
        contents,
        T0 + 1_000,
        &mut rig.rng,
    )
    .unwrap_err();
    assert_eq!(
        error,
        PairingError::Local("the bridge URL has no host".into())
    );
}

#[test]
fn the_phone_authorises_only_the_bridge_key_of_the_code_it_scanned() {
    let mut rig = BridgeRig::new(69);
    let link = rig.codes[0].clone();
    let (mut phone, _) = rig.scan_link(link.clone(), T0 + 1_000).unwrap();
    let offer_id = phone.bridge_offer().unwrap().offer_id;
    let body = postcard::to_allocvec(&BridgeAnswer {
        offer_id,
        bridge_key: rig.phone_bridge,
    })
    .unwrap();
    let sealed = oneshot::seal(
        rig.desktop.keys(),
        &rig.alice.phone.public_keys().x25519,
        &info(ANSWER_INFO, &link.pairing_ref),
        &link.pairing_ref.0,
        &body,
        &mut rig.rng,
    )
    .unwrap();
    let payload = Wire::Answer { sealed }.encode().unwrap();
    let out = phone.handle(
        &link.pairing_ref.topic(),
        &payload,
        &rig.alice.key,
        &rig.alice.phone,
        T0 + 1_100,
        &mut rig.rng,
    );
    let reason = RejectReason::BadAnswer("the bridge key is not the one in the QR code".into());
    assert_eq!(
        events(&out),
        vec![PhoneEvent::Failed(PairingError::RefusedReply {
            from: "desktop",
            reason: reason.clone()
        })]
    );
    let (_, reject) = only_publish(&out);
    assert_eq!(
        reject_reason(&reject, rig.desktop.keys(), &link.pairing_ref),
        reason
    );
}

#[test]
fn a_confirmation_for_another_key_is_refused_by_the_desktop() {
    let mut rig = BridgeRig::new(70);
    let link = rig.codes[0].clone();
    let (phone, offer) = rig.scan_link(link.clone(), T0 + 1_000).unwrap();
    let answer = rig.deliver_desktop(&offer, T0 + 1_100);
    assert!(matches!(
        events(&answer)[..],
        [DesktopEvent::BridgeAnswered { .. }]
    ));
    let body = postcard::to_allocvec(&BridgeDone {
        offer_id: phone.bridge_offer().unwrap().offer_id,
        bridge_key: rig.phone_bridge,
    })
    .unwrap();
    let sealed = oneshot::seal(
        &rig.alice.phone,
        link.keys.dh(),
        &info(DONE_INFO, &link.pairing_ref),
        &link.pairing_ref.0,
        &body,
        &mut rig.rng,
    )
    .unwrap();
    let payload = Wire::Done { sealed }.encode().unwrap();
    let out = rig.desktop.handle(
        &link.pairing_ref.topic(),
        &payload,
        T0 + 1_200,
        &mut rig.rng,
    );
    assert!(matches!(
        events(&out)[..],
        [DesktopEvent::Failed(PairingError::RefusedReply {
            from: "phone",
            reason: RejectReason::BadAnswer(_)
        })]
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes never panic the bridge decoders: a typed error or a value.
    #[test]
    fn random_bytes_never_panic_the_bridge_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = strict::<BridgeOffer>(&bytes);
        let _ = strict::<BridgeAnswer>(&bytes);
        let _ = strict::<BridgeDone>(&bytes);
    }

    /// A genuine bridge offer with bytes flipped, cut or added, then sealed and authenticated
    /// properly (so it reaches the decoder): the desktop refuses it with a reason or, when the
    /// edit left a valid offer, answers it; it never panics and never links on its own.
    #[test]
    fn mutated_bridge_offers_are_refused_or_answered_never_a_panic(
        seed in 100u8..140,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in proptest::option::of(any::<usize>()),
        extra in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let mut rig = BridgeRig::new(seed);
        let link = rig.codes[0].clone();
        let (phone, _) = rig.scan_link(link.clone(), T0 + 1_000).unwrap();
        let mut plain = postcard::to_allocvec(phone.bridge_offer().unwrap()).unwrap();
        for (at, xor) in flips {
            let n = plain.len();
            if let Some(b) = plain.get_mut(at % n) {
                *b ^= xor;
            }
        }
        if let Some(cut) = cut {
            plain.truncate(cut % (plain.len() + 1));
        }
        plain.extend_from_slice(&extra);
        let secret = link.secret.clone();
        let keys = rig.alice.phone.clone_keys();
        let payload = rig.seal_raw(&link, &secret, &keys, plain);
        let out = rig.desktop.handle(&link.pairing_ref.topic(), &payload, T0 + 1_100, &mut rig.rng);
        let seen = events(&out);
        prop_assert_eq!(seen.len(), 1);
        prop_assert!(matches!(
            seen[0],
            DesktopEvent::OfferRefused(_) | DesktopEvent::BridgeAnswered { .. }
        ), "{:?}", seen);
    }
}

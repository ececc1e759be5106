//! Stories about pairwise sessions: alice's phone writes to bob's phone; messages arrive late,
//! twice, forged, or after a restart; sessions roll over and the receiver follows.

use proptest::prelude::*;

use super::*;
use crate::rng::{ChaCha20Rng, SeedableRng};
use crate::testkit::Person;

/// Alice's phone and bob's phone, each with its pairwise state towards the other.
struct Pair {
    alice: Person,
    bob: Person,
    alice_to_bob: PairwiseSession,
    bob_from_alice: PairwiseSession,
    rng: ChaCha20Rng,
    now_ms: i64,
}

impl Pair {
    fn new() -> Self {
        let alice = Person::with_phone(1);
        let bob = Person::with_phone(2);
        let (a, b) = (alice.device(0).id, bob.device(0).id);
        Self {
            alice,
            bob,
            alice_to_bob: PairwiseSession::new(a, b),
            bob_from_alice: PairwiseSession::new(b, a),
            rng: ChaCha20Rng::from_seed([42; 32]),
            now_ms: 1_700_000_000_000,
        }
    }

    /// Alice seals `text`; returns the header, the aad used and the ciphertext.
    fn alice_seals(&mut self, text: &str) -> (SessionHeader, Vec<u8>, Vec<u8>) {
        self.alice_seals_with(text, &RekeyPolicy::default())
    }

    fn alice_seals_with(
        &mut self,
        text: &str,
        policy: &RekeyPolicy,
    ) -> (SessionHeader, Vec<u8>, Vec<u8>) {
        let session = self
            .alice_to_bob
            .outbound(
                &self.alice.device(0).keys,
                &self.bob.device(0).keys.public_keys(),
                self.now_ms,
                policy,
                &mut self.rng,
            )
            .unwrap();
        let (header, key) = session.next_key().unwrap();
        let aad = format!("header {}", header.counter).into_bytes();
        let ciphertext = key.seal(&aad, text.as_bytes()).unwrap();
        (header, aad, ciphertext)
    }

    fn bob_opens(&mut self, sealed: &(SessionHeader, Vec<u8>, Vec<u8>)) -> Result<String> {
        let (header, aad, ciphertext) = sealed;
        self.bob_from_alice
            .open(
                &self.bob.device(0).keys,
                &self.alice.device(0).keys.public_keys(),
                header,
                aad,
                ciphertext,
                self.now_ms,
            )
            .map(|p| String::from_utf8(p.to_vec()).unwrap())
    }
}

#[test]
fn alice_writes_and_bob_reads_in_order() {
    let mut pair = Pair::new();
    for i in 0..5 {
        let sealed = pair.alice_seals(&format!("hello {i}"));
        assert_eq!(sealed.0.counter, i);
        assert_eq!(pair.bob_opens(&sealed).unwrap(), format!("hello {i}"));
    }
    let inbound = &pair.bob_from_alice.inbound_sessions()[0];
    assert_eq!(inbound.next_counter(), 5);
    assert_eq!(inbound.skipped_keys(), 0);
}

#[test]
fn the_first_message_may_be_lost_and_later_ones_arrive_out_of_order() {
    let mut pair = Pair::new();
    let sealed: Vec<_> = (0..6).map(|i| pair.alice_seals(&format!("m{i}"))).collect();
    // m0 is lost; m3 arrives first and sets the session up; then m1, m5, m2, m4.
    for i in [3, 1, 5, 2, 4] {
        assert_eq!(pair.bob_opens(&sealed[i]).unwrap(), format!("m{i}"));
    }
    // m0 arrives at last too, from the skipped window.
    assert_eq!(pair.bob_opens(&sealed[0]).unwrap(), "m0");
    assert_eq!(pair.bob_from_alice.inbound_sessions()[0].skipped_keys(), 0);
}

#[test]
fn a_message_opened_once_is_refused_the_second_time() {
    let mut pair = Pair::new();
    let first = pair.alice_seals("once");
    let later = pair.alice_seals("later");
    pair.bob_opens(&later).unwrap();
    pair.bob_opens(&first).unwrap();
    for again in [&first, &later] {
        assert!(matches!(
            pair.bob_opens(again),
            Err(Error::Replay { counter, .. }) if counter == again.0.counter
        ));
    }
}

#[test]
fn a_counter_beyond_the_window_is_refused() {
    let mut pair = Pair::new();
    let mut sealed = pair.alice_seals("x");
    sealed.0.counter = MAX_SKIP + 1;
    assert!(matches!(
        pair.bob_opens(&sealed),
        Err(Error::TooFarAhead { .. })
    ));
}

#[test]
fn forgeries_change_nothing_and_do_not_burn_real_keys() {
    let mut pair = Pair::new();
    let real0 = pair.alice_seals("zero");
    pair.bob_opens(&real0).unwrap();
    let real1 = pair.alice_seals("one");
    let real2 = pair.alice_seals("two");
    // A forger copies the header of message 2 with garbage, and tampers with message 1's aad.
    let garbage = (real2.0, real2.1.clone(), vec![0u8; real2.2.len()]);
    assert_eq!(pair.bob_opens(&garbage), Err(Error::BadTag));
    let mut wrong_aad = real1.clone();
    wrong_aad.1.push(b'!');
    assert_eq!(pair.bob_opens(&wrong_aad), Err(Error::BadTag));
    let inbound = &pair.bob_from_alice.inbound_sessions()[0];
    assert_eq!((inbound.next_counter(), inbound.skipped_keys()), (1, 0));
    // The real messages still open.
    assert_eq!(pair.bob_opens(&real2).unwrap(), "two");
    assert_eq!(pair.bob_opens(&real1).unwrap(), "one");
}

#[test]
fn a_session_set_up_by_someone_else_never_opens() {
    let mut pair = Pair::new();
    // Mallory runs the HPKE setup from her own key towards bob, claiming to be alice's phone.
    let mallory = Person::with_phone(3);
    let mut fake = PairwiseSession::new(pair.alice.device(0).id, pair.bob.device(0).id);
    let session = fake
        .outbound(
            &mallory.device(0).keys,
            &pair.bob.device(0).keys.public_keys(),
            pair.now_ms,
            &RekeyPolicy::default(),
            &mut pair.rng,
        )
        .unwrap();
    let (header, key) = session.next_key().unwrap();
    let forged = (header, b"h".to_vec(), key.seal(b"h", b"hi bob").unwrap());
    assert_eq!(pair.bob_opens(&forged), Err(Error::BadTag));
    assert!(pair.bob_from_alice.inbound_sessions().is_empty());
}

#[test]
fn a_known_session_is_refused_when_the_list_holds_another_key() {
    let mut pair = Pair::new();
    let sealed = pair.alice_seals("hi");
    pair.bob_opens(&sealed).unwrap();
    let next = pair.alice_seals("again");
    let other = Person::with_phone(9).device(0).keys.public_keys();
    let result = pair.bob_from_alice.open(
        &pair.bob.device(0).keys,
        &other,
        &next.0,
        &next.1,
        &next.2,
        pair.now_ms,
    );
    assert!(
        matches!(result, Err(Error::KeyMismatch { device }) if device == pair.alice.device(0).id)
    );
}

#[test]
fn sessions_restored_from_bytes_continue_on_both_sides() {
    let mut pair = Pair::new();
    let m0 = pair.alice_seals("before restart");
    let m1 = pair.alice_seals("skipped for now");
    let m2 = pair.alice_seals("after");
    pair.bob_opens(&m0).unwrap();
    pair.bob_opens(&m2).unwrap();

    let alice_bytes = pair.alice_to_bob.to_bytes().unwrap();
    let bob_bytes = pair.bob_from_alice.to_bytes().unwrap();
    pair.alice_to_bob = PairwiseSession::from_bytes(&alice_bytes).unwrap();
    pair.bob_from_alice = PairwiseSession::from_bytes(&bob_bytes).unwrap();

    assert_eq!(pair.bob_opens(&m1).unwrap(), "skipped for now");
    assert!(matches!(pair.bob_opens(&m0), Err(Error::Replay { .. })));
    let m3 = pair.alice_seals("still the same session");
    assert_eq!(m3.0.session_id, m0.0.session_id);
    assert_eq!(m3.0.counter, 3);
    assert_eq!(pair.bob_opens(&m3).unwrap(), "still the same session");
}

#[test]
fn state_bytes_hide_nothing_in_debug_and_decoding_is_strict() {
    let mut pair = Pair::new();
    let m0 = pair.alice_seals("x");
    pair.bob_opens(&m0).unwrap();
    let debug = format!("{:?} {:?}", pair.alice_to_bob, pair.bob_from_alice);
    assert!(debug.contains("OutboundSession") && debug.contains("InboundSession"));
    assert!(!debug.contains("chain"), "{debug}");

    let bytes = pair.bob_from_alice.to_bytes().unwrap();
    let mut trailing = bytes.to_vec();
    trailing.push(0);
    assert!(PairwiseSession::from_bytes(&trailing).is_err());
    let mut newer = bytes.to_vec();
    newer[0] = 9;
    assert!(matches!(
        PairwiseSession::from_bytes(&newer),
        Err(Error::UnsupportedFormat { found: 9, .. })
    ));
}

#[test]
fn after_the_message_limit_a_new_session_starts_and_the_receiver_follows() {
    let mut pair = Pair::new();
    let policy = RekeyPolicy {
        max_messages: 3,
        max_age_ms: RekeyPolicy::DEFAULT_MAX_AGE_MS,
    };
    let old: Vec<_> = (0..3)
        .map(|i| pair.alice_seals_with(&format!("old {i}"), &policy))
        .collect();
    for m in &old[..2] {
        pair.bob_opens(m).unwrap();
    }
    let new = pair.alice_seals_with("new 0", &policy);
    assert_ne!(new.0.session_id, old[0].0.session_id);
    assert_ne!(new.0.enc, old[0].0.enc);
    assert_eq!(new.0.counter, 0);
    assert_eq!(pair.bob_opens(&new).unwrap(), "new 0");
    // The last message of the old session arrives late and still opens.
    assert_eq!(pair.bob_opens(&old[2]).unwrap(), "old 2");
    assert_eq!(pair.bob_from_alice.inbound_sessions().len(), 2);
}

#[test]
fn after_the_age_limit_a_new_session_starts() {
    let mut pair = Pair::new();
    let first = pair.alice_seals("monday");
    pair.now_ms += RekeyPolicy::DEFAULT_MAX_AGE_MS - 1;
    let same = pair.alice_seals("sunday");
    assert_eq!(same.0.session_id, first.0.session_id);
    pair.now_ms += 1;
    let fresh = pair.alice_seals("next monday");
    assert_ne!(fresh.0.session_id, first.0.session_id);
    assert_eq!(pair.bob_opens(&fresh).unwrap(), "next monday");
}

#[test]
fn a_relinked_remote_gets_a_new_outbound_session() {
    let mut pair = Pair::new();
    let first = pair.alice_seals("to the old keys");
    let new_bob = Person::with_phone(8);
    let session = pair
        .alice_to_bob
        .outbound(
            &pair.alice.device(0).keys,
            &new_bob.device(0).keys.public_keys(),
            pair.now_ms,
            &RekeyPolicy::default(),
            &mut pair.rng,
        )
        .unwrap();
    assert_ne!(session.id(), first.0.session_id);
    assert_eq!(
        session.remote_x25519(),
        &new_bob.device(0).keys.public_keys().x25519
    );
}

#[test]
fn only_a_few_inbound_sessions_are_kept() {
    let mut pair = Pair::new();
    let policy = RekeyPolicy {
        max_messages: 1,
        max_age_ms: i64::MAX,
    };
    let mut sealed = Vec::new();
    for i in 0..(MAX_INBOUND_SESSIONS + 2) {
        pair.now_ms += 1;
        let m = pair.alice_seals_with(&format!("s{i}"), &policy);
        pair.bob_opens(&m).unwrap();
        sealed.push(m);
    }
    assert_eq!(
        pair.bob_from_alice.inbound_sessions().len(),
        MAX_INBOUND_SESSIONS
    );
    let kept: Vec<_> = pair
        .bob_from_alice
        .inbound_sessions()
        .iter()
        .map(InboundSession::id)
        .collect();
    assert!(!kept.contains(&sealed[0].0.session_id));
    assert!(kept.contains(&sealed.last().unwrap().0.session_id));
}

#[test]
fn the_skipped_window_is_bounded() {
    let mut pair = Pair::new();
    let policy = RekeyPolicy {
        max_messages: u32::MAX,
        max_age_ms: i64::MAX,
    };
    let mut last = None;
    for i in 0..=(MAX_SKIP + 10) {
        let m = pair.alice_seals_with(&format!("{i}"), &policy);
        if i == MAX_SKIP || i == MAX_SKIP + 10 {
            pair.bob_opens(&m).unwrap();
        }
        if i == 5 {
            last = Some(m);
        }
    }
    let inbound = &pair.bob_from_alice.inbound_sessions()[0];
    assert!(inbound.skipped_keys() <= MAX_SKIPPED_KEYS);
    // Message 5's key was among the oldest and was dropped.
    assert!(matches!(
        pair.bob_opens(&last.unwrap()),
        Err(Error::Replay { .. })
    ));
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let run = || {
        let mut pair = Pair::new();
        let (header, _, ciphertext) = pair.alice_seals("deterministic");
        (
            header,
            ciphertext,
            pair.alice_to_bob.to_bytes().unwrap().to_vec(),
        )
    };
    assert_eq!(run(), run());
    let mut pair = Pair::new();
    pair.rng = ChaCha20Rng::from_seed([43; 32]);
    let (other, _, _) = pair.alice_seals("deterministic");
    assert_ne!(other.session_id, run().0.session_id);
}

#[test]
fn small_order_keys_cannot_start_a_session() {
    let mut pair = Pair::new();
    let mut bad = pair.bob.device(0).keys.public_keys();
    bad.x25519 = [0u8; 32];
    let result = pair.alice_to_bob.outbound(
        &pair.alice.device(0).keys,
        &bad,
        pair.now_ms,
        &RekeyPolicy::default(),
        &mut pair.rng,
    );
    assert!(matches!(result, Err(Error::NonContributory { .. })));
    // A small-order enc in a header is refused as non-contributory.
    let mut sealed = pair.alice_seals("x");
    sealed.0.enc = [0u8; 32];
    sealed.0.session_id = SessionId([7; 16]);
    assert!(matches!(
        pair.bob_opens(&sealed),
        Err(Error::NonContributory { .. })
    ));
}

/// Bob's pairwise state after a few messages, encoded once for the mutation test.
static SAMPLE_STATE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut pair = Pair::new();
    let sealed: Vec<_> = (0..4).map(|i| pair.alice_seals(&format!("{i}"))).collect();
    pair.bob_opens(&sealed[3]).unwrap();
    pair.bob_opens(&sealed[1]).unwrap();
    pair.bob_from_alice.to_bytes().unwrap().to_vec()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_the_state_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = PairwiseSession::from_bytes(&bytes);
    }

    #[test]
    fn mutated_state_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)
    ) {
        let mut bytes = SAMPLE_STATE.clone();
        for (at, xor) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        if let Ok(state) = PairwiseSession::from_bytes(&bytes) {
            let _ = state.to_bytes();
        }
    }
}

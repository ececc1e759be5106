use super::*;
use crate::testkit::{deleted, key};

#[test]
fn the_memory_log_passes_the_conformance_check() {
    check_event_log(&mut MemoryEventLog::new()).unwrap();
}

/// A log that forgets acknowledgements and reuses numbers: the check must catch it.
#[derive(Default)]
struct Forgetful(MemoryEventLog);

impl EventLog for Forgetful {
    fn append_logged(&mut self, body: EventBody) -> Result<u64> {
        self.0.append_logged(body)
    }
    fn head(&self) -> Result<u64> {
        self.0.head()
    }
    fn first_kept(&self) -> Result<u64> {
        self.0.first_kept()
    }
    fn read_after(&self, after: u64, max: usize) -> Result<Vec<LoggedEvent>> {
        self.0.read_after(after, max)
    }
    fn acked(&self, _: &PublicKey) -> Result<u64> {
        Ok(0)
    }
    fn record_ack(&mut self, _: &PublicKey, _: u64) -> Result<()> {
        Ok(())
    }
    fn drop_through(&mut self, through: u64) -> Result<u64> {
        self.0.drop_through(through)
    }
}

#[test]
fn the_conformance_check_catches_a_broken_log() {
    let err = check_event_log(&mut Forgetful::default()).unwrap_err();
    assert!(err.contains("acknowledgement"), "{err}");
}

#[test]
fn unlogged_events_cannot_be_published() {
    let mut log = MemoryEventLog::new();
    let presence = EventBody::Presence {
        account: tandem_crypto::AccountId::from_bytes([1; 16]),
        online: true,
        last_seen: None,
    };
    assert!(matches!(
        log.publish(presence),
        Err(Error::WrongEventKind { .. })
    ));
    assert!(log.is_empty());
}

#[test]
fn the_cursor_takes_the_next_event_skips_old_ones_and_stops_at_a_gap() {
    let mut cursor = EventCursor::new(3);
    assert_eq!(cursor.observe(2).unwrap(), Sighting::AlreadySeen);
    assert_eq!(cursor.observe(3).unwrap(), Sighting::AlreadySeen);
    assert_eq!(cursor.observe(4).unwrap(), Sighting::New);
    assert_eq!(cursor.observe(6), Err(Error::EventGap { last: 4, got: 6 }));
    assert_eq!(cursor.last(), 4);
    cursor.restart_before(10);
    assert_eq!(cursor.observe(10).unwrap(), Sighting::New);
}

#[test]
fn pruning_drops_what_every_desktop_has_and_what_exceeds_the_bound() {
    let (a, b) = (key(2).public_key(), key(3).public_key());
    let mut log = MemoryEventLog::new();
    for n in 1..=20 {
        log.publish(deleted(n)).unwrap();
    }
    log.record_ack(&a, 12).unwrap();
    log.record_ack(&b, 7).unwrap();

    let pruned = prune(&mut log, [&a, &b], 100).unwrap();
    assert_eq!(
        pruned,
        Pruned {
            dropped: 7,
            through: 7,
            behind: vec![]
        }
    );
    assert_eq!(log.first_kept().unwrap(), 8);

    // b stays behind; the bound of 5 kept events wins over its acknowledgement.
    let pruned = prune(&mut log, [&a, &b], 5).unwrap();
    assert_eq!(pruned.through, 15);
    assert_eq!(pruned.dropped, 8);
    let mut behind = pruned.behind.clone();
    behind.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(behind, expected);
    assert_eq!(log.len(), 5);

    // With no desktop authorised, nothing needs keeping.
    let none: [&PublicKey; 0] = [];
    assert_eq!(prune(&mut log, none, 100).unwrap().dropped, 5);
    assert_eq!(log.head().unwrap(), 20);
    assert_eq!(log.first_kept().unwrap(), 21);
}

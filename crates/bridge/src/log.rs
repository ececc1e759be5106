//! Catch-up: the phone's event log, the desktop's cursor, and the pruning rule.
//!
//! Every logged event gets the next sequence number of **one global log** on the phone (not
//! one per desktop): every desktop sees the same account, so they all read the same log, each
//! from its own cursor. Sequence numbers start at 1, grow by one, and are never reused, even
//! after pruning.
//!
//! - On connect the desktop sends its cursor (the last sequence number it stored); the phone
//!   sends every kept event after it, in order, then live ones, on the same ordered channel
//!   ([`crate::phone::PhoneSession::pump_events`] reads the log past what the connection was
//!   sent, so replay and live events are one stream with no gap and no repeat).
//! - The desktop's [`EventCursor`] reports an event at or below its cursor as already seen
//!   (a resend after a reconnect: it stores nothing), and one beyond `cursor + 1` as a gap
//!   ([`Error::EventGap`]): it closes and reconnects with its cursor.
//! - The desktop acknowledges what it stored durably (`Ack { up_to }`); the phone records the
//!   highest acknowledgement per desktop. Events every authorised desktop acknowledged may be
//!   dropped; so may events beyond the bound on the log's length. A desktop whose cursor is
//!   older than the oldest kept event is told to sync history again
//!   ([`crate::handshake::CatchUp::Resync`]).
//!
//! Storage is the [`EventLog`] trait (the engine backs it with SQLite); [`MemoryEventLog`] is
//! the in-memory one; [`check_event_log`] is the conformance check every implementation must
//! pass.

use std::collections::BTreeMap;

use crate::keys::PublicKey;
use crate::message::EventBody;
use crate::{Error, Result};

/// Events read from the log at most at once.
pub const READ_BATCH: usize = 256;

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Its sequence number (from 1).
    pub seq: u64,
    /// The event.
    pub body: EventBody,
}

/// The phone's durable event log. Implementations report storage failures as
/// [`Error::EventLog`].
pub trait EventLog {
    /// Appends a logged body with the next sequence number (`head() + 1`) and returns it.
    /// Called through [`EventLog::publish`], which refuses unlogged bodies.
    ///
    /// # Errors
    /// [`Error::EventLog`].
    fn append_logged(&mut self, body: EventBody) -> Result<u64>;

    /// The last sequence number given out (0 before the first event). Never goes down.
    ///
    /// # Errors
    /// [`Error::EventLog`].
    fn head(&self) -> Result<u64>;

    /// The oldest sequence number still kept; `head() + 1` when nothing is kept.
    ///
    /// # Errors
    /// [`Error::EventLog`].
    fn first_kept(&self) -> Result<u64>;

    /// Up to `max` kept events with `seq > after`, in order.
    ///
    /// # Errors
    /// [`Error::EventLog`].
    fn read_after(&self, after: u64, max: usize) -> Result<Vec<LoggedEvent>>;

    /// The highest sequence number `desktop` acknowledged (0 for none).
    ///
    /// # Errors
    /// [`Error::EventLog`].
    fn acked(&self, desktop: &PublicKey) -> Result<u64>;

    /// Records an acknowledgement; a lower one than recorded changes nothing.
    ///
    /// # Errors
    /// [`Error::EventLog`].
    fn record_ack(&mut self, desktop: &PublicKey, up_to: u64) -> Result<()>;

    /// Drops every kept event with `seq <= through`; returns how many were dropped.
    ///
    /// # Errors
    /// [`Error::EventLog`].
    fn drop_through(&mut self, through: u64) -> Result<u64>;

    /// Appends a logged event and returns its sequence number.
    ///
    /// # Errors
    /// [`Error::WrongEventKind`] for typing, presence and sync (sent, never logged);
    /// [`Error::EventLog`].
    fn publish(&mut self, body: EventBody) -> Result<u64> {
        if !body.is_logged() {
            return Err(Error::WrongEventKind {
                reason: "typing, presence and history sync are not logged",
            });
        }
        self.append_logged(body)
    }
}

/// An in-memory [`EventLog`].
#[derive(Debug, Clone, Default)]
pub struct MemoryEventLog {
    head: u64,
    events: BTreeMap<u64, EventBody>,
    acks: BTreeMap<PublicKey, u64>,
}

impl MemoryEventLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Events kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl EventLog for MemoryEventLog {
    fn append_logged(&mut self, body: EventBody) -> Result<u64> {
        let seq = self.head.checked_add(1).ok_or(Error::EventLog {
            reason: "sequence numbers exhausted".into(),
        })?;
        self.head = seq;
        self.events.insert(seq, body);
        Ok(seq)
    }

    fn head(&self) -> Result<u64> {
        Ok(self.head)
    }

    fn first_kept(&self) -> Result<u64> {
        Ok(self
            .events
            .keys()
            .next()
            .copied()
            .unwrap_or(self.head.saturating_add(1)))
    }

    fn read_after(&self, after: u64, max: usize) -> Result<Vec<LoggedEvent>> {
        Ok(self
            .events
            .range(after.saturating_add(1)..)
            .take(max)
            .map(|(seq, body)| LoggedEvent {
                seq: *seq,
                body: body.clone(),
            })
            .collect())
    }

    fn acked(&self, desktop: &PublicKey) -> Result<u64> {
        Ok(self.acks.get(desktop).copied().unwrap_or(0))
    }

    fn record_ack(&mut self, desktop: &PublicKey, up_to: u64) -> Result<()> {
        let entry = self.acks.entry(*desktop).or_insert(0);
        *entry = (*entry).max(up_to);
        Ok(())
    }

    fn drop_through(&mut self, through: u64) -> Result<u64> {
        let kept = self.events.split_off(&through.saturating_add(1));
        let dropped = std::mem::replace(&mut self.events, kept);
        Ok(dropped.len() as u64)
    }
}

/// What the pruning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Events dropped.
    pub dropped: u64,
    /// Every event up to this one is gone.
    pub through: u64,
    /// Authorised desktops that had not acknowledged everything dropped: at their next
    /// connection they are told to sync history again, unless their cursor is newer.
    pub behind: Vec<PublicKey>,
}

/// The pruning rule: drop what every authorised desktop acknowledged, and whatever lies more
/// than `max_kept` events behind the head.
///
/// # Errors
/// [`Error::EventLog`].
pub fn prune<'a>(
    log: &mut impl EventLog,
    authorised: impl IntoIterator<Item = &'a PublicKey>,
    max_kept: u64,
) -> Result<Pruned> {
    let head = log.head()?;
    let mut acks = Vec::new();
    for desktop in authorised {
        acks.push((*desktop, log.acked(desktop)?));
    }
    let all_acked = acks.iter().map(|(_, a)| *a).min().unwrap_or(head).min(head);
    let through = all_acked.max(head.saturating_sub(max_kept));
    let dropped = log.drop_through(through)?;
    let behind = acks
        .into_iter()
        .filter(|(_, acked)| *acked < through)
        .map(|(desktop, _)| desktop)
        .collect();
    Ok(Pruned {
        dropped,
        through,
        behind,
    })
}

/// How a desktop saw an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// The next one: store it.
    New,
    /// At or below the cursor: stored before, store nothing.
    AlreadySeen,
}

/// The desktop's position in the phone's log: the last sequence number it took in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    last: u64,
}

impl EventCursor {
    /// A cursor after `last` (0 for a desktop that has seen nothing).
    #[must_use]
    pub fn new(last: u64) -> Self {
        Self { last }
    }

    /// The last sequence number taken in.
    #[must_use]
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Takes in logged event `seq` (never 0): new (and advances), already seen, or a gap.
    ///
    /// # Errors
    /// [`Error::EventGap`] when `seq > last + 1`; the cursor stays where it was.
    pub fn observe(&mut self, seq: u64) -> Result<Sighting> {
        if seq <= self.last {
            Ok(Sighting::AlreadySeen)
        } else if seq == self.last.saturating_add(1) {
            self.last = seq;
            Ok(Sighting::New)
        } else {
            Err(Error::EventGap {
                last: self.last,
                got: seq,
            })
        }
    }

    /// Moves to just before `next_seq` (after the phone said the events before it are gone).
    pub fn restart_before(&mut self, next_seq: u64) {
        self.last = next_seq.saturating_sub(1);
    }
}

/// The conformance check of an [`EventLog`], to run on a fresh, empty implementation (the
/// in-memory one passes it in this crate's tests; the engine runs it on its SQLite one).
///
/// # Errors
/// A description of the first rule broken.
pub fn check_event_log(log: &mut impl EventLog) -> std::result::Result<(), String> {
    use crate::message::EventBody as B;
    let fail = |what: &str| Err(format!("event log conformance: {what}"));
    let e = |e: Error| format!("event log conformance: storage failed: {e}");
    let chat = tandem_proto::ChatId([7; 16]);
    let message = |n: u8| {
        tandem_proto::MessageId::derived(1_700_000_000_000, b"conformance", &[n])
            .map_err(|e| format!("event log conformance: {e}"))
    };
    let deleted = |n: u8| -> std::result::Result<EventBody, String> {
        Ok(B::Deleted {
            chat,
            message: message(n)?,
        })
    };
    let desktop = PublicKey::from_bytes([9; 32]).map_err(e)?;

    if log.head().map_err(e)? != 0 || log.first_kept().map_err(e)? != 1 {
        return fail("a new log must have head 0 and first_kept 1");
    }
    let typing = B::Typing {
        chat,
        who: tandem_crypto::AccountId::from_bytes([1; 16]),
        on: true,
    };
    if log.publish(typing).is_ok() {
        return fail("publish must refuse an unlogged event");
    }
    for n in 1..=5u8 {
        if log.publish(deleted(n)?).map_err(e)? != u64::from(n) {
            return fail("sequence numbers must be 1, 2, 3...");
        }
    }
    let read = log.read_after(2, 2).map_err(e)?;
    if read.iter().map(|ev| ev.seq).collect::<Vec<_>>() != [3, 4] {
        return fail("read_after(2, 2) must give events 3 and 4");
    }
    if read.first().map(|ev| &ev.body) != Some(&deleted(3)?) {
        return fail("read_after must give the bodies as published");
    }
    if log.acked(&desktop).map_err(e)? != 0 {
        return fail("an unknown desktop has acknowledged 0");
    }
    log.record_ack(&desktop, 4).map_err(e)?;
    log.record_ack(&desktop, 2).map_err(e)?;
    if log.acked(&desktop).map_err(e)? != 4 {
        return fail("a lower acknowledgement must not replace a higher one");
    }
    if log.drop_through(3).map_err(e)? != 3 {
        return fail("drop_through(3) must drop 3 events");
    }
    if log.first_kept().map_err(e)? != 4 || log.read_after(0, 10).map_err(e)?.len() != 2 {
        return fail("after drop_through(3) events 4 and 5 remain");
    }
    log.drop_through(5).map_err(e)?;
    if log.head().map_err(e)? != 5 || log.first_kept().map_err(e)? != 6 {
        return fail("an emptied log keeps its head; first_kept is head + 1");
    }
    if log.publish(deleted(6)?).map_err(e)? != 6 {
        return fail("sequence numbers are never reused after pruning");
    }
    Ok(())
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;

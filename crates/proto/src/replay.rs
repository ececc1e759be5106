//! Replay detection by message id. MQTT QoS 1 delivers at least once, senders retry from their
//! outbox, and a replayed old envelope can re-create a forgotten session: so after a body opens,
//! its message id is checked against every id seen before. The store implements
//! [`ReplayGuard`] on SQLite; [`MemoryReplayGuard`] is the bounded in-memory one.

use std::collections::{BTreeSet, VecDeque};

use crate::MessageId;

/// The id was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message {id} was already received")]
pub struct Replay {
    /// The repeated id.
    pub id: MessageId,
}

/// Remembers which message ids were received.
pub trait ReplayGuard {
    /// Refuses an id seen before; otherwise remembers it.
    fn check_and_remember(&mut self, id: &MessageId) -> Result<(), Replay>;
}

/// An in-memory guard that remembers the last `capacity` ids (oldest forgotten first).
#[derive(Debug, Clone)]
pub struct MemoryReplayGuard {
    capacity: usize,
    seen: BTreeSet<MessageId>,
    order: VecDeque<MessageId>,
}

impl MemoryReplayGuard {
    /// A guard remembering at most `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: BTreeSet::new(),
            order: VecDeque::new(),
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl ReplayGuard for MemoryReplayGuard {
    fn check_and_remember(&mut self, id: &MessageId) -> Result<(), Replay> {
        if !self.seen.insert(*id) {
            return Err(Replay { id: *id });
        }
        self.order.push_back(*id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId::derived(1000, b"test", &[n]).unwrap()
    }

    #[test]
    fn a_second_sighting_is_refused_until_the_id_is_forgotten() {
        let mut guard = MemoryReplayGuard::new(2);
        assert!(guard.is_empty());
        guard.check_and_remember(&id(1)).unwrap();
        assert_eq!(guard.check_and_remember(&id(1)), Err(Replay { id: id(1) }));
        guard.check_and_remember(&id(2)).unwrap();
        guard.check_and_remember(&id(3)).unwrap();
        assert_eq!(guard.len(), 2);
        // id 1 fell out of the window.
        guard.check_and_remember(&id(1)).unwrap();
        assert!(guard.check_and_remember(&id(3)).is_err());
    }
}

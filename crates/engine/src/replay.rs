//! The replay-detection hook on the store: [`tandem_proto::ReplayGuard`] over the store's
//! `seen_envelopes` table, inside the same transaction that stores what the envelope carried,
//! so an envelope is remembered exactly when its effects are stored.

use tandem_proto::{MessageId, Replay, ReplayGuard};
use tandem_store::Writer;

/// Remembers received message ids in the store. Fails closed: if the store cannot record an
/// id, the envelope is refused (the broker delivers it again later) and the failure is kept for
/// the caller to log and return.
pub struct StoreReplayGuard<'w, 'c> {
    writer: &'w mut Writer<'c>,
    now_ms: i64,
    failure: Option<tandem_store::Error>,
}

impl std::fmt::Debug for StoreReplayGuard<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReplayGuard")
            .field("now_ms", &self.now_ms)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl<'w, 'c> StoreReplayGuard<'w, 'c> {
    /// A guard writing through `writer`, stamping ids with `now_ms`.
    pub fn new(writer: &'w mut Writer<'c>, now_ms: i64) -> Self {
        Self {
            writer,
            now_ms,
            failure: None,
        }
    }

    /// The store error behind the last refusal, if a refusal came from the store failing.
    pub fn take_failure(&mut self) -> Option<tandem_store::Error> {
        self.failure.take()
    }
}

impl ReplayGuard for StoreReplayGuard<'_, '_> {
    fn check_and_remember(&mut self, id: &MessageId) -> Result<(), Replay> {
        let key = tandem_store::MessageId(uuid::Uuid::from_bytes(*id.as_bytes()));
        match self.writer.remember_envelope(key, self.now_ms) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Replay { id: *id }),
            Err(e) => {
                tracing::warn!(%id, error = %e, "cannot record a received message id; refusing it for now");
                self.failure = Some(e);
                Err(Replay { id: *id })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tandem_crypto::rng::{ChaCha20Rng, SeedableRng};
    use tandem_store::{Store, StoreKey};

    use super::*;

    #[test]
    fn an_id_is_accepted_once_even_after_the_store_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let key = StoreKey::from_bytes([7; 32]);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let id = MessageId::new_v7(1_700_000_000_000, &mut rng).unwrap();
        let other = MessageId::new_v7(1_700_000_000_001, &mut rng).unwrap();

        let store = Store::open(&path, &key).unwrap();
        store
            .write(|w| -> tandem_store::Result<()> {
                let mut guard = StoreReplayGuard::new(w, 1);
                assert!(guard.check_and_remember(&id).is_ok());
                assert_eq!(guard.check_and_remember(&id), Err(Replay { id }));
                assert!(
                    guard.take_failure().is_none(),
                    "a replay is not a store failure"
                );
                Ok(())
            })
            .unwrap();
        drop(store);

        let store = Store::open(&path, &key).unwrap();
        store
            .write(|w| -> tandem_store::Result<()> {
                let mut guard = StoreReplayGuard::new(w, 2);
                assert_eq!(guard.check_and_remember(&id), Err(Replay { id }));
                assert!(guard.check_and_remember(&other).is_ok());
                Ok(())
            })
            .unwrap();
    }
}

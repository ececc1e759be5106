//! Test people with phones and laptops, their device lists, and helpers to send envelopes
//! between them. Seeded: every run produces the same bytes.

use tandem_crypto::rng::{ChaCha20Rng, SeedableRng};
use tandem_crypto::{
    AccountKey, DeviceCertificate, DeviceDescription, DeviceId, DeviceKeys, DeviceList,
    PairwiseSession, RekeyPolicy,
};

use crate::{
    Body, ChatRef, Envelope, Flags, MemoryReplayGuard, MessageId, Opened, Result, SealParams,
    open_envelope, seal_envelope,
};

pub(crate) const T0: i64 = 1_700_000_000_000;

/// One device with its keys.
pub(crate) struct Device {
    pub(crate) id: DeviceId,
    pub(crate) keys: DeviceKeys,
    pub(crate) cert: DeviceCertificate,
}

/// A person: account key, devices (0 = phone), current device list.
pub(crate) struct Person {
    pub(crate) account: AccountKey,
    pub(crate) devices: Vec<Device>,
    pub(crate) list: DeviceList,
}

impl Person {
    pub(crate) fn new(rng: &mut ChaCha20Rng) -> Self {
        let account = AccountKey::generate(rng);
        let phone = new_device(&account, 0, "phone", rng);
        let list = DeviceList::new(account.public_key(), 1, T0, vec![phone.cert.clone()]).unwrap();
        Self {
            account,
            devices: vec![phone],
            list,
        }
    }

    /// Links a new device and publishes the next list version.
    pub(crate) fn link(&mut self, name: &str, rng: &mut ChaCha20Rng) -> u32 {
        let index = u32::try_from(self.devices.len()).unwrap();
        self.devices
            .push(new_device(&self.account, index, name, rng));
        self.list = self
            .list
            .successor(T0, self.devices.iter().map(|d| d.cert.clone()).collect())
            .unwrap();
        index
    }

    pub(crate) fn device(&self, index: u32) -> &Device {
        &self.devices[usize::try_from(index).unwrap()]
    }

    pub(crate) fn id(&self) -> tandem_crypto::AccountId {
        self.account.account_id()
    }
}

fn new_device(account: &AccountKey, index: u32, name: &str, rng: &mut ChaCha20Rng) -> Device {
    let keys = DeviceKeys::generate(rng);
    let cert = DeviceCertificate::issue(
        account,
        &keys,
        DeviceDescription {
            index,
            keys: keys.public_keys(),
            name: name.into(),
            platform: "test".into(),
            linked_at_ms: T0,
        },
    )
    .unwrap();
    Device {
        id: DeviceId::new(account.account_id(), index),
        keys,
        cert,
    }
}

/// Alice (phone) and bob (phone), and the pairwise state of alice's phone towards bob's phone
/// and back.
pub(crate) struct World {
    pub(crate) alice: Person,
    pub(crate) bob: Person,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) now_ms: i64,
    pub(crate) policy: RekeyPolicy,
    /// Alice's phone's state towards bob's phone.
    pub(crate) alice_out: PairwiseSession,
    /// Bob's phone's state towards alice's phone.
    pub(crate) bob_in: PairwiseSession,
    /// Bob's phone's replay guard.
    pub(crate) bob_guard: MemoryReplayGuard,
}

impl World {
    pub(crate) fn new(seed: u8) -> Self {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let alice = Person::new(&mut rng);
        let bob = Person::new(&mut rng);
        let (a, b) = (alice.device(0).id, bob.device(0).id);
        Self {
            alice,
            bob,
            rng,
            now_ms: T0,
            policy: RekeyPolicy::default(),
            alice_out: PairwiseSession::new(a, b),
            bob_in: PairwiseSession::new(b, a),
            bob_guard: MemoryReplayGuard::new(10_000),
        }
    }

    /// The direct chat between alice and bob, as alice addresses it.
    pub(crate) fn chat(&self) -> ChatRef {
        ChatRef::Direct {
            with: self.bob.id(),
        }
    }

    /// Alice's phone seals `body` for bob's phone with a fresh message id.
    pub(crate) fn alice_sends(&mut self, body: &Body) -> Vec<u8> {
        let id = MessageId::new_v7(self.now_ms, &mut self.rng).unwrap();
        self.alice_sends_as(id, body)
    }

    pub(crate) fn alice_sends_as(&mut self, message_id: MessageId, body: &Body) -> Vec<u8> {
        let session = self
            .alice_out
            .outbound(
                &self.alice.device(0).keys,
                &self.bob.device(0).keys.public_keys(),
                self.now_ms,
                &self.policy,
                &mut self.rng,
            )
            .unwrap();
        seal_envelope(
            session,
            &SealParams {
                message_id,
                timestamp_ms: self.now_ms,
                flags: Flags::NONE,
            },
            body,
        )
        .unwrap()
    }

    /// Bob's phone opens `bytes` with alice's current list as bob knows it.
    pub(crate) fn bob_opens(&mut self, bytes: &[u8]) -> Result<Opened> {
        let list = self.alice.list.clone();
        self.bob_opens_with_list(bytes, &list)
    }

    pub(crate) fn bob_opens_with_list(
        &mut self,
        bytes: &[u8],
        list: &DeviceList,
    ) -> Result<Opened> {
        let envelope = Envelope::decode(bytes)?;
        open_envelope(
            &envelope,
            &self.bob.device(0).keys,
            &mut self.bob_in,
            list,
            &mut self.bob_guard,
            self.now_ms,
        )
    }

    /// A text body in the alice-bob chat.
    pub(crate) fn text(&self, text: &str) -> Body {
        Body::Text {
            chat: self.chat(),
            text: text.into(),
        }
    }
}

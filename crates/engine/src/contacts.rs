//! Contacts and the device lists of other accounts: contact links (`tandem://contact?...`),
//! adding a contact (and telling the account's other devices), the 1:1 chat with an account,
//! and the [`Directory`] of verified device lists a connection opens envelopes with and seals
//! messages to.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use tandem_crypto::{AccountId, ContactLink, DeviceList, SignedDeviceList, accept};
use tandem_proto::{Body, ChatId as GroupId, ChatRef, Kind};
use tandem_store::{
    Account, ChatId, ChatKind, Contact, DurableWriter, Member, NewChat, NewFanout, Store, Writer,
};
use uuid::Uuid;

use crate::identity::{Identity, store_own_list};
use crate::{Engine, Error, Result, now_ms};

/// What `contact-add` did: `{"account","name","chat"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContactView {
    /// The contact's account id.
    pub account: String,
    /// The name it is saved under.
    pub name: String,
    /// The id of the 1:1 chat with it.
    pub chat: String,
}

/// The id of the 1:1 chat between two accounts: the same on every device of both, whichever
/// side computes it (a hash of the two account ids in sorted order).
pub(crate) fn direct_chat_id(a: &AccountId, b: &AccountId) -> ChatId {
    let (lo, hi) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let digest = Sha256::new()
        .chain_update(b"tandem/v1 direct chat\0")
        .chain_update(lo.as_bytes())
        .chain_update(hi.as_bytes())
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    ChatId(Uuid::from_bytes(id))
}

/// A group's chat id in the store.
pub(crate) fn group_chat_id(group: &GroupId) -> ChatId {
    ChatId(Uuid::from_bytes(group.0))
}

/// The account id stored as bytes, if well-formed.
pub(crate) fn account_from(bytes: &[u8]) -> Option<AccountId> {
    <[u8; tandem_crypto::account::ACCOUNT_ID_LEN]>::try_from(bytes)
        .ok()
        .map(AccountId::from_bytes)
}

/// How a message to `chat` names it on the wire, seen from this account.
pub(crate) fn chat_ref(chat: &tandem_store::ChatSummary) -> Result<ChatRef> {
    match chat.kind {
        ChatKind::Group => Ok(ChatRef::Group {
            id: GroupId(*chat.id.0.as_bytes()),
        }),
        _ => {
            let peer = chat
                .peer_account
                .as_deref()
                .and_then(account_from)
                .ok_or_else(|| {
                    Error::BadInput(format!(
                        "\"{}\" was imported from a chat export: it has no Tandem contact to send to",
                        chat.name
                    ))
                })?;
            Ok(ChatRef::Direct { with: peer })
        }
    }
}

/// Creates (or renames) the 1:1 chat with `peer`; returns its id.
pub(crate) fn ensure_direct_chat(
    w: &mut Writer<'_>,
    own: &AccountId,
    peer: &AccountId,
    name: &str,
) -> Result<ChatId> {
    let id = direct_chat_id(own, peer);
    let members = vec![Member {
        account: Some(peer.as_bytes().to_vec()),
        name: name.to_owned(),
    }];
    w.upsert_chat(&NewChat {
        id,
        kind: ChatKind::Direct,
        name: name.to_owned(),
        peer_account: Some(peer.as_bytes().to_vec()),
        created_at: now_ms(),
        members,
    })?;
    Ok(id)
}

/// Queues `body` for every device of `account` (this device's own other devices when it is
/// the own account), to be sealed when the account's device list is known.
pub(crate) fn queue_fanout(
    w: &mut Writer<'_>,
    account: &AccountId,
    message_id: tandem_proto::MessageId,
    ts: i64,
    body: &Body,
) -> Result<()> {
    w.add_fanout(&NewFanout {
        message_id: tandem_store::MessageId(Uuid::from_bytes(*message_id.as_bytes())),
        account: account.as_bytes().to_vec(),
        kind: body.kind().byte(),
        body: body.encode()?,
        ts,
        created_at: now_ms(),
    })?;
    Ok(())
}

/// Decodes a queued body.
pub(crate) fn queued_body(kind: u8, bytes: &[u8]) -> Result<Body> {
    let kind = Kind::from_byte(kind).ok_or(Error::Corrupt {
        what: "fan-out queue",
        reason: format!("unknown body kind {kind}"),
    })?;
    Ok(Body::decode(kind, bytes)?)
}

/// The verified device lists of the accounts this device talks to (its own included): whom
/// envelopes are accepted from, and to which devices messages are sealed.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    lists: HashMap<AccountId, DeviceList>,
}

impl Directory {
    /// Every stored list, verified (a list that no longer verifies is left out and logged).
    pub(crate) fn load(store: &Store, id: &Identity) -> Result<Self> {
        let mut lists = HashMap::new();
        lists.insert(id.account, id.list.clone());
        for account in known_accounts(store)? {
            if account == id.account {
                continue;
            }
            let Some(stored) = store.device_list(account.as_bytes())? else {
                continue;
            };
            match SignedDeviceList::from_bytes(&stored.signed).and_then(|s| s.verify(&account)) {
                Ok(list) => {
                    lists.insert(account, list);
                }
                Err(e) => {
                    tracing::warn!(%account, error = %e, "a stored device list does not verify")
                }
            }
        }
        Ok(Self { lists })
    }

    /// The newest verified list of `account`.
    pub(crate) fn get(&self, account: &AccountId) -> Option<&DeviceList> {
        self.lists.get(account)
    }

    /// The accounts whose lists are known.
    pub(crate) fn accounts(&self) -> impl Iterator<Item = &AccountId> {
        self.lists.keys()
    }

    /// Replaces this account's own list (after the identity accepted a new one).
    pub(crate) fn set(&mut self, list: DeviceList) {
        self.lists.insert(list.account_id(), list);
    }

    /// Takes a list received for `account` (a contact or group member): verified, newer than
    /// the stored one, then stored with its devices. Returns whether it was new.
    pub(crate) fn accept(
        &mut self,
        w: &mut DurableWriter<'_>,
        account: &AccountId,
        bytes: &[u8],
    ) -> Result<bool> {
        let signed = SignedDeviceList::from_bytes(bytes)?;
        let accepted = match accept(account, self.lists.get(account), &signed) {
            Ok(a) => a,
            Err(tandem_crypto::Error::DeviceListReplayed { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        store_own_list(w, &accepted, &signed)?;
        self.lists.insert(*account, accepted.list);
        Ok(true)
    }
}

/// Every account this device has a contact or a group membership with.
pub(crate) fn known_accounts(store: &Store) -> Result<Vec<AccountId>> {
    let mut out: Vec<AccountId> = store
        .contacts()?
        .iter()
        .filter_map(|c| account_from(&c.account))
        .collect();
    for chat in store.chats()? {
        if chat.kind != ChatKind::Group {
            continue;
        }
        for member in store.members(chat.id)? {
            if let Some(account) = member.account.as_deref().and_then(account_from)
                && !out.contains(&account)
            {
                out.push(account);
            }
        }
    }
    Ok(out)
}

/// Saves `link`'s account as a contact named `name` and creates the 1:1 chat with it.
pub(crate) fn save_contact(
    w: &mut Writer<'_>,
    own: &AccountId,
    link: &ContactLink,
    name: &str,
) -> Result<ChatId> {
    let account = link.account_id();
    w.upsert_account(&Account {
        id: account.as_bytes().to_vec(),
        public_key: link.account_key().to_bytes().to_vec(),
        display_name: link.name().to_owned(),
    })?;
    w.upsert_contact(&Contact {
        account: account.as_bytes().to_vec(),
        name: name.to_owned(),
        added_at: now_ms(),
    })?;
    ensure_direct_chat(w, own, &account, name)
}

impl Engine {
    /// This account's contact link (`tandem://contact?...`): what others add to write to it.
    ///
    /// # Errors
    /// [`Error::NotLinked`] without an account.
    pub fn contact_link(&self) -> Result<String> {
        let id = self.identity()?;
        let name = if id.account_name.is_empty() {
            id.account.to_string()
        } else {
            id.account_name.clone()
        };
        Ok(ContactLink::new(*id.list.account_key(), name)?.to_string())
    }

    /// Adds the account of a contact link (named `name`, else the name the link carries),
    /// creates the 1:1 chat, and queues the contact card for this account's other devices.
    ///
    /// # Errors
    /// [`Error::BadInput`] for a link that does not parse or is this account's own.
    pub fn contact_add(&self, link: &str, name: Option<&str>) -> Result<ContactView> {
        let id = self.identity()?;
        let parsed: ContactLink = link
            .trim()
            .parse()
            .map_err(|e| Error::BadInput(format!("not a contact link: {e}")))?;
        let account = parsed.account_id();
        if account == id.account {
            return Err(Error::BadInput(
                "that is this account's own contact link".into(),
            ));
        }
        let name = match name.map(str::trim) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => parsed.name().to_owned(),
        };
        let card = Body::ContactCard {
            link: ContactLink::new(*parsed.account_key(), name.clone())?.to_string(),
        };
        let chat = self.store().write(|w| -> Result<ChatId> {
            let chat = save_contact(w, &id.account, &parsed, &name)?;
            let mut rng = tandem_crypto::OsRng::new().map_err(|e| Error::Random(e.to_string()))?;
            let now = now_ms();
            let message_id = tandem_proto::MessageId::new_v7(now, &mut rng)?;
            queue_fanout(w, &id.account, message_id, now, &card)?;
            Ok(chat)
        })?;
        Ok(ContactView {
            account: account.to_string(),
            name,
            chat: chat.0.hyphenated().to_string(),
        })
    }
}

//! Group chats: creating one, adding and removing members, and taking a `GroupInfo` from
//! another member. A group's name and member list are versioned; every change is a new
//! version sent to every member account (and to removed ones, so they learn it), and a device
//! takes only a higher version from a member of the version it holds.

use tandem_crypto::{AccountId, AccountPublicKey, OsRng};
use tandem_proto::{Body, ChatId as GroupId, GroupMember, MessageId as WireId};
use tandem_store::{
    Account, ChatId, ChatKind, ChatSummary, DurableWriter, Member, NewChat, Store, Writer,
};

use crate::contacts::{account_from, group_chat_id, queue_fanout};
use crate::identity::Identity;
use crate::messaging::{Effect, display_name};
use crate::views::ChatView;
use crate::{Engine, Error, Result, now_ms};

fn rng() -> Result<OsRng> {
    OsRng::new().map_err(|e| Error::Random(e.to_string()))
}

/// One member as this device knows it: account, key, name.
#[derive(Debug, Clone)]
struct Known {
    account: AccountId,
    key: AccountPublicKey,
    name: String,
}

impl Engine {
    /// The contact named `who` (its saved name, or its account id).
    fn contact_named(&self, who: &str) -> Result<Known> {
        let store = self.store();
        let who = who.trim();
        for contact in store.contacts()? {
            let Some(account) = account_from(&contact.account) else {
                continue;
            };
            if contact.name == who || account.to_string() == who {
                return self.known(account, contact.name);
            }
        }
        Err(Error::BadInput(format!(
            "no contact named \"{who}\" (add it first with contact-add)"
        )))
    }

    fn known(&self, account: AccountId, name: String) -> Result<Known> {
        let stored = self
            .store()
            .account(account.as_bytes())?
            .ok_or(Error::Corrupt {
                what: "account",
                reason: format!("no key stored for {account}"),
            })?;
        let key = <[u8; 32]>::try_from(stored.public_key.as_slice())
            .ok()
            .and_then(|b| AccountPublicKey::from_bytes(&b).ok())
            .ok_or(Error::Corrupt {
                what: "account",
                reason: format!("the stored key of {account} is not a key"),
            })?;
        Ok(Known { account, key, name })
    }

    /// The members of a group chat as this device knows them.
    fn group_members(&self, chat: ChatId) -> Result<Vec<Known>> {
        let mut out = Vec::new();
        for member in self.store().members(chat)? {
            if let Some(account) = member.account.as_deref().and_then(account_from) {
                out.push(self.known(account, member.name)?);
            }
        }
        Ok(out)
    }

    /// Creates a group named `name` with this account and the contacts `members` (names or
    /// account ids), and sends it to every member's devices and this account's others.
    ///
    /// # Errors
    /// [`Error::BadInput`] for an unknown contact or a bad name.
    pub fn group_create(&self, name: &str, members: &[String]) -> Result<ChatView> {
        let id = self.identity()?;
        let mut list = vec![self.own_member(&id)?];
        for who in members {
            let known = self.contact_named(who)?;
            if !list.iter().any(|k| k.account == known.account) {
                list.push(known);
            }
        }
        let group = GroupId::random(&mut rng()?);
        let chat = group_chat_id(&group);
        self.publish_group(&id, group, 1, name.trim(), &list, &[])?;
        self.chat_view_of(chat)
    }

    /// Adds the contact `who` to a group this account is in.
    ///
    /// # Errors
    /// [`Error::BadInput`] for an unknown contact, a chat that is not a group or a group this
    /// account left.
    pub fn group_add(&self, chat: &str, who: &str) -> Result<ChatView> {
        let (id, summary, version, mut members) = self.own_group(chat)?;
        let known = self.contact_named(who)?;
        if members.iter().any(|m| m.account == known.account) {
            return self.chat_view_of(summary.id);
        }
        members.push(known);
        let group = GroupId(*summary.id.0.as_bytes());
        self.publish_group(&id, group, version + 1, &summary.name, &members, &[])?;
        self.chat_view_of(summary.id)
    }

    /// Removes the member `who` (a name or account id) from a group; it is told, and receives
    /// nothing of the group from then on.
    ///
    /// # Errors
    /// As [`Engine::group_add`]; [`Error::BadInput`] when `who` is not a member.
    pub fn group_remove(&self, chat: &str, who: &str) -> Result<ChatView> {
        let (id, summary, version, members) = self.own_group(chat)?;
        let who = who.trim();
        let Some(gone) = members
            .iter()
            .find(|m| m.name == who || m.account.to_string() == who)
            .cloned()
        else {
            return Err(Error::BadInput(format!(
                "\"{who}\" is not a member of {}",
                summary.name
            )));
        };
        let rest: Vec<Known> = members
            .into_iter()
            .filter(|m| m.account != gone.account)
            .collect();
        let group = GroupId(*summary.id.0.as_bytes());
        self.publish_group(
            &id,
            group,
            version + 1,
            &summary.name,
            &rest,
            &[gone.account],
        )?;
        self.chat_view_of(summary.id)
    }

    fn own_member(&self, id: &Identity) -> Result<Known> {
        Ok(Known {
            account: id.account,
            key: *id.list.account_key(),
            name: id.account_name.clone(),
        })
    }

    fn own_group(&self, chat: &str) -> Result<(Identity, ChatSummary, u64, Vec<Known>)> {
        let id = self.identity()?;
        let summary = self.store().chat_by_id_or_name(chat)?;
        if summary.kind != ChatKind::Group {
            return Err(Error::BadInput(format!(
                "\"{}\" is not a group",
                summary.name
            )));
        }
        let members = self.group_members(summary.id)?;
        if !members.iter().any(|m| m.account == id.account) {
            return Err(Error::BadInput(format!(
                "this account is no longer a member of {}",
                summary.name
            )));
        }
        let version = self
            .store()
            .write(|w| w.group_version(summary.id))?
            .unwrap_or(0);
        Ok((id, summary, version, members))
    }

    /// Stores version `version` of a group and queues it for every member account (and
    /// `removed` ones), in one transaction.
    fn publish_group(
        &self,
        id: &Identity,
        group: GroupId,
        version: u64,
        name: &str,
        members: &[Known],
        removed: &[AccountId],
    ) -> Result<()> {
        let body = Body::GroupInfo {
            id: group,
            version,
            name: name.to_owned(),
            members: members
                .iter()
                .map(|m| GroupMember {
                    account_key: m.key,
                    name: m.name.clone(),
                })
                .collect(),
        };
        body.validate()?;
        let now = now_ms();
        let wire = WireId::new_v7(now, &mut rng()?)?;
        self.store().write(|w| -> Result<()> {
            store_group(
                w,
                self.store(),
                id,
                group,
                version,
                name,
                &body_members(&body),
            )?;
            let mut accounts: Vec<AccountId> = members.iter().map(|m| m.account).collect();
            accounts.extend_from_slice(removed);
            for account in accounts {
                // This account's own entry is its other devices.
                queue_fanout(w, &account, wire, now, &body)?;
            }
            Ok(())
        })
    }

    fn chat_view_of(&self, chat: ChatId) -> Result<ChatView> {
        let summary = self.store().chat(chat)?.ok_or(Error::Corrupt {
            what: "chat",
            reason: "a group just stored is missing".into(),
        })?;
        Ok(crate::read::chat_view(&summary))
    }
}

fn body_members(body: &Body) -> Vec<GroupMember> {
    match body {
        Body::GroupInfo { members, .. } => members.clone(),
        _ => Vec::new(),
    }
}

/// Writes a group's name, members and version.
fn store_group(
    w: &mut Writer<'_>,
    store: &Store,
    id: &Identity,
    group: GroupId,
    version: u64,
    name: &str,
    members: &[GroupMember],
) -> Result<ChatId> {
    let chat = group_chat_id(&group);
    let mut rows = Vec::with_capacity(members.len());
    for member in members {
        let account = member.account_key.account_id();
        if account != id.account && store.account(account.as_bytes())?.is_none() {
            w.upsert_account(&Account {
                id: account.as_bytes().to_vec(),
                public_key: member.account_key.to_bytes().to_vec(),
                display_name: member.name.clone(),
            })?;
        }
        let shown = if account == id.account {
            id.account_name.clone()
        } else if let Some(contact) = store
            .contacts()?
            .into_iter()
            .find(|c| c.account == account.as_bytes())
        {
            contact.name
        } else {
            member.name.clone()
        };
        rows.push(Member {
            account: Some(account.as_bytes().to_vec()),
            name: shown,
        });
    }
    let created_at = store.chat(chat)?.map_or_else(now_ms, |c| c.created_at);
    w.upsert_chat(&NewChat {
        id: chat,
        kind: ChatKind::Group,
        name: name.to_owned(),
        peer_account: None,
        created_at,
        members: rows,
    })?;
    w.set_group_version(chat, version)?;
    Ok(chat)
}

/// A `GroupInfo` from `sender`, inside the inbox transaction: taken when its version is
/// higher than the one held and the sender may change the group.
pub(crate) fn apply_group_info(
    w: &mut DurableWriter<'_>,
    store: &Store,
    id: &Identity,
    sender: &AccountId,
    body: &Body,
) -> Result<Vec<Effect>> {
    let Body::GroupInfo {
        id: group,
        version,
        name,
        members,
    } = body
    else {
        return Ok(Vec::new());
    };
    let chat = group_chat_id(group);
    let held = w.group_version(chat)?;
    if held.is_some_and(|v| *version <= v) {
        return Ok(Vec::new());
    }
    let listed = |account: &AccountId| {
        members
            .iter()
            .any(|m| m.account_key.account_id() == *account)
    };
    let allowed = match held {
        Some(_) => store
            .members(chat)?
            .iter()
            .any(|m| m.account.as_deref() == Some(sender.as_bytes().as_slice())),
        None => listed(sender) && (listed(&id.account) || *sender == id.account),
    };
    if !allowed {
        tracing::warn!(%sender, "dropping a group change from a non-member");
        return Ok(Vec::new());
    }
    store_group(w, store, id, *group, *version, name, members)?;
    Ok(vec![Effect::Group {
        chat,
        name: name.clone(),
        members: members
            .iter()
            .map(|m| {
                let account = m.account_key.account_id();
                display_name(store, id, &account).unwrap_or_else(|_| m.name.clone())
            })
            .collect(),
        member: listed(&id.account),
    }])
}

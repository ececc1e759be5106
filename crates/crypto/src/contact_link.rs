//! Contact links: `tandem://contact?v=1&account=<base32 account key>&name=<percent-encoded>`.
//! The same text goes into QR codes. Parsing is strict: exact prefix, exactly the three v1
//! parameters once each, a valid account key, and a bounded, well-encoded name.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::{AccountId, AccountPublicKey, ContactLinkError, Error, Result};

/// The prefix every contact link starts with.
pub const CONTACT_LINK_PREFIX: &str = "tandem://contact?";
/// Longest contact link accepted, in bytes.
pub const MAX_CONTACT_LINK_LEN: usize = 512;
/// Longest display name, in bytes of UTF-8.
pub const MAX_CONTACT_NAME_LEN: usize = 64;

/// Characters left as they are in the name: RFC 3986 "unreserved". Everything else is `%XX`.
const NAME_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A parsed, valid contact link: an account key and the name its owner chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactLink {
    account_key: AccountPublicKey,
    name: String,
}

impl ContactLink {
    /// Builds a link; the name must be 1..=64 bytes without control characters.
    pub fn new(account_key: AccountPublicKey, name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_name(&name)?;
        Ok(Self { account_key, name })
    }

    /// The account key.
    pub fn account_key(&self) -> &AccountPublicKey {
        &self.account_key
    }

    /// The account id, derived from the key (never taken from the link's text).
    pub fn account_id(&self) -> AccountId {
        self.account_key.account_id()
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn check_name(name: &str) -> Result<(), ContactLinkError> {
    if name.is_empty() {
        return Err(ContactLinkError::BadName("empty"));
    }
    if name.len() > MAX_CONTACT_NAME_LEN {
        return Err(ContactLinkError::BadName("longer than 64 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(ContactLinkError::BadName("contains control characters"));
    }
    Ok(())
}

impl fmt::Display for ContactLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{CONTACT_LINK_PREFIX}v=1&account={}&name={}",
            self.account_key.to_base32(),
            utf8_percent_encode(&self.name, NAME_ENCODE)
        )
    }
}

/// Checks that `raw` uses only unreserved characters and well-formed `%XX` escapes.
fn is_strictly_encoded(raw: &str) -> bool {
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = |x: Option<u8>| x.is_some_and(|c| c.is_ascii_hexdigit());
            if !(hex(bytes.next()) && hex(bytes.next())) {
                return false;
            }
        } else if !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) {
            return false;
        }
    }
    true
}

impl FromStr for ContactLink {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Ok(parse(text)?)
    }
}

fn parse(text: &str) -> Result<ContactLink, ContactLinkError> {
    if text.len() > MAX_CONTACT_LINK_LEN {
        return Err(ContactLinkError::TooLong {
            max: MAX_CONTACT_LINK_LEN,
        });
    }
    let query = text
        .strip_prefix(CONTACT_LINK_PREFIX)
        .ok_or(ContactLinkError::NotAContactLink)?;
    let (mut version, mut account, mut name) = (None, None, None);
    for part in query.split('&') {
        let (key, value) = part
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| ContactLinkError::MalformedQuery(part.chars().take(64).collect()))?;
        let slot = match key {
            "v" => &mut version,
            "account" => &mut account,
            "name" => &mut name,
            other => {
                return Err(ContactLinkError::UnknownParameter(
                    other.chars().take(64).collect(),
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(ContactLinkError::DuplicateParameter(key.to_owned()));
        }
    }
    let version = version.ok_or(ContactLinkError::MissingParameter("v"))?;
    if version != "1" {
        return Err(ContactLinkError::UnsupportedVersion(
            version.chars().take(16).collect(),
        ));
    }
    let account = account.ok_or(ContactLinkError::MissingParameter("account"))?;
    if account.len() != 52 {
        return Err(ContactLinkError::BadAccountKey("not 52 characters"));
    }
    let account_key = AccountPublicKey::from_base32(account).map_err(|e| match e {
        Error::InvalidKey { reason, .. } => ContactLinkError::BadAccountKey(reason),
        _ => ContactLinkError::BadAccountKey("invalid"),
    })?;
    let raw_name = name.ok_or(ContactLinkError::MissingParameter("name"))?;
    if !is_strictly_encoded(raw_name) {
        return Err(ContactLinkError::BadName(
            "characters other than unreserved ones and %XX escapes",
        ));
    }
    let name = percent_decode_str(raw_name)
        .decode_utf8()
        .map_err(|_| ContactLinkError::BadName("not UTF-8 after percent-decoding"))?
        .into_owned();
    check_name(&name)?;
    Ok(ContactLink { account_key, name })
}

#[cfg(test)]
#[path = "contact_link_tests.rs"]
mod tests;
